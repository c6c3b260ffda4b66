"""The offline turntable renderer: periodicity, smoothness, symmetry and bookkeeping.

Renders are small (24-32 px) so that the whole file runs in seconds.

Tolerances:
- Periodicity, symmetry of the surfaces of revolution and batching are exact
  identities of the renderer, so they hold to rounding: 1e-12 in float64.
- Finite differences of a C-infinity function: halving h divides the error of
  central differences by 4, so log2 of successive ratios lies in [1.8, 2.2].
  Edges move by about 13 px per radian at 32 px and are about a pixel wide, so
  the image changes on a scale of 0.05 rad; steps 4e-3..1e-3 are well inside it.
- float32 against float64: the render is a few hundred operations on O(1)
  numbers; we allow 1e-4 (measured 5e-7).
- Distinct objects: the RMS grey-level distance between two different objects
  at the same angle must exceed 0.02 (the closest pair, block and pillbox,
  measured 0.09 at 24 px); a changing object must change by more than 0.05 RMS over a
  quarter turn.
"""

import math

import numpy as np
import pytest
import torch
from torch.func import jacfwd

from lib.datasets import extension
from lib.datasets.images import ImageManifold
from lib.datasets.solids import SHAPES
from lib.datasets.turntable import (
    OBJECTS,
    ROTATION_INVARIANT,
    Turntable,
    extended_turntable,
    turntable_views,
)

F64 = torch.float64
SMALL = Turntable(image_size=32)
ASYMMETRIC = [obj for obj in OBJECTS if obj not in ROTATION_INVARIANT]


def test_twenty_objects_none_invariant_under_the_turntable():
    assert len(OBJECTS) == len(set(OBJECTS)) == 20
    assert ROTATION_INVARIANT == ()


def test_full_turn_gives_the_same_image():
    for obj in ("duck", "lamp"):
        images = SMALL.render(obj, torch.tensor([0.3, 0.3 + 2 * math.pi], dtype=F64))
        torch.testing.assert_close(images[0], images[1], atol=1e-12, rtol=0)


@pytest.mark.parametrize("obj", ["duck", "mug"])
def test_angle_derivative_converges_at_order_two(obj):
    def fn(angle):
        return SMALL.render(obj, angle).reshape(-1)

    angle = torch.tensor(0.7, dtype=F64)
    exact = jacfwd(fn)(angle)
    errors = [float(((fn(angle + h) - fn(angle - h)) / (2 * h) - exact).abs().max())
              for h in (4e-3, 2e-3, 1e-3)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders >= 1.8) & (orders <= 2.2)), (errors, orders)
    assert float(exact.abs().max()) > 0.1       # the derivative is not trivially zero


def test_every_object_changes_with_the_angle():
    """Even the surfaces of revolution carry a texture that turns, so no view axis is degenerate."""
    angles = torch.tensor([0.0, 0.9, math.pi / 2, 2.5], dtype=F64)
    for obj in OBJECTS:
        images = Turntable(image_size=24).render(obj, angles)
        change = (images - images[0]).pow(2).mean((-2, -1)).sqrt().max()
        assert float(change) > 0.05, obj


def test_objects_are_pairwise_distinct():
    images = turntable_views(Turntable(image_size=24), views=3)       # (C, 3, H, W)
    assert images.shape == (20, 3, 24, 24)
    flat = images.reshape(20, 3, -1)
    distance = (flat[:, None] - flat[None]).pow(2).mean(-1).sqrt().min(-1).values   # min over angles
    distance += torch.eye(20) * 1e9
    assert float(distance.min()) > 0.02


def test_background_is_black_away_from_the_object():
    # a wide view (half-width 2, pixel 0.125): every bounding cylinder grown by the culling
    # margin (8 softness widths = 0.6) projects within 1.85 of the centre, so the outer
    # pixel frame (centres at 1.94) must be exactly black
    renderer = Turntable(image_size=32, extent=2.0)
    for obj in OBJECTS:
        images = renderer.render(obj, torch.tensor([0.0, 1.3]))
        assert float(images.min()) >= 0 and float(images.max()) <= 1
        frame = torch.ones(32, 32, dtype=torch.bool)
        frame[1:-1, 1:-1] = False
        assert float(images[:, frame].abs().max()) == 0.0, obj
        assert float(images.max()) > 0.3, obj        # and the object itself is lit


def test_bounding_cylinders_contain_the_objects():
    """The ray range relies on these: the field is positive on each cylinder's surface."""
    phi = torch.linspace(0, 2 * math.pi, 181, dtype=F64)[:, None]
    for obj, (field, (radius, low, high)) in SHAPES.items():
        y = torch.linspace(low, high, 120, dtype=F64)[None, :].expand(181, 120)
        side = field(radius * torch.cos(phi).expand_as(y), y, radius * torch.sin(phi).expand_as(y))[0]
        r = torch.linspace(0, radius, 60, dtype=F64)[None, :]
        x, z = r * torch.cos(phi), r * torch.sin(phi)
        caps = [field(x, torch.full_like(x, level), z)[0] for level in (low, high)]
        assert float(min(side.min(), caps[0].min(), caps[1].min())) > 0, obj


