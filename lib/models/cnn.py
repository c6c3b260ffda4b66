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

All randomness of :func:`train_classifier` comes from
``ClassifierTraining.seed`` through private :class:`torch.Generator` objects:
initial weights (PyTorch's default law, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
for weights and biases), minibatch order and rotation angles, three
independent streams, so switching augmentation on leaves the batch order
alone. One seed gives bit-identical weights on the CPU; the global RNG is
never touched. After every epoch the ``state_dict`` is written to
``checkpoint_dir/<key>/epoch_{k:03d}.pt`` (atomically,
:func:`lib.store.write_atomic`), with ``key = checkpoint_key(spec, training, images)``.
"""

from __future__ import annotations

import json
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
                                load_state, record, save_state, seeded_layer, seeds,
                                write_history)
from lib.models.taps import layer_taps
from lib.store import write_json

__all__ = ["CNNSpec", "ClassifierTraining", "SmallCNN", "accuracy", "checkpoint_key",
           "load_checkpoint", "rotate_images", "train_classifier"]

# Part of every checkpoint key: bump it when training changes what a given spec produces.
CHECKPOINT_VERSION = 1
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
    """How :class:`SmallCNN` is trained: Adam on the cross-entropy.

    Parameters
    ----------
    epochs : int
        Passes over the training images, in [1, inf); one checkpoint each.
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

    def __post_init__(self):
        caller = "ClassifierTraining"
        check_schedule(self, caller)
        angle = check_real(self.rotation_augmentation, name="rotation_augmentation",
                           caller=caller, low=0.0, high=180.0)
        object.__setattr__(self, "rotation_augmentation", angle)


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


def _images(images, spec: CNNSpec, caller: str) -> torch.Tensor:
    x, _ = as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    size, channels = spec.image_size, spec.in_channels
    check_shape(tuple(x.shape), (None, channels, size, size), name="images", caller=caller,
                describe=f"(N, S, S) or (N, C, S, S) with C = spec.in_channels = {channels} and "
                         f"S = spec.image_size = {size}")
    if len(x) < 1:
        raise ValueError(f"The 'images' parameter of {caller} must hold at least one image. "
                         f"Got shape {tuple(x.shape)} instead.")
    check_finite(x, name="images", caller=caller)
    return x


