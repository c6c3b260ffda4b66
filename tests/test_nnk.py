"""NNK graphs against independent computations: scipy's NNLS, closed forms and brute force.

Every per-node problem is rebuilt here from the points alone (numpy, explicit
differences), never from the library's kernel blocks, and judged by its own KKT
certificate: with g = K_SS theta - K_Si, max(|g| on the support, max(0, -g) off it)
must be <= 1e-8 (the solver certifies 1e-10 on its own blocks; rebuilding the
kernel with other rounding moves g by ~1e-14 times the weights' size). Objectives
equal scipy.optimize.nnls on a factor of the same problem within 1e-10 absolute
(objectives are O(1); both solvers are exact up to rounding, observed ~1e-15).

Weights of two runs on transformed data (rotation, translation, scaling) agree to
1e-7: the kernels then differ by rounding (~1e-15) and the weights by that times
the condition number of K_PP on the support (below 1e7 on these clouds).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import nnls
from scipy.spatial.distance import cdist
from scipy.stats import ortho_group

from lib.graphs import knn_graph, nnk_graph, nnk_solver

KKT_TOL = 1e-8
OBJECTIVE_TOL = 1e-10


def relu_features(n, dim, seed, latent=3):
    """ReLU of a random linear map of a low-dimensional Gaussian cloud, plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, latent))
    linear = z @ rng.standard_normal((latent, dim)) + 0.2 * rng.standard_normal((n, dim))
    return np.maximum(linear, 0) + 0.01


