"""Training curves with their stopping points: what every chapter that trains a network shows."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import seaborn as sns

from lib.figures._style import STYLE, new_figure, palette

__all__ = ["training_curves"]

METRIC_LABELS = {"val_neg_elbo": "validation $-$ELBO (nats)",
                 "val_excess": "validation objective above\npixel entropy (nats)",
                 "reconstruction_ratio": "reconstruction error\n/ mean image's"}
LOG_METRICS = ("val_excess", "reconstruction_ratio")


def training_curves(histories, *, panel: str, hue: str, metrics=("val_excess",
                                                               "reconstruction_ratio"),
                    target: float | None = None, hue_label: str | None = None):
    """One column per ``panel`` value, one row per metric, one line per ``hue`` value.

    ``histories`` is long: one row per evaluation with ``step``, the
    ``metrics`` columns, ``best_step`` (the state kept) and ``stopped`` (why
    the run ended) of its run, and the ``panel`` and ``hue`` columns. A dot
    marks the state kept, a cross the last evaluation; each panel's title says
    how many of its runs converged. ``target`` draws a dashed line on the last metric's axes (the
    reconstruction ratio a converged model should stay under).
    """
    panels = list(dict.fromkeys(histories[panel]))
    hues = list(dict.fromkeys(histories[hue]))
    colours = palette([str(h) for h in hues])
    with sns.axes_style("whitegrid"), mpl.rc_context(STYLE):
        fig = new_figure(figsize=(max(7.0, 3.6 * len(panels)), 2.6 * len(metrics) + 1.1))
        axes = fig.subplots(len(metrics), len(panels), squeeze=False, sharex="col")
        for column, name in enumerate(panels):
            part = histories[histories[panel] == name]
            for value in hues:
                run = part[part[hue] == value].sort_values("step")
                if run.empty:
                    continue
                colour = colours[str(value)]
                kept = run[run["step"] == run["best_step"].iloc[0]]
                label = f"{hue_label or hue} {value}"
                for row, metric in enumerate(metrics):
                    ax = axes[row, column]
                    ax.plot(run["step"], run[metric], color=colour, lw=1.4,
                            label=label if row == 0 else None)
                    ax.plot(kept["step"], kept[metric], "o", color=colour, ms=6)
                    ax.plot(run["step"].iloc[-1:], run[metric].iloc[-1:], "x", color=colour,
                            ms=7, mew=1.8)
            for row, metric in enumerate(metrics):
                ax = axes[row, column]
                ax.set_ylabel(METRIC_LABELS.get(metric, metric))
                if metric == "val_neg_elbo":
                    low, high = np.nanpercentile(part[metric], [0, 95])
                    ax.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
                if metric in LOG_METRICS:
                    ax.set_yscale("log")
                if metric == "reconstruction_ratio" and target is not None:
                    ax.axhline(target, color="0.3", ls="--", lw=1)
            stops = part.groupby(hue, sort=False)["stopped"].first()
            converged = int((stops == "converged").sum())
            axes[0, column].set_title(f"{name}\n{converged} of {len(stops)} runs converged")
            axes[-1, column].set_xlabel("optimiser step")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        for column in range(1, len(panels)):
            more, names = axes[0, column].get_legend_handles_labels()
            handles += more
            labels += names
        unique = dict(zip(labels, handles))
        unique["state kept"] = mpl.lines.Line2D([], [], color="0.3", marker="o", ls="")
        unique["last evaluation"] = mpl.lines.Line2D([], [], color="0.3", marker="x", ls="",
                                                     mew=1.8)
        if target is not None:
            unique[f"target ratio {target:g}"] = mpl.lines.Line2D([], [], color="0.3", ls="--",
                                                                  lw=1)
        fig.legend(unique.values(), unique.keys(), loc="outside lower center",
                   ncols=min(3, len(unique)))
    return fig
