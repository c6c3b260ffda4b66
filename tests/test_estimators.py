"""Point-cloud estimators against the closed forms of the toy manifolds.

The samples are random, so each tolerance below comes from a measurement
(dated 2026-11-22, numbers in the comments) of the estimator's spread over
seeds or of its bias, and sits well outside it; every sample is seeded, so
each test is deterministic. Where the estimator is exact (isometry
invariance, symmetric grids, the reference implementation) the tolerance is
at the rounding level instead.
"""

import math

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from lib.datasets import toy
from lib.estimators import (LevinaBickelMLE, QuadraticFit, TwoNN, aamari_reach, knn_volume,
                            local_pca_tangents, quadratic_fit_curvature)
from lib.geometry.reach import ReachResult

N = 2000
MANIFOLDS = [toy.Circle(1.0), toy.Sphere(1.0), toy.Torus(1.0, 0.4)]


def sample(manifold, n=N, *, ambient_dim=None, seed=0):
    """n points of ``manifold``, uniform in volume, optionally embedded isometrically in R^D."""
    theta = manifold.sample(n, seed=seed)
    points = manifold.points(theta)
    return points if ambient_dim is None else toy.embed(points, ambient_dim, seed=seed + 1)


# --- intrinsic dimension --------------------------------------------------------------------

# Tolerances at n = 2000 from the spread over 20 seeds (2026-11-22), circle / sphere / torus:
#   TwoNN linear:            bias -0.001 / -0.011 / -0.021, std 0.032 / 0.066 / 0.053
#   TwoNN mle:               bias -0.002 / -0.009 / -0.020, std 0.029 / 0.063 / 0.053
#   LevinaBickelMLE k = 5:   bias -0.001 / -0.006 / -0.014, std 0.012 / 0.025 / 0.031
#   LevinaBickelMLE k = 20:  bias +0.001 / +0.002 / +0.010, std 0.008 / 0.012 / 0.014
# Each bound is about 3 std of the worst manifold plus its bias. Seed 0 measured
# |d_hat - d| = 0.026 / 0.018 / 0.027 (TwoNN linear), 0.011 / 0.008 / 0.026 (MLE k = 5),
# 0.001 / 0.004 / 0.010 (MLE k = 20).
ESTIMATORS = [(TwoNN(), 0.2), (TwoNN(method="mle"), 0.2), (LevinaBickelMLE(), 0.1),
              (LevinaBickelMLE(n_neighbors=20), 0.05)]


@pytest.mark.parametrize("ambient_dim", [None, 50], ids=["native", "R50"])
@pytest.mark.parametrize("manifold", MANIFOLDS, ids=lambda m: m.name)
def test_intrinsic_dimension_is_recovered(manifold, ambient_dim):
    X = sample(manifold, ambient_dim=ambient_dim)
    for estimator, tolerance in ESTIMATORS:
        fitted = estimator.fit(X)
        assert fitted is estimator
        assert isinstance(fitted.dimension_, float)
        assert abs(fitted.dimension_ - manifold.dim) < tolerance, (estimator, fitted.dimension_)


def test_intrinsic_dimension_is_isometry_invariant():
    # An isometric embedding keeps every distance up to rounding, so the estimate too.
    points = sample(toy.Sphere(1.0), 500)
    moved = 3.0 + toy.embed(points, 20, seed=7)
    for estimator in (TwoNN(), TwoNN(method="mle"), LevinaBickelMLE(n_neighbors=10)):
        d_native = estimator.fit(points).dimension_
        assert estimator.fit(moved).dimension_ == pytest.approx(d_native, rel=1e-9)


def test_levina_bickel_local_dimensions_combine_by_inverse_mean():
    estimator = LevinaBickelMLE(n_neighbors=10).fit(sample(toy.Sphere(1.0), 500))
    local = estimator.local_dimensions_
    assert local.shape == (500,) and np.isfinite(local).all()
    assert estimator.dimension_ == pytest.approx(1 / np.mean(1 / local), rel=1e-12)