def curved_patch(n, dim, seed):
    """A 2-D patch of a paraboloid embedded isometrically-ish in R^dim."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform(-1, 1, (n, 2))
    surface = np.column_stack([uv, 0.3 * (uv**2).sum(1)])
    return surface @ ortho_group.rvs(dim, random_state=seed)[:3]


def oracle_candidates(points, k):
    full = cdist(points, points)
    np.fill_diagonal(full, np.inf)
    order = np.argsort(full, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(full, order, 1), order


def problem(points, i, cand, kernel, sigma):
    """K_SS, K_Si and a factor (M, y) with M'M = K_SS, M'y = K_Si, from the points alone."""
    x, s = points[i], points[cand]
    if kernel == "cosine":
        unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
        phi = np.column_stack([unit(s), np.ones(len(cand))]) / np.sqrt(2)
        target = np.append(unit(x), 1.0) / np.sqrt(2)
        return phi @ phi.T, phi @ target, phi.T, target
    A = np.exp(-cdist(s, s, "sqeuclidean") / (2 * sigma**2))
    b = np.exp(-((s - x) ** 2).sum(1) / (2 * sigma**2))
    root = np.linalg.cholesky(A).T
    return A, b, root, np.linalg.solve(root.T, b)


def certificate(A, b, theta):
    g = A @ theta - b
    return max(np.abs(g[theta > 0]).max(initial=0), np.clip(-g[theta == 0], 0, None).max(initial=0))


def objective(A, b, theta):
    return 0.5 * theta @ A @ theta - b @ theta


def node_sigma(graph, i):
    return graph.sigma[i] if np.ndim(graph.sigma) else graph.sigma


@pytest.mark.parametrize("kernel, sigma", [("gaussian", "local"), ("gaussian", "global"),
                                           ("gaussian", 0.7), ("cosine", "local")])
def test_every_solve_is_certified_and_matches_scipy_nnls(kernel, sigma):
    points = relu_features(300, 12, seed=1) if kernel == "cosine" else curved_patch(300, 6, seed=1)
    graph = nnk_graph(points, 20, kernel=kernel, sigma=sigma, symmetrize=None)
    # The cosine kernel's candidates are the most similar directions.
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    ranked = unit if kernel == "cosine" else points
    _, cand = oracle_candidates(ranked, 20)
    np.testing.assert_array_equal(graph.candidates, cand)
    for i in range(len(points)):
        A, b, factor, target = problem(points, i, cand[i], kernel, node_sigma(graph, i))
        theta = graph.theta[i]
        assert theta.min() >= 0
        assert certificate(A, b, theta) <= KKT_TOL
        reference, _ = nnls(factor, target, maxiter=1000)
        assert abs(objective(A, b, theta) - objective(A, b, reference)) <= OBJECTIVE_TOL
        assert graph.error[i] == pytest.approx(1 + 2 * objective(A, b, theta), abs=OBJECTIVE_TOL)
    assert graph.kkt.max() <= 1e-10 and graph.fallbacks == 0


@pytest.mark.parametrize("start", ["empty", "pruned"])
def test_solver_on_random_problems_with_many_removals(start):
    # Strongly correlated columns make Lawson-Hanson drop weights often (its inner loop),
    # and make the heuristic's pruning miss the optimum, so the certificate must catch it.
    rng = np.random.default_rng(3)
    count, k = 300, 14
    mixing = rng.standard_normal((count, k + 2, k)) + 2.0
    M = mixing / np.linalg.norm(mixing, axis=1, keepdims=True)
    y = rng.standard_normal((count, k + 2)) + 1.0
    A, b = np.einsum("nmj,nml->njl", M, M), np.einsum("nmj,nm->nj", M, y)
    if start == "pruned":
        pruned, residual = nnk_solver._pruned(torch.from_numpy(A), torch.from_numpy(b))
        # The pruning certifies 21 of the 300 (measured) and hands the rest to
        # Lawson-Hanson: both paths are exercised.
        assert 10 <= (residual <= 1e-10).sum() <= 290
    theta, residual, unsolved = nnk_solver.solve_exact(torch.from_numpy(A), torch.from_numpy(b),
                                                       tol=1e-10, start=start)
    theta = theta.numpy()
    assert not unsolved.any()
    for n in range(count):
        assert certificate(A[n], b[n], theta[n]) <= KKT_TOL
        reference, _ = nnls(M[n], y[n], maxiter=1000)
        gap = objective(A[n], b[n], theta[n]) - objective(A[n], b[n], reference)
        assert abs(gap) <= OBJECTIVE_TOL


def test_a_batch_equals_a_loop():
    points = relu_features(120, 8, seed=2)
    whole = nnk_graph(points, 10, kernel="cosine", symmetrize=None)
    pieces = nnk_graph(points, 10, kernel="cosine", symmetrize=None, memory_budget=2**16)
    # Blocks of other sizes take other summation orders in the batched kernels: the
    # weights then differ by rounding times the condition number of K_PP (< 1e4 here).
    np.testing.assert_array_equal(pieces.support, whole.support)
    np.testing.assert_allclose(pieces.theta, whole.theta, rtol=0, atol=1e-10)


def test_support_within_candidates_and_never_self():
    points = curved_patch(200, 5, seed=4)
    points[50:60] = points[:10]                   # exact duplicates must not sneak self in
    graph = nnk_graph(points, 8, symmetrize=None)
    directed = graph.weights.tocoo()
    assert not np.any(directed.row == directed.col)
    members = {(i, j) for i, row in enumerate(graph.candidates) for j in row}
    assert all((i, j) in members for i, j in zip(directed.row, directed.col))
    assert not np.any(graph.candidates == np.arange(200)[:, None])
    # Reference symmetrization keeps only mutual-candidate pairs.
    sym = nnk_graph(points, 8, symmetrize="reference").weights.tocoo()
    assert all((i, j) in members and (j, i) in members for i, j in zip(sym.row, sym.col))


@pytest.mark.parametrize("sigma", ["local", "global"])
def test_points_on_a_line_keep_left_and_right_neighbours(sigma):
    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0, 10, 150))
    points = t[:, None] * ortho_group.rvs(5, random_state=5)[:1] + 3.0
    graph = nnk_graph(points, 20, sigma=sigma, symmetrize=None)
    for i in range(150):
        kept = set(graph.candidates[i][graph.support[i]].tolist())
        assert kept == {i - 1, i + 1} - {-1, 150}


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
def test_two_candidate_rule(kernel):
    # Three points: each vertex's two candidates are the other two. With two candidates
    # theta = A^-1 b is positive iff K_jk < K_ij / K_ik < 1 / K_jk (Cramer's rule on the
    # 2 x 2 system); otherwise one weight is 0 at the optimum. For the Gaussian kernel,
    # K_ij > K_jk K_ik reads |x_i - x_j|^2 < |x_j - x_k|^2 + |x_i - x_k|^2: both kept iff
    # the angles at x_j and x_k are acute, whatever sigma.
    rng = np.random.default_rng(6)
    both_seen = 0
    for _ in range(100):
        points = rng.standard_normal((3, 3))
        graph = nnk_graph(points, 2, kernel=kernel, symmetrize=None)
        j, k = graph.candidates[0]
        A, b, _, _ = problem(points, 0, np.array([j, k]), kernel, node_sigma(graph, 0))
        ratio = b[0] / b[1]
        margin = min(ratio - A[0, 1], 1 / A[0, 1] - ratio)
        if abs(margin) < 1e-9:
            continue
        both = bool(graph.support[0].all())
        assert both == (margin > 0)
        if kernel == "gaussian":
            xi, xj, xk = points
            acute = np.dot(xi - xj, xk - xj) > 0 and np.dot(xi - xk, xj - xk) > 0
            assert both == acute
        both_seen += both
    assert 10 < both_seen < 90           # both outcomes occur


def test_cosine_kernel_is_nnls_on_augmented_unit_vectors():
    points = relu_features(200, 10, seed=7)
    graph = nnk_graph(points, 8, kernel="cosine", symmetrize=None)
    for i in range(200):
        _, _, factor, target = problem(points, i, graph.candidates[i], "cosine", None)
        reference, _ = nnls(factor, target, maxiter=1000)   # unique: 8 columns in R^11
        support = graph.support[i]
        np.testing.assert_array_equal(support, reference > 0)
        # The batched solver works on the Gram form, whose rounding the condition number
        # of K_PP amplifies (squared against the augmented form): bound the difference so.
        gram = factor[:, support].T @ factor[:, support]
        bound = 1e-13 * np.linalg.cond(gram) * max(1.0, reference.max())
        np.testing.assert_allclose(graph.theta[i], reference, rtol=0, atol=bound)


def test_cosine_degree_is_at_most_dimension_plus_one():
    # The Gram matrix has rank <= D + 1 and Lawson-Hanson keeps independent columns.
    points = np.random.default_rng(8).standard_normal((300, 3)) + 0.5
    graph = nnk_graph(points, 15, kernel="cosine", symmetrize=None)
    assert graph.support.sum(1).max() <= 4
    assert graph.kkt.max() <= 1e-10


def test_gaussian_graph_is_invariant_to_rigid_motions_and_scale():
    points = curved_patch(250, 6, seed=9)
    rotation = ortho_group.rvs(6, random_state=10)
    base = nnk_graph(points, 12, symmetrize=None)
    for moved in (points @ rotation.T + 4.0, 3.7 * points, 0.2 * points @ rotation.T - 1.0):
        other = nnk_graph(moved, 12, symmetrize=None)
        np.testing.assert_array_equal(other.candidates, base.candidates)
        np.testing.assert_allclose(other.theta, base.theta, rtol=0, atol=1e-7)
        np.testing.assert_allclose(other.error, base.error, rtol=0, atol=1e-9)


def test_cosine_graph_is_invariant_to_rotation_and_scale():
    # k <= D + 1 keeps K_SS non-singular, so the weights (not only the fit) are unique.
    points = relu_features(200, 12, seed=11)
    base = nnk_graph(points, 10, kernel="cosine", symmetrize=None)
    moved = 2.5 * points @ ortho_group.rvs(12, random_state=12).T
    other = nnk_graph(moved, 10, kernel="cosine", symmetrize=None)
    np.testing.assert_array_equal(other.candidates, base.candidates)
    np.testing.assert_allclose(other.theta, base.theta, rtol=0, atol=1e-7)


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
def test_duplicates_do_not_crash(kernel):
    points = relu_features(100, 5, seed=13)
    points = np.concatenate([points, points[:20], points[:5]])       # pairs and triples
    graph = nnk_graph(points, 6, kernel=kernel, symmetrize=None)
    assert np.isfinite(graph.theta).all() and graph.kkt.max() <= 1e-10
    for i in range(20):
        # A copy of the query reconstructs it exactly: error 0, all weight on copies.
        copies = np.flatnonzero(np.all(points == points[i], axis=1))
        assert graph.error[i] <= 1e-12
        on_copies = graph.theta[i][np.isin(graph.candidates[i], copies)].sum()
        assert on_copies == pytest.approx(1.0, abs=1e-9)
    reference = nnk_graph(points, 6, kernel=kernel, mode="reference", symmetrize=None)
    for i in range(20):
        # The reference short-cut: only the duplicates, with their kernel value (1).
        kept = reference.candidates[i][reference.support[i]]
        assert set(kept.tolist()) <= set(np.flatnonzero(np.all(points == points[i], axis=1)))
        assert np.all(np.abs(reference.theta[i][reference.support[i]] - 1) <= 1e-9)


def test_all_candidates_duplicates_with_local_sigma():
    points = np.repeat(np.array([[0.0, 0.0], [5.0, 1.0]]), 4, axis=0)
    graph = nnk_graph(points, 3, symmetrize=None)
    np.testing.assert_allclose(graph.error, 0, atol=1e-12)
    np.testing.assert_allclose(graph.theta.sum(1), 1, atol=1e-12)


def test_reference_heuristic_keeps_fewer_neighbours_and_never_wins():
    # Isotropic Gaussian blob, Gaussian kernel: every K_SS is far from singular, so all of
    # the heuristic's Cholesky factorizations succeed (checked below).
    points = np.random.default_rng(14).standard_normal((300, 4))
    exact = nnk_graph(points, 15, symmetrize=None)
    reference = nnk_graph(points, 15, mode="reference", symmetrize=None)
    misses = 0
    for i in range(300):
        A, b, _, _ = problem(points, i, exact.candidates[i], "gaussian", exact.sigma[i])
        assert np.linalg.eigvalsh(A).min() > 1e-8
        gap = objective(A, b, reference.theta[i]) - objective(A, b, exact.theta[i])
        assert gap >= -1e-12
        misses += gap > 1e-9
    assert reference.support.sum(1).mean() <= exact.support.sum(1).mean()
    assert misses > 0            # on this data the heuristic does miss the optimum somewhere


def test_reference_mode_reproduces_the_pruning_loop_on_a_small_case():
    # theta = b on all three candidates has a negative entry after one solve; the heuristic
    # drops it for good and re-solves on the other two, and never looks at g again.
    A = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.5], [0.2, 0.5, 1.0]])
    b = np.array([0.9, 0.7, 0.6])
    first = np.linalg.solve(A, b)
    assert first[1] < 0
    keep = np.array([0, 2])
    want = np.zeros(3)
    want[keep] = np.linalg.solve(A[np.ix_(keep, keep)], b[keep])
    np.testing.assert_allclose(nnk_solver.solve_reference(A, b, x_tol=1e-10), want, rtol=1e-14)


def dense_symmetrized(graph, rule):
    count = len(graph.theta)
    W = np.zeros((count, count))
    E = np.zeros((count, count))
    for i in range(count):
        W[i, graph.candidates[i]] = graph.theta[i]
        E[i, graph.candidates[i]] = graph.error[i]
    if rule == "reference":
        W = np.where(E < E.T, W, 0)
        return np.maximum(W, W.T)
    return {"max": np.maximum, "min": np.minimum}[rule](W, W.T)


@pytest.mark.parametrize("rule", ["reference", "max", "min"])
def test_symmetrization_rules_match_their_dense_definitions(rule):
    points = curved_patch(60, 4, seed=15)
    directed = nnk_graph(points, 6, symmetrize=None)
    graph = nnk_graph(points, 6, symmetrize=rule)
    np.testing.assert_array_equal(graph.weights.toarray(), dense_symmetrized(directed, rule))
    assert (graph.weights != graph.weights.T).nnz == 0


def test_reference_symmetrization_on_a_small_line():
    # Candidates (k = 2): 0 -> {1, 2}, 1 -> {0, 2}, 2 -> {1, 0}, 3 -> {2, 1}. No node lists 3,
    # so its edges are one-sided and dropped; a mutual pair keeps the weight of its
    # lower-error endpoint (the errors differ here, no ties).
    points = np.array([[0.0], [1.0], [2.2], [6.0]])
    directed = nnk_graph(points, 2, sigma=1.0, symmetrize=None)
    weights = nnk_graph(points, 2, sigma=1.0, symmetrize="reference").weights.toarray()
    assert not weights[3].any() and not weights[:, 3].any()
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        low, high = (i, j) if directed.error[i] < directed.error[j] else (j, i)
        assert directed.error[low] < directed.error[high]
        weight = directed.theta[low][list(directed.candidates[low]).index(high)]
        assert weights[i, j] == weights[j, i] == weight


def test_reference_symmetrization_drops_both_directions_of_a_tie():
    # With k = 1 and a fixed sigma, mutual nearest neighbours have equal errors; the
    # strict rule E_ij < E_ji keeps neither direction (the Python reference's behaviour).
    points = np.array([[0.0], [1.0], [5.0], [6.5]])
    directed = nnk_graph(points, 1, sigma=1.0, symmetrize=None)
    assert directed.error[0] == directed.error[1] and directed.error[2] == directed.error[3]
    assert nnk_graph(points, 1, sigma=1.0, symmetrize="reference").weights.nnz == 0
    assert nnk_graph(points, 1, sigma=1.0, symmetrize="max").weights.nnz == 4


def test_knn_graph_matches_kernel_weights():
    points = curved_patch(80, 3, seed=16)
    dist, cand = oracle_candidates(points, 5)
    sigma = dist[:, -1] / 3
    W = np.zeros((80, 80))
    for i in range(80):
        W[i, cand[i]] = np.exp(-dist[i] ** 2 / (2 * sigma[i] ** 2))
    np.testing.assert_allclose(knn_graph(points, 5).toarray(), np.maximum(W, W.T), rtol=1e-13)
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    _, similar = oracle_candidates(unit, 5)              # cosine neighbours: directions
    C = np.zeros((80, 80))
    for i in range(80):
        C[i, similar[i]] = (1 + unit[similar[i]] @ unit[i]) / 2
    np.testing.assert_allclose(knn_graph(points, 5, kernel="cosine").toarray(),
                               np.maximum(C, C.T), rtol=1e-13)


def test_fallback_is_counted_and_exact(monkeypatch):
    # Batched paths that certify nothing send every node to scipy.
    monkeypatch.setattr(nnk_solver, "_lawson_hanson", lambda A, b, add_tol: torch.zeros_like(b))
    monkeypatch.setattr(nnk_solver, "_pruned", lambda A, b: (
        torch.zeros_like(b), torch.full((b.shape[0],), torch.inf, dtype=b.dtype)))
    monkeypatch.setattr(nnk_solver, "solve_factor", lambda factor, target, tol: (
        torch.zeros(factor.shape[0], factor.shape[2], dtype=factor.dtype),
        torch.ones(factor.shape[0], dtype=factor.dtype),
        torch.ones(factor.shape[0], dtype=torch.bool)))
    points = curved_patch(60, 4, seed=17)
    for kernel in ("gaussian", "cosine"):
        graph = nnk_graph(points, 8, kernel=kernel, symmetrize=None)
        assert graph.fallbacks == 60
        assert graph.kkt.max() <= 1e-9


def helix(n, seed):
    """Points of a helix in R^3: neighbouring directions agree to 1e-8 (cos close to 1)."""
    t = np.sort(np.random.default_rng(seed).random(n)) * 4 * np.pi
    return np.c_[np.cos(t), np.sin(t), 0.1 * t]


@pytest.mark.parametrize("k", [10, 50])
def test_cosine_near_duplicates_are_solved_in_factor_form_without_scipy(k):
    """Near-duplicate unit vectors: the Gram form's kernel matrices have condition numbers
    of 1e10-1e13, and before the factor-form solver 40 % (k = 10) to 74 % (k = 50) of
    these nodes went to scipy. Now none does, and the optimum is scipy's to rounding."""
    points = helix(1500, seed=k)
    graph = nnk_graph(points, k, kernel="cosine", symmetrize=None)
    assert graph.fallbacks == 0
    assert graph.kkt.max() <= 1e-12
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    for i in range(0, 1500, 50):
        factor = np.vstack([unit[graph.candidates[i]].T, np.ones(k)]) / np.sqrt(2)
        target = np.append(unit[i], 1.0) / np.sqrt(2)
        reference, _ = nnls(factor, target, maxiter=50 * k)
        ours = np.sum((factor @ graph.theta[i] - target) ** 2)
        assert ours <= np.sum((factor @ reference - target) ** 2) + 1e-15
        assert graph.error[i] == pytest.approx(ours, abs=1e-15)


