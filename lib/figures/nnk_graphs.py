"""Figures of the chapter "Neighbourhood graphs"."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns
from scipy.spatial import ConvexHull

from lib.figures._style import STYLE, marker_handles, new_figure, palette

__all__ = ["polytopes", "calibration", "propagation", "layer_epochs", "invariance", "channels",
           "beta_vae_layers"]


def polytopes(picture):
    """One node's kNN ball and NNK polytope in a 2-D sample."""
    points, node = picture["points"], picture["node"]
    centre = points[node]
    knn, nnk = points[picture["knn"]], points[picture["nnk"]]
    radius = np.linalg.norm(knn - centre, axis=1).max()
    with sns.axes_style("white"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(5.4, 5.0))
        ax = fig.subplots()
        ax.scatter(*points.T, s=8, color="0.75", zorder=1)
        ax.add_patch(mpl.patches.Circle(centre, radius, fill=False, ls="--", color="C0"))
        ax.scatter(*knn.T, s=22, color="C0", zorder=2, label=f"k = {len(knn)} nearest")
        hull = ConvexHull(nnk) if len(nnk) >= 3 else None
        if hull is not None:
            ax.add_patch(mpl.patches.Polygon(nnk[hull.vertices], closed=True, alpha=0.15,
                                             color="C1", lw=0))
        for neighbour in nnk:
            ax.plot(*np.c_[centre, neighbour], color="C1", lw=1.2, zorder=2)
        ax.scatter(*nnk.T, s=40, color="C1", zorder=3, label=f"{len(nnk)} NNK neighbours")
        ax.scatter(*centre, s=70, color="C3", marker="*", zorder=4, label="node")
        pad = 1.3 * radius
        ax.set(xlim=(centre[0] - pad, centre[0] + pad), ylim=(centre[1] - pad, centre[1] + pad),
               aspect="equal", xticks=[], yticks=[])
        ax.legend(loc="lower left", framealpha=0.9)
    return fig


def calibration(table):
    """Estimated against true dimension, one panel per estimator, coloured by data family."""
    estimators = ["d from degree", "NNK local PCA d", "TwoNN", "MLE (k=10)"]
    colours = palette(list(dict.fromkeys(table["family"])))
    top = max(table["true d"].max(), table[estimators].to_numpy().max()) + 0.5
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(10, 3.2))
        axes = fig.subplots(1, len(estimators), sharex=True, sharey=True)
        for ax, estimator in zip(axes, estimators):
            ax.plot([0.5, top], [0.5, top], color="black", lw=0.8)
            jitter = {family: 0.12 * (i - 1) for i, family in enumerate(colours)}
            for family, part in table.groupby("family", sort=False):
                ax.scatter(part["true d"] + jitter[family], part[estimator], s=22,
                           color=colours[family])
            ax.set(title=estimator, xlabel="true d", xlim=(0.5, top), ylim=(0.5, top))
            ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        axes[0].set_ylabel("estimated d")
        fig.legend(handles=marker_handles(colours), loc="outside right center")
    return fig


def propagation(table):
    """Label propagation accuracy against k, NNK and kNN, one panel per labelled fraction."""
    fractions = sorted(table["fraction"].unique())
    colours = {"NNK": "C1", "NNK, max rule": "C2", "kNN": "C0"}
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(3.4 * len(fractions) + 1.2, 3.3))
        axes = fig.subplots(1, len(fractions), sharey=True, squeeze=False)[0]
        for ax, fraction in zip(axes, fractions):
            part = table[table["fraction"] == fraction]
            for graph, rows in part.groupby("graph"):
                stats = rows.groupby("k")["accuracy"].agg(["mean", "min", "max"])
                ax.plot(stats.index, stats["mean"], marker="o", markersize=3,
                        color=colours[graph])
                ax.fill_between(stats.index, stats["min"], stats["max"], color=colours[graph],
                                alpha=0.15, lw=0)
            ks = sorted(part["k"].unique())
            ax.set(xscale="log", title=f"{fraction:.0%} labelled", xlabel="neighbours k")
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        axes[0].set_ylabel("accuracy on unlabelled digits")
        fig.legend(handles=marker_handles(colours), loc="outside right center")
    return fig


def layer_epochs(table):
    """NNK degree, polytope diameter and LOO error per layer against epochs, mean over seeds."""
    layers = list(dict.fromkeys(table.sort_values("depth")["layer"]))
    colours = palette(layers)
    metrics = ["NNK degree", "polytope diameter", "LOO error"]
    mean = table.groupby(["layer", "epoch"], sort=False)[metrics + ["test error"]].mean()
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(10, 3.3))
        axes = fig.subplots(1, len(metrics))
        for ax, metric in zip(axes, metrics):
            for layer in layers:
                part = mean.loc[layer]
                ax.plot(part.index, part[metric], marker="o", markersize=3, color=colours[layer])
            ax.set(title=metric, xlabel="epoch")
            ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
        model = mean.loc[layers[0]]["test error"]
        axes[-1].plot(model.index, model, color="black", ls="--", lw=1.2)
        handles = marker_handles(colours) + [mpl.lines.Line2D([], [], color="black", ls="--",
                                                              label="network's test error")]
        fig.legend(handles=handles, loc="outside right center")
    return fig


