r"""Batched non-negative quadratic programs: the per-node problem of NNK graphs.

For every node the problem is

.. math::

    \theta^\star = \arg\min_{\theta \ge 0} \tfrac12\,\theta^\top A\,\theta - b^\top\theta,
    \qquad A = K_{SS} \ (k \times k,\ \text{PSD}),\quad b = K_{Si},

whose KKT conditions, with :math:`g = A\theta - b`, are :math:`\theta \ge 0`,
:math:`g \ge 0`, :math:`\theta_j g_j = 0`. We report the residual of a
solution as

.. math::

    r = \max\Big(\max_{\theta_j > 0} |g_j|,\ \max_{\theta_j = 0} \max(0, -g_j)\Big),

the stationarity error on the support and the dual infeasibility off it (the
solvers return exact zeros off the support).

``solve_exact``: Lawson and Hanson's active-set method (1974, ch. 23), run in
lockstep over a batch of nodes in torch. The working set grows by the most
violated candidate, one per step; when the new equality solution leaves the
orthant, the step is cut at the first blocking weight, which leaves the set,
as in the book's inner loop. The inverse of :math:`A_{PP}` is kept in compact
slots and updated by rank-one bordering (add) and Schur-complement deletion
(remove), so a step costs :math:`O(k\,p)` per node instead of a factorization,
and finished nodes leave the batch as it goes. At the end one Cholesky solve on
each support removes the rounding the updates accumulated (kept where it lowers
the residual), and every node carries its KKT certificate: nodes above the
tolerance are reported, and the caller re-solves them with
:func:`fallback_nnls` (scipy's NNLS on a factor of the problem).

Cost: a node takes about (support size + 2 x removals) steps. Measured on 2
cores (2026-11-23, k = 50, kernel blocks included): ~60 us per node when
supports hold ~15 candidates, ~180 us when they hold 45 of 50; a per-node
Python loop of the reference heuristic takes ~180 us either way, so on a CPU
the batch gains 1x to 3x, and on one H100 10x to 60x (``benchmarks/nnk.py``). Continuing
Lawson-Hanson from the reference's pruning was tried in 2026-11 and cost more than
it saved. What pays (``start="pruned"``, 2026-12-07) is the pruning alone, batched
and certified, with Lawson-Hanson from scratch only for the rows it does not
certify or whose first solve shows a small support ahead.

``solve_reference``: the pruning heuristic of the reference NNK code (one node
at a time, LAPACK ``potrf``/``potrs``), reproduced for comparison: see the
function for its quirks. It is not guaranteed to reach the optimum.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import lapack
from scipy.optimize import nnls

from lib._checks import check_finite, check_float_dtype, check_in, check_real, check_shape

__all__ = ["solve_exact", "solve_factor", "solve_reference", "kkt_residual", "fallback_nnls",
           "objective", "factor_error"]

# A Schur complement below this (the kernel diagonal is 1) means the new candidate is, to
# ~6 digits, a combination of the working set: the rank-one inverse update would lose the
# answer, so the node goes to the fallback.
_SCHUR_MIN = 1e-12
# The final polish trusts a Cholesky factor only if every pivot^2 exceeds this.
_PIVOT_MIN = 1e-10
# Compact working sets start this wide and widen by as much on demand (never beyond k).
_GROW = 4


def objective(theta, A, b):
    """Per-node objective 1/2 theta' A theta - b' theta, shape (B,).

    ``theta`` (B, k), ``A`` (B, k, k) and ``b`` (B, k): finite float32/float64
    tensors of one dtype and device, k >= 1; anything else is refused by name.
    """
    _check_batch(theta, A, b, "objective")
    return _objective(theta, A, b)


def kkt_residual(theta, A, b):
    """KKT residual of each row of ``theta`` (B, k): see the module docstring.

    Inputs as for :func:`objective`. A negative weight makes the residual infinite.
    """
    _check_batch(theta, A, b, "kkt_residual")
    return _kkt_residual(theta, A, b)


def _objective(theta, A, b):
    # Unchecked: the solvers call it on rows that may be NaN on purpose (a failed polish).
    return 0.5 * torch.einsum("nj,njl,nl->n", theta, A, theta) - torch.einsum("nj,nj->n", b, theta)


def _kkt_residual(theta, A, b):
    # Unchecked, for the same reason; a NaN row gives NaN, which compares False with tol.
    return _residual(theta, torch.einsum("njl,nl->nj", A, theta) - b)


def _residual(theta, g):
    """KKT residual of each row from its gradient g (module docstring); inf where theta < 0."""
    r = torch.where(theta > 0, g.abs(), (-g).clamp_min(0))
    return torch.where(theta < 0, torch.inf, r).amax(1)


def _masked_system(A, inside):
    """A with the rows and columns outside ``inside`` (B, k) replaced by the identity's."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    return torch.where(inside.unsqueeze(2) & inside.unsqueeze(1), A, eye)


