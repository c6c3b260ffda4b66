"""Chapter "Measuring geometry on a grid": finite differences against closed forms.

Two questions. How fast do the grid estimators (volume element, scalar
curvature by the intrinsic and the extrinsic route, reach) converge to the
closed forms as the grid is refined, and at which order? And what do
general-purpose point-cloud estimators give on the same manifolds at the
same number of points?
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lib.datasets import toy
from lib.estimators.intrinsic_dim import LevinaBickelMLE, TwoNN
from lib.estimators.local import aamari_reach, knn_volume, quadratic_fit_curvature
from lib.geometry import curvature, metric
from lib.geometry.differences import derivatives
from lib.geometry.extrinsic import scalar_curvature_from_derivatives
from lib.geometry.reach import grid_reach
from lib.grid import Grid
from lib.params import ChapterConfig, Choice, Integer, Specification
from lib.plans import Stage, local_reach_cost

__all__ = ["PARAMETERS", "SIZES", "Config", "testbed", "convergence", "fitted_orders",
           "order_summary", "baselines", "plan"]

PARAMETERS = Specification("grid-geometry", (
    Choice("preset", "default", ("ci", "default", "paper"),
           "problem sizes: ci (seconds), default (a laptop, minutes), paper (dense)"),
    Integer("seed", 0, 0, 2**32 - 1, "seeds the isometric embedding and the point samples"),
    Integer("ambient_dim", 64, 3, 4096, "dimension D of the isometric embedding"),
))

# Refinement levels: each halves every grid spacing (see Testbed).
SIZES = {
    "ci": dict(levels=(0, 1, 2), reach_orders=(4,), baseline_levels=(0, 1), neighbours=12),
    "default": dict(levels=(0, 1, 2, 3), reach_orders=(2, 4), baseline_levels=(0, 1, 2),
                    neighbours=16),
    "paper": dict(levels=(0, 1, 2, 3, 4), reach_orders=(2, 4), baseline_levels=(0, 1, 2, 3),
                  neighbours=24),
}


class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES):
    """Validated parameters of the chapter plus the sizes of its preset."""


@dataclass(frozen=True)
class Testbed:
    """A manifold with a chart that avoids coordinate singularities.

    ``axes`` maps each parameter to ``(start, stop, periodic, n0)``: its range and
    its number of samples at refinement level 0. Level l halves every spacing l
    times (n0 * 2^l samples on a periodic axis, (n0 - 1) * 2^l + 1 on an interval).
    """

    name: str
    manifold: toy.ToyManifold
    axes: dict

    def grid(self, level: int) -> Grid:
        specs = {}
        for name, (start, stop, periodic, n0) in self.axes.items():
            specs[name] = ((start, stop, n0 * 2**level, "periodic") if periodic
                           else (start, stop, (n0 - 1) * 2**level + 1))
        return Grid.product(**specs)


def testbed() -> list[Testbed]:
    """Ellipse, torus, an ellipsoid band and a hyperboloid patch (periodic and interval axes)."""
    two_pi, band = 2 * math.pi, 0.45
    # Level-0 sizes give comparable spacings (about 0.2-0.4) and at least the 14 samples
    # per interval axis that order-4 intrinsic curvature needs.
    return [
        Testbed("ellipse", toy.Ellipse(1.0, 0.5), {"t": (0.0, two_pi, True, 16)}),
        Testbed("torus", toy.Torus(1.0, 0.6),
                {"u": (0.0, two_pi, True, 16), "v": (0.0, two_pi, True, 16)}),
        Testbed("ellipsoid band", toy.Ellipsoid(1.0, 0.8, 0.6),
                {"theta": (band, math.pi - band, False, 15), "phi": (0.0, two_pi, True, 24)}),
        Testbed("hyperboloid", toy.Hyperboloid(0.5, 0.4, 1.0),
                {"t": (-1.0, 1.0, False, 15), "u": (0.0, two_pi, True, 24)}),
    ]


def _embedded_points(bed, grid, config, index):
    return toy.embed(bed.manifold.points(grid), config.ambient_dim, seed=[config.seed, index])


def _timed(function, *args, **kwargs):
    """``function(*args, **kwargs)`` and its wall time in seconds."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def _relative(estimate, truth):
    return abs(estimate - truth) / abs(truth)


