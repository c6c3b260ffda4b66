"""The image testbed (lib.datasets.testbed): one interface to the three image data sets.

Truths and tolerances:

- Grid images against the renderer at the grid points: the same images by two
  routes (dSprites: every translation at once by one einsum for d >= 3, one
  batched matrix product per image otherwise; turntable: the batched
  `extension.extend` against one `similarity` per point). Both are O(1) sums
  of O(100) float64 terms, so they agree to rounding: 1e-12 absolute on grey
  values in [0, 1] (the renderers' own tests use the same bound).
- Autodiff tangents against central differences of the rendered images:
  the central difference of a C-infinity map has error (h^2 / 6) |f'''| plus
  rounding 1e-16 / h, so the relative Frobenius error is C h^2 for h well
  above 1e-6. C measured once (2026-11-24, these tiny grids, h = 1e-2 .. 1e-5):
  17 on dSprites, 3.3e3 on the turntable (its 16 px views, whose edges move
  fastest along the view axis). Asserted: error(h) <= 1e4 h^2 at h = 1e-3 and
  1e-4, and the observed order log10(error(1e-3) / error(1e-4)) in [1.9, 2.1]
  (measured 2.00 everywhere).
"""

import math

import numpy as np
import pytest
import torch
from torch.func import jacfwd

from lib.datasets import coil20, dsprites, extension, turntable
from lib.datasets.images import ImageManifold
from lib.datasets.testbed import (DATASETS, DIMS, Coil20Testbed, DSpritesTestbed, Testbed,
                                  TurntableTestbed, image_testbed, labels)

F64 = torch.float64
ROUNDING = 1e-12
FD_STEPS, FD_CONSTANT = (1e-3, 1e-4), 1e4
# Tiny grids: every test renders in well under a second.
SPRITES = dict(image_size=16, blur=0.8, scales=6, rotations=8, translations=4, max_shift=1.5)
TURNTABLE = dict(classes=("mug", "duck"), base_size=16, out_size=8, views=3, scales=5,
                 rotations=4)


def tiny(dataset, dim):
    return image_testbed(dataset, dim, **(SPRITES if dataset == "dsprites" else TURNTABLE))


@pytest.fixture
def coil_folder(tmp_path):
    """A fake processed COIL-20 folder: objects 2 and 5, 72 views of 8 x 8 px each."""
    from PIL import Image

    for obj in (2, 5):
        for view in range(coil20.N_VIEWS):
            pixels = np.full((8, 8), (3 * view + 40 * obj) % 256, np.uint8)
            pixels[2:5, 3:6] = 255
            Image.fromarray(pixels).save(tmp_path / f"obj{obj}__{view}.png")
    return tmp_path


RENDERED = [("dsprites", d) for d in DIMS["dsprites"]] + [("turntable", d)
                                                          for d in DIMS["turntable"]]


@pytest.mark.parametrize("dataset, dim", RENDERED)
def test_grid_images_equal_the_renderer_at_the_grid_points(dataset, dim):
    bed = tiny(dataset, dim)
    label = bed.classes[-1]
    images = bed.grid_images(label)
    assert images.shape == (*bed.grid.shape, bed.image_size**2) and images.dtype == F64
    rendered = bed.render(label, torch.as_tensor(bed.grid.points, dtype=F64))
    assert rendered.shape == (*bed.grid.shape, bed.image_size, bed.image_size)
    torch.testing.assert_close(rendered.flatten(start_dim=-2), images, atol=ROUNDING, rtol=0)
    # The manifold of every class holds the same images.
    manifold = bed.manifold()
    assert isinstance(manifold, ImageManifold) and manifold.classes == bed.classes
    assert manifold.grid == bed.grid
    torch.testing.assert_close(manifold.values(label), images, atol=ROUNDING, rtol=0)


@pytest.mark.parametrize("dataset, dim", RENDERED)
def test_sample_images_are_the_flattened_render_in_float64(dataset, dim):
    bed = tiny(dataset, dim)
    theta = bed.grid.uniform_points(3, seed=0)
    samples = bed.sample_images(bed.classes[0], theta)
    assert samples.shape == (3, bed.image_size**2) and samples.dtype == F64
    expected = bed.render(bed.classes[0], torch.as_tensor(theta)).reshape(3, -1)
    torch.testing.assert_close(samples, expected, atol=ROUNDING, rtol=0)


@pytest.mark.parametrize("dim", DIMS["turntable"])
def test_snapped_views_render_the_view_at_or_below_each_angle(dim):
    bed = tiny("turntable", dim)
    theta = bed.grid.uniform_points(4, seed=1)
    snapped = theta.copy()
    snapped[:, 0] = np.floor(theta[:, 0] / (2 * math.pi) * 6) * (2 * math.pi / 6)
    samples = bed.sample_images("mug", theta, snap_views=6)
    torch.testing.assert_close(samples, bed.sample_images("mug", snapped),
                               atol=ROUNDING, rtol=0)


