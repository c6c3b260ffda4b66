r"""Construction time of exact NNK graphs against a per-node loop of the reference heuristic.

Data: synthetic "ReLU features", ``x = max(0, z W + 0.3 e)`` with an 8-dimensional
Gaussian latent ``z``, a random ``8 x D`` map ``W / sqrt(8)`` and Gaussian noise
``e`` (seed 0): the kind of non-negative, low-dimensional-plus-noise cloud a
network layer produces, in D = 64 and D = 784; and two neighbourhoods that
are hard for a Gram-form solver with the cosine kernel, a helix and a curved
surface patch in R^3 (nearly parallel neighbouring directions). Every graph
uses k = 50 candidates, the cosine kernel and the Gaussian kernel with
per-node sigma (distance to the 50th neighbour / 3).

For each size and kernel it times

- ``knn``: the exact candidate search (:func:`lib.neighbors.nearest_neighbors`),
  which both methods need; its time is inside both totals;
- ``exact``: :func:`lib.graphs.nnk_graph` end to end (candidates, kernel blocks,
  batched Lawson-Hanson with its KKT certificate, reference symmetrization,
  sparse output);
- ``loop``: the reference code's way, one node at a time in Python: the node's
  kernel matrix from its candidates' coordinates (numpy/scipy), the pruning
  heuristic (:func:`lib.graphs.nnk_solver.solve_reference`, LAPACK potrf/potrs,
  x_tol = 1e-10) and its error. It runs on a few hundred nodes and is
  extrapolated to N; the candidate search is added to its total.

It prints the speed-up of ``exact`` over ``loop`` (targets: >= 5x at the
median, >= 1x on every case), with and without the shared candidate search,
the mean support size of both on the looped nodes, the share of those nodes
where the heuristic misses the optimum (objective above the exact one by more
than 1e-9 relative), and the share of nodes the exact solver handed to
scipy's NNLS (target: under 1 %).

Run from the repository root::

    .venv/bin/python benchmarks/nnk.py            # N = 10k (D = 64, 784) and 60k (D = 64)
    .venv/bin/python benchmarks/nnk.py --quick    # N = 2,000: a smoke run, about a minute
    .venv/bin/python benchmarks/nnk.py --full     # also N = 60k in D = 784 (the candidate
                                                  # search alone takes minutes on 2 cores)
    .venv/bin/python benchmarks/nnk.py --device cuda   # the points and the solver on a GPU

The looped heuristic always runs on the CPU. On a GPU the clock stops after
``torch.cuda.synchronize``. Results also go to ``benchmarks/results/nnk.csv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits

from lib.graphs import nnk_graph, nnk_solver
from lib.neighbors import nearest_neighbors
from _timing import timed, write_rows  # noqa: E402  (benchmarks/ is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results" / "nnk.csv"
K = 50
LATENT = 8
X_TOL = 1e-10


def features(n, dim, seed=0):
    """ReLU of a random linear map of an 8-D Gaussian latent, plus noise (float64)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, LATENT))
    weights = rng.standard_normal((LATENT, dim)) / np.sqrt(LATENT)
    return np.maximum(z @ weights + 0.3 * rng.standard_normal((n, dim)), 0.0)


def helix(n, seed=0):
    """A helix in R^3, uniform in its parameter: neighbouring directions nearly equal."""
    t = np.sort(np.random.default_rng(seed).random(n)) * 4 * np.pi
    return np.c_[np.cos(t), np.sin(t), 0.1 * t]


def surface_patch(n, seed=0):
    """A curved surface patch in R^3 away from the origin (cosine neighbours near-parallel)."""
    u, v = np.random.default_rng(seed).random((2, n))
    return np.c_[u, v, 1 + 0.3 * u**2 - 0.2 * v**2]


DATA = {"relu": features, "helix": lambda n, dim: helix(n),
        "patch": lambda n, dim: surface_patch(n)}


def node_problem(points, units, i, cand, dist, sigma, kernel):
    """K_SS and K_Si of node i from coordinates, as a per-node loop builds them."""
    if kernel == "cosine":
        u = units[cand]
        return (1 + u @ u.T) / 2, (1 + u @ units[i]) / 2
    A = np.exp(-cdist(points[cand], points[cand], "sqeuclidean") / (2 * sigma**2))
    return A, np.exp(-dist**2 / (2 * sigma**2))


def reference_loop(points, graph, nodes, kernel):
    """Per node: kernel, pruning heuristic, error. Returns seconds and per-node results."""
    units = points / np.linalg.norm(points, axis=1, keepdims=True) if kernel == "cosine" else None
    candidates = np.asarray(graph.candidates.cpu() if torch.is_tensor(graph.candidates)
                            else graph.candidates)
    sigma = graph.sigma.cpu().numpy() if torch.is_tensor(graph.sigma) else graph.sigma
    dist = np.linalg.norm(points[candidates[nodes]] - points[nodes, None], axis=2)
    problems = []
    start = time.perf_counter()
    for n, i in enumerate(nodes):
        A, b = node_problem(points, units, i, candidates[i], dist[n],
                            None if sigma is None else sigma[i], kernel)
        theta = nnk_solver.solve_reference(A, b, x_tol=X_TOL)
        error = 1 - 2 * b @ theta + theta @ A @ theta
        problems.append((A, b, theta, error))
    return time.perf_counter() - start, problems


