r"""Reach of a sampled manifold from points and tangent spaces.

Aamari et al. (2019, Bernoulli 25(4A), arXiv:1705.04565), eq. (1):

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
from tqdm import tqdm

from lib._arrays import as_tensor
from lib._checks import check_finite, check_int, check_real, check_shape

__all__ = ["ReachResult", "local_reach"]


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
                progress: bool = False) -> ReachResult:
    """Local reach tau(x) at each query point against a set of candidate points.

    Parameters
    ----------
    queries : array of shape (Q, D)
        Points x at which the reach is wanted.
    tangents : array of shape (Q, D, d)
        Spanning vectors of T_x M at each query (need not be orthonormal).
    candidates : array of shape (M, D)
        Points y of the manifold. Candidates that coincide with the query up
        to rounding (distance below 64 machine epsilons of the point cloud's
        scale: the query itself, or a repeated point such as a pole of a
        spherical chart) are skipped.
    memory_budget : float, default=2**28
        Bytes for the (chunk, M, D) block of differences; does not change the answer.
    progress : bool, default=False
        Show a tqdm bar over query chunks.

    Returns
    -------
    ReachResult
        ``local`` (Q,) and ``witness`` (Q,), in the input's array type.

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
    caller = "local_reach"
    x, restore = as_tensor(queries)
    tan, _ = as_tensor(tangents)
    y, _ = as_tensor(candidates)
    check_shape(x.shape, (None, None), name="queries", caller=caller, describe="(Q, D)")
    q_count, ambient = x.shape
    check_shape(tan.shape, (q_count, ambient, None), name="tangents", caller=caller,
                describe=f"(Q, D, d) = ({q_count}, {ambient}, d)")
    check_shape(y.shape, (None, ambient), name="candidates", caller=caller,
                describe=f"(M, D) = (M, {ambient})")
    check_real(memory_budget, name="memory_budget", caller=caller, low=0, low_open=True)
    for name, value in (("queries", x), ("tangents", tan), ("candidates", y)):
        check_finite(value, name=name, caller=caller)
    tan, y = tan.to(device=x.device, dtype=x.dtype), y.to(device=x.device, dtype=x.dtype)

    basis, _ = torch.linalg.qr(tan)
    rank_ok = torch.linalg.matrix_rank(tan) == tan.shape[-1]
    if not bool(rank_ok.all()):
        bad = int((~rank_ok).sum())
        raise ValueError(f"The 'tangents' parameter of {caller} must have full rank d at every "
                         f"query. Got {bad} degenerate tangent spaces instead.")

    scale = torch.linalg.vector_norm(y, dim=-1).max().clamp_min(1.0)
    duplicate_sq = float(64 * torch.finfo(x.dtype).eps * scale) ** 2
    chunk = max(1, int(memory_budget // (y.shape[0] * ambient * x.element_size())))
    local = torch.empty(q_count, dtype=x.dtype, device=x.device)
    witness = torch.empty(q_count, dtype=torch.long, device=x.device)
    starts = range(0, q_count, chunk)
    for start in tqdm(starts, desc="reach", disable=not progress, leave=False):
        stop = min(start + chunk, q_count)
        diff = y[None, :, :] - x[start:stop, None, :]                 # (c, M, D)
        squared = (diff * diff).sum(-1)                               # |v|^2
        along = torch.einsum("cmD,cDk->cmk", diff, basis[start:stop])  # Q^T v
        normal_sq = (squared - (along * along).sum(-1)).clamp_min(0)
        ratio = squared / (2 * normal_sq.sqrt())
        # Tangential candidates (normal part 0) and the query itself never bound the reach.
        ratio = torch.where((normal_sq > 0) & (squared > duplicate_sq), ratio, torch.inf)
        local[start:stop], witness[start:stop] = ratio.min(dim=1)
    return ReachResult(local=restore(local), witness=restore(witness))
