"""Neighbourhood graphs of point clouds: non-negative kernel regression (NNK) and kNN.

Inputs are samples (N, D); no datasets, no plots. Modules:

- :mod:`~lib.graphs.nnk_solver`: exact batched solver of the per-node NNK programs; pruning.
- :mod:`~lib.graphs.nnk`: NNK graphs, the kernel-weighted kNN baseline, ``unit_rows``.
- :mod:`~lib.graphs.metrics`: manifold graph metrics read off an NNK graph, ``class_labels``.
- :mod:`~lib.graphs.propagation`: label propagation and the kNN-vs-NNK accuracy comparison.
"""

from lib.graphs.nnk import NNKGraph, knn_graph, nnk_graph

__all__ = ["NNKGraph", "nnk_graph", "knn_graph"]
