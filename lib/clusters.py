"""Dask clusters on a Slurm batch system, to run the book's chapters on many nodes.

:func:`slurm_cluster` returns a dask-jobqueue ``SLURMCluster`` set up for the
book's units of work: single-threaded torch, one thread per worker process,
one worker process per GPU. Give it (or its ``scheduler_address``) to a
chapter's ``scheduler`` parameter; :func:`lib.sweeps.run_cells` checks that
the workers run the same code and package versions as the driver, and
brings results and trained weights back to the driver's cache, so the
compute nodes need the same checkout but no filesystem shared with the
driver for the results. The recipe is in the book's "Rerunning a chapter"
page.

The workers of a job with several GPUs load this module as a Dask preload
(``--preload lib.clusters``): its :func:`dask_setup` gives each worker
process a GPU of its own.

Needs the ``cluster`` extra: ``pip install 'manifold-book[cluster]'``.
"""

from __future__ import annotations

import os
import re
import shlex
import sys

from lib._checks import check_int

__all__ = ["dask_setup", "slurm_cluster"]

CALLER = "slurm_cluster"

#: The job's shell expands it on the node: Slurm's per-job temporary folder, else /tmp.
NODE_TMPDIR = '"${TMPDIR:-/tmp}"'

#: Exported in every job before the workers start: the units are single-threaded torch, and
#: idle OpenMP threads that spin instead of sleeping slow a busy node down (see the Makefile).
PROLOGUE = ("export OMP_NUM_THREADS=1", "export OMP_WAIT_POLICY=PASSIVE")

#: Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_WALLTIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2}")

#: SLURMCluster keywords that slurm_cluster sets itself, and what to use instead.
_REFUSED = {
    "job_cpu": "set by 'cores'",
    "job_mem": "set by 'memory'",
    "nanny": "a nanny is needed to start several worker processes per job",
    "job_extra": "deprecated in dask-jobqueue; use 'job_extra_directives'",
    "extra": "deprecated in dask-jobqueue; use 'worker_extra_args'",
    "env_extra": "deprecated in dask-jobqueue; use 'job_script_prologue'",
}


def _prefix(name: str) -> str:
    return f"The {name!r} parameter of {CALLER}"


