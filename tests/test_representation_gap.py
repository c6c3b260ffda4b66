r"""Representation Gap against closed forms of random quantization, and its ID estimator.

Truth and tolerances:

- **Flat tori** (circle of length 1, T^2, T^3 of unit volume): the exact finite-n
  value :func:`flat_torus_gap` (for d = 1, 1 / (2 (n + 1)(n + 2))). RG is an
  average over queries *and* over training sets, and the training-set term
  dominates (on the circle the conditional RG is a sum of cubed spacings,
  relative std about 4.4 / sqrt(n)). So each test draws R independent
  training sets, takes the standard error SE from the spread of the R
  per-set means, and asserts ``|mean / formula - 1| < 4 SE`` (a false alarm
  rate of 6e-5 per size for a normal mean) and also ``SE < 3 %``, so the
  check stays sharp. Distances are the periodic (arc) ones through
  ``orbit_distance``: chords would be shorter by a relative
  :math:`(2\pi r)^2 / 12`, 3 % at the T^2 spacing r ~ 0.1 for n = 100.
- **Groups on the Clifford torus** S^1 x S^1 in R^4 (area (2 pi)^2): the
  quotient by C_k is a flat torus of area (2 pi)^2 / k carrying the same n
  points, so RG(C_k) = RG / k exactly in expectation. Measured (2026-11-22,
  12 seeds, n = 1000, 4000 queries): k RG(C_k) / RG = 1.007 +- 0.041 (k = 4),
  0.996 +- 0.043 (k = 16); bound 0.17 (4 std), also for RG(C_k) against the
  quotient's flat-torus value. SO(2) on the first factor leaves the second
  circle (d_G = 1): fitted slopes over n = 200..3200 (10 training sets, 1000
  queries, 12 seeds) -0.995 +- 0.008 without the group and -1.995 +- 0.030
  with it; bounds 0.04 and 0.15 (5 std).
- **RGSlope** on S^2, S^3, S^4 in R^20 (3000 points, 600 queries, sizes
  16..2400): over 4 seeds each (2026-11-22) the errors were at most 0.05 /
  0.05 / 0.11 and the 95 % bootstrap half-widths 0.06-0.2; bound 0.3.
  Agreement with scikit-dimension's TwoNN and MLE (k = 20) on the same
  points: differences at most 0.16 (d = 4, TwoNN, whose own spread is about
  0.1); bound 0.35.
- **RGSlope's calibrated interval** (nominal 95 %): over 20 seeds of 1,000
  points, a 10-ball, the torus of revolution in R^3 and S^2 x S^2 in R^6
  (the last two curved and unlike every reference law) were covered on
  20, 19 and 18 seeds (2026-12-07); the raw interval covered the 10-ball
  on none (raw estimate 8.5). The test asks for at least 16 of 20: a
  correct 95 % interval falls below that with probability 1.6 % per
  manifold (binomial), a biased one like the raw 10-ball never reaches it.
- **Optimal denoiser**: the notes' S^2-in-R^10 check at n = 300: test minus
  train MSE over RG measured 0.9993 (sigma = 0.01) and 0.9997 (0.003) on the
  same queries; the gap closes like sigma^2 (ratio 0.968 at 0.03). Bound 2 %.
- **Precision, chunking, types**: identical algorithms on identical
  candidates give the same float64 sum of squares, so 1e-12 relative.
"""

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import softmax
from sklearn.utils.estimator_checks import parametrize_with_checks

from lib.datasets import toy
from lib.datasets.point_clouds import Ball, Cube, Gaussian
from lib.stats.quantization import (
    asymptotic_gap,
    ball_volume,
    flat_torus_gap,
    kmeans_codebook_gap,
    optimal_quantizer_constant,
    random_quantizer_constant,
    zador_bounds,
)
from lib.estimators.representation_gap import (
    CALIBRATION_LAWS,
    RGCurve,
    RGSlope,
    _reference_dimensions_at,
    default_sizes,
    optimal_denoiser,
    representation_gap,
)


def periodic_distance(q, x):
    """Squared distance on the unit flat torus [0, 1)^d, shape (Q, M)."""
    diff = (q[:, None, :] - x[None, :, :]).abs()
    return (torch.minimum(diff, 1 - diff) ** 2).sum(-1)