def convergence(config: Config) -> pd.DataFrame:
    """Errors of the grid estimators against closed forms over a ladder of grid spacings.

    Measures: total volume of the charted region (the same trapezoid rule on
    the same sub-grid for estimate and truth, so only the stencil's error
    remains); scalar curvature, max absolute error over the sub-grid relative
    to the largest ``|S|``, by the intrinsic route (Christoffel symbols, three
    nested differences) and the extrinsic route (second fundamental form and
    Gauss equation); reach, relative error of the grid minimum.

    Returns
    -------
    DataFrame
        With columns ``manifold, measure, method, order, level, spacing,
        error, seconds``.
    """
    rows = []
    for index, bed in enumerate(testbed()):
        manifold = bed.manifold
        for level in config.sizes["levels"]:
            grid = bed.grid(level)
            values = _embedded_points(bed, grid, config, index)
            base = dict(manifold=bed.name, level=level, spacing=grid.max_spacing)
            for order in (2, 4):
                depth = order // 2
                inner = grid.interior(depth)
                theta = grid.points[grid.interior_index(depth)]
                estimate, seconds = _timed(metric.total_volume, values, grid, order=order)
                truth = inner.integrate(manifold.volume_element(theta))
                rows.append(dict(base, measure="volume", method="finite differences",
                                 order=order, error=_relative(estimate, truth), seconds=seconds))
                if manifold.dim == 2:
                    rows += _curvature_rows(base, manifold, values, grid, order)
                if order not in config.sizes["reach_orders"]:
                    continue
                reach, seconds = _timed(grid_reach, values, grid, order=order)
                rows.append(dict(base, measure="reach", method="finite differences",
                                 order=order, error=_relative(reach.reach, manifold.reach),
                                 seconds=seconds))
    return pd.DataFrame(rows)


def _curvature_rows(base, manifold, values, grid, order):
    rows = []
    depth = order // 2
    intrinsic, seconds = _timed(curvature.scalar_curvature, values, grid, order=order)
    truth = manifold.scalar_curvature(grid.points[grid.interior_index(3 * depth)])
    rows.append(dict(base, measure="scalar curvature", method="intrinsic (Christoffel)",
                     order=order, seconds=seconds,
                     error=np.abs(intrinsic - truth).max() / np.abs(truth).max()))
    der, seconds = _timed(derivatives, values, grid, order=order)
    via_gauss, more = _timed(scalar_curvature_from_derivatives, der.jacobian, der.hessian)
    seconds += more
    truth = manifold.scalar_curvature(grid.points[grid.interior_index(depth)])
    rows.append(dict(base, measure="scalar curvature", method="extrinsic (Gauss equation)",
                     order=order, seconds=seconds,
                     error=np.abs(via_gauss - truth).max() / np.abs(truth).max()))
    return rows


def fitted_orders(table: pd.DataFrame) -> pd.DataFrame:
    """Slope of log(error) against log(h) per manifold, measure, method and stencil order.

    The slope is the observed convergence order; its 95% interval comes from
    the standard error of the least-squares fit (scipy.stats.linregress).
    Errors at rounding level (below 1e-11, far under any discretisation error
    here) are left out of the fit, and no slope is fitted from fewer than two.
    """
    rows = []
    keys = ["manifold", "measure", "method", "order"]
    for key, part in table.groupby(keys, sort=False):
        part = part[part["error"] > 1e-11]
        if len(part) < 2:
            rows.append(dict(zip(keys, key), **{"observed order": np.nan, "95% interval": ""}))
            continue
        fit = stats.linregress(np.log(part["spacing"]), np.log(part["error"]))
        half = (stats.t.ppf(0.975, len(part) - 2) * fit.stderr) if len(part) > 2 else np.nan
        interval = f"[{fit.slope - half:.2f}, {fit.slope + half:.2f}]" if np.isfinite(half) else ""
        rows.append(dict(zip(keys, key), **{"observed order": fit.slope,
                                             "95% interval": interval}))
    return pd.DataFrame(rows)


