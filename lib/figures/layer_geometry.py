"""Figures of the chapter "What a network does to the data manifold" (the paper's Fig. 6)."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns

from lib.figures import _training
from lib.figures._style import STYLE, new_figure, palette

__all__ = ["training_curves", "layer_profiles", "twonn_profiles", "tangent_error_profiles"]

STYLES = {"trained": "-", "untrained": "--"}
PART_COLOURS = {"encoder": "tab:blue", "decoder": "tab:orange"}
PANELS = [("volume", "raw", "volume (raw)", "log"),
          ("curvature", "unit volume", r"total curvature $\int S\,dV$", "symlog"),
          ("parts", "unit volume", "its parts: positive ▲, |negative| ▼", "log"),
          ("min reach", "unit volume", "minimum reach", "log"),
          ("class distance", "unit volume", "distance to the other classes", "log")]


def _short(layer: str) -> str:
    """Tick label of a layer: the block name without its part (the shading gives the part)."""
    return {"input": "input", "output": "output", "mu": r"$\mu$"}.get(layer,
                                                                     layer.split(".")[-1])


def _layers(table):
    layers = table[["depth", "layer", "part"]].drop_duplicates().sort_values("depth")
    return layers.reset_index(drop=True)


def _depth_axis(ax, layers, *, labels: bool):
    """Shade the encoder and the decoder, mark mu, and name the layers on the x axis."""
    for part, colour in PART_COLOURS.items():
        depths = layers.loc[layers["part"] == part, "depth"]
        if len(depths):
            ax.axvspan(depths.min() - 0.5, depths.max() + 0.5, color=colour, alpha=0.08, lw=0)
    for depth in layers.loc[layers["part"] == "mu", "depth"]:
        ax.axvline(depth, color="0.25", lw=0.9, ls=":")
    ax.set_xlim(layers["depth"].min() - 0.5, layers["depth"].max() + 0.5)
    ax.set_xticks(layers["depth"], [_short(name) for name in layers["layer"]] if labels else [],
                  rotation=90, fontsize=9)
    ax.grid(axis="x", visible=False)


def _symlog(ax, values):
    """A symlog y axis whose linear range is a decade around zero, labelled at whole decades.

    The linear range is the decade below the median nonzero magnitude; ticks
    sit at 0 and at +-10^n above it, every other decade when there are many,
    so that no two labels overlap.
    """
    magnitudes = np.abs(np.asarray(values, dtype=float))
    magnitudes = magnitudes[np.isfinite(magnitudes) & (magnitudes > 0)]
    if not len(magnitudes):
        ax.set_yscale("symlog")
        return
    low = int(np.floor(np.log10(np.median(magnitudes)))) - 1
    high = max(int(np.ceil(np.log10(magnitudes.max()))), low + 1)
    ax.set_yscale("symlog", linthresh=10.0**low, linscale=0.5)
    step = 1 if high - low <= 5 else 2
    decades = [10.0**n for n in range(high, low, -step)]
    ax.yaxis.set_major_locator(mpl.ticker.FixedLocator([-v for v in decades] + [0.0]
                                                       + decades[::-1]))
    ax.yaxis.set_minor_locator(mpl.ticker.NullLocator())


def _log(ax):
    """A log y axis that labels some minor ticks when it spans less than two decades."""
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(mpl.ticker.LogFormatterSciNotation(
        labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.tick_params(axis="y", which="minor", labelsize=9)


def _legend_panel(ax, colours, extra):
    handles = [mpl.lines.Line2D([], [], color=colour, lw=2, label=name)
               for name, colour in colours.items()]
    handles += [mpl.lines.Line2D([], [], color="0.2", ls=style, label=f"{kind} network")
                for kind, style in STYLES.items()]
    handles += extra
    handles += [mpl.patches.Patch(color=colour, alpha=0.25, label=part)
                for part, colour in PART_COLOURS.items()]
    handles.append(mpl.lines.Line2D([], [], color="0.25", ls=":", label=r"mean code $\mu$"))
    ax.set_axis_off()
    ax.legend(handles=handles, loc="center", frameon=False, fontsize=9)


def layer_profiles(measures, dataset: str):
    """Per class, volume, curvature (+/- parts), minimum reach and class distance against depth.

    ``measures`` is :func:`lib.studies.layer_geometry.layer_measures`. The
    volume is raw (the network's own scale); the other panels are measured
    after rescaling each layer's union of classes to volume 1, so that
    layers of different sizes compare. Trained network solid, untrained
    control dashed; NaN (a degenerate layer) leaves a gap.
    """
    table = measures[measures["dataset"] == dataset]
    layers = _layers(table)
    colours = palette(dict.fromkeys(table["class"]))
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(10.5, 7.2))
        axes = fig.subplots(2, 3, sharex=True)
        for ax, (column, scale, title, yscale) in zip(axes.flat, PANELS):
            part = table[table["scale"] == scale]
            for (label, kind), curve in part.groupby(["class", "network"], sort=False):
                curve = curve.sort_values("depth")
                style = dict(color=colours[label], ls=STYLES[kind], lw=1.3)
                if column == "parts":
                    # A part that is exactly 0 (S of one sign) has no place on a log axis.
                    positive = curve["curvature+"].where(curve["curvature+"] > 0)
                    negative = -curve["curvature-"].where(curve["curvature-"] < 0)
                    ax.plot(curve["depth"], positive, marker="^", ms=4, **style)
                    ax.plot(curve["depth"], negative, marker="v", ms=4, **style)
                else:
                    ax.plot(curve["depth"], curve[column], marker="o", ms=3, **style)
            if yscale == "symlog":
                _symlog(ax, part[column])
                ax.axhline(0, color="0.3", lw=0.7)
            else:
                _log(ax)
            ax.set_title(title, fontsize=10)
            # The bottom row, and the top right panel, which has the legend below it.
            _depth_axis(ax, layers, labels=ax in axes[1] or ax is axes[0, 2])
        _legend_panel(axes[1, 2], colours, [])
        dim = int(table["dim"].iloc[0])
        fig.suptitle(f"{dataset} (d = {dim}): each class through the beta-VAE; all panels but "
                     f"the volume after rescaling each layer to unit total volume", fontsize=11)
    return fig


def twonn_profiles(measures):
    """TwoNN dimension of each layer's point cloud per class, beside the grid's d."""
    table = measures[measures["scale"] == "raw"]
    datasets = list(dict.fromkeys(table["dataset"]))
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(4.2 * len(datasets) + 1.8, 4.0))
        grid = fig.add_gridspec(1, len(datasets) + 1, width_ratios=[4.2] * len(datasets) + [1.8])
        for index, dataset in enumerate(datasets):
            ax = fig.add_subplot(grid[0, index])
            part = table[table["dataset"] == dataset]
            colours = palette(dict.fromkeys(part["class"]))
            for (label, kind), curve in part.groupby(["class", "network"], sort=False):
                curve = curve.sort_values("depth")
                ax.plot(curve["depth"], curve["twonn"], color=colours[label], ls=STYLES[kind],
                        marker="o", ms=3, lw=1.3, label=label if kind == "trained" else None)
            dim = int(part["dim"].iloc[0])
            ax.axhline(dim, color="0.2", lw=1.0, ls="-.", label=f"grid d = {dim}")
            top = max(float(part["twonn"].max()), dim)
            ax.set(ylim=(0, 1.15 * top), title=f"{dataset}",
                   ylabel="TwoNN dimension" if index == 0 else "")
            _depth_axis(ax, _layers(part), labels=True)
            ax.legend(loc="lower left", ncols=2)
        legend = fig.add_subplot(grid[0, -1])
        handles = [mpl.lines.Line2D([], [], color="0.2", ls=style, label=f"{kind}")
                   for kind, style in STYLES.items()]
        handles += [mpl.patches.Patch(color=colour, alpha=0.25, label=part)
                    for part, colour in PART_COLOURS.items()]
        legend.set_axis_off()
        legend.legend(handles=handles, loc="center", frameon=False, title="network / part")
    return fig


def tangent_error_profiles(errors):
    """Relative error of finite-difference tangents and volume elements per layer, against autodiff.

    ``errors`` is :func:`lib.studies.layer_geometry.tangent_errors`: one dot
    per class and sample point, the median as a line; trained and untrained
    networks in two colours.
    """
    datasets = list(dict.fromkeys(errors["dataset"]))
    quantities = list(dict.fromkeys(errors["quantity"]))
    colours = palette(STYLES)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(5.2 * len(datasets), 3.0 * len(quantities) + 0.8))
        axes = fig.subplots(len(quantities), len(datasets), squeeze=False, sharex="col")
        for column, dataset in enumerate(datasets):
            for row, quantity in enumerate(quantities):
                ax = axes[row, column]
                part = errors[(errors["dataset"] == dataset) & (errors["quantity"] == quantity)]
                for kind, curve in part.groupby("network", sort=False):
                    offset = -0.12 if kind == "trained" else 0.12
                    ax.scatter(curve["depth"] + offset, curve["error"], s=9, alpha=0.45,
                               color=colours[kind], lw=0)
                    median = curve.groupby("depth")["error"].median()
                    ax.plot(median.index, median.values, color=colours[kind], ls=STYLES[kind],
                            lw=1.5, label=f"{kind} (median)")
                _log(ax)
                ax.set(title=f"{dataset}: {quantity}",
                       ylabel="relative error" if column == 0 else "")
                _depth_axis(ax, _layers(part), labels=row == len(quantities) - 1)
        handles, names = axes[0, 0].get_legend_handles_labels()
        handles += [mpl.patches.Patch(color=colour, alpha=0.25, label=part)
                    for part, colour in PART_COLOURS.items()]
        fig.legend(handles=handles, loc="outside lower center", ncols=4)
    return fig


def training_curves(history, *, target: float = 0.2):
    """Validation -ELBO and reconstruction ratio of each data set's beta-VAE against its steps.

    ``history`` is :func:`lib.studies.layer_geometry.training_history`: one
    column per data set, the line named by its objective; a dot marks the
    state kept, a cross where the run stopped, the dashed line the ratio
    ``target``.
    """
    return _training.training_curves(history, panel="dataset", hue="objective", target=target,
                                     hue_label="objective")