def circles(angles):
    """Points of [0, 1)^d as a product of circles of circumference 1 in R^(2d)."""
    radius = 1 / (2 * np.pi)
    phase = 2 * np.pi * angles
    return radius * np.stack([np.cos(phase), np.sin(phase)], -1).reshape(len(angles), -1)


def arc_distance(q, x):
    """Squared geodesic distance of the embedded product of circles (orbit of the integer shifts)."""
    angle = lambda p: torch.atan2(p[:, 1::2], p[:, 0::2]) / (2 * np.pi)   
    return periodic_distance(angle(q), angle(x))


def check_against_formula(gaps, expected):
    gaps = np.asarray(gaps)
    ratio = gaps.mean(0) / expected
    se = gaps.std(0, ddof=1) / np.sqrt(len(gaps)) / gaps.mean(0)
    assert np.all(se < 0.03), se
    assert np.all(np.abs(ratio - 1) < 4 * se), (ratio, se)


def test_circle_matches_exact_finite_n_gap():
    rng = np.random.default_rng(0)
    sizes = np.array([2, 5, 10, 20, 50, 100])
    gaps = [representation_gap(rng.random((100, 1)), rng.random((20, 1)), sizes=sizes,
                               orbit_distance=periodic_distance).gap for _ in range(2000)]
    expected = 1 / (2 * (sizes + 1) * (sizes + 2))
    check_against_formula(gaps, expected)


@pytest.mark.parametrize("d", [2, 3])
def test_flat_torus_embedded_matches_exact_gap(d):
    rng = np.random.default_rng(d)
    sizes = np.array([10, 30, 100])
    gaps = [representation_gap(circles(rng.random((100, d))), circles(rng.random((50, d))),
                               sizes=sizes, orbit_distance=arc_distance).gap for _ in range(300)]
    check_against_formula(gaps, flat_torus_gap(sizes, d))


def sphere_points(d, n, ambient_dim, seed, shift=0.0):
    gaussian = np.random.default_rng(seed).standard_normal((n, d + 1))
    gaussian /= np.linalg.norm(gaussian, axis=1, keepdims=True)
    return toy.embed(gaussian, ambient_dim, seed=1000 + d) + shift


def test_prefixes_are_nested_and_curve_monotone():
    x, q = sphere_points(2, 500, 10, 0), sphere_points(2, 300, 10, 1)
    curve = representation_gap(x, q, return_per_query=True)
    assert isinstance(curve, RGCurve)
    assert np.array_equal(curve.sizes, default_sizes(500))
    assert np.all(np.diff(curve.per_query, axis=1) <= 0)
    # A prefix curve read at n equals a direct computation on the first n points.
    for k in (0, 4, len(curve.sizes) - 1):
        n = int(curve.sizes[k])
        direct = ((q[:, None, :] - x[None, :n, :]) ** 2).sum(-1).min(1)
        np.testing.assert_allclose(curve.per_query[:, k], direct, rtol=1e-12)


def test_float32_ranking_with_recheck_equals_float64():
    # Offset 10: |x|^2 ~ 100, so float32 |q|^2 - 2 q.x + |x|^2 has errors ~1e-5, while RG ~ 4e-3.
    x, q = sphere_points(2, 3000, 50, 2, shift=10.0), sphere_points(2, 500, 50, 3, shift=10.0)
    exact = representation_gap(x, q, return_per_query=True).per_query
    fast = representation_gap(x, q, precision="float32", return_per_query=True).per_query
    np.testing.assert_allclose(fast, exact, rtol=1e-12)
    x32, q32 = torch.tensor(x, dtype=torch.float32), torch.tensor(q, dtype=torch.float32)
    naive = ((q32**2).sum(1)[:, None] + (x32**2).sum(1) - 2 * q32 @ x32.T).amin(1).double()
    # The trap is real at this offset: the plain float32 distances are off by > 10 % of RG.
    assert np.abs(naive.numpy() - exact[:, -1]).max() > 0.1 * exact[:, -1].mean()


def test_chunking_does_not_change_the_result():
    x, q = sphere_points(3, 700, 8, 4), sphere_points(3, 60, 8, 5)
    mats = [np.diag(s) for s in ([1] * 8, [-1] * 8)]
    sizes = [3, 40, 300, 700]
    for kwargs in ({}, {"precision": "float32"}, {"group": mats},
                   {"orbit_distance": lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1)}):
        big = representation_gap(x, q, sizes=sizes, memory_budget=2**30, return_per_query=True,
                                 **kwargs)
        small = representation_gap(x, q, sizes=sizes, memory_budget=2**16, return_per_query=True,
                                   **kwargs)
        np.testing.assert_allclose(small.per_query, big.per_query, rtol=1e-12)


