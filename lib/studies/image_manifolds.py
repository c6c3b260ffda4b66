"""Chapter "The image manifolds": the testbed's two image data sets, measured on their grids.

Three questions. What do the images look like along each parameter axis?
What are the volume, curvature, reach and mutual distances of each class
manifold (the paper's per-class table)? And how close are the
finite-difference tangents and curvatures the paper uses to the exact ones,
which our smooth renderers give by automatic differentiation?

Both data sets are rendered here, through :mod:`lib.datasets.testbed`:
extended dSprites (:mod:`lib.datasets.dsprites`) and the offline turntable
set (:mod:`lib.datasets.turntable`), the stand-in for extended COIL-20.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from lib.datasets import dsprites, testbed
from lib.geometry.differences import stencil_derivatives
from lib.geometry.extrinsic import scalar_curvature_from_derivatives
from lib.geometry.measures import class_measures, scaled_measures
from lib.geometry.pointwise import volume_element_from_jacobian
from lib.grid import Grid
from lib.params import ChapterConfig, Choice, Integer, Real, Specification
from lib.plans import Stage, class_measures_cost, render_flops

__all__ = ["PARAMETERS", "SIZES", "BUFFER", "Config", "AxisSweep", "axis_sweeps", "gallery",
           "class_geometry", "scaled_geometry", "tangent_convergence", "fitted_orders", "plan"]

PARAMETERS = Specification("image-manifolds", (
    Choice("preset", "default", ("ci", "default", "paper"),
           "problem sizes: ci (seconds), default (a laptop, minutes), paper (the paper's grids)"),
    Integer("seed", 0, 0, 2**32 - 1, "picks the parameter points where differences meet autodiff"),
    Integer("dsprites_dim", 3, 1, 4,
            "free axes of extended dSprites: 4 scale rotation y x, 3 drops x, 2 scale rotation, "
            "1 rotation"),
    Integer("turntable_dim", 3, 1, 3,
            "free axes of the turntable set: 3 view scale rotation, 2 view rotation, 1 view"),
    Real("blur", 0.8, 0.0, 4.0, "extra Gaussian blur of the dSprites images in pixels (paper 0.8)"),
))

# Interval axes carry this many extra samples at each end (the paper's buffer), so that
# every estimator, including three nested order-2 stencils, is defined on the measured region.
BUFFER = 3
# Successive steps of the finite-difference ladder shrink by this factor.
REFINE = 4

SIZES = {
    "ci": dict(dsprites=dict(scales=10, rotations=12, translations=10, max_shift=9.0),
               turntable=dict(objects=4, views=12, scales=10, rotations=8, base_size=64),
               convergence=dict(dsprites=(1, 2), turntable=(1, 1)), steps=4, reach_stride=2),
    "default": dict(dsprites=dict(), turntable=dict(objects=20, views=18, scales=22,
                                                    rotations=16, base_size=128),
                    convergence=dict(dsprites=(3, 3), turntable=(1, 2)), steps=5, reach_stride=2),
    "paper": dict(dsprites=dict(), turntable=dict(objects=20, views=18, scales=22,
                                                  rotations=16, base_size=128),
                  convergence=dict(dsprites=(3, 8), turntable=(2, 4)), steps=6, reach_stride=2),
}


class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES):
    """Validated parameters of the chapter plus the sizes of its preset."""


# --- the two data sets ----------------------------------------------------------------


def _sources(config: Config) -> list[testbed.Testbed]:
    """dSprites with the chapter's blur and the first ``objects`` turntable objects, at its d."""
    sizes = config.sizes["turntable"]
    return [testbed.image_testbed("dsprites", config.dsprites_dim, blur=config.blur,
                                  **config.sizes["dsprites"]),
            testbed.image_testbed("turntable", config.turntable_dim,
                                  classes=testbed.labels("turntable")[:sizes["objects"]],
                                  base_size=sizes["base_size"], views=sizes["views"],
                                  scales=sizes["scales"], rotations=sizes["rotations"])]


def _class_images(config: Config, source: testbed.Testbed, label: str) -> torch.Tensor:
    """One class rendered on the full grid in float64, flattened: (*grid.shape, D)."""
    return source.grid_images(label)


