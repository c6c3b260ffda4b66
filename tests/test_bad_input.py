"""Bad input gets a clear error before any work (issue 20).

Each error must name the parameter and the function (the scikit-learn
message shape of ``lib._checks``), and be a ValueError or a TypeError.
"""

from __future__ import annotations

import numpy as np
import pytest

from lib.estimators.intrinsic_dim import TwoNN


def lattice(n, dtype=np.float64):
    axis = np.linspace(0.0, 1.0, n)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2).astype(dtype)


@pytest.mark.parametrize("X", [lattice(12), lattice(12, np.float32),
                               np.linspace(0.0, 1.0, 50)[:, None],
                               np.linspace(0.0, 1.0, 50, dtype=np.float32)[:, None]],
                         ids=["lattice", "lattice-float32", "line", "line-float32"])
@pytest.mark.parametrize("method", ["linear", "mle"])
def test_twonn_refuses_lattice_ties(X, method):
    # On a regular lattice r1 = r2 at every point (the two ends of a line excepted, and
    # the default discard_fraction=0.1 leaves them out): mu = 1 and d is undefined. The
    # distances are equal only up to rounding, which once gave d ~ 1e15.
    with pytest.raises(ValueError, match="'X' parameter of TwoNN must have r2 > r1"):
        TwoNN(method=method).fit(X)


def test_twonn_still_fits_a_line_with_its_ends():
    # With nothing discarded the linear fit keeps the N - 1 smallest ratios (the largest
    # has empirical CDF 1): the N - 2 ties (log-ratio ~1e-15) and one end, where r2 = 2 r1.
    # The least-squares slope sum(x y) / sum(x^2) is then that end's alone:
    # y / x = -log(1 - (N - 1) / N) / log 2 = log N / log 2. Tolerance: the ties add
    # about N * 1e-15 * log N to sum(x y), 1e-13 relative; 1e-12 leaves room.
    n = 50
    X = np.linspace(0.0, 1.0, n)[:, None]
    got = TwoNN(discard_fraction=0.0).fit(X).dimension_
    np.testing.assert_allclose(got, np.log(n) / np.log(2), rtol=1e-12)


def _sphere_grid():
    from lib.datasets.toy import Sphere

    sphere = Sphere(1.0)
    grid = sphere.grid(16)
    return sphere.points(grid), grid


def _half_precision_calls():
    from lib.estimators import local
    from lib.geometry.reach import grid_reach, local_reach
    from lib.sampling import farthest_point_sampling

    values, grid = _sphere_grid()
    points = values.reshape(-1, 3)
    tangents = np.ones((len(points), 3, 2))
    return {
        "farthest_point_sampling": ("points", lambda x: farthest_point_sampling(x, 5, start=0),
                                    points),
        "local_pca_tangents": ("points", lambda x: local.local_pca_tangents(
            x, n_neighbors=6, dim=2), points),
        "quadratic_fit_curvature": ("points", lambda x: local.quadratic_fit_curvature(
            x, n_neighbors=8, dim=2), points),
        "knn_volume": ("points", lambda x: local.knn_volume(x, n_neighbors=6, dim=2), points),
        "aamari_reach": ("points", lambda x: local.aamari_reach(x, n_neighbors=6, dim=2),
                         points),
        "local_reach": ("queries", lambda x: local_reach(x, tangents, points), points),
        "grid_reach": ("values", lambda x: grid_reach(x, grid), values),
    }


@pytest.mark.parametrize("caller", list(_half_precision_calls()))
@pytest.mark.parametrize("half", ["numpy-float16", "torch-float16", "torch-bfloat16"])
def test_half_precision_is_refused_by_name(caller, half):
    import torch

    name, call, data = _half_precision_calls()[caller]
    if half == "numpy-float16":
        x, shown = data.astype(np.float16), "float16"
    else:
        dtype = getattr(torch, half.split("-")[1])
        x, shown = torch.from_numpy(data).to(dtype), half.split("-")[1]
    message = (f"The '{name}' parameter of {caller} must have dtype float32 or float64. "
               f"Got {shown} instead.")
    with pytest.raises(TypeError, match=message):
        call(x)


