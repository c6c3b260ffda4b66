r"""A small image classifier, trained with a checkpoint per epoch, whose layers are named.

For the NNK chapters, whose metrics follow a network over its layers and its
epochs and compare networks trained with and without rotations. The network
(our stand-in, far smaller than DeepNNK's six-conv model, so it trains on a
CPU) is ``len(channels)`` blocks of 3 x 3 convolution (padding 1), ReLU and
2 x 2 max-pooling, then ``Linear -> ReLU -> Linear``. Its blocks are named
submodules ``conv1, conv2, ..., fc1, logits``, so any block's output can be
read by :func:`lib.models.taps.layer_taps` (``CNNSpec.layer_names``, where
``"input"`` names the image itself), given (N, C, S, S) images.

Rotations (:func:`rotate_images`, also the training augmentation) turn the
image about its centre, counter-clockwise as displayed (row 0 on top) for a
positive angle, the convention of ``torch.rot90`` and ``np.rot90``. They
resample bilinearly, ``affine_grid`` + ``grid_sample`` with
``align_corners=False``, so pixel centres sit at half-integers and a quarter
turn of a square image maps pixel centres onto pixel centres. Ink that leaves
the frame is lost; uncovered pixels are 0. Angles act in pixel units, so a
non-square image is rotated, not sheared.

Training runs on the project's engine, :func:`lib.models.training.train`,
with one evaluation per epoch. All randomness of :func:`train_classifier`
comes from ``ClassifierTraining.seed``, split as the engine splits it
(``lib.models._shared.seeds``) into private :class:`torch.Generator`
streams: initial weights (PyTorch's default law,
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases), minibatch order
and rotation angles (the engine's ``augment`` draws), three independent
streams, so switching augmentation on leaves the batch order alone. One seed
gives bit-identical weights on the CPU; the global RNG is never touched.
After every epoch the ``state_dict`` is written to
``checkpoint_dir/<key>/epoch_{k:03d}.pt`` (atomically,
:func:`lib.store.write_atomic`), with ``key = checkpoint_key(spec, training, images)``.

Without held-out digits a run trains its ``epochs`` (stop reason
``"budget"``). With them, the validation cross-entropy is evaluated after
every epoch and the engine's relative-improvement rule
(:class:`~lib.models.training.Convergence`, ``ClassifierTraining.rel_tol``
and ``window``) may stop it early (``"converged"``), or a non-finite loss
does (``"diverged"``). Either way the model returned is the last epoch's,
never a restored best one: the NNK chapters compare a network's epochs, so
every epoch trained is kept. Why and where a run stopped is written to the
folder's ``record.json`` and read back by :func:`training_record`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from lib._arrays import as_tensor
from lib._checks import check_finite, check_int, check_real, check_shape
from lib.models._shared import (check_device, check_schedule, check_type, image_digest, key,
                                load_state, record, save_state, seeded_layer,
                                write_history)
from lib.models.taps import layer_taps
from lib.models.training import Convergence, train
from lib.store import write_json

__all__ = ["CNNSpec", "ClassifierTraining", "SmallCNN", "accuracy", "checkpoint_key",
           "load_checkpoint", "rotate_images", "train_classifier", "training_record"]

# Part of every checkpoint key: bump it when training changes what a given spec produces.
# 2: the training engine, optional early stopping, and the run's record in record.json.
CHECKPOINT_VERSION = 2
HISTORY_FILE = "history.csv"
RECORD_FILE = "record.json"


@dataclass(frozen=True)
class CNNSpec:
    """Architecture of :class:`SmallCNN`.

    Parameters
    ----------
    in_channels : int, default=1
        Channels C of the input images.
    image_size : int, default=28
        Side of the square input images (28 for MNIST, 8 for sklearn's digits);
        it must survive ``len(channels)`` halvings, ``image_size >= 2**len(channels)``.
    channels : tuple of int, default=(16, 32)
        Output channels of the convolution blocks, one block each.
    hidden : int, default=64
        Width of the hidden linear layer ``fc1``.
    n_classes : int, default=10
        Number of classes, the width of ``logits``; at least 2.

    Examples
    --------
    >>> CNNSpec().layer_names
    ('input', 'conv1', 'conv2', 'fc1', 'logits')
    >>> CNNSpec(image_size=8, channels=(4, 8)).flat_features
    32
    """

    in_channels: int = 1
    image_size: int = 28
    channels: tuple[int, ...] = (16, 32)
    hidden: int = 64
    n_classes: int = 10

    def __post_init__(self):
        caller = "CNNSpec"
        check_int(self.in_channels, name="in_channels", caller=caller, low=1)
        channels = self.channels
        message = (f"The 'channels' parameter of {caller} must be a non-empty tuple of ints in "
                   f"[1, inf). Got {channels!r} instead.")
        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") or any(
                isinstance(c, bool) or not isinstance(c, numbers.Integral) for c in channels):
            raise TypeError(message)
        if len(channels) == 0 or min(channels) < 1:
            raise ValueError(message)
        # A tuple of plain ints keeps the spec hashable and its checkpoint key stable.
        object.__setattr__(self, "channels", tuple(int(c) for c in channels))
        check_int(self.image_size, name="image_size", caller=caller,
                  low=2 ** len(self.channels))
        check_int(self.hidden, name="hidden", caller=caller, low=1)
        check_int(self.n_classes, name="n_classes", caller=caller, low=2)

    @property
    def feature_size(self) -> int:
        """Side of the last block's feature maps (each pooling floors a halving)."""
        return self.image_size // 2 ** len(self.channels)

    @property
    def flat_features(self) -> int:
        """Inputs of ``fc1``: channels x side x side of the last block's output."""
        return self.channels[-1] * self.feature_size ** 2

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Every layer :func:`~lib.models.taps.layer_taps` reads, input first."""
        convs = tuple(f"conv{i}" for i in range(1, len(self.channels) + 1))
        return ("input", *convs, "fc1", "logits")


@dataclass(frozen=True)
class ClassifierTraining:
    """How :class:`SmallCNN` is trained: Adam on the cross-entropy, and when to stop.

    Parameters
    ----------
    epochs : int
        The budget: passes over the training images, in [1, inf); one
        checkpoint each.
    batch_size : int, default=128
        Images per optimiser step; the last batch of an epoch may be smaller.
    learning_rate : float, default=1e-3
        Adam's step size (default betas), in (0, inf).
    seed : int, default=0
        Seeds the initial weights, the minibatch order and the rotation angles.
    rotation_augmentation : float, default=0.0
        Largest absolute angle, in degrees, of the random rotation applied to
        each training image, drawn uniformly in [-a, a] anew for every batch;
        in [0, 180]. 0 trains on the images as given.
    rel_tol : float, default=0.0
        Stop once the best validation cross-entropy has improved by less than
        this share of itself over the last ``window`` epochs
        (:class:`lib.models.training.Convergence`), in [0, inf). 0 never stops
        early: every one of ``epochs`` is trained. Above 0 it needs held-out
        digits (``val_images`` of :func:`train_classifier`, which refuses to
        train without them).
    window : int, default=3
        Epochs the improvement is measured over, in [1, inf).

    Examples
    --------
    >>> ClassifierTraining(epochs=5).batch_size
    128
    """

    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    rotation_augmentation: float = 0.0
    rel_tol: float = 0.0
    window: int = 3

    def __post_init__(self):
        caller = "ClassifierTraining"
        check_schedule(self, caller)
        # Stored as float and int: rel_tol=0 and rel_tol=0.0 are one training, one key.
        angle = check_real(self.rotation_augmentation, name="rotation_augmentation",
                           caller=caller, low=0.0, high=180.0)
        object.__setattr__(self, "rotation_augmentation", angle)
        object.__setattr__(self, "rel_tol", check_real(self.rel_tol, name="rel_tol",
                                                       caller=caller, low=0.0, high_open=True))
        object.__setattr__(self, "window", check_int(self.window, name="window", caller=caller,
                                                     low=1))


class SmallCNN(torch.nn.Module):
    """Convolution blocks, then ``Linear -> ReLU -> Linear`` to the class scores.

    Parameters
    ----------
    spec : CNNSpec
        Channels, sizes and number of classes.
    seed : int, default=0
        Seed of the initial weights.

    Attributes
    ----------
    conv1, conv2, ... : torch.nn.Sequential
        (B, C_in, S, S) -> (B, C_out, S // 2, S // 2): ``Conv2d(3, padding=1)``,
        ``ReLU``, ``MaxPool2d(2)``.
    fc1 : torch.nn.Sequential
        (B, spec.flat_features) -> (B, spec.hidden): ``Linear``, ``ReLU``.
    logits : torch.nn.Linear
        (B, spec.hidden) -> (B, spec.n_classes), no activation.

    Examples
    --------
    >>> model = SmallCNN(CNNSpec(image_size=8, channels=(4, 8), hidden=16))
    >>> tuple(model(torch.zeros(3, 1, 8, 8)).shape)
    (3, 10)
    """

    def __init__(self, spec: CNNSpec, *, seed: int = 0):
        super().__init__()
        check_type(spec, CNNSpec, name="spec", caller="SmallCNN", expected="a CNNSpec")
        check_int(seed, name="seed", caller="SmallCNN", low=0)
        self.spec = spec
        generator = torch.Generator().manual_seed(seed)
        self.conv_names = tuple(name for name in spec.layer_names if name.startswith("conv"))
        c_in = spec.in_channels
        for name, c_out in zip(self.conv_names, spec.channels):
            conv = seeded_layer(torch.nn.Conv2d, c_in, c_out, 3, padding=1, fan_in=9 * c_in,
                                generator=generator)
            self.add_module(name, torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.MaxPool2d(2)))
            c_in = c_out
        fc1 = seeded_layer(torch.nn.Linear, spec.flat_features, spec.hidden,
                           fan_in=spec.flat_features, generator=generator)
        self.fc1 = torch.nn.Sequential(fc1, torch.nn.ReLU())
        self.logits = seeded_layer(torch.nn.Linear, spec.hidden, spec.n_classes,
                                   fan_in=spec.hidden, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (B, n_classes) of a (B, C, S, S) batch."""
        for name in self.conv_names:
            x = getattr(self, name)(x)
        return self.logits(self.fc1(torch.flatten(x, 1)))


def _rotation_grid(angles: torch.Tensor, shape, dtype: torch.dtype) -> torch.Tensor:
    # Output pixel p samples the input at R(-angle) p about the centre, in pixel units:
    # affine_grid's normalised coordinates scale x by W/2 and y by H/2, hence H/W, W/H.
    # The matrix is formed in float64 so that cos(90 deg) is 6e-17, not float32's 4e-8.
    height, width = shape[-2], shape[-1]
    radians = torch.deg2rad(angles.to(torch.float64))
    c, s = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(c)
    theta = torch.stack([torch.stack([c, -s * height / width, zero], -1),
                         torch.stack([s * width / height, c, zero], -1)], -2)
    return F.affine_grid(theta.to(dtype), list(shape), align_corners=False)


def _rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    grid = _rotation_grid(angles, x.shape, x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotate_images(images, angles_degrees):
    """Rotate images about their centre, counter-clockwise for positive angles.

    Bilinear resampling with zero padding (module docstring); the operation
    used by the training augmentation.

    Parameters
    ----------
    images : array of shape (N, H, W) or (N, C, H, W)
        Numpy array or torch tensor; every channel turns by its image's angle.
    angles_degrees : float or array of shape (N,)
        One angle for all images, or one per image, in degrees.

    Returns
    -------
    rotated : array of the shape of `images`
        Same type, dtype and device as `images`.

    Examples
    --------
    >>> x = np.zeros((1, 4, 4)); x[0, 1, 2] = 1.0
    >>> bool(np.allclose(rotate_images(x, 90.0), np.rot90(x, 1, axes=(1, 2)), atol=1e-12))
    True
    """
    caller = "rotate_images"
    x, restore = as_tensor(images)
    if x.ndim not in (3, 4) or min(x.shape) < 1:
        raise ValueError(f"The 'images' parameter of {caller} must have shape (N, H, W) or "
                         f"(N, C, H, W) with no empty axis. Got {tuple(x.shape)} instead.")
    check_finite(x, name="images", caller=caller)
    try:
        angles = torch.as_tensor(angles_degrees, dtype=torch.float64, device=x.device)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"The 'angles_degrees' parameter of {caller} must be a float or an "
                        f"array of shape (N,) = ({len(x)},). Got {angles_degrees!r} "
                        f"instead.") from error
    if angles.ndim == 0:
        angles = angles.expand(len(x))
    check_shape(tuple(angles.shape), (len(x),), name="angles_degrees", caller=caller,
                describe=f"() or (N,) = ({len(x)},)")
    check_finite(angles, name="angles_degrees", caller=caller)
    flat = x.unsqueeze(1) if x.ndim == 3 else x
    rotated = _rotate(flat, angles)
    return restore(rotated.squeeze(1) if x.ndim == 3 else rotated)


def _images(images, spec: CNNSpec, caller: str, name: str = "images") -> torch.Tensor:
    x, _ = as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    size, channels = spec.image_size, spec.in_channels
    check_shape(tuple(x.shape), (None, channels, size, size), name=name, caller=caller,
                describe=f"(N, S, S) or (N, C, S, S) with C = spec.in_channels = {channels} and "
                         f"S = spec.image_size = {size}")
    if len(x) < 1:
        raise ValueError(f"The {name!r} parameter of {caller} must hold at least one image. "
                         f"Got shape {tuple(x.shape)} instead.")
    check_finite(x, name=name, caller=caller)
    return x


def _labels(labels, n: int, spec: CNNSpec, caller: str, name: str = "labels") -> torch.Tensor:
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"The {name!r} parameter of {caller} must be an int array of shape "
                        f"(N,) = ({n},). Got dtype {y.dtype} instead.")
    check_shape(y.shape, (n,), name=name, caller=caller, describe=f"(N,) = ({n},)")
    if not (0 <= y.min() and y.max() < spec.n_classes):
        raise ValueError(f"The {name!r} parameter of {caller} must hold ints in [0, "
                         f"spec.n_classes - 1] = [0, {spec.n_classes - 1}]. Got values in "
                         f"[{y.min()}, {y.max()}] instead.")
    return torch.from_numpy(y.astype(np.int64))


def _record(spec, training, x: torch.Tensor, device) -> dict:
    # The images as trained on (float32, N x C x S x S): numpy float64 or a tensor
    # of the same values train the same model and share its checkpoints.
    return record(CHECKPOINT_VERSION, spec, training,
                  image_digest(x.to(torch.float32).contiguous()), device=device)


def _check_specs(spec, training, caller: str) -> None:
    check_type(spec, CNNSpec, name="spec", caller=caller, expected="a CNNSpec")
    check_type(training, ClassifierTraining, name="training", caller=caller,
               expected="a ClassifierTraining")


def checkpoint_key(spec: CNNSpec, training: ClassifierTraining, images, *,
                   device="cpu") -> str:
    """Hash (24 hex digits) of the architecture, the training, the image bytes and the device.

    Parameters
    ----------
    spec, training : CNNSpec, ClassifierTraining
    images : array of shape (N, S, S) or (N, C, S, S)
        Hashed as the float32 tensor the network trains on.
    device : str or torch.device, default="cpu"
        Where the network trains: its type (cpu, cuda) and the dtype enter the hash.

    Examples
    --------
    >>> spec, training = CNNSpec(image_size=8), ClassifierTraining(epochs=1)
    >>> x = np.zeros((3, 8, 8))
    >>> checkpoint_key(spec, training, x) == checkpoint_key(spec, training, x[:, None])
    True
    >>> checkpoint_key(spec, training, x) == checkpoint_key(spec, training, x + 1)
    False
    >>> checkpoint_key(spec, training, x) == checkpoint_key(spec, training, x, device="cuda")
    False
    """
    caller = "checkpoint_key"
    _check_specs(spec, training, caller)
    device = check_device(device, caller)
    return key(_record(spec, training, _images(images, spec, caller), device))


def _epoch_file(folder: Path, epoch: int) -> Path:
    return folder / f"epoch_{epoch:03d}.pt"


def _folder(spec, training, images, checkpoint_dir, device, caller: str) -> Path:
    """The checkpoint folder of a run, from the arguments that give its key, checked."""
    _check_specs(spec, training, caller)
    check_type(checkpoint_dir, (str, os.PathLike), name="checkpoint_dir", caller=caller,
               expected="a str or Path")
    x = _images(images, spec, caller)
    return Path(checkpoint_dir) / key(_record(spec, training, x, check_device(device, caller)))


def _finished_run(folder: Path) -> dict | None:
    """The stored record of a run that wrote all its epochs and its history, else None."""
    file = folder / RECORD_FILE
    run = json.loads(file.read_text()).get("record") if file.is_file() else None
    if run is None or not (folder / HISTORY_FILE).is_file():
        return None
    epochs = range(1, run["epochs_trained"] + 1)
    return run if epochs and all(_epoch_file(folder, e).is_file() for e in epochs) else None


def _validation_loss(model, data):
    images, labels = data
    return F.cross_entropy(model(images), labels)


def _validation_accuracy(model, data):
    images, labels = data
    return {"val_accuracy": (model(images).argmax(1) == labels).double().mean()}


def _no_validation(model, data):
    return torch.zeros(())


def train_classifier(spec: CNNSpec, training: ClassifierTraining, images, labels, *,
                     val_images=None, val_labels=None, checkpoint_dir, device="cpu",
                     progress: bool = True):
    r"""Train :class:`SmallCNN` by Adam on the cross-entropy, saving every epoch.

    The loop is :func:`lib.models.training.train`, one evaluation per epoch.
    Without ``val_images`` it trains ``training.epochs`` epochs. With them
    the mean cross-entropy and the accuracy on the held-out digits are
    evaluated after every epoch, and the run stops early once the best
    held-out cross-entropy has improved by less than ``training.rel_tol`` of
    itself over ``training.window`` epochs, or at a non-finite loss. The
    model returned is the last epoch's, not the best one (module docstring).

    When ``checkpoint_dir/<key>`` already holds a finished run (its record,
    its history and every epoch it trained), the last epoch is loaded
    instead (``weights_only=True``). Otherwise training starts from scratch
    and rewrites them: ``history.csv``, and ``record.json`` with the
    parameters, hashes of the labels and of the held-out data, and, once
    training is over, its record under ``"record"`` (:func:`training_record`).
    The key hashes neither the labels nor the held-out data: other labels or
    another held-out set under the same folder raise a ``ValueError`` rather
    than return the other model. On the CPU the result depends on the arguments
    alone; nothing global (RNG, deterministic flag, threads) changes.

    Parameters
    ----------
    spec, training : CNNSpec, ClassifierTraining
        Architecture; epochs, batch, learning rate, seed, rotations, stopping rule.
    images : array of shape (N, S, S) or (N, C, S, S)
        S = spec.image_size, C = spec.in_channels; numpy or torch, trained on
        in float32.
    labels : int array of shape (N,)
        Classes in [0, spec.n_classes - 1].
    val_images : array of shape (M, S, S) or (M, C, S, S), optional
        Held-out images, never rotated; given together with ``val_labels``.
    val_labels : int array of shape (M,), optional
        Their classes.
    checkpoint_dir : str or Path
        Parent folder of the checkpoint folders; created if missing.
    device : str or torch.device, default="cpu"
        Where to train; the model is returned there. Its type is part of the key.
    progress : bool, default=True
        Show a tqdm bar over steps.

    Returns
    -------
    model : SmallCNN
        After the last epoch trained, in eval mode, on ``device``.
    history : pandas.DataFrame
        One row per epoch trained: ``epoch`` (1-based), ``train_loss`` and
        ``train_accuracy``, means over the epoch's (rotated) batches weighted
        by batch size, as the model moved during the epoch; with held-out
        digits also ``val_loss`` and ``val_accuracy`` after the epoch.

    Examples
    --------
    >>> import tempfile
    >>> spec = CNNSpec(image_size=8, channels=(2,), hidden=4, n_classes=2)
    >>> x, y = np.random.default_rng(0).random((20, 8, 8)), np.arange(20) % 2
    >>> model, history = train_classifier(spec, ClassifierTraining(epochs=2), x, y,
    ...                                   checkpoint_dir=tempfile.mkdtemp(), progress=False)
    >>> history.columns.tolist(), len(history)
    (['epoch', 'train_loss', 'train_accuracy'], 2)
    """
    caller = "train_classifier"
    _check_specs(spec, training, caller)
    x = _images(images, spec, caller).to(torch.float32)
    y = _labels(labels, len(x), spec, caller)
    if (val_images is None) != (val_labels is None):
        given, missing = (("val_images", "val_labels") if val_labels is None
                          else ("val_labels", "val_images"))
        raise ValueError(f"The {missing!r} parameter of {caller} must be given with "
                         f"{given!r}: held-out images and their labels go together. "
                         f"Got None instead.")
    validated = val_images is not None
    if training.rel_tol > 0 and not validated:
        # A stopping rule with nothing to measure it on would be silently ignored.
        raise ValueError(f"The 'val_images' parameter of {caller} must be given when "
                         f"training.rel_tol > 0 (the rule stops on the held-out loss). Got "
                         f"None with rel_tol {training.rel_tol} instead.")
    if validated:
        x_val = _images(val_images, spec, caller, name="val_images").to(torch.float32)
        y_val = _labels(val_labels, len(x_val), spec, caller, name="val_labels")
    check_type(checkpoint_dir, (str, os.PathLike), name="checkpoint_dir", caller=caller,
               expected="a str or Path")
    device = check_device(device, caller)
    parameters = _record(spec, training, x, device)
    entry = {**parameters, "labels": image_digest(y),
             "validation": ({"images": image_digest(x_val), "labels": image_digest(y_val)}
                            if validated else None)}
    folder = Path(checkpoint_dir) / key(parameters)
    if (folder / RECORD_FILE).is_file():
        stored = json.loads((folder / RECORD_FILE).read_text())
        if stored.get("labels") != entry["labels"]:
            raise ValueError(f"The 'labels' parameter of {caller} differs from the labels the "
                             f"checkpoints in {folder} were trained on (same spec, training and "
                             f"images). Use another checkpoint_dir for other labels.")
        if stored.get("validation") != entry["validation"]:
            raise ValueError(f"The 'val_images' parameter of {caller} (with 'val_labels') "
                             f"differs from the held-out data of the checkpoints in {folder} "
                             f"(same spec, training and images). Use another checkpoint_dir "
                             f"for other held-out data, or none.")
    run = _finished_run(folder)
    if run is not None:
        model = load_state(SmallCNN(spec), _epoch_file(folder, run["epochs_trained"]), device)
        return model, pd.read_csv(folder / HISTORY_FILE)

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / RECORD_FILE, entry)
    per_epoch = -(-len(x) // training.batch_size)
    # No held-out digits, nothing to converge on: the rule's tolerance is 0 and a constant
    # stand-in loss only marks the epochs. Nor does a NaN stop the run then, as before the
    # engine; with held-out digits it does ("diverged").
    rule = Convergence(rel_tol=training.rel_tol if validated else 0.0, window=training.window,
                       eval_every=per_epoch, max_steps=training.epochs * per_epoch)
    # The engine tracks the loss; the epoch's accuracy is counted here, summed where it
    # lives and read once per epoch.
    hits = torch.zeros((), dtype=torch.int64, device=device)
    accuracies = []

    def cross_entropy(model, batch, step):
        images, labels = batch
        scores = model(images)
        hits.add_((scores.detach().argmax(1) == labels).sum())
        return F.cross_entropy(scores, labels)

    def rotate(batch, generator, step):
        images, labels = batch
        draw = 2 * torch.rand(len(images), generator=generator, dtype=torch.float64) - 1
        return _rotate(images, (draw * training.rotation_augmentation).to(device)), labels

    def checkpoint(model, row):
        if row["step"] == 0:   # the untrained model's evaluation: not an epoch
            return
        save_state(model, _epoch_file(folder, row["step"] // per_epoch))
        accuracies.append(int(hits) / len(x))
        hits.zero_()

    result = train(lambda init_seed: SmallCNN(spec, seed=init_seed), cross_entropy, (x, y),
                   (x_val, y_val) if validated else (x, y), criterion=rule,
                   batch_size=training.batch_size, optimizer="adam",
                   learning_rate=training.learning_rate,
                   val_fn=_validation_loss if validated else _no_validation,
                   augment=rotate if training.rotation_augmentation > 0 else None,
                   restore_best=False, stop_on_nonfinite=validated,
                   metrics=_validation_accuracy if validated else None,
                   on_evaluation=checkpoint, seed=training.seed, device=device,
                   progress=progress)
    epochs = result.history.iloc[1:]
    history = pd.DataFrame({"epoch": epochs["step"].to_numpy() // per_epoch,
                            "train_loss": epochs["train_loss"].to_numpy(),
                            "train_accuracy": accuracies,
                            **({"val_loss": epochs["val_loss"].to_numpy(),
                                "val_accuracy": epochs["val_accuracy"].to_numpy()}
                               if validated else {})})
    stop = result.record
    if not validated:   # what the engine reports without validation data
        stop = dataclasses.replace(stop, best_step=stop.steps, val_loss=math.nan)
    write_history(folder / HISTORY_FILE, history)
    # Written last: a folder counts as finished once record.json holds "record".
    write_json(folder / RECORD_FILE, {**entry, "record": {**stop.as_dict(),
                                                          "epochs_trained": len(history)}})
    return result.model, history


def training_record(spec: CNNSpec, training: ClassifierTraining, images, *, checkpoint_dir,
                    device="cpu") -> dict:
    """Why and where :func:`train_classifier` stopped, as stored beside its checkpoints.

    Parameters
    ----------
    spec, training, images
        As passed to :func:`train_classifier` (they give the key).
    checkpoint_dir : str or Path
        As passed to :func:`train_classifier`.
    device : str or torch.device, default="cpu"
        Where the network was trained (part of the key).

    Returns
    -------
    record : dict
        :meth:`lib.models.training.TrainingRecord.as_dict` of the run:
        ``stopped`` ("budget", "converged" or "diverged"), ``steps``,
        ``best_step`` (the step of the lowest held-out loss, which is not
        restored; without held-out digits the last step), ``train_loss`` (the
        last epoch's), ``val_loss`` (the lowest, None without held-out
        digits), ``wall_seconds``; and ``epochs_trained``. A cached run reads
        the record of the run that trained it.

    Raises
    ------
    FileNotFoundError
        When no finished run is stored under this key.

    Examples
    --------
    >>> import tempfile
    >>> spec, training = CNNSpec(image_size=8, channels=(2,), hidden=4), ClassifierTraining(2)
    >>> x, y = np.random.default_rng(0).random((20, 8, 8)), np.arange(20) % 10
    >>> folder = tempfile.mkdtemp()
    >>> _ = train_classifier(spec, training, x, y, checkpoint_dir=folder, progress=False)
    >>> run = training_record(spec, training, x, checkpoint_dir=folder)
    >>> run["stopped"], run["epochs_trained"], run["steps"]
    ('budget', 2, 2)
    """
    folder = _folder(spec, training, images, checkpoint_dir, device, "training_record")
    run = _finished_run(folder)
    if run is None:
        raise FileNotFoundError(f"No finished training run at {folder}: train_classifier has "
                                f"not completed one under this checkpoint_dir.")
    return run


def load_checkpoint(spec: CNNSpec, training: ClassifierTraining, images, epoch: int, *,
                    checkpoint_dir, device="cpu") -> SmallCNN:
    """The model after ``epoch`` epochs, as saved by :func:`train_classifier`.

    Parameters
    ----------
    spec, training, images
        As passed to :func:`train_classifier` (they give the key).
    epoch : int
        In [1, training.epochs]; a run that stopped early saved only its
        ``epochs_trained`` (:func:`training_record`).
    checkpoint_dir : str or Path
        As passed to :func:`train_classifier`.
    device : str or torch.device, default="cpu"
        Where the network was trained (part of the key) and where to load it.

    Returns
    -------
    model : SmallCNN
        In eval mode, read with ``torch.load(..., weights_only=True)``.

    Raises
    ------
    FileNotFoundError
        When that epoch was never saved under this key.

    Examples
    --------
    >>> import tempfile
    >>> spec, training = CNNSpec(image_size=8, channels=(2,), hidden=4), ClassifierTraining(2)
    >>> x, y = np.random.default_rng(0).random((20, 8, 8)), np.arange(20) % 10
    >>> folder = tempfile.mkdtemp()
    >>> model, _ = train_classifier(spec, training, x, y, checkpoint_dir=folder, progress=False)
    >>> first = load_checkpoint(spec, training, x, 1, checkpoint_dir=folder)
    >>> bool(torch.equal(first.logits.weight, model.logits.weight))
    False
    """
    caller = "load_checkpoint"
    _check_specs(spec, training, caller)
    check_int(epoch, name="epoch", caller=caller, low=1, high=training.epochs)
    file = _epoch_file(_folder(spec, training, images, checkpoint_dir, device, caller), epoch)
    if not file.is_file():
        raise FileNotFoundError(f"No checkpoint of epoch {epoch} at {file}: train_classifier "
                                f"has not saved it under this checkpoint_dir (a run that "
                                f"stopped early saves fewer epochs: see training_record).")
    return load_state(SmallCNN(spec), file, check_device(device, caller))


def _model_input(model: torch.nn.Module, images, caller: str) -> torch.Tensor:
    check_type(model, SmallCNN, name="model", caller=caller, expected="a SmallCNN")
    parameter = next(model.parameters())
    return _images(images, model.spec, caller).to(parameter.dtype).to(parameter.device)


def accuracy(model: SmallCNN, images, labels, *, batch_size: int = 512) -> float:
    """Share of images whose largest class score is their label, in eval mode.

    The scores are the model's output read by :func:`~lib.models.taps.layer_taps`,
    one batch of images at a time.

    Parameters
    ----------
    model : SmallCNN
    images : array of shape (N, S, S) or (N, C, S, S)
    labels : int array of shape (N,)
    batch_size : int, default=512
        Images per forward pass; does not change the answer.

    Returns
    -------
    accuracy : float
        In [0, 1].

    Examples
    --------
    >>> model = SmallCNN(CNNSpec(image_size=8, channels=(2,), hidden=4))
    >>> 0.0 <= accuracy(model, np.zeros((4, 8, 8)), np.array([0, 1, 2, 3])) <= 1.0
    True
    """
    caller = "accuracy"
    x = _model_input(model, images, caller)
    y = _labels(labels, len(x), model.spec, caller).numpy()
    check_int(batch_size, name="batch_size", caller=caller, low=1)
    scores = torch.cat([layer_taps(model, batch, ["output"])["output"]
                        for batch in x.split(batch_size)])
    return float(np.mean(scores.cpu().numpy().argmax(axis=1) == y))
