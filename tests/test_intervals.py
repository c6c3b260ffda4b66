"""The Student-t interval of a mean over replicates, against scipy's closed form."""

import numpy as np
import pytest
from scipy import stats

from lib.stats.intervals import mean_interval


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_interval_is_scipys_t_interval(confidence):
    values = np.array([0.3, 1.7, 0.9, 2.4, 1.1])
    mean, low, high = mean_interval(values, confidence=confidence)
    expected = stats.t.interval(confidence, len(values) - 1, loc=values.mean(),
                                scale=stats.sem(values))
    assert mean == pytest.approx(values.mean(), rel=1e-15)
    np.testing.assert_allclose((low, high), expected, rtol=1e-12)


def test_columns_get_their_own_intervals():
    values = np.array([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0]])
    mean, low, high = mean_interval(values)
    for column in range(2):
        expected = mean_interval(values[:, column])
        np.testing.assert_allclose((mean[column], low[column], high[column]), expected,
                                   rtol=1e-15)


def test_too_few_replicates_give_nan_bounds():
    assert np.isnan(mean_interval([4.0])[1:]).all() and mean_interval([4.0])[0] == 4.0
    assert np.isnan(mean_interval(np.empty(0))).all()


@pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5])
def test_confidence_outside_the_open_unit_interval_is_refused(confidence):
    with pytest.raises(ValueError, match="'confidence' parameter of mean_interval"):
        mean_interval([1.0, 2.0], confidence=confidence)
