r"""Jacobian spectra of an autoencoder in input and latent space.

An autoencoder with encoder :math:`E: I = \mathbb{R}^D \to L = \mathbb{R}^d` and
decoder :math:`D: L \to I` has two Jacobians per point (Agarwala et al.,
arXiv 2107.06386, Fig. 1):

.. math::

    J_I(x) = J_D(E(x))\, J_E(x) \quad (D \times D,\ \mathrm{rank} \le d), \qquad
    J_L(z) = J_E(D(z))\, J_D(z) \quad (d \times d),\ z = E(x).

Since :math:`AB` and :math:`BA` share their non-zero eigenvalues, the whole
non-zero spectrum of :math:`J_I` is that of the :math:`d \times d` product
:math:`J_E(x)\, J_D(z)`, and :math:`J_L` differs from it only through where
:math:`J_E` is evaluated (at :math:`x` or at :math:`\hat x = D(z)`). Both
products are computed here without forming a :math:`D \times D` matrix, nor
even :math:`J_E` (:math:`d \times D`) in the default forward mode:

- ``mode="forward"`` (default): :math:`J_D(z)` from ``jacfwd`` (d tangents
  through the decoder), then its d columns pushed through the encoder by
  ``jvp`` at :math:`x` and at :math:`\hat x`. Cost: about 3d forward passes.
- ``mode="reverse"`` (fallback for modules with operations that lack
  forward-mode derivatives): the d rows of :math:`J_E` by ``jacrev`` at
  :math:`x` and :math:`\hat x`, then pulled back through the decoder by one
  ``vjp`` at :math:`z`. Same numbers up to rounding; on CPU it measured
  0.9 to 1.7 times the forward speed (``benchmarks/spectra.py``).

Custom callables must keep rows independent and should avoid
``torch.linalg.solve``: in torch 2.13, ``vmap(jacfwd(f))`` through it returns
wrong Jacobians (checked against ``jacfwd`` without vmap); multiply by an
inverse instead. Linear, ReLU, ELU, tanh and sigmoid layers are fine.

Both are vectorised over points with :func:`torch.func.vmap`. The products
are cast to float64 and moved to the CPU before :func:`torch.linalg.eigvals`
and :func:`torch.linalg.slogdet` (batched d x d LAPACK calls are fast there).
The volume form is :math:`\omega = \det = \prod_i \lambda_i` (real), the
trace a diagonal sum.
The helpers at the end (pairing of two spectra, arithmetic and geometric
means, small-eigenvalue counts) are plain numpy functions on the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch.func import functional_call, jacfwd, jacrev, jvp, vjp, vmap

from lib._arrays import as_tensor
from lib._checks import check_finite, check_in, check_int, check_real, check_shape

__all__ = ["Spectra", "autoencoder_spectra", "paired_differences", "arithmetic_mean",
           "geometric_mean", "small_eigenvalue_count"]


@dataclass(frozen=True)
class Spectra:
    """Eigenvalues, trace and volume form of J_I and J_L at N points.

    Eigenvalues of each point are sorted by decreasing modulus, then by
    decreasing imaginary part (a conjugate pair: positive part first).

    Attributes
    ----------
    eig_input, eig_latent : complex128 arrays of shape (N, d)
        Eigenvalues of :math:`J_E(x) J_D(z)` (the non-zero spectrum of
        :math:`J_I`) and of :math:`J_L = J_E(\\hat x) J_D(z)`.
    trace_input, trace_latent : float64 arrays of shape (N,)
        Traces of the same products (equal to the trace of the D x D J_I).
    sign_input, sign_latent : float64 arrays of shape (N,)
        Sign of the volume form omega = det: +1, -1 or 0 (slogdet).
    logabs_input, logabs_latent : float64 arrays of shape (N,)
        ``log |omega|`` (-inf where omega = 0).
    """

    eig_input: np.ndarray
    eig_latent: np.ndarray
    trace_input: np.ndarray
    trace_latent: np.ndarray
    sign_input: np.ndarray
    sign_latent: np.ndarray
    logabs_input: np.ndarray
    logabs_latent: np.ndarray

    @property
    def n_points(self) -> int:
        """Number of points N."""
        return self.eig_input.shape[0]

    @property
    def latent_dim(self) -> int:
        """Latent dimension d."""
        return self.eig_input.shape[1]

    def as_table(self):
        """One row per point: eigenvalues, traces, signs and log omega of both spaces.

        Returns
        -------
        pandas.DataFrame
            Index ``point`` (0..N-1); columns ``eig_I_1..eig_I_d``,
            ``eig_L_1..eig_L_d`` (complex), ``trace_I``, ``trace_L``,
            ``sign_I``, ``sign_L``, ``log_omega_I``, ``log_omega_L``.
            ``log_omega`` is ``log |omega|`` where omega > 0 and NaN where
            omega <= 0, since log omega is defined only there (the regressions
            of the chapter drop those points, and count them).
        """
        import pandas as pd

        d = self.latent_dim
        columns = {}
        for tag, eig in (("I", self.eig_input), ("L", self.eig_latent)):
            columns.update({f"eig_{tag}_{i + 1}": eig[:, i] for i in range(d)})
        columns.update(trace_I=self.trace_input, trace_L=self.trace_latent,
                       sign_I=self.sign_input, sign_L=self.sign_latent,
                       log_omega_I=np.where(self.sign_input > 0, self.logabs_input, np.nan),
                       log_omega_L=np.where(self.sign_latent > 0, self.logabs_latent, np.nan))
        return pd.DataFrame(columns, index=pd.RangeIndex(self.n_points, name="point"))


def _functional(fn, name: str, caller: str, dtype):
    """``fn`` as a function of its input only, with detached (optionally cast) parameters.

    Detaching keeps the parameters out of any autograd graph: only the input
    is differentiated, and a module that requires grad costs no graph memory.
    """
    if not callable(fn):
        raise TypeError(f"The {name!r} parameter of {caller} must be a callable mapping a "
                        f"(B, dim) tensor to a (B, dim') tensor. Got {type(fn).__name__} instead.")
    if not isinstance(fn, torch.nn.Module):
        return fn, None
    state = {}
    for key, tensor in [*fn.named_parameters(), *fn.named_buffers()]:
        tensor = tensor.detach()
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        state[key] = tensor
    device = next(iter(state.values())).device if state else None
    return (lambda x: functional_call(fn, state, (x,))), device


def _one_row(fn):
    """A batched map (B, a) -> (B, b) as a map of one row (a,) -> (b,), for vmap."""
    return lambda v: fn(v.unsqueeze(0)).squeeze(0)


def _products_forward(enc1, dec1, x, z, xhat):
    """J_E(x) J_D(z) and J_E(xhat) J_D(z), shapes (B, d, d), by forward mode."""
    jac_d = vmap(jacfwd(dec1))(z)                                   # (B, D, d)

    def push(point, columns):                                       # J_E(point) @ columns
        return vmap(lambda t: jvp(enc1, (point,), (t,))[1], in_dims=1, out_dims=1)(columns)

    # x and xhat in one vectorised call: half the kernel launches.
    both = vmap(push)(torch.cat([x, xhat]), torch.cat([jac_d, jac_d]))
    return both[:len(x)], both[len(x):]


def _products_reverse(enc1, dec1, x, z, xhat):
    """The same products by reverse mode: rows of J_E, pulled back through D once."""
    def pull(xi, zi, xhati):
        rows = torch.cat([jacrev(enc1)(xi), jacrev(enc1)(xhati)])   # (2d, D)
        _, pullback = vjp(dec1, zi)
        return vmap(lambda r: pullback(r)[0])(rows)                 # row i = rows[i] @ J_D

    both = vmap(pull)(x, z, xhat)                                   # (B, 2d, d)
    d = z.shape[1]
    return both[:, :d], both[:, d:]


def _summaries(products: torch.Tensor):
    """Eigenvalues, trace, sign and log |det| of (B, d, d) products, in float64.

    On the CPU whatever the products' device: CUDA's eigvals runs one hybrid
    geev per matrix and was 2x slower on an H100 than 2 CPU cores on the whole
    computation; B d^2 numbers cost nothing to move.
    """
    products = products.to(device="cpu", dtype=torch.float64)
    sign, logabs = torch.linalg.slogdet(products)
    trace = products.diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.linalg.eigvals(products), trace, sign, logabs


def _sorted(eig: np.ndarray) -> np.ndarray:
    """Eigenvalues sorted by decreasing modulus, then decreasing imaginary part."""
    order = np.lexsort((-eig.imag, -np.abs(eig)), axis=-1)
    return np.take_along_axis(eig, order, axis=-1)


def autoencoder_spectra(encoder: Callable, decoder: Callable, x, *, batch_size: int = 256,
                        mode: str = "forward", dtype: torch.dtype | None = None) -> Spectra:
    r"""Spectra of the input- and latent-space Jacobians of an autoencoder at N points.

    With :math:`z = E(x)` and :math:`\hat x = D(z)`: eigenvalues, trace and
    slogdet of :math:`J_E(x) J_D(z)` (the non-zero spectrum of
    :math:`J_I = J_D J_E`) and of :math:`J_L = J_E(\hat x) J_D(z)`; no
    :math:`D \times D` matrix is formed (method: module docstring).

    Parameters
    ----------
    encoder : callable or torch.nn.Module
        Batched map (B, D) -> (B, d), written in torch, rows independent
        (call ``.eval()`` first on modules with dropout or batch norm).
    decoder : callable or torch.nn.Module
        Batched map (B, d) -> (B, D).
    x : array of shape (N, D)
        Input points, numpy or torch. Moved to the device of the modules'
        parameters (else kept where it is) and cast to their dtype.
    batch_size : int, default=256
        Points per vectorised chunk, to bound memory; does not change the answer.
    mode : {"forward", "reverse"}, default="forward"
        Forward-mode products (fastest), or the reverse-mode fallback for
        operations without forward-mode derivatives.
    dtype : torch.dtype, optional
        Compute the Jacobians in this dtype (modules are evaluated with cast
        copies of their parameters and are not modified). Default: the
        parameters' dtype (or x's for plain callables). Eigenvalues, traces
        and determinants are always taken in float64.

    Returns
    -------
    Spectra
        numpy arrays: eigenvalues (N, d) complex128; traces, signs, ``log |omega|`` (N,).

    Examples
    --------
    >>> import torch
    >>> encoder = torch.nn.Linear(3, 2, bias=False).double()
    >>> decoder = torch.nn.Linear(2, 3, bias=False).double()
    >>> with torch.no_grad():
    ...     _ = encoder.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 2, 0]]))
    ...     _ = decoder.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [0, 0]]))
    >>> result = autoencoder_spectra(encoder, decoder, np.ones((4, 3)))
    >>> result.eig_input[0].real.tolist(), float(result.trace_latent[0])
    ([2.0, 1.0], 3.0)
    >>> round(float(result.sign_input[0] * np.exp(result.logabs_input[0])), 12)
    2.0
    """
    caller = "autoencoder_spectra"
    batch_size = check_int(batch_size, name="batch_size", caller=caller, low=1)
    check_in(mode, ("forward", "reverse"), name="mode", caller=caller)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"The 'dtype' parameter of {caller} must be a floating torch.dtype "
                        f"or None. Got {dtype!r} instead.")
    enc, enc_device = _functional(encoder, "encoder", caller, dtype)
    dec, dec_device = _functional(decoder, "decoder", caller, dtype)
    if enc_device is not None and dec_device is not None and enc_device != dec_device:
        raise ValueError(f"The 'decoder' parameter of {caller} must live on the encoder's "
                         f"device {enc_device}. Got {dec_device} instead.")
    x_t, _ = as_tensor(x, dtype=dtype)
    check_shape(x_t.shape, (None, None), name="x", caller=caller, describe="(N, D)")
    if x_t.shape[0] == 0 or x_t.shape[1] == 0:
        raise ValueError(f"The 'x' parameter of {caller} must have shape (N, D) with N >= 1 "
                         f"and D >= 1. Got {tuple(x_t.shape)} instead.")
    check_finite(x_t, name="x", caller=caller)
    device = enc_device or dec_device or x_t.device
    if dtype is None and isinstance(encoder, torch.nn.Module):
        floating = [p for p in encoder.parameters() if p.is_floating_point()]
        dtype = floating[0].dtype if floating else None
    x_t = x_t.to(device=device, dtype=dtype or x_t.dtype)

    products = _products_forward if mode == "forward" else _products_reverse
    enc1, dec1 = _one_row(enc), _one_row(dec)
    parts = []
    # Outer no_grad: the torch.func transforms still differentiate inside, but
    # closures over parameters that require grad record no outer graph.
    with torch.no_grad():
        for start in range(0, x_t.shape[0], batch_size):
            xb = x_t[start:start + batch_size]
            z, xhat = _forward(enc, dec, xb, caller)
            m_input, m_latent = products(enc1, dec1, xb, z, xhat)
            parts.append((*_summaries(m_input), *_summaries(m_latent)))
    eig_i, tr_i, s_i, l_i, eig_l, tr_l, s_l, l_l = (
        torch.cat(column).numpy() for column in zip(*parts))
    return Spectra(eig_input=_sorted(eig_i), eig_latent=_sorted(eig_l),
                   trace_input=tr_i, trace_latent=tr_l, sign_input=s_i, sign_latent=s_l,
                   logabs_input=l_i, logabs_latent=l_l)


def _forward(enc, dec, xb, caller):
    """z = E(x), xhat = D(z), with shape checks that name the culprit."""
    try:
        z = enc(xb)
    except RuntimeError as error:
        raise ValueError(f"The 'x' parameter of {caller} must have shape (N, D) with D the "
                         f"encoder's input dimension. Got {tuple(xb.shape)}, and the encoder "
                         f"failed: {error}") from error
    if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[0] != xb.shape[0]:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"The 'encoder' parameter of {caller} must map (B, D) = "
                         f"{tuple(xb.shape)} to a tensor of shape (B, d). Got {shape} instead.")
    try:
        xhat = dec(z)
    except RuntimeError as error:
        raise ValueError(f"The 'decoder' parameter of {caller} must accept the encoder's "
                         f"output of shape {tuple(z.shape)}; it failed: {error}") from error
    if not isinstance(xhat, torch.Tensor) or tuple(xhat.shape) != tuple(xb.shape):
        shape = tuple(xhat.shape) if isinstance(xhat, torch.Tensor) else type(xhat).__name__
        raise ValueError(f"The 'decoder' parameter of {caller} must map (B, d) back to "
                         f"(B, D) = {tuple(xb.shape)}. Got {shape} instead.")
    return z, xhat


def _numpy(values) -> np.ndarray:
    """``values`` as a numpy array; a tensor is detached and moved to the CPU first.

    numpy has no bfloat16: such a tensor becomes float32, which holds it exactly.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
        if values.dtype == torch.bfloat16:
            values = values.to(torch.float32)
        return values.numpy()
    return np.asarray(values)


