"""The smooth scale/rotation extension against identities that do not use its code.

Tolerances:
- Exact identities of the discretisation (a quarter turn maps the source, working
  and output lattices onto themselves; batching only reorders sums) hold to
  rounding: 1e-12 in float64, 1e-5 in float32 (values are O(1)).
- Mass: the output is the view seen through smooth bumps and resampled, so its
  sum is ``sum(view) * (out_size / pad_to)**2 * scale**2`` up to the error of
  summing a band-limited picture on the output lattice, which is tiny once the
  picture varies over several output pixels. For the blob below (sigma 12
  source px = 4.2 output px at scale 1, 2.1 at scale 0.5) it was measured at
  1.4e-6 (2026-11-22); we allow 1e-3, which a wrong padding or scale factor
  (at least a few per cent) still fails.
- Finite differences: central differences have error C h^2 + O(h^4), so halving
  h divides the error by 4: log2 of successive ratios must lie in [1.8, 2.2].
  Steps 4e-3..1e-3 are inside the asymptotic range for this image and far above
  the float64 rounding floor (1e-16 / h).
"""

import math

import numpy as np
import pytest
import torch
from torch.func import jacfwd

from lib.datasets.extension import extend, extension_grid, fixed_parameters, similarity

F64 = torch.float64


def blob(size=128, sigma=12.0, shift=(0.0, 0.0), dtype=F64):
    y = torch.arange(size, dtype=dtype) - (size - 1) / 2
    return torch.exp(-((y[:, None] - shift[0]) ** 2 + (y[None, :] - shift[1]) ** 2) / (2 * sigma**2))


def asymmetric_image(size=64, seed=0, dtype=F64):
    """Smooth but without any symmetry: a few off-centre blobs of different widths."""
    rng = np.random.default_rng(seed)
    image = torch.zeros(size, size, dtype=dtype)
    for _ in range(5):
        shift = tuple(rng.uniform(-size / 4, size / 4, 2))
        image += rng.uniform(0.3, 1.0) * blob(size, rng.uniform(3, 8), shift, dtype)
    return image


def scalar(value):
    return torch.tensor(value, dtype=F64)


@pytest.mark.parametrize("scale", [1.0, 0.8, 0.5])
@pytest.mark.parametrize("rotation", [0.0, 0.7])
def test_mass_scales_with_the_square_of_scale(scale, rotation):
    image = blob(shift=(7.0, -5.0))
    out = similarity(image, scalar(scale), scalar(rotation))
    expected = image.sum() * (64 / 182) ** 2 * scale**2      # pad_to defaults to 182 for 128 px
    assert abs(float(out.sum() / expected) - 1) < 1e-3


def test_unit_scale_without_rotation_keeps_a_constant_picture_constant():
    """A view that is 1 everywhere shows 1 wherever the output is well inside it."""
    out = similarity(torch.ones(128, 128, dtype=F64), scalar(1.0), scalar(0.0))
    inner = 64 * 100 // 182 // 2                              # half-width of the inner 100 source px
    centre = out[32 - inner:32 + inner, 32 - inner:32 + inner]
    assert torch.allclose(centre, torch.ones_like(centre), atol=1e-12)
    assert float(out[0, 0]) == 0.0                            # the padding is black


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_quarter_turn_is_a_lattice_rotation(dtype, atol):
    image = asymmetric_image(dtype=dtype)
    for scale in (1.0, 0.6):
        s = torch.tensor(scale, dtype=dtype)
        upright = similarity(image, s, torch.tensor(0.0, dtype=dtype), out_size=32)
        turned = similarity(image, s, torch.tensor(math.pi / 2, dtype=dtype), out_size=32)
        # counter-clockwise as displayed, like numpy/torch rot90
        torch.testing.assert_close(turned, torch.rot90(upright), atol=atol, rtol=0)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_fourfold_symmetric_image_is_unchanged_by_a_quarter_turn(dtype, atol):
    base = asymmetric_image(dtype=dtype)
    image = sum(torch.rot90(base, k) for k in range(4))
    s, angle = torch.tensor(0.75, dtype=dtype), torch.tensor(0.4, dtype=dtype)
    a = similarity(image, s, angle, out_size=32)
    b = similarity(image, s, angle + math.pi / 2, out_size=32)
    torch.testing.assert_close(a, b, atol=atol, rtol=0)


@pytest.mark.parametrize("axis", [0, 1], ids=["scale", "rotation"])
def test_finite_differences_converge_to_the_exact_jacobian_at_order_two(axis):
    image = asymmetric_image(size=64)

    def fn(theta):
        return similarity(image, theta[0], theta[1], out_size=32).reshape(-1)

    theta = torch.tensor([0.77, 0.43], dtype=F64)
    exact = jacfwd(fn)(theta)[:, axis]
    step = torch.zeros(2, dtype=F64)
    errors = []
    for h in (4e-3, 2e-3, 1e-3):
        step[axis] = h
        central = (fn(theta + step) - fn(theta - step)) / (2 * h)
        errors.append(float((central - exact).abs().max()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders >= 1.8) & (orders <= 2.2)), (errors, orders)


