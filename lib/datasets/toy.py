r"""Toy manifolds whose geometry is known in closed form.

Each manifold is a frozen dataclass holding its shape parameters, with

- ``immersion(theta)``: the map from parameters (..., d) to points (..., D0)
  in torch, differentiable, so that autodiff gives exact tangents;
- ``grid(resolution)``: an axis-aligned chart, periodic axes marked;
- closed forms as numpy functions of parameters (..., d):
  ``volume_element``, ``scalar_curvature``, ``gaussian_curvature`` (surfaces),
  ``principal_curvatures`` (hypersurfaces), ``local_reach`` (where known);
  and numbers ``total_volume``, ``reach``, ``total_gaussian_curvature``;
- ``sample(n, seed)``: parameters drawn uniformly with respect to the
  Riemannian volume (rejection against the closed-form volume element).

Sign convention: principal curvatures are taken with respect to the normal
that points into the region the surface bounds (the sphere has +1/R; the
torus has +1/r around its tube). Scalar curvature is that of the induced
metric, so a surface has S = 2K and a curve has S = 0. References: do Carmo,
*Differential Geometry of Curves and Surfaces*, ch. 3; Federer (1959) and
Aamari et al. (2019) for the reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import special

from lib._checks import check_int, check_real
from lib.grid import Grid

__all__ = ["Circle", "Ellipse", "Sphere", "Ellipsoid", "Torus", "Hyperboloid", "FlatTorus",
           "random_isometry", "embed"]

TWO_PI = 2 * math.pi


def _positive(value, name, caller):
    # Open at infinity too: an infinite radius is no manifold (inf * 0 = nan points).
    return check_real(value, name=name, caller=caller, low=0, low_open=True, high=math.inf,
                      high_open=True)


class ToyManifold:
    """Interface shared by the toy manifolds (see the module docstring)."""

    name: str = ""
    dim: int = 0
    native_dim: int = 0
    euler_characteristic: int | None = None
    # Isometries of the ambient space act transitively: the local reach is the reach everywhere.
    homogeneous: bool = False

    # --- to be provided by each manifold -------------------------------------------
    def _axes(self):
        """``{name: (start, stop, periodic)}`` of the chart."""
        raise NotImplementedError

    def immersion(self, theta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def volume_element(self, theta) -> np.ndarray:
        raise NotImplementedError

    def volume_element_bound(self) -> float:
        """An upper bound of the volume element over the chart (the rejection envelope)."""
        raise NotImplementedError

    # --- derived --------------------------------------------------------------------
    def grid(self, resolution: int) -> Grid:
        """Chart grid with ``resolution`` samples per 2*pi of parameter range (at least 4 per axis)."""
        check_int(resolution, name="resolution", caller=f"{type(self).__name__}.grid", low=4)
        axes = {}
        for name, (start, stop, periodic) in self._axes().items():
            n = max(4, round(resolution * (stop - start) / TWO_PI))
            axes[name] = (start, stop, n, "periodic") if periodic else (start, stop, n + 1)
        return Grid.product(**axes)

    def points(self, grid_or_theta) -> np.ndarray:
        """Points x(theta) as a float64 numpy array of shape (*G, D0).

        ``grid_or_theta`` is a Grid with ``dim`` axes or parameters of shape
        (..., dim); anything else raises a ValueError (the immersion would
        otherwise read the first ``dim`` columns and ignore the rest).
        """
        caller = f"{type(self).__name__}.points"
        if isinstance(grid_or_theta, Grid):
            if grid_or_theta.ndim != self.dim:
                raise ValueError(f"The 'grid_or_theta' parameter of {caller} must be a Grid with "
                                 f"{self.dim} axes (the intrinsic dimension). Got a Grid with "
                                 f"{grid_or_theta.ndim} axes {grid_or_theta.names} instead.")
            theta = grid_or_theta.points
        else:
            theta = np.asarray(grid_or_theta, dtype=np.float64)
            if theta.ndim == 0 or theta.shape[-1] != self.dim:
                raise ValueError(f"The 'grid_or_theta' parameter of {caller} must have shape "
                                 f"(..., d) = (..., {self.dim}), d the intrinsic dimension. Got "
                                 f"{theta.shape} instead.")
        with torch.no_grad():
            return self.immersion(torch.as_tensor(theta, dtype=torch.float64)).numpy()

    def scalar_curvature(self, theta) -> np.ndarray:
        """Scalar curvature S of the induced metric, shape (...)."""
        theta = np.asarray(theta, dtype=float)
        if self.dim == 1:
            return np.zeros(theta.shape[:-1])
        return 2 * self.gaussian_curvature(theta)

    def gaussian_curvature(self, theta) -> np.ndarray:
        raise NotImplementedError(f"{self.name} is not a surface: it has no Gaussian curvature.")

    def principal_curvatures(self, theta) -> np.ndarray:
        raise NotImplementedError(f"{self.name} is not a hypersurface (codimension "
                                  f"{self.native_dim - self.dim}): principal curvatures of a "
                                  f"single normal are not defined.")

    def local_reach(self, theta) -> np.ndarray:
        """Closed-form local reach tau(x), shape (...); only on homogeneous manifolds."""
        if self.homogeneous:
            return np.full(np.shape(theta)[:-1], float(self.reach))
        raise NotImplementedError(f"The local reach of the {self.name} has no closed form; "
                                  f"use lib.geometry.reach.local_reach on a dense grid.")

    def sample(self, n: int, *, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Parameters of ``n`` points drawn uniformly with respect to the Riemannian volume.

        Rejection sampling: propose uniformly on the parameter box, accept
        with probability volume_element / sup(volume_element).

        Returns
        -------
        theta : ndarray of shape (n, d)
        """
        check_int(n, name="n", caller=f"{type(self).__name__}.sample", low=1)
        rng = np.random.default_rng(seed)
        axes = self._axes()
        low = np.array([start for start, _, _ in axes.values()])
        high = np.array([stop for _, stop, _ in axes.values()])
        bound = self.volume_element_bound()
        accepted, count = [], 0
        while count < n:
            proposal = rng.uniform(low, high, size=(2 * n, self.dim))
            keep = rng.uniform(0, bound, size=2 * n) < self.volume_element(proposal)
            accepted.append(proposal[keep])
            count += int(keep.sum())
        return np.concatenate(accepted)[:n]

    def summary(self) -> dict:
        """Closed-form numbers of the manifold, for tables."""
        def maybe(attribute):
            try:
                return float(getattr(self, attribute))
            except NotImplementedError:
                return math.nan
        return {"manifold": self.name, "d": self.dim, "D": self.native_dim,
                "total volume": self.total_volume, "reach": self.reach,
                "total Gaussian curvature": maybe("total_gaussian_curvature"),
                "Euler characteristic": (math.nan if self.euler_characteristic is None
                                         else self.euler_characteristic)}

    @property
    def total_gaussian_curvature(self) -> float:
        """Integral of K dA; 2 pi chi on a closed surface (Gauss-Bonnet)."""
        if self.dim != 2:
            raise NotImplementedError(f"{self.name} is not a surface.")
        return TWO_PI * self.euler_characteristic