def _eigenvalue_array(eig, name: str, caller: str) -> np.ndarray:
    array = _numpy(eig)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"The {name!r} parameter of {caller} must have shape (N, d) with "
                         f"d >= 1. Got {array.shape} instead.")
    if not (np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.bool_)):
        raise TypeError(f"The {name!r} parameter of {caller} must hold real or complex numbers. "
                        f"Got dtype {array.dtype} instead.")
    check_finite(array, name=name, caller=caller)
    return array.astype(np.complex128)


def paired_differences(eig_a, eig_b) -> tuple[np.ndarray, np.ndarray]:
    r"""Distances between two spectra per point, after pairing their eigenvalues.

    Each point's eigenvalues are paired by the permutation :math:`\pi`
    minimising :math:`\sum_i |a_i - b_{\pi(i)}|` (a min-cost assignment,
    :func:`scipy.optimize.linear_sum_assignment`; the order of the inputs is
    irrelevant), then

    .. math:: r_1 = \frac{1}{d} \sum_i |a_i - b_{\pi(i)}|, \qquad
              r_2 = \frac{1}{d} \Big(\sum_i |a_i - b_{\pi(i)}|^2\Big)^{1/2}

    (:math:`\|\cdot\|_1 / d`, :math:`\|\cdot\|_2 / d` of the complex
    differences, Fig. 2 of the paper; the pairing is our choice). Where two
    pairings tie in :math:`r_1`, :math:`r_2` comes from scipy's choice.

    Parameters
    ----------
    eig_a, eig_b : arrays of shape (N, d)
        Real or complex eigenvalues, e.g. ``Spectra.eig_input`` and ``eig_latent``.

    Returns
    -------
    r1, r2 : float64 arrays of shape (N,)

    Examples
    --------
    >>> a = np.array([[1 + 1j, 1 - 1j, 0.5]])
    >>> r1, r2 = paired_differences(a, a[:, ::-1] + 0.3)
    >>> round(float(r1[0]), 6), round(float(r2[0]), 6)
    (0.3, 0.173205)
    """
    caller = "paired_differences"
    a = _eigenvalue_array(eig_a, "eig_a", caller)
    b = _eigenvalue_array(eig_b, "eig_b", caller)
    if a.shape != b.shape:
        raise ValueError(f"The 'eig_b' parameter of {caller} must have the shape of eig_a, "
                         f"{a.shape}. Got {b.shape} instead.")
    n, d = a.shape
    cost = np.abs(a[:, :, None] - b[:, None, :])                    # (N, d, d)
    # One scipy call per point (about 10 us at d = 20): 70,000 points take < 1 s.
    matched = np.empty((n, d))
    for k in range(n):
        rows, cols = linear_sum_assignment(cost[k])
        matched[k] = cost[k, rows, cols]
    return matched.sum(axis=1) / d, np.sqrt((matched ** 2).sum(axis=1)) / d


