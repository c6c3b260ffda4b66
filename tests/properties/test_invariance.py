"""Laws of the geometry: invariance under rigid motions and extra dimensions, scaling by c."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.datasets import toy
from lib.derivatives import derivatives
from lib.geometry import extrinsic, pointwise
from lib.geometry.reach import local_reach

THETA = np.array([[0.5, 0.3], [1.2, 2.0], [2.5, 5.0]])


def geometry(immersion, theta=THETA):
    der = derivatives(immersion, theta)
    return (pointwise.volume_element_from_jacobian(der.jacobian),
            extrinsic.scalar_curvature_from_derivatives(der.jacobian, der.hessian))


@given(seed=st.integers(0, 2**32 - 1), ambient=st.integers(3, 40),
       scale=st.floats(0.2, 5.0), shift=st.floats(-10, 10))
@settings(max_examples=25, deadline=None)
def test_volume_and_curvature_under_rigid_motion_and_scaling(seed, ambient, scale, shift):
    ellipsoid = toy.Ellipsoid(1.0, 0.8, 0.5)
    rotation = torch.as_tensor(toy.random_isometry(3, ambient, seed=seed))

    def moved(t):
        return scale * ellipsoid.immersion(t) @ rotation + shift

    volume, curvature = geometry(ellipsoid.immersion)
    volume_moved, curvature_moved = geometry(moved)
    # Volume scales as c^d (d = 2) and scalar curvature as c^-2.
    np.testing.assert_allclose(volume_moved, scale**2 * volume, rtol=1e-9)
    np.testing.assert_allclose(curvature_moved, curvature / scale**2, rtol=1e-8)


@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.2, 5.0))
@settings(max_examples=10, deadline=None)
def test_reach_scales_and_ignores_rigid_motion(seed, scale):
    torus = toy.Torus(1.0, 0.6)
    grid = torus.grid(20)
    theta = grid.points.reshape(-1, 2)
    isometry = toy.random_isometry(3, 7, seed=seed)
    tangents = derivatives(torus.immersion, theta).jacobian
    points = torus.points(theta)
    base = local_reach(points, tangents, points).local
    moved_points = scale * points @ isometry
    moved = local_reach(moved_points, scale * np.einsum("qai,ab->qbi", tangents, isometry),
                        moved_points).local
    np.testing.assert_allclose(moved, scale * base, rtol=1e-9)


@given(resolution=st.integers(8, 40))
@settings(max_examples=10, deadline=None)
def test_closed_forms_do_not_depend_on_grid(resolution):
    torus = toy.Torus(1.0, 0.4)
    grid = torus.grid(resolution)
    # Periodic quadrature of a degree-1 trig polynomial is exact on any grid of >= 2 samples.
    assert abs(grid.integrate(torus.volume_element(grid.points)) / torus.total_volume - 1) < 1e-12


@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.2, 5.0), ambient=st.integers(3, 30))
@settings(max_examples=15, deadline=None)
def test_finite_difference_geometry_is_invariant_and_scales(seed, scale, ambient):
    from lib.geometry import curvature, metric
    from lib.geometry.differences import derivatives as fd_derivatives

    torus = toy.Torus(1.0, 0.5)
    grid = torus.grid(24)
    points = torus.points(grid)
    moved = scale * points @ toy.random_isometry(3, ambient, seed=seed) + 1.0
    np.testing.assert_allclose(metric.volume_element(moved, grid),
                               scale**2 * metric.volume_element(points, grid), rtol=1e-9)
    np.testing.assert_allclose(curvature.scalar_curvature(moved, grid),
                               curvature.scalar_curvature(points, grid) / scale**2,
                               rtol=1e-7, atol=1e-9)
    der, der_moved = fd_derivatives(points, grid), fd_derivatives(moved, grid)
    gauss = extrinsic.scalar_curvature_from_derivatives
    np.testing.assert_allclose(gauss(der_moved.jacobian, der_moved.hessian),
                               gauss(der.jacobian, der.hessian) / scale**2,
                               rtol=1e-7, atol=1e-9)
