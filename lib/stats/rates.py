r"""Convergence rates of manifold estimators and sample-complexity bounds.

The bound-scaling study (paper figs 3-5) measures an error :math:`e(n)` of a
manifold estimator trained on :math:`n` points (a Hausdorff proxy) and asks
how fast it falls. This module holds the arithmetic of that question:

- :func:`fit_rate` / :func:`fit_rates`: the power law
  :math:`\log e = a + b \log n` by ordinary least squares (statsmodels), with
  the t-interval of the exponent :math:`b` and a percentile bootstrap that
  resamples whole seeds;
- :func:`rate_shape` / :func:`scaled_shape`: the minimax rate shapes of the
  theory, scaled as the paper does so that they touch the measured curve;
- :func:`theoretical_exponents`: the exponents a fitted :math:`b` is set
  beside, for intrinsic dimension :math:`d`;
- :func:`nsw_sample_size` / :func:`nsw_table`: the explicit sample size of
  Niyogi, Smale and Weinberger (2008) from the volume and reach of the
  manifold.

The rate shapes, for :math:`n` points on a :math:`d`-dimensional manifold:

=================== ===================================== =========================
name                shape                                 role
=================== ===================================== =========================
``genovese_lower``  :math:`n^{-2/(2+d)}`                  minimax lower bound
``genovese_upper``  :math:`(\log n / n)^{2/(2+d)}`        minimax upper bound
``fefferman``       :math:`(\log n / n)^{1/d}`            upper bound (fitting)
=================== ===================================== =========================

Genovese et al. prove both Genovese rates for the Hausdorff error under
perpendicular noise; :math:`(\log n / n)^{1/d}` is the size of the largest
hole in an n-point sample, the resolution at which Fefferman, Mitter and
Narayanan's fitting works. Without noise a local polynomial of degree
:math:`k - 1` reaches :math:`n^{-k/d}` (Aamari & Levrard 2019); the
first-order local projection of the study is the case :math:`k = 2`,
:math:`n^{-2/d}`.

Everything here is numpy, pandas and statsmodels: the inputs are short
tables of errors, not point clouds, so there is no torch and no device.

References
----------
C. R. Genovese, M. Perone-Pacifico, I. Verdinelli, L. Wasserman, "Minimax
manifold estimation", J. Mach. Learn. Res. 13 (2012) 1263-1291.
C. Fefferman, S. Mitter, H. Narayanan, "Testing the manifold hypothesis",
J. Amer. Math. Soc. 29 (2016) 983-1049.
E. Aamari, C. Levrard, "Nonasymptotic rates for manifold, tangent space and
curvature estimation", Ann. Statist. 47 (2019) 177-204.
P. Niyogi, S. Smale, S. Weinberger, "Finding the homology of submanifolds
with high confidence from random samples", Discrete Comput. Geom. 39 (2008)
419-441, Theorem 3.1.
B. Efron, R. J. Tibshirani, "An Introduction to the Bootstrap" (1993),
ch. 13 (percentile intervals); resampling whole seeds is the cluster
bootstrap of Davison & Hinkley (1997), sec. 3.8.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import gammaln

from lib._checks import check_in, check_int, check_real, check_shape

__all__ = ["RATE_SHAPES", "RateFit", "rate_shape", "scaled_shape", "shape_quantile",
           "theoretical_exponents", "fit_rate", "fit_rates", "nsw_sample_size", "nsw_table"]

RATE_SHAPES = ("genovese_lower", "genovese_upper", "fefferman")
_LOG_SHAPES = ("genovese_upper", "fefferman")
_QUANTILE_METHODS = ("inverted_cdf", "linear")


def _values(values, *, name: str, caller: str, low: float = 0.0) -> np.ndarray:
    """``values`` as a float64 array after checking every entry is finite and > ``low``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"The {name!r} parameter of {caller} must be an array of floats in "
                        f"({low:g}, inf). Got {values!r} instead.") from None
    bad = ~np.isfinite(array) | (array <= low)
    if bad.any():
        first = array[bad].reshape(-1)[0]
        raise ValueError(f"The {name!r} parameter of {caller} must be an array of floats in "
                         f"({low:g}, inf). Got {int(bad.sum())} entries outside, the first "
                         f"{first!r}, instead.")
    return array


