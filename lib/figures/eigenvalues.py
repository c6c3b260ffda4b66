"""Figures of the chapter "Eigenvalues as predictors of generalization".

Each figure is a group-by over the per-point table of
:func:`lib.studies.eigenvalues.point_tables` or over the regression tables,
plotted against the latent dimension d, one colour per depth n.
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns

from lib.figures._style import STYLE, marker_handles, new_figure, palette

__all__ = ["eigenvalue_differences", "arguments", "spectral_means", "class_means",
           "small_and_reversing", "slope_curves", "paper_comparison", "training_curves",
           "training_length", "training_size"]

SPACE_NAMES = {"L": r"latent space, $J_\mathcal{L}$", "I": r"input space, $J_\mathcal{I}$"}


def _depths(table):
    return palette([f"n = {n}" for n in sorted(table["depth"].unique())])


def _classes(labels):
    """Digit colours from a palette that shares no colour with the depths' tab10."""
    names = [f"digit {k}" for k in sorted(labels)]
    return dict(zip(names, sns.color_palette("husl", len(names))))


def _integer_d(axes):
    for ax in np.ravel(axes):
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(integer=True))


def _median_band(ax, table, column, colours):
    """Median over points (line) and interquartile range (band) per depth against d."""
    for depth, part in table.groupby("depth"):
        stats = part.groupby("latent_dim")[column].quantile([0.25, 0.5, 0.75]).unstack()
        colour = colours[f"n = {depth}"]
        ax.plot(stats.index, stats[0.5], marker="o", markersize=3, color=colour)
        ax.fill_between(stats.index, stats[0.25], stats[0.75], color=colour, alpha=0.15, lw=0)
    ax.set_xlabel("latent dimension d")


def eigenvalue_differences(points):
    """Fig. 2: r1 and r2 between the input- and latent-space spectra against d."""
    colours = _depths(points)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(8, 3.2))
        axes = fig.subplots(1, 2, sharey=True)
        for ax, column, label in zip(axes, ("r1", "r2"), (r"$r_1 = |\lambda_\mathcal{I} - "
                                                        r"\lambda_\mathcal{L}|_1 / d$",
                                                        r"$r_2 = |\lambda_\mathcal{I} - "
                                                        r"\lambda_\mathcal{L}|_2 / d$")):
            _median_band(ax, points, column, colours)
            ax.set(yscale="log", title=label)
        axes[0].set_ylabel("median and quartiles over digits")
        _integer_d(axes)
        fig.legend(handles=marker_handles(colours), loc="outside right center")
    return fig


def arguments(points):
    """Fig. 3: distribution of the eigenvalues' arguments, latent space per depth and ``|arg|`` input."""
    colours = _depths(points)
    bins = np.linspace(-np.pi, np.pi, 73)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(8, 3.2))
        left, right = fig.subplots(1, 2)
        for depth, part in points.groupby("depth"):
            for ax, column, fold in ((left, "arg_L", False), (right, "arg_I", True)):
                angles = np.concatenate(part[column].to_numpy())
                if fold:
                    angles = np.abs(angles)
                ax.hist(angles, bins=bins[36:] if fold else bins, density=True,
                        histtype="step", lw=1.3, color=colours[f"n = {depth}"])
        left.set(yscale="log", xlabel=r"arg $\lambda_\mathcal{L}$ (rad)", ylabel="density",
                 title="latent space")
        right.set(yscale="log", xlabel=r"|arg $\lambda_\mathcal{I}$| (rad)",
                  title="input space: angle of rotation")
        fig.legend(handles=marker_handles(colours), loc="outside right center")
    return fig


def spectral_means(points):
    """Figs. 4-5 (top, bottom): arithmetic and geometric means of the eigenvalues against d."""
    colours = _depths(points)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(8, 5.6))
        axes = fig.subplots(2, 2, sharex=True)
        for row, (kind, label) in enumerate((("arithmetic", "arithmetic mean Tr J / d"),
                                             ("geometric", r"geometric mean $|\omega|^{1/d}$"))):
            for col, tag in enumerate(("L", "I")):
                ax = axes[row, col]
                _median_band(ax, points, f"{kind}_{tag}", colours)
                ax.axhline(1.0, color="black", lw=0.8)
                ax.set(title=SPACE_NAMES[tag] if row == 0 else "",
                       ylabel=label if col == 0 else "", xlabel="latent dimension d" if row else "")
        _integer_d(axes)
        fig.legend(handles=marker_handles(colours), loc="outside right center")
    return fig