def test_numpy_in_numpy_out_torch_in_torch_out():
    x, q = sphere_points(2, 200, 5, 6), sphere_points(2, 40, 5, 7)
    as_numpy = representation_gap(x, q, return_per_query=True)
    as_torch = representation_gap(torch.tensor(x), torch.tensor(q), return_per_query=True)
    assert isinstance(as_numpy.gap, np.ndarray) and isinstance(as_numpy.per_query, np.ndarray)
    assert isinstance(as_torch.gap, torch.Tensor) and as_torch.gap.dtype == torch.float64
    np.testing.assert_allclose(as_torch.gap.numpy(), as_numpy.gap, rtol=1e-12)
    denoised = optimal_denoiser(torch.tensor(q), torch.tensor(x), 0.1)
    assert isinstance(denoised, torch.Tensor)
    np.testing.assert_allclose(denoised.numpy(), optimal_denoiser(q, x, 0.1), rtol=1e-12)


def test_device_argument_moves_the_work_and_returns_to_the_input_device():
    x, q = torch.tensor(sphere_points(2, 200, 5, 6)), torch.tensor(sphere_points(2, 40, 5, 7))
    moved = representation_gap(x, q, device="cpu").gap
    assert moved.device == x.device
    np.testing.assert_allclose(moved.numpy(), representation_gap(x, q).gap.numpy(), rtol=1e-12)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_gap_on_gpu_matches_cpu(precision):
    x, q = sphere_points(3, 2000, 30, 8, shift=5.0), sphere_points(3, 300, 30, 9, shift=5.0)
    cpu = representation_gap(x, q, precision=precision).gap
    gpu = representation_gap(torch.as_tensor(x, device="cuda"), torch.as_tensor(q, device="cuda"),
                             precision=precision).gap
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, rtol=1e-12)
    on_gpu = representation_gap(x, q, precision=precision, device="cuda").gap
    assert isinstance(on_gpu, np.ndarray)
    np.testing.assert_allclose(on_gpu, cpu, rtol=1e-12)


def clifford(rng, n):
    u = 2 * np.pi * rng.random((n, 2))
    return np.c_[np.cos(u[:, 0]), np.sin(u[:, 0]), np.cos(u[:, 1]), np.sin(u[:, 1])]


def rotations_of_first_circle(k):
    mats = []
    for j in range(k):
        c, s = math.cos(2 * np.pi * j / k), math.sin(2 * np.pi * j / k)
        mat = np.eye(4)
        mat[:2, :2] = [[c, -s], [s, c]]
        mats.append(mat)
    return mats


@pytest.mark.parametrize("k", [4, 16])
def test_finite_group_divides_gap_by_group_order(k):
    rng = np.random.default_rng(k)
    x, q = clifford(rng, 1000), clifford(rng, 4000)
    plain = representation_gap(x, q, sizes=[1000]).gap[-1]
    mats = rotations_of_first_circle(k)
    by_matrices = representation_gap(x, q, sizes=[1000], group=mats).gap[-1]
    by_callable = representation_gap(
        x, q, sizes=[1000],
        group=lambda p: torch.einsum("gij,mj->gmi", torch.tensor(np.array(mats)), p)).gap[-1]
    assert by_callable == pytest.approx(by_matrices, rel=1e-12)
    assert abs(k * by_matrices / plain - 1) < 0.17       # k^(2/d) with d = 2
    # The quotient is a flat torus of area (2 pi)^2 / k with the same n points.
    assert abs(by_matrices / ((2 * np.pi) ** 2 / k * flat_torus_gap(1000, 2)) - 1) < 0.17


def test_continuous_group_lowers_the_exponent():
    def so2_first_circle(q, x):
        radial = torch.linalg.norm(q[:, :2], dim=1)[:, None] - torch.linalg.norm(x[:, :2], dim=1)
        return radial**2 + ((q[:, None, 2:] - x[None, :, 2:]) ** 2).sum(-1)

    rng = np.random.default_rng(0)
    sizes = np.array([200, 400, 800, 1600, 3200])
    q = clifford(rng, 1000)
    plain, quotient = [], []
    for _ in range(10):
        x = clifford(rng, 3200)
        plain.append(representation_gap(x, q, sizes=sizes).gap)
        quotient.append(representation_gap(x, q, sizes=sizes, orbit_distance=so2_first_circle).gap)
    slope = lambda g: np.polyfit(np.log(sizes), np.log(np.mean(g, 0)), 1)[0]    
    assert abs(slope(plain) - (-2 / 2)) < 0.04
    assert abs(slope(quotient) - (-2 / 1)) < 0.15


