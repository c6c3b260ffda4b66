"""Farthest-point sampling and volume-weighted splits against closed forms and brute force.

Tolerances:
* FPS on a line of equally spaced points is exact combinatorics (which
  indices are chosen), so it is compared as sets of integers.
* The max-min identity of FPS (the separation of the first k + 1 chosen
  points equals the covering radius of the first k) holds up to rounding of
  a sum of D squares in float64: rtol 1e-12.
* The Gonzalez 2-approximation is an inequality between brute-force
  distances; checked with a 1e-12 relative slack for rounding.
* Inclusion frequencies over M independent draws are binomial: a
  frequency with probability p has standard deviation sqrt(p (1 - p) / M).
  Each is allowed 5 sd, a two-sided miss probability of 6e-7 per entry, so
  the fixed-seed test passes unless the sampler is biased. The
  probabilities themselves come from closed forms, not from the sampler.
"""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist, pdist

from lib.sampling import Split, farthest_point_sampling, manifold_splits, volume_weighted_subset


def covering_radius(points, centres):
    """max over points of the distance to the nearest centre (brute force)."""
    return cdist(points, points[list(centres)]).min(axis=1).max()


# --- farthest-point sampling ---------------------------------------------------------------

@pytest.mark.parametrize("start", [0, 32])
def test_fps_on_a_line_takes_the_ends_then_halves(start):
    # 33 = 2**5 + 1 equally spaced points: after both ends, each round of 2**(j-1)
    # picks is exactly the midpoints of the previous dyadic grid (step 32 / 2**j).
    rotation = np.linalg.qr(np.random.default_rng(3).normal(size=(5, 5)))[0]
    line = np.zeros((33, 5))
    line[:, 0] = np.linspace(-1.0, 2.0, 33)
    chosen = farthest_point_sampling(line @ rotation, 33, start=start)
    assert sorted(chosen[:2].tolist()) == [0, 32]
    for level in range(1, 6):
        count = 2**level + 1
        assert set(chosen[:count].tolist()) == set(range(0, 33, 32 // 2**level))


def test_fps_separation_equals_previous_covering_radius():
    points = np.random.default_rng(0).normal(size=(200, 3))
    chosen = farthest_point_sampling(points, 40, seed=1)
    covers = [covering_radius(points, chosen[:k]) for k in range(1, 40)]
    separations = [pdist(points[chosen[:k + 1]]).min() for k in range(1, 40)]
    np.testing.assert_allclose(separations, covers, rtol=1e-12)
    assert np.all(np.diff(covers) <= 1e-12 * covers[0])  # covering radius never grows


@pytest.mark.parametrize("data_seed", range(4))
def test_fps_covering_radius_is_within_twice_the_optimal_k_centre(data_seed):
    points = np.random.default_rng(data_seed).uniform(size=(12, 2))
    chosen = farthest_point_sampling(points, 4, seed=data_seed)
    for k in range(1, 5):
        optimal = min(covering_radius(points, centres)
                      for centres in itertools.combinations(range(12), k))
        greedy = covering_radius(points, chosen[:k])
        assert optimal <= greedy * (1 + 1e-12)
        assert greedy <= 2 * optimal * (1 + 1e-12)


def test_fps_indices_are_distinct_even_with_duplicate_points():
    points = np.repeat(np.random.default_rng(1).normal(size=(5, 2)), 3, axis=0)  # 15 rows, 5 distinct
    chosen = farthest_point_sampling(points, 15, seed=0)
    assert sorted(chosen.tolist()) == list(range(15))
    assert len({tuple(p) for p in points[chosen[:5]]}) == 5  # distinct points come first
    assert chosen.dtype == np.int64


def test_fps_numpy_torch_and_chunks_agree_and_seed_is_deterministic():
    points = np.random.default_rng(2).normal(size=(300, 7))
    reference = farthest_point_sampling(points, 25, seed=5)
    as_torch = farthest_point_sampling(torch.from_numpy(points), 25, seed=5)
    chunked = farthest_point_sampling(points, 25, seed=5, chunk_size=17)
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.int64
    np.testing.assert_array_equal(as_torch.numpy(), reference)
    np.testing.assert_array_equal(chunked, reference)
    np.testing.assert_array_equal(farthest_point_sampling(points, 25, seed=5), reference)
    starts = {int(farthest_point_sampling(points, 1, seed=s)[0]) for s in range(20)}
    assert len(starts) > 1  # the first point really comes from the seed


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "'n' parameter of farthest_point_sampling must be an int in \\[1, 10\\]"),
    (dict(n=11), "'n' parameter of farthest_point_sampling must be an int in \\[1, 10\\]"),
    (dict(n=2, start=10), "'start' parameter of farthest_point_sampling .* \\[0, 9\\]"),
    (dict(n=2, start=0, seed=1), "'seed' parameter of farthest_point_sampling must be None"),
    (dict(n=2, chunk_size=0), "'chunk_size' parameter of farthest_point_sampling"),
])
def test_fps_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        farthest_point_sampling(np.zeros((10, 2)), **kwargs)


