"""Figures of the chapter "The Representation Gap"."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns

from lib.figures._style import STYLE, marker_handles, new_figure, palette, panel_grid

__all__ = ["law_ratios", "slope_coverage", "denoiser_limit", "symmetry", "rotation_symmetry",
           "trained_gaps"]


def law_ratios(table):
    """Empirical RG over the asymptotic law against n: one panel per model family, one line per d."""
    families = list(dict.fromkeys(table["family"]))
    dims = sorted(table["d"].unique())
    colours = palette([f"d = {d}" for d in dims])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 3.2))
        axes = fig.subplots(1, len(families), sharey=True, squeeze=False)[0]
        for ax, family in zip(axes, families):
            part = table[table["family"] == family].assign(
                dimension=lambda t: t["d"].map(lambda d: f"d = {d}"))
            sns.lineplot(part, x="n", y="ratio", hue="dimension", palette=colours, marker="o",
                         markersize=3, errorbar=None, ax=ax, legend=False)
            ax.axhline(1.0, color="black", lw=0.8)
            ax.set(xscale="log", title=family, xlabel="training points n",
                   ylabel=r"RG$_n$ / asymptotic law" if ax is axes[0] else "")
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        fig.legend(handles=marker_handles(colours), loc="outside lower center", ncols=len(dims))
    return fig


def slope_coverage(table):
    """Every sample's RG-slope interval over d, raw and calibrated, one row per model.

    ``table`` is :func:`lib.studies.representation_gap.slope_coverage`; an
    interval that contains d crosses the vertical line at 1.
    """
    models = list(dict.fromkeys(table["model"]))
    colours = palette(["raw", "calibrated"])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(7.5, 0.32 * len(models) + 1.4))
        ax = fig.subplots()
        seeds = table["seed"].max() + 1
        for row, model in enumerate(models):
            part = table[table["model"] == model]
            d = part["true d"].to_numpy()
            for offset, (label, (mid, low, high)) in zip((-0.18, 0.18), {
                    "raw": ("raw", "raw low", "raw high"),
                    "calibrated": ("calibrated", "low", "high")}.items()):
                y = row + offset + 0.1 * (part["seed"].to_numpy() - (seeds - 1) / 2) / seeds
                ax.hlines(y, part[low] / d, part[high] / d, color=colours[label], lw=1.2)
                ax.plot(part[mid] / d, y, "o", markersize=2.5, color=colours[label])
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_yticks(range(len(models)), models)
        ax.invert_yaxis()
        ax.set(xlabel="estimated d / true d (95% interval of each sample)")
        fig.legend(handles=marker_handles(colours), loc="outside lower center", ncols=2)
    return fig


def denoiser_limit(table):
    """(test - train error of the optimal denoiser) / RG_n against the noise level, per n."""
    colours = palette([f"n = {n}" for n in sorted(table["n"].unique())])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(5.5, 3.4))
        ax = fig.subplots()
        for n, part in table.groupby("n"):
            ax.plot(part["sigma"], part["ratio"], marker="o", color=colours[f"n = {n}"])
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set(xscale="log", xlabel=r"noise level $\sigma$",
               ylabel="(test − train error) / RG$_n$")
        ax.legend(handles=marker_handles(colours), loc="lower left")
    return fig


def symmetry(table):
    """RG against n on the Clifford torus for each group, with the law's prediction dashed."""
    groups = list(dict.fromkeys(table["group"]))
    colours = palette(groups)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(5.5, 3.8))
        ax = fig.subplots()
        for group, part in table.groupby("group", sort=False):
            ax.plot(part["n"], part["gap"], marker="o", markersize=3, color=colours[group])
            ax.plot(part["n"], part["theory"], ls="--", lw=0.9, color=colours[group])
        ax.set(xscale="log", yscale="log", xlabel="training points n", ylabel=r"RG$_n$")
        handles = marker_handles(colours)
        handles.append(mpl.lines.Line2D([], [], color="0.3", ls="--", label="asymptotic law"))
        ax.legend(handles=handles, loc="lower left")
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    return fig



