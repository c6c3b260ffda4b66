"""Packages whose submodules are imported on first use, so that they need no import list.

``lib.studies`` and ``lib.figures`` hold one module per chapter. Rather than
importing every one of them (a list to extend with each chapter, and the
cost of importing torch-heavy studies a notebook does not use), their
``__init__`` installs :func:`submodules`: ``figures.toy_manifolds`` imports
``lib.figures.toy_manifolds`` the first time it is read. ``import lib.figures``
itself imports nothing.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["submodules"]


def submodules(package: str, path):
    """Module-level ``__getattr__`` and ``__dir__`` that import ``package.<name>`` on first use.

    Parameters
    ----------
    package : str
        Dotted name of the package, its ``__name__``.
    path : list of str
        The package's ``__path__``, where its submodules are listed.

    Returns
    -------
    getattr, dir : callables
        To assign to the package's ``__getattr__`` and ``__dir__`` (PEP 562).

    Examples
    --------
    >>> import lib.figures
    >>> lib.figures.toy_manifolds.__name__
    'lib.figures.toy_manifolds'
    """

    def __getattr__(name: str):
        if not name.startswith("_"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as error:
                if error.name != f"{package}.{name}":
                    raise                          # the module exists but an import inside failed
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(module.name for module in pkgutil.iter_modules(path)
                      if not module.name.startswith("_"))

    return __getattr__, __dir__