def _vector(values, *, name: str, caller: str, low: float = 0.0) -> np.ndarray:
    """A 1-D float64 array with finite entries > ``low``."""
    array = _values(values, name=name, caller=caller, low=low)
    check_shape(array.shape, (None,), name=name, caller=caller, describe="(m,)")
    return array


def _same_length(array, length: int, *, name: str, like: str, caller: str) -> None:
    check_shape(np.shape(array), (length,), name=name, caller=caller,
                describe=f"(m,) = ({length},), the length of {like!r}")


def rate_shape(name: str, n, dim: int) -> np.ndarray:
    r"""A minimax rate shape of manifold estimation, without its constant.

    .. math::

        \text{genovese\_lower}: n^{-2/(2+d)}, \quad
        \text{genovese\_upper}: \Big(\frac{\log n}{n}\Big)^{2/(2+d)}, \quad
        \text{fefferman}: \Big(\frac{\log n}{n}\Big)^{1/d}.

    Sources in the module docstring.

    Parameters
    ----------
    name : {"genovese_lower", "genovese_upper", "fefferman"}
        Which shape (:data:`RATE_SHAPES`).
    n : array of any shape
        Sample sizes, finite; in (0, inf) for ``genovese_lower`` and in
        (1, inf) for the two shapes with :math:`\log n`, which vanish at 1.
    dim : int in [1, inf)
        Intrinsic dimension d.

    Returns
    -------
    shape : float64 numpy array of the shape of ``n``

    Examples
    --------
    >>> rate_shape("genovese_lower", [1, 16, 256], dim=2).tolist()   # n^(-1/2)
    [1.0, 0.25, 0.0625]
    >>> float(rate_shape("fefferman", [np.e ** 2], dim=1)[0]) == 2 / np.e ** 2
    True
    """
    caller = "rate_shape"
    check_in(name, RATE_SHAPES, name="name", caller=caller)
    dim = check_int(dim, name="dim", caller=caller, low=1)
    n = _values(n, name="n", caller=caller, low=1.0 if name in _LOG_SHAPES else 0.0)
    if name == "genovese_lower":
        return n ** (-2.0 / (2 + dim))
    base = np.log(n) / n
    return base ** (2.0 / (2 + dim) if name == "genovese_upper" else 1.0 / dim)


def shape_quantile(name: str) -> float:
    """The quantile of error / shape that scales a rate shape in the paper.

    A lower bound must sit *below* the data, so ``genovese_lower`` is scaled
    by the 1% quantile of the ratios error / shape: at least 99% of the
    measured errors lie on or above the curve. An upper bound must sit
    *above* the data, so ``genovese_upper`` and ``fefferman`` take the 99%
    quantile. The 1% rather than the minimum (0%) keeps one outlying size or
    seed from setting the constant.

    Parameters
    ----------
    name : {"genovese_lower", "genovese_upper", "fefferman"}

    Returns
    -------
    quantile : float
        0.01 for the lower-bound shape, 0.99 for the upper-bound shapes.

    Examples
    --------
    >>> shape_quantile("genovese_lower"), shape_quantile("fefferman")
    (0.01, 0.99)
    """
    check_in(name, RATE_SHAPES, name="name", caller="shape_quantile")
    return 0.01 if name == "genovese_lower" else 0.99


