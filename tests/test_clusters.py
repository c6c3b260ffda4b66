"""lib.clusters: the Slurm job script slurm_cluster writes, read without submitting a job.

Constructing a dask-jobqueue cluster starts a Dask scheduler in this process but
submits nothing: jobs go to ``sbatch`` only through ``scale`` or ``adapt``, which
no test calls. The job submission itself is replaced by a function that fails the
test, in case a construction ever did submit.
"""

from __future__ import annotations

import os
import sys
import types

import pytest

from lib.clusters import dask_setup, slurm_cluster


@pytest.fixture
def no_sbatch(monkeypatch):
    """Any call of sbatch (or scancel) fails the test."""
    from dask_jobqueue.core import Job

    calls = []

    async def refuse(cmd, **kwargs):
        calls.append(cmd)
        raise AssertionError(f"a job command ran: {cmd}")

    monkeypatch.setattr(Job, "_call", staticmethod(refuse))
    return calls


def job_script(no_sbatch, **options):
    """The job script of a fresh cluster, after checking it holds no job; closes the cluster."""
    cluster = slurm_cluster(scheduler_options={"dashboard_address": ":0"}, **options)
    try:
        assert cluster.scheduler_address.startswith("tcp://")
        script = cluster.job_script()
        assert cluster.workers == {} and cluster.worker_spec == {}
        assert not cluster.plan and not cluster.requested and not cluster.observed
    finally:
        cluster.close()
    assert no_sbatch == []
    return script


def sbatch_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def worker_command(script: str) -> str:
    (line,) = [line for line in script.splitlines() if "distributed.cli.dask_worker" in line]
    return line


def test_cpu_job_script_has_one_single_threaded_worker_per_core(no_sbatch):
    script = job_script(no_sbatch, cores=8, memory="32GB", walltime="04:00:00",
                        queue="compute", account="proj42",
                        job_extra_directives=["--constraint=skylake"])
    header = sbatch_lines(script)
    assert "#SBATCH --cpus-per-task=8" in header
    assert "#SBATCH --mem=30G" in header                    # 32e9 bytes, in GiB rounded up
    assert "#SBATCH -t 04:00:00" in header
    assert "#SBATCH -p compute" in header and "#SBATCH -A proj42" in header
    assert "#SBATCH --constraint=skylake" in header
    assert not any("gres" in line for line in header)
    assert "export OMP_NUM_THREADS=1" in script.splitlines()
    assert "export OMP_WAIT_POLICY=PASSIVE" in script.splitlines()
    command = worker_command(script)
    assert command.startswith(f"{sys.executable} -m distributed.cli.dask_worker tcp://")
    assert "--nthreads 1 " in command and "--nworkers 8 " in command
    assert "--memory-limit 3.73GiB" in command              # the job's memory over 8 workers
    assert '--local-directory "${TMPDIR:-/tmp}"' in command
    assert "--resources" not in command and "--preload" not in command
    # The exports come before the workers start.
    assert script.index("export OMP_NUM_THREADS=1") < script.index(command)


def test_gpu_job_script_has_one_worker_per_gpu_with_the_gpu_resource(no_sbatch):
    script = job_script(no_sbatch, cores=8, memory="64GB", walltime="1-00:00:00", gpus=2,
                        python="/opt/envs/book/bin/python", local_directory="/scratch/$USER")
    header = sbatch_lines(script)
    assert "#SBATCH --gres=gpu:2" in header
    assert "#SBATCH --cpus-per-task=8" in header            # the job books every core
    assert "#SBATCH --mem=60G" in header and "#SBATCH -t 1-00:00:00" in header
    assert "export OMP_NUM_THREADS=1" in script.splitlines()
    assert "export OMP_WAIT_POLICY=PASSIVE" in script.splitlines()
    command = worker_command(script)
    assert command.startswith("/opt/envs/book/bin/python -m distributed.cli.dask_worker ")
    assert "--nthreads 1 " in command and "--nworkers 2 " in command
    assert "--resources GPU=1" in command
    assert "--preload lib.clusters" in command               # each process on its own GPU
    assert "--local-directory /scratch/$USER" in command


def test_one_gpu_job_needs_no_gpu_pinning(no_sbatch):
    command = worker_command(job_script(no_sbatch, cores=4, memory=8 * 2**30, walltime="60",
                                        gpus=1))
    assert "--resources GPU=1" in command and "--nthreads 1 " in command
    assert "--nworkers" not in command and "--preload" not in command