def _check_batch(theta, A, b, caller):
    """The errors of :func:`objective` and :func:`kkt_residual`, before any work."""
    for name, value in (("theta", theta), ("A", A), ("b", b)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"The {name!r} parameter of {caller} must be a torch tensor. "
                            f"Got {type(value).__name__} instead.")
        check_float_dtype(value, name=name, caller=caller)
    check_shape(theta.shape, (None, None), name="theta", caller=caller, describe="(B, k)")
    count, k = theta.shape
    if k < 1:
        raise ValueError(f"The 'theta' parameter of {caller} must have k >= 1 columns. "
                         f"Got shape {tuple(theta.shape)} instead.")
    check_shape(A.shape, (count, k, k), name="A", caller=caller,
                describe=f"(B, k, k) = ({count}, {k}, {k}), B and k as in 'theta'")
    check_shape(b.shape, (count, k), name="b", caller=caller,
                describe=f"(B, k) = ({count}, {k}), B and k as in 'theta'")
    for name, value in (("A", A), ("b", b)):
        if value.dtype != theta.dtype or value.device != theta.device:
            raise TypeError(f"The {name!r} parameter of {caller} must have the dtype and device "
                            f"of 'theta' ({theta.dtype}, {theta.device}). Got {value.dtype}, "
                            f"{value.device} instead.")
    for name, value in (("theta", theta), ("A", A), ("b", b)):
        check_finite(value, name=name, caller=caller)


def solve_exact(A, b, *, tol: float, start: str = "empty"):
    """Exact minimizers of 1/2 theta' A theta - b' theta over theta >= 0, batched.

    Parameters
    ----------
    A : tensor of shape (B, k, k)
        Symmetric positive semi-definite matrices with unit diagonal (kernels).
    b : tensor of shape (B, k)
    tol : float in (0, inf)
        Certificate tolerance: rows whose KKT residual exceeds it are reported
        as unsolved.
    start : {"empty", "pruned"}, default="empty"
        ``"empty"``: Lawson-Hanson from theta = 0 for every row. ``"pruned"``:
        first the reference heuristic's pruning, batched (a Cholesky solve on
        the candidates still in, every non-positive weight dropped, until
        none is), kept for the rows whose KKT residual it certifies; the
        others, and those whose first solve keeps under 60 % of the weights
        (a small support ahead), then run Lawson-Hanson. The answer is
        certified either way. The pruning pays where supports are large: with
        the Gaussian kernel on the ReLU features of ``benchmarks/nnk.py`` (40
        of 50 candidates kept) it certified 99 % of the nodes after about five
        solves, and the graphs took 1.3-1.5x less time; where supports hold a
        few candidates the heuristic mostly misses and the first solve costs
        up to 1.4x (a helix and a surface patch in R^3).

    Returns
    -------
    theta : tensor of shape (B, k)
        Weights, exact zeros off the support.
    residual : tensor of shape (B,)
        KKT residual of each row.
    unsolved : tensor of shape (B,), bool
        Rows the batched method could not certify; the caller must re-solve
        them with :func:`fallback_nnls` (which needs the factor it knows best).

    Raises
    ------
    TypeError
        If ``A`` or ``b`` is not a float32/float64 tensor.
    ValueError
        If the shapes do not match, (B, k, k) and (B, k), or ``A`` or ``b``
        holds NaN or infinity (a NaN row would come back NaN, marked solved:
        NaN compares False with ``tol``).
    """
    _check_problem(A, b, tol)
    check_in(start, ("empty", "pruned"), name="start", caller="solve_exact")
    if start == "pruned":
        theta, residual = _pruned(A, b)
        rest = ~(residual <= tol)
        if bool(rest.any()):
            theta[rest], residual[rest], _ = _from_empty(A[rest], b[rest], tol)
        return theta, residual, ~(residual <= tol)
    return _from_empty(A, b, tol)


