"""Parameter sweeps: one function over many cells, each cell's result cached on disk.

A *cell* is a small dict of JSON values, the parameters of one unit of work
(``{"dataset": "sphere", "dim": 2, "fraction": 0.1, "seed": 0}``), and a sweep
calls ``function(**cell)`` for every cell. :func:`run_cells` runs the cells
in this process, in joblib's process or thread pools, or on a Dask cluster
(local, at a scheduler address, or dask-jobqueue's Slurm cluster); the
backend is a parameter, the answer is not: results come back in the order of
the cells, the same whatever ran them. On Dask, every worker's code and
package versions are checked against this process's before a cell runs
there, and results and the files cells write come back to this process, so
the workers share no filesystem with it.

Cache layout, when a ``cache_dir`` is given::

    cache_dir/<namespace>/<cell_key(cell)>.json    {"cell": cell, "result": result}

The key is the first 24 hex digits of the SHA-256 of
``json.dumps(cell, sort_keys=True)`` (:func:`cell_key`). A cached cell is read,
never recomputed, so a rerun with one new cell computes one cell. The
namespace defaults to ``"<module>.<qualname>"`` of the function; the cache
does not see the function's code or the data it reads, so a caller whose
results depend on more than the cell (a configuration, a code version) puts
a hash of that into the namespace.

Every result goes through JSON before it is returned (tuples come back as
lists), so a result read from the cache and one just computed are equal.
Files are written by this process only, as each cell finishes (joblib's
``return_as="generator_unordered"``; the returned list is put back in the
order of the cells), through a temporary file in the same folder and
:func:`os.replace`: an interrupted sweep keeps the cells it finished and
leaves no partial file (:func:`lib.store.write_atomic`). NaN and
infinities are written as Python's :mod:`json` writes them (``NaN``,
``Infinity``), which it reads back.
"""

from __future__ import annotations

import functools
import json
import os
import platform
from collections.abc import Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

from lib._checks import check_in, check_int, check_real
from lib._progress import progress_bar
from lib._threads import set_torch_threads, torch_threads
from lib.params import Address, Choice, Integer, shown
from lib.store import canonical_json, code_fingerprint, digest, write_atomic

__all__ = ["BACKENDS", "CHECKED_PACKAGES", "WorkerMismatch", "cached_count", "cached_results",
           "cell_key",
           "check_execution", "execution_options", "execution_parameters", "run_cells",
           "worker_environment"]

BACKENDS = ("sequential", "loky", "threading", "dask")


def _key(text: str) -> str:
    return digest(text, length=24)


def cell_key(cell: dict) -> str:
    """File name (without ``.json``) of a cell's cached result.

    Parameters
    ----------
    cell : dict of str to JSON values
        Parameters of one cell of a sweep.

    Returns
    -------
    key : str
        The first 24 hex digits of ``sha256(json.dumps(cell, sort_keys=True))``,
        so the order of the keys does not matter.

    Examples
    --------
    >>> cell_key({"seed": 0, "dim": 2}) == cell_key({"dim": 2, "seed": 0})
    True
    >>> len(cell_key({"dim": 2}))
    24
    """
    return _key(_check_cells([cell], caller="cell_key")[0])


def _check_cells(cells, *, caller: str) -> list[str]:
    """Return the canonical JSON text of every cell, after checking they are distinct dicts."""
    if isinstance(cells, (str, bytes)) or not isinstance(cells, Sequence):
        raise TypeError(f"The 'cells' parameter of {caller} must be a sequence (list or tuple) "
                        f"of dicts. Got {type(cells).__name__} instead.")
    texts, seen, keys = [], {}, {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, Mapping) or not all(isinstance(k, str) for k in cell):
            raise TypeError(f"The 'cells' parameter of {caller} must hold dicts with str keys "
                            f"(the keyword arguments of one call). Got {cell!r} at index "
                            f"{index} instead.")
        try:
            text = canonical_json(dict(cell))
        except (TypeError, ValueError) as error:
            raise TypeError(f"The 'cells' parameter of {caller} must hold JSON-serialisable "
                            f"values (str, int, float, bool, None, lists, dicts). Got {cell!r} "
                            f"at index {index} instead ({error}).") from None
        if text in seen:
            raise ValueError(f"The 'cells' parameter of {caller} must hold distinct cells. "
                             f"Got {cell!r} at indices {seen[text]} and {index} instead.")
        key = _key(text)
        if key in keys:                                   # 96-bit collision: never seen
            raise ValueError(f"The 'cells' parameter of {caller} holds two cells with the same "
                             f"key {key}: indices {keys[key]} and {index}.")
        seen[text], keys[key] = index, index
        texts.append(text)
    return texts


def _namespace(function, namespace, *, caller: str) -> str:
    if namespace is None:
        module = getattr(function, "__module__", None)
        qualname = getattr(function, "__qualname__", None)
        if module is None or qualname is None or "<lambda>" in qualname:
            raise ValueError(f"The 'namespace' parameter of {caller} must be given when the "
                             f"function has no unique '<module>.<qualname>' name (a lambda or a "
                             f"functools.partial). Got None for {function!r} instead.")
        namespace = f"{module}.{qualname}"
    if (not isinstance(namespace, str) or namespace in ("", ".", "..")
            or any(c in namespace for c in ("/", "\\", "\0", os.sep))):
        raise ValueError(f"The 'namespace' parameter of {caller} must be a non-empty folder "
                         f"name (no '/' or '\\\\', not '.' or '..'). Got {namespace!r} instead.")
    return namespace


def _folder(cache_dir, *, caller: str) -> Path:
    if not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"The 'cache_dir' parameter of {caller} must be a str or os.PathLike "
                        f"folder. Got {cache_dir!r} instead.")
    return Path(cache_dir)


def _read(path: Path, text: str, *, caller: str):
    """The cached result at ``path``, after checking the file holds the cell ``text``."""
    try:
        stored = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"The cache file {path} read by {caller} is not valid JSON ({error}); "
                         f"delete it to recompute the cell.") from None
    if not isinstance(stored, dict) or set(stored) != {"cell", "result"}:
        raise ValueError(f"The cache file {path} read by {caller} must hold a JSON object with "
                         f"the keys 'cell' and 'result'; delete it to recompute the cell.")
    if canonical_json(stored["cell"]) != text:
        raise ValueError(f"The cache file {path} read by {caller} holds the cell "
                         f"{canonical_json(stored['cell'])}, not the requested cell {text} (a hash "
                         f"collision or an edited file); delete it to recompute the cell.")
    return stored["result"]


def cached_results(function_or_namespace, cells, cache_dir) -> dict:
    """Results of the cells already cached by :func:`run_cells`, by index.

    Parameters
    ----------
    function_or_namespace : callable or str
        The swept function (its namespace is ``"<module>.<qualname>"``), or
        the namespace passed to :func:`run_cells`.
    cells : sequence of dict, length N
        Distinct cells, as for :func:`run_cells`.
    cache_dir : str or os.PathLike
        The cache folder given to :func:`run_cells`.

    Returns
    -------
    results : dict of int to result
        ``{i: result of cells[i]}`` for every cached cell; missing cells are absent.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> cells = [{"number": 2.71828, "ndigits": 2}, {"number": 3.14159, "ndigits": 3}]
    >>> _ = run_cells(round, cells[:1], cache_dir=folder, progress=False)
    >>> cached_results(round, cells, folder)
    {0: 2.72}
    """
    caller = "cached_results"
    texts = _check_cells(cells, caller=caller)
    folder = _cache_namespace(function_or_namespace, cache_dir, caller=caller)
    results = {}
    for index, text in enumerate(texts):
        path = folder / f"{_key(text)}.json"
        if path.exists():
            results[index] = _read(path, text, caller=caller)
    return results


def cached_count(function_or_namespace, cells, cache_dir) -> int:
    """How many of ``cells`` :func:`run_cells` has cached, by their files' existence alone.

    As :func:`cached_results`, without reading the files: what a dry run
    (:mod:`lib.plans`) needs to know, in microseconds per cell.

    Examples
    --------
    >>> import tempfile
    >>> cache = tempfile.mkdtemp()
    >>> cells = [{"base": 4, "exp": 2}, {"base": 9, "exp": 3}, {"base": 2, "exp": 5}]
    >>> _ = run_cells(pow, cells[:2], cache_dir=cache, namespace="powers", progress=False)
    >>> cached_count("powers", cells, cache), len(cells)
    (2, 3)
    """
    folder = _cache_namespace(function_or_namespace, cache_dir, caller="cached_count")
    return sum((folder / f"{_key(text)}.json").exists()
               for text in _check_cells(cells, caller="cached_count"))