def rotation_symmetry(table):
    """RG of the dSprites heart against n per rotation-orbit size k, one panel per d.

    Guide lines over the fitted range (the larger half of n, as in
    :func:`lib.studies.representation_gap.fitted_exponents`): slope -2/d (no
    group) through the last point of the plain curve, slope -2/(d - 1) (the
    quotient by SO(2)) through the last point of the largest orbit's curve.
    """
    dims = sorted(table["d"].unique())
    colours = palette([f"k = {k}" for k in sorted(table["order"].unique())])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(4.2 * len(dims) + 1.2, 3.6))
        axes = fig.subplots(1, len(dims), squeeze=False)[0]
        for ax, d in zip(axes, dims):
            part = table[table["d"] == d]
            for order, curve in part.groupby("order"):
                ax.plot(curve["n"], curve["gap"], marker="o", markersize=3,
                        color=colours[f"k = {order}"])
            n = part["n"].unique()
            n = n[n >= np.sqrt(n.min() * n.max())]
            guides = ((-2 / d, "--", part["order"].min()), (-2 / (d - 1), ":", part["order"].max()))
            for exponent, style, order in guides:
                anchor = part[part["order"] == order]["gap"].iloc[-1]
                ax.plot(n, anchor * (n / n[-1]) ** exponent, color="black", lw=0.9, ls=style)
            ax.set(xscale="log", yscale="log", title=f"d = {d}", xlabel="training images n",
                   ylabel=r"RG$_n$" if ax is axes[0] else "")
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        handles = marker_handles(colours)
        handles += [mpl.lines.Line2D([], [], color="black", ls="--", label="slope −2/d"),
                    mpl.lines.Line2D([], [], color="black", ls=":", label="slope −2/(d−1)")]
        fig.legend(handles=handles, loc="outside right center")
    return fig


def trained_gaps(table):
    """Test-minus-train error of trained denoisers against n, beside RG_n and the optimal one.

    One panel per (family, d, sigma) of
    :func:`lib.studies.representation_gap.trained_denoisers`; per
    architecture (colour), the trained network's gap
    (median over seeds, dots), the optimal empirical denoiser's gap (dotted)
    and RG_n up to the architecture's group (thin line). A gap within twice
    its standard error of zero (the network generalizes: its test error is
    its training error, within noise) is drawn on the panel's floor as an
    open triangle.
    """
    panels = list(dict.fromkeys(zip(table["family"], table["dim"], table["sigma"])))
    architectures = list(dict.fromkeys(table["architecture"]))
    colours = palette(architectures)
    columns = min(3, len(panels))
    rows = int(np.ceil(len(panels) / columns))
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(3.4 * columns + 0.4, 2.9 * rows + 0.9))
        axes = panel_grid(fig, len(panels), columns=columns)
        for ax, (family, dim, sigma) in zip(axes, panels):
            part = table[(table["family"] == family) & (table["dim"] == dim)
                         & (table["sigma"] == sigma)]
            medians = part.groupby(["architecture", "n"], sort=False)[
                ["gap", "gap se", "optimal gap", "RG"]].median()
            values = medians[["gap", "optimal gap", "RG"]].to_numpy()
            positive = values[values > 0]
            floor = positive.min() / 3 if len(positive) else 1e-6
            for architecture in dict.fromkeys(part["architecture"]):
                curve = medians.loc[architecture]
                colour = colours[architecture]
                above = (curve["gap"] > 2 * curve["gap se"]) & (curve["gap"] > floor)
                ax.plot(curve.index[above], curve["gap"][above], "o-", color=colour, ms=4)
                ax.plot(curve.index[~above], np.full((~above).sum(), floor), "v", color=colour,
                        mfc="none", ms=6)
                ax.plot(curve.index, curve["RG"], "-", color=colour, lw=0.8, alpha=0.7)
                if curve["optimal gap"].notna().any():
                    ax.plot(curve.index, curve["optimal gap"].clip(lower=floor), ":",
                            color=colour, lw=1.4)
            ax.set(xscale="log", yscale="log", xlabel="training points n",
                   title=f"{family}, d = {dim}, sigma = {sigma:g}")
            sizes = sorted(part["n"].unique())
            step = max(1, len(sizes) // 4)        # at most about four labels per axis
            ax.set_xticks(sizes[::step], [str(size) for size in sizes[::step]])
            ax.xaxis.set_minor_locator(mpl.ticker.NullLocator())
            if ax in axes[::columns]:
                ax.set_ylabel("test - train error")
        handles = marker_handles(colours)
        handles += [mpl.lines.Line2D([], [], color="0.3", marker="o", label="trained (median)"),
                    mpl.lines.Line2D([], [], color="0.3", ls=":", lw=1.4,
                                     label="optimal empirical denoiser"),
                    mpl.lines.Line2D([], [], color="0.3", lw=0.8,
                                     label="RG$_n$ up to the group"),
                    mpl.lines.Line2D([], [], color="0.3", marker="v", mfc="none", ls="",
                                     label="gap within 2 SE of 0 (at the floor)")]
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig
