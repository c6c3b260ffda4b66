r"""Local geometry of a point cloud from its k nearest neighbours.

Each point :math:`x_i` of a sample (N, D) of a d-dimensional manifold gets
the neighbourhood of its ``n_neighbors`` nearest other points (Euclidean, in
R^D). From it:

- :func:`local_pca_tangents`: an orthonormal basis of the tangent space, the
  top-d right singular vectors of the centred neighbourhood;
- :func:`quadratic_fit_curvature`: the second fundamental form and scalar
  curvature of a quadratic graph fitted over that tangent plane;
- :func:`knn_volume`: the total volume from the radii of the kNN balls;
- :func:`aamari_reach`: the reach of Aamari et al. (2019) with PCA tangents.

All functions are written in torch; they take a numpy array or a tensor and
return the caller's type, dtype and device (``lib._arrays.as_tensor``).
Points must be float32 or float64 (integers are taken as float64): torch has
no float16 QR or SVD on the CPU, so other dtypes raise a TypeError naming
``points`` before any work.
The neighbour search is exact (:func:`lib.neighbors.nearest_neighbors`).

References
----------
A. V. Little, M. Maggioni, L. Rosasco, "Multiscale geometric methods for
data sets I" (2017), local PCA; E. Aamari, J. Kim, F. Chazal, B. Michel,
A. Rinaldo, L. Wasserman, "Estimating the reach of a manifold", Electron. J.
Statist. 13 (2019); Q. Wang, S. R. Kulkarni, S. Verdu, k-nearest-neighbour
divergence and volume estimates (2009).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lib._arrays import as_tensor
from lib._checks import check_finite, check_float_dtype, check_int, check_shape
from lib.geometry.reach import ReachResult, local_reach
from lib.neighbors import nearest_neighbors

__all__ = ["QuadraticFit", "local_pca_tangents", "quadratic_fit_curvature", "knn_volume",
           "aamari_reach"]

def _points(points, *, n_neighbors, dim, caller, min_neighbors=None, max_dim=None):
    """Convert and check ``points`` (N, D), ``dim`` in [1, max_dim] and ``n_neighbors``."""
    x, restore = as_tensor(points)
    check_shape(x.shape, (None, None), name="points", caller=caller, describe="(N, D)")
    check_float_dtype(x, name="points", caller=caller)
    count, ambient = x.shape
    check_finite(x, name="points", caller=caller)
    dim = check_int(dim, name="dim", caller=caller, low=1,
                    high=ambient if max_dim is None else max_dim(ambient))
    low = dim + 1 if min_neighbors is None else min_neighbors(dim)
    n_neighbors = check_int(n_neighbors, name="n_neighbors", caller=caller, low=low,
                            high=count - 1)
    return x, restore, n_neighbors, dim


def _neighbours(x, n_neighbors):
    """Distances and indices (N, k) of each point's k nearest other points, ascending (exact)."""
    distances, indices = nearest_neighbors(x, n_neighbors)
    return distances.to(x.dtype), indices


def _tangents(x, indices, dim):
    """Top-dim right singular vectors of each centred neighbourhood (with its point), (N, D, d)."""
    patch = torch.cat([x[:, None, :], x[indices]], dim=1)          # (N, k + 1, D)
    centred = patch - patch.mean(dim=1, keepdim=True)
    # SVD of the square triangular factor, not of the (k + 1) x D block: the same singular
    # vectors without squaring the conditioning, and batched LAPACK on CPU was 30x slower
    # (and erratic) on tall blocks (measured on (2000, 21, 10) blocks).
    if centred.shape[1] >= centred.shape[2]:
        _, factor = torch.linalg.qr(centred)                        # centred = Q R, R: D x D
        _, _, vh = torch.linalg.svd(factor)
        right = vh.transpose(1, 2)
    else:
        q, factor = torch.linalg.qr(centred.transpose(1, 2))        # centred^T = Q R
        _, _, wh = torch.linalg.svd(factor.transpose(1, 2))         # centred = R^T Q^T
        right = q @ wh.transpose(1, 2)
    right = right[:, :, :dim]
    # Singular vectors have no sign; LAPACK and cuSOLVER pick different ones, and the
    # off-diagonal second fundamental form flips with them. Fix it: the largest-magnitude
    # coordinate of each column is made positive, so CPU and GPU give the same numbers.
    pivot = torch.gather(right, 1, right.abs().argmax(dim=1, keepdim=True))
    return right * torch.where(pivot < 0, -1.0, 1.0).to(right.dtype)