def _cache_namespace(function_or_namespace, cache_dir, *, caller: str) -> Path:
    if isinstance(function_or_namespace, str):
        namespace = _namespace(None, function_or_namespace, caller=caller)
    elif callable(function_or_namespace):
        namespace = _namespace(function_or_namespace, None, caller=caller)
    else:
        raise TypeError(f"The 'function_or_namespace' parameter of {caller} must be a callable "
                        f"or a str. Got {function_or_namespace!r} instead.")
    return _folder(cache_dir, caller=caller) / namespace


# Cells run on one torch thread wherever they run (lib._threads): a float reduction split
# over two threads sums in another order than over one, so a network trained in this
# process would otherwise differ in its last bits from the same network trained on a
# one-thread worker. A module that defines a cell using torch has imported it by the time
# the cell runs.

def _evaluate(function, index: int, cell: dict, folders: Mapping) -> tuple[int, str]:
    """Run one cell where the backend puts it; return its index and its result as JSON text."""
    set_torch_threads(1)    # a worker process runs cells only; in this process, see run_cells
    try:
        result = function(**cell, **folders)
    except Exception as error:
        error.add_note(f"(raised by cell {index} of run_cells: {cell!r})")
        raise
    try:
        return index, json.dumps(result)
    except (TypeError, ValueError) as error:
        raise TypeError(f"The 'function' parameter of run_cells must return a JSON-serialisable "
                        f"result (str, int, float, bool, None, lists, dicts with str keys). Got "
                        f"{type(result).__name__} for cell {index} {cell!r} instead "
                        f"({error}).") from None


# --- Dask: one environment on every worker, files shipped back, GPUs as resources ---------

#: Distributions whose versions must agree between the client and every Dask worker.
CHECKED_PACKAGES = ("manifold-book", "numpy", "scipy", "pandas", "scikit-learn", "torch",
                    "joblib", "dask", "distributed")


def _function_module(function) -> str | None:
    while isinstance(function, functools.partial):
        function = function.func
    return getattr(function, "__module__", None)


@functools.cache
def worker_environment(module: str | None) -> dict:
    """What a cell's result depends on besides its parameters, as seen by this process.

    Parameters
    ----------
    module : str or None
        The swept function's module; for a module of ``lib``, its code
        fingerprint (:func:`lib.store.code_fingerprint`: its source and that
        of every ``lib`` module it imports) is part of the environment.

    Returns
    -------
    dict
        ``{"python": "3.x.y", "packages": {name: version or None},
        "code": fingerprint or None}``. :func:`run_cells` with the 'dask'
        backend compares every worker's environment with the client's before
        any cell runs there.
    """
    import importlib.metadata

    versions = {}
    for name in CHECKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    code = None
    if module is not None and (module == "lib" or module.startswith("lib.")):
        code = code_fingerprint(module)
    return {"python": platform.python_version(), "packages": versions, "code": code}


def _differences(worker: dict, client: dict) -> list[str]:
    found = []
    if worker["code"] != client["code"]:
        found.append(f"code fingerprint {worker['code']} on the worker, {client['code']} here "
                     f"(the lib sources the swept function reaches differ)")
    if worker["python"] != client["python"]:
        found.append(f"Python {worker['python']} on the worker, {client['python']} here")
    for name, version in client["packages"].items():
        theirs = worker["packages"].get(name)
        if theirs != version:
            found.append(f"{name} {theirs} on the worker, {version} here")
    return found


class WorkerMismatch(RuntimeError):
    """A Dask worker runs other code or other package versions than the client."""


def _mismatch(address: str, differences: list[str]) -> WorkerMismatch:
    return WorkerMismatch(
        f"Dask worker {address} cannot run these cells: " + "; ".join(differences) + ". Its "
        f"results could differ from this machine's and would be cached under this machine's "
        f"code fingerprint. Install the same checkout of the library (and the same package "
        f"versions) on every worker, then restart the workers.")