def _labels(labels, n: int, spec: CNNSpec, caller: str) -> torch.Tensor:
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise TypeError(f"The 'labels' parameter of {caller} must be an int array of shape "
                        f"(N,) = ({n},). Got dtype {y.dtype} instead.")
    check_shape(y.shape, (n,), name="labels", caller=caller, describe=f"(N,) = ({n},)")
    if not (0 <= y.min() and y.max() < spec.n_classes):
        raise ValueError(f"The 'labels' parameter of {caller} must hold ints in [0, "
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


def train_classifier(spec: CNNSpec, training: ClassifierTraining, images, labels, *,
                     checkpoint_dir, device="cpu", progress: bool = True):
    r"""Train :class:`SmallCNN` by Adam on the cross-entropy, saving every epoch.

    When ``checkpoint_dir/<key>`` already holds every epoch's checkpoint and
    the history, the last epoch is loaded instead (``weights_only=True``).
    Otherwise training starts from scratch and rewrites them; the history
    goes to ``history.csv`` and the parameters, with a hash of the labels, to
    ``record.json``. The key does not hash the labels: the same images with
    other labels (say, shuffled) under the same folder raise a ``ValueError``
    rather than return the other model. On the CPU the result depends on the
    arguments alone; nothing global (RNG, deterministic flag, threads) changes.

    Parameters
    ----------
    spec, training : CNNSpec, ClassifierTraining
        Architecture; epochs, batch, learning rate, seed, rotations.
    images : array of shape (N, S, S) or (N, C, S, S)
        S = spec.image_size, C = spec.in_channels; numpy or torch, trained on
        in float32.
    labels : int array of shape (N,)
        Classes in [0, spec.n_classes - 1].
    checkpoint_dir : str or Path
        Parent folder of the checkpoint folders; created if missing.
    device : str or torch.device, default="cpu"
        Where to train; the model is returned there. Its type is part of the key.
    progress : bool, default=True
        Show a tqdm bar over epochs.

    Returns
    -------
    model : SmallCNN
        After the last epoch, in eval mode, on ``device``.
    history : pandas.DataFrame
        One row per epoch: ``epoch`` (1-based), ``train_loss`` and
        ``train_accuracy``, means over the epoch's (rotated) batches weighted
        by batch size, as the model moved during the epoch.

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
    from tqdm import tqdm  # plain tqdm: tqdm.auto needs ipywidgets, which the book lacks

    caller = "train_classifier"
    _check_specs(spec, training, caller)
    x = _images(images, spec, caller).to(torch.float32)
    y = _labels(labels, len(x), spec, caller)
    check_type(checkpoint_dir, (str, os.PathLike), name="checkpoint_dir", caller=caller,
               expected="a str or Path")
    device = check_device(device, caller)
    entry = {**_record(spec, training, x, device), "labels": image_digest(y)}
    folder = Path(checkpoint_dir) / key({k: v for k, v in entry.items() if k != "labels"})
    files = [_epoch_file(folder, epoch) for epoch in range(1, training.epochs + 1)]
    if (folder / RECORD_FILE).is_file():
        stored = json.loads((folder / RECORD_FILE).read_text())
        if stored.get("labels") != entry["labels"]:
            raise ValueError(f"The 'labels' parameter of {caller} differs from the labels the "
                             f"checkpoints in {folder} were trained on (same spec, training and "
                             f"images). Use another checkpoint_dir for other labels.")
    if all(f.is_file() for f in files) and (folder / HISTORY_FILE).is_file():
        return load_state(SmallCNN(spec), files[-1], device), pd.read_csv(folder / HISTORY_FILE)

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / RECORD_FILE, entry)
    init_seed, order_seed, angle_seed = seeds(training.seed)
    model = SmallCNN(spec, seed=init_seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.learning_rate)
    # Both generators live on the CPU: the same batches and angles on any device.
    order = torch.Generator().manual_seed(order_seed)
    angles = torch.Generator().manual_seed(angle_seed)
    x, y = x.to(device), y.to(device)
    rows = []
    bar = tqdm(files, desc=f"cnn {spec.channels}", unit="epoch", disable=not progress,
               leave=False)
    for epoch, file in enumerate(bar, start=1):
        model.train()
        # Sums stay where they live and are read once per epoch, not once per step.
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        hits = torch.zeros((), dtype=torch.int64, device=device)
        for batch in torch.randperm(len(x), generator=order).to(device).split(training.batch_size):
            xb, yb = x[batch], y[batch]
            if training.rotation_augmentation > 0:
                draw = (2 * torch.rand(len(batch), generator=angles, dtype=torch.float64) - 1)
                xb = _rotate(xb, (draw * training.rotation_augmentation).to(device))
            scores = model(xb)
            loss = F.cross_entropy(scores, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * len(batch)
            hits += (scores.detach().argmax(1) == yb).sum()
        rows.append({"epoch": epoch, "train_loss": float(loss_sum) / len(x),
                     "train_accuracy": int(hits) / len(x)})
        save_state(model, file)
        bar.set_postfix(loss=f"{rows[-1]['train_loss']:.4g}")
    bar.close()
    history = pd.DataFrame(rows)
    # Written last: a folder counts as complete only once the history is there.
    write_history(folder / HISTORY_FILE, history)
    return model.eval(), history


def load_checkpoint(spec: CNNSpec, training: ClassifierTraining, images, epoch: int, *,
                    checkpoint_dir, device="cpu") -> SmallCNN:
    """The model after ``epoch`` epochs, as saved by :func:`train_classifier`.

    Parameters
    ----------
    spec, training, images
        As passed to :func:`train_classifier` (they give the key).
    epoch : int
        In [1, training.epochs].
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
    check_type(checkpoint_dir, (str, os.PathLike), name="checkpoint_dir", caller=caller,
               expected="a str or Path")
    device = check_device(device, caller)
    file = _epoch_file(Path(checkpoint_dir) / checkpoint_key(spec, training, images,
                                                            device=device), epoch)
    if not file.is_file():
        raise FileNotFoundError(f"No checkpoint of epoch {epoch} at {file}: train_classifier "
                                f"has not saved it under this checkpoint_dir.")
    return load_state(SmallCNN(spec), file, device)


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
