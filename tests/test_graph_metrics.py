r"""Manifold graph metrics and label propagation against closed forms and independent loops.

Most graphs here come from ``exact_nnk`` below, a per-node ``scipy.optimize.nnls``
on an eigen-factor of the Gaussian kernel: independent of ``lib.graphs.nnk``
and a plain object with the NNKGraph attributes, which is all the metrics may
assume.

Closed forms (Gaussian kernel, bandwidth sigma, spacing h, a = exp(-h^2/2 sigma^2)):

- Line, interior node. With support {left, right}: K_SS = [[1, a^4], [a^4, 1]],
  K_Si = (a, a), so theta = a / (1 + a^4) on both. A candidate m >= 2 steps to
  one side has gradient g_m = a^(m^2) [a^2 (a^(-2m) + a^(2m)) / (1 + a^4) - 1],
  and a^2 (a^(-2m) + a^(2m)) increases with m from its value 1 + a^4 at m = 1,
  so g_m > 0: the KKT conditions hold and the (unique, K is positive definite)
  solution keeps exactly two neighbours, for any sigma. An end keeps one.
- Square lattice, node not on the edge. Try the support {(+-1, 0), (0, +-1)}:
  each row of K_SS sums to 1 + 2a^2 + a^4 = (1 + a^2)^2, so theta = a / (1 + a^2)^2
  on each, weighted degree 4a / (1 + a^2)^2 and error
  e = 1 - 2 * 4a * theta + theta^2 * 4 (1 + a^2)^2 = 1 - 4a^2 / (1 + a^2)^2.
  A lattice point (m, n) has g = a^(m^2 + n^2) [a^2 (c_m + c_n) / (1 + a^2)^2 - 1]
  with c_x = a^(2x) + a^(-2x), increasing in |x|. For |m|, |n| >= 1,
  a^2 (c_m + c_n) >= 2 + 2a^4 > (1 + a^2)^2 since (1 - a^2)^2 > 0; for n = 0,
  |m| >= 2, a^2 (c_m + 2) - (1 + a^2)^2 = (1 - a^2)(a^(-2) - a^4) > 0. So every
  other candidate is strictly inactive: the NNK neighbours are exactly the four
  axis neighbours, the polytope diameter is 2h and the local PCA dimension 2.

Tolerances: the closed forms are evaluated in float64 and nnls returns the
active-set solution by a least-squares solve, so theta agrees to ~1e-14; we
allow 1e-10. Batched metrics against their per-node loops: 1e-12 relative
(the same arithmetic in another order). Statistical checks state their
standard deviations where they are used.
"""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph
import torch
from scipy.optimize import nnls
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist

from lib.graphs import metrics
from lib.graphs.nnk import knn_graph, nnk_graph
from lib.graphs.propagation import (graph_accuracy, label_propagation, propagation_accuracy,
                                    stratified_labels)


def exact_nnk(points, k, sigma=None):
    """Per-node exact NNK (Gaussian; sigma=None: the node's k-th candidate distance / 3)."""
    x = np.asarray(points, dtype=np.float64)
    count = len(x)
    _, nearest = cKDTree(x).query(x, k + 1)
    candidates = np.empty((count, k), dtype=np.int64)
    theta, error = np.zeros((count, k)), np.zeros(count)
    for i in range(count):
        candidates[i] = [j for j in nearest[i] if j != i][:k]
        local = x[np.r_[i, candidates[i]]]
        squared = ((local[:, None] - local[None]) ** 2).sum(-1)
        s = math.sqrt(squared[0, 1:].max()) / 3 if sigma is None else sigma
        # Rows of an eigen-factor are feature vectors with F F' = K; unlike Cholesky it
        # survives the near-singular kernels of dense 1-D samples.
        lam, vec = np.linalg.eigh(np.exp(-squared / (2 * s * s)))
        factor = vec * np.sqrt(lam.clip(0))
        theta[i], residual = nnls(factor[1:].T, factor[0])
        error[i] = residual**2
    weights = scipy.sparse.csr_matrix((theta.ravel(), (np.repeat(np.arange(count), k),
                                                       candidates.ravel())), shape=(count, count))
    return SimpleNamespace(candidates=candidates, theta=theta, error=error, weights=weights)