def test_cosine_nodes_the_gram_form_cannot_certify_go_to_the_factor_form(monkeypatch):
    # D + 1 = 21 rows is above the factor form's default range: the Gram form runs first,
    # here made to fail everywhere, and the factor form certifies every node instead.
    monkeypatch.setattr(nnk_solver, "_lawson_hanson", lambda A, b, add_tol: torch.zeros_like(b))
    points = curved_patch(60, 20, seed=19)
    graph = nnk_graph(points, 8, kernel="cosine", symmetrize=None)
    assert graph.fallbacks == 0
    assert graph.kkt.max() <= 1e-10


def test_torch_in_torch_out():
    points = curved_patch(80, 4, seed=18)
    from_numpy = nnk_graph(points, 6)
    from_torch = nnk_graph(torch.from_numpy(points), 6)
    assert isinstance(from_torch.theta, torch.Tensor) and isinstance(from_torch.sigma, torch.Tensor)
    np.testing.assert_array_equal(from_torch.theta.numpy(), from_numpy.theta)
    assert (from_torch.weights != from_numpy.weights).nnz == 0


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"points": np.zeros(5)}, ValueError, "'points' parameter of nnk_graph"),
    ({"points": np.full((5, 2), np.nan)}, ValueError, "finite"),
    ({"points": np.zeros((1, 2))}, ValueError, "at least 2"),
    ({"n_neighbors": 0}, ValueError,
     "'n_neighbors' parameter of nnk_graph must be an int in [1, 9]"),
    ({"n_neighbors": 10}, ValueError, "[1, 9]"),
    ({"n_neighbors": 2.0}, TypeError, "'n_neighbors'"),
    ({"kernel": "rbf"}, ValueError, "'kernel' parameter of nnk_graph must be one of"),
    ({"sigma": -1.0}, ValueError, "'sigma' parameter of nnk_graph must be a float in (0.0, inf)"),
    ({"sigma": "median"}, ValueError, "'sigma'"),
    ({"mode": "fast"}, ValueError, "'mode'"),
    ({"symmetrize": "mean"}, ValueError, "'symmetrize'"),
    ({"x_tol": 0.0}, ValueError, "'x_tol' parameter of nnk_graph must be a float in (0.0, 1.0)"),
    ({"memory_budget": 10}, ValueError, "'memory_budget'"),
    ({"kernel": "cosine", "points": np.zeros((10, 3))}, ValueError, "zero rows"),
    # torch casts complex to real with a warning it gives once per process (issue 20).
    ({"points": np.ones((10, 3)) + 0.5j}, TypeError,
     "'points' parameter of nnk_graph must have dtype"),
])
def test_bad_inputs_name_parameter_function_and_range(kwargs, exc, words):
    args = {"points": np.random.default_rng(0).standard_normal((10, 3)), "n_neighbors": 3, **kwargs}
    with pytest.raises(exc) as info:
        nnk_graph(args.pop("points"), args.pop("n_neighbors"), **args)
    assert words in str(info.value)


