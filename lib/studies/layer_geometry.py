r"""Chapter "What a network does to the data manifold": the geometry of every layer of a beta-VAE.

The second application study of Koulakis & Seibold (their Fig. 6). Every
image of a parameter grid goes through a beta-VAE; each named layer
:math:`\ell` (input, the encoder blocks, the mean code mu, the decoder blocks,
output) is then a map :math:`\theta \mapsto f_\ell(x(\theta))` on the same
grid, and the grid estimators measure it unchanged
(:func:`lib.geometry.measures.class_measures`): per class, the volume, the
total scalar curvature with its positive and negative parts, the minimum and
integrated local reach and the distance to the other classes at equal
parameters, raw and after rescaling the union of the classes to unit volume
layer by layer. Three views complete the picture:

- the **untrained control**: the same architecture with its initial weights
  (:class:`lib.models.beta_vae.BetaVAE` with the chapter's seed), which tells
  what training did and what any random ReLU network does;
- the **TwoNN intrinsic dimension** of each layer's point cloud
  (:class:`lib.estimators.intrinsic_dim.TwoNN`), the "hunchback" of Ansuini
  et al. (2019), as a check that the point-cloud view agrees with the grid's
  d. It is fitted per class on a seeded sample of parameter points drawn
  uniformly in the measured box, not on grid points: on a lattice the two
  nearest neighbours tie or line up with the axes, and TwoNN returned 6.6 on
  the whole d = 3 dSprites grid of the heart and 2.2 on random halves of it
  (2.9 to 3.05 on 500 to 2000 uniform points);
- the **finite-difference error per layer**: the central-difference tangents
  of each layer at the grid's own spacing against its exact Jacobian by
  forward-mode autodiff through the renderer and the network
  (:func:`lib.models.taps.layer_jacobians`), which says whether the grid is
  dense enough deep in the network.

Data: extended dSprites (all three shapes) and the turntable set (a few
objects), each network trained on every grid image of its data set until its
validation objective has converged
(:func:`lib.models.beta_vae.trained_beta_vae`, weights cached by their
parameters, trained in float32). The objective is the preset's
``objectives``: beta = 0.1 on both data sets at ``ci`` and ``default`` (32 x 32
images), the paper's (Burgess et al.'s capacity objective, gamma 100, C_max
20, on dSprites; beta = 4 on the turntable) at ``paper`` (64 x 64); the
comment above :data:`SIZES` gives the measurements behind the choice.
:func:`latent_table` and :func:`rank_table` say why a layer's metric is
degenerate where one is: too few active latent dimensions, a Jacobian of
rank below d, or one of full rank that is too ill-conditioned to invert.
The layer features come from
:func:`lib.models.taps.layer_taps` with the trained weights run in float64
(see :func:`network`), kept in memory or on disk in ``taps_dir``; the input
layer is the float64 images themselves, so it equals
:func:`lib.studies.image_manifolds.class_geometry` on the same grid.

Computation only; the figures are in :mod:`lib.figures.layer_geometry`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from lib.claims import VERDICTS, claims_table
from lib.datasets import testbed
from lib.estimators.intrinsic_dim import TwoNN
from lib.geometry.differences import stencil_derivatives
from lib.geometry.measures import (COLUMNS, MIN_BUFFER, class_measures, degenerate_metric,
                                   scaled_measures)
from lib.geometry.pointwise import volume_element_from_jacobian
from lib.grid import Grid
from lib.models.beta_vae import (LAPTOP_OBJECTIVES, PAPER_OBJECTIVES, BetaVAE, BetaVAESpec,
                                 BetaVAETraining, trained_beta_vae)
from lib.models.taps import layer_jacobians, layer_taps
from lib.params import ChapterConfig, Choice, Device, Integer, Specification
from lib.plans import Stage, class_measures_cost, render_flops
from lib.store import cache_folder, digest
from lib.sweeps import (cached_count, check_execution, execution_options, execution_parameters,
                        run_cells)

__all__ = ["PARAMETERS", "SIZES", "BUFFER", "NETWORKS", "Config", "layer_part", "training_cells",
           "training_cell", "train_networks", "network", "objective_label", "training_history",
           "training_summary", "grid_layer_measures", "layer_dimensions", "layer_measures",
           "tangent_errors", "ACTIVE_KL", "RANK_RTOL", "latent_activity", "jacobian_ranks",
           "latent_table", "rank_table", "trend_table", "CLAIMS", "claim_table", "claim_verdicts",
           "degeneracy_summary", "layer_sizes", "plan"]

PARAMETERS = Specification("layer-geometry", (
    Choice("preset", "default", ("ci", "default", "paper"),
           "problem sizes: ci (seconds), default (a 2-core laptop, about 12 minutes), "
           "paper (dSprites d = 4, long training: a large machine with a GPU)"),
    Integer("seed", 0, 0, 2**31 - 1,
            "seeds the networks (training and the untrained control), the TwoNN samples and "
            "the points where differences meet autodiff"),
    Device("device", "cpu", ("cpu", "cuda"), "where the networks train and run"),
    *execution_parameters(),
), checks=(check_execution,))

# The paper's buffer: interval axes carry three extra samples at each end, which the three
# nested stencils of the curvature consume.
BUFFER = MIN_BUFFER
NETWORKS = ("trained", "untrained")

# The beta-VAE objective per data set: the paper's at `paper`, beta = 0.1 on the laptop presets
# (lib.models.beta_vae.PAPER_OBJECTIVES and LAPTOP_OBJECTIVES, with the measurements behind them).

# One beta-VAE step (batch 64, 32 channels) takes about 25-30 ms at 32 x 32 on one core of a
# 2-core laptop and about four times that at 64 x 64; every run spends its first several
# hundred steps at the mean image. So the laptop presets train on 32 x 32 images, where a
# network converges within a few thousand steps; the dSprites translations span the same
# share of the frame as the paper preset's (+-4.5 px of 32 for +-9 of 64).
# The default's step size is 1e-3, not the paper's 5e-4. Measured at the default sizes with
# beta = 1 (one thread, 2026-12-06): at 5e-4 the dSprites network used its whole 12,000-step
# budget without converging (held-out reconstruction ratio 0.012, the -ELBO still falling 1.2%
# per 2,000 steps) and the turntable network converged at 5,750 steps at a ratio of 0.26; at
# 1e-3 both converged, at 11,250 steps (0.013) and 5,000 steps (0.23). The rule is
# bound-scaling's: less than 2% (or 0.5 nats per image) better over the last 2,000 steps,
# within a budget of 16,000; at beta = 0.1 the dSprites network had used the whole budget on
# the relative rule alone, at 0.3% of the mean image's error.
SIZES = {
    "ci": dict(
        image_size=32, network=dict(channels=16, hidden=64),
        training=dict(max_steps=40, eval_every=20, window=2, rel_tol=0.01),
        objectives=LAPTOP_OBJECTIVES,
        dsprites=dict(dim=2, grid=dict(scales=10, rotations=12)),
        turntable=dict(dim=3, objects=("duck", "mug"), base_size=16,
                       grid=dict(views=6, scales=8, rotations=6), twonn_views=12),
        twonn_points=150, tangent_points=1, rank_points=2, reach_stride=2),
    "default": dict(
        image_size=32, network=dict(channels=32, hidden=256),
        training=dict(max_steps=16_000, eval_every=250, window=8, rel_tol=0.02, abs_tol=0.5,
                      min_steps=1_500, learning_rate=1e-3),
        objectives=LAPTOP_OBJECTIVES,
        dsprites=dict(dim=3, grid=dict(scales=10, rotations=16, translations=10, max_shift=4.5)),
        turntable=dict(dim=3, objects=("duck", "car", "teapot"), base_size=32,
                       grid=dict(views=12, scales=10, rotations=12), twonn_views=32),
        twonn_points=500, tangent_points=2, rank_points=8, reach_stride=2),
    "paper": dict(
        image_size=64, network=dict(channels=32, hidden=256),
        training=dict(max_steps=100_000, eval_every=500, window=10, rel_tol=0.005,
                      min_steps=1_500),
        objectives=PAPER_OBJECTIVES,
        dsprites=dict(dim=4, grid=dict(scales=12, rotations=16, translations=12,
                                       max_shift=11.0)),
        turntable=dict(dim=3, objects=("duck", "mug", "car", "teapot", "lamp"), base_size=128,
                       grid=dict(views=18, scales=22, rotations=16), twonn_views=72),
        twonn_points=2000, tangent_points=4, rank_points=16, reach_stride=2),
}


class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES):
    """Validated parameters of the chapter plus the sizes of its preset."""


# --- the two data sets ----------------------------------------------------------------------

def _sources(config: Config) -> list[testbed.Testbed]:
    """dSprites with the paper's extra blur and the preset's turntable objects, at size S."""
    size, sprites, table = (config.sizes[key] for key in ("image_size", "dsprites", "turntable"))
    return [testbed.image_testbed("dsprites", sprites["dim"], image_size=size, blur=0.8,
                                  **sprites["grid"]),
            testbed.image_testbed("turntable", table["dim"], classes=table["objects"],
                                  base_size=table["base_size"], out_size=size, **table["grid"])]


def _source(config: Config, dataset: str) -> testbed.Testbed:
    for source in _sources(config):
        if source.name == dataset:
            return source
    names = ", ".join(repr(source.name) for source in _sources(config))
    raise ValueError(f"The 'dataset' parameter of layer_geometry must be one of {{{names}}}. "
                     f"Got {dataset!r} instead.")


def _class_images(config: Config, source: testbed.Testbed, label: str) -> torch.Tensor:
    """One class on the full grid, float64, (*grid.shape, S * S); kept for the next caller."""
    return _cached_images(config, source.name, label)


@functools.lru_cache(maxsize=16)
def _cached_images(config: Config, dataset: str, label: str) -> torch.Tensor:
    return _source(config, dataset).grid_images(label)


# --- the networks ---------------------------------------------------------------------------


def _spec(config: Config, source: testbed.Testbed) -> BetaVAESpec:
    return BetaVAESpec(image_size=source.image_size, latent_dim=10, **config.sizes["network"])


def _training(config: Config, source: testbed.Testbed) -> BetaVAETraining:
    options = dict(config.sizes["training"])
    objective = dict(config.sizes["objectives"][source.name])
    if objective["objective"] == "capacity":
        # C reaches C_max when convergence may first be declared.
        objective["capacity_steps"] = options.get("min_steps") or options["max_steps"]
    return BetaVAETraining(seed=config.seed, **options, **objective)


def _trained(config: Config, source: testbed.Testbed, models_dir, progress: bool):
    # The renderers' filters leave values 1e-15 outside [0, 1]; the Bernoulli likelihood
    # needs them inside.
    images = torch.cat([_class_images(config, source, label).reshape(-1, source.image_size**2)
                        for label in source.classes]).clamp(0.0, 1.0).float()
    key = f"layer-geometry/{config.preset}/{source.name}/d{source.dim}"
    return trained_beta_vae(_spec(config, source), _training(config, source), key, images,
                            cache_dir=cache_folder(models_dir, "models"), device=config.device,
                            progress=progress)


def training_cells(config: Config) -> list[dict]:
    """One cell per data set's beta-VAE: what its training depends on (not where it runs)."""
    return [{"preset": config.preset, "seed": config.seed, "device": config.device,
             "dataset": source.name} for source in _sources(config)]