def test_twonn_mle_without_discard_is_the_closed_form():
    estimator = TwoNN(discard_fraction=0.0, method="mle").fit(sample(toy.Circle(1.0), 300))
    expected = (300 - 1) / np.log(estimator.ratios_).sum()
    assert estimator.dimension_ == pytest.approx(expected, rel=1e-12)


def _expected_failed_checks(estimator):
    # load_iris has a repeated row (indices 101 and 142); duplicates are rejected by design,
    # since a zero neighbour distance makes the log-ratios infinite. The check itself is
    # about negative values, which both estimators accept.
    return {"check_positive_only_tag_during_fit":
            "iris has duplicated rows, which these estimators reject with a ValueError"}


@parametrize_with_checks([TwoNN(), LevinaBickelMLE()],
                         expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_agrees_with_scikit_dimension():
    skdim = pytest.importorskip("skdim", reason="scikit-dimension is a test dependency")
    # Same formulas on the same neighbours. Measured 2026-11-22 in R^3 at n = 500, 1000, 2000:
    # relative differences at most 6.7e-16 (TwoNN linear; summation order), 0 (TwoNN mle) and
    # 2.2e-16 (MLE k = 5, 20); bound 1e-12. (In R^50 scikit-dimension's brute-force search
    # takes distances from |x|^2 + |y|^2 - 2 x.y, which loses digits on close pairs: up to
    # 1e-7 there, so the comparison stays in R^3, where both searches are exact.)
    for manifold in MANIFOLDS:
        X = sample(manifold, 500)
        for method in ("linear", "mle"):
            ours = TwoNN(method=method).fit(X).dimension_
            theirs = skdim.id.TwoNN(method=method).fit(X).dimension_
            assert ours == pytest.approx(theirs, rel=1e-12)
        for k in (5, 20):
            ours = LevinaBickelMLE(n_neighbors=k).fit(X).dimension_
            theirs = skdim.id.MLE().fit(X, n_neighbors=k).dimension_
            assert ours == pytest.approx(theirs, rel=1e-12)


def test_estimator_parameters_are_validated_in_fit():
    X = sample(toy.Sphere(1.0), 50)
    TwoNN(discard_fraction=2.0)   # __init__ stores, never checks
    with pytest.raises(ValueError, match=r"'discard_fraction' parameter of TwoNN must be a float "
                                         r"in \[0(\.0)?, 1(\.0)?\)"):
        TwoNN(discard_fraction=1.0).fit(X)
    with pytest.raises(TypeError, match=r"'discard_fraction' parameter of TwoNN must be a float"):
        TwoNN(discard_fraction="0.1").fit(X)
    with pytest.raises(ValueError, match=r"'method' parameter of TwoNN must be one of "
                                         r"\{'linear', 'mle'\}"):
        TwoNN(method="fit").fit(X)
    with pytest.raises(ValueError, match=r"'discard_fraction' parameter of TwoNN must leave at "
                                         r"least 2 of the 50 ratios"):
        TwoNN(discard_fraction=0.99).fit(X)
    with pytest.raises(ValueError, match=r"'n_neighbors' parameter of LevinaBickelMLE must be "
                                         r"an int in \[2, inf\]"):
        LevinaBickelMLE(n_neighbors=1).fit(X)
    with pytest.raises(ValueError, match=r"'n_neighbors' parameter of LevinaBickelMLE must be "
                                         r"an int in \[2, n_samples - 1\] = \[2, 49\]. Got 50"):
        LevinaBickelMLE(n_neighbors=50).fit(X)
    X[4, 0] = np.inf
    for estimator in (TwoNN(), LevinaBickelMLE()):
        # Our named error, before scikit-learn's "Input X contains infinity" (no parameter name).
        name = type(estimator).__name__
        with pytest.raises(ValueError, match=f"The 'X' parameter of {name} must hold only finite "
                                             f"values \\(no NaN or inf\\). Got 1 NaN or inf"):
            estimator.fit(X)


@pytest.mark.parametrize("estimator", [TwoNN(), LevinaBickelMLE()], ids=repr)
def test_duplicate_points_raise_instead_of_inf(estimator):
    X = sample(toy.Sphere(1.0), 50)
    X[7] = X[3]
    with pytest.raises(ValueError, match=r"'X' parameter of \w+ must hold distinct points.*"
                                         r"Got 2 points with a duplicate"):
        estimator.fit(X)


# --- local PCA tangents ---------------------------------------------------------------------

def test_local_pca_tangents_are_orthonormal_and_normal_to_the_radius():
    X = sample(toy.Sphere(1.0))
    tangents = local_pca_tangents(X, n_neighbors=10, dim=2)
    assert tangents.shape == (N, 3, 2)
    gram = np.einsum("nDa,nDb->nab", tangents, tangents)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(2), gram.shape), atol=1e-12)
    # |<t, x>| is the sine of the tilt of the PCA plane, O(r / R) with r the kNN radius
    # (about 0.09 at k = 10, n = 2000). Measured 2026-11-22: median 0.0115, max 0.089.
    tilt = np.abs(np.einsum("nDa,nD->na", tangents, X))
    assert np.median(tilt) < 0.03
    assert tilt.max() < 0.15