def _from_empty(A, b, tol):
    """:func:`solve_exact` from theta = 0 on checked input: Lawson-Hanson, then the polish."""
    theta = _lawson_hanson(A, b, add_tol=0.1 * tol)
    # The inverse updates accumulate rounding along the path; one fresh Cholesky solve on
    # each final support removes it (residual ~1e-16 instead of ~1e-14), where it is valid.
    polished = _polish(A, b, theta > 0)
    residual, after = _kkt_residual(theta, A, b), _kkt_residual(polished, A, b)
    better = after <= residual                                # NaN (invalid polish) is False
    theta = torch.where(better.unsqueeze(1), polished, theta)
    residual = torch.where(better, after, residual)
    return theta, residual, residual > tol


def _check_problem(A, b, tol):
    """The errors of :func:`solve_exact`, before any work."""
    caller = "solve_exact"
    for name, value in (("A", A), ("b", b)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"The {name!r} parameter of {caller} must be a torch tensor. "
                            f"Got {type(value).__name__} instead.")
        check_float_dtype(value, name=name, caller=caller)
    check_shape(A.shape, (None, None, None), name="A", caller=caller, describe="(B, k, k)")
    count, k = A.shape[0], A.shape[1]
    check_shape(A.shape, (count, k, k), name="A", caller=caller,
                describe=f"(B, k, k) = ({count}, {k}, {k}), square")
    check_shape(b.shape, (count, k), name="b", caller=caller,
                describe=f"(B, k) = ({count}, {k}), B and k as in 'A'")
    if b.dtype != A.dtype or b.device != A.device:
        raise TypeError(f"The 'b' parameter of {caller} must have the dtype and device of 'A' "
                        f"({A.dtype}, {A.device}). Got {b.dtype}, {b.device} instead.")
    check_finite(A, name="A", caller=caller)
    check_finite(b, name="b", caller=caller)
    check_real(tol, name="tol", caller=caller, low=0.0, high=float("inf"), low_open=True,
               high_open=True)


def _pruned(A, b, *, rounds: int = 30):
    """The reference heuristic's pruning for every row at once; (theta, KKT residual).

    Start from the candidates with b_j > 0, solve A_PP theta_P = b_P by Cholesky, drop
    every weight <= 0, repeat on the rows that dropped one. Rows whose factorization
    fails, whose first solve keeps under 60 % of the weights, or that still change after
    ``rounds`` come back with an infinite residual.
    """
    count = b.shape[0]
    active = b > 0
    theta = torch.zeros_like(b)
    failed = torch.zeros(count, dtype=torch.bool, device=b.device)
    todo = torch.arange(count, device=b.device)
    for round_ in range(rounds):
        inside = active[todo]
        factor, info = torch.linalg.cholesky_ex(_masked_system(A[todo], inside))
        solved = torch.cholesky_solve((b[todo] * inside).unsqueeze(2), factor).squeeze(2)
        solved = solved * inside
        keep = inside & (solved > 0)
        theta[todo] = solved
        active[todo] = keep
        failed[todo] = info != 0
        if round_ == 0:
            # A small support ahead (fewer than 60 % of the first weights positive) takes many
            # rounds and the heuristic then mostly misses it: those rows go to Lawson-Hanson.
            # Measured first-round shares: 64-100 % where the support holds 40 of 50 (the
            # Gaussian ReLU features), 46-56 % where it holds 2-4 (curves and surfaces).
            failed[todo] |= keep.sum(1) < 0.6 * inside.sum(1)
        changed = (keep != inside).any(1) & ~failed[todo]
        todo = todo[changed]
        if not todo.numel():
            break
    failed[todo] = True
    theta = theta * active
    residual = _kkt_residual(theta, A, b)
    return theta, torch.where(failed, torch.inf, residual)