def _check_word(value, name: str, *, optional: bool) -> str | None:
    """A non-empty string without whitespace (a partition, an account), or None if optional."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        allowed = "None or " if optional else ""
        raise (TypeError if not isinstance(value, str) else ValueError)(
            f"{_prefix(name)} must be {allowed}a non-empty string without whitespace. "
            f"Got {value!r} instead.")
    return value


def _check_memory(memory) -> int:
    from dask.utils import parse_bytes

    expected = "a positive number of bytes or a size such as '16GB' or '4GiB'"
    if isinstance(memory, bool) or not isinstance(memory, (int, str)):
        raise TypeError(f"{_prefix('memory')} must be {expected}. Got {memory!r} instead.")
    try:
        size = parse_bytes(memory) if isinstance(memory, str) else memory
    except ValueError:
        size = None
    if size is None or size <= 0:
        raise ValueError(f"{_prefix('memory')} must be {expected}. Got {memory!r} instead.")
    return size


def _check_walltime(walltime) -> str:
    expected = ("a Slurm time string: 'MM', 'MM:SS', 'HH:MM:SS', 'D-HH', 'D-HH:MM' "
                "or 'D-HH:MM:SS'")
    if not isinstance(walltime, str):
        raise TypeError(f"{_prefix('walltime')} must be {expected}. Got {walltime!r} instead.")
    if not _WALLTIME.fullmatch(walltime):
        raise ValueError(f"{_prefix('walltime')} must be {expected}. Got {walltime!r} instead.")
    return walltime


def _check_directives(directives) -> list[str]:
    expected = "a sequence of Slurm options such as ['--constraint=a100', '--qos=long']"
    if isinstance(directives, str) or not hasattr(directives, "__iter__"):
        raise TypeError(f"{_prefix('job_extra_directives')} must be {expected}. "
                        f"Got {directives!r} instead.")
    directives = list(directives)
    for directive in directives:
        if (not isinstance(directive, str) or not directive.strip() or "\n" in directive
                or directive.lstrip().startswith("#")):
            raise ValueError(f"{_prefix('job_extra_directives')} must be {expected}, each a "
                             f"one-line option without '#SBATCH' (it is added). Got "
                             f"{directive!r} in {directives!r} instead.")
    return directives


def slurm_cluster(*, cores: int, memory, walltime: str, gpus: int = 0,
                  queue: str | None = None, account: str | None = None,
                  processes: int | None = None, job_extra_directives=(),
                  python: str | None = None, local_directory: str | None = None, **kwargs):
    """A dask-jobqueue ``SLURMCluster`` for the book's chapters; it submits no job yet.

    Each Slurm job (one per ``cluster.scale(jobs=...)`` unit) runs one Dask
    worker command that starts ``processes`` worker processes of one thread
    each (the units are single-threaded torch; ``OMP_NUM_THREADS=1`` and
    ``OMP_WAIT_POLICY=PASSIVE`` are exported in the job), with
    ``memory / processes`` each. With ``gpus > 0`` the job asks for
    ``--gres=gpu:<gpus>`` and runs one worker process per GPU, each
    declaring the Dask resource ``GPU=1`` that the cells of a chapter run
    with ``device cuda`` ask for, and each seeing only its own GPU
    (:func:`dask_setup`).

    Constructing the cluster starts its Dask scheduler in this process (the
    driver), which must stay alive while the chapter runs; jobs are
    submitted with ``sbatch`` only by ``cluster.scale(...)`` or
    ``cluster.adapt(...)``. ``cluster.job_script()`` shows the script each
    job would run.

    Parameters
    ----------
    cores : int
        CPU cores per job (``#SBATCH --cpus-per-task``), >= 1.
    memory : int or str
        Memory per job (``#SBATCH --mem``), in bytes or as a size such as
        ``"16GB"``; each worker process may use ``memory / processes``.
    walltime : str
        Time limit per job (``#SBATCH -t``), in a Slurm format: ``"MM"``,
        ``"MM:SS"``, ``"HH:MM:SS"``, ``"D-HH"``, ``"D-HH:MM"`` or
        ``"D-HH:MM:SS"``. A job that reaches it takes its workers away;
        unfinished cells are rerun elsewhere, finished ones are cached.
    gpus : int, default=0
        GPUs per job (``#SBATCH --gres=gpu:<gpus>``), in ``[0, cores]``: one
        worker process per GPU, each with one of the job's cores.
    queue : str, optional
        Slurm partition (``#SBATCH -p``); the cluster's default if None.
    account : str, optional
        Slurm account charged (``#SBATCH -A``); your default if None.
    processes : int, optional
        Worker processes per job. Without GPUs, in ``[1, cores]``, default
        ``cores`` (one single-threaded worker per core; fewer leave cores to
        the threads torch starts besides OpenMP's). With GPUs it must be None
        or ``gpus``.
    job_extra_directives : sequence of str, default=()
        More Slurm options, one per ``#SBATCH`` line, without the prefix
        (``["--constraint=a100", "--qos=long"]``).
    python : str, optional
        The Python that runs the workers on the compute nodes, default
        :data:`sys.executable`: the driver's environment, which must exist at
        the same path there (a checkout in a home folder the nodes share).
    local_directory : str, optional
        Each worker's scratch folder, on the node (the cells' weight files
        are written there before they are shipped back), default
        ``"${TMPDIR:-/tmp}"``; the job's shell expands variables in it.
    **kwargs
        Passed to ``SLURMCluster``: ``interface="ib0"`` (the network the
        scheduler and workers talk on, where the login node has several),
        ``job_name``, ``log_directory``, ``job_directives_skip``,
        ``scheduler_options={"dashboard_address": ":8787"}``, ``security``;
        ``worker_extra_args`` and ``job_script_prologue`` are added after
        this function's. ``job_cpu``, ``job_mem`` and ``nanny`` are set here
        and refused.

    Returns
    -------
    dask_jobqueue.SLURMCluster
        With no worker yet. Close it (``cluster.close()``, or use it in a
        ``with`` block) to cancel its jobs and stop the scheduler.

    Raises
    ------
    ImportError
        When dask-jobqueue is not installed.
    TypeError or ValueError
        A parameter of the wrong type or out of range, named.

    Examples
    --------
    Nothing is submitted until ``scale``; the job script can be read first:

    >>> from lib.clusters import slurm_cluster
    >>> cluster = slurm_cluster(cores=8, memory="32GB", walltime="04:00:00", gpus=2,
    ...                         queue="gpu", scheduler_options={"dashboard_address": ":0"})
    >>> script = cluster.job_script()
    >>> for line in script.splitlines():
    ...     if line.startswith(("#SBATCH -p", "#SBATCH --cpus", "#SBATCH --mem", "#SBATCH -t",
    ...                         "#SBATCH --gres")):
    ...         print(line)
    #SBATCH -p gpu
    #SBATCH --cpus-per-task=8
    #SBATCH --mem=30G
    #SBATCH -t 04:00:00
    #SBATCH --gres=gpu:2
    >>> "--nthreads 1" in script and "--nworkers 2" in script and "--resources GPU=1" in script
    True
    >>> cluster.scale(jobs=4)  # doctest: +SKIP
    >>> cluster.close()
    """
    cores = check_int(cores, name="cores", caller=CALLER, low=1)
    size = _check_memory(memory)
    walltime = _check_walltime(walltime)
    gpus = check_int(gpus, name="gpus", caller=CALLER, low=0)
    if gpus > cores:
        raise ValueError(f"{_prefix('gpus')} must be an int in [0, cores] = [0, {cores}]: each "
                         f"GPU has a worker process of its own, which needs a core. Got {gpus} "
                         f"instead.")
    queue = _check_word(queue, "queue", optional=True)
    account = _check_word(account, "account", optional=True)
    if gpus:
        if processes is not None and (isinstance(processes, bool) or processes != gpus):
            raise ValueError(f"{_prefix('processes')} must be None or gpus={gpus} when gpus > 0 "
                             f"(one worker process per GPU). Got {processes!r} instead.")
        processes = gpus
    elif processes is None:
        processes = cores
    else:
        processes = check_int(processes, name="processes", caller=CALLER, low=1, high=cores)
    directives = _check_directives(job_extra_directives)
    python = sys.executable if python is None else _check_word(python, "python", optional=False)
    if local_directory is None:
        local_directory = NODE_TMPDIR
    elif not isinstance(local_directory, (str, os.PathLike)) or not str(local_directory).strip():
        raise (ValueError if isinstance(local_directory, str) else TypeError)(
            f"{_prefix('local_directory')} must be None (the node's $TMPDIR) or a non-empty "
            f"folder path. Got {local_directory!r} instead.")
    refused = sorted(set(kwargs) & set(_REFUSED))
    if refused:
        raise TypeError(f"The {refused[0]!r} parameter of {CALLER} is not accepted: "
                        f"{_REFUSED[refused[0]]}.")

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as error:
        raise ImportError(f"{CALLER} needs dask-jobqueue, which is not installed: run "
                          f"pip install 'manifold-book[cluster]' (or pip install -e "
                          f"'.[cluster]' in the project folder).") from error

    worker_args = []
    if gpus:
        worker_args += ["--resources", "GPU=1"]
    if gpus > 1:
        worker_args += ["--preload", "lib.clusters"]
    worker_args += list(kwargs.pop("worker_extra_args", None) or ())
    prologue = [*PROLOGUE, *(kwargs.pop("job_script_prologue", None) or ())]
    if gpus:
        directives = [f"--gres=gpu:{gpus}", *directives]
    # SLURMCluster's ``cores`` is the threads of all of a job's worker processes: one each.
    # The job still books all ``cores`` (job_cpu).
    return SLURMCluster(cores=processes, processes=processes, job_cpu=cores, memory=size,
                        walltime=walltime, queue=queue, account=account,
                        job_extra_directives=directives, python=shlex.quote(str(python)),
                        local_directory=str(local_directory), worker_extra_args=worker_args,
                        job_script_prologue=prologue, **kwargs)


def dask_setup(worker) -> None:
    """Give each worker process of a job with several GPUs its own GPU (a Dask preload hook).

    :func:`slurm_cluster` starts the workers of a job with ``gpus > 1`` with
    ``--preload lib.clusters``, and Dask calls this function in each worker
    process as it starts, before any task and before torch initialises
    CUDA. The job's worker processes are named ``<name>-0`` to
    ``<name>-<gpus - 1>`` (``dask worker --nworkers``); process ``i`` keeps
    visible only the ``i``-th of the GPUs Slurm gave the job
    (``CUDA_VISIBLE_DEVICES``), so that the device ``cuda`` is another GPU
    in each process instead of the first GPU in all.

    Parameters
    ----------
    worker : distributed.Worker
        The starting worker; only its ``name`` is read.

    Raises
    ------
    RuntimeError
        When the name has no process number, the job has fewer GPUs than
        the number, or torch has already initialised CUDA in this process.
    """
    match = re.fullmatch(r".+-(\d+)", str(worker.name))
    if match is None:
        raise RuntimeError(f"lib.clusters.dask_setup pins a worker process to a GPU by the "
                           f"number at the end of its name (<name>-<i>, from dask worker "
                           f"--nworkers). Got the name {worker.name!r} instead.")
    index = int(match.group(1))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    devices = [d.strip() for d in visible.split(",") if d.strip()] if visible else None
    if devices is not None and index >= len(devices):
        raise RuntimeError(f"Dask worker {worker.name!r} is process {index} of its job, but the "
                           f"job sees only {len(devices)} GPU(s): CUDA_VISIBLE_DEVICES="
                           f"{visible!r}. Ask for as many GPUs as worker processes.")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise RuntimeError(f"Dask worker {worker.name!r} initialised CUDA before "
                           f"lib.clusters.dask_setup could choose its GPU.")
    os.environ["CUDA_VISIBLE_DEVICES"] = devices[index] if devices is not None else str(index)
