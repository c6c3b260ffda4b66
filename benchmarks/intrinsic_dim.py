r"""Intrinsic-dimension estimators against scikit-dimension, on its benchmark manifolds.

Times :class:`lib.estimators.intrinsic_dim.TwoNN` and
:class:`lib.estimators.intrinsic_dim.LevinaBickelMLE` (k = 5) against
``skdim.id.TwoNN`` and ``skdim.id.MLE`` (K = 5) in the same process, on every
manifold of ``skdim.datasets.BenchmarkManifolds`` (Hein and Audibert's set,
seeded), one fit per estimator and data set after a warm-up fit, at one and
at two torch threads. It prints per data set the ambient dimension D, both
times and their ratio (reference / ours: above 1 means ours is faster), the
two estimates and the true dimension, then per estimator the median ratio and
the data sets where ours is slower (the target: at least as fast at every D).

Run from the repository root::

    .venv/bin/python benchmarks/intrinsic_dim.py            # N = 2,500: about a minute
    .venv/bin/python benchmarks/intrinsic_dim.py --n 10000  # larger clouds
    .venv/bin/python benchmarks/intrinsic_dim.py --quick    # N = 500, a smoke run

scikit-dimension is a test dependency of the project (``pip install -e .[test]``).
Results also go to ``benchmarks/results/intrinsic_dim.csv``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib.estimators.intrinsic_dim import LevinaBickelMLE, TwoNN

RESULTS = Path(__file__).resolve().parent / "results" / "intrinsic_dim.csv"


def best_of(fit, repeats: int = 3) -> tuple[float, float]:
    """The fitted estimate and the fastest of ``repeats`` fits, after a warm-up fit."""
    fit()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fit()
        seconds.append(time.perf_counter() - start)
    return float(value), min(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2500, help="points per manifold")
    parser.add_argument("--quick", action="store_true", help="N = 500: a smoke run")
    args = parser.parse_args()
    import skdim

    n = 500 if args.quick else args.n
    bench = skdim.datasets.BenchmarkManifolds(random_state=0)
    data = bench.generate(n=n)
    truth = bench.truth["Intrinsic Dimension"]
    pairs = {"TwoNN": (lambda X: TwoNN().fit(X).dimension_,
                       lambda X: skdim.id.TwoNN().fit(X).dimension_),
             "MLE k=5": (lambda X: LevinaBickelMLE(n_neighbors=5).fit(X).dimension_,
                         lambda X: skdim.id.MLE(K=5).fit(X).dimension_)}
    rows = []
    threads = torch.get_num_threads()
    for count in (1, 2):
        torch.set_num_threads(count)
        for name, X in data.items():
            X = np.ascontiguousarray(X, dtype=np.float64)
            for estimator, (ours, theirs) in pairs.items():
                ours_d, ours_s = best_of(lambda: ours(X))
                ref_d, ref_s = best_of(lambda: theirs(X))
                rows.append({"threads": count, "manifold": name, "D": X.shape[1],
                             "d": int(truth[name]), "estimator": estimator,
                             "ref_s": ref_s, "ours_s": ours_s, "ratio": ref_s / ours_s,
                             "ref_d": ref_d, "ours_d": ours_d})
    torch.set_num_threads(threads)
    table = pd.DataFrame(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    table.to_csv(RESULTS, index=False)
    pd.set_option("display.width", 160)
    for (count, estimator), part in table.groupby(["threads", "estimator"]):
        print(f"\n== {estimator}, {count} thread{'s' * (count > 1)}, N = {n} ==")
        print(part.drop(columns=["threads", "estimator"]).round(
            {"ref_s": 4, "ours_s": 4, "ratio": 2, "ref_d": 2, "ours_d": 2}).to_string(index=False))
    print("\n== targets: at least as fast as scikit-dimension on every manifold ==")
    summary = table.groupby(["threads", "estimator"]).agg(
        median_ratio=("ratio", "median"), worst_ratio=("ratio", "min"),
        slower=("ratio", lambda r: int((r < 1).sum())), sets=("ratio", "size"))
    print(summary.round(2).to_string())
    slower = table[table["ratio"] < 1]
    if len(slower):
        print("\nslower than the reference:")
        print(slower[["threads", "estimator", "manifold", "D", "ratio"]].round(2)
              .to_string(index=False))


if __name__ == "__main__":
    main()