def test_hessian_is_symmetric():
    image = asymmetric_image(size=48)
    fn = lambda t: similarity(image, t[0], t[1], out_size=24).reshape(-1)
    hessian = jacfwd(jacfwd(fn))(torch.tensor([0.9, 1.1], dtype=F64))
    torch.testing.assert_close(hessian[:, 0, 1], hessian[:, 1, 0], atol=1e-10, rtol=0)


@pytest.mark.parametrize("n_views", [3, 9], ids=["gather", "sparse"])
def test_extend_equals_similarity_in_a_loop(n_views):
    views = torch.stack([asymmetric_image(size=40, seed=k) for k in range(n_views)])
    scales, rotations = torch.tensor([0.5, 0.83, 1.0], dtype=F64), torch.tensor([0.0, 2.1], dtype=F64)
    batched = extend(views, scales, rotations, out_size=20, chunk_size=4)
    assert batched.shape == (n_views, 3, 2, 20, 20)
    for v in range(n_views):
        for i, s in enumerate(scales):
            for j, r in enumerate(rotations):
                looped = similarity(views[v], s, r, out_size=20)
                torch.testing.assert_close(batched[v, i, j], looped, atol=1e-12, rtol=0)


def test_chunk_size_does_not_change_the_answer():
    views = torch.stack([asymmetric_image(size=40, seed=k) for k in range(8)]).float()
    args = (views, torch.linspace(0.5, 1.0, 5), torch.linspace(0, 6, 3))
    torch.testing.assert_close(extend(*args, out_size=16), extend(*args, out_size=16, chunk_size=1),
                               atol=1e-6, rtol=0)


def test_type_and_dtype_follow_the_input():
    views = np.stack([asymmetric_image(size=32, seed=k).numpy() for k in range(2)])[None]
    out = extend(views.astype(np.float32), [0.7, 1.0], [0.0], out_size=8)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (1, 2, 2, 1, 8, 8)
    out_t = extend(torch.from_numpy(views), torch.tensor([0.7, 1.0]), torch.tensor([0.0]), out_size=8)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float64
    np.testing.assert_allclose(out, out_t.numpy(), atol=1e-6)


def test_grid_metadata():
    grid = extension_grid(3)
    assert grid.names == ("view", "scale", "rotation") and grid.shape == (18, 22, 16)
    assert grid.periodic == (True, False, True)
    np.testing.assert_allclose(grid.spacing, (2 * np.pi / 18, 0.5 / 21, 2 * np.pi / 16), rtol=1e-14)
    assert (grid.axes[1].start, grid.axes[1].stop) == (0.5, 1.0)
    two, one = extension_grid(2), extension_grid(1, views=36)
    assert two.names == ("view", "rotation") and two.shape == (18, 16) and two.periodic == (True, True)
    assert one.names == ("view",) and one.shape == (36,) and one.periodic == (True,)
    # the reference keeps the 4th scale from the top (index 18 of 22) and rotation 0
    assert fixed_parameters(1) == pytest.approx({"scale": 0.5 + 18 * 0.5 / 21, "rotation": 0.0})
    assert fixed_parameters(2) == pytest.approx({"scale": 0.5 + 18 * 0.5 / 21})
    assert fixed_parameters(3) == {}


@pytest.mark.parametrize("call, error, words", [
    (lambda: similarity(np.zeros((8, 8)), 1.0, 0.0), TypeError, ["'image'", "similarity"]),
    (lambda: similarity(torch.zeros(8, 8, 2), 1.0, 0.0), ValueError, ["'image'", "(H, W)"]),
    (lambda: similarity(torch.zeros(8, 8), 0.3, 0.0), ValueError, ["'scale'", "[0.5, 2.0]"]),
    (lambda: similarity(torch.zeros(8, 8), 1.0, float("nan")), ValueError, ["'rotation'"]),
    (lambda: similarity(torch.zeros(8, 8), 1.0, 0.0, out_size=0), ValueError, ["'out_size'"]),
    (lambda: extend(np.zeros(8), [1.0], [0.0]), ValueError, ["'views'", "extend"]),
    (lambda: extend(np.zeros((8, 8)), [2.5], [0.0]), ValueError, ["'scales'", "[0.5, 2.0]"]),
    (lambda: extend(np.zeros((8, 8)), [[1.0]], [0.0]), ValueError, ["'scales'", "(n,)"]),
    (lambda: extend(np.zeros((8, 8)), [1.0], [0.0], chunk_size=0), ValueError, ["'chunk_size'"]),
    (lambda: extend(np.zeros((8, 8)), [1.0], [0.0], pad_to=-1), ValueError, ["'pad_to'"]),
    (lambda: extension_grid(4), ValueError, ["'dim'", "extension_grid"]),
    (lambda: extension_grid(scales=3), ValueError, ["'scales'", "[4, inf]"]),
    (lambda: extension_grid(scale_range=(0.3, 1.0)), ValueError, ["'scale_range'"]),
    (lambda: extension_grid(scale_range=0.5), TypeError, ["'scale_range'"]),
])
def test_errors_name_parameter_and_function(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert all(word in str(info.value) for word in words), str(info.value)
