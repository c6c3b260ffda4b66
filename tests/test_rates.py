"""Power-law fits, rate shapes and the Niyogi-Smale-Weinberger bound against closed forms.

Tolerances:
* Noise-free power laws and exact shapes: the logs of float64 data are
  exact to ~1e-16 relative and OLS on <= 24 points loses at most a few
  digits, so exponents, intercepts and values are compared at 1e-12.
* Coverage over R = 300 independent replicates is binomial. The OLS
  t-interval is exact for i.i.d. Gaussian log-errors, so its coverage has
  mean 0.95 and sd sqrt(0.95 * 0.05 / 300) = 0.0126: the window [0.92, 0.98]
  is +-2.4 sd. The seed bootstrap with S = 4 seeds is known to be too
  narrow: it estimates the slope variance with factor (S - 1) / S and uses
  normal rather than t_3 quantiles, which predicts coverage
  P(|t_3| < 1.96 sqrt(3/4)) = 0.81; measured 0.796 over 3000 replicates
  (2026-11, seed 7). The window [0.70, 0.90] is about +-4.5 sd at p = 0.8.
  With a fixed seed both tests are deterministic; the windows say how far
  a correct implementation may drift if the noise stream changes.
* NSW sizes are compared with a direct evaluation (pi, math.gamma, no log
  space) at rtol 1e-12.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lib.stats.rates import (RATE_SHAPES, RateFit, fit_rate, fit_rates, nsw_sample_size,
                             nsw_table, rate_shape, scaled_shape, shape_quantile,
                             theoretical_exponents)

SIZES = np.array([50.0, 100.0, 200.0, 400.0, 800.0, 1600.0])


def design(n_seeds=4):
    """Every seed at every size: (n, seeds) of length 6 * n_seeds."""
    return np.tile(SIZES, n_seeds), np.repeat(np.arange(n_seeds), SIZES.size)


# --- fit_rate --------------------------------------------------------------------------------

@pytest.mark.parametrize("exponent, coefficient", [(-0.5, 3.0), (-2.0 / 3.0, 0.02), (0.25, 1.0)])
def test_fit_rate_recovers_a_noise_free_power_law_exactly(exponent, coefficient):
    n, seeds = design()
    fit = fit_rate(n, coefficient * n**exponent, seeds=seeds)
    assert isinstance(fit, RateFit)
    assert fit.exponent == pytest.approx(exponent, abs=1e-12)
    assert fit.intercept == pytest.approx(math.log(coefficient), abs=1e-12)
    assert fit.ci_low == pytest.approx(exponent, abs=1e-12)      # zero residuals: no width
    assert fit.ci_high == pytest.approx(exponent, abs=1e-12)
    assert fit.boot_low == pytest.approx(exponent, abs=1e-12)    # every resample: same line
    assert fit.boot_high == pytest.approx(exponent, abs=1e-12)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-12)
    assert (fit.n_points, fit.n_seeds) == (24, 4)


def test_fit_rate_matches_the_textbook_ols_formulas():
    rng = np.random.default_rng(11)
    n, _ = design(3)
    error = np.exp(0.7 - 0.45 * np.log(n) + 0.3 * rng.standard_normal(n.size))
    fit = fit_rate(n, error, confidence=0.9)
    x, y = np.log(n), np.log(error)
    sxx = ((x - x.mean()) ** 2).sum()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    intercept = y.mean() - slope * x.mean()
    residuals = y - intercept - slope * x
    se = math.sqrt((residuals**2).sum() / (n.size - 2) / sxx)
    half = stats.t.ppf(0.95, n.size - 2) * se
    r2 = 1 - (residuals**2).sum() / ((y - y.mean()) ** 2).sum()
    got = [fit.exponent, fit.intercept, fit.ci_low, fit.ci_high, fit.r_squared]
    np.testing.assert_allclose(got, [slope, intercept, slope - half, slope + half, r2], rtol=1e-12)
    assert math.isnan(fit.boot_low) and math.isnan(fit.boot_high) and fit.n_seeds == 1


def test_ols_interval_covers_at_its_level_and_seed_bootstrap_is_narrower():
    rng = np.random.default_rng(2024)
    n, seeds = design(4)
    true_slope, replicates = -0.4, 300
    ols = boot = 0
    for r in range(replicates):
        error = np.exp(1.3 + true_slope * np.log(n) + 0.2 * rng.standard_normal(n.size))
        fit = fit_rate(n, error, seeds=seeds, random_state=r)
        ols += fit.ci_low <= true_slope <= fit.ci_high
        boot += fit.boot_low <= true_slope <= fit.boot_high
    assert 0.92 <= ols / replicates <= 0.98
    assert 0.70 <= boot / replicates <= 0.90


def test_seed_offsets_leave_every_bootstrap_slope_unchanged():
    # Balanced design, log e = a_s + b log n: each resample's OLS slope is exactly b (the
    # seed offsets are orthogonal to the centred log n), while the pooled OLS interval
    # sees the offsets as residuals and is wide.
    n, seeds = design(4)
    offsets = np.array([0.0, 0.5, -0.3, 0.9])[seeds]
    fit = fit_rate(n, np.exp(offsets - 0.6 * np.log(n)), seeds=seeds)
    assert fit.boot_low == pytest.approx(-0.6, abs=1e-12)
    assert fit.boot_high == pytest.approx(-0.6, abs=1e-12)
    assert fit.ci_high - fit.ci_low > 0.1


def test_two_seed_bootstrap_spans_the_two_slopes():
    # Two seeds, slopes b0 and b1: a resample's slope is b0, (b0 + b1) / 2 or b1 with
    # probabilities 1/4, 1/2, 1/4, so the 2.5% and 97.5% quantiles are b0 and b1.
    n, seeds = design(2)
    slopes = np.array([-0.8, -0.3])[seeds]
    fit = fit_rate(n, np.exp(slopes * np.log(n)), seeds=seeds, n_bootstrap=4000)
    assert fit.boot_low == pytest.approx(-0.8, abs=1e-12)
    assert fit.boot_high == pytest.approx(-0.3, abs=1e-12)
    assert fit.exponent == pytest.approx(-0.55, abs=1e-12)


def test_bootstrap_warns_about_resamples_with_one_size():
    n = np.array([10.0, 20.0, 40.0])
    with pytest.warns(RuntimeWarning, match="single distinct n"):
        fit = fit_rate(n, n**-1.0, seeds=[0, 1, 2], n_bootstrap=200)
    assert fit.boot_low == pytest.approx(-1.0, abs=1e-12)


def test_constant_errors_fit_a_flat_line_with_undefined_r_squared():
    fit = fit_rate([10.0, 20.0, 40.0], [0.3, 0.3, 0.3])
    assert fit.exponent == pytest.approx(0.0, abs=1e-12)
    assert fit.intercept == pytest.approx(math.log(0.3), abs=1e-12)
    assert math.isnan(fit.r_squared)


def test_fit_rate_accepts_string_seeds_and_a_generator():
    n, seeds = design(3)
    labels = np.array(["a", "b", "c"])[seeds]
    fit = fit_rate(n, 2 * n**-1.0, seeds=labels, random_state=np.random.default_rng(0))
    assert fit.n_seeds == 3 and fit.boot_low == pytest.approx(-1.0, abs=1e-12)


# --- fit_rates -------------------------------------------------------------------------------

def test_fit_rates_one_row_per_group_beside_the_theory():
    n, seeds = design(3)
    rows = []
    for dataset, dim, slope in (("circle", 1, -2.0), ("sphere", 2, -1.0)):
        error = 0.5 * n**slope * np.exp(0.1 * seeds)            # seed offsets: exact slope
        rows.append(pd.DataFrame({"dataset": dataset, "dim": dim, "n_train": n,
                                  "seed": seeds, "hausdorff": error}))
    table = pd.concat(rows, ignore_index=True)
    rates = fit_rates(table, by="dataset", n_bootstrap=100)
    assert rates["dataset"].tolist() == ["circle", "sphere"]
    np.testing.assert_allclose(rates["exponent"], [-2.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(rates["boot_low"], [-2.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(rates["theory_genovese"], [-2 / 3, -1 / 2], rtol=1e-15)
    np.testing.assert_allclose(rates["theory_fefferman"], [-1.0, -1 / 2], rtol=1e-15)
    np.testing.assert_allclose(rates["theory_noiseless"], [-2.0, -1.0], rtol=1e-15)
    assert rates["dim"].tolist() == [1, 2] and rates["n_seeds"].tolist() == [3, 3]

    by_both = fit_rates(table, by=["dataset", "dim"], seed=None)
    assert len(by_both) == 2 and by_both["boot_low"].isna().all()


def test_fit_rates_errors():
    table = pd.DataFrame({"dim": [1, 1, 2], "n_train": [10, 20, 40], "hausdorff": [1.0, 0.5, 0.2],
                          "seed": [0, 0, 0], "g": ["a", "a", "a"]})
    with pytest.raises(ValueError, match="'table' parameter of fit_rates must have one 'dim'"):
        fit_rates(table, by="g")
    with pytest.raises(ValueError, match="'size' parameter of fit_rates must name a column"):
        fit_rates(table, by="g", size="n")
    with pytest.raises(ValueError, match="'by' parameter of fit_rates must name a column"):
        fit_rates(table, by=["dataset"])
    with pytest.raises(ValueError, match="'table' parameter of fit_rates must name a column"):
        fit_rates(table.drop(columns="dim"), by="g")
    with pytest.raises(TypeError, match="'table' parameter of fit_rates must be a pandas"):
        fit_rates(table.to_dict(), by="g")
    with pytest.raises(TypeError, match="'fit_options' parameter of fit_rates"):
        fit_rates(table, by="dim", alpha=0.1)
    with pytest.raises(ValueError, match=r"In group \{'dim': 1\} of fit_rates: .*'n' parameter "
                                         r"of fit_rate must hold at least 3 points"):
        fit_rates(table, by="dim")


# --- rate shapes -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, n, dim, expected", [
    ("genovese_lower", [1.0, 16.0, 256.0], 2, [1.0, 0.25, 0.0625]),          # n^(-1/2)
    ("genovese_lower", [8.0, 1000.0], 1, [0.25, 0.01]),                    # n^(-2/3)
    ("genovese_lower", [27.0, 729.0], 4, [1 / 3, 1 / 9]),                 # n^(-1/3)
    ("genovese_upper", [math.e**4], 2, [2 / math.e**2]),                   # (4/e^4)^(1/2)
    ("genovese_upper", [math.e**3], 4, [(3 / math.e**3) ** (1 / 3)]),
    ("fefferman", [math.e**2], 1, [2 / math.e**2]),                        # (2/e^2)^1
    ("fefferman", [math.e**4], 2, [2 / math.e**2]),                        # (4/e^4)^(1/2)
    ("fefferman", [1000.0], 3, [(math.log(1000) / 1000) ** (1 / 3)]),
])
def test_rate_shape_hand_values(name, n, dim, expected):
    np.testing.assert_allclose(rate_shape(name, n, dim), expected, rtol=1e-12)


def test_rate_shape_keeps_the_shape_of_n():
    n = np.arange(2.0, 14.0).reshape(3, 4)
    for name in RATE_SHAPES:
        assert rate_shape(name, n, 2).shape == (3, 4)


def test_shape_quantile_puts_lower_below_and_upper_above():
    assert shape_quantile("genovese_lower") == 0.01
    assert shape_quantile("genovese_upper") == 0.99
    assert shape_quantile("fefferman") == 0.99


def noisy_errors(m=400, dim=2, seed=5):
    rng = np.random.default_rng(seed)
    n = rng.integers(10, 10_000, size=m).astype(float)
    return n, 2.0 * n ** (-1.0 / dim) * np.exp(0.3 * rng.standard_normal(m))


@pytest.mark.parametrize("name", RATE_SHAPES)
def test_scaled_shape_quantiles_bound_the_data(name):
    n, error = noisy_errors(m=150)    # m where numpy's "linear" would put 2 of 150 outside
    slack = 1e-12                                     # c * s(n) rounds within a few ulp
    _, curve = scaled_shape(n, error, name, 2, quantile=0.01)
    assert np.mean(error < curve * (1 - slack)) <= 0.01
    _, curve = scaled_shape(n, error, name, 2, quantile=0.99)
    assert np.mean(error > curve * (1 + slack)) <= 0.01
    c_default, _ = scaled_shape(n, error, name, 2)
    c_named, _ = scaled_shape(n, error, name, 2, quantile=shape_quantile(name))
    assert c_default == c_named


@pytest.mark.parametrize("name", RATE_SHAPES)
def test_scaled_shape_at_q0_and_q1_touches_the_extreme_ratio(name):
    n, error = noisy_errors(m=50, dim=3, seed=9)
    ratio = error / rate_shape(name, n, 3)
    for q, pick in ((0.0, np.argmin), (1.0, np.argmax)):
        c, curve = scaled_shape(n, error, name, 3, quantile=q)
        i = pick(ratio)
        assert c == ratio[i]
        assert curve[i] == pytest.approx(error[i], rel=1e-14)
        side = error - curve if q == 0.0 else curve - error
        assert (side >= -1e-14 * error).all()


def test_scaled_shape_linear_method_is_the_papers_interpolation():
    # numpy's "linear": position q (m - 1) = 0.09 for m = 10, between the two smallest ratios.
    n = np.array([10.0, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120])
    error = np.linspace(1.0, 2.0, 10) * n**-0.5
    ratio = np.sort(error / n**-0.5)
    c, _ = scaled_shape(n, error, "genovese_lower", 2, quantile=0.01, method="linear")
    assert c == pytest.approx(ratio[0] + 0.09 * (ratio[1] - ratio[0]), rel=1e-14)
    c, _ = scaled_shape(n, error, "genovese_lower", 2, quantile=0.01)
    assert c == ratio[0]                              # inverted_cdf: ceil(0.1) - 1 = 0


# --- theoretical exponents -------------------------------------------------------------------

@pytest.mark.parametrize("dim, genovese, fefferman, noiseless", [
    (1, -2 / 3, -1.0, -2.0), (2, -0.5, -0.5, -1.0), (3, -0.4, -1 / 3, -2 / 3),
    (4, -1 / 3, -0.25, -0.5)])
def test_theoretical_exponents_hand_values(dim, genovese, fefferman, noiseless):
    got = theoretical_exponents(dim)
    assert set(got) == {"genovese", "fefferman", "noiseless"}
    np.testing.assert_allclose([got["genovese"], got["fefferman"], got["noiseless"]],
                               [genovese, fefferman, noiseless], rtol=1e-15)


# --- Niyogi-Smale-Weinberger -----------------------------------------------------------------

def nsw_by_hand(volume, reach, d, eps, delta):
    """Theorem 3.1 evaluated directly, with the d-ball volumes written out in BALLS."""
    t1, t2 = math.asin(eps / (8 * reach)), math.asin(eps / (16 * reach))
    ball = BALLS[d]
    b1 = volume / (math.cos(t1) ** d * ball(eps / 4))
    b2 = volume / (math.cos(t2) ** d * ball(eps / 8))
    return b1 * (math.log(b2) + math.log(1 / delta))


BALLS = {1: lambda r: 2 * r, 2: lambda r: math.pi * r**2, 3: lambda r: 4 / 3 * math.pi * r**3,
         50: lambda r: math.pi**25 * r**50 / math.factorial(25)}   # Gamma(26) = 25!


@pytest.mark.parametrize("dim, volume, reach, eps, delta", [
    (1, 2 * math.pi, 1.0, 0.25, 0.05), (1, 10.0, 0.3, 0.1, 0.01),
    (2, 4 * math.pi, 1.0, 0.1, 0.05), (2, 4 * math.pi**2 * 2.0, 1.0, 0.4, 0.2),
    (3, 2 * math.pi**2, 1.0, 0.3, 0.05), (50, 1.0, 1.0, 0.2, 0.05)])
def test_nsw_sample_size_against_direct_evaluation(dim, volume, reach, eps, delta):
    expected = nsw_by_hand(volume, reach, dim, eps, delta)
    assert nsw_sample_size(volume, reach, dim, eps=eps, delta=delta) == pytest.approx(
        expected, rel=1e-12)


def test_nsw_sample_size_scaling_laws():
    base = {"volume": 4 * math.pi, "reach": 1.0, "dim": 2, "eps": 0.1, "delta": 0.05}
    n0 = nsw_sample_size(**base)
    # Volume: b1 and b2 are linear in V, so n(2V) = 2 b1 (log b2 + log 2 + log 1/delta).
    b1 = nsw_by_hand(4 * math.pi, 1.0, 2, 0.1, 1 / math.e) - nsw_by_hand(
        4 * math.pi, 1.0, 2, 0.1, 1.0)                          # b1 (log b2 + 1) - b1 log b2
    assert nsw_sample_size(**{**base, "volume": 8 * math.pi}) == pytest.approx(
        2 * (n0 + b1 * math.log(2)), rel=1e-12)
    # delta: n is affine in log(1/delta) with slope b1.
    assert nsw_sample_size(**{**base, "delta": 0.005}) - n0 == pytest.approx(
        b1 * math.log(10), rel=1e-10)
    # A smaller reach (same eps) tilts the balls more: more points.
    assert nsw_sample_size(**{**base, "reach": 0.5}) > n0
    # Higher dimension at the same volume and eps: much smaller balls, more points.
    sizes = [nsw_sample_size(**{**base, "dim": d}) for d in range(1, 8)]
    assert np.all(np.diff(sizes) > 0)


def test_nsw_sample_size_overflow_warns():
    with pytest.warns(RuntimeWarning, match="exceeds the float range"):
        assert nsw_sample_size(1.0, 1.0, 400, eps=1e-3) == math.inf


def test_nsw_table_rows_are_nsw_sample_size():
    table = nsw_table(4 * math.pi, 2.0, 2, eps_fractions=(0.05, 0.25, 0.45), delta=0.1)
    assert list(table.columns) == ["eps", "eps_over_reach", "n_required"]
    np.testing.assert_allclose(table["eps"], [0.1, 0.5, 0.9], rtol=1e-15)
    np.testing.assert_allclose(table["eps_over_reach"], [0.05, 0.25, 0.45], rtol=1e-15)
    expected = [nsw_sample_size(4 * math.pi, 2.0, 2, eps=e, delta=0.1) for e in (0.1, 0.5, 0.9)]
    np.testing.assert_allclose(table["n_required"], expected, rtol=1e-14)
    assert np.all(np.diff(table["n_required"]) < 0)            # larger balls, fewer points


# --- every error names its parameter ---------------------------------------------------------

N6 = np.arange(2.0, 8.0)
E6 = 1 / N6
ERRORS = [
    (lambda: rate_shape("minimax", N6, 2),
     ValueError, "'name' parameter of rate_shape must be one of"),
    (lambda: rate_shape("genovese_lower", N6, 0),
     ValueError, r"'dim' parameter of rate_shape must be an int in \[1, inf\]"),
    (lambda: rate_shape("genovese_lower", N6, 2.0), TypeError, "'dim' parameter of rate_shape"),
    (lambda: rate_shape("genovese_lower", [0.0, 1.0], 2),
     ValueError, r"'n' parameter of rate_shape must be an array of floats in \(0, inf\)"),
    (lambda: rate_shape("fefferman", [1.0, 2.0], 2),
     ValueError, r"'n' parameter of rate_shape must be an array of floats in \(1, inf\)"),
    (lambda: rate_shape("genovese_upper", [np.nan], 2), ValueError, "'n' parameter of rate_shape"),
    (lambda: rate_shape("genovese_upper", ["a"], 2), TypeError, "'n' parameter of rate_shape"),
    (lambda: shape_quantile("upper"), ValueError, "'name' parameter of shape_quantile"),
    (lambda: scaled_shape(N6, E6, "fefferman", 2, quantile=1.5),
     ValueError, r"'quantile' parameter of scaled_shape must be a float in \[0.0, 1.0\]"),
    (lambda: scaled_shape(N6, E6[:5], "fefferman", 2),
     ValueError, r"'error' parameter of scaled_shape must have shape \(m,\) = \(6,\)"),
    (lambda: scaled_shape(N6, -E6, "fefferman", 2),
     ValueError, r"'error' parameter of scaled_shape must be an array of floats in \(0, inf\)"),
    (lambda: scaled_shape(N6, E6, "fefferman", 2, method="nearest"),
     ValueError, "'method' parameter of scaled_shape"),
    (lambda: scaled_shape([], [], "fefferman", 2),
     ValueError, "'n' parameter of scaled_shape must hold at least one"),
    (lambda: scaled_shape(N6.reshape(2, 3), E6, "fefferman", 2),
     ValueError, r"'n' parameter of scaled_shape must have shape \(m,\)"),
    (lambda: theoretical_exponents(0), ValueError, "'dim' parameter of theoretical_exponents"),
    (lambda: fit_rate(N6, E6[:4]), ValueError, "'error' parameter of fit_rate must have shape"),
    (lambda: fit_rate(N6, np.r_[E6[:5], np.inf]),
     ValueError, "'error' parameter of fit_rate must be an array of floats"),
    (lambda: fit_rate(N6, np.r_[E6[:5], 0.0]),
     ValueError, "'error' parameter of fit_rate must be an array of floats"),
    (lambda: fit_rate(np.r_[N6[:5], -1.0], E6),
     ValueError, r"'n' parameter of fit_rate must be an array of floats in \(0, inf\)"),
    (lambda: fit_rate(N6[:2], E6[:2]),
     ValueError, "'n' parameter of fit_rate must hold at least 3 points"),
    (lambda: fit_rate([5.0] * 4, E6[:4]),
     ValueError, "'n' parameter of fit_rate must hold at least 2 distinct"),
    (lambda: fit_rate(N6, E6, seeds=[0, 1]),
     ValueError, r"'seeds' parameter of fit_rate must have shape \(m,\) = \(6,\)"),
    (lambda: fit_rate(N6, E6, confidence=1.0),
     ValueError, r"'confidence' parameter of fit_rate must be a float in \(0.0, 1.0\)"),
    (lambda: fit_rate(N6, E6, n_bootstrap=0),
     ValueError, r"'n_bootstrap' parameter of fit_rate must be an int in \[1, inf\]"),
    (lambda: fit_rate(N6, E6, random_state=-1), ValueError, "'random_state' parameter of fit_rate"),
    (lambda: fit_rate(N6, E6, random_state="x"), TypeError, "'random_state' parameter of fit_rate"),
    (lambda: nsw_sample_size(0.0, 1.0, 2, eps=0.1),
     ValueError, r"'volume' parameter of nsw_sample_size must be a float in \(0.0, inf\)"),
    (lambda: nsw_sample_size(1.0, -1.0, 2, eps=0.1),
     ValueError, "'reach' parameter of nsw_sample_size"),
    (lambda: nsw_sample_size(1.0, 1.0, 0, eps=0.1),
     ValueError, "'dim' parameter of nsw_sample_size"),
    (lambda: nsw_sample_size(1.0, 1.0, 2, eps=0.5),
     ValueError, r"'eps' parameter of nsw_sample_size must be a float in \(0.0, 0.5\)"),
    (lambda: nsw_sample_size(1.0, 2.0, 2, eps=1.2),
     ValueError, r"'eps' parameter of nsw_sample_size must be a float in \(0.0, 1.0\)"),
    (lambda: nsw_sample_size(1.0, 1.0, 2, eps=0.0),
     ValueError, "'eps' parameter of nsw_sample_size"),
    (lambda: nsw_sample_size(1.0, 1.0, 2, eps=0.1, delta=1.0),
     ValueError, r"'delta' parameter of nsw_sample_size must be a float in \(0.0, 1.0\)"),
    (lambda: nsw_table(1.0, 1.0, 2, eps_fractions=(0.1, 0.5)),
     ValueError, r"'eps_fractions' parameter of nsw_table must be .* \(0, 0.5\)"),
    (lambda: nsw_table(1.0, 1.0, 2, eps_fractions=()),
     ValueError, "'eps_fractions' parameter of nsw_table"),
    (lambda: nsw_table(1.0, 0.0, 2), ValueError, "'reach' parameter of nsw_table"),
    (lambda: nsw_table(1.0, 1.0, 2, delta=0.0), ValueError, "'delta' parameter of nsw_table"),
    (lambda: nsw_table(-1.0, 1.0, 2), ValueError, "'volume' parameter of nsw_table"),
    (lambda: nsw_table(1.0, 1.0, 0), ValueError, "'dim' parameter of nsw_table"),
]


@pytest.mark.parametrize("call, kind, message", ERRORS)
def test_errors_name_the_parameter_the_caller_and_the_range(call, kind, message):
    with pytest.raises(kind, match=message):
        call()
