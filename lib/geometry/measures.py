r"""The paper's per-class table: volume, curvature, reach and distances of class manifolds on one grid.

A data set of several classes, each a map :math:`x_c(\theta)` sampled on the
same parameter grid, is measured class by class on ``grid.interior(buffer)``
(the grid without its buffer layers on interval axes), by order-2 central
differences as Koulakis & Seibold do:

- total volume :math:`\int \sqrt{\det g}\,d\theta` (trapezoid rule);
- total scalar curvature :math:`\int S\,dV` with its positive and negative
  parts (:func:`lib.geometry.curvature.scalar_curvature`, three nested
  stencils, hence ``buffer >= 3``);
- the minimum and the integral of the local reach
  (:func:`lib.geometry.reach.local_reach`): every ``reach_stride``-th point
  per axis as queries and as candidates, tangents from the full grid;
- the mean distance :math:`|x_a(\theta) - x_b(\theta)|` to every other class
  at equal parameters, over the queries of the reach.

Per-point fields (S and the local reach) are clipped to their 1% and 99%
quantiles before they are integrated or minimised, the paper's guard against
a few stencils that straddle a sharp feature.

:func:`scaled_measures` then rescales the union of the classes to total
volume 1, which fixes every column by a closed-form power of the scale.

The same pipeline serves the image manifolds themselves
(:func:`lib.studies.image_manifolds.class_geometry`) and every layer of a
network fed with them (:mod:`lib.studies.layer_geometry`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import torch

from lib._arrays import as_tensor
from lib._checks import check_finite, check_float_dtype, check_in, check_int, check_shape
from lib.geometry import curvature
from lib.geometry.differences import gradient
from lib.geometry.pointwise import is_degenerate, volume_element_from_jacobian
from lib.geometry.reach import local_reach
from lib.grid import Grid

__all__ = ["COLUMNS", "DEGENERATE", "MIN_BUFFER", "class_measures", "degenerate_metric",
           "scaled_measures"]

#: Columns of the table :func:`class_measures` returns, in order.
COLUMNS = ("class", "volume", "curvature", "curvature+", "curvature-", "min reach",
           "reach integral", "class distance", "degenerate points")
DEGENERATE = ("raise", "nan")
# Three nested order-2 stencils (g, Christoffels, Ricci) consume three layers per end.
MIN_BUFFER = 3


def _clipped(field: torch.Tensor) -> torch.Tensor:
    """The field clipped to its 1% and 99% quantiles, as the paper does before integrating."""
    flat = field.flatten()
    low, high = torch.quantile(flat, torch.tensor([0.01, 0.99], dtype=flat.dtype,
                                                  device=flat.device))
    return field.clamp(low, high)


def degenerate_metric(jacobian):
    r"""Where the metric :math:`g = J^\top J` is degenerate, by the test of ``inverse_metric``.

    :math:`\det g / (\operatorname{tr} g / k)^k \le 10^3\,\varepsilon`, scale-free, so the
    overall size of the points does not matter (:func:`lib.geometry.pointwise.is_degenerate`;
    :func:`lib.geometry.pointwise.inverse_metric` refuses exactly these points).

    Parameters
    ----------
    jacobian : array of shape (*Q, D, k)
        Tangent vectors at each point, numpy or torch; float32 or float64 (the
        determinant has no half-precision kernel), else a TypeError.

    Returns
    -------
    degenerate : bool array of shape (*Q,)
        In the type of ``jacobian``.

    Examples
    --------
    >>> degenerate_metric(np.array([[[1.0, 0.0], [0.0, 1e-3]], [[1.0, 2.0], [2.0, 4.0]]])).tolist()
    [False, True]
    """
    caller = "degenerate_metric"
    jac, restore = as_tensor(jacobian)
    check_float_dtype(jac, name="jacobian", caller=caller)
    metric = torch.einsum("...ai,...aj->...ij", jac, jac)
    return restore(is_degenerate(metric, caller=caller, name="jacobian"))


def _integral(region: Grid, field: torch.Tensor) -> float:
    return region.integrate(field.detach().cpu().numpy())


def _classes(values, caller: str):
    """``values`` as an iterator of (label, array or zero-argument callable) pairs."""
    if isinstance(values, Mapping):
        pairs = values.items()
    elif isinstance(values, Iterable) and not isinstance(values, (str, bytes, np.ndarray,
                                                                   torch.Tensor)):
        pairs = values
    else:
        raise TypeError(f"The 'values' parameter of {caller} must be a mapping (or an iterable of "
                        f"(label, array) pairs) from class labels to arrays of shape "
                        f"(*grid.shape, D). Got {type(values).__name__} instead.")
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(f"The 'values' parameter of {caller} must yield (label, array) pairs. "
                            f"Got {type(pair).__name__} {pair!r:.60} instead.")
        yield pair


def _field(label, value, grid: Grid, caller: str) -> torch.Tensor:
    """One class's points as a tensor (*grid.shape, D), after calling a lazy value."""
    if callable(value) and not isinstance(value, (np.ndarray, torch.Tensor)):
        value = value()
    x, _ = as_tensor(value)
    sizes = ", ".join(map(str, grid.shape))
    check_shape(x.shape, (*grid.shape, None), name="values", caller=caller,
                describe=f"(*grid.shape, D) = ({sizes}, D) for class {label!r}")
    # Determinants and quantiles have no half-precision kernels; complex points have no metric.
    check_float_dtype(x, name="values", caller=caller)
    # One pass without a mask as large as the layer: NaN and +-inf show in the extremes.
    if not bool(torch.isfinite(torch.stack(torch.aminmax(x))).all()):
        check_finite(x, name="values", caller=caller)
    return x


