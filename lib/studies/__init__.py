"""One module per question a chapter asks; each returns data and never plots.

The chapter registry :data:`lib.chapters.CHAPTERS` is this package's index:
each chapter's entry names its study module (``study``, e.g.
``toy_manifolds``), and a test checks that every module here is registered
there. A module is imported when it is first used (``from lib.studies import
toy_manifolds``, or ``studies.toy_manifolds`` after ``from lib import
studies``), so this file needs no list of them.
"""

from lib._lazy import submodules

__getattr__, __dir__ = submodules(__name__, __path__)