# --- what the images look like ----------------------------------------------------------


@dataclass(frozen=True)
class AxisSweep:
    """Images of one class along one axis, the others mid-range (interval) or at 0 (angles).

    ``images`` has shape (n, H, W) and ``values`` the n parameter values.
    """

    dataset: str
    label: str
    axis: str
    values: np.ndarray
    images: np.ndarray


def _centre(grid: Grid) -> np.ndarray:
    """Mid-range on interval axes, angle 0 on periodic ones (the upright, unturned view)."""
    return np.array([axis.start + (0 if axis.periodic else axis.length / 2) for axis in grid.axes])


def axis_sweeps(config: Config, *, steps: int = 8) -> list[AxisSweep]:
    """For each data set and axis, ``steps`` images of one class across the axis range."""
    sweeps = []
    for source, label in zip(_sources(config), (dsprites.SHAPES[2], None)):
        label = label or source.classes[0]
        centre = _centre(source.grid)
        for index, axis in enumerate(source.grid.axes):
            stop = axis.stop - (axis.spacing if axis.periodic else 0)
            values = np.linspace(axis.start, stop, steps)
            theta = np.repeat(centre[None], steps, axis=0)
            theta[:, index] = values
            images = source.render(label, torch.as_tensor(theta, dtype=torch.float32))
            sweeps.append(AxisSweep(source.name, label, axis.name, values, images.numpy()))
    return sweeps


def gallery(config: Config) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """Every class of each data set at the centre of its grid: name -> (labels, (C, H, W))."""
    result = {}
    for source in _sources(config):
        theta = torch.as_tensor(_centre(source.grid), dtype=torch.float32)
        images = torch.stack([source.render(label, theta) for label in source.classes])
        result[source.name] = (source.classes, images.numpy())
    return result


# --- per-class geometry -----------------------------------------------------------------


