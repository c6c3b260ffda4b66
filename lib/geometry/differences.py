r"""Central finite differences on a :class:`~lib.grid.Grid`.

Fields are arrays of shape ``(*grid.shape, *F)``: the leading ``grid.ndim`` axes
are the grid, the trailing ones are the field's own (a point in R^D, a
metric, ...). Periodic axes wrap; an interval axis loses ``order // 2``
layers at each end, so :func:`gradient` returns values on
``grid.interior(order // 2)``, where every stencil is defined. Stencils:

- order 2: :math:`(f_{i+1} - f_{i-1}) / 2h`, error :math:`O(h^2)`;
- order 4: :math:`(-f_{i+2} + 8 f_{i+1} - 8 f_{i-1} + f_{i-2}) / 12h`, error :math:`O(h^4)`.
"""

from __future__ import annotations

import numpy as np
import torch

from lib._arrays import as_tensor
from lib._checks import (REAL_DTYPES, check_finite, check_float_dtype, check_grid_field,
                         check_in, check_int, check_shape)
from lib.derivatives import Derivatives
from lib.grid import Axis, Grid, accepts_sampled

__all__ = ["STENCILS", "SECOND_STENCILS", "gradient", "derivatives", "derivative_vectors",
           "stencil_derivatives", "by_slabs"]

# Offsets and weights of the central first-derivative stencils, per accuracy order.
STENCILS = {2: ((1, 0.5), (-1, -0.5)),
            4: ((2, -1 / 12), (1, 8 / 12), (-1, -8 / 12), (-2, 1 / 12))}
# Central second-derivative stencils (pure d^2/dx^2), per accuracy order.
SECOND_STENCILS = {2: ((1, 1.0), (0, -2.0), (-1, 1.0)),
                   4: ((2, -1 / 12), (1, 16 / 12), (0, -30 / 12), (-1, 16 / 12), (-2, -1 / 12))}


def _padded(field: torch.Tensor, grid: Grid, depth: int) -> torch.Tensor:
    """Wrap every periodic axis by ``depth`` samples on each side (one copy per call).

    After padding every stencil offset is a plain slice, i.e. a view: no
    per-offset ``roll`` copies, which dominate the cost at large D.
    """
    for axis, grid_axis in enumerate(grid.axes):
        if grid_axis.periodic and depth:
            n = grid_axis.n
            field = torch.cat([field.narrow(axis, n - depth, depth), field,
                               field.narrow(axis, 0, depth)], dim=axis)
    return field


def _shifted(padded: torch.Tensor, grid: Grid, offsets: dict, depth: int) -> torch.Tensor:
    """View of the padded field moved by ``offsets[axis]`` samples, on ``grid.interior(depth)``."""
    index = []
    for position, grid_axis in enumerate(grid.axes):
        step = offsets.get(position, 0)
        stop = grid_axis.n + depth if grid_axis.periodic else grid_axis.n - depth
        index.append(slice(depth + step, stop + step))
    return padded[tuple(index)]


def _combine(padded, grid, depth, terms):
    """sum of weight * shifted view over ``terms = [(offsets, weight), ...]``, accumulated in place."""
    total = None
    for offsets, weight in terms:
        view = _shifted(padded, grid, offsets, depth)
        if total is None:
            total = view * weight
        else:
            total.add_(view, alpha=weight)
    return total


def _checked(values, grid, order, caller):
    check_in(order, tuple(STENCILS), name="order", caller=caller)
    field, restore = as_tensor(values)
    check_grid_field(field, grid, order=order, caller=caller)
    return field, restore


def _first(padded, grid, order, axis):
    h = grid.spacing[axis]
    return _combine(padded, grid, order // 2,
                    [({axis: offset}, weight / h) for offset, weight in STENCILS[order]])


