"""lib.sweeps: every backend gives the same results, the cache computes each cell once.

The swept function draws numpy normals from ``default_rng(seed)`` and returns
their statistics as rows; the expected results are direct calls of the same
pure computation in this process, after a JSON round trip. Each call of the
swept function creates one file in the folder named by its cell (name: process
id and thread id), so calls made in worker processes are counted too and the
tests can see where each cell ran.
"""

from __future__ import annotations

import functools
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.sweeps import BACKENDS, cached_results, cell_key, run_cells


def _rows(dataset: str, seed: int, size: int) -> list[dict]:
    x = np.random.default_rng(seed).normal(size=size)
    return [{"dataset": dataset, "seed": seed, "size": size, "statistic": name, "value": float(v)}
            for name, v in (("mean", x.mean()), ("std", x.std()), ("max", x.max()))]


def sample_rows(dataset: str, seed: int, size: int, calls: str, fail: bool = False,
                delay: float = 0.0) -> list[dict]:
    """The swept function: records the call in ``calls``, then returns seeded statistics."""
    handle, _ = tempfile.mkstemp(dir=calls, prefix=f"{os.getpid()}-{threading.get_ident()}-")
    os.close(handle)
    time.sleep(delay)
    if fail:
        raise RuntimeError(f"cell {dataset} {seed} fails on purpose")
    return _rows(dataset, seed, size)


def not_json(**cell):
    return {"array": np.zeros(2)}


def make_cells(calls: Path, seeds=range(6), sizes=(10, 50)) -> list[dict]:
    return [{"dataset": "normal", "seed": seed, "size": size, "calls": str(calls)}
            for seed in seeds for size in sizes]


def expected(cells) -> list:
    """What each cell must give: the pure computation here, after a JSON round trip."""
    return [json.loads(json.dumps(_rows(c["dataset"], c["seed"], c["size"]))) for c in cells]


def calls_in(folder: Path) -> list[tuple[int, int]]:
    """(process id, thread id) of every recorded call."""
    return [tuple(int(p) for p in path.name.split("-")[:2]) for path in folder.iterdir()]


def table(results) -> pd.DataFrame:
    return pd.DataFrame([row for rows in results for row in rows])


@pytest.fixture(scope="module")
def thread_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        yield cluster


# --- backends -------------------------------------------------------------------------


@pytest.mark.parametrize("backend, n_jobs", [("sequential", 1), ("threading", 2), ("loky", 2)])
def test_joblib_backends_match_direct_calls(tmp_path, backend, n_jobs):
    cells = make_cells(tmp_path)
    cells[0]["delay"] = 0.3        # finishes last in a pool: the order must not follow arrival
    results = run_cells(sample_rows, cells, backend=backend, n_jobs=n_jobs, progress=False)
    assert results == expected(cells)
    pd.testing.assert_frame_equal(table(results), table(expected(cells)), check_exact=True)
    where = calls_in(tmp_path)
    assert len(where) == len(cells)
    here = (os.getpid(), threading.get_ident())
    if backend == "sequential":
        assert set(where) == {here}
    elif backend == "threading":   # threads of this process, not only the caller's
        assert {pid for pid, _ in where} == {os.getpid()} and set(where) != {here}
    else:                          # worker processes only
        assert os.getpid() not in {pid for pid, _ in where}


