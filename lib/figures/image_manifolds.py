"""Figures of the chapter "The image manifolds"."""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import seaborn as sns

from lib.figures._style import STYLE, marker_handles, new_figure, palette

__all__ = ["gallery", "axis_sweeps", "class_geometry", "convergence"]

FLOOR = 1e-16
QUANTITIES = ["tangents", "volume element", "scalar curvature"]
GEOMETRY = [("volume", "total volume"), ("curvature", r"total curvature $\int S\,dV$"),
            ("min reach", "minimum reach"), ("class distance", "distance to other classes")]


def _image_axes(ax, image, title=None):
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)


def gallery(thumbnails: dict, *, columns: int = 10):
    """Every class of every data set at the centre of its grid, one labelled thumbnail each.

    ``thumbnails`` maps a data set's name to ``(labels, images (C, H, W))``; one
    block of rows per data set, ``columns`` thumbnails per row.
    """
    blocks = [(name, labels, images) for name, (labels, images) in thumbnails.items()]
    rows = [math.ceil(len(labels) / columns) for _, labels, _ in blocks]
    with mpl.rc_context(STYLE):
        fig = new_figure(figsize=(1.0 * columns, 1.2 * sum(rows) + 0.4 * len(blocks)))
        subfigures = np.atleast_1d(fig.subfigures(len(blocks), 1, height_ratios=rows))
        for subfigure, (name, labels, images), count in zip(subfigures, blocks, rows):
            subfigure.suptitle(name, fontsize=10, x=0.01, ha="left")
            axes = subfigure.subplots(count, columns, squeeze=False)
            for ax in axes.flat[len(labels):]:
                ax.set_axis_off()
            for ax, label, image in zip(axes.flat, labels, images):
                _image_axes(ax, image, label)
    return fig


def axis_sweeps(sweeps):
    """One row per parameter axis: the images of one class as that parameter runs over its range."""
    columns = len(sweeps[0].values)
    with mpl.rc_context(STYLE):
        fig = new_figure(figsize=(1.0 * columns + 0.8, 1.05 * len(sweeps)))
        axes = fig.subplots(len(sweeps), columns, squeeze=False)
        for row, sweep in zip(axes, sweeps):
            for ax, value, image in zip(row, sweep.values, sweep.images):
                _image_axes(ax, image, f"{value:.2f}")
            row[0].set_ylabel(f"{sweep.label}\n{sweep.axis}", rotation=0, ha="right",
                              va="center", fontsize=10)
    return fig


def class_geometry(table):
    """Per-class geometry after rescaling to unit total volume: four bar panels per data set.

    Two by two per data set, so that each panel is wide enough for its class
    names at the page's smallest text size.
    """
    datasets = list(dict.fromkeys(table["dataset"]))
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(8.5, 5.4 * len(datasets) + 0.5))
        subfigures = np.atleast_1d(fig.subfigures(len(datasets), 1))
        for subfigure, dataset in zip(subfigures, datasets):
            part = table[table["dataset"] == dataset]
            labels = list(part["class"])
            positions = np.arange(len(labels))
            subfigure.suptitle(f"{dataset} (d = {int(part['dim'].iloc[0])})", x=0.01,
                               ha="left")
            axes = subfigure.subplots(2, 2, sharex=True)
            for ax, (column, title) in zip(axes.flat, GEOMETRY):
                if column == "curvature":
                    curvature_axes = ax
                    ax.bar(positions, part["curvature+"], color="tab:red", label="positive part")
                    ax.bar(positions, part["curvature-"], color="tab:blue", label="negative part")
                    ax.scatter(positions, part["curvature"], color="black", s=12, zorder=3,
                               label="total")
                    ax.axhline(0, color="0.3", lw=0.8)
                else:
                    ax.bar(positions, part[column], color="0.55")
                ax.set_xticks(positions, labels, rotation=90 if len(labels) > 4 else 0)
                ax.set_title(title)
        handles, names = curvature_axes.get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncols=3)
    return fig


def convergence(table):
    """Finite differences against autodiff: error against step, one panel per data set and quantity."""
    datasets = list(dict.fromkeys(table["dataset"]))
    colours = palette([f"order {o}" for o in sorted(table["order"].unique())])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 2.9 * len(datasets) + 0.6))
        axes = fig.subplots(len(datasets), len(QUANTITIES), squeeze=False, sharex="row")
        for row, dataset in zip(axes, datasets):
            for ax, quantity in zip(row, QUANTITIES):
                part = table[(table["dataset"] == dataset) & (table["quantity"] == quantity)]
                ax.set_title(f"{dataset}: {quantity}")
                if part.empty:
                    ax.text(0.5, 0.5, "not defined\nfor a curve", ha="center", va="center",
                            transform=ax.transAxes, color="0.4")
                    continue
                part = part.assign(error=part["error"].clip(lower=FLOOR),
                                   stencil=part["order"].map(lambda o: f"order {o}"))
                sns.lineplot(part, x="spacing", y="error", hue="stencil", palette=colours,
                             units="point", style="class", estimator=None, lw=0.8, alpha=0.6,
                             ax=ax, legend=False)
                for order in sorted(part["order"].unique()):
                    h = np.array(sorted(part["spacing"].unique()))
                    median = part[part["order"] == order].groupby("spacing")["error"].median()
                    # Reference slopes through the finest step, where the asymptotics hold.
                    ax.plot(h, median.iloc[0] * (h / h[0]) ** order, color="black", lw=0.8,
                            ls=":" if order == 4 else "-.")
                # The reference lines must not stretch the axis beyond the data.
                ax.set(xscale="log", yscale="log", xlabel="largest step h",
                       ylabel="relative error" if ax is row[0] else "",
                       ylim=(part["error"].min() / 3, part["error"].max() * 3))
        handles = marker_handles(colours)
        handles += [mpl.lines.Line2D([], [], color="black", lw=0.8, ls="-.", label="slope 2"),
                    mpl.lines.Line2D([], [], color="black", lw=0.8, ls=":", label="slope 4")]
        fig.legend(handles=handles, loc="outside lower center", ncols=4)
    return fig