@pytest.mark.parametrize("dataset, dim", RENDERED)
def test_autodiff_tangents_match_central_differences(dataset, dim):
    bed = tiny(dataset, dim)
    label = bed.classes[0]
    theta = torch.as_tensor(bed.grid.interior(1).uniform_points(1, seed=2)[0])
    exact = jacfwd(bed.image_function(label))(theta)                     # (D, dim)
    assert exact.shape == (bed.image_size**2, dim)
    errors = []
    for h in FD_STEPS:
        columns = []
        for axis in range(dim):
            step = torch.zeros(dim, dtype=F64)
            step[axis] = h
            ahead, behind = bed.render(label, torch.stack([theta + step, theta - step]))
            columns.append(((ahead - behind) / (2 * h)).reshape(-1))
        central = torch.stack(columns, dim=-1)
        errors.append(float(torch.linalg.norm(central - exact) / torch.linalg.norm(exact)))
        assert errors[-1] <= FD_CONSTANT * h**2, (h, errors[-1])
    order = math.log10(errors[0] / errors[1]) / math.log10(FD_STEPS[0] / FD_STEPS[1])
    assert 1.9 <= order <= 2.1, order
    # derivatives() is the same Jacobian, batched.
    result = bed.derivatives(label, theta[None])
    torch.testing.assert_close(result.jacobian[0], exact, atol=ROUNDING, rtol=0)


def test_dimensions_labels_and_axes_of_each_data_set():
    assert DATASETS == ("dsprites", "turntable", "coil20")
    assert labels("dsprites") == dsprites.SHAPES and labels("turntable") == turntable.OBJECTS
    assert labels("coil20") == tuple(f"obj{k}" for k in range(1, 21))
    assert DIMS == {"dsprites": (1, 2, 3, 4), "turntable": (1, 2, 3), "coil20": (1, 2, 3)}
    for dim in DIMS["dsprites"]:
        bed = image_testbed("dsprites", dim, rotations=8)
        assert isinstance(bed, DSpritesTestbed) and bed.dim == bed.grid.ndim == dim
        assert bed.grid.names == dsprites.FREE_AXES[dim] and bed.classes == dsprites.SHAPES
        assert bed.name == "dsprites" and bed.image_size == 64
    for dim in DIMS["turntable"]:
        bed = image_testbed("turntable", dim)
        assert isinstance(bed, TurntableTestbed) and bed.grid == extension.extension_grid(dim)
        assert bed.classes == turntable.OBJECTS and bed.image_size == 64
    chosen = image_testbed("dsprites", 2, classes=("heart",), scales=10, rotations=12)
    assert chosen.classes == ("heart",) and chosen.grid.shape == (10, 12)


def test_coil20_reads_every_class_together_and_has_no_renderer(coil_folder):
    bed = image_testbed("coil20", 2, classes=[5, "obj2"], path=coil_folder, out_size=8,
                        view_step=8, rotations=4)
    assert isinstance(bed, Coil20Testbed) and bed.classes == ("obj5", "obj2")
    assert bed.grid == extension.extension_grid(2, views=9, rotations=4)
    manifold = bed.manifold()
    expected = coil20.extended_coil20(2, path=coil_folder, objects=[5, 2], out_size=8,
                                      view_step=8, rotations=4, dtype=F64)
    torch.testing.assert_close(manifold.images, expected.images, atol=0, rtol=0)
    torch.testing.assert_close(bed.grid_images("obj2"), expected.values("obj2"), atol=0, rtol=0)
    with pytest.raises(ValueError, match="Coil20Testbed.render needs a renderer"):
        bed.render("obj2", np.zeros(2))


@pytest.mark.parametrize("call, error, words", [
    (lambda: image_testbed("mnist", 2), ValueError, ["'dataset' parameter of image_testbed"]),
    (lambda: image_testbed("dsprites", 5), ValueError, ["'dim' parameter of image_testbed"]),
    (lambda: image_testbed("turntable", 4), ValueError, ["'dim' parameter", "{1, 2, 3}"]),
    (lambda: DSpritesTestbed(0), ValueError, ["'dim' parameter of DSpritesTestbed"]),
    (lambda: image_testbed("dsprites", 2, classes=("disc",)), ValueError,
     ["'classes' parameter of DSpritesTestbed"]),
    (lambda: image_testbed("turntable", 1, classes=("mug", "mug")), ValueError,
     ["'classes' parameter", "distinct"]),
    (lambda: image_testbed("dsprites", 2, views=3), TypeError, ["'sizes'", "views"]),
    (lambda: image_testbed("coil20", 1, view_step=7), ValueError, ["'view_step'"]),
    (lambda: tiny("dsprites", 1).render("disc", np.zeros(1)), ValueError,
     ["'label' parameter of DSpritesTestbed.render"]),
    (lambda: tiny("dsprites", 1).sample_images("heart", np.zeros((1, 1)), snap_views=4),
     ValueError, ["'snap_views' parameter"]),
    (lambda: labels("coil"), ValueError, ["'dataset' parameter of labels"]),
])
def test_errors_name_the_parameter_and_the_function(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert all(word in str(info.value) for word in words), str(info.value)


def test_testbeds_are_values():
    assert tiny("dsprites", 2) == tiny("dsprites", 2)
    assert hash(tiny("turntable", 1)) == hash(tiny("turntable", 1))
    assert tiny("dsprites", 2) != image_testbed("dsprites", 2, **dict(SPRITES, blur=0.0))
    assert isinstance(tiny("dsprites", 3), Testbed)
