r"""Intrinsic curvature from the metric alone, by nested finite differences.

Conventions (do Carmo, *Riemannian Geometry*, ch. 4, in coordinates):

- Christoffel symbols, contravariant index first,
  :math:`\Gamma^k_{ij} = \tfrac12 g^{kl}(\partial_i g_{jl} + \partial_j g_{il} - \partial_l g_{ij})`;
- Ricci tensor
  :math:`R_{sn} = \partial_r\Gamma^r_{ns} - \partial_n\Gamma^r_{rs}
  + \Gamma^r_{rl}\Gamma^l_{ns} - \Gamma^r_{nl}\Gamma^l_{rs}`;
- scalar curvature :math:`S = g^{sn} R_{sn}`, so a sphere of radius R has
  S = 2/R^2.

The metric comes from first differences of the points, the Christoffels from
differences of the metric and the Ricci tensor from differences of the
Christoffels: three nested stencils, so each interval axis loses
``3 * order // 2`` layers at each end. Only g and the Christoffel symbols of
the first kind, :math:`\Gamma_{m,ij} = g_{mk}\Gamma^k_{ij}`, are differenced;
derivatives of :math:`g^{-1}` follow exactly from
:math:`\partial g^{-1} = -g^{-1}(\partial g)g^{-1}`. This is the paper's estimator; the
extrinsic route (:func:`lib.geometry.extrinsic.scalar_curvature_from_derivatives`
of :func:`lib.geometry.differences.derivatives`) needs second differences only.
"""

from __future__ import annotations

import torch

from lib._arrays import as_tensor
from lib._checks import check_float_dtype, check_grid_field
from lib.geometry.differences import gradient
from lib.geometry.pointwise import inverse_metric
from lib.grid import Grid, accepts_sampled

__all__ = ["christoffels", "scalar_curvature"]


def christoffels(metric, grid: Grid, *, order: int = 2):
    r"""Christoffel symbols of a metric sampled on a grid.

    Parameters
    ----------
    metric : array of shape (*grid.shape, k, k)
    grid : Grid
    order : {2, 4}, default=2

    Returns
    -------
    christoffels : array of shape (*grid.interior(order // 2).shape, k, k, k)
        Indexed ``[..., k, i, j]`` for :math:`\Gamma^k_{ij}`.
    """
    caller = "christoffels"
    g, restore = as_tensor(metric)
    k = grid.ndim
    check_grid_field(g, grid, order=order, caller=caller, name="metric", trailing=(k, k),
                     describe_trailing="k, k")
    check_float_dtype(g, name="metric", caller=caller)
    return restore(_christoffels(g, grid, order, caller))


def _first_kind(d_metric):
    """G_{m,ij} = (d_i g_jm + d_j g_im - d_m g_ij) / 2 from d_metric[..., a, b, c] = d_c g_ab."""
    return 0.5 * (torch.einsum("...jmi->...mij", d_metric) + torch.einsum("...imj->...mij", d_metric)
                  - torch.einsum("...ijm->...mij", d_metric))


def _christoffels(g, grid, order, caller):
    depth = order // 2
    first = _first_kind(gradient(g, grid, order=order))
    inverse = inverse_metric(g[grid.interior_index(depth)], caller=caller)
    return torch.einsum("...km,...mij->...kij", inverse, first)


@accepts_sampled
def scalar_curvature(values, grid: Grid, *, order: int = 2):
    r"""Intrinsic scalar curvature of a manifold sampled on a parameter grid.

    Parameters
    ----------
    values : array of shape (*grid.shape, D)
        Points x(theta) in R^D, numpy or torch.
    grid : Grid
    order : {2, 4}, default=2
        Accuracy order of every stencil; the truncation error is O(h**order).

    Returns
    -------
    curvature : array of shape (*grid.interior(3 * (order // 2)).shape,)
        Same type, dtype and device as ``values``.

    Notes
    -----
    Precision. Three nested first-derivative stencils each divide by h, so
    rounding adds an error of about :math:`\epsilon\,|x| / h^3`, and the
    order-4 stencils, whose weights sum to 1.5 times the order-2 ones in
    absolute value, amplify it about :math:`1.5^3 \approx 3.4` times. In
    float32 (:math:`\epsilon \approx 6 \cdot 10^{-8}`) this overtakes the
    truncation error on fine grids: on the unit sphere (the example's chart,
    max error of S = 2, measured 2026-12-07) float32 gives 2.5e-3 at order 2
    and 2.0e-3 at order 4 on 81 x 96 points, and 5.4e-3 and 1.9e-2 on
    161 x 192, where float64 gives 4.9e-4 and 1.2e-7. Use float64 for
    curvature at order 4 or on fine grids, as the chapters do.

    Examples
    --------
    >>> import numpy as np
    >>> from lib.datasets.toy import Sphere
    >>> sphere = Sphere(radius=2.0)
    >>> grid = Grid.product(theta=(0.3, 2.8, 81), phi=(0, 2 * np.pi, 96, "periodic"))
    >>> s = scalar_curvature(sphere.points(grid), grid, order=4)
    >>> round(float(s.mean()), 4)
    0.5
    """
    caller = "scalar_curvature"
    x, restore = as_tensor(values)
    depth = order // 2
    # Three nested stencils; float32/64 only, since g^{-1} needs an LU factorisation.
    check_grid_field(x, grid, order=order, caller=caller, nested=3, trailing=(None,))
    check_float_dtype(x, name="values", caller=caller)
    jacobian = gradient(x, grid, order=order)                 # (*G1, D, k)
    metric = torch.einsum("...ai,...aj->...ij", jacobian, jacobian)
    grid1 = grid.interior(depth)
    d_metric = gradient(metric, grid1, order=order)           # (*G2, k, k, k): d_c g_ab
    first = _first_kind(d_metric)                              # (*G2, k, k, k): G_{m,ij}
    grid2 = grid1.interior(depth)
    d_first = gradient(first, grid2, order=order)             # (*G3, k, k, k, k)
    # Differentiate only g and the first-kind symbols, never g^{-1}: its derivatives come
    # exactly from d(g^{-1}) = -g^{-1} (dg) g^{-1}, which keeps the stencil error small
    # where g^{-1} varies fast (near the poles of a polar chart).
    inner = grid2.interior_index(depth)
    inverse = inverse_metric(metric[grid1.interior_index(2 * depth)], caller="scalar_curvature")
    gamma = torch.einsum("...lm,...mij->...lij", inverse, first[inner])
    d_gamma = torch.einsum("...lm,...mijc->...lijc", inverse,
                           d_first - torch.einsum("...mbc,...bij->...mijc", d_metric[inner], gamma))
    # d_gamma[..., r, n, s, m] = d_m G^r_ns
    ricci = (torch.einsum("...rnsr->...sn", d_gamma) - torch.einsum("...rrsn->...sn", d_gamma)
             + torch.einsum("...rrl,...lns->...sn", gamma, gamma)
             - torch.einsum("...rnl,...lrs->...sn", gamma, gamma))
    return restore(torch.einsum("...sn,...sn->...", inverse, ricci))