def test_local_pca_tangents_follow_an_isometric_embedding():
    points = sample(toy.Torus(1.0, 0.4), 500)
    isometry = toy.random_isometry(3, 12, seed=3)
    native = local_pca_tangents(points, n_neighbors=8, dim=2)
    embedded = local_pca_tangents(points @ isometry, n_neighbors=8, dim=2)
    # Same plane up to the sign/rotation of the basis: compare the projectors.
    np.testing.assert_allclose(np.einsum("nDa,nEa->nDE", embedded, embedded),
                               isometry.T @ np.einsum("nDa,nEa->nDE", native, native) @ isometry,
                               atol=1e-9)


# --- quadratic-fit curvature ----------------------------------------------------------------

@pytest.mark.parametrize("radius", [0.5, 2.0])
def test_quadratic_fit_sphere_curvature(radius):
    X = sample(toy.Sphere(radius))
    fit = quadratic_fit_curvature(X, n_neighbors=20, dim=2)
    assert isinstance(fit, QuadraticFit)
    assert fit.scalar_curvature.shape == (N,)
    assert fit.second_fundamental_form.shape == (N, 3, 2, 2)
    # The |u|^4 / (8 R^3) term of the sphere's graph biases the quadratic fit upwards by
    # O(r^2 / R^2), r the kNN radius; measured 2026-11-22 at k = 20, n = 2000: median S =
    # 1.0149 * 2/R^2 at both radii (1.0071 at k = 10, 1.0227 at k = 30). Bound 4 %.
    assert np.median(fit.scalar_curvature) == pytest.approx(2 / radius**2, rel=0.04)
    # II_aa = -x / R^2 (the mean curvature vector points to the centre) and II_12 = 0.
    # Measured relative error of the mean curvature vector: median 0.020, max 0.091.
    mean = np.einsum("nDaa->nD", fit.second_fundamental_form) / 2
    error = np.linalg.norm(mean + X / radius**2, axis=1) * radius
    assert np.median(error) < 0.05
    assert error.max() < 0.2


def test_quadratic_fit_on_a_plane_is_flat():
    rng = np.random.default_rng(0)
    plane = np.c_[rng.uniform(size=(N, 2)), np.zeros(N)]
    fit = quadratic_fit_curvature(toy.embed(plane, 10, seed=2), n_neighbors=20, dim=2)
    # Only rounding: measured max |II| 1.7e-13 and max |S| 8e-26 on the unit square.
    assert np.abs(fit.second_fundamental_form).max() < 1e-9
    assert np.abs(fit.scalar_curvature).max() < 1e-12


