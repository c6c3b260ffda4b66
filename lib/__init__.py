"""Companion library of the data-manifold geometry book.

Importing :mod:`lib` has no side effects. Its modules, from the bottom of the
layer order up (a module imports only from layers below its own; the order is
checked by ``tests/test_architecture.py`` and described in CONTRIBUTING.md):

- private helpers: ``lib._arrays`` (the numpy <-> torch boundary),
  ``lib._checks`` (argument checks that name the parameter) and
  ``lib._lazy`` (packages that import their submodules on first use);
- foundations: :mod:`lib.grid` (parameter grids), :mod:`lib.params` (declared
  chapter parameters), :mod:`lib.derivatives` (autodiff Jacobians and
  Hessians of maps), :mod:`lib.store` (the cache folder, code fingerprints,
  digests and atomic writes), :mod:`lib.prose` (numbers typed by hand in a
  chapter's prose, and ranges written as a sentence states them),
  :mod:`lib.claims` (verdicts on a paper's claims, computed from intervals);
- :mod:`lib.geometry` (geometry of values sampled on a grid),
  :mod:`lib.neighbors` (exact nearest neighbours), :mod:`lib.sampling`
  (train/test splits of a sampled manifold) and :mod:`lib.datasets`
  (immersions with closed forms, the image testbed, point clouds, MNIST);
- :mod:`lib.estimators` (point-cloud estimators), :mod:`lib.graphs` (NNK and
  kNN graphs), :mod:`lib.models` (neural networks and their weight caches),
  :mod:`lib.sweeps` (parameter sweeps cached per cell), :mod:`lib.clusters`
  (Dask clusters on Slurm, for the sweeps), :mod:`lib.plans` (what a run will
  cost, before it runs);
- :mod:`lib.stats` (rates, regressions and quantization constants that judge
  the estimators);
- :mod:`lib.studies` (one module per chapter question, returns results);
- :mod:`lib.figures` (results -> matplotlib figures);
- :mod:`lib.chapters` (the chapter registry), :mod:`lib.runs` (records of
  chapter runs: fresh, stale or failed, and their times) and :mod:`lib.book`
  (cache, published outputs, the chapter runner and its command line).
"""

__version__ = "0.1.0"