def test_knn_graph_bad_inputs():
    with pytest.raises(ValueError, match="'n_neighbors' parameter of knn_graph"):
        knn_graph(np.zeros((4, 2)), 4)
    with pytest.raises(ValueError, match="'kernel' parameter of knn_graph"):
        knn_graph(np.zeros((4, 2)), 2, kernel="linear")
    with pytest.raises(TypeError, match="'points' parameter of knn_graph must have dtype"):
        knn_graph(np.ones((4, 2)) + 0.5j, 2)


def _problem(count=3, k=4, seed=0):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((count, k, k))
    A = M @ M.transpose(0, 2, 1) + k * np.eye(k)
    b = rng.standard_normal((count, k))
    return torch.from_numpy(A), torch.from_numpy(b), torch.from_numpy(np.abs(b))


@pytest.mark.parametrize("function", [nnk_solver.objective, nnk_solver.kkt_residual])
@pytest.mark.parametrize("change, exc, words", [
    (lambda t, A, b: (t.float(), A, b), TypeError, "'A' parameter of {f} must have the dtype"),
    (lambda t, A, b: (t.long(), A, b), TypeError, "'theta' parameter of {f} must have dtype"),
    (lambda t, A, b: (t, A.to(torch.complex128), b), TypeError, "'A' parameter of {f}"),
    (lambda t, A, b: (t.numpy(), A, b), TypeError, "'theta' parameter of {f} must be a torch"),
    (lambda t, A, b: (t[:1], A, b), ValueError, "'A' parameter of {f} must have shape"),
    (lambda t, A, b: (t, A, b[..., None]), ValueError, "'b' parameter of {f} must have shape"),
    (lambda t, A, b: (t[:, :0], A[:, :0, :0], b[:, :0]), ValueError, "k >= 1"),
    (lambda t, A, b: (t, A, b.clone().fill_(torch.inf)), ValueError, "'b' parameter of {f} "
                                                                     "must hold only finite"),
])
def test_objective_and_residual_refuse_bad_batches_by_name(function, change, exc, words):
    A, b, theta = _problem()
    with pytest.raises(exc) as info:
        function(*change(theta, A, b))
    assert words.format(f=function.__name__) in str(info.value)


