r"""Central finite differences on a :class:`~lib.grid.Grid`.

Fields are arrays of shape (*grid.shape, *F): the leading ``grid.ndim`` axes
are the grid, the trailing ones are the field's own (a point in R^D, a
metric, ...). Periodic axes wrap; an interval axis loses ``order // 2``
layers at each end, so :func:`gradient` returns values on
``grid.interior(order // 2)``, where every stencil is defined. Stencils:

- order 2: :math:`(f_{i+1} - f_{i-1}) / 2h`, error :math:`O(h^2)`;
- order 4: :math:`(-f_{i+2} + 8 f_{i+1} - 8 f_{i-1} + f_{i-2}) / 12h`, error :math:`O(h^4)`.
"""

from __future__ import annotations

import torch

from lib._arrays import as_tensor
from lib._checks import check_finite, check_in, check_shape
from lib.grid import Grid

__all__ = ["STENCILS", "gradient"]

# Offsets and weights of the central first-derivative stencils, per accuracy order.
STENCILS = {2: ((1, 0.5), (-1, -0.5)),
            4: ((2, -1 / 12), (1, 8 / 12), (-1, -8 / 12), (-2, 1 / 12))}


def _shifted(field: torch.Tensor, grid: Grid, axis: int, offset: int, depth: int) -> torch.Tensor:
    """``field`` moved by ``offset`` samples along ``axis`` and cut to ``grid.interior(depth)``."""
    index = []
    for position, grid_axis in enumerate(grid.axes):
        step = offset if position == axis else 0
        if grid_axis.periodic:
            index.append(slice(None))
        else:
            index.append(slice(depth + step, grid_axis.n - depth + step))
    moved = field[tuple(index)]
    if grid.axes[axis].periodic and offset:
        moved = torch.roll(moved, shifts=-offset, dims=axis)
    return moved


def gradient(values, grid: Grid, *, order: int = 2):
    """Partial derivatives of a field along every grid axis.

    Parameters
    ----------
    values : array of shape (*grid.shape, *F)
        Field sampled on the grid, numpy or torch, any float dtype and device.
    grid : Grid
        Spacing and periodicity of the leading axes of ``values``.
    order : {2, 4}, default=2
        Accuracy order of the central stencil.

    Returns
    -------
    gradient : array of shape (*grid.interior(order // 2).shape, *F, k)
        ``gradient[..., i]`` is the derivative along grid axis i; same array
        type, dtype and device as ``values``.

    Examples
    --------
    >>> import numpy as np
    >>> grid = Grid.product(x=(0.0, 1.0, 11))
    >>> slope = gradient(3 * grid.points, grid)
    >>> slope.shape, float(slope.mean())
    ((9, 1, 1), 3.0)
    """
    caller = "gradient"
    check_in(order, tuple(STENCILS), name="order", caller=caller)
    field, restore = as_tensor(values)
    describe = f"(*grid.shape, *F) = ({', '.join(map(str, grid.shape))}, ...)"
    check_shape(field.shape[:grid.ndim], grid.shape, name="values", caller=caller,
                describe=describe)
    check_finite(field, name="values", caller=caller)
    depth = order // 2
    grid.interior(depth)  # names the axis that is too short for the stencil
    partials = []
    for axis, spacing in enumerate(grid.spacing):
        derivative = sum(weight * _shifted(field, grid, axis, offset, depth)
                         for offset, weight in STENCILS[order])
        partials.append(derivative / spacing)
    return restore(torch.stack(partials, dim=-1))
