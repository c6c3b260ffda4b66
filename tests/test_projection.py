"""Local projection estimators: exact on planes (both orders) and on a quadric's vertex (order 2),
the convergence rates of theory on the circle and the sphere, and the approximate index.

Tolerances:

- planes: 1e-10 relative to the spread of the data (float64); the only error is rounding in
  the weighted mean, the QR/SVD chart and the small least-squares fit;
- quadric vertex: 1e-8 absolute on data of size 1 (rounding, as for planes: order 2 is exact
  there), while order 1 misses by the weighted mean of B(s, s), > 1e-4 by construction;
- rates: fitted log-log slope of the Hausdorff proxy against n, each n averaged (in log) over
  8 independent draws, within 0.25 of -2/d on the circle and 0.3 of -2/d on the sphere for
  order 1, and of the mean distance within 0.1 of -2/d; order 2 on the circle at most -2.6
  (theory: -3 to -4);
- approximate index: neighbour recall >= 0.95 and identical projections (1e-6) where the
  neighbour sets agree, since the candidates are re-measured exactly.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch

from lib.estimators.projection import (
    LocalProjection,
    ManifoldEstimator,
    ProjectionError,
    projection_error,
)


def random_frame(ambient, dim, rng):
    """Orthonormal T (D, d) and N (D, D - d) spanning complementary subspaces."""
    q, _ = np.linalg.qr(rng.standard_normal((ambient, ambient)))
    return q[:, :dim], q[:, dim:]


def circle(angles):
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sphere(count, rng):
    v = rng.standard_normal((count, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# -- exact cases --------------------------------------------------------------------------------

@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("ambient", [10, 200])
@pytest.mark.parametrize("dim", [1, 2, 3, 4])
def test_reproduces_a_plane(order, ambient, dim):
    rng = np.random.default_rng(100 * ambient + 10 * dim + order)
    tangent, normal = random_frame(ambient, dim, rng)
    origin = rng.standard_normal(ambient)
    train = origin + rng.uniform(-1, 1, (300, dim)) @ tangent.T
    on_plane = origin + rng.uniform(-1, 1, (40, dim)) @ tangent.T
    off = rng.standard_normal((40, ambient - dim)) @ normal.T * 0.3
    fitted = LocalProjection(dim, order=order).fit(train)
    scale = np.abs(train - origin).max()
    np.testing.assert_allclose(fitted.project(on_plane), on_plane, rtol=0, atol=1e-10 * scale)
    # Off the plane: the orthogonal projection onto it, which is where the query came from.
    np.testing.assert_allclose(fitted.project(on_plane + off), on_plane, rtol=0,
                               atol=1e-10 * scale)


def vertex_quadric(dim, ambient, pairs, rng):
    """Points x0 + T s + N B(s, s) with the s in +-pairs, the vertex x0 and the frame."""
    tangent, normal = random_frame(ambient, dim, rng)
    forms = rng.standard_normal((ambient - dim, dim, dim))
    forms = (forms + forms.transpose(0, 2, 1)) / 4                     # B_i symmetric
    s = rng.uniform(-0.3, 0.3, (4 * pairs, dim))
    s = s[np.linalg.norm(s, axis=1) > 0.05][:pairs]                   # none at the vertex
    s = np.concatenate([s, -s])
    origin = rng.standard_normal(ambient)
    quadratic = np.einsum("iab,na,nb->ni", forms, s, s)
    return origin + s @ tangent.T + quadratic @ normal.T, origin


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_order_two_reproduces_a_quadric_at_its_vertex(dim, seed):
    # With neighbours in +-s pairs the weighted PCA plane is the tangent plane T exactly, the
    # quadric is a quadratic graph over it and the order-2 fit reproduces it: p(x0) = x0.
    # (Away from the vertex, or with unpaired neighbours, the PCA plane tilts by O(h) and the
    # quadric is no longer a polynomial graph over it: see the module docstring.)
    rng = np.random.default_rng(10 * dim + seed)
    train, vertex = vertex_quadric(dim, 12, 20 * dim, rng)
    second = LocalProjection(dim, order=2).fit(train).project(vertex[None])
    np.testing.assert_allclose(second[0], vertex, rtol=0, atol=1e-8)
    # Order 1 projects onto the plane through the weighted mean, which sits off the vertex by
    # the weighted mean of B(s, s): the same data show that the test can fail.
    first = LocalProjection(dim, order=1).fit(train).project(vertex[None])
    assert np.linalg.norm(first[0] - vertex) > 1e-4


# -- convergence rates --------------------------------------------------------------------------

def fitted_slopes(sizes, draw_train, test, dim, order, seeds=range(8)):
    """Slopes against log n of the Hausdorff proxy and of the mean distance (log-means over seeds).

    The maximum over test points sits in the widest gap of a random sample, about
    (log n / n)^(1/d) rather than n^(-1/d), so its fitted slope is biased towards zero
    (on the circle, (log n / n)^2 over n = 200..3200 has slope -1.7); the mean distance has no
    such factor and pins the exponent more tightly.
    """
    hausdorff, mean = [], []
    for n in sizes:
        errors = [projection_error(LocalProjection(dim, order=order).fit(draw_train(n, s)), test)
                  for s in seeds]
        hausdorff.append(np.mean([np.log(e.hausdorff) for e in errors]))
        mean.append(np.mean([np.log(e.mean) for e in errors]))
    return np.polyfit(np.log(sizes), hausdorff, 1)[0], np.polyfit(np.log(sizes), mean, 1)[0]


CIRCLE_SIZES = [200, 400, 800, 1600, 3200]


def circle_train(n, seed):
    return circle(np.random.default_rng(seed).uniform(0, 2 * np.pi, n))


def test_order_one_rate_on_the_circle():
    # Theory: O(h^2) with h ~ 1/n, exponent -2/d = -2. Measured with 8 seeds per n over five
    # other seed groups: Hausdorff slope -1.82 .. -1.97, mean slope -1.98 .. -2.04.
    test = circle(np.random.default_rng(99).uniform(0, 2 * np.pi, 500))
    hausdorff, mean = fitted_slopes(CIRCLE_SIZES, circle_train, test, 1, 1)
    assert abs(hausdorff - (-2.0)) <= 0.25, hausdorff
    assert abs(mean - (-2.0)) <= 0.1, mean


def test_order_two_converges_faster_on_the_circle():
    # Theory: O(h^3), O(h^4) where the neighbourhood is balanced; measured -3.6 .. -4.0.
    test = circle(np.random.default_rng(99).uniform(0, 2 * np.pi, 500))
    hausdorff, _ = fitted_slopes(CIRCLE_SIZES, circle_train, test, 1, 2)
    assert hausdorff <= -2.6, hausdorff


def test_order_one_rate_on_the_sphere():
    # Theory: exponent -2/d = -1; measured Hausdorff -0.95 .. -0.99, mean -0.99 .. -1.00.
    test = sphere(500, np.random.default_rng(99))
    hausdorff, mean = fitted_slopes([500, 1000, 2000, 4000, 8000],
                                    lambda n, s: sphere(n, np.random.default_rng(s)), test, 2, 1)
    assert abs(hausdorff - (-1.0)) <= 0.3, hausdorff
    assert abs(mean - (-1.0)) <= 0.1, mean


# -- invariances, types and the neighbour search --------------------------------------------------

@pytest.mark.parametrize("order", [1, 2])
def test_equivariant_under_similarities(order):
    # Scale-free bandwidth: fitting c R X + b and projecting c R q + b gives c R p(q) + b.
    rng = np.random.default_rng(5)
    train, test = sphere(800, rng), sphere(50, rng)
    rotation, _ = random_frame(3, 3, rng)
    move = lambda x: 7.5 * x @ rotation.T + np.array([1.0, -2.0, 3.0])
    base = LocalProjection(2, order=order).fit(train).project(test)
    moved = LocalProjection(2, order=order).fit(move(train)).project(move(test))
    np.testing.assert_allclose(moved, move(base), rtol=0, atol=1e-11 * 7.5)


@pytest.mark.parametrize("order", [1, 2])
def test_memory_budget_does_not_change_the_answer(order):
    rng = np.random.default_rng(6)
    train = np.concatenate([sphere(600, rng), np.zeros((600, 17))], axis=1)
    test = np.concatenate([sphere(100, rng), np.zeros((100, 17))], axis=1)
    small = LocalProjection(2, order=order, memory_budget=2**16).fit(train).project(test)
    large = LocalProjection(2, order=order).fit(train).project(test)
    np.testing.assert_allclose(small, large, rtol=0, atol=1e-13)


def test_types_follow_the_caller_and_float32_works():
    rng = np.random.default_rng(7)
    train, test = sphere(1000, rng), sphere(30, rng)
    truth = LocalProjection(2).fit(train).project(test)
    assert isinstance(truth, np.ndarray) and truth.dtype == np.float64
    as_tensor = LocalProjection(2).fit(torch.from_numpy(train)).project(torch.from_numpy(test))
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.float64
    np.testing.assert_allclose(as_tensor.numpy(), truth, rtol=0, atol=1e-14)
    # Numpy queries against tensor training points come back as numpy, and the reverse.
    assert isinstance(LocalProjection(2).fit(torch.from_numpy(train)).project(test), np.ndarray)
    # float32: the training points' dtype wins; the error is rounding (1e-7) next to the
    # order-1 error of about 1e-2 at this density.
    single = LocalProjection(2).fit(train.astype(np.float32)).project(test)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, truth, rtol=0, atol=1e-5)
    distances, indices = LocalProjection(2).fit(train).neighbors(torch.from_numpy(test))
    assert distances.dtype == torch.float64 and indices.dtype == torch.int64
    assert distances.shape == indices.shape == (30, 8)


def test_neighbors_are_the_exact_nearest_training_points():
    rng = np.random.default_rng(8)
    train, test = rng.standard_normal((500, 30)), rng.standard_normal((20, 30))
    fitted = LocalProjection(3, n_neighbors=10).fit(train)
    distances, indices = fitted.neighbors(test)
    full = np.linalg.norm(test[:, None, :] - train[None], axis=2)
    order = np.argsort(full, axis=1)[:, :10]
    np.testing.assert_array_equal(indices, order)
    np.testing.assert_allclose(distances, np.take_along_axis(full, order, 1), rtol=1e-12)
    assert fitted.n_train_ == 500 and fitted.n_features_ == 30 and fitted.n_neighbors_ == 10
    assert fitted.index_ == "exact"


def test_projection_error_and_the_protocol():
    rng = np.random.default_rng(9)
    train, test = sphere(2000, rng), sphere(100, rng)
    fitted = LocalProjection(2).fit(train)
    assert isinstance(fitted, ManifoldEstimator) and not isinstance(object(), ManifoldEstimator)
    error = projection_error(fitted, test)
    assert isinstance(error, ProjectionError)
    want = np.linalg.norm(test - fitted.project(test), axis=1)
    np.testing.assert_allclose(error.distances, want, rtol=1e-15)
    assert error.hausdorff == pytest.approx(want.max(), rel=1e-15)
    assert error.mean == pytest.approx(want.mean(), rel=1e-12)
    tensor_error = projection_error(fitted, torch.from_numpy(test))
    np.testing.assert_allclose(tensor_error.distances, want, rtol=1e-15)


def test_rank_deficient_quadratic_fit_warns():
    # Order 2, d = 1, k = 3: a query whose 3 neighbours are two distinct points (one doubled)
    # cannot fit [1, t, t^2]; the fit falls to minimum norm and says so.
    line = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [5.0, 0.0], [6.0, 0.0]])
    fitted = LocalProjection(1, order=2, n_neighbors=3).fit(line)
    with pytest.warns(RuntimeWarning, match="rank-deficient"):
        projected = fitted.project(np.array([[0.4, 0.2]]))
    np.testing.assert_allclose(projected, [[0.4, 0.0]], atol=1e-12)  # still on the line


# -- approximate index ----------------------------------------------------------------------------

def test_approximate_index_agrees_with_exact():
    rng = np.random.default_rng(10)
    # A 3-sphere (d = 3) isometrically in R^64: 5,000 training points, 300 test points.
    tangent, _ = random_frame(64, 4, rng)
    draw = lambda n: sphere_n(n, 4, rng) @ tangent.T
    train, test = draw(5000), draw(300)
    exact = LocalProjection(3, index="exact").fit(train)
    approximate = LocalProjection(3, index="approximate").fit(train)
    assert approximate.index_ == "approximate"
    _, want = exact.neighbors(test)
    _, got = approximate.neighbors(test)
    recall = np.mean([len(set(a) & set(b)) / want.shape[1] for a, b in zip(want, got)])
    assert recall >= 0.95, recall
    same = np.array([set(a) == set(b) for a, b in zip(want, got)])
    assert same.sum() >= 200
    np.testing.assert_allclose(approximate.project(test)[same], exact.project(test)[same],
                               rtol=0, atol=1e-6)


def sphere_n(count, ambient, rng):
    v = rng.standard_normal((count, ambient))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_fitted_estimators_pickle_with_their_index():
    rng = np.random.default_rng(15)
    train, test = sphere(1000, rng), sphere(40, rng)
    for index in ("exact", "approximate"):
        fitted = LocalProjection(2, order=2, index=index).fit(train)
        copy = pickle.loads(pickle.dumps(fitted))
        assert copy.index_ == index
        np.testing.assert_array_equal(copy.project(test), fitted.project(test))


def test_auto_index_switches_at_the_threshold():
    train = sphere(300, np.random.default_rng(11))
    assert LocalProjection(2, exact_max_points=300).fit(train).index_ == "exact"
    assert LocalProjection(2, exact_max_points=299).fit(train).index_ == "approximate"


def test_missing_faiss_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)                 # import faiss -> ImportError
    with pytest.raises(ImportError, match="'index' parameter of LocalProjection.*`faiss-cpu`"):
        LocalProjection(2, index="approximate").fit(sphere(100, np.random.default_rng(0)))
    # The exact search never imports it.
    LocalProjection(2, index="exact").fit(sphere(100, np.random.default_rng(0)))


# -- errors ---------------------------------------------------------------------------------------

POINTS = sphere(50, np.random.default_rng(12))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dim": 0}, ValueError, r"'dim' parameter of LocalProjection must be an int in \[1, 2\]"),
    ({"dim": 3}, ValueError, r"'dim' parameter of LocalProjection must be an int in \[1, 2\]"),
    ({"dim": 1.5}, TypeError, "'dim'"),
    ({"dim": 2, "order": 3}, ValueError, r"'order' parameter of LocalProjection .* \{1, 2\}"),
    ({"dim": 2, "n_neighbors": 2}, ValueError, r"'n_neighbors' .* in \[3, 50\]. Got 2"),
    ({"dim": 2, "order": 2, "n_neighbors": 5}, ValueError, r"'n_neighbors' .* in \[6, 50\]"),
    ({"dim": 2, "n_neighbors": 51}, ValueError, r"'n_neighbors' .* in \[3, 50\]. Got 51"),
    ({"dim": 2, "index": "hnsw"}, ValueError, "'index' parameter of LocalProjection"),
    ({"dim": 2, "exact_max_points": 0}, ValueError, r"'exact_max_points' .* \[1, inf\]"),
    ({"dim": 2, "memory_budget": 2**15}, ValueError, r"'memory_budget' .* \[65536, inf\]"),
])
def test_bad_parameters_are_named_at_fit(kwargs, error, match):
    with pytest.raises(error, match=match):
        LocalProjection(**kwargs).fit(POINTS)


def test_default_neighbour_count_larger_than_the_training_set():
    # d = 4, order 1: k = 2 * 2**4 = 32 neighbours, and only 20 training points.
    points = np.random.default_rng(13).standard_normal((20, 6))
    with pytest.raises(ValueError, match=r"'n_neighbors' .* \[5, 20\]. Got 32"):
        LocalProjection(4).fit(points)


def test_bad_inputs_are_named():
    bad = POINTS.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="'points' parameter of LocalProjection.fit"):
        LocalProjection(2).fit(bad)
    with pytest.raises(ValueError, match="'points'.*D >= 2"):
        LocalProjection(1).fit(np.arange(10.0)[:, None])
    with pytest.raises(ValueError, match="'points'.*shape"):
        LocalProjection(1).fit(np.arange(10.0))
    with pytest.raises(RuntimeError, match=r"call fit\(points\) before project"):
        LocalProjection(2).project(POINTS)
    with pytest.raises(RuntimeError, match=r"call fit\(points\) before neighbors"):
        LocalProjection(2).neighbors(POINTS)
    fitted = LocalProjection(2).fit(POINTS)
    with pytest.raises(ValueError, match=r"'queries' parameter of LocalProjection.project .*"
                                         r"\(Q, 3\).*Got \(4, 5\)"):
        fitted.project(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="'queries' parameter of LocalProjection.project"):
        fitted.project(bad)
    with pytest.raises(TypeError, match="'estimator' parameter of projection_error"):
        projection_error(object(), POINTS)
    with pytest.raises(ValueError, match="'queries' parameter of projection_error"):
        projection_error(fitted, np.zeros((0, 3)))


# -- GPU -------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("ambient", [3, 64])
def test_cuda_matches_cpu(order, ambient):
    rng = np.random.default_rng(14)
    tangent, _ = random_frame(ambient, 3, rng)
    train, test = sphere(3000, rng) @ tangent.T, sphere(200, rng) @ tangent.T
    cpu = LocalProjection(2, order=order).fit(train).project(test)
    fitted = LocalProjection(2, order=order).fit(torch.from_numpy(train).cuda())
    gpu = fitted.project(torch.from_numpy(test).cuda())
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float64
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, rtol=0, atol=1e-10)
    assert isinstance(fitted.project(test), np.ndarray)              # numpy in, numpy out
    with pytest.raises(ValueError, match="'queries'.*device"):
        fitted.project(torch.from_numpy(test))                       # CPU tensor, CUDA fit