def embed(points, ambient=10, seed=0):
    """Isometric copy in R^ambient (a random orthonormal frame)."""
    frame = np.linalg.qr(np.random.default_rng(seed).normal(size=(ambient, ambient)))[0]
    return points @ frame[: points.shape[1]]


def lattice(n=9, h=0.7):
    grid = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    inner = ((grid > 0) & (grid < n - 1)).all(1)
    return embed(h * grid.astype(np.float64)), inner


def test_line_keeps_left_and_right_neighbours():
    h, n = 0.3, 30
    x = embed(h * np.arange(n, dtype=np.float64)[:, None], ambient=5)
    graph = exact_nnk(x, 6)
    expected = np.r_[1, np.full(n - 2, 2), 1]
    np.testing.assert_array_equal(metrics.neighbor_count(graph), expected)
    np.testing.assert_allclose(metrics.polytope_diameter(x, graph, normalize=False),
                               h * expected, rtol=1e-12)
    np.testing.assert_array_equal(metrics.local_dimension(x, graph), np.ones(n))


def test_square_lattice_closed_forms():
    h, sigma = 0.7, 0.5
    x, inner = lattice(h=h)
    graph = exact_nnk(x, 12, sigma=sigma)
    a = math.exp(-h * h / (2 * sigma**2))
    np.testing.assert_array_equal(metrics.neighbor_count(graph)[inner], 4)
    np.testing.assert_allclose(metrics.weighted_degree(graph)[inner], 4 * a / (1 + a * a) ** 2,
                               rtol=1e-10)
    np.testing.assert_allclose(metrics.reconstruction_error(graph)[inner],
                               1 - 4 * a * a / (1 + a * a) ** 2, rtol=1e-10)
    np.testing.assert_allclose(metrics.polytope_diameter(x, graph, normalize=False)[inner],
                               2 * h, rtol=1e-12)
    np.testing.assert_array_equal(metrics.local_dimension(x, graph)[inner], 2)


def test_lattice_metrics_accept_the_library_graph_in_numpy_and_torch():
    x, inner = lattice()
    ours = exact_nnk(x, 12, sigma=0.5)
    for points in (x, torch.from_numpy(x)):
        graph = nnk_graph(points, 12, sigma=0.5, symmetrize=None)
        count = metrics.neighbor_count(graph)
        assert isinstance(count, type(points))
        np.testing.assert_array_equal(np.asarray(count), metrics.neighbor_count(ours))
        diameter = metrics.polytope_diameter(points, graph, normalize=False)
        assert isinstance(diameter, type(points))
        np.testing.assert_allclose(np.asarray(diameter)[inner], 1.4, rtol=1e-12)


@pytest.mark.parametrize("radius", [0.5, 3.0])
def test_chordal_diameter_on_a_circle_is_scale_free(radius):
    # Evenly spaced on a circle around the origin: the line's two-neighbour support
    # (checked by the count) and the chord between i - 1 and i + 1, 2 sin(2 pi / n),
    # whatever the radius, since the points are normalized first.
    n = 40
    angle = 2 * np.pi * np.arange(n) / n
    x = embed(radius * np.c_[np.cos(angle), np.sin(angle)], ambient=6)
    graph = exact_nnk(x, 10)
    np.testing.assert_array_equal(metrics.neighbor_count(graph), 2)
    np.testing.assert_allclose(metrics.polytope_diameter(x, graph),
                               2 * np.sin(2 * np.pi / n), rtol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_polytope_diameter_batch_equals_loop(normalize):
    x = np.random.default_rng(1).normal(size=(200, 4)) + 3.0
    graph = exact_nnk(x, 15)
    y = x / np.linalg.norm(x, axis=1, keepdims=True) if normalize else x
    loop = [pdist(y[np.r_[i, graph.candidates[i][graph.theta[i] > 0]]]).max()
            for i in range(len(x))]
    batched = metrics.polytope_diameter(x, graph, normalize=normalize, memory_budget=2**16)
    np.testing.assert_allclose(batched, loop, rtol=1e-12)


def test_loo_error_is_zero_on_separated_clusters():
    # Blobs 100 standard deviations apart, 50 points each, k = 10: every candidate
    # shares the node's class, so every interpolation is exact.
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(size=(50, 3)) + 100 * c for c in np.eye(3)])
    labels = np.repeat(np.arange(3), 50)
    loo = metrics.loo_interpolation_error(exact_nnk(x, 10), labels, 3)
    assert loo.mean == 0.0
    np.testing.assert_array_equal(loo.predicted, labels)
    np.testing.assert_allclose(loo.soft, 0.0, atol=1e-12)


