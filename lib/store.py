"""What lands on disk: the cache folder, fingerprints of code and data, atomic writes.

Every cache of the book (joblib results, trained weights, checkpoints, layer
taps, sweep cells) lives under :func:`cache_dir` and names its entries by
hashes made here:

- :func:`cache_folder`: the default folder of one kind of cache (models,
  checkpoints, sweeps), which the studies use so that notebooks build no paths;
- :func:`library_fingerprint` and :func:`code_fingerprint`: the source of
  ``lib``, all of it or what one module reaches;
- :func:`digest`: SHA-256 of strings, bytes and arrays, fed in order;
  :func:`canonical_json` is the text a JSON record is hashed as (sorted
  keys, so the order of a dict does not matter);
- :func:`write_atomic`: a file is written next to its place and renamed into
  it, so a reader (or a killed run) never sees half of it; :func:`write_json`
  writes a readable JSON record that way.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["CACHE_ENV", "PROJECT_ROOT", "cache_dir", "cache_folder", "canonical_json",
           "code_fingerprint", "digest", "library_fingerprint", "write_atomic", "write_json"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "MANIFOLD_BOOK_CACHE"


def cache_dir() -> Path:
    """Where cached results live: ``$MANIFOLD_BOOK_CACHE`` or ``<project>/data/cache``."""
    return Path(os.environ.get(CACHE_ENV, PROJECT_ROOT / "data" / "cache"))


def canonical_json(record) -> str:
    """The JSON text a record is hashed as: ``json.dumps(record, sort_keys=True)``.

    Examples
    --------
    >>> canonical_json({"seed": 0, "dim": 2})
    '{"dim": 2, "seed": 0}'
    """
    return json.dumps(record, sort_keys=True)


def digest(*parts, length: int = 64) -> str:
    """SHA-256 of ``parts`` fed in order, as hex digits.

    A str is fed as UTF-8, bytes as they are, a numpy array or a torch tensor
    as its raw bytes in C order (neither its dtype nor its shape: put them in
    a str part when they matter).

    Parameters
    ----------
    *parts : str, bytes, numpy.ndarray or torch.Tensor
    length : int, default=64
        Leading hex digits kept, in [1, 64].

    Returns
    -------
    str

    Examples
    --------
    >>> import hashlib
    >>> digest('{"dim": 2}', length=24) == hashlib.sha256(b'{"dim": 2}').hexdigest()[:24]
    True
    >>> digest(np.arange(3.0)) == digest(np.arange(3.0).tobytes()) == digest(b"", np.arange(3.0))
    True
    """
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(_bytes(part))
    return hasher.hexdigest()[:length]


def _bytes(part):
    if isinstance(part, str):
        return part.encode()
    if isinstance(part, (bytes, bytearray, memoryview)):
        return part
    torch = sys.modules.get("torch")        # a tensor exists only once torch is imported
    if torch is not None and isinstance(part, torch.Tensor):
        return part.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    if isinstance(part, np.ndarray):
        return np.ascontiguousarray(part).reshape(-1).view(np.uint8)
    raise TypeError(f"The 'parts' parameter of digest must hold str, bytes, numpy arrays or "
                    f"torch tensors. Got {type(part).__name__} instead.")


def write_atomic(path, write) -> None:
    """Write a file so that a reader sees the old file or the whole new one, never half.

    ``write(handle)`` fills a temporary file (binary, in the folder of
    ``path``), which is flushed to disk and renamed onto ``path``. If
    ``write`` or the disk fails, the temporary file is removed and the error
    raised; ``path`` is left as it was.

    Parameters
    ----------
    path : str or Path
        The file to write; its folder must exist.
    write : callable
        ``write(handle)`` with a binary file handle, e.g. ``lambda f: f.write(data)``
        or ``functools.partial(torch.save, state)``.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "note.txt"
    >>> write_atomic(path, lambda f: f.write(b"whole"))
    >>> path.read_text()
    'whole'
    """
    path = Path(path)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise



def write_json(path, record: dict) -> None:
    """Write a JSON record for people to read (indented, sorted keys), atomically.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "record.json"
    >>> write_json(path, {"b": 1, "a": [2]})
    >>> json.loads(path.read_text()) == {"a": [2], "b": 1}
    True
    """
    write_atomic(path, lambda handle: handle.write(json.dumps(record, indent=1,
                                                              sort_keys=True).encode()))


def library_fingerprint() -> str:
    """Hash of every source file of :mod:`lib` that computes, 12 hex digits.

    joblib keys an entry by the cached function's own code and its arguments,
    not by the code it calls; keeping the cache under this fingerprint means a
    change anywhere in ``lib`` can never serve a stale result. ``lib/figures``
    is left out: figures draw results and never compute them (imports point
    one way), so redrawing a figure does not recompute a chapter.
    """
    package = Path(__file__).resolve().parent
    sources = [source for source in sorted(package.rglob("*.py"))
               if source.relative_to(package).parts[0] != "figures"]
    return _sources_digest(sources, package)


def _sources_digest(sources, root: Path) -> str:
    """12 hex digits of SHA-256 over each source's path below ``root`` and its bytes."""
    hasher = hashlib.sha256()
    for source in sources:
        hasher.update(source.relative_to(root).as_posix().encode())
        hasher.update(source.read_bytes())
    return hasher.hexdigest()[:12]