def training_cell(*, preset: str, seed: int, device: str, dataset: str, models_dir: str) -> dict:
    """Train (or read) one data set's beta-VAE into ``models_dir``; return its training record.

    Module-level with JSON arguments, so any process or Dask worker can run
    it (:func:`lib.sweeps.run_cells`).
    """
    config = Config(preset=preset, seed=seed, device=device)
    return _trained(config, _source(config, dataset), models_dir, progress=False).record.as_dict()


def train_networks(config: Config, *, models_dir=None, sweep_dir=None,
                   progress: bool = True) -> list[dict]:
    """Train both data sets' beta-VAEs on ``config.backend``, one cell each; their records.

    The two networks are independent, so they train at once on two local
    processes or two Dask workers (``-p backend loky -p n_jobs 2``, or a
    cluster); their weights land in ``models_dir`` (default ``models`` under
    the book's cache) where :func:`network` and :func:`training_history` read
    them. Records are cached per cell in ``sweep_dir`` (default
    ``sweeps/<code fingerprint of this module>`` under the book's cache).
    """
    return run_cells(training_cell, training_cells(config),
                     cache_dir=cache_folder(sweep_dir, "sweeps", code_of=__name__),
                     namespace="layer-geometry.training_cell",
                     folders={"models_dir": cache_folder(models_dir, "models")},
                     **execution_options(config), progress=progress,
                     description="beta-VAEs")


def network(config: Config, dataset: str, kind: str, *, models_dir=None,
            dtype: torch.dtype = torch.float64, progress: bool = False) -> BetaVAE:
    """The beta-VAE of one data set: ``"trained"`` on every grid image, or its ``"untrained"`` control.

    The trained network comes from :func:`lib.models.beta_vae.trained_beta_vae`
    (trained in float32, cached in ``models_dir``, by default ``models`` under the
    book's cache); the control is
    ``BetaVAE(spec, seed=config.seed)``, PyTorch's default initial law. Both in
    eval mode on ``config.device``, in ``dtype``: float64 by default, because
    deep in the untrained network the features vary by 1e-8 of their size
    from one grid point to the next, below float32's rounding (its output
    layer's volume came out 2.7 (dSprites) and 4.1 (turntable) times too large
    in float32 at the default preset; every other layer agreed with float64 to
    1e-3 or better).
    """
    if kind not in NETWORKS:
        raise ValueError(f"The 'kind' parameter of network must be one of {NETWORKS}. "
                         f"Got {kind!r} instead.")
    source = _source(config, dataset)
    if kind == "trained":
        model = _trained(config, source, models_dir, progress).model
    else:
        model = BetaVAE(_spec(config, source), seed=config.seed).to(config.device)
    return model.to(dtype).eval()


