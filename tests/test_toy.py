"""Closed forms of the toy manifolds against numerics that do not use them.

Tolerances: autodiff and closed form are both exact up to rounding, so they
agree to 1e-10 relative (observed ~1e-14). Quadrature and grid reach carry
discretisation error; their bounds are derived from the rule's order below.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from lib.datasets import toy
from lib.derivatives import derivatives
from lib.geometry import extrinsic, pointwise
from lib.geometry.reach import local_reach

MANIFOLDS = [toy.Circle(1.5), toy.Ellipse(1.0, 0.4), toy.Sphere(2.0), toy.Ellipsoid(1.0, 0.7, 0.5),
             toy.Torus(1.0, 0.6), toy.Torus(1.0, 0.3), toy.Hyperboloid(0.5, 0.4, 1.0),
             toy.FlatTorus(1.0, 0.5)]
IDS = [f"{m.name}-{i}" for i, m in enumerate(MANIFOLDS)]
SURFACES_IN_R3 = [m for m in MANIFOLDS if m.dim == 2 and m.native_dim == 3]


def random_parameters(manifold, n=200, seed=0):
    """Chart parameters away from the ends of interval axes (polar charts degenerate there)."""
    grid = manifold.grid(16)
    rng = np.random.default_rng(seed)
    low = np.array([a.start + (0 if a.periodic else 0.05 * a.length) for a in grid.axes])
    high = np.array([a.stop - (0 if a.periodic else 0.05 * a.length) for a in grid.axes])
    return rng.uniform(low, high, size=(n, manifold.dim))


def outward_reference(manifold, theta):
    """A unit normal pointing into the bounded region (the sign convention of toy.py)."""
    x = manifold.points(theta)
    if isinstance(manifold, toy.Sphere):
        gradient = x
    elif isinstance(manifold, toy.Ellipsoid):
        gradient = x / np.array([manifold.a, manifold.b, manifold.c]) ** 2
    elif isinstance(manifold, toy.Torus):
        core = np.stack([np.cos(theta[:, 0]), np.sin(theta[:, 0]), 0 * theta[:, 0]], -1)
        gradient = x - manifold.R * core
    else:  # hyperboloid, level set of (x^2 + y^2)/a^2 - z^2/c^2
        gradient = x * np.array([1 / manifold.a**2, 1 / manifold.a**2, -1 / manifold.c**2])
    return -gradient / np.linalg.norm(gradient, axis=-1, keepdims=True)


@pytest.mark.parametrize("manifold", MANIFOLDS, ids=IDS)
def test_volume_element_and_scalar_curvature_match_autodiff_after_embedding(manifold):
    theta = random_parameters(manifold)
    weights = torch.as_tensor(toy.random_isometry(manifold.native_dim, 32, seed=1))
    der = derivatives(lambda t: manifold.immersion(t) @ weights, theta)
    np.testing.assert_allclose(pointwise.volume_element_from_jacobian(der.jacobian),
                               manifold.volume_element(theta), rtol=1e-10)
    scale = max(1.0, np.abs(manifold.scalar_curvature(theta)).max())
    np.testing.assert_allclose(
        extrinsic.scalar_curvature_from_derivatives(der.jacobian, der.hessian),
        manifold.scalar_curvature(theta), atol=1e-10 * scale)


@pytest.mark.parametrize("manifold", SURFACES_IN_R3, ids=lambda m: m.name)
def test_principal_curvatures_match_shape_operator(manifold):
    theta = random_parameters(manifold, n=100)
    der = derivatives(manifold.immersion, theta)
    numeric = extrinsic.principal_curvatures(der.jacobian, der.hessian,
                                             outward_reference(manifold, theta))
    np.testing.assert_allclose(numeric, np.sort(manifold.principal_curvatures(theta), axis=-1),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(numeric.prod(-1), manifold.gaussian_curvature(theta), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("manifold", MANIFOLDS, ids=IDS)
def test_total_volume_by_quadrature(manifold):
    coarse, fine = manifold.grid(128), manifold.grid(256)
    errors = [abs(g.integrate(manifold.volume_element(g.points)) / manifold.total_volume - 1)
              for g in (coarse, fine)]
    if all(coarse.periodic):
        # The periodic rectangle rule converges spectrally: rounding level already.
        assert errors[1] < 1e-12
    else:
        # Trapezoid on the interval axis: O(h^2), so one halving divides the error by ~4.
        assert 3.5 < errors[0] / errors[1] < 4.5
        assert errors[1] < 2e-4


@pytest.mark.parametrize("manifold", SURFACES_IN_R3 + [toy.FlatTorus(1.0, 0.5)],
                         ids=lambda m: m.name)
def test_gauss_bonnet(manifold):
    grid = manifold.grid(256)
    total = grid.integrate(manifold.gaussian_curvature(grid.points)
                           * manifold.volume_element(grid.points))
    exact = manifold.total_gaussian_curvature
    if manifold.euler_characteristic is not None:
        assert exact == pytest.approx(2 * math.pi * manifold.euler_characteristic)
    # O(h^2) on an interval axis with h = pi / 128 and an integrand of size ~1: 1e-3 absolute.
    assert abs(total - exact) < 1e-3


def test_ellipsoid_area_formula_limits():
    assert toy.Ellipsoid(2.0, 2.0, 2.0).total_volume == pytest.approx(16 * math.pi, rel=1e-14)
    # Legendre's branch is continuous with the sphere's.
    assert toy.Ellipsoid(1.0, 1.0, 1 - 1e-7).total_volume == pytest.approx(4 * math.pi, rel=1e-6)
    assert toy.Ellipse(1.3, 1.3).total_volume == pytest.approx(2 * math.pi * 1.3, rel=1e-14)


@pytest.mark.parametrize("manifold", MANIFOLDS, ids=IDS)
def test_reach_from_dense_grid_with_exact_tangents(manifold):
    grid = manifold.grid(64)
    inner = grid.points[grid.interior_index(1)].reshape(-1, manifold.dim)
    inner = inner[manifold.volume_element(inner) > 1e-9]
    result = local_reach(manifold.points(inner), derivatives(manifold.immersion, inner).jacobian,
                         manifold.points(grid).reshape(-1, manifold.native_dim))
    # A minimum over fewer candidates can only be larger: one-sided up to rounding...
    assert result.reach >= manifold.reach * (1 - 1e-9)
    # ...and the gap shrinks like h^2 (bound 2 h^2 relative, h the largest spacing).
    assert result.reach <= manifold.reach * (1 + 2 * grid.max_spacing**2)


@pytest.mark.parametrize("manifold", [m for m in MANIFOLDS if m.name in ("circle", "sphere",
                                                                          "flat torus")],
                         ids=lambda m: m.name)
def test_closed_form_local_reach_is_constant_on_homogeneous_manifolds(manifold):
    theta = random_parameters(manifold, n=10)
    np.testing.assert_allclose(manifold.local_reach(theta), manifold.reach)


def test_sphere_sampler_heights_are_uniform():
    sphere = toy.Sphere(2.0)
    heights = sphere.points(sphere.sample(20_000, seed=3))[:, 2]
    assert stats.kstest(heights, stats.uniform(-2, 4).cdf).pvalue > 1e-3


def test_torus_sampler_tube_angle_law():
    torus = toy.Torus(1.0, 0.6)
    v = torus.sample(20_000, seed=4)[:, 1]
    cdf = lambda x: (torus.R * x + torus.r * np.sin(x)) / (2 * np.pi * torus.R)  # noqa: E731
    assert stats.kstest(v, cdf).pvalue > 1e-3
    # Uniform-in-parameter sampling would fail the same test: the check has power.
    uniform = np.random.default_rng(4).uniform(0, 2 * np.pi, 20_000)
    assert stats.kstest(uniform, cdf).pvalue < 1e-6


def test_sampler_is_reproducible_for_a_seed():
    torus = toy.Torus()
    np.testing.assert_array_equal(torus.sample(50, seed=7), torus.sample(50, seed=7))
    assert not np.array_equal(torus.sample(50, seed=7), torus.sample(50, seed=8))


def test_random_isometry_preserves_distances():
    points = toy.Torus().points(toy.Torus().sample(30, seed=0))
    moved = toy.embed(points, 50, seed=2)
    assert moved.shape == (30, 50)
    original = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(moved[:, None] - moved[None], axis=-1), original,
                               atol=1e-12)


@pytest.mark.parametrize("make, match", [
    (lambda: toy.Torus(1.0, 1.0), "'r' parameter of Torus must be a float in \\(0, 1.0\\)"),
    (lambda: toy.Ellipsoid(0.5, 0.7, 0.2), "'a' parameter of Ellipsoid"),
    (lambda: toy.Sphere(-1.0), "'radius' parameter of Sphere"),
    (lambda: toy.Sphere().sample(0), "'n' parameter of Sphere.sample"),
    (lambda: toy.random_isometry(3, 2), "'ambient_dim' parameter of random_isometry"),
])
def test_bad_parameters_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_undefined_quantities_say_why():
    with pytest.raises(NotImplementedError, match="codimension 2"):
        toy.FlatTorus().principal_curvatures(np.zeros((1, 2)))
    with pytest.raises(NotImplementedError, match="no closed form"):
        toy.Torus().local_reach(np.zeros((1, 2)))


# --- the chapter's plan (lib.studies.toy_manifolds.plan) -----------------------------------


def _plan_seconds(stages):
    """Total seconds of a plan at a fixed speed (this machine's, measured 2026-12)."""
    from lib.plans import Speed, stage_seconds

    speed = Speed(rate=7.8e10, overhead=6.6e-4)
    return sum(stage.units * stage_seconds(stage, speed) for stage in stages)


def test_plan_counts_the_chapters_units_at_every_preset():
    """One derivatives unit per manifold, a reach per manifold and per profile, a quadrature
    per manifold and resolution; more work and memory at larger presets."""
    from lib.studies import toy_manifolds as study

    totals, peaks = [], []
    for preset in ("ci", "default", "paper"):
        config = study.Config(preset=preset)
        stages = {stage.name: stage for stage in study.plan(config)}
        manifolds = len(study.family(config))
        profiles = 3                    # local_reach_profiles: ellipse, torus, hyperboloid
        assert {name: stage.units for name, stage in stages.items()} == {
            "autodiff derivatives on a chart grid": manifolds,
            "Aamari reach on a chart grid": manifolds + profiles,
            "quadrature on a chart grid":
                manifolds * len(config.sizes["convergence_resolutions"]),
            "volume-uniform sample": 2}
        assert all(stage.cached is None and not stage.parallel and stage.steps == 0
                   for stage in stages.values())
        totals.append(_plan_seconds(stages.values()))
        peaks.append(max(stage.peak_bytes for stage in stages.values()))
    assert totals[0] < totals[1] < totals[2] and peaks[0] < peaks[1] <= peaks[2]
    # Measured 2026-12 on one thread: the study functions took 1.3 s at ci, 15 s at default.
    assert 1.3 / 5 < totals[0] < 1.3 * 5 and 15 / 5 < totals[1] < 15 * 5


def test_plan_reach_grows_with_the_ambient_dimension():
    from lib.studies import toy_manifolds as study

    small, large = (next(stage for stage in study.plan(study.Config(preset="ci", ambient_dim=D))
                         if stage.name == "Aamari reach on a chart grid") for D in (10, 1000))
    assert large.flops > 2 * small.flops and large.peak_bytes > small.peak_bytes