def _check_workers(client, module: str | None, *, timeout: float) -> None:
    """Refuse the cluster unless every worker's :func:`worker_environment` equals this one's."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise TimeoutError(f"No Dask worker joined the scheduler {client.scheduler.address} "
                           f"within {timeout:g} s; start workers (or check the address) and "
                           f"run again.") from None
    mine = worker_environment(module)
    for address, theirs in sorted(client.run(worker_environment, module).items()):
        differences = _differences(theirs, mine)
        if differences:
            raise _mismatch(address, differences)


def _listing(folder: Path) -> dict:
    if not folder.is_dir():
        return {}
    return {path.relative_to(folder).as_posix(): (path.stat().st_mtime_ns, path.stat().st_size)
            for path in folder.rglob("*") if path.is_file()}


def _evaluate_on_worker(function, index, cell, folder_names, expected, gpu):
    """:func:`_evaluate` on a Dask worker, in worker-local folders; return the files written too.

    Checks the worker's environment first (a worker that joined after the
    client's check is refused here), and CUDA where the cell needs a GPU.
    Returns ``(index, result_text, files)`` with ``files`` a list of
    ``(keyword, relative path, bytes)`` in the order they were last written.
    """
    from distributed import get_worker

    worker = get_worker()
    differences = _differences(worker_environment(expected["module"]), expected["environment"])
    if differences:
        raise _mismatch(worker.address, differences)
    if gpu:
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError(f"Dask worker {worker.address} was given a cell that needs a "
                               f"CUDA GPU (it declares the resource 'GPU'), but torch sees "
                               f"none there.")
    base = Path(worker.local_directory) / "run_cells-folders"
    folders = {name: base / name for name in folder_names}
    before = {name: _listing(path) for name, path in folders.items()}
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)
    index, text = _evaluate(function, index, cell, {k: str(v) for k, v in folders.items()})
    written = []
    for name, path in folders.items():
        for relative, stamp in _listing(path).items():
            if before[name].get(relative) != stamp:
                written.append((stamp[0], name, relative, (path / relative).read_bytes()))
    return index, text, [(name, relative, data) for _, name, relative, data in sorted(written)]


def _receive(files, folders: Mapping) -> None:
    """Write files a worker shipped into this machine's folders, those not already there."""
    for name, relative, data in files:
        target = Path(folders[name]) / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, lambda f, data=data: f.write(data))


