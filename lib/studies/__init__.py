"""One module per question a chapter asks; each returns data and never plots."""

from lib.studies import (bound_scaling, eigenvalues, grid_geometry, image_manifolds,
                         layer_geometry, nnk_graphs, representation_gap, toy_manifolds)

__all__ = ["bound_scaling", "eigenvalues", "grid_geometry", "image_manifolds", "layer_geometry",
           "nnk_graphs", "representation_gap", "toy_manifolds"]
