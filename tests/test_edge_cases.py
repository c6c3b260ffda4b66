"""Edge cases from issue 20 that the closed-form tests did not reach.

Each test pins one behaviour a defect broke, against an answer known
without running the code: a duplicated point is a neighbour at distance 0,
a regular grid's NNK graph is connected, two concentric circles 0.1 apart
have reach 0.05, and a slab-by-slab stencil equals the one-shot stencil.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.neighbors import KDTREE_MAX_DIM, nearest_neighbors


@pytest.mark.parametrize("dim", [1, KDTREE_MAX_DIM + 1])
def test_duplicate_is_a_neighbour_and_self_is_not(dim):
    # Rows 0 and 1 coincide: each is the other's nearest neighbour at distance 0, and no
    # row may list itself (k-d tree for dim <= 16, ranked search above).
    line = np.array([[0.0], [0.0], [1.0], [2.5], [4.0]])
    points = np.hstack([line, np.zeros((5, dim - 1))])
    distances, indices = nearest_neighbors(points, 2)
    assert not (indices == np.arange(5)[:, None]).any()
    np.testing.assert_array_equal(indices[:2], [[1, 2], [0, 2]])
    np.testing.assert_array_equal(distances[:2], [[0.0, 1.0], [0.0, 1.0]])


def test_many_copies_never_list_self():
    # Five copies of one point and k = 2: the k-d tree's k + 1 hits may all be other
    # copies; the point itself must still be left out and the distances stay 0.
    points = np.array([[1.0, 2.0]] * 5 + [[3.0, 2.0], [7.0, 2.0]])
    distances, indices = nearest_neighbors(points, 2)
    assert not (indices == np.arange(7)[:, None]).any()
    np.testing.assert_array_equal(distances[:5], np.zeros((5, 2)))
    assert set(indices[:5].ravel()) <= set(range(5))


@pytest.mark.parametrize("count, k", [(10, 4), (10, 2), (50, 8)])
def test_nnk_default_keeps_a_regular_line_connected(count, k):
    import scipy.sparse.csgraph

    from lib.graphs.nnk import nnk_graph

    # Every node of an evenly spaced line keeps its left and right neighbour (the NNK
    # polytope of a point on a line), so the graph is the path 0 - 1 - ... - N-1: one
    # component, no isolated node. The "reference" rule dropped edges whose endpoint
    # errors tie up to rounding and left 4 of 10 nodes isolated at k = 4.
    weights = nnk_graph(np.arange(float(count))[:, None], k).weights
    parts, _ = scipy.sparse.csgraph.connected_components(weights)
    assert parts == 1
    path = np.eye(count, k=1, dtype=bool) | np.eye(count, k=-1, dtype=bool)
    np.testing.assert_array_equal(weights.toarray() > 0, path)


def test_nnk_default_keeps_a_square_lattice_connected():
    import scipy.sparse.csgraph

    from lib.graphs.nnk import nnk_graph

    axis = np.arange(8.0)
    lattice = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    parts, _ = scipy.sparse.csgraph.connected_components(nnk_graph(lattice, 8).weights)
    assert parts == 1


def test_reach_of_two_concentric_circles_is_half_their_gap():
    from lib.geometry.reach import local_reach

    # Circles of radii 1 and 1.1, 800 points each at the same angles, exact tangents. For
    # x on one circle and y on the other at angle phi, |y - x|^2 / (2 d(y - x, T_x)) falls
    # monotonically as phi -> 0 (derivative in cos(phi) < 0), where it is
    # (0.1)^2 / (2 * 0.1) = 0.05; candidates on x's own circle give its radius, >= 1. So
    # the local reach is exactly 0.05 at every point: the medial circle of radius 1.05.
    # The 16 nearest candidates of each point are on its own circle (spacing 2 pi / 800,
    # 8 steps = 0.063 < 0.1), so the deciding candidate comes from the Gram-matrix route,
    # not from the explicit re-check of the nearest: the route whose factor 2 no other
    # test reached (dropping it gave 0.10). Tolerance: that route loses about
    # eps |x|^2 / d^2 = 2e-16 / 0.01 relative; 1e-10 leaves room.
    count, gap = 800, 0.1
    t = np.linspace(0.0, 2 * np.pi, count, endpoint=False)
    ring = np.stack([np.cos(t), np.sin(t)], axis=1)
    points = np.concatenate([ring, (1 + gap) * ring])
    tangents = np.concatenate([np.stack([-np.sin(t), np.cos(t)], axis=1)] * 2)[:, :, None]
    result = local_reach(points, tangents, points, exact_neighbours=16)
    np.testing.assert_allclose(result.local, gap / 2, rtol=1e-10)
    # The witness is the point at the same angle on the other circle, and it lies beyond
    # the 16 nearest candidates: the test exercises the far route.
    other = np.concatenate([np.arange(count) + count, np.arange(count)])
    np.testing.assert_array_equal(result.witness, other)
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    closer = (distance < distance[np.arange(2 * count), other][:, None]).sum(1) - 1
    assert closer.min() >= 16


def _slab_field(periodic, seed=0):
    from lib.grid import Grid

    # Spacing 1/16 and 1/8: powers of two, so the spacing each slab recomputes,
    # (spacing * (size - 1)) / (size - 1), is exact and slab and one-shot stencils do
    # the same arithmetic. Random values: a slab shifted by one row cannot agree by luck.
    first = (0.0, 1.0, 16, "periodic") if periodic else (0.0, 1.0, 17)
    grid = Grid.product(u=first, v=(0.0, 1.0, 9))
    values = np.random.default_rng(seed).standard_normal((*grid.shape, 8))
    return torch.from_numpy(values), grid


@pytest.mark.parametrize("periodic", [False, True], ids=["interval", "periodic"])
@pytest.mark.parametrize("order", [2, 4])
def test_by_slabs_equals_one_shot(periodic, order):
    from lib.geometry.differences import by_slabs, gradient

    values, grid = _slab_field(periodic)
    calls = []

    def stencil(slab, sub):
        calls.append(slab.shape[0])
        return gradient(slab, sub, order=order)

    # One row of values is 9 * 8 * 8 bytes: a budget of 2 rows cuts the first axis into
    # slabs of 2 output rows, each with its halo of order // 2 rows per side.
    sliced = by_slabs(stencil, values, grid, halo=order // 2, slab_bytes=2 * 9 * 8 * 8)
    assert len(calls) > 2
    np.testing.assert_array_equal(sliced.numpy(), gradient(values, grid, order=order).numpy())


@pytest.mark.parametrize("periodic", [False, True], ids=["interval", "periodic"])
@pytest.mark.parametrize("order", [2, 4])
def test_volume_element_slab_by_slab_equals_one_shot(monkeypatch, periodic, order):
    import functools

    from lib.geometry import differences, metric, pointwise

    # volume_element works slab by slab only on large grids (48 x 48 in R^4096 and up);
    # a small slab budget sends this small grid the same way. The result must be that of
    # the plain formula sqrt(det(J^T J)) on the whole grid; a halo off by one shifts or
    # mis-sizes every slab.
    values, grid = _slab_field(periodic, seed=1)
    slabs = []

    def small_slabs(function, *args, **kwargs):
        def counted(slab, sub):
            slabs.append(slab.shape[0])
            return function(slab, sub)
        return differences.by_slabs(counted, *args, **kwargs, slab_bytes=2 * 9 * 8 * 8)

    monkeypatch.setattr(metric, "by_slabs", small_slabs)
    sliced = metric.volume_element(values, grid, order=order)
    assert len(slabs) > 2
    whole = pointwise.volume_element_from_jacobian(differences.gradient(values, grid, order=order))
    # Equal to rounding: the batched determinant may block a slab differently from the
    # whole grid (measured: exact here); 1e-13 is far below a one-row shift (order 1).
    np.testing.assert_allclose(sliced.numpy(), whole.numpy(), rtol=1e-13, atol=0)