@pytest.mark.parametrize("d", [2, 3, 4])
def test_rg_slope_recovers_sphere_dimension(d):
    X = sphere_points(d, 3000, 20, d)
    sizes = default_sizes(2400)                     # the pool: 3000 less 20 % queries
    estimator = RGSlope(sizes=sizes[sizes >= 16], random_state=0, n_bootstrap=50).fit(X)
    assert isinstance(estimator.dimension_, float)
    # On a closed manifold the raw slope is nearly unbiased at low d; the calibration, which
    # also answers for balls and cubes, moves it up by up to 0.4 at d = 4 and keeps d inside.
    assert abs(estimator.raw_dimension_ - d) < 0.3
    assert abs(estimator.dimension_ - d) < 0.5
    low, high = estimator.confidence_interval_
    assert low <= d <= high and low < estimator.dimension_ < high
    raw_low, raw_high = estimator.raw_confidence_interval_
    assert raw_low < estimator.raw_dimension_ < raw_high
    assert estimator.raw_dimension_ == pytest.approx(-2 / estimator.slope_, rel=1e-12)
    assert np.all(np.diff(estimator.curve_.gap) <= 0)
    skdim = pytest.importorskip("skdim", reason="scikit-dimension is a test dependency")
    assert abs(estimator.raw_dimension_ - skdim.id.TwoNN().fit(X).dimension_) < 0.35
    assert abs(estimator.raw_dimension_ - skdim.id.MLE().fit(X, n_neighbors=20).dimension_) < 0.35


def sphere_product(seed, n):
    """Uniform points of S^2 x S^2 in R^6: curved, closed, d = 4."""
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, 3)), rng.standard_normal((n, 3))
    return np.c_[a / np.linalg.norm(a, axis=1, keepdims=True),
                 b / np.linalg.norm(b, axis=1, keepdims=True)]


def revolution_torus(seed, n):
    torus = toy.Torus()
    return torus.points(torus.sample(n, seed=seed))


def ball_10(seed, n):
    return Ball(10).sample(n, seed=seed)


@pytest.mark.parametrize("sample, d", [(ball_10, 10), (revolution_torus, 2),
                                       (sphere_product, 4)])
def test_rg_slope_calibrated_interval_covers_the_dimension(sample, d):
    covered = raw_covered = 0
    for seed in range(20):
        estimator = RGSlope(n_bootstrap=100, random_state=seed).fit(sample(100 + seed, 1000))
        low, high = estimator.confidence_interval_
        raw_low, raw_high = estimator.raw_confidence_interval_
        covered += low <= d <= high
        raw_covered += raw_low <= d <= raw_high
        assert low <= estimator.dimension_ <= high
    assert covered >= 16
    if d == 10:                    # the bias the calibration removes
        assert raw_covered <= 2


def test_rg_slope_calibration_is_monotone_and_does_not_depend_on_the_cache():
    X = Cube(5).sample(800, seed=3, ambient_dim=12)
    first = RGSlope(n_bootstrap=20, random_state=0).fit(X)
    for law, table in first.calibration_.items():
        assert law in CALIBRATION_LAWS
        assert np.all(np.diff(table[:, 0]) > 0) and np.all(np.diff(table[:, 1]) >= 0)
        assert table[0, 0] == 1 and table[-1, 0] <= X.shape[1]
        # The inverse of the raw estimate lies between the references that bracket it.
        assert table[-1, 1] >= first.raw_dimension_
    _reference_dimensions_at.cache_clear()
    second = RGSlope(n_bootstrap=20, random_state=0).fit(X)
    assert second.dimension_ == first.dimension_
    np.testing.assert_array_equal(second.confidence_interval_, first.confidence_interval_)
    raw = RGSlope(n_bootstrap=20, random_state=0, calibration=None).fit(X)
    assert raw.dimension_ == raw.raw_dimension_ == first.raw_dimension_
    np.testing.assert_array_equal(raw.confidence_interval_, first.raw_confidence_interval_)
    assert raw.calibration_ == {}
    # A single law: the point estimate is that law's inverse, inside the three-law interval.
    cube = RGSlope(n_bootstrap=20, random_state=0, calibration=("cube",)).fit(X)
    assert first.confidence_interval_[0] <= cube.dimension_ <= first.confidence_interval_[1]
    assert abs(cube.dimension_ - 5) < abs(first.raw_dimension_ - 5)


