r"""Regressions of per-point test error on Jacobian eigenvalue summaries (Tables 1-2).

Agarwala et al. (arXiv 2107.06386, equations (6) and (7); the paper's body
was not available, this is our reading of its tables, see the project notes)
fit, for one autoencoder and one space (latent L or input I),

.. math::
    z(\mathrm{MSE}) = b_0 + b_1 z(X) + b_2\, t + b_3\, t\, z(X) + \varepsilon,

over train and test points pooled, with :math:`t` = 1 on test points and
:math:`X` = log omega (the log volume form, Table 1) or the trace (Table 2).
:math:`b_1` is the slope on training points and :math:`b_1 + b_3` the slope
on test points (``test_slope``), both in standard deviations of MSE per
standard deviation of X. Our names: ``Intercept`` (b0), ``slope`` (b1),
``test_ind`` (b2), ``interaction`` (b3).

z-scores. z(MSE) is taken over all pooled rows, z(X) over the rows where X is
defined (omega > 0 for log omega), and only then are the omega <= 0 rows
dropped from the fit. That is what reproduces the paper's Table 1
intercepts: with an intercept and both variables centred on the fitted rows,
OLS gives exactly

.. math::
    b_0 = \bar y - b_1 \bar x - p\,(b_2 + b_3 \bar x_{\mathrm{test}})
        \;\to\; -p\,(b_2 + b_3 \bar x_{\mathrm{test}}) \quad (\bar x = \bar y = 0),

p the test fraction of the fitted rows and bars means of z over them (the
full interaction model is a separate line per split, and the pooled means
tie the two intercepts together). Table 2 obeys the right-hand form with
p = 1/7; Table 1 does not, which the mean z(MSE) of the omega > 0 rows,
nonzero once omega <= 0 rows are dropped, explains. Standard deviations use
ddof=1 (pandas' default; ddof=0 would rescale b0 and b2 by
:math:`\sqrt{N/(N-1)}`, 7e-6 relative at N = 70,000).

The fit is statsmodels OLS on an explicit design, never the formula API:
patsy drops rows with a NaN predictor silently, and the number of dropped
rows is a result here (``dropped``, the orientation-reversing points of the
paper's Fig. 7).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.linear_model import OLS
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from lib._checks import check_in
from lib.stats.intervals import mean_interval

__all__ = ["RegressionResult", "eigen_regression", "intercept_identity", "slopes_over_seeds",
           "PREDICTORS", "COEFFICIENTS"]

PREDICTORS = ("log_omega", "log_omega_I", "log_omega_L", "trace", "trace_I", "trace_L")
COEFFICIENTS = ("Intercept", "slope", "test_ind", "interaction")
SPLITS = ("train", "test")
_CALLER = "eigen_regression"


@dataclass(frozen=True, eq=False)
class RegressionResult:
    """One fit of z(MSE) on z(X), the test indicator and their interaction.

    Attributes
    ----------
    predictor : str
        The column used as X.
    params : ndarray of shape (4,)
        b0..b3 in the order of :attr:`names`.
    cov : ndarray of shape (4, 4)
        Their covariance (classical OLS, :math:`s^2 (X^\\top X)^{-1}`).
    df_resid : int
        Residual degrees of freedom, nobs - 4.
    nobs : int
        Rows in the fit.
    dropped : int
        Rows left out because X is undefined there (omega <= 0 for log omega).
    test_fraction : float
        p, the share of test rows among the fitted rows.
    mean_z_test : float
        Mean z(X) over the fitted test rows.
    mean_mse_z, mean_x_z : float
        Means of z(MSE) and z(X) over the fitted rows (0 when nothing is dropped).
    rsquared : float
        Coefficient of determination of the fit.
    group : dict or None
        The ``by`` column values of this fit, or None.
    """

    names: ClassVar[tuple[str, ...]] = COEFFICIENTS
    predictor: str
    params: np.ndarray
    cov: np.ndarray
    df_resid: int
    nobs: int
    dropped: int
    test_fraction: float
    mean_z_test: float
    mean_mse_z: float
    mean_x_z: float
    rsquared: float
    group: dict | None = field(default=None)

    @property
    def bse(self) -> np.ndarray:
        """Standard errors of b0..b3, shape (4,)."""
        return np.sqrt(np.diag(self.cov))

    @property
    def t_quantile(self) -> float:
        """The 0.975 quantile of Student's t with ``df_resid`` degrees of freedom."""
        return float(stats.t.ppf(0.975, self.df_resid))

    def conf_int(self) -> np.ndarray:
        """95% t intervals of b0..b3, shape (4, 2): (low, high) per coefficient."""
        half = self.t_quantile * self.bse
        return np.stack([self.params - half, self.params + half], axis=1)

    @property
    def test_slope(self) -> float:
        """b1 + b3, the slope of z(MSE) on z(X) over test points."""
        return float(self.params[1] + self.params[3])

    @property
    def test_slope_se(self) -> float:
        """Standard error of b1 + b3: sqrt(V11 + V33 + 2 V13)."""
        c = np.array([0.0, 1.0, 0.0, 1.0])
        return float(np.sqrt(c @ self.cov @ c))

    @property
    def test_slope_ci(self) -> tuple[float, float]:
        """95% t interval of b1 + b3."""
        half = self.t_quantile * self.test_slope_se
        return (self.test_slope - half, self.test_slope + half)

    def as_row(self) -> dict:
        """A flat dict for one row of a results table.

        Keys: the ``by`` columns (if any), ``predictor``, ``nobs``, ``dropped``,
        ``test_fraction``, ``rsquared``, then for each of Intercept, slope,
        test_ind, interaction and test_slope its value and ``<name>_se``,
        ``<name>_low``, ``<name>_high`` (95% t interval).
        """
        row = dict(self.group or {})
        row.update(predictor=self.predictor, nobs=self.nobs, dropped=self.dropped,
                   test_fraction=self.test_fraction, rsquared=self.rsquared)
        ci = self.conf_int()
        values = list(zip(self.names, self.params, self.bse, ci[:, 0], ci[:, 1]))
        values.append(("test_slope", self.test_slope, self.test_slope_se, *self.test_slope_ci))
        for name, value, se, low, high in values:
            row.update({name: float(value), f"{name}_se": float(se),
                        f"{name}_low": float(low), f"{name}_high": float(high)})
        return row