def _check_grid(grid, buffer, reach_stride, caller):
    if not isinstance(grid, Grid):
        raise TypeError(f"The 'grid' parameter of {caller} must be a Grid. "
                        f"Got {type(grid).__name__} instead.")
    interval = [axis.n for axis in grid.axes if not axis.periodic]
    if interval and min(interval) < 2 * MIN_BUFFER + 2:
        raise ValueError(f"The 'grid' parameter of {caller} must have at least "
                         f"{2 * MIN_BUFFER + 2} samples on every interval axis (three nested "
                         f"stencils and two measured points). Got shape {grid.shape} with "
                         f"periodic axes {grid.periodic}.")
    high = (min(interval) - 2) // 2 if interval else None
    buffer = check_int(buffer, name="buffer", caller=caller, low=MIN_BUFFER, high=high)
    reach_stride = check_int(reach_stride, name="reach_stride", caller=caller, low=1)
    return buffer, reach_stride


def class_measures(values, grid: Grid, *, buffer: int = MIN_BUFFER, reach_stride: int = 2,
                   degenerate: str = "raise") -> pd.DataFrame:
    r"""Volume, total curvature, reach and class distances of each class manifold on a grid.

    Measured on the region ``grid.interior(buffer)`` by order-2 central
    differences (module docstring): volume :math:`\int\sqrt{\det g}`, total
    scalar curvature :math:`\int S\,dV` and its positive and negative parts
    (S clipped to its 1%/99% quantiles), the minimum and the integral
    :math:`\int\tau\,dV` of the local reach (clipped likewise) from every
    ``reach_stride``-th point per axis, and the mean distance to each other
    class at equal parameters.

    Parameters
    ----------
    values : mapping or iterable of (label, array) pairs
        For each class, its points :math:`x(\theta)` as an array of shape
        ``(*grid.shape, D)``, numpy or torch on any device (every class on the
        same device and with the same D), or a zero-argument callable that
        returns one. Callables and iterators are consumed one class at a
        time and each class's array is released once it is measured, so a
        large layer needs memory for one class (plus the strided points
        every class keeps for the distances). Computed in the arrays' dtype,
        float32 or float64 (integers become float64; other dtypes raise a TypeError).
    grid : Grid
        The parameter grid; at least ``2 * buffer + 2`` samples on every
        interval axis.
    buffer : int, default=3
        Layers left out at each end of every interval axis, at least 3 (the
        curvature's three nested stencils) and at most ``(n - 2) // 2``.
    reach_stride : int, default=2
        Queries and candidates of the reach are every ``reach_stride``-th
        grid point per axis (the paper: 2), at least 1.
    degenerate : {"raise", "nan"}, default="raise"
        What to do with a class whose metric :math:`g = J^\top J` is
        degenerate at some point of the region (tangents of rank < k, e.g.
        a network layer that no longer moves along one axis; the test of
        :func:`lib.geometry.pointwise.inverse_metric`): raise a ValueError,
        or report its curvature and reach columns as NaN (they need
        :math:`g^{-1}` and a k-dimensional tangent space); its volume and
        class distance are measured either way.

    Returns
    -------
    DataFrame
        One row per class, in input order, columns ``class, volume,
        curvature, curvature+, curvature-, min reach, reach integral, class
        distance, degenerate points`` (:data:`COLUMNS`); the class distance
        is NaN for a single class, ``degenerate points`` counts the points of
        the region with a degenerate metric.

    Examples
    --------
    Two unit circles 3 apart: volume 2 pi, no intrinsic curvature on a
    curve, reach 1 and distance 3.

    >>> grid = Grid.product(t=(0, 2 * np.pi, 200, "periodic"))
    >>> t = grid.points[..., 0]
    >>> circle = np.stack([np.cos(t), np.sin(t)], axis=-1)
    >>> table = class_measures({"a": circle, "b": circle + [3.0, 0.0]}, grid)
    >>> table[["class", "volume", "curvature", "min reach", "class distance"]].round(2).values.tolist()
    [['a', 6.28, 0.0, 1.0, 3.0], ['b', 6.28, 0.0, 1.0, 3.0]]
    """
    caller = "class_measures"
    buffer, stride = _check_grid(grid, buffer, reach_stride, caller)
    check_in(degenerate, DEGENERATE, name="degenerate", caller=caller)
    region = grid.interior(buffer)
    cut = grid.interior_index(buffer)
    on_region = grid.interior(1).interior_index(buffer - 1)            # interior(1) -> region
    on_curvature = grid.interior(MIN_BUFFER).interior_index(buffer - MIN_BUFFER)
    lattice = tuple(slice(None, None, stride) for _ in grid.axes)
    # Candidates on the queries' lattice (offset `buffer` on interval axes), so every
    # query is also a candidate, as in the paper's every-second-point protocol.
    candidates_lattice = tuple(slice(0 if axis.periodic else buffer % stride, None, stride)
                               for axis in grid.axes)
    rows, coarse = [], {}
    for label, value in _classes(values, caller):
        if label in coarse:
            raise ValueError(f"The 'values' parameter of {caller} must name each class once. "
                             f"Got {label!r} twice.")
        points = _field(label, value, grid, caller)
        if coarse:
            first = next(iter(coarse.values()))
            if points.shape[-1] != first.shape[-1] or points.device != first.device:
                raise ValueError(f"The 'values' parameter of {caller} must give every class the "
                                 f"same D on the same device. Got D = {points.shape[-1]} on "
                                 f"{points.device} for {label!r}, D = {first.shape[-1]} on "
                                 f"{first.device} before.")
        tangents = gradient(points, grid)[on_region]                      # (*R, D, k)
        element = volume_element_from_jacobian(tangents)
        queries = points[cut][lattice]
        coarse[label] = queries
        row = {"class": label, "volume": _integral(region, element)}
        bad = int(degenerate_metric(tangents).sum())
        if bad and degenerate == "raise":
            raise ValueError(f"The 'values' parameter of {caller} must give class {label!r} a "
                             f"non-degenerate metric g = J^T J on grid.interior({buffer}). Got "
                             f"{bad} degenerate points (tangents of rank < {grid.ndim}); pass "
                             f"degenerate='nan' to measure the rest.")
        if bad:
            row.update(dict.fromkeys(COLUMNS[2:7], math.nan))
        else:
            scalar = _clipped(curvature.scalar_curvature(points, grid)[on_curvature])
            reach = local_reach(queries.reshape(-1, queries.shape[-1]),
                                tangents[lattice].reshape(-1, *tangents.shape[-2:]),
                                points[candidates_lattice].reshape(-1, points.shape[-1])).local
            reach = _clipped(reach.reshape(queries.shape[:-1]))
            row.update({
                "curvature": _integral(region, scalar * element),
                "curvature+": _integral(region, scalar.clamp(min=0) * element),
                "curvature-": _integral(region, scalar.clamp(max=0) * element),
                "min reach": float(reach.min()),
                # Mean of tau * volume element over the strided points, times the box volume.
                "reach integral": float((reach * element[lattice]).mean())
                * region.parameter_volume,
            })
        row["degenerate points"] = bad
        rows.append(row)
        del points, value, tangents
    if not rows:
        raise ValueError(f"The 'values' parameter of {caller} must hold at least one class. "
                         f"Got none.")
    for row in rows:
        distances = [float((coarse[row["class"]] - other).norm(dim=-1).mean())
                     for name, other in coarse.items() if name != row["class"]]
        row["class distance"] = float(np.mean(distances)) if distances else math.nan
    return pd.DataFrame(rows, columns=list(COLUMNS))