def test_loo_error_is_chance_on_random_labels_and_matches_a_loop():
    # Own labels never enter the interpolation, so with labels uniform over 4 classes and
    # independent of everything, P(error_i) = 3/4 exactly. The per-node errors are weakly
    # dependent (neighbours share labels); the binomial sd is 0.0137 for N = 1000 and we
    # allow 0.06 (over 4 sd) for the dependence.
    rng = np.random.default_rng(3)
    x = rng.uniform(size=(1000, 2))
    labels = rng.integers(0, 4, size=1000)
    graph = exact_nnk(x, 12)
    loo = metrics.loo_interpolation_error(graph, labels, 4)
    assert abs(loo.mean - 0.75) < 0.06
    for i in range(len(x)):
        votes = np.zeros(4)
        for j, t in zip(graph.candidates[i], graph.theta[i]):
            votes[labels[j]] += t
        assert loo.predicted[i] == votes.argmax()
        assert loo.errors[i] == float(votes.argmax() != labels[i])
        assert abs(loo.soft[i] - (1 - votes[labels[i]] / votes.sum())) < 1e-12


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_local_dimension_recovers_a_flat_patch_in_r10(dim):
    # Offsets of a flat patch lie in its d-plane, so no estimate can exceed d (the extra
    # singular values are rounding, ~1e-16 of the energy). Below d: a few elongated
    # neighbourhoods; measured (seed 10 + d, threshold 0.95) 100 %, 97 % and 89.5 % of
    # nodes exactly at d, so we ask for the median and 85 %.
    rng = np.random.default_rng(10 + dim)
    x = embed(rng.uniform(size=(800, dim)), seed=dim)
    estimate = metrics.local_dimension(x, exact_nnk(x, 20))
    assert estimate.max() <= dim
    assert np.median(estimate) == dim
    assert np.mean(estimate == dim) >= 0.85


def test_degree_calibration_grows_with_dimension_and_inverts():
    # d = 1: two neighbours unless a gap leaves all candidates on one side (rare);
    # d = 2: 3.9-4.4 in the project notes' exact runs.
    cal = metrics.degree_calibration((1, 2, 3), n_neighbors=20, n_points=600, seed=0)
    assert 1.9 < cal.mean_degree[0] <= 2.0
    assert 3.5 < cal.mean_degree[1] < 4.6
    assert cal.mean_degree[2] > cal.mean_degree[1]
    np.testing.assert_allclose(metrics.dimension_from_degree(cal.mean_degree, cal), [1, 2, 3],
                               rtol=1e-12)
    counts = torch.tensor([1, 2, 100])
    out = metrics.dimension_from_degree(counts, cal)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), [1, 1, 3])          # clamped at both ends


def jaccard_loop(supports):
    """Mean pairwise Jaccard of per-node sets, by Python sets."""
    count = len(supports[0])
    out = np.zeros(count)
    pairs = list(itertools.combinations(supports, 2))
    for a, b in pairs:
        for i in range(count):
            union = a[i] | b[i]
            out[i] += len(a[i] & b[i]) / len(union) if union else 1.0
    return out / len(pairs)


