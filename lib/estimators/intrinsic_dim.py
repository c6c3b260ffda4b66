r"""Intrinsic dimension of a point cloud from nearest-neighbour distances.

Both estimators model the sample near each point as a homogeneous Poisson
process on a d-dimensional manifold, so that ratios of neighbour distances
carry d and nothing else (the density cancels):

- :class:`TwoNN` (Facco et al. 2017): the ratio :math:`\mu = r_2 / r_1` of
  second to first nearest-neighbour distance follows the Pareto law
  :math:`F(\mu) = 1 - \mu^{-d}`, i.e. :math:`\log\mu \sim \mathrm{Exp}(d)`;
- :class:`LevinaBickelMLE` (Levina & Bickel 2005): the k - 1 log-ratios
  :math:`\log(r_k / r_j)`, j < k, are k - 1 independent Exp(d) draws.

References
----------
E. Facco, M. d'Errico, A. Rodriguez, A. Laio, "Estimating the intrinsic
dimension of datasets by a minimal neighborhood information", Scientific
Reports 7, 12140 (2017).
E. Levina, P. J. Bickel, "Maximum likelihood estimation of intrinsic
dimension", NIPS 17 (2005).
D. J. C. MacKay, Z. Ghahramani, "Comments on 'Maximum likelihood estimation
of intrinsic dimension' by E. Levina and P. Bickel" (2005),
http://www.inference.org.uk/mackay/dimension/.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import validate_data

from lib._checks import check_in, check_int, check_real, check_sample_matrix
from lib.neighbors import nearest_neighbors

__all__ = ["TwoNN", "LevinaBickelMLE"]


def _neighbour_distances(estimator, X, n_neighbors):
    """Sorted distances (N, n_neighbors) from each point to its nearest other points.

    Exact search at full precision in any dimension
    (:func:`lib.neighbors.nearest_neighbors`: a k-d tree in low dimension, a
    GEMM ranking with an exact re-check for images). Raises when
    a point has a duplicate: a zero distance makes every log-ratio infinite,
    and silently dropping such points would change N.
    """
    distances, _ = nearest_neighbors(X, n_neighbors)
    duplicated = int((distances[:, 0] == 0).sum())
    if duplicated:
        raise ValueError(f"The 'X' parameter of {type(estimator).__name__} must hold distinct "
                         f"points (every nearest-neighbour distance > 0). Got {duplicated} points "
                         f"with a duplicate instead.")
    return distances


class TwoNN(BaseEstimator):
    r"""Intrinsic dimension from the ratio of the two nearest-neighbour distances.

    With :math:`\mu_i = r_2(x_i) / r_1(x_i)` and the ratios sorted,
    :math:`\mu_{(1)} \le \dots \le \mu_{(N)}`, the Pareto law
    :math:`-\log(1 - F(\mu)) = d \log\mu` gives two estimates:

    - ``method="linear"`` (default, Facco et al. 2017): keep the
      :math:`n = \lfloor N (1 - f) \rfloor` smallest ratios (f the
      ``discard_fraction``; at most N - 1, since the largest ratio has
      empirical CDF 1), set :math:`F_i = i / N` and fit the line through the
      origin by least squares,
      :math:`\hat d = \sum_i x_i y_i / \sum_i x_i^2` with
      :math:`x_i = \log\mu_{(i)}`, :math:`y_i = -\log(1 - F_i)`;
    - ``method="mle"``: the unbiased maximum-likelihood estimate of the
      exponential rate of :math:`\log\mu` with the discarded ratios treated
      as censored at :math:`\mu_{(n)}` (type-II censoring),
      :math:`\hat d = (n - 1) / (\sum_{i \le n} \log\mu_{(i)} + (N - n)\log\mu_{(n)})`;
      with ``discard_fraction=0`` this is :math:`(N - 1) / \sum_i \log\mu_i`.

    Parameters
    ----------
    discard_fraction : float in [0, 1), default=0.1
        Fraction of the largest ratios left out of the fit (they are the most
        affected by curvature and density changes).
    method : {"linear", "mle"}, default="linear"
        Least-squares fit of the empirical CDF or the censored MLE.

    Attributes
    ----------
    dimension_ : float
        Estimated intrinsic dimension d.
    ratios_ : ndarray of shape (n_samples,)
        :math:`\mu_i`, in the order of the rows of X. One ratio per point is
        too little for a per-point dimension, so there is no
        ``local_dimensions_``.
    n_features_in_ : int
        Ambient dimension D seen in :meth:`fit`.

    References
    ----------
    Facco et al., Sci. Rep. 7, 12140 (2017); see the module docstring.

    Examples
    --------
    >>> from lib.datasets import toy
    >>> sphere = toy.Sphere(1.0)
    >>> X = toy.embed(sphere.points(sphere.sample(2000, seed=0)), 10, seed=0)
    >>> round(TwoNN().fit(X).dimension_, 1)
    2.0
    """

    def __init__(self, discard_fraction=0.1, method="linear"):
        self.discard_fraction = discard_fraction
        self.method = method

    def fit(self, X, y=None):
        """Estimate the intrinsic dimension of the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Distinct points in R^D, n_samples >= 3 (numpy array, or a torch
            tensor on the CPU).
        y : None
            Ignored; present for the scikit-learn API.

        Returns
        -------
        self : TwoNN
            The fitted estimator.

        Raises
        ------
        ValueError
            If two points coincide, or if every kept ratio is 1 up to
            rounding (log(r2 / r1) <= sqrt(eps) of the distances' dtype),
            as on a regular lattice, where the estimate is undefined.
        """
        # Parameters are checked here, never in __init__ (scikit-learn's convention), by
        # lib._checks rather than scikit-learn's private _param_validation.
        check_real(self.discard_fraction, name="discard_fraction", caller="TwoNN", low=0.0,
                   high=1.0, high_open=True)
        check_in(self.method, ("linear", "mle"), name="method", caller="TwoNN")
        # Our own named errors first: validate_data's name the class but not 'X'.
        check_sample_matrix(X, name="X", caller=type(self).__name__, min_samples=3)
        X = validate_data(self, X, ensure_min_samples=3, dtype=[np.float64, np.float32])
        distances = _neighbour_distances(self, X, 2)
        self.ratios_ = distances[:, 1] / distances[:, 0]
        tie = math.sqrt(np.finfo(distances.dtype).eps)
        self.dimension_ = self._estimate(np.sort(np.log(self.ratios_)), tie)
        return self

    def _estimate(self, log_ratios, tie):
        total = log_ratios.size
        kept = int(math.floor(total * (1 - self.discard_fraction)))
        if self.method == "linear":
            kept = min(kept, total - 1)
        if kept < 2:
            raise ValueError(f"The 'discard_fraction' parameter of TwoNN must leave at least 2 "
                             f"of the {total} ratios, i.e. lie in [0, {1 - 2 / total:.3g}]. "
                             f"Got {self.discard_fraction!r} instead.")
        x = log_ratios[:kept]
        if self.method == "linear":
            y = -np.log1p(-np.arange(1, kept + 1) / total)
            denominator = float(x @ x)
            numerator = float(x @ y)
        else:
            denominator = float(x.sum() + (total - kept) * x[-1])
            numerator = kept - 1.0
        # Equal distances (a lattice) come out equal only up to rounding, and the coordinates
        # are rounded relative to their size, not to the spacing: log(r2 / r1) of a tie is
        # about eps times the number of lattice steps across the cloud (1e-15 on a 12 x 12
        # lattice, 3e-6 on 50 float32 points of a line), and dividing by it gave d ~ 1e15.
        # A log-ratio up to sqrt(eps) counts as a tie: that covers 1e8 steps (4e3 in
        # float32), while a genuine ratio that close to 1 has probability d sqrt(eps) per
        # point under the Pareto law.
        if x[-1] <= tie:
            raise ValueError(f"The 'X' parameter of TwoNN must have r2 > r1 for some kept point "
                             f"(log(r2 / r1) > sqrt(eps) = {tie:.1e}). Got equal first and "
                             f"second neighbour distances, up to rounding, at every kept point "
                             f"(largest log-ratio {x[-1]:.1e}) instead.")
        return numerator / denominator


class LevinaBickelMLE(BaseEstimator):
    r"""Maximum-likelihood intrinsic dimension from k nearest neighbours.

    At each point, with :math:`r_1 \le \dots \le r_k` the distances to its k
    nearest neighbours (Levina & Bickel 2005, eq. 8),

    .. math::
        \hat m_k(x_i) = \Big[\frac{1}{k - 1}\sum_{j=1}^{k-1}
        \log\frac{r_k(x_i)}{r_j(x_i)}\Big]^{-1},

    and the points are combined by averaging the *inverses*, as MacKay &
    Ghahramani (2005) propose:

    .. math::
        \hat d = \Big[\frac{1}{N}\sum_i \hat m_k(x_i)^{-1}\Big]^{-1}.

    :math:`\hat m_k^{-1}` is an unbiased estimate of 1/d (a mean of k - 1
    Exp(d) draws), so the combined estimate has no 1/k bias, whereas Levina
    & Bickel's plain average of :math:`\hat m_k` needs their k - 2
    normaliser. This is also scikit-dimension's ``MLE`` with its default
    ``comb="mle"``.

    Parameters
    ----------
    n_neighbors : int >= 2, default=5
        k, the number of neighbours of each point; at most n_samples - 1.
        Averaging inverses removes the 1/k bias, so a small k is safe and
        keeps the neighbourhoods small where curvature biases the estimate;
        Levina & Bickel use k = 10 to 20, which on 2,000 points of a sphere
        halves the spread (0.012 at k = 20 against 0.025 at k = 5) but
        needs more than 20 samples.

    Attributes
    ----------
    dimension_ : float
        Estimated intrinsic dimension d.
    local_dimensions_ : ndarray of shape (n_samples,)
        :math:`\hat m_k(x_i)`, in the order of the rows of X; ``inf`` where
        the k neighbours of a point are all at the same distance.
    n_features_in_ : int
        Ambient dimension D seen in :meth:`fit`.

    References
    ----------
    Levina & Bickel (2005); MacKay & Ghahramani (2005); see the module
    docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from lib.datasets import toy
    >>> circle = toy.Circle(1.0)
    >>> X = circle.points(circle.sample(1000, seed=0))
    >>> round(LevinaBickelMLE(n_neighbors=10).fit(X).dimension_, 1)
    1.0
    """

    def __init__(self, n_neighbors=5):
        self.n_neighbors = n_neighbors

    def fit(self, X, y=None):
        """Estimate the intrinsic dimension of the rows of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Distinct points in R^D, n_samples > n_neighbors (numpy array, or
            a torch tensor on the CPU).
        y : None
            Ignored; present for the scikit-learn API.

        Returns
        -------
        self : LevinaBickelMLE
            The fitted estimator.
        """
        check_int(self.n_neighbors, name="n_neighbors", caller="LevinaBickelMLE", low=2)
        # Our own named errors first: validate_data's name the class but not 'X'.
        check_sample_matrix(X, name="X", caller=type(self).__name__, min_samples=3)
        X = validate_data(self, X, ensure_min_samples=3, dtype=[np.float64, np.float32])
        k, count = self.n_neighbors, X.shape[0]
        if k > count - 1:
            raise ValueError(f"The 'n_neighbors' parameter of LevinaBickelMLE must be an int in "
                             f"[2, n_samples - 1] = [2, {count - 1}]. Got {k!r} instead.")
        distances = _neighbour_distances(self, X, k)
        # Sum over j < k of log(r_k / r_j): the j = k term is zero.
        log_sums = np.log(distances[:, -1:] / distances).sum(axis=1)
        inverse = log_sums / (k - 1)                                  # unbiased for 1/d
        mean_inverse = float(inverse.mean())
        if mean_inverse == 0:
            raise ValueError("The 'X' parameter of LevinaBickelMLE must have r_k > r_1 at some "
                             "point. Got k equidistant neighbours at every point instead.")
        with np.errstate(divide="ignore"):
            self.local_dimensions_ = 1 / inverse
        self.dimension_ = 1 / mean_inverse
        return self
