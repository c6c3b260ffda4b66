r"""The image testbed: the images of class c of data set X at intrinsic dimension d.

Every study that measures image manifolds (:mod:`lib.studies.image_manifolds`,
:mod:`lib.studies.layer_geometry`, :mod:`lib.studies.bound_scaling`) gets its
images here. :func:`image_testbed` picks a data set and a dimension d (which
parameter axes are free) plus the sizes of a preset, and returns a
:class:`Testbed`: the class labels, the parameter :class:`~lib.grid.Grid`,
and the images of each class as

- :meth:`~Testbed.render`: images at any parameter points, ``(..., H, W)`` in
  the type and dtype of the points;
- :meth:`~Testbed.image_function`: one point ``(d,)`` to one flattened image
  ``(H * W,)``, written in torch, for automatic differentiation (exact tangents);
- :meth:`~Testbed.derivatives`: its exact Jacobian and Hessian at many points;
- :meth:`~Testbed.grid_images`: one class on the whole grid, ``(*grid.shape, H * W)``;
- :meth:`~Testbed.manifold`: every class on the grid, an
  :class:`~lib.datasets.images.ImageManifold`;
- :meth:`~Testbed.sample_images`: one class at sampled parameter points, ``(n, H * W)``.

The data sets (:data:`DATASETS`, their dimensions :data:`DIMS`):

``"dsprites"``
    Extended dSprites (:mod:`lib.datasets.dsprites`): classes the sprite shapes,
    d in 1..4 with the free axes of :func:`~lib.datasets.dsprites.dsprites_grid`
    (4 scale rotation y x, 3 drops x, 2 scale rotation, 1 rotation).
``"turntable"``
    The offline turntable set (:mod:`lib.datasets.turntable`), the stand-in
    for extended COIL-20: classes the objects, d in 1..3 with the axes of
    :func:`~lib.datasets.extension.extension_grid` (3 view scale rotation,
    2 view rotation, 1 view).
``"coil20"``
    The real extended COIL-20 (:mod:`lib.datasets.coil20`), read from a
    folder of the processed files: the axes of the turntable set, classes
    ``"obj1"`` .. ``"obj20"``. Photographs have no renderer: their images
    exist only at the grid points (:meth:`~Testbed.grid_images`,
    :meth:`~Testbed.manifold`).

Which classes, which d, the image size and the grid's resolution are
arguments: the studies' presets choose them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable, ClassVar

import numpy as np
import torch

from lib._checks import check_in, check_int
from lib.datasets import coil20, dsprites, extension, turntable
from lib.datasets.images import ImageManifold
from lib.grid import Grid

__all__ = ["DATASETS", "DIMS", "Testbed", "DSpritesTestbed", "TurntableTestbed",
           "Coil20Testbed", "image_testbed", "labels"]

DATASETS = ("dsprites", "turntable", "coil20")
DIMS = {"dsprites": (1, 2, 3, 4), "turntable": (1, 2, 3), "coil20": (1, 2, 3)}
_COIL20_LABELS = tuple(f"obj{number}" for number in range(1, coil20.N_OBJECTS + 1))


def labels(dataset: str) -> tuple[str, ...]:
    """Every class label of a data set, in its canonical order.

    Parameters
    ----------
    dataset : {"dsprites", "turntable", "coil20"}

    Returns
    -------
    tuple of str
        The sprite shapes, the turntable objects, or ``"obj1"`` .. ``"obj20"``.

    Examples
    --------
    >>> labels("dsprites")
    ('square', 'ellipse', 'heart')
    >>> len(labels("turntable")), labels("coil20")[:2]
    (20, ('obj1', 'obj2'))
    """
    check_in(dataset, DATASETS, name="dataset", caller="labels")
    return {"dsprites": dsprites.SHAPES, "turntable": turntable.OBJECTS,
            "coil20": _COIL20_LABELS}[dataset]


@dataclass(frozen=True)
class Testbed:
    """The classes of one data set at one intrinsic dimension, on one parameter grid.

    Built by :func:`image_testbed`; the subclasses :class:`DSpritesTestbed`,
    :class:`TurntableTestbed` and :class:`Coil20Testbed` hold each data set's
    sizes. Every image is a grey picture in [0, 1] of ``image_size`` x
    ``image_size`` pixels; D = ``image_size**2``.

    Attributes
    ----------
    name : str
        The data set, one of :data:`DATASETS`.
    dim : int
        Intrinsic dimension d: the number of free parameter axes.
    classes : tuple of str
        The class labels, a selection of :func:`labels` (all by default).
    grid : Grid
        The parameter grid: d axes, with their ranges, sample counts and periodicity.
    image_size : int
        Height and width of the images.
    """

    __test__ = False        # not a pytest test class, despite its name
    name: ClassVar[str] = ""
    dim: int
    classes: tuple[str, ...] | None = None
    grid: Grid = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        caller = type(self).__name__
        check_in(self.dim, DIMS[self.name], name="dim", caller=caller)
        every = labels(self.name)
        chosen = every if self.classes is None else self._labels(self.classes, caller)
        for label in chosen:
            check_in(label, every, name="classes", caller=caller)
        if not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(f"The 'classes' parameter of {caller} must hold distinct labels of "
                             f"{self.name!r}, at least one. Got {chosen!r} instead.")
        object.__setattr__(self, "classes", tuple(chosen))
        object.__setattr__(self, "grid", self._grid())

    @staticmethod
    def _labels(classes, caller) -> tuple:
        return (classes,) if isinstance(classes, str) else tuple(classes)

    def _check_label(self, label, caller):
        check_in(label, self.classes, name="label", caller=caller)

    # --- images on the grid ------------------------------------------------------------

    def grid_images(self, label: str, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """One class on the whole grid, flattened.

        Parameters
        ----------
        label : str
            One of :attr:`classes`.
        dtype : {torch.float64, torch.float32}, default=torch.float64

        Returns
        -------
        images : tensor of shape (*grid.shape, D)
            The class rendered alone (a class at the default presets is a few
            hundred MB in float64), equal to :meth:`render` at ``grid.points``.
        """
        self._check_label(label, f"{type(self).__name__}.grid_images")
        return self._manifold((label,), dtype).values(label)

    def manifold(self, *, dtype: torch.dtype = torch.float64) -> ImageManifold:
        """Every class on the grid, rendered (or read) together.

        Returns
        -------
        ImageManifold
            ``images`` a tensor of shape ``(C, *grid.shape, H, W)`` with C =
            ``len(classes)``, ``grid`` and ``classes`` those of the testbed.
        """
        return self._manifold(self.classes, dtype)

    # --- images anywhere -----------------------------------------------------------------

    def render(self, label: str, theta):
        """Images of one class at any parameter points.

        Parameters
        ----------
        label : str
            One of :attr:`classes`.
        theta : array of shape (..., dim)
            Parameter points, in the axes of :attr:`grid`; numpy or torch.

        Returns
        -------
        images : array of shape (..., H, W)
            Same type, dtype and device as ``theta``.
        """
        raise self._no_renderer("render")

    def image_function(self, label: str) -> Callable[[torch.Tensor], torch.Tensor]:
        """The image of one class as a function of one parameter point, for autodiff.

        Returns
        -------
        fn : callable
            Maps a tensor of shape (dim,) to the flattened image, shape (D,);
            pure torch, so :func:`torch.func.jacfwd` gives the exact tangents.
        """
        raise self._no_renderer("image_function")

    def derivatives(self, label: str, theta):
        """Exact Jacobian and Hessian of :meth:`image_function` at parameter points.

        Parameters
        ----------
        label : str
        theta : array of shape (..., dim)

        Returns
        -------
        Derivatives
            ``jacobian`` (..., D, dim) and ``hessian`` (..., D, dim, dim), in
            the type and dtype of ``theta``.
        """
        raise self._no_renderer("derivatives")

    def sample_images(self, label: str, theta, *, snap_views: int | None = None) -> torch.Tensor:
        """One class at sampled parameter points, flattened, in float64: a point cloud.

        Parameters
        ----------
        label : str
        theta : array of shape (n, dim)
            Parameter points (e.g. :meth:`lib.grid.Grid.uniform_points`).
        snap_views : int, optional
            Turntable only: render just ``snap_views`` equally spaced turntable
            angles ``2 pi k / snap_views`` and take each point's view from the
            one at or below its angle (rendering a view is the expensive step);
            scale and in-plane rotation stay continuous. Default: every point
            is rendered at its own angle.

        Returns
        -------
        images : tensor of shape (n, D), float64
        """
        raise self._no_renderer("sample_images")

    def _no_renderer(self, method):
        return ValueError(f"{type(self).__name__}.{method} needs a renderer, and the "
                          f"{self.name!r} testbed has images only at its grid points "
                          f"(grid_images, manifold).")


@dataclass(frozen=True)
class DSpritesTestbed(Testbed):
    """Extended dSprites at dimension ``dim`` (:mod:`lib.datasets.dsprites`).

    Parameters
    ----------
    dim : {1, 2, 3, 4}
        Free axes: 4 (scale, rotation, y, x), 3 (scale, rotation, y),
        2 (scale, rotation), 1 (rotation,); the others at
        :data:`lib.datasets.dsprites.FIXED`.
    classes : sequence of str, optional
        Shapes among ``("square", "ellipse", "heart")``; default all three.
    image_size : int, default=64
    blur : float, default=0.0
        Extra Gaussian blur in px (the paper's images use 0.8).
    scales, rotations, translations : int
        Samples of each axis, as :func:`~lib.datasets.dsprites.dsprites_grid`.
    max_shift : float, default=21.0
        Translations span [-max_shift, max_shift] px.
    """

    name: ClassVar[str] = "dsprites"
    image_size: int = 64
    blur: float = 0.0
    scales: int = 22
    rotations: int = 16
    translations: int = 22
    max_shift: float = 21.0
    renderer: dsprites.DSprites = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "renderer",
                           dsprites.DSprites(image_size=self.image_size, blur=self.blur))
        super().__post_init__()

    def _grid_options(self) -> dict:
        return dict(scales=self.scales, rotations=self.rotations,
                    translations=self.translations, max_shift=self.max_shift)

    def _grid(self) -> Grid:
        return dsprites.dsprites_grid(self.dim, **self._grid_options())

    def _manifold(self, classes, dtype) -> ImageManifold:
        return dsprites.extended_dsprites(self.dim, renderer=self.renderer, shapes=classes,
                                          dtype=dtype, **self._grid_options())

    def render(self, label, theta):
        self._check_label(label, "DSpritesTestbed.render")
        return self.renderer.render(label, dsprites.full_parameters(theta, self.dim))

    def image_function(self, label):
        self._check_label(label, "DSpritesTestbed.image_function")
        image, dim = self.renderer.image_function(label), self.dim
        return lambda theta: image(dsprites.full_parameters(theta, dim))

    def derivatives(self, label, theta):
        self._check_label(label, "DSpritesTestbed.derivatives")
        return self.renderer.derivatives(label, theta, dim=self.dim)

    def sample_images(self, label, theta, *, snap_views=None):
        caller = "DSpritesTestbed.sample_images"
        self._check_label(label, caller)
        if snap_views is not None:
            raise ValueError(f"The 'snap_views' parameter of {caller} must be None: dSprites "
                             f"has no turntable views. Got {snap_views!r} instead.")
        poses = dsprites.full_parameters(torch.as_tensor(theta, dtype=torch.float64), self.dim)
        return self.renderer.render(label, poses).reshape(len(theta), -1)


@dataclass(frozen=True)
class TurntableTestbed(Testbed):
    """The offline turntable set at dimension ``dim`` (:mod:`lib.datasets.turntable`).

    Parameters
    ----------
    dim : {1, 2, 3}
        Free axes: 3 (view, scale, rotation), 2 (view, rotation), 1 (view,);
        the others at :func:`lib.datasets.extension.fixed_parameters`.
    classes : sequence of str, optional
        Objects among :data:`lib.datasets.turntable.OBJECTS`; default all 20.
    base_size : int, default=128
        Side of the rendered turntable views in px.
    out_size : int, default=64
        Side of the images after scaling and in-plane rotation: ``image_size``.
    views, scales, rotations : int
        Samples of each axis, as :func:`~lib.datasets.extension.extension_grid`;
        ``scales`` also sets the fixed scale of ``dim < 3``.
    """

    name: ClassVar[str] = "turntable"
    base_size: int = 128
    out_size: int = 64
    views: int = 18
    scales: int = 22
    rotations: int = 16
    renderer: turntable.Turntable = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "renderer", turntable.Turntable(image_size=self.base_size))
        super().__post_init__()

    @property
    def image_size(self) -> int:
        return self.out_size

    def _grid(self) -> Grid:
        return extension.extension_grid(self.dim, views=self.views, scales=self.scales,
                                        rotations=self.rotations)

    def _manifold(self, classes, dtype) -> ImageManifold:
        return turntable.extended_turntable(self.dim, renderer=self.renderer, objects=classes,
                                            views=self.views, scales=self.scales,
                                            rotations=self.rotations, out_size=self.out_size,
                                            dtype=dtype)

    def render(self, label, theta):
        self._check_label(label, "TurntableTestbed.render")
        return self.renderer.images(label, theta, dim=self.dim, out_size=self.out_size,
                                    scales=self.scales)

    def image_function(self, label):
        self._check_label(label, "TurntableTestbed.image_function")
        return self.renderer.image_function(label, dim=self.dim, out_size=self.out_size,
                                            scales=self.scales)

    def derivatives(self, label, theta):
        self._check_label(label, "TurntableTestbed.derivatives")
        return self.renderer.derivatives(label, theta, dim=self.dim, out_size=self.out_size,
                                         scales=self.scales)

    def sample_images(self, label, theta, *, snap_views=None):
        caller = "TurntableTestbed.sample_images"
        self._check_label(label, caller)
        if snap_views is None:
            points = torch.as_tensor(theta, dtype=torch.float64)
            return self.render(label, points).reshape(len(theta), -1)
        count = check_int(snap_views, name="snap_views", caller=caller, low=1)
        dim, fixed = self.dim, extension.fixed_parameters(self.dim, scales=self.scales)
        index = np.floor(np.asarray(theta)[:, 0] / (2 * math.pi) * count).astype(int) % count
        angles = torch.arange(count, dtype=torch.float64) * (2 * math.pi / count)
        views = self.renderer.render(label, angles)
        theta = torch.as_tensor(theta, dtype=torch.float64)
        images = []
        for view, point in zip(index, theta):
            scale = point[1] if dim == 3 else fixed["scale"]
            rotation = point[dim - 1] if dim >= 2 else fixed["rotation"]
            images.append(extension.similarity(views[view], scale, rotation,
                                               out_size=self.out_size))
        return torch.stack(images).reshape(len(theta), -1)


@dataclass(frozen=True)
class Coil20Testbed(Testbed):
    """The real extended COIL-20 at dimension ``dim`` (:mod:`lib.datasets.coil20`).

    Images exist only at the grid points: :meth:`grid_images` and
    :meth:`manifold` read the files (every class together, so that one class
    equals its slice of the whole set); the rendering methods raise.

    Parameters
    ----------
    dim : {1, 2, 3}
        Axes as :class:`TurntableTestbed`.
    classes : sequence of str or int, optional
        ``"obj1"`` .. ``"obj20"`` or the object numbers 1..20; default all 20.
    path : str or Path, optional
        Folder of the processed files; default ``$COIL20_DIR``.
    out_size : int, default=64
    view_step : int, default=4
        Keep every ``view_step``-th of the 72 views (a divisor of 72).
    scales, rotations : int
        Samples of the scale and in-plane rotation axes.
    """

    name: ClassVar[str] = "coil20"
    path: object = None
    out_size: int = 64
    view_step: int = 4
    scales: int = 22
    rotations: int = 16

    @staticmethod
    def _labels(classes, caller) -> tuple:
        classes = Testbed._labels(classes, caller)
        return tuple(f"obj{label}" if isinstance(label, (int, np.integer))
                     and not isinstance(label, bool) else label for label in classes)

    @property
    def image_size(self) -> int:
        return self.out_size

    def _grid(self) -> Grid:
        check_in(self.view_step, coil20.VIEW_STEPS, name="view_step", caller="Coil20Testbed")
        return extension.extension_grid(self.dim, views=coil20.N_VIEWS // self.view_step,
                                        scales=self.scales, rotations=self.rotations)

    def grid_images(self, label, *, dtype=torch.float64):
        self._check_label(label, "Coil20Testbed.grid_images")
        return self.manifold(dtype=dtype).values(label)

    def _manifold(self, classes, dtype) -> ImageManifold:
        return coil20.extended_coil20(self.dim, path=self.path, out_size=self.out_size,
                                      objects=[int(label[3:]) for label in classes],
                                      dtype=dtype, view_step=self.view_step,
                                      scales=self.scales, rotations=self.rotations)


_TESTBEDS = {"dsprites": DSpritesTestbed, "turntable": TurntableTestbed,
             "coil20": Coil20Testbed}


def image_testbed(dataset: str, dim: int, *, classes=None, **sizes) -> Testbed:
    """The images of the classes of one data set at intrinsic dimension ``dim``.

    Parameters
    ----------
    dataset : {"dsprites", "turntable", "coil20"}
    dim : int
        Intrinsic dimension d, one of ``DIMS[dataset]``: which parameter axes
        are free (module docstring).
    classes : sequence of str, optional
        The class labels to keep, a selection of :func:`labels`; default all.
    **sizes
        The data set's image size and grid resolution: the fields of
        :class:`DSpritesTestbed` (``image_size, blur, scales, rotations,
        translations, max_shift``), :class:`TurntableTestbed` (``base_size,
        out_size, views, scales, rotations``) or :class:`Coil20Testbed`
        (``path, out_size, view_step, scales, rotations``).

    Returns
    -------
    Testbed

    Raises
    ------
    ValueError
        ``dataset`` or ``dim`` is not one of the allowed values, or a label is unknown.
    TypeError
        A keyword of ``sizes`` is not one the data set takes.

    Examples
    --------
    >>> import torch
    >>> bed = image_testbed("dsprites", 1, image_size=16, rotations=8)
    >>> bed.classes, bed.grid.names, bed.grid.shape
    (('square', 'ellipse', 'heart'), ('rotation',), (8,))
    >>> images = bed.grid_images("heart")                     # (*grid.shape, D)
    >>> images.shape, images.dtype
    (torch.Size([8, 256]), torch.float64)
    >>> theta = torch.as_tensor(bed.grid.points)              # (8, 1)
    >>> rendered = bed.render("heart", theta).reshape(8, -1)
    >>> bool(torch.allclose(rendered, images, rtol=0, atol=1e-12))
    True
    >>> jacobian = torch.func.jacfwd(bed.image_function("heart"))(theta[3])
    >>> jacobian.shape                                        # tangent (D, d)
    torch.Size([256, 1])
    """
    caller = "image_testbed"
    check_in(dataset, DATASETS, name="dataset", caller=caller)
    check_in(dim, DIMS[dataset], name="dim", caller=caller)
    kind = _TESTBEDS[dataset]
    allowed = {item.name for item in fields(kind) if item.init} - {"dim", "classes"}
    unknown = sorted(set(sizes) - allowed)
    if unknown:
        raise TypeError(f"The 'sizes' of {caller} for {dataset!r} must be among "
                        f"{sorted(allowed)}. Got {unknown} instead.")
    return kind(dim=dim, classes=classes, **sizes)