def order_summary(orders: pd.DataFrame) -> pd.DataFrame:
    """:func:`fitted_orders` as one row per estimator and one column per stencil order.

    Cells read ``observed [95% interval]``; a dash where no slope was fitted.
    """
    def cell(row):
        if not np.isfinite(row["observed order"]):
            return "–"
        return f"{row['observed order']:.2f} {row['95% interval']}".strip()

    labelled = orders.assign(cell=orders.apply(cell, axis=1),
                             stencil=orders["order"].map(lambda o: f"order {o}"))
    wide = labelled.pivot_table(index=["manifold", "measure", "method"], columns="stencil",
                                values="cell", aggfunc="first", sort=False)
    return wide.reset_index().rename_axis(columns=None).fillna("–")


def baselines(config: Config) -> pd.DataFrame:
    """Grid estimators against point-cloud estimators at the same number of points, on the torus.

    The point cloud is drawn uniformly in volume (``toy.Torus.sample``) with
    as many points as the grid has, then embedded like the grid. Point-cloud
    methods: kNN volume, quadratic-fit curvature (median absolute error,
    relative to max ``|S|``), Aamari reach with local-PCA tangents, and the
    TwoNN and Levina-Bickel intrinsic dimension (the grid knows d = 2).

    Returns
    -------
    DataFrame with columns ``measure, method, points, error, seconds``.
    """
    bed = next(b for b in testbed() if b.name == "torus")
    torus, k = bed.manifold, config.sizes["neighbours"]
    rng = np.random.default_rng(config.seed)
    rows = []
    for level in config.sizes["baseline_levels"]:
        grid = bed.grid(level)
        values = _embedded_points(bed, grid, config, 1)
        theta = torus.sample(grid.size, seed=rng)
        cloud = toy.embed(torus.points(theta), config.ambient_dim, seed=[config.seed, 1])
        n = grid.size
        truth_s = torus.scalar_curvature(grid.points)
        scale_s = np.abs(truth_s).max()
        volume, t = _timed(metric.total_volume, values, grid, order=4)
        rows.append(dict(measure="total volume", method="grid, order 4", points=n, seconds=t,
                         error=_relative(volume, torus.total_volume)))
        volume, t = _timed(knn_volume, cloud, n_neighbors=k, dim=2)
        rows.append(dict(measure="total volume", method="kNN balls", points=n, seconds=t,
                         error=_relative(volume, torus.total_volume)))

        der, t = _timed(derivatives, values, grid, order=4)
        s_grid = scalar_curvature_from_derivatives(der.jacobian, der.hessian)
        rows.append(dict(measure="scalar curvature", method="grid, order 4", points=n,
                         seconds=t, error=float(np.median(np.abs(s_grid - truth_s))) / scale_s))
        fit, t = _timed(quadratic_fit_curvature, cloud, n_neighbors=k, dim=2)
        s_cloud = np.asarray(fit.scalar_curvature)
        rows.append(dict(measure="scalar curvature", method="local quadratic fit", points=n,
                         seconds=t, error=float(np.median(np.abs(
                             s_cloud - torus.scalar_curvature(theta)))) / scale_s))

        reach, t = _timed(grid_reach, values, grid, order=4)
        rows.append(dict(measure="reach", method="grid, order 4", points=n, seconds=t,
                         error=_relative(reach.reach, torus.reach)))
        reach, t = _timed(aamari_reach, cloud, n_neighbors=k, dim=2)
        rows.append(dict(measure="reach", method="Aamari, local-PCA tangents", points=n,
                         seconds=t, error=_relative(reach.reach, torus.reach)))

        for estimator in (TwoNN(), LevinaBickelMLE(n_neighbors=k)):
            fitted, t = _timed(estimator.fit, cloud)
            rows.append(dict(measure="intrinsic dimension", method=type(estimator).__name__,
                             points=n, seconds=t, error=_relative(fitted.dimension_, 2.0)))
    return pd.DataFrame(rows)


# --- the plan of a run: its cost, before it runs ------------------------------------------------

