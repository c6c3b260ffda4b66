"""Samplers of known-volume models against closed-form moments.

Monte Carlo tolerances are 5 standard errors of the mean of the tested
statistic (estimated from the sample itself), so a correct sampler fails with
probability below 1e-6 per check, while a wrong law (e.g. uniform angles on a
sphere, or a torus of the wrong circumference) is off by many standard errors
at these sample sizes.
"""

import math

import numpy as np
import pytest
from scipy import special, stats

from lib.datasets.point_clouds import Ball, Cube, FlatTorus, Gaussian, Sphere

N = 40_000


def within(sample_values, expected, *, z=5.0):
    mean = float(np.mean(sample_values))
    error = float(np.std(sample_values)) / math.sqrt(len(sample_values))
    assert abs(mean - expected) <= z * error + 1e-12, (mean, expected, error)


@pytest.mark.parametrize("d", [1, 3, 6])
def test_sphere_points_are_uniform_on_the_sphere(d):
    sphere = Sphere(d, radius=2.0)
    x = sphere.sample(N, seed=d)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 2.0, rtol=1e-12)
    # Uniform on S^d: each squared coordinate has mean r^2 / (d + 1); a cap is hit
    # with probability given by the regularised incomplete beta function.
    within(x[:, 0] ** 2, 4.0 / (d + 1))
    cap = x[:, -1] / 2.0 > 0.5
    p_cap = 0.5 * float(special.betainc(d / 2, 0.5, 1 - 0.5**2))
    within(cap.astype(float), p_cap)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_ball_points_are_uniform_in_the_ball(d):
    x = Ball(d).sample(N, seed=d)
    radius = np.linalg.norm(x, axis=1)
    assert np.all(radius <= 1)
    # Uniform in the d-ball: |x|^d is uniform on [0, 1] (mean 1/2), and the directions
    # are uniform: each squared coordinate has mean E|x|^2 / d = 1 / (d + 2).
    within(radius**d, 0.5)
    within(x[:, 0] ** 2, 1 / (d + 2))
    assert Ball(d).volume == pytest.approx(math.pi ** (d / 2) / math.gamma(d / 2 + 1), rel=1e-14)
    assert Ball(3).volume == pytest.approx(4 / 3 * math.pi, rel=1e-14)


def test_sphere_volume_closed_forms():
    assert Sphere(1, radius=3.0).volume == pytest.approx(2 * math.pi * 3)
    assert Sphere(2).volume == pytest.approx(4 * math.pi)
    assert Sphere(3).volume == pytest.approx(2 * math.pi**2)


@pytest.mark.parametrize("d", [1, 2, 4])
def test_flat_torus_angles_are_uniform_and_round_trip(d):
    torus = FlatTorus(d, length=2.5)
    x = torus.sample(N, seed=d)
    assert x.shape == (N, 2 * d)
    circles = x.reshape(N, d, 2)
    np.testing.assert_allclose(np.linalg.norm(circles, axis=-1), 2.5 / (2 * math.pi),
                               rtol=1e-12)
    angles = torus.angles(x)
    assert angles.min() >= 0 and angles.max() < 2.5
    for axis in range(d):
        assert stats.kstest(angles[:, axis] / 2.5, "uniform").pvalue > 1e-6
    assert torus.volume == pytest.approx(2.5**d)


def test_cube_and_gaussian_moments():
    cube = Cube(5).sample(N, seed=1)
    assert cube.min() >= 0 and cube.max() <= 1
    within(cube[:, 2], 0.5)
    within(cube[:, 2] ** 2, 1 / 3)
    gauss = Gaussian(3).sample(N, seed=2)
    within(gauss[:, 0] ** 2, 1.0)
    within(gauss[:, 0] * gauss[:, 1], 0.0)


@pytest.mark.parametrize("model", [Gaussian(4), Gaussian(7), Sphere(3), Cube(2)],
                         ids=lambda m: m.name)
def test_density_power_integral_matches_monte_carlo(model):
    """int f^(1-s) dvol = E_f[f^(-s)], with f the model's own density at its samples."""
    s = 2 / model.dim if model.dim > 2 else 0.5
    x = model.sample(N, seed=3)
    if isinstance(model, Gaussian):
        log_f = -0.5 * (x**2).sum(1) - model.dim / 2 * math.log(2 * math.pi)
        values = np.exp(-s * log_f)
    else:
        values = np.full(N, model.volume**s)
    within(values, model.density_power_integral(s))


def test_gaussian_integral_is_infinite_at_the_law_exponent_for_d_two():
    with pytest.raises(ValueError, match="'exponent' parameter of Gaussian.density_power_integral"):
        Gaussian(2).density_power_integral(1.0)


def test_embedding_keeps_distances_and_seeds_reproduce():
    sphere = Sphere(2)
    native = sphere.sample(50, seed=7)
    embedded = sphere.sample(50, seed=7, ambient_dim=30)
    assert embedded.shape == (50, 30)
    np.testing.assert_allclose(np.linalg.norm(embedded[:, None] - embedded[None], axis=-1),
                               np.linalg.norm(native[:, None] - native[None], axis=-1),
                               atol=1e-12)
    np.testing.assert_array_equal(sphere.sample(50, seed=7, ambient_dim=30), embedded)


def test_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="'dim' parameter of Sphere"):
        Sphere(0)
    with pytest.raises(ValueError, match="'ambient_dim' parameter of FlatTorus.sample"):
        FlatTorus(3).sample(5, ambient_dim=4)
    with pytest.raises(ValueError, match="'n' parameter of Cube.sample"):
        Cube(2).sample(0)
