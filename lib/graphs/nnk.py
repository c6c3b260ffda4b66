r"""Non-negative kernel regression (NNK) neighbourhood graphs, solved exactly.

Each node :math:`i` keeps, among its :math:`k` nearest neighbours :math:`S`
(the point itself excluded), the non-negative combination that best
reconstructs it in the kernel's feature space (Shekkizhar and Ortega, ICASSP
2020):

.. math::

    \theta_i = \arg\min_{\theta \ge 0} \tfrac12\,\theta^\top K_{SS}\,\theta - K_{Si}^\top\theta,
    \qquad e_i = K_{ii} - 2 K_{Si}^\top\theta_i + \theta_i^\top K_{SS}\,\theta_i .

Kernels, both with :math:`K_{ii} = 1`:

- ``"gaussian"``: :math:`K_{ij} = \exp(-|x_i - x_j|^2 / 2\sigma^2)`. ``sigma`` is a
  float, ``"global"`` (the mean over nodes of the distance to the k-th candidate,
  divided by 3: the MATLAB reference's convention) or ``"local"`` (per query, its
  own k-th candidate distance over 3, used for every entry of its problem: the
  CW-DeepNNK convention; it makes the graph invariant to a global scaling).
- ``"cosine"``: :math:`K_{ij} = (1 + \hat x_i\cdot\hat x_j)/2`, :math:`\hat x = x/|x|`.
  It is the linear kernel of :math:`\phi_i = [\hat x_i; 1]/\sqrt2`, so the problem
  is exactly the NNLS :math:`\min_{\theta\ge0} |\phi_i - \Phi_S\theta|^2`. Up to
  D = 15 it is solved on :math:`\Phi_S` itself
  (:func:`lib.graphs.nnk_solver.solve_factor`), where nearby directions make the
  Gram form's matrices ill-conditioned (condition numbers of 1e10-1e13 on a helix in
  R^3); above, on its Gram form, and the nodes that form cannot certify on
  :math:`\Phi_S`. Measured on a helix and a surface patch in R^3 (N = 3,000, k = 10
  and 50, 2026-12-07): 40-87 % of the nodes had gone to scipy with the Gram form
  alone, none do now, the KKT residuals fell from 1e-10 to 1e-14 and the graphs
  took 1.4-2.2x less time.

Candidates come from :func:`lib.neighbors.nearest_neighbors`: exact Euclidean
distances on the points for the Gaussian kernel, and on their directions
:math:`\hat x` for the cosine kernel, which ranks by cosine similarity
(:math:`|\hat x_i - \hat x_j|^2 = 2 - 2\cos`): a cosine graph of raw features
links the most similar directions, not the nearest points.
Duplicated points are allowed: a candidate at distance 0 has :math:`K = 1`.

The per-node problems are solved by :func:`lib.graphs.nnk_solver.solve_exact`
(batched Lawson-Hanson with a KKT certificate per node and a counted scipy
fallback; in factor form for the cosine kernel, above) or, with
``mode="reference"``, by the reference code's pruning heuristic, reproduced
for comparison only.

Symmetrization (``symmetrize``):

- ``"max"`` (the default) / ``"min"``: elementwise over the directed weights;
  ``"max"`` keeps an edge that either endpoint chose, as :func:`knn_graph` does;
- ``"reference"``: with :math:`E_{ij} = e_i` for :math:`j \in S_i` and 0 otherwise,
  keep :math:`\theta_{ij}` only where :math:`E_{ij} < E_{ji}` (strict), then take
  :math:`\max(W, W^\top)`. An edge survives only between mutual candidates and
  carries the weight of its lower-error endpoint; ties drop both directions
  (the Python reference's behaviour). On a regular grid the errors of
  neighbouring nodes tie up to rounding, so which edges survive is decided by
  rounding, and nodes are left isolated (4 of 10 on ``np.arange(10.)`` with
  k = 4): that is why it is no longer the default;
- ``None``: the directed weights, row :math:`i` holding :math:`\theta_i`.

Speed (k = 50, measured 2026-11-23, ``benchmarks/nnk.py``): N = 10,000 in
D = 64 takes 1.5 s (cosine) to 2.7 s (Gaussian) on 2 CPU cores, of which the
candidate search is 0.9 s, and 0.15 to 0.3 s on one H100; N = 60,000 in
D = 784 takes about 1.3 s on the H100. The solver issues many small torch
operations. On a CPU, blocks of nodes are solved side by side on torch's
thread count, each block on one thread (``lib._threads.map_blocks``), as
the candidate search does: split over OpenMP threads instead, they met at
barriers where idle threads spin, and on a 2-core machine with one other busy
process two threads took 2-3x (up to 20x) longer than one. Measured
2026-12-07 (N = 2,000, k = 50, D = 64 and 784, ``OMP_WAIT_POLICY`` unset):
two threads are 1.4-1.7x faster than one when idle and as fast as one when
loaded.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

from lib._arrays import as_tensor
from lib._threads import map_blocks, torch_threads
from lib._checks import (REAL_DTYPES, check_finite, check_float_dtype, check_in, check_int,
                         check_real, check_shape)
from lib.graphs import nnk_solver
from lib.neighbors import nearest_neighbors

__all__ = ["NNKGraph", "nnk_graph", "knn_graph", "unit_rows"]

KERNELS = ("gaussian", "cosine")
SIGMAS = ("global", "local")
SYMMETRIZE = ("reference", "max", "min", None)
# CPU rows per block beyond which the batched solver's working arrays leave the cache.
_MAX_BLOCK = 1024
# Bytes of gathered neighbour coordinates per piece of a kernel block on a CPU (cache-sized).
_GATHER_BYTES = 2**24
# Cosine problems with at most this many factor rows (D + 1) are solved in factor form.
_FACTOR_MAX_ROWS = 16


@dataclass(frozen=True)
class NNKGraph:
    r"""An NNK graph and the per-node solutions behind it.

    Attributes
    ----------
    weights : scipy.sparse.csr_matrix of shape (N, N)
        Edge weights, symmetrized as asked (directed theta when ``symmetrize=None``).
    candidates : array of shape (N, k)
        int64 indices of each node's nearest neighbours, by increasing distance.
    theta : array of shape (N, k)
        Weights on the candidates, exactly 0 off the support.
    error : array of shape (N,)
        Reconstruction error e_i >= 0 (rounding below 0 is clipped).
    kkt : array of shape (N,)
        KKT residual of each solve (see :mod:`lib.graphs.nnk_solver`); for
        the nodes solved in factor form (the cosine kernel, module docstring)
        its gradient is evaluated as :math:`\Phi_S^\top(\Phi_S\theta - \phi_i)`.
    fallbacks : int
        Nodes the batched solver handed to :func:`scipy.optimize.nnls`.
    sigma : float, array of shape (N,) or None
        Gaussian bandwidth used (per node for ``"local"``); None for the cosine kernel.
    """

    weights: scipy.sparse.csr_matrix
    candidates: object
    theta: object
    error: object
    kkt: object
    fallbacks: int
    sigma: object

    @property
    def support(self):
        """Boolean mask (N, k) of the candidates with a positive weight."""
        return self.theta > 0


def nnk_graph(points, n_neighbors: int, *, kernel: str = "gaussian", sigma="local",
              mode: str = "exact", symmetrize: str | None = "max", x_tol: float = 1e-10,
              memory_budget: int = 2**28) -> NNKGraph:
    """Non-negative kernel regression graph of a point cloud.

    Parameters
    ----------
    points : array of shape (N, D)
        Finite points, numpy array or torch tensor (the work runs on its device, float64).
    n_neighbors : int in [1, N - 1]
        Candidates k per node (its exact nearest neighbours, itself excluded).
    kernel : {"gaussian", "cosine"}, default="gaussian"
    sigma : float in (0, inf) or {"global", "local"}, default="local"
        Gaussian bandwidth or its convention (module docstring); unused for "cosine".
    mode : {"exact", "reference"}, default="exact"
        The exact batched solver, or the reference pruning heuristic (a per-node
        loop on the CPU, for comparison: it can miss the optimum).
    symmetrize : {"max", "min", "reference", None}, default="max"
        How directed weights become an undirected graph (module docstring).
        ``"reference"``, the reference code's rule, drops tied edges and
        disconnects regular grids.
    x_tol : float in (0, 1), default=1e-10
        ``"exact"``: the largest KKT residual a solve may keep before it is
        re-solved. ``"reference"``: the heuristic's pruning tolerance.
    memory_budget : int >= 2**16, default=2**28
        Bytes for the work arrays of one block of nodes; it changes the weights
        only at rounding level.

    Returns
    -------
    NNKGraph
        Arrays in the type of ``points`` (numpy, or torch on its device); the
        weights as a scipy CSR matrix.

    Examples
    --------
    On a line every interior point keeps exactly its left and right neighbours.

    >>> import numpy as np
    >>> graph = nnk_graph(np.arange(6.0)[:, None], 3, symmetrize=None)
    >>> [sorted(c[s].tolist()) for c, s in zip(graph.candidates, graph.support)]
    [[1], [0, 2], [1, 3], [2, 4], [3, 5], [4]]
    >>> bool(graph.kkt.max() <= 1e-10), graph.fallbacks
    (True, 0)
    """
    caller = "nnk_graph"
    x, restore = _check_points(points, caller)
    k = check_int(n_neighbors, name="n_neighbors", caller=caller, low=1, high=x.shape[0] - 1)
    check_in(kernel, KERNELS, name="kernel", caller=caller)
    _check_sigma(sigma, caller)
    check_in(mode, ("exact", "reference"), name="mode", caller=caller)
    check_in(symmetrize, SYMMETRIZE, name="symmetrize", caller=caller)
    tol = check_real(x_tol, name="x_tol", caller=caller, low=0.0, high=1.0, low_open=True,
                     high_open=True)
    budget = check_int(memory_budget, name="memory_budget", caller=caller, low=2**16)
    x = x.to(torch.float64)
    units = unit_rows(x, caller) if kernel == "cosine" else None
    # Cosine neighbours: Euclidean distance between directions, |u - v|^2 = 2 - 2 cos.
    distances, candidates = _candidates(x if units is None else units, k, budget)
    bandwidth = None if kernel == "cosine" else _bandwidth(sigma, distances)

    count = x.shape[0]
    theta = torch.zeros(count, k, dtype=x.dtype, device=x.device)
    kkt = torch.zeros(count, dtype=x.dtype, device=x.device)
    error = torch.zeros(count, dtype=x.dtype, device=x.device)
    fallbacks = 0
    workers = torch.get_num_threads() if x.device.type == "cpu" else 1
    # Blocks do not depend on the thread count, so neither do the weights.
    block = _block_rows(count, k, x.shape[1], budget, x.device)

    def solve_block(start):
        """Weights, KKT residuals, errors and fallback count of the nodes from ``start``."""
        rows = torch.arange(start, min(start + block, count), device=x.device)
        if units is not None and units.shape[1] + 1 <= _FACTOR_MAX_ROWS and mode == "exact":
            # Solved on the factor itself: the kernel block is built only for the fallback.
            factor, target = _cosine_factor(units, candidates, rows)
            t, residual, unsolved = nnk_solver.solve_factor(factor, target, tol=tol)
            error = nnk_solver.factor_error(t, factor, target)
            A = b = None
        else:
            A, b = _kernel_rows(x, units, candidates, distances, bandwidth, rows)
        if mode == "reference":
            A_np, b_np = A.cpu().numpy(), b.cpu().numpy()
            solved = np.stack([nnk_solver.solve_reference(A_np[n], b_np[n], x_tol=tol)
                               for n in range(len(rows))])
            t = torch.from_numpy(solved).to(x.device)
            error = (1.0 + 2 * nnk_solver.objective(t, A, b)).clamp_min(0)
            return rows, t, nnk_solver.kkt_residual(t, A, b), error, 0
        if A is not None:
            # Gaussian supports hold most candidates: start from the heuristic's pruning.
            t, residual, unsolved = nnk_solver.solve_exact(
                A, b, tol=tol, start="empty" if units is not None else "pruned")
            if units is not None and bool(unsolved.any()):
                # Near-duplicate directions: the Gram form cannot certify them, the factor can.
                again = unsolved.nonzero()[:, 0]
                factor, target = _cosine_factor(units, candidates, rows[again])
                t[again], residual[again], unsolved[again] = nnk_solver.solve_factor(
                    factor, target, tol=tol)
            error = (1.0 + 2 * nnk_solver.objective(t, A, b)).clamp_min(0)
        left = unsolved.nonzero()[:, 0]
        if left.numel():
            A_left, b_left = ((A[left], b[left]) if A is not None else
                              _kernel_rows(x, units, candidates, distances, bandwidth, rows[left]))
            for n, row in enumerate(left.tolist()):
                solved = _fallback(A_left[n], b_left[n], units, candidates, rows[row])
                t[row] = torch.from_numpy(solved).to(t.device)
            residual[left] = nnk_solver.kkt_residual(t[left], A_left, b_left)
            error[left] = (1.0 + 2 * nnk_solver.objective(t[left], A_left, b_left)).clamp_min(0)
        return rows, t, residual, error, int(left.numel())

    starts = range(0, count, block)
    # On a CPU the blocks run side by side on the caller's threads, each block on one torch
    # thread: the solver's many small operations then never wait at an OpenMP barrier,
    # whose idle threads spin and made a loaded 2-core machine 3-20x slower.
    with torch_threads(1 if x.device.type == "cpu" else None):
        for rows, t, residual, block_error, unsolved in map_blocks(solve_block, starts, workers):
            theta[rows] = t
            kkt[rows] = residual
            error[rows] = block_error
            fallbacks += unsolved
    if mode == "exact" and bool((kkt > tol).any()):
        warnings.warn(f"nnk_graph: {int((kkt > tol).sum())} node(s) keep a KKT residual above "
                      f"x_tol={tol:g} after the scipy fallback (largest {float(kkt.max()):.2e}); "
                      f"their kernel matrices are numerically singular.", RuntimeWarning,
                      stacklevel=2)
    weights = _symmetrized(theta.cpu().numpy(), candidates.cpu().numpy(),
                           error.cpu().numpy(), symmetrize)
    if bandwidth is not None and bandwidth.numel() > 1:
        sigma_out = restore(bandwidth)
    else:
        sigma_out = None if bandwidth is None else float(bandwidth)
    return NNKGraph(weights=weights, candidates=restore(candidates), theta=restore(theta),
                    error=restore(error), kkt=restore(kkt), fallbacks=fallbacks, sigma=sigma_out)


def knn_graph(points, n_neighbors: int, *, kernel: str = "gaussian", sigma="local",
              memory_budget: int = 2**28) -> scipy.sparse.csr_matrix:
    """Kernel-weighted k-nearest-neighbour graph, max-symmetrized (the NNK baseline).

    Parameters
    ----------
    points : array of shape (N, D)
    n_neighbors : int in [1, N - 1]
    kernel : {"gaussian", "cosine"}, default="gaussian"
    sigma : float in (0, inf) or {"global", "local"}, default="local"
        As in :func:`nnk_graph`; with ``"local"`` the weight of i -> j uses sigma_i.
    memory_budget : int >= 2**16, default=2**28

    Returns
    -------
    weights : scipy.sparse.csr_matrix of shape (N, N)
        ``max(W, W')`` with ``W_ij = K(x_i, x_j)`` for the k nearest j of i.

    Examples
    --------
    >>> import numpy as np
    >>> w = knn_graph(np.array([[0.0], [1.0], [3.0]]), 1, sigma=1.0)
    >>> np.round(w.toarray(), 4)
    array([[0.    , 0.6065, 0.    ],
           [0.6065, 0.    , 0.1353],
           [0.    , 0.1353, 0.    ]])
    """
    caller = "knn_graph"
    x, _ = _check_points(points, caller)
    k = check_int(n_neighbors, name="n_neighbors", caller=caller, low=1, high=x.shape[0] - 1)
    check_in(kernel, KERNELS, name="kernel", caller=caller)
    _check_sigma(sigma, caller)
    budget = check_int(memory_budget, name="memory_budget", caller=caller, low=2**16)
    x = x.to(torch.float64)
    if kernel == "cosine":
        units = unit_rows(x, caller)
        _, candidates = _candidates(units, k, budget)         # the most similar directions
        values = (1 + torch.einsum("nkd,nd->nk", units[candidates], units)) / 2
    else:
        distances, candidates = _candidates(x, k, budget)
        values = _gaussian(distances**2, _bandwidth(sigma, distances).reshape(-1, 1))
    directed = _directed(values.cpu().numpy(), candidates.cpu().numpy())
    return directed.maximum(directed.T).tocsr()


def _check_points(points, caller):
    x, restore = as_tensor(points)
    check_shape(x.shape, (None, None), name="points", caller=caller, describe="(N, D)")
    # Any real dtype is converted to float64 inside; complex would lose its imaginary part.
    check_float_dtype(x, name="points", caller=caller, allowed=REAL_DTYPES)
    if x.shape[0] < 2:
        raise ValueError(f"The 'points' parameter of {caller} must hold at least 2 points. "
                         f"Got {x.shape[0]} instead.")
    check_finite(x, name="points", caller=caller)
    return x, restore


def _check_sigma(sigma, caller):
    if isinstance(sigma, str):
        check_in(sigma, SIGMAS, name="sigma", caller=caller)
    else:
        check_real(sigma, name="sigma", caller=caller, low=0.0, low_open=True, high_open=True)


def unit_rows(x, caller, setting="kernel='cosine'"):
    """Rows scaled to unit length (the directions of the cosine kernel); zero rows are refused.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Points, one a row.
    caller : str
        The public function the error message names.
    setting : str, default="kernel='cosine'"
        The option that asked for directions, named in the error message.

    Returns
    -------
    units : torch.Tensor of shape (N, D)
        ``x / |x|`` row by row.

    Raises
    ------
    TypeError
        If ``x`` is not a float32/float64 tensor.
    ValueError
        If ``x`` is not (N, D), holds NaN or infinity, or has a zero row (its
        direction is undefined). Errors name the 'points' parameter of ``caller``.

    Examples
    --------
    >>> import torch
    >>> unit_rows(torch.tensor([[3.0, 4.0], [0.0, 2.0]], dtype=torch.float64), "f").tolist()
    [[0.6, 0.8], [0.0, 1.0]]
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"The 'points' parameter of {caller} must reach unit_rows as a torch "
                        f"tensor. Got {type(x).__name__} instead.")
    check_shape(x.shape, (None, None), name="points", caller=caller, describe="(N, D)")
    check_float_dtype(x, name="points", caller=caller)
    check_finite(x, name="points", caller=caller)
    norms = x.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        raise ValueError(f"The 'points' parameter of {caller} must have no zero rows with "
                         f"{setting} (their direction is undefined). Got "
                         f"{int((norms == 0).sum())} zero rows instead.")
    return x / norms


