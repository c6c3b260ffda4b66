"""Neighbourhood graphs of point clouds: non-negative kernel regression (NNK) and kNN.

:mod:`lib.graphs.nnk` builds NNK graphs (:func:`nnk_graph`) and the
kernel-weighted kNN baseline (:func:`knn_graph`); :mod:`lib.graphs.nnk_solver`
holds the batched exact solver of the per-node non-negative quadratic programs
and the reference pruning heuristic; :mod:`lib.graphs.metrics` reads manifold
graph metrics off a graph and :mod:`lib.graphs.propagation` propagates labels
on it. Inputs are samples (N, D); no datasets, no
plots.
"""

from lib.graphs.nnk import NNKGraph, knn_graph, nnk_graph

__all__ = ["NNKGraph", "nnk_graph", "knn_graph"]
