"""Exact derivatives of maps theta -> x(theta) by forward-mode autodiff.

The map ``fn`` takes a parameter tensor of shape (d,) and returns (D,); it is
vectorised over query points with :func:`torch.func.vmap`, so the renderers,
immersions and decoders of the book share one code path. :class:`Derivatives`
is also what the finite-difference estimates of
:mod:`lib.geometry.differences` return. Top level, below both ``datasets``
(whose renderers provide exact derivatives) and ``geometry`` (which measures them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.func import jacfwd, vmap

from lib._arrays import as_tensor
from lib._checks import check_int, check_shape

__all__ = ["Derivatives", "derivatives"]


@dataclass(frozen=True)
class Derivatives:
    """First and second derivatives of a map at query points.

    Attributes
    ----------
    jacobian : array of shape ``(*Q, D, d)``
        dx^a / dtheta^i.
    hessian : array of shape ``(*Q, D, d, d)``
        d^2 x^a / dtheta^i dtheta^j.
    """

    jacobian: object
    hessian: object


def derivatives(fn: Callable[[torch.Tensor], torch.Tensor], theta, *,
                chunk_size: int | None = None) -> Derivatives:
    """Jacobian and Hessian of ``fn`` at every row of ``theta``.

    Parameters
    ----------
    fn : callable
        Map from a tensor of shape (d,) to a tensor of shape (D,), written in torch.
    theta : array of shape (*Q, d)
        Query parameters, numpy or torch; results come back in the same type.
    chunk_size : int, optional
        Queries per vectorised batch, to bound memory; does not change the answer.

    Returns
    -------
    Derivatives
        ``jacobian`` ``(*Q, D, d)`` and ``hessian`` ``(*Q, D, d, d)``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> square = lambda t: torch.stack([t[0] ** 2, t[0] * t[1]])
    >>> result = derivatives(square, np.array([[1.0, 2.0]]))
    >>> result.jacobian[0].tolist()
    [[2.0, 0.0], [2.0, 1.0]]
    """
    caller = "derivatives"
    theta_t, restore = as_tensor(theta)
    check_shape(theta_t.shape[-1:], (None,), name="theta", caller=caller, describe="(*Q, d)")
    if chunk_size is not None:
        check_int(chunk_size, name="chunk_size", caller=caller, low=1)
    batch_shape, d = theta_t.shape[:-1], theta_t.shape[-1]
    flat = theta_t.reshape(-1, d)
    first = vmap(jacfwd(fn), chunk_size=chunk_size)
    second = vmap(jacfwd(jacfwd(fn)), chunk_size=chunk_size)
    jac, hess = first(flat), second(flat)
    ambient = jac.shape[1]
    return Derivatives(jacobian=restore(jac.reshape(*batch_shape, ambient, d)),
                       hessian=restore(hess.reshape(*batch_shape, ambient, d, d)))
