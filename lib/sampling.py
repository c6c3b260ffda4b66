r"""Train/test splits of a sampled manifold: farthest points and volume-weighted draws.

The bound-scaling study (paper figs 3-5) measures how the error of a
manifold estimator falls with the number of training points. Its protocol:

* **Test set**: farthest-point sampling (FPS) of ``min(test_size,
  test_share * N)`` grid points, so the test points cover the manifold
  evenly and no training point can sit on top of one.
* **Training sets**: drawn from the remaining points *without replacement*
  with probability proportional to the volume element
  :math:`\sqrt{\det g(\theta)}`, which makes them uniform in Riemannian
  volume rather than in the chart.

Weighted sampling without replacement uses exponential clocks
(Efraimidis & Spirakis 2006): index :math:`i` gets the arrival time
:math:`E_i / w_i` with :math:`E_i \sim \mathrm{Exp}(1)` independent, and the
first :math:`k` arrivals are the sample. This is the same as the key
:math:`u_i^{1/w_i}` of the paper (:math:`E = -\log u`), and it equals
drawing one index at a time with probability proportional to the weights
of those not drawn yet. One ordering serves every size, so the training
sets of :func:`manifold_splits` are *nested*: the set for a larger fraction
contains every smaller one, and error-versus-size curves change by adding
points, not by reshuffling them.

Indices refer to the flattened (C-order) array of points or weights; they
come back as numpy ``int64`` for numpy input and as a ``torch.int64``
tensor on the input's device for tensor input. Randomness comes only from
the ``seed`` arguments.

References
----------
P. S. Efraimidis, P. G. Spirakis, "Weighted random sampling with a
reservoir", Inf. Process. Lett. 97 (2006) 181-185.
T. F. Gonzalez, "Clustering to minimize the maximum intercluster
distance", Theor. Comput. Sci. 38 (1985) 293-306.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from lib._arrays import as_tensor
from lib._checks import REAL_DTYPES, check_finite, check_float_dtype, check_int, check_real

__all__ = ["Split", "farthest_point_sampling", "manifold_splits", "volume_weighted_subset"]


def _indices_like(indices: np.ndarray, like):
    """Return int64 ``indices`` as the caller's array type (a tensor on its device)."""
    indices = np.asarray(indices, dtype=np.int64)
    if isinstance(like, torch.Tensor):
        return torch.from_numpy(indices).to(like.device)
    return indices


def _rng(seed, caller: str) -> np.random.Generator:
    if seed is not None and not isinstance(seed, (numbers.Integral, np.random.Generator,
                                                  np.random.SeedSequence)):
        raise TypeError(f"The 'seed' parameter of {caller} must be an int, a numpy Generator "
                        f"or None. Got {seed!r} instead.")
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed < 0:
        raise ValueError(f"The 'seed' parameter of {caller} must be an int in [0, inf). "
                         f"Got {seed!r} instead.")
    return np.random.default_rng(seed)


def _count(fraction: float, available: int) -> int:
    """round(fraction * available), halves up, at least one point (a training set is never empty)."""
    return min(available, max(1, math.floor(fraction * available + 0.5)))


