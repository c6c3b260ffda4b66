"""The smooth dSprites renderer against closed forms and identities it does not use.

Tolerances (float64 unless stated):

- Mass. Summing Gaussians of std sigma over the pixel lattice gives 1 up to
  2 exp(-2 pi^2 sigma^2) per axis (Poisson summation), so at sigma = 1 the
  pixel sum of an image is the sprite's area to 4 exp(-2 pi^2) = 1.1e-8
  relative; the boundary quadrature adds < 1e-12 and the Gaussian tail
  outside the image < 1e-15 for sprites kept 7 px inside it. We assert 1e-7.
  At the default sigma = 0.5 the same bound is 2.9e-2, asserted as such.
- Closed form of the axis-aligned square: the image is a product of
  differences of Gaussian CDFs; only quadrature and rounding separate them,
  so 1e-10.
- Finite differences of the renderer converge to its autodiff Jacobian at
  the stencil's order: halving h divides the error by 2^order. Steps move
  the boundary by at most about 0.1 px, where the leading error term
  dominates (the next one is measured < 1 % of it) and rounding (~1e-13) is
  far below the errors (>= 1e-8), so the observed order lies within 0.2 of
  the nominal one (measured: 1.99-2.00 and 3.97-4.00).
- Quadrature nodes: the integrands are Gaussians of width sigma along the
  boundary, so the error decays faster than exponentially once the node
  spacing (<= 0.25 px at the default 512 nodes) is below sigma; doubling
  the nodes changes an image by < 1e-8 (measured ~1e-12).
- Symmetries and pixel-grid moves (quarter turns, mirror, whole-pixel
  shifts) map pixel centres onto pixel centres, so they hold to rounding and
  quadrature: 1e-10.
- float32 against float64: node positions carry ~3e-6 px of rounding at
  30 px; an edge of slope <= 1/(sigma sqrt(2 pi)) = 0.8 per px turns that
  into ~3e-6 grey levels plus the float32 sum of 512 terms; 1e-5.
"""

import math

import numpy as np
import pytest
import torch
from scipy import special
from torch.func import jacfwd, vmap

from lib.datasets.dsprites import (AXES, FIXED, SHAPES, SIZE, DSprites, dsprites_grid,
                                   extended_dsprites, full_parameters)
from lib.datasets.images import ImageManifold

SMOOTH = DSprites(edge_width=0.6, blur=0.8)  # total sigma = 1.0: the mass is exact to 1e-8
DEFAULT = DSprites()


def area(shape, scale):
    """Closed-form area in px^2 at the module's sizes (SIZE px across at scale 1)."""
    if shape == "square":
        return (SIZE * scale) ** 2
    if shape == "ellipse":
        return math.pi * (SIZE / 2 * scale) * (SIZE / 4 * scale)
    # Heart: A = |closed integral of x dy| = 16 * 45 pi / 4 = 180 pi in curve units
    # (orthogonality of sin kt); one unit is SIZE / 32 px.
    return 180 * math.pi * (SIZE / 32 * scale) ** 2


def inside_poses(n, seed):
    """Poses whose sprite stays >= 7 px inside the 64 px image (half-diagonal <= 14.2 px)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(0.5, 1.0, n), rng.uniform(0, 2 * np.pi, n),
                     rng.uniform(-8, 8, n), rng.uniform(-8, 8, n)], axis=-1)


def grid_poses(n, seed):
    """Poses anywhere on the paper's grid ranges."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(0.5, 1.0, n), rng.uniform(0, 2 * np.pi, n),
                     rng.uniform(-21, 21, n), rng.uniform(-21, 21, n)], axis=-1)


# --- mass and closed forms -------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_image_sum_is_the_area_for_any_rotation_and_translation(shape):
    theta = inside_poses(12, seed=1)
    mass = SMOOTH.render(shape, theta).sum(axis=(-2, -1))
    np.testing.assert_allclose(mass, area(shape, theta[:, 0]), rtol=1e-7)


@pytest.mark.parametrize("shape", SHAPES)
def test_image_sum_at_default_edge_within_poisson_bound(shape):
    theta = inside_poses(6, seed=2)
    mass = DEFAULT.render(shape, theta).sum(axis=(-2, -1))
    bound = 4 * math.exp(-2 * math.pi**2 * DEFAULT.sigma**2)
    np.testing.assert_allclose(mass, area(shape, theta[:, 0]), rtol=bound)


@pytest.mark.parametrize("renderer", [DEFAULT, SMOOTH], ids=["default", "smooth"])
def test_axis_aligned_square_is_a_product_of_gaussian_cdfs(renderer):
    scale, shift_y, shift_x = 0.7, -4.3, 6.1
    image = renderer.render("square", np.array([scale, 0.0, shift_y, shift_x]))
    centres = np.arange(64) - 31.5
    half, s = SIZE * scale / 2, renderer.sigma

    def profile(shift):
        upper, lower = (shift + half - centres) / s, (shift - half - centres) / s
        return special.ndtr(upper) - special.ndtr(lower)

    np.testing.assert_allclose(image, np.outer(profile(shift_y), profile(shift_x)), atol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_grey_values_lie_in_unit_interval(shape):
    images = DEFAULT.render(shape, grid_poses(16, seed=3))
    assert images.min() > -1e-12 and images.max() < 1 + 1e-12


# --- exact derivatives against finite differences ----------------------------------------

POSE = np.array([0.8, 0.7, -3.3, 5.2])
STEPS = np.array([0.01, 0.01, 0.1, 0.1])  # each moves the boundary by <= ~0.1 px
STENCILS = {2: ([-1, 1], [-0.5, 0.5]), 4: ([-2, -1, 1, 2], [1 / 12, -8 / 12, 8 / 12, -1 / 12])}


def stencil(fn, theta, axis, h, order):
    offsets, weights = STENCILS[order]
    step = np.eye(4)[axis] * h
    return sum(w * fn(theta + k * step) for k, w in zip(offsets, weights)) / h


def observed_order(errors):
    return np.log2(errors[0] / errors[1])


@pytest.mark.parametrize("order", [2, 4])
@pytest.mark.parametrize("shape", SHAPES)
def test_finite_differences_converge_to_autodiff_jacobian_at_stencil_order(shape, order):
    jacobian = jacfwd(DEFAULT.image_function(shape))(torch.as_tensor(POSE)).numpy()
    render = lambda t: DEFAULT.render(shape, t).reshape(-1)  # noqa: E731
    for axis in range(4):
        errors = [np.abs(stencil(render, POSE, axis, h, order) - jacobian[:, axis]).max()
                  for h in (STEPS[axis], STEPS[axis] / 2)]
        assert abs(observed_order(errors) - order) < 0.2, (AXES[axis], errors)


@pytest.mark.parametrize("shape", SHAPES)
def test_differences_of_the_jacobian_converge_to_the_hessian(shape):
    hessian = DEFAULT.derivatives(shape, POSE).hessian
    # Jacobians alone (no Hessians) at all 16 shifted poses in one vectorised call.
    shifted = np.array([POSE + k * h * np.eye(4)[axis] for axis in range(4)
                        for h in (STEPS[axis], STEPS[axis] / 2) for k in (-1, 1)])
    jacobians = vmap(jacfwd(DEFAULT.image_function(shape)))(torch.as_tensor(shifted)).numpy()
    jacobians = jacobians.reshape(4, 2, 2, *jacobians.shape[1:])
    for axis in range(4):
        errors = [np.abs((jacobians[axis, i, 1] - jacobians[axis, i, 0]) / (2 * h)
                         - hessian[..., axis]).max()
                  for i, h in enumerate((STEPS[axis], STEPS[axis] / 2))]
        assert abs(observed_order(errors) - 2) < 0.2, (AXES[axis], errors)
    np.testing.assert_allclose(hessian, np.swapaxes(hessian, -1, -2), atol=1e-10)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_variant_derivatives_are_the_free_block_of_the_full_ones(dim):
    names = ("rotation",) if dim == 1 else AXES[:dim]
    free = np.array([{"scale": 0.9, "rotation": 1.3, "y": -2.0}[name] for name in names])
    full = DEFAULT.derivatives("heart", full_parameters(free, dim))
    part = DEFAULT.derivatives("heart", free, dim=dim)
    index = [AXES.index(name) for name in names]
    np.testing.assert_allclose(part.jacobian, full.jacobian[:, index], atol=1e-12)
    np.testing.assert_allclose(part.hessian, full.hessian[:, index][:, :, index], atol=1e-12)


# --- quadrature ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_doubling_the_quadrature_nodes_changes_images_below_1e_8(shape):
    theta = grid_poses(16, seed=4)
    finer = DSprites(nodes=2 * DEFAULT.nodes).render(shape, theta)
    assert np.abs(DEFAULT.render(shape, theta) - finer).max() < 1e-8


# --- symmetries and conventions ------------------------------------------------------

@pytest.mark.parametrize("shape, period", [("square", math.pi / 2), ("ellipse", math.pi)])
def test_rotation_by_the_symmetry_period_leaves_the_image_unchanged(shape, period):
    theta = grid_poses(8, seed=5)
    turned = theta + np.array([0.0, period, 0.0, 0.0])
    np.testing.assert_allclose(DEFAULT.render(shape, turned), DEFAULT.render(shape, theta),
                               atol=1e-10)


def test_heart_mirror_image_is_the_heart_at_negated_rotation_and_x():
    theta = grid_poses(8, seed=6)
    mirrored = theta * np.array([1.0, -1.0, 1.0, -1.0])
    np.testing.assert_allclose(DEFAULT.render("heart", theta)[..., ::-1],
                               DEFAULT.render("heart", mirrored), atol=1e-10)


def test_rotation_is_counter_clockwise_on_screen():
    upright = DEFAULT.render("heart", np.array([0.9, 0.0, 0.0, 0.0]))
    turned = DEFAULT.render("heart", np.array([0.9, math.pi / 2, 0.0, 0.0]))
    np.testing.assert_allclose(turned, np.rot90(upright), atol=1e-10)  # rot90 turns CCW
    rows = upright.sum(axis=1)
    assert rows[40:].sum() > rows[:24].sum()  # the heart's tip (y = -17 units) points down


def test_whole_pixel_shifts_move_the_image_right_and_down():
    base = DEFAULT.render("ellipse", np.array([0.8, 0.4, 0.0, 0.0]))
    moved = DEFAULT.render("ellipse", np.array([0.8, 0.4, 3.0, -5.0]))
    np.testing.assert_allclose(moved, np.roll(base, (3, -5), axis=(0, 1)), atol=1e-10)


# --- types, determinism, chunking ----------------------------------------------------

def test_float32_matches_float64_and_types_follow_the_input():
    theta = grid_poses(8, seed=7)
    double = DEFAULT.render("heart", torch.as_tensor(theta))
    single = DEFAULT.render("heart", torch.as_tensor(theta, dtype=torch.float32))
    assert single.dtype == torch.float32 and double.dtype == torch.float64
    assert (single.double() - double).abs().max() < 1e-5
    as_numpy = DEFAULT.render("heart", theta)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.shape == (8, 64, 64)
    np.testing.assert_array_equal(as_numpy, double.numpy())


def test_render_is_deterministic_and_independent_of_chunking_and_batch_shape():
    theta = grid_poses(10, seed=8)
    first = DEFAULT.render("square", theta, chunk_size=3)
    np.testing.assert_array_equal(first, DEFAULT.render("square", theta, chunk_size=3))
    np.testing.assert_allclose(first, DEFAULT.render("square", theta), atol=1e-13)
    batched = DEFAULT.render("square", theta.reshape(2, 5, 4))
    np.testing.assert_allclose(batched.reshape(10, 64, 64), first, atol=1e-13)


def test_image_function_matches_render():
    fn = DEFAULT.image_function("ellipse")
    image = fn(torch.as_tensor(POSE))
    np.testing.assert_allclose(image.numpy(), DEFAULT.render("ellipse", POSE).reshape(-1),
                               atol=1e-13)


# --- grids, variants, data sets ------------------------------------------------------

@pytest.mark.parametrize("dim, names, shape", [(4, AXES, (22, 16, 22, 22)),
                                               (3, AXES[:3], (22, 16, 22)),
                                               (2, AXES[:2], (22, 16)),
                                               (1, ("rotation",), (16,))])
def test_grid_axes_match_the_paper(dim, names, shape):
    grid = dsprites_grid(dim)
    assert grid.names == names and grid.shape == shape
    assert grid.periodic == tuple(name == "rotation" for name in names)
    axes = dict(zip(grid.names, grid.axes))
    np.testing.assert_allclose(axes["rotation"].values, 2 * np.pi * np.arange(16) / 16)
    if "scale" in axes:
        np.testing.assert_allclose(axes["scale"].values, np.linspace(0.5, 1.0, 22))
    for name in ("y", "x"):
        if name in axes:
            assert axes[name].spacing == pytest.approx(2.0)
            assert (axes[name].start, axes[name].stop) == (-21.0, 21.0)
    # 3 buffer points per end on interval axes, none taken from the periodic axis.
    assert grid.interior(3).shape == tuple(16 for _ in names)


def test_rotation_range_option():
    grid = dsprites_grid(1, rotations=8, rotation_range=(0.0, math.pi / 2))
    assert grid.axes[0].spacing == pytest.approx(math.pi / 16) and grid.periodic == (True,)


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
def test_full_parameters_fill_fixed_axes(dim):
    free = np.arange(2 * dim, dtype=float).reshape(2, dim) + 0.5
    full = full_parameters(free, dim)
    assert isinstance(full, np.ndarray) and full.shape == (2, 4)
    names = ("rotation",) if dim == 1 else AXES[:dim]
    for k, name in enumerate(AXES):
        expected = free[:, names.index(name)] if name in names else FIXED[name]
        np.testing.assert_array_equal(full[:, k], expected)
    tensor = full_parameters(torch.as_tensor(free, dtype=torch.float32), dim)
    assert tensor.dtype == torch.float32


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
def test_extended_dsprites_equals_rendering_each_grid_point(dim):
    renderer = DSprites(image_size=24)
    options = dict(scales=3, rotations=4, translations=3, max_shift=2.0)
    data = extended_dsprites(dim, renderer=renderer, dtype=torch.float64, **options)
    grid = dsprites_grid(dim, **options)
    assert isinstance(data, ImageManifold) and data.name == "dsprites"
    assert data.classes == SHAPES and data.grid == grid
    assert tuple(data.images.shape) == (3, *grid.shape, 24, 24)
    theta = full_parameters(grid.points, dim)
    for k, shape in enumerate(SHAPES):
        np.testing.assert_allclose(data.images[k].numpy(), renderer.render(shape, theta),
                                   atol=1e-12)


def test_extended_dsprites_dtype_and_subset_of_shapes():
    data = extended_dsprites(1, renderer=DSprites(image_size=16), shapes=("heart",),
                             rotations=4)
    assert data.images.dtype == torch.float32 and data.classes == ("heart",)
    assert tuple(data.images.shape) == (1, 4, 16, 16)


# --- bad input -----------------------------------------------------------------------

BAD_CALLS = [
    (lambda: DSprites(image_size=1), ValueError, "'image_size' parameter of DSprites"),
    (lambda: DSprites(edge_width=0.0), ValueError, "'edge_width' parameter of DSprites"),
    (lambda: DSprites(blur=-0.1), ValueError, "'blur' parameter of DSprites"),
    (lambda: DSprites(nodes=4), ValueError, "'nodes' parameter of DSprites"),
    (lambda: DSprites(nodes=64.0), TypeError, "'nodes' parameter of DSprites"),
    (lambda: DEFAULT.render("circle", POSE), ValueError, "'shape' parameter of DSprites.render"),
    (lambda: DEFAULT.render("heart", POSE[:3]), ValueError, "'theta' parameter of DSprites.render"),
    (lambda: DEFAULT.render("heart", POSE * [-1, 1, 1, 1]), ValueError, r"\(0, inf\)"),
    (lambda: DEFAULT.render("heart", POSE * [1, np.nan, 1, 1]), ValueError, "finite"),
    (lambda: DEFAULT.render("heart", POSE, chunk_size=0), ValueError, "'chunk_size'"),
    (lambda: DEFAULT.image_function("star"), ValueError, "DSprites.image_function"),
    (lambda: DEFAULT.derivatives("heart", POSE, dim=3), ValueError,
     "'theta' parameter of DSprites.derivatives"),
    (lambda: DEFAULT.derivatives("heart", POSE, dim=5), ValueError,
     "'dim' parameter of DSprites.derivatives"),
    (lambda: full_parameters(POSE, 3), ValueError, "'theta_free' parameter of full_parameters"),
    (lambda: full_parameters(POSE, 0), ValueError, "'dim' parameter of full_parameters"),
    (lambda: dsprites_grid(5), ValueError, "'dim' parameter of dsprites_grid"),
    (lambda: dsprites_grid(scales=1), ValueError, "'scales' parameter of dsprites_grid"),
    (lambda: dsprites_grid(rotations=1), ValueError, "'rotations' parameter of dsprites_grid"),
    (lambda: dsprites_grid(translations=1), ValueError, "'translations' parameter"),
    (lambda: dsprites_grid(scale_range=(1.0, 0.5)), ValueError, r"'scale_range\[1\]'"),
    (lambda: dsprites_grid(scale_range=(0.0, 1.0)), ValueError, r"'scale_range\[0\]'"),
    (lambda: dsprites_grid(scale_range=0.5), TypeError, "'scale_range' parameter"),
    (lambda: dsprites_grid(max_shift=0.0), ValueError, "'max_shift' parameter"),
    (lambda: dsprites_grid(rotation_range=(1.0, 1.0)), ValueError, r"'rotation_range\[1\]'"),
    (lambda: extended_dsprites(1, shapes=("heart", "heart")), ValueError,
     "'shapes' parameter of extended_dsprites"),
    (lambda: extended_dsprites(1, shapes=("disc",)), ValueError, "'shapes' parameter"),
    (lambda: extended_dsprites(1, dtype=torch.int64), ValueError, "'dtype' parameter"),
    (lambda: extended_dsprites(1, renderer="fast"), TypeError, "'renderer' parameter"),
    (lambda: extended_dsprites(1, resolution=3), TypeError, "resolution"),
]


@pytest.mark.parametrize("call, error, message", BAD_CALLS,
                         ids=[f"bad-{i}" for i in range(len(BAD_CALLS))])
def test_bad_input_names_the_parameter(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_periodic_translations_compose_and_wrap_around():
    """Translating by a then b is translating by a + b, and by the image size is nothing."""
    from lib.datasets.dsprites import DSprites, periodic_translations

    sprite = DSprites(image_size=16)
    offsets = np.array([[0.0, 0.0], [0.3, 1.7], [2.0, 16.0 + 1.7 - 1.7], [0.3 + 16, 1.7 - 32]])
    images = periodic_translations("heart", offsets, renderer=sprite)
    np.testing.assert_allclose(images[3], images[1], atol=1e-12)      # whole periods
    np.testing.assert_allclose(images[2], np.roll(images[0], 2, axis=0), atol=1e-12)
    # The mass (the zero frequency) does not move; a fractional shift is band-limited.
    np.testing.assert_allclose(images.sum(axis=(1, 2)), images[0].sum(), rtol=1e-12)
    twice = periodic_translations("heart", [[0.6, 3.4]], renderer=sprite)[0]
    spectrum = np.fft.fft2(images[1])      # its Nyquist row and column are zero
    frequency = np.fft.fftfreq(16) * 16
    again = np.real(np.fft.ifft2(spectrum * np.exp(-2j * np.pi / 16 * (
        frequency[:, None] * 0.3 + frequency[None, :] * 1.7))))
    np.testing.assert_allclose(again, twice, atol=1e-12)


@pytest.mark.parametrize("offsets, match", [([[0.0]], "'offsets' parameter of periodic"),
                                             ([[np.nan, 0.0]], "'offsets' parameter")])
def test_periodic_translations_refuse_bad_offsets(offsets, match):
    from lib.datasets.dsprites import periodic_translations

    with pytest.raises(ValueError, match=match):
        periodic_translations("heart", offsets)
