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
