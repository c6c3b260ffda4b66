r"""How often RGSlope's 95% interval holds the true dimension, on scikit-dimension's manifolds.

For every manifold of ``skdim.datasets.BenchmarkManifolds`` (Hein and
Audibert's set) and ``--seeds`` independent samples of ``--n`` points, fits
:class:`lib.estimators.representation_gap.RGSlope` once (five permutations,
200 bootstrap replicates) and reads its raw estimate -2 / slope with the
bootstrap interval, and the estimate and interval calibrated against uniform
balls, spheres and cubes. scikit-dimension's TwoNN on the same points is the
yardstick for the point estimates. Prints per manifold the true d, the mean
raw and calibrated estimates, the share of samples whose interval holds d
(raw and calibrated) and TwoNN's mean, then the overall coverage and the
manifolds where the calibrated interval holds d on fewer than 80 % of the
samples (the target: close to the nominal 95 %).

Run from the repository root::

    .venv/bin/python benchmarks/rg_slope_coverage.py             # 5 seeds, N = 2,500: a minute
    .venv/bin/python benchmarks/rg_slope_coverage.py --seeds 20  # tighter coverage figures
    .venv/bin/python benchmarks/rg_slope_coverage.py --quick     # 2 seeds, N = 1,000

scikit-dimension is a test dependency of the project (``pip install -e .[test]``).
Results also go to ``benchmarks/results/rg_slope_coverage.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from lib.estimators.representation_gap import RGSlope

RESULTS = Path(__file__).resolve().parent / "results" / "rg_slope_coverage.csv"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2500, help="points per sample")
    parser.add_argument("--seeds", type=int, default=5, help="samples per manifold")
    parser.add_argument("--quick", action="store_true", help="2 seeds of 1,000 points")
    args = parser.parse_args()
    import skdim

    n, seeds = (1000, 2) if args.quick else (args.n, args.seeds)
    truth = skdim.datasets.BenchmarkManifolds(random_state=0).truth["Intrinsic Dimension"]
    rows = []
    for seed in range(seeds):
        data = skdim.datasets.BenchmarkManifolds(random_state=seed).generate(n=n)
        for name, X in data.items():
            d = int(truth[name])
            slope = RGSlope(random_state=seed).fit(X)
            (raw_low, raw_high), (low, high) = (slope.raw_confidence_interval_,
                                                slope.confidence_interval_)
            rows.append({"manifold": name, "D": X.shape[1], "d": d, "seed": seed,
                         "raw": slope.raw_dimension_, "raw_inside": raw_low <= d <= raw_high,
                         "calibrated": slope.dimension_, "inside": low <= d <= high,
                         "width": high - low, "twonn": skdim.id.TwoNN().fit(X).dimension_})
        print(f"seed {seed + 1}/{seeds} done", flush=True)
    table = pd.DataFrame(rows)
    RESULTS.parent.mkdir(exist_ok=True)
    table.to_csv(RESULTS, index=False)
    summary = table.groupby("manifold", sort=False).agg(
        D=("D", "first"), d=("d", "first"), raw=("raw", "mean"),
        raw_coverage=("raw_inside", "mean"), calibrated=("calibrated", "mean"),
        coverage=("inside", "mean"), width=("width", "mean"), twonn=("twonn", "mean"))
    pd.set_option("display.width", 160)
    print(f"\n== RGSlope on scikit-dimension's manifolds, {seeds} samples of N = {n} ==")
    print(summary.round(2).to_string())
    print(f"\n== targets: the 95% interval holds d on close to 95% of the samples ==")
    print(f"raw interval:        {table['raw_inside'].mean():.0%} of "
          f"{len(table)} samples; manifolds at >= 80%: "
          f"{int((summary['raw_coverage'] >= 0.8).sum())} of {len(summary)}")
    print(f"calibrated interval: {table['inside'].mean():.0%}; manifolds at >= 80%: "
          f"{int((summary['coverage'] >= 0.8).sum())} of {len(summary)}")
    error = lambda column: (summary[column] - summary["d"]).abs()
    print(f"mean |error|: raw {error('raw').mean():.2f}, calibrated "
          f"{error('calibrated').mean():.2f}, TwoNN {error('twonn').mean():.2f}; calibrated "
          f"closer than TwoNN on {int((error('calibrated') < error('twonn')).sum())} of "
          f"{len(summary)}")
    missed = summary[summary["coverage"] < 0.8]
    if len(missed):
        print("\ncalibrated interval below 80% coverage:")
        print(missed[["D", "d", "raw", "calibrated", "coverage", "twonn"]].round(2).to_string())


if __name__ == "__main__":
    main()
