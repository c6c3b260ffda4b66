"""Companion library of the data-manifold geometry book.

Importing :mod:`lib` has no side effects. The sub-packages hold, in the one
direction imports flow: :mod:`lib.grid` (parameter grids),
:mod:`lib.datasets` (immersions with closed forms), :mod:`lib.geometry`
(estimators on arrays), :mod:`lib.studies` (one module per chapter
question, returns results), :mod:`lib.figures` (results -> matplotlib
figures) and :mod:`lib.book` (presets, cache, chapter runner).
"""

__version__ = "0.1.0"
