"""One function per figure: study results in, matplotlib Figure out; nothing is computed here."""

from lib.figures import (bound_scaling, eigenvalues, grid_geometry, image_manifolds,
                         layer_geometry, nnk_graphs, representation_gap, toy_manifolds)

__all__ = ["bound_scaling", "eigenvalues", "grid_geometry", "image_manifolds", "layer_geometry",
           "nnk_graphs", "representation_gap", "toy_manifolds"]
