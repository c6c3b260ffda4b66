r"""Closed forms of quantization theory: the reference curves of the Representation Gap.

With n codebook points drawn iid from a density f on a d-dimensional space,
the mean squared distance from an independent query to its nearest codebook
point (the *random quantizer*, i.e. RG of a perfect memorizer) obeys
(Zador 1982; Yukich 2008; our reading of the constants, confirmed numerically
in the notes of this project)

.. math::
    n^{2/d}\, \mathbb E \min_i |X - Y_i|^2 \to \Gamma(1 + 2/d)\, V_d^{-2/d}
    \int f^{1 - 2/d}, \qquad V_d = \pi^{d/2} / \Gamma(1 + d/2).

On the unit-volume flat torus the finite-n value is exact (before the balls
wrap): :math:`\Gamma(1 + 2/d) V_d^{-2/d}\, \Gamma(n + 1) / \Gamma(n + 1 + 2/d)`;
for the circle of length 1 this is :math:`1 / (2 (n + 1)(n + 2))`. The best
n-point codebook (optimal quantizer) has the smaller constant
:math:`Q_2(d)`, known exactly for d = 1 (1/12) and d = 2 (hexagonal cells,
:math:`5 / (18\sqrt 3)`) and bracketed by the sphere bound and the random
coding constant otherwise (Graf & Luschgy 2000, Thm 6.2; Conway & Sloane).

References
----------
P. L. Zador, "Asymptotic quantization error of continuous signals and the
quantization dimension", IEEE Trans. Inf. Theory 28 (1982) 139-149.
J. E. Yukich, "Limit theorems for multi-dimensional random quantizers",
Elect. Comm. Probab. 13 (2008) 507-517.
S. Graf, H. Luschgy, *Foundations of Quantization for Probability
Distributions*, Springer LNM 1730 (2000).
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
from scipy.special import gammaln

from lib._checks import check_int, check_real

__all__ = ["ball_volume", "random_quantizer_constant", "asymptotic_gap", "asymptotic_gap_density",
           "flat_torus_gap", "optimal_quantizer_constant", "zador_bounds",
           "kmeans_codebook_gap"]


def _dim(d, caller):
    return check_int(d, name="d", caller=caller, low=1)


def _count(n, caller):
    """n as a float array (scalars stay scalars), every entry >= 1."""
    values = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values < 1):
        raise ValueError(f"The 'n' parameter of {caller} must be a number or array of numbers "
                         f"in [1, inf). Got {n!r} instead.")
    return values if values.ndim else float(values)


def ball_volume(d):
    r"""Volume :math:`V_d = \pi^{d/2} / \Gamma(1 + d/2)` of the unit ball in R^d.

    Parameters
    ----------
    d : int >= 1
        Dimension.

    Returns
    -------
    volume : float

    Examples
    --------
    >>> round(ball_volume(1), 12), round(ball_volume(2), 6), round(ball_volume(3), 4)
    (2.0, 3.141593, 4.1888)
    """
    d = _dim(d, "ball_volume")
    return math.exp(0.5 * d * math.log(math.pi) - math.lgamma(1 + 0.5 * d))


def random_quantizer_constant(d):
    r"""Random-coding constant :math:`\Gamma(1 + 2/d)\, V_d^{-2/d}`.

    Parameters
    ----------
    d : int >= 1

    Returns
    -------
    constant : float

    Examples
    --------
    >>> round(random_quantizer_constant(1), 12), round(random_quantizer_constant(2), 4)
    (0.5, 0.3183)
    """
    d = _dim(d, "random_quantizer_constant")
    return math.gamma(1 + 2 / d) * ball_volume(d) ** (-2 / d)


def asymptotic_gap(n, d, volume=1.0):
    r"""Leading-order RG of n uniform points on a d-manifold of the given volume.

    :math:`\Gamma(1 + 2/d)\, (n V_d / |M|)^{-2/d}`.

    Parameters
    ----------
    n : float or array of shape (K,)
        Training-set sizes, >= 1.
    d : int >= 1
        Intrinsic dimension.
    volume : float > 0, default=1.0
        Riemannian volume :math:`|M|` of the manifold.

    Returns
    -------
    gap : float or ndarray of shape (K,)

    Examples
    --------
    >>> round(asymptotic_gap(10_000, 2, volume=(2 * np.pi) ** 2), 7)   # Clifford torus: 4 pi / n
    0.0012566
    """
    caller = "asymptotic_gap"
    n, d = _count(n, caller), _dim(d, caller)
    volume = check_real(volume, name="volume", caller=caller, low=0, low_open=True,
                        high=math.inf, high_open=True)
    # The uniform density 1/|M| has integral of f^(1 - 2/d) equal to |M|^(2/d).
    return asymptotic_gap_density(n, d, volume ** (2 / d))


def asymptotic_gap_density(n, d, integral_f_power):
    r"""Leading-order RG for a density f: :math:`\Gamma(1 + 2/d) (n V_d)^{-2/d} \int f^{1 - 2/d}`.

    Parameters
    ----------
    n : float or array of shape (K,)
        Training-set sizes, >= 1.
    d : int >= 1
        Intrinsic dimension.
    integral_f_power : float > 0
        :math:`\int_M f^{1 - 2/d}\, d\mathrm{vol}` (equals :math:`|M|^{2/d}` for the
        uniform density; for N(0, I_d) it is :math:`2\pi (1 - 2/d)^{-d/2}`, d > 2).

    Returns
    -------
    gap : float or ndarray of shape (K,)

    Examples
    --------
    >>> uniform = asymptotic_gap_density(100, 3, 2.0 ** (2 / 3))      # f = 1/2 on volume 2
    >>> bool(np.isclose(uniform, asymptotic_gap(100, 3, volume=2.0)))
    True
    """
    caller = "asymptotic_gap_density"
    n, d = _count(n, caller), _dim(d, caller)
    integral = check_real(integral_f_power, name="integral_f_power", caller=caller, low=0,
                          low_open=True, high=math.inf, high_open=True)
    return math.gamma(1 + 2 / d) * (n * ball_volume(d)) ** (-2 / d) * integral


def flat_torus_gap(n, d):
    r"""Exact RG of n uniform points on the unit-volume flat torus (before balls wrap).

    :math:`\Gamma(1 + 2/d)\, V_d^{-2/d}\, \Gamma(n + 1) / \Gamma(n + 1 + 2/d)`, from
    :math:`P(R > r) = (1 - V_d r^d)^n`; the Gamma ratio is taken through ``gammaln``.

    Parameters
    ----------
    n : float or array of shape (K,)
        Training-set sizes, >= 1.
    d : int >= 1
        Dimension of the torus.

    Returns
    -------
    gap : float or ndarray of shape (K,)

    Examples
    --------
    >>> n = 10
    >>> bool(np.isclose(flat_torus_gap(n, 1), 1 / (2 * (n + 1) * (n + 2))))
    True
    """
    caller = "flat_torus_gap"
    n, d = _count(n, caller), _dim(d, caller)
    ratio = np.exp(gammaln(np.asarray(n) + 1) - gammaln(np.asarray(n) + 1 + 2 / d))
    gap = random_quantizer_constant(d) * ratio
    return gap if np.ndim(gap) else float(gap)


def zador_bounds(d):
    r"""Bounds on Zador's optimal-quantizer constant :math:`Q_2(d)`.

    Lower: the sphere bound :math:`\tfrac{d}{d + 2} V_d^{-2/d}` (every cell a
    ball); upper: the random-coding constant :math:`\Gamma(1 + 2/d) V_d^{-2/d}`.

    Parameters
    ----------
    d : int >= 1

    Returns
    -------
    bounds : tuple of float
        (lower, upper).

    Examples
    --------
    >>> lower, upper = zador_bounds(1)
    >>> round(lower * 12, 12), round(upper, 12)
    (1.0, 0.5)
    """
    d = _dim(d, "zador_bounds")
    scale = ball_volume(d) ** (-2 / d)
    return d / (d + 2) * scale, math.gamma(1 + 2 / d) * scale


def optimal_quantizer_constant(d):
    r"""Zador's constant :math:`Q_2(d)` where it is known exactly: d = 1 and d = 2.

    d = 1: 1/12 (equal cells); d = 2: :math:`5 / (18\sqrt 3)` (hexagons, Fejes
    Toth). Other d have only bounds (:func:`zador_bounds`).

    Parameters
    ----------
    d : {1, 2}

    Returns
    -------
    constant : float

    Examples
    --------
    >>> round(optimal_quantizer_constant(2), 5)
    0.16038
    """
    if isinstance(d, bool) or not isinstance(d, Integral) or d not in (1, 2):
        raise ValueError(f"The 'd' parameter of optimal_quantizer_constant must be one of {{1, 2}} "
                         f"(use zador_bounds for other d). Got {d!r} instead.")
    return 1 / 12 if d == 1 else 5 / (18 * math.sqrt(3))


def kmeans_codebook_gap(points, n_codes, queries, seed=None):
    r"""RG of a Lloyd (k-means) codebook: mean squared distance from queries to the nearest code.

    The codebook comes from scikit-learn's ``KMeans`` fitted on ``points``; it
    approximates the optimal quantizer, to compare with the random codebook
    (ratio :math:`\Gamma(1 + 2/d) V_d^{-2/d} / Q_2(d)`: 6 for d = 1, 1.98 for d = 2).

    Parameters
    ----------
    points : array of shape (N, D)
        Sample from the data distribution that the codebook is fitted to.
    n_codes : int in [1, N]
        Codebook size.
    queries : array of shape (Q, D)
        Independent test points.
    seed : int, numpy Generator or None
        Seed of the k-means initialisation.

    Returns
    -------
    gap : float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> gap = kmeans_codebook_gap(rng.random((4000, 1)), 10, rng.random((4000, 1)), seed=0)
    >>> bool(abs(gap * 12 * 10**2 - 1) < 0.1)      # 1 / (12 n^2) on [0, 1]
    True
    """
    from sklearn.cluster import KMeans

    from lib.estimators.representation_gap import representation_gap

    caller = "kmeans_codebook_gap"
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"The 'points' parameter of {caller} must have shape (N, D). "
                         f"Got {points.shape} instead.")
    n_codes = check_int(n_codes, name="n_codes", caller=caller, low=1, high=points.shape[0])
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**31 - 1))
    codes = KMeans(n_clusters=n_codes, n_init=3, random_state=seed).fit(points).cluster_centers_
    if n_codes == 1:
        codes = np.concatenate([codes, codes])    # representation_gap needs two training points
    curve = representation_gap(codes, np.asarray(queries, dtype=np.float64), sizes=[len(codes)])
    return float(curve.gap[-1])
