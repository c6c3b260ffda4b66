r"""Label propagation on a weighted graph (Zhou et al., NIPS 2003) and its kNN-vs-NNK test.

With one-hot labels :math:`Y` (N, C) (zero rows for unlabelled nodes) and the
normalized affinity :math:`S = D^{-1/2} W D^{-1/2}`, :math:`D = \mathrm{diag}(W\mathbf 1)`,
the scores are

.. math::

    F^\star = (1 - \alpha)(I - \alpha S)^{-1} Y,

the fixed point of :math:`F \leftarrow \alpha S F + (1 - \alpha) Y`. Since
:math:`D^{-1/2} S D^{1/2} = D^{-1} W` is row-stochastic, the spectral radius of
:math:`S` is at most 1 and the iteration converges for any non-negative W and
:math:`\alpha < 1`. For symmetric W, once a step moves F
by :math:`\delta` (Frobenius norm) the returned iterate is within
:math:`\alpha\delta/(1 - \alpha)` of :math:`F^\star`. ``method="direct"`` solves the
sparse system by LU instead. Nodes of zero degree keep :math:`(1-\alpha) Y_i`;
a node no label reaches has zero scores and predicted label -1.

:func:`propagation_accuracy` wraps the comparison the NNK chapter makes: a
seeded, stratified labelled subset, an NNK graph (reference symmetrization) or
the kernel-weighted kNN graph on the same candidates, and the accuracy on the
unlabelled nodes. (The MATLAB reference's SSL script uses the harmonic
function instead; the robustness of NNK to k is claimed for both.)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from lib._arrays import as_tensor
from lib._checks import (REAL_DTYPES, check_finite, check_float_dtype, check_in, check_int,
                         check_real, check_shape)
from lib.graphs.metrics import class_labels
from lib.graphs.nnk import knn_graph, nnk_graph

__all__ = ["Propagation", "label_propagation", "propagation_accuracy", "stratified_labels",
           "graph_accuracy"]


@dataclass(frozen=True)
class Propagation:
    """Result of :func:`label_propagation`.

    Attributes
    ----------
    labels : numpy array of shape (N,)
        int64 class of the largest score; -1 where no label arrives.
    scores : numpy array of shape (N, C)
        :math:`F^\\star` (not normalized per row).
    n_iter : int
        Iterations run (0 for ``method="direct"``).
    converged : bool
    """

    labels: np.ndarray
    scores: np.ndarray
    n_iter: int
    converged: bool


def label_propagation(weights, labels, *, alpha: float = 0.99, n_classes: int | None = None,
                      method: str = "iterate", n_iter: int = 10_000,
                      tol: float = 1e-9) -> Propagation:
    """Zhou et al.'s normalized label propagation, :math:`F = (1-\\alpha)(I - \\alpha S)^{-1} Y`.

    Parameters
    ----------
    weights : scipy sparse matrix or array of shape (N, N)
        Non-negative, finite edge weights (symmetric for the error bound of the
        module docstring; the iteration converges either way).
    labels : array of shape (N,)
        Integer classes in [0, n_classes) for labelled nodes, -1 for the others;
        at least one node labelled.
    alpha : float in (0, 1), default=0.99
    n_classes : int >= 1, optional
        Defaults to ``labels.max() + 1``.
    method : {"iterate", "direct"}, default="iterate"
    n_iter : int >= 1, default=10000
        Iteration cap (``"iterate"``); a RuntimeWarning says when it is reached.
    tol : float in (0, 1), default=1e-9
        Stop when a step moves F by at most ``tol`` times its norm.

    Returns
    -------
    Propagation

    Examples
    --------
    Two nodes joined by one edge, the first labelled: :math:`S` swaps them, so
    :math:`F = (1, \\alpha)/(1 + \\alpha)` in the first column.

    >>> import numpy as np
    >>> result = label_propagation(np.array([[0, 2.0], [2.0, 0]]), np.array([0, -1]), alpha=0.5)
    >>> np.round(result.scores[:, 0], 6).tolist(), result.labels.tolist()
    ([0.666667, 0.333333], [0, 0])
    """
    caller = "label_propagation"
    W = _weights(weights, caller)
    count = W.shape[0]
    a = check_real(alpha, name="alpha", caller=caller, low=0.0, high=1.0, low_open=True,
                   high_open=True)
    check_in(method, ("iterate", "direct"), name="method", caller=caller)
    cap = check_int(n_iter, name="n_iter", caller=caller, low=1)
    eps = check_real(tol, name="tol", caller=caller, low=0.0, high=1.0, low_open=True,
                     high_open=True)
    y = class_labels(labels, count, n_classes, caller, name="labels", low=-1).numpy()
    known = y >= 0
    if not known.any():
        raise ValueError(f"The 'labels' parameter of {caller} must label at least one node "
                         f"(classes >= 0; -1 marks unlabelled). Got none instead.")
    classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
    Y = np.zeros((count, classes))
    Y[known, y[known]] = 1.0
    degree = np.asarray(W.sum(axis=1)).ravel()
    scale = np.where(degree > 0, 1 / np.sqrt(np.where(degree > 0, degree, 1)), 0.0)
    S = (scipy.sparse.diags(scale) @ W @ scipy.sparse.diags(scale)).tocsr()
    steps, converged = 0, True
    if method == "direct":
        system = (scipy.sparse.identity(count, format="csc") - a * S).tocsc()
        F = scipy.sparse.linalg.splu(system).solve((1 - a) * Y)
    else:
        F, converged = (1 - a) * Y, False
        for steps in range(1, cap + 1):
            new = a * (S @ F) + (1 - a) * Y
            moved = np.linalg.norm(new - F)
            F = new
            if moved <= eps * np.linalg.norm(F):
                converged = True
                break
        if not converged:
            warnings.warn(f"label_propagation: no convergence after n_iter={cap} steps "
                          f"(last step {moved:.2e} relative to tol={eps:g}); raise n_iter or "
                          f"use method='direct'.", RuntimeWarning, stacklevel=2)
    predicted = np.where(F.max(1) > 0, F.argmax(1), -1).astype(np.int64)
    return Propagation(predicted, F, steps, converged)


def propagation_accuracy(points, labels, fraction: float, n_neighbors: int, *,
                         graph: str = "nnk", seed=None, alpha: float = 0.99,
                         kernel: str = "gaussian", sigma="local",
                         symmetrize: str | None = "max") -> float:
    """Accuracy of label propagation on the unlabelled nodes, from a seeded stratified subset.

    Each class c of :math:`n_c` nodes gets :math:`\\max(1, \\mathrm{round}(f\\, n_c))`
    labelled nodes drawn without replacement; the rest are predicted by
    :func:`label_propagation` (``method="direct"``: one sparse LU, several times
    faster than the iteration at alpha = 0.99) on the chosen graph. A node no
    label reaches counts as wrong: with the reference symmetrization NNK keeps
    only mutual-kNN edges, and at small k the graph breaks into pieces.

    Parameters
    ----------
    points : array of shape (N, D)
    labels : array of shape (N,)
        Integer classes >= 0 of every node.
    fraction : float in (0, 1)
        Labelled fraction f per class.
    n_neighbors : int in [1, N - 1]
        k of both graphs (the NNK candidates, the kNN edges).
    graph : {"nnk", "knn"}, default="nnk"
        :func:`lib.graphs.nnk.nnk_graph` (exact, reference symmetrization) or
        :func:`lib.graphs.nnk.knn_graph` (kernel weights, max-symmetrized).
    seed : int, numpy Generator or None
        Draws the labelled subset.
    alpha : float in (0, 1), default=0.99
    kernel : {"gaussian", "cosine"}, default="gaussian"
    sigma : float in (0, inf) or {"global", "local"}, default="local"
    symmetrize : {"max", "min", "reference", None}, default="max"
        NNK only. The reference rule drops an edge whose two endpoint errors tie
        exactly, which happens on evenly spaced points (lattices), not on data.

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(40, 2)) + np.repeat([[0, 0], [20, 0]], 20, 0)
    >>> y = np.repeat([0, 1], 20)
    >>> [propagation_accuracy(x, y, 0.1, 8, graph=g, seed=0) for g in ("nnk", "knn")]
    [1.0, 1.0]
    """
    caller = "propagation_accuracy"
    f = check_real(fraction, name="fraction", caller=caller, low=0.0, high=1.0, low_open=True,
                   high_open=True)
    check_in(graph, ("nnk", "knn"), name="graph", caller=caller)
    x, _ = as_tensor(points)
    check_shape(x.shape, (None, None), name="points", caller=caller, describe="(N, D)")
    check_float_dtype(x, name="points", caller=caller, allowed=REAL_DTYPES)
    check_finite(x, name="points", caller=caller)
    count = x.shape[0]
    y = class_labels(labels, count, None, caller, name="labels").numpy()
    given = stratified_labels(y, f, seed)
    if graph == "nnk":
        W = nnk_graph(points, n_neighbors, kernel=kernel, sigma=sigma,
                      symmetrize=symmetrize).weights
    else:
        W = knn_graph(points, n_neighbors, kernel=kernel, sigma=sigma)
    return graph_accuracy(W, y, given, alpha=alpha)


def stratified_labels(labels, fraction: float, seed=None) -> np.ndarray:
    """A seeded stratified labelled subset: ``labels`` where chosen, -1 elsewhere.

    max(1, round(fraction * n_c)) nodes of each class c are chosen.

    Parameters
    ----------
    labels : array of shape (N,)
        Integer classes >= 0 (ints, or floats that are whole numbers), numpy or torch.
    fraction : float in (0, 1]
    seed : int, numpy Generator or None

    Returns
    -------
    given : numpy int64 array of shape (N,)

    Examples
    --------
    >>> given = stratified_labels(np.array([0, 0, 0, 0, 1, 1]), 0.5, seed=0)
    >>> np.bincount(given[given >= 0]).tolist()     # half of each class
    [2, 1]
    """
    caller = "stratified_labels"
    f = check_real(fraction, name="fraction", caller=caller, low=0.0, high=1.0, low_open=True)
    y = class_labels(labels, _length(labels, caller), None, caller, name="labels").cpu().numpy()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    given = np.full(y.shape[0], -1, dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        chosen = rng.choice(members, size=max(1, round(f * members.size)), replace=False)
        given[chosen] = c
    return given


def graph_accuracy(weights, labels, given, *, alpha: float = 0.99) -> float:
    """Accuracy on the unlabelled nodes (``given < 0``) of propagation on a fixed graph.

    Parameters
    ----------
    weights : scipy sparse matrix or array of shape (N, N)
        As in :func:`label_propagation`.
    labels : array of shape (N,)
        Integer classes >= 0 of every node (N >= 1).
    given : array of shape (N,)
        The labelled subset (:func:`stratified_labels`): classes in
        [0, labels.max()] where labelled, -1 elsewhere; at least one labelled.
    alpha : float in (0, 1), default=0.99

    Returns
    -------
    accuracy : float
        1.0 when every node is labelled.
    """
    caller = "graph_accuracy"
    W = _weights(weights, caller)
    count = W.shape[0]
    y = class_labels(labels, count, None, caller, name="labels").cpu().numpy()
    if count == 0:
        raise ValueError(f"The 'weights' parameter of {caller} must have at least one node. "
                         f"Got shape {W.shape} instead.")
    classes = int(y.max()) + 1
    known = class_labels(given, count, classes, caller, name="given", low=-1).cpu().numpy()
    if not (known >= 0).any():
        raise ValueError(f"The 'given' parameter of {caller} must label at least one node "
                         f"(classes >= 0; -1 marks unlabelled). Got none instead.")
    check_real(alpha, name="alpha", caller=caller, low=0.0, high=1.0, low_open=True,
               high_open=True)
    predicted = label_propagation(W, known, alpha=alpha, n_classes=classes,
                                  method="direct").labels
    hidden = known < 0
    return float((predicted[hidden] == y[hidden]).mean()) if hidden.any() else 1.0


def _length(labels, caller):
    """N of a label array, after checking it is one-dimensional."""
    shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else np.shape(labels)
    check_shape(shape, (None,), name="labels", caller=caller, describe="(N,)")
    return shape[0]


def _weights(weights, caller):
    dtype = weights.dtype if isinstance(weights, torch.Tensor) or scipy.sparse.issparse(
        weights) else np.asarray(weights).dtype
    if (dtype.is_complex if isinstance(dtype, torch.dtype) else np.dtype(dtype).kind == "c"):
        raise TypeError(f"The 'weights' parameter of {caller} must hold real weights. "
                        f"Got dtype {dtype} instead.")
    if isinstance(weights, torch.Tensor):
        # scipy reads no tensor of a dtype numpy lacks (bfloat16): go through float64.
        weights = weights.detach().cpu().to(torch.float64).numpy()
    W = scipy.sparse.csr_matrix(weights, dtype=np.float64) if (
        scipy.sparse.issparse(weights) or np.ndim(weights) == 2) else None
    if W is None or W.shape[0] != W.shape[1]:
        shape = np.shape(weights) if W is None else W.shape
        raise ValueError(f"The 'weights' parameter of {caller} must be a square matrix of "
                         f"shape (N, N). Got shape {tuple(shape)} instead.")
    if not np.isfinite(W.data).all() or (W.data < 0).any():
        raise ValueError(f"The 'weights' parameter of {caller} must hold finite weights in "
                         f"[0, inf). Got {int((~np.isfinite(W.data) | (W.data < 0)).sum())} "
                         f"entries outside instead.")
    return W
