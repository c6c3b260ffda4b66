"""Chapter "Toy manifolds": closed forms against independent numerics.

Every closed form of :mod:`lib.datasets.toy` is checked here by a route that
does not use it: autodiff derivatives of the immersion (volume element,
scalar curvature), quadrature on the chart grid (total volume), the
Gauss-Bonnet theorem (total curvature = 2 pi chi), the Aamari et al. reach
formula on a dense grid with exact tangents, and goodness-of-fit tests of the
volume-uniform samplers. The functions return data; :mod:`lib.figures`
draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats

from lib.datasets import toy
from lib.derivatives import derivatives
from lib.geometry.extrinsic import scalar_curvature_from_derivatives
from lib.geometry.pointwise import volume_element_from_jacobian
from lib.geometry.reach import local_reach
from lib.params import ChapterConfig, Choice, Integer, Real, Specification
from lib.plans import Stage, local_reach_cost

__all__ = ["PARAMETERS", "SIZES", "Config", "family", "closed_form_table", "curvature_fields",
           "local_reach_profiles", "quadrature_convergence", "sampling_check", "plan"]

PARAMETERS = Specification("toy-manifolds", (
    Choice("preset", "default", ("ci", "default", "paper"),
           "problem sizes: ci (seconds), default (a laptop, minutes), paper (dense)"),
    Integer("seed", 0, 0, 2**32 - 1, "seeds the random isometry and the samplers"),
    Real("radius", 1.0, 0.01, 100.0, "length scale of every toy manifold (sphere radius R)"),
    Real("tube_ratio", 0.6, 0.05, 0.95, "torus tube radius over core radius, r/R"),
    Integer("ambient_dim", 10, 4, 4096, "dimension D of the random isometric embedding"),
))

# Grid resolution is samples per 2*pi of each parameter range.
SIZES = {
    "ci": dict(resolution=32, reach_resolution=32, samples=4_000,
               convergence_resolutions=(8, 16, 32, 64)),
    "default": dict(resolution=96, reach_resolution=96, samples=50_000,
                    convergence_resolutions=(8, 16, 32, 64, 128, 256)),
    "paper": dict(resolution=256, reach_resolution=192, samples=500_000,
                  convergence_resolutions=(8, 16, 32, 64, 128, 256, 512, 1024)),
}


class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES):
    """Validated parameters of the chapter plus the sizes of its preset."""


def family(config: Config) -> dict[str, toy.ToyManifold]:
    """The seven toy manifolds of the chapter, all scaled by ``config.radius``."""
    R = config.radius
    return {
        "circle": toy.Circle(R),
        "ellipse": toy.Ellipse(R, R / 2),
        "sphere": toy.Sphere(R),
        "ellipsoid": toy.Ellipsoid(R, 0.8 * R, 0.6 * R),
        "torus": toy.Torus(R, config.tube_ratio * R),
        "hyperboloid": toy.Hyperboloid(R / 2, 0.8 * R / 2, 1.0),
        "flat torus": toy.FlatTorus(R, R / 2),
    }


def _embedded(manifold, isometry):
    weights = torch.as_tensor(isometry)
    return lambda theta: manifold.immersion(theta) @ weights


def _regular_queries(manifold, grid):
    """Chart points away from coordinate singularities (the poles of polar charts)."""
    theta = grid.points[grid.interior_index(1)].reshape(-1, grid.ndim)
    keep = manifold.volume_element(theta) > 1e-9 * manifold.volume_element_bound()
    return theta[keep]


def closed_form_table(config: Config) -> pd.DataFrame:
    """One row per manifold: closed-form numbers and their independent numerical checks.

    Numerics are done after a random isometric embedding into R^ambient_dim,
    so agreement also checks invariance under isometries.

    Returns
    -------
    DataFrame
        With a ``quantity`` column (d, D, total volume, volume by
        quadrature, total Gaussian curvature, Gauss-Bonnet by quadrature, Euler
        characteristic, reach, reach (Aamari, exact tangents), max rel. error
        volume element, max abs. error scalar curvature) and one column per manifold.
    """
    rows = []
    resolution, reach_resolution = config.sizes["resolution"], config.sizes["reach_resolution"]
    for index, manifold in enumerate(family(config).values()):
        isometry = toy.random_isometry(manifold.native_dim, config.ambient_dim,
                                       seed=[config.seed, index])
        immersion = _embedded(manifold, isometry)
        grid = manifold.grid(resolution)
        theta = _regular_queries(manifold, grid)
        der = derivatives(immersion, theta)
        volume = volume_element_from_jacobian(der.jacobian)
        scalar = scalar_curvature_from_derivatives(der.jacobian, der.hessian)
        row = manifold.summary()
        row["D"] = config.ambient_dim
        element = manifold.volume_element(grid.points)
        row["volume by quadrature"] = grid.integrate(element)
        row["Gauss-Bonnet by quadrature"] = (
            grid.integrate(manifold.gaussian_curvature(grid.points) * element)
            if manifold.dim == 2 else np.nan)
        row["max rel. error volume element"] = float(
            np.max(np.abs(volume / manifold.volume_element(theta) - 1)))
        row["max abs. error scalar curvature"] = float(
            np.max(np.abs(scalar - manifold.scalar_curvature(theta))))
        row["reach (Aamari, exact tangents)"] = _numerical_reach(
            manifold, immersion, manifold.grid(reach_resolution)).reach
        rows.append(row)
    quantities = ["d", "D", "total volume", "volume by quadrature", "total Gaussian curvature",
                  "Gauss-Bonnet by quadrature", "Euler characteristic", "reach",
                  "reach (Aamari, exact tangents)", "max rel. error volume element",
                  "max abs. error scalar curvature"]
    wide = pd.DataFrame(rows).set_index("manifold")[quantities].T
    return wide.rename_axis(index="quantity", columns=None).reset_index()


def _numerical_reach(manifold, immersion, grid):
    theta = _regular_queries(manifold, grid)
    queries = derivatives(immersion, theta)
    with torch.no_grad():
        points = immersion(torch.as_tensor(theta)).numpy()
        candidates = immersion(torch.as_tensor(grid.points.reshape(-1, grid.ndim))).numpy()
    return local_reach(points, queries.jacobian, candidates)


@dataclass(frozen=True)
class CurvatureField:
    """A manifold sampled on its chart with closed-form curvature, for drawing."""

    name: str
    points: np.ndarray        # (*G, D0) native coordinates
    periodic: tuple           # which chart axes wrap
    curvature: np.ndarray     # (*G,) Gaussian curvature (surfaces) or curvature (curves)
    label: str


def curvature_fields(config: Config) -> list[CurvatureField]:
    """Closed-form curvature on the chart grid of every manifold that lives in R^2 or R^3."""
    fields = []
    for name, manifold in family(config).items():
        if manifold.native_dim > 3:
            continue
        grid = manifold.grid(config.sizes["resolution"])
        if manifold.dim == 1:
            values, label = manifold.principal_curvatures(grid.points)[..., 0], "curvature"
        else:
            values, label = manifold.gaussian_curvature(grid.points), "Gaussian curvature K"
        fields.append(CurvatureField(name, manifold.points(grid), grid.periodic, values, label))
    return fields


@dataclass(frozen=True)
class ReachProfile:
    """Local reach along one chart parameter, numerical, with the closed-form global reach."""

    name: str
    parameter: str
    values: np.ndarray        # (n,) parameter values
    local_reach: np.ndarray   # (n,) min over the other parameters of tau
    reach: float              # closed form


def local_reach_profiles(config: Config) -> list[ReachProfile]:
    """Numerical local reach of the ellipse, torus and hyperboloid along one parameter.

    These three have a varying local reach with no closed form; its minimum
    must equal the closed-form global reach.
    """
    chosen = {"ellipse": 0, "torus": 1, "hyperboloid": 0}
    profiles = []
    manifolds = family(config)
    for name, axis in chosen.items():
        manifold = manifolds[name]
        grid = manifold.grid(config.sizes["reach_resolution"])
        result = _numerical_reach(manifold, manifold.immersion, grid)
        shape = grid.points[grid.interior_index(1)].shape[:-1]
        local = np.asarray(result.local).reshape(shape)
        other = tuple(i for i in range(grid.ndim) if i != axis)
        values = grid.axes[axis].values[grid.interior_index(1)[axis]]
        profiles.append(ReachProfile(name, grid.names[axis], values,
                                     local.min(axis=other) if other else local, manifold.reach))
    return profiles


def quadrature_convergence(config: Config) -> pd.DataFrame:
    """Relative error of the quadrature of volume and of total Gaussian curvature against h.

    Returns
    -------
    DataFrame
        With columns ``manifold, quantity, resolution, spacing, relative error``.
        Total curvature errors are taken relative to 4 pi on closed surfaces of
        zero Euler characteristic.
    """
    rows = []
    for name, manifold in family(config).items():
        for resolution in config.sizes["convergence_resolutions"]:
            grid = manifold.grid(resolution)
            volume_element = manifold.volume_element(grid.points)
            error = abs(grid.integrate(volume_element) / manifold.total_volume - 1)
            rows.append(dict(manifold=name, quantity="total volume", resolution=resolution,
                             spacing=grid.max_spacing, **{"relative error": error}))
            if manifold.dim == 2:
                total = grid.integrate(manifold.gaussian_curvature(grid.points) * volume_element)
                exact = manifold.total_gaussian_curvature
                scale = abs(exact) if exact != 0 else 4 * np.pi
                rows.append(dict(manifold=name, quantity="total Gaussian curvature",
                                 resolution=resolution, spacing=grid.max_spacing,
                                 **{"relative error": abs(total - exact) / scale}))
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SamplingCheck:
    """Volume-uniform samples summarised by one coordinate with a known law."""

    name: str
    coordinate: str
    values: np.ndarray            # (n,) the coordinate of every sample
    grid: np.ndarray              # (m,) where the exact density is evaluated
    density: np.ndarray           # (m,) exact density of the coordinate
    ks_pvalue: float              # Kolmogorov-Smirnov test against the exact law


def sampling_check(config: Config) -> list[SamplingCheck]:
    """Samplers against exact laws: sphere height is uniform (Archimedes); torus tube angle
    has density (R + r cos v) / (2 pi R)."""
    manifolds = family(config)
    n, rng = config.sizes["samples"], np.random.default_rng(config.seed)
    sphere, torus = manifolds["sphere"], manifolds["torus"]
    R = sphere.radius
    heights = sphere.points(sphere.sample(n, seed=rng))[:, 2]
    line = np.linspace(-R, R, 200)
    checks = [SamplingCheck("sphere", "height z", heights, line, np.full_like(line, 1 / (2 * R)),
                            stats.kstest(heights, stats.uniform(-R, 2 * R).cdf).pvalue)]
    angles = torus.sample(n, seed=rng)[:, 1]
    v = np.linspace(0, 2 * np.pi, 200)
    density = (torus.R + torus.r * np.cos(v)) / (2 * np.pi * torus.R)

    def cdf(x):
        return (torus.R * x + torus.r * np.sin(x)) / (2 * np.pi * torus.R)

    checks.append(SamplingCheck("torus", "tube angle v", angles, v, density,
                                stats.kstest(angles, cdf).pvalue))
    return checks


# --- the plan of a run: its cost, before it runs ------------------------------------------------

# Cost model in floating-point operations, or for memory-bound elementwise work its
# equivalent at the dense rate of lib.plans.machine_speed (measured on one thread of the
# 2-core machine, about 8e10 FLOP/s; the reach's is lib.plans.local_reach_cost): an
# elementwise torch operation costs about 1 ns per element, so an autodiff pass costs about
# _ELEMENT flop-equivalents per output element.
_ELEMENT = 100.0
_AUTODIFF_SETUP = 5e9      # torch.func's fixed cost of one derivatives() call (0.02-0.09 s)
_CLOSED_FORM = 300.0       # a closed-form field (volume element, curvature) at one chart point


def _derivatives_flops(queries: int, ambient: int, dim: int) -> float:
    """:func:`lib.derivatives.derivatives` at ``queries`` points: a forward-mode pass per
    tangent direction and pair of them, each over ``ambient`` outputs."""
    return _AUTODIFF_SETUP + queries * (1 + dim + dim * dim) * ambient * _ELEMENT


def _reach_cost(queries: int, candidates: int, ambient: int, dim: int) -> tuple[float, float]:
    """(flops, peak bytes) of the exact tangents and :func:`lib.geometry.reach.local_reach`
    (float64, default memory budget)."""
    flops, peak = local_reach_cost(queries, candidates, ambient, dim)
    return _derivatives_flops(queries, ambient, dim) + flops, peak


def plan(config: Config) -> list[Stage]:
    """The stages of a chapter run and the model of their cost, computing nothing.

    Four kinds of unit, from the chart grids' sizes alone:

    - ``autodiff derivatives on a chart grid``: one per manifold
      (:func:`closed_form_table`), the Jacobian and Hessian of the embedded
      immersion at every regular point of the ``resolution`` grid, with the
      closed-form fields on the same grid;
    - ``Aamari reach on a chart grid``: the numerical reach with exact
      tangents on the ``reach_resolution`` grid, one per manifold in
      R^ambient_dim (:func:`closed_form_table`) and one per profile in the
      native space (:func:`local_reach_profiles`), every query against every
      grid point; a unit's cost is the mean over them, its memory the largest;
    - ``quadrature on a chart grid``: one per manifold and
      ``convergence_resolutions`` entry (:func:`quadrature_convergence`), and
      the curvature gallery;
    - ``volume-uniform sample``: the sphere's and the torus's ``samples``
      rejection samples with their KS test (:func:`sampling_check`).

    Nothing is cached by unit (``cached`` is None) and nothing runs in
    parallel. Memory-bound work is counted in flop-equivalents at the dense
    rate (:mod:`lib.plans`' ``REACH_*``, the module's ``_ELEMENT`` and ``_AUTODIFF_SETUP``,
    measured on one thread of a 2-core machine).

    Returns
    -------
    list of lib.plans.Stage
    """
    sizes, ambient = config.sizes, config.ambient_dim
    manifolds = family(config)
    derivatives = []
    for manifold in manifolds.values():
        grid, d = manifold.grid(sizes["resolution"]), manifold.dim
        queries = grid.interior(1).size
        flops = _derivatives_flops(queries, ambient, d) + grid.size * _CLOSED_FORM
        derivatives.append((0, 0, flops, queries * ambient * (1 + d + d * d) * 8.0 * 2))
    reach = []
    for manifold in manifolds.values():               # closed_form_table: in R^ambient_dim
        grid = manifold.grid(sizes["reach_resolution"])
        reach.append((0, 0, *_reach_cost(grid.interior(1).size, grid.size, ambient,
                                         manifold.dim)))
    for name in ("ellipse", "torus", "hyperboloid"):  # local_reach_profiles: native space
        manifold = manifolds[name]
        grid = manifold.grid(sizes["reach_resolution"])
        reach.append((0, 0, *_reach_cost(grid.interior(1).size, grid.size,
                                         manifold.native_dim, manifold.dim)))
    # The curvature gallery's closed forms ride on the quadrature units.
    gallery = sum(manifold.grid(sizes["resolution"]).size for manifold in manifolds.values())
    quadrature = [manifold.grid(resolution).size for manifold in manifolds.values()
                  for resolution in sizes["convergence_resolutions"]]
    share = gallery / len(quadrature)
    samples = sizes["samples"]
    return [
        Stage.of_units("autodiff derivatives on a chart grid", derivatives, cached=None),
        Stage.of_units("Aamari reach on a chart grid", reach, cached=None),
        Stage.of_units("quadrature on a chart grid",
                       [(0, 0, (n + share) * _CLOSED_FORM, n * 8.0 * 8) for n in quadrature],
                       cached=None),
        # Rejection sampling proposes twice the count per round; about two rounds.
        Stage("volume-uniform sample", 2, None, flops=4 * samples * _CLOSED_FORM,
              peak_bytes=4 * samples * 8.0 * 4),
    ]
