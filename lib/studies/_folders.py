"""The studies' default cache folders: trained weights, checkpoints, sweep cells, layer taps.

A study function that caches on disk takes its folder as an argument
(``models_dir=None``, ``checkpoint_dir=None``, ...) and, when none is given,
uses the folder of that name under the book's cache (``$MANIFOLD_BOOK_CACHE``),
so that a notebook builds no paths and two chapters that train the same
model share its weights.
"""

from __future__ import annotations


def cache_folder(folder, name: str, *, code_of: str | None = None):
    """``folder`` when given, else the folder ``name`` under the book's cache directory.

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
    """
    if folder is not None:
        return folder
    # issue 16: these come from lib.store (then imported at the top of this module).
    from lib.book import cache_dir, code_fingerprint

    if code_of is None:
        return cache_dir() / name
    return cache_dir() / name / code_fingerprint(code_of)