def objective_label(objective) -> str:
    """A readable name of a beta-VAE objective, as the preset's ``objectives`` give it.

    Examples
    --------
    >>> objective_label({"objective": "beta", "beta": 1.0})
    'beta = 1'
    >>> objective_label({"objective": "capacity", "gamma": 100.0, "capacity_max": 20.0})
    'capacity (gamma 100, C_max 20 nats)'
    """
    if objective["objective"] == "beta":
        return f"beta = {objective['beta']:g}"
    return (f"capacity (gamma {objective['gamma']:g}, "
            f"C_max {objective['capacity_max']:g} nats)")


def training_history(config: Config, *, models_dir=None, progress: bool = False) -> pd.DataFrame:
    """The training history of each data set's beta-VAE (one row per evaluation), with its sizes.

    Columns: dataset, images, objective (:func:`objective_label`), the history
    of :func:`lib.models.beta_vae.train_beta_vae`, and the run's ``stopped``
    (converged, budget, diverged), ``steps``, ``best_step`` (the state kept)
    and ``wall seconds`` (of the training loop, when it ran). The networks
    train first through :func:`train_networks`, on ``config.backend``.
    """
    train_networks(config, models_dir=models_dir, progress=progress)   # spread, then read
    parts = []
    for source in _sources(config):
        result = _trained(config, source, models_dir, progress)
        history = result.history.copy()
        history.insert(0, "dataset", source.name)
        history.insert(1, "images", len(source.classes) * source.grid.size)
        history.insert(2, "objective", objective_label(config.sizes["objectives"][source.name]))
        history["stopped"] = result.record.stopped
        history["steps"] = result.record.steps
        history["best_step"] = result.record.best_step
        history["wall seconds"] = result.record.wall_seconds
        parts.append(history)
    return pd.concat(parts, ignore_index=True)


def training_summary(history: pd.DataFrame) -> pd.DataFrame:
    """One row per network: why and when it stopped, and the kept state's validation numbers.

    Parameters
    ----------
    history : DataFrame
        :func:`training_history`.

    Returns
    -------
    DataFrame
        ``dataset, images, objective, stopped, steps, best_step, wall seconds``
        and, at the kept state (the evaluation at ``best_step``),
        ``val_neg_elbo, kl, reconstruction_ratio``.

    Examples
    --------
    >>> history = pd.DataFrame({"dataset": "toy", "images": 10, "objective": "beta = 1",
    ...                         "step": [0, 5, 10], "val_neg_elbo": [9.0, 4.0, 5.0],
    ...                         "reconstruction": [8.0, 2.0, 3.0], "kl": [1.0, 2.0, 2.0],
    ...                         "reconstruction_ratio": [1.0, 0.1, 0.2], "stopped": "budget",
    ...                         "steps": 10, "best_step": 5, "wall seconds": 1.5})
    >>> training_summary(history)[["stopped", "best_step", "reconstruction_ratio"]].values.tolist()
    [['budget', 5, 0.1]]
    """
    kept = history[history["step"] == history["best_step"]]
    columns = ["dataset", "images", "objective", "stopped", "steps", "best_step",
               "wall seconds", "val_neg_elbo", "kl", "reconstruction_ratio"]
    table = kept.drop_duplicates("dataset")[columns].reset_index(drop=True)
    # Counts stay integers when the history comes back from a cache that stored floats.
    return table.astype({"images": int, "steps": int, "best_step": int})


def layer_part(layer: str) -> str:
    """Which part of the network a layer name belongs to.

    Examples
    --------
    >>> [layer_part(name) for name in ("input", "encoder.conv1", "mu", "decoder.fc1", "output")]
    ['input', 'encoder', 'mu', 'decoder', 'output']
    """
    if layer in ("input", "mu", "output"):
        return layer
    part = layer.split(".")[0]
    if part not in ("encoder", "decoder"):
        raise ValueError(f"The 'layer' parameter of layer_part must be 'input', 'mu', 'output' "
                         f"or a name under 'encoder.' or 'decoder.'. Got {layer!r} instead.")
    return part


# --- features of every layer -------------------------------------------------------------------


