"""What every figure of the book shares: font sizes, the Figure factory, colours by name."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

STYLE = {"axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
         "legend.fontsize": 9, "font.size": 10}


#: The widest figure, in inches. The page shows a figure at its drawn size (96 CSS px per
#: inch, :func:`lib.book.publish`) up to the width of a code cell's output, about 920 px
#: in a 1280-px window: a 10.5-inch figure (1008 px) is shown at 0.91 of its size, so its
#: 9-pt text (the smallest :data:`STYLE` sets) still reads at 8 pt or more.
MAX_WIDTH = 10.5


def new_figure(**kwargs) -> Figure:
    """A Figure not registered with pyplot, so notebooks display it once.

    A ``figsize`` wider than :data:`MAX_WIDTH` is narrowed to it: a figure
    whose panels grow with the data (more cases at a larger preset) shares the
    page's width instead of shrinking its text below legibility.
    """
    if "figsize" in kwargs:
        width, height = kwargs["figsize"]
        kwargs["figsize"] = (min(width, MAX_WIDTH), height)
    return Figure(layout="constrained", **kwargs)


def panel_grid(fig, count: int, *, columns: int = 4):
    """``count`` axes in rows of at most ``columns``, flattened; the unused ones hidden."""
    columns = min(columns, count)
    rows = int(np.ceil(count / columns))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[count:]:
        ax.set_visible(False)
    return axes[:count]


def palette(names) -> dict:
    """One tab10 colour per name, in order, so every panel of a figure agrees."""
    names = list(names)
    return dict(zip(names, sns.color_palette("tab10", len(names))))


def marker_handles(colours: dict) -> list:
    """Legend entries (line with a dot) for a name -> colour mapping."""
    return [mpl.lines.Line2D([], [], color=colour, marker="o", label=name)
            for name, colour in colours.items()]
