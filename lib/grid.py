"""Axis-aligned parameter grids.

A :class:`Grid` is the product of named axes. An *interval* axis samples
``[start, stop]`` with both ends included, step ``(stop - start) / (n - 1)``;
a *periodic* axis samples ``[start, stop)``, step ``(stop - start) / n``, and
wraps around. One object replaces the loose spacing, range and cyclic-axis
arguments: geometry functions read everything they need from it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np

from lib._checks import check_int, check_real

__all__ = ["Axis", "Grid", "Sampled", "accepts_sampled"]


@dataclass(frozen=True)
class Axis:
    """One parameter axis.

    Parameters
    ----------
    name : str
        ASCII name of the parameter (``"theta"``).
    start, stop : float
        Range of the parameter: finite, ``stop > start``, with a finite length.
    n : int
        Number of samples, at least 2.
    periodic : bool, default=False
        Whether the axis wraps (``stop`` is identified with ``start``).
    """

    name: str
    start: float
    stop: float
    n: int
    periodic: bool = False

    def __post_init__(self):
        caller = f"Axis {self.name!r}"
        check_int(self.n, name="n", caller=caller, low=2)
        # An infinite bound gives inf/nan sample positions: refused like any out-of-range value.
        check_real(self.start, name="start", caller=caller, low=-math.inf, high=math.inf,
                   low_open=True, high_open=True)
        check_real(self.stop, name="stop", caller=caller, low=self.start, high=math.inf,
                   low_open=True, high_open=True)
        if not math.isfinite(self.stop - self.start):
            raise ValueError(f"The 'stop' parameter of {caller} must lie less than the largest "
                             f"float above 'start' ({self.start!r}), so that the length is "
                             f"finite. Got {self.stop!r} instead.")

    @property
    def length(self) -> float:
        """Length of the parameter range, ``stop - start``."""
        return self.stop - self.start

    @property
    def spacing(self) -> float:
        """Step between neighbouring samples."""
        return self.length / (self.n if self.periodic else self.n - 1)

    @property
    def values(self) -> np.ndarray:
        """Sample positions, shape ``(n,)``."""
        return self.start + self.spacing * np.arange(self.n)

    @property
    def quadrature_weights(self) -> np.ndarray:
        """Trapezoid weights, shape ``(n,)``: ``sum(w * f(values))`` integrates f.

        On a periodic axis the rule is the rectangle rule, which converges
        spectrally for smooth periodic integrands; on an interval axis it is
        the trapezoid rule, error O(h^2).
        """
        weights = np.full(self.n, self.spacing)
        if not self.periodic:
            weights[[0, -1]] /= 2
        return weights


@dataclass(frozen=True)
class Grid:
    """Product of parameter axes; the sample points of a k-dimensional chart.

    Examples
    --------
    >>> import numpy as np
    >>> grid = Grid.product(theta=(0.0, np.pi, 5), phi=(0.0, 2 * np.pi, 8, "periodic"))
    >>> grid.shape, grid.names
    ((5, 8), ('theta', 'phi'))
    >>> round(grid.spacing[1], 4)
    0.7854
    """

    axes: tuple[Axis, ...]

    def __post_init__(self):
        if not self.axes:
            raise ValueError("The 'axes' parameter of Grid must hold at least one Axis. Got none.")
        names = [axis.name for axis in self.axes]
        if len(set(names)) != len(names):
            raise ValueError(f"The 'axes' parameter of Grid must have distinct names. Got {names}.")

    @classmethod
    def product(cls, **axes) -> "Grid":
        """Build a grid from ``name=(start, stop, n)`` or ``(start, stop, n, "periodic")``."""
        built = []
        for name, spec in axes.items():
            if len(spec) not in (3, 4) or (len(spec) == 4 and spec[3] != "periodic"):
                raise ValueError(f"The axis {name!r} of Grid.product must be (start, stop, n) or "
                                 f"(start, stop, n, 'periodic'). Got {spec!r} instead.")
            built.append(Axis(name, float(spec[0]), float(spec[1]), spec[2], len(spec) == 4))
        return cls(tuple(built))

    @property
    def ndim(self) -> int:
        """Number of parameters k (the intrinsic dimension of the chart)."""
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of samples per axis."""
        return tuple(axis.n for axis in self.axes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(axis.name for axis in self.axes)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(axis.spacing for axis in self.axes)

    @property
    def max_spacing(self) -> float:
        return max(self.spacing)

    @property
    def periodic(self) -> tuple[bool, ...]:
        return tuple(axis.periodic for axis in self.axes)

    @property
    def size(self) -> int:
        """Total number of grid points."""
        return int(np.prod(self.shape))

    @property
    def parameter_volume(self) -> float:
        """Product of the axis lengths (the volume of the parameter box)."""
        return float(np.prod([axis.length for axis in self.axes]))

    @cached_property
    def points(self) -> np.ndarray:
        """Parameter values at every grid point, shape ``(*shape, k)``."""
        return np.stack(np.meshgrid(*(axis.values for axis in self.axes), indexing="ij"), axis=-1)

    @cached_property
    def quadrature_weights(self) -> np.ndarray:
        """Product trapezoid weights, shape ``shape``: ``(w * f).sum()`` integrates f."""
        weights = np.ones(())
        for axis in self.axes:
            weights = np.multiply.outer(weights, axis.quadrature_weights)
        return weights

    def integrate(self, values) -> float:
        """Integral over the parameter box of a field sampled on the grid.

        Parameters
        ----------
        values : array of shape ``shape``
        """
        values = np.asarray(values)
        if values.shape != self.shape:
            raise ValueError(f"The 'values' parameter of Grid.integrate must have shape "
                             f"{self.shape}. Got {values.shape} instead.")
        return float((self.quadrature_weights * values).sum())

    def interior(self, depth: int) -> "Grid":
        """The grid left after dropping ``depth`` layers at both ends of every interval axis.

        Periodic axes keep all their samples. A stencil of half-width
        ``depth`` is defined exactly on this sub-grid.
        """
        check_int(depth, name="depth", caller="Grid.interior", low=0)
        axes = []
        for axis in self.axes:
            if axis.periodic or depth == 0:
                axes.append(axis)
                continue
            if axis.n - 2 * depth < 2:
                raise ValueError(f"The 'depth' parameter of Grid.interior must leave at least 2 "
                                 f"samples on axis {axis.name!r} (n={axis.n}), i.e. be at most "
                                 f"{(axis.n - 2) // 2}. Got {depth} instead.")
            h = axis.spacing
            axes.append(Axis(axis.name, axis.start + depth * h, axis.stop - depth * h,
                             axis.n - 2 * depth))
        return Grid(tuple(axes))

    def interior_index(self, depth: int) -> tuple[slice, ...]:
        """Index that cuts a field on this grid down to ``self.interior(depth)``.

        Slice sampled arrays with it rather than re-evaluating a map on the
        interior grid: the sliced values are bitwise those of the full grid.
        """
        self.interior(depth)  # validates depth against every axis
        return tuple(slice(None) if axis.periodic or depth == 0 else slice(depth, axis.n - depth)
                     for axis in self.axes)

    def uniform_points(self, count: int, *, seed=None) -> np.ndarray:
        """``count`` parameter points drawn uniformly in the box of the axes, shape (count, k).

        ``seed`` is an int, a numpy Generator or None. Points are continuous, so
        they almost never coincide with grid points.
        """
        check_int(count, name="count", caller="Grid.uniform_points", low=1)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        low = np.array([axis.start for axis in self.axes])
        high = np.array([axis.stop for axis in self.axes])
        return rng.uniform(low, high, size=(count, self.ndim))

    def refined(self, factor: float) -> "Grid":
        """The same axes with about ``factor`` times as many samples each."""
        check_real(factor, name="factor", caller="Grid.refined", low=0, low_open=True)
        return Grid(tuple(Axis(a.name, a.start, a.stop, max(2, round(a.n * factor)), a.periodic)
                          for a in self.axes))


class Sampled(NamedTuple):
    """One manifold sampled on a grid: ``values`` ``(*grid.shape, D)`` and its ``grid``.

    Geometry functions that take ``(values, grid)`` also take one of these in
    place of both (see :func:`accepts_sampled`), and ``f(*sampled)`` works too.
    """

    values: object
    grid: Grid


def accepts_sampled(function):
    """Let ``function(values, grid, **options)`` also be called as ``function(sampled, **options)``."""

    @functools.wraps(function)
    def wrapper(values, grid=None, **options):
        if isinstance(values, Sampled):
            if grid is not None:
                raise TypeError(f"The 'grid' parameter of {function.__name__} must be omitted when "
                                f"'values' is a Sampled (it carries its grid). Got {grid!r}.")
            values, grid = values
        elif not isinstance(grid, Grid):
            raise TypeError(f"The 'grid' parameter of {function.__name__} must be a Grid. "
                            f"Got {type(grid).__name__} instead.")
        return function(values, grid, **options)

    return wrapper
