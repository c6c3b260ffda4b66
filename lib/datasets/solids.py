r"""The twenty turntable objects: smooth signed-distance solids with procedural albedo.

Each object maps points (x, y, z) of its own frame (y up) to a distance-like
field f (negative inside) and an albedo thunk, evaluated by the renderer
(:mod:`lib.datasets.turntable`) only at the expected surface point of a ray.
Solids are built from smooth primitives (ellipsoids, slabs, cylinders,
frusta, tori, capsules) joined by the smooth minimum and maximum
:math:`\operatorname{smax}(a, b) = (a + b + \sqrt{(a-b)^2 + k^2})/2`, so that
no crease makes the rendered image a kinked function of the turntable angle.
Albedos are smooth too: stripes, bands, checkers and wood grain made of sines
and sigmoids. ``SHAPES`` maps each name to its field and a bounding cylinder
(radius, y_low, y_high) about the turntable axis.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

__all__ = ["SHAPES"]

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
SHAPES: dict[str, tuple[Callable, tuple[float, float, float]]] = {
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