def farthest_point_sampling(points, n: int, *, seed=None, start: int | None = None,
                            chunk_size: int | None = None):
    r"""Greedy max-min (farthest-point) selection of ``n`` of the rows of ``points``.

    After a first point, each step adds the point whose distance to the
    points chosen so far is largest, :math:`x_{k+1} = \arg\max_x
    \min_{j \le k} |x - x_j|`. The first :math:`k` chosen points cover the
    cloud within twice the optimal :math:`k`-centre radius (Gonzalez 1985).
    Exact: one running vector of minimum distances, O(n N D) work.

    Parameters
    ----------
    points : array of shape (N, D)
        Numpy array or torch tensor, float32 or float64 (integers are taken
        as float64); the work happens on its device.
    n : int
        Number of points to select, in [1, N].
    seed : int, numpy Generator or None
        Draws the first point uniformly when ``start`` is not given.
    start : int, optional
        Index of the first point, in [0, N - 1]; excludes ``seed``.
    chunk_size : int, optional
        Rows per block of the distance update; never changes the answer
        (each distance is computed from its own row).

    Returns
    -------
    indices : int64 array of shape (n,)
        Distinct row indices in the order chosen; ties go to the lowest index.
        A numpy array, or a tensor on the device of ``points``.

    Raises
    ------
    TypeError
        If ``points`` is float16 or bfloat16 (torch's ``cdist`` has no such
        kernels), before any work.

    Examples
    --------
    >>> import numpy as np
    >>> line = np.linspace(0.0, 1.0, 9)[:, None]
    >>> farthest_point_sampling(line, 5, start=0).tolist()   # ends, then halves
    [0, 8, 4, 2, 6]
    """
    caller = "farthest_point_sampling"
    x, _ = as_tensor(points)
    if x.ndim != 2:
        raise ValueError(f"The 'points' parameter of {caller} must have shape (N, D). "
                         f"Got {tuple(x.shape)} instead.")
    check_float_dtype(x, name="points", caller=caller)
    size = x.shape[0]
    if size == 0:
        raise ValueError(f"The 'points' parameter of {caller} must hold at least one point. "
                         f"Got shape {tuple(x.shape)} instead.")
    check_finite(x, name="points", caller=caller)
    n = check_int(n, name="n", caller=caller, low=1, high=size)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, name="chunk_size", caller=caller, low=1)
    if start is not None:
        if seed is not None:
            raise ValueError(f"The 'seed' parameter of {caller} must be None when 'start' is "
                             f"given (the first point is then fixed). Got {seed!r} instead.")
        start = check_int(start, name="start", caller=caller, low=0, high=size - 1)
    else:
        start = int(_rng(seed, caller).integers(size))
    step = size if chunk_size is None else chunk_size

    # Distances from sums of squared differences (cdist's direct mode), not the
    # |x|^2 - 2 x.y + |y|^2 matmul shortcut: that cancels badly for near
    # neighbours and breaks exact ties on grids. Row by row, so chunks agree.
    nearest = torch.full((size,), math.inf, dtype=x.dtype, device=x.device)
    chosen = torch.empty(n, dtype=torch.int64, device=x.device)
    current = start
    for k in range(n):
        chosen[k] = current
        centre = x[current][None]
        for lo in range(0, size, step):
            block = torch.cdist(x[lo:lo + step], centre, compute_mode="donot_use_mm_for_euclid_dist")
            torch.minimum(nearest[lo:lo + step], block[:, 0], out=nearest[lo:lo + step])
        # -inf marks chosen rows, so duplicates of a chosen point (distance 0)
        # can still be picked once everything else is exhausted, but never twice.
        nearest[current] = -math.inf
        if k + 1 < n:
            current = int(torch.argmax(nearest))
    if isinstance(points, torch.Tensor):
        return chosen
    return chosen.cpu().numpy()


def _check_weights(weights, caller: str, name: str = "weights") -> np.ndarray:
    w, _ = as_tensor(weights)
    # Any real dtype (they are widened to float64); a complex one would lose its imaginary part.
    check_float_dtype(w, name=name, caller=caller, allowed=REAL_DTYPES)
    w = w.detach().cpu().to(torch.float64).reshape(-1).numpy()
    if w.size == 0:
        raise ValueError(f"The {name!r} parameter of {caller} must hold at least one weight. "
                         f"Got an empty array instead.")
    check_finite(w, name=name, caller=caller)
    if (w < 0).any():
        raise ValueError(f"The {name!r} parameter of {caller} must be non-negative. "
                         f"Got {int((w < 0).sum())} negative entries (minimum {w.min()!r}) instead.")
    if not (w > 0).any():
        raise ValueError(f"The {name!r} parameter of {caller} must have at least one positive "
                         f"entry. Got all zeros instead.")
    return w


def _arrival_order(weights: np.ndarray, available: np.ndarray, rng: np.random.Generator):
    """Available indices sorted by exponential-clock arrival time E_i / w_i.

    Zero weights arrive at infinity, after every positive weight (the limit of
    a vanishing weight); among themselves they come in a uniform random order.
    """
    clocks = rng.standard_exponential(weights.size)  # one per index, so keys ignore `exclude`
    with np.errstate(divide="ignore"):
        arrival = np.where(weights > 0, clocks / np.where(weights > 0, weights, 1.0), np.inf)
    order = np.lexsort((clocks[available], arrival[available]))
    return available[order]


def _available(size: int, exclude, caller: str) -> np.ndarray:
    keep = np.ones(size, dtype=bool)
    if exclude is not None:
        excluded = exclude.detach().cpu().numpy() if isinstance(exclude, torch.Tensor) else exclude
        excluded = np.asarray(excluded).reshape(-1)
        if excluded.size and not np.issubdtype(excluded.dtype, np.integer):
            raise TypeError(f"The 'exclude' parameter of {caller} must hold integer indices. "
                            f"Got dtype {excluded.dtype} instead.")
        if excluded.size and (excluded.min() < 0 or excluded.max() >= size):
            raise ValueError(f"The 'exclude' parameter of {caller} must hold indices in "
                             f"[0, {size - 1}]. Got values in [{excluded.min()}, "
                             f"{excluded.max()}] instead.")
        keep[excluded] = False
    available = np.flatnonzero(keep)
    if available.size == 0:
        raise ValueError(f"The 'exclude' parameter of {caller} must leave at least one of the "
                         f"{size} indices available. Got all of them excluded.")
    return available


def volume_weighted_subset(weights, fraction: float, *, seed=None, exclude=None):
    r"""Draw a share of the indices without replacement, with probability proportional to ``weights``.

    With ``weights`` the volume element :math:`\sqrt{\det g}` on a grid, the
    draw is uniform in Riemannian volume. Of the ``A`` indices not in
    ``exclude``, ``k = round(fraction * A)`` are drawn (halves up, at least
    one) by exponential clocks (module docstring): equivalent to drawing
    one index at a time with probability :math:`w_i / \sum_{j\,\text{left}} w_j`.
    Zero weights are never drawn while a positive one is left; ``fraction=1``
    returns every available index.

    Parameters
    ----------
    weights : array of shape (N,) or (*grid.shape,)
        Finite, non-negative, not all zero. Indices refer to the flattened array.
    fraction : float
        Share of the available indices to draw, in (0, 1].
    seed : int, numpy Generator or None
        Source of randomness; an int gives the same draw every time.
    exclude : int array, optional
        Flat indices that may not be drawn (a test set), in [0, N - 1].

    Returns
    -------
    indices : int64 array of shape (k,)
        Distinct flat indices, sorted; numpy, or a tensor on the device of ``weights``.

    Examples
    --------
    >>> import numpy as np
    >>> weights = np.array([0.0, 1.0, 1.0, 0.0, 2.0, 1.0])
    >>> volume_weighted_subset(weights, 0.5, seed=0).size            # 3 of 6, never 0 or 3
    3
    >>> volume_weighted_subset(weights, 1.0, exclude=[4]).tolist()
    [0, 1, 2, 3, 5]
    """
    caller = "volume_weighted_subset"
    w = _check_weights(weights, caller)
    fraction = check_real(fraction, name="fraction", caller=caller, low=0, high=1, low_open=True)
    available = _available(w.size, exclude, caller)
    if fraction == 1.0:
        return _indices_like(available, weights)
    order = _arrival_order(w, available, _rng(seed, caller))
    return _indices_like(np.sort(order[:_count(fraction, available.size)]), weights)


@dataclass(frozen=True)
class Split:
    """A test set and nested training sets of one sampled manifold.

    Parameters
    ----------
    test : int64 array of shape (n_test,)
        Flat indices chosen by farthest-point sampling, in the order chosen.
    train : dict of float to int64 array
        For each fraction of the non-test points, the sorted flat indices of
        its training set. Sets for larger fractions contain those for smaller.
    seed : int
        The seed that produced the split.
    """

    test: object
    train: dict
    seed: int

    @property
    def fractions(self) -> tuple[float, ...]:
        return tuple(self.train)

    def sizes(self) -> dict[float, int]:
        """Number of training points per fraction."""
        return {fraction: len(indices) for fraction, indices in self.train.items()}


def manifold_splits(points, volume_element, *, fractions=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
                    test_size: int = 500, test_share: float = 0.3, seed: int = 0,
                    chunk_size: int | None = None) -> Split:
    r"""Test set by farthest points, nested volume-weighted training sets (bound-scaling protocol).

    The test set holds ``min(test_size, floor(test_share * N))`` points (at
    least one) chosen by :func:`farthest_point_sampling`, its first point
    drawn from ``seed``. The other ``R`` points are ordered once by
    exponential clocks with rates ``volume_element`` (module docstring), and
    the training set for fraction ``f`` is the first ``round(f * R)`` of that
    order (halves up, at least one). So every training set is a weighted
    sample without replacement, and the sets are **nested** in ``f``.

    Parameters
    ----------
    points : array of shape (N, D) or (*grid.shape, D)
        The sampled manifold, numpy or torch.
    volume_element : array of shape (N,) or (*grid.shape,)
        Sampling weights, the same leading shape as ``points``; finite,
        non-negative, not all zero.
    fractions : sequence of float
        Shares of the non-test points, each in (0, 1].
    test_size : int, default=500
        Largest test set, in [1, inf).
    test_share : float, default=0.3
        Largest share of the points in the test set, in (0, 1).
    seed : int, default=0
        In [0, inf). FPS start and training order use independent streams
        spawned from it.
    chunk_size : int, optional
        Passed to :func:`farthest_point_sampling`; never changes the answer.

    Returns
    -------
    Split
        Flat indices, numpy or tensors following ``points``.

    Examples
    --------
    >>> import numpy as np
    >>> theta = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    >>> circle = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    >>> split = manifold_splits(circle, np.ones(100), fractions=(0.1, 0.5, 1.0), test_size=20)
    >>> len(split.test), split.sizes()
    (20, {0.1: 8, 0.5: 40, 1.0: 80})
    >>> set(split.train[0.1]) <= set(split.train[0.5]), set(split.test) & set(split.train[1.0])
    (True, set())
    """
    caller = "manifold_splits"
    x, _ = as_tensor(points)
    w = _check_weights(volume_element, caller, name="volume_element")
    if isinstance(volume_element, (np.ndarray, torch.Tensor)):
        leading = tuple(volume_element.shape)
    else:
        leading = np.shape(volume_element)
    if x.ndim < 2 or tuple(x.shape[:-1]) != tuple(leading):
        raise ValueError(f"The 'points' parameter of {caller} must have shape (*volume_element.shape,"
                         f" D) = ({', '.join(map(str, leading))}, D). Got {tuple(x.shape)} instead.")
    # farthest_point_sampling checks these too, but in its own name.
    check_float_dtype(x, name="points", caller=caller)
    check_finite(x, name="points", caller=caller)
    x = x.reshape(-1, x.shape[-1])
    size = x.shape[0]
    if size < 2:
        raise ValueError(f"The 'points' parameter of {caller} must hold at least 2 points (one "
                         f"for testing, one for training). Got {size} instead.")
    fractions = tuple(check_real(f, name="fractions", caller=caller, low=0, high=1, low_open=True)
                      for f in fractions)
    if not fractions:
        raise ValueError(f"The 'fractions' parameter of {caller} must hold at least one fraction "
                         f"in (0, 1]. Got none.")
    test_size = check_int(test_size, name="test_size", caller=caller, low=1)
    test_share = check_real(test_share, name="test_share", caller=caller, low=0, high=1,
                            low_open=True, high_open=True)
    seed = check_int(seed, name="seed", caller=caller, low=0)

    n_test = min(test_size, size - 1, max(1, math.floor(test_share * size)))
    fps_stream, train_stream = np.random.SeedSequence(seed).spawn(2)
    test = farthest_point_sampling(x, n_test, seed=np.random.default_rng(fps_stream),
                                   chunk_size=chunk_size).cpu().numpy()
    available = _available(size, test, caller)
    order = _arrival_order(w, available, np.random.default_rng(train_stream))
    train = {f: _indices_like(np.sort(order[:_count(f, available.size)]), points)
             for f in fractions}
    return Split(test=_indices_like(test, points), train=train, seed=seed)
