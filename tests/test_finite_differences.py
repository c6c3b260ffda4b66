"""Finite differences on grids: exactness on polynomials, convergence order, closed forms."""

import numpy as np
import pytest
import torch

from lib.datasets import toy
from lib.geometry import extrinsic, metric, pointwise
from lib.geometry.curvature import scalar_curvature
from lib.geometry.differences import derivative_vectors, derivatives, gradient, stencil_derivatives
from lib.geometry.reach import grid_reach
from lib.grid import Grid


@pytest.mark.parametrize("order, degree", [(2, 2), (4, 4)])
def test_stencil_is_exact_on_polynomials_of_its_degree(order, degree):
    grid = Grid.product(x=(-1.0, 2.0, 13))
    x = grid.points[..., 0]
    slope = gradient(x**degree, grid, order=order)[..., 0]
    inner = x[grid.interior_index(order // 2)]
    np.testing.assert_allclose(slope, degree * inner ** (degree - 1), rtol=1e-11, atol=1e-11)


def test_periodic_axis_wraps():
    grid = Grid.product(t=(0.0, 2 * np.pi, 64, "periodic"))
    slope = gradient(np.sin(grid.points), grid, order=4)
    assert slope.shape == (64, 1, 1)
    # Order 4 with h = 2 pi / 64: error about h^4 / 30 ~ 3e-6.
    np.testing.assert_allclose(slope[:, 0, 0], np.cos(grid.points[:, 0]), atol=1e-5)


@pytest.mark.parametrize("order", [2, 4])
def test_scalar_curvature_converges_at_stencil_order_on_the_torus(order):
    torus = toy.Torus(1.0, 0.6)
    errors = []
    for resolution in (32, 64, 128):
        grid = torus.grid(resolution)
        curvature = scalar_curvature(torus.points(grid), grid, order=order)
        errors.append(np.abs(curvature - torus.scalar_curvature(grid.points)).max())
    # Halving h divides the error by 2^order (measured 1.96-1.99 and 3.85-3.93).
    np.testing.assert_allclose(np.log2(np.array(errors[:-1]) / errors[1:]), order, atol=0.2)


def test_scalar_curvature_of_the_sphere_on_an_interval_chart():
    sphere = toy.Sphere(2.0)
    grid = Grid.product(theta=(0.8, 2.3, 64), phi=(0.0, 2 * np.pi, 128, "periodic"))
    curvature = scalar_curvature(sphere.points(grid), grid, order=4)
    assert curvature.shape == grid.interior(6).shape
    # Measured 1.6e-7 at this size (2026-11-22, first-kind symbols); bound 1e-5.
    np.testing.assert_allclose(curvature, 0.5, atol=1e-5)


def test_volume_element_from_differences_is_second_order():
    torus = toy.Torus(1.0, 0.4)
    errors = []
    for resolution in (32, 64):
        grid = torus.grid(resolution)
        volume = pointwise.volume_element_from_jacobian(gradient(torus.points(grid), grid))
        errors.append(np.abs(volume / torus.volume_element(grid.points) - 1).max())
    assert 3.7 < errors[0] / errors[1] < 4.3


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("ambient", [3, 512])
def test_grid_volume_element_is_pointwise_volume_element_of_the_grid_jacobian(order, ambient):
    # metric.volume_element is volume_element_from_jacobian of the stencil Jacobian, slab by
    # slab (several slabs at D = 512). The arithmetic per point is the same; a slab recomputes
    # its spacing, which may move the last bit: rtol 1e-12 is ~5000 float64 ulps.
    sphere = toy.Sphere(2.0)
    grid = Grid.product(theta=(0.3, 2.8, 32), phi=(0.0, 2 * np.pi, 48, "periodic"))
    points = sphere.points(grid) @ toy.random_isometry(3, ambient, seed=0)
    on_grid = metric.volume_element(points, grid, order=order)
    at_points = pointwise.volume_element_from_jacobian(gradient(points, grid, order=order))
    assert on_grid.shape == grid.interior(order // 2).shape
    np.testing.assert_allclose(on_grid, at_points, rtol=1e-12)


def test_types_and_dtypes_follow_the_input():
    torus = toy.Torus()
    grid = torus.grid(16)
    points = torus.points(grid)
    as_numpy = scalar_curvature(points, grid)
    as_torch = scalar_curvature(torch.as_tensor(points, dtype=torch.float32), grid)
    assert isinstance(as_numpy, np.ndarray) and as_torch.dtype == torch.float32
    np.testing.assert_allclose(as_torch.numpy(), as_numpy, rtol=1e-3, atol=1e-3)


def test_bad_input_is_named():
    grid = Grid.product(x=(0.0, 1.0, 4), t=(0.0, 1.0, 5, "periodic"))
    with pytest.raises(ValueError, match="'order' parameter of gradient must be one of"):
        gradient(np.zeros((4, 5, 3)), grid, order=3)
    with pytest.raises(ValueError, match="'values' parameter of gradient must have shape"):
        gradient(np.zeros((5, 4, 3)), grid)
    # The short axis is named as a fault of gradient's grid, not of Grid.interior.
    with pytest.raises(ValueError, match="'grid' parameter of gradient must have at least 6 "
                                         "samples on every interval axis for order 4. Got n=4 "
                                         "on axis 'x'"):
        gradient(np.zeros((4, 5, 3)), grid, order=4)
    with pytest.raises(ValueError, match="only finite"):
        gradient(np.full((4, 5, 3), np.nan), grid)
    with pytest.raises(ValueError, match="'grid' parameter of scalar_curvature must have at "
                                         "least 14 samples .*Got n=4 on axis 'x'"):
        scalar_curvature(np.zeros((4, 5, 3)), grid, order=4)


def test_degenerate_metric_is_refused_by_name():
    grid = Grid.product(x=(0.0, 1.0, 20), t=(0.0, 2 * np.pi, 16, "periodic"))
    x, t = np.moveaxis(grid.points, -1, 0)
    # The points do not move along x: the chart is degenerate.
    flat = np.stack([np.cos(t), np.sin(t), 0 * x], axis=-1)
    with pytest.raises(ValueError, match="scalar_curvature needs a non-degenerate metric"):
        scalar_curvature(flat, grid)
    der = derivatives(flat, grid)
    with pytest.raises(ValueError,
                       match="scalar_curvature_from_derivatives needs a non-degenerate metric"):
        extrinsic.scalar_curvature_from_derivatives(der.jacobian, der.hessian)


@pytest.mark.parametrize("order", [2, 4])
def test_grid_reach_matches_closed_form_one_sidedly(order):
    for manifold, resolution in ((toy.Ellipse(1.0, 0.5), 256), (toy.Torus(1.0, 0.6), 48)):
        grid = manifold.grid(resolution)
        reach = grid_reach(manifold.points(grid), grid, order=order).reach
        # Finite candidates can only overestimate; the gap is O(h^2) (bound 2 h^2, relative).
        assert manifold.reach * (1 - 1e-9) <= reach <= manifold.reach * (1 + 2 * grid.max_spacing**2)


def test_grid_reach_stride_and_shapes():
    torus = toy.Torus(1.0, 0.6)
    grid = torus.grid(32)
    result = grid_reach(torch.as_tensor(torus.points(grid), dtype=torch.float32), grid, stride=2)
    assert result.local.shape == (16, 16) and result.local.dtype == torch.float32
    assert result.reach == pytest.approx(0.4, rel=1e-3)
    with pytest.raises(ValueError, match="'stride' parameter of grid_reach"):
        grid_reach(torus.points(grid), grid, stride=0)


def test_float32_rounding_overtakes_the_order_four_stencil_on_fine_grids():
    """The documented precision of scalar_curvature: rounding ~ eps |x| / h^3, 3.4x at order 4.

    Unit sphere, 161 x 192 chart (measured 2026-12-07): float64 errors 4.9e-4 (order 2)
    and 1.2e-7 (order 4); float32 5.4e-3 and 1.9e-2. The bounds keep 2x margins.
    """
    sphere = toy.Sphere(radius=1.0)
    grid = Grid.product(theta=(0.3, 2.8, 161), phi=(0, 2 * np.pi, 192, "periodic"))
    points = sphere.points(grid)
    error = {(dtype, order): float(np.abs(np.asarray(
        scalar_curvature(points.astype(dtype), grid, order=order), dtype=np.float64) - 2).max())
        for dtype in (np.float64, np.float32) for order in (2, 4)}
    assert error[np.float64, 4] < 3e-7 < 2e-4 < error[np.float64, 2] < 1e-3
    assert error[np.float32, 4] > 2 * error[np.float32, 2] > 4 * error[np.float64, 2]


def test_torus_principal_curvatures_from_differences():
    torus = toy.Torus(1.0, 0.4)
    grid = torus.grid(128)
    der = derivatives(torus.points(grid), grid, order=4)
    u, v = np.moveaxis(grid.points, -1, 0)
    inward = -np.stack([np.cos(u) * np.cos(v), np.sin(u) * np.cos(v), np.sin(v)], axis=-1)
    curvatures = extrinsic.principal_curvatures(der.jacobian, der.hessian, inward)
    # Order 4 at h = 2 pi / 128: measured 8.1e-7 (2026-11-22); bound 1e-4.
    np.testing.assert_allclose(curvatures, torus.principal_curvatures(grid.points), atol=1e-4)


def test_total_gaussian_curvature_of_an_ellipsoid_band_from_differences():
    ellipsoid = toy.Ellipsoid(1.0, 0.8, 0.6)
    grid = Grid.product(theta=(0.4, np.pi - 0.4, 97), phi=(0.0, 2 * np.pi, 128, "periodic"))
    der = derivatives(ellipsoid.points(grid), grid, order=4)
    inner = grid.interior(2)
    theta = grid.points[grid.interior_index(2)]
    # K dA = (S / 2) sqrt(det g); the truth integrates the closed forms by the same rule.
    gauss = extrinsic.scalar_curvature_from_derivatives(der.jacobian, der.hessian)
    estimate = inner.integrate(gauss / 2 * pointwise.volume_element_from_jacobian(der.jacobian))
    truth = inner.integrate(ellipsoid.gaussian_curvature(theta) * ellipsoid.volume_element(theta))
    # Measured relative error 1.4e-7 (2026-11-22); bound 1e-5.
    assert estimate == pytest.approx(truth, rel=1e-5)
    # Most of the 4 pi of the closed ellipsoid lies in this band.
    assert 0.8 * 4 * np.pi < truth < 4 * np.pi


@pytest.mark.parametrize("first_periodic", [True, False])
def test_slabs_give_exactly_the_whole_grid_answer(first_periodic):
    from lib.geometry.differences import by_slabs

    first = (0.0, 2 * np.pi, 20, "periodic") if first_periodic else (0.0, 2.0, 21)
    grid = Grid.product(a=first, b=(0.0, 2 * np.pi, 16, "periodic"))
    values = torch.as_tensor(np.random.default_rng(0).standard_normal((*grid.shape, 5)))
    whole = gradient(values, grid, order=4)
    # 2 rows per slab at most: many slabs, each with its halo.
    sliced = by_slabs(lambda slab, sub: gradient(slab, sub, order=4), values, grid, halo=2,
                      slab_bytes=2 * 16 * 5 * 8)
    # Equal up to rounding: each slab's spacing is recomputed from its own range.
    torch.testing.assert_close(sliced, whole, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("order", [2, 4])
def test_stencil_derivatives_at_a_grid_point_equal_the_grid_stencils(order):
    """Same stencils, evaluated pointwise: equal to the grid result up to rounding."""
    torus = toy.Torus(1.0, 0.4)
    grid = torus.grid(24)
    on_grid = derivatives(torus.points(grid), grid, order=order)
    index = (5, 17)
    theta = grid.points[index]
    pointwise = stencil_derivatives(torus.immersion, theta, grid.spacing, order=order)
    np.testing.assert_allclose(pointwise.jacobian, on_grid.jacobian[index], atol=1e-12)
    np.testing.assert_allclose(pointwise.hessian, on_grid.hessian[index], atol=1e-11)
    assert isinstance(pointwise.jacobian, np.ndarray) and torch.is_tensor(
        stencil_derivatives(torus.immersion, torch.as_tensor(theta), grid.spacing).jacobian)


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("stride", [2, 3])
def test_a_strided_gradient_is_bitwise_the_full_one_subsampled(order, stride):
    """The grid reach's tangents at every stride-th point, computed there only, must be the
    full gradient's values at those points, bit for bit, on periodic and interval axes."""
    import torch

    from lib.geometry.differences import gradient
    from lib.grid import Axis, Grid

    grid = Grid((Axis("angle", 0.0, 2 * np.pi, 13, periodic=True), Axis("x", 0.0, 1.0, 11),
                 Axis("y", -1.0, 2.0, 9)))
    values = torch.as_tensor(np.random.default_rng(0).normal(size=(*grid.shape, 5)))
    full = gradient(values, grid, order=order)
    strided = gradient(values, grid, order=order, stride=stride)
    step = (slice(None, None, stride),) * grid.ndim
    assert strided.shape == full[step].shape
    assert torch.equal(strided, full[step])
    assert isinstance(gradient(values.numpy(), grid, order=order, stride=stride), np.ndarray)


def test_gradient_stride_must_be_a_positive_int():
    from lib.geometry.differences import gradient
    from lib.grid import Grid

    grid = Grid.product(x=(0.0, 1.0, 11))
    with pytest.raises(ValueError, match="'stride' parameter of gradient"):
        gradient(np.zeros((11, 2)), grid, stride=0)


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("manifold", [toy.Circle(1.0), toy.Torus(1.0, 0.4), "cube"])
def test_derivative_vectors_are_the_derivatives_rows(manifold, order):
    """The same stencils as derivatives(), as rows: first ones, then d_i d_j for i <= j."""
    if manifold == "cube":                   # k = 3: a smooth map of a 3-d box into R^5
        grid = Grid.product(a=(0.0, 1.0, 9), b=(0.0, 1.0, 10), c=(0.0, 1.0, 11))
        t = grid.points
        values = np.stack([np.sin(t[..., 0]) * t[..., 1], t[..., 2] ** 2, t[..., 0] * t[..., 2],
                           np.cos(t[..., 1]), t.sum(-1) ** 3], -1)
    else:
        grid = manifold.grid(24)
        values = manifold.points(grid)
    k = grid.ndim
    rows = derivative_vectors(values, grid, order=order)
    parts = derivatives(values, grid, order=order)
    assert rows.shape == (*parts.jacobian.shape[:-2], k + k * (k + 1) // 2, values.shape[-1])
    np.testing.assert_array_equal(np.swapaxes(rows[..., :k, :], -1, -2), parts.jacobian)
    pairs = [(i, j) for i in range(k) for j in range(i, k)]
    for row, (i, j) in enumerate(pairs, start=k):
        np.testing.assert_allclose(rows[..., row, :], parts.hessian[..., i, j], rtol=0,
                                   atol=1e-12 * np.abs(parts.hessian).max())


def test_grid_curvature_by_inner_products_equals_the_gauss_equation_on_derivatives():
    torus = toy.Torus(1.0, 0.4)
    grid = torus.grid(48)
    values = toy.embed(torus.points(grid).reshape(-1, 3), 40, seed=1).reshape(*grid.shape, 40)
    parts = derivatives(values, grid)
    expected = extrinsic.scalar_curvature_from_derivatives(parts.jacobian, parts.hessian)
    np.testing.assert_allclose(extrinsic.grid_scalar_curvature(values, grid), expected,
                               rtol=1e-9, atol=1e-9)
