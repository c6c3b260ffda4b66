r"""Extended dSprites: a smooth renderer with exact derivatives.

An image is the indicator of a sprite (square; ellipse, half-axes 2:1; heart
``x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t``) convolved
with a Gaussian of std :math:`\sigma` px, sampled at the pixel centres. By
Green's theorem, with :math:`g` the 1-D Gaussian density and :math:`\Phi`
its CDF, and the boundary positively oriented in the image plane,

.. math::

    I(p, q) = \iint_S g(u - p)\, g(v - q)\, du\, dv
            = \oint_{\partial S} \Phi(u - p)\, g(v - q)\, dv.

With boundary nodes :math:`b_m` and weights :math:`w_m` this is one matrix
product per image, ``image = G.T @ P``, ``G[m, q] = g(v_m - q) v'_m w_m``,
``P[m, p] = Phi(u_m - p)``. The image is analytic in the pose, so torch.func
gives exact Jacobians and Hessians, and finite differences converge to them
at the stencil's order.

Quadrature: the trapezoid rule in t for the ellipse and the heart (spectral:
their parametrisations are trigonometric polynomials, and the heart's speed
vanishes at its two corners) and Gauss-Legendre on each side of the square
(``ceil(nodes / 4)`` per side). The integrands are Gaussians of width sigma
along the boundary, so the error falls faster than exponentially once the
node spacing is below sigma. The default 512 nodes are at most 0.25 px apart
at scale 1 (square mid-side; ellipse 0.12, heart 0.19): doubling them changes
an image by ~1e-12 for edge widths 0.3 to 0.5 px. Raise ``nodes`` for
scales above 1.

Pixel sums: Gaussians of std sigma summed over the pixel lattice give 1 up to
2 exp(-2 pi^2 sigma^2) (Poisson summation), so ``image.sum()`` is the area in
px^2 to 4 exp(-2 pi^2 sigma^2) relative for a sprite inside the image: a
bound of 3e-2 at sigma = 0.5 (1e-4 to 1e-3 seen), 1e-8 at sigma = 1.

Conventions (those of the reference, manifold-microscope 0.2.0, roughly):

- pixel (row i, column j) is centred at ``y = i - (H - 1) / 2``,
  ``x = j - (W - 1) / 2`` px from the image centre; y grows downwards;
- at scale 1 each sprite is :data:`SIZE` = 20 px across: the square's side,
  the ellipse's long axis (half-axes 10 and 5 px, along x at rotation 0),
  the heart's width (20/32 px per curve unit, tip down); the reference's
  sizes, without its truncation of scaled sizes to whole pixels;
- rotation turns the sprite counter-clockwise on screen, about its centre
  (the heart about the origin of its curve, as in the reference);
- translations (y, x) are in px.

The rotation axis spans the paper's full [0, 2 pi) by default. The square
(4-fold) and ellipse (2-fold) symmetries make their rotation circle pass the
same images 4 and 2 times, so their class manifolds are traced several times
(the volume counts each image that often). ``dsprites_grid(rotation_range=)``
takes a smaller range, still a closed loop for the square at pi / 2 and the
ellipse at pi.

``edge_width`` is the Gaussian of the anti-aliased edge; the paper's extra
blur (``blur=0.8``) composes exactly: sigma = sqrt(edge_width^2 + blur^2).
Grey values lie in [0, 1] (the reference rescales to [-1, 1] before blur).
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from lib._arrays import as_tensor
from lib._checks import check_finite, check_in, check_int, check_real, check_shape
from lib.datasets.images import ImageManifold
from lib.derivatives import Derivatives, derivatives as _autodiff
from lib.grid import Axis, Grid

__all__ = ["SHAPES", "AXES", "SIZE", "FIXED", "DSprites", "dsprites_grid", "full_parameters",
           "extended_dsprites", "periodic_translations"]

SHAPES = ("square", "ellipse", "heart")
AXES = ("scale", "rotation", "y", "x")
SIZE = 20.0
# Values of the axes a lower-dimensional variant drops. The reference fixes the
# scale at the largest value inside the 3-point buffer of its 22-point axis,
# 0.5 + 18/21 * 0.5 = 13/14; it fixes y and x at the first value inside the
# buffer (-16 px), but we centre the sprite so no variant crops it.
#: Values at which a lower-dimensional variant holds the axes it drops.
FIXED = {"scale": 13 / 14, "y": 0.0, "x": 0.0}
FREE_AXES = {4: AXES, 3: AXES[:3], 2: AXES[:2], 1: ("rotation",)}

_SQRT_2PI = math.sqrt(2 * math.pi)
_EXPONENT_CAP = 60.0


@functools.lru_cache(maxsize=32)
def _unit_boundary(shape: str, nodes: int) -> np.ndarray:
    """Counter-clockwise boundary (y up) at scale 1: rows X, Y, dX, dY, weight; float64."""
    if shape == "square":
        per_side = -(-nodes // 4)
        s, w = np.polynomial.legendre.leggauss(per_side)
        half = SIZE / 2
        s, w = s * half, w * half  # arc length along a side of length SIZE
        one, zero = np.ones_like(s), np.zeros_like(s)
        sides = [(s, -half * one, one, zero), (half * one, s, zero, one),
                 (-s, half * one, -one, zero), (-half * one, -s, zero, -one)]
        x, y, dx, dy = (np.concatenate(parts) for parts in zip(*sides))
        return np.stack([x, y, dx, dy, np.tile(w, 4)])
    t = 2 * np.pi * np.arange(nodes) / nodes
    w = np.full(nodes, 2 * np.pi / nodes)
    if shape == "ellipse":
        a, b = SIZE / 2, SIZE / 4
        return np.stack([a * np.cos(t), b * np.sin(t), -a * np.sin(t), b * np.cos(t), w])
    # Heart, traversed with x -> -x so that it runs counter-clockwise.
    k = SIZE / 32
    x = -16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    dx = -48 * np.sin(t) ** 2 * np.cos(t)
    dy = -13 * np.sin(t) + 10 * np.sin(2 * t) + 6 * np.sin(3 * t) + 4 * np.sin(4 * t)
    return np.stack([k * x, k * y, k * dx, k * dy, w])


@dataclass(frozen=True)
class DSprites:
    """Smooth renderer of the extended dSprites images.

    Parameters
    ----------
    image_size : int, default=64
        Height and width H = W of the images in px, at least 2.
    edge_width : float, default=0.5
        Std in px of the Gaussian that smooths the sprite's edge, > 0.
    blur : float, default=0.0
        Std in px of an extra Gaussian blur (the paper uses 0.8), >= 0.
    nodes : int, default=512
        Boundary quadrature nodes M, at least 8. Their spacing grows with the
        scale: keep it below ``sigma`` (at scale 1 it is about SIZE * 4 / M).

    Examples
    --------
    >>> import numpy as np
    >>> sprite = DSprites(blur=0.8)              # the paper's extra blur
    >>> image = sprite.render("square", np.array([1.0, 0.0, 0.0, 0.0]))
    >>> image.shape, round(float(image.sum()), 4)          # area 20 x 20 px
    ((64, 64), 400.0)
    """

    image_size: int = 64
    edge_width: float = 0.5
    blur: float = 0.0
    nodes: int = 512

    def __post_init__(self):
        caller = "DSprites"
        check_int(self.image_size, name="image_size", caller=caller, low=2)
        check_real(self.edge_width, name="edge_width", caller=caller, low=0, low_open=True)
        check_real(self.blur, name="blur", caller=caller, low=0)
        check_int(self.nodes, name="nodes", caller=caller, low=8)

    @property
    def sigma(self) -> float:
        """Std of the total Gaussian, ``sqrt(edge_width**2 + blur**2)`` px."""
        return math.hypot(self.edge_width, self.blur)

    def _nodes(self, shape: str, scale: torch.Tensor, angle: torch.Tensor):
        """Boundary nodes of the posed sprite before translation, for scales and angles (B,).

        Returns ``u, v`` (B, M): node positions in px (u right, v down), and
        ``coefficient`` (B, M): ``v'_m w_m / (sigma sqrt(2 pi))`` with the sign
        of the positively oriented boundary.
        """
        boundary = torch.as_tensor(_unit_boundary(shape, self.nodes), dtype=scale.dtype,
                                   device=scale.device)
        x0, y0, dx0, dy0, weight = boundary
        cos, sin, scale = torch.cos(angle)[:, None], torch.sin(angle)[:, None], scale[:, None]
        # Rotate in the y-up frame, then flip y into screen coordinates.
        u = scale * (cos * x0 - sin * y0)
        v = -scale * (sin * x0 + cos * y0)
        # The flip reverses the orientation, so the positively oriented dv is -v'(t).
        dv = scale * (sin * dx0 + cos * dy0)
        return u, v, dv * (weight / (self.sigma * _SQRT_2PI))

    def _profiles(self, u: torch.Tensor, v: torch.Tensor, coefficient: torch.Tensor):
        """E = erf(z_u) (..., M, W) and G = exp(-z_v^2) coefficient (..., M, H).

        ``z = (position - pixel centre) / (sigma sqrt 2)``; Phi = (1 + E) / 2.
        """
        n, inverse = self.image_size, 1 / (self.sigma * math.sqrt(2))
        centres = (torch.arange(n, dtype=u.dtype, device=u.device) - (n - 1) / 2) * inverse
        z = (v * inverse)[..., None] - centres
        # exp(-60) ~ 1e-26 is zero next to the image's values in both dtypes; the cap keeps
        # float32 out of subnormal numbers, which are 10x slower on CPUs, here and in the product.
        gauss = torch.exp(torch.mul(z, z).clamp(max=_EXPONENT_CAP).neg_()) * coefficient[..., None]
        return torch.special.erf((u * inverse)[..., None] - centres), gauss

    def _images(self, shape: str, theta: torch.Tensor) -> torch.Tensor:
        """Images (B, H, W) for poses (B, 4); pure torch, so vmap and jacfwd pass through."""
        scale, angle, shift_y, shift_x = theta.unbind(-1)
        u, v, coefficient = self._nodes(shape, scale, angle)
        erf, gauss = self._profiles(u + shift_x[:, None], v + shift_y[:, None], coefficient)
        # I = sum_m G[m, i] (1 + E[m, j]) / 2: Phi's constant half becomes a row sum of G,
        # one pass over (M, W) fewer; then one matrix product per image.
        return torch.baddbmm(gauss.sum(1)[:, :, None], gauss.transpose(1, 2), erf,
                             beta=0.5, alpha=0.5)

    def _translated(self, shape: str, pose: torch.Tensor, shift_y: torch.Tensor,
                    shift_x: torch.Tensor) -> torch.Tensor:
        """Images (B, Y, X, H, W) for (scale, rotation) poses (B, 2) and all shifts (Y,), (X,).

        A shift in y moves only G and a shift in x only E, so a product of
        translations costs M (Y H + X W) transcendental evaluations per pose,
        not Y X M (H + W); the answer is that of :meth:`_images`.
        """
        u, v, coefficient = self._nodes(shape, pose[:, 0], pose[:, 1])
        erf, gauss = self._profiles(u[:, None] + shift_x[:, None], v[:, None] + shift_y[:, None],
                                    coefficient[:, None])
        product = torch.einsum("bymi,bxmj->byxij", gauss, erf)
        return 0.5 * (product + gauss.sum(2)[:, :, None, :, None])

    def render(self, shape: str, theta, *, chunk_size: int = 16):
        """Images of one sprite at the given poses.

        Parameters
        ----------
        shape : {"square", "ellipse", "heart"}
        theta : array of shape (..., 4)
            Poses (scale, rotation, y, x): scale > 0, rotation in rad,
            y and x in px. numpy or torch, float32 or float64.
        chunk_size : int, default=16
            Images per batch; small batches stay in the CPU's cache (2-10x
            faster than 256). The answer does not depend on it.

        Returns
        -------
        images : array of shape (..., H, W)
            Grey values in [0, 1]; same type, dtype and device as ``theta``.

        Examples
        --------
        >>> import numpy as np
        >>> poses = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.3, -5.0, 8.0]])
        >>> images = DSprites(blur=0.8).render("ellipse", poses)
        >>> images.shape
        (2, 64, 64)
        >>> np.round(images.sum(axis=(1, 2)) / (np.pi * 50), 6).tolist()   # area pi a b, scale^2
        [1.0, 0.25]
        """
        caller = "DSprites.render"
        check_in(shape, SHAPES, name="shape", caller=caller)
        check_int(chunk_size, name="chunk_size", caller=caller, low=1)
        theta_t, restore = as_tensor(theta)
        check_shape(theta_t.shape[-1:], (4,), name="theta", caller=caller,
                    describe="(..., 4) = (..., (scale, rotation, y, x))")
        check_finite(theta_t, name="theta", caller=caller)
        if bool((theta_t[..., 0] <= 0).any()):
            raise ValueError(f"The 'theta' parameter of {caller} must have scales "
                             f"theta[..., 0] in (0, inf). Got {float(theta_t[..., 0].min())} "
                             f"instead.")
        flat = theta_t.reshape(-1, 4)
        n = self.image_size
        images = flat.new_empty(flat.shape[0], n, n)
        with torch.no_grad():
            for start in range(0, flat.shape[0], chunk_size):
                chunk = slice(start, start + chunk_size)
                images[chunk] = self._images(shape, flat[chunk])
        return restore(images.reshape(*theta_t.shape[:-1], n, n))

    def image_function(self, shape: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """The image as a function of one pose, for :func:`lib.derivatives.derivatives`.

        Parameters
        ----------
        shape : {"square", "ellipse", "heart"}

        Returns
        -------
        fn : callable
            Maps a tensor of shape (4,) = (scale, rotation, y, x) to the
            flattened image, shape (H * W,), differentiable to any order.

        Examples
        --------
        >>> import torch
        >>> fn = DSprites(image_size=16).image_function("heart")
        >>> fn(torch.tensor([0.5, 0.0, 0.0, 0.0], dtype=torch.float64)).shape
        torch.Size([256])
        """
        check_in(shape, SHAPES, name="shape", caller="DSprites.image_function")

        def fn(theta: torch.Tensor) -> torch.Tensor:
            return self._images(shape, theta[None])[0].reshape(-1)

        return fn

    def derivatives(self, shape: str, theta, *, dim: int = 4,
                    chunk_size: int | None = 16) -> Derivatives:
        """Exact Jacobian and Hessian of the images along the free axes of a variant.

        Parameters
        ----------
        shape : {"square", "ellipse", "heart"}
        theta : array of shape (..., dim)
            Free parameters of the variant (see :func:`full_parameters`); the
            fixed axes are held at :data:`FIXED`.
        dim : {1, 2, 3, 4}, default=4
            The variant: 4 (scale, rotation, y, x), 3 (scale, rotation, y),
            2 (scale, rotation), 1 (rotation,).
        chunk_size : int, optional, default=16
            Poses per vectorised batch, to bound memory; the answer does not
            depend on it.

        Returns
        -------
        Derivatives
            ``jacobian`` (..., H * W, dim) and ``hessian`` (..., H * W, dim, dim),
            same type, dtype and device as ``theta``.

        Examples
        --------
        >>> import numpy as np
        >>> sprite = DSprites(image_size=32, edge_width=1.0)
        >>> result = sprite.derivatives("square", np.array([0.8, 0.1, 0.0]), dim=3)
        >>> result.jacobian.shape, result.hessian.shape
        ((1024, 3), (1024, 3, 3))
        >>> round(float(result.jacobian[:, 0].sum()), 4)    # d(area)/d(scale) = 2 * 0.8 * 400
        640.0
        """
        caller = "DSprites.derivatives"
        check_in(shape, SHAPES, name="shape", caller=caller)
        check_in(dim, (1, 2, 3, 4), name="dim", caller=caller)
        theta_t, restore = as_tensor(theta)
        check_shape(theta_t.shape[-1:], (dim,), name="theta", caller=caller,
                    describe=f"(..., dim) = (..., {dim})")
        check_finite(theta_t, name="theta", caller=caller)
        image = self.image_function(shape)
        result = _autodiff(lambda t: image(full_parameters(t, dim)), theta_t,
                           chunk_size=chunk_size)
        return Derivatives(jacobian=restore(result.jacobian), hessian=restore(result.hessian))


def full_parameters(theta_free, dim: int):
    """Embed a variant's free parameters into (scale, rotation, y, x).

    Parameters
    ----------
    theta_free : array of shape (..., dim)
        Free parameters in the order of ``AXES`` restricted to the variant.
    dim : {1, 2, 3, 4}
        The variant (see :meth:`DSprites.derivatives`).

    Returns
    -------
    theta : array of shape (..., 4)
        Fixed axes filled in from :data:`FIXED`; same type, dtype and device
        as ``theta_free`` (differentiable when it is a tensor).

    Examples
    --------
    >>> full_parameters([[0.25], [1.0]], 1).tolist()
    [[0.9285714285714286, 0.25, 0.0, 0.0], [0.9285714285714286, 1.0, 0.0, 0.0]]
    """
    caller = "full_parameters"
    check_in(dim, (1, 2, 3, 4), name="dim", caller=caller)
    free, restore = as_tensor(theta_free)
    check_shape(free.shape[-1:], (dim,), name="theta_free", caller=caller,
                describe=f"(..., dim) = (..., {dim})")
    columns = dict(zip(FREE_AXES[dim], free.unbind(-1)))
    reference = free[..., 0]
    full = [columns[name] if name in columns else torch.full_like(reference, FIXED[name])
            for name in AXES]
    return restore(torch.stack(full, dim=-1))


def dsprites_grid(dim: int = 4, *, scales: int = 22, rotations: int = 16, translations: int = 22,
                  scale_range=(0.5, 1.0), max_shift: float = 21.0,
                  rotation_range=(0.0, 2 * math.pi)) -> Grid:
    """The paper's parameter grid of extended dSprites, or of a lower variant.

    Interval axes (scale, y, x) include the 3-point buffer at each end that the
    curvature stencils consume: measure the geometry on ``grid.interior(3)``.

    Parameters
    ----------
    dim : {1, 2, 3, 4}, default=4
        Axes: 4 (scale, rotation, y, x), 3 (scale, rotation, y), 2 (scale,
        rotation), 1 (rotation,); the others are fixed at :data:`FIXED`.
    scales : int, default=22
        Samples of the scale interval, at least 2.
    rotations : int, default=16
        Samples of the periodic rotation axis, at least 2.
    translations : int, default=22
        Samples of each translation interval, at least 2.
    scale_range : (float, float), default=(0.5, 1.0)
        Smallest and largest scale, 0 < low < high.
    max_shift : float, default=21.0
        Translations span [-max_shift, max_shift] px (step 2 px by default), > 0.
    rotation_range : (float, float), default=(0, 2 pi)
        Start and (excluded) end of the periodic rotation axis, in rad.

    Returns
    -------
    Grid
        Axes named as in :data:`AXES`, restricted to the variant.

    Examples
    --------
    >>> grid = dsprites_grid(3)
    >>> grid.names, grid.shape, grid.periodic
    (('scale', 'rotation', 'y'), (22, 16, 22), (False, True, False))
    >>> grid.spacing[2], grid.interior(3).shape
    (2.0, (16, 16, 16))
    """
    caller = "dsprites_grid"
    check_in(dim, (1, 2, 3, 4), name="dim", caller=caller)
    check_int(scales, name="scales", caller=caller, low=2)
    check_int(rotations, name="rotations", caller=caller, low=2)
    check_int(translations, name="translations", caller=caller, low=2)
    low, high = _pair(scale_range, "scale_range", caller)
    check_real(low, name="scale_range[0]", caller=caller, low=0, low_open=True)
    check_real(high, name="scale_range[1]", caller=caller, low=low, low_open=True)
    check_real(max_shift, name="max_shift", caller=caller, low=0, low_open=True)
    start, stop = _pair(rotation_range, "rotation_range", caller)
    check_real(start, name="rotation_range[0]", caller=caller)
    check_real(stop, name="rotation_range[1]", caller=caller, low=start, low_open=True)
    axes = {"scale": Axis("scale", float(low), float(high), scales),
            "rotation": Axis("rotation", float(start), float(stop), rotations, periodic=True),
            "y": Axis("y", -float(max_shift), float(max_shift), translations),
            "x": Axis("x", -float(max_shift), float(max_shift), translations)}
    return Grid(tuple(axes[name] for name in FREE_AXES[dim]))


def _pair(value, name, caller):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"The {name!r} parameter of {caller} must be a pair (low, high). "
                        f"Got {value!r} instead.")
    return value


def extended_dsprites(dim: int = 4, *, renderer: DSprites = DSprites(), shapes=SHAPES,
                      dtype: torch.dtype = torch.float32, device=None,
                      **grid_options) -> ImageManifold:
    """Render every sprite on the extended dSprites grid.

    Parameters
    ----------
    dim : {1, 2, 3, 4}, default=4
        The variant (see :func:`dsprites_grid`).
    renderer : DSprites, default=DSprites()
        Image size, edge width, blur and quadrature nodes.
    shapes : sequence of str, default=SHAPES
        Sprites to render, each one of ``SHAPES``, no repeats.
    dtype : {torch.float32, torch.float64}, default=torch.float32
    device : torch.device or str, optional
        Where to render and keep the images (default: the CPU).
    **grid_options
        Passed to :func:`dsprites_grid` (``scales``, ``rotations``, ...).

    Returns
    -------
    ImageManifold
        ``images`` a tensor ``(C, *grid.shape, H, W)``, ``classes`` the shapes,
        ``name`` "dsprites". The full paper grid (dim 4) holds 3 x 170,368
        images: 8.4 GB in float32.

    Examples
    --------
    >>> data = extended_dsprites(1, renderer=DSprites(image_size=32), rotations=8)
    >>> data.images.shape, data.classes, data.grid.names
    (torch.Size([3, 8, 32, 32]), ('square', 'ellipse', 'heart'), ('rotation',))
    """
    caller = "extended_dsprites"
    if not isinstance(renderer, DSprites):
        raise TypeError(f"The 'renderer' parameter of {caller} must be a DSprites. "
                        f"Got {type(renderer).__name__} instead.")
    shapes = (shapes,) if isinstance(shapes, str) else tuple(shapes)
    for shape in shapes:
        check_in(shape, SHAPES, name="shapes", caller=caller)
    if not shapes or len(set(shapes)) != len(shapes):
        raise ValueError(f"The 'shapes' parameter of {caller} must hold distinct names from "
                         f"{SHAPES}, at least one. Got {shapes!r} instead.")
    check_in(dtype, (torch.float32, torch.float64), name="dtype", caller=caller)
    unknown = sorted(set(grid_options) - set(inspect.signature(dsprites_grid).parameters))
    if unknown:
        raise TypeError(f"The 'grid_options' of {caller} must be keyword arguments of "
                        f"dsprites_grid. Got {unknown} instead.")
    grid = dsprites_grid(dim, **grid_options)
    n = renderer.image_size
    images = torch.empty((len(shapes), *grid.shape, n, n), dtype=dtype, device=device)
    if dim < 3:
        theta = full_parameters(torch.as_tensor(grid.points, dtype=dtype, device=device), dim)
        for index, shape in enumerate(shapes):
            images[index] = renderer.render(shape, theta)
        return ImageManifold(images, grid, shapes, "dsprites")
    # Translations form a product: render every (scale, rotation) at all shifts at once.
    values = [torch.as_tensor(axis.values, dtype=dtype, device=device) for axis in grid.axes]
    pose = torch.cartesian_prod(values[0], values[1])
    shift_y = values[2]
    shift_x = values[3] if dim == 4 else shift_y.new_full((1,), FIXED["x"])
    flat = images.view(len(shapes), pose.shape[0], shift_y.numel(), shift_x.numel(), n, n)
    step = max(1, 16 // (shift_y.numel() * shift_x.numel()))
    with torch.no_grad():
        for index, shape in enumerate(shapes):
            for start in range(0, pose.shape[0], step):
                flat[index, start:start + step] = renderer._translated(
                    shape, pose[start:start + step], shift_y, shift_x)
    return ImageManifold(images, grid, shapes, "dsprites")


def periodic_translations(shape: str, offsets, *, renderer: DSprites = DSprites()):
    """One sprite at the centre, translated by ``offsets`` pixels with wrap-around.

    The translation is exact and periodic: the image's discrete Fourier
    transform times the phase ramp of the offset (band-limited interpolation
    between pixels; for an even size the sprite's Nyquist frequency is
    dropped, so that translations compose exactly). Integer offsets are
    cyclic shifts (``torch.roll``), so
    the set of all translates is invariant under the group of cyclic shifts,
    a manifold of dimension the number of free axes (a circle for one, a
    torus for two).

    Parameters
    ----------
    shape : {"square", "ellipse", "heart"}
    offsets : array of shape (M, 2)
        Offsets (y, x) in pixels, any real values (taken modulo the image size).
    renderer : DSprites, default=DSprites()
        Draws the centred, upright sprite at the scale of :data:`FIXED`.

    Returns
    -------
    ndarray of shape (M, H, W)
        float64 grey values; ringing of the interpolation can leave them
        slightly outside [0, 1].

    Examples
    --------
    >>> sprite = DSprites(image_size=16)
    >>> images = periodic_translations("heart", [[0.0, 0.0], [0.0, 3.0], [2.0, 0.5]],
    ...                                renderer=sprite)
    >>> images.shape, bool(np.allclose(images[1], np.roll(images[0], 3, axis=1)))
    ((3, 16, 16), True)
    """
    caller = "periodic_translations"
    check_in(shape, SHAPES, name="shape", caller=caller)
    offsets = np.asarray(offsets, dtype=np.float64)
    check_shape(offsets.shape, (None, 2), name="offsets", caller=caller, describe="(M, 2)")
    check_finite(offsets, name="offsets", caller=caller)
    pose = np.array([[FIXED["scale"], 0.0, 0.0, 0.0]])      # upright, centred
    centred = np.asarray(renderer.render(shape, pose), dtype=np.float64)[0]
    size = centred.shape[0]
    spectrum = np.fft.fft2(centred)
    if size % 2 == 0:
        # A real image's Nyquist row and column cannot move by a fraction of a pixel and stay
        # real: without them translations compose exactly (a then b is a + b).
        spectrum[size // 2, :] = 0
        spectrum[:, size // 2] = 0
    frequency = np.fft.fftfreq(size) * size
    phase = np.exp(-2j * np.pi / size * (frequency[None, :, None] * offsets[:, 0, None, None]
                                         + frequency[None, None, :] * offsets[:, 1, None, None]))
    return np.real(np.fft.ifft2(spectrum[None] * phase))