def _zscore(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / values.std(ddof=1)


def _check_table(table, predictor: str, sign: str | None) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"The 'table' parameter of {_CALLER} must be a pandas DataFrame. "
                        f"Got {type(table).__name__} instead.")
    needed = ["mse", "split", predictor]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"The 'table' parameter of {_CALLER} must have the columns {needed}. "
                         f"Missing {missing} instead.")
    bad = sorted(set(table["split"].unique()) - set(SPLITS), key=str)
    if bad:
        raise ValueError(f"The 'table' parameter of {_CALLER} must have 'split' values in "
                         f"{{'train', 'test'}}. Got {bad} instead.")
    for column in ["mse", predictor] + ([sign] if sign else []):
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise TypeError(f"The 'table' parameter of {_CALLER} must have a numeric "
                            f"{column!r} column. Got dtype {table[column].dtype} instead.")
    mse = table["mse"].to_numpy(np.float64)
    if not np.isfinite(mse).all():
        raise ValueError(f"The 'table' parameter of {_CALLER} must have a finite 'mse' column. "
                         f"Got {int((~np.isfinite(mse)).sum())} non-finite entries instead.")


def _defined_rows(table, predictor: str, sign: str | None, drop_nonpositive: bool) -> np.ndarray:
    """Rows where X is defined: omega > 0 for log omega, else every row (which must be finite)."""
    x = table[predictor].to_numpy(np.float64)
    finite = np.isfinite(x)
    if predictor.startswith("log_omega") and drop_nonpositive:
        # A stored sign is the explicit omega > 0 test; without one, log omega is NaN where
        # omega <= 0 (the convention of lib.geometry.spectra's table).
        keep = table[sign].to_numpy(np.float64) > 0 if sign else finite
        if not finite[keep].all():
            raise ValueError(f"The 'table' parameter of {_CALLER} must have a finite "
                             f"{predictor!r} where {sign!r} > 0. Got "
                             f"{int((~finite[keep]).sum())} non-finite entries instead.")
        return keep
    if not finite.all():
        why = " with drop_nonpositive=False" if predictor.startswith("log_omega") else ""
        raise ValueError(f"The 'table' parameter of {_CALLER} must have a finite {predictor!r} "
                         f"column{why}. Got {int((~finite).sum())} non-finite entries instead.")
    return finite


