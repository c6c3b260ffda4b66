r"""The real COIL-20 images (processed set) and the paper's extended COIL-20.

COIL-20 (Nene, Nayar & Murase 1996) photographs 20 objects on a turntable,
one view every 5 degrees. The *processed* set crops each view to the
object and stores 1440 files ``obj{X}__{Y}.png``: object ``X`` in 1..20,
view ``Y`` in 0..71 at ``5 * Y`` degrees, 128 x 128 pixels, 8-bit grey.
The files cannot be fetched by this library: download the processed set
(``coil-20-proc``) once, unpack it, and pass its folder as ``path`` or set
the environment variable ``COIL20_DIR``.

The extended set of the paper keeps every 4th view (18 views, a periodic
axis of period 360 degrees), pads each view to a square about
:math:`\sqrt 2` times larger (182 px for 128) so that in-plane rotation
loses no corner, rotates it (16 periodic angles), shrinks it by 22 scales
in [0.5, 1] and resizes to 64 x 64. Per object that is :math:`S^1 \times I \times S^1`;
the 2-D variant keeps (view, rotation) at one scale and the 1-D variant
keeps the view only. The image operations live in
:mod:`lib.datasets.extension`; this module only reads the files.

Grey values are ``byte / 255``, so 0 and 255 map to exactly 0 and 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lib._checks import check_in, check_int
from lib.datasets import extension
from lib.datasets.images import ImageManifold

__all__ = ["COIL20_ENV", "N_OBJECTS", "N_VIEWS", "coil20_path", "extended_coil20", "load_coil20"]

COIL20_ENV = "COIL20_DIR"
N_OBJECTS = 20
N_VIEWS = 72
DEGREES_PER_VIEW = 5
LAYOUT = (f"a folder of the processed COIL-20 images, files obj{{X}}__{{Y}}.png with object X in "
          f"1..{N_OBJECTS} and view Y in 0..{N_VIEWS - 1} (at {DEGREES_PER_VIEW} * Y degrees), "
          f"128 x 128 8-bit grey PNGs")
# View steps that divide the 72 views evenly, so the kept views still sample the
# turntable circle with one spacing and the view axis can be periodic (>= 2 views).
VIEW_STEPS = tuple(step for step in range(1, N_VIEWS // 2 + 1) if N_VIEWS % step == 0)


def file_name(obj: int, view: int) -> str:
    """Name of the processed COIL-20 file of object ``obj`` (1..20) at view ``view`` (0..71)."""
    return f"obj{obj}__{view}.png"


def coil20_path(path=None) -> Path:
    """The folder of the processed COIL-20 images.

    Parameters
    ----------
    path : str or Path, optional
        The folder. When omitted, the environment variable ``COIL20_DIR``
        names it.

    Returns
    -------
    Path
        The folder, with ``~`` expanded; it exists.

    Raises
    ------
    ValueError
        Neither ``path`` nor ``COIL20_DIR`` is given.
    FileNotFoundError
        The folder does not exist.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> coil20_path(folder) == Path(folder)
    True
    """
    caller = "coil20_path"
    source = f"The 'path' parameter of {caller}"
    if path is None:
        value = os.environ.get(COIL20_ENV, "")
        if not value:
            raise ValueError(f"{source} was not given and the environment variable {COIL20_ENV} is "
                             f"not set. Expected one of them to name {LAYOUT}.")
        path, source = value, f"The environment variable {COIL20_ENV} (read by {caller})"
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{source} must be a str or Path naming {LAYOUT}. Got {path!r} instead.")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{source} must name an existing folder: {LAYOUT}. "
                                f"Got {str(folder)!r}, which is not a folder.")
    return folder


def _objects(objects, caller: str) -> list[int]:
    if objects is None:
        return list(range(1, N_OBJECTS + 1))
    if isinstance(objects, (str, bytes)) or not hasattr(objects, "__iter__"):
        raise TypeError(f"The 'objects' parameter of {caller} must be an iterable of ints in "
                        f"[1, {N_OBJECTS}]. Got {objects!r} instead.")
    chosen = [check_int(obj, name="objects", caller=caller, low=1, high=N_OBJECTS)
              for obj in objects]
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"The 'objects' parameter of {caller} must hold distinct ints in "
                         f"[1, {N_OBJECTS}], at least one. Got {chosen} instead.")
    return chosen


def _views(views, caller: str) -> list[int]:
    if views is None:
        return list(range(N_VIEWS))
    if isinstance(views, (int, np.integer)) and not isinstance(views, bool):
        step = check_int(views, name="views", caller=caller, low=1, high=N_VIEWS)
        return list(range(0, N_VIEWS, step))
    if isinstance(views, (str, bytes)) or not hasattr(views, "__iter__"):
        raise TypeError(f"The 'views' parameter of {caller} must be an int step in [1, {N_VIEWS}] "
                        f"or an iterable of view indices in [0, {N_VIEWS - 1}]. "
                        f"Got {views!r} instead.")
    chosen = [check_int(view, name="views", caller=caller, low=0, high=N_VIEWS - 1)
              for view in views]
    if not chosen:
        raise ValueError(f"The 'views' parameter of {caller} must select at least one view in "
                         f"[0, {N_VIEWS - 1}]. Got none.")
    return chosen


def load_coil20(path=None, *, objects=None, views=None, dtype: torch.dtype = torch.float32):
    """Read processed COIL-20 images into one tensor.

    Parameters
    ----------
    path : str or Path, optional
        Folder of ``obj{X}__{Y}.png`` files (see :func:`coil20_path`);
        defaults to ``$COIL20_DIR``.
    objects : iterable of int, optional
        Distinct object numbers in [1, 20], in the order wanted. Default: all 20.
    views : int or iterable of int, optional
        An int ``s`` in [1, 72] keeps views ``0, s, 2s, ...``; an iterable
        lists view indices in [0, 71] (view ``Y`` is at ``5 * Y`` degrees).
        Default: all 72.
    dtype : torch.dtype, default=torch.float32
        Floating dtype of the result.

    Returns
    -------
    images : tensor of shape (C, V, H, W)
        ``C = len(objects)``, ``V`` the number of views; grey values
        ``byte / 255`` in [0, 1]. ``H = W = 128`` for the real files; any
        size is read as long as every file has the same one.

    Raises
    ------
    FileNotFoundError
        The folder or a required file is missing (the message lists the
        first missing names and the expected pattern).
    ValueError
        An image is not 8-bit grey or its size differs from the first one.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> for view in range(72):   # a fake object 7 whose grey level is its view index
    ...     Image.fromarray(np.full((4, 4), view, np.uint8)).save(f"{folder}/obj7__{view}.png")
    >>> images = load_coil20(folder, objects=[7], views=18)    # views 0, 18, 36, 54
    >>> tuple(images.shape), (images[0, :, 0, 0] * 255).round().tolist()
    ((1, 4, 4, 4), [0.0, 18.0, 36.0, 54.0])
    """
    caller = "load_coil20"
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"The 'dtype' parameter of {caller} must be a floating torch.dtype. "
                        f"Got {dtype!r} instead.")
    chosen_objects, chosen_views = _objects(objects, caller), _views(views, caller)
    folder = coil20_path(path)
    files = [[folder / file_name(obj, view) for view in chosen_views] for obj in chosen_objects]
    missing = [f.name for row in files for f in row if not f.is_file()]
    if missing:
        listed = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise FileNotFoundError(f"The folder {str(folder)!r} given to {caller} lacks {len(missing)} "
                                f"of the {len(chosen_objects) * len(chosen_views)} required files: "
                                f"{listed}. Expected {LAYOUT}.")
    images = None
    for i, row in enumerate(files):
        for j, file in enumerate(row):
            with Image.open(file) as image:
                if image.mode != "L":
                    raise ValueError(f"The file {str(file)!r} read by {caller} must be an 8-bit grey "
                                     f"(mode 'L') PNG. Got mode {image.mode!r} instead. "
                                     f"Expected {LAYOUT}.")
                pixels = np.asarray(image)
            if images is None:
                # Allocated from the first file: every other one must match it.
                images = np.empty((len(chosen_objects), len(chosen_views), *pixels.shape), np.uint8)
            elif pixels.shape != images.shape[2:]:
                first = files[0][0].name
                raise ValueError(f"The file {str(file)!r} read by {caller} must have the size of "
                                 f"{first}, {images.shape[3]} x {images.shape[2]} (W x H). Got "
                                 f"{pixels.shape[1]} x {pixels.shape[0]} instead. Expected {LAYOUT}.")
            images[i, j] = pixels
    return torch.from_numpy(images).to(dtype) / 255


def extended_coil20(dim: int = 3, *, path=None, objects=None, view_step: int = 4, scales: int = 22,
                    rotations: int = 16, out_size: int = 64,
                    dtype: torch.dtype = torch.float32) -> ImageManifold:
    r"""The paper's extended COIL-20: turntable views x scales x in-plane rotations.

    Every ``view_step``-th view is read (:func:`load_coil20`), then
    :func:`lib.datasets.extension.extend` pads, rotates, scales and resizes
    it to ``out_size`` pixels on the grid of
    :func:`lib.datasets.extension.extension_grid`.

    Parameters
    ----------
    dim : {1, 2, 3}, default=3
        3: (view, scale, rotation), :math:`S^1 \times I \times S^1` per
        object; 2: (view, rotation) at the fixed scale of the extension
        module; 1: (view,) at that scale and no rotation.
    path : str or Path, optional
        Folder of the processed files; defaults to ``$COIL20_DIR``.
    objects : iterable of int, optional
        Object numbers in [1, 20]; default all 20.
    view_step : int, default=4
        Keep every ``view_step``-th of the 72 views; must divide 72 so the
        view axis stays periodic (default: 18 views, 20 degrees apart).
    scales : int, default=22
        Samples of the scale axis, 3-point buffers included, in [4, inf); in
        dim 1 and 2 it still sets the fixed scale (the 4th from the top).
    rotations : int, default=16
        Samples of the periodic in-plane rotation axis (dim 2 and 3), in [2, inf).
    out_size : int, default=64
        Side of the output images in pixels, in [1, inf).
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    ImageManifold
        Images of shape ``(C, *grid.shape, out_size, out_size)``, classes
        ``"obj1"``...``"obj20"`` (those selected), name ``"coil20"``.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> for view in range(72):
    ...     Image.fromarray(np.full((8, 8), 200, np.uint8)).save(f"{folder}/obj3__{view}.png")
    >>> coil = extended_coil20(2, path=folder, objects=[3], rotations=4, out_size=8)
    >>> coil.grid.names, tuple(coil.images.shape), coil.classes
    (('view', 'rotation'), (1, 18, 4, 8, 8), ('obj3',))
    """
    caller = "extended_coil20"
    check_in(dim, (1, 2, 3), name="dim", caller=caller)
    check_in(view_step, VIEW_STEPS, name="view_step", caller=caller)
    scales = check_int(scales, name="scales", caller=caller, low=4)
    rotations = check_int(rotations, name="rotations", caller=caller, low=2)
    out_size = check_int(out_size, name="out_size", caller=caller, low=1)
    chosen = _objects(objects, caller)
    views = load_coil20(path, objects=chosen, views=view_step, dtype=dtype)
    grid = extension.extension_grid(dim, views=views.shape[1], scales=scales, rotations=rotations)
    # Lower-dimensional variants render at the values the extension module
    # holds fixed, then drop the length-1 axes: one code path for all three.
    fixed = extension.fixed_parameters(dim, scales=scales)
    axes = dict(zip(grid.names, grid.axes))
    scale_values = axes["scale"].values if "scale" in axes else np.array([fixed["scale"]])
    rotation_values = (axes["rotation"].values if "rotation" in axes
                       else np.array([fixed["rotation"]]))
    images = extension.extend(views, torch.as_tensor(scale_values, dtype=dtype),
                              torch.as_tensor(rotation_values, dtype=dtype), out_size=out_size)
    if dim < 3:
        images = images[:, :, 0]
    if dim < 2:
        images = images[:, :, 0]
    return ImageManifold(images, grid, tuple(f"obj{obj}" for obj in chosen), "coil20")
