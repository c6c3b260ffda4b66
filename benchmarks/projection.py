r"""Time per sweep cell of the local projection estimators, batched in torch against a per-point loop.

A *cell* of the bound-scaling sweep fits an estimator on one training set and
projects the 500 test points. Data: a smooth d = 4 torus in R^D (random
Fourier features ``[cos(w.theta), sin(w.theta)]`` of 16 integer frequencies
w_i in {-1, 0, 1}, mapped to R^D by a random 32 x D matrix, float32, seed 0), the
shape of the study's image manifolds (dSprites d = 4: k = 2 * 2**4 = 32
neighbours for both orders). Sizes: 10,000 training points at D = 4096 (64 x
64 images) and 100,000 at D = 256 (100,000 x 4096 float32 is 1.6 GB and its
exact search alone takes minutes on 2 cores; ``--sizes`` sets others).

For order 1 and order 2 it prints, per size,

- ``batched``: :class:`lib.estimators.projection.LocalProjection` (exact
  neighbours) fit + project, end to end;
- ``loop``: a straightforward per-point implementation, scikit-learn's
  ``NearestNeighbors`` (brute force, fitted once) queried one point at a time,
  then numpy per query: weights, weighted mean, ``np.linalg.svd`` of the
  weighted (k x D) block, and for order 2 ``np.linalg.lstsq`` of the quadratic;
  run on every test point, so no extrapolation;
- their ratio, and the largest difference between the two projections
  (both float32: about 1e-6 of the data's scale);

and at the largest size the exact against the approximate index (faiss HNSW
build + search, then the same local fits), with the neighbour recall of the
approximate search and the largest projection difference over the test points
whose neighbour sets agree.

The reference package, manifold-microscope 0.2.0 (import ``microscope``),
ships no MMLS / local-projection implementation (``grep -ri mmls`` over the
installed package finds nothing), so the reference comparison is of the
*splits* a cell needs: :func:`lib.sampling.manifold_splits` (farthest-point
test set of 500, nested volume-weighted training sets) against the
reference's ``microscope.datasets.dataset_split.maximal_distance_selection_torch``
(500 points, ``device="cpu"``) followed by one ``weighted_uniform_splitting``
of the remaining points per fraction, on the same 10,000 points (as 64 x 64
images) and weights. The reference is imported inside a try; without it that
line is skipped with a message (install: ``benchmarks/requirements.txt``).

Run from the repository root::

    .venv/bin/python benchmarks/projection.py             # a few minutes on 2 cores
    .venv/bin/python benchmarks/projection.py --quick     # N = 2,000 x 1024 and 20,000 x 64
    .venv/bin/python benchmarks/projection.py --sizes 10000:4096 100000:4096 --device cuda
    .venv/bin/python benchmarks/projection.py --threads 1  # torch and BLAS threads

With ``--device cuda`` the batched estimator runs on the GPU (the loop and
faiss stay on the CPU) and the clock stops after ``torch.cuda.synchronize``.
Results also go to ``benchmarks/results/projection.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from lib.estimators.projection import LocalProjection
from lib.sampling import manifold_splits
from _timing import timed, write_rows  # noqa: E402  (benchmarks/ is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results" / "projection.csv"
DIM = 4
N_TEST = 500
FEATURES = 16
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def torus(n, ambient, seed=0):
    """n points (float32) of a smooth d = 4 torus in R^ambient and their volume weights."""
    rng = np.random.default_rng(seed)
    frequencies = rng.integers(-1, 2, (FEATURES, DIM))
    frequencies[np.abs(frequencies).sum(1) == 0, 0] = 1
    mixing = rng.standard_normal((2 * FEATURES, ambient)) / np.sqrt(2 * FEATURES)
    theta = np.random.default_rng(seed + 1).uniform(0, 2 * np.pi, (n, DIM))
    phase = theta @ frequencies.T
    points = np.concatenate([np.cos(phase), np.sin(phase)], axis=1) @ mixing
    weights = 1.0 + 0.5 * np.cos(theta[:, 0])                  # any positive volume element
    return points.astype(np.float32), weights


def monomials(t):
    rows, cols = np.triu_indices(t.shape[-1])
    return np.concatenate([np.ones_like(t[..., :1]), t, t[..., rows] * t[..., cols]], axis=-1)


def loop_projection(train, test, k, order):
    """The per-point baseline: one kNN query, one SVD (and one lstsq) per test point."""
    search = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(train)
    out = np.empty_like(test)
    for i, q in enumerate(test):
        distances, indices = search.kneighbors(q[None])
        y, d = train[indices[0]], distances[0]
        h = d[-1] if d[-1] > 0 else 1.0
        w = np.exp(-(d / h) ** 2)
        w /= w.sum()
        m = w @ y
        centred = y - m
        _, _, vt = np.linalg.svd(np.sqrt(w)[:, None] * centred, full_matrices=False)
        basis = vt[:DIM].T
        t_q = basis.T @ (q - m)
        p = m + basis @ t_q
        if order == 2:
            t = centred @ basis
            residual = centred - t @ basis.T
            root = np.sqrt(w)[:, None]
            coefficients = np.linalg.lstsq(root * monomials(t / h), root * residual,
                                           rcond=None)[0]
            p = p + monomials(t_q / h) @ coefficients
        out[i] = p
    return out


def batched_cell(train, test, order, index, device):
    fitted = LocalProjection(DIM, order=order, index=index)
    x = torch.from_numpy(train).to(device)
    q = torch.from_numpy(test).to(device)
    projected, seconds = timed(lambda: fitted.fit(x).project(q), device)
    return projected.cpu().numpy(), fitted, seconds


def measure_size(n, ambient, device, compare_index):
    points, _ = torus(n + N_TEST, ambient)
    train, test = points[:n], points[n:]
    rows = []
    for order in (1, 2):
        if device.type == "cuda":
            batched_cell(train[:2000], test[:50], order, "exact", device)  # warm-up
        ours, fitted, t_ours = batched_cell(train, test, order, "exact", device)
        k = fitted.n_neighbors_
        theirs, t_loop = timed(lambda k=k, order=order: loop_projection(train, test, k, order))
        scale = float(np.abs(train).max())
        row = {"device": str(device), "N": n, "D": ambient, "order": order,
               "k": fitted.n_neighbors_, "batched_s": round(t_ours, 3),
               "loop_s": round(t_loop, 3), "speedup": round(t_loop / t_ours, 2),
               "max_diff": f"{np.abs(ours - theirs).max() / scale:.1e}",
               "approx_s": "", "recall": "", "approx_diff": ""}
        if compare_index:
            approx, fitted_approx, t_approx = batched_cell(train, test, order, "approximate",
                                                           device)
            _, exact_idx = fitted.neighbors(test)
            _, approx_idx = fitted_approx.neighbors(test)
            recall = np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(exact_idx, approx_idx)])
            # Where the neighbour sets agree the fits must agree (candidates are re-measured
            # exactly); one swapped neighbour moves a fit as much as the data's sparsity allows.
            same = np.array([set(a) == set(b) for a, b in zip(exact_idx, approx_idx)])
            gap = np.abs(approx - ours)[same].max() / scale if same.any() else float("nan")
            row.update(approx_s=round(t_approx, 3), recall=round(float(recall), 4),
                       approx_diff=f"{gap:.1e}")
        rows.append(row)
        print(f"{n:>8}{ambient:>6}{order:>6}{row['k']:>4}{row['batched_s']:>10.2f}"
              f"{row['loop_s']:>9.2f}{row['speedup']:>9.1f}x{row['max_diff']:>10}"
              + (f"{row['approx_s']:>10.2f}{row['recall']:>8.3f}{row['approx_diff']:>10}"
                 if compare_index else ""), flush=True)
    return rows


def split_comparison(n, ambient):
    """manifold_splits against the reference's FPS + weighted_uniform_splitting per fraction."""
    points, weights = torus(n, ambient)
    _, t_ours = timed(lambda: manifold_splits(points, weights, fractions=FRACTIONS,
                                              test_size=N_TEST, seed=0))
    try:
        from microscope.datasets.dataset_split import (
            maximal_distance_selection_torch,
            weighted_uniform_splitting,
        )
    except ImportError as error:
        print(f"splits, N = {n}, D = {ambient}: ours {t_ours:.2f} s; reference skipped "
              f"(manifold-microscope not importable: {error}; see benchmarks/requirements.txt)")
        return None
    side = round(ambient ** 0.5)
    if side * side != ambient:
        print(f"splits: reference skipped (it takes square images; D = {ambient})")
        return None

    def reference():
        np.random.seed(0)                              # the reference draws from global numpy
        _, test = maximal_distance_selection_torch(points, N_TEST, device="cpu")
        rest = np.setdiff1d(np.arange(n), test)
        images = points[rest].reshape(-1, side, side)
        p = weights[rest] / weights[rest].sum()
        return [weighted_uniform_splitting(images, rest, p, f) for f in FRACTIONS]

    _, t_ref = timed(reference)
    print(f"splits, N = {n}, D = {ambient}, {len(FRACTIONS)} fractions, test {N_TEST}: "
          f"ours {t_ours:.2f} s, reference {t_ref:.2f} s ({t_ref / t_ours:.1f}x)")
    return {"device": "cpu", "N": n, "D": ambient, "order": "splits", "k": "",
            "batched_s": round(t_ours, 3), "loop_s": round(t_ref, 3),
            "speedup": round(t_ref / t_ours, 2), "max_diff": "", "approx_s": "", "recall": "",
            "approx_diff": ""}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--sizes", nargs="+", default=None, metavar="N:D",
                        help="training points and ambient dimension per size "
                             "(default 10000:4096 100000:256)")
    parser.add_argument("--device", default="cpu", help="torch device of the batched estimator")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of torch and of numpy's BLAS (default: theirs)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    device = torch.device(args.device)
    if args.sizes:
        sizes = [tuple(int(v) for v in size.split(":")) for size in args.sizes]
    else:
        sizes = [(2_000, 1024), (20_000, 64)] if args.quick else [(10_000, 4096), (100_000, 256)]
    where = (torch.cuda.get_device_name() if device.type == "cuda"
             else f"cpu, torch threads = {torch.get_num_threads()}")
    print(f"Local projection, d = {DIM} torus, {N_TEST} test points, float32; {where}")
    print("time per cell = fit + project; loop = sklearn kNN + numpy SVD/lstsq per point; "
          "diff = max |ours - other| / max |x| (approx: where the neighbours agree)")
    print(f"{'N':>8}{'D':>6}{'order':>6}{'k':>4}{'batched s':>10}{'loop s':>9}{'speed-up':>10}"
          f"{'diff':>10}" + f"{'approx s':>10}{'recall':>8}{'diff':>10}")
    rows = []
    for i, (n, ambient) in enumerate(sizes):
        try:
            import faiss  # noqa: F401
            compare = i == len(sizes) - 1
        except ImportError:
            compare = False
            if i == len(sizes) - 1:
                print("exact vs approximate index skipped: faiss-cpu is not installed")
        rows += measure_size(n, ambient, device, compare)
    split_n, split_d = sizes[0]
    split = split_comparison(split_n, split_d)
    if split:
        rows.append(split)
    write_rows(RESULTS, rows)


if __name__ == "__main__":
    main()
