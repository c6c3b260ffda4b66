r"""Grid geometry of ``lib`` against the paper's reference code, side by side in one process.

The reference is ``manifold-microscope==0.2.0`` (import name ``microscope``), the
authors' fixed code for *The Data Manifold under the Microscope* (ICML 2026). It
is installed only for this benchmark (see ``benchmarks/README.md``) and imported
nowhere else. Both implementations receive the same numpy grids, sampled from
the toy manifolds of :mod:`lib.datasets.toy`, natively (R^2 or R^3) and
isometrically embedded in R^4096, in float32 and float64. For each measure the
script prints the time of the reference, the time of ``lib``, their ratio and
the error of both against the closed form:

- volume element ``sqrt(det g)`` (max relative error on ``grid.interior(2)``)
  and total volume (relative error; see "Total volume" below);
- intrinsic scalar curvature (``max|S - S*| / max|S*|`` on ``grid.interior(6)``,
  the points where every estimator is defined); ``lib`` is run by the paper's
  intrinsic route at stencil orders 2 and 4 and by the extrinsic (Gauss
  equation, :func:`lib.geometry.extrinsic.grid_scalar_curvature`) route at orders 2 and 4;
- global reach (relative error of ``min_x tau(x)``), with the paper's stride 2
  for queries and candidates.

How the reference is called (``microscope/computations_grid``):

- ``volume.volume_element(x, spacing, cyclic_dimensions, patch_sizes, device="cpu")``
  returns the field on the grid less one layer at both ends of every interval
  axis (``grid.interior(1)``), periodic axes in place; ``volume.compute_total_volume``
  multiplies its mean by the product of the *full* parameter ranges.
- ``curvature.scalar_curvature(...)`` with the same arguments returns the field
  on ``grid.interior(3)`` (three layers dropped at both ends, periodic axes in
  place). Both were checked against our order-2 volume element (equal to
  rounding) and against the hyperboloid's closed form (error 30x smaller at this
  alignment than one layer off).
- ``reach.reach_per_point(x, range_sizes, patch_sizes, cyclic_dimensions,
  subsample_points=2, batch_size=10, device="cpu")``: queries and candidates are
  the grid less one border layer on interval axes, strided; tangents come from
  the full grid.
- Every call passes ``device="cpu"``: the reference otherwise picks ``cuda:0``
  whenever CUDA is visible. Patch sizes are the paper's 10 per axis
  (``microscope.datasets.generic_dataset_loader``); a second column uses a
  larger patch (``--tuned-patch``), which is much faster for the reference.

Total volume: the reference reports ``mean(volume element) x product of the
full ranges`` and is compared with the closed-form volume of the whole chart;
``lib.geometry.metric.total_volume`` integrates over ``grid.interior(order // 2)``
(its documented region) and is compared with the closed-form volume of that
box. On fully periodic charts (ellipse, torus) both regions are the whole
manifold. Closed-form volumes of a box come from Gauss-Legendre quadrature (64
nodes per interval axis, 512 equal nodes per periodic axis) of the closed-form
volume element, exact to rounding for these smooth integrands.

Times are the best of a few repeats (``time.perf_counter``) for cheap calls and
one repetition for the reference's reach at D = 4096, which takes minutes.
``torch`` keeps its default thread count. Run from the repository root::

    .venv/bin/python benchmarks/grid_geometry.py            # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/grid_geometry.py --quick    # seconds, a smoke run
    .venv/bin/python benchmarks/grid_geometry.py --full     # + 2 to 4 minutes: the reference's float64 reach at D = 4096

The table is also written to ``benchmarks/results/grid_geometry.csv`` (long
format, one row per measure, case and method).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Callable

# The reference draws a tqdm bar for every reach call; tqdm reads this when it is imported.
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lib.datasets import toy  # noqa: E402
from lib.geometry import curvature, extrinsic, metric, reach  # noqa: E402
from lib.grid import Grid  # noqa: E402

try:
    from microscope.computations_grid import curvature as ref_curvature  # noqa: E402
    from microscope.computations_grid import reach as ref_reach  # noqa: E402
    from microscope.computations_grid import volume as ref_volume  # noqa: E402
except ImportError as error:  # pragma: no cover - depends on the optional install
    raise SystemExit(f"The reference implementation is not installed ({error}). Install it with\n"
                     f"  .venv/bin/pip install --no-deps -r benchmarks/requirements.txt") from error

TWO_PI = 2 * np.pi
HIGH_D = 4096
PAPER_PATCH = 10          # patch size per axis in the paper's dataset loader
REACH_STRIDE = 2          # the paper takes every 2nd grid point per axis for reach
REF_REACH_BATCH = 10      # reach_per_point's default batch of queries
RESULTS = Path(__file__).resolve().parent / "results" / "grid_geometry.csv"
NOTES: set[str] = set()   # failures worth a line under the tables


# --- cases -----------------------------------------------------------------------------

def polar_band(n_theta: int, n_phi: int) -> Grid:
    """Polar chart away from the poles, where the chart's metric is far from degenerate."""
    return Grid.product(theta=(0.3, 2.8, n_theta), phi=(0.0, TWO_PI, n_phi, "periodic"))