def test_dask_threads_matches_joblib(tmp_path, thread_cluster):
    cells = make_cells(tmp_path / "calls")
    cells[0]["delay"] = 0.3
    (tmp_path / "calls").mkdir()
    results = run_cells(sample_rows, cells, backend="dask", scheduler=thread_cluster,
                        progress=False)
    assert results == expected(cells)
    # The Dask workers' threads ran the cells, in this process (processes=False).
    assert {pid for pid, _ in calls_in(tmp_path / "calls")} == {os.getpid()}
    assert threading.get_ident() not in {tid for _, tid in calls_in(tmp_path / "calls")}
    loky = run_cells(sample_rows, cells, backend="loky", n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(table(results), table(loky), check_exact=True)


def test_dask_scheduler_as_address_and_client(tmp_path, thread_cluster):
    from distributed import Client

    cells = make_cells(tmp_path, seeds=range(2))
    by_address = run_cells(sample_rows, cells, backend="dask",
                           scheduler=thread_cluster.scheduler_address, progress=False)
    with Client(thread_cluster, set_as_default=False) as client:
        by_client = run_cells(sample_rows, cells, backend="dask", scheduler=client,
                              progress=False)
        assert client.status == "running"          # a client we passed is not closed
    assert by_address == by_client == expected(cells)


def test_dask_worker_processes_match_sequential(tmp_path):
    distributed = pytest.importorskip("distributed")
    calls = tmp_path / "calls"
    calls.mkdir()
    cells = make_cells(calls, seeds=range(3))
    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=":0") as cluster:
        results = run_cells(sample_rows, cells, backend="dask", scheduler=cluster,
                            cache_dir=tmp_path / "cache", progress=False)
    assert time.perf_counter() - started < 60
    assert results == expected(cells)
    assert os.getpid() not in {pid for pid, _ in calls_in(calls)}
    # Written here, from the results: the sequential backend reads every cell back.
    assert run_cells(sample_rows, cells, cache_dir=tmp_path / "cache", progress=False) == results
    assert len(calls_in(calls)) == len(cells)


def test_dask_without_a_scheduler_starts_a_local_cluster_of_n_jobs_processes(tmp_path):
    pytest.importorskip("distributed")
    calls = tmp_path / "calls"
    calls.mkdir()
    cells = make_cells(calls, seeds=range(4))
    results = run_cells(functools.partial(sample_rows, delay=0.2), cells, backend="dask",
                        n_jobs=2, namespace="delayed", cache_dir=tmp_path / "cache",
                        progress=False)
    assert results == expected(cells)
    processes = {pid for pid, _ in calls_in(calls)}
    assert os.getpid() not in processes and 1 <= len(processes) <= 2


def write_note(name: str, text: str, store: str) -> str:
    """A cell that writes two files in its folder ``store`` and returns where that folder was."""
    (Path(store) / "notes").mkdir(parents=True, exist_ok=True)
    (Path(store) / "notes" / f"{name}.txt").write_text(text)
    (Path(store) / f"{name}.done").write_text("")
    return store


def test_files_written_on_dask_workers_come_back_to_the_callers_folder(tmp_path):
    distributed = pytest.importorskip("distributed")
    store = tmp_path / "store"
    (store / "notes").mkdir(parents=True)
    (store / "notes" / "kept.txt").write_text("already here")
    cells = [{"name": "a", "text": "alpha"}, {"name": "b", "text": "beta"},
             {"name": "kept", "text": "from the worker"}]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        where = run_cells(write_note, cells, backend="dask", scheduler=cluster,
                          folders={"store": store}, progress=False)
    # The workers wrote into folders of their own, not into ours ...
    assert all(Path(folder) != store and not Path(folder).is_relative_to(store)
               for folder in where)
    # ... and their files came back, except where ours already had one.
    assert (store / "notes" / "a.txt").read_text() == "alpha"
    assert (store / "notes" / "b.txt").read_text() == "beta"
    assert (store / "notes" / "kept.txt").read_text() == "already here"
    assert sorted(p.name for p in store.glob("*.done")) == ["a.done", "b.done", "kept.done"]
    # Locally the folder is passed as given.
    assert run_cells(write_note, cells[:1], folders={"store": store}, progress=False) == [
        str(store)]