def test_rg_slope_calibration_is_bounded_by_the_number_of_features():
    # A 4-d Gaussian has a raw slope above every 4-d reference: the estimate stops at D = 4.
    X = Gaussian(4).sample(1000, seed=0)
    estimator = RGSlope(n_bootstrap=20, random_state=0).fit(X)
    assert estimator.raw_dimension_ > estimator.calibration_["ball"][-1, 1]
    assert estimator.dimension_ == 4.0
    assert estimator.confidence_interval_[1] == 4.0


@parametrize_with_checks([RGSlope(n_bootstrap=5)])
def test_rg_slope_follows_scikit_learn_conventions(estimator, check):
    check(estimator)


def test_rg_slope_parameters_are_validated_in_fit():
    X = sphere_points(2, 100, 5, 0)
    with pytest.raises(ValueError, match="'n_queries' parameter of RGSlope"):
        RGSlope(n_queries=99).fit(X)
    with pytest.raises(ValueError, match="'fit_range' parameter of RGSlope"):
        RGSlope(fit_range=(0.9, 0.2)).fit(X)
    with pytest.raises(ValueError, match="'n_permutations' parameter of RGSlope"):
        RGSlope(n_permutations=0).fit(X)
    for bad in ("ball", ("ball", "torus"), ("cube", "cube"), [3]):
        with pytest.raises(ValueError, match="'calibration' parameter of RGSlope must be None or"):
            RGSlope(calibration=bad).fit(X)


def test_optimal_denoiser_is_the_softmax_average():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 3)), rng.standard_normal((7, 3))
    sigma = 0.4
    weights = softmax(-((y[:, None] - x[None]) ** 2).sum(-1) / (2 * sigma**2), axis=1)
    np.testing.assert_allclose(optimal_denoiser(y, x, sigma), weights @ x, rtol=1e-12)
    np.testing.assert_allclose(optimal_denoiser(y, x, sigma, memory_budget=2**16),
                               weights @ x, rtol=1e-12)


def test_small_noise_test_minus_train_error_is_the_gap():
    points = sphere_points(2, 2300, 10, 5)
    train, test = points[:300], points[300:]
    gap = representation_gap(train, test, sizes=[300]).gap[-1]
    # Leading order 4 pi area: Gamma(2) / (n pi / 4 pi) = 4 / n; the notes' sample gave 1.321e-2.
    assert abs(gap / asymptotic_gap(300, 2, volume=4 * np.pi) - 1) < 0.08
    rng = np.random.default_rng(9)

    def mse(points, sigma):
        noisy = points + sigma * rng.standard_normal(points.shape)
        return float(((optimal_denoiser(noisy, train, sigma) - points) ** 2).sum(1).mean())

    for sigma in (0.01, 0.003):
        assert abs((mse(test, sigma) - mse(train, sigma)) / gap - 1) < 0.02


def test_bad_input_names_the_parameter():
    x, q = sphere_points(2, 20, 4, 0), sphere_points(2, 5, 4, 1)
    with pytest.raises(ValueError, match="'train' parameter of representation_gap .*at least 2"):
        representation_gap(x[:1], q)
    with pytest.raises(ValueError, match="'queries' parameter of representation_gap .*finite"):
        representation_gap(x, np.where(np.arange(4) == 2, np.nan, q))
    with pytest.raises(ValueError, match="'queries' parameter of representation_gap .*share no"):
        representation_gap(x, np.r_[q, x[7:8]])
    with pytest.raises(ValueError, match="'queries' parameter of representation_gap .*D = 4"):
        representation_gap(x, q[:, :3])
    for sizes in ([0, 5], [5, 3], [2, 21], [2.5, 4]):
        with pytest.raises(ValueError, match=r"'sizes' parameter of representation_gap .*\[1, 20\]"):
            representation_gap(x, q, sizes=sizes)
    with pytest.raises(ValueError, match="'precision' parameter of representation_gap"):
        representation_gap(x, q, precision="float16")
    with pytest.raises(ValueError, match="'group' parameter of representation_gap"):
        representation_gap(x, q, group=[2 * np.eye(4)])
    with pytest.raises(ValueError, match="'orbit_distance' parameter of representation_gap"):
        representation_gap(x, q, group=[np.eye(4)], orbit_distance=periodic_distance)
    with pytest.raises(ValueError, match="'sigma' parameter of optimal_denoiser"):
        optimal_denoiser(q, x, 0.0)