@dataclass(frozen=True)
class Manifold:
    name: str
    shape: toy.ToyManifold
    grid: Callable[[int, int], Grid]    # (samples per interval axis, per periodic axis) -> Grid


MANIFOLDS = (
    Manifold("ellipse", toy.Ellipse(a=1.0, b=0.5),
             lambda n, m: Grid.product(t=(0.0, TWO_PI, 4 * m, "periodic"))),
    Manifold("sphere", toy.Sphere(radius=1.0), polar_band),
    Manifold("ellipsoid", toy.Ellipsoid(a=1.0, b=0.8, c=0.6), polar_band),
    Manifold("torus", toy.Torus(R=1.0, r=0.4),
             lambda n, m: Grid.product(u=(0.0, TWO_PI, m, "periodic"),
                                       v=(0.0, TWO_PI, m, "periodic"))),
    Manifold("hyperboloid", toy.Hyperboloid(a=1.0, c=1.0, height=1.0),
             lambda n, m: Grid.product(t=(-1.0, 1.0, n), u=(0.0, TWO_PI, m, "periodic"))),
)


@dataclass(frozen=True)
class Settings:
    native_size: tuple[int, int]        # (interval, periodic) samples at the native dimension
    high_size: tuple[int, int]          # the same at D = high_dim
    high_dim: int
    reach_high: tuple[str, ...]         # manifolds whose reach is measured at D = high_dim
    ref_reach_high_dtypes: tuple[str, ...]
    budget: float                       # seconds of repeats per timing
    repeats: int


def settings(args) -> Settings:
    if args.quick:
        return Settings((17, 24), (17, 24), 256, ("sphere",), ("float32", "float64"), 0.1, 2)
    dtypes = ("float32", "float64") if args.full else ("float32",)
    return Settings((81, 96), (41, 48), HIGH_D, ("sphere",), dtypes, 1.0, 5)


def sample(manifold: Manifold, size, ambient_dim: int, dtype: str):
    grid = manifold.grid(*size)
    values = manifold.shape.points(grid)
    if ambient_dim > values.shape[-1]:
        values = toy.embed(values, ambient_dim, seed=0)
    return grid, np.ascontiguousarray(values.astype(dtype))


# --- measurement helpers ---------------------------------------------------------------

def timed(fn: Callable, *, budget: float, repeats: int):
    """Best wall time of up to ``repeats`` calls (fewer once ``budget`` seconds are spent), first result."""
    start = time.perf_counter()
    result = fn()
    best = spent = time.perf_counter() - start
    count = 1
    while count < repeats and spent < budget:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, count = min(best, elapsed), spent + elapsed, count + 1
    return best, result


def on_interior(field, grid: Grid, has: int, want: int):
    """Cut a field defined on ``grid.interior(has)`` down to ``grid.interior(want)``."""
    return np.asarray(field)[grid.interior(has).interior_index(want - has)]


def sup_relative(estimate, truth) -> float:
    """max |estimate - truth| / max |truth|, in float64."""
    estimate = np.asarray(estimate, dtype=np.float64)
    return float(np.abs(estimate - truth).max() / np.abs(truth).max())


