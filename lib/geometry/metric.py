r"""Metric and volume of a manifold sampled on a parameter grid, by finite differences.

The Jacobian :math:`J = \partial x / \partial\theta` comes from
:func:`lib.geometry.differences.gradient`; the metric :math:`g = J^\top J`
and the volume element :math:`\sqrt{\det g}` of it from
:mod:`lib.geometry.pointwise`. Everything lives on
``grid.interior(order // 2)``, where the stencil is defined.
"""

from __future__ import annotations

import numpy as np

from lib._arrays import as_tensor
from lib._checks import FLOAT_DTYPES, REAL_DTYPES, check_float_dtype, check_grid_field
from lib.geometry.differences import by_slabs, gradient
from lib.geometry.pointwise import metric_from_jacobian, volume_element_from_jacobian
from lib.grid import Grid, accepts_sampled

__all__ = ["metric_matrix", "volume_element", "total_volume"]


@accepts_sampled
def metric_matrix(values, grid: Grid, *, order: int = 2):
    """Induced metric g = J^T J.

    Parameters
    ----------
    values : array of shape (*grid.shape, D)
    grid : Grid
    order : {2, 4}, default=2

    Returns
    -------
    metric : array of shape (*grid.interior(order // 2).shape, k, k)
    """
    return _from_jacobian(metric_from_jacobian, values, grid, order, "metric_matrix")


@accepts_sampled
def volume_element(values, grid: Grid, *, order: int = 2):
    """Volume element sqrt(det g), shape ``grid.interior(order // 2).shape``.

    ``values`` must be float32 or float64 (the determinant has no half-precision kernel).
    """
    return _volume_element(values, grid, order, "volume_element")


def _volume_element(values, grid, order, caller):
    return _from_jacobian(volume_element_from_jacobian, values, grid, order, caller,
                          dtypes=FLOAT_DTYPES)


def _from_jacobian(measure, values, grid, order, caller, dtypes=REAL_DTYPES):
    """``measure`` of the finite-difference Jacobian, computed slab by slab (see by_slabs).

    The input is checked here, so that errors name ``caller`` (the slabs are differenced
    by :func:`gradient`, which would name itself).
    """
    x, restore = as_tensor(values)
    check_grid_field(x, grid, order=order, caller=caller, trailing=(None,))
    check_float_dtype(x, name="values", caller=caller, allowed=dtypes)
    return restore(by_slabs(lambda slab, sub: measure(gradient(slab, sub, order=order)), x, grid,
                            halo=order // 2))


@accepts_sampled
def total_volume(values, grid: Grid, *, order: int = 2) -> float:
    """Riemannian volume of the part of the manifold charted by ``grid.interior(order // 2)``.

    The volume element is integrated with the trapezoid rule of that sub-grid:
    on a fully periodic chart this is the whole manifold (and the rule
    converges spectrally, so the error is the stencil's, O(h**order)); on an
    interval axis the ``order // 2`` border layers are excluded, so sample a
    buffer beyond the range you want measured.

    Examples
    --------
    >>> from lib.datasets.toy import Torus
    >>> torus = Torus(R=1.0, r=0.5)
    >>> grid = torus.grid(64)
    >>> round(total_volume(torus.points(grid), grid, order=4) / torus.total_volume, 4)
    1.0
    """
    volume = np.asarray(_volume_element(values, grid, order, "total_volume"))
    return grid.interior(order // 2).integrate(volume)