def invariance(table):
    """Orbit spread and own-orbit NNK neighbours per layer, with and without augmentation."""
    models = list(dict.fromkeys(table["augmentation"]))
    accuracy = table.groupby("augmentation")["rotated accuracy"].first()
    names = {m: f"augmentation {m} (rotated accuracy {accuracy[m]:.0%})" for m in models}
    colours = palette(names.values())
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 3.6))
        axes = fig.subplots(1, 2)
        for ax, metric in zip(axes, ("orbit spread", "own-orbit neighbours")):
            for model, part in table.groupby("augmentation", sort=False):
                part = part.sort_values("depth")
                ax.plot(part["layer"], part[metric], marker="o", color=colours[names[model]])
            ax.set(title=metric, xlabel="layer")
        axes[0].set_ylabel("median over digits")
        axes[1].set_ylabel("mean over rotated copies")
        fig.legend(handles=marker_handles(colours), loc="outside lower center", ncols=1)
    return fig


def channels(table, per_seed):
    """The stopping criteria against epochs, mean over seeds, with each rule's chosen epochs.

    ``table`` is :func:`lib.studies.nnk_graphs.channel_epochs`, ``per_seed``
    :func:`lib.studies.nnk_graphs.stopping_epochs`. Left: the network's errors
    (training, against the labels it trains on; validation; test) and the NNK
    leave-one-out errors, mean over the seeds that trained that epoch; markers
    on the test-error curve at the epoch each rule keeps, one per seed. Right:
    frozen channels of the channel-wise rule and the channels' overlap.
    """
    series = (("train error (running)", "0.5", ":"), ("validation error", "C0", "--"),
              ("test error", "black", "-"), ("NNK LOO error", "C2", "-"),
              ("channel LOO error", "C1", "-"))
    mean = table.groupby("epoch").mean(numeric_only=True)
    rules = {rule: (marker, colour) for rule, marker, colour in zip(
        per_seed["rule"].unique(), ("o", "s", "^", "D", "x", "*"),
        ("C0", "C4", "C2", "C1", "0.4", "C3"))}
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(10, 3.8))
        left, right = fig.subplots(1, 2, width_ratios=(1.6, 1))
        for column, colour, style in series:
            left.plot(mean.index, mean[column], color=colour, ls=style, lw=1.4, label=column)
        for rule, (marker, colour) in rules.items():
            picks = per_seed[per_seed["rule"] == rule]
            left.scatter(picks["epoch"], picks["test error"], marker=marker, s=36,
                         color=colour, zorder=3, label=f"kept by: {rule}")
        left.set(xlabel="epoch", ylabel="error (mean over seeds)",
                 title="criteria and the epochs the rules keep")
        fig.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncols=3)
        for replicate, part in table.groupby("replicate"):
            right.plot(part["epoch"], part["frozen channels"] / part["channels"], color="C1",
                       lw=1.0, alpha=0.8, label="frozen channels (share)" if replicate == 0
                       else None)
            right.plot(part["epoch"], part["channel overlap"], color="C2", lw=1.0, ls="--",
                       label="channel overlap (Jaccard)" if replicate == 0 else None)
        right.set(xlabel="epoch", ylim=(0, 1.02), title="channel-wise rule, each seed")
        right.legend(loc="center right")
        for ax in (left, right):
            ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))
    return fig


def beta_vae_layers(table):
    """NNK degree, local PCA dimension and TwoNN per layer of each beta-VAE, against the true d."""
    datasets = list(dict.fromkeys(table["dataset"]))
    colours = palette(datasets)
    metrics = ("NNK degree", "NNK local PCA d", "TwoNN", "LOO error")
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(8.5, 7.4))
        axes = fig.subplots(2, 2, sharex=True).ravel()
        for ax, metric in zip(axes, metrics):
            for dataset, part in table.groupby("dataset", sort=False):
                part = part.sort_values("depth")
                ax.plot(part["depth"], part[metric], marker="o", markersize=3,
                        color=colours[dataset])
                if metric in ("NNK local PCA d", "TwoNN"):
                    ax.axhline(part["true d"].iloc[0], color=colours[dataset], ls=":", lw=1)
            ax.set(title=metric)
        layers = table.drop_duplicates("depth").sort_values("depth")
        for ax in axes:
            ax.set_xticks(layers["depth"], layers["layer"], rotation=90)
        handles = marker_handles(colours) + [mpl.lines.Line2D([], [], color="0.3", ls=":",
                                                              label="true d")]
        fig.legend(handles=handles, loc="outside right center")
    return fig