def box_volume(shape: toy.ToyManifold, grid: Grid, nodes: int = 64, periodic_nodes: int = 512) -> float:
    """Closed-form Riemannian volume of the parameter box of ``grid`` by quadrature."""
    points, weights = [], []
    for axis in grid.axes:
        if axis.periodic:
            points.append(axis.start + axis.length * np.arange(periodic_nodes) / periodic_nodes)
            weights.append(np.full(periodic_nodes, axis.length / periodic_nodes))
        else:
            x, w = np.polynomial.legendre.leggauss(nodes)
            points.append(axis.start + (x + 1) * axis.length / 2)
            weights.append(w * axis.length / 2)
    mesh = np.stack(np.meshgrid(*points, indexing="ij"), axis=-1)
    return float((reduce(np.multiply.outer, weights) * shape.volume_element(mesh)).sum())


def reference_arguments(grid: Grid, patch: int) -> dict:
    return {"difference_intervals": list(grid.spacing),
            "cyclic_dimensions": [i for i, p in enumerate(grid.periodic) if p],
            "patch_sizes": [patch] * grid.ndim, "device": "cpu"}


def check_shape(field, expected, what):
    if np.shape(field) != tuple(expected):
        raise RuntimeError(f"{what} returned shape {np.shape(field)}, expected {tuple(expected)}: "
                           f"the border bookkeeping assumed by this benchmark no longer holds.")


# --- the three measures ----------------------------------------------------------------

def run_volume(manifold, grid, values, patches, cfg, record):
    shape = manifold.shape
    common = 2                                         # ours at order 4 loses 2 layers
    truth = shape.volume_element(grid.points[grid.interior_index(common)])
    full_box = box_volume(shape, grid)
    for label, patch in patches.items():
        args = reference_arguments(grid, patch)
        seconds, element = timed(lambda: ref_volume.volume_element(values, **args),
                                 budget=cfg.budget, repeats=cfg.repeats)
        check_shape(element, grid.interior(1).shape, "microscope volume_element")
        total = ref_volume.compute_total_volume(element, [axis.length for axis in grid.axes])
        record("volume element", label, seconds,
               sup_relative(on_interior(element, grid, 1, common), truth))
        record("total volume", label, np.nan, abs(total - full_box) / full_box)
    for order in (2, 4):
        depth = order // 2
        seconds, element = timed(lambda: metric.volume_element(values, grid, order=order),
                                 budget=cfg.budget, repeats=cfg.repeats)
        check_shape(element, grid.interior(depth).shape, "lib volume_element")
        record("volume element", f"ours o{order}", seconds,
               sup_relative(on_interior(element, grid, depth, common), truth))
        box = box_volume(shape, grid.interior(depth))
        record("total volume", f"ours o{order}", np.nan,
               abs(metric.total_volume(values, grid, order=order) - box) / box)


