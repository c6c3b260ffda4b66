r"""The Representation Gap (RG): nearest-training-point error of independent queries.

Our reading of Perera et al. (arXiv 2605.21692; the paper's body was not
available, see the project notes): for a training set
:math:`S_n = (x_1, \dots, x_n)` and a group G acting by isometries,

.. math::
    \mathrm{RG}_n = \mathbb E_{q \sim p} \min_{i \le n,\, g \in G} |q - g x_i|^2,

the error of a perfect memorizer on fresh data, i.e. the random-codebook
quantization error of the orbit set :math:`G S_n`. On a d-manifold it decays as
:math:`n^{-2/d_G}` with :math:`d_G = d - \dim G`
(:mod:`lib.stats.quantization` holds the constants), so the log-log slope
of the curve is an intrinsic-dimension estimate (:class:`RGSlope`). At small
noise the test-minus-train error of the optimal empirical denoiser
(:func:`optimal_denoiser`) tends to the same number.

Precision. The matrix-product form :math:`|q|^2 - 2 q\cdot x + |x|^2` loses
all digits once RG is below the rounding of :math:`|x|^2` (about 1e-7
:math:`|x|^2` in float32). We use it only to *rank* training points; the
few best candidates per query and per prefix segment are re-evaluated from
explicit differences in float64, so every reported distance has full
relative precision. ``precision`` picks the ranking dtype (float64: 2
candidates, safe for ties above 1e-16 :math:`|x|^2`; float32: 8 candidates,
so that the true nearest point is found unless 8 others lie within the
float32 rounding of it). float32 halves the memory of the ranking copy. It brings no speed on the
hardware we measured (``benchmarks/representation_gap.py``, 10^5 points in
R^4096, 33 prefix sizes, 2026-11-23): 2.2-2.3 s either way for 200 queries on
a 2-core CPU, as fast as scikit-learn's float32 brute force for one size; on
an H100, 2,000 queries took 0.13 s in float64 (1.5e9 pairs/s) and 0.35 s in
float32, whose GEMM is no faster there and whose re-check is larger.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from lib._arrays import as_tensor
from lib._threads import map_blocks, torch_threads
from lib.datasets.point_clouds import Ball, Cube, Sphere
from lib._checks import (REAL_DTYPES, check_finite, check_float_dtype, check_in, check_int,
                         check_real, check_sample_matrix)

__all__ = ["RGCurve", "representation_gap", "default_sizes", "RGSlope", "CALIBRATION_LAWS",
           "optimal_denoiser"]

_CANDIDATES = {"float64": 2, "float32": 8}
_RANK_DTYPE = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class RGCurve:
    """Representation Gap at nested training-set sizes.

    Attributes
    ----------
    sizes : ndarray of int, shape (K,)
        Prefix sizes n, increasing.
    gap : array of shape (K,)
        :math:`\\mathrm{RG}_n`, float64, numpy or torch as the training input.
    per_query : array of shape (Q, K) or None
        Squared distance of each query to its nearest prefix point (when asked for).
    """

    sizes: np.ndarray
    gap: object
    per_query: object = None


def default_sizes(n_train, per_octave=2):
    """Geometric grid of prefix sizes from 2 to ``n_train``, about ``per_octave`` per doubling.

    Examples
    --------
    >>> default_sizes(64).tolist()
    [2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64]
    """
    n_train = check_int(n_train, name="n_train", caller="default_sizes", low=2)
    count = int(math.ceil(per_octave * math.log2(n_train / 2))) + 1
    return np.unique(np.rint(np.geomspace(2, n_train, max(count, 1))).astype(np.int64))


def _check_sizes(sizes, n_train, caller):
    if sizes is None:
        return default_sizes(n_train)
    array = np.asarray(sizes)
    expected = (f"a 1-d increasing sequence of ints in [1, len(train)] = [1, {n_train}]")
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"The 'sizes' parameter of {caller} must be {expected}. "
                         f"Got {sizes!r} instead.")
    if array[0] < 1 or array[-1] > n_train or np.any(np.diff(array) <= 0):
        raise ValueError(f"The 'sizes' parameter of {caller} must be {expected}. "
                         f"Got {array.tolist()} instead.")
    return array.astype(np.int64)


def _points(value, name, caller, device):
    tensor, restore = as_tensor(value)
    if tensor.ndim != 2:
        raise ValueError(f"The {name!r} parameter of {caller} must have shape (N, D). "
                         f"Got {tuple(tensor.shape)} instead.")
    # Any real dtype (distances are taken in float64); complex would lose its imaginary part.
    check_float_dtype(tensor, name=name, caller=caller, allowed=REAL_DTYPES)
    # A NaN or inf makes the sum non-finite: one cheap reduction instead of an (N, D) mask
    # (the full check also runs when a huge but finite input overflows the sum).
    if not bool(torch.isfinite(tensor.sum())):
        check_finite(tensor, name=name, caller=caller)
    return tensor.to(device), restore


def _orbit(group, x, caller):
    """Orbit points (G, M, D) in float64, from a callable or a list of orthogonal matrices."""
    dim = x.shape[1]
    if callable(group):
        orbit = torch.as_tensor(group(x), dtype=torch.float64, device=x.device)
    else:
        mats = torch.as_tensor(np.asarray(group, dtype=np.float64), device=x.device)
        eye = torch.eye(dim, dtype=torch.float64, device=x.device)
        if (mats.ndim != 3 or mats.shape[1:] != (dim, dim)
                or not torch.allclose(mats @ mats.transpose(1, 2), eye, atol=1e-10)):
            raise ValueError(f"The 'group' parameter of {caller} must be a callable or a list of "
                             f"orthogonal ({dim}, {dim}) matrices. Got shape "
                             f"{tuple(mats.shape)} (or non-orthogonal matrices) instead.")
        orbit = torch.einsum("gij,mj->gmi", mats, x)
    if orbit.ndim != 3 or orbit.shape[1:] != x.shape:
        raise ValueError(f"The 'group' parameter of {caller} must map points (M, D) = "
                         f"{tuple(x.shape)} to an orbit (|G|, M, D). Got "
                         f"{tuple(orbit.shape)} instead.")
    return orbit


def _segments(sizes, chunk):
    """Pieces (start, stop, segment) of the training index: chunks cut at every prefix size."""
    start = 0
    for k, stop in enumerate(sizes):
        for s in range(start, stop, chunk):
            yield s, min(s + chunk, stop), k
        start = stop


def _nearest_exact(qe, qr, points, points_rank, norms, sizes, n_cand, mc):
    """Prefix minima (Qc, K): rank by GEMM in the ranking dtype, re-check candidates in float64."""
    n_group, n_train, dim = points.shape
    flat = points.reshape(n_group * n_train, dim)
    out = torch.empty(qe.shape[0], len(sizes), dtype=torch.float64, device=qe.device)
    running = torch.full((qe.shape[0],), math.inf, dtype=torch.float64, device=qe.device)
    cand_val = cand_idx = None
    for s, e, k in _segments(sizes, mc):
        length = e - s
        # |q|^2 is the same along a row, so it is left out of the ranking.
        block = points_rank[:, s:e].reshape(n_group * length, dim)
        approx = torch.addmm(norms[:, s:e].reshape(1, -1), qr, block.T, alpha=-2)
        take = min(n_cand, approx.shape[1])
        val, local = torch.topk(approx, take, dim=1, largest=False)
        idx = (local // length) * n_train + s + local % length
        if cand_val is not None:
            val, idx = torch.cat([cand_val, val], 1), torch.cat([cand_idx, idx], 1)
            val, keep = torch.topk(val, min(n_cand, val.shape[1]), dim=1, largest=False)
            idx = torch.gather(idx, 1, keep)
        cand_val, cand_idx = val, idx
        if e == sizes[k]:
            # amin, not min(dim).values: the latter costs ms per call on small CPU tensors.
            # In place: this gather is memory-bound, one (Qc, k, D) buffer instead of three.
            diff = flat[cand_idx].to(torch.float64).sub_(qe[:, None, :])
            exact = torch.amin(torch.einsum("qkd,qkd->qk", diff, diff), 1)
            running = torch.minimum(running, exact)
            out[:, k] = running
            cand_val = cand_idx = None
    return out


def _nearest_orbit_distance(qe, x64, orbit_distance, sizes, mc):
    out = torch.empty(qe.shape[0], len(sizes), dtype=torch.float64, device=qe.device)
    running = torch.full((qe.shape[0],), math.inf, dtype=torch.float64, device=qe.device)
    for s, e, k in _segments(sizes, mc):
        dist = torch.as_tensor(orbit_distance(qe, x64[s:e]), dtype=torch.float64, device=qe.device)
        if dist.shape != (qe.shape[0], e - s):
            raise ValueError(f"The 'orbit_distance' parameter of representation_gap must return "
                             f"squared distances of shape (Q, M) = ({qe.shape[0]}, {e - s}). "
                             f"Got {tuple(dist.shape)} instead.")
        running = torch.minimum(running, torch.amin(dist, 1))
        if e == sizes[k]:
            out[:, k] = running
    return out


def representation_gap(train, queries, *, sizes=None, group=None, orbit_distance=None,
                       precision="float64", memory_budget=2**28, device=None,
                       return_per_query=False):
    r"""Representation Gap of nested prefixes of a training set, in one pass.

    :math:`\mathrm{RG}_n = \frac1Q \sum_q \min_{i \le n,\, g \in G} |q - g x_i|^2` for
    every n in ``sizes``; prefixes are nested, so the curve never increases.

    Parameters
    ----------
    train : array of shape (M, D)
        Training points in their given order (shuffle first for a random
        prefix), M >= 2; numpy array or torch tensor.
    queries : array of shape (Q, D)
        Test points independent of ``train`` (no exact duplicates).
    sizes : sequence of int, optional
        Increasing prefix sizes in [1, M]; default :func:`default_sizes`.
    group : callable or sequence of (D, D) orthogonal matrices, optional
        Finite group: ``act(points (M, D)) -> orbit (|G|, M, D)`` (float64
        tensors), or the matrices g with :math:`g x` = ``x @ g.T``.
    orbit_distance : callable, optional
        ``(queries (Q, D), train (M, D)) -> squared orbit distances (Q, M)``,
        float64 tensors in, array out; for continuous groups with a closed form
        (or periodic metrics). Used as given: no re-check. Excludes ``group``.
    precision : {"float64", "float32"}, default="float64"
        Dtype of the ranking matrix product (module docstring); reported
        distances are float64 either way.
    memory_budget : int >= 2**16, default=2**28
        Bytes for the work arrays of one chunk; never changes the result.
    device : str or torch.device, optional
        Where to compute; default the device of ``train``.
    return_per_query : bool, default=False
        Also return the (Q, K) per-query minima.

    Returns
    -------
    curve : RGCurve
        ``gap`` (K,) and ``per_query`` in the caller's type (numpy or torch), float64.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> line = lambda n: np.c_[rng.random(n), np.zeros(n)]      # uniform on a segment of length 1
    >>> curve = representation_gap(line(1000), line(20000), sizes=[10, 100, 1000])
    >>> curve.sizes.tolist(), bool(np.all(np.diff(curve.gap) < 0))
    ([10, 100, 1000], True)
    >>> round(float(curve.gap[-1] * 1000**2), 1)                # ~ 1/2 away from the ends
    0.5
    """
    caller = "representation_gap"
    check_in(precision, tuple(_CANDIDATES), name="precision", caller=caller)
    budget = check_int(memory_budget, name="memory_budget", caller=caller, low=2**16)
    if group is not None and orbit_distance is not None:
        raise ValueError("The 'orbit_distance' parameter of representation_gap must be None when "
                         "'group' is given (one symmetry at a time). Got both instead.")
    if orbit_distance is not None and not callable(orbit_distance):
        raise TypeError(f"The 'orbit_distance' parameter of representation_gap must be a callable. "
                        f"Got {type(orbit_distance).__name__} instead.")
    source, restore = as_tensor(train)
    dev = torch.device(device) if device is not None else source.device
    x, _ = _points(train, "train", caller, dev)
    q, _ = _points(queries, "queries", caller, dev)
    if x.shape[0] < 2:
        raise ValueError(f"The 'train' parameter of {caller} must hold at least 2 points. "
                         f"Got {x.shape[0]} instead.")
    if q.shape[1] != x.shape[1] or q.shape[0] < 1:
        raise ValueError(f"The 'queries' parameter of {caller} must have shape (Q >= 1, D) with "
                         f"D = {x.shape[1]} as train. Got {tuple(q.shape)} instead.")
    sizes = _check_sizes(sizes, x.shape[0], caller)
    n_queries, dim = q.shape
    qe_all = q.to(torch.float64)

    if orbit_distance is not None:
        x64 = x.to(torch.float64)
        mc = max(1, min(x.shape[0], budget // (24 * dim * 64)))
        qc = max(1, min(n_queries, budget // (24 * dim * mc)))
        chunks = [_nearest_orbit_distance(qe_all[a:a + qc], x64, orbit_distance, sizes, mc)
                  for a in range(0, n_queries, qc)]
    else:
        rank = _RANK_DTYPE[precision]
        points = _orbit(group, x.to(torch.float64), caller) if group is not None else x[None]
        points_rank = points.to(rank)
        norms = torch.einsum("gmd,gmd->gm", points_rank, points_rank)
        n_group, n_cand = points.shape[0], _CANDIDATES[precision]
        per_row = lambda m: 3 * n_group * m * 8 + 3 * n_cand * dim * 8 + 8 * len(sizes)
        mc = min(x.shape[0], 8192)
        while mc > 1 and per_row(mc) > budget // 4:
            mc //= 2
        qc = max(1, min(n_queries, budget // per_row(mc)))
        q_rank = q.to(rank)
        chunks = [_nearest_exact(qe_all[a:a + qc], q_rank[a:a + qc], points, points_rank, norms,
                                 sizes, n_cand, mc)
                  for a in range(0, n_queries, qc)]
    per_query = torch.cat(chunks, 0)
    duplicates = int((per_query[:, -1] == 0).sum())
    if duplicates:
        raise ValueError(f"The 'queries' parameter of {caller} must share no point with train "
                         f"(the law needs independent queries). Got {duplicates} queries equal "
                         f"to a training point (or to one of its orbit) instead.")
    back = lambda t: restore(t.to(source.device))                                
    return RGCurve(sizes=sizes, gap=back(per_query.mean(0)),
                   per_query=back(per_query) if return_per_query else None)


def optimal_denoiser(noisy, train, sigma, *, memory_budget=2**28):
    r"""Optimal denoiser of the empirical distribution of ``train`` at noise level sigma.

    :math:`D_\sigma(y) = \sum_i w_i(y)\, x_i`,
    :math:`w = \mathrm{softmax}_i(-|y - x_i|^2 / 2\sigma^2)`, in float64 with a running log-sum-exp over training chunks. Both sets are
    centred on the training mean first (distances are translation invariant),
    which keeps the matrix-product distances accurate to about
    1e-16 :math:`\max|x - \bar x|^2`, i.e. logits to that over :math:`2\sigma^2`.

    Parameters
    ----------
    noisy : array of shape (Q, D)
        Noisy inputs y.
    train : array of shape (M, D)
        The empirical distribution's atoms x_i.
    sigma : float > 0
        Noise standard deviation.
    memory_budget : int >= 2**16, default=2**28
        Bytes per chunk of the (Q, M) weight matrix; never changes the result.

    Returns
    -------
    denoised : array of shape (Q, D)
        float64, numpy or torch as ``noisy``.

    Examples
    --------
    >>> x = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> optimal_denoiser(np.array([[0.5, 0.0], [0.1, 0.0]]), x, 0.01).round(6).tolist()
    [[0.5, 0.0], [0.0, 0.0]]
    """
    caller = "optimal_denoiser"
    sigma = check_real(sigma, name="sigma", caller=caller, low=0, low_open=True, high=math.inf,
                       high_open=True)
    budget = check_int(memory_budget, name="memory_budget", caller=caller, low=2**16)
    source, restore = as_tensor(noisy)
    y, _ = _points(noisy, "noisy", caller, source.device)
    x, _ = _points(train, "train", caller, source.device)
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"The 'noisy' parameter of {caller} must have D = {x.shape[1]} columns "
                         f"as train. Got {tuple(y.shape)} instead.")
    if x.shape[0] == 0:
        raise ValueError(f"The 'train' parameter of {caller} must hold at least one point "
                         f"(the softmax weights need an atom). Got shape {tuple(x.shape)} instead.")
    if y.shape[0] == 0:                                       # nothing to denoise
        return restore(torch.zeros(0, x.shape[1], dtype=torch.float64, device=y.device))
    x = x.to(torch.float64)
    centre = x.mean(0)
    x, y = x - centre, y.to(torch.float64) - centre
    xn = (x * x).sum(1)
    mc = max(1, min(x.shape[0], budget // (8 * 4 * 256)))
    qc = max(1, min(y.shape[0], budget // (8 * 4 * mc)))
    out = []
    for a in range(0, y.shape[0], qc):
        yc = y[a:a + qc]
        yn = (yc * yc).sum(1)
        top = torch.full((yc.shape[0],), -math.inf, dtype=torch.float64, device=y.device)
        total = torch.zeros_like(top)
        acc = torch.zeros_like(yc)
        for s in range(0, x.shape[0], mc):
            d2 = (yn[:, None] + xn[None, s:s + mc] - 2 * yc @ x[s:s + mc].T).clamp_min(0)
            logits = -d2 / (2 * sigma**2)
            new_top = torch.maximum(top, torch.amax(logits, 1))
            scale = torch.exp(top - new_top)
            w = torch.exp(logits - new_top[:, None])
            total = total * scale + w.sum(1)
            acc = acc * scale[:, None] + w @ x[s:s + mc]
            top = new_top
        out.append(acc / total[:, None])
    return restore(torch.cat(out, 0) + centre)


#: Reference laws of :class:`RGSlope`'s calibration, by name.
CALIBRATION_LAWS = ("ball", "sphere", "cube")
_REFERENCE_MODELS = {"ball": Ball, "sphere": Sphere, "cube": Cube}
# Draws per reference dimension. Their mean has the variance of one estimate over the draws,
# so the raw interval is widened by sqrt(1 + 1 / draws) before it is mapped.
_REFERENCE_DRAWS = 3


@dataclass(frozen=True)
class _RawSetting:
    """What the raw estimate depends on besides the data: the reference fits repeat it."""

    total: int
    n_queries: int
    sizes: tuple
    fit_range: tuple
    n_permutations: int


@functools.lru_cache(maxsize=1024)
def _reference_dimensions_at(dim, setting):
    """Mean raw estimate of each uniform law of :data:`CALIBRATION_LAWS` at ``dim``, by name.

    All draws of all laws are fitted together, side by side on torch's
    threads with one torch thread each (the laws need the same dimensions),
    so the values do not depend on the thread count.
    """
    jobs = [(law, draw) for law in CALIBRATION_LAWS for draw in range(_REFERENCE_DRAWS)]
    workers = torch.get_num_threads()
    with torch_threads(1):
        values = map_blocks(lambda job: _reference_fit(*job, dim, setting), jobs, workers)
    return {law: float(np.mean([value for (name, _), value in zip(jobs, values) if name == law]))
            for law in CALIBRATION_LAWS}


def _reference_fit(law, draw, dim, setting):
    """Raw estimate of one draw of the uniform ``law`` of dimension ``dim``."""
    # Fixed seeds: the calibration is a property of the setting, not of the data.
    seed = np.random.default_rng([draw, dim, setting.total, CALIBRATION_LAWS.index(law)])
    points = _REFERENCE_MODELS[law](dim).sample(setting.total, seed=seed)
    return RGSlope(sizes=setting.sizes, n_queries=setting.n_queries,
                   n_permutations=setting.n_permutations, fit_range=setting.fit_range,
                   n_bootstrap=0, calibration=None, random_state=draw).fit(points).raw_dimension_


def _reference_dimensions(cap):
    """Reference dimensions 1..8, then steps of about 25 %, ending at ``cap``."""
    dim = 1
    while dim < cap:
        yield dim
        dim = dim + 1 if dim < 8 else int(round(dim * 1.25))
    yield cap


class _Calibration:
    """Monotone map from raw estimates to the dimension of one reference law, built lazily."""

    def __init__(self, law, setting, cap):
        self.law, self.setting, self.cap = law, setting, int(cap)
        self.dims, self.values = [], []

    def invert(self, raw):
        """The dimension m whose reference gives ``raw``; linear in between, at most ``cap``."""
        if not math.isfinite(raw):
            return math.nan
        prev_dim, prev_value = 0, 0.0
        for i, dim in enumerate(_reference_dimensions(self.cap)):
            if i == len(self.values):
                # Non-decreasing: noise between neighbouring references must not fold the map.
                value = max(_reference_dimensions_at(dim, self.setting)[self.law], prev_value)
                self.dims.append(dim)
                self.values.append(value)
            value = self.values[i]
            if value >= raw and value > prev_value:
                return prev_dim + (dim - prev_dim) * (raw - prev_value) / (value - prev_value)
            prev_dim, prev_value = dim, value
        return float(self.cap)

    def table(self):
        return np.column_stack([self.dims, self.values]).astype(np.float64)


class RGSlope(BaseEstimator):
    r"""Intrinsic dimension from the log-log slope of the Representation Gap.

    Our reading (the paper's estimator is unknown): a random query set is
    split off; for each of ``n_permutations`` random orders of the rest, RG is
    measured at nested prefixes ``sizes``; the mean over permutations of
    :math:`\log \mathrm{RG}_n` is fitted by ordinary least squares on
    :math:`\log n` over the sizes between the quantiles ``fit_range`` of the
    size grid, and the raw estimate is :math:`-2 / \text{slope}`
    (RG :math:`\propto n^{-2/d}`). A percentile bootstrap over permutations
    and queries gives its 95 % interval.

    Calibration. At the sizes a sample allows, the slope is not yet the
    asymptotic one: queries near a boundary, and the concentration of
    distances once the nearest point is as far as the manifold is wide, make
    RG fall faster than :math:`n^{-2/d}`, so the raw estimate is biased low,
    more so as d grows (about 8.6 for a uniform 10-ball of 2,500 points, 17
    for a 24-ball). The bootstrap sees only the sampling noise, so the raw
    interval misses the true d whenever that bias exceeds its width. As
    Camastra and Vinciarelli did for the correlation dimension, and DANCo
    (Ceruti et al.) for nearest-neighbour statistics, ``calibration`` maps the
    raw estimate back through the raw estimates of reference laws of known
    dimension m measured with the same sample count, queries, sizes,
    permutations and fit range: uniform balls, spheres and cubes
    (:mod:`lib.datasets.point_clouds`), each m the mean of three draws with
    fixed seeds. ``dimension_`` is the mean of the references' inverses,
    and ``confidence_interval_`` runs from the lowest inverse of the raw
    interval's lower end to the highest of its upper end, after widening the
    raw interval by :math:`\sqrt{1 + 1/3}` for the noise of the three-draw
    references: it carries the sampling noise and the spread of the bias
    between the reference shapes.
    Shapes unlike all of them (strongly non-uniform densities, curves whose
    turns are nearer than the nearest neighbour at small n) keep a bias the
    calibration does not remove; the representation-gap chapter measures the
    coverage. The inverse is linear between reference dimensions 1..8 and
    then steps of about 25 %, and at most the number of features (the
    dimension of the space is a bound on the manifold's).

    Parameters
    ----------
    sizes : sequence of int, optional
        Prefix sizes; default :func:`default_sizes` of the pool (2 per octave).
    n_queries : float in (0, 1) or int >= 1, default=0.2
        Query set: fraction of the samples or count.
    n_permutations : int >= 1, default=5
    fit_range : (float, float), default=(0.5, 1.0)
        Quantiles of the size grid bounding the fit; the default keeps the
        larger half (in log n), past the pre-asymptotic small-n range.
    n_bootstrap : int >= 0, default=200
        Bootstrap replicates (0: no interval, ``confidence_interval_`` is NaN).
    calibration : tuple of {"ball", "sphere", "cube"} or None, default=("ball", "sphere", "cube")
        Reference laws of the calibration; None (or empty) reports the raw
        estimate and interval as ``dimension_`` and ``confidence_interval_``.
    random_state : int, numpy RandomState or None

    Attributes
    ----------
    dimension_ : float
        Calibrated estimate (the raw one without ``calibration``).
    confidence_interval_ : ndarray of shape (2,)
        Calibrated 95 % interval (the raw one without ``calibration``).
    raw_dimension_ : float
        -2 / slope.
    raw_confidence_interval_ : ndarray of shape (2,)
        Bootstrap percentile interval of the raw estimate.
    slope_, intercept_ : float
        OLS fit of mean log RG on log n.
    dimensions_ : ndarray of shape (n_permutations,)
        Raw -2 / slope of each permutation alone.
    calibration_ : dict of str to ndarray of shape (K, 2)
        For each reference law, the dimensions m evaluated and their raw
        estimates (made non-decreasing); empty without ``calibration``.
    curve_ : RGCurve
        Mean RG over permutations (numpy), no per-query values.
    n_features_in_ : int

    Examples
    --------
    >>> from lib.datasets import toy
    >>> sphere = toy.Sphere(1.0)
    >>> X = toy.embed(sphere.points(sphere.sample(3000, seed=0)), 10, seed=0)
    >>> round(RGSlope(random_state=0).fit(X).dimension_)
    2
    >>> from lib.datasets.point_clouds import Cube
    >>> X = Cube(8).sample(2000, seed=0)
    >>> estimator = RGSlope(random_state=0).fit(X)
    >>> round(estimator.raw_dimension_), round(estimator.dimension_)
    (7, 8)
    """

    def __init__(self, sizes=None, n_queries=0.2, n_permutations=5, fit_range=(0.5, 1.0),
                 n_bootstrap=200, calibration=CALIBRATION_LAWS, random_state=None):
        self.sizes = sizes
        self.n_queries = n_queries
        self.n_permutations = n_permutations
        self.fit_range = fit_range
        self.n_bootstrap = n_bootstrap
        self.calibration = calibration
        self.random_state = random_state

    def fit(self, X, y=None):
        """Estimate the intrinsic dimension of the rows of X (distinct points, >= 4).

        Returns
        -------
        self : RGSlope
        """
        self._check_parameters()
        # Our own named errors first: validate_data's name the class but not 'X'.
        check_sample_matrix(X, name="X", caller="RGSlope", min_samples=4)
        X = validate_data(self, X, ensure_min_samples=4, dtype=[np.float64, np.float32])
        total = X.shape[0]
        n_q = (int(self.n_queries) if isinstance(self.n_queries, Integral)
               else int(round(self.n_queries * total)))
        if not 1 <= n_q <= total - 2:
            raise ValueError(f"The 'n_queries' parameter of RGSlope must leave at least 2 "
                             f"training points, i.e. give between 1 and {total - 2} queries. "
                             f"Got {self.n_queries!r} ({n_q} queries) instead.")
        rng = check_random_state(self.random_state)
        order = rng.permutation(total)
        queries, pool = X[order[:n_q]], X[order[n_q:]]
        sizes = _check_sizes(self.sizes, pool.shape[0], "RGSlope")
        lo, hi = (tuple(self.fit_range) + (None, None))[:2]
        mask = None
        if (len(self.fit_range) == 2 and all(isinstance(v, Real) for v in (lo, hi))
                and 0 <= lo < hi <= 1):
            mask = ((sizes >= np.quantile(sizes, lo)) & (sizes <= np.quantile(sizes, hi)))
        if mask is None or mask.sum() < 2:
            raise ValueError(f"The 'fit_range' parameter of RGSlope must be two quantiles "
                             f"0 <= lo < hi <= 1 keeping at least 2 of the sizes "
                             f"{sizes.tolist()}. Got {self.fit_range!r} instead.")
        try:
            per_query = np.stack([
                representation_gap(pool[rng.permutation(pool.shape[0])], queries, sizes=sizes,
                                   return_per_query=True).per_query
                for _ in range(self.n_permutations)])                       # (P, Q, K)
        except ValueError as error:
            # A query equal to a pool point (a duplicate row of X split across the two) has
            # RG = 0 and log RG = -inf: representation_gap refuses it, in its own name.
            if "must share no point with train" not in str(error):
                raise
            raise ValueError(f"The 'X' parameter of RGSlope must hold distinct points (a query "
                             f"equal to a training point has zero gap). Got duplicate rows split "
                             f"between the {n_q} queries and the training pool instead.") from error
        log_n = np.log(sizes[mask])

        def slopes(gaps):                                                   # (P, K) -> (P, 2)
            return np.array([np.polyfit(log_n, np.log(g[mask]), 1) for g in gaps])

        fits = slopes(per_query.mean(1))
        # OLS is linear in y: the slope of the mean log curve is the mean of the slopes.
        self.slope_, self.intercept_ = (float(v) for v in fits.mean(0))
        self.dimensions_ = -2 / fits[:, 0]
        self.raw_dimension_ = float(-2 / self.slope_)
        boot = []
        for _ in range(self.n_bootstrap):
            p = rng.randint(self.n_permutations, size=self.n_permutations)
            qi = rng.randint(n_q, size=n_q)
            boot.append(-2 / slopes(per_query[p][:, qi].mean(1))[:, 0].mean())
        self.raw_confidence_interval_ = (np.percentile(boot, [2.5, 97.5]) if boot
                                         else np.full(2, np.nan))
        self.curve_ = RGCurve(sizes=sizes, gap=per_query.mean(1).mean(0))
        self.calibration_ = {}
        if not self.calibration:
            self.dimension_ = self.raw_dimension_
            self.confidence_interval_ = self.raw_confidence_interval_.copy()
            return self
        setting = _RawSetting(total=total, n_queries=n_q, sizes=tuple(int(v) for v in sizes),
                              fit_range=(float(lo), float(hi)),
                              n_permutations=int(self.n_permutations))
        maps = [_Calibration(law, setting, cap=X.shape[1]) for law in self.calibration]
        self.dimension_ = float(np.mean([m.invert(self.raw_dimension_) for m in maps]))
        widen = math.sqrt(1 + 1 / _REFERENCE_DRAWS)
        low, high = self.raw_dimension_ + widen * (self.raw_confidence_interval_
                                                   - self.raw_dimension_)
        self.confidence_interval_ = np.array([min(m.invert(low) for m in maps),
                                              max(m.invert(high) for m in maps)])
        self.calibration_ = {m.law: m.table() for m in maps}
        return self

    def _check_parameters(self):
        # lib._checks instead of scikit-learn's private _param_validation; sizes and the
        # values of n_queries and fit_range are checked against X in fit.
        caller = "RGSlope"
        if isinstance(self.n_queries, Integral) and not isinstance(self.n_queries, bool):
            check_int(self.n_queries, name="n_queries", caller=caller, low=1)
        else:
            check_real(self.n_queries, name="n_queries", caller=caller, low=0.0, high=1.0,
                       low_open=True, high_open=True)
        check_int(self.n_permutations, name="n_permutations", caller=caller, low=1)
        check_int(self.n_bootstrap, name="n_bootstrap", caller=caller, low=0)
        laws = self.calibration
        if laws is not None and (not isinstance(laws, (tuple, list))
                                 or not all(isinstance(law, str) and law in CALIBRATION_LAWS
                                            for law in laws)
                                 or len(set(laws)) != len(laws)):
            raise ValueError(f"The 'calibration' parameter of {caller} must be None or a tuple of "
                             f"distinct names among {CALIBRATION_LAWS}. Got {laws!r} instead.")
        if not isinstance(self.fit_range, (tuple, list)):
            raise TypeError(f"The 'fit_range' parameter of {caller} must be a tuple or list "
                            f"(lo, hi) of quantiles. Got {self.fit_range!r} instead.")