@pytest.mark.parametrize("caller", ["farthest_point_sampling", "local_pca_tangents",
                                    "grid_reach"])
def test_single_precision_is_still_accepted(caller):
    # The check refuses half precision only: float32 runs and keeps its dtype.
    _, call, data = _half_precision_calls()[caller]
    out = call(data.astype(np.float32))
    if caller == "local_pca_tangents":
        assert out.dtype == np.float32
    elif caller == "grid_reach":
        assert out.local.dtype == np.float32


def test_check_float_dtype_helper():
    import torch

    from lib._checks import check_float_dtype

    for ok in (np.zeros(2), np.zeros(2, np.float32), torch.zeros(2, dtype=torch.float64)):
        check_float_dtype(ok, name="x", caller="f")
    with pytest.raises(TypeError, match=r"The 'x' parameter of f must have dtype float32 or "
                                        r"float64\. Got int64 instead\."):
        check_float_dtype(np.zeros(2, np.int64), name="x", caller="f")


@pytest.mark.parametrize("start, stop, name", [(0.0, float("inf"), "stop"),
                                               (float("-inf"), 0.0, "start"),
                                               (0.0, float("nan"), "stop"),
                                               (-1e308, 1e308, "stop")])
def test_axis_refuses_infinite_bounds(start, stop, name):
    from lib.grid import Axis

    # Axis("x", 0, inf, 5).values was [nan, inf, inf, inf, inf].
    with pytest.raises(ValueError, match=f"The '{name}' parameter of Axis 'x' must"):
        Axis("x", start, stop, 5)


def _toy_infinite_parameters():
    from lib.datasets import toy

    inf = float("inf")
    return [(toy.Circle, {"radius": inf}, "radius"), (toy.Sphere, {"radius": inf}, "radius"),
            (toy.Ellipse, {"a": inf}, "a"), (toy.Ellipse, {"a": inf, "b": inf}, "b"),
            (toy.Ellipsoid, {"a": inf}, "a"), (toy.Ellipsoid, {"a": inf, "b": inf}, "b"),
            (toy.Ellipsoid, {"a": inf, "b": inf, "c": inf}, "c"),
            (toy.Torus, {"R": inf}, "R"), (toy.Hyperboloid, {"a": inf}, "a"),
            (toy.Hyperboloid, {"c": inf}, "c"), (toy.Hyperboloid, {"height": inf}, "height"),
            (toy.FlatTorus, {"a": inf}, "a"), (toy.FlatTorus, {"b": inf}, "b")]


@pytest.mark.parametrize("case", _toy_infinite_parameters(),
                         ids=lambda case: f"{case[0].__name__}-{case[2]}")
def test_toy_manifolds_refuse_infinite_parameters(case):
    manifold, parameters, name = case
    with pytest.raises(ValueError, match=f"The '{name}' parameter of {manifold.__name__} must"):
        manifold(**parameters)


def _toy_instances():
    from lib.datasets import toy

    return [toy.Circle(), toy.Ellipse(), toy.Sphere(), toy.Ellipsoid(), toy.Torus(),
            toy.Hyperboloid(), toy.FlatTorus()]