def arithmetic_mean(eig) -> np.ndarray:
    r"""Arithmetic mean of the eigenvalues, :math:`\mathrm{Re}\,\mathrm{tr} / d`, per point.

    Parameters
    ----------
    eig : array of shape (N, d)
        Real or complex eigenvalues of real matrices (so the sum is real).

    Returns
    -------
    mean : float64 array of shape (N,)

    Examples
    --------
    >>> arithmetic_mean(np.array([[1 + 2j, 1 - 2j, 4]])).tolist()
    [2.0]
    """
    array = _eigenvalue_array(eig, "eig", "arithmetic_mean")
    return array.sum(axis=1).real / array.shape[1]


def geometric_mean(sign, logabs, d: int, *, signed: bool = False) -> np.ndarray:
    r"""Geometric mean of the eigenvalues from the slogdet of the product, per point.

    :math:`|\omega|^{1/d} = \exp(\log|\omega| / d)`. By default the sign of
    :math:`\omega` is dropped: the paper plots :math:`\omega^{1/d}` and
    :math:`\omega < 0` needs a convention; :math:`|\omega|^{1/d}` is our
    reading (notes on seed 001, Fig. 5). ``signed=True`` gives the real d-th
    root instead, :math:`\mathrm{sign}(\omega)\, |\omega|^{1/d}`. Points with
    :math:`\omega = 0` give 0.

    Parameters
    ----------
    sign : array of shape (N,)
        Sign of omega, in {-1, 0, 1} (``Spectra.sign_input`` or ``sign_latent``).
    logabs : array of shape (N,)
        :math:`\log|\omega|`, real: finite or -inf (-inf where sign is 0, or where
        omega underflows); NaN and +inf raise a ValueError.
    d : int
        Latent dimension (the number of eigenvalues in the product), d >= 1.
    signed : bool, default=False
        Keep the sign of omega.

    Returns
    -------
    mean : float64 array of shape (N,)

    Examples
    --------
    >>> geometric_mean(np.array([1.0, -1.0]), np.log([8.0, 8.0]), 3).round(12).tolist()
    [2.0, 2.0]
    """
    caller = "geometric_mean"
    d = check_int(d, name="d", caller=caller, low=1)
    sign, logabs = _numpy(sign), _numpy(logabs)
    for name, array in (("sign", sign), ("logabs", logabs)):
        # Complex would be cast to real with only a warning, dropping its imaginary part.
        if array.dtype.kind not in "biuf":
            raise TypeError(f"The {name!r} parameter of {caller} must hold real numbers. "
                            f"Got dtype {array.dtype} instead.")
    sign, logabs = sign.astype(np.float64), logabs.astype(np.float64)
    if sign.ndim != 1 or logabs.shape != sign.shape:
        raise ValueError(f"The 'logabs' parameter of {caller} must have the shape (N,) of sign, "
                         f"{sign.shape}. Got {logabs.shape} instead.")
    if not np.isin(sign, (-1.0, 0.0, 1.0)).all():
        raise ValueError(f"The 'sign' parameter of {caller} must hold only -1, 0 or 1. "
                         f"Got {np.unique(sign[~np.isin(sign, (-1.0, 0.0, 1.0))])[:5]} instead.")
    if np.isnan(logabs).any() or np.isposinf(logabs).any():
        raise ValueError(f"The 'logabs' parameter of {caller} must hold finite values or -inf. "
                         f"Got {int((np.isnan(logabs) | np.isposinf(logabs)).sum())} NaN or +inf "
                         f"entries instead.")
    magnitude = np.where(sign == 0, 0.0, np.exp(np.where(sign == 0, 0.0, logabs) / d))
    return sign * magnitude if signed else magnitude


def small_eigenvalue_count(eig, threshold: float = 0.1) -> np.ndarray:
    r"""Number of eigenvalues with :math:`|\lambda| <` threshold, per point (Fig. 6).

    Parameters
    ----------
    eig : array of shape (N, d)
        Real or complex eigenvalues.
    threshold : float, default=0.1
        Modulus bound, > 0.

    Returns
    -------
    count : int64 array of shape (N,)

    Examples
    --------
    >>> small_eigenvalue_count(np.array([[0.05j, 0.5, -0.01], [1, 2, 3]])).tolist()
    [2, 0]
    """
    caller = "small_eigenvalue_count"
    threshold = check_real(threshold, name="threshold", caller=caller, low=0.0, low_open=True)
    array = _eigenvalue_array(eig, "eig", caller)
    return (np.abs(array) < threshold).sum(axis=1).astype(np.int64)