def _model_dtype(model) -> torch.dtype:
    """dtype of the model's first floating parameter or buffer (float64 if it has none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float64


def _default_layers(model, layers, caller):
    if layers is not None:
        return tuple(layers)
    names = getattr(model, "layer_names", None)
    if names is None:
        raise ValueError(f"The 'layers' parameter of {caller} must name the layers to measure "
                         f"when the model has no 'layer_names'. Got None instead.")
    return tuple(names)


class _Features:
    """Every layer of one model on the grid points of each class, read layer by layer.

    The first request for a class runs one forward pass that taps every layer
    (:func:`lib.models.taps.layer_taps`); the features are then kept on disk
    in ``taps_dir`` (and read back one layer at a time) or, without a
    folder, in memory. ``"input"`` is the class's points as given.
    """

    def __init__(self, model, classes, grid: Grid, layers, image_shape, taps_dir):
        self.model, self.classes, self.grid = model, classes, grid
        self.layers = tuple(name for name in layers if name != "input")
        self.image_shape = tuple(image_shape)
        self.taps_dir = None if taps_dir is None else str(taps_dir)
        self.inputs, self.kept = {}, {}

    def points(self, label) -> torch.Tensor:
        value = self.classes[label]
        value = value() if callable(value) else value
        return torch.as_tensor(value)

    def _inputs(self, label):
        if label not in self.inputs:
            dtype = _model_dtype(self.model)
            x = self.points(label).reshape(-1, *self.image_shape).to(dtype).numpy()
            key = f"{label}.{digest(x, length=24)}"
            self.inputs[label] = x, key
            if self.layers:           # one forward pass taps every layer
                taps = layer_taps(self.model, x, self.layers, cache_dir=self.taps_dir,
                                  input_key=key)
                if self.taps_dir is None:
                    self.kept[label] = taps
        return self.inputs[label]

    def __call__(self, label: str, layer: str) -> torch.Tensor:
        """Features of one class at one layer on the grid, float64, (*grid.shape, F)."""
        if layer == "input":
            values = self.points(label)
        else:
            x, key = self._inputs(label)
            if self.taps_dir is None:
                values = self.kept[label][layer]
            else:
                values = layer_taps(self.model, x, [layer], cache_dir=self.taps_dir,
                                    input_key=key)[layer]
            values = torch.from_numpy(values)
        return values.to(torch.float64).reshape(*self.grid.shape, -1)


def grid_layer_measures(model: torch.nn.Module, classes, grid: Grid, *, image_shape,
                        layers=None, reach_stride: int = 2, taps_dir=None) -> pd.DataFrame:
    """The per-class measurements of every named layer of a model fed with grid-sampled classes.

    Each layer is the map theta -> features on the same grid; the classes are
    measured layer by layer with :func:`lib.geometry.measures.class_measures`
    (``buffer=BUFFER``; curvature and reach NaN where a layer's metric is
    degenerate) and rescaled by :func:`lib.geometry.measures.scaled_measures`
    so that the union of the classes has volume 1 in each layer.

    Parameters
    ----------
    model : torch.nn.Module
        Its layers are read by :func:`lib.models.taps.layer_taps` (eval mode, no gradients).
    classes : mapping of str to array of shape (*grid.shape, D), or to a callable returning one
        The inputs of each class on the grid, flattened; the model gets them
        reshaped to ``(N, *image_shape)`` in its dtype. The ``"input"`` layer is
        measured on these values as given.
    grid : Grid
    image_shape : tuple of int
        Shape of one model input, e.g. (1, 64, 64); its product is D.
    layers : sequence of str, optional
        Layer names as :func:`~lib.models.taps.layer_taps` takes them; default
        ``model.layer_names``.
    reach_stride : int, default=2
    taps_dir : str or Path, optional
        Cache of the features (:func:`~lib.models.taps.layer_taps`); without
        it the features of every class are kept in memory.

    Returns
    -------
    DataFrame
        ``layer, depth`` (position in ``layers``), ``class, scale`` ("raw" or
        "unit volume") and the columns of :data:`lib.geometry.measures.COLUMNS`.
    """
    caller = "grid_layer_measures"
    layers = _default_layers(model, layers, caller)
    features = _Features(model, classes, grid, layers, image_shape, taps_dir)
    parts = []
    for depth, layer in enumerate(layers):
        lazy = {label: functools.partial(features, label, layer) for label in classes}
        # A layer may stop moving along an axis (a collapsed latent): its curvature and reach
        # are then undefined and reported as NaN, with the count of points.
        raw = class_measures(lazy, grid, buffer=BUFFER, reach_stride=reach_stride,
                             degenerate="nan")
        for scale, table in (("raw", raw), ("unit volume", scaled_measures(raw, grid.ndim))):
            parts.append(table.assign(layer=layer, depth=depth, scale=scale))
    columns = ["layer", "depth", "class", "scale", *COLUMNS[1:]]
    return pd.concat(parts, ignore_index=True)[columns]


def layer_dimensions(model: torch.nn.Module, samples, *, image_shape,
                     layers=None) -> pd.DataFrame:
    """TwoNN intrinsic dimension of each class's sample points in every named layer.

    A ReLU layer can map several inputs to exactly the same features (every
    unit off); TwoNN needs distinct points, so repeated rows are counted once
    and ``twonn points`` reports how many distinct rows were used.

    Parameters
    ----------
    model : torch.nn.Module
    samples : mapping of str to array of shape (n, D)
        Sample points of each class, flattened model inputs; ``"input"`` is
        these points as given.
    image_shape : tuple of int
        Shape of one model input.
    layers : sequence of str, optional
        Default ``model.layer_names``.

    Returns
    -------
    DataFrame
        ``class, layer, depth, twonn, twonn points``.
    """
    caller = "layer_dimensions"
    layers = _default_layers(model, layers, caller)
    dtype = _model_dtype(model)
    rows = []
    for label, points in samples.items():
        points = torch.as_tensor(points)
        inner = [name for name in layers if name != "input"]
        taps = (layer_taps(model, points.reshape(-1, *image_shape).to(dtype).numpy(), inner)
                if inner else {})
        taps["input"] = points.numpy()
        for depth, layer in enumerate(layers):
            distinct = np.unique(taps[layer].astype(np.float64), axis=0)
            rows.append({"class": label, "layer": layer, "depth": depth,
                         "twonn": float(TwoNN().fit(distinct).dimension_),
                         "twonn points": len(distinct)})
    return pd.DataFrame(rows)


# --- per-layer geometry of the two beta-VAEs ------------------------------------------------------


def layer_measures(config: Config, *, models_dir=None, taps_dir=None, datasets=None,
                   networks=NETWORKS, layers=None, progress: bool = False) -> pd.DataFrame:
    """The per-class measurements of every layer of both networks of both data sets.

    For each data set x network (trained, untrained): :func:`grid_layer_measures`
    of its classes on ``grid.interior(BUFFER)`` and :func:`layer_dimensions` of
    ``twonn_points`` parameter points per class drawn uniformly in the
    measured box (module docstring; the same points for both networks).

    Parameters
    ----------
    config : Config
    models_dir : str or Path, optional
        Cache of the trained beta-VAE weights; default ``models`` under the
        book's cache.
    taps_dir : str, Path or True, optional
        Cache of the layer features (float64, one file per network, class
        and layer: about 0.8 MB per grid point of the 64 x 64 network, 15 GB
        at the default preset), True for ``taps`` under the book's cache;
        without it the features of one data set and network are kept in
        memory (4 GB at the default preset).
    datasets : sequence of {"dsprites", "turntable"}, optional
        Default both.
    networks : sequence of {"trained", "untrained"}, default both
    layers : sequence of str, optional
        Default every layer of the beta-VAE (``BetaVAESpec.layer_names``).
    progress : bool, default=False
        Show the training bar.

    Returns
    -------
    DataFrame
        One row per data set, network, layer, class and scale: ``dataset,
        dim, network, layer, depth, part, class, scale`` ("raw" or "unit
        volume"), the columns of :func:`~lib.geometry.measures.class_measures`
        (curvature and reach NaN where the layer's metric is degenerate, with
        ``degenerate points`` counting them), ``twonn`` and ``twonn points``
        (distinct sample points it used).
    """
    if taps_dir is True:
        taps_dir = cache_folder(None, "taps")
    parts = []
    for index, source in enumerate(_sources(config)):
        if datasets is not None and source.name not in datasets:
            continue
        shape = (1, source.image_size, source.image_size)
        classes = {label: functools.partial(_class_images, config, source, label)
                   for label in source.classes}
        rng = np.random.default_rng([config.seed, index])
        region = source.grid.interior(BUFFER)
        # Rendering a turntable view is the expensive step: the views come from `twonn_views`
        # equally spaced angles, several times finer than the sample's neighbour spacing.
        snap = config.sizes[source.name].get("twonn_views")
        samples = {label: source.sample_images(
            label, region.uniform_points(config.sizes["twonn_points"], seed=rng),
            snap_views=snap) for label in source.classes}
        for kind in networks:
            model = network(config, source.name, kind, models_dir=models_dir, progress=progress)
            names = layers if layers is not None else model.layer_names
            table = grid_layer_measures(model, classes, source.grid, image_shape=shape,
                                        layers=names, reach_stride=config.sizes["reach_stride"],
                                        taps_dir=taps_dir)
            dimensions = layer_dimensions(model, samples, image_shape=shape, layers=names)
            table = table.merge(dimensions, on=["class", "layer", "depth"], how="left")
            table.insert(0, "dataset", source.name)
            table.insert(1, "dim", source.dim)
            table.insert(2, "network", kind)
            table.insert(5, "part", table["layer"].map(layer_part))
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


# --- finite differences against autodiff, per layer ------------------------------------------------


def _grid_lookup(grid: Grid, values: torch.Tensor):
    """theta (Q, k) at grid points -> values there: the stencil reads the grid's own samples."""
    start = np.array([axis.start for axis in grid.axes])
    spacing = np.array(grid.spacing)
    sizes = np.array(grid.shape)
    periodic = np.array(grid.periodic)

    def lookup(theta):
        index = np.rint((np.asarray(theta.cpu()) - start) / spacing).astype(int)
        index = np.where(periodic, index % sizes, index)
        if ((index < 0) | (index >= sizes)).any():
            raise ValueError("The stencil left the grid: sample points must lie in "
                             "grid.interior(1).")
        return values[tuple(index.T)]

    return lookup


def _relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(estimate - truth) / torch.linalg.vector_norm(truth))


def _picks(config: Config, source: testbed.Testbed, index: int, count: int) -> dict:
    """``count`` seeded grid indices (count, k) per class in ``grid.interior(BUFFER)``."""
    grid = source.grid
    region = grid.interior(BUFFER)
    offset = np.array([0 if axis.periodic else BUFFER for axis in grid.axes])
    rng = np.random.default_rng([config.seed, index, 1])
    return {label: np.stack(np.unravel_index(rng.choice(region.size, count, replace=False),
                                             region.shape), axis=-1) + offset
            for label in source.classes}


def _renderer(source: testbed.Testbed, label: str):
    """theta (B, k) -> model inputs (B, 1, S, S), differentiable (for ``layer_jacobians``)."""
    image, size = source.image_function(label), source.image_size

    def render(points):
        return torch.stack([image(point) for point in points]).reshape(-1, 1, size, size)

    return render


def tangent_errors(config: Config, *, models_dir=None, progress: bool = False) -> pd.DataFrame:
    r"""Finite-difference tangents of every layer against its exact Jacobian, at grid points.

    At ``tangent_points`` seeded points of ``grid.interior(BUFFER)`` per class,
    the order-2 central differences of each layer at the grid's own spacing
    (:func:`lib.geometry.differences.stencil_derivatives` on the grid's own
    images, run through the network: the samples the measurements use) are
    compared with the Jacobian :math:`\partial f_\ell / \partial\theta` by
    forward-mode autodiff through the renderer and the network
    (:func:`lib.models.taps.layer_jacobians`): the relative Frobenius error of
    the tangents and the relative error of the volume element
    :math:`\sqrt{\det J^\top J}` (NaN where the exact metric is degenerate, as
    in :func:`~lib.geometry.measures.class_measures`).

    Returns
    -------
    DataFrame
        ``dataset, dim, network, layer, depth, part, class, point, quantity``
        ("tangents" or "volume element") and ``error``.
    """
    rows = []
    for index, source in enumerate(_sources(config)):
        grid = source.grid
        picks = _picks(config, source, index, config.sizes["tangent_points"])
        size = source.image_size
        for kind in NETWORKS:
            model = network(config, source.name, kind, models_dir=models_dir, progress=progress)
            layers = model.layer_names
            for label in source.classes:
                theta = grid.points[tuple(picks[label].T)]                     # (count, k)
                render = _renderer(source, label)
                exact = layer_jacobians(model, render, torch.as_tensor(theta), layers)
                images = _grid_lookup(grid, _class_images(config, source, label))

                def features(points, images=images):         # every layer, side by side
                    taps = layer_taps(model, images(points).reshape(-1, 1, size, size), layers)
                    return torch.cat([taps[layer] for layer in layers], dim=1)

                for point, centre in enumerate(theta):
                    jacobian = stencil_derivatives(features, torch.as_tensor(centre),
                                                   grid.spacing).jacobian
                    widths = [exact[layer].shape[1] for layer in layers]
                    for depth, (layer, fd) in enumerate(zip(layers, jacobian.split(widths))):
                        truth = exact[layer][point].to(torch.float64).cpu()
                        # The volume element's relative error needs a nonzero exact one.
                        volume = (math.nan if bool(degenerate_metric(truth))
                                  else volume_element_from_jacobian(truth))
                        base = {"dataset": source.name, "dim": source.dim, "network": kind,
                                "layer": layer, "depth": depth, "part": layer_part(layer),
                                "class": label, "point": point}
                        rows.append({**base, "quantity": "tangents",
                                     "error": _relative_error(fd, truth)})
                        rows.append({**base, "quantity": "volume element",
                                     "error": abs(float(volume_element_from_jacobian(fd)
                                                                 / volume) - 1)})
    return pd.DataFrame(rows)


# --- why a layer's metric degenerates: active latents and exact Jacobian ranks -----------------

# A latent dimension is active when its KL to the prior, averaged over the images, exceeds
# 0.01 nats (the usual threshold of the beta-VAE literature, e.g. Burgess et al. 2018); an
# inactive one has mu near 0 and sigma near 1 everywhere and carries nothing to the decoder.
ACTIVE_KL = 0.01
# A singular value of a Jacobian counts towards its rank above 1e-6 of the largest one: the
# degeneracy test of the measurements (det g / (tr g / k)^k <= 1e3 eps, float64) flags a
# rank-(k-1) metric once the smallest singular value falls below about 3e-7 of the others.
RANK_RTOL = 1e-6


def latent_activity(model: BetaVAE, images, *, threshold: float = ACTIVE_KL) -> pd.DataFrame:
    r"""How much each latent dimension of a beta-VAE is used on a set of images.

    Per latent dimension :math:`j`: the KL divergence of the posterior
    :math:`N(\mu_j, \sigma_j^2)` to the prior :math:`N(0, 1)`,
    :math:`\tfrac12(\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1)`, averaged over
    the images, and the variance of :math:`\mu_j` over them. A dimension is
    active when its mean KL exceeds ``threshold``.

    Parameters
    ----------
    model : BetaVAE
        Anything with ``encode(x) -> (mu, logvar)``; run in eval mode, without gradients.
    images : array of shape (N, 1, S, S)
        Numpy or torch; cast to the model's dtype and device.
    threshold : float, default=ACTIVE_KL
        Nats.

    Returns
    -------
    DataFrame
        ``latent, kl, mu variance, active``: one row per latent dimension.

    Examples
    --------
    >>> spec = BetaVAESpec(image_size=32, channels=2, hidden=4, latent_dim=3)
    >>> table = latent_activity(BetaVAE(spec), torch.rand(8, 1, 32, 32))
    >>> list(table.columns), len(table)
    (['latent', 'kl', 'mu variance', 'active'], 3)
    """
    dtype = _model_dtype(model)
    device = next(model.parameters()).device
    x = torch.as_tensor(images).to(dtype=dtype, device=device)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1)
    return pd.DataFrame({"latent": np.arange(mu.shape[1]),
                         "kl": kl.mean(0).double().cpu().numpy(),
                         "mu variance": mu.var(0).double().cpu().numpy(),
                         "active": (kl.mean(0) > threshold).cpu().numpy()})