# --- closed forms -----------------------------------------------------------------------------

def test_ball_volumes_and_constants_match_known_values():
    assert ball_volume(2) == pytest.approx(np.pi, rel=1e-14)
    assert ball_volume(3) == pytest.approx(4 * np.pi / 3, rel=1e-14)
    assert ball_volume(4) == pytest.approx(np.pi**2 / 2, rel=1e-14)
    # The notes' table (4 digits): c_rand for d = 3, 4, 5, 8.
    for d, c in [(3, 0.3474), (4, 0.3989), (5, 0.4566), (8, 0.6386)]:
        assert random_quantizer_constant(d) == pytest.approx(c, abs=6e-5)
    for d in (1, 2):
        lower, upper = zador_bounds(d)
        assert lower <= optimal_quantizer_constant(d) + 1e-15 < upper
    assert zador_bounds(1)[0] == pytest.approx(1 / 12, rel=1e-14)       # intervals are balls
    assert zador_bounds(2)[1] / optimal_quantizer_constant(2) == pytest.approx(1.98, abs=0.005)
    with pytest.raises(ValueError, match="'d' parameter of optimal_quantizer_constant"):
        optimal_quantizer_constant(3)


def test_flat_torus_gap_closed_form_and_asymptote():
    n = np.array([1, 2, 10, 100, 1000])
    np.testing.assert_allclose(flat_torus_gap(n, 1), 1 / (2 * (n + 1) * (n + 2)), rtol=1e-12)
    for d in (2, 3, 5):
        # Gamma(n+1) / Gamma(n+1+2/d) = n^(-2/d) (1 + O(1/n)): the ratio tends to 1.
        ratio = flat_torus_gap(1e6, d) / asymptotic_gap(1e6, d)
        assert abs(ratio - 1) < 1e-5
    with pytest.raises(ValueError, match="'n' parameter of flat_torus_gap"):
        flat_torus_gap(0, 2)


def test_kmeans_codebook_reaches_optimal_constant_in_one_dimension():
    # Lloyd's fixed point on [0, 1] with n codes is the uniform grid: 1 / (12 n^2); k-means on
    # 4000 samples gets within a few percent, the random codebook is ~6x worse (d = 1).
    rng = np.random.default_rng(0)
    points, queries = rng.random((4000, 1)), rng.random((20000, 1))
    gap = kmeans_codebook_gap(points, 20, queries, seed=0)
    assert abs(gap * 12 * 20**2 - 1) < 0.1


def test_digit_shift_orbit_is_a_translation_with_zero_fill():
    from lib.studies.representation_gap import _shifts

    image = torch.zeros(28, 28, dtype=torch.float64)
    image[10:14, 12:15] = torch.arange(12, dtype=torch.float64).reshape(4, 3) + 1
    orbit = _shifts(2)(image.reshape(1, -1)).reshape(25, 28, 28)
    expected = [torch.roll(image, (dy, dx), dims=(0, 1))       # nothing reaches the frame here
                for dy in range(-2, 3) for dx in range(-2, 3)]
    for shifted in expected:
        assert sum(torch.equal(o, shifted) for o in orbit) == 1
    edge = torch.zeros(28, 28, dtype=torch.float64)
    edge[0, 0] = 1.0                                          # shifted out: lost, not wrapped
    assert float(_shifts(1)(edge.reshape(1, -1)).sum()) == 4.0