def _fit(table, predictor: str, drop_nonpositive: bool, group: dict | None) -> RegressionResult:
    suffix = predictor[len("log_omega"):] if predictor.startswith("log_omega") else None
    sign = None
    if suffix is not None and f"sign{suffix}" in table.columns:
        sign = f"sign{suffix}"
    _check_table(table, predictor, sign)
    keep = _defined_rows(table, predictor, sign, drop_nonpositive)
    y = table["mse"].to_numpy(np.float64)
    x = table[predictor].to_numpy(np.float64)
    test = (table["split"].to_numpy() == "test").astype(np.float64)
    for name, values in (("mse", y), (predictor, x[keep])):
        if values.size < 2 or values.std() == 0:
            # The spread of fewer than 2 rows is not computed: numpy warns on an empty array.
            spread = f" of spread {values.std():g}" if values.size >= 2 else ""
            raise ValueError(f"The 'table' parameter of {_CALLER} must have a non-constant "
                             f"{name!r} column over at least 2 rows{_where(group)}. "
                             f"Got {values.size} rows{spread} instead.")
    # z(MSE) over every pooled row, z(X) over the rows where X exists, and only then the drop.
    y_z, x_z, t = _zscore(y)[keep], _zscore(x[keep]), test[keep]
    counts = {s: int((t == (s == "test")).sum()) for s in SPLITS}
    if min(counts.values()) < 2 or len(y_z) < 5:
        raise ValueError(f"The 'table' parameter of {_CALLER} must leave at least 2 train and 2 "
                         f"test rows and 5 in all after dropping{_where(group)}. "
                         f"Got {counts} instead.")
    design = np.column_stack([np.ones_like(x_z), x_z, t, t * x_z])
    with warnings.catch_warnings():
        # statsmodels only warns on a singular design; we raise just below.
        warnings.simplefilter("ignore", SingularMatrixWarning)
        fit = OLS(y_z, design).fit()
    if fit.model.rank < 4:
        raise ValueError(f"The 'table' parameter of {_CALLER} must give a design of rank 4 "
                         f"(X must vary within each split{_where(group)}). Got rank "
                         f"{fit.model.rank} instead.")
    return RegressionResult(
        predictor=predictor, params=np.asarray(fit.params, np.float64),
        cov=np.asarray(fit.cov_params(), np.float64), df_resid=round(fit.df_resid),
        nobs=int(fit.nobs), dropped=int((~keep).sum()), test_fraction=float(t.mean()),
        mean_z_test=float(x_z[t == 1].mean()), mean_mse_z=float(y_z.mean()),
        mean_x_z=float(x_z.mean()), rsquared=float(fit.rsquared), group=group)


def _where(group: dict | None) -> str:
    return f" in the group {group}" if group else ""


def eigen_regression(table, predictor, *, by=None, drop_nonpositive=True):
    r"""Pooled train+test OLS of z(MSE) on z(X), the test indicator and their interaction.

    The model of equations (6)/(7) of Agarwala et al. (module docstring):
    :math:`z(\mathrm{MSE}) = b_0 + b_1 z(X) + b_2 t + b_3 t z(X)`, fitted with
    statsmodels OLS; ``test_slope`` = b1 + b3 with its standard error and 95%
    t interval from the coefficient covariance.

    Parameters
    ----------
    table : pandas.DataFrame with N rows
        One row per point: ``mse`` (finite), ``split`` ("train" or "test")
        and the ``predictor`` column. For a log-omega predictor an optional
        sign column (``sign``, ``sign_I`` or ``sign_L``, matching the
        predictor's suffix) gives the sign of omega; without it log omega
        must be NaN exactly where omega <= 0.
    predictor : {"log_omega", "log_omega_I", "log_omega_L", "trace", "trace_I", "trace_L"}
        The column used as X. ``log_omega*`` is the log volume form
        (Table 1), ``trace*`` the trace (Table 2).
    by : str or list of str, optional
        Fit separately within each group of these columns (for example
        ``"label"`` for the per-class slopes of Figs 8-9); each group is
        z-scored on its own rows, as a table of its own.
    drop_nonpositive : bool, default=True
        For log omega, drop the rows with omega <= 0 after z-scoring MSE over
        all rows (the paper's Table 1, our reading). False keeps every row
        and then needs a finite predictor everywhere (for example
        log|omega|). Ignored for the trace, which must be finite everywhere.

    Returns
    -------
    result : RegressionResult, or dict of RegressionResult when `by` is given
        With `by`, one result per group, keyed by the group's value (a tuple
        for several columns), in sorted order.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=700)
    >>> split = np.where(np.arange(700) % 7 == 0, "test", "train")
    >>> mse = 0.5 * x + 0.2 * (split == "test") * x + rng.normal(0, 0.3, 700)
    >>> result = eigen_regression(pd.DataFrame({"mse": mse, "split": split, "trace": x}), "trace")
    >>> result.nobs, result.dropped
    (700, 0)
    >>> lhs, rhs = intercept_identity(result)
    >>> bool(abs(lhs - rhs) < 1e-12)
    True
    """
    check_in(predictor, PREDICTORS, name="predictor", caller=_CALLER)
    if not isinstance(drop_nonpositive, (bool, np.bool_)):
        raise TypeError(f"The 'drop_nonpositive' parameter of {_CALLER} must be a bool. "
                        f"Got {drop_nonpositive!r} instead.")
    if by is None:
        return _fit(table, predictor, bool(drop_nonpositive), None)
    if not isinstance(table, pd.DataFrame):
        _check_table(table, predictor, None)
    columns = [by] if isinstance(by, str) else list(by) if isinstance(by, (list, tuple)) else None
    if not columns or any(c not in table.columns for c in columns):
        raise ValueError(f"The 'by' parameter of {_CALLER} must be a column name or a list of "
                         f"column names of 'table' ({list(table.columns)}). Got {by!r} instead.")
    results = {}
    for key, part in table.groupby(columns if len(columns) > 1 else columns[0], sort=True):
        values = key if isinstance(key, tuple) else (key,)
        group = dict(zip(columns, values))
        results[key] = _fit(part, predictor, bool(drop_nonpositive), group)
    return results