def _polish(A, b, support):
    """Re-solve A_PP theta_P = b_P by Cholesky on each support, packed into leading slots.

    Rows come back NaN where the result cannot be trusted: the factorization failed, a
    pivot^2 fell below 1e-10 (with a unit diagonal: a candidate almost in the span of
    the others), or a weight came out <= 0.
    """
    count, k = b.shape
    width = max(1, int(support.sum(1).max()))
    if width > 0.75 * k:
        # Packing a nearly full support saves little factorization and costs a gather.
        order, valid, sub, width = torch.arange(k, device=b.device).expand(count, k), support, A, k
    else:
        order = torch.argsort((~support).to(torch.uint8), dim=1, stable=True)[:, :width]
        valid = support.gather(1, order)
        flat = (order.unsqueeze(2) * k + order.unsqueeze(1)).reshape(count, width * width)
        sub = A.reshape(count, k * k).gather(1, flat).reshape(count, width, width)
    factor, info = torch.linalg.cholesky_ex(_masked_system(sub, valid))
    rhs = (b.gather(1, order) * valid).unsqueeze(2)
    half = torch.linalg.solve_triangular(factor, rhs, upper=False)
    solved = torch.linalg.solve_triangular(factor.mT, half, upper=True).squeeze(2) * valid
    pivots = torch.diagonal(factor, dim1=1, dim2=2)
    trusted = (info == 0) & (pivots.square().amin(1) > _PIVOT_MIN)
    theta = torch.zeros_like(b).scatter_add_(1, order, solved)
    theta[~trusted | ((solved <= 0) & valid).any(1)] = torch.nan
    return theta


def _lawson_hanson(A, b, *, add_tol):
    """Batched Lawson-Hanson from theta = 0; returns theta (B, k)."""
    count, k = b.shape
    dtype, device = b.dtype, b.device
    theta = torch.zeros(count, k, dtype=dtype, device=device)
    flat = A.reshape(count * k, k)
    # Continuing from a pruned set was tried and cost more than it saved; solve_exact's
    # start="pruned" certifies the pruning alone and sends the rest here from scratch.
    p = min(k, _GROW)
    H = torch.zeros(count, p, p, dtype=dtype, device=device)    # inverse of A_PP, in slots
    AP = torch.zeros(count, p, k, dtype=dtype, device=device)   # rows A[P, :], in slots
    cand = torch.zeros(count, p, dtype=torch.long, device=device)
    th = torch.zeros(count, p, dtype=dtype, device=device)
    used = torch.zeros(count, p, dtype=torch.bool, device=device)
    in_set = torch.zeros(count, k, dtype=torch.bool, device=device)
    live = torch.ones(count, dtype=torch.bool, device=device)
    # Working rows; the tensors below are compacted together (`rows` maps back to the block).
    # The working set of a row is the slots marked `used` (a dropped weight leaves a hole
    # that the next addition fills); unused slots hold zeros in H, AP, cand and th.
    rows = torch.arange(count, device=device)
    bw, diag = b.clone(), torch.diagonal(A, dim1=1, dim2=2).clone()

    def finish(which):
        """Write out the rows `which` (their current theta); they stop counting as live.

        Rows given up on (numerically dependent candidate, cycling) are written out as
        they stand: the certificate in `solve_exact` decides what happens to them.
        """
        out = torch.zeros(int(which.sum()), k, dtype=dtype, device=device)
        theta[rows[which]] = out.scatter_add_(1, cand[which], th[which] * used[which])
        return live & ~which

    for _ in range(3 * k + 50):        # Lawson-Hanson takes about support + 2 x removals steps
        # (1, p) x (p, k) products: MKL's batched kernels run these several times faster
        # than (k, p) x (p, 1) on this data.
        w = bw - torch.bmm(th.unsqueeze(1), AP).squeeze(1)
        w.masked_fill_(in_set, -torch.inf)
        w_max, j = w.max(1)
        done = live & (w_max <= add_tol)
        if bool(done.any()):
            live = finish(done)
        n_live = int(live.sum())
        if n_live == 0:
            break
        if n_live < 0.75 * rows.numel():
            keep = live.nonzero()[:, 0]
            rows, bw, diag, H, AP, cand, th, used, in_set, w_max, j = (
                t[keep] for t in (rows, bw, diag, H, AP, cand, th, used, in_set, w_max, j))
            live = live[keep]
        n = rows.numel()
        if bool((live & used.all(1)).any()):
            # Slots widen a few at a time: a step costs O(k p) per row, so the width should
            # track the largest working set, not overshoot it.
            grow = min(k, p + _GROW) - p
            H = torch.nn.functional.pad(H, (0, grow, 0, grow))
            AP = torch.nn.functional.pad(AP, (0, 0, 0, grow))
            cand, th, used = (torch.nn.functional.pad(t, (0, grow)) for t in (cand, th, used))
            p += grow
        # Rows that are not live (finished, awaiting compaction) go through the same
        # arithmetic; their results are already written out, so it is harmless.
        slot = (~used).to(torch.uint8).argmax(1, keepdim=True)
        j1 = j.unsqueeze(1)
        a = AP.gather(2, j1.unsqueeze(1).expand(n, p, 1)).squeeze(2)       # A[P, j] in slots
        u = (H * a.unsqueeze(1)).sum(2)
        schur = diag.gather(1, j1).squeeze(1) - (a * u).sum(1)
        broken = live & (schur <= _SCHUR_MIN)
        if bool(broken.any()):
            live = finish(broken)
        # Bordering: inv([[A_PP, a], [a', c]]) = [[H, 0], [0, 0]] + v v' / s with v = [u; -1],
        # and the new equality solution is theta - v w_j / s (w_j = b_j - a' theta).
        v = u.scatter_(1, slot, torch.full_like(w_max, -1.0).unsqueeze(1))
        scaled = v / torch.where(live, schur, 1.0).unsqueeze(1)
        H.addcmul_(v.unsqueeze(2), scaled.unsqueeze(1))
        z = th - scaled * torch.where(live, w_max, 0.0).unsqueeze(1)
        row_j = flat.index_select(0, rows * k + j).unsqueeze(1)            # A[j, :]
        AP.scatter_(1, slot.unsqueeze(2).expand(n, 1, k), row_j)
        cand.scatter_(1, slot, j1)
        in_set.scatter_(1, j1, True)
        used.scatter_(1, slot, True)
        blocked = live & ((z <= 0) & used).any(1)
        if bool(blocked.any()):
            r = blocked.nonzero()[:, 0]
            H_r, AP_r, z_r, used_r, in_set_r, broke = _inner_loop(
                H[r], AP[r], cand[r], th[r], z[r], used[r], in_set[r], bw[r], slot[r])
            H[r], AP[r], z[r], used[r], in_set[r] = H_r, AP_r, z_r, used_r, in_set_r
            cand[r] = cand[r] * used_r
            if bool(broke.any()):
                gave_up = torch.zeros_like(live).index_put((r,), broke)
                z = torch.where(gave_up.unsqueeze(1), th, z)        # the last feasible point
                th = z
                live = finish(gave_up)
        th = z
    if bool(live.any()):
        finish(live)
    return theta