def test_fps_rejects_bad_points():
    with pytest.raises(ValueError, match="'points' parameter of farthest_point_sampling must have shape"):
        farthest_point_sampling(np.zeros(10), 2)
    with pytest.raises(ValueError, match="'points' .* finite"):
        farthest_point_sampling(np.array([[0.0], [np.nan]]), 1, start=0)


# --- volume-weighted subsets ---------------------------------------------------------------

WEIGHTS = np.array([1.0, 2.0, 0.0, 3.0, 0.5, 4.0, 0.0, 1.5])


def test_subset_is_sorted_distinct_of_the_rounded_size_and_honours_exclusions():
    for seed in range(50):
        drawn = volume_weighted_subset(WEIGHTS, 0.5, seed=seed, exclude=[3, 7])
        assert drawn.dtype == np.int64 and len(drawn) == 3  # round(0.5 * 6)
        assert np.all(np.diff(drawn) > 0)
        assert not {3, 7, 2, 6} & set(drawn.tolist())  # excluded or zero weight (4 positives left)


def test_subset_fraction_one_is_everything_available():
    np.testing.assert_array_equal(volume_weighted_subset(WEIGHTS, 1.0, seed=0, exclude=[5, 0]),
                                  [1, 2, 3, 4, 6, 7])


def test_subset_draws_zero_weights_only_after_every_positive_one():
    drawn = volume_weighted_subset(WEIGHTS, 7 / 8, seed=0)  # 7 of 8: every positive, one zero
    assert set(np.flatnonzero(WEIGHTS)) < set(drawn.tolist())


def test_single_draw_frequencies_are_the_weight_proportions():
    draws = 4000
    rng = np.random.default_rng(0)
    counts = np.zeros(WEIGHTS.size)
    for _ in range(draws):
        counts[volume_weighted_subset(WEIGHTS, 0.01, seed=rng)] += 1  # round(0.08) -> 1 point
    p = WEIGHTS / WEIGHTS.sum()
    sd = np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(counts / draws - p) <= 5 * sd)
    assert counts[WEIGHTS == 0].sum() == 0


def test_pair_inclusion_matches_successive_sampling_closed_form():
    # Drawing one at a time with p_i = w_i / W, then w_i / (W - w_j):
    # P(i in a sample of 2) = p_i + sum_{j != i} p_j w_i / (W - w_j).
    weights = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    total = weights.sum()
    p = weights / total
    second = np.array([sum(p[j] * weights[i] / (total - weights[j]) for j in range(5) if j != i)
                       for i in range(5)])
    inclusion = p + second
    assert math.isclose(inclusion.sum(), 2.0)
    draws = 4000
    rng = np.random.default_rng(1)
    counts = np.zeros(5)
    for _ in range(draws):
        counts[volume_weighted_subset(weights, 0.4, seed=rng)] += 1
    sd = np.sqrt(inclusion * (1 - inclusion) / draws)
    assert np.all(np.abs(counts / draws - inclusion) <= 5 * sd)
    # The test can tell successive sampling from inclusion simply proportional
    # to the weights (2 p_i): for the heaviest index they differ by > 10 sd.
    assert abs(inclusion[-1] - 2 * p[-1]) > 10 * sd[-1]


