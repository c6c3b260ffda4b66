r"""Projection onto a manifold estimated from samples: local fits of order 1 and 2.

A :class:`ManifoldEstimator` is fitted on training points (N, D) of a
d-dimensional manifold M in R^D and maps query points (Q, D) onto its
estimate of M. :class:`LocalProjection` builds the estimate around each query
q from its k nearest training points :math:`y_1, \dots, y_k` (exact search,
or an approximate index for large N), with Gaussian weights

.. math::
    w_j = \exp(-|q - y_j|^2 / h^2), \qquad h = |q - y_k|,

the bandwidth being the distance to the k-th neighbour. The estimator is
therefore *scale-free*: scaling the data (and the queries) by c scales every
projection by c, so it has no length parameter to tune, and every weight lies
in :math:`[e^{-1}, 1]`.

**Order 1** (the paper's "MMLS", Koulakis & Seibold; weighted local PCA):
weighted mean :math:`m = \sum_j w_j y_j / \sum_j w_j` and the top-d right
singular vectors U (D x d) of the (k x D) matrix with rows
:math:`\sqrt{w_j}\,(y_j - m)`, i.e. the top-d eigenvectors of the weighted
covariance, found without forming a D x D matrix (D is 4096 for 64 x 64
images). The projection is onto the affine plane through m,

.. math::
    p(q) = m + U U^\top (q - m).

On a manifold of reach :math:`\tau` sampled with spacing :math:`\epsilon` the
error is :math:`O(h^2/\tau)` with :math:`h \propto \epsilon \propto n^{-1/d}`:
the Hausdorff proxy falls like :math:`n^{-2/d}`.

**Order 2** (moving least squares of order 2; Levin 2004, Sober & Levin
2020): in the same chart (m, U), each neighbour has local coordinates
:math:`t_j = U^\top (y_j - m)` and normal residual
:math:`r_j = (y_j - m) - U t_j`. A polynomial
:math:`P(t) = c_0 + \sum_a c_a t_a + \sum_{a \le b} c_{ab} t_a t_b` with
coefficients in R^D (``1 + d + d (d + 1) / 2`` of them) is fitted to the
residuals by weighted least squares, :math:`\min_P \sum_j w_j |r_j - P(t_j)|^2`,
and

.. math::
    p(q) = m + U t_q + P(t_q), \qquad t_q = U^\top (q - m).

The coefficients are combinations of the residuals, so :math:`P(t)` is normal
to the chart. The fit is a QR of the small (k x n_coef) design followed by an
SVD of its triangular factor (a minimum-norm solution, with a warning, where
the neighbours do not determine a quadratic); the coordinates are divided by h
first so that the design is well conditioned. The error is :math:`O(h^3)`
(:math:`O(h^4)` where the neighbourhood is balanced), against :math:`O(h^2)`
for order 1; Sober & Levin prove :math:`O(h^{m+1})` for their order-m
projection.

What is exact:

- both orders reproduce an affine d-plane: training points on it give
  :math:`p(q)` = the orthogonal projection of q onto it, up to rounding;
- order 2 reproduces a quadric :math:`\{x_0 + T s + N\,B(s, s)\}` (T, N
  orthonormal, :math:`T \perp N`) wherever the chart plane is its tangent
  plane T, e.g. at the vertex :math:`x_0` when the neighbours come in pairs
  :math:`\pm s`. Where the PCA plane is tilted against T (by :math:`O(h)`,
  from unbalanced neighbours) the quadric is not a polynomial graph over the
  chart and order 2 is only :math:`O(h^4)`-accurate: a PCA chart cannot
  reproduce quadrics exactly at every point.

For a query at distance :math:`\delta` from M, p(q) is the point of the local
fit *above q in the chart*, not the fit's nearest point: the chart is tilted
by O(h) against the normal through q's foot point, which adds an
:math:`O(\delta h)` error. The bound-scaling study projects test points on M
(:math:`\delta = 0`), where this term vanishes.

The Hausdorff proxy of the bound-scaling study is the largest distance
:math:`\max_i |x_i - p(x_i)|` over test points :math:`x_i` on M; it bounds
from below the one-sided Hausdorff distance from M to the estimate
(:func:`projection_error`).

Neighbours come from :func:`lib.neighbors.query_neighbors` (exact: k-d tree
or GEMM ranking with an exact re-check) or, above ``exact_max_points``
training points, from a faiss HNSW graph (``faiss.IndexHNSWFlat``, M = 32)
built on a float32 copy, whose candidates are re-measured exactly in the
working dtype and re-sorted. Everything else is batched torch over blocks of
queries sized by ``memory_budget``, on the device of the training points.

References
----------
D. Levin, "Mesh-independent surface interpolation", in Geometric Modeling for
Scientific Visualization, Springer (2004) 37-49.
B. Sober, D. Levin, "Manifold approximation by moving least-squares
projection (MMLS)", Constructive Approximation 52 (2020) 433-478.
M. Koulakis, C. Seibold, "The Data Manifold under the Microscope", ICML 2026
(PMLR 306), arXiv:2606.15760 (bound-scaling study), the order-1 estimator.
Y. A. Malkov, D. A. Yashunin, "Efficient and robust approximate nearest
neighbor search using Hierarchical Navigable Small World graphs", IEEE TPAMI
42 (2020) 824-836.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from sklearn.base import BaseEstimator

from lib._arrays import as_tensor
from lib._checks import (REAL_DTYPES, check_finite, check_float_dtype, check_in, check_int,
                         check_shape)
from lib.neighbors import query_neighbors

__all__ = ["LocalProjection", "ManifoldEstimator", "ProjectionError", "projection_error"]

_NAME = "LocalProjection"
# Candidates asked of the approximate index beyond n_neighbors, re-measured exactly.
_SPARE = 8
# HNSW graph degree (faiss's M) of the approximate index.
_HNSW_M = 32


@runtime_checkable
class ManifoldEstimator(Protocol):
    """What the bound-scaling study needs of a manifold estimator.

    ``fit(points)`` takes training points (N, D) and returns the estimator;
    ``project(queries)`` maps points (Q, D) to their projections (Q, D) onto
    the estimated manifold, in the caller's array type.
    """

    def fit(self, points): ...

    def project(self, queries): ...


def _coefficient_count(dim: int) -> int:
    """Monomials of degree <= 2 in d variables: 1 + d + d (d + 1) / 2."""
    return 1 + dim + dim * (dim + 1) // 2


def _default_neighbors(dim: int, order: int) -> int:
    """k = 2 * 2**d (the paper's choice), and at least twice the coefficients for order 2."""
    return 2 * 2**dim if order == 1 else max(2 * 2**dim, 2 * _coefficient_count(dim))


def _principal_directions(centred, dim):
    """Top-``dim`` right singular vectors (c, D, dim) of a batch of (c, k, D) matrices.

    Through a QR factor, so that the SVD is of a small square matrix and never
    of a D x D covariance: for k < D, Z^T = Q R gives Z = R^T Q^T and the right
    singular vectors of Z are Q times those of R^T.
    """
    k, ambient = centred.shape[1:]
    if k >= ambient:
        _, factor = torch.linalg.qr(centred)                        # (c, D, D)
        _, _, vh = torch.linalg.svd(factor)
        return vh[:, :dim, :].mT
    q, factor = torch.linalg.qr(centred.mT)                         # (c, D, k), (c, k, k)
    _, _, wh = torch.linalg.svd(factor.mT)
    return q @ wh[:, :dim, :].mT


def _monomials(t):
    """[1, t_a, t_a t_b (a <= b)] of coordinates (..., d): (..., 1 + d + d (d + 1) / 2)."""
    rows, cols = torch.triu_indices(t.shape[-1], t.shape[-1], device=t.device)
    return torch.cat([torch.ones_like(t[..., :1]), t, t[..., rows] * t[..., cols]], dim=-1)


def _least_squares(design, targets):
    """Minimum-norm solutions (c, n, D) of design (c, k, n) @ X = targets (c, k, D); rank-deficient count.

    QR of the tall design, then an SVD of its (n x n) triangular factor with
    singular values below ``k * eps * s_max`` cut (numpy's lstsq rule); the
    same code on CPU and GPU (cuSOLVER's lstsq needs full rank).
    """
    q, factor = torch.linalg.qr(design)                             # (c, k, n), (c, n, n)
    u, s, vh = torch.linalg.svd(factor)
    cutoff = s[:, :1] * (design.shape[1] * torch.finfo(design.dtype).eps)
    keep = s > cutoff
    inverse = torch.where(keep, 1 / torch.where(keep, s, 1), 0)
    projected = torch.einsum("ckn,ckD->cnD", q, targets)
    solution = vh.mT @ (inverse[:, :, None] * (u.mT @ projected))
    return solution, int((~keep).any(dim=1).sum())


class LocalProjection(BaseEstimator):
    r"""Projection onto a manifold by local weighted fits of order 1 (PCA) or 2 (MLS).

    For a query q and its k nearest training points, Gaussian weights with
    the k-th neighbour distance as bandwidth, a weighted mean m and the top
    ``dim`` weighted principal directions U give
    :math:`p = m + U U^\top (q - m)` (order 1); order 2 adds a weighted
    least-squares quadratic :math:`P(t)` of the normal residuals in the local
    coordinates, :math:`p = m + U t_q + P(t_q)`. Formulas, error orders and
    references: module docstring.

    Parameters
    ----------
    dim : int in [1, D - 1]
        Intrinsic dimension d of the manifold (checked in :meth:`fit`).
    order : {1, 2}, default=1
        1: weighted local PCA (the paper's "MMLS"); 2: moving least squares
        of order 2.
    n_neighbors : int or None, default=None
        k, in [dim + 1, N] for order 1 and in [1 + d + d (d + 1) / 2, N] for
        order 2. None: 2 * 2**dim for order 1 (the paper's choice) and
        max(2 * 2**dim, 2 * (1 + d + d (d + 1) / 2)) for order 2.
    index : {"auto", "exact", "approximate"}, default="auto"
        Neighbour search: exact (:func:`lib.neighbors.query_neighbors`), or a
        faiss HNSW index (package ``faiss-cpu``; candidates re-measured
        exactly). "auto" is approximate iff N > ``exact_max_points``. faiss
        builds the graph on several threads, so which neighbours it misses
        (recall about 0.99 or more) may differ between runs.
    exact_max_points : int >= 1, default=200_000
        Largest training set searched exactly under ``index="auto"``.
    memory_budget : int >= 2**16, default=2**28
        Bytes for the (block, k, D) work arrays of one block of queries;
        never changes the result.

    Attributes
    ----------
    n_train_ : int
        N, the number of training points.
    n_features_ : int
        D, the ambient dimension.
    n_neighbors_ : int
        k actually used.
    index_ : {"exact", "approximate"}
        The neighbour search chosen.
    rank_deficient_ : int
        After :meth:`project` (order 2): how many of its queries' quadratic fits
        were rank-deficient and solved in the minimum-norm sense (also warned).

    Examples
    --------
    >>> import numpy as np
    >>> angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    >>> circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    >>> between = np.array([0.1, 2.0, 4.0])                 # on the circle, off the samples
    >>> queries = np.stack([np.cos(between), np.sin(between)], axis=1)
    >>> first = LocalProjection(dim=1).fit(circle).project(queries)
    >>> second = LocalProjection(dim=1, order=2).fit(circle).project(queries)
    >>> bool(np.abs(first - queries).max() < 1e-3), bool(np.abs(second - queries).max() < 1e-6)
    (True, True)
    """

    def __init__(self, dim: int, *, order: int = 1, n_neighbors: int | None = None,
                 index: str = "auto", exact_max_points: int = 200_000,
                 memory_budget: int = 2**28):
        self.dim = dim
        self.order = order
        self.n_neighbors = n_neighbors
        self.index = index
        self.exact_max_points = exact_max_points
        self.memory_budget = memory_budget

    def fit(self, points) -> LocalProjection:
        """Store the training points and, for the approximate search, build the index.

        Parameters
        ----------
        points : array of shape (N, D)
            Finite samples of the manifold, D >= 2; numpy array or torch
            tensor (CPU or GPU). Kept by reference (not copied); the work of
            :meth:`project` happens on their device and in their dtype
            (float64 for integer input).

        Returns
        -------
        self : LocalProjection
        """
        caller = f"{_NAME}.fit"
        x, _ = as_tensor(points)
        check_shape(x.shape, (None, None), name="points", caller=caller, describe="(N, D)")
        count, ambient = x.shape
        if ambient < 2:
            raise ValueError(f"The 'points' parameter of {caller} must have shape (N, D) with "
                             f"D >= 2 (a manifold needs a normal direction). Got "
                             f"{tuple(x.shape)} instead.")
        # float32/64 only: torch has no half-precision QR on the CPU (project failed midway).
        check_float_dtype(x, name="points", caller=caller)
        check_finite(x, name="points", caller=caller)
        order = check_in(self.order, (1, 2), name="order", caller=_NAME)
        dim = check_int(self.dim, name="dim", caller=_NAME, low=1, high=ambient - 1)
        check_in(self.index, ("auto", "exact", "approximate"), name="index", caller=_NAME)
        limit = check_int(self.exact_max_points, name="exact_max_points", caller=_NAME, low=1)
        check_int(self.memory_budget, name="memory_budget", caller=_NAME, low=2**16)
        smallest = dim + 1 if order == 1 else _coefficient_count(dim)
        wanted = _default_neighbors(dim, order) if self.n_neighbors is None else self.n_neighbors
        k = check_int(wanted, name="n_neighbors", caller=_NAME, low=smallest, high=count)
        approximate = self.index == "approximate" or (self.index == "auto" and count > limit)
        self._points = x
        self._dim, self._order, self._budget = dim, order, self.memory_budget
        self._hnsw = self._build_index(x) if approximate else None
        self.n_train_ = count
        self.n_features_ = ambient
        self.n_neighbors_ = k
        self.index_ = "approximate" if approximate else "exact"
        return self

    def neighbors(self, queries):
        """The ``n_neighbors_`` nearest training points of each query.

        Parameters
        ----------
        queries : array of shape (Q, D)
            Finite points; a tensor must be on the device of the training points.

        Returns
        -------
        distances : array of shape (Q, n_neighbors_)
            Exact Euclidean distances, ascending, in the training points' dtype.
        indices : array of shape (Q, n_neighbors_)
            int64 rows of the training set; numpy or torch as ``queries``.
        """
        q, restore = self._queries(queries, "neighbors")
        distances, indices = self._search(q)
        return restore(distances), restore(indices)

    def project(self, queries):
        """Projections of the queries onto the estimated manifold.

        Parameters
        ----------
        queries : array of shape (Q, D)
            Finite points; a tensor must be on the device of the training points.

        Returns
        -------
        projections : array of shape (Q, D)
            p(q) of the class docstring, in the training points' dtype; numpy
            or torch (on the queries' device) as ``queries``.
        """
        q, restore = self._queries(queries, "project")
        out = torch.empty_like(q)
        if q.shape[0] == 0:
            return restore(out)
        distances, indices = self._search(q)
        k, ambient = self.n_neighbors_, self.n_features_
        # (block, k, D) arrays alive at once: the gather, its centred copy, the weighted copy
        # handed to QR and, for order 2, the residuals.
        per_query = (3 + self._order) * k * ambient * q.element_size()
        rows = max(1, self._budget // per_query)
        deficient = 0
        for start in range(0, q.shape[0], rows):
            block = slice(start, start + rows)
            out[block], bad = self._project_block(q[block], distances[block], indices[block])
            deficient += bad
        self.rank_deficient_ = deficient
        if deficient:
            warnings.warn(f"{deficient} of {q.shape[0]} local quadratic fits of {_NAME}.project "
                          f"were rank-deficient (the {k} neighbours do not determine a quadratic "
                          f"in their chart); the minimum-norm fit was used for them.",
                          RuntimeWarning, stacklevel=2)
        return restore(out)

    def __getstate__(self):
        """Pickle support (joblib, Dask): the faiss index travels as its serialized bytes."""
        state = dict(super().__getstate__())              # a copy: never touch the live index
        if state.get("_hnsw") is not None:
            import faiss

            state["_hnsw"] = ("faiss", faiss.serialize_index(state["_hnsw"]))
        return state

    def __setstate__(self, state):
        if isinstance(state.get("_hnsw"), tuple):
            import faiss

            state = {**state, "_hnsw": faiss.deserialize_index(state["_hnsw"][1])}
        super().__setstate__(state)

    # -- internals ---------------------------------------------------------------------------

    def _queries(self, queries, method):
        caller = f"{_NAME}.{method}"
        if not hasattr(self, "_points"):
            raise RuntimeError(f"{_NAME} is not fitted yet: call fit(points) before {method}().")
        q, restore = as_tensor(queries)
        check_shape(q.shape, (None, self.n_features_), name="queries", caller=caller,
                    describe=f"(Q, D) = (Q, {self.n_features_}), D as in fit")
        # Any real dtype: queries are cast to the training dtype below; complex ones would
        # lose their imaginary part.
        check_float_dtype(q, name="queries", caller=caller, allowed=REAL_DTYPES)
        check_finite(q, name="queries", caller=caller)
        if isinstance(queries, torch.Tensor) and q.device != self._points.device:
            raise ValueError(f"The 'queries' parameter of {caller} must be on the device of the "
                             f"training points ({self._points.device}). Got {q.device} instead.")
        return q.to(device=self._points.device, dtype=self._points.dtype), restore

    def _search(self, q):
        """Exact distances (Q, k) and indices (Q, k), ascending, on the training device."""
        if self._hnsw is None:
            distances, indices = query_neighbors(self._points, q, self.n_neighbors_,
                                                 memory_budget=self._budget)
            return distances.to(q.dtype), indices
        return self._search_approximate(q)

    def _build_index(self, x):
        try:
            import faiss
        except ImportError as error:
            raise ImportError(f"The 'index' parameter of {_NAME} selects the approximate search "
                              f"(index={self.index!r}, {x.shape[0]} training points, "
                              f"exact_max_points={self.exact_max_points}), which needs faiss: "
                              f"install the `faiss-cpu` package, or pass index='exact'.") from error
        data = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        hnsw = faiss.IndexHNSWFlat(data.shape[1], _HNSW_M)
        hnsw.add(data)
        return hnsw

    def _search_approximate(self, q):
        k = self.n_neighbors_
        take = min(self.n_train_, k + _SPARE)
        self._hnsw.hnsw.efSearch = max(2 * take, 64)
        probe = np.ascontiguousarray(q.detach().cpu().numpy(), dtype=np.float32)
        _, labels = self._hnsw.search(probe, take)
        if (labels < 0).any():
            raise RuntimeError(f"The approximate index of {_NAME} returned fewer than {take} "
                               f"candidates for {int((labels < 0).any(1).sum())} queries; "
                               f"use index='exact'.")
        candidates = torch.from_numpy(labels).to(device=q.device, dtype=torch.long)
        # Re-measure the float32 candidates exactly in the working dtype, in blocks.
        rows = max(1, self._budget // (2 * take * self.n_features_ * q.element_size()))
        distances, indices = [], []
        for start in range(0, q.shape[0], rows):
            chosen = candidates[start:start + rows]
            diff = self._points[chosen] - q[start:start + rows, None, :]
            exact = torch.einsum("qkd,qkd->qk", diff, diff)
            order = torch.argsort(exact, dim=1)[:, :k]
            distances.append(torch.gather(exact, 1, order).sqrt_())
            indices.append(torch.gather(chosen, 1, order))
        return torch.cat(distances), torch.cat(indices)

    def _project_block(self, q, distances, indices):
        """Projections (c, D) of a block of queries from their neighbours; rank-deficient count."""
        y = self._points[indices]                                   # (c, k, D)
        scale = distances[:, -1:]                                   # h, (c, 1)
        scale = torch.where(scale > 0, scale, 1)                    # all neighbours at q: w = 1
        w = torch.exp(-(distances / scale) ** 2)
        w = w / w.sum(dim=1, keepdim=True)
        m = torch.einsum("ck,ckD->cD", w, y)
        centred = y - m[:, None, :]
        root = w.sqrt()[:, :, None]
        basis = _principal_directions(root * centred, self._dim)     # U, (c, D, d)
        t_q = torch.einsum("cDa,cD->ca", basis, q - m)
        p = m + torch.einsum("cDa,ca->cD", basis, t_q)
        if self._order == 1:
            return p, 0
        t = torch.einsum("ckD,cDa->cka", centred, basis)            # local coordinates
        residual = centred - torch.einsum("cka,cDa->ckD", t, basis)  # normal parts r_j
        design = _monomials(t / scale[:, :, None])                  # (c, k, n_coef)
        coefficients, deficient = _least_squares(root * design, root * residual)
        p = p + torch.einsum("cn,cnD->cD", _monomials(t_q / scale), coefficients)
        return p, deficient


@dataclass(frozen=True)
class ProjectionError:
    """Distances from points of the manifold to their projections.

    Attributes
    ----------
    hausdorff : float
        The Hausdorff proxy, :math:`\\max_i |x_i - p(x_i)|`.
    mean : float
        :math:`\\frac1Q \\sum_i |x_i - p(x_i)|`.
    distances : ndarray of shape (Q,)
        :math:`|x_i - p(x_i)|`, float64.
    """

    hausdorff: float
    mean: float
    distances: np.ndarray


def projection_error(estimator, queries) -> ProjectionError:
    r"""Distances :math:`|x - p(x)|` of test points on the manifold to their projections.

    With test points :math:`x_i` on M, the largest distance is the
    bound-scaling study's Hausdorff proxy: a lower bound of the one-sided
    Hausdorff distance :math:`\sup_{x \in M} d(x, \hat M)` that tends to it
    as the test points fill M.

    Parameters
    ----------
    estimator : ManifoldEstimator
        A fitted estimator (anything with ``fit`` and ``project``).
    queries : array of shape (Q, D)
        Finite test points, Q >= 1; numpy array or torch tensor.

    Returns
    -------
    ProjectionError
        ``hausdorff`` and ``mean`` as floats, ``distances`` (Q,) as a
        float64 numpy array.

    Examples
    --------
    >>> import numpy as np
    >>> angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    >>> circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    >>> fitted = LocalProjection(dim=1).fit(circle[::2])
    >>> error = projection_error(fitted, circle[1::2])
    >>> error.distances.shape, bool(0 < error.mean <= error.hausdorff < 1e-2)
    ((100,), True)
    """
    caller = "projection_error"
    if not isinstance(estimator, ManifoldEstimator):
        raise TypeError(f"The 'estimator' parameter of {caller} must have fit() and project() "
                        f"methods (a ManifoldEstimator). Got {type(estimator).__name__} instead.")
    x, _ = as_tensor(queries)
    check_shape(x.shape, (None, None), name="queries", caller=caller, describe="(Q, D)")
    if x.shape[0] == 0:
        raise ValueError(f"The 'queries' parameter of {caller} must hold at least one point. "
                         f"Got shape {tuple(x.shape)} instead.")
    check_float_dtype(x, name="queries", caller=caller, allowed=REAL_DTYPES)
    check_finite(x, name="queries", caller=caller)
    p, _ = as_tensor(estimator.project(queries))
    if tuple(p.shape) != tuple(x.shape):
        raise ValueError(f"The 'estimator' parameter of {caller} must project (Q, D) to (Q, D). "
                         f"Got {tuple(p.shape)} from {tuple(x.shape)} instead.")
    distances = (x.to(torch.float64) - p.to(device=x.device, dtype=torch.float64)).norm(dim=1)
    distances = distances.detach().cpu().numpy()
    return ProjectionError(hausdorff=float(distances.max()), mean=float(distances.mean()),
                           distances=distances)