def _inner_loop(H, AP, cand, th, z, used, in_set, b, entering):
    """Lawson-Hanson inner loop on the rows whose new solution left the orthant.

    Repeatedly move from th towards z until a weight hits 0 and drop it, until z >= 0.
    Also returns the rows where the entering weight itself went negative: in exact
    arithmetic it cannot, and dropping it would cycle, so those go to the fallback.
    """
    n = th.shape[0]
    ar = torch.arange(n, device=th.device)
    broke = z.gather(1, entering).squeeze(1) <= 0
    negative = (z <= 0) & used & ~broke.unsqueeze(1)
    while bool(negative.any()):
        act = negative.any(1)
        # th = z = 0 gives 0, not 0/0: such a weight blocks at once.
        ratio = torch.where(negative, th / (th - z).clamp_min(1e-300), torch.inf)
        alpha, drop = ratio.min(1)
        alpha = torch.where(act, alpha, 0.0)
        th = (th + alpha.unsqueeze(1) * (z - th)).clamp_min(0)
        # Schur-complement deletion of slot `drop` from the inverse zeroes its row and column.
        pivot = torch.where(act, H[ar, drop, drop], 1.0)
        col = H[ar, :, drop] * act.unsqueeze(1)
        H = H - col.unsqueeze(2) * (H[ar, drop, :] / pivot.unsqueeze(1)).unsqueeze(1)
        ra, da = ar[act], drop[act]
        H[ra, da, :] = 0.0                # exact zeros: the next addition may reuse the slot
        H[ra, :, da] = 0.0
        in_set[ra, cand[ra, da]] = False
        used = used.index_put((ra, da), torch.zeros_like(ra, dtype=torch.bool))
        AP[ra, da, :] = 0.0
        th = th * used
        z_new = (H * (b.gather(1, cand) * used).unsqueeze(1)).sum(2)
        z = torch.where(act.unsqueeze(1), z_new, z)
        negative = (z <= 0) & used
    return H, AP, z, used, in_set, broke