def _split(theta):
    theta = np.asarray(theta, dtype=float)
    return tuple(theta[..., i] for i in range(theta.shape[-1]))


@dataclass(frozen=True)
class Circle(ToyManifold):
    """Circle of radius R in R^2, x(t) = R (cos t, sin t)."""

    radius: float = 1.0
    name = "circle"
    dim, native_dim, euler_characteristic = 1, 2, 0
    homogeneous = True

    def __post_init__(self):
        _positive(self.radius, "radius", "Circle")

    def _axes(self):
        return {"t": (0.0, TWO_PI, True)}

    def immersion(self, theta):
        t = theta[..., 0]
        return self.radius * torch.stack([torch.cos(t), torch.sin(t)], dim=-1)

    def volume_element(self, theta):
        return np.full(np.shape(theta)[:-1], self.radius)

    def volume_element_bound(self):
        return self.radius

    @property
    def total_volume(self):
        return TWO_PI * self.radius

    def principal_curvatures(self, theta):
        return np.full((*np.shape(theta)[:-1], 1), 1 / self.radius)

    @property
    def reach(self):
        return self.radius


@dataclass(frozen=True)
class Ellipse(ToyManifold):
    """Ellipse with half-axes a >= b in R^2, x(t) = (a cos t, b sin t); reach b^2/a."""

    a: float = 1.0
    b: float = 0.5
    name = "ellipse"
    dim, native_dim, euler_characteristic = 1, 2, 0

    def __post_init__(self):
        _positive(self.b, "b", "Ellipse")
        check_real(self.a, name="a", caller="Ellipse", low=self.b, high=math.inf,
                   high_open=True)

    def _axes(self):
        return {"t": (0.0, TWO_PI, True)}

    def immersion(self, theta):
        t = theta[..., 0]
        return torch.stack([self.a * torch.cos(t), self.b * torch.sin(t)], dim=-1)

    def volume_element(self, theta):
        (t,) = _split(theta)
        return np.hypot(self.a * np.sin(t), self.b * np.cos(t))

    def volume_element_bound(self):
        return self.a

    @property
    def total_volume(self):
        # Perimeter 4 a E(m), m = 1 - b^2/a^2 (complete elliptic integral of the 2nd kind).
        return 4 * self.a * special.ellipe(1 - (self.b / self.a) ** 2)

    def principal_curvatures(self, theta):
        return (self.a * self.b / self.volume_element(theta) ** 3)[..., None]

    @property
    def reach(self):
        return self.b**2 / self.a