def test_claim_verdicts_follow_their_stated_criteria():
    import pandas as pd

    from lib.studies import representation_gap as study

    dimensions = pd.DataFrame({"model": ["sphere d=1", "sphere d=2", "cube d=1", "cube d=2"],
                               "true d": [1, 2, 1, 2],
                               "RG slope 95% interval": ["[0.95, 1.05]", "[1.90, 2.10]",
                                                         "[0.95, 1.05]", "[2.05, 2.30]"]})
    denoising = pd.DataFrame({"sigma": [0.1, 0.01, 0.01], "ratio": [0.5, 1.004, 0.997]})
    codebooks = pd.DataFrame({"random": [1.0, 2.0], "random theory": [1.02, 1.9]})  # 5.3% off
    table = study.claim_verdicts(dimensions, denoising, codebooks)
    assert table["verdict"].tolist() == ["holds", "does not hold", "holds", "does not hold"]
    assert study.claim_verdicts(dimensions, denoising, codebooks, tolerance=0.003)[
        "verdict"].iloc[2] == "does not hold"
    with pytest.raises(ValueError, match="'tolerance' parameter of claim_verdicts"):
        study.claim_verdicts(dimensions, denoising, codebooks, tolerance=1.5)


# --- trained denoisers (the study's sweep) --------------------------------------------


def _cell(**changes):
    cell = dict(family="torus", dim=1, architecture="MLP", n=32, seed=0, sigma=1e-3, pool=64,
                queries=3000, image_size=8, width=8, depth=1, channels=2, conv_depth=1,
                max_steps=20, eval_every=10)
    return {**cell, **changes}


def test_a_cell_measures_the_optimal_gap_at_its_small_noise_limit_rg():
    """At sigma = 1e-3 on a circle of radius 1 (spacing ~0.2), the optimal gap is RG_n.

    The optimal empirical denoiser sends a noisy point to its nearest training
    point (softmax weights of width sigma^2), so test minus train error is
    the mean squared distance to the nearest training point, to O(sigma^2).
    """
    from lib.studies.representation_gap import denoiser_cell

    (row,) = denoiser_cell(**_cell())
    assert row["optimal gap"] == pytest.approx(row["RG"], rel=1e-2)
    assert row["optimal train"] < 1e-5
    assert row["gap"] == row["test error"] - row["train error"]
    assert row["stopped"] in ("converged", "budget") and row["steps"] <= 20


def test_a_cell_measures_rg_up_to_its_architectures_group():
    """SO(2) on the first circle of the Clifford torus leaves one circle: a far smaller RG."""
    from lib.studies.representation_gap import denoiser_cell

    plain, = denoiser_cell(**_cell(dim=2, n=64, queries=500))
    turned, = denoiser_cell(**_cell(dim=2, n=64, queries=500, architecture="MLP, canonicalized"))
    assert turned["group"].startswith("SO(2)") and math.isnan(turned["optimal gap"])
    # The quotient is a circle of length L = 2 pi carrying 64 points: E RG = L^2 / (2 (n+1)(n+2))
    # = 4.6e-3, against 4 pi / n = 0.2 for the whole torus (one training set: within 2x).
    assert 0.5 < turned["RG"] / ((2 * math.pi) ** 2 / (2 * 65 * 66)) < 2
    assert 0.5 < plain["RG"] / (4 * math.pi / 64) < 2


def test_cyclic_shifts_make_the_image_orbit_set_and_its_gap_smaller():
    from lib.studies.representation_gap import denoiser_cell

    common = dict(family="heart", dim=1, n=8, pool=8, queries=200, sigma=0.05)
    plain, = denoiser_cell(**_cell(**common, architecture="conv + coordinates"))
    shifted, = denoiser_cell(**_cell(**common, architecture="circular conv"))
    assert shifted["group"] == "cyclic shifts"
    assert shifted["RG"] < plain["RG"] / 4          # 8 shifts of 8 images fill the circle


def test_trained_exponents_recover_known_slopes_and_where_the_network_generalizes():
    from lib.studies.representation_gap import trained_exponents

    rng = np.random.default_rng(0)
    n = np.array([16, 32, 64, 128, 256, 512])
    rows = []
    for seed in range(4):
        wobble = np.exp(0.02 * rng.standard_normal(len(n)))
        rg = 3.0 * n ** -1.0 * wobble
        trained = np.where(n < 100, rg, 1e-3 * rg)          # memorises, then generalizes
        rows += [dict(family="torus", dim=2, architecture="MLP", group="none", sigma=0.1,
                      n=int(size), seed=seed, gap=t, **{"gap se": 1e-6 * r,
                                                         "optimal gap": r, "RG": r})
                 for size, t, r in zip(n, trained, rg)]
    table = trained_exponents(pd.DataFrame(rows)).iloc[0]
    assert table["theory"] == -1.0
    assert table["RG low"] < -1.0 < table["RG high"] and table["RG seeds"] == 4
    assert table["optimal exponent"] == pytest.approx(-1.0, abs=0.02)
    assert table["trained exponent"] < -2                 # the drop at n = 128
    assert table["generalizes from n"] == 128
    # A gap within twice its standard error of zero is noise: not fitted.
    noisy = pd.DataFrame(rows).assign(**{"gap se": lambda t: t["gap"]})
    assert trained_exponents(noisy).iloc[0]["trained seeds"] == 0