def intercept_identity(result):
    r"""Both sides of :math:`b_0 = -p\,(b_2 + b_3 \bar x_{\mathrm{test}})`.

    Exact (up to rounding) when no row was dropped, because both z-scores are
    then centred on the fitted rows; the gap is :math:`\bar y - b_1 \bar x`
    over the fitted rows otherwise (module docstring).

    Parameters
    ----------
    result : RegressionResult

    Returns
    -------
    lhs, rhs : float
        b0, and :math:`-p (b_2 + b_3 \bar x_{\mathrm{test}})` with p the test
        fraction and :math:`\bar x_{\mathrm{test}}` the mean z(X) of the
        fitted test rows.

    Examples
    --------
    >>> x = np.linspace(-1, 1, 14)
    >>> table = pd.DataFrame({"mse": x**2 + x, "split": ["train"] * 12 + ["test"] * 2,
    ...                       "trace_L": x})
    >>> lhs, rhs = intercept_identity(eigen_regression(table, "trace_L"))
    >>> round(lhs, 4), round(rhs, 4)
    (-0.1718, -0.1718)
    """
    if not isinstance(result, RegressionResult):
        raise TypeError(f"The 'result' parameter of intercept_identity must be a "
                        f"RegressionResult. Got {type(result).__name__} instead.")
    b0, _, b2, b3 = result.params
    return float(b0), float(-result.test_fraction * (b2 + b3 * result.mean_z_test))


def slopes_over_seeds(results):
    """Mean and 95% t interval of each coefficient over independent fits (seeds).

    Parameters
    ----------
    results : sequence of RegressionResult, length n >= 3
        One fit per seed, all of the same predictor.

    Returns
    -------
    summary : pandas.DataFrame
        Index Intercept, slope, test_ind, interaction, test_slope; columns
        ``mean``, ``std`` (ddof=1), ``low``, ``high`` (mean -/+
        t_{0.975, n-1} std / sqrt(n)) and ``n``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> fits = []
    >>> for seed in range(3):
    ...     x = rng.normal(size=140)
    ...     split = np.where(np.arange(140) % 7 == 0, "test", "train")
    ...     table = pd.DataFrame({"mse": x + rng.normal(size=140), "split": split, "trace": x})
    ...     fits.append(eigen_regression(table, "trace"))
    >>> slopes_over_seeds(fits).columns.tolist()
    ['mean', 'std', 'low', 'high', 'n']
    """
    if isinstance(results, (RegressionResult, dict, str)) or not hasattr(results, "__iter__"):
        raise TypeError(f"The 'results' parameter of slopes_over_seeds must be a sequence of "
                        f"RegressionResult. Got {type(results).__name__} instead.")
    results = list(results)
    if len(results) < 3:
        raise ValueError(f"The 'results' parameter of slopes_over_seeds must hold at least 3 "
                         f"fits. Got {len(results)} instead.")
    for item in results:
        if not isinstance(item, RegressionResult):
            raise TypeError(f"The 'results' parameter of slopes_over_seeds must hold only "
                            f"RegressionResult. Got {type(item).__name__} instead.")
    predictors = sorted({r.predictor for r in results})
    if len(predictors) > 1:
        raise ValueError(f"The 'results' parameter of slopes_over_seeds must hold fits of one "
                         f"predictor. Got {predictors} instead.")
    values = np.array([[*r.params, r.test_slope] for r in results])
    mean, low, high = mean_interval(values)
    return pd.DataFrame({"mean": mean, "std": values.std(axis=0, ddof=1), "low": low,
                         "high": high, "n": len(results)},
                        index=pd.Index([*COEFFICIENTS, "test_slope"], name="coefficient"))
