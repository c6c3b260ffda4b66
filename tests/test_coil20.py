"""The COIL-20 loader on fake folders whose pixel values the test itself wrote.

The real files cannot be downloaded here, so each test writes PNGs in the
processed layout (``obj{X}__{Y}.png``) with Pillow and reads them back.

Tolerances: bytes become ``byte / 255`` in float64 on both sides, so loaded
values must equal the written ones exactly. The extension pipeline averages
pixels with weights normalised to sum to one, so a constant view stays
constant, up to a few float64 roundings (1e-12), wherever the kernels see
only the view and not its black padding (the centre of a 16-px output).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from lib.datasets import extension
from lib.datasets.coil20 import COIL20_ENV, coil20_path, extended_coil20, load_coil20
from lib.datasets.images import ImageManifold

OBJECTS = (1, 2, 3)


def pattern(obj, view, size=8):
    """Bytes of the fake view: distinct for every (obj, view), and holding both 0 and 255."""
    rows, cols = np.mgrid[:size, :size]
    image = (obj * 72 + view + 7 * rows + 13 * cols) % 256
    image[0, 0], image[0, 1] = 0, 255
    return image.astype(np.uint8)


def write_folder(folder, make, objects=OBJECTS):
    for obj in objects:
        for view in range(72):
            Image.fromarray(make(obj, view)).save(folder / f"obj{obj}__{view}.png")
    return folder


@pytest.fixture
def fake_coil(tmp_path):
    return write_folder(tmp_path, pattern)


def expected(objects, views):
    return np.stack([[pattern(obj, view) for view in views] for obj in objects]) / 255


def test_loads_every_view_of_the_chosen_objects_in_order(fake_coil):
    images = load_coil20(fake_coil, objects=OBJECTS, dtype=torch.float64)
    assert isinstance(images, torch.Tensor) and images.shape == (3, 72, 8, 8)
    np.testing.assert_array_equal(images.numpy(), expected(OBJECTS, range(72)))
    assert images.min() == 0.0 and images.max() == 1.0


@pytest.mark.parametrize("objects, views, view_list", [
    ((3, 1), 4, range(0, 72, 4)),          # the paper's 18 views
    ((2,), [5, 0, 71], [5, 0, 71]),         # an explicit list keeps its order
    ((1, 2), 72, [0]),
])
def test_objects_and_views_select_and_order(fake_coil, objects, views, view_list):
    images = load_coil20(fake_coil, objects=objects, views=views, dtype=torch.float64)
    np.testing.assert_array_equal(images.numpy(), expected(objects, view_list))


def test_default_dtype_is_float32_within_one_rounding(fake_coil):
    images = load_coil20(fake_coil, objects=[2], views=[7])
    assert images.dtype == torch.float32
    np.testing.assert_allclose(images.numpy(), expected([2], [7]), rtol=0, atol=2**-24)


def test_environment_variable_names_the_folder(fake_coil, monkeypatch):
    monkeypatch.setenv(COIL20_ENV, str(fake_coil))
    assert coil20_path() == fake_coil
    np.testing.assert_array_equal(load_coil20(objects=[1], views=[3], dtype=torch.float64).numpy(),
                                  expected([1], [3]))


def test_unset_environment_variable_says_what_to_set(monkeypatch):
    monkeypatch.delenv(COIL20_ENV, raising=False)
    with pytest.raises(ValueError, match="'path' parameter of coil20_path was not given and the "
                                         "environment variable COIL20_DIR is not set.*"
                                         "obj\\{X\\}__\\{Y\\}.png"):
        load_coil20()


def test_missing_folder_names_the_layout(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="'path' parameter of coil20_path must name an "
                                                "existing folder.*obj\\{X\\}__\\{Y\\}.png"):
        load_coil20(tmp_path / "nowhere")
    monkeypatch.setenv(COIL20_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="environment variable COIL20_DIR"):
        coil20_path()


def test_missing_files_are_listed_with_the_pattern(fake_coil):
    (fake_coil / "obj2__5.png").unlink()
    with pytest.raises(FileNotFoundError, match="lacks 1 of the 144 required files: obj2__5.png\\. "
                                                "Expected .*obj\\{X\\}__\\{Y\\}.png"):
        load_coil20(fake_coil, objects=[1, 2])
    # All 20 objects by default: 17 * 72 + 1 files are missing, the first few are named.
    with pytest.raises(FileNotFoundError, match="lacks 1225 of the 1440 required files: obj2__5.png, "
                                                "obj4__0.png, obj4__1.png, obj4__2.png, obj4__3.png, \\.\\.\\."):
        load_coil20(fake_coil)
    load_coil20(fake_coil, objects=[1, 3])  # the gap does not matter when obj2 is not asked for


def test_a_file_of_another_size_is_named(fake_coil):
    Image.fromarray(np.zeros((9, 8), np.uint8)).save(fake_coil / "obj3__10.png")
    with pytest.raises(ValueError, match="obj3__10.png' read by load_coil20 must have the size of "
                                         "obj1__0.png, 8 x 8 \\(W x H\\). Got 8 x 9 instead.*obj\\{X\\}"):
        load_coil20(fake_coil, objects=OBJECTS)


def test_a_colour_file_is_refused(fake_coil):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(fake_coil / "obj1__4.png")
    with pytest.raises(ValueError, match="obj1__4.png' read by load_coil20 must be an 8-bit grey"):
        load_coil20(fake_coil, objects=[1])


def test_images_of_any_common_size_load(tmp_path):
    folder = write_folder(tmp_path, lambda obj, view: pattern(obj, view, size=5), objects=[20])
    images = load_coil20(folder, objects=[20], views=[70], dtype=torch.float64)
    np.testing.assert_array_equal(images.numpy()[0, 0], pattern(20, 70, size=5) / 255)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(objects=[0]), ValueError, "'objects' parameter of load_coil20 must be an int in \\[1, 20\\]"),
    (dict(objects=[21]), ValueError, "'objects' parameter of load_coil20 must be an int in \\[1, 20\\]"),
    (dict(objects=[1, 1]), ValueError, "'objects' parameter of load_coil20 must hold distinct"),
    (dict(objects=3), TypeError, "'objects' parameter of load_coil20 must be an iterable"),
    (dict(views=0), ValueError, "'views' parameter of load_coil20 must be an int in \\[1, 72\\]"),
    (dict(views=[72]), ValueError, "'views' parameter of load_coil20 must be an int in \\[0, 71\\]"),
    (dict(views=[]), ValueError, "'views' parameter of load_coil20 must select at least one"),
    (dict(dtype=torch.uint8), TypeError, "'dtype' parameter of load_coil20 must be a floating"),
])
def test_loader_rejects_bad_arguments(fake_coil, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_coil20(fake_coil, **kwargs)


# --- the extended set -----------------------------------------------------------------------

def test_extended_set_has_the_extension_grid_and_names(fake_coil):
    coil = extended_coil20(3, path=fake_coil, objects=OBJECTS, scales=5, rotations=4, out_size=8)
    assert isinstance(coil, ImageManifold) and coil.name == "coil20"
    assert coil.classes == ("obj1", "obj2", "obj3")
    assert coil.grid == extension.extension_grid(3, views=18, scales=5, rotations=4)
    assert coil.grid.periodic == (True, False, True)
    assert tuple(coil.images.shape) == (3, 18, 5, 4, 8, 8)
    assert coil.images.dtype == torch.float32


def test_lower_variants_are_slices_of_the_full_set(fake_coil):
    full = extended_coil20(3, path=fake_coil, objects=[2, 3], scales=6, rotations=4, out_size=8,
                           dtype=torch.float64)
    plane = extended_coil20(2, path=fake_coil, objects=[2, 3], scales=6, rotations=4, out_size=8,
                            dtype=torch.float64)
    line = extended_coil20(1, path=fake_coil, objects=[2, 3], scales=6, out_size=8,
                           dtype=torch.float64)
    assert plane.grid.names == ("view", "rotation") and line.grid.names == ("view",)
    assert tuple(plane.images.shape) == (2, 18, 4, 8, 8) and tuple(line.images.shape) == (2, 18, 8, 8)
    # dim 2 fixes the 4th scale from the top; dim 1 also fixes rotation 0 (the first rotation).
    fixed = extension.fixed_parameters(2, scales=6)["scale"]
    assert np.isclose(full.grid.axes[1].values[-4], fixed, rtol=1e-15)
    np.testing.assert_allclose(plane.images, full.images[:, :, -4], rtol=0, atol=1e-12)
    np.testing.assert_allclose(line.images, plane.images[:, :, 0], rtol=0, atol=1e-12)


def test_extended_views_are_every_fourth_file_in_object_order(tmp_path):
    # Constant views (grey level 3 * obj + view): the centre of every output
    # image is that grey level, so the (object, view) order is visible.
    folder = write_folder(tmp_path, lambda obj, view: np.full((16, 16), 3 * obj + view, np.uint8),
                          objects=[1, 4])
    coil = extended_coil20(1, path=folder, objects=[4, 1], out_size=16, dtype=torch.float64)
    centre = coil.images[:, :, 6:10, 6:10]
    grey = np.array([[3 * obj + view for view in range(0, 72, 4)] for obj in (4, 1)]) / 255
    np.testing.assert_allclose(centre, np.broadcast_to(grey[..., None, None], centre.shape),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=4), "'dim' parameter of extended_coil20 must be one of \\{1, 2, 3\\}"),
    (dict(view_step=5), "'view_step' parameter of extended_coil20 must be one of \\{1, 2, 3, 4, 6"),
    (dict(scales=3), "'scales' parameter of extended_coil20 must be an int in \\[4, inf\\]"),
    (dict(rotations=1), "'rotations' parameter of extended_coil20 must be an int in \\[2, inf\\]"),
])
def test_extended_rejects_bad_arguments(fake_coil, kwargs, match):
    with pytest.raises(ValueError, match=match):
        extended_coil20(path=fake_coil, objects=[1], **kwargs)