def class_means(points, depth=4):
    """Figs. 4-5 (centre): median arithmetic and geometric mean per digit class, latent space."""
    part = points[(points["depth"] == depth) & (points["replicate"] == 0)]
    colours = _classes(part["label"].unique())
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(8, 3.4))
        axes = fig.subplots(1, 2)
        for ax, kind, label in zip(axes, ("arithmetic", "geometric"),
                                   ("arithmetic mean Tr J / d", r"geometric mean $|\omega|^{1/d}$")):
            medians = part.groupby(["label", "latent_dim"])[f"{kind}_L"].median().unstack(0)
            for digit in medians.columns:
                ax.plot(medians.index, medians[digit], marker="o", markersize=3,
                        color=colours[f"digit {digit}"], lw=2.2 if digit == 1 else 1.0)
            ax.set(xlabel="latent dimension d", ylabel=f"median {label}")
        axes[0].set_title(f"latent space, n = {depth}", loc="left")
        _integer_d(axes)
        fig.legend(handles=marker_handles(colours), loc="outside right center")
    return fig


def small_and_reversing(points):
    """Figs. 6-7: eigenvalues of modulus < 0.1 per digit, and the share of orientation reversal."""
    colours = _depths(points)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 3.4))
        left, right = fig.subplots(1, 2)
        for depth, part in points.groupby("depth"):
            mean = part.groupby("latent_dim")["small_L"].mean()
            left.plot(mean.index, mean, marker="o", markersize=3, color=colours[f"n = {depth}"])
        left.set(xlabel="latent dimension d", ylabel=r"mean #{$|\lambda_\mathcal{L}| < 0.1$}",
                 title="near-zero eigenvalues")
        styles = {"train": "-", "test": "--"}
        for (depth, split), part in points.groupby(["depth", "split"]):
            for tag, marker in (("L", "o"), ("I", "s")):
                share = part.groupby("latent_dim")[f"sign_{tag}"].apply(lambda s: (s < 0).mean())
                right.plot(share.index, share, ls=styles[split], marker=marker, markersize=3,
                           color=colours[f"n = {depth}"])
        right.set(xlabel="latent dimension d", ylabel=r"share of digits with $\omega < 0$",
                  title="orientation reversing")
        _integer_d([left, right])
        handles = marker_handles(colours) + [
            mpl.lines.Line2D([], [], color="0.3", ls="-", label="train"),
            mpl.lines.Line2D([], [], color="0.3", ls="--", label="test"),
            mpl.lines.Line2D([], [], color="0.3", marker="o", ls="", label=r"$J_\mathcal{L}$"),
            mpl.lines.Line2D([], [], color="0.3", marker="s", ls="", label=r"$J_\mathcal{I}$")]
        fig.legend(handles=handles, loc="outside right center")
    return fig


def slope_curves(fits, class_fits):
    """Figs. 8-9: test slopes of both regressions against d, per depth and per class (latent space).

    Left: every fit of the latent space, mean over replicates with the extreme
    replicates' 95% intervals as the band. Right: separate fits within each
    digit class (first replicate, depth of ``class_fits``).
    """
    colours = _depths(fits)
    classes = _classes(class_fits["label"].unique())
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(9, 5.8))
        axes = fig.subplots(2, 2, sharex=True, sharey="row")
        for row, predictor in enumerate(("log omega", "trace")):
            latent = fits[(fits["space"] == "latent") & (fits["predictor"] == predictor)]
            ax = axes[row, 0]
            for depth, part in latent.groupby("depth"):
                agg = part.groupby("latent_dim").agg(mean=("test_slope", "mean"),
                                                     low=("test_slope_low", "min"),
                                                     high=("test_slope_high", "max"))
                colour = colours[f"n = {depth}"]
                ax.plot(agg.index, agg["mean"], marker="o", markersize=3, color=colour)
                ax.fill_between(agg.index, agg["low"], agg["high"], color=colour, alpha=0.15, lw=0)
            name = r"log $\omega_\mathcal{L}$" if predictor == "log omega" else r"Tr $J_\mathcal{L}$"
            ax.set(ylabel=f"test slope on {name}\n(SD of MSE per SD)")
            per_class = class_fits[(class_fits["space"] == "latent")
                                   & (class_fits["predictor"] == predictor)]
            for digit, part in per_class.groupby("label"):
                axes[row, 1].plot(part["latent_dim"], part["test_slope"], marker="o", markersize=3,
                                  color=classes[f"digit {digit}"], lw=2.2 if digit == 1 else 1.0)
            for ax in axes[row]:
                ax.axhline(0.0, color="black", lw=0.8)
        axes[0, 0].set_title("all digits, per depth")
        axes[0, 1].set_title("per class (separate fits)")
        _integer_d(axes)
        for ax in axes[1]:
            ax.set_xlabel("latent dimension d")
        fig.legend(handles=marker_handles(colours) + marker_handles(classes),
                   loc="outside right center")
    return fig


