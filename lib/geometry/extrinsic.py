r"""Metric and extrinsic curvature from first and second derivatives.

Inputs are the derivatives of an immersion at query points: the Jacobian
J (*Q, D, d) and the Hessian H (*Q, D, d, d), from autodiff
(:func:`lib.geometry.jacobian.derivatives`) or from finite differences. The
formulas hold in any codimension:

- metric :math:`g_{ij} = \langle \partial_i x, \partial_j x \rangle`;
- second fundamental form :math:`\mathrm{II}_{ij} = P_N \partial_i\partial_j x`,
  the normal part of the Hessian;
- mean curvature vector :math:`H = \tfrac{1}{d} g^{ij}\mathrm{II}_{ij}`;
- scalar curvature by the Gauss equation,
  :math:`S = d^2|H|^2 - g^{ik}g^{jl}\langle\mathrm{II}_{ij},\mathrm{II}_{kl}\rangle`,
  so the round sphere of radius R in R^3 has S = 2/R^2.
"""

from __future__ import annotations

import torch

from lib._arrays import as_tensor
from lib._checks import check_shape

__all__ = ["metric_matrix", "volume_element", "second_fundamental_form", "scalar_curvature",
           "principal_curvatures"]


def _jacobian(jacobian, caller):
    jac, restore = as_tensor(jacobian)
    check_shape(jac.shape[-2:], (None, None), name="jacobian", caller=caller,
                describe="(*Q, D, d)")
    if jac.ndim < 2 or jac.shape[-2] < jac.shape[-1]:
        raise ValueError(f"The 'jacobian' parameter of {caller} must have shape (*Q, D, d) with "
                         f"D >= d. Got {tuple(jac.shape)} instead.")
    return jac, restore


def _pair(jacobian, hessian, caller):
    jac, restore = _jacobian(jacobian, caller)
    hess, _ = as_tensor(hessian)
    d = jac.shape[-1]
    check_shape(hess.shape, (*jac.shape, d), name="hessian", caller=caller,
                describe=f"(*Q, D, d, d) = {(*jac.shape, d)}")
    return jac, hess.to(jac.dtype), restore


def _metric(jac):
    return torch.einsum("...ai,...aj->...ij", jac, jac)


def inverse_metric(metric, *, caller: str):
    """Inverse of g, refusing degenerate metrics (rank-deficient tangents) by name."""
    # Relative to the metric's own scale: det g / (trace g / k)^k is scale-free.
    k = metric.shape[-1]
    scale = (torch.diagonal(metric, dim1=-2, dim2=-1).sum(-1) / k).clamp_min(torch.finfo(
        metric.dtype).tiny)
    degenerate = torch.linalg.det(metric) / scale**k <= 1e3 * torch.finfo(metric.dtype).eps
    if bool(degenerate.any()):
        raise ValueError(f"{caller} needs a non-degenerate metric g = J^T J (tangent vectors of "
                         f"full rank). Got {int(degenerate.sum())} degenerate points, e.g. a "
                         f"chart axis along which the points do not move.")
    return torch.linalg.inv(metric)


def metric_matrix(jacobian):
    """Induced metric g = J^T J.

    Parameters
    ----------
    jacobian : array of shape (*Q, D, d)

    Returns
    -------
    metric : array of shape (*Q, d, d)
    """
    jac, restore = _jacobian(jacobian, "metric_matrix")
    return restore(_metric(jac))


def volume_element(jacobian):
    """Riemannian volume element sqrt(det g), shape (*Q,).

    Examples
    --------
    >>> import numpy as np
    >>> float(volume_element(np.array([[2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])))
    6.0
    """
    jac, restore = _jacobian(jacobian, "volume_element")
    # sqrt(det J^T J): the k x k Gram matrix costs D k^2 per point, an SVD of the D x k
    # Jacobian several times more at large D; the squared conditioning is harmless here.
    return restore(torch.linalg.det(_metric(jac)).clamp_min(0).sqrt())


def _tangent_basis(jac):
    """Orthonormal basis of the tangent space, (*Q, D, d)."""
    basis, _ = torch.linalg.qr(jac)
    return basis


def second_fundamental_form(jacobian, hessian):
    """Normal part of the Hessian, II_ij = (I - P_T) d_i d_j x.

    Parameters
    ----------
    jacobian : array of shape (*Q, D, d)
    hessian : array of shape (*Q, D, d, d)

    Returns
    -------
    second_fundamental_form : array of shape (*Q, D, d, d)
    """
    jac, hess, restore = _pair(jacobian, hessian, "second_fundamental_form")
    return restore(_normal_part(jac, hess))


def _normal_part(jac, hess):
    basis = _tangent_basis(jac)
    # Project with the D x d basis, never a D x D projector: contract Q^T H first (cost
    # D d^3). A single three-operand einsum would build Q Q^T (D^2) without opt_einsum.
    coordinates = torch.einsum("...bt,...bij->...tij", basis, hess)
    return hess - torch.einsum("...at,...tij->...aij", basis, coordinates)


def scalar_curvature(jacobian, hessian):
    """Scalar curvature of the induced metric by the Gauss equation, shape (*Q,).

    Examples
    --------
    >>> import numpy as np
    >>> from lib.datasets.toy import Sphere
    >>> from lib.geometry.jacobian import derivatives
    >>> sphere = Sphere(radius=2.0)
    >>> der = derivatives(sphere.immersion, np.array([[1.0, 0.5]]))
    >>> round(float(scalar_curvature(der.jacobian, der.hessian)[0]), 12)
    0.5
    """
    jac, hess, restore = _pair(jacobian, hessian, "scalar_curvature")
    form = _normal_part(jac, hess)
    inverse = inverse_metric(_metric(jac), caller="scalar_curvature")
    trace = torch.einsum("...ij,...aij->...a", inverse, form)
    norm = torch.einsum("...ik,...jl,...aij,...akl->...", inverse, inverse, form, form)
    return restore((trace**2).sum(-1) - norm)


def principal_curvatures(jacobian, hessian, normal):
    """Eigenvalues of the shape operator of a hypersurface along ``normal``, ascending.

    Parameters
    ----------
    jacobian : array of shape (*Q, D, d) with D = d + 1
    hessian : array of shape (*Q, D, d, d)
    normal : array of shape (*Q, D)
        Unit normal defining the sign (curvatures are positive where the
        surface bends towards it).

    Returns
    -------
    curvatures : array of shape (*Q, d)
    """
    caller = "principal_curvatures"
    jac, hess, restore = _pair(jacobian, hessian, caller)
    nrm, _ = as_tensor(normal)
    check_shape(nrm.shape, jac.shape[:-1], name="normal", caller=caller,
                describe=f"(*Q, D) = {tuple(jac.shape[:-1])}")
    form = torch.einsum("...a,...aij->...ij", nrm.to(jac.dtype), hess)
    metric = _metric(jac)
    # Generalised symmetric eigenproblem II v = k g v via the Cholesky factor of g.
    factor = torch.linalg.cholesky(metric)
    half = torch.linalg.solve_triangular(factor, form, upper=False)
    whitened = torch.linalg.solve_triangular(factor, half.transpose(-1, -2), upper=False)
    return restore(torch.linalg.eigvalsh(whitened))