def test_float32_and_float64_agree():
    angles = np.array([0.2, 2.9])
    high = SMALL.render("teapot", angles)
    low = SMALL.render("teapot", angles.astype(np.float32))
    assert isinstance(high, np.ndarray) and high.dtype == np.float64 and low.dtype == np.float32
    np.testing.assert_allclose(low, high, atol=1e-4)


def test_deterministic_and_batch_equals_loop():
    angles = torch.tensor([0.1, 1.7, 4.0], dtype=F64)
    batch = SMALL.render("cat", angles, chunk_size=2)
    assert torch.equal(batch, SMALL.render("cat", angles, chunk_size=2))
    for k in range(3):
        torch.testing.assert_close(batch[k], SMALL.render("cat", angles[k]), atol=1e-12, rtol=0)


def test_turntable_views_are_renders_at_equal_steps():
    views = turntable_views(Turntable(image_size=16), objects=("pig", "arch"), views=6, dtype=F64)
    assert views.shape == (2, 6, 16, 16) and views.dtype == F64
    expected = Turntable(image_size=16).render("arch", torch.tensor(4 * math.pi / 6, dtype=F64))
    torch.testing.assert_close(views[1, 2], expected, atol=1e-12, rtol=0)


def test_extended_turntable_shapes_and_consistency():
    renderer, objects = Turntable(image_size=16), ("mug", "duck")
    sizes = {"views": 3, "scales": 5, "rotations": 4, "out_size": 8, "renderer": renderer,
             "objects": objects}
    full = extended_turntable(3, **sizes, dtype=F64)
    assert isinstance(full, ImageManifold) and full.name == "turntable"
    assert full.classes == objects and full.grid == extension.extension_grid(3, views=3, scales=5,
                                                                             rotations=4)
    assert full.images.shape == (2, 3, 5, 4, 8, 8)
    two = extended_turntable(2, **sizes, dtype=F64)
    one = extended_turntable(1, **sizes, dtype=F64)
    assert two.images.shape == (2, 3, 4, 8, 8) and one.images.shape == (2, 3, 8, 8)
    assert two.grid.names == ("view", "rotation") and one.grid.names == ("view",)
    # lower dimensions are slices of the full set at the fixed values
    torch.testing.assert_close(two.images, full.images[:, :, -4], atol=1e-12, rtol=0)
    torch.testing.assert_close(one.images, full.images[:, :, -4, 0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_image_function_matches_the_data_set_and_its_derivatives(dim):
    renderer = Turntable(image_size=16)
    # image_function holds dropped axes at the default grid's values (22 scales)
    data = extended_turntable(dim, renderer=renderer, objects=("hammer",), views=3, scales=22,
                              rotations=4, out_size=8, dtype=F64)
    grid = data.grid
    point = grid.points[(1,) * dim]
    values = renderer.image_function("hammer", dim=dim, out_size=8)(torch.as_tensor(point))
    torch.testing.assert_close(values, data.images[0][(1,) * dim].reshape(-1), atol=1e-12, rtol=0)
    theta = np.array([point + 0.01, point - 0.02])
    result = renderer.derivatives("hammer", theta, dim=dim, out_size=8)
    assert result.jacobian.shape == (2, 64, dim) and result.hessian.shape == (2, 64, dim, dim)
    # central differences of the same map: error O(h^2) with h = 1e-4
    fn = renderer.image_function("hammer", dim=dim, out_size=8)
    for i in range(dim):
        step = np.zeros(dim)
        step[i] = 1e-4
        central = (fn(torch.as_tensor(theta[0] + step)) - fn(torch.as_tensor(theta[0] - step))) / 2e-4
        np.testing.assert_allclose(result.jacobian[0][:, i], central.numpy(), atol=1e-4)


@pytest.mark.parametrize("call, error, words", [
    (lambda: SMALL.render("teacup", 0.0), ValueError, ["'obj'", "Turntable.render"]),
    (lambda: SMALL.image_function("duck", dim=4), ValueError, ["'dim'"]),
    (lambda: Turntable(image_size=1), ValueError, ["'image_size'", "Turntable"]),
    (lambda: Turntable(elevation=2.0), ValueError, ["'elevation'", "[0, 1.2]"]),
    (lambda: Turntable(light=(0, 0, 0)), ValueError, ["'light'"]),
    (lambda: turntable_views("renderer"), TypeError, ["'renderer'", "turntable_views"]),
    (lambda: turntable_views(objects=()), ValueError, ["'objects'"]),
    (lambda: extended_turntable(0), ValueError, ["'dim'", "extended_turntable"]),
    (lambda: extended_turntable(objects=("duck", "ufo")), ValueError, ["'objects'"]),
])
def test_errors_name_parameter_and_function(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert all(word in str(info.value) for word in words), str(info.value)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_batched_images_equal_the_image_function(dim):
    renderer = Turntable(image_size=24)
    theta = torch.tensor([[0.3, 0.8, 1.1], [2.0, 0.6, 4.0]], dtype=F64)[:, :dim]
    batched = renderer.images("mug", theta, dim=dim, out_size=16, scales=10)
    looped = torch.stack([renderer.image_function("mug", dim=dim, out_size=16, scales=10)(t)
                          for t in theta]).reshape(batched.shape)
    torch.testing.assert_close(batched, looped, atol=1e-12, rtol=0)
    assert batched.shape == (2, 16, 16)