@dataclass(frozen=True)
class Sphere(ToyManifold):
    """Round sphere of radius R in R^3 in polar angle theta and azimuth phi."""

    radius: float = 1.0
    name = "sphere"
    dim, native_dim, euler_characteristic = 2, 3, 2
    homogeneous = True

    def __post_init__(self):
        _positive(self.radius, "radius", "Sphere")

    def _axes(self):
        return {"theta": (0.0, math.pi, False), "phi": (0.0, TWO_PI, True)}

    def immersion(self, theta):
        polar, azimuth = theta[..., 0], theta[..., 1]
        return self.radius * torch.stack([torch.sin(polar) * torch.cos(azimuth),
                                          torch.sin(polar) * torch.sin(azimuth),
                                          torch.cos(polar)], dim=-1)

    def volume_element(self, theta):
        polar, _ = _split(theta)
        return self.radius**2 * np.sin(polar)

    def volume_element_bound(self):
        return self.radius**2

    @property
    def total_volume(self):
        return 2 * TWO_PI * self.radius**2

    def gaussian_curvature(self, theta):
        return np.full(np.shape(theta)[:-1], self.radius**-2)

    def principal_curvatures(self, theta):
        return np.full((*np.shape(theta)[:-1], 2), 1 / self.radius)

    @property
    def reach(self):
        return self.radius


@dataclass(frozen=True)
class Ellipsoid(ToyManifold):
    r"""Ellipsoid x^2/a^2 + y^2/b^2 + z^2/c^2 = 1 with a >= b >= c; reach c^2/a.

    With h^2 = x^2/a^4 + y^2/b^4 + z^2/c^4 at the point, the Gaussian curvature is
    K = 1 / (a^2 b^2 c^2 h^4) and the mean curvature (average of the principal
    curvatures) ``H = (a^2 + b^2 + c^2 - |x|^2) / (2 a^2 b^2 c^2 h^3)``.
    """

    a: float = 1.0
    b: float = 0.8
    c: float = 0.6
    name = "ellipsoid"
    dim, native_dim, euler_characteristic = 2, 3, 2

    def __post_init__(self):
        _positive(self.c, "c", "Ellipsoid")
        check_real(self.b, name="b", caller="Ellipsoid", low=self.c, high=math.inf,
                   high_open=True)
        check_real(self.a, name="a", caller="Ellipsoid", low=self.b, high=math.inf,
                   high_open=True)

    def _axes(self):
        return {"theta": (0.0, math.pi, False), "phi": (0.0, TWO_PI, True)}

    def immersion(self, theta):
        polar, azimuth = theta[..., 0], theta[..., 1]
        return torch.stack([self.a * torch.sin(polar) * torch.cos(azimuth),
                            self.b * torch.sin(polar) * torch.sin(azimuth),
                            self.c * torch.cos(polar)], dim=-1)

    def _cartesian(self, theta):
        polar, azimuth = _split(theta)
        return (self.a * np.sin(polar) * np.cos(azimuth), self.b * np.sin(polar) * np.sin(azimuth),
                self.c * np.cos(polar))

    def volume_element(self, theta):
        polar, azimuth = _split(theta)
        a, b, c = self.a, self.b, self.c
        inner = np.sin(polar) ** 2 * (b**2 * c**2 * np.cos(azimuth) ** 2
                                      + a**2 * c**2 * np.sin(azimuth) ** 2)
        return np.sin(polar) * np.sqrt(inner + a**2 * b**2 * np.cos(polar) ** 2)

    def volume_element_bound(self):
        return max(self.a * self.b, self.a * self.c, self.b * self.c)

    @property
    def total_volume(self):
        a, b, c = self.a, self.b, self.c
        if math.isclose(a, c):
            return 2 * TWO_PI * a**2
        # Legendre's formula with incomplete elliptic integrals F and E.
        phi = math.acos(c / a)
        m = (a**2 * (b**2 - c**2)) / (b**2 * (a**2 - c**2))
        elliptic = (special.ellipeinc(phi, m) * math.sin(phi) ** 2
                    + special.ellipkinc(phi, m) * math.cos(phi) ** 2)
        return TWO_PI * c**2 + TWO_PI * a * b / math.sin(phi) * elliptic

    def _h(self, theta):
        x, y, z = self._cartesian(theta)
        return np.sqrt(x**2 / self.a**4 + y**2 / self.b**4 + z**2 / self.c**4)

    def gaussian_curvature(self, theta):
        return 1 / ((self.a * self.b * self.c) ** 2 * self._h(theta) ** 4)

    def principal_curvatures(self, theta):
        x, y, z = self._cartesian(theta)
        abc2 = (self.a * self.b * self.c) ** 2
        h = self._h(theta)
        mean = (self.a**2 + self.b**2 + self.c**2 - x**2 - y**2 - z**2) / (2 * abc2 * h**3)
        gauss = 1 / (abc2 * h**4)
        split = np.sqrt(np.clip(mean**2 - gauss, 0, None))
        return np.stack([mean - split, mean + split], axis=-1)

    @property
    def reach(self):
        return self.c**2 / self.a