# Cost model in floating-point operations, or for memory-bound work its equivalent at the
# dense rate of lib.plans.machine_speed (about 8e10 FLOP/s on one thread of the 2-core
# machine), measured there: one central-difference gradient costs about 20 ns per grid
# point, ambient dimension and axis (the reach's is lib.plans.local_reach_cost);
# an exact neighbour search about 13 flop-equivalents per pair of points and dimension
# (float64 distances and top-k); a local PCA or quadratic fit about 0.12 ms per point.
_STENCIL = 2.0e3
_NEIGHBOURS = 13.0
_LOCAL_FIT = 1.0e7
_CLOSED_FORM = 300.0       # a closed-form field (volume element, curvature) at one chart point


def plan(config: Config) -> list[Stage]:
    """The stages of a chapter run and the model of their cost, computing nothing.

    Three kinds of unit, from the testbed's grid sizes alone:

    - ``finite differences on a grid``: one per testbed manifold and
      refinement level (:func:`convergence`): the embedded points, the total
      volume and, on surfaces, the scalar curvature by the intrinsic and the
      extrinsic route, each at stencil orders 2 and 4;
    - ``grid reach``: one per manifold, level and ``reach_orders`` entry
      (:func:`convergence`), every interior point against every grid point;
    - ``point-cloud baselines on the torus``: one per ``baseline_levels``
      entry (:func:`baselines`): the grid estimators at order 4 beside kNN
      volume, quadratic-fit curvature, Aamari reach with local-PCA tangents,
      TwoNN and the Levina-Bickel MLE on as many sampled points.

    A unit's cost is the mean over the units of its stage, its memory the
    largest. Nothing is cached by unit (``cached`` is None) and nothing runs
    in parallel. Memory-bound work is counted in flop-equivalents at the
    dense rate (the module's ``_STENCIL``, :mod:`lib.plans`' ``REACH_*``, ``_NEIGHBOURS`` and
    ``_LOCAL_FIT``, measured on one thread of a 2-core machine).

    Returns
    -------
    list of lib.plans.Stage
    """
    sizes, ambient = config.sizes, config.ambient_dim
    beds = testbed()
    differences, reach = [], []
    for bed in beds:
        k, native = bed.manifold.dim, bed.manifold.native_dim
        # Gradients per stencil order: the volume, and on surfaces the intrinsic curvature
        # (about 1.5: three nested stencils, the last two on k x k fields) and the
        # extrinsic route's Jacobian and Hessian (1 + k).
        gradients = 1 + (1.5 + 1 + k if k == 2 else 0)
        for level in sizes["levels"]:
            grid = bed.grid(level)
            n = grid.size
            flops = (2 * n * native * ambient + 2 * gradients * n * ambient * k * _STENCIL
                     + 4 * n * _CLOSED_FORM)
            # Points, tangents and the Hessian's k x k second differences, in float64.
            differences.append((flops, n * ambient * (1 + 2 * k + k * k) * 8.0))
            for order in sizes["reach_orders"]:
                queries = grid.interior(order // 2).size
                search, peak = local_reach_cost(queries, n, ambient, k)
                reach.append((search + n * ambient * k * _STENCIL,
                              peak + n * ambient * (1 + k) * 8.0))
    torus = next(bed for bed in beds if bed.name == "torus")
    k, clouds = torus.manifold.dim, []
    for level in sizes["baseline_levels"]:
        n = torus.grid(level).size
        grid_work = (1 + 1 + k) * n * ambient * k * _STENCIL
        search, peak = local_reach_cost(n, n, ambient, k)   # grid reach and Aamari's
        # Five exact neighbour searches (kNN volume, quadratic fit, local PCA, TwoNN, MLE).
        cloud_work = 5 * _NEIGHBOURS * n * n * ambient + 2 * n * _LOCAL_FIT
        clouds.append((grid_work + 2 * search + cloud_work,
                       peak + n * ambient * (2 + k + k * k) * 8.0))
    return [Stage.of_units(name, [(0, 0, flops, peak) for flops, peak in costs], cached=None)
            for name, costs in (("finite differences on a grid", differences),
                                ("grid reach", reach),
                                ("point-cloud baselines on the torus", clouds))]