def local_pca_tangents(points, *, n_neighbors: int, dim: int):
    r"""Orthonormal tangent basis at each point by local PCA.

    The neighbourhood of :math:`x_i` is :math:`x_i` and its ``n_neighbors``
    nearest other points; after subtracting their mean, the top ``dim``
    right singular vectors span the estimated :math:`T_{x_i}M`. The error
    is O(r / tau) in angle for neighbourhoods of radius r on a manifold of
    reach tau, less where the neighbourhood is balanced around :math:`x_i`.

    Parameters
    ----------
    points : array of shape (N, D)
        Sample of the manifold, numpy array or torch tensor; finite.
    n_neighbors : int in [dim + 1, N - 1]
        Neighbours of each point used in the fit.
    dim : int in [1, D]
        Intrinsic dimension d.

    Returns
    -------
    tangents : array of shape (N, D, dim)
        Orthonormal columns; same type, dtype and device as ``points``. Each
        column's largest-magnitude coordinate is positive (a convention, so
        that CPU and GPU agree).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    >>> circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    >>> tangents = local_pca_tangents(circle, n_neighbors=4, dim=1)
    >>> tangents.shape
    (200, 2, 1)
    >>> float(np.abs(np.einsum("nD,nD->n", tangents[:, :, 0], circle)).max()) < 1e-12
    True
    """
    x, restore, n_neighbors, dim = _points(points, n_neighbors=n_neighbors, dim=dim,
                                           caller="local_pca_tangents")
    _, indices = _neighbours(x, n_neighbors)
    return restore(_tangents(x, indices, dim))


@dataclass(frozen=True)
class QuadraticFit:
    """Extrinsic curvature at each point from a local quadratic fit.

    Attributes
    ----------
    scalar_curvature : array of shape (N,)
        S at each point, by the Gauss equation.
    second_fundamental_form : array of shape (N, D, d, d)
        II at each point, vectors in R^D normal to the fitted tangent plane,
        symmetric in the last two indices, in the orthonormal chart of
        :func:`local_pca_tangents` (so the sign of the tangent basis flips
        the sign of the off-diagonal entries).
    """

    scalar_curvature: object
    second_fundamental_form: object


def _quadratic_count(dim):
    """Coefficients per normal coordinate: d linear + d (d + 1) / 2 quadratic."""
    return dim + dim * (dim + 1) // 2


def quadratic_fit_curvature(points, *, n_neighbors: int, dim: int) -> QuadraticFit:
    r"""Second fundamental form and scalar curvature from a quadratic fit per point.

    In the chart of :func:`local_pca_tangents` at :math:`x_i` (orthonormal
    basis T, D x d), each neighbour :math:`y_j` has tangent coordinates
    :math:`u_j = T^\top (y_j - x_i)` and normal part
    :math:`v_j = (y_j - x_i) - T u_j`. Near :math:`x_i` the manifold is the
    graph :math:`v(u) = \tfrac12 \mathrm{II}(u, u) + O(|u|^3)`, which a
    least-squares fit over the k neighbours recovers,

    .. math::
        v_j \approx B u_j + \tfrac12 \sum_{a,b} \mathrm{II}_{ab}\, u_j^a u_j^b.

    There is no constant term: the chart passes through the sample point
    :math:`x_i` itself. The linear term B (D x d, normal-valued) is there
    only to absorb the tilt of the PCA plane against the true tangent plane,
    which would otherwise leak into II; it is discarded. With the chart
    orthonormal the metric is the identity at the base point, and the Gauss
    equation gives

    .. math::
        S = \big|\textstyle\sum_a \mathrm{II}_{aa}\big|^2
            - \sum_{a,b} |\mathrm{II}_{ab}|^2,

    so a round sphere of radius R in any R^D has S = 2 / R^2.

    Parameters
    ----------
    points : array of shape (N, D)
        Sample of the manifold, numpy array or torch tensor; finite.
    n_neighbors : int in [d + d (d + 1) / 2, N - 1]
        Neighbours in each fit; at least the d + d (d + 1) / 2 coefficients
        per normal coordinate (2 for curves, 5 for surfaces).
    dim : int in [1, D - 1]
        Intrinsic dimension d; there must be a normal direction.

    Returns
    -------
    QuadraticFit
        ``scalar_curvature`` (N,) and ``second_fundamental_form``
        (N, D, d, d), in the input's array type.

    Examples
    --------
    >>> import numpy as np
    >>> from lib.datasets import toy
    >>> sphere = toy.Sphere(radius=2.0)
    >>> points = sphere.points(sphere.sample(2000, seed=0))
    >>> fit = quadratic_fit_curvature(points, n_neighbors=30, dim=2)
    >>> round(float(np.median(fit.scalar_curvature)), 1)
    0.5
    """
    caller = "quadratic_fit_curvature"
    x, restore, n_neighbors, dim = _points(points, n_neighbors=n_neighbors, dim=dim,
                                           caller=caller, min_neighbors=_quadratic_count,
                                           max_dim=lambda ambient: ambient - 1)
    _, indices = _neighbours(x, n_neighbors)
    basis = _tangents(x, indices, dim)                              # (N, D, d)
    diff = x[indices] - x[:, None, :]                               # (N, k, D)
    u = torch.einsum("nkD,nDa->nka", diff, basis)                   # tangent coordinates
    v = diff - torch.einsum("nka,nDa->nkD", u, basis)               # normal parts
    # Scale each chart to unit radius so that the design matrix is well conditioned.
    radius = u.norm(dim=-1).amax(dim=1)
    # All k neighbours on the point itself (copies of it: rounded or constant input) leave
    # no chart to fit; the clamp below would turn 0 / 0 into NaN curvature.
    collapsed = int((radius == 0).sum())
    if collapsed:
        raise ValueError(f"The 'points' parameter of {caller} must give every point a "
                         f"neighbourhood that is not all copies of it. Got {collapsed} points "
                         f"whose {n_neighbors} nearest neighbours coincide with them instead.")
    radius = radius.clamp_min(torch.finfo(x.dtype).tiny)
    w = u / radius[:, None, None]
    rows, cols = torch.triu_indices(dim, dim, device=x.device)
    # Monomials w_a w_b (a <= b) with weight 1/2 on the squares, so that the
    # coefficient of each is II_ab for the 1/2 II(w, w) model.
    weight = torch.where(rows == cols, 0.5, 1.0).to(x.dtype)
    quadratic = w[:, :, rows] * w[:, :, cols] * weight              # (N, k, q)
    design = torch.cat([w, quadratic], dim=-1)                      # (N, k, d + q)
    coefficients = torch.linalg.lstsq(design, v).solution           # (N, d + q, D)
    upper = coefficients[:, dim:, :] / radius[:, None, None] ** 2   # II_ab in u-units
    form = torch.zeros(x.shape[0], x.shape[1], dim, dim, dtype=x.dtype, device=x.device)
    form[:, :, rows, cols] = upper.transpose(1, 2)
    form[:, :, cols, rows] = upper.transpose(1, 2)
    trace = torch.einsum("nDaa->nD", form)
    scalar = (trace * trace).sum(-1) - torch.einsum("nDab,nDab->n", form, form)
    return QuadraticFit(scalar_curvature=restore(scalar), second_fundamental_form=restore(form))


