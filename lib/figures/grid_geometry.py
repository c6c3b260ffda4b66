"""Figures of the chapter "Measuring geometry on a grid"."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns

from lib.figures._style import STYLE, marker_handles, new_figure, palette

__all__ = ["convergence", "baselines"]

FLOOR = 1e-16
MEASURES = ["volume", "scalar curvature", "reach"]


def convergence(table):
    """Error against grid spacing, log-log: one row per stencil order, one column per measure."""
    manifolds = list(dict.fromkeys(table["manifold"]))
    methods = list(dict.fromkeys(table["method"]))
    colours = palette(manifolds)
    dashes = dict(zip(methods, ["", (4, 2), (1, 1)]))
    orders = sorted(table["order"].unique())
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(8, 6.4))
        axes = fig.subplots(len(orders), len(MEASURES), sharex=True, sharey="row", squeeze=False)
        for row, order in enumerate(orders):
            for column, measure in enumerate(MEASURES):
                ax = axes[row, column]
                part = table[(table["order"] == order) & (table["measure"] == measure)].copy()
                if row == 0:
                    ax.set_title(measure)
                if part.empty:
                    ax.text(0.5, 0.5, "not computed\nat this preset", ha="center", va="center",
                            transform=ax.transAxes, color="0.4")
                    continue
                part["error"] = part["error"].clip(lower=FLOOR)
                sns.lineplot(part, x="spacing", y="error", hue="manifold", style="method",
                             palette=colours, dashes=dashes, markers=True, ax=ax, legend=False)
                h = np.array(sorted(part["spacing"].unique()))
                anchor = 4 * part["error"].max() / h.max() ** order
                ax.plot(h, anchor * h**order, color="black", lw=0.8, ls="-.")
                ax.set(xscale="log", yscale="log", xlabel="largest grid spacing h" if row else "",
                       ylabel=f"order {order}: relative error" if column == 0 else "")
                ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        handles = marker_handles(colours)
        handles += [mpl.lines.Line2D([], [], color="0.3", dashes=dashes[m] or (None, None),
                                     label=m) for m in methods]
        handles.append(mpl.lines.Line2D([], [], color="black", lw=0.8, ls="-.",
                                        label=r"slope = stencil order"))
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


def baselines(table):
    """Grid against point-cloud estimators at equal numbers of points, one panel per measure."""
    measures = list(dict.fromkeys(table["measure"]))
    methods = list(dict.fromkeys(table["method"]))
    colours = palette(methods)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 3.6))
        axes = fig.subplots(1, len(measures), squeeze=False)[0]
        for ax, measure in zip(axes, measures):
            part = table[table["measure"] == measure].copy()
            part["error"] = part["error"].clip(lower=FLOOR)
            sns.lineplot(part, x="points", y="error", hue="method", palette=colours,
                         marker="o", ax=ax, legend=False)
            ax.set(xscale="log", yscale="log", title=measure, xlabel="number of points",
                   ylabel="relative error" if ax is axes[0] else "")
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        handles = marker_handles(colours)
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig
