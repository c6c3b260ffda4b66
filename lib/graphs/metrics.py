r"""Manifold graph metrics (MGMs): per-node geometry read off an NNK graph.

Node :math:`i` has candidates :math:`S_i` (its k nearest other points) and
non-negative weights :math:`\theta_i`; its NNK neighbourhood is
:math:`N(i) = \{j \in S_i : \theta_{ij} > \tau\}` (``tau=0`` by default: the
exact solver returns exact zeros off the support). Every function takes any
object with the attributes of :class:`lib.graphs.nnk.NNKGraph` it needs
(``candidates`` and ``theta`` of shape (N, k); ``weights``, ``error``).

- :func:`neighbor_count` :math:`n_i = |N(i)|`, the reference code's local-dimension
  proxy: exactly 2 on a line, 4 inside a square lattice (derived in
  ``tests/test_graph_metrics.py``), about 2d up to d = 3 and faster beyond
  (Gaussian kernel); :func:`degree_calibration` measures the curve,
  :func:`dimension_from_degree` inverts it.
- :func:`weighted_degree` (row sums of ``weights``), :func:`reconstruction_error`.
- :func:`polytope_diameter`: :math:`\max_{a, b \in N(i) \cup \{i\}} |\hat x_a - \hat x_b|`
  with :math:`\hat x = x/|x|` (chordal, in [0, 2]; ``normalize=False``: Euclidean).
  The papers give no formula; this is our choice: the chordal distance matches the
  cosine kernel of DeepNNK features and spans the [0, 2] range of Fig. 2 of
  S. Shekkizhar's thesis proposal (*Geometry of deep learning: a data-driven
  understanding with neighborhood and graph methods*), and including i keeps a
  one-neighbour node from reading 0.
- :func:`loo_interpolation_error`: DeepNNK's leave-one-out label interpolation,
  :math:`\hat y_i = \sum_{j\in N(i)} \theta_{ij} y_j / \sum_{j\in N(i)} \theta_{ij}`
  over one-hot labels; the hard error is :math:`1[\arg\max \hat y_i \ne y_i]`.
- :func:`local_dimension`: local PCA of the offsets :math:`\{x_j - x_i\}_{j\in N(i)}`
  (our estimator; centred at the node, which the NNK polytope surrounds).
- :func:`geometric_stability`: mean Jaccard overlap of each node's NNK
  neighbourhood over all pairs of R runs on the same nodes (ours: the papers give
  no formula; rank correlations of the MGMs would be another candidate).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

from lib._arrays import as_tensor
from lib._checks import (REAL_DTYPES, check_finite, check_float_dtype, check_int, check_real,
                         check_shape)
from lib.graphs.nnk import nnk_graph, unit_rows

__all__ = ["DegreeCalibration", "InterpolationError", "class_labels", "degree_calibration",
           "dimension_from_degree", "geometric_stability", "local_dimension",
           "loo_interpolation_error", "neighbor_count", "polytope_diameter",
           "reconstruction_error", "weighted_degree"]


@dataclass(frozen=True)
class InterpolationError:
    """Per-node leave-one-out interpolation (:func:`loo_interpolation_error`).

    ``errors`` (N,): 1.0 where the predicted class is wrong, else 0.0; ``soft``
    (N,): :math:`1 - \\hat y_i[y_i]`; ``predicted`` (N,): int64 class, -1 for a
    node with no neighbour; ``mean``: mean of ``errors``.
    """

    errors: object
    soft: object
    predicted: object
    mean: float


@dataclass(frozen=True)
class DegreeCalibration:
    """Mean interior NNK degree per dimension (:func:`degree_calibration`).

    ``dims``, ``mean_degree`` and ``n_nodes`` (the interior nodes behind each
    mean) have shape (m,); ``n_neighbors`` and ``sigma`` are the graph settings.
    """

    dims: np.ndarray
    mean_degree: np.ndarray
    n_nodes: np.ndarray
    n_neighbors: int
    sigma: object


def neighbor_count(graph, *, tau: float = 0.0):
    """Size of each node's NNK neighbourhood, :math:`|\\{j : \\theta_{ij} > \\tau\\}|`.

    Parameters
    ----------
    graph : NNKGraph
        Any object with ``candidates`` and ``theta`` of shape (N, k).
    tau : float in [0, inf), default=0.0

    Returns
    -------
    counts : array of shape (N,)
        int64, numpy or torch as ``graph.theta``.

    Examples
    --------
    >>> import numpy as np
    >>> from lib.graphs.nnk import nnk_graph
    >>> neighbor_count(nnk_graph(np.arange(6.0)[:, None], 3)).tolist()
    [1, 2, 2, 2, 2, 1]
    """
    _, theta, restore = _graph_parts(graph, "neighbor_count")
    return restore((theta > _tau(tau, "neighbor_count")).sum(1))


def weighted_degree(graph):
    """Row sums of ``graph.weights`` (the graph as symmetrized when it was built).

    Parameters
    ----------
    graph : NNKGraph
        Any object with ``weights``, a scipy sparse matrix or array of shape (N, N).

    Returns
    -------
    degree : numpy array of shape (N,)

    Examples
    --------
    >>> import numpy as np
    >>> from lib.graphs.nnk import nnk_graph
    >>> a = np.exp(-0.5)   # sigma = spacing; interior: theta = a / (1 + a**4) on both sides
    >>> graph = nnk_graph(np.arange(4.0)[:, None], 2, sigma=1.0, symmetrize=None)
    >>> np.allclose(weighted_degree(graph), [a, 2 * a / (1 + a**4), 2 * a / (1 + a**4), a])
    True
    """
    weights = _weights(graph, "weighted_degree")
    return np.asarray(weights.sum(axis=1), dtype=np.float64).ravel()


def reconstruction_error(graph):
    """Kernel reconstruction error :math:`e_i` of each node's NNK fit.

    :math:`e_i = K_{ii} - 2K_{Si}^\\top\\theta_i + \\theta_i^\\top K_{SS}\\theta_i`.

    Parameters
    ----------
    graph : NNKGraph
        Any object with ``theta`` (N, k) and ``error`` (N,).

    Returns
    -------
    error : array of shape (N,)
        ``graph.error`` itself, checked.

    Examples
    --------
    >>> import numpy as np
    >>> from lib.graphs.nnk import nnk_graph
    >>> a = np.exp(-0.5)   # sigma = spacing: K to the two neighbours of an interior point
    >>> e = reconstruction_error(nnk_graph(np.arange(5.0)[:, None], 2, sigma=1.0))
    >>> bool(abs(e[2] - (1 - 2 * a**2 / (1 + a**4))) < 1e-12)
    True
    """
    caller = "reconstruction_error"
    count = _graph_parts(graph, caller)[1].shape[0]
    error = getattr(graph, "error", None)
    check_shape(np.shape(error), (count,), name="graph.error", caller=caller,
                describe=f"(N,) = ({count},)")
    values, _ = as_tensor(error)
    check_float_dtype(values, name="graph.error", caller=caller, allowed=REAL_DTYPES)
    check_finite(values, name="graph.error", caller=caller)
    if bool((values < 0).any()):
        raise ValueError(f"The 'graph.error' parameter of {caller} must be non-negative. "
                         f"Got {int((values < 0).sum())} negative entries instead.")
    return error


def polytope_diameter(points, graph, *, normalize: bool = True, tau: float = 0.0,
                      memory_budget: int = 2**28):
    """Diameter of each node's NNK polytope, :math:`\\max_{a,b \\in N(i)\\cup\\{i\\}} |x_a - x_b|`.

    Parameters
    ----------
    points : array of shape (N, D)
        The points (or features) the graph was built on; numpy or torch.
    graph : NNKGraph
    normalize : bool, default=True
        Measure chordal distances between unit vectors :math:`x/|x|` (values in
        [0, 2]; the cosine-kernel convention), else Euclidean distances.
    tau : float in [0, inf), default=0.0
    memory_budget : int >= 2**16, default=2**28
        Bytes for one block of nodes; never changes the result.

    Returns
    -------
    diameter : array of shape (N,)
        Type, dtype and device of ``points``; 0 for a node with no neighbour.

    Examples
    --------
    On a line the polytope of an interior point spans its two neighbours.

    >>> import numpy as np
    >>> from lib.graphs.nnk import nnk_graph
    >>> x = np.arange(5.0)[:, None]
    >>> polytope_diameter(x, nnk_graph(x, 3), normalize=False).tolist()
    [1.0, 2.0, 2.0, 2.0, 1.0]
    """
    caller = "polytope_diameter"
    cand, theta, _ = _graph_parts(graph, caller)
    x, restore = _points(points, cand.shape[0], caller)
    keep = (theta > _tau(tau, caller)).to(x.device)
    budget = check_int(memory_budget, name="memory_budget", caller=caller, low=2**16)
    if not isinstance(normalize, bool):
        raise TypeError(f"The 'normalize' parameter of {caller} must be a bool. "
                        f"Got {normalize!r} instead.")
    if normalize:
        x = unit_rows(x, caller, "normalize=True")
    cand = cand.to(x.device)
    count, k = cand.shape
    own = torch.arange(count, device=x.device).unsqueeze(1)
    out = torch.zeros(count, dtype=x.dtype, device=x.device)
    block = _block_rows(count, (k + 1) * (x.shape[1] + k + 1), budget)
    for start in range(0, count, block):
        rows = slice(start, start + block)
        # Off-support candidates are replaced by the node itself: a copy of i adds no new
        # distance, so one dense (k+1) x (k+1) block per node serves every support size.
        members = torch.cat([own[rows], torch.where(keep[rows], cand[rows], own[rows])], 1)
        local = x[members]
        distances = torch.cdist(local, local, compute_mode="donot_use_mm_for_euclid_dist")
        out[rows] = distances.flatten(1).amax(1)
    return restore(out)


def loo_interpolation_error(graph, labels, n_classes: int, *,
                            tau: float = 0.0) -> InterpolationError:
    """Leave-one-out label interpolation on the NNK neighbourhoods (DeepNNK).

    :math:`\\hat y_i = \\sum_{j \\in N(i)} \\theta_{ij} e_{y_j} / \\sum_{j \\in N(i)} \\theta_{ij}`;
    the node's own label never enters (it is not its own candidate). Ties in
    :math:`\\arg\\max` go to the smaller class; a node with no neighbour has no
    prediction (-1) and counts as an error.

    Parameters
    ----------
    graph : NNKGraph
        Directed solution: ``candidates`` and ``theta`` (N, k).
    labels : array of shape (N,)
        Integer classes in [0, n_classes).
    n_classes : int >= 1
    tau : float in [0, inf), default=0.0

    Returns
    -------
    InterpolationError
        Per-node ``errors``, ``soft`` errors and ``predicted`` classes (numpy or
        torch as ``graph.theta``) and their ``mean``.

    Examples
    --------
    >>> import numpy as np
    >>> from lib.graphs.nnk import nnk_graph
    >>> x = np.r_[np.arange(4.0), 100 + np.arange(4.0)][:, None]
    >>> loo = loo_interpolation_error(nnk_graph(x, 3), np.r_[0, 0, 0, 0, 1, 1, 1, 1], 2)
    >>> loo.mean, loo.errors.tolist()
    (0.0, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    """
    caller = "loo_interpolation_error"
    cand, theta, restore = _graph_parts(graph, caller)
    y = class_labels(labels, theta.shape[0], n_classes, caller, name="labels").to(theta.device)
    classes = int(n_classes)
    weights = torch.where(theta > _tau(tau, caller), theta, torch.zeros_like(theta))
    scores = torch.zeros(theta.shape[0], classes, dtype=theta.dtype, device=theta.device)
    scores.scatter_add_(1, y[cand.to(theta.device)], weights)
    total = scores.sum(1, keepdim=True)
    reached = total[:, 0] > 0
    scores = torch.where(reached.unsqueeze(1), scores / torch.where(reached, total[:, 0], 1.0)
                         .unsqueeze(1), 0.0)
    predicted = torch.where(reached, scores.argmax(1), -1)
    errors = (predicted != y).to(theta.dtype)
    soft = 1 - scores.gather(1, y.unsqueeze(1))[:, 0]
    return InterpolationError(errors=restore(errors), soft=restore(soft),
                              predicted=restore(predicted), mean=float(errors.mean()))


def local_dimension(points, graph, *, threshold: float = 0.95, tau: float = 0.0,
                    memory_budget: int = 2**28):
    """Local PCA dimension of each NNK neighbourhood.

    With :math:`s_1 \\ge s_2 \\ge \\dots` the singular values of the offsets
    :math:`\\{x_j - x_i\\}_{j \\in N(i)}`, the dimension is the smallest m with
    :math:`\\sum_{l \\le m} s_l^2 \\ge \\text{threshold} \\sum_l s_l^2`. It never
    exceeds :math:`n_i`, D, or the dimension of a flat patch holding the
    neighbourhood; below 1, the threshold lets thin directions (noise, an
    elongated polytope) go uncounted.

    Parameters
    ----------
    points : array of shape (N, D)
    graph : NNKGraph
    threshold : float in (0, 1], default=0.95
        Fraction of the neighbourhood's energy the first m directions must carry.
    tau : float in [0, inf), default=0.0
    memory_budget : int >= 2**16, default=2**28

    Returns
    -------
    dimension : array of shape (N,)
        int64, numpy or torch as ``points``; 0 for a node with no neighbour.

    Examples
    --------
    >>> import numpy as np
    >>> from lib.graphs.nnk import nnk_graph
    >>> grid = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2)
    >>> x = np.c_[grid, np.zeros((25, 3))]                   # a flat 2-D lattice in R^5
    >>> local_dimension(x, nnk_graph(x, 8, sigma=0.5)).reshape(5, 5)[1:-1, 1:-1].tolist()
    [[2, 2, 2], [2, 2, 2], [2, 2, 2]]
    """
    caller = "local_dimension"
    cand, theta, _ = _graph_parts(graph, caller)
    x, restore = _points(points, cand.shape[0], caller)
    level = check_real(threshold, name="threshold", caller=caller, low=0.0, high=1.0,
                       low_open=True)
    keep = (theta > _tau(tau, caller)).to(x.device)
    budget = check_int(memory_budget, name="memory_budget", caller=caller, low=2**16)
    cand = cand.to(x.device)
    count, k = cand.shape
    out = torch.zeros(count, dtype=torch.int64, device=x.device)
    block = _block_rows(count, k * x.shape[1] + 2 * k * k, budget)
    for start in range(0, count, block):
        rows = slice(start, start + block)
        # Off-support rows become zero vectors, which leave the singular values unchanged.
        offsets = (x[cand[rows]] - x[rows].unsqueeze(1)) * keep[rows].unsqueeze(2)
        energy = torch.linalg.svdvals(offsets).square()
        total = energy.sum(1, keepdim=True)
        # The relative slack lets threshold = 1 stop at the rank despite rounding of the sums.
        reached = energy.cumsum(1) >= level * total * (1 - 1e-12)
        out[rows] = torch.where(total[:, 0] > 0, (~reached).sum(1) + 1, 0)
    return restore(out)


def degree_calibration(dims=(1, 2, 3, 4), *, n_neighbors: int = 50, sigma="local",
                       n_points: int = 2000, min_nodes: int = 20, seed=0) -> DegreeCalibration:
    """Mean exact NNK degree (Gaussian kernel) of uniform samples of the unit d-cube.

    Only nodes whose k candidates all lie closer than the cube's boundary count,
    so the curve describes the inside of a flat d-manifold. Even there a random
    sample can leave all k candidates on one side of a node (a gap), so the mean
    at d = 1 sits just below the evenly spaced value 2. The Gaussian NNK
    graph depends on distances only, so no ambient dimension is needed. The
    cosine kernel is not calibrated: its degree depends on where the patch sits
    relative to the origin.

    Parameters
    ----------
    dims : sequence of int >= 1, strictly increasing, default=(1, 2, 3, 4)
    n_neighbors : int >= 1, default=50
        Use the k of the graphs the calibration will be applied to.
    sigma : float in (0, inf) or {"global", "local"}, default="local"
        As in :func:`lib.graphs.nnk.nnk_graph`.
    n_points : int >= n_neighbors + 1, default=2000
        Points per cube; the interior shrinks fast with d (about 90 nodes at d = 4).
    min_nodes : int >= 1, default=20
        Fewest interior nodes a mean may rest on.
    seed : int, numpy Generator or None, default=0

    Returns
    -------
    DegreeCalibration

    Examples
    --------
    >>> cal = degree_calibration((1, 2), n_neighbors=20, n_points=400)
    >>> bool(1.9 < cal.mean_degree[0] <= 2 and 3.5 < cal.mean_degree[1] < 5)
    True
    """
    caller = "degree_calibration"
    dims = [check_int(d, name="dims", caller=caller, low=1) for d in np.atleast_1d(dims).tolist()]
    if not dims or any(b <= a for a, b in itertools.pairwise(dims)):
        raise ValueError(f"The 'dims' parameter of {caller} must be a non-empty, strictly "
                         f"increasing sequence of ints >= 1. Got {dims!r} instead.")
    k = check_int(n_neighbors, name="n_neighbors", caller=caller, low=1)
    n = check_int(n_points, name="n_points", caller=caller, low=k + 1)
    least = check_int(min_nodes, name="min_nodes", caller=caller, low=1)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    means, nodes = [], []
    for d in dims:
        cube = rng.uniform(size=(n, d))
        graph = nnk_graph(cube, k, kernel="gaussian", sigma=sigma, symmetrize=None)
        cand, theta = np.asarray(graph.candidates), np.asarray(graph.theta)
        reach = np.linalg.norm(cube[cand[:, -1]] - cube, axis=1)
        inside = np.minimum(cube, 1 - cube).min(1) > reach
        if inside.sum() < least:
            raise ValueError(f"The 'n_points' parameter of {caller} is too small for d = {d}: "
                             f"{int(inside.sum())} interior nodes, need min_nodes = {least}. "
                             f"Got {n} instead; raise it.")
        means.append((theta[inside] > 0).sum(1).mean())
        nodes.append(int(inside.sum()))
    return DegreeCalibration(np.array(dims), np.array(means), np.array(nodes), k, sigma)


def dimension_from_degree(counts, calibration: DegreeCalibration):
    """Dimension read off a degree calibration by piecewise-linear inversion.

    Parameters
    ----------
    counts : array of shape (N,)
        NNK degrees (:func:`neighbor_count`) of a graph built with the
        calibration's ``n_neighbors`` and ``sigma``.
    calibration : DegreeCalibration
        Its ``mean_degree`` must increase with ``dims``.

    Returns
    -------
    dimension : array of shape (N,)
        float64, numpy or torch as ``counts``; clamped to [dims[0], dims[-1]].

    Examples
    --------
    >>> import numpy as np
    >>> cal = DegreeCalibration(np.array([1, 2, 3]), np.array([2.0, 4.0, 6.5]),
    ...                         np.array([50, 50, 50]), 50, "local")
    >>> dimension_from_degree(np.array([2, 3, 4, 9]), cal).tolist()
    [1.0, 1.5, 2.0, 3.0]
    """
    caller = "dimension_from_degree"
    if not isinstance(calibration, DegreeCalibration):
        raise TypeError(f"The 'calibration' parameter of {caller} must be a DegreeCalibration. "
                        f"Got {type(calibration).__name__} instead.")
    degree = np.asarray(calibration.mean_degree, dtype=np.float64)
    if np.any(np.diff(degree) <= 0):
        raise ValueError(f"The 'calibration' parameter of {caller} must have a mean_degree "
                         f"increasing with dims. Got {degree.tolist()} instead.")
    values, restore = as_tensor(counts)
    check_shape(values.shape, (None,), name="counts", caller=caller, describe="(N,)")
    check_float_dtype(values, name="counts", caller=caller, allowed=REAL_DTYPES)
    check_finite(values, name="counts", caller=caller)
    values = values.to(torch.float64)
    dims = np.interp(values.cpu().numpy(), degree, np.asarray(calibration.dims, np.float64))
    return restore(torch.from_numpy(dims).to(values.device))


def geometric_stability(graphs, *, tau: float = 0.0):
    """Mean Jaccard overlap of each node's NNK neighbourhood over pairs of runs.

    :math:`s_i = \\binom{R}{2}^{-1} \\sum_{r < q} |N_r(i) \\cap N_q(i)| / |N_r(i) \\cup N_q(i)|`,
    with :math:`0/0 = 1` (two empty neighbourhoods agree). Each run may live in
    its own feature space; only node indices are compared.

    Parameters
    ----------
    graphs : sequence of R >= 2 NNKGraph or scipy sparse (N, N) matrices
        Runs on the same N nodes. For a graph the neighbourhood is its directed
        support (``theta > tau``); for a matrix, the entries of row i above tau.
    tau : float in [0, inf), default=0.0

    Returns
    -------
    stability : array of shape (N,)
        In [0, 1]; torch when the first run's ``theta`` is a tensor, else numpy.

    Examples
    --------
    >>> import numpy as np
    >>> from lib.graphs.nnk import nnk_graph
    >>> x = np.arange(6.0)[:, None]
    >>> geometric_stability([nnk_graph(x, 3), nnk_graph(x, 4)]).tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    """
    caller = "geometric_stability"
    level = _tau(tau, caller)
    runs = list(graphs) if isinstance(graphs, (list, tuple)) else None
    if runs is None or len(runs) < 2:
        raise ValueError(f"The 'graphs' parameter of {caller} must be a list or tuple of at "
                         f"least 2 graphs. Got {type(graphs).__name__} "
                         f"{'' if runs is None else f'of length {len(runs)} '}instead.")
    supports = [_support_matrix(run, level, caller, f"graphs[{r}]") for r, run in enumerate(runs)]
    for r, matrix in enumerate(supports):
        if matrix.shape != supports[0].shape:
            raise ValueError(f"The 'graphs' parameter of {caller} must hold runs on the same "
                             f"nodes. Got N = {supports[0].shape[0]} and N = {matrix.shape[0]} "
                             f"(run {r}) instead.")
    total = np.zeros(supports[0].shape[0])
    for a, b in itertools.combinations(supports, 2):
        shared = np.asarray(a.multiply(b).sum(1)).ravel()
        union = np.asarray(a.sum(1)).ravel() + np.asarray(b.sum(1)).ravel() - shared
        total += np.where(union > 0, shared / np.where(union > 0, union, 1), 1.0)
    stability = total / (len(supports) * (len(supports) - 1) / 2)
    first = getattr(runs[0], "theta", None)
    return torch.as_tensor(stability, device=first.device) if isinstance(
        first, torch.Tensor) else stability


def _support_matrix(run, level, caller, name):
    """Binary CSR (N, N) of the neighbourhoods of one run."""
    if scipy.sparse.issparse(run):
        matrix = scipy.sparse.csr_matrix(run, dtype=np.float64)
        check_shape(matrix.shape, (matrix.shape[0],) * 2, name=name, caller=caller,
                    describe="(N, N)")
        matrix.data = (matrix.data > level).astype(np.float64)
    else:
        cand, theta, _ = _graph_parts(run, caller, name=name)
        keep = (theta > level).cpu().numpy()
        rows = np.repeat(np.arange(keep.shape[0]), keep.shape[1])[keep.ravel()]
        matrix = scipy.sparse.csr_matrix(
            (np.ones(rows.size), (rows, cand.cpu().numpy().ravel()[keep.ravel()])),
            shape=(keep.shape[0],) * 2)
    matrix.eliminate_zeros()
    return matrix


def _graph_parts(graph, caller, name="graph"):
    """Candidates (long tensor), theta (tensor) and theta's restore; checked."""
    missing = [a for a in ("candidates", "theta") if not hasattr(graph, a)]
    if missing:
        raise TypeError(f"The {name!r} parameter of {caller} must be an NNKGraph (an object "
                        f"with 'candidates' and 'theta' of shape (N, k)). Got "
                        f"{type(graph).__name__} without {missing} instead.")
    theta, restore = as_tensor(graph.theta)
    check_shape(theta.shape, (None, None), name=f"{name}.theta", caller=caller,
                describe="(N, k)")
    check_float_dtype(theta, name=f"{name}.theta", caller=caller, allowed=REAL_DTYPES)
    check_finite(theta, name=f"{name}.theta", caller=caller)
    if bool((theta < 0).any()):
        raise ValueError(f"The '{name}.theta' parameter of {caller} must be non-negative. "
                         f"Got {int((theta < 0).sum())} negative entries instead.")
    raw = graph.candidates
    cand = raw if isinstance(raw, torch.Tensor) else torch.from_numpy(np.asarray(raw))
    if cand.is_floating_point() or cand.dtype == torch.bool or cand.is_complex():
        raise TypeError(f"The '{name}.candidates' parameter of {caller} must hold integer "
                        f"indices. Got dtype {cand.dtype} instead.")
    count = theta.shape[0]
    check_shape(cand.shape, tuple(theta.shape), name=f"{name}.candidates", caller=caller,
                describe=f"(N, k) = {tuple(theta.shape)}, as theta")
    cand = cand.long()
    own = torch.arange(count, device=cand.device).unsqueeze(1)
    if bool(((cand < 0) | (cand >= count)).any()) or bool((cand == own).any()):
        raise ValueError(f"The '{name}.candidates' parameter of {caller} must hold indices "
                         f"in [0, {count - 1}] other than the node's own. Got range "
                         f"[{int(cand.min())}, {int(cand.max())}] or self-candidates instead.")
    return cand, theta, restore