def scaled_shape(n, error, name: str, dim: int, *, quantile: float | None = None,
                 method: str = "inverted_cdf") -> tuple[float, np.ndarray]:
    r"""A rate shape scaled to the measured errors, as in the paper's figures.

    The constant is :math:`c = Q_q(e_i / s(n_i))`, the q-quantile of the
    ratios of error to shape, and the curve is :math:`c\, s(n)`. With the
    default ``method="inverted_cdf"`` (the smallest ratio r with
    :math:`\hat F(r) \ge q`), fewer than :math:`q m` of the m ratios lie
    below c and at most :math:`(1 - q) m` above it: for q = 0.01 at least 99%
    of the errors sit on or above the curve, and q = 0 (or 1) makes the curve
    touch the lowest (highest) ratio. The paper's code passes the fitted
    power law as ``error`` and uses numpy's default interpolation,
    ``method="linear"``.

    Parameters
    ----------
    n : array of shape (m,)
        Sample sizes, finite, in (0, inf); in (1, inf) for the log shapes.
    error : array of shape (m,)
        Errors (or the fitted power law) at ``n``, finite, in (0, inf).
    name : {"genovese_lower", "genovese_upper", "fefferman"}
        Which shape (:func:`rate_shape`).
    dim : int in [1, inf)
        Intrinsic dimension d.
    quantile : float in [0, 1], optional
        q. Default :func:`shape_quantile` of ``name`` (0.01 or 0.99).
    method : {"inverted_cdf", "linear"}, default="inverted_cdf"
        Passed to :func:`numpy.quantile`.

    Returns
    -------
    constant : float
        c.
    curve : float64 numpy array of shape (m,)
        :math:`c\, s(n)`.

    Examples
    --------
    >>> n = np.array([10.0, 100.0, 1000.0])
    >>> c, curve = scaled_shape(n, [1.0, 0.4, 0.09], "genovese_lower", dim=2, quantile=0.0)
    >>> round(c, 6), bool((curve <= [1.0, 0.4, 0.09]).all())      # touches 0.09 at n = 1000
    (2.84605, True)
    """
    caller = "scaled_shape"
    check_in(name, RATE_SHAPES, name="name", caller=caller)
    dim = check_int(dim, name="dim", caller=caller, low=1)
    n = _vector(n, name="n", caller=caller, low=1.0 if name in _LOG_SHAPES else 0.0)
    if n.size == 0:
        raise ValueError(f"The 'n' parameter of {caller} must hold at least one size. "
                         f"Got an empty array instead.")
    error = _vector(error, name="error", caller=caller)
    _same_length(error, n.size, name="error", like="n", caller=caller)
    if quantile is None:
        quantile = shape_quantile(name)
    quantile = check_real(quantile, name="quantile", caller=caller, low=0.0, high=1.0)
    check_in(method, _QUANTILE_METHODS, name="method", caller=caller)
    shape = rate_shape(name, n, dim)
    constant = float(np.quantile(error / shape, quantile, method=method))
    return constant, constant * shape


def theoretical_exponents(dim: int) -> dict[str, float]:
    r"""The exponents of n that theory gives for the error on a d-manifold.

    - ``"genovese"``: :math:`-2/(2+d)`, the minimax Hausdorff rate under
      perpendicular noise (Genovese et al. 2012, the log factor dropped);
    - ``"fefferman"``: :math:`-1/d`, the sample resolution
      :math:`(\log n / n)^{1/d}` (Fefferman, Mitter & Narayanan 2016);
    - ``"noiseless"``: :math:`-2/d`, the noise-free rate :math:`n^{-k/d}` of
      Aamari & Levrard (2019) at k = 2: a local linear fit errs by
      :math:`O(h^2)` at bandwidth :math:`h \sim n^{-1/d}`.

    Parameters
    ----------
    dim : int in [1, inf)
        Intrinsic dimension d.

    Returns
    -------
    exponents : dict of str to float
        Keys ``"genovese"``, ``"fefferman"``, ``"noiseless"``.

    Examples
    --------
    >>> theoretical_exponents(2)
    {'genovese': -0.5, 'fefferman': -0.5, 'noiseless': -1.0}
    """
    dim = check_int(dim, name="dim", caller="theoretical_exponents", low=1)
    return {"genovese": -2.0 / (2 + dim), "fefferman": -1.0 / dim, "noiseless": -2.0 / dim}


