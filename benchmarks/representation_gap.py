r"""Throughput of :func:`lib.estimators.representation_gap.representation_gap` at image scale.

Measures query x training-point pairs per second for the exact float64
ranking and the float32 ranking with float64 re-check, on M = 10^5 training
points in D = 4096 (a few hundred queries, so that one run takes a minute or
two on 2 cores), prints the float32 / float64 speed ratio, checks that both
paths return the same curve, and compares with brute-force nearest
neighbours of scikit-learn (``NearestNeighbors(algorithm="brute")``, float32
matrix-product distances, no re-check) in the same process. A k-d tree
(scipy's cKDTree) is hopeless at D = 4096 and is run only at ``--small``
sizes. The data are points of a 4-sphere embedded isometrically in R^D
(distances as on a low-dimensional image manifold; any data give the same
timing for brute force).

Run from the repository root::

    .venv/bin/python benchmarks/representation_gap.py          # < 1 minute on 2 cores, 5 GB RAM
    .venv/bin/python benchmarks/representation_gap.py --small  # seconds, a smoke run
    .venv/bin/python benchmarks/representation_gap.py --device cuda --queries 2000  # on a GPU

On a GPU the inputs are moved to the device before the clock starts (as a
user holding a tensor on the device would call it), and the clock stops only
after the device has finished (``torch.cuda.synchronize``).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lib.estimators.representation_gap import default_sizes, representation_gap
from _timing import timed  # noqa: E402  (benchmarks/ is on sys.path)


def sphere_in_ambient(n, d, ambient_dim, seed):
    """n uniform points of S^d embedded in R^ambient_dim through a random orthonormal map."""
    rng = np.random.default_rng(seed)
    gaussian = rng.standard_normal((n, d + 1))
    gaussian /= np.linalg.norm(gaussian, axis=1, keepdims=True)
    basis, _ = np.linalg.qr(np.random.default_rng(1234).standard_normal((ambient_dim, d + 1)))
    return (gaussian @ basis.T).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="M = 10^4, D = 512: a smoke run")
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="torch device of the inputs, e.g. cuda")
    args = parser.parse_args()
    n_train, dim, n_queries = (10_000, 512, 200) if args.small else (100_000, 4096, 200)
    n_queries = args.queries or n_queries
    train = sphere_in_ambient(n_train, 4, dim, 0)
    queries = sphere_in_ambient(n_queries, 4, dim, 1)
    sizes = default_sizes(n_train)
    pairs = n_train * n_queries
    print(f"M = {n_train}, D = {dim}, Q = {n_queries}, {len(sizes)} prefix sizes, "
          f"torch threads = {torch.get_num_threads()}")

    # The float64 run gets float64 input (converted outside the timing), as a float64 user would.
    device = args.device
    train32, queries32 = torch.from_numpy(train).to(device), torch.from_numpy(queries).to(device)
    train64, queries64 = train32.double(), queries32.double()
    print(f"device = {torch.device(device)}"
          + (f" ({torch.cuda.get_device_name()})" if train32.is_cuda else ""))
    # Warm-up (kernel selection, allocator) outside the timings.
    representation_gap(train32[:1000], queries32[:10], precision="float32")
    representation_gap(train64[:1000], queries64[:10])
    fast, t32 = timed(lambda: representation_gap(train32, queries32, sizes=sizes,
                                                 precision="float32", return_per_query=True),
                      device)
    exact, t64 = timed(lambda: representation_gap(train64, queries64, sizes=sizes,
                                                  return_per_query=True), device)
    fast_q, exact_q = fast.per_query.cpu().numpy(), exact.per_query.cpu().numpy()
    agree = float(np.max(np.abs(fast_q - exact_q) / exact_q))
    print(f"float64 ranking          {t64:8.2f} s  {pairs / t64:10.3e} pairs/s")
    print(f"float32 ranking + check  {t32:8.2f} s  {pairs / t32:10.3e} pairs/s  "
          f"(speed-up {t64 / t32:.2f}x; max relative difference {agree:.1e})")

    from sklearn.neighbors import NearestNeighbors
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(train)
    (dist, _), tnn = timed(lambda: nn.kneighbors(queries))
    print(f"sklearn brute (float32, full set only) {tnn:8.2f} s  {pairs / tnn:10.3e} pairs/s  "
          f"(ours float32 with {len(sizes)} prefixes / sklearn: {tnn / t32:.2f}x speed)")
    error = np.abs(dist[:, 0] ** 2 - exact_q[:, -1]) / exact_q[:, -1]
    print(f"sklearn float32 relative error of the nearest squared distance: max {error.max():.1e}")
    if args.small:
        from scipy.spatial import cKDTree
        tree, tbuild = timed(lambda: cKDTree(train))
        _, tq = timed(lambda: tree.query(queries, k=1))
        print(f"cKDTree (exact) build {tbuild:.2f} s + query {tq:.2f} s: "
              f"{pairs / (tbuild + tq):10.3e} pairs/s")


if __name__ == "__main__":
    main()
