r"""Geometry at a point from the Jacobian of an immersion.

The input is the Jacobian :math:`J = \partial x / \partial\theta` of an
immersion :math:`\theta \mapsto x(\theta) \in \mathbb{R}^D` at query points,
an array of shape ``(*Q, D, d)``: exact, from autodiff
(:func:`lib.derivatives.derivatives`), or estimated, from finite differences
(:func:`lib.geometry.differences.gradient`). Each quantity here is algebraic in
J at one point; nothing looks at neighbouring points:

- metric :math:`g_{ij} = \langle \partial_i x, \partial_j x \rangle`, i.e. :math:`g = J^\top J`;
- volume element :math:`\sqrt{\det g}`;
- inverse metric :math:`g^{-1}`, refusing degenerate points (:func:`is_degenerate`).

Names say what they start from (``metric_from_jacobian``, ...). The plain
names ``metric_matrix``, ``volume_element`` and ``scalar_curvature`` mean the
estimators on values sampled over a :class:`~lib.grid.Grid`
(:mod:`lib.geometry.metric`, :mod:`lib.geometry.curvature`), which difference
the values and then call the functions here. Quantities that also need the
Hessian (second fundamental form, scalar curvature by the Gauss equation) are
in :mod:`lib.geometry.extrinsic`.
"""

from __future__ import annotations

import torch

from lib._arrays import as_tensor
from lib._checks import check_finite, check_float_dtype, check_shape

__all__ = ["checked_jacobian", "metric_from_jacobian", "volume_element_from_jacobian",
           "is_degenerate", "inverse_metric"]


def checked_jacobian(jacobian, *, caller: str):
    """``jacobian`` as a tensor of shape ``(*Q, D, d)`` with D >= d, refusing other shapes by name.

    Parameters
    ----------
    jacobian : array of shape (*Q, D, d)
        Numpy or torch, with finite entries.
    caller : str
        The public function the error messages name.

    Returns
    -------
    jacobian : torch.Tensor of shape (*Q, D, d)
    restore : callable
        Gives a result back in the type of ``jacobian`` (see ``lib._arrays.as_tensor``).

    Examples
    --------
    >>> import numpy as np
    >>> jac, restore = checked_jacobian(np.zeros((5, 3, 2)), caller="f")
    >>> tuple(jac.shape), type(restore(jac)).__name__
    ((5, 3, 2), 'ndarray')
    """
    jac, restore = as_tensor(jacobian)
    check_shape(jac.shape[-2:], (None, None), name="jacobian", caller=caller,
                describe="(*Q, D, d)")
    if jac.ndim < 2 or jac.shape[-2] < jac.shape[-1]:
        raise ValueError(f"The 'jacobian' parameter of {caller} must have shape (*Q, D, d) with "
                         f"D >= d. Got {tuple(jac.shape)} instead.")
    check_finite(jac, name="jacobian", caller=caller)
    return jac, restore


def _metric(jac):
    return torch.einsum("...ai,...aj->...ij", jac, jac)


def metric_from_jacobian(jacobian):
    r"""Induced metric :math:`g = J^\top J` at each point.

    Parameters
    ----------
    jacobian : array of shape (*Q, D, d)

    Returns
    -------
    metric : array of shape (*Q, d, d)
        In the type of ``jacobian``.

    Examples
    --------
    >>> import numpy as np
    >>> metric_from_jacobian(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])).tolist()
    [[2.0, 1.0], [1.0, 1.0]]
    """
    jac, restore = checked_jacobian(jacobian, caller="metric_from_jacobian")
    return restore(_metric(jac))


def volume_element_from_jacobian(jacobian):
    r"""Riemannian volume element :math:`\sqrt{\det J^\top J}` at each point.

    Parameters
    ----------
    jacobian : array of shape (*Q, D, d)

    Returns
    -------
    volume_element : array of shape (*Q,)
        In the type of ``jacobian``.

    Examples
    --------
    >>> import numpy as np
    >>> float(volume_element_from_jacobian(np.array([[2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])))
    6.0
    """
    caller = "volume_element_from_jacobian"
    jac, restore = checked_jacobian(jacobian, caller=caller)
    # The determinant has no float16/bfloat16 kernel and no meaning for complex tangents.
    check_float_dtype(jac, name="jacobian", caller=caller)
    # sqrt(det J^T J): the k x k Gram matrix costs D k^2 per point, an SVD of the D x k
    # Jacobian several times more at large D; the squared conditioning is harmless here.
    return restore(torch.linalg.det(_metric(jac)).clamp_min(0).sqrt())


def _checked_metric(metric, caller: str, name: str) -> None:
    """Refuse by name what torch's det/inv would fail on midway (or answer wrongly)."""
    if not isinstance(metric, torch.Tensor):
        raise TypeError(f"The {name!r} parameter of {caller} must be a torch.Tensor of shape "
                        f"(*Q, k, k). Got {type(metric).__name__} instead.")
    if metric.ndim < 2 or metric.shape[-1] != metric.shape[-2] or metric.shape[-1] == 0:
        raise ValueError(f"The {name!r} parameter of {caller} must have shape (*Q, k, k) with "
                         f"k >= 1. Got {tuple(metric.shape)} instead.")
    check_float_dtype(metric, name=name, caller=caller)


def is_degenerate(metric: torch.Tensor, *, caller: str = "is_degenerate",
                  name: str = "metric") -> torch.Tensor:
    r"""Where a metric is numerically degenerate, scale-free.

    :math:`\det g / (\operatorname{tr} g / k)^k \le 10^3\,\varepsilon` with
    :math:`\varepsilon` the machine epsilon of the dtype: relative to the metric's
    own size, so scaling the points does not change the answer.

    Parameters
    ----------
    metric : torch.Tensor of shape (*Q, k, k)
        float32 or float64; other dtypes and shapes raise a named error.
    caller, name : str, default="is_degenerate", "metric"
        The function and parameter that error messages name.

    Returns
    -------
    degenerate : bool torch.Tensor of shape (*Q,)

    Examples
    --------
    >>> import torch
    >>> is_degenerate(torch.tensor([[[1.0, 0.0], [0.0, 1e-3]],
    ...                             [[1.0, 2.0], [2.0, 4.0]]], dtype=torch.float64)).tolist()
    [False, True]
    """
    _checked_metric(metric, caller, name)
    k = metric.shape[-1]
    scale = (torch.diagonal(metric, dim1=-2, dim2=-1).sum(-1) / k).clamp_min(
        torch.finfo(metric.dtype).tiny)
    # det(g / scale) rather than det(g) / scale**k: for a (near-)constant map both det(g)
    # and scale**k underflow to 0 and the ratio was 0/0 = NaN, which compares False.
    return torch.linalg.det(metric / scale[..., None, None]) <= 1e3 * torch.finfo(metric.dtype).eps


def inverse_metric(metric: torch.Tensor, *, caller: str, name: str = "metric") -> torch.Tensor:
    """Inverse of g, refusing degenerate metrics (rank-deficient tangents) by name.

    Parameters
    ----------
    metric : torch.Tensor of shape (*Q, k, k)
        float32 or float64, finite.
    caller : str
        The public function the error message names.
    name : str, default="metric"
        The parameter that shape, dtype and finiteness errors name.

    Returns
    -------
    inverse : torch.Tensor of shape (*Q, k, k)

    Raises
    ------
    ValueError
        Where :func:`is_degenerate` holds at any point, or on NaN or infinite entries.
    TypeError
        If ``metric`` is not a float32 or float64 tensor.
    """
    _checked_metric(metric, caller, name)
    check_finite(metric, name=name, caller=caller)
    degenerate = is_degenerate(metric, caller=caller, name=name)
    if bool(degenerate.any()):
        raise ValueError(f"{caller} needs a non-degenerate metric g = J^T J (tangent vectors of "
                         f"full rank). Got {int(degenerate.sum())} degenerate points, e.g. a "
                         f"chart axis along which the points do not move.")
    return torch.linalg.inv(metric)