@pytest.mark.parametrize("manifold", _toy_instances(), ids=lambda m: type(m).__name__)
def test_toy_points_need_the_intrinsic_dimension_as_last_axis(manifold):
    from lib.grid import Grid

    # Sphere(1.0).points(np.zeros((5, 3))) used 2 of the 3 columns without a word.
    caller = f"{type(manifold).__name__}.points"
    for width in (manifold.dim - 1, manifold.dim + 1):
        with pytest.raises(ValueError, match=rf"The 'grid_or_theta' parameter of {caller} must "
                                             rf"have shape \(\.\.\., d\) = \(\.\.\., "
                                             rf"{manifold.dim}\).*Got \(5, {width}\) instead"):
            manifold.points(np.zeros((5, width)))
    with pytest.raises(ValueError, match=f"The 'grid_or_theta' parameter of {caller} must"):
        manifold.points(0.0)
    wrong = Grid.product(**{f"t{i}": (0.0, 1.0, 3) for i in range(manifold.dim + 1)})
    with pytest.raises(ValueError, match=f"must be a Grid with {manifold.dim} axes"):
        manifold.points(wrong)
    # The right shape still works: (5, d) parameters give (5, D0) points.
    assert manifold.points(np.zeros((5, manifold.dim))).shape == (5, manifold.native_dim)


def _nnk_problem():
    import torch

    A = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    b = torch.tensor([[0.5, 0.2, 0.1], [0.3, 0.4, 0.2]], dtype=torch.float64)
    return A, b


@pytest.mark.parametrize("where", ["b", "A"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nnk_solver_refuses_non_finite_problems(where, bad):
    from lib.graphs.nnk_solver import solve_exact

    # A NaN in b gave NaN weights with unsolved=False (NaN > tol is False).
    A, b = _nnk_problem()
    if where == "b":
        b[1, 1] = bad
    else:
        A[1, 1, 2] = bad
    with pytest.raises(ValueError, match=f"The '{where}' parameter of solve_exact must hold only "
                                         f"finite values. Got 1 non-finite entries instead."):
        solve_exact(A, b, tol=1e-10)


@pytest.mark.parametrize("case", ["b-columns", "b-rows", "A-rows", "A-not-square", "A-2d"])
def test_nnk_solver_refuses_mismatched_shapes(case):
    from lib.graphs.nnk_solver import solve_exact

    # These gave a bare RuntimeError from a reshape deep in the solver.
    A, b = _nnk_problem()
    A, b, name = {"b-columns": (A, b[:, :2], "b"), "b-rows": (A, b[:1], "b"),
                  "A-rows": (A[:1], b, "b"), "A-not-square": (A[:, :2], b, "A"),
                  "A-2d": (A[0], b, "A")}[case]
    with pytest.raises(ValueError, match=f"The '{name}' parameter of solve_exact must have shape"):
        solve_exact(A, b, tol=1e-10)


def test_nnk_solver_still_solves_a_diagonal_problem():
    from lib.graphs.nnk_solver import solve_exact

    # A = I: the minimiser of theta'theta/2 - b'theta over theta >= 0 is max(b, 0) exactly.
    A, b = _nnk_problem()
    b[0, 2] = -0.1
    theta, residual, unsolved = solve_exact(A, b, tol=1e-10)
    np.testing.assert_array_equal(theta.numpy(), b.clamp_min(0).numpy())
    assert not bool(unsolved.any())


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_check_finite_refuses_any_nan_or_inf_and_passes_finite_values_that_overflow_a_sum(
        library, dtype):
    """The sum is only a shortcut: one NaN or infinity anywhere is refused (and counted),
    and finite values whose sum overflows still pass."""
    import torch

    from lib._checks import check_finite

    big = np.full(10, np.finfo(dtype).max / 2, dtype=dtype)     # the sum may overflow
    make = (lambda a: a) if library == "numpy" else torch.from_numpy
    check_finite(make(big.copy()), name="x", caller="f")
    check_finite(make(np.concatenate([big, -big])), name="x", caller="f")
    for bad in (np.nan, np.inf, -np.inf):
        values = np.zeros((3, 4), dtype=dtype)
        values[1, 2] = bad
        with pytest.raises(ValueError, match="'x' parameter of f must hold only finite values. "
                                             "Got 1 non-finite entries"):
            check_finite(make(values), name="x", caller="f")
    mixed = np.array([np.inf, -np.inf, 1.0], dtype=dtype)         # the sum is NaN, not inf
    with pytest.raises(ValueError, match="Got 2 non-finite entries"):
        check_finite(make(mixed), name="x", caller="f")