def class_geometry(config: Config) -> pd.DataFrame:
    """The paper's per-class measurements on the raw images, by order-2 finite differences.

    :func:`lib.geometry.measures.class_measures` of each data set's classes,
    rendered one class at a time, on ``grid.interior(BUFFER)``: the paper's
    grid without its buffer layers. Per class: total volume (integral of
    sqrt(det g)); total scalar curvature, integral of S dvol, with its
    positive and negative parts (S clipped to its 1%/99% quantiles); the
    minimum and the integral of the local reach (every ``reach_stride``-th
    point per axis as queries and candidates, tangents from the full grid,
    the paper's protocol); and the mean distance ``|x_a(theta) - x_b(theta)|`` to
    every other class at equal parameters.

    Returns
    -------
    DataFrame
        With columns ``dataset, dim, class, volume, curvature,
        curvature+, curvature-, min reach, reach integral, class distance``, all
        on the raw (unscaled) images; see :func:`scaled_geometry`.
    """
    parts = []
    for source in _sources(config):
        # Rendered lazily, one class at a time: a class is a few hundred MB in float64.
        classes = {label: functools.partial(_class_images, config, source, label)
                   for label in source.classes}
        table = class_measures(classes, source.grid, buffer=BUFFER,
                               reach_stride=config.sizes["reach_stride"])
        # Rendered images are never degenerate (class_measures raises if they are).
        table = table.drop(columns="degenerate points")
        table.insert(0, "dataset", source.name)
        table.insert(1, "dim", source.grid.ndim)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def scaled_geometry(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`class_geometry` after rescaling each data set's union of classes to volume 1.

    :func:`lib.geometry.measures.scaled_measures` per data set: x -> x / V^(1/k)
    with V the summed class volumes (the paper's normalisation). Under x -> c x
    lengths scale by c, k-volumes by c^k, scalar curvature by c^-2, so total
    curvature by c^(k-2) and the reach integral by c^(k+1): the scaled values
    follow exactly from the raw ones.
    """
    parts = [scaled_measures(part, int(part["dim"].iloc[0]))
             for _, part in table.groupby("dataset", sort=False)]
    return pd.concat(parts, ignore_index=True)


# --- finite differences against autodiff ---------------------------------------------------


def _relative_error(estimate, truth) -> float:
    return float((estimate - truth).norm() / truth.norm())


def tangent_convergence(config: Config) -> pd.DataFrame:
    """Errors of finite-difference derivatives of the images against the exact ones.

    At random parameter points of the measured region, the central-difference
    Jacobian and Hessian with steps ``h = grid spacing / REFINE^j`` (j = 0 is
    the data set's own grid; :func:`~lib.geometry.differences.stencil_derivatives`,
    the grid's stencils evaluated at one point) are compared with the autodiff values
    of the renderer, in float64: the relative Frobenius error of the tangents
    J, the relative error of the volume element, and the error of the scalar
    curvature by the Gauss equation relative to the exact ``|S|`` (one stencil
    deep, so it needs only the stencil's points around the centre).

    Returns
    -------
    DataFrame
        With columns ``dataset, class, point, order, level, spacing,
        quantity, error``; ``spacing`` is the largest step over the axes.
    """
    rng = np.random.default_rng(config.seed)
    sizes = config.sizes
    rows = []
    for source in _sources(config):
        base_spacing = np.array(source.grid.spacing)
        classes, queries = sizes["convergence"][source.name]
        theta = source.grid.interior(BUFFER).uniform_points(queries, seed=rng)
        for label in source.classes[:classes]:
            exact = source.derivatives(label, torch.as_tensor(theta, dtype=torch.float64))
            jac_exact = torch.as_tensor(exact.jacobian)
            hess_exact = torch.as_tensor(exact.hessian)
            s_exact = (scalar_curvature_from_derivatives(jac_exact, hess_exact) if source.dim >= 2
                       else None)
            v_exact = volume_element_from_jacobian(jac_exact)
            for point, centre in enumerate(theta):
                for order in (2, 4):
                    for level in range(sizes["steps"]):
                        spacing = base_spacing / REFINE**level
                        fd = stencil_derivatives(
                            lambda t: source.render(label, t).flatten(start_dim=-2),
                            torch.as_tensor(centre), spacing, order=order)
                        jac, hess = fd.jacobian, fd.hessian
                        base = dict(dataset=source.name, **{"class": label}, point=point,
                                    order=order, level=level, spacing=float(spacing.max()))
                        rows += [
                            dict(base, quantity="tangents",
                                 error=_relative_error(jac, jac_exact[point])),
                            dict(base, quantity="volume element",
                                 error=abs(float(volume_element_from_jacobian(jac)
                                                 / v_exact[point]) - 1)),
                        ]
                        if source.dim >= 2:  # a curve has no intrinsic curvature
                            s_fd = scalar_curvature_from_derivatives(jac, hess)
                            rows.append(dict(base, quantity="scalar curvature",
                                             error=abs(float(s_fd - s_exact[point]))
                                             / abs(float(s_exact[point]))))
    return pd.DataFrame(rows)


def fitted_orders(table: pd.DataFrame, *, finest: int = 3) -> pd.DataFrame:
    """Observed convergence order per data set, quantity and stencil order.

    The slope of log(median error over classes and points) against log(h),
    fitted over the ``finest`` smallest steps whose median error is above
    rounding (1e-11): coarser steps are often outside the asymptotic regime,
    and the column ``error at grid spacing`` reports them instead.

    Returns
    -------
    DataFrame
        With columns ``dataset, quantity, order, observed order, error
        at grid spacing, finer from, finer to``: the steps fitted, as how many
        times finer than the grid spacing (the largest step) they are.
    """
    keys = ["dataset", "quantity", "order"]
    medians = table.groupby([*keys, "spacing"], sort=False)["error"].median().reset_index()
    rows = []
    for key, part in medians.groupby(keys, sort=False):
        part = part.sort_values("spacing")
        grid_spacing = float(part["spacing"].iloc[-1])
        at_grid = float(part["error"].iloc[-1])
        part = part[part["error"] > 1e-11].head(finest)
        slope = (np.polyfit(np.log(part["spacing"]), np.log(part["error"]), 1)[0]
                 if len(part) >= 2 else math.nan)
        rows.append(dict(zip(keys, key), **{"observed order": slope,
                                             "error at grid spacing": at_grid,
                                             "finer from": grid_spacing / part["spacing"].max(),
                                             "finer to": grid_spacing / part["spacing"].min()}))
    return pd.DataFrame(rows)


# --- the plan of a run: its cost, before it runs ------------------------------------------------

# Cost model in flop-equivalents at the dense rate of lib.plans.machine_speed (rendering,
# class_measures and the reach are lib.plans.render_flops and class_measures_cost),
# measured on one thread, float64: the renderers' exact Jacobian and Hessian (d = 3) cost
# about 13 us per pixel and point (dSprites) and 0.4 s plus 0.5 ms per base pixel and point
# (turntable).
_SPRITE_DERIVATIVES_PIXEL = 1.1e6
_VIEW_DERIVATIVES = (3.5e10, 4.0e7)       # per point: fixed, per base pixel


def _is_turntable(source: testbed.Testbed) -> bool:
    return source.name == "turntable"


def _stencil_points(order: int, k: int) -> int:
    """Images :func:`~lib.geometry.differences.stencil_derivatives` renders at one point."""
    return 1 + order * k + order**2 * k * (k - 1) // 2


def _derivatives_flops(source: testbed.Testbed) -> float:
    """The renderer's exact Jacobian and Hessian at one point (scaled from d = 3)."""
    passes = (1 + source.dim + source.dim**2) / 13
    if not _is_turntable(source):
        return passes * source.image_size ** 2 * _SPRITE_DERIVATIVES_PIXEL
    fixed, per_pixel = _VIEW_DERIVATIVES
    return passes * (fixed + per_pixel * source.base_size ** 2)


def plan(config: Config) -> list[Stage]:
    """The stages of a chapter run and the model of their cost, computing nothing.

    Per data set (extended dSprites, the turntable set), from the grids' and
    images' sizes alone:

    - ``<data set> class on its grid``: one per class (:func:`class_geometry`):
      the class rendered on the whole grid in float64 (a turntable class
      renders one view per ``view`` sample, then scales and rotates every
      image) and measured by :func:`lib.geometry.measures.class_measures`
      (tangents, intrinsic curvature, the strided reach);
    - ``<data set> point: differences against autodiff``: one per class and
      parameter point of ``convergence`` (:func:`tangent_convergence`): the
      renderer's exact derivatives and the order-2 and order-4 stencils at
      ``steps`` step sizes, every stencil point a rendered image;
    - ``thumbnails of a data set``: the gallery (every class at the grid's
      centre) and the axis sweeps, one unit per data set.

    Nothing is cached by unit (``cached`` is None) and nothing runs in
    parallel. Rendering and the grid estimators are memory-bound: they are
    counted in flop-equivalents at the dense rate (:func:`lib.plans.render_flops`,
    :func:`lib.plans.class_measures_cost` and the module's ``_SPRITE_*`` and
    ``_VIEW_*``, measured on one thread of a 2-core machine).

    Returns
    -------
    list of lib.plans.Stage
    """
    sizes = config.sizes
    stages, thumbnails = [], []
    for source in _sources(config):
        grid, pixels = source.grid, source.image_size ** 2
        views = grid.shape[0] if _is_turntable(source) else None
        measure, peak = class_measures_cost(grid, pixels, sizes["reach_stride"], BUFFER)
        stages.append(Stage(f"{source.name} class on its grid", len(source.classes), None,
                            flops=render_flops(source, grid.size, views) + measure,
                            peak_bytes=peak))
        classes, queries = sizes["convergence"][source.name]
        stencils = sum(_stencil_points(order, source.dim) for order in (2, 4))
        stages.append(Stage(f"{source.name} point: differences against autodiff",
                            min(classes, len(source.classes)) * queries, None,
                            flops=_derivatives_flops(source)
                            + render_flops(source, sizes["steps"] * stencils),
                            peak_bytes=pixels * (source.dim + 1) ** 2 * stencils * 8.0 * 2))
        # gallery: every class at the centre; axis_sweeps: 8 images per axis of one class.
        thumbnails.append(render_flops(source, len(source.classes) + 8 * grid.ndim))
    stages.append(Stage.of_units("thumbnails of a data set",
                                 [(0, 0, flops, 0) for flops in thumbnails], cached=None))
    return stages
