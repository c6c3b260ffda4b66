r"""Random samples from d-dimensional models with known volume and density, for any d.

The Representation Gap law (our reading of D. Perera, V. Moura, L. I. Alves dos
Santos, M. F. C. Haddad, F. Figueiredo, "Representation Gap: Explaining the
Unreasonable Effectiveness of Neural Networks from a Geometric Perspective",
arXiv:2605.21692, 2026) predicts the nearest-neighbour error of n samples
from the intrinsic dimension d, the volume and the density of the data:

.. math::
    RG_n \sim \Gamma(1 + 2/d)\,(n V_d)^{-2/d} \int_M f^{1 - 2/d}\,d\mathrm{vol},

so testing it needs models where all three are known for every d. Each model
here samples exactly from its law (no rejection) and knows
:meth:`PointCloudModel.density_power_integral`, the integral of
:math:`f^{1-s}` over the manifold.

- :class:`FlatTorus`: the product of d circles of circumference ``length``
  in R^(2d), uniform; flat, volume ``length**d``, no boundary. Its chordal
  distance in R^(2d) approaches the flat (periodic) distance as points get
  close; :meth:`FlatTorus.angles` returns the periodic coordinates for exact
  flat distances.
- :class:`Sphere`: the round d-sphere of ``radius`` in R^(d+1), uniform
  (normalised Gaussians); volume :math:`2\pi^{(d+1)/2} r^d / \Gamma((d+1)/2)`.
- :class:`Cube`: the unit cube [0, 1]^d, uniform: flat, with boundary.
- :class:`Ball`: the unit ball of R^d, uniform: flat, with a round boundary.
- :class:`Gaussian`: the standard normal law on R^d: unbounded, so the
  integral of :math:`f^{1-2/d}` is finite only for d > 2.

Every ``sample`` can embed the points isometrically into a larger R^D by a
Haar-random isometry (:func:`lib.datasets.toy.embed`), which changes no
distance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lib._checks import check_int, check_real
from lib.datasets.toy import embed

__all__ = ["PointCloudModel", "FlatTorus", "Sphere", "Cube", "Ball", "Gaussian"]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


@dataclass(frozen=True)
class PointCloudModel:
    """A probability law on a d-dimensional manifold, with its volume and density known.

    Subclasses implement ``_native(n, rng)`` (points in R^native_dim),
    ``volume`` and ``density_power_integral``.
    """

    dim: int

    def __post_init__(self):
        check_int(self.dim, name="dim", caller=type(self).__name__, low=1)

    @property
    def name(self) -> str:
        return f"{type(self).__name__.lower()} d={self.dim}"

    @property
    def native_dim(self) -> int:
        """Dimension of the space the model is defined in before any embedding."""
        return self.dim

    @property
    def volume(self) -> float:
        """Riemannian volume of the support (infinite for the Gaussian)."""
        raise NotImplementedError

    def density_power_integral(self, exponent: float) -> float:
        r""":math:`\int_M f^{1 - s}\,d\mathrm{vol}` for ``exponent`` s; for a uniform law V^s."""
        return self.volume ** exponent

    def sample(self, n: int, *, seed=None, ambient_dim: int | None = None) -> np.ndarray:
        """``n`` independent points, shape (n, native_dim) or (n, ambient_dim) when embedded.

        The embedding isometry is drawn from the same generator after the
        points, so one seed fixes both.
        """
        caller = f"{type(self).__name__}.sample"
        n = check_int(n, name="n", caller=caller, low=1)
        rng = _rng(seed)
        points = self._native(n, rng)
        if ambient_dim is None:
            return points
        check_int(ambient_dim, name="ambient_dim", caller=caller, low=self.native_dim)
        return embed(points, ambient_dim, seed=rng)

    def _native(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class FlatTorus(PointCloudModel):
    """Product of ``dim`` circles of circumference ``length`` in R^(2 dim), uniform.

    Examples
    --------
    >>> torus = FlatTorus(2, length=2 * math.pi)      # the Clifford torus in R^4
    >>> round(torus.volume, 4), torus.sample(3, seed=0).shape
    (39.4784, (3, 4))
    """

    length: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check_real(self.length, name="length", caller="FlatTorus", low=0, low_open=True)

    @property
    def native_dim(self) -> int:
        return 2 * self.dim

    @property
    def volume(self) -> float:
        return self.length ** self.dim

    def angles(self, points) -> np.ndarray:
        """Periodic coordinates in [0, length)^dim of points of R^(2 dim) on the torus."""
        points = np.asarray(points).reshape(*np.shape(points)[:-1], self.dim, 2)
        turns = np.arctan2(points[..., 1], points[..., 0]) / (2 * math.pi) % 1.0
        return turns * self.length

    def _native(self, n, rng):
        phase = rng.uniform(0, 2 * math.pi, size=(n, self.dim))
        radius = self.length / (2 * math.pi)
        return radius * np.stack([np.cos(phase), np.sin(phase)], axis=-1).reshape(n, -1)


@dataclass(frozen=True)
class Sphere(PointCloudModel):
    """The round ``dim``-sphere of ``radius`` in R^(dim + 1), uniform.

    Examples
    --------
    >>> round(Sphere(2).volume / math.pi, 6)          # 4 pi
    4.0
    """

    radius: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check_real(self.radius, name="radius", caller="Sphere", low=0, low_open=True)

    @property
    def native_dim(self) -> int:
        return self.dim + 1

    @property
    def volume(self) -> float:
        d = self.dim
        return 2 * math.pi ** ((d + 1) / 2) / math.gamma((d + 1) / 2) * self.radius**d

    def _native(self, n, rng):
        gaussian = rng.standard_normal((n, self.dim + 1))
        return self.radius * gaussian / np.linalg.norm(gaussian, axis=1, keepdims=True)


@dataclass(frozen=True)
class Cube(PointCloudModel):
    """The unit cube [0, 1]^dim, uniform: volume 1, flat, with a boundary."""

    @property
    def volume(self) -> float:
        return 1.0

    def _native(self, n, rng):
        return rng.uniform(0.0, 1.0, size=(n, self.dim))


@dataclass(frozen=True)
class Ball(PointCloudModel):
    """The unit ball of R^dim, uniform: flat, volume pi^(d/2) / Gamma(d/2 + 1), round boundary.

    Examples
    --------
    >>> round(Ball(2).volume / math.pi, 6)
    1.0
    >>> bool(np.all(np.linalg.norm(Ball(5).sample(100, seed=0), axis=1) <= 1))
    True
    """

    @property
    def volume(self) -> float:
        return math.pi ** (self.dim / 2) / math.gamma(self.dim / 2 + 1)

    def _native(self, n, rng):
        direction = rng.standard_normal((n, self.dim))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        # The radius of a uniform point has P(R <= r) = r^d.
        return direction * rng.uniform(0.0, 1.0, size=(n, 1)) ** (1 / self.dim)


@dataclass(frozen=True)
class Gaussian(PointCloudModel):
    r"""The standard normal law on R^dim.

    :math:`\int f^{1-s} = (2\pi)^{d s / 2} (1 - s)^{-d/2}`, finite for s < 1;
    the Representation Gap law uses s = 2/d, finite only for d > 2.

    Examples
    --------
    >>> round(Gaussian(4).density_power_integral(0.5), 6) == round(2 * math.pi * 2**2, 6)
    True
    """

    @property
    def volume(self) -> float:
        return math.inf

    def density_power_integral(self, exponent: float) -> float:
        exponent = check_real(exponent, name="exponent", caller="Gaussian.density_power_integral",
                              high=1, high_open=True)
        d = self.dim
        return float(np.exp(d * exponent / 2 * math.log(2 * math.pi)
                            - d / 2 * math.log1p(-exponent)))

    def _native(self, n, rng):
        return rng.standard_normal((n, self.dim))