def paper_comparison(table):
    """Our test slopes (with intervals) against the paper's Tables 1-2, per space and table."""
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(8, 5.4))
        axes = fig.subplots(2, 2, sharex=True, sharey=True)
        for row, number in enumerate((1, 2)):
            for col, space in enumerate(("latent", "input")):
                ax = axes[row, col]
                part = table[(table["table"] == number) & (table["space"] == space)]
                ax.plot(part["latent_dim"], part["ours"], marker="o", markersize=3,
                        color="C0", label="ours")
                ax.fill_between(part["latent_dim"], part["low"], part["high"], color="C0",
                                alpha=0.2, lw=0)
                ax.plot(part["latent_dim"], part["paper"], marker="s", markersize=4, ls="--",
                        color="C3", label="paper")
                ax.axhline(0.0, color="black", lw=0.8)
                predictor = "log volume form" if number == 1 else "trace"
                ax.set_title(f"Table {number} ({predictor}), {space} space", fontsize=10)
                if row == 1:
                    ax.set_xlabel("latent dimension d")
                if col == 0:
                    ax.set_ylabel("test slope")
        axes[0, 0].legend(loc="upper left")
        _integer_d(axes)
    return fig


def training_curves(histories, records):
    """Held-out MSE per epoch of every autoencoder, one panel per depth, with its stopping point.

    ``histories`` and ``records`` are :func:`lib.studies.eigenvalues.training_runs`'
    tables. A dot marks the epoch whose state is kept (lowest held-out MSE), a
    cross the epoch the run stopped at; the training loss is drawn thin and
    dotted. Replicates of one latent dimension share its colour. Each panel's
    title counts the runs that converged.
    """
    depths = sorted(histories["depth"].unique())
    dims = sorted(histories["latent_dim"].unique())
    colours = palette([f"d = {d}" for d in dims])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(max(7.0, 3.3 * len(depths)), 3.4))
        axes = np.atleast_1d(fig.subplots(1, len(depths), sharey=True, squeeze=False)[0])
        for ax, depth in zip(axes, depths):
            runs = records[records["depth"] == depth]
            for _, run in runs.iterrows():
                history = histories[(histories["depth"] == depth)
                                    & (histories["latent_dim"] == run["latent_dim"])
                                    & (histories["replicate"] == run["replicate"])]
                colour = colours[f"d = {run['latent_dim']}"]
                if "val_loss" in history:
                    ax.plot(history["epoch"], history["val_loss"], color=colour, lw=1.2)
                    kept = history[history["epoch"] == run["best epoch"]]
                    ax.plot(kept["epoch"], kept["val_loss"], "o", color=colour, ms=5)
                    ax.plot(history["epoch"].iloc[-1:], history["val_loss"].iloc[-1:], "x",
                            color=colour, ms=7, mew=1.6)
                ax.plot(history["epoch"], history["train_loss"], color=colour, lw=0.7, ls=":")
            converged = int((runs["stopped"] == "converged").sum())
            ax.set(xlabel="epoch", yscale="log",
                   title=f"n = {depth}: {converged} of {len(runs)} converged")
        axes[0].set_ylabel("held-out MSE (line), training MSE (dotted)")
        handles = marker_handles(colours) + [
            mpl.lines.Line2D([], [], color="0.3", marker="o", ls="", label="state kept"),
            mpl.lines.Line2D([], [], color="0.3", marker="x", ls="", label="stopped")]
        fig.legend(handles=handles, loc="outside right center")
    return fig