def _candidates(x, k, budget):
    """k nearest other points; never the point itself, even among exact duplicates."""
    count = x.shape[0]
    own = torch.arange(count, device=x.device).unsqueeze(1)
    if k + 1 <= count - 1:
        distances, indices = nearest_neighbors(x, k + 1, memory_budget=budget)
        # Among exact duplicates the search may drop a copy instead of the query, which
        # then shows up in its own list: redo those rows by brute force (rare and cheap).
        redo = (indices == own).any(1).nonzero()[:, 0]
        if redo.numel():
            distances[redo], indices[redo] = _brute_force(x, redo, k + 1)
    else:
        distances, indices = _brute_force(x, own[:, 0], k)
    return distances[:, :k].contiguous(), indices[:, :k].contiguous()


def _brute_force(x, rows, k):
    full = torch.cdist(x[rows], x, compute_mode="donot_use_mm_for_euclid_dist")
    full[torch.arange(rows.numel(), device=x.device), rows] = torch.inf
    distances, indices = torch.sort(full, dim=1, stable=True)
    return distances[:, :k], indices[:, :k]


def _bandwidth(sigma, distances):
    if sigma == "local":
        return distances[:, -1] / 3
    if sigma == "global":
        return distances[:, -1].mean() / 3
    return torch.tensor(float(sigma), dtype=distances.dtype, device=distances.device)