@pytest.mark.parametrize("function", ["fallback_nnls", "solve_reference"])
@pytest.mark.parametrize("change, exc, words", [
    (lambda A, b: (A[0], b), ValueError, "'A' parameter of {f} must have shape (k, k)"),
    (lambda A, b: (A, b[:-1]), ValueError, "'b' parameter of {f} must have shape (k,) = (4,)"),
    (lambda A, b: (A[:0, :0], b[:0]), ValueError, "k >= 1"),
    (lambda A, b: (A + 0.5j, b), TypeError, "'A' parameter of {f} must have dtype"),
    (lambda A, b: (A.astype(np.float16), b), TypeError, "'A' parameter of {f} must have dtype"),
    (lambda A, b: (A, np.where(b > 0, np.nan, b)), ValueError, "'b' parameter of {f} must hold "
                                                                 "only finite"),
])
def test_single_node_solvers_refuse_bad_problems_by_name(function, change, exc, words):
    A, b, _ = _problem()
    A, b = change(A[0].numpy(), b[0].numpy())
    call = getattr(nnk_solver, function)
    with pytest.raises(exc) as info:
        call(A, b, x_tol=1e-10) if function == "solve_reference" else call(A, b)
    assert words.format(f=function) in str(info.value)


def test_single_node_solvers_take_tensors_and_float32():
    A, b, _ = _problem()
    for function in (nnk_solver.fallback_nnls,
                     lambda A, b: nnk_solver.solve_reference(A, b, x_tol=1e-10)):
        want = function(A[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(function(A[0], b[0]), want)
        np.testing.assert_allclose(function(A[0].float(), b[0].float()), want, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
def test_cuda_matches_cpu(kernel):
    points = relu_features(2000, 32, seed=19)
    cpu = nnk_graph(points, 30, kernel=kernel, symmetrize=None)
    gpu = nnk_graph(torch.from_numpy(points).cuda(), 30, kernel=kernel, symmetrize=None)
    assert gpu.theta.device.type == "cuda"
    np.testing.assert_array_equal(gpu.candidates.cpu().numpy(), cpu.candidates)
    np.testing.assert_allclose(gpu.theta.cpu().numpy(), cpu.theta, rtol=0, atol=1e-7)
    assert float(gpu.kkt.max()) <= 1e-10


@pytest.mark.parametrize("x, exc, words", [
    (torch.ones(4, 2, dtype=torch.long), TypeError, "'points' parameter of f must have dtype"),
    (torch.ones(4), ValueError, "'points' parameter of f must have shape (N, D)"),
    (torch.tensor([[1.0, torch.nan]]), ValueError, "'points' parameter of f must hold only finite"),
    (np.ones((4, 2)), TypeError, "'points' parameter of f must reach unit_rows as a torch tensor"),
])
def test_unit_rows_refuses_what_its_callers_would_not_pass(x, exc, words):
    from lib.graphs.nnk import unit_rows
    with pytest.raises(exc) as info:
        unit_rows(x, "f")
    assert words in str(info.value)


@pytest.mark.parametrize("graph", ["nnk", "knn"])
def test_cosine_candidates_are_the_most_similar_directions_not_the_nearest_points(graph):
    """Raw features whose norms vary by 100x: the cosine kernel's candidates must be the k
    largest cosine similarities (brute force), which here differ from the Euclidean ranking."""
    from lib.graphs.nnk import knn_graph, nnk_graph

    rng = np.random.default_rng(3)
    directions = rng.normal(size=(120, 6))
    x = directions * rng.uniform(0.1, 10.0, size=(120, 1))
    k = 7
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    cosine = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    euclidean = np.argsort(np.linalg.norm(x[:, None] - x[None], axis=2)
                           + np.diag(np.full(120, np.inf)), axis=1, kind="stable")[:, :k]
    differ = np.mean([set(a) != set(b) for a, b in zip(cosine, euclidean)])
    assert differ > 0.5                            # the example separates the two rankings
    if graph == "nnk":
        candidates = nnk_graph(x, k, kernel="cosine", symmetrize=None).candidates
        assert all(set(c) == set(e) for c, e in zip(candidates, cosine))
    else:
        weights = knn_graph(x, k, kernel="cosine").toarray()
        for i, row in enumerate(cosine):               # max-symmetrized: i's choices are in
            assert np.all(weights[i, row] > 0)
            assert np.allclose(weights[i, row], (1 + similarity[i, row]) / 2)


@pytest.mark.parametrize("kernel", ["gaussian", "cosine"])
def test_threads_solve_blocks_side_by_side_with_the_same_answer(kernel, monkeypatch):
    """Blocks of nodes run on Python threads, each on one torch thread; the graph is the same.

    The blocks of 1,024 nodes never meet at an OpenMP barrier (whose spinning idle
    threads made a loaded 2-core machine 3-20x slower): each solve sees one torch thread,
    the caller's count comes back, and 1 and 2 threads give identical weights.
    """
    points = np.random.default_rng(5).random((2500, 20))
    seen = []
    solve = nnk_solver.solve_exact

    def recording(A, b, *, tol, start="empty"):
        seen.append(torch.get_num_threads())
        return solve(A, b, tol=tol, start=start)

    monkeypatch.setattr(nnk_solver, "solve_exact", recording)
    old = torch.get_num_threads()
    graphs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            graphs.append(nnk_graph(points, 12, kernel=kernel))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(old)
    assert set(seen) == {1} and len(seen) >= 6              # 3 blocks per graph
    one, two = graphs
    np.testing.assert_array_equal(one.theta, two.theta)
    np.testing.assert_array_equal(one.candidates, two.candidates)
    assert (one.weights != two.weights).nnz == 0


def test_solve_exact_refuses_an_unknown_start_before_any_work():
    A, b, _ = _problem()
    with pytest.raises(ValueError, match="'start' parameter of solve_exact must be one of"):
        nnk_solver.solve_exact(A, b, tol=1e-10, start="heuristic")


def test_gaussian_graphs_start_from_the_pruning_and_keep_the_exact_answer():
    points = relu_features(600, 16, seed=7)
    graph = nnk_graph(points, 30, symmetrize=None)
    assert graph.fallbacks == 0 and graph.kkt.max() <= 1e-10
    for i in range(0, 600, 40):
        A, b, _, _ = problem(points, i, graph.candidates[i], "gaussian", graph.sigma[i])
        # The objective of scipy's NNLS on a factor of the problem, to rounding.
        reference = nnk_solver.fallback_nnls(A, b)
        assert objective(A, b, graph.theta[i]) <= objective(A, b, reference) + OBJECTIVE_TOL
