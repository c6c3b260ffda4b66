r"""Reach of a sampled manifold from points and tangent spaces.

Aamari et al. (2019, Electron. J. Statist. 13(1), arXiv:1705.04565), eq. (1):

.. math::
    \tau(x) = \inf_{y \neq x} \frac{|y - x|^2}{2\, d(y - x, T_x M)},
    \qquad \tau_M = \inf_x \tau(x),

where d(v, T) is the length of the normal part of v. With an orthonormal
tangent basis Q (D, d) the normal part has squared length
:math:`|v|^2 - |Q^\top v|^2`, so every query costs O(N D d) and the whole
field O(N^2 D d) with no D x D projector.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lib._arrays import as_tensor
from lib._progress import progress_bar
from lib._checks import (REAL_DTYPES, check_finite, check_float_dtype, check_grid_field, check_int,
                         check_real, check_shape)
from lib.geometry.differences import gradient
from lib.grid import Grid, accepts_sampled

__all__ = ["ReachResult", "EXPLICIT_MAX_DIM", "local_reach", "grid_reach"]

#: Ambient dimensions up to which the normal part of ``v = y - x`` is measured in a basis of
#: the normal space (no cancellation for any candidate); above it, as ``|v|^2 - |Q^T v|^2``
#: from Gram matrices, with the ``exact_neighbours`` nearest recomputed explicitly.
EXPLICIT_MAX_DIM = 32


@dataclass(frozen=True)
class ReachResult:
    """Local reach at the queries and the candidate that attains it.

    Attributes
    ----------
    local : array of shape (Q,)
        tau(x) at each query.
    witness : array of shape (Q,)
        Index into ``candidates`` of the minimising y.
    """

    local: object
    witness: object

    @property
    def reach(self) -> float:
        """Global reach, min over the queries of the local reach."""
        return float(self.local.min())


def local_reach(queries, tangents, candidates, *, memory_budget: float = 2**28,
                exact_neighbours: int = 16, progress: bool = False) -> ReachResult:
    """Local reach tau(x) at each query point against a set of candidate points.

    Parameters
    ----------
    queries : array of shape (Q, D)
        Points x at which the reach is wanted; float32 or float64 (the
        tangents and candidates are cast to this dtype).
    tangents : array of shape (Q, D, d)
        Spanning vectors of T_x M at each query (need not be orthonormal).
    candidates : array of shape (M, D)
        Points y of the manifold. Candidates that coincide with the query up
        to rounding (closer than about 5e-7 times the point cloud's radius, or
        64 machine epsilons of the input dtype: the query itself, or a repeated
        point such as a pole of a spherical chart) are skipped.
    memory_budget : float, default=2**28
        Bytes for the (chunk, M, d + 4) float64 blocks of one batch of queries; does not
        change the answer beyond rounding.
    exact_neighbours : int, default=16
        In an ambient dimension above :data:`EXPLICIT_MAX_DIM`, ratios come
        from Gram matrices, and for this many nearest candidates of each query
        the ratio is recomputed from explicit differences y - x and the
        residual y - x - Q Q^T (y - x), since the Gram-matrix route loses about
        ``eps |x|^2 / d(y - x, T)^2`` of relative accuracy, which matters most
        for the nearest candidates. Up to :data:`EXPLICIT_MAX_DIM` the normal
        part is measured in a basis of the normal space instead, which loses
        nothing for any candidate and costs less there.
    progress : bool, default=False
        Show a tqdm bar over query chunks.

    Returns
    -------
    ReachResult
        ``local`` (Q,) and ``witness`` (Q,), in the input's array type.

    Raises
    ------
    TypeError
        If ``queries`` is not float32 or float64 (float16 has no QR or rank
        kernels), or ``tangents`` or ``candidates`` are complex, before any work.
    ValueError
        On a shape mismatch, no candidates, non-finite input or a rank-deficient
        tangent space.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    >>> circle = 3.0 * np.stack([np.cos(t), np.sin(t)], axis=1)
    >>> tangents = np.stack([-np.sin(t), np.cos(t)], axis=1)[:, :, None]
    >>> result = local_reach(circle, tangents, circle)
    >>> round(result.reach, 6)
    3.0
    """
    return _local_reach(queries, tangents, candidates, memory_budget=memory_budget,
                        exact_neighbours=exact_neighbours, progress=progress, caller="local_reach")


def _local_reach(queries, tangents, candidates, *, memory_budget, exact_neighbours, progress,
                 caller, degenerate_name=None):
    """:func:`local_reach`, with errors naming ``caller``.

    ``degenerate_name``, if given, is the caller's parameter that a rank-deficient
    tangent space is blamed on (``grid_reach`` derives the tangents from its values).
    """
    x, restore = as_tensor(queries)
    tan, _ = as_tensor(tangents)
    y, _ = as_tensor(candidates)
    check_shape(x.shape, (None, None), name="queries", caller=caller, describe="(Q, D)")
    check_float_dtype(x, name="queries", caller=caller)
    q_count, ambient = x.shape
    check_shape(tan.shape, (q_count, ambient, None), name="tangents", caller=caller,
                describe=f"(Q, D, d) = ({q_count}, {ambient}, d)")
    check_shape(y.shape, (None, ambient), name="candidates", caller=caller,
                describe=f"(M, D) = (M, {ambient})")
    if y.shape[0] == 0:
        raise ValueError(f"The 'candidates' parameter of {caller} must hold at least one point. "
                         f"Got shape {tuple(y.shape)} instead.")
    # Cast to the queries' dtype below: complex values would lose their imaginary part.
    check_float_dtype(tan, name="tangents", caller=caller, allowed=REAL_DTYPES)
    check_float_dtype(y, name="candidates", caller=caller, allowed=REAL_DTYPES)
    check_real(memory_budget, name="memory_budget", caller=caller, low=0, low_open=True)
    check_int(exact_neighbours, name="exact_neighbours", caller=caller, low=1)
    for name, value in (("queries", x), ("tangents", tan), ("candidates", y)):
        check_finite(value, name=name, caller=caller)
    tan, y = tan.to(device=x.device, dtype=x.dtype), y.to(device=x.device, dtype=x.dtype)

    # Orthonormalise in float64: a float32 basis is orthonormal only to ~1e-7, which the
    # subtraction |v|^2 - |Q^T v|^2 turns into large errors for near candidates.
    basis, _ = torch.linalg.qr(tan.to(torch.float64))
    rank_ok = torch.linalg.matrix_rank(tan) == tan.shape[-1]
    if not bool(rank_ok.all()):
        bad = int((~rank_ok).sum())
        if degenerate_name is not None:
            raise ValueError(f"The {degenerate_name!r} parameter of {caller} must give tangents "
                             f"of full rank d at every query. Got {bad} degenerate tangent "
                             f"spaces (points that do not move along a chart axis) instead.")
        raise ValueError(f"The 'tangents' parameter of {caller} must have full rank d at every "
                         f"query. Got {bad} degenerate tangent spaces instead.")

    # Work in float64 on centred data: |y - x|^2 and its normal part come from Gram
    # matrices (BLAS matmuls, cost Q M D (d + 1)), and centring keeps their cancellation
    # at the level of |y - x|, not |x|.
    centre = y.mean(dim=0)
    xc = (x - centre).to(torch.float64)
    yc = (y - centre).to(torch.float64)
    qc = basis
    x_sq, y_sq = (xc * xc).sum(-1), (yc * yc).sum(-1)
    scale = torch.sqrt(y_sq.max()).clamp_min(1.0)
    # Coincident points: equal up to the input's rounding, or within the Gram matrices'
    # own rounding (about eps64 * scale^2 on a squared distance).
    duplicate_sq = max(float(64 * torch.finfo(x.dtype).eps * scale) ** 2,
                       float(1e3 * torch.finfo(torch.float64).eps * scale**2))
    k = tan.shape[-1]
    # In a low ambient dimension the normal part is measured in a basis of the normal
    # space, |N^T (y - x)|, which does not cancel (|v|^2 - |Q^T v|^2 loses the normal
    # part of near candidates to rounding) and costs M (D - k) more per query, less than
    # the Gram route's M D k.
    normals = (torch.linalg.qr(tan.to(torch.float64), mode="complete")[0][:, :, k:]
               if ambient <= EXPLICIT_MAX_DIM else None)                 # (Q, D, D - k)
    width = ambient - k if normals is not None else k
    bytes_per_query = (y.shape[0] * (width + 4) + exact_neighbours * (ambient + k + 3)) * 8
    chunk = max(1, int(memory_budget // bytes_per_query))
    local = torch.empty(q_count, dtype=torch.float64, device=x.device)
    witness = torch.empty(q_count, dtype=torch.long, device=x.device)
    starts = range(0, q_count, chunk)
    for start in progress_bar(starts, desc="reach", show=progress, leave=False):
        stop = min(start + chunk, q_count)
        q = qc[start:stop]                                                  # (c, D, k)
        squared = torch.addmm(x_sq[start:stop, None] + y_sq[None], xc[start:stop], yc.T,
                              alpha=-2).clamp_min_(0)                       # |y - x|^2
        if normals is None:
            # Q^T (y - x) as (c, k, M): contiguous along M, so the reductions below stream.
            along = torch.matmul(q.transpose(1, 2), yc.T)
            along -= torch.einsum("cDk,cD->ck", q, xc[start:stop])[:, :, None]
            normal_sq = (squared - along.square_().sum(1)).clamp_min_(0)
        else:
            n = normals[start:stop]                                         # (c, D, D - k)
            across = torch.matmul(n.transpose(1, 2), yc.T)
            across -= torch.einsum("cDj,cD->cj", n, xc[start:stop])[:, :, None]
            normal_sq = across.square_().sum(1)                             # |N^T (y - x)|^2
        ratio = squared / normal_sq.sqrt_().mul_(2)
        # Tangential candidates (normal part 0) and the query itself never bound the reach.
        ratio.masked_fill_((normal_sq == 0) | (squared <= duplicate_sq), torch.inf)
        # The Gram route cancels badly for the nearest candidates, whose normal part is tiny:
        # recompute those few from explicit differences (cost c * near * D).
        near = torch.topk(squared, min(exact_neighbours, squared.shape[1]), dim=1,
                          largest=False).indices                           # (c, near)
        near_ratio = _explicit_ratios(yc[near] - xc[start:stop, None], q, duplicate_sq)
        ratio.scatter_(1, near, near_ratio)
        local[start:stop], witness[start:stop] = ratio.min(dim=1)
    local = local.to(x.dtype)
    return ReachResult(local=restore(local), witness=restore(witness))


def _explicit_ratios(diff, basis, duplicate_sq):
    """|v|^2 / (2 |v - Q Q^T v|) for differences ``diff`` (c, n, D) and bases (c, D, k).

    The normal part as an explicit residual, not as |v|^2 - |Q^T v|^2, which
    cancels for candidates nearly in the tangent space. Tangential candidates
    (normal part 0) and coincident points (|v|^2 <= ``duplicate_sq``) get inf.
    """
    squared = (diff * diff).sum(-1)
    along = torch.einsum("cnD,cDk->cnk", diff, basis)
    residual = diff - torch.einsum("cnk,cDk->cnD", along, basis)
    normal = (residual * residual).sum(-1)
    return torch.where((normal > 0) & (squared > duplicate_sq),
                       squared / (2 * normal.sqrt()), torch.inf)


@accepts_sampled
def grid_reach(values, grid: Grid, *, order: int = 2, stride: int = 1,
               memory_budget: float = 2**28, progress: bool = False) -> ReachResult:
    """Local reach of a manifold sampled on a grid, with finite-difference tangents.

    Tangents come from central differences on the full grid; queries are the
    points of ``grid.interior(order // 2)`` and candidates all grid points, both
    taking every ``stride``-th sample per axis (the paper uses stride 2). The
    tangents are computed at the queries only, so memory grows with the
    strided grid, not the full one.

    Parameters
    ----------
    values : array of shape (*grid.shape, D)
        float32 or float64; other dtypes raise a TypeError before any work.
    grid : Grid
    order : {2, 4}, default=2
    stride : int, default=1
    memory_budget, progress
        As in :func:`local_reach`.

    Returns
    -------
    ReachResult
        ``local`` of shape ``grid.interior(order // 2).shape`` subsampled by
        ``stride``; ``witness`` indexes the flattened strided candidates.

    Examples
    --------
    >>> from lib.datasets.toy import Torus
    >>> torus = Torus(R=1.0, r=0.6)
    >>> grid = torus.grid(48)
    >>> round(grid_reach(torus.points(grid), grid, order=4).reach, 2)
    0.4
    """
    caller = "grid_reach"
    check_int(stride, name="stride", caller=caller, low=1)
    x, restore = as_tensor(values)
    check_grid_field(x, grid, order=order, caller=caller, trailing=(None,))
    check_float_dtype(x, name="values", caller=caller)
    # Tangents at the strided queries only: the full grid's (D x k per point) need not fit.
    tangents = gradient(x, grid, order=order, stride=stride)      # (*G'/stride, D, k)
    depth = order // 2
    inner = x[grid.interior_index(depth)]
    step = (slice(None, None, stride),) * grid.ndim
    queries = inner[step]
    shape = queries.shape[:-1]
    # Candidates on the same stride lattice as the queries, so every query is a candidate.
    lattice = tuple(slice(0 if axis.periodic else depth % stride, None, stride)
                    for axis in grid.axes)
    candidates = x[lattice].reshape(-1, x.shape[-1])
    result = _local_reach(queries.reshape(-1, x.shape[-1]),
                          tangents.reshape(-1, *tangents.shape[-2:]), candidates,
                          memory_budget=memory_budget, exact_neighbours=16, progress=progress,
                          caller=caller, degenerate_name="values")
    return ReachResult(local=restore(result.local.reshape(shape)),
                       witness=restore(result.witness.reshape(shape)))
