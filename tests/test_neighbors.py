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