def test_trained_claims_read_the_best_measured_noise_level_by_their_criterion():
    from lib.studies.representation_gap import trained_claim_rows

    base = dict(family="torus", d=2, architecture="MLP", group="none", theory=-1.0)
    exponents = pd.DataFrame([
        dict(base, sigma=0.02, **{"trained exponent": np.nan, "trained low": np.nan,
                                  "trained high": np.nan, "trained seeds": 0}),
        dict(base, sigma=0.2, **{"trained exponent": -1.3, "trained low": -1.6,
                                 "trained high": -1.05, "trained seeds": 3}),
        dict(base, architecture="MLP, canonicalized", group="SO(2) on the first circle",
             theory=-2.0, sigma=0.2, **{"trained exponent": -1.9, "trained low": -2.2,
                                        "trained high": -1.7, "trained seeds": 3})])
    plain, turned = trained_claim_rows(exponents)
    assert "sigma = 0.2" in plain["claim"] and plain["verdict"] == "does not hold"
    assert turned["verdict"] == "holds" and "quotient" in turned["claim"]
    only_unfitted = trained_claim_rows(exponents.iloc[:1])
    assert only_unfitted[0]["verdict"] == "inconclusive at these sizes"


# --- the plan of a run ---------------------------------------------------------------------

PRESETS = ("ci", "default", "paper")


@pytest.mark.parametrize("preset", PRESETS)
def test_plan_trains_every_denoiser_cell_at_its_budget_and_is_built_at_once(preset):
    from lib.studies import representation_gap as study

    config = study.Config(preset=preset)
    start = time.perf_counter()
    stages = study.plan(config)
    assert time.perf_counter() - start < 1.0
    parallel = [stage for stage in stages if stage.parallel]
    assert [stage.units for stage in parallel] == [len(study.denoiser_cells(config))]
    assert parallel[0].steps == config.sizes["trained"]["max_steps"]
    assert all(stage.units >= 1 and stage.flops + stage.steps > 0 for stage in stages)


def test_plan_counts_the_denoiser_cells_in_the_sweep_cache(tmp_path, monkeypatch):
    from lib.store import cache_folder
    from lib.studies import representation_gap as study
    from lib.sweeps import cell_key

    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path))
    config = study.Config(preset="ci")

    def cached():
        return next(stage for stage in study.plan(config) if stage.parallel).cached

    assert cached() == 0 and not any(tmp_path.iterdir())        # a plan writes nothing
    cell = study.denoiser_cells(config)[3]
    sweeps = cache_folder(None, "sweeps", code_of=study.__name__)
    folder = sweeps / "representation-gap.denoiser_cell"
    folder.mkdir(parents=True)
    (folder / f"{cell_key(cell)}.json").write_text(json.dumps({"cell": cell, "result": []}))
    (sweeps / f"{cell_key(study.denoiser_cells(config)[4])}.json").write_text("{}")
    assert cached() == 1                                      # the wrong folder does not count


def test_plan_costs_more_at_each_larger_preset():
    from lib.plans import Speed, stage_seconds
    from lib.studies import representation_gap as study

    speed = Speed(rate=8e10, overhead=5e-4)
    plans = [study.plan(study.Config(preset=preset)) for preset in PRESETS]
    seconds = [sum(stage.units * stage_seconds(stage, speed) for stage in stages)
               for stages in plans]
    peaks = [max(stage.peak_bytes for stage in stages) for stages in plans]
    assert seconds[0] < seconds[1] < seconds[2] and peaks[0] <= peaks[1] <= peaks[2]
    # A larger ambient dimension makes the law's curves and the estimators dearer.
    wide = study.plan(study.Config(preset="ci", ambient_dim=200))
    named = lambda stages: {stage.name: stage for stage in stages}
    for name in ("RG curve of a model", "RG slope, TwoNN and MLE of a model",
                 "RG slope of a coverage sample"):
        assert named(wide)[name].flops > named(plans[0])[name].flops, name
