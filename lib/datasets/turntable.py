r"""A synthetic COIL-20: twenty analytic objects on a turntable, rendered offline.

COIL-20 photographs 20 objects on a turntable every 5 degrees (128x128 grey,
black background). The files cannot be downloaded here, so this module renders
a stand-in whose images are a :math:`C^\infty` function of the turntable
angle, which makes exact derivatives (:func:`torch.func.jacfwd`) available.

Objects are signed-distance-like functions built from smooth primitives
(ellipsoids, slabs, cylinders, frusta, tori, capsules) joined by smooth
minimum/maximum, :math:`\operatorname{smax}(a, b) = (a + b + \sqrt{(a-b)^2 + k^2})/2`,
so that no crease makes the image a kinked function of the angle. Their
albedo is procedural and smooth (stripes, bands, checkers and wood grain made
of sines and sigmoids). Three objects are surfaces of revolution (bottle,
vase, spool), but each carries a texture that is not (a half-round label, a
three-petal motif, a helical thread), so that every object's image changes
with the angle and every class is a manifold of full dimension: with a
rotation-invariant texture the view axis would be degenerate (the metric
singular), and the curvature undefined. ``ROTATION_INVARIANT`` is empty.

Rendering (:class:`Turntable`): orthographic camera looking down at
``elevation``; the object turns by ``angle`` about the vertical axis (the
camera and the light stay; at ``angle = pi/2`` the object's +x side faces
the camera). Along each pixel ray, ``samples`` fixed points
:math:`t_j` span the ray's chord through the object's bounding cylinder (which
the turntable leaves invariant, so the samples never depend on the angle); the
density is :math:`\sigma = \text{sharpness}\cdot\operatorname{sigmoid}(-f(p)/\text{softness})`,
the weights :math:`w_j = T_j(1 - e^{-\sigma_j\delta})` with transmittance
:math:`T_j = \exp(-\sum_{i<j}\sigma_i\delta)`. Shading is deferred to the
expected surface point :math:`\bar p = \sum_j w_j p_j / \sum_j w_j`: pixel =
opacity x albedo(p̄) x (ambient + (1 - ambient) relu_soft(n(p̄)·l)), with
n the normalised gradient of f (:func:`torch.func.grad`). With sharp density
the weights sit on the first surface, where this equals per-sample shading,
at a fraction of the cost: the gradient and the albedo are evaluated at one
point per ray instead of at every sample.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.func import grad

from lib._arrays import as_tensor
from lib._checks import check_in, check_int, check_real
from lib.datasets import extension
from lib.datasets.images import ImageManifold
from lib.geometry.jacobian import Derivatives
from lib.geometry.jacobian import derivatives as _derivatives

__all__ = ["OBJECTS", "ROTATION_INVARIANT", "Turntable", "extended_turntable", "turntable_views"]

BLOCK = 2**18   # samples shaded together (angles x pixels x samples along the ray)
K = 0.03   # rounding of the smooth min/max (world units; objects span about 2)


# ---- smooth building blocks ------------------------------------------------------------

def _smax(a, b, k=K):
    return 0.5 * (a + b + torch.sqrt((a - b) ** 2 + k * k))


def _smin(a, b, k=K):
    return 0.5 * (a + b - torch.sqrt((a - b) ** 2 + k * k))


def _union(*ds, k=K):
    return functools.reduce(lambda a, b: _smin(a, b, k), ds)


def _norm(*xs):
    return torch.sqrt(sum(x * x for x in xs) + 1e-8)


def _step(x, width=0.02):
    return torch.sigmoid(x / width)


def _ellipsoid(x, y, z, centre, radii):
    (a, b, c), (r, s, t) = centre, radii
    return (_norm((x - a) / r, (y - b) / s, (z - c) / t) - 1) * min(radii)


def _sphere(x, y, z, centre, r):
    return _norm(x - centre[0], y - centre[1], z - centre[2]) - r


def _box(x, y, z, centre, half):
    """Rounded box: the smooth intersection of three slabs."""
    (a, b, c), (h, i, j) = centre, half
    return _smax(_smax(_norm(x - a) - h, _norm(y - b) - i), _norm(z - c) - j)


def _cylinder(u, v, w, r, half):
    """Cylinder around the w axis (pass the coordinates permuted, offsets applied)."""
    return _smax(_norm(u, v) - r, _norm(w) - half)


def _frustum(x, y, z, y0, y1, r0, r1):
    """Truncated cone around the vertical axis, radius r0 at y0 to r1 at y1."""
    slope = (r1 - r0) / (y1 - y0)
    side = (_norm(x, z) - r0 - slope * (y - y0)) / math.sqrt(1 + slope * slope)
    return _smax(side, _norm(y - (y0 + y1) / 2) - (y1 - y0) / 2)


def _torus(u, v, w, big, small):
    """Torus around the w axis."""
    return _norm(_norm(u, v) - big, w) - small


def _capsule(x, y, z, a, b, r):
    ab = [q - p for p, q in zip(a, b)]
    rel = [x - a[0], y - a[1], z - a[2]]
    h = sum(u * v for u, v in zip(rel, ab)) / sum(v * v for v in ab)
    h = _smax(_smin(h, torch.ones_like(h), 0.05), torch.zeros_like(h), 0.05)
    return _norm(*(u - h * v for u, v in zip(rel, ab))) - r


def _cos3(x, z):
    """cos(3 phi) of the azimuth phi about the vertical axis, smooth away from the axis."""
    r2 = x * x + z * z + 1e-4
    return x * (x * x - 3 * z * z) / r2**1.5


def _mix(base, other, weight):
    return base + (other - base) * weight


def _wood(x, y, z):
    return 0.62 + 0.12 * torch.sin(28 * (y + 0.15 * torch.sin(3 * x + 2 * z)))


# ---- the objects: (x, y, z) in the object frame (y up) -> (distance, albedo thunk) ------
# The albedo is a thunk: it is evaluated only at the expected surface point, not per sample.

def _duck(x, y, z):
    body = _ellipsoid(x, y, z, (0, -0.3, 0), (0.72, 0.4, 0.48))
    head = _sphere(x, y, z, (0.42, 0.28, 0), 0.28)
    tail = _ellipsoid(x, y, z, (-0.68, -0.08, 0), (0.2, 0.12, 0.2))
    beak = _ellipsoid(x, y, z, (0.78, 0.24, 0), (0.2, 0.06, 0.12))
    d = _union(body, head, tail, beak, k=0.08)

    def albedo():
        eyes = _smin(_sphere(x, y, z, (0.6, 0.38, 0.2), 0.06), _sphere(x, y, z, (0.6, 0.38, -0.2), 0.06))
        return _mix(_mix(0.85 - 0.1 * _step(-0.3 - y, 0.05), 0.45, _step(head - beak)), 0.1, _step(-eyes))
    return d, albedo


def _mug(x, y, z, r0=0.5, r1=0.5, handle=0.3, checker=False):
    outer = _frustum(x, y, z, -0.6, 0.6, r0, r1)
    inner = _frustum(x, y, z, -0.5, 0.8, r0 - 0.07, r1 - 0.07)
    ring = _smax(_torus(x - r1 + 0.05, y, z, handle, 0.065), -(x - r1 - 0.02))
    d = _union(_smax(outer, -inner), ring)
    if checker:
        return d, lambda: 0.55 + 0.3 * torch.tanh(3 * torch.sin(9 * y) * torch.sin(9 * z))
    return d, lambda: _mix(0.85, 0.25, _step(0.2 - _norm(y - 0.05)) * _step(z - 0.1))


def _bottle(x, y, z):
    body = _frustum(x, y, z, -0.85, 0.2, 0.36, 0.36)
    shoulder = _frustum(x, y, z, 0.2, 0.55, 0.36, 0.12)
    neck = _frustum(x, y, z, 0.45, 0.88, 0.12, 0.12)
    d = _union(body, shoulder, neck, k=0.06)
    # The label covers about half the circumference (x > 0), so the bottle looks different
    # from every side, as COIL-20's labelled bottles and jars do.
    return d, lambda: (_mix(0.75, 0.3 + 0.2 * torch.sin(25 * z), _step(0.28 - _norm(y + 0.3))
                            * _step(x / _norm(x, z, 0.01), 0.3))
                       + 0.1 * torch.sin(30 * y) * _step(y - 0.5))


def _vase(x, y, z):
    radius = 0.38 + 0.16 * torch.sin(2.6 * y + 0.9)
    d = _smax(0.8 * (_norm(x, z) - radius), _norm(y) - 0.82)
    # A painted motif: three petals around the body (cos 3 phi), so no view repeats the next.
    return d, lambda: (0.6 + 0.25 * torch.sin(14 * y)
                       - 0.33 * _step(_cos3(x, z) - 0.5, 0.1) * _step(0.45 - _norm(y), 0.05))


def _spool(x, y, z):
    core = _frustum(x, y, z, -0.5, 0.5, 0.28, 0.28)
    flanges = _smin(_frustum(x, y, z, -0.62, -0.5, 0.55, 0.55), _frustum(x, y, z, 0.5, 0.62, 0.55, 0.55))
    d = _union(core, flanges, k=0.02)
    # A three-start helical thread: sin(60 y + 3 phi) is continuous across atan2's cut
    # (phi jumps by 2 pi, the phase by 6 pi), and it turns with the spool.
    return d, lambda: _mix(0.55 + 0.3 * torch.sin(60 * y + 3 * torch.atan2(z, x)), 0.8,
                           _step(core - flanges))


def _car(x, y, z, van=False):
    body = _box(x, y, z, (0, -0.25, 0), (0.88, 0.2, 0.38))
    cabin = _box(x, y, z, (0.25, 0.12, 0), (0.55, 0.3, 0.36)) if van else \
        _box(x, y, z, (-0.1, 0.08, 0), (0.45, 0.17, 0.34))
    wheels = [_cylinder(x - a, y + 0.45, z - c, 0.19, 0.07) for a in (-0.55, 0.55) for c in (-0.38, 0.38)]
    d = _union(body, cabin, *wheels, k=0.04)

    def albedo():
        tyre = _union(*wheels, k=0.01)
        glass = _step(y - (0.1 if not van else 0.2)) * _step(cabin + 0.02)
        paint = 0.8 + 0.1 * torch.sin(9 * y) if van else 0.55 + 0.25 * _step(z)
        return _mix(_mix(paint, 0.2, glass), 0.12, _step(-tyre))
    return d, albedo


def _cat(x, y, z):
    body = _ellipsoid(x, y, z, (0, -0.35, 0), (0.38, 0.5, 0.33))
    head = _sphere(x, y, z, (0.16, 0.34, 0), 0.27)
    ears = _smin(_capsule(x, y, z, (0.14, 0.5, 0.13), (0.12, 0.75, 0.17), 0.06),
                 _capsule(x, y, z, (0.14, 0.5, -0.13), (0.12, 0.75, -0.17), 0.06))
    tail = _capsule(x, y, z, (-0.3, -0.78, 0.05), (-0.62, -0.2, 0.35), 0.06)
    d = _union(body, head, ears, tail, k=0.06)
    return d, lambda: 0.6 + 0.25 * torch.sin(14 * y + 6 * x)


def _pig(x, y, z):
    body = _ellipsoid(x, y, z, (0, 0, 0), (0.68, 0.38, 0.38))
    snout = _cylinder(y - 0.05, z, x - 0.68, 0.12, 0.07)
    legs = [_capsule(x, y, z, (a, -0.2, c), (a, -0.62, c), 0.08) for a in (-0.4, 0.4) for c in (-0.2, 0.2)]
    ears = _smin(_ellipsoid(x, y, z, (0.45, 0.36, 0.17), (0.07, 0.12, 0.06)),
                 _ellipsoid(x, y, z, (0.45, 0.36, -0.17), (0.07, 0.12, 0.06)))
    d = _union(body, snout, ears, *legs, k=0.05)
    return d, lambda: _mix(0.78, 0.45, _step(x - 0.7))


def _wedge(x, y, z):
    """Triangular prism: base y = -0.55 from x = -0.7 to 0.7, apex (0, 0.6)."""
    nx, ny = 1.15 / math.hypot(1.15, 0.7), 0.7 / math.hypot(1.15, 0.7)
    left, right = -nx * (x + 0.7) + ny * (y + 0.55), nx * (x - 0.7) + ny * (y + 0.55)
    d = _smax(_smax(_smax(-(y + 0.55), left), right), _norm(z) - 0.18)
    return d, lambda: _wood(x, y, z)


def _block(x, y, z):
    return _box(x, y, z, (0, 0, 0), (0.55, 0.55, 0.14)), lambda: _wood(z, y, x)


def _arch(x, y, z):
    d = _smax(_smax(_norm(x, y + 0.35) - 0.75, -(y + 0.35)), _norm(z) - 0.17)
    return d, lambda: _wood(x, y, z)


def _pillbox(x, y, z):
    d = _box(x, y, z, (0, 0, 0), (0.32, 0.6, 0.2))
    return d, lambda: _mix(0.8 - 0.3 * _step(0.12 - _norm(y - 0.2)),
                           0.55 + 0.3 * torch.tanh(3 * torch.sin(14 * x) * torch.sin(14 * y)),
                           _step(z - 0.1))


def _teapot(x, y, z):
    body = _ellipsoid(x, y, z, (0, -0.15, 0), (0.5, 0.4, 0.5))
    spout = _capsule(x, y, z, (0.35, -0.2, 0), (0.85, 0.25, 0), 0.07)
    handle = _smax(_torus(x + 0.48, y + 0.1, z, 0.25, 0.055), x + 0.45)
    knob = _sphere(x, y, z, (0, 0.3, 0), 0.1)
    d = _union(body, spout, handle, knob, k=0.05)
    return d, lambda: 0.65 + 0.2 * torch.sin(10 * y) * _step(body - 0.05, 0.05)


def _lamp(x, y, z):
    base = _frustum(x, y, z, -0.85, -0.75, 0.42, 0.38)
    stem = _capsule(x, y, z, (0, -0.8, 0), (0.3, 0.35, 0), 0.04)
    c, s = math.cos(0.5), math.sin(0.5)       # the shade tilts towards +x
    u, v = c * (x - 0.3) - s * (y - 0.35), s * (x - 0.3) + c * (y - 0.35)
    shade = _smax(_frustum(u, v, z, -0.05, 0.35, 0.45, 0.2), -_frustum(u, v, z, -0.2, 0.4, 0.4, 0.15))
    d = _union(base, stem, shade)
    return d, lambda: _mix(0.35, 0.85, _step(stem - shade))


def _chair(x, y, z):
    seat = _box(x, y, z, (0, -0.05, 0), (0.4, 0.05, 0.4))
    legs = [_box(x, y, z, (a, -0.45, c), (0.04, 0.4, 0.04)) for a in (-0.35, 0.35) for c in (-0.35, 0.35)]
    back = _box(x, y, z, (-0.36, 0.45, 0), (0.04, 0.45, 0.38))
    return _union(seat, back, *legs, k=0.02), lambda: _wood(x, y, z)


def _hammer(x, y, z):
    handle = _capsule(x, y, z, (0, -0.85, 0), (0, 0.5, 0), 0.06)
    head = _box(x, y, z, (0.12, 0.6, 0), (0.45, 0.11, 0.11))
    d = _union(handle, head, k=0.02)
    return d, lambda: _mix(_wood(x, y, z), 0.3, _step(handle - head))


def _snowman(x, y, z):
    balls = _union(_sphere(x, y, z, (0, -0.5, 0), 0.42), _sphere(x, y, z, (0, 0.08, 0), 0.3),
                   _sphere(x, y, z, (0, 0.53, 0), 0.21), k=0.06)
    nose = _capsule(x, y, z, (0, 0.55, 0.15), (0.0, 0.52, 0.5), 0.035)
    d = _union(balls, nose, k=0.02)

    def albedo():
        buttons = _union(*[_sphere(x, y, z, (0, b, 0.3 - 0.02 * i), 0.045)
                           for i, b in enumerate((0.15, 0.0, -0.3))], k=0.01)
        return _mix(_mix(0.92, 0.5, _step(balls - nose)), 0.1, _step(-buttons))
    return d, albedo


def _rattle(x, y, z):
    bar = _capsule(x, y, z, (-0.6, 0, 0), (0.5, 0, 0), 0.07)
    ends = _smin(_sphere(x, y, z, (0.5, 0, 0), 0.3), _sphere(x, y, z, (-0.62, 0, 0), 0.2))
    d = _union(bar, ends, k=0.04)
    return d, lambda: _mix(0.45, 0.75 + 0.15 * torch.sin(16 * z), _step(bar - ends))


# name -> (field, bounding cylinder (radius, y_low, y_high)); the turntable keeps it invariant
_SHAPES: dict[str, tuple[Callable, tuple[float, float, float]]] = {
    "duck": (_duck, (1.02, -0.73, 0.60)),
    "mug": (_mug, (0.84, -0.62, 0.61)),
    "cup": (functools.partial(_mug, r0=0.34, r1=0.5, handle=0.24, checker=True), (0.78, -0.62, 0.62)),
    "bottle": (_bottle, (0.42, -0.88, 0.91)),
    "vase": (_vase, (0.57, -0.84, 0.84)),
    "spool": (_spool, (0.58, -0.65, 0.65)),
    "car": (functools.partial(_car, van=False), (0.97, -0.67, 0.28)),
    "van": (functools.partial(_car, van=True), (0.98, -0.67, 0.45)),
    "cat": (_cat, (0.80, -0.88, 0.84)),
    "pig": (_pig, (0.80, -0.73, 0.52)),
    "wedge": (_wedge, (0.71, -0.57, 0.59)),
    "block": (_block, (0.58, -0.57, 0.57)),
    "arch": (_arch, (0.78, -0.37, 0.42)),
    "pillbox": (_pillbox, (0.38, -0.62, 0.62)),
    "teapot": (_teapot, (0.94, -0.58, 0.43)),
    "lamp": (_lamp, (0.69, -0.88, 0.74)),
    "chair": (_chair, (0.57, -0.86, 0.92)),
    "hammer": (_hammer, (0.60, -0.92, 0.73)),
    "snowman": (_snowman, (0.56, -0.95, 0.77)),
    "rattle": (_rattle, (0.85, -0.33, 0.33)),
}
OBJECTS: tuple[str, ...] = tuple(_SHAPES)
ROTATION_INVARIANT: tuple[str, ...] = ()


def _field(obj: str) -> Callable:
    return _SHAPES[obj][0]


def _rotate_y(x, z, cos, sin):
    return cos * x + sin * z, -sin * x + cos * z


@dataclass(frozen=True)
class Turntable:
    """Orthographic soft-volume renderer of the turntable objects (module docstring).

    Parameters
    ----------
    image_size : int, default=128
        Side of the square image in pixels.
    samples : int, default=64
        Fixed samples per pixel ray, spread over the ray's chord through the
        object's bounding cylinder. Against 384 samples (128 px, 2026-11-22):
        64 give a mean absolute error of at most 5e-4 and a largest pixel error
        of 0.02-0.09 (thin walls such as the lamp shade); 96 give 1e-4 and
        0.04, at 1.5 times the cost.
    softness : float, default=0.6
        Width of the density's sigmoid in pixels (a pixel is ``2 * extent /
        image_size`` world units; objects span about 2): edges are
        anti-aliased over about a pixel at every image size.
    sharpness : float, default=150.0
        Density inside the object, per world unit.
    elevation : float, default=0.3
        Camera elevation above the turntable plane, radians, in [0, 1.2].
    light : tuple of 3 floats, default=(-0.45, 0.75, 0.6)
        Direction towards the light in the camera-fixed world frame (x right,
        y up, z towards the camera at zero elevation); normalised inside.
    ambient : float, default=0.25
        Share of the light that reaches every surface, in [0, 1].
    extent : float, default=1.1
        Half-width of the view in world units.

    Examples
    --------
    >>> renderer = Turntable(image_size=32)
    >>> images = renderer.render("mug", np.array([0.0, np.pi / 2]))
    >>> images.shape, bool(0 <= images.min() and images.max() <= 1)
    ((2, 32, 32), True)
    """

    image_size: int = 128
    samples: int = 64
    softness: float = 0.6
    sharpness: float = 150.0
    elevation: float = 0.3
    light: tuple[float, float, float] = (-0.45, 0.75, 0.6)
    ambient: float = 0.25
    extent: float = 1.1

    def __post_init__(self):
        caller = "Turntable"
        check_int(self.image_size, name="image_size", caller=caller, low=2)
        check_int(self.samples, name="samples", caller=caller, low=2)
        check_real(self.softness, name="softness", caller=caller, low=0, low_open=True)
        check_real(self.sharpness, name="sharpness", caller=caller, low=0, low_open=True)
        check_real(self.elevation, name="elevation", caller=caller, low=0, high=1.2)
        check_real(self.ambient, name="ambient", caller=caller, low=0, high=1)
        check_real(self.extent, name="extent", caller=caller, low=0, low_open=True)
        light = tuple(self.light) if isinstance(self.light, (tuple, list)) else ()
        if len(light) != 3 or any(not isinstance(v, (int, float)) for v in light) \
                or math.hypot(*light) == 0:
            raise ValueError(f"The 'light' parameter of {caller} must be a non-zero direction "
                             f"(x, y, z) of 3 floats. Got {self.light!r} instead.")
        object.__setattr__(self, "light", tuple(float(v) for v in light))

    @property
    def _softness(self) -> float:
        """Softness in world units."""
        return self.softness * 2 * self.extent / self.image_size

    def _shade(self, obj: str, angle, points, step):
        """Grey values (B, A) of the active pixels for angles (B,)."""
        field = _field(obj)
        cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        # world -> object frame; at angle pi/2 the object's +x side faces the camera
        xo, zo = _rotate_y(x, z, cos, sin)
        yo = y.expand_as(xo)
        distance = field(xo, yo, zo)[0]
        tau = self.sharpness * torch.sigmoid(-distance / self._softness) * step[:, None]
        weights = torch.exp(tau - torch.cumsum(tau, -1)) * -torch.expm1(-tau)
        opacity = weights.sum(-1)
        mean = [(weights * q).sum(-1) / (opacity + 1e-6) for q in (xo, yo, zo)]
        albedo = field(*mean)[1]()
        gx, gy, gz = grad(lambda q: field(*q)[0].sum())(torch.stack(mean))
        cos, sin = cos[..., 0], sin[..., 0]
        gx, gz = _rotate_y(gx, gz, cos, -sin)       # the normal back in the world frame
        light = torch.tensor(self.light, dtype=points.dtype, device=points.device)
        light = light / light.norm()
        facing = (gx * light[0] + gy * light[1] + gz * light[2]) / _norm(gx, gy, gz)
        k = 0.1                                     # soft clamp of the Lambert term at the terminator
        lambert = (facing + torch.sqrt(facing ** 2 + k * k)) / (1 + math.sqrt(1 + k * k))
        return opacity * albedo * (self.ambient + (1 - self.ambient) * lambert)

    def render(self, obj: str, angle, *, chunk_size: int | None = None):
        """Images of one object at turntable angles.

        Parameters
        ----------
        obj : str
            One of :data:`OBJECTS`.
        angle : array of shape (...,)
            Turntable angles in radians (numpy, torch or float); differentiable.
        chunk_size : int, optional
            Angles rendered together, to bound memory; does not change the answer.

        Returns
        -------
        array of shape (..., image_size, image_size)
            Grey values in [0, 1], same type (numpy/torch), dtype and device as ``angle``.
        """
        caller = "Turntable.render"
        check_in(obj, OBJECTS, name="obj", caller=caller)
        if chunk_size is not None:
            check_int(chunk_size, name="chunk_size", caller=caller, low=1)
        angles, restore = as_tensor(angle)
        pixels, points, step = _rays(self, obj, angles.dtype, angles.device)
        flat = angles.reshape(-1)
        # small blocks of (angles, pixels, samples) stay in cache: several times faster
        if chunk_size is None:
            chunk_size = max(1, BLOCK // max(1, points.shape[0] * self.samples))
        block = max(1, BLOCK // (min(chunk_size, flat.shape[0]) * self.samples))
        values = torch.cat([torch.cat([self._shade(obj, flat[i:i + chunk_size], points[j:j + block],
                                                   step[j:j + block])
                                       for j in range(0, points.shape[0], block)], -1)
                            for i in range(0, flat.shape[0], chunk_size)])
        n = self.image_size
        images = torch.zeros(flat.shape[0], n * n, dtype=angles.dtype, device=angles.device)
        images = images.index_copy(1, pixels, values)
        return restore(images.reshape(*angles.shape, n, n))

    def image_function(self, obj: str, *, dim: int = 3, out_size: int = 64) -> Callable:
        """The map theta (dim,) -> image (out_size * out_size,) of the extended set.

        ``theta`` follows the axes of :func:`lib.datasets.extension.extension_grid`
        (view, scale, rotation), with the axes a lower ``dim`` drops held at
        :func:`lib.datasets.extension.fixed_parameters`. Written in torch for
        :func:`lib.geometry.jacobian.derivatives`.
        """
        caller = "Turntable.image_function"
        check_in(obj, OBJECTS, name="obj", caller=caller)
        check_in(dim, (1, 2, 3), name="dim", caller=caller)
        check_int(out_size, name="out_size", caller=caller, low=1)
        fixed = extension.fixed_parameters(dim)

        def image(theta):
            scale = theta[1] if dim == 3 else fixed["scale"]
            rotation = theta[dim - 1] if dim >= 2 else fixed["rotation"]
            view = self.render(obj, theta[0])
            return extension.similarity(view, scale, rotation, out_size=out_size).reshape(-1)

        return image

    def derivatives(self, obj: str, theta, *, dim: int = 3, out_size: int = 64) -> Derivatives:
        """Exact Jacobian (*Q, D, dim) and Hessian (*Q, D, dim, dim) of :meth:`image_function`.

        ``theta`` has shape (*Q, dim), numpy or torch; D = out_size**2.
        """
        return _derivatives(self.image_function(obj, dim=dim, out_size=out_size), theta)


@functools.lru_cache(maxsize=64)
def _rays(renderer: Turntable, obj: str, dtype: torch.dtype, device: torch.device):
    """Pixels whose ray meets the bounding cylinder, their samples and step.

    Returns pixel indices (A,), sample points (A, N, 3) in the world frame
    ordered from the camera backwards, and the step (A,).
    """
    radius, low, high = _SHAPES[obj][1]
    margin = 8 * renderer._softness             # the density's tail beyond the surface
    radius, low, high = radius + margin, low - margin, high + margin
    n, e = renderer.image_size, renderer.elevation
    centres = (torch.arange(n, dtype=torch.float64) + 0.5 - n / 2) * (2 * renderer.extent / n)
    v, u = -centres[:, None].expand(n, n), centres[None, :].expand(n, n)
    c, s = math.cos(e), math.sin(e)
    # p(t) = u * (1, 0, 0) + v * (0, c, -s) + t * (0, s, c); t grows towards the camera
    w = torch.sqrt(torch.clamp(radius ** 2 - u ** 2, min=0))
    t_low, t_high = (v * s - w) / c, (v * s + w) / c
    if s > 1e-9:
        t_low = torch.maximum(t_low, (low - v * c) / s)
        t_high = torch.minimum(t_high, (high - v * c) / s)
    inside = (u.abs() < radius) & (t_high > t_low) & (v * c > low - radius * s) \
        & (v * c < high + radius * s)
    pixels = inside.reshape(-1).nonzero()[:, 0]
    u, v, t_low, t_high = (a.reshape(-1)[pixels] for a in (u, v, t_low, t_high))
    step = (t_high - t_low) / renderer.samples
    t = t_high[:, None] - (torch.arange(renderer.samples, dtype=torch.float64) + 0.5) * step[:, None]
    points = torch.stack([u[:, None].expand_as(t), v[:, None] * c + t * s, -v[:, None] * s + t * c], -1)
    return (pixels.to(device), points.to(dtype=dtype, device=device),
            step.to(dtype=dtype, device=device))


def turntable_views(renderer: Turntable = Turntable(), *, objects=OBJECTS, views: int = 72,
                    dtype=torch.float32, device=None) -> torch.Tensor:
    """The raw COIL-style set: every object at ``views`` turntable angles ``2 pi k / views``.

    Returns
    -------
    torch.Tensor of shape (C, views, H, W)
        C = len(objects), grey values in [0, 1].

    Examples
    --------
    >>> turntable_views(Turntable(image_size=16), objects=("duck", "vase"), views=4).shape
    torch.Size([2, 4, 16, 16])
    """
    caller = "turntable_views"
    _check_renderer(renderer, caller)
    objects = _check_objects(objects, caller)
    views = check_int(views, name="views", caller=caller, low=1)
    angles = torch.arange(views, dtype=torch.float64) * (2 * math.pi / views)
    angles = angles.to(dtype=dtype, device=device)
    return torch.stack([renderer.render(obj, angles) for obj in objects])


def extended_turntable(dim: int = 3, *, renderer: Turntable = Turntable(), objects=OBJECTS,
                       views: int = 18, scales: int = 22, rotations: int = 16, out_size: int = 64,
                       dtype=torch.float32, device=None, progress: bool = False) -> ImageManifold:
    """The extended turntable set: views x scales x in-plane rotations, COIL-20 style.

    Each object is rendered at the ``views`` angles of the grid's view axis,
    then :func:`lib.datasets.extension.extend` pads, scales, rotates and
    resizes every view. ``dim`` drops axes as :func:`~lib.datasets.extension.extension_grid`.

    Returns
    -------
    ImageManifold
        ``images`` (C, *grid.shape, out_size, out_size) tensor, ``grid =
        extension_grid(dim, ...)``, ``classes = objects``, ``name = "turntable"``.

    Examples
    --------
    >>> data = extended_turntable(2, renderer=Turntable(image_size=16), objects=("mug",),
    ...                           views=3, rotations=4, out_size=8)
    >>> data.images.shape, data.grid.names
    (torch.Size([1, 3, 4, 8, 8]), ('view', 'rotation'))
    """
    caller = "extended_turntable"
    check_in(dim, (1, 2, 3), name="dim", caller=caller)
    _check_renderer(renderer, caller)
    objects = _check_objects(objects, caller)
    check_int(out_size, name="out_size", caller=caller, low=1)
    grid = extension.extension_grid(dim, views=views, scales=scales, rotations=rotations)
    fixed = extension.fixed_parameters(dim, scales=scales)
    axes = dict(zip(grid.names, grid.axes))
    scale_values = axes["scale"].values if "scale" in axes else [fixed["scale"]]
    rotation_values = axes["rotation"].values if "rotation" in axes else [fixed["rotation"]]
    angles = torch.as_tensor(axes["view"].values).to(dtype=dtype, device=device)
    scale_values = torch.as_tensor(np.asarray(scale_values), dtype=dtype, device=device)
    rotation_values = torch.as_tensor(np.asarray(rotation_values), dtype=dtype, device=device)
    iterator = objects
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(objects, desc="turntable")
    # filled in place: the default set alone is 2 GB in float32
    images = torch.empty(len(objects), *grid.shape, out_size, out_size, dtype=dtype, device=device)
    for k, obj in enumerate(iterator):
        extended = extension.extend(renderer.render(obj, angles), scale_values, rotation_values,
                                    out_size=out_size)
        images[k] = extended.reshape(*grid.shape, out_size, out_size)
    return ImageManifold(images, grid, objects, "turntable")


def _check_renderer(renderer, caller):
    if not isinstance(renderer, Turntable):
        raise TypeError(f"The 'renderer' parameter of {caller} must be a Turntable. "
                        f"Got {type(renderer).__name__} instead.")


def _check_objects(objects, caller):
    objects = (objects,) if isinstance(objects, str) else tuple(objects)
    if not objects:
        raise ValueError(f"The 'objects' parameter of {caller} must name at least one of "
                         f"{OBJECTS}. Got none.")
    for obj in objects:
        check_in(obj, OBJECTS, name="objects", caller=caller)
    return objects