def test_extra_worker_args_and_prologue_come_after_the_defaults(no_sbatch):
    script = job_script(no_sbatch, cores=2, memory="4GB", walltime="30:00", processes=1,
                        worker_extra_args=["--lifetime", "55m"],
                        job_script_prologue=["module load cuda"])
    lines = script.splitlines()
    assert lines.index("export OMP_WAIT_POLICY=PASSIVE") < lines.index("module load cuda")
    command = worker_command(script)
    assert "--nthreads 1 " in command and "--nworkers" not in command
    assert command.endswith("--lifetime 55m")


GOOD = {"cores": 4, "memory": "8GB", "walltime": "01:00:00"}


@pytest.mark.parametrize(("changes", "error", "name"), [
    ({"cores": 0}, ValueError, "cores"),
    ({"cores": 2.5}, TypeError, "cores"),
    ({"memory": "lots"}, ValueError, "memory"),
    ({"memory": 0}, ValueError, "memory"),
    ({"memory": 8.5}, TypeError, "memory"),
    ({"walltime": "1h"}, ValueError, "walltime"),
    ({"walltime": 3600}, TypeError, "walltime"),
    ({"gpus": -1}, ValueError, "gpus"),
    ({"gpus": 5}, ValueError, "gpus"),
    ({"gpus": True}, TypeError, "gpus"),
    ({"processes": 0}, ValueError, "processes"),
    ({"processes": 5}, ValueError, "processes"),
    ({"gpus": 2, "processes": 4}, ValueError, "processes"),
    ({"queue": ""}, ValueError, "queue"),
    ({"queue": "gpu long"}, ValueError, "queue"),
    ({"account": 7}, TypeError, "account"),
    ({"job_extra_directives": "--qos=long"}, TypeError, "job_extra_directives"),
    ({"job_extra_directives": ["#SBATCH --qos=long"]}, ValueError, "job_extra_directives"),
    ({"python": ""}, ValueError, "python"),
    ({"local_directory": ""}, ValueError, "local_directory"),
    ({"job_cpu": 8}, TypeError, "job_cpu"),
    ({"job_extra": ["--qos=long"]}, TypeError, "job_extra"),
])
def test_bad_input_names_the_parameter(changes, error, name, no_sbatch):
    with pytest.raises(error, match=rf"The '{name}' parameter of slurm_cluster "):
        slurm_cluster(**{**GOOD, **changes})
    assert no_sbatch == []


def test_gpus_range_names_the_cores():
    with pytest.raises(ValueError, match=r"must be an int in \[0, cores\] = \[0, 4\].* Got 5"):
        slurm_cluster(**GOOD, gpus=5)


def test_missing_dask_jobqueue_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(ImportError, match=r"pip install 'manifold-book\[cluster\]'"):
        slurm_cluster(**GOOD)


@pytest.fixture
def fresh_torch(monkeypatch):
    """A torch that has not initialised CUDA, whatever this process did before."""
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(is_initialized=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake)
    return fake


@pytest.mark.parametrize(("visible", "name", "expected"), [
    ("4,7", "SLURMCluster-3-1", "7"),
    ("4,7", "SLURMCluster-3-0", "4"),
    (None, "SLURMCluster-3-1", "1"),
])
def test_dask_setup_leaves_each_worker_process_its_own_gpu(visible, name, expected, monkeypatch,
                                                           fresh_torch):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    dask_setup(types.SimpleNamespace(name=name))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == expected


@pytest.mark.parametrize(("visible", "name", "match"), [
    ("0,1", "worker", "number at the end of its name"),
    ("0,1", "SLURMCluster-3-2", "sees only 2 GPU"),
])
def test_dask_setup_refuses_what_it_cannot_pin(visible, name, match, monkeypatch, fresh_torch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(RuntimeError, match=match):
        dask_setup(types.SimpleNamespace(name=name))


def test_dask_setup_refuses_after_cuda_started(monkeypatch, fresh_torch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    fresh_torch.cuda.is_initialized = lambda: True
    with pytest.raises(RuntimeError, match="initialised CUDA"):
        dask_setup(types.SimpleNamespace(name="SLURMCluster-0-1"))
