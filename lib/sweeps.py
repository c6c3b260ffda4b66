"""Parameter sweeps: one function over many cells, each cell's result cached on disk.

A *cell* is a small dict of JSON values, the parameters of one unit of work
(``{"dataset": "sphere", "dim": 2, "fraction": 0.1, "seed": 0}``), and a sweep
calls ``function(**cell)`` for every cell. :func:`run_cells` runs the cells
in this process, in joblib's process or thread pools, or on a Dask cluster
through joblib's Dask backend; the backend is a parameter, the answer is not:
results come back in the order of the cells, the same whatever ran them.

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

import json
import os
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

from lib._checks import check_in, check_int
from lib._progress import progress_bar
from lib.store import canonical_json, digest, write_atomic

__all__ = ["BACKENDS", "cached_results", "cell_key", "run_cells"]

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
    if isinstance(function_or_namespace, str):
        namespace = _namespace(None, function_or_namespace, caller=caller)
    elif callable(function_or_namespace):
        namespace = _namespace(function_or_namespace, None, caller=caller)
    else:
        raise TypeError(f"The 'function_or_namespace' parameter of {caller} must be a callable "
                        f"or a str. Got {function_or_namespace!r} instead.")
    folder = _folder(cache_dir, caller=caller) / namespace
    results = {}
    for index, text in enumerate(texts):
        path = folder / f"{_key(text)}.json"
        if path.exists():
            results[index] = _read(path, text, caller=caller)
    return results


def _evaluate(function, index: int, cell: dict) -> tuple[int, str]:
    """Run one cell where the backend puts it; return its index and its result as JSON text."""
    try:
        result = function(**cell)
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


def _check_scheduler(scheduler, backend: str, *, caller: str) -> None:
    """``scheduler`` must be an address, a Client or a Cluster with 'dask', and None otherwise."""
    if backend != "dask":
        if scheduler is not None:
            raise ValueError(f"The 'scheduler' parameter of {caller} must be None with "
                             f"backend={backend!r} (it is for backend='dask'). Got "
                             f"{scheduler!r} instead.")
        return
    from distributed import Client
    from distributed.deploy import Cluster

    if not isinstance(scheduler, (str, Client, Cluster)):
        raise TypeError(f"The 'scheduler' parameter of {caller} must be a scheduler address "
                        f"('tcp://host:port'), a distributed.Client or a Cluster (e.g. "
                        f"LocalCluster) with backend='dask'. Got {scheduler!r} instead.")


def _dask_client(scheduler):
    """A distributed Client for ``scheduler`` and whether this call created it (and closes it)."""
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler, set_as_default=False), True


def _outputs(function, todo, cells, *, backend, n_jobs, scheduler):
    """Yield ``(index, result_text)`` for each index in ``todo`` as its cell finishes."""
    if not todo:
        return
    if backend == "sequential":
        for index in todo:
            yield _evaluate(function, index, cells[index])
        return
    import joblib

    tasks = (joblib.delayed(_evaluate)(function, index, cells[index]) for index in todo)
    if backend in ("loky", "threading"):
        parallel = joblib.Parallel(n_jobs=n_jobs, backend=backend,
                                   return_as="generator_unordered")
        with closing(parallel(tasks)) as outputs:
            yield from outputs
        return
    client, owned = _dask_client(scheduler)
    try:
        with joblib.parallel_config(backend="dask", client=client):
            parallel = joblib.Parallel(return_as="generator_unordered")
            with closing(parallel(tasks)) as outputs:
                yield from outputs
    finally:
        if owned:
            client.close()


def run_cells(function, cells, *, cache_dir=None, namespace: str | None = None,
              backend: str = "sequential", n_jobs: int = 1, scheduler=None,
              progress: bool = True, description: str | None = None) -> list:
    """Call ``function(**cell)`` for every cell, on a chosen backend, with results cached per cell.

    Cached cells are read, never recomputed; only the missing cells go to
    the backend, and each is written to the cache as soon as it finishes, so
    an interrupted sweep keeps its finished cells.

    Parameters
    ----------
    function : callable
        ``function(**cell)`` returns a JSON-serialisable result (typically a
        list of dict rows). For 'loky' and 'dask' it is sent to other
        processes by reference, so it must be importable: defined at the top
        level of a module that the workers can import (not in ``__main__``,
        a notebook or a closure). On a remote Dask cluster, ``lib`` and that
        module must be installed on the workers.
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
        'threading': ``joblib.Parallel(n_jobs)``. 'dask': joblib's Dask
        backend on the cluster given by ``scheduler``.
    n_jobs : int, default=1
        Cells at once for 'loky' and 'threading', >= 1, or -1 for every
        core. Must stay 1 for 'sequential', and for 'dask', where the
        cluster's worker threads set how many cells run at once.
    scheduler : str, distributed.Client or distributed Cluster, optional
        Required with 'dask' and only there: a scheduler address
        ``"tcp://host:port"`` or a ``LocalCluster`` (a client is opened and
        closed here), or a ``Client`` (used, not closed).
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
    if n_jobs == 0:
        raise ValueError(f"The 'n_jobs' parameter of {caller} must be an int in [1, inf) or -1 "
                         f"(every core). Got 0 instead.")
    if backend in ("sequential", "dask") and n_jobs != 1:
        where = ("runs one cell at a time" if backend == "sequential" else
                 "runs as many cells at once as the cluster has worker threads")
        raise ValueError(f"The 'n_jobs' parameter of {caller} must be 1 with "
                         f"backend={backend!r}, which {where}. Got {n_jobs} instead.")
    _check_scheduler(scheduler, backend, caller=caller)
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
                      show=None if progress else False) as bar:
        for index, result_text in _outputs(function, todo, cells, backend=backend,
                                           n_jobs=n_jobs, scheduler=scheduler):
            if folder is not None:
                entry = f'{{"cell": {texts[index]}, "result": {result_text}}}'.encode()
                write_atomic(folder / f"{_key(texts[index])}.json", lambda f: f.write(entry))
            results[index] = json.loads(result_text)
            bar.update(1)
    return results