def test_subset_follows_torch_input_and_is_deterministic():
    weights = torch.tensor(WEIGHTS)
    drawn = volume_weighted_subset(weights, 0.5, seed=3)
    assert isinstance(drawn, torch.Tensor) and drawn.dtype == torch.int64
    np.testing.assert_array_equal(drawn.numpy(), volume_weighted_subset(WEIGHTS, 0.5, seed=3))


@pytest.mark.parametrize("weights, fraction, exclude, error, match", [
    (WEIGHTS, 0.0, None, ValueError, "'fraction' parameter of volume_weighted_subset .* \\(0, 1\\]"),
    (WEIGHTS, 1.5, None, ValueError, "'fraction' parameter of volume_weighted_subset .* \\(0, 1\\]"),
    (-WEIGHTS, 0.5, None, ValueError, "'weights' parameter of volume_weighted_subset must be non-neg"),
    (np.zeros(4), 0.5, None, ValueError, "'weights' .* at least one positive"),
    (np.array([1.0, np.inf]), 0.5, None, ValueError, "'weights' .* finite"),
    (WEIGHTS, 0.5, [8], ValueError, "'exclude' parameter of volume_weighted_subset .* \\[0, 7\\]"),
    (WEIGHTS, 0.5, range(8), ValueError, "'exclude' .* at least one"),
    (WEIGHTS, 0.5, [0.5], TypeError, "'exclude' .* integer"),
])
def test_subset_rejects_bad_arguments(weights, fraction, exclude, error, match):
    with pytest.raises(error, match=match):
        volume_weighted_subset(weights, fraction, seed=0, exclude=exclude)


# --- manifold splits ------------------------------------------------------------------------

def torus_grid(n_u=12, n_v=10):
    """A torus in R^3 on a (u, v) grid with its closed-form volume element r (R + r cos v)."""
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, n_u, endpoint=False),
                       np.linspace(0, 2 * np.pi, n_v, endpoint=False), indexing="ij")
    big, small = 1.0, 0.4
    points = np.stack([(big + small * np.cos(v)) * np.cos(u), (big + small * np.cos(v)) * np.sin(u),
                       small * np.sin(v)], axis=-1)
    return points, small * (big + small * np.cos(v))


def test_splits_are_disjoint_nested_and_of_the_stated_sizes():
    points, volume = torus_grid()  # 120 points
    fractions = (0.01, 0.05, 0.2, 0.5, 1.0)
    split = manifold_splits(points, volume, fractions=fractions, test_size=500, test_share=0.3, seed=4)
    assert isinstance(split, Split) and split.seed == 4 and split.fractions == fractions
    assert len(split.test) == 36 == len(set(split.test.tolist()))  # min(500, 0.3 * 120)
    rest = 120 - 36
    expected = {f: max(1, math.floor(f * rest + 0.5)) for f in fractions}
    assert split.sizes() == expected
    assert set(split.train[1.0].tolist()) | set(split.test.tolist()) == set(range(120))
    for small, large in zip(fractions, fractions[1:]):
        assert set(split.train[small].tolist()) <= set(split.train[large].tolist())
    assert not set(split.test.tolist()) & set(split.train[1.0].tolist())


