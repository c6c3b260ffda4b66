"""One function per figure: study results in, matplotlib Figure out; nothing is computed here."""

from lib.figures import grid_geometry, toy_manifolds

__all__ = ["grid_geometry", "toy_manifolds"]