def test_geometric_stability_identical_perturbed_and_loop():
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(300, 2))
    graph = exact_nnk(x, 12)
    np.testing.assert_array_equal(metrics.geometric_stability([graph, graph, graph]), 1.0)
    runs = [graph] + [exact_nnk(x + 0.01 * rng.normal(size=x.shape), 12) for _ in range(2)]
    stability = metrics.geometric_stability(runs)
    assert 0.0 < stability.mean() < 1.0
    supports = [[set(g.candidates[i][g.theta[i] > 0].tolist()) for i in range(len(x))]
                for g in runs]
    np.testing.assert_allclose(stability, jaccard_loop(supports), rtol=1e-12)
    # A sparse matrix stands for a run: its rows are the neighbourhoods.
    np.testing.assert_allclose(metrics.geometric_stability([runs[0].weights, runs[1]]),
                               jaccard_loop(supports[:2]), rtol=1e-12)


def test_label_propagation_two_node_closed_form():
    # S swaps the nodes, (I - alpha S)^-1 = [[1, alpha], [alpha, 1]] / (1 - alpha^2).
    alpha = 0.9
    for method in ("iterate", "direct"):
        result = label_propagation(scipy.sparse.csr_matrix([[0, 3.0], [3.0, 0]]),
                                   np.array([-1, 1]), alpha=alpha, method=method, tol=1e-14)
        np.testing.assert_allclose(result.scores[:, 1], [alpha / (1 + alpha), 1 / (1 + alpha)],
                                   rtol=1e-12)
        np.testing.assert_array_equal(result.scores[:, 0], 0.0)
        np.testing.assert_array_equal(result.labels, [1, 1])


def test_label_propagation_iteration_meets_the_linear_system():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 3))
    W = knn_graph(x, 8)
    labels = np.where(rng.uniform(size=200) < 0.1, rng.integers(0, 3, 200), -1)
    alpha, tol = 0.99, 1e-10
    direct = label_propagation(W, labels, alpha=alpha, method="direct")
    Y = np.zeros((200, 3))
    Y[labels >= 0, labels[labels >= 0]] = 1
    d = np.asarray(W.sum(1)).ravel()
    S = W.toarray() / np.sqrt(np.outer(d, d))
    residual = (np.eye(200) - alpha * S) @ direct.scores - (1 - alpha) * Y
    assert np.abs(residual).max() < 1e-12
    # Symmetric W: the iterate is within alpha * step / (1 - alpha) of the fixed point,
    # and the step is at most tol * |F| (module docstring of lib.graphs.propagation).
    iterated = label_propagation(W, labels, alpha=alpha, tol=tol)
    assert iterated.converged and iterated.n_iter > 1
    bound = alpha / (1 - alpha) * tol * np.linalg.norm(iterated.scores)
    assert np.linalg.norm(iterated.scores - direct.scores) <= bound