def measure(data, n, dim, kernel, device, n_loop, budget):
    points = DATA[data](n, dim)
    x = torch.from_numpy(points).to(device)
    if device.type == "cuda":
        nnk_graph(x[:2000], K, kernel=kernel)                      # warm-up, outside the clocks
    # The first search of a process imports scikit-learn and finds the thread pools (about
    # 0.7 s once): outside the clocks, as for a user who searches more than once.
    nearest_neighbors(x[: 2 * K], K + 1)
    _, t_knn = timed(lambda: nearest_neighbors(x, K + 1, memory_budget=budget), device)
    graph, t_exact = timed(lambda: nnk_graph(x, K, kernel=kernel, x_tol=X_TOL,
                                             memory_budget=budget), device)
    theta = graph.theta.cpu().numpy() if torch.is_tensor(graph.theta) else graph.theta
    nodes = np.sort(np.random.default_rng(1).choice(n, n_loop, replace=False))
    t_loop, problems = reference_loop(points, graph, nodes, kernel)
    loop_total = t_loop * n / n_loop + t_knn
    misses, deg_ref, deg_exact = 0, [], []
    for i, (A, b, th_ref, _) in zip(nodes, problems):
        f_ref = 0.5 * th_ref @ A @ th_ref - b @ th_ref
        f_exact = 0.5 * theta[i] @ A @ theta[i] - b @ theta[i]
        misses += (f_ref - f_exact) > 1e-9 * max(1.0, abs(f_exact))
        deg_ref.append((th_ref > 0).sum())
        deg_exact.append((theta[i] > 0).sum())
    kkt = float(graph.kkt.max())
    return {"device": str(device), "data": data, "N": n, "D": dim, "kernel": kernel,
            "knn_s": round(t_knn, 3), "exact_s": round(t_exact, 3),
            "loop_s": round(loop_total, 3), "looped_nodes": n_loop,
            "speedup": round(loop_total / t_exact, 2),
            "speedup_without_knn": round((loop_total - t_knn) / max(t_exact - t_knn, 1e-9), 2),
            "support_exact": round(float(np.mean(deg_exact)), 2),
            "support_reference": round(float(np.mean(deg_ref)), 2),
            "support_exact_all": round(float((theta > 0).sum(1).mean()), 2),
            "reference_misses": round(misses / n_loop, 3),
            "fallbacks": graph.fallbacks, "fallback_share": round(graph.fallbacks / n, 4),
            "max_kkt": f"{kkt:.1e}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 2,000 only: a smoke run")
    parser.add_argument("--full", action="store_true", help="also N = 60,000 in D = 784")
    parser.add_argument("--device", default="cpu", help="torch device of the points")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of torch and of numpy's BLAS (default: theirs)")
    parser.add_argument("--loop-nodes", type=int, default=None,
                        help="nodes timed in the reference loop (default 300, quick 100)")
    args = parser.parse_args()
    if args.threads:
        # Both pools: on a shared CPU, idle-spinning BLAS threads can slow the loop tenfold.
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    device = torch.device(args.device)
    if args.quick:
        sizes = [("relu", 2_000, 64), ("relu", 2_000, 784), ("helix", 2_000, 3),
                 ("patch", 2_000, 3)]
    else:
        sizes = ([("relu", 10_000, 64), ("relu", 10_000, 784), ("relu", 60_000, 64),
                  ("helix", 10_000, 3), ("patch", 10_000, 3)]
                 + ([("relu", 60_000, 784)] if args.full else []))
    n_loop = args.loop_nodes or (100 if args.quick else 300)
    # A GPU solves every node of a size in one block (8 GiB of work arrays at most).
    budget = 2**33 if device.type == "cuda" else 2**28
    where = (torch.cuda.get_device_name() if device.type == "cuda"
             else f"cpu, torch threads = {torch.get_num_threads()}")
    print(f"NNK graphs, k = {K}, ReLU features (8-D latent); {where}")
    header = (f"{'data':<6}{'N':>7}{'D':>5} {'kernel':<9}{'knn s':>8}{'exact s':>9}{'loop s':>9}"
              f"{'speed-up':>10}{'w/o knn':>9}{'deg ex':>8}{'deg ref':>8}{'missed':>8}"
              f"{'fallbk':>8}{'max kkt':>9}")
    print(header)
    rows = []
    for data, n, dim in sizes:
        for kernel in ("cosine", "gaussian"):
            row = measure(data, n, dim, kernel, device, n_loop, budget)
            rows.append(row)
            print(f"{data:<6}{n:>7}{dim:>5} {kernel:<9}{row['knn_s']:>8.2f}{row['exact_s']:>9.2f}"
                  f"{row['loop_s']:>9.1f}{row['speedup']:>9.1f}x{row['speedup_without_knn']:>8.1f}x"
                  f"{row['support_exact']:>8.1f}{row['support_reference']:>8.1f}"
                  f"{row['reference_misses']:>8.1%}{row['fallback_share']:>8.1%}"
                  f"{row['max_kkt']:>9}",
                  flush=True)
    speedups = np.array([r["speedup"] for r in rows])
    median = float(np.median(speedups))
    print(f"targets: median >= 5x over the per-node loop (end to end): "
          f"{'met' if median >= 5 else 'NOT met'} ({median:.1f}x); faster on every case: "
          f"{'met' if speedups.min() >= 1 else 'NOT met'} (lowest {speedups.min():.1f}x); "
          f"scipy fallbacks rare (< 1 % of nodes) on every case: "
          f"{'met' if max(r['fallback_share'] for r in rows) < 0.01 else 'NOT met'} "
          f"(highest {max(r['fallback_share'] for r in rows):.1%})")
    write_rows(RESULTS, rows)


if __name__ == "__main__":
    main()
