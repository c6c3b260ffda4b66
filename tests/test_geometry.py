"""Extrinsic geometry and reach on arrays: known values, array types, chunking, errors."""

import numpy as np
import pytest
import torch

from lib.datasets import toy
from lib.derivatives import derivatives
from lib.geometry import extrinsic, pointwise
from lib.geometry.reach import grid_reach, local_reach
from lib.geometry.spectra import arithmetic_mean, geometric_mean
from lib.grid import Grid


def circle(n=96, radius=2.0):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    points = radius * np.stack([np.cos(t), np.sin(t)], axis=1)
    tangents = np.stack([-np.sin(t), np.cos(t)], axis=1)[:, :, None]
    return points, tangents


def test_volume_element_of_a_linear_map_is_its_area_scale():
    jacobian = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    assert float(pointwise.volume_element_from_jacobian(jacobian)) == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(pointwise.metric_from_jacobian(jacobian), [[1.0, 1.0], [1.0, 2.0]])


def test_second_fundamental_form_is_normal():
    sphere = toy.Sphere(1.0)
    der = derivatives(sphere.immersion, np.array([[0.7, 0.3], [1.9, 4.0]]))
    form = extrinsic.second_fundamental_form(der.jacobian, der.hessian)
    # Tangent vectors are orthogonal to every II_ij.
    np.testing.assert_allclose(np.einsum("qai,qajk->qijk", der.jacobian, form), 0, atol=1e-14)


def test_numpy_in_numpy_out_torch_in_torch_out():
    sphere = toy.Sphere(1.5)
    theta = np.array([[0.4, 1.0], [2.0, 3.0]])
    der_np = derivatives(sphere.immersion, theta)
    der_t = derivatives(sphere.immersion, torch.as_tensor(theta))
    s_np = extrinsic.scalar_curvature_from_derivatives(der_np.jacobian, der_np.hessian)
    s_t = extrinsic.scalar_curvature_from_derivatives(der_t.jacobian, der_t.hessian)
    assert isinstance(s_np, np.ndarray) and isinstance(s_t, torch.Tensor)
    np.testing.assert_allclose(s_t.numpy(), s_np, rtol=1e-14)
    np.testing.assert_allclose(s_np, 2 / 1.5**2, rtol=1e-12)


def test_float32_is_kept_and_accurate_to_single_precision():
    sphere = toy.Sphere(1.0)
    theta = torch.tensor([[0.4, 1.0], [2.0, 3.0]], dtype=torch.float32)
    der = derivatives(sphere.immersion, theta)
    curvature = extrinsic.scalar_curvature_from_derivatives(der.jacobian, der.hessian)
    assert curvature.dtype == torch.float32
    np.testing.assert_allclose(curvature.numpy(), 2.0, rtol=1e-4)


def test_chunked_derivatives_equal_unchunked():
    torus = toy.Torus()
    theta = torus.sample(37, seed=0)
    full, chunked = derivatives(torus.immersion, theta), derivatives(torus.immersion, theta,
                                                                      chunk_size=5)
    np.testing.assert_array_equal(full.hessian, chunked.hessian)


def test_reach_of_circle_is_its_radius_everywhere():
    points, tangents = circle()
    result = local_reach(points, tangents, points)
    # Gram-matrix distances lose about eps * |x|^2 / |y - x|^2 for the nearest candidates:
    # measured 3e-11 relative here (2026-11-22), bound 1e-9.
    np.testing.assert_allclose(result.local, 2.0, rtol=1e-9)
    assert result.reach == pytest.approx(2.0, rel=1e-9)


def test_reach_batching_does_not_change_the_answer():
    torus = toy.Torus(1.0, 0.6)
    grid = torus.grid(24)
    theta = grid.points.reshape(-1, 2)
    tangents = derivatives(torus.immersion, theta).jacobian
    points = torus.points(theta)
    whole = local_reach(points, tangents, points)
    tiny = local_reach(points, tangents, points, memory_budget=4096)
    # BLAS blocks the Gram products differently per batch size: equal up to rounding.
    np.testing.assert_allclose(whole.local, tiny.local, rtol=1e-12)


def test_reach_numpy_and_torch_agree():
    points, tangents = circle(40)
    a = local_reach(points, tangents, points).local
    b = local_reach(torch.as_tensor(points), torch.as_tensor(tangents), torch.as_tensor(points))
    assert isinstance(b.local, torch.Tensor)
    np.testing.assert_allclose(b.local.numpy(), a, rtol=1e-14)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reach_on_gpu_matches_cpu():
    points, tangents = circle(64)
    cpu = local_reach(points, tangents, points).local
    gpu = local_reach(*(torch.as_tensor(a, device="cuda") for a in (points, tangents, points)))
    assert gpu.local.device.type == "cuda"
    np.testing.assert_allclose(gpu.local.cpu().numpy(), cpu, rtol=1e-12)


