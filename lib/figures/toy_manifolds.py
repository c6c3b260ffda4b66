"""Figures of the chapter "Toy manifolds"; each takes a study result and returns a Figure."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from lib.figures._style import STYLE, marker_handles, new_figure, palette

__all__ = ["curvature_gallery", "reach_profiles", "quadrature_convergence", "sampling"]

def _norm(values):
    """Diverging colours around 0 for curvature of both signs, sequential otherwise."""
    low, high = float(np.min(values)), float(np.max(values))
    if low < 0 < high:
        return TwoSlopeNorm(vcenter=0.0, vmin=low, vmax=high), "RdBu_r"
    if np.isclose(low, high):
        # A constant field: centre its single colour in a readable range.
        pad = 0.5 * abs(low) if low != 0 else 1.0
        return mpl.colors.Normalize(low - pad, high + pad), "viridis"
    return mpl.colors.Normalize(low, high), "viridis"


def _wrap(array, periodic):
    """Repeat the first sample at the end of every periodic axis so drawn surfaces close."""
    for axis, wraps in enumerate(periodic):
        if wraps:
            array = np.concatenate([array, np.take(array, [0], axis=axis)], axis=axis)
    return array


def curvature_gallery(fields) -> Figure:
    """Curves and surfaces coloured by their closed-form curvature, one panel each."""
    with sns.axes_style("white"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 6.2))
        columns = 3
        rows = int(np.ceil(len(fields) / columns))
        for index, field in enumerate(fields):
            norm, cmap = _norm(field.curvature)
            points = _wrap(field.points, field.periodic)
            colours = mpl.colormaps[cmap](norm(_wrap(field.curvature, field.periodic)))
            if field.points.shape[-1] == 2:
                ax = fig.add_subplot(rows, columns, index + 1)
                ax.plot(*points.T, color="0.85", lw=4, zorder=1)
                ax.scatter(*points.T, c=colours, s=14, zorder=2)
                ax.set_aspect("equal")
                ax.set_xlabel("$x_1$")
                ax.set_ylabel("$x_2$")
            else:
                ax = fig.add_subplot(rows, columns, index + 1, projection="3d")
                x, y, z = np.moveaxis(points, -1, 0)
                ax.plot_surface(x, y, z, facecolors=colours, rstride=1, cstride=1, linewidth=0,
                                antialiased=False, shade=True)
                ax.set_box_aspect((np.ptp(x), np.ptp(y), np.ptp(z)), zoom=1.5)
                ax.view_init(elev=25, azim=-60)
                ax.set_axis_off()
            mappable = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
            bar = fig.colorbar(mappable, ax=ax, shrink=0.7, label=field.label)
            bar.formatter.set_useOffset(False)
            ax.set_title(field.name)
    return fig


def reach_profiles(profiles) -> Figure:
    """Numerical local reach along one parameter; dashed: the closed-form global reach."""
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 3.4))
        axes = fig.subplots(1, len(profiles))
        for ax, profile in zip(np.atleast_1d(axes), profiles):
            ax.plot(profile.values, profile.local_reach, color="C0", marker=".",
                    label=r"local reach $\tau$ (Aamari formula, exact tangents)")
            ax.axhline(profile.reach, color="C3", ls="--", label="closed-form global reach")
            ax.set_xlabel(f"chart parameter {profile.parameter}")
            ax.set_title(profile.name)
            ax.set_ylim(0, 1.15 * max(profile.local_reach.max(), profile.reach))
        np.atleast_1d(axes)[0].set_ylabel(r"local reach $\tau$")
        handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig


def quadrature_convergence(table) -> Figure:
    """Relative quadrature error against grid spacing, log-log, one panel per quantity."""
    quantities = list(dict.fromkeys(table["quantity"]))
    manifolds = list(dict.fromkeys(table["manifold"]))
    colours = palette(manifolds)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 3.6))
        axes = fig.subplots(1, len(quantities), sharey=True)
        floor = 1e-16
        for ax, quantity in zip(np.atleast_1d(axes), quantities):
            part = table[table["quantity"] == quantity].copy()
            part["relative error"] = part["relative error"].clip(lower=floor)
            sns.lineplot(part, x="spacing", y="relative error", hue="manifold", marker="o",
                         ax=ax, palette=colours, legend=False)
            h = np.array(sorted(part["spacing"]))
            # Drawn a little above the data so the reference slope stays visible.
            anchor = 4 * part["relative error"].max() / h.max() ** 2
            ax.plot(h, anchor * h**2, color="0.4", ls=":")
            ax.set(xscale="log", yscale="log", title=quantity, xlabel="largest grid spacing h",
                   ylabel=f"relative error (floored at {floor:g})")
            # Decade labels only: minor labels on a short log axis collide.
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        handles = marker_handles(colours)
        handles.append(mpl.lines.Line2D([], [], color="0.4", ls=":", label=r"$\propto h^2$"))
        fig.legend(handles=handles, loc="outside right center")
    return fig


def sampling(checks) -> Figure:
    """Histograms of volume-uniform samples against the exact density of one coordinate."""
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 3.4))
        axes = fig.subplots(1, len(checks))
        for ax, check in zip(np.atleast_1d(axes), checks):
            ax.hist(check.values, bins=40, density=True, color="C0", alpha=0.6,
                    label=f"{len(check.values):,} volume-uniform samples")
            ax.plot(check.grid, check.density, color="C3", lw=2, label="exact density")
            ax.set_xlabel(check.coordinate)
            ax.set_ylabel("density")
            ax.set_title(f"{check.name}: Kolmogorov-Smirnov p = {check.ks_pvalue:.2f}")
            ax.set_ylim(0, None)
        handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2)
    return fig