def test_propagation_recovers_separated_blobs_and_two_moons():
    from sklearn.datasets import make_moons

    # Blobs 50 sd apart, k below the blob size: no edge crosses. Propagation never leaves
    # a component, so a node is predicted right iff its component holds a label (else -1).
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.normal(size=(60, 2)) + 50 * c for c in np.eye(2)] +
                       [rng.normal(size=(60, 2))])
    y = np.repeat(np.arange(3), 60)
    given = np.full(180, -1)
    given[[0, 60, 120]] = [0, 1, 2]
    for W in (nnk_graph(x, 10).weights, knn_graph(x, 10)):
        _, which = scipy.sparse.csgraph.connected_components(W)
        assert all(np.unique(y[which == c]).size == 1 for c in np.unique(which))
        reached = np.isin(which, which[given >= 0])
        predicted = label_propagation(W, given).labels
        np.testing.assert_array_equal(predicted, np.where(reached, y, -1))
    # The kNN graph is connected within each blob (checked), so with one label per class
    # (stratified draw) the convenience wrapper must score 1.
    assert scipy.sparse.csgraph.connected_components(knn_graph(x, 10))[0] == 3
    assert propagation_accuracy(x, y, 0.02, 10, graph="knn", seed=0) == 1.0
    # Two moons: the NNK graph splits exactly into the two moons (checked below), so one
    # label per moon decides everything; the kNN graph has a few crossing edges
    # (measured: accuracy 1.0 for seeds 0-4), so we ask 0.95 of it.
    x, y = make_moons(300, noise=0.05, random_state=0)
    # (The reference rule's graph: it keeps only mutual, lower-error edges. The default
    # "max" rule joins the moons by a few weak edges and still scores 1.0 here.)
    reference = nnk_graph(x, 10, symmetrize="reference").weights
    parts, which = scipy.sparse.csgraph.connected_components(reference)
    assert parts == 2 and all(np.unique(y[which == c]).size == 1 for c in range(2))
    assert propagation_accuracy(x, y, 0.02, 10, graph="nnk", seed=1,
                                symmetrize="reference") == 1.0
    assert propagation_accuracy(x, y, 0.02, 10, graph="knn", seed=1) >= 0.95
    assert (propagation_accuracy(x, y, 0.05, 5, graph="knn", seed=3)
            == propagation_accuracy(x, y, 0.05, 5, graph="knn", seed=3))


