"""Exact nearest neighbours: the k-d tree, the ranked GEMM search and an independent oracle agree.

The oracle is ``scipy.spatial.distance.cdist`` (explicit differences, float64)
followed by a full sort. Distances must match it to 1e-12 relative; the
ranked search must also keep full precision where the plain matrix-product
form cannot (points far from the origin, neighbours close together), which a
version without the exact re-check fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from lib.neighbors import KDTREE_MAX_DIM, nearest_neighbors


def oracle(points, k):
    full = cdist(points, points)
    np.fill_diagonal(full, np.inf)
    order = np.argsort(full, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(full, order, 1), order


@pytest.mark.parametrize("dim", [3, KDTREE_MAX_DIM + 1, 300])
def test_matches_explicit_distances(dim):
    points = np.random.default_rng(dim).standard_normal((400, dim))
    distances, indices = nearest_neighbors(points, 7, memory_budget=2**18)
    want, want_idx = oracle(points, 7)
    np.testing.assert_allclose(distances, want, rtol=1e-12)
    np.testing.assert_array_equal(indices, want_idx)


def test_full_precision_far_from_the_origin():
    # Neighbours 1e-6 apart on a cloud offset by 1e4: |x|^2 ~ 1e8 and the GEMM form's
    # rounding ~1e-8 is as large as the squared distances ~1e-12..1e-10 themselves.
    rng = np.random.default_rng(0)
    points = 1e4 + 1e-6 * rng.standard_normal((200, 64)).cumsum(0)
    distances, _ = nearest_neighbors(points, 3)
    want, _ = oracle(points, 3)
    np.testing.assert_allclose(distances, want, rtol=1e-9)


def test_full_precision_for_close_pairs_in_a_wide_cloud():
    # Pairs 1e-9 apart in a cloud of spread 1: squared distances ~1e-16 sit below the
    # GEMM rounding (~1e-14) even after centring; only the exact re-check recovers them.
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((150, 64))
    points = np.concatenate([centres, centres + 1e-9 * rng.standard_normal((150, 64))])
    distances, indices = nearest_neighbors(points, 1)
    want, want_idx = oracle(points, 1)
    np.testing.assert_allclose(distances, want, rtol=1e-6)
    np.testing.assert_array_equal(indices, want_idx)


def test_torch_in_torch_out_and_float32():
    points = torch.randn(100, 40, generator=torch.Generator().manual_seed(1))
    distances, indices = nearest_neighbors(points, 2)
    assert isinstance(distances, torch.Tensor) and distances.dtype == torch.float32
    assert indices.dtype == torch.int64
    want, _ = oracle(points.double().numpy(), 2)
    np.testing.assert_allclose(distances.numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("bad, match", [(0, "n_neighbors"), (10, "n_neighbors")])
def test_bad_neighbour_count(bad, match):
    with pytest.raises(ValueError, match=match):
        nearest_neighbors(np.zeros((10, 2)) + np.arange(10)[:, None], bad)


def test_rejects_nan_and_wrong_shape():
    with pytest.raises(ValueError, match="points"):
        nearest_neighbors(np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), 1)
    with pytest.raises(ValueError, match="points"):
        nearest_neighbors(np.zeros(5), 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu():
    points = np.random.default_rng(2).standard_normal((500, 100))
    cpu, cpu_idx = nearest_neighbors(points, 5)
    gpu, gpu_idx = nearest_neighbors(torch.as_tensor(points, device="cuda"), 5)
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, rtol=1e-12)
    np.testing.assert_array_equal(gpu_idx.cpu().numpy(), cpu_idx)


# -- query_neighbors: nearest rows of a reference cloud for separate queries ----------------------

from lib.neighbors import query_neighbors


def query_oracle(reference, queries, k):
    full = cdist(queries, reference)
    order = np.argsort(full, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(full, order, 1), order


@pytest.mark.parametrize("dim", [3, 300])
def test_query_matches_explicit_distances(dim):
    # D = 3 takes the k-d tree, D = 300 the ranked GEMM search; a small budget makes many blocks.
    rng = np.random.default_rng(dim)
    reference, queries = rng.standard_normal((500, dim)), rng.standard_normal((70, dim))
    queries[:5] = reference[[3, 17, 17, 250, 499]]                     # coinciding queries
    distances, indices = query_neighbors(reference, queries, 6, memory_budget=2**18)
    want, want_idx = query_oracle(reference, queries, 6)
    np.testing.assert_allclose(distances, want, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(indices, want_idx)
    np.testing.assert_array_equal(indices[:5, 0], [3, 17, 17, 250, 499])  # found at distance 0
    assert not distances[:5, 0].any()


@pytest.mark.parametrize("dim", [2, 40])
def test_query_ties_give_exact_distances_and_valid_indices(dim):
    # Integer lattice points and queries at lattice points and cell centres: many equidistant
    # neighbours. The choice among ties is free, so check what must hold: the sorted distances
    # equal the oracle's and each returned index is a distinct point at its stated distance.
    rng = np.random.default_rng(dim)
    reference = rng.integers(0, 3, (300, dim)).astype(float)
    reference = np.unique(reference, axis=0)
    queries = np.concatenate([reference[:10], reference[10:20] + 0.5])
    k = 7
    distances, indices = query_neighbors(reference, queries, k)
    want, _ = query_oracle(reference, queries, k)
    np.testing.assert_allclose(distances, want, rtol=1e-12, atol=1e-12)
    measured = np.linalg.norm(reference[indices] - queries[:, None, :], axis=2)
    np.testing.assert_allclose(measured, distances, rtol=1e-12, atol=1e-12)
    assert all(len(set(row)) == k for row in indices)


def test_query_types_follow_the_queries():
    generator = torch.Generator().manual_seed(3)
    reference = torch.randn(200, 30, generator=generator)
    queries = torch.randn(15, 30, generator=generator)
    distances, indices = query_neighbors(reference, queries, 4)
    assert isinstance(distances, torch.Tensor) and distances.dtype == torch.float32
    assert indices.dtype == torch.int64 and distances.shape == (15, 4)
    want, want_idx = query_oracle(reference.double().numpy(), queries.double().numpy(), 4)
    np.testing.assert_allclose(distances.numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(indices.numpy(), want_idx)
    # numpy queries against a tensor reference come back as numpy; float64 queries promote.
    d64, i64 = query_neighbors(reference, queries.double().numpy(), 4)
    assert isinstance(d64, np.ndarray) and d64.dtype == np.float64
    np.testing.assert_array_equal(i64, want_idx)
    # k = N and no queries are allowed.
    d_all, _ = query_neighbors(reference[:5], queries, 5)
    assert d_all.shape == (15, 5)
    d_none, i_none = query_neighbors(reference, queries[:0], 3)
    assert d_none.shape == i_none.shape == (0, 3)


def test_query_errors_name_the_parameter():
    reference = np.arange(20.0).reshape(10, 2)
    with pytest.raises(ValueError, match=r"'n_neighbors' parameter of query_neighbors .* \[1, 10\]"):
        query_neighbors(reference, reference, 11)
    with pytest.raises(ValueError, match=r"'n_neighbors'"):
        query_neighbors(reference, reference, 0)
    with pytest.raises(ValueError, match=r"'queries' parameter of query_neighbors .*\(Q, 2\)"):
        query_neighbors(reference, np.zeros((3, 3)), 1)
    with pytest.raises(ValueError, match="'queries'.*finite"):
        query_neighbors(reference, np.array([[np.inf, 0.0]]), 1)
    with pytest.raises(ValueError, match="'reference'.*finite"):
        query_neighbors(np.array([[np.nan, 0.0]]), reference, 1)
    with pytest.raises(ValueError, match=r"'reference'.*\(N, D\)"):
        query_neighbors(np.zeros(4), reference, 1)
    with pytest.raises(ValueError, match=r"'memory_budget'"):
        query_neighbors(reference, reference, 1, memory_budget=1000)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dim", [3, 100])
def test_query_gpu_matches_cpu(dim):
    rng = np.random.default_rng(4)
    reference, queries = rng.standard_normal((800, dim)), rng.standard_normal((60, dim))
    cpu, cpu_idx = query_neighbors(reference, queries, 5)
    gpu, gpu_idx = query_neighbors(torch.as_tensor(reference, device="cuda"),
                                   torch.as_tensor(queries, device="cuda"), 5)
    assert gpu.device.type == "cuda" and gpu_idx.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, rtol=1e-12)
    np.testing.assert_array_equal(gpu_idx.cpu().numpy(), cpu_idx)
    with pytest.raises(ValueError, match="'queries'.*device"):
        query_neighbors(torch.as_tensor(reference, device="cuda"), torch.as_tensor(queries), 5)


def test_rows_with_ties_past_the_candidates_are_searched_again_explicitly(monkeypatch):
    """A cubic integer lattice in R^20 (padded with zeros, shifted far from the origin):
    each interior point has 6 neighbours at distance 1, so with k = 3 the k-th distance ties
    the last of the k + 1 candidates and those rows cannot be certified. They are searched
    again explicitly; distances match the oracle to 1e-12."""
    import lib.neighbors as neighbors

    u, v, w = np.meshgrid(np.arange(6.0), np.arange(6.0), np.arange(6.0), indexing="ij")
    points = np.zeros((u.size, 20))
    points[:, 0], points[:, 1], points[:, 2] = u.ravel(), v.ravel(), w.ravel()
    points += 1e3
    calls = []
    explicit = neighbors._explicit_row
    monkeypatch.setattr(neighbors, "_explicit_row",
                        lambda *args: calls.append(1) or explicit(*args))
    distances, indices = nearest_neighbors(points, 3)
    expected, _ = oracle(points, 3)
    np.testing.assert_allclose(distances, expected, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(points[indices] - points[:, None], axis=2),
                               expected, rtol=1e-12)
    assert len(calls) >= 4 ** 3                      # every interior point at least


def test_the_ranked_search_gives_the_same_answer_on_one_and_two_threads():
    # D > KDTREE_MAX_DIM: scikit-learn ranks chunks side by side, torch re-measures blocks.
    points = np.random.default_rng(2).standard_normal((3000, 40))
    old = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(nearest_neighbors(points, 7))
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(old)
    (d1, i1), (d2, i2) = results
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)
    exact = np.sort(cdist(points, points) + np.diag(np.full(3000, np.inf)), axis=1)[:, :7]
    np.testing.assert_allclose(d1, exact, rtol=1e-14)