def run_curvature(manifold, grid, values, patches, cfg, record):
    common = 6                                         # ours intrinsic at order 4 loses 6 layers
    truth = manifold.shape.scalar_curvature(grid.points[grid.interior_index(common)])
    for label, patch in patches.items():
        args = reference_arguments(grid, patch)
        seconds, field = timed(lambda: ref_curvature.scalar_curvature(values, **args),
                               budget=cfg.budget, repeats=cfg.repeats)
        check_shape(field, grid.interior(3).shape, "microscope scalar_curvature")
        record("scalar curvature", label, seconds, sup_relative(on_interior(field, grid, 3, common),
                                                                truth))
    for order in (2, 4):
        depth = 3 * (order // 2)
        seconds, field = timed(lambda: curvature.scalar_curvature(values, grid, order=order),
                               budget=cfg.budget, repeats=cfg.repeats)
        check_shape(field, grid.interior(depth).shape, "lib scalar_curvature")
        record("scalar curvature", f"ours o{order}", seconds,
               sup_relative(on_interior(field, grid, depth, common), truth))

    def gauss_equation(order):
        return extrinsic.grid_scalar_curvature(values, grid, order=order)

    for order in (2, 4):
        try:
            seconds, field = timed(lambda: gauss_equation(order), budget=cfg.budget,
                                   repeats=cfg.repeats)
        except (RuntimeError, MemoryError) as error:
            # Without opt_einsum, torch contracts extrinsic._normal_part's three-operand einsum
            # left to right and builds a (*Q, D, D) projector: 125 GB at D = 4096 on 39x48 points.
            if isinstance(error, RuntimeError) and "allocate" not in str(error):
                raise
            record("scalar curvature", f"ours ext o{order}", np.nan, np.nan)
            NOTES.add(f"ours ext: failed at D = {values.shape[-1]} ({str(error).splitlines()[0][:90]})")
            continue
        check_shape(field, grid.interior(order // 2).shape,
                    "lib grid_scalar_curvature")
        record("scalar curvature", f"ours ext o{order}", seconds,
               sup_relative(on_interior(field, grid, order // 2, common), truth))


def run_reach(manifold, grid, values, with_reference, cfg, record):
    truth = manifold.shape.reach
    cyclic = [i for i, p in enumerate(grid.periodic) if p]
    if with_reference:
        # Minutes at D = 4096 (a D x D projector per query): one repetition when slow.
        seconds, local = timed(lambda: ref_reach.reach_per_point(
            values, range_sizes=[axis.length for axis in grid.axes],
            patch_sizes=[PAPER_PATCH] * grid.ndim, cyclic_dimensions=cyclic,
            subsample_points=REACH_STRIDE, batch_size=REF_REACH_BATCH, device="cpu"),
            budget=cfg.budget, repeats=cfg.repeats)
        record("reach", f"ref p{PAPER_PATCH}", seconds, abs(float(local.min()) - truth) / truth)
    for order in (2, 4):
        seconds, result = timed(lambda: reach.grid_reach(values, grid, order=order,
                                                         stride=REACH_STRIDE),
                                budget=cfg.budget, repeats=cfg.repeats)
        record("reach", f"ours o{order}", seconds, abs(result.reach - truth) / truth)


# --- tables ----------------------------------------------------------------------------

KEYS = ["manifold", "D", "dtype", "grid"]


def wide(frame: pd.DataFrame, measure: str, methods: list[str], with_time=True) -> pd.DataFrame:
    part = frame[frame["measure"] == measure]
    methods = [m for m in methods if m in set(part["method"])]
    table = part.set_index(KEYS + ["method"])[["seconds", "error"]].unstack("method")
    table = table.reindex(pd.MultiIndex.from_frame(part[KEYS].drop_duplicates()))
    columns = {}
    if with_time:
        for m in methods:
            columns[f"t {m} [s]"] = table["seconds"][m]
    for m in methods:
        columns[f"err {m}"] = table["error"][m]
    return pd.DataFrame(columns, index=table.index)


def tables(frame: pd.DataFrame, patches: dict) -> dict[str, pd.DataFrame]:
    refs = list(patches)
    first = refs[0]
    volume = wide(frame, "volume element", refs + ["ours o2", "ours o4"])
    volume.insert(len(refs) + 2, f"{first} / ours o2", volume[f"t {first} [s]"] / volume["t ours o2 [s]"])
    totals = wide(frame, "total volume", refs + ["ours o2", "ours o4"], with_time=False)
    volume = volume.join(totals.rename(columns=lambda c: c.replace("err", "vol err")))

    curv_methods = refs + ["ours o2", "ours o4", "ours ext o2", "ours ext o4"]
    curv = wide(frame, "scalar curvature", curv_methods)
    curv.insert(len(curv_methods), f"{first} / ours o2", curv[f"t {first} [s]"] / curv["t ours o2 [s]"])
    ours = [f"err {m}" for m in curv_methods if m.startswith("ours")]
    curv["err ref / best ours"] = curv[f"err {first}"] / curv[ours].min(axis=1)
    curv["best ours"] = curv[ours].idxmin(axis=1).str.replace("err ", "", regex=False)

    reach_table = wide(frame, "reach", [f"ref p{PAPER_PATCH}", "ours o2", "ours o4"])
    reach_table.insert(3, "ref / ours o2",
                       reach_table[f"t ref p{PAPER_PATCH} [s]"] / reach_table["t ours o2 [s]"])
    return {"volume element and total volume": volume, "scalar curvature": curv,
            "reach (stride 2)": reach_table}


def targets(frame: pd.DataFrame, patches: dict, high_dim: int) -> pd.DataFrame:
    """The targets of issues 16 and 23, checked case by case."""
    def seconds(measure, method):
        part = frame[(frame["measure"] == measure) & (frame["method"] == method)]
        return part.set_index(KEYS)["seconds"]

    rows = []
    for label in patches:
        ratio = ((seconds("volume element", label) + seconds("scalar curvature", label))
                 / (seconds("volume element", "ours o2") + seconds("scalar curvature", "ours o2")))
        ratio = ratio.dropna()
        rows.append({"target": f"volume + curvature >= 3x faster ({label} / ours o2)",
                     "met": f"{int((ratio >= 3).sum())}/{len(ratio)}",
                     "worst": f"{ratio.min():.2f}x ({', '.join(map(str, ratio.idxmin()))})",
                     "median": f"{ratio.median():.2f}x"})
    ref_reach_time = seconds("reach", f"ref p{PAPER_PATCH}")
    ratio = (ref_reach_time / seconds("reach", "ours o2")).dropna()
    ratio = ratio[ratio.index.get_level_values("D") == high_dim]
    if len(ratio):
        rows.append({"target": f"reach >= 100x faster at D = {high_dim}",
                     "met": f"{int((ratio >= 100).sum())}/{len(ratio)}",
                     "worst": f"{ratio.min():.1f}x ({', '.join(map(str, ratio.idxmin()))})",
                     "median": f"{ratio.median():.1f}x"})
    curv = frame[frame["measure"] == "scalar curvature"].set_index(KEYS + ["method"])["error"]
    curv = curv.unstack("method")
    first = list(patches)[0]
    for variant in ("ours o2", "ours o4", "ours ext o2", "ours ext o4"):
        gain = (curv[first] / curv[variant]).dropna()
        if not len(gain):
            continue
        rows.append({"target": f"curvature error <= 1/10 of the reference's ({variant})",
                     "met": f"{int((gain >= 10).sum())}/{len(curv)}" + (
                         f" ({len(curv) - len(gain)} not run)" if len(gain) < len(curv) else ""),
                     "worst": f"{gain.min():.2g}x ({', '.join(map(str, gain.idxmin()))})",
                     "median": f"{gain.median():.3g}x"})
    # Issue 23's targets: the reach at least as fast as the reference everywhere, the
    # extrinsic curvature at least as fast as the intrinsic one at high D, and order 4 in
    # float32 not less accurate than order 2 (documented instead: see scalar_curvature).
    ratio = (ref_reach_time / seconds("reach", "ours o2")).dropna()
    if len(ratio):
        rows.append({"target": "reach at least as fast as the reference (every D, dtype)",
                     "met": f"{int((ratio >= 1).sum())}/{len(ratio)}",
                     "worst": f"{ratio.min():.2f}x ({', '.join(map(str, ratio.idxmin()))})",
                     "median": f"{ratio.median():.2f}x"})
    speed = (seconds("scalar curvature", "ours o2")
             / seconds("scalar curvature", "ours ext o2")).dropna()
    speed = speed[speed.index.get_level_values("D") == high_dim]
    if len(speed):
        rows.append({"target": f"extrinsic curvature at least as fast as intrinsic at "
                               f"D = {high_dim} (order 2)",
                     "met": f"{int((speed >= 1).sum())}/{len(speed)}",
                     "worst": f"{speed.min():.2f}x ({', '.join(map(str, speed.idxmin()))})",
                     "median": f"{speed.median():.2f}x"})
    if {"ours o2", "ours o4"} <= set(curv.columns):
        single = curv[curv.index.get_level_values("dtype") == "float32"]
        gain = (single["ours o2"] / single["ours o4"]).dropna()
        if len(gain):
            rows.append({"target": "float32 order-4 curvature error <= order 2's",
                         "met": f"{int((gain >= 1).sum())}/{len(gain)}",
                         "worst": f"{gain.min():.2g}x ({', '.join(map(str, gain.idxmin()))})",
                         "median": f"{gain.median():.3g}x"})
    return pd.DataFrame(rows).set_index("target")


def formatted(table: pd.DataFrame) -> str:
    def cell(column):
        if column.startswith("t "):
            return lambda v: "" if pd.isna(v) else f"{v:.3g}"
        if "/" in column:
            return lambda v: "" if pd.isna(v) else f"{v:.3g}x"
        if column.startswith(("err", "vol err")):
            return lambda v: "" if pd.isna(v) else f"{v:.1e}"
        return str
    return table.to_string(formatters={c: cell(c) for c in table.columns})


# --- main ------------------------------------------------------------------------------

def warm_up():
    """One small call of every function, so that no timing pays for first-call set-up."""
    manifold = MANIFOLDS[1]
    grid, values = sample(manifold, (17, 24), 3, "float64")
    args = reference_arguments(grid, PAPER_PATCH)
    ref_volume.volume_element(values, **args)
    ref_curvature.scalar_curvature(values, **args)
    ref_reach.reach_per_point(values, [a.length for a in grid.axes], [PAPER_PATCH] * 2, [1],
                              subsample_points=2, device="cpu")
    metric.volume_element(values, grid)
    curvature.scalar_curvature(values, grid)
    extrinsic.grid_scalar_curvature(values, grid)
    reach.grid_reach(values, grid, stride=2)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny grids, D = 256: a smoke run of seconds")
    parser.add_argument("--full", action="store_true",
                        help="also time the reference's float64 reach at D = 4096 (adds about 4 minutes)")
    parser.add_argument("--tuned-patch", type=int, default=32,
                        help="second, faster patch size for the reference's volume and curvature "
                             "(0 to skip; the paper's is 10)")
    parser.add_argument("--csv", type=Path, default=RESULTS, help="where to write the long-format table")
    args = parser.parse_args(argv)
    cfg = settings(args)
    patches = {f"ref p{PAPER_PATCH}": PAPER_PATCH}
    if args.tuned_patch and args.tuned_patch != PAPER_PATCH:
        patches[f"ref p{args.tuned_patch}"] = args.tuned_patch

    started = time.perf_counter()
    warm_up()
    records = []
    for manifold in MANIFOLDS:
        for ambient, size in ((manifold.shape.native_dim, cfg.native_size), (cfg.high_dim, cfg.high_size)):
            for dtype in ("float32", "float64"):
                grid, values = sample(manifold, size, ambient, dtype)
                key = {"manifold": manifold.name, "D": ambient, "dtype": dtype,
                       "grid": "x".join(map(str, grid.shape))}

                def record(measure, method, seconds, error):
                    records.append({**key, "measure": measure, "method": method,
                                    "seconds": seconds, "error": error})

                run_volume(manifold, grid, values, patches, cfg, record)
                if manifold.shape.dim >= 2:          # a curve has S = 0 identically
                    run_curvature(manifold, grid, values, patches, cfg, record)
                if ambient == manifold.shape.native_dim:
                    run_reach(manifold, grid, values, True, cfg, record)
                elif manifold.name in cfg.reach_high:
                    with_reference = dtype in cfg.ref_reach_high_dtypes
                    if not with_reference:
                        NOTES.add(f"reference reach at D = {ambient} in {dtype} not timed "
                                  f"(minutes; run with --full)")
                    run_reach(manifold, grid, values, with_reference, cfg, record)
                print(f"[{time.perf_counter() - started:6.1f} s] {manifold.name} D={ambient} {dtype}",
                      file=sys.stderr, flush=True)

    frame = pd.DataFrame(records)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.csv, index=False)
    pd.set_option("display.width", 250)
    print(f"lib against manifold-microscope 0.2.0 (reference); times in seconds, best of up to "
          f"{cfg.repeats} repeats; errors relative to the closed form.\n")
    for title, table in tables(frame, patches).items():
        print(f"== {title} ==\n{formatted(table)}\n")
    print(f"== targets ==\n{targets(frame, patches, cfg.high_dim).to_string()}\n")
    for note in sorted(NOTES):
        print(f"note: {note}")
    print(f"wall time {time.perf_counter() - started:.1f} s; table written to {args.csv}")
    return frame


if __name__ == "__main__":
    main()