def test_quadratic_fit_torus_follows_the_closed_form():
    torus = toy.Torus(1.0, 0.4)
    theta = torus.sample(4000, seed=0)
    fit = quadratic_fit_curvature(torus.points(theta), n_neighbors=10, dim=2)
    # S ranges over [-8.3, 3.6]; measured 2026-11-22: median |S - S_exact| = 0.10 (seeds 0, 1).
    error = np.abs(fit.scalar_curvature - torus.scalar_curvature(theta))
    assert np.median(error) < 0.25


def test_quadratic_fit_scales_and_ignores_extra_dimensions():
    points = sample(toy.Ellipsoid(1.0, 0.8, 0.6), 500)
    reference = quadratic_fit_curvature(points, n_neighbors=12, dim=2).scalar_curvature
    moved = quadratic_fit_curvature(2.5 * toy.embed(points, 9, seed=4), n_neighbors=12, dim=2)
    # S is intrinsic and scales like c^-2; the same neighbours give the same fit up to rounding.
    np.testing.assert_allclose(moved.scalar_curvature, reference / 2.5**2, rtol=1e-7, atol=1e-9)


# --- kNN volume -----------------------------------------------------------------------------

def test_knn_volume_of_sphere_and_circle():
    # Unbiased on the round sphere (Euclidean balls are caps of area pi r^2); the spread over
    # 10 seeds at n = 2000, k = 10 was 0.7 % (mean -0.05 %), seed 0 is off by +0.18 %.
    # Bound 3 %. Circle, seed 0: +0.38 %.
    assert knn_volume(sample(toy.Sphere(1.0)), n_neighbors=10, dim=2) == pytest.approx(
        4 * math.pi, rel=0.03)
    assert knn_volume(sample(toy.Circle(1.0)), n_neighbors=10, dim=1) == pytest.approx(
        2 * math.pi, rel=0.03)


def test_knn_volume_scales_like_c_to_the_d():
    points = sample(toy.Torus(1.0, 0.4), 500)
    volume = knn_volume(points, n_neighbors=6, dim=2)
    assert isinstance(volume, float)
    assert knn_volume(3.0 * points, n_neighbors=6, dim=2) == pytest.approx(9 * volume, rel=1e-12)


# --- reach with estimated tangents ----------------------------------------------------------

@pytest.mark.parametrize("radius", [0.5, 2.0])
def test_aamari_reach_on_a_dense_circle(radius):
    circle = toy.Circle(radius)
    points = circle.points(circle.grid(1000)).reshape(-1, 2)
    result = aamari_reach(points, n_neighbors=4, dim=1)
    assert isinstance(result, ReachResult)
    assert result.local.shape == (1000,)
    # On an even grid with an even k each neighbourhood is symmetric, so the PCA tangent is
    # exact and every chord ratio equals R. Measured 2026-11-22: 5e-11 relative (the normal
    # part is a difference of squares, losing (R / h)^2 ~ 2.5e4 in precision). Bound 1e-8.
    assert result.reach == pytest.approx(radius, rel=1e-8)
    np.testing.assert_allclose(result.local, radius, rtol=1e-8)


def test_aamari_reach_on_a_random_sample_is_biased_low():
    # Known limitation, measured 2026-11-22 on 2000 uniform points of the unit circle:
    # the PCA tangent tilts by O(r / R), and nearly coincident samples then look normal, so
    # the global estimate collapses (3e-4 R at k = 4) and the median local reach is 0.39 R.
    # This test pins the direction of the bias, not its size.
    result = aamari_reach(sample(toy.Circle(1.0)), n_neighbors=4, dim=1)
    assert result.reach < 0.1
    assert 0.2 < float(np.median(result.local)) < 1.0


# --- inputs ---------------------------------------------------------------------------------