@dataclass(frozen=True)
class RateFit:
    """A fitted power law :math:`e = e^{a} n^{b}` (:func:`fit_rate`).

    Attributes
    ----------
    exponent, intercept : float
        b and a of :math:`\\log e = a + b \\log n`.
    ci_low, ci_high : float
        OLS t-interval of b at the requested confidence.
    boot_low, boot_high : float
        Percentile bootstrap interval of b, resampling whole seeds; nan with
        fewer than 2 seeds.
    r_squared : float
        Coefficient of determination of the log-log fit; nan when all
        errors are equal (no variance to explain).
    n_points, n_seeds : int
        Rows fitted and distinct seeds among them (1 when no seeds are given).
    """

    exponent: float
    intercept: float
    ci_low: float
    ci_high: float
    boot_low: float
    boot_high: float
    r_squared: float
    n_points: int
    n_seeds: int


def _random_state(random_state, caller: str) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(check_int(random_state, name="random_state", caller=caller,
                                           low=0))


def _seed_bootstrap(x, y, groups, n_groups, n_bootstrap, rng, caller):
    """Slopes of the OLS refit on ``n_bootstrap`` resamples of whole groups, shape (B,).

    Drawing S groups with replacement gives each group a count W_s (multinomial); the
    resampled rows are the original rows repeated W_s times, so their OLS slope is the
    weighted least-squares slope with row weights W_{group(i)}, in closed form.
    """
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_bootstrap)
    w = counts[:, groups].astype(np.float64)                        # (B, m) row weights
    x = x - x.mean()                                                # centred: less cancellation
    total = w.sum(axis=1)
    mean_x = w @ x / total
    mean_y = w @ y / total
    sxx = w @ x**2 / total - mean_x**2
    sxy = w @ (x * y) / total - mean_x * mean_y
    degenerate = sxx <= 1e-12 * np.var(x)                           # one distinct n drawn
    if degenerate.any():
        warnings.warn(f"{caller}: {int(degenerate.sum())} of {n_bootstrap} seed resamples hold "
                      f"a single distinct n and have no slope; the bootstrap interval uses the "
                      f"other {int((~degenerate).sum())}.", RuntimeWarning, stacklevel=3)
    return (sxy / np.where(degenerate, 1.0, sxx))[~degenerate]


def fit_rate(n, error, *, seeds=None, confidence: float = 0.95, n_bootstrap: int = 2000,
             random_state=0) -> RateFit:
    r"""Fit the power law :math:`\log e = a + b \log n` by ordinary least squares.

    The exponent b comes with two intervals. The OLS t-interval treats the
    m rows as independent with equal variance. The percentile bootstrap
    draws the seeds with replacement, keeping all rows of a seed together
    (errors of one seed are correlated: its training sets are nested),
    refits b on each resample and takes the :math:`(1 \mp c)/2` quantiles.
    With few seeds the bootstrap interval is too narrow (it resamples only
    S distinct sets; with 4 seeds it covered the true slope about 80% of the
    time at 95%, ``tests/test_rates.py``), so read it beside the t-interval.

    Parameters
    ----------
    n : array of shape (m,)
        Training sizes, finite, in (0, inf); at least 2 distinct values.
    error : array of shape (m,)
        Errors at ``n``, finite, in (0, inf); m >= 3 (the t-interval needs a
        residual degree of freedom).
    seeds : array of shape (m,), optional
        Seed of each row (any hashable labels). None: one seed, no bootstrap.
    confidence : float in (0, 1), default=0.95
        Level of both intervals.
    n_bootstrap : int in [1, inf), default=2000
        Bootstrap resamples.
    random_state : int in [0, inf) or numpy Generator, default=0
        Drives the bootstrap only.

    Returns
    -------
    fit : RateFit

    Examples
    --------
    >>> n = np.array([100, 200, 400, 800] * 2)
    >>> error = 3.0 * n ** -0.5 * np.repeat([1.0, 1.1], 4)     # two seeds, same slope
    >>> fit = fit_rate(n, error, seeds=np.repeat([0, 1], 4))
    >>> round(fit.exponent, 12), round(fit.boot_low, 12), round(fit.boot_high, 12)
    (-0.5, -0.5, -0.5)
    >>> fit.ci_low < -0.5 < fit.ci_high, fit.n_points, fit.n_seeds
    (True, 8, 2)
    """
    caller = "fit_rate"
    n = _vector(n, name="n", caller=caller)
    error = _vector(error, name="error", caller=caller)
    _same_length(error, n.size, name="error", like="n", caller=caller)
    if n.size < 3:
        raise ValueError(f"The 'n' parameter of {caller} must hold at least 3 points. "
                         f"Got {n.size} instead.")
    if np.unique(n).size < 2:
        raise ValueError(f"The 'n' parameter of {caller} must hold at least 2 distinct sizes. "
                         f"Got only {n[0]!r} instead.")
    confidence = check_real(confidence, name="confidence", caller=caller, low=0.0, high=1.0,
                            low_open=True, high_open=True)
    n_bootstrap = check_int(n_bootstrap, name="n_bootstrap", caller=caller, low=1)
    rng = _random_state(random_state, caller)
    if seeds is None:
        groups, n_seeds = np.zeros(n.size, dtype=np.int64), 1
    else:
        seeds = np.asarray(seeds)
        _same_length(seeds, n.size, name="seeds", like="n", caller=caller)
        groups, labels = pd.factorize(seeds)
        n_seeds = len(labels)

    x, y = np.log(n), np.log(error)
    result = sm.OLS(y, sm.add_constant(x, has_constant="add")).fit()
    intercept, exponent = (float(v) for v in result.params)
    ci_low, ci_high = (float(v) for v in result.conf_int(alpha=1.0 - confidence)[1])
    tss = float(result.centered_tss)
    r_squared = 1.0 - float(result.ssr) / tss if tss > 0 else math.nan
    boot_low = boot_high = math.nan
    if n_seeds >= 2:
        slopes = _seed_bootstrap(x, y, groups, n_seeds, n_bootstrap, rng, caller)
        if slopes.size:
            tail = (1.0 - confidence) / 2
            boot_low, boot_high = (float(v) for v in np.quantile(slopes, [tail, 1.0 - tail]))
    return RateFit(exponent=exponent, intercept=intercept, ci_low=ci_low, ci_high=ci_high,
                   boot_low=boot_low, boot_high=boot_high, r_squared=r_squared,
                   n_points=int(n.size), n_seeds=int(n_seeds))