@pytest.mark.parametrize("call, error, words", [
    (lambda g, x: metrics.neighbor_count(object()), TypeError,
     "'graph' parameter of neighbor_count"),
    (lambda g, x: metrics.neighbor_count(g, tau=-1.0), ValueError, "'tau'"),
    (lambda g, x: metrics.polytope_diameter(x[:-1], g), ValueError,
     "'points' parameter of polytope"),
    (lambda g, x: metrics.polytope_diameter(0 * x, g), ValueError, "no zero rows"),
    (lambda g, x: metrics.loo_interpolation_error(g, np.zeros(len(x), int) + 3, 3), ValueError,
     "[0, 2]"),
    (lambda g, x: metrics.loo_interpolation_error(g, np.zeros(len(x)) + 0.5, 3), TypeError,
     "integer"),
    (lambda g, x: metrics.loo_interpolation_error(g, np.zeros(len(x), int), 0), ValueError,
     "'n_classes'"),
    (lambda g, x: metrics.local_dimension(x, g, threshold=1.5), ValueError, "(0.0, 1.0]"),
    (lambda g, x: metrics.local_dimension(x, SimpleNamespace(candidates=g.candidates,
                                                             theta=-g.theta)),
     ValueError, "non-negative"),
    (lambda g, x: metrics.neighbor_count(SimpleNamespace(candidates=g.candidates[:, :3],
                                                         theta=g.theta)),
     ValueError, "'graph.candidates'"),
    (lambda g, x: metrics.geometric_stability([g]), ValueError, "at least 2"),
    (lambda g, x: metrics.geometric_stability([g, exact_nnk(x[:-1], 5)]), ValueError,
     "same nodes"),
    (lambda g, x: metrics.degree_calibration((2, 1)), ValueError, "strictly increasing"),
    (lambda g, x: metrics.degree_calibration((4,), n_neighbors=20, n_points=100), ValueError,
     "too small"),
    (lambda g, x: label_propagation(g.weights, -np.ones(len(x), int)), ValueError,
     "at least one"),
    (lambda g, x: label_propagation(g.weights[:-1], np.zeros(len(x), int)), ValueError,
     "square"),
    (lambda g, x: label_propagation(-g.weights, np.zeros(len(x), int)), ValueError, "[0, inf)"),
    (lambda g, x: label_propagation(g.weights, np.zeros(len(x), int), alpha=1.0), ValueError,
     "'alpha' parameter of label_propagation"),
    (lambda g, x: label_propagation(g.weights, np.zeros(len(x), int) - 2), ValueError, "[-1,"),
    (lambda g, x: propagation_accuracy(x, np.zeros(len(x), int), 0.0, 5), ValueError,
     "'fraction'"),
    (lambda g, x: propagation_accuracy(x, np.zeros(len(x), int), 0.1, 5, graph="mst"),
     ValueError, "'graph' parameter of propagation_accuracy"),
    # Issue 20: each function names itself, not the function it hands the work to.
    (lambda g, x: propagation_accuracy(np.where(x > 1, np.nan, x), np.zeros(len(x), int), 0.1,
                                       5), ValueError, "'points' parameter of propagation_acc"),
    (lambda g, x: graph_accuracy(g.weights, np.zeros(len(x), int), -np.ones(len(x), int)),
     ValueError, "'given' parameter of graph_accuracy must label at least one"),
    (lambda g, x: graph_accuracy(g.weights, np.zeros(len(x), int), np.ones(len(x), int)),
     ValueError, "'given' parameter of graph_accuracy must hold ints in [-1, 0]"),
    (lambda g, x: graph_accuracy(g.weights[:-1], np.zeros(len(x), int), np.zeros(len(x), int)),
     ValueError, "'weights' parameter of graph_accuracy"),
    (lambda g, x: graph_accuracy(g.weights, np.zeros(len(x), bool), np.zeros(len(x), int)),
     TypeError, "'labels' parameter of graph_accuracy must hold integer"),
    (lambda g, x: label_propagation(g.weights.toarray() + 0.5j, np.zeros(len(x), int)),
     TypeError, "'weights' parameter of label_propagation must hold real"),
    (lambda g, x: stratified_labels(np.array([0, 1, np.nan]), 0.5), TypeError,
     "'labels' parameter of stratified_labels must hold integer"),
    (lambda g, x: stratified_labels(np.array(1), 0.5), ValueError,
     "'labels' parameter of stratified_labels must have shape (N,)"),
    (lambda g, x: stratified_labels(np.array([0, 1]), 1.5), ValueError,
     "'fraction' parameter of stratified_labels"),
    (lambda g, x: metrics.neighbor_count(SimpleNamespace(candidates=g.candidates,
                                                         theta=g.theta + 0j)),
     TypeError, "'graph.theta' parameter of neighbor_count must have dtype"),
    (lambda g, x: metrics.reconstruction_error(SimpleNamespace(
        candidates=g.candidates, theta=g.theta, error=np.full(len(x), np.inf))),
     ValueError, "'graph.error' parameter of reconstruction_error must hold only finite"),
    (lambda g, x: metrics.polytope_diameter(x.astype(np.float16), g), TypeError,
     "'points' parameter of polytope_diameter must have dtype float32 or float64"),
    (lambda g, x: metrics.local_dimension(torch.from_numpy(x).bfloat16(), g), TypeError,
     "'points' parameter of local_dimension must have dtype float32 or float64"),
    (lambda g, x: metrics.dimension_from_degree(np.array([2.0, 3 + 1j]), metrics.DegreeCalibration(
        np.array([1, 2]), np.array([2.0, 4.0]), np.array([9, 9]), 5, "local")),
     TypeError, "'counts' parameter of dimension_from_degree must have dtype"),
    (lambda g, x: metrics.dimension_from_degree(np.array([2.0, np.nan]), metrics.DegreeCalibration(
        np.array([1, 2]), np.array([2.0, 4.0]), np.array([9, 9]), 5, "local")),
     ValueError, "'counts' parameter of dimension_from_degree must hold only finite"),
    (lambda g, x: metrics.geometric_stability([g.weights, g.weights[:-1]]), ValueError,
     "'graphs[1]' parameter of geometric_stability must have shape (N, N)"),
])
def test_bad_input_names_parameter_and_function(call, error, words):
    x = np.random.default_rng(7).normal(size=(30, 3))
    with pytest.raises(error) as raised:
        call(exact_nnk(x, 5), x)
    assert words in str(raised.value)
