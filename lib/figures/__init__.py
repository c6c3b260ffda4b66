"""One function per figure: study results in, matplotlib Figure out; nothing is computed here."""

from lib.figures import grid_geometry, image_manifolds, representation_gap, toy_manifolds

__all__ = ["grid_geometry", "image_manifolds", "representation_gap", "toy_manifolds"]