def jacobian_ranks(model: torch.nn.Module, render, theta, layers, *,
                   rtol: float = RANK_RTOL) -> pd.DataFrame:
    r"""Numerical rank of each named layer's exact Jacobian with respect to the parameters.

    At each point :math:`\theta_q`, :math:`J_\ell = \partial f_\ell / \partial\theta`
    (:func:`lib.models.taps.layer_jacobians`, forward-mode autodiff through
    ``render`` and the model) has k singular values; its rank counts those
    above ``rtol`` times the largest (0 if :math:`J_\ell = 0`). A rank below k
    means the layer does not move along some direction of :math:`\theta`
    there: its metric :math:`g = J^\top J` is degenerate. ``degenerate`` is the
    test the measurements use (:func:`lib.geometry.measures.degenerate_metric`).

    Parameters
    ----------
    model : torch.nn.Module
    render : callable
        theta (B, k) -> model inputs (B, ...), as for ``layer_jacobians``.
    theta : array of shape (Q, k)
    layers : sequence of str
        As :func:`lib.models.taps.layer_taps` takes them.
    rtol : float, default=RANK_RTOL

    Returns
    -------
    DataFrame
        ``point, layer, depth, rank, sigma max, sigma min, degenerate``: one row
        per point and layer, singular values in float64.

    Examples
    --------
    A linear layer that drops the second parameter has rank 1:

    >>> layer = torch.nn.Linear(2, 3, bias=False, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 0.0]]))
    >>> table = jacobian_ranks(layer, lambda t: t, np.array([[0.5, 1.0]]), ["input", "output"])
    >>> table["rank"].tolist()
    [2, 1]
    """
    layers = tuple(layers)
    exact = layer_jacobians(model, render, torch.as_tensor(theta), layers)
    rows = []
    for depth, layer in enumerate(layers):
        jacobian = torch.as_tensor(exact[layer]).to(torch.float64).cpu()      # (Q, F, k)
        sigma = torch.linalg.svdvals(jacobian)                                  # (Q, k)
        top = sigma[:, :1]
        ranks = ((sigma > rtol * top) & (top > 0)).sum(1)
        degenerate = degenerate_metric(jacobian)
        for point in range(len(jacobian)):
            rows.append({"point": point, "layer": layer, "depth": depth,
                         "rank": int(ranks[point]), "sigma max": float(sigma[point, 0]),
                         "sigma min": float(sigma[point, -1]),
                         "degenerate": bool(degenerate[point])})
    return pd.DataFrame(rows)


def latent_table(config: Config, *, models_dir=None, progress: bool = False) -> pd.DataFrame:
    """:func:`latent_activity` of both networks of both data sets on every grid image.

    Returns
    -------
    DataFrame
        ``dataset, dim, network, latent, kl, mu variance, active``.
    """
    parts = []
    for source in _sources(config):
        size = source.image_size
        images = torch.cat([_class_images(config, source, label).reshape(-1, 1, size, size)
                            for label in source.classes])
        for kind in NETWORKS:
            model = network(config, source.name, kind, models_dir=models_dir, progress=progress)
            table = latent_activity(model, images)
            table.insert(0, "dataset", source.name)
            table.insert(1, "dim", source.dim)
            table.insert(2, "network", kind)
            parts.append(table)
    return pd.concat(parts, ignore_index=True)


def rank_table(config: Config, *, models_dir=None, progress: bool = False) -> pd.DataFrame:
    """:func:`jacobian_ranks` of every layer of both networks at seeded grid points, per class.

    ``rank_points`` grid points per class, drawn like those of
    :func:`tangent_errors` (the same seed stream: the first ``tangent_points``
    are the same points) in ``grid.interior(BUFFER)``.

    Returns
    -------
    DataFrame
        One row per data set, network, class and layer: ``dataset, dim,
        network, class, layer, depth, part, points``, ``min rank`` and
        ``max rank`` over the points, ``rank below d`` (points whose rank is
        below the grid's d), ``degenerate`` (points the measurements' test
        flags) and ``sigma ratio`` (median over the points of the smallest
        singular value over the largest).
    """
    parts = []
    for index, source in enumerate(_sources(config)):
        picks = _picks(config, source, index, config.sizes["rank_points"])
        for kind in NETWORKS:
            model = network(config, source.name, kind, models_dir=models_dir, progress=progress)
            for label in source.classes:
                theta = source.grid.points[tuple(picks[label].T)]
                table = jacobian_ranks(model, _renderer(source, label), theta,
                                       model.layer_names)
                table["ratio"] = table["sigma min"] / table["sigma max"]
                summary = table.groupby(["layer", "depth"], sort=False).agg(
                    points=("rank", "size"), min_rank=("rank", "min"), max_rank=("rank", "max"),
                    below=("rank", lambda r: int((r < source.dim).sum())),
                    degenerate=("degenerate", "sum"), ratio=("ratio", "median")).reset_index()
                summary = summary.rename(columns={"min_rank": "min rank", "max_rank": "max rank",
                                                  "below": "rank below d",
                                                  "ratio": "sigma ratio"})
                summary.insert(0, "dataset", source.name)
                summary.insert(1, "dim", source.dim)
                summary.insert(2, "network", kind)
                summary.insert(3, "class", label)
                summary.insert(6, "part", summary["layer"].map(layer_part))
                parts.append(summary)
    return pd.concat(parts, ignore_index=True)


# --- summaries for the text ---------------------------------------------------------------------------


def trend_table(measures: pd.DataFrame, *, scale: str = "unit volume") -> pd.DataFrame:
    """Where each class's curvature and reach stand at the input, at mu and at the output.

    Per data set, network and class: the total curvature, its positive part,
    the minimum reach and the class distance at three depths, and Spearman's
    rank correlation of each with depth over all layers (positive: it grows
    with depth).
    """
    rows = []
    quantities = ["curvature", "curvature+", "min reach", "class distance"]
    table = measures[measures["scale"] == scale]
    for (dataset, kind, label), part in table.groupby(["dataset", "network", "class"], sort=False):
        part = part.sort_values("depth")
        at = part.set_index("layer")
        row = {"dataset": dataset, "network": kind, "class": label}
        for quantity in quantities:
            for layer in ("input", "mu", "output"):
                row[f"{quantity} @ {layer}"] = float(at.loc[layer, quantity])
            ranks = part[["depth", quantity]].rank()
            row[f"{quantity} vs depth"] = float(ranks.corr().iloc[0, 1])
        rows.append(row)
    return pd.DataFrame(rows)


# The paper's claims about depth, as signs of Spearman's rho between a quantity (unit volume
# per layer) and depth: +1 means it should grow with depth, -1 fall.
CLAIMS = (("curvature+", +1, "positive curvature rises with depth"),
          ("min reach", -1, "minimum reach falls with depth"),
          ("class distance", +1, "distance between classes rises with depth"))


def claim_table(trends: pd.DataFrame, *, by=("dataset", "network")) -> pd.DataFrame:
    """How many classes follow each of the paper's depth trends, per data set and network.

    A class follows a claim when Spearman's rho of the quantity with depth
    (:func:`trend_table`) has the claimed sign; NaN (a quantity undefined in
    some layer, or constant) counts as not following it.

    Parameters
    ----------
    trends : DataFrame
        :func:`trend_table`.
    by : sequence of str, default=("dataset", "network")
        Columns of ``trends`` that define a group; ``("network",)`` pools the data sets.

    Returns
    -------
    DataFrame
        The ``by`` columns, ``claim, quantity, classes, following`` (classes with
        the claimed sign), ``rho min, rho max`` (over the classes with a rho),
        ``at mu min, at mu max`` (the quantity at mu over its value at the
        input, over the classes) and ``growth min, growth max`` (the same at
        the output).

    Examples
    --------
    >>> trends = pd.DataFrame({"dataset": "toy", "network": "trained", "class": ["a", "b"],
    ...     "curvature+ vs depth": [0.9, -0.2], "curvature+ @ input": [1.0, 1.0],
    ...     "curvature+ @ output": [10.0, 0.5], "min reach vs depth": [-1.0, -0.5],
    ...     "min reach @ input": [1.0, 1.0], "min reach @ output": [0.1, 0.2],
    ...     "class distance vs depth": [0.1, 0.3], "class distance @ input": [1.0, 1.0],
    ...     "class distance @ output": [2.0, 3.0]}).assign(
    ...     **{f"{name} @ mu": 1.0 for name in ("curvature+", "min reach", "class distance")})
    >>> claim_table(trends)[["quantity", "following", "rho min", "growth max"]].values.tolist()
    [['curvature+', 1, -0.2, 10.0], ['min reach', 2, -1.0, 0.2], ['class distance', 2, 0.1, 3.0]]
    """
    by = list(by)
    rows = []
    for keys, part in trends.groupby(by, sort=False):
        keys = dict(zip(by, keys if isinstance(keys, tuple) else (keys,)))
        for quantity, sign, claim in CLAIMS:
            rho = part[f"{quantity} vs depth"]
            at_mu = part[f"{quantity} @ mu"] / part[f"{quantity} @ input"]
            growth = part[f"{quantity} @ output"] / part[f"{quantity} @ input"]
            rows.append({**keys, "claim": claim, "quantity": quantity, "classes": len(part),
                         "following": int((np.sign(rho) == sign).sum()),
                         "rho min": float(rho.min()), "rho max": float(rho.max()),
                         "at mu min": float(at_mu.min()), "at mu max": float(at_mu.max()),
                         "growth min": float(growth.min()), "growth max": float(growth.max())})
    return pd.DataFrame(rows)


