"""Figures of the chapter "How fast can a manifold be learned?" (paper figs 3-5)."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns

from lib.figures import _training
from lib.figures._style import STYLE, new_figure, palette, panel_grid

__all__ = ["error_curves", "estimator_comparison", "exponent_chart", "training_curves"]

SHAPE_LABELS = {"genovese_lower": r"Genovese lower $n^{-2/(2+d)}$",
                "genovese_upper": r"Genovese upper $(\log n/n)^{2/(2+d)}$",
                "fefferman": r"Fefferman-type $(\log n/n)^{1/d}$"}
SHAPE_STYLES = {"genovese_lower": (0, (4, 2)), "genovese_upper": (0, (1, 1.5)),
                "fefferman": (0, (6, 2, 1, 2))}
ESTIMATOR_LABELS = {"local-1": "local projection, order 1", "local-2": "local projection, order 2",
                    "beta-vae": "beta-VAE"}


def _title(dataset, dim):
    return f"{dataset}, d = {dim}"


def _log_axes(ax, *, ylabel):
    ax.set(xscale="log", yscale="log", xlabel="training points n", ylabel=ylabel)
    # Labelled minor ticks (3x10^1, 4x10^1, ...) run into each other along x; along y they
    # stack and are the only labels of a panel spanning less than a decade.
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def error_curves(errors, curves, cases, *, estimator="local-1", error="hausdorff"):
    """Error against training size per (data set, d): seeds as dots, median line, rate shapes.

    ``errors`` is the study's error table, ``curves`` its :func:`rate_curves`
    table; one panel per (dataset, dim) pair of ``cases``.
    """
    colours = palette(SHAPE_LABELS)
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(max(7.0, 2.6 * min(4, len(cases)) + 0.4),
                                  2.6 * int(np.ceil(len(cases) / 4)) + 0.9))
        axes = panel_grid(fig, len(cases))
        for ax, (dataset, dim) in zip(axes, cases):
            part = errors[(errors.dataset == dataset) & (errors.dim == dim)
                          & (errors.estimator == estimator)]
            ax.scatter(part["n_train"], part[error], s=8, color="0.55", zorder=3,
                       label="one seed")
            median = part.groupby("n_train")[error].median()
            ax.plot(median.index, median.to_numpy(), color="black", lw=1.4, zorder=4,
                    label="median over seeds")
            shapes = curves[(curves.dataset == dataset) & (curves.dim == dim)
                            & (curves.estimator == estimator)]
            for shape, line in shapes.groupby("shape", sort=False):
                ax.plot(line["n_train"], line["value"], color=colours[shape],
                        ls=SHAPE_STYLES[shape], lw=1.2, label=SHAPE_LABELS[shape])
            _log_axes(ax, ylabel="Hausdorff proxy" if error == "hausdorff" else "mean error")
            ax.set_title(_title(dataset, dim))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=3)
    return fig


def estimator_comparison(errors, cases, *, estimators=("local-1", "local-2", "beta-vae"),
                         error="hausdorff"):
    """Median error (band: min to max over seeds) per estimator, one panel per (data set, d)."""
    colours = palette([ESTIMATOR_LABELS[e] for e in estimators])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        rows = int(np.ceil(len(cases) / 3))
        fig = new_figure(figsize=(max(6.0, 3.4 * min(3, len(cases)) + 0.4), 3.0 * rows + 0.6))
        axes = panel_grid(fig, len(cases), columns=3)
        for ax, (dataset, dim) in zip(axes, cases):
            for estimator in estimators:
                part = errors[(errors.dataset == dataset) & (errors.dim == dim)
                              & (errors.estimator == estimator)]
                if part.empty:
                    continue
                stats = part.groupby("n_train")[error].agg(["median", "min", "max"])
                colour = colours[ESTIMATOR_LABELS[estimator]]
                ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.2,
                                lw=0)
                ax.plot(stats.index, stats["median"], marker="o", ms=3, color=colour,
                        label=ESTIMATOR_LABELS[estimator])
            _log_axes(ax, ylabel="Hausdorff proxy" if error == "hausdorff" else "mean error")
            ax.set_title(_title(dataset, dim))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)))
    return fig


def exponent_chart(exponents, *, estimators=("local-1", "local-2")):
    """Fitted exponents with 95% intervals per (data set, d), beside the theoretical exponents.

    One panel per error (Hausdorff proxy, mean distance), cases sorted by d.
    """
    table = exponents[exponents.estimator.isin(estimators)].copy()
    table["case"] = [_title(a, b) for a, b in zip(table.dataset, table.dim)]
    cases = list(dict.fromkeys(table.sort_values(["dim", "dataset"])["case"]))
    position = {case: i for i, case in enumerate(cases)}
    colours = palette([ESTIMATOR_LABELS[e] for e in estimators])
    theory = {"theory_genovese": ("-2/(2+d)", "v"), "theory_fefferman": ("-1/d", "^"),
              "theory_noiseless": ("-2/d", "s"), "theory_second_order": ("-3/d", "D")}
    errors = list(dict.fromkeys(table["error"]))
    titles = {"hausdorff": "Hausdorff proxy (max over test points)",
              "mean": "mean distance over test points"}
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        # One row per error, so that each panel gets the page's full width.
        fig = new_figure(figsize=(max(7.0, 0.55 * len(cases) + 2.5), 3.0 * len(errors) + 1.6))
        axes = fig.subplots(len(errors), 1, sharex=True, squeeze=False)[:, 0]
        offsets = np.linspace(-0.15, 0.15, len(estimators))
        for ax, error in zip(axes, errors):
            part_error = table[table["error"] == error]
            for offset, estimator in zip(offsets, estimators):
                part = part_error[part_error.estimator == estimator]
                x = np.array([position[c] for c in part["case"]]) + offset
                colour = colours[ESTIMATOR_LABELS[estimator]]
                ax.errorbar(x, part["exponent"], yerr=[part["exponent"] - part["ci_low"],
                                                       part["ci_high"] - part["exponent"]],
                            fmt="o", ms=5, color=colour, capsize=2,
                            label=ESTIMATOR_LABELS[estimator])
            first = part_error.drop_duplicates("case")
            x = np.array([position[c] for c in first["case"]])
            for column, (label, marker) in theory.items():
                ax.scatter(x + 0.32, first[column], marker=marker, s=22, facecolors="none",
                           edgecolors="0.3", label=f"theory {label}")
            ax.set_xticks(range(len(cases)), cases, rotation=40, ha="right")
            ax.set(title=titles.get(error, error), ylabel="exponent b in error ~ n^b")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=3)
    return fig


def training_curves(histories, *, target: float = 0.2):
    """The stopping criterion and the reconstruction ratio of every beta-VAE against its steps.

    One column per (data set, d), one line per training fraction; a dot marks
    the state kept, a cross where the run stopped (``study.vae_histories``),
    the dashed line the ratio ``target``.
    """
    histories = histories.assign(case=[_title(a, b) for a, b in
                                       zip(histories.dataset, histories.dim)])
    return _training.training_curves(histories, panel="case", hue="fraction", target=target,
                                     hue_label="fraction")