def _column(table, column, *, name: str, caller: str) -> None:
    if column not in table.columns:
        raise ValueError(f"The {name!r} parameter of {caller} must name a column of 'table' "
                         f"({', '.join(map(str, table.columns))}). Got {column!r} instead.")


def fit_rates(table: pd.DataFrame, *, by, size: str = "n_train", error: str = "hausdorff",
              seed: str | None = "seed", **fit_options) -> pd.DataFrame:
    """One :func:`fit_rate` per group of a tidy error table, beside the theory.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per (group, size, seed) with columns ``size``, ``error``,
        ``seed`` and ``"dim"``.
    by : str or list of str
        Columns that define a group, e.g. ``["dataset", "dim", "estimator"]``.
        ``"dim"`` need not be among them but must then be constant within
        each group.
    size, error : str, default="n_train", "hausdorff"
        Columns of training sizes and errors.
    seed : str or None, default="seed"
        Column of seeds for the bootstrap; None fits without one.
    **fit_options
        ``confidence``, ``n_bootstrap``, ``random_state`` of :func:`fit_rate`.

    Returns
    -------
    rates : pandas.DataFrame
        One row per group, in sorted group order: the ``by`` columns,
        ``dim``, the :class:`RateFit` fields and ``theory_genovese``,
        ``theory_fefferman``, ``theory_noiseless``
        (:func:`theoretical_exponents`).

    Examples
    --------
    >>> n = np.array([100, 1000, 10000])
    >>> table = pd.DataFrame({"dim": [1] * 3 + [2] * 3, "n_train": np.tile(n, 2),
    ...                       "hausdorff": np.concatenate([n ** -2.0, n ** -1.0])})
    >>> rates = fit_rates(table, by="dim", seed=None)
    >>> rates[["dim", "exponent", "theory_noiseless"]].round(12).values.tolist()
    [[1.0, -2.0, -2.0], [2.0, -1.0, -1.0]]
    """
    caller = "fit_rates"
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"The 'table' parameter of {caller} must be a pandas DataFrame. "
                        f"Got {type(table).__name__} instead.")
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ValueError(f"The 'by' parameter of {caller} must name at least one column. "
                         f"Got {by!r} instead.")
    for key in keys:
        _column(table, key, name="by", caller=caller)
    for column, name in ((size, "size"), (error, "error"), (seed, "seed")):
        if column is not None or name != "seed":
            _column(table, column, name=name, caller=caller)
    _column(table, "dim", name="table", caller=caller)
    unknown = set(fit_options) - {"confidence", "n_bootstrap", "random_state"}
    if unknown:
        raise TypeError(f"The 'fit_options' parameter of {caller} must hold only confidence, "
                        f"n_bootstrap and random_state. Got {sorted(unknown)} instead.")

    rows = []
    for key, group in table.groupby(keys, sort=True, dropna=False):
        dims = group["dim"].unique()
        if dims.size != 1:
            raise ValueError(f"The 'table' parameter of {caller} must have one 'dim' per group "
                             f"of {keys}. Got {sorted(dims.tolist())} in group {key!r} instead.")
        dim = check_int(dims[0], name="table['dim']", caller=caller, low=1)
        try:
            fit = fit_rate(group[size].to_numpy(), group[error].to_numpy(),
                           seeds=None if seed is None else group[seed].to_numpy(), **fit_options)
        except (TypeError, ValueError) as err:
            raise type(err)(f"In group {dict(zip(keys, key))} of {caller}: {err}") from err
        row = dict(zip(keys, key))
        row["dim"] = dim
        row.update(asdict(fit))
        row.update({f"theory_{k}": v for k, v in theoretical_exponents(dim).items()})
        rows.append(row)
    columns = list(dict.fromkeys(keys + ["dim"] + [f.name for f in fields(RateFit)]
                                 + ["theory_genovese", "theory_fefferman", "theory_noiseless"]))
    return pd.DataFrame(rows, columns=columns)