def claim_verdicts(claims: pd.DataFrame) -> pd.DataFrame:
    """The paper's depth claims on the trained networks, as the book's claims table.

    ``claims`` is :func:`claim_table` pooled over data sets (``by=["network"]``).
    A claim holds when every class follows it (Spearman's rho of the quantity
    with depth has the claimed sign), does not hold when at most half of the
    classes do, and is inconclusive in between (:mod:`lib.claims`).

    Returns
    -------
    DataFrame with the columns of :data:`lib.claims.COLUMNS`, one row per claim.
    """
    rows = []
    for _, row in claims[claims["network"] == "trained"].iterrows():
        following, classes = int(row["following"]), int(row["classes"])
        verdict = (VERDICTS[0] if following == classes
                   else VERDICTS[1] if 2 * following <= classes else VERDICTS[2])
        rows.append({"claim": f"{row['claim']} (trained beta-VAE, unit volume per layer)",
                     "paper": row["claim"],
                     "ours": f"{following} of {classes} classes; rho {row['rho min']:.2f} to "
                             f"{row['rho max']:.2f}",
                     "verdict": verdict,
                     "criterion": "the sign of Spearman's rho with depth per class: holds when "
                                  "every class follows, does not hold when at most half do"})
    return claims_table(rows)


def degeneracy_summary(measures: pd.DataFrame, ranks: pd.DataFrame,
                       latents: pd.DataFrame) -> pd.DataFrame:
    """Degenerate layers on the grid beside the exact ranks and the active latents, per network.

    Parameters
    ----------
    measures : DataFrame
        :func:`layer_measures` (its ``degenerate points``, raw scale).
    ranks : DataFrame
        :func:`rank_table`.
    latents : DataFrame
        :func:`latent_table`.

    Returns
    -------
    DataFrame
        One row per data set and network: ``dataset, network, d, active
        latents``; on the grid, ``degenerate layers`` (layers with a
        degenerate point in some class), ``degenerate points`` (summed over
        layers and classes) and ``first degenerate layer`` ("none" if no
        layer is); at the sampled points, ``sampled points`` (per layer),
        ``min rank`` (over layers and points), ``rank-deficient points``
        (points and layers with rank below d, summed), ``first
        rank-deficient layer``, ``exact degenerate points`` (points and layers
        whose exact metric fails the measurements' degeneracy test, summed:
        at full rank, a metric whose singular values spread too far) and
        ``min sigma ratio`` (the smallest, over layers and classes, of the
        median ratio of the smallest to the largest singular value). Each
        degenerate layer of the grid is then classed by its exact Jacobians
        at the sampled points: ``rank-deficient layers`` (rank below d at a
        sampled point), ``ill-conditioned layers`` (full rank at every
        sampled point, but the degeneracy test flags one) and ``unexplained
        layers`` (neither: the grid's degenerate points were not sampled, or
        come from the differences).
    """
    raw = measures[measures["scale"] == "raw"]
    rows = []
    for (dataset, kind), part in raw.groupby(["dataset", "network"], sort=False):
        rank = ranks[(ranks["dataset"] == dataset) & (ranks["network"] == kind)]
        code = latents[(latents["dataset"] == dataset) & (latents["network"] == kind)]
        per_layer = part.groupby(["depth", "layer"])["degenerate points"].sum()
        flagged = per_layer[per_layer > 0]
        deficient = rank[rank["rank below d"] > 0].sort_values("depth")
        by_layer = rank.groupby("layer")[["rank below d", "degenerate"]].sum()
        causes = ["rank-deficient" if by_layer.loc[layer, "rank below d"] > 0
                  else "ill-conditioned" if by_layer.loc[layer, "degenerate"] > 0
                  else "unexplained" for _, layer in flagged.index]
        rows.append({"dataset": dataset, "network": kind, "d": int(part["dim"].iloc[0]),
                     "active latents": int(code["active"].sum()),
                     "degenerate layers": len(flagged),
                     "degenerate points": int(flagged.sum()),
                     "first degenerate layer": flagged.index[0][1] if len(flagged) else "none",
                     "sampled points": int(rank.groupby("class")["points"].first().sum()),
                     "min rank": int(rank["min rank"].min()),
                     "rank-deficient points": int(rank["rank below d"].sum()),
                     "first rank-deficient layer": (deficient["layer"].iloc[0] if len(deficient)
                                                    else "none"),
                     "exact degenerate points": int(rank["degenerate"].sum()),
                     "min sigma ratio": float(rank["sigma ratio"].min()),
                     **{f"{cause} layers": causes.count(cause)
                        for cause in ("rank-deficient", "ill-conditioned", "unexplained")}})
    return pd.DataFrame(rows)


# --- the plan of a run: its cost, before it runs ------------------------------------------------

# Cost model in floating-point operations, or for memory-bound work its equivalent at the
# dense rate of lib.plans.machine_speed (about 8e10 FLOP/s on one thread of the 2-core
# machine), measured there. A beta-VAE step (convolutions, one thread) runs about 2.5 times
# slower than its multiply-adds at that rate (31-50 ms for the default 32 x 32 network,
# 185 ms at 64 x 64); float64 inference twice slower again. Rendering and class_measures
# are lib.plans.render_flops and class_measures_cost; one forward-mode pass through a
# renderer (the exact Jacobian at d = 3 takes four, Jacobian and Hessian thirteen) costs
# about 1 us per pixel (dSprites) and 0.03 s plus 40 us per base pixel (turntable), float64;
# an exact neighbour search (TwoNN) about 13 flop-equivalents per pair of points and feature.
_CONV_SLOWDOWN = 2.5
_FLOAT64 = 2.0
_SPRITE_PASS_PIXEL = 8.5e4
_VIEW_PASS = (2.7e9, 3.1e6)          # per point and forward-mode pass: fixed, per base pixel
_NEIGHBOURS = 13.0