def solve_factor(factor, target, *, tol: float):
    """Exact NNLS ``min |factor theta - target|`` over theta >= 0, batched, in factor form.

    The problems of :func:`solve_exact` when ``A = M' M`` and ``b = M' y`` are
    known through ``M`` (the cosine kernel's augmented unit vectors). Near
    duplicates make ``A`` as ill-conditioned as the square of ``M``, so the
    Gram form's updates and Cholesky polish fail on them (measured: 40-87 %
    of the nodes of cosine graphs of curves and surfaces in R^3, k = 10 and
    50); here every step solves the working set's least-squares problem by
    the SVD (LAPACK ``gelsd``) on ``M`` itself. Lawson and Hanson's outer
    loop adds the most violated candidate, the inner loop cuts the step at
    the first blocking weight. Meant for problems with few rows (``m`` =
    D + 1): every step costs an SVD of each (m, k) matrix.

    Parameters
    ----------
    factor : tensor of shape (B, m, k)
    target : tensor of shape (B, m)
    tol : float in (0, inf)
        Certificate tolerance on the KKT residual of ``A = M' M``, ``b = M' y``
        (module docstring), evaluated in factor form as ``M' (M theta - y)``.

    Returns
    -------
    theta : tensor of shape (B, k)
        Weights, exact zeros off the support.
    residual : tensor of shape (B,)
        KKT residual of each row, in factor form.
    unsolved : tensor of shape (B,), bool
        Rows above ``tol`` (or whose entering weight came out non-positive, a
        step exact arithmetic never takes); the caller re-solves them with
        :func:`fallback_nnls`.

    Examples
    --------
    Two nearly parallel columns; the target is 2 c1 - c0, outside the cone, so
    the answer is the projection on c1 alone:

    >>> M = torch.tensor([[[1.0, 1.0], [0.0, 1e-4]]], dtype=torch.float64)
    >>> y = torch.tensor([[1.0, 2e-4]], dtype=torch.float64)
    >>> theta, residual, unsolved = solve_factor(M, y, tol=1e-10)
    >>> theta.round(decimals=6).tolist(), bool(unsolved[0])
    ([[0.0, 1.0]], False)
    """
    caller = "solve_factor"
    _check_factor(factor, target, caller)
    count, k = factor.shape[0], factor.shape[2]
    check_real(tol, name="tol", caller=caller, low=0.0, high=float("inf"), low_open=True,
               high_open=True)
    # The factor-form gradient is accurate to about eps |M_j|^2 |theta|: candidates are added
    # down to near rounding, so the optimum is reached as scipy's NNLS reaches it (stopping
    # at tol / 10 left objectives 1e-12 above it where the fit is nearly exact).
    column = float(factor.square().sum(1).amax()) if factor.shape[0] else 1.0
    add_tol = min(0.1 * tol, 64 * torch.finfo(factor.dtype).eps * max(column, 1.0))
    theta = torch.zeros(count, k, dtype=factor.dtype, device=factor.device)
    support = torch.zeros(count, k, dtype=torch.bool, device=factor.device)
    broke = torch.zeros(count, dtype=torch.bool, device=factor.device)
    live = torch.ones(count, dtype=torch.bool, device=factor.device)
    for _ in range(3 * k + 50):
        w = (-_factor_gradient(factor, target, theta)).masked_fill_(support, -torch.inf)
        w_max, entering = w.max(1)
        live &= w_max > add_tol
        if not bool(live.any()):
            break
        rows_now = live.nonzero()[:, 0]
        support[rows_now, entering[rows_now]] = True
        first = True
        while rows_now.numel():
            z = _support_lstsq(factor[rows_now], target[rows_now], support[rows_now])
            if first:
                # The entering weight is positive in exact arithmetic; if not, the node would
                # cycle: it stops here, and the certificate sends it to the fallback.
                bad = z.gather(1, entering[rows_now].unsqueeze(1)).squeeze(1) <= 0
                if bool(bad.any()):
                    gone = rows_now[bad]
                    support[gone, entering[gone]] = False
                    broke[gone], live[gone] = True, False
                    rows_now, z = rows_now[~bad], z[~bad]
                first = False
            blocked = ((z <= 0) & support[rows_now]).any(1)
            theta[rows_now[~blocked]] = z[~blocked]
            rows_now, z = rows_now[blocked], z[blocked]
            if not rows_now.numel():
                break
            th, inside = theta[rows_now], support[rows_now]
            negative = (z <= 0) & inside
            ratio = torch.where(negative, th / (th - z).clamp_min(1e-300), torch.inf)
            alpha = ratio.amin(1, keepdim=True)
            step = (th + alpha * (z - th)).clamp_min(0) * inside
            # The blocking weight (and any that reached 0 with it) leaves the working set.
            support[rows_now] = inside & (step > 0) & ~(negative & (ratio == alpha))
            theta[rows_now] = step * support[rows_now]
    residual = _factor_residual(factor, target, theta)
    return theta, residual, broke | ~(residual <= tol)