LOCAL_FUNCTIONS = [local_pca_tangents, quadratic_fit_curvature, knn_volume, aamari_reach]


@pytest.mark.parametrize("function", LOCAL_FUNCTIONS, ids=lambda f: f.__name__)
def test_local_functions_reject_bad_arguments(function):
    name = function.__name__
    X = sample(toy.Sphere(1.0), 40)
    low = 5 if function is quadratic_fit_curvature else 3    # d (d + 3) / 2 or d + 1 at d = 2
    high_dim = 2 if function is quadratic_fit_curvature else 3
    with pytest.raises(ValueError, match=rf"'n_neighbors' parameter of {name} must be an int in "
                                         rf"\[{low}, 39\]. Got {low - 1} instead"):
        function(X, n_neighbors=low - 1, dim=2)
    with pytest.raises(ValueError, match=rf"'n_neighbors' parameter of {name} must be an int in "
                                         rf"\[{low}, 39\]. Got 40 instead"):
        function(X, n_neighbors=40, dim=2)
    for dim in (0, high_dim + 1):
        with pytest.raises(ValueError, match=rf"'dim' parameter of {name} must be an int in "
                                             rf"\[1, {high_dim}\]. Got {dim} instead"):
            function(X, n_neighbors=10, dim=dim)
    with pytest.raises(TypeError, match=rf"'n_neighbors' parameter of {name}"):
        function(X, n_neighbors=10.0, dim=2)
    bad = X.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match=rf"'points' parameter of {name} must hold only finite "
                                         rf"values. Got 1 non-finite"):
        function(bad, n_neighbors=10, dim=2)
    with pytest.raises(ValueError, match=rf"'points' parameter of {name} must have shape \(N, D\)"):
        function(X[None], n_neighbors=10, dim=2)


@pytest.mark.parametrize("function", LOCAL_FUNCTIONS, ids=lambda f: f.__name__)
def test_local_functions_numpy_and_torch_agree(function):
    X = sample(toy.Sphere(1.0), 300)
    from_numpy = function(X, n_neighbors=8, dim=2)
    from_torch = function(torch.as_tensor(X), n_neighbors=8, dim=2)
    float32 = function(torch.as_tensor(X, dtype=torch.float32), n_neighbors=8, dim=2)
    for a, b, c in zip(_arrays(from_numpy), _arrays(from_torch), _arrays(float32)):
        assert isinstance(a, (np.ndarray, float)) and isinstance(b, (torch.Tensor, float))
        b = b.numpy() if isinstance(b, torch.Tensor) else b
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        if isinstance(c, torch.Tensor):
            assert c.dtype == torch.float32
            c = c.double().numpy()
        if function is not local_pca_tangents:   # basis signs may differ in float32
            # float32 carries ~1e-7 relative; the fits amplify it by their conditioning.
            # Measured 2026-11-22: 4e-4 relative on the local reach, 5e-5 on the curvature.
            np.testing.assert_allclose(c, a, rtol=2e-3, atol=1e-4)


def _arrays(result):
    if isinstance(result, QuadraticFit):
        return [result.scalar_curvature, result.second_fundamental_form]
    if isinstance(result, ReachResult):
        return [result.local]
    return [result]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("function", LOCAL_FUNCTIONS, ids=lambda f: f.__name__)
def test_local_functions_on_gpu_match_cpu(function):
    X = sample(toy.Sphere(1.0), 300)
    cpu = function(X, n_neighbors=8, dim=2)
    gpu = function(torch.as_tensor(X, device="cuda"), n_neighbors=8, dim=2)
    for a, b in zip(_arrays(cpu), _arrays(gpu)):
        if isinstance(b, torch.Tensor):
            assert b.device.type == "cuda"
            b = b.cpu().numpy()
        if function is local_pca_tangents:       # compare planes, not bases
            a, b = (np.einsum("nDa,nEa->nDE", t, t) for t in (a, b))
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9)
