r"""The extended image set: every view scaled and rotated in the image plane, smoothly.

The paper extends COIL-20 by padding each 128x128 view to 182 px (so that
rotated corners stay on the canvas), rotating it in-plane (16 angles, cyclic),
shrinking it (22 scales in [0.5, 1], interval axis) and resizing the canvas to
64x64. The reference does this with OpenCV warps and whole-pixel sizes, which
makes the images a piecewise function of the scale. Here the same geometry is a
:math:`C^\infty` function of ``(scale, rotation)``, so that exact derivatives
(:func:`lib.derivatives.derivatives`) exist and finite differences
converge at their stencil order.

Model. The view is a continuous picture made of smooth bumps on its pixels
(zero outside the view: the padding is black). Output pixel ``u`` (measured
from the canvas centre in output pixels) shows the picture at

.. math:: x(u) = R(-\text{rotation})\, u \,/\, \text{scale}

in *working pixels*, where one working pixel is one output pixel at scale 1,
i.e. ``pad_to / out_size`` source pixels. At scale 1 and rotation 0 the padded
canvas exactly fills the output; a positive rotation turns the picture
counter-clockwise as displayed.

Two steps, both linear in the image:

1. *Prefilter* (independent of the parameters): the view is resampled once
   onto the working lattice by a separable normalised bump of half-width
   ``1.25`` working pixels (standard deviation ~0.5 working pixel, which
   removes what the working lattice cannot hold). Two small matmuls.
2. *Similarity resampling*: each output pixel averages the 6x6 working pixels
   around ``x(u)`` with the separable normalised bump
   :math:`\varphi(r) = e^{-1/(1-r^2)}` (:math:`|r|<1`) of half-width
   ``1.25 / scale`` working pixels, i.e. 1.25 *output* pixels at every scale,
   which anti-aliases the shrinking. Dividing by the sum of the weights makes
   the bumps a partition of unity, and since :math:`\varphi` vanishes with all
   its derivatives at the edge of its support, the weights are
   :math:`C^\infty` in ``(scale, rotation)`` although the 6x6 window jumps
   from pixel to pixel.

The 6 taps cover the kernel for ``scale >= 1.25 / 3``; the normalisation needs
a half-width above 1/2, i.e. ``scale < 2.5``. Scales are therefore accepted in
``[MIN_SCALE, MAX_SCALE] = [0.5, 2]``.

Grid conventions (:func:`extension_grid`) follow the reference
(``microscope.datasets.coil20`` and its loader): 18 views = every 4th of the 72
turntable views, cyclic over :math:`[0, 2\pi)`; 22 scales in [0.5, 1] that
include a buffer of 3 points at each end; 16 in-plane angles over
:math:`[0, 2\pi)`. The lower-dimensional variants fix the scale at the 4th
value from the top (index 18 of 22, 0.9286) and, for ``dim=1``, the rotation at 0.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from lib._arrays import as_tensor
from lib._checks import check_in, check_int, check_real, check_shape
from lib.grid import Axis, Grid

__all__ = [
    "FIXED_SCALE_INDEX",
    "MAX_SCALE",
    "MIN_SCALE",
    "extend",
    "extension_grid",
    "fixed_parameters",
    "similarity",
]

MIN_SCALE, MAX_SCALE = 0.5, 2.0
PAD_RATIO = 182 / 128          # the reference pads 128 px views to 182 px (about sqrt 2)
HALF_WIDTH = 1.25              # bump half-width: working pixels (prefilter), output pixels (resampling)
TAPS = 6                       # resampling window per axis; covers HALF_WIDTH / MIN_SCALE < 3
SPARSE_FROM = 8                # views from which one sparse matmul beats gathering taps
FIXED_SCALE_INDEX = -4         # the reference keeps the 4th scale from the top in dim 1 and 2


def _bump(r):
    """exp(-1 / (1 - r^2)) inside |r| < 1, zero outside; C-infinity."""
    inside = r * r < 1
    safe = torch.where(inside, r * r, torch.zeros_like(r))
    return torch.where(inside, torch.exp(-1 / (1 - safe)), torch.zeros_like(r))


def _pad_to(pad_to, height, caller):
    if pad_to is None:
        return round(height * PAD_RATIO)
    return check_int(pad_to, name="pad_to", caller=caller, low=1)


def _prefilter(n_source: int, pad_to: int, out_size: int, dtype, device):
    """Matrix (n_work, n_source) from source pixels to working pixels, and n_work.

    Source pixel i sits at ``i - (n_source - 1) / 2`` source pixels from the
    centre, working pixel j at ``(j - half) * step`` with ``step = pad_to /
    out_size``. Rows are normalised over the whole (zero-extended) source
    lattice, so a constant picture stays constant away from the border.
    """
    step = pad_to / out_size
    width = HALF_WIDTH * max(step, 1.0)   # never narrower than a source pixel (upsampling)
    half = math.ceil(((n_source - 1) / 2 + width) / step) + 1  # a zero ring beyond the support
    centres = (torch.arange(2 * half + 1, dtype=torch.float64) - half) * step + (n_source - 1) / 2
    weights = _bump((centres[:, None] - torch.arange(n_source, dtype=torch.float64)) / width)
    # normalise over the infinite lattice (black outside the view), not only the view's pixels
    near = torch.floor(centres)[:, None] + torch.arange(-math.ceil(width), math.ceil(width) + 2)
    total = _bump((centres[:, None] - near) / width).sum(1, keepdim=True)
    return (weights / total).to(dtype=dtype, device=device), 2 * half + 1


def _window(position, half_width, size):
    """Tap indices (..., TAPS) and normalised weights (..., TAPS) for positions in index units."""
    first = torch.floor(position.detach()) - (TAPS // 2 - 1)
    offsets = torch.arange(TAPS, dtype=position.dtype, device=position.device)
    weights = _bump(((position - first)[..., None] - offsets) / half_width[..., None])
    weights = weights / weights.sum(-1, keepdim=True)
    # the outer ring of the working lattice is zero, so clamped taps read zeros
    taps = first.to(torch.int32)[..., None] + offsets.to(torch.int32)
    return taps.clamp(0, size - 1), weights


def _windows(scale, rotation, out_size: int, n_rows: int, n_cols: int):
    """Tap indices (..., P, TAPS**2) into the flat working image and weights (..., P, TAPS**2).

    ``scale`` and ``rotation`` broadcast to a batch shape (...); P = out_size**2.
    """
    dtype, device = scale.dtype, scale.device
    offsets = torch.arange(out_size, dtype=dtype, device=device) - (out_size - 1) / 2
    q, p = torch.meshgrid(offsets, offsets, indexing="ij")     # q down, p right
    p, q = p.reshape(-1), q.reshape(-1)
    scale, rotation = scale[..., None], rotation[..., None]
    cos, sin = torch.cos(rotation), torch.sin(rotation)
    col = (p * cos - q * sin) / scale + (n_cols - 1) / 2
    row = (p * sin + q * cos) / scale + (n_rows - 1) / 2
    half_width = (HALF_WIDTH / scale).expand_as(col)
    col_taps, col_weights = _window(col, half_width, n_cols)
    row_taps, row_weights = _window(row, half_width, n_rows)
    index = (row_taps * n_cols)[..., :, None] + col_taps[..., None, :]
    weights = row_weights[..., :, None] * col_weights[..., None, :]
    return index.flatten(-2), weights.flatten(-2)


def _concrete(value):
    """The float value of a plain scalar, or None inside a torch.func transform."""
    if isinstance(value, torch.Tensor):
        if torch._C._functorch.is_functorch_wrapped_tensor(value):
            return None
        return float(value) if value.numel() == 1 else None
    return float(value)


def similarity(image, scale, rotation, *, out_size: int = 64, pad_to: int | None = None):
    r"""One view scaled by ``scale`` and rotated by ``rotation`` on an ``out_size`` canvas.

    The padded ``pad_to``-pixel canvas is mapped onto the output at scale 1;
    output pixel ``u`` shows the picture at :math:`R(-\text{rotation})u/\text{scale}`
    (module docstring). The result is :math:`C^\infty` in both parameters and
    works under :func:`torch.func.jacfwd` and :func:`torch.func.vmap`.

    Parameters
    ----------
    image : torch.Tensor of shape (H, W)
        Grey values of one view (black background).
    scale : scalar torch.Tensor (or float)
        In [0.5, 2]; 1 fills the output with the padded canvas.
    rotation : scalar torch.Tensor (or float)
        In-plane angle in radians, counter-clockwise as displayed.
    out_size : int, default=64
        Output side in pixels.
    pad_to : int, optional
        Side of the padded canvas in source pixels; default ``round(H * 182 / 128)``.

    Returns
    -------
    torch.Tensor of shape (out_size, out_size)
        Same dtype and device as ``image``.

    Examples
    --------
    >>> y = torch.arange(64, dtype=torch.float64) - 31.5
    >>> image = torch.exp(-(y[:, None] ** 2 + y[None, :] ** 2) / 128)    # a blob, sigma 8 px
    >>> out = similarity(image, torch.tensor(0.8), torch.tensor(1.0), out_size=32)
    >>> out.shape            # mass: (canvas 91 px -> 32 px) times scale**2
    torch.Size([32, 32])
    >>> round(float(out.sum() / image.sum() * (91 / 32) ** 2 / 0.8 ** 2), 3)
    1.0
    """
    caller = "similarity"
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"The 'image' parameter of {caller} must be a torch.Tensor of shape (H, W). "
                        f"Got {type(image).__name__} instead; use extend for numpy arrays.")
    check_shape(image.shape, (None, None), name="image", caller=caller, describe="(H, W)")
    out_size = check_int(out_size, name="out_size", caller=caller, low=1)
    pad_to = _pad_to(pad_to, image.shape[0], caller)
    for name, value in (("scale", scale), ("rotation", rotation)):
        concrete = _concrete(value)
        if concrete is not None:
            low, high = (MIN_SCALE, MAX_SCALE) if name == "scale" else (-math.inf, math.inf)
            check_real(concrete, name=name, caller=caller, low=low, high=high)
    dtype = image.dtype if image.is_floating_point() else torch.float64
    image = image.to(dtype)
    scale = torch.as_tensor(scale, dtype=dtype, device=image.device).reshape(())
    rotation = torch.as_tensor(rotation, dtype=dtype, device=image.device).reshape(())
    rows, n_rows = _prefilter(image.shape[0], pad_to, out_size, dtype, image.device)
    cols, n_cols = _prefilter(image.shape[1], pad_to, out_size, dtype, image.device)
    work = (rows @ image @ cols.T).reshape(-1)
    index, weights = _windows(scale, rotation, out_size, n_rows, n_cols)
    return (work[index.long()] * weights).sum(-1).reshape(out_size, out_size)


def extend(views, scales, rotations, *, out_size: int = 64, pad_to: int | None = None,
           chunk_size: int | None = None):
    """Every view at every (scale, rotation): the extended image set.

    Numerically the same as looping :func:`similarity`, batched: the prefilter
    runs once per view and the resampling windows once per (scale, rotation).

    Parameters
    ----------
    views : array of shape (..., H, W)
        Grey images, numpy or torch.
    scales : array of shape (S,)
        Values in [0.5, 2].
    rotations : array of shape (R,)
        In-plane angles in radians.
    out_size : int, default=64
    pad_to : int, optional
        Padded canvas side in source pixels; default ``round(H * 182 / 128)``.
    chunk_size : int, optional
        (scale, rotation) pairs resampled together (default 32), to bound
        memory. Does not change the answer.

    Returns
    -------
    array of shape (..., S, R, out_size, out_size)
        Same type (numpy/torch), dtype and device as ``views``.

    Examples
    --------
    >>> views = np.zeros((2, 32, 32), dtype=np.float32)
    >>> views[:, 12:20, 10:22] = 1.0
    >>> extend(views, np.linspace(0.5, 1.0, 3), np.zeros(4), out_size=16).shape
    (2, 3, 4, 16, 16)
    """
    caller = "extend"
    x, restore = as_tensor(views)
    if x.ndim < 2:
        raise ValueError(f"The 'views' parameter of {caller} must have shape (..., H, W). "
                         f"Got {tuple(x.shape)} instead.")
    out_size = check_int(out_size, name="out_size", caller=caller, low=1)
    pad_to = _pad_to(pad_to, x.shape[-2], caller)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, name="chunk_size", caller=caller, low=1)
    s, _ = as_tensor(scales, dtype=x.dtype)
    r, _ = as_tensor(rotations, dtype=x.dtype)
    for name, values in (("scales", s), ("rotations", r)):
        check_shape(values.shape, (None,), name=name, caller=caller, describe="(n,)")
    for value in s.tolist():
        check_real(value, name="scales", caller=caller, low=MIN_SCALE, high=MAX_SCALE)
    for value in r.tolist():
        check_real(value, name="rotations", caller=caller)
    s, r = s.to(x.device), r.to(x.device)

    batch = x.shape[:-2]
    rows, n_rows = _prefilter(x.shape[-2], pad_to, out_size, x.dtype, x.device)
    cols, n_cols = _prefilter(x.shape[-1], pad_to, out_size, x.dtype, x.device)
    work = (rows @ x.reshape(-1, *x.shape[-2:]) @ cols.T).reshape(-1, n_rows * n_cols)
    n_views, pixels = work.shape[0], out_size * out_size
    pairs_s = s[:, None].expand(len(s), len(r)).reshape(-1)
    pairs_r = r[None, :].expand(len(s), len(r)).reshape(-1)
    if chunk_size is None:
        chunk_size = 32
    out = torch.empty(n_views, len(pairs_s), pixels, dtype=x.dtype, device=x.device)
    columns = work.T.contiguous()                                       # (K, views)
    for start in range(0, len(pairs_s), chunk_size):
        stop = min(start + chunk_size, len(pairs_s))
        index, weights = _windows(pairs_s[start:stop], pairs_r[start:stop], out_size, n_rows, n_cols)
        index, weights = index.reshape(-1, TAPS * TAPS), weights.reshape(-1, TAPS * TAPS)
        if n_views >= SPARSE_FROM:
            # the taps of all views share one sparse matrix (36 entries a row): one spmm
            rows_ptr = torch.arange(0, index.numel() + 1, TAPS * TAPS, dtype=torch.int32,
                                    device=x.device)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)   # "sparse CSR is beta"
                matrix = torch.sparse_csr_tensor(rows_ptr, index.reshape(-1), weights.reshape(-1),
                                                 size=(index.shape[0], columns.shape[0]),
                                                 check_invariants=False)
                resampled = matrix @ columns                            # (pairs * P, views)
        else:
            resampled = torch.einsum("qtv,qt->qv", columns[index.long()], weights)
        out[:, start:stop] = resampled.T.reshape(n_views, stop - start, pixels)
    return restore(out.reshape(*batch, len(s), len(r), out_size, out_size))


def extension_grid(dim: int = 3, *, views: int = 18, scales: int = 22, rotations: int = 16,
                   scale_range=(0.5, 1.0)) -> Grid:
    r"""Parameter grid of the extended turntable sets (COIL-20 convention).

    Axes, in this order: ``view`` (turntable angle, :math:`[0, 2\pi)`, periodic),
    ``scale`` (interval ``scale_range`` with ``scales`` points, the 3-point
    buffers at both ends included), ``rotation`` (in-plane, :math:`[0, 2\pi)`,
    periodic). ``dim=2`` keeps (view, rotation) at the fixed scale
    ``scale_values[-4]``; ``dim=1`` keeps (view,) at that scale and rotation 0.
    The fixed values are :func:`fixed_parameters`.

    Parameters
    ----------
    dim : {1, 2, 3}, default=3
    views, scales, rotations : int
        Samples per axis (views and rotations at least 2, scales at least 4).
    scale_range : (float, float), default=(0.5, 1.0)
        Smallest and largest scale, within [0.5, 2].

    Returns
    -------
    Grid

    Examples
    --------
    >>> extension_grid(3).shape, extension_grid(3).names
    ((18, 22, 16), ('view', 'scale', 'rotation'))
    >>> extension_grid(1).names, extension_grid(1).periodic
    (('view',), (True,))
    """
    caller = "extension_grid"
    check_in(dim, (1, 2, 3), name="dim", caller=caller)
    views = check_int(views, name="views", caller=caller, low=2)
    scales = check_int(scales, name="scales", caller=caller, low=4)
    rotations = check_int(rotations, name="rotations", caller=caller, low=2)
    low, high = _scale_range(scale_range, caller)
    axes = {"view": Axis("view", 0.0, 2 * math.pi, views, True),
            "scale": Axis("scale", low, high, scales),
            "rotation": Axis("rotation", 0.0, 2 * math.pi, rotations, True)}
    names = {3: ("view", "scale", "rotation"), 2: ("view", "rotation"), 1: ("view",)}[dim]
    return Grid(tuple(axes[name] for name in names))


def fixed_parameters(dim: int = 3, *, scales: int = 22, scale_range=(0.5, 1.0)) -> dict:
    """The values the lower-dimensional variants hold fixed: ``{"scale": ..., "rotation": ...}``.

    Examples
    --------
    >>> {k: round(v, 4) for k, v in fixed_parameters(1).items()}
    {'scale': 0.9286, 'rotation': 0.0}
    >>> fixed_parameters(3)
    {}
    """
    caller = "fixed_parameters"
    check_in(dim, (1, 2, 3), name="dim", caller=caller)
    scales = check_int(scales, name="scales", caller=caller, low=4)
    low, high = _scale_range(scale_range, caller)
    fixed = {}
    if dim <= 2:
        fixed["scale"] = float(np.linspace(low, high, scales)[FIXED_SCALE_INDEX])
    if dim == 1:
        fixed["rotation"] = 0.0
    return fixed


def _scale_range(scale_range, caller):
    if not isinstance(scale_range, (tuple, list)) or len(scale_range) != 2:
        raise TypeError(f"The 'scale_range' parameter of {caller} must be a pair (low, high) in "
                        f"[{MIN_SCALE}, {MAX_SCALE}]. Got {scale_range!r} instead.")
    low = check_real(scale_range[0], name="scale_range", caller=caller, low=MIN_SCALE, high=MAX_SCALE)
    high = check_real(scale_range[1], name="scale_range", caller=caller, low=low, high=MAX_SCALE,
                      low_open=True)
    return low, high