def test_reach_errors_name_the_parameter():
    points, tangents = circle(8)
    with pytest.raises(ValueError, match="'tangents' parameter of local_reach must have shape"):
        local_reach(points, tangents[:4], points)
    with pytest.raises(ValueError, match="'candidates' parameter of local_reach"):
        local_reach(points, tangents, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="full rank"):
        local_reach(points, np.zeros_like(tangents), points)
    bad = points.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="'queries' parameter of local_reach must hold only finite"):
        local_reach(bad, tangents, points)


def test_extrinsic_shape_errors():
    with pytest.raises(ValueError, match="'hessian' parameter of scalar_curvature_from_derivatives"):
        extrinsic.scalar_curvature_from_derivatives(np.zeros((4, 3, 2)), np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="D >= d"):
        pointwise.volume_element_from_jacobian(np.zeros((4, 1, 2)))


def test_degenerate_or_half_precision_input_is_refused_by_name():
    # Issue 20: these raised torch's _LinAlgError, "cholesky_cpu"/"lu_cpu" not implemented
    # for 'Half', or blamed local_reach's 'tangents' for grid_reach's constant values.
    jac, hess = np.ones((3, 3, 2)), np.zeros((3, 3, 2, 2))
    with pytest.raises(ValueError, match="principal_curvatures needs a non-degenerate metric"):
        extrinsic.principal_curvatures(jac, hess, np.ones((3, 3)))
    with pytest.raises(TypeError, match="'jacobian' parameter of second_fundamental_form must "
                                        "have dtype float32 or float64. Got float16"):
        extrinsic.second_fundamental_form(np.eye(3, 2)[None].astype(np.float16), hess[:1])
    nan = np.eye(3, 2)[None].copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="'jacobian' parameter of metric_from_jacobian must hold "
                                         "only finite"):
        pointwise.metric_from_jacobian(nan)
    with pytest.raises(ValueError, match=r"'metric' parameter of is_degenerate must have shape "
                                         r"\(\*Q, k, k\)"):
        pointwise.is_degenerate(torch.ones(2, 3))
    grid = Grid.product(u=(0.0, 1.0, 9), v=(0.0, 1.0, 9))
    with pytest.raises(ValueError, match="'values' parameter of grid_reach must give tangents "
                                         "of full rank"):
        grid_reach(np.zeros((9, 9, 3)), grid)
    points, tangents = circle(8)
    with pytest.raises(ValueError, match="'candidates' parameter of local_reach must hold at "
                                         "least one point"):
        local_reach(points, tangents, points[:0])
    with pytest.raises(ValueError, match="'logabs' parameter of geometric_mean must hold finite"):
        geometric_mean([1.0], [np.nan], 2)
    assert arithmetic_mean(torch.ones(2, 3, dtype=torch.bfloat16)).tolist() == [1.0, 1.0]


def test_reach_of_a_fine_sphere_grid_is_the_radius_to_rounding():
    """With exact tangents every candidate's ratio on a sphere of radius 1 is exactly 1, so
    the global reach measures rounding alone: within 1e-11 in float64 on a 121 x 144 grid
    (the Gram route's |v|^2 - |Q^T v|^2 lost 3.6e-10 here, the reference code about 2e-12)."""
    from lib.geometry.reach import local_reach

    theta, phi = np.meshgrid(np.linspace(0.3, 2.8, 121),
                             np.linspace(0, 2 * np.pi, 144, endpoint=False), indexing="ij")
    points = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                       np.cos(theta)], -1).reshape(-1, 3)
    along_theta = np.stack([np.cos(theta) * np.cos(phi), np.cos(theta) * np.sin(phi),
                            -np.sin(theta)], -1).reshape(-1, 3)
    along_phi = np.stack([-np.sin(phi), np.cos(phi), 0 * phi], -1).reshape(-1, 3)
    result = local_reach(points, np.stack([along_theta, along_phi], -1), points)
    assert abs(result.reach - 1.0) <= 1e-11
    assert np.abs(result.local - 1.0).max() <= 1e-11


@pytest.mark.parametrize("order", [2, 4])
def test_grid_gauss_equation_by_slabs_is_the_pointwise_one_on_the_whole_grid(order):
    """grid_scalar_curvature works slab by slab (a 48 x 48 grid in R^2048 is 9 slabs of
    by_slabs' 4 MB); it must equal the Gauss equation on the whole grid's finite-difference
    derivatives to rounding, and a sphere's 2 / R^2."""
    from lib.geometry import differences
    from lib.geometry.extrinsic import grid_scalar_curvature, scalar_curvature_from_derivatives

    sphere = toy.Sphere(radius=1.5)
    grid = sphere.grid(48)
    values = torch.as_tensor(sphere.points(grid)) @ torch.as_tensor(
        np.linalg.qr(np.random.default_rng(0).normal(size=(2048, 3)))[0].T)   # in R^2048
    whole = differences.derivatives(values, grid, order=order)
    expected = scalar_curvature_from_derivatives(whole.jacobian, whole.hessian)
    field = grid_scalar_curvature(values, grid, order=order)
    assert field.shape == expected.shape
    torch.testing.assert_close(field, expected, rtol=1e-9, atol=1e-9)
    assert float((field - 2 / 1.5**2).abs().max()) < (0.05 if order == 2 else 0.005)