@dataclass(frozen=True)
class Torus(ToyManifold):
    """Torus of revolution in R^3, core radius R, tube radius r < R; reach min(r, R - r)."""

    R: float = 1.0
    r: float = 0.4
    name = "torus"
    dim, native_dim, euler_characteristic = 2, 3, 0

    def __post_init__(self):
        _positive(self.R, "R", "Torus")
        check_real(self.r, name="r", caller="Torus", low=0, high=self.R, low_open=True,
                   high_open=True)

    def _axes(self):
        return {"u": (0.0, TWO_PI, True), "v": (0.0, TWO_PI, True)}

    def immersion(self, theta):
        u, v = theta[..., 0], theta[..., 1]
        ring = self.R + self.r * torch.cos(v)
        return torch.stack([ring * torch.cos(u), ring * torch.sin(u), self.r * torch.sin(v)], -1)

    def volume_element(self, theta):
        _, v = _split(theta)
        return self.r * (self.R + self.r * np.cos(v))

    def volume_element_bound(self):
        return self.r * (self.R + self.r)

    @property
    def total_volume(self):
        return TWO_PI**2 * self.R * self.r

    def gaussian_curvature(self, theta):
        _, v = _split(theta)
        return np.cos(v) / (self.r * (self.R + self.r * np.cos(v)))

    def principal_curvatures(self, theta):
        _, v = _split(theta)
        along_tube = np.cos(v) / (self.R + self.r * np.cos(v))
        around_tube = np.full_like(v, 1 / self.r)
        return np.sort(np.stack([along_tube, around_tube], axis=-1), axis=-1)

    @property
    def reach(self):
        return min(self.r, self.R - self.r)


