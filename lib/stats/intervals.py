"""Confidence intervals of a mean over independent replicates (seeds, runs).

The book reports a measurement over a handful of seeds as its mean and the
Student-t interval ``mean +- t_{(1+c)/2, n-1} s / sqrt(n)``, ``s`` the sample
standard deviation (ddof 1): with three seeds the t quantile (4.30 at 95%) is
more than twice the normal one, and a normal interval would claim agreement
or disagreement with a paper that the seeds cannot show.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from lib._checks import check_real

__all__ = ["mean_interval"]


def mean_interval(values, *, confidence: float = 0.95):
    """Mean of ``values`` along axis 0 and its Student-t confidence interval.

    Parameters
    ----------
    values : array_like of shape (n,) or (n, k)
        Independent replicates, one per row; a 2-d array gives one interval per column.
    confidence : float, default=0.95
        Coverage of the interval, in (0, 1).

    Returns
    -------
    mean, low, high : float or ndarray of shape (k,)
        NaN bounds with fewer than two replicates; all NaN with none.

    Examples
    --------
    >>> mean, low, high = mean_interval([1.0, 2.0, 3.0])
    >>> mean, round(high - mean, 4)      # t_{0.975, 2} * 1 / sqrt(3)
    (2.0, 2.4841)
    >>> mean_interval([5.0])
    (5.0, nan, nan)
    """
    level = check_real(confidence, name="confidence", caller="mean_interval", low=0.0,
                       high=1.0, low_open=True, high_open=True)
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    shape = values.shape[1:]
    if n == 0:
        mean = np.full(shape, np.nan)
    else:
        mean = values.mean(axis=0)
    if n < 2:
        half = np.full(shape, np.nan)
    else:
        half = stats.t.ppf((1 + level) / 2, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    low, high = mean - half, mean + half
    if not shape:
        return float(mean), float(low), float(high)
    return mean, low, high