def scaled_measures(table: pd.DataFrame, dim: int) -> pd.DataFrame:
    r""":func:`class_measures` after rescaling the union of its classes to total volume 1.

    :math:`x \mapsto c\,x` with :math:`c = V^{-1/k}`, V the summed class
    volumes and k = ``dim`` (the paper's normalisation). Lengths scale by c,
    k-volumes by :math:`c^k`, scalar curvature by :math:`c^{-2}` (so total
    curvature by :math:`c^{k-2}`) and the reach integral by :math:`c^{k+1}`:
    the scaled table follows exactly from the raw one.

    Parameters
    ----------
    table : DataFrame
        Rows of one union of classes with the numeric columns of
        :data:`COLUMNS` (other columns are kept as they are).
    dim : int
        Intrinsic dimension k of the classes, in [1, inf).

    Returns
    -------
    DataFrame
        A copy of ``table`` with the measured columns rescaled; its volumes sum to 1.

    Examples
    --------
    >>> raw = pd.DataFrame({"class": ["a", "b"], "volume": [3.0, 1.0], "curvature": [8.0, 0.0],
    ...                     "curvature+": [8.0, 0.0], "curvature-": [0.0, 0.0],
    ...                     "min reach": [2.0, 4.0], "reach integral": [1.0, 1.0],
    ...                     "class distance": [6.0, 6.0]})
    >>> scaled_measures(raw, 2)[["volume", "curvature", "min reach"]].values.tolist()
    [[0.75, 8.0, 1.0], [0.25, 0.0, 2.0]]
    """
    caller = "scaled_measures"
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"The 'table' parameter of {caller} must be a pandas DataFrame. "
                        f"Got {type(table).__name__} instead.")
    missing = [column for column in COLUMNS[1:-1] if column not in table.columns]
    if missing:
        raise ValueError(f"The 'table' parameter of {caller} must have the columns of "
                         f"class_measures. Got none named {missing}.")
    k = check_int(dim, name="dim", caller=caller, low=1)
    total = table["volume"].sum()
    if not (np.isfinite(total) and total > 0):
        raise ValueError(f"The 'table' parameter of {caller} must have volumes with a finite "
                         f"positive sum. Got {total!r} instead.")
    c = total ** (-1.0 / k)
    scaled = table.copy()
    scaled["volume"] = table["volume"] * c**k
    for column in ("curvature", "curvature+", "curvature-"):
        scaled[column] = table[column] * c ** (k - 2)
    for column in ("min reach", "class distance"):
        scaled[column] = table[column] * c
    scaled["reach integral"] = table["reach integral"] * c ** (k + 1)
    return scaled