@contextmanager
def _dask_client(scheduler, n_jobs: int, gpu: bool):
    """A distributed Client for ``scheduler``, or for a local cluster of ``n_jobs`` processes."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is None:
        resources = {"GPU": 1} if gpu else None
        with LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True,
                          dashboard_address=":0", resources=resources) as cluster, \
                Client(cluster, set_as_default=False) as client:
            yield client
        return
    with Client(scheduler, set_as_default=False) as client:
        yield client


def _outputs(function, todo, cells, *, backend, n_jobs, scheduler, folders, gpu,
             worker_timeout):
    """Yield ``(index, result_text)`` for each index in ``todo`` as its cell finishes."""
    if not todo:
        return
    if backend == "sequential":
        for index in todo:
            yield _evaluate(function, index, cells[index], folders)
        return
    if backend in ("loky", "threading"):
        import joblib

        tasks = (joblib.delayed(_evaluate)(function, index, cells[index], folders)
                 for index in todo)
        parallel = joblib.Parallel(n_jobs=n_jobs, backend=backend,
                                   return_as="generator_unordered")
        with closing(parallel(tasks)) as outputs:
            yield from outputs
        return
    from distributed import as_completed

    module = _function_module(function)
    with _dask_client(scheduler, n_jobs, gpu) as client:
        _check_workers(client, module, timeout=worker_timeout)
        expected = {"module": module, "environment": worker_environment(module)}
        [remote] = client.scatter([function], broadcast=True)
        futures = [client.submit(_evaluate_on_worker, remote, index, cells[index],
                                 tuple(folders), expected, gpu, pure=False,
                                 resources={"GPU": 1} if gpu else None)
                   for index in todo]
        try:
            for future in as_completed(futures, loop=client.loop):
                index, text, files = future.result()
                _receive(files, folders)
                yield index, text
        finally:
            client.cancel(futures)


def _check_scheduler(scheduler, backend: str, *, caller: str) -> None:
    """``scheduler`` must be None, an address, a Client or a Cluster with 'dask', None otherwise."""
    if backend != "dask":
        if scheduler is not None:
            raise ValueError(f"The 'scheduler' parameter of {caller} must be None with "
                             f"backend={backend!r} (it is for backend='dask'). Got "
                             f"{scheduler!r} instead.")
        return
    if scheduler is None:
        return
    from distributed import Client
    from distributed.deploy import Cluster

    if not isinstance(scheduler, (str, Client, Cluster)):
        raise TypeError(f"The 'scheduler' parameter of {caller} must be None (a local cluster), "
                        f"a scheduler address ('tcp://host:port'), a distributed.Client or a "
                        f"Cluster (e.g. LocalCluster, SLURMCluster) with backend='dask'. Got "
                        f"{scheduler!r} instead.")


def _check_folders(folders, cells, *, caller: str) -> dict:
    if folders is None:
        return {}
    if not isinstance(folders, Mapping) or not all(
            isinstance(k, str) and k.isidentifier() and isinstance(v, (str, os.PathLike))
            for k, v in folders.items()):
        raise TypeError(f"The 'folders' parameter of {caller} must map keyword names to "
                        f"folders (str or os.PathLike). Got {folders!r} instead.")
    for cell in cells:
        clash = sorted(set(folders) & set(cell))
        if clash:
            raise ValueError(f"The 'folders' parameter of {caller} names {clash[0]!r}, which is "
                             f"also a key of the cell {cell!r}; a folder is not part of a cell.")
    return {name: str(path) for name, path in folders.items()}


def run_cells(function, cells, *, cache_dir=None, namespace: str | None = None,
              backend: str = "sequential", n_jobs: int = 1, scheduler=None,
              folders: Mapping | None = None, gpu: bool = False, worker_timeout: float = 60.0,
              progress: bool = True, description: str | None = None) -> list:
    """Call ``function(**cell)`` for every cell, on a chosen backend, with results cached per cell.

    Cached cells are read, never recomputed; only the missing cells go to
    the backend, and each is written to the cache as soon as it finishes, so
    an interrupted sweep keeps its finished cells. Every cell runs with one
    torch thread, in this process (restored after) as on workers, so that a
    result is the same bits whatever backend computed it. Results (and the files of
    ``folders``) always come back to this process, which alone writes the
    cache: Dask workers need no filesystem shared with it.

    Parameters
    ----------
    function : callable
        ``function(**cell, **folders)`` returns a JSON-serialisable result
        (typically a list of dict rows). For 'loky' and 'dask' it is sent to
        other processes by reference, so it must be importable: defined at
        the top level of a module that the workers can import (not in
        ``__main__``, a notebook or a closure); a ``functools.partial`` of
        one is fine. On a remote Dask cluster, ``lib`` and that module must
        be installed on the workers.
    cells : sequence of dict, length N
        Distinct cells, each a dict of str to JSON-serialisable values.
    cache_dir : str or os.PathLike, optional
        Cache folder; results go to ``cache_dir/<namespace>/<cell_key(cell)>.json``.
        None computes every cell and caches nothing.
    namespace : str, optional
        Sub-folder of ``cache_dir``, default ``"<module>.<qualname>"`` of
        ``function``; encode in it whatever else determines the results
        (e.g. a configuration hash). Only with ``cache_dir``.
    backend : {'sequential', 'loky', 'threading', 'dask'}, default='sequential'
        'sequential': a loop in this process. 'loky' (processes) and
        'threading': ``joblib.Parallel(n_jobs)``. 'dask': the cluster given by
        ``scheduler``, or a local cluster of ``n_jobs`` worker processes.
    n_jobs : int, default=1
        Cells at once for 'loky' and 'threading' (>= 1, or -1 for every
        core), and worker processes of the local cluster of 'dask' without a
        scheduler. Must stay 1 for 'sequential', and for 'dask' with a
        scheduler, whose workers set how many cells run at once.
    scheduler : str, distributed.Client or distributed Cluster, optional
        Only with 'dask': a scheduler address ``"tcp://host:port"`` or a
        Cluster (``LocalCluster``, dask-jobqueue's ``SLURMCluster``; a client
        is opened and closed here), or a ``Client`` (used, not closed). None
        starts a local cluster for the call.
    folders : dict of str to folder, optional
        Keyword arguments passed to ``function`` besides the cell: folders it
        may read and write files in (a weight cache), not part of the cell's
        key. Locally they are passed as given. On Dask each worker gets
        folders of its own, and the files a cell writes there come back with
        its result and are written into these folders (where not already
        there), in the order the worker wrote them.
    gpu : bool, default=False
        Whether every cell needs a CUDA GPU. With 'dask', each cell asks the
        scheduler for the resource ``GPU`` (start workers with
        ``--resources GPU=1``; a local cluster gets it) and checks CUDA on
        its worker; elsewhere, the caller checks this machine.
    worker_timeout : float, default=60
        Seconds to wait for a first Dask worker to join.
    progress : bool, default=True
        Show one tqdm bar over all cells, starting at the cached count, where
        stderr is a terminal (not in a notebook's output, which the page shows).
    description : str, optional
        Label of the bar.

    Returns
    -------
    results : list, length N
        ``results[i]`` is ``function(**cells[i])`` after a JSON round trip
        (tuples become lists); the same for every backend and for cached cells.

    Raises
    ------
    WorkerMismatch
        With 'dask', before any cell runs on it, when a worker's code
        fingerprint (that of the function's module), Python or a package of
        :data:`CHECKED_PACKAGES` differs from this process's
        (:func:`worker_environment`).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> cells = [{"number": 2.71828, "ndigits": 2}, {"number": 3.14159, "ndigits": 3}]
    >>> run_cells(round, cells, cache_dir=folder, namespace="round-v1", progress=False)
    [2.72, 3.142]
    >>> sorted(p.name for p in (Path(folder) / "round-v1").iterdir()) == sorted(
    ...     f"{cell_key(cell)}.json" for cell in cells)
    True
    """
    caller = "run_cells"
    if not callable(function):
        raise TypeError(f"The 'function' parameter of {caller} must be callable. "
                        f"Got {function!r} instead.")
    texts = _check_cells(cells, caller=caller)
    check_in(backend, BACKENDS, name="backend", caller=caller)
    n_jobs = check_int(n_jobs, name="n_jobs", caller=caller, low=-1)
    if n_jobs == 0 or (backend == "dask" and n_jobs < 1):
        raise ValueError(f"The 'n_jobs' parameter of {caller} must be an int in [1, inf)"
                         f"{'' if backend == 'dask' else ' or -1 (every core)'}. "
                         f"Got {n_jobs} instead.")
    if n_jobs != 1 and (backend == "sequential" or (backend == "dask" and scheduler is not None)):
        where = ("runs one cell at a time" if backend == "sequential" else
                 "with a scheduler runs as many cells at once as the cluster has worker threads")
        raise ValueError(f"The 'n_jobs' parameter of {caller} must be 1 with "
                         f"backend={backend!r}, which {where}. Got {n_jobs} instead.")
    _check_scheduler(scheduler, backend, caller=caller)
    folders = _check_folders(folders, cells, caller=caller)
    if not isinstance(gpu, bool):
        raise TypeError(f"The 'gpu' parameter of {caller} must be a bool. Got {gpu!r} instead.")
    worker_timeout = check_real(worker_timeout, name="worker_timeout", caller=caller, low=0.0,
                                low_open=True)
    if cache_dir is None and namespace is not None:
        raise ValueError(f"The 'namespace' parameter of {caller} must be None when 'cache_dir' "
                         f"is None (nothing is cached). Got {namespace!r} instead.")
    if description is not None and not isinstance(description, str):
        raise TypeError(f"The 'description' parameter of {caller} must be a str or None. "
                        f"Got {description!r} instead.")

    results: list = [None] * len(texts)
    todo = list(range(len(texts)))
    folder = None
    if cache_dir is not None:
        folder = _folder(cache_dir, caller=caller) / _namespace(function, namespace, caller=caller)
        folder.mkdir(parents=True, exist_ok=True)
        todo = []
        for index, text in enumerate(texts):
            path = folder / f"{_key(text)}.json"
            if path.exists():
                results[index] = _read(path, text, caller=caller)
            else:
                todo.append(index)

    cells = [dict(cell) for cell in cells]
    # show=None: a bar only where stderr is a terminal (or relayed by the chapter runner),
    # never in a notebook's output.
    with progress_bar(total=len(texts), initial=len(texts) - len(todo), desc=description,
                      show=None if progress else False) as bar, torch_threads(1):
        for index, result_text in _outputs(function, todo, cells, backend=backend,
                                           n_jobs=n_jobs, scheduler=scheduler, folders=folders,
                                           gpu=gpu, worker_timeout=worker_timeout):
            if folder is not None:
                entry = f'{{"cell": {texts[index]}, "result": {result_text}}}'.encode()
                write_atomic(folder / f"{_key(texts[index])}.json", lambda f: f.write(entry))
            results[index] = json.loads(result_text)
            bar.update(1)
    return results


# --- the parameters of a chapter whose units run through run_cells ---------------------------

def execution_parameters(*, n_jobs: int = 1, backend: str = "sequential") -> tuple:
    """The ``backend``, ``n_jobs`` and ``scheduler`` parameters of a chapter, with defaults.

    Every chapter whose units go through :func:`run_cells` declares these
    three, so a run is spread the same way everywhere (see
    :func:`check_execution` for how they must agree).
    """
    return (
        Choice("backend", backend, BACKENDS,
               "where the units run: in this process, joblib's loky (processes) or threading "
               "pool, or a Dask cluster"),
        Integer("n_jobs", n_jobs, 1, 1024,
                "units at once: workers of the loky/threading pool, or worker processes of a "
                "local Dask cluster (1 with backend sequential or a scheduler address)"),
        Address("scheduler", "", "Dask scheduler address (tcp://host:port) for backend "
                                 "'dask'; empty starts a local cluster of n_jobs processes"),
    )


def check_execution(values: Mapping, caller: str) -> None:
    """Refuse ``backend``/``n_jobs``/``scheduler`` values that contradict each other.

    A chapter's :class:`lib.params.Specification` lists this among its
    ``checks``: a scheduler without the 'dask' backend, or ``n_jobs`` where
    it would be ignored (the 'sequential' backend, or a scheduler address
    whose cluster has its own workers), is an error, not a silent fallback.
    """
    backend, n_jobs, scheduler = values["backend"], values["n_jobs"], values["scheduler"]
    if scheduler and backend != "dask":
        raise ValueError(f"The 'scheduler' parameter of {caller} must be '' (empty) unless "
                         f"backend is 'dask'. Got {shown(scheduler)} with backend {backend!r} "
                         f"instead.")
    if n_jobs != 1 and backend == "sequential":
        raise ValueError(f"The 'n_jobs' parameter of {caller} must be 1 with backend "
                         f"'sequential', which runs every unit in this process (choose backend "
                         f"loky, threading or dask for workers). Got {n_jobs!r} instead.")
    if n_jobs != 1 and scheduler:
        raise ValueError(f"The 'n_jobs' parameter of {caller} must be 1 when a scheduler address "
                         f"is given: the cluster at {shown(scheduler)} has its own workers, and "
                         f"n_jobs only sizes a local cluster. Got {n_jobs!r} instead.")


#: Seconds a chapter waits for a first worker at a scheduler address.
CLUSTER_WAIT = 900.0


def execution_options(config) -> dict:
    """:func:`run_cells` keywords from a chapter config's ``backend``, ``n_jobs``, ``scheduler``
    and ``device`` (a 'cuda' device asks Dask workers for a GPU); at a scheduler address the
    run waits up to :data:`CLUSTER_WAIT` seconds for a first worker."""
    return {"backend": config.backend, "n_jobs": config.n_jobs,
            "scheduler": config.scheduler or None,
            "gpu": str(getattr(config, "device", "cpu")).startswith("cuda"),
            # A batch queue (Slurm) may take a while to start a cluster's first worker.
            "worker_timeout": CLUSTER_WAIT if config.scheduler else 60.0}