def _unit_ball_volume(dim):
    """omega_d = pi^(d/2) / Gamma(d/2 + 1)."""
    return math.pi ** (dim / 2) / math.gamma(dim / 2 + 1)


def knn_volume(points, *, n_neighbors: int, dim: int) -> float:
    r"""Total d-volume of the manifold from the radii of the kNN balls.

    For N points drawn uniformly from a manifold of volume V, the mass
    :math:`F_i = \omega_d r_k(x_i)^d / V` of the ball reaching the k-th
    nearest other point is the k-th smallest of N - 1 uniform masses,
    Beta(k, N - k) distributed with mean k / N (for balls small enough to be
    flat). Hence

    .. math::
        \hat V = \frac{N}{k} \cdot \frac{1}{N}\sum_i \omega_d\, r_k(x_i)^d,
        \qquad \omega_d = \frac{\pi^{d/2}}{\Gamma(d/2 + 1)},

    is unbiased up to the curvature of the balls; it is the mean of the
    inverse density estimates :math:`(N-1)\omega_d r_k^d / k`, up to the
    factor N / (N - 1). (The (k - 1) normaliser would make the density
    estimate unbiased, not its inverse, and overestimate V by k / (k - 1).)
    Euclidean balls of radius r on a round 2-sphere are caps of area exactly
    :math:`\pi r^2` (Archimedes), so there the estimate is unbiased at any k.

    Parameters
    ----------
    points : array of shape (N, D)
        Sample of the manifold, uniform with respect to its volume;
        numpy array or torch tensor; finite.
    n_neighbors : int in [dim + 1, N - 1]
        k.
    dim : int in [1, D]
        Intrinsic dimension d.

    Returns
    -------
    volume : float

    Examples
    --------
    >>> import math
    >>> from lib.datasets import toy
    >>> circle = toy.Circle(1.0)
    >>> points = circle.points(circle.sample(2000, seed=0))
    >>> round(knn_volume(points, n_neighbors=10, dim=1) / (2 * math.pi), 1)
    1.0
    """
    x, _, n_neighbors, dim = _points(points, n_neighbors=n_neighbors, dim=dim,
                                     caller="knn_volume")
    distances, _ = _neighbours(x, n_neighbors)
    balls = _unit_ball_volume(dim) * distances[:, -1].to(torch.float64) ** dim
    return float(balls.sum() / n_neighbors)


def aamari_reach(points, *, n_neighbors: int, dim: int) -> ReachResult:
    r"""Reach estimate of Aamari et al. (2019) with local PCA tangents.

    Tangents from :func:`local_pca_tangents`, then
    :func:`lib.geometry.reach.local_reach` with the sample as both the
    queries and the candidates:
    :math:`\hat\tau(x_i) = \min_{j \ne i} |x_j - x_i|^2 / (2\, d(x_j - x_i, \hat T_{x_i}))`.
    A tangent tilted by an angle e makes a candidate at distance h look
    normal, with ratio about h / (2 e), so the estimate is biased low where
    the neighbourhoods are lopsided and samples nearly coincide. On evenly
    spaced points of a circle with an even k every neighbourhood is
    symmetric and the estimate is exact; on 2,000 uniform random points of
    the unit circle (k = 4) the global estimate is 3e-4 and the median local
    reach 0.39.

    Parameters
    ----------
    points : array of shape (N, D)
        Sample of the manifold; numpy array or torch tensor; finite.
    n_neighbors : int in [dim + 1, N - 1]
        Neighbours in each local PCA.
    dim : int in [1, D]
        Intrinsic dimension d.

    Returns
    -------
    ReachResult
        ``local`` (N,) and ``witness`` (N,) in the input's array type;
        ``.reach`` is the global estimate.
    """
    x, restore, n_neighbors, dim = _points(points, n_neighbors=n_neighbors, dim=dim,
                                           caller="aamari_reach")
    _, indices = _neighbours(x, n_neighbors)
    tangents = restore(_tangents(x, indices, dim))
    return local_reach(points, tangents, points)