def factor_error(theta, factor, target):
    """Reconstruction error ``|factor theta - target|^2`` of each row, shape (B,).

    With ``A = M' M``, ``b = M' y`` and ``|y| = 1`` it is the NNK error
    ``1 - 2 b' theta + theta' A theta``, without the Gram form's cancellation.
    ``theta`` (B, k), ``factor`` (B, m, k) and ``target`` (B, m): finite
    float32/float64 tensors of one dtype and device; anything else is refused
    by name.
    """
    caller = "factor_error"
    _check_factor(factor, target, caller)
    if not isinstance(theta, torch.Tensor):
        raise TypeError(f"The 'theta' parameter of {caller} must be a torch tensor. "
                        f"Got {type(theta).__name__} instead.")
    check_float_dtype(theta, name="theta", caller=caller)
    check_shape(theta.shape, (factor.shape[0], factor.shape[2]), name="theta", caller=caller,
                describe=f"(B, k) = ({factor.shape[0]}, {factor.shape[2]}), B and k as in "
                         f"'factor'")
    if theta.dtype != factor.dtype or theta.device != factor.device:
        raise TypeError(f"The 'theta' parameter of {caller} must have the dtype and device of "
                        f"'factor' ({factor.dtype}, {factor.device}). Got {theta.dtype}, "
                        f"{theta.device} instead.")
    check_finite(theta, name="theta", caller=caller)
    return (torch.einsum("bmk,bk->bm", factor, theta) - target).square().sum(1)


def _check_factor(factor, target, caller):
    """The errors of :func:`solve_factor` and :func:`factor_error` on M and y, before any work."""
    for name, value in (("factor", factor), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"The {name!r} parameter of {caller} must be a torch tensor. "
                            f"Got {type(value).__name__} instead.")
        check_float_dtype(value, name=name, caller=caller)
    check_shape(factor.shape, (None, None, None), name="factor", caller=caller,
                describe="(B, m, k)")
    count, rows, k = factor.shape
    if k < 1 or rows < 1:
        raise ValueError(f"The 'factor' parameter of {caller} must have shape (B, m, k) with "
                         f"m, k >= 1. Got {tuple(factor.shape)} instead.")
    check_shape(target.shape, (count, rows), name="target", caller=caller,
                describe=f"(B, m) = ({count}, {rows}), B and m as in 'factor'")
    if target.dtype != factor.dtype or target.device != factor.device:
        raise TypeError(f"The 'target' parameter of {caller} must have the dtype and device of "
                        f"'factor' ({factor.dtype}, {factor.device}). Got {target.dtype}, "
                        f"{target.device} instead.")
    check_finite(factor, name="factor", caller=caller)
    check_finite(target, name="target", caller=caller)


def _factor_gradient(factor, target, theta):
    """g = M' (M theta - y), (B, k): the gradient without forming M' M."""
    error = torch.einsum("bmk,bk->bm", factor, theta) - target
    return torch.einsum("bmk,bm->bk", factor, error)


def _factor_residual(factor, target, theta):
    return _residual(theta, _factor_gradient(factor, target, theta))


def _support_lstsq(factor, target, support):
    """Least-squares weights on each row's support (zeros elsewhere), by the SVD (gelsd).

    The minimum-norm solution gives a zeroed column weight 0. (torch's gelsy, QR with
    column pivoting, returned all zeros when the leading columns were zero.)
    """
    masked = factor * support.unsqueeze(1)
    solution = torch.linalg.lstsq(masked, target.unsqueeze(2), driver="gelsd").solution
    return solution.squeeze(2) * support