def test_split_test_set_is_farthest_point_sampling_from_its_first_point():
    points, volume = torus_grid()
    split = manifold_splits(points, volume, test_size=20, seed=7)
    flat = points.reshape(-1, 3)
    np.testing.assert_array_equal(split.test,
                                  farthest_point_sampling(flat, 20, start=int(split.test[0])))


def test_splits_are_deterministic_and_follow_the_input_type():
    points, volume = torus_grid()
    first = manifold_splits(points, volume, seed=2)
    again = manifold_splits(points.reshape(-1, 3), volume.reshape(-1), seed=2)
    np.testing.assert_array_equal(first.test, again.test)
    for f in first.train:
        np.testing.assert_array_equal(first.train[f], again.train[f])
    other = manifold_splits(points, volume, seed=3)
    assert not np.array_equal(first.train[0.5], other.train[0.5])
    as_torch = manifold_splits(torch.from_numpy(points), torch.from_numpy(volume), seed=2)
    assert isinstance(as_torch.test, torch.Tensor) and isinstance(as_torch.train[0.1], torch.Tensor)
    np.testing.assert_array_equal(as_torch.train[0.1].numpy(), first.train[0.1])


def test_first_training_point_is_drawn_in_proportion_to_the_volume_element():
    # One training point per split: P(heavy) = (heavy weight left) / (weight left),
    # computed per seed from that seed's test set; the count of heavy picks over
    # the seeds is a sum of independent Bernoullis with those probabilities.
    theta = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    circle = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    volume = np.where(np.arange(60) % 3 == 0, 5.0, 1.0)
    heavy = volume == 5.0
    expected, variance, observed = 0.0, 0.0, 0
    for seed in range(300):
        split = manifold_splits(circle, volume, fractions=(0.001,), test_size=6, seed=seed)
        left = np.ones(60, dtype=bool)
        left[split.test] = False
        p = volume[left & heavy].sum() / volume[left].sum()
        expected, variance = expected + p, variance + p * (1 - p)
        observed += int(heavy[split.train[0.001]].sum())
    assert abs(observed - expected) <= 5 * math.sqrt(variance)


@pytest.mark.parametrize("kwargs, match", [
    (dict(fractions=(0.1, 0.0)), "'fractions' parameter of manifold_splits .* \\(0, 1\\]"),
    (dict(fractions=()), "'fractions' parameter of manifold_splits must hold at least one"),
    (dict(test_share=1.0), "'test_share' parameter of manifold_splits .* \\(0, 1\\)"),
    (dict(test_size=0), "'test_size' parameter of manifold_splits .* \\[1, inf\\]"),
    (dict(seed=-1), "'seed' parameter of manifold_splits .* \\[0, inf\\]"),
])
def test_splits_reject_bad_arguments(kwargs, match):
    points, volume = torus_grid()
    with pytest.raises(ValueError, match=match):
        manifold_splits(points, volume, **kwargs)


def test_splits_reject_mismatched_shapes():
    points, volume = torus_grid()
    with pytest.raises(ValueError, match="'points' parameter of manifold_splits must have shape "
                                         "\\(\\*volume_element.shape, D\\) = \\(12, 10, D\\)"):
        manifold_splits(points[:, :5], volume)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fps_and_splits_on_cuda_match_the_cpu():
    points = np.random.default_rng(4).normal(size=(400, 6))
    gpu = farthest_point_sampling(torch.as_tensor(points, device="cuda"), 30, seed=2)
    assert gpu.device.type == "cuda"
    np.testing.assert_array_equal(gpu.cpu().numpy(), farthest_point_sampling(points, 30, seed=2))
    split = manifold_splits(torch.as_tensor(points, device="cuda"),
                            torch.ones(400, device="cuda"), test_size=40, seed=1)
    assert split.test.device.type == "cuda" and split.train[0.5].device.type == "cuda"
    np.testing.assert_array_equal(split.train[0.5].cpu().numpy(),
                                  manifold_splits(points, np.ones(400), test_size=40, seed=1).train[0.5])