def _gaussian(squared, sigma):
    # sigma = 0 (every candidate a duplicate) is the limit: 1 at distance 0, else 0.
    scaled = torch.where(squared == 0, 0.0, squared / (2 * sigma**2))
    return torch.exp(-scaled)


def _block_rows(count, k, dim, budget, device):
    per_row = 8 * (k * dim + 5 * k * k)      # gathered neighbours, kernel, solver state
    rows = max(1, min(count, budget // per_row))
    # A GPU wants every row it can hold in one launch; a CPU wants blocks that stay in cache.
    return rows if device.type == "cuda" else min(rows, _MAX_BLOCK)


def _kernel_rows(x, units, candidates, distances, bandwidth, rows):
    """:func:`_kernel_block` of ``rows``, in cache-sized pieces on a CPU.

    The gather of the neighbours' coordinates, (B, k, D), is memory-bound: in
    pieces of 16 MiB it ran 2x faster (k = 50, D = 784, one thread, 1,024
    rows: 0.15 s against 0.30 s for the cosine kernel), with identical
    results. A GPU takes the block whole.
    """
    step = max(1, _GATHER_BYTES // (8 * candidates.shape[1] * x.shape[1]))
    if x.device.type != "cpu" or step >= len(rows):
        return _kernel_block(x, units, candidates, distances, bandwidth, rows)
    parts = [_kernel_block(x, units, candidates, distances, bandwidth, rows[start:start + step])
             for start in range(0, len(rows), step)]
    return torch.cat([part[0] for part in parts]), torch.cat([part[1] for part in parts])


def _kernel_block(x, units, candidates, distances, bandwidth, rows):
    """K_SS (B, k, k) and K_Si (B, k) for the nodes ``rows``."""
    cand = candidates[rows]
    if units is not None:
        neighbours = units[cand]
        A = (1 + torch.bmm(neighbours, neighbours.transpose(1, 2))) / 2
        b = (1 + torch.einsum("nkd,nd->nk", neighbours, units[rows])) / 2
        return A, b
    # Coordinates relative to the query keep the Gram-form distances at the scale of the
    # neighbourhood, not of |x| (the float64 cancellation trap of |a|^2 + |b|^2 - 2 a.b).
    local = x[cand] - x[rows].unsqueeze(1)
    gram = torch.bmm(local, local.transpose(1, 2))
    norms = torch.diagonal(gram, dim1=1, dim2=2)
    squared = (norms.unsqueeze(2) + norms.unsqueeze(1) - 2 * gram).clamp_min(0)
    squared.diagonal(dim1=1, dim2=2).zero_()
    sigma = bandwidth[rows] if bandwidth.numel() > 1 else bandwidth
    sigma = sigma.reshape(-1, 1)
    return _gaussian(squared, sigma.unsqueeze(2)), _gaussian(distances[rows]**2, sigma)


def _cosine_factor(units, candidates, rows):
    """The cosine problems' factor and target, (B, D + 1, k) and (B, D + 1): [u; 1] / sqrt 2."""
    neighbours = units[candidates[rows]].transpose(1, 2)
    ones = torch.ones(len(rows), 1, neighbours.shape[2], dtype=units.dtype, device=units.device)
    factor = torch.cat([neighbours, ones], 1) / math.sqrt(2)
    target = torch.cat([units[rows], ones[:, :, 0]], 1) / math.sqrt(2)
    return factor, target


def _fallback(A, b, units, candidates, row):
    if units is None:
        return nnk_solver.fallback_nnls(A.cpu().numpy(), b.cpu().numpy())
    # The cosine problem is the NNLS of the augmented unit vectors: no Gram matrix needed.
    neighbours = units[candidates[row]].cpu().numpy()
    factor = np.vstack([neighbours.T, np.ones(neighbours.shape[0])]) / math.sqrt(2)
    target = np.append(units[row].cpu().numpy(), 1.0) / math.sqrt(2)
    return nnk_solver.fallback_nnls(A.cpu().numpy(), b.cpu().numpy(), factor, target)


def _directed(values, candidates):
    count, k = candidates.shape
    rows = np.repeat(np.arange(count), k)
    matrix = scipy.sparse.csr_matrix((values.ravel(), (rows, candidates.ravel())),
                                     shape=(count, count))
    matrix.eliminate_zeros()
    return matrix


def _symmetrized(theta, candidates, error, rule):
    count, k = candidates.shape
    if rule == "reference":
        # E_ji for every directed pair (i, j): e_j if i is among j's candidates, else 0.
        keys = np.arange(count).repeat(k) * count + candidates.ravel()
        reverse = candidates.ravel() * count + np.arange(count).repeat(k)
        order = np.argsort(keys)
        where = np.searchsorted(keys[order], reverse).clip(max=keys.size - 1)
        mutual = keys[order][where] == reverse
        e_i = error.repeat(k)
        e_j = np.where(mutual, error[candidates.ravel()], 0.0)
        theta = np.where(e_i < e_j, theta.ravel(), 0.0).reshape(count, k)
    directed = _directed(theta, candidates)
    if rule is None:
        return directed
    if rule == "min":
        return directed.minimum(directed.T).tocsr()
    return directed.maximum(directed.T).tocsr()