LENGTH_PANELS = (("small eigenvalues, latent", r"mean #{$|\lambda_\mathcal{L}| < 0.1$}"),
                 ("small eigenvalues, input", r"mean #{$|\lambda_\mathcal{I}| < 0.1$}"),
                 ("omega < 0, latent", r"share with $\omega_\mathcal{L} < 0$"),
                 ("omega < 0, input", r"share with $\omega_\mathcal{I} < 0$"),
                 ("test slope, log omega, latent", r"test slope on log $\omega_\mathcal{L}$"),
                 ("test slope, log omega, input", r"test slope on log $\omega_\mathcal{I}$"),
                 ("test slope, trace, latent", r"test slope on Tr $J_\mathcal{L}$"),
                 ("test slope, trace, input", r"test slope on Tr $J_\mathcal{I}$"))


def _statistic_panels(summary, x, xlabel, *, kept_states):
    """One panel per statistic of LENGTH_PANELS against ``x``, a line and band per d."""
    dims = sorted(summary["latent_dim"].unique())
    colours = palette([f"d = {d}" for d in dims])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        # A statistic per row, latent and input space side by side: narrow enough to be
        # read at the page's width.
        fig = new_figure(figsize=(7.5, 9.0))
        axes = fig.subplots(4, 2, sharex=True)
        for ax, (statistic, label) in zip(axes.ravel(), LENGTH_PANELS):
            for d in dims:
                colour = colours[f"d = {d}"]
                splits = ((", test", "-"), (", train", "--")) if "omega < 0" in statistic else (
                    ("", "-"),)
                for suffix, style in splits:
                    part = summary[(summary["latent_dim"] == d)
                                   & (summary["statistic"] == statistic + suffix)]
                    curve = part.sort_values(x)
                    ax.plot(curve[x], curve["mean"], color=colour, ls=style, lw=1.2,
                            marker=None if kept_states else "o", ms=4,
                            mfc="white" if style == "--" else colour)
                    if style == "-":
                        low, high = curve["low"], curve["high"]
                        if "omega < 0" in statistic:   # a share: the t band is clipped to [0, 1]
                            low, high = low.clip(0, 1), high.clip(0, 1)
                        ax.fill_between(curve[x], low, high, color=colour, alpha=0.15, lw=0)
                    if kept_states:
                        kept = part[part["stage"] == "kept"]
                        ax.plot(kept[x], kept["mean"], "o", color=colour, ms=6,
                                mfc="white" if style == "--" else colour)
            if statistic.startswith("test slope"):
                ax.axhline(0.0, color="black", lw=0.8)
                # Bands of early epochs (few digits with omega > 0) can span +-5: the axis
                # follows the means, the bands are cut at its edges.
                means = summary.loc[summary["statistic"] == statistic, "mean"].dropna()
                if len(means):
                    pad = 0.3 * max(means.max() - means.min(), 0.5)
                    ax.set_ylim(min(means.min(), 0) - pad, max(means.max(), 0) + pad)
            ax.set(xscale="log", ylabel=label)
            if not kept_states:   # a few shares, often within one decade: a tick at each
                ax.set_xticks(sorted(summary[x].unique()))
            ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        for ax in axes[-1]:
            ax.set_xlabel(xlabel)
        handles = marker_handles(colours)
        if kept_states:
            handles.append(mpl.lines.Line2D([], [], color="0.3", marker="o", ls="",
                                            label="state kept"))
        handles += [mpl.lines.Line2D([], [], color="0.3", ls="-", label="test digits"),
                    mpl.lines.Line2D([], [], color="0.3", ls="--", label="training digits")]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4))
    return fig


def training_length(summary):
    """The statistics of Figs 6-7 and the Table 1-2 test slopes against training epochs.

    ``summary`` is :func:`lib.studies.eigenvalues.length_summary`'s table:
    mean over seeds (line) and 95% interval (band) per latent dimension at each
    checkpoint; the state each run kept is the larger marker at the seeds' mean
    best epoch. Reversal shares: test digits solid, training digits dashed.
    The test-slope axes follow the means; wider bands are cut at their edges.
    """
    return _statistic_panels(summary, "epoch", "training epochs", kept_states=True)


def training_size(summary):
    """The statistics of Figs 6-7 and the Table 1-2 test slopes against training digits.

    ``summary`` is :func:`lib.studies.eigenvalues.size_summary`'s table: mean
    over seeds (line, a marker per share) and 95% interval (band) per latent
    dimension, against the digits each model was given (log scale), every
    model in the state it kept at convergence. Reversal shares: test digits
    solid, training digits dashed.
    """
    return _statistic_panels(summary, "n_train", "training digits", kept_states=False)
