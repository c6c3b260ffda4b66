"""Image manifolds: images of several classes rendered on one parameter grid.

An :class:`ImageManifold` is what the renderers (:mod:`lib.datasets.dsprites`,
:mod:`lib.datasets.turntable`) and the COIL-20 loader return: one array of
images, the :class:`~lib.grid.Grid` of the parameters they were rendered at,
and the class names. Indexing by class gives a :class:`~lib.grid.Sampled`
(flattened pixels on the grid) that every grid geometry function accepts in
place of ``(values, grid)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lib._checks import check_in
from lib.grid import Grid, Sampled

__all__ = ["ImageManifold"]


@dataclass(frozen=True)
class ImageManifold:
    """Images of ``len(classes)`` class manifolds over one parameter grid.

    Parameters
    ----------
    images : array of shape (C, *grid.shape, H, W)
        Grey values in [0, 1], numpy or torch.
    grid : Grid
        The parameter axes (names, ranges, spacing, which ones are periodic).
    classes : tuple of str
        One name per class, ``len(classes) == C``.
    name : str
        Name of the data set (``"dsprites"``, ``"turntable"``, ``"coil20"``).

    Examples
    --------
    >>> import numpy as np
    >>> from lib.geometry.metric import total_volume
    >>> grid = Grid.product(shift=(0.0, 1.0, 5))
    >>> images = np.zeros((2, 5, 3, 4))
    >>> images[1, :, 0, 0] = grid.points[:, 0]          # one pixel brightens linearly
    >>> manifold = ImageManifold(images, grid, ("dark", "ramp"), "demo")
    >>> manifold.shape, manifold.image_shape, manifold.ambient_dim
    ((5,), (3, 4), 12)
    >>> round(total_volume(manifold["ramp"]), 6)   # [0.25, 0.75]: one border layer is lost
    0.5
    """

    images: object
    grid: Grid
    classes: tuple[str, ...]
    name: str = ""

    def __post_init__(self):
        caller = "ImageManifold"
        if not isinstance(self.grid, Grid):
            raise TypeError(f"The 'grid' parameter of {caller} must be a Grid. "
                            f"Got {type(self.grid).__name__} instead.")
        object.__setattr__(self, "classes", tuple(self.classes))
        expected = (len(self.classes), *self.grid.shape)
        shape = tuple(self.images.shape)
        if len(shape) != len(expected) + 2 or shape[:len(expected)] != expected:
            raise ValueError(f"The 'images' parameter of {caller} must have shape "
                             f"(C, *grid.shape, H, W) = ({', '.join(map(str, expected))}, H, W). "
                             f"Got {shape} instead.")

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid shape."""
        return self.grid.shape

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.images.shape[-2:])

    @property
    def ambient_dim(self) -> int:
        """D = H * W, the dimension of the space the images live in."""
        height, width = self.image_shape
        return height * width

    @property
    def dim(self) -> int:
        """Intrinsic dimension of each class manifold (the number of grid axes)."""
        return self.grid.ndim

    def index(self, label: str | int) -> int:
        """Position of a class given by name or position."""
        if isinstance(label, str):
            check_in(label, self.classes, name="label", caller="ImageManifold.index")
            return self.classes.index(label)
        check_in(label, range(len(self.classes)), name="label", caller="ImageManifold.index")
        return int(label)

    def values(self, label: str | int):
        """Flattened images of one class, shape ``(*grid.shape, H * W)`` (a view)."""
        return self.images[self.index(label)].reshape(*self.grid.shape, self.ambient_dim)

    def __getitem__(self, label: str | int) -> Sampled:
        """One class as ``Sampled(values, grid)``, for the grid geometry functions."""
        return Sampled(self.values(label), self.grid)

    def __iter__(self):
        raise TypeError("Iterate over ImageManifold.classes, then index by class name.")

    def to(self, dtype: torch.dtype | None = None, device=None) -> "ImageManifold":
        """The same manifold with the images as a tensor of the given dtype and device."""
        images = self.images if isinstance(self.images, torch.Tensor) else torch.as_tensor(self.images)
        return ImageManifold(images.to(dtype=dtype, device=device), self.grid, self.classes, self.name)