@dataclass(frozen=True)
class Hyperboloid(ToyManifold):
    r"""Patch ``|t| <= height`` of the hyperboloid of one sheet (x^2 + y^2)/a^2 - z^2/c^2 = 1.

    x(t, u) = (a cosh t cos u, a cosh t sin u, c sinh t). With
    q(t) = c^2 + (a^2 + c^2) sinh^2 t: volume element a cosh t sqrt(q),
    K = -c^2 / q^2, principal curvatures -a c / q^{3/2} (meridian) and
    c / (a sqrt(q)) (parallel). Both shrink away from the waist, so the reach
    is min(a, c^2/a): the waist radius and the meridian's radius of curvature.
    """

    a: float = 1.0
    c: float = 1.0
    height: float = 1.0
    name = "hyperboloid"
    dim, native_dim, euler_characteristic = 2, 3, None

    def __post_init__(self):
        _positive(self.a, "a", "Hyperboloid")
        _positive(self.c, "c", "Hyperboloid")
        check_real(self.height, name="height", caller="Hyperboloid", low=0, high=5, low_open=True)

    def _axes(self):
        return {"t": (-self.height, self.height, False), "u": (0.0, TWO_PI, True)}

    def immersion(self, theta):
        t, u = theta[..., 0], theta[..., 1]
        ring = self.a * torch.cosh(t)
        return torch.stack([ring * torch.cos(u), ring * torch.sin(u), self.c * torch.sinh(t)], -1)

    def _q(self, t):
        return self.c**2 + (self.a**2 + self.c**2) * np.sinh(t) ** 2

    def volume_element(self, theta):
        t, _ = _split(theta)
        return self.a * np.cosh(t) * np.sqrt(self._q(t))

    def volume_element_bound(self):
        return float(self.volume_element(np.array([[self.height, 0.0]]))[0])

    @property
    def total_volume(self):
        # 2 pi a * integral of sqrt(c^2 + k^2 s^2) ds over |s| <= sinh(height).
        k, s = math.sqrt(self.a**2 + self.c**2), math.sinh(self.height)
        half = s / 2 * math.sqrt(self.c**2 + k**2 * s**2) + self.c**2 / (2 * k) * math.asinh(k * s / self.c)
        return TWO_PI * self.a * 2 * half

    def gaussian_curvature(self, theta):
        t, _ = _split(theta)
        return -self.c**2 / self._q(t) ** 2

    def principal_curvatures(self, theta):
        t, _ = _split(theta)
        q = self._q(t)
        return np.stack([-self.a * self.c / q**1.5, self.c / (self.a * np.sqrt(q))], axis=-1)

    @property
    def total_gaussian_curvature(self):
        # 2 pi * integral of -a c^2 / q^{3/2} ds = -4 pi a S / sqrt(c^2 + (a^2 + c^2) S^2).
        s = math.sinh(self.height)
        return -2 * TWO_PI * self.a * s / math.sqrt(self.c**2 + (self.a**2 + self.c**2) * s**2)

    @property
    def reach(self):
        return min(self.a, self.c**2 / self.a)


@dataclass(frozen=True)
class FlatTorus(ToyManifold):
    """Flat (Clifford-type) torus x = (a cos u, a sin u, b cos v, b sin v) in R^4; reach min(a, b)."""

    a: float = 1.0
    b: float = 0.5
    name = "flat torus"
    dim, native_dim, euler_characteristic = 2, 4, 0
    homogeneous = True

    def __post_init__(self):
        _positive(self.a, "a", "FlatTorus")
        _positive(self.b, "b", "FlatTorus")

    def _axes(self):
        return {"u": (0.0, TWO_PI, True), "v": (0.0, TWO_PI, True)}

    def immersion(self, theta):
        u, v = theta[..., 0], theta[..., 1]
        return torch.stack([self.a * torch.cos(u), self.a * torch.sin(u),
                            self.b * torch.cos(v), self.b * torch.sin(v)], dim=-1)

    def volume_element(self, theta):
        return np.full(np.shape(theta)[:-1], self.a * self.b)

    def volume_element_bound(self):
        return self.a * self.b

    @property
    def total_volume(self):
        return TWO_PI**2 * self.a * self.b

    def gaussian_curvature(self, theta):
        return np.zeros(np.shape(theta)[:-1])

    @property
    def reach(self):
        return min(self.a, self.b)


def random_isometry(native_dim: int, ambient_dim: int, *, seed=None) -> np.ndarray:
    """Matrix with orthonormal rows, shape (native_dim, ambient_dim), Haar-random.

    ``x @ random_isometry(D0, D)`` embeds points of R^D0 isometrically in R^D.
    """
    caller = "random_isometry"
    native_dim = check_int(native_dim, name="native_dim", caller=caller, low=1)
    ambient_dim = check_int(ambient_dim, name="ambient_dim", caller=caller, low=native_dim)
    gaussian = np.random.default_rng(seed).standard_normal((ambient_dim, native_dim))
    q, r = np.linalg.qr(gaussian)
    # Fixing the signs of diag(r) makes q Haar-distributed, not just orthonormal.
    return (q * np.sign(np.diag(r))).T


def embed(points, ambient_dim: int, *, seed=None) -> np.ndarray:
    """Points (..., D0) mapped isometrically into R^ambient_dim by :func:`random_isometry`."""
    points = np.asarray(points)
    return points @ random_isometry(points.shape[-1], ambient_dim, seed=seed)