def test_a_dask_worker_running_other_code_is_refused(tmp_path, dask_scheduler):
    from conftest import PROJECT, start_worker
    from lib.sweeps import WorkerMismatch, worker_environment

    other = tmp_path / "other"
    shutil.copytree(PROJECT / "lib", other / "lib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    with open(other / "lib" / "store.py", "a") as handle:   # lib.sweeps imports it
        handle.write("\n# an edit made on the worker's machine only\n")
    cells = [{"cell": {"seed": seed}} for seed in range(3)]
    with start_worker(dask_scheduler, code=other, folder=tmp_path / "worker"):
        with pytest.raises(WorkerMismatch, match=r"code fingerprint .* on the worker"):
            run_cells(cell_key, cells, backend="dask", scheduler=dask_scheduler,
                      cache_dir=tmp_path / "cache", progress=False, worker_timeout=60)
    assert not any((tmp_path / "cache").rglob("*.json"))       # nothing ran, nothing cached
    with start_worker(dask_scheduler, folder=tmp_path / "same"):
        assert run_cells(cell_key, cells, backend="dask", scheduler=dask_scheduler,
                         progress=False, worker_timeout=60) == [
            cell_key(c["cell"]) for c in cells]
    assert worker_environment("lib.sweeps")["code"] is not None


def test_worker_environment_names_what_differs():
    from lib.sweeps import _differences, worker_environment

    mine = worker_environment("lib.sweeps")
    theirs = {**mine, "packages": {**mine["packages"], "torch": "0.0"}, "code": "0" * 12}
    found = _differences(theirs, mine)
    assert any("torch 0.0 on the worker" in text for text in found)
    assert any("code fingerprint 000000000000 on the worker" in text for text in found)
    assert _differences(mine, mine) == []
    assert worker_environment(None)["code"] is None


# --- cache ----------------------------------------------------------------------------


def test_cache_computes_each_cell_once(tmp_path):
    calls, cache = tmp_path / "calls", tmp_path / "cache"
    calls.mkdir()
    cells = make_cells(calls, seeds=range(4))
    first = run_cells(sample_rows, cells, cache_dir=cache, progress=False)
    assert len(calls_in(calls)) == len(cells)
    second = run_cells(sample_rows, cells, cache_dir=cache, backend="threading", n_jobs=2,
                       progress=False)
    assert len(calls_in(calls)) == len(cells)                 # nothing recomputed
    more = cells[:3] + [{**cells[0], "seed": 99}] + cells[3:]
    third = run_cells(sample_rows, more, cache_dir=cache, progress=False)
    assert len(calls_in(calls)) == len(cells) + 1             # exactly the new cell
    assert first == second == expected(cells)
    assert third == expected(more)


def test_cache_files_hold_cell_and_result(tmp_path):
    cells = make_cells(tmp_path, seeds=range(2))
    results = run_cells(sample_rows, cells, cache_dir=tmp_path / "cache", progress=False)
    folder = tmp_path / "cache" / f"{sample_rows.__module__}.sample_rows"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{cell_key(c)}.json" for c in cells)
    for cell, result in zip(cells, results):
        stored = json.loads((folder / f"{cell_key(cell)}.json").read_text())
        assert stored == {"cell": cell, "result": result}
    assert cached_results(sample_rows, cells, tmp_path / "cache") == dict(enumerate(results))
    assert cached_results(f"{sample_rows.__module__}.sample_rows", cells[::-1],
                          tmp_path / "cache") == dict(enumerate(results[::-1]))


def test_cell_key_is_sha256_of_sorted_json():
    import hashlib

    cell = {"seed": 3, "dataset": "sphere", "fraction": 0.1}
    text = '{"dataset": "sphere", "fraction": 0.1, "seed": 3}'
    assert cell_key(cell) == hashlib.sha256(text.encode()).hexdigest()[:24]


def test_namespace_separates_caches(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    cells = make_cells(calls, seeds=range(2))
    run_cells(sample_rows, cells, cache_dir=tmp_path / "cache", namespace="a", progress=False)
    run_cells(sample_rows, cells, cache_dir=tmp_path / "cache", namespace="b", progress=False)
    assert len(calls_in(calls)) == 2 * len(cells)
    assert cached_results("a", cells, tmp_path / "cache") == cached_results("b", cells,
                                                                             tmp_path / "cache")
    assert cached_results(sample_rows, cells, tmp_path / "cache") == {}


@pytest.mark.parametrize("backend, n_jobs", [("sequential", 1), ("loky", 2)])
def test_failing_cell_keeps_finished_cells_and_no_temporary(tmp_path, backend, n_jobs):
    calls, cache = tmp_path / "calls", tmp_path / "cache"
    calls.mkdir()
    cells = make_cells(calls, seeds=range(4), sizes=(10,))
    cells[2] = {**cells[2], "fail": True}
    with pytest.raises(RuntimeError, match="fails on purpose") as error:
        run_cells(sample_rows, cells, cache_dir=cache, backend=backend, n_jobs=n_jobs,
                  progress=False)
    assert any("cell 2" in note for note in getattr(error.value, "__notes__", []))
    folder = cache / f"{sample_rows.__module__}.sample_rows"
    assert list(folder.glob("*.tmp")) == list(folder.glob(".*")) == []
    cached = cached_results(sample_rows, cells, cache)
    assert 2 not in cached
    assert all(cached[i] == expected([cells[i]])[0] for i in cached)
    if backend == "sequential":                                 # cells run in order
        assert sorted(cached) == [0, 1]
    # The rerun computes only what is missing; the failing cell fails again.
    before = len(calls_in(calls))
    ok = cells[:2] + cells[3:]
    assert run_cells(sample_rows, ok, cache_dir=cache, progress=False) == expected(ok)
    assert len(calls_in(calls)) - before == len(ok) - len(cached)


def test_failed_write_leaves_no_temporary(tmp_path, monkeypatch):
    import lib.sweeps

    def full_disk(handle):
        raise OSError("no space left on device")

    monkeypatch.setattr(lib.sweeps.os, "fsync", full_disk)
    with pytest.raises(OSError, match="no space left"):
        run_cells(sample_rows, make_cells(tmp_path, seeds=range(1)), cache_dir=tmp_path / "cache",
                  namespace="n", progress=False)
    assert list((tmp_path / "cache" / "n").iterdir()) == []


def test_progress_bar_starts_at_cached_count(tmp_path, monkeypatch):
    from lib import sweeps

    bars = []

    class Recorder:
        def __init__(self, **kwargs):
            self.kwargs, self.updates = kwargs, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            self.updates += n

    monkeypatch.setattr(sweeps, "progress_bar", Recorder)
    cells = make_cells(tmp_path, seeds=range(3))
    run_cells(sample_rows, cells[:2], cache_dir=tmp_path / "cache", progress=False)
    run_cells(sample_rows, cells, cache_dir=tmp_path / "cache", description="sweep")
    assert bars[0].kwargs == {"total": 2, "initial": 0, "desc": None, "show": False}
    # None: a bar only where stderr is a terminal, or relayed by the chapter runner.
    assert bars[1].kwargs == {"total": 6, "initial": 2, "desc": "sweep", "show": None}
    assert [bar.updates for bar in bars] == [2, 4]


# --- errors ---------------------------------------------------------------------------


def test_backends_constant():
    assert BACKENDS == ("sequential", "loky", "threading", "dask")


@pytest.mark.parametrize("kwargs, parameter", [
    ({"backend": "spark"}, "backend"),
    ({"backend": "loky", "n_jobs": 0}, "n_jobs"),
    ({"backend": "loky", "n_jobs": -2}, "n_jobs"),
    ({"backend": "loky", "n_jobs": 1.5}, "n_jobs"),
    ({"backend": "sequential", "n_jobs": 2}, "n_jobs"),
    ({"backend": "dask", "n_jobs": 2, "scheduler": "tcp://127.0.0.1:1"}, "n_jobs"),
    ({"backend": "dask", "n_jobs": -1}, "n_jobs"),
    ({"folders": {"seed": "x"}}, "folders"),
    ({"folders": {"models_dir": 3}}, "folders"),
    ({"gpu": 1}, "gpu"),
    ({"worker_timeout": 0}, "worker_timeout"),
    ({"backend": "dask", "scheduler": 42}, "scheduler"),
    ({"backend": "loky", "scheduler": "tcp://127.0.0.1:8786"}, "scheduler"),
    ({"namespace": "a"}, "namespace"),
    ({"cache_dir": "x", "namespace": "a/b"}, "namespace"),
    ({"cache_dir": "x", "namespace": ".."}, "namespace"),
    ({"cache_dir": 3}, "cache_dir"),
    ({"description": 3}, "description"),
])
def test_bad_options_name_the_parameter(tmp_path, kwargs, parameter):
    if "cache_dir" in kwargs and kwargs["cache_dir"] == "x":
        kwargs = {**kwargs, "cache_dir": tmp_path}
    with pytest.raises((TypeError, ValueError), match=f"'{parameter}' parameter of run_cells"):
        run_cells(sample_rows, make_cells(tmp_path, seeds=range(1)), progress=False, **kwargs)
    assert calls_in(tmp_path) == []                     # nothing ran


@pytest.mark.parametrize("cells", [
    {"seed": 0},                                        # a dict, not a sequence of dicts
    "seed",
    (c for c in [{"seed": 0}]),
    [{"seed": 0}, 3],
    [{0: 1}],
    [{"seed": object()}],
    [{"seed": 0, "dim": 2}, {"dim": 2, "seed": 0}],     # duplicates, keys reordered
])
def test_bad_cells_name_the_parameter(cells):
    with pytest.raises((TypeError, ValueError), match="'cells' parameter of run_cells"):
        run_cells(_rows, cells, progress=False)
    with pytest.raises((TypeError, ValueError), match="'cells' parameter of cached_results"):
        cached_results("a", cells, ".")


def test_bad_functions_name_the_parameter(tmp_path):
    with pytest.raises(TypeError, match="'function' parameter of run_cells must be callable"):
        run_cells("sample_rows", [], progress=False)
    with pytest.raises(TypeError, match=r"'function' parameter of run_cells must return a "
                                        r"JSON-serialisable.*cell 0 \{'seed': 0\}"):
        run_cells(not_json, [{"seed": 0}], cache_dir=tmp_path, progress=False)
    assert list(tmp_path.rglob("*.json")) == list(tmp_path.rglob("*.tmp")) == []
    with pytest.raises(ValueError, match="'namespace' parameter of run_cells"):
        run_cells(lambda seed: seed, [{"seed": 0}], cache_dir=tmp_path, progress=False)
    with pytest.raises(TypeError, match="'function_or_namespace' parameter of cached_results"):
        cached_results(3, [], tmp_path)


def test_edited_cache_file_is_an_error(tmp_path):
    cells = make_cells(tmp_path, seeds=range(2))
    run_cells(sample_rows, cells, cache_dir=tmp_path / "cache", namespace="n", progress=False)
    path = tmp_path / "cache" / "n" / f"{cell_key(cells[1])}.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "cell": {**cells[1], "seed": 7}}))
    with pytest.raises(ValueError, match="not the requested cell"):
        run_cells(sample_rows, cells, cache_dir=tmp_path / "cache", namespace="n",
                  progress=False)
    path.write_text('{"cell": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        cached_results("n", cells, tmp_path / "cache")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_goes_to_a_terminal_never_to_a_page(tmp_path, monkeypatch):
    """A kernel's stderr is not a terminal: its bar would print into the chapter's page."""
    cells = make_cells(tmp_path)
    for stream, shown in ((io.StringIO(), False), (_Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        run_cells(sample_rows, cells, progress=True, description="demo cells")
        assert ("demo cells" in stream.getvalue()) is shown


def test_a_gpu_cell_asks_dask_for_a_gpu_and_checks_cuda_on_its_worker(tmp_path):
    """Cells with gpu=True need the resource 'GPU' (a local cluster declares one per worker)
    and torch's CUDA on the worker that runs them; here there is none, so the worker refuses
    before computing anything."""
    pytest.importorskip("distributed")
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal cannot be shown")
    calls = tmp_path / "calls"
    calls.mkdir()
    with pytest.raises(RuntimeError, match="needs a CUDA GPU .* but torch sees none there"):
        run_cells(sample_rows, make_cells(calls, seeds=range(1)), backend="dask", gpu=True,
                  progress=False)
    assert calls_in(calls) == []


def torch_threads(seed: int) -> int:
    """A cell that reports how many intra-op threads torch gives it."""
    import torch

    return torch.get_num_threads()


@pytest.mark.parametrize("backend, n_jobs", [("sequential", 1), ("loky", 2)])
def test_every_cell_runs_on_one_torch_thread_and_the_callers_count_comes_back(backend, n_jobs):
    """Two threads sum a float reduction in another order than one: a cell computed here
    must be the bits a one-thread worker computes, so every backend gives cells one thread."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = run_cells(torch_threads, [{"seed": 0}, {"seed": 1}], backend=backend,
                         n_jobs=n_jobs, progress=False)
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