def _log_ball_volume(dim: int, radius: float) -> float:
    """log vol(B^d_r) = (d/2) log pi + d log r - log Gamma(d/2 + 1)."""
    return 0.5 * dim * math.log(math.pi) + dim * math.log(radius) - float(gammaln(dim / 2 + 1))


def nsw_sample_size(volume: float, reach: float, dim: int, *, eps: float,
                    delta: float = 0.05) -> float:
    r"""Sample size of Niyogi, Smale & Weinberger (2008), Theorem 3.1.

    For n points drawn uniformly from a compact d-manifold M of volume V
    and reach (condition number) :math:`\tau`, and :math:`0 < \varepsilon <
    \tau/2`, the union of the balls :math:`B_\varepsilon(x_i)` deformation
    retracts onto M (so it has M's homology) with probability
    :math:`> 1 - \delta` as soon as

    .. math::

        n > \beta_1 \Big(\log \beta_2 + \log \frac{1}{\delta}\Big), \quad
        \beta_1 = \frac{V}{\cos^d\theta_1\, \mathrm{vol}(B^d_{\varepsilon/4})},
        \quad \beta_2 = \frac{V}{\cos^d\theta_2\, \mathrm{vol}(B^d_{\varepsilon/8})},

    with :math:`\theta_1 = \arcsin(\varepsilon / 8\tau)`,
    :math:`\theta_2 = \arcsin(\varepsilon / 16\tau)` and
    :math:`\mathrm{vol}(B^d_r) = \pi^{d/2} r^d / \Gamma(d/2 + 1)`. The
    betas are formed in log space (``gammaln``), so d = 50 is fine.

    Parameters
    ----------
    volume : float in (0, inf)
        d-dimensional volume V of M.
    reach : float in (0, inf)
        Reach :math:`\tau` of M.
    dim : int in [1, inf)
        Intrinsic dimension d.
    eps : float in (0, reach / 2)
        Radius :math:`\varepsilon` of the balls.
    delta : float in (0, 1), default=0.05
        Failure probability.

    Returns
    -------
    n_required : float
        The right-hand side :math:`\beta_1 (\log \beta_2 + \log 1/\delta)`;
        inf (with a warning) past the float range. It is the formula's value
        and may be below 1 (or negative) when V is small next to
        :math:`\varepsilon^d`; then the theorem asks for nothing.

    Examples
    --------
    >>> round(nsw_sample_size(2 * np.pi, 1.0, 1, eps=0.25), 1)   # unit circle
    382.5
    """
    caller = "nsw_sample_size"
    volume = check_real(volume, name="volume", caller=caller, low=0.0, low_open=True,
                        high_open=True)
    reach = check_real(reach, name="reach", caller=caller, low=0.0, low_open=True,
                       high_open=True)
    dim = check_int(dim, name="dim", caller=caller, low=1)
    eps = check_real(eps, name="eps", caller=caller, low=0.0, high=reach / 2, low_open=True,
                     high_open=True)
    delta = check_real(delta, name="delta", caller=caller, low=0.0, high=1.0, low_open=True,
                       high_open=True)
    log_cos1 = math.log(math.cos(math.asin(eps / (8 * reach))))
    log_cos2 = math.log(math.cos(math.asin(eps / (16 * reach))))
    log_b1 = math.log(volume) - dim * log_cos1 - _log_ball_volume(dim, eps / 4)
    log_b2 = math.log(volume) - dim * log_cos2 - _log_ball_volume(dim, eps / 8)
    bracket = log_b2 - math.log(delta)
    if bracket == 0.0:
        return 0.0
    log_size = log_b1 + math.log(abs(bracket))
    if log_size > math.log(np.finfo(np.float64).max):
        warnings.warn(f"{caller}: the sample size exp({log_size:.1f}) exceeds the float range; "
                      f"returning inf.", RuntimeWarning, stacklevel=2)
        return math.copysign(math.inf, bracket)
    return math.copysign(math.exp(log_size), bracket)