def _module_file(name: str) -> Path | None:
    """Source file of a ``lib`` module or package by dotted name, or None if there is none."""
    base = PROJECT_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _lib_imports(source: Path) -> set[str]:
    """Every ``lib`` module a source file imports, at any depth of its code (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.split(".")[0] == "lib")
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] == "lib":
            names.add(node.module)
            # ``from lib.datasets import dsprites`` imports the submodule lib.datasets.dsprites.
            names.update(f"{node.module}.{alias.name}" for alias in node.names
                         if _module_file(f"{node.module}.{alias.name}") is not None)
    return names


def code_fingerprint(module: str) -> str:
    """Hash of the sources of ``module`` and of every ``lib`` module it imports, transitively.

    A sweep whose cells run one study function keys its cache on this: a
    change to code the study can reach recomputes its cells, a change
    elsewhere in ``lib`` (another chapter, a figure) does not. Imports are
    read from the source (``ast``), including those inside functions.

    Parameters
    ----------
    module : str
        Dotted name of a module of ``lib``, e.g. ``"lib.studies.bound_scaling"``.

    Returns
    -------
    str
        12 hex digits.
    """
    if _module_file(module) is None:
        raise ValueError(f"The 'module' parameter of code_fingerprint must name a module of "
                         f"lib, such as 'lib.studies.bound_scaling'. Got {module!r} instead.")
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += sorted(_lib_imports(_module_file(name)) - seen)
    # Parent packages also run their __init__ on import, but here those only re-export
    # their submodules (``import lib`` has no side effects): they are left out, else
    # registering a new chapter in lib/studies/__init__ would recompute every sweep.
    return _sources_digest([_module_file(name) for name in sorted(seen)], PROJECT_ROOT)


def cache_folder(folder, name: str, *, code_of: str | None = None):
    """``folder`` when given, else the folder ``name`` under :func:`cache_dir`.

    A study function that caches on disk takes its folder as an argument
    (``models_dir=None``, ``checkpoint_dir=None``, ...) and, when none is
    given, uses the folder of that name under the book's cache, so that a
    notebook builds no paths and two chapters that train the same model share
    its weights.

    Parameters
    ----------
    folder : str, Path or None
        A folder the caller chose; returned unchanged.
    name : str
        The default folder under the cache: ``"models"``, ``"checkpoints"``, ...
    code_of : str, optional
        A module of ``lib``: the default folder is then
        ``<name>/<code_fingerprint(code_of)>``, so that a change to code the
        module can reach starts a new folder and a change elsewhere does not.

    Examples
    --------
    >>> cache_folder("/tmp/weights", "models")
    '/tmp/weights'
    >>> cache_folder(None, "models") == cache_dir() / "models"
    True
    """
    if folder is not None:
        return folder
    if code_of is None:
        return cache_dir() / name
    return cache_dir() / name / code_fingerprint(code_of)