@accepts_sampled
def gradient(values, grid: Grid, *, order: int = 2, stride: int = 1):
    """Partial derivatives of a field along every grid axis.

    Parameters
    ----------
    values : array of shape (*grid.shape, *F)
        Field sampled on the grid, numpy or torch, any float dtype and device.
    grid : Grid
        Spacing and periodicity of the leading axes of ``values``.
    order : {2, 4}, default=2
        Accuracy order of the central stencil.
    stride : int, default=1
        Keep every ``stride``-th point of ``grid.interior(order // 2)`` per
        axis, starting at its first: bitwise ``gradient(values, grid)[::stride,
        ::stride, ...]``, computed at those points only, so that the memory
        is the result's (the full tangents of a large grid need not fit).

    Returns
    -------
    gradient : array of shape (*grid.interior(order // 2).shape, *F, k)
        (each grid axis divided by ``stride``, rounded up.) ``gradient[..., i]``
        is the derivative along grid axis i; same array type, dtype and device
        as ``values``.

    Examples
    --------
    >>> import numpy as np
    >>> grid = Grid.product(x=(0.0, 1.0, 11))
    >>> slope = gradient(3 * grid.points, grid)
    >>> slope.shape, float(slope.mean())
    ((9, 1, 1), 3.0)
    """
    field, restore = _checked(values, grid, order, "gradient")
    check_int(stride, name="stride", caller="gradient", low=1)
    if stride > 1:
        return restore(_strided_gradient(field, grid, order, stride))
    padded = _padded(field, grid, order // 2)
    partials = [_first(padded, grid, order, axis) for axis in range(grid.ndim)]
    return restore(torch.stack(partials, dim=-1))


def _strided_gradient(field, grid, order, stride):
    """:func:`gradient` at every ``stride``-th interior point, touching no other point.

    The same terms in the same order as :func:`_first`, so the same bits: on an
    interval axis a shifted, strided slice is a view; on a periodic axis the
    shifted indices wrap (``index_select`` on already strided views, no padded
    copy of the field).
    """
    depth = order // 2
    partials = []
    for axis in range(grid.ndim):
        h = grid.spacing[axis]
        total = None
        for offset, weight in STENCILS[order]:
            view = field
            for position, grid_axis in enumerate(grid.axes):
                shift = offset if position == axis else 0
                if grid_axis.periodic:
                    index = (torch.arange(0, grid_axis.n, stride, device=field.device)
                             + shift) % grid_axis.n
                    view = view.index_select(position, index)
                else:
                    rows = slice(depth + shift, grid_axis.n - depth + shift, stride)
                    view = view[(slice(None),) * position + (rows,)]
            if total is None:
                total = view * (weight / h)
            else:
                total.add_(view, alpha=weight / h)
        partials.append(total)
    return torch.stack(partials, dim=-1)


@accepts_sampled
def derivatives(values, grid: Grid, *, order: int = 2):
    """First and second partial derivatives by central differences, on one common sub-grid.

    Pure second derivatives use the second-difference stencil; mixed ones the
    product of two first-difference stencils. Both lose ``order // 2`` layers
    per interval axis, so Jacobian and Hessian share ``grid.interior(order // 2)``.

    Parameters
    ----------
    values : array of shape (*grid.shape, D)
    grid : Grid
    order : {2, 4}, default=2

    Returns
    -------
    lib.derivatives.Derivatives
        ``jacobian`` ``(*G', D, k)`` and ``hessian`` ``(*G', D, k, k)`` with
        ``G' = grid.interior(order // 2).shape``, in the input's array type.
    """
    field, restore = _checked(values, grid, order, "derivatives")
    depth, k = order // 2, grid.ndim
    padded = _padded(field, grid, depth)
    jacobian = torch.stack([_first(padded, grid, order, axis) for axis in range(k)], dim=-1)
    rows = []
    for i in range(k):
        row = []
        for j in range(k):
            row.append(_combine(padded, grid, depth, _second_terms(grid, order, i, j)))
        rows.append(torch.stack(row, dim=-1))
    hessian = torch.stack(rows, dim=-2)
    return Derivatives(jacobian=restore(jacobian), hessian=restore(hessian))


def _second_terms(grid, order, i, j):
    """Stencil terms of d^2/d theta_i d theta_j: the second difference, or a product of firsts."""
    if i == j:
        return [({i: offset}, weight / grid.spacing[i] ** 2)
                for offset, weight in SECOND_STENCILS[order]]
    scale = grid.spacing[i] * grid.spacing[j]
    return [({i: oi, j: oj}, wi * wj / scale)
            for oi, wi in STENCILS[order] for oj, wj in STENCILS[order]]


@accepts_sampled
def derivative_vectors(values, grid: Grid, *, order: int = 2):
    """The k first and k(k+1)/2 distinct second partial derivatives as rows, by central differences.

    The stencils of :func:`derivatives`, with each mixed derivative computed
    once and every derivative kept as a contiguous vector in R^D: made for
    inner products over a large D (the Gauss equation of
    :func:`lib.geometry.extrinsic.grid_scalar_curvature`), where stacking the
    components into the last axes, as :func:`derivatives` returns them, is a
    strided copy that cost more than the differences themselves (D = 4096).

    Parameters
    ----------
    values : array of shape (*grid.shape, D)
    grid : Grid
    order : {2, 4}, default=2

    Returns
    -------
    vectors : array of shape (*grid.interior(order // 2).shape, k + k (k + 1) / 2, D)
        Rows ``d_0 x, ..., d_{k-1} x``, then ``d_i d_j x`` for i <= j in row-major
        order (for k = 2: ``d_00, d_01, d_11``), in the input's array type.

    Examples
    --------
    >>> grid = Grid.product(u=(0.0, 1.0, 11), v=(0.0, 1.0, 11))
    >>> x = (grid.points ** 2).sum(-1, keepdims=True)            # u^2 + v^2 in R^1
    >>> rows = derivative_vectors(x, grid)
    >>> rows.shape, rows[4, 4, 2:, 0].round(6).tolist()         # d_uu, d_uv, d_vv
    ((9, 9, 5, 1), [2.0, 0.0, 2.0])
    """
    field, restore = _checked(values, grid, order, "derivative_vectors")
    depth, k = order // 2, grid.ndim
    padded = _padded(field, grid, depth)
    rows = [_first(padded, grid, order, axis) for axis in range(k)]
    rows += [_combine(padded, grid, depth, _second_terms(grid, order, i, j))
             for i in range(k) for j in range(i, k)]
    return restore(torch.stack(rows, dim=-2))


def by_slabs(function, values: torch.Tensor, grid: Grid, *, halo: int,
             slab_bytes: float = 2**22) -> torch.Tensor:
    """Apply a stencil computation slab by slab along the first grid axis.

    ``function(slab, slab_grid)`` must return the field on
    ``slab_grid.interior(halo)`` (a stencil of half-width ``halo`` in total).
    Each slab carries ``halo`` extra rows on both sides (wrapped on a periodic
    axis), so the concatenated result equals ``function(values, grid)`` up to
    rounding (each slab's spacing is recomputed). Working slab by slab keeps the
    intermediate arrays small enough to stay in cache when D is large: the
    volume element of a 41 x 48 grid in R^4096 takes 63 ms instead of 155 ms.
    Worth it only when ``halo`` is small against the slab: nested stencils
    (intrinsic curvature, halo 3) redo too many halo rows.

    Parameters
    ----------
    function : callable
    values : tensor of shape (*grid.shape, *F)
    grid : Grid
    halo : int
        Rows of the first axis the computation consumes on each side.
    slab_bytes : float, default=2**22
        Target size of one slab's input; does not change the answer.
    """
    caller = "by_slabs"
    values, _ = as_tensor(values)
    check_grid_field(values, grid, order=2, caller=caller)
    check_int(halo, name="halo", caller=caller, low=0)
    for axis in grid.axes:
        if not axis.periodic and axis.n - 2 * halo < 2:
            raise ValueError(f"The 'grid' parameter of {caller} must have at least "
                             f"{2 * halo + 2} samples on every interval axis for halo {halo}. "
                             f"Got n={axis.n} on axis {axis.name!r} instead.")
    first = grid.axes[0]
    n_out = first.n if first.periodic else first.n - 2 * halo
    row_bytes = values[0].numel() * values.element_size()
    rows = max(2, int(slab_bytes // max(row_bytes, 1)))
    if rows >= n_out:
        return function(values, grid)
    parts = []
    for block in np.array_split(np.arange(n_out), n_out // rows):
        start, stop = int(block[0]), int(block[-1]) + 1
        if first.periodic:
            index = torch.arange(start - halo, stop + halo, device=values.device) % first.n
            slab = values.index_select(0, index)
        else:
            slab = values[start:stop + 2 * halo]
        size = slab.shape[0]
        # The slab is an interval axis with the same spacing; its start value is irrelevant.
        axis = Axis(first.name, 0.0, first.spacing * (size - 1), size)
        parts.append(function(slab, Grid((axis, *grid.axes[1:]))))
    return torch.cat(parts, dim=0)


def stencil_derivatives(fn, theta, spacing, *, order: int = 2):
    """Jacobian and Hessian of a map at one point by the same central stencils as :func:`derivatives`.

    Evaluates ``fn`` only at the stencil's points: the centre, ``order`` points
    along each axis and the ``order**2`` corners of each axis pair, i.e.
    ``1 + order * k + order**2 * k * (k - 1) / 2`` points instead of the
    ``(order + 2)**k`` of a local grid. At a grid point with the grid's
    spacing the result equals :func:`derivatives` up to rounding.

    Parameters
    ----------
    fn : callable
        Map from parameters of shape ``(Q, k)`` to values of shape ``(Q, *F)``, batched, in torch.
    theta : array of shape (k,)
    spacing : sequence of k floats
        Step per axis.
    order : {2, 4}, default=2

    Returns
    -------
    lib.derivatives.Derivatives
        ``jacobian`` ``(*F, k)`` and ``hessian`` ``(*F, k, k)``, in the type of ``theta``.

    Examples
    --------
    >>> import torch
    >>> cubic = lambda t: (t[:, :1] ** 3 * t[:, 1:]).to(torch.float64)
    >>> der = stencil_derivatives(cubic, [1.0, 2.0], [1e-2, 1e-2], order=4)
    >>> [round(float(v), 6) for v in der.jacobian[0]], round(float(der.hessian[0, 0, 1]), 6)
    ([6.0, 1.0], 3.0)
    """
    caller = "stencil_derivatives"
    check_in(order, tuple(STENCILS), name="order", caller=caller)
    centre, restore = as_tensor(theta)
    k = centre.shape[-1] if centre.ndim else 0
    check_shape(centre.shape, (k,), name="theta", caller=caller, describe="(k,)")
    check_float_dtype(centre, name="theta", caller=caller, allowed=REAL_DTYPES)
    check_finite(centre, name="theta", caller=caller)
    spacing, _ = as_tensor(spacing)
    check_float_dtype(spacing, name="spacing", caller=caller, allowed=REAL_DTYPES)
    check_shape(spacing.shape, (k,), name="spacing", caller=caller, describe=f"(k,) = ({k},)")
    if not bool(((spacing > 0) & spacing.isfinite()).all()):
        raise ValueError(f"The 'spacing' parameter of {caller} must hold finite steps in "
                         f"(0, inf). Got {spacing.tolist()} instead.")
    step = spacing.to(device=centre.device, dtype=centre.dtype)
    eye = torch.eye(k, dtype=centre.dtype) * step
    # Every point the stencils touch, as integer offsets per axis; evaluated in one batch.
    offsets = {(0,) * k}
    for i in range(k):
        offsets |= {tuple(o if a == i else 0 for a in range(k)) for o, _ in SECOND_STENCILS[order]}
        for j in range(i + 1, k):
            offsets |= {tuple(oi if a == i else oj if a == j else 0 for a in range(k))
                        for oi, _ in STENCILS[order] for oj, _ in STENCILS[order]}
    offsets = sorted(offsets)
    where = {offset: row for row, offset in enumerate(offsets)}
    moves = torch.as_tensor(offsets, dtype=centre.dtype)
    values = fn(centre + moves @ eye)

    def at(**axes):
        return values[where[tuple(axes.get(f"a{a}", 0) for a in range(k))]]

    jacobian = torch.stack([sum(w / step[i] * at(**{f"a{i}": o}) for o, w in STENCILS[order])
                            for i in range(k)], dim=-1)
    hessian = torch.empty(*jacobian.shape, k, dtype=jacobian.dtype)
    for i in range(k):
        hessian[..., i, i] = sum(w / step[i] ** 2 * at(**{f"a{i}": o})
                                 for o, w in SECOND_STENCILS[order])
        for j in range(i + 1, k):
            mixed = sum(wi * wj / (step[i] * step[j]) * at(**{f"a{i}": oi, f"a{j}": oj})
                        for oi, wi in STENCILS[order] for oj, wj in STENCILS[order])
            hessian[..., i, j] = hessian[..., j, i] = mixed
    return Derivatives(jacobian=restore(jacobian), hessian=restore(hessian))
