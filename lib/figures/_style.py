"""What every figure of the book shares: font sizes, the Figure factory, colours by name."""

from __future__ import annotations

import matplotlib as mpl
import seaborn as sns
from matplotlib.figure import Figure

STYLE = {"axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
         "legend.fontsize": 9, "font.size": 10}


def new_figure(**kwargs) -> Figure:
    """A Figure not registered with pyplot, so notebooks display it once."""
    return Figure(layout="constrained", **kwargs)


def palette(names) -> dict:
    """One tab10 colour per name, in order, so every panel of a figure agrees."""
    names = list(names)
    return dict(zip(names, sns.color_palette("tab10", len(names))))


def marker_handles(colours: dict) -> list:
    """Legend entries (line with a dot) for a name -> colour mapping."""
    return [mpl.lines.Line2D([], [], color=colour, marker="o", label=name)
            for name, colour in colours.items()]