def _points(points, count, caller):
    x, restore = as_tensor(points)
    check_shape(x.shape, (count, None), name="points", caller=caller,
                describe=f"(N, D) with N = {count} nodes of the graph")
    check_float_dtype(x, name="points", caller=caller)
    check_finite(x, name="points", caller=caller)
    return x, restore


def _tau(tau, caller):
    return check_real(tau, name="tau", caller=caller, low=0.0, high_open=True)


def class_labels(labels, count, classes, caller, *, name, low=0):
    """Integer class labels of the N nodes as an int64 tensor, refusing others by name.

    Parameters
    ----------
    labels : array of shape (N,)
        Integer classes (ints, or floats that are whole numbers), numpy or torch.
    count : int
        N, the number of nodes.
    classes : int or None
        Number of classes C: labels must lie in [low, C); None puts no upper bound.
    caller : str
        The public function the error messages name.
    name : str
        The parameter the error messages name.
    low : int, default=0
        Smallest allowed label (e.g. -1 for "unlabelled").

    Returns
    -------
    labels : int64 torch.Tensor of shape (N,)
        On the CPU for numpy input, else on the device of ``labels``.

    Examples
    --------
    >>> import numpy as np
    >>> class_labels(np.array([0.0, 2.0, 1.0]), 3, 3, "f", name="labels").tolist()
    [0, 2, 1]
    """
    if classes is not None:
        classes = check_int(classes, name="n_classes", caller=caller, low=1)
    y = labels if isinstance(labels, torch.Tensor) else torch.from_numpy(np.asarray(labels))
    whole = y.is_floating_point() and bool((y == y.round()).all())
    if (y.is_floating_point() and not whole) or y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"The {name!r} parameter of {caller} must hold integer classes. "
                        f"Got dtype {getattr(labels, 'dtype', y.dtype)} instead.")
    check_shape(y.shape, (count,), name=name, caller=caller, describe=f"(N,) = ({count},)")
    y = y.long()
    high = "inf)" if classes is None else f"{classes - 1}]"
    if y.numel() and (int(y.min()) < low or (classes is not None and int(y.max()) >= classes)):
        raise ValueError(f"The {name!r} parameter of {caller} must hold ints in [{low}, {high}. "
                         f"Got range [{int(y.min())}, {int(y.max())}] instead.")
    return y


def _weights(graph, caller):
    weights = getattr(graph, "weights", None)
    check_shape(np.shape(weights) if weights is not None else (), (None, None),
                name="graph.weights", caller=caller, describe="(N, N)")
    return weights if scipy.sparse.issparse(weights) else np.asarray(weights)


def _block_rows(count, floats_per_row, budget):
    return max(1, min(count, budget // (8 * floats_per_row)))