def fallback_nnls(A, b, factor=None, target=None):
    """One node by :func:`scipy.optimize.nnls` on a factor of the problem, in float64 numpy.

    ``min_theta>=0 1/2 theta' A theta - b' theta`` equals ``min |M theta - y|^2 / 2`` up to a
    constant when ``A = M' M`` and ``M' y = b``. With ``factor``/``target`` given (the
    augmented unit vectors of the cosine kernel) they are used as they are; otherwise ``M``
    comes from the eigendecomposition of ``A`` (robust to singular kernels), with ``y`` the
    projection of ``b`` on the retained eigenvectors.

    ``A`` (k, k) and ``b`` (k,), and ``factor`` (m, k) and ``target`` (m,) if given:
    finite float32/float64 numpy arrays or tensors; anything else is refused by name.
    Returns theta of shape (k,), numpy float64.
    """
    caller = "fallback_nnls"
    A, b = _node_problem(A, b, caller)
    if (factor is None) != (target is None):
        raise ValueError(f"The 'target' parameter of {caller} must be given together with "
                         f"'factor'. Got factor={'None' if factor is None else 'an array'}, "
                         f"target={'None' if target is None else 'an array'} instead.")
    if factor is not None:
        factor = _float64(factor, "factor", caller, (None, A.shape[0]), "(m, k)")
        target = _float64(target, "target", caller, (factor.shape[0],),
                          f"(m,) = ({factor.shape[0]},), m as in 'factor'")
    if factor is None:
        values, vectors = np.linalg.eigh(A)
        keep = values > values.max() * 1e-15
        root = np.sqrt(values[keep])
        factor = root[:, None] * vectors[:, keep].T
        target = (vectors[:, keep].T @ b) / root
    theta, _ = nnls(np.asarray(factor, dtype=np.float64), np.asarray(target, dtype=np.float64),
                    maxiter=50 * A.shape[0])
    return theta


def solve_reference(A, b, *, x_tol: float):
    """The reference NNK pruning heuristic, one node, numpy float64 (for comparison only).

    Reproduced on purpose, quirks included:

    - duplicate short-cut: if some ``b_j > 1 - x_tol`` the answer is ``b`` on those
      entries (not normalized) and nothing is solved;
    - start from the candidates with ``b_j > x_tol``; repeat: solve ``A_PP theta_P = b_P``
      by LAPACK Cholesky (``potrf`` upper; when it fails, ``x_tol I`` is added to the
      partial *factor* before ``potrs``), drop every entry ``<= x_tol`` at once and for
      good, until the largest ``|theta_j|`` among entries below ``x_tol`` is ``<= x_tol``
      (at most ``50 k`` solves); finally zero the entries below ``x_tol``;
    - no check of the dual conditions ``g >= 0``, so the result can miss the optimum.

    ``A`` (k, k) and ``b`` (k,): finite float32/float64 numpy arrays or tensors
    (computed in float64 numpy); anything else is refused by name.

    Returns theta of shape (k,).
    """
    caller = "solve_reference"
    A, b = _node_problem(A, b, caller)
    x_tol = check_real(x_tol, name="x_tol", caller=caller, low=0.0, high=1.0, low_open=True,
                       high_open=True)
    k = b.size
    close = b > 1 - x_tol
    if close.any():
        return np.where(close, b, 0.0)
    active = b > x_tol
    theta = b.copy()
    worst = np.inf
    for _ in range(50 * k):
        if worst <= x_tol:
            break
        theta = np.zeros(k)
        if active.any():
            factor, info = lapack.dpotrf(A[np.ix_(active, active)], lower=0, clean=1)
            if info > 0:
                factor = factor + x_tol * np.eye(factor.shape[0])
            theta[active], _ = lapack.dpotrs(factor, b[active], lower=0)
        small = theta < x_tol
        worst = np.abs(theta[small]).max() if small.any() else 0.0
        active &= theta > x_tol
    theta[theta < x_tol] = 0.0
    return theta


def _float64(value, name, caller, shape, describe):
    """A finite float32/float64 array or tensor as a float64 numpy array, checked by name."""
    if isinstance(value, torch.Tensor):
        check_float_dtype(value, name=name, caller=caller)
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    check_float_dtype(value, name=name, caller=caller)
    check_shape(value.shape, shape, name=name, caller=caller, describe=describe)
    check_finite(value, name=name, caller=caller)
    # asarray keeps a float64 array as it is (no copy), so valid input is untouched.
    return np.asarray(value, dtype=np.float64)


def _node_problem(A, b, caller):
    """One node's ``A`` (k, k) and ``b`` (k,) as float64 numpy, k >= 1; errors by name."""
    A = _float64(A, "A", caller, (None, None), "(k, k)")
    k = A.shape[0]
    if k < 1:
        raise ValueError(f"The 'A' parameter of {caller} must have shape (k, k) with k >= 1. "
                         f"Got {A.shape} instead.")
    check_shape(A.shape, (k, k), name="A", caller=caller, describe=f"(k, k) = ({k}, {k}), square")
    b = _float64(b, "b", caller, (k,), f"(k,) = ({k},), k as in 'A'")
    return A, b