def layer_sizes(spec: BetaVAESpec) -> list[tuple[str, int, int]]:
    """Features and multiply-adds of every layer of a beta-VAE, from its spec alone.

    Parameters
    ----------
    spec : BetaVAESpec

    Returns
    -------
    list of (str, int, int)
        ``(layer, features, multiply-adds)`` per name of ``spec.layer_names``:
        the width of the layer's output per image, as
        :func:`lib.models.taps.layer_taps` reads it, and the multiply-adds of
        the block that produces it (the ``mu`` row counts the log-variance
        head beside it; ``input`` and ``output`` none).

    Examples
    --------
    >>> rows = layer_sizes(BetaVAESpec(image_size=32, channels=32, hidden=256))
    >>> rows[1], rows[-2]
    (('encoder.conv1', 8192, 131072), ('decoder.deconv3', 1024, 131072))
    >>> sum(macs for _, _, macs in rows)
    3284480
    """
    c, h, d, m, size = spec.channels, spec.hidden, spec.latent_dim, spec.n_blocks, spec.image_size
    rows = [("input", spec.pixels, 0)]
    side, c_in = size, 1
    for i in range(1, m + 1):                       # Conv2d(c_in, c, 4, 2, 1): side halves
        side //= 2
        rows.append((f"encoder.conv{i}", c * side * side, side * side * c_in * c * 16))
        c_in = c
    flat = c * 16
    rows += [("encoder.fc1", h, flat * h), ("encoder.fc2", h, h * h),
             ("mu", d, 2 * h * d),                 # the log-variance head runs beside mu
             ("decoder.fc1", h, d * h), ("decoder.fc2", h, h * h), ("decoder.fc3", flat, h * flat)]
    side = 4
    for i in range(1, m + 1):                       # ConvTranspose2d(c, c_out, 4, 2, 1)
        c_out = 1 if i == m else c
        rows.append((f"decoder.deconv{i}", c_out * (2 * side) ** 2, side * side * c * c_out * 16))
        side *= 2
    rows.append(("output", spec.pixels, 0))
    return rows


def _render_pass_flops(source: testbed.Testbed) -> float:
    """One forward-mode pass through the renderer at one point."""
    if source.name != "turntable":
        return source.image_size ** 2 * _SPRITE_PASS_PIXEL
    fixed, per_pixel = _VIEW_PASS
    return fixed + per_pixel * source.base_size ** 2


def plan(config: Config) -> list[Stage]:
    """The stages of a chapter run and the model of their cost, computing nothing.

    Three kinds of unit, from the preset's sizes and the beta-VAE's architecture alone:

    - ``train beta-VAE``: one per data set (:func:`train_networks`, a cell of
      :mod:`lib.sweeps` each, so parallel, with its cached cells counted):
      every class rendered on its grid, then Adam steps of batch 64 up to the
      budget ``max_steps`` (a run that converges stops earlier: the time is
      an upper bound) with an evaluation of the validation tenth every
      ``eval_every`` steps;
    - ``layer measures of a network``: one per data set and network, trained
      or untrained (:func:`layer_measures`, :func:`latent_table`): every
      grid image through the network in float64, the features of every
      layer of every class kept in memory (``taps_dir`` None, as the
      notebook runs), :func:`~lib.geometry.measures.class_measures` of each
      layer and class, and TwoNN of each layer on ``twonn_points`` rendered
      samples per class;
    - ``exact layer Jacobians at a point``: one per network, class and point
      of ``tangent_points`` (:func:`tangent_errors`, with its central
      differences through the network) and of ``rank_points``
      (:func:`rank_table`): forward-mode autodiff through the renderer and
      the network.

    The unit cost of a stage is the mean over its data sets, its memory the
    largest. Only the training runs in parallel. Convolutions and the memory-bound
    rendering and grid estimators are counted in flop-equivalents at the
    dense rate (:func:`lib.plans.render_flops`, :func:`lib.plans.class_measures_cost`
    and the module's ``_CONV_SLOWDOWN``, ``_SPRITE_PASS_PIXEL`` and ``_VIEW_PASS``,
    measured on one thread of a 2-core machine).

    Returns
    -------
    list of lib.plans.Stage
    """
    sizes = config.sizes
    sources = _sources(config)
    # Every class of both data sets stays in memory in float64 (the images' lru cache).
    images_bytes = sum(len(s.classes) * s.grid.size * s.image_size**2 * 8.0 for s in sources)
    training, measures, jacobians = [], [], []
    for source in sources:
        spec, recipe = _spec(config, source), _training(config, source)
        layers = layer_sizes(spec)
        macs = sum(m for _, _, m in layers)
        features = [f for name, f, _ in layers]
        classes, grid, k = len(source.classes), source.grid, source.dim
        images = classes * grid.size
        views = grid.shape[0] if source.name == "turntable" else None
        # Training: the classes rendered, Adam steps, a validation pass every eval_every steps.
        render = classes * render_flops(source, grid.size, views)
        evaluations = recipe.max_steps // recipe.eval_every + 1
        validation = evaluations * recipe.validation * images * 2.0 * macs * _CONV_SLOWDOWN
        activations = recipe.batch_size * sum(features) * 4.0 * 3
        training.append((recipe.max_steps, 6.0 * macs * recipe.batch_size * _CONV_SLOWDOWN,
                         render + validation,
                         images_bytes + images * spec.pixels * 4.0 + activations))
        # One network on one data set: float64 taps of every image (kept for every layer
        # and class), class_measures of every layer and class, TwoNN of every layer and
        # class on the rendered samples (rendered once for both networks).
        n, snap = sizes["twonn_points"], sizes[source.name].get("twonn_views")
        forward = 2.0 * macs * _CONV_SLOWDOWN * _FLOAT64
        flops = images * forward + classes * (render_flops(source, n, snap) / len(NETWORKS)
                                              + n * forward)
        widest = 0.0
        for width in features:
            cost, peak = class_measures_cost(grid, width, sizes["reach_stride"], BUFFER)
            flops += classes * (cost + _NEIGHBOURS * n * n * width)
            widest = max(widest, peak)
        taps = images * (sum(features) - spec.pixels) * 8.0
        measures += [(0, 0, flops, images_bytes + taps + widest)] * len(NETWORKS)
        # Exact Jacobians: k + 1 forward-mode passes through the renderer and the network;
        # a tangent point also sends its order-2 stencil's grid images through the network.
        stencil = 1 + 2 * k + 2 * k * (k - 1)
        exact = (k + 1) * (_render_pass_flops(source) + forward)
        peak = max(features) * (k + 1) * 8.0 * 4 * len(layers)
        for points, extra in ((sizes["tangent_points"], stencil * forward),
                              (sizes["rank_points"], 0.0)):
            jacobians += [(0, 0, exact + extra, peak)] * (len(NETWORKS) * classes * points)
    sweeps = cache_folder(None, "sweeps", code_of=__name__)
    trained = cached_count("layer-geometry.training_cell", training_cells(config), sweeps)
    return [Stage.of_units("train beta-VAE", training, cached=trained, parallel=True),
            Stage.of_units("layer measures of a network", measures, cached=None),
            Stage.of_units("exact layer Jacobians at a point", jacobians, cached=None)]