def nsw_table(volume: float, reach: float, dim: int, *,
              eps_fractions=(0.05, 0.1, 0.25, 0.45), delta: float = 0.05) -> pd.DataFrame:
    r""":func:`nsw_sample_size` at radii :math:`\varepsilon` = fraction x reach.

    Parameters
    ----------
    volume : float in (0, inf)
        d-dimensional volume of the manifold.
    reach : float in (0, inf)
        Its reach :math:`\tau`.
    dim : int in [1, inf)
        Intrinsic dimension d.
    eps_fractions : sequence of floats in (0, 0.5), default=(0.05, 0.1, 0.25, 0.45)
        :math:`\varepsilon / \tau` of each row; at least one.
    delta : float in (0, 1), default=0.05
        Failure probability.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``eps``, ``eps_over_reach``, ``n_required``; one row per
        fraction, in the given order.

    Examples
    --------
    >>> table = nsw_table(4 * np.pi, 1.0, 2, eps_fractions=(0.1, 0.4))   # unit sphere
    >>> table["eps"].tolist(), bool(table["n_required"].is_monotonic_decreasing)
    ([0.1, 0.4], True)
    """
    caller = "nsw_table"
    fractions = np.atleast_1d(_values(eps_fractions, name="eps_fractions", caller=caller))
    if fractions.ndim != 1 or fractions.size == 0 or (fractions >= 0.5).any():
        raise ValueError(f"The 'eps_fractions' parameter of {caller} must be a non-empty 1-D "
                         f"sequence of floats in (0, 0.5). Got {eps_fractions!r} instead.")
    volume = check_real(volume, name="volume", caller=caller, low=0.0, low_open=True,
                        high_open=True)
    reach = check_real(reach, name="reach", caller=caller, low=0.0, low_open=True,
                       high_open=True)
    dim = check_int(dim, name="dim", caller=caller, low=1)
    delta = check_real(delta, name="delta", caller=caller, low=0.0, high=1.0, low_open=True,
                       high_open=True)
    eps = fractions * reach
    sizes = [nsw_sample_size(volume, reach, dim, eps=float(e), delta=delta) for e in eps]
    return pd.DataFrame({"eps": eps, "eps_over_reach": fractions, "n_required": sizes})
