r"""MLP autoencoders A = D o E for the Jacobian-spectra chapter, their training and a weight cache.

Our stand-in for the unpublished recipe of Agarwala et al. (arXiv 2107.06386):
an encoder ``E: R^D -> R^d`` of ``n`` linear layers (hidden widths 512, 256,
128, 64, the first ``n - 1`` of them; depth ``n`` in 3, 4, 5 is our reading of
the paper's three networks), a linear latent layer, and a mirrored decoder
``D: R^d -> R^D`` ending in a sigmoid, so reconstructions lie in [0, 1]. Only
Linear layers and elementwise activations, nothing in place or batch-mixing:
``model.encoder`` and ``model.decoder`` work under ``torch.func``
(``functional_call``, ``vmap``, ``jacfwd``).

Training minimises the MSE over pixels and points with Adam (or plain SGD) on
shuffled minibatches, through the engine :func:`lib.models.training.train`
with one evaluation per epoch: with a held-out share of the images it stops
when their MSE has converged (``TrainingSpec.rel_tol``, ``window``) or at the
budget of ``epochs``, and records why (``TrainingRecord``). All randomness comes from ``TrainingSpec.seed`` through
private :class:`torch.Generator` objects (initial weights by PyTorch's default
law U(-1/sqrt(fan_in), 1/sqrt(fan_in)); minibatch order), so one seed gives
bit-identical weights on the CPU and the global RNG is never touched.
:func:`trained_autoencoder` caches weights under a hash of every parameter and
of the image bytes, read back with ``torch.load(..., weights_only=True)``;
:func:`trained_autoencoder_result` adds the record and keeps the weights of
chosen epochs (:func:`autoencoder_checkpoint`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib._arrays import as_tensor
from lib._checks import check_finite, check_in, check_int, check_real, check_shape
from lib.models._shared import (cached_training, check_cache, check_device, check_schedule,
                                check_type, image_digest, key, load_state, record, save_state,
                                seeded_layer, seeds)
from lib.models.training import Convergence, TrainingResult, train

__all__ = ["ACTIVATIONS", "DEPTH_WIDTHS", "OPTIMIZERS", "OUTPUTS", "Autoencoder",
           "AutoencoderSpec", "TrainingSpec", "autoencoder_checkpoint", "cache_key",
           "reconstruction_error", "train_autoencoder", "trained_autoencoder",
           "trained_autoencoder_result"]

# Hidden widths of the encoder by depth n: n linear layers, the last one to the latent space.
DEPTH_WIDTHS = {3: (512, 256), 4: (512, 256, 128), 5: (512, 256, 128, 64)}
# All three have forward-mode derivatives (jacfwd); ReLU's at 0 is taken as 0.
ACTIVATIONS = {"relu": torch.nn.ReLU, "elu": torch.nn.ELU, "tanh": torch.nn.Tanh}
OUTPUTS = {"sigmoid": torch.nn.Sigmoid, "linear": None}
OPTIMIZERS = ("adam", "sgd")
# Part of every cache key: bump it when training changes what a given spec produces.
# 2: histories and records of runs without held-out images come from the engine's scheduled
# evaluations (no stand-in validation loss); runs with them may stop on the convergence rule.
CACHE_VERSION = 2


@dataclass(frozen=True)
class AutoencoderSpec:
    """Architecture of an MLP autoencoder.

    Parameters
    ----------
    input_dim : int, default=784
        Ambient dimension D (28 x 28 pixels for MNIST).
    latent_dim : int, default=10
        Latent dimension d, in [1, input_dim].
    depth : {3, 4, 5}, default=4
        Number n of linear layers of the encoder (and of the decoder).
    activation : {"relu", "elu", "tanh"}, default="relu"
        Activation after every hidden layer; the latent layer is linear.
    output : {"sigmoid", "linear"}, default="sigmoid"
        Activation of the decoder's last layer; sigmoid suits pixels in [0, 1].
    widths : tuple of int, optional
        Hidden widths of the encoder, ``depth - 1`` of them; the decoder uses
        them reversed. Default ``DEPTH_WIDTHS[depth]``, the stand-in recipe;
        pass smaller ones for small inputs, e.g. (32, 16) with depth 3 for
        8 x 8 digits.

    Examples
    --------
    >>> AutoencoderSpec(depth=3).layer_widths
    (784, 512, 256, 10)
    >>> AutoencoderSpec(input_dim=64, latent_dim=4, depth=3, widths=(32, 16)).layer_widths
    (64, 32, 16, 4)
    """

    input_dim: int = 784
    latent_dim: int = 10
    depth: int = 4
    activation: str = "relu"
    output: str = "sigmoid"
    widths: tuple[int, ...] | None = None

    def __post_init__(self):
        caller = "AutoencoderSpec"
        check_int(self.input_dim, name="input_dim", caller=caller, low=1)
        check_int(self.latent_dim, name="latent_dim", caller=caller, low=1, high=self.input_dim)
        check_int(self.depth, name="depth", caller=caller, low=min(DEPTH_WIDTHS),
                  high=max(DEPTH_WIDTHS))
        check_in(self.activation, tuple(ACTIVATIONS), name="activation", caller=caller)
        check_in(self.output, tuple(OUTPUTS), name="output", caller=caller)
        if self.widths is not None:
            widths = self.widths
            message = (f"The 'widths' parameter of {caller} must be a tuple of depth - 1 = "
                       f"{self.depth - 1} ints in [1, inf). Got {widths!r} instead.")
            if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or any(
                    isinstance(w, bool) or not isinstance(w, numbers.Integral) for w in widths):
                raise TypeError(message)
            if len(widths) != self.depth - 1 or min(widths) < 1:
                raise ValueError(message)
            # A tuple of plain ints keeps the spec hashable and its cache key stable.
            object.__setattr__(self, "widths", tuple(int(w) for w in widths))

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """Hidden widths of the encoder, input side first."""
        return DEPTH_WIDTHS[self.depth] if self.widths is None else self.widths

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Widths of the encoder from input to latent: ``(D, *hidden_widths, d)``."""
        return (self.input_dim, *self.hidden_widths, self.latent_dim)


@dataclass(frozen=True)
class TrainingSpec:
    """How an autoencoder is trained.

    Parameters
    ----------
    epochs : int
        The budget: at most this many passes over the training images, in
        [1, inf); all of them unless ``rel_tol > 0`` stops the run earlier.
    batch_size : int, default=128
        Images per optimiser step; the last batch of an epoch may be smaller.
    learning_rate : float, default=1e-3
        Step size, in (0, inf).
    optimizer : {"adam", "sgd"}, default="adam"
        ``torch.optim.Adam`` with its default betas, or plain ``torch.optim.SGD``.
    seed : int, default=0
        Seeds the initial weights, the minibatch order and the validation draw.
    validation : float, default=0.0
        Share of the images held out (drawn with the seed) to report a
        validation loss per epoch, in [0, 1); 0 trains on all of them.
    rel_tol : float, default=0.0
        The convergence rule (:class:`lib.models.training.Convergence`, one
        evaluation per epoch): stop once the best validation loss has improved
        by less than this share of itself over the last ``window`` epochs;
        in [0, inf). 0 never stops early: the run trains the whole budget.
        Needs ``validation > 0``.
    window : int, default=5
        Epochs the improvement is measured over, in [1, inf).
    restore_best : bool, default=True
        With held-out images, return the state of the epoch with the lowest
        validation loss (the stopping point) rather than the last one.
        Without them the last state is returned.

    Examples
    --------
    >>> TrainingSpec(epochs=300).batch_size
    128
    >>> TrainingSpec(epochs=300, rel_tol=0.01)
    Traceback (most recent call last):
    ...
    ValueError: The 'rel_tol' parameter of TrainingSpec must be 0 when 'validation' is 0: a convergence rule needs held-out images. Got 0.01 instead.
    """

    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    validation: float = 0.0
    rel_tol: float = 0.0
    window: int = 5
    restore_best: bool = True

    def __post_init__(self):
        caller = "TrainingSpec"
        check_schedule(self, caller)
        check_in(self.optimizer, OPTIMIZERS, name="optimizer", caller=caller)
        # Stored as float and int: rel_tol=0 and rel_tol=0.0 are one training, one key.
        object.__setattr__(self, "validation", check_real(
            self.validation, name="validation", caller=caller, low=0.0, high=1.0,
            high_open=True))
        object.__setattr__(self, "rel_tol", check_real(self.rel_tol, name="rel_tol",
                                                       caller=caller, low=0.0, high_open=True))
        object.__setattr__(self, "window", check_int(self.window, name="window", caller=caller,
                                                     low=1))
        if not isinstance(self.restore_best, (bool, np.bool_)):
            raise TypeError(f"The 'restore_best' parameter of {caller} must be a bool. "
                            f"Got {self.restore_best!r} instead.")
        object.__setattr__(self, "restore_best", bool(self.restore_best))
        if self.rel_tol > 0 and self.validation == 0:
            raise ValueError(f"The 'rel_tol' parameter of {caller} must be 0 when 'validation' "
                             f"is 0: a convergence rule needs held-out images. Got "
                             f"{self.rel_tol} instead.")


def _stack(widths, hidden: type, last: type | None,
           generator: torch.Generator) -> torch.nn.Sequential:
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [seeded_layer(torch.nn.Linear, n_in, n_out, fan_in=n_in, generator=generator),
                   hidden()]
    layers.pop()   # the last layer gets `last`, or nothing (linear)
    if last is not None:
        layers.append(last())
    return torch.nn.Sequential(*layers)


class Autoencoder(torch.nn.Module):
    """MLP autoencoder A = D o E with a mirrored decoder.

    Parameters
    ----------
    spec : AutoencoderSpec
        Widths, depth and activations.
    seed : int, default=0
        Seed of the initial weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Attributes
    ----------
    encoder : torch.nn.Sequential
        (B, D) -> (B, d): ``depth`` Linear layers, the activation after all
        but the last.
    decoder : torch.nn.Sequential
        (B, d) -> (B, D): ``depth`` Linear layers, the activation after all
        but the last, and the sigmoid after the last when ``spec.output`` is
        "sigmoid".

    Examples
    --------
    >>> model = Autoencoder(AutoencoderSpec(input_dim=64, latent_dim=3, depth=3, widths=(32, 16)))
    >>> x = torch.rand(5, 64)
    >>> tuple(model.encoder(x).shape), tuple(model(x).shape)
    ((5, 3), (5, 64))
    """

    def __init__(self, spec: AutoencoderSpec, *, seed: int = 0):
        super().__init__()
        check_type(spec, AutoencoderSpec, name="spec", caller="Autoencoder",
                   expected="an AutoencoderSpec")
        check_int(seed, name="seed", caller="Autoencoder", low=0)
        self.spec = spec
        generator = torch.Generator().manual_seed(seed)
        hidden = ACTIVATIONS[spec.activation]
        widths = spec.layer_widths
        self.encoder = _stack(widths, hidden, None, generator)
        self.decoder = _stack(widths[::-1], hidden, OUTPUTS[spec.output], generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction D(E(x)) of a (B, D) batch."""
        return self.decoder(self.encoder(x))


def _images(images, spec: AutoencoderSpec, caller: str) -> torch.Tensor:
    x, _ = as_tensor(images)
    check_shape(tuple(x.shape), (None, spec.input_dim), name="images", caller=caller,
                describe=f"(N, spec.input_dim) = (N, {spec.input_dim})")
    if x.shape[0] < 1:
        raise ValueError(f"The 'images' parameter of {caller} must hold at least one image. "
                         f"Got shape {tuple(x.shape)} instead.")
    check_finite(x, name="images", caller=caller)
    return x


def _check_specs(spec, training, caller: str) -> None:
    check_type(spec, AutoencoderSpec, name="spec", caller=caller, expected="an AutoencoderSpec")
    check_type(training, TrainingSpec, name="training", caller=caller, expected="a TrainingSpec")


def train_autoencoder(spec: AutoencoderSpec, training: TrainingSpec, images, *,
                      device="cpu", progress: bool = True):
    r"""Train an autoencoder on flat images by minibatch MSE.

    The loss of a batch B is :math:`\frac{1}{|B| D}\sum_{x\in B}|A(x) - x|^2`;
    an epoch's ``train_loss`` is the batch losses' mean weighted by batch size
    (the model moves during the epoch), ``val_loss`` the loss on the held-out
    images after it. On the CPU the result depends on the arguments alone;
    nothing global (RNG, deterministic-algorithm flag, threads) is changed.
    The loop is :func:`lib.models.training.train` with one evaluation per
    epoch: with held-out images (``training.validation > 0``) it stops once
    the validation loss has converged (``training.rel_tol``,
    ``training.window``) or at the budget of ``training.epochs`` epochs, and
    keeps the best validated state (``training.restore_best``); without them
    it trains the whole budget and keeps the last state.

    Parameters
    ----------
    spec, training : AutoencoderSpec, TrainingSpec
        Architecture; epochs, batch, optimiser, learning rate, seed, validation.
    images : array of shape (N, spec.input_dim)
        Flat images, numpy or torch; trained on in float32.
    device : str or torch.device, default="cpu"
        Where to train; the model is returned there.
    progress : bool, default=True
        Show a tqdm bar over epochs.

    Returns
    -------
    model : Autoencoder
        Trained, in eval mode, on ``device``.
    history : pandas.DataFrame
        One row per epoch: ``epoch`` (1-based), ``train_loss`` and, when
        ``training.validation > 0``, ``val_loss``.

    Examples
    --------
    >>> spec = AutoencoderSpec(input_dim=4, latent_dim=2, depth=3, widths=(8, 4))
    >>> x = np.random.default_rng(0).random((50, 4))
    >>> model, history = train_autoencoder(spec, TrainingSpec(epochs=3), x, progress=False)
    >>> history.columns.tolist(), len(history)
    (['epoch', 'train_loss'], 3)
    """
    result = _train(spec, training, images, device=device, progress=progress,
                    caller="train_autoencoder")
    return result.model, result.history


def _train(spec, training, images, *, device, progress, caller,
           on_epoch=None) -> TrainingResult:
    """:func:`train_autoencoder` with the engine's record: what the weight cache stores.

    ``on_epoch(epoch, model)`` is called after every epoch with the model in its
    current state (checkpoints).
    """
    _check_specs(spec, training, caller)
    x = _images(images, spec, caller).to(torch.float32)
    device = check_device(device, caller)
    split_seed = seeds(training.seed)[2]

    n_val = max(1, round(training.validation * len(x))) if training.validation > 0 else 0
    x_val = None
    if n_val > 0:
        if n_val >= len(x):
            raise ValueError(f"The 'validation' share {training.validation} of {caller} leaves no "
                             f"training image out of {len(x)}. Use a smaller share.")
        held = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
        x, x_val = x[held[n_val:]], x[held[:n_val]]
    # One evaluation per epoch; an epoch's train_loss is the engine's mean since the previous
    # evaluation. Without held-out images the engine evaluates on the same schedule with a NaN
    # validation loss and trains the whole budget, keeping the last state.
    per_epoch = -(-len(x) // training.batch_size)
    rule = Convergence(rel_tol=training.rel_tol, window=training.window, eval_every=per_epoch,
                       max_steps=int(training.epochs) * per_epoch)

    def checkpoint(model, row):
        if row["step"] > 0:
            on_epoch(int(row["step"]) // per_epoch, model)

    result = train(lambda init_seed: Autoencoder(spec, seed=init_seed), _reconstruction_loss, x,
                   x_val, criterion=rule, batch_size=training.batch_size,
                   optimizer=training.optimizer, learning_rate=training.learning_rate,
                   restore_best=training.restore_best and n_val > 0,
                   stop_on_nonfinite=n_val > 0,
                   on_evaluation=None if on_epoch is None else checkpoint,
                   seed=training.seed, device=device, progress=progress)
    history = result.history.iloc[1:]   # drop the untrained model's evaluation at step 0
    columns = {"epoch": history["step"].to_numpy() // per_epoch,
               "train_loss": history["train_loss"].to_numpy()}
    if n_val > 0:
        columns["val_loss"] = history["val_loss"].to_numpy()
    return TrainingResult(model=result.model, history=pd.DataFrame(columns), record=result.record)


def _reconstruction_loss(model, batch, step):
    return torch.nn.functional.mse_loss(model(batch[0]), batch[0])


def cache_key(spec: AutoencoderSpec, training: TrainingSpec, data_key: str, images, *,
              device="cpu") -> str:
    """Hash (24 hex digits) of everything that determines a trained model.

    Parameters
    ----------
    spec, training : AutoencoderSpec, TrainingSpec
    data_key : str
        A readable name of the data (source, split, seed).
    images : array of shape (N, D)
        The training images; their dtype, shape and bytes enter the hash.
    device : str or torch.device, default="cpu"
        Where the model trains: its type (cpu, cuda) enters the hash, with
        the dtype (float32), since a GPU rounds differently.

    Examples
    --------
    >>> spec, training = AutoencoderSpec(input_dim=4, latent_dim=2, depth=3), TrainingSpec(epochs=1)
    >>> x = np.zeros((3, 4))
    >>> cache_key(spec, training, "zeros", x) == cache_key(spec, training, "zeros", x.copy())
    True
    >>> cache_key(spec, training, "zeros", x) == cache_key(spec, training, "zeros", x + 1)
    False
    >>> cache_key(spec, training, "zeros", x) == cache_key(spec, training, "zeros", x,
    ...                                                    device="cuda")
    False
    """
    device = check_device(device, "cache_key")
    return key(_record(spec, training, data_key, images, device))


def _record(spec, training, data_key, images, device) -> dict:
    return record(CACHE_VERSION, spec, training, image_digest(images), device=device,
                  data_key=data_key)


def trained_autoencoder(spec: AutoencoderSpec, training: TrainingSpec, data_key: str, images, *,
                        cache_dir, device="cpu", progress: bool = True):
    """:func:`train_autoencoder`, or its earlier result read from ``cache_dir``.

    The files are ``<key>.pt`` (the ``state_dict``), ``<key>.csv`` (the
    history) and ``<key>.json`` (the parameters, for people, and the
    training record), with ``key = cache_key(spec, training, data_key,
    images)``; each is written to a temporary file in ``cache_dir`` and
    renamed into place, the weights last, so a model counts as cached once
    ``<key>.pt`` exists. The device type is part of the key: a CPU run never
    reads weights a GPU trained.

    Parameters
    ----------
    spec, training, data_key, images
        As for :func:`cache_key`; ``images`` has shape (N, spec.input_dim).
    cache_dir : str or Path
        Folder of the cache; created if missing.
    device, progress
        As for :func:`train_autoencoder`; the model is loaded onto ``device``.

    Returns
    -------
    model, history : Autoencoder, pandas.DataFrame
        As returned by :func:`train_autoencoder`.

    Examples
    --------
    >>> import tempfile
    >>> spec = AutoencoderSpec(input_dim=4, latent_dim=2, depth=3, widths=(8, 4))
    >>> x, folder = np.random.default_rng(0).random((20, 4)), tempfile.mkdtemp()
    >>> first, _ = trained_autoencoder(spec, TrainingSpec(epochs=2), "demo", x, cache_dir=folder,
    ...                                progress=False)
    >>> again, _ = trained_autoencoder(spec, TrainingSpec(epochs=2), "demo", x, cache_dir=folder)
    >>> bool(torch.equal(first.decoder[0].weight, again.decoder[0].weight))
    True
    """
    result = trained_autoencoder_result(spec, training, data_key, images, cache_dir=cache_dir,
                                        device=device, progress=progress)
    return result.model, result.history


def _checkpoint_file(cache_dir, name: str, epoch: int) -> Path:
    return Path(cache_dir) / f"{name}.epoch-{epoch}.pt"


def trained_autoencoder_result(spec: AutoencoderSpec, training: TrainingSpec, data_key: str,
                               images, *, cache_dir, checkpoints=(), device="cpu",
                               progress: bool = True) -> TrainingResult:
    """:func:`trained_autoencoder` with the training record, and weights kept at chosen epochs.

    Parameters
    ----------
    spec, training, data_key, images, cache_dir, device, progress
        As for :func:`trained_autoencoder`.
    checkpoints : sequence of int, default=()
        Epochs (each in [1, training.epochs]) after which the weights are kept,
        as ``<key>.epoch-<k>.pt`` beside the model; those beyond the epoch the
        run stopped at are not written. A cached model missing one of them
        is trained again (with the same bits). Read them with
        :func:`autoencoder_checkpoint`.

    Returns
    -------
    TrainingResult
        ``model`` and ``history`` as for :func:`trained_autoencoder`, and
        ``record``: why and at which step the run stopped
        (:class:`lib.models.training.TrainingRecord`).

    Examples
    --------
    >>> import tempfile
    >>> spec = AutoencoderSpec(input_dim=4, latent_dim=2, depth=3, widths=(8, 4))
    >>> x, folder = np.random.default_rng(0).random((40, 4)), tempfile.mkdtemp()
    >>> training = TrainingSpec(epochs=3, batch_size=8, validation=0.2)
    >>> result = trained_autoencoder_result(spec, training, "demo", x, cache_dir=folder,
    ...                                     checkpoints=(1, 2), progress=False)
    >>> result.record.stopped, result.record.steps
    ('budget', 12)
    >>> first = autoencoder_checkpoint(spec, training, "demo", x, 1, cache_dir=folder)
    >>> bool(torch.equal(first.decoder[0].weight, result.model.decoder[0].weight))
    False
    """
    caller = "trained_autoencoder_result"
    _check_specs(spec, training, caller)
    check_cache(data_key, cache_dir, caller)
    _images(images, spec, caller)
    device = check_device(device, caller)
    epochs = _check_epochs(checkpoints, training, caller)
    entry = _record(spec, training, data_key, images, device)
    name = key(entry)
    if epochs:
        folder = Path(cache_dir)
        meta, weights = folder / f"{name}.json", folder / f"{name}.pt"
        if weights.is_file() and meta.is_file():
            import json
            stored = json.loads(meta.read_text()).get("record") or {}
            per_epoch = _per_epoch(training, len(images))
            reached = int(stored.get("steps", 0)) // per_epoch
            if any(not _checkpoint_file(folder, name, k).is_file() for k in epochs if k <= reached):
                weights.unlink()    # retrained below, with the same bits, and the checkpoints

    def on_epoch(epoch, model):
        if epoch in epochs:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            save_state(model, _checkpoint_file(cache_dir, name, epoch))

    return cached_training(cache_dir, entry, build=lambda: Autoencoder(spec), device=device,
                           train=lambda: _train(spec, training, images, device=device,
                                                progress=progress, caller=caller,
                                                on_epoch=on_epoch if epochs else None))


def autoencoder_checkpoint(spec: AutoencoderSpec, training: TrainingSpec, data_key: str, images,
                           epoch: int, *, cache_dir, device="cpu") -> Autoencoder:
    """The weights after ``epoch`` epochs that :func:`trained_autoencoder_result` kept.

    Raises ``ValueError`` naming ``epoch`` when no such checkpoint was written
    (never requested, or beyond the epoch the run stopped at).
    """
    caller = "autoencoder_checkpoint"
    _check_specs(spec, training, caller)
    check_cache(data_key, cache_dir, caller)
    check_int(epoch, name="epoch", caller=caller, low=1, high=training.epochs)
    device = check_device(device, caller)
    path = _checkpoint_file(cache_dir, key(_record(spec, training, data_key, images, device)),
                            epoch)
    if not path.is_file():
        raise ValueError(f"The 'epoch' parameter of {caller} must name an epoch whose weights "
                         f"trained_autoencoder_result kept (its 'checkpoints', up to the epoch "
                         f"the run stopped at). Got {epoch} instead.")
    return load_state(Autoencoder(spec), path, device)


def _per_epoch(training: TrainingSpec, n_images: int) -> int:
    """Optimiser steps per epoch, on the images left after the validation split."""
    n_val = max(1, round(training.validation * n_images)) if training.validation > 0 else 0
    return -(-(n_images - n_val) // training.batch_size)


def _check_epochs(checkpoints, training, caller) -> frozenset[int]:
    if isinstance(checkpoints, (str, bytes)) or not hasattr(checkpoints, "__iter__"):
        raise TypeError(f"The 'checkpoints' parameter of {caller} must be a sequence of ints in "
                        f"[1, {training.epochs}]. Got {checkpoints!r} instead.")
    return frozenset(check_int(k, name="checkpoints", caller=caller, low=1,
                               high=training.epochs) for k in checkpoints)


def reconstruction_error(model: torch.nn.Module, images, *, batch_size: int = 1024):
    r"""Per-image MSE :math:`|A(x) - x|^2 / D`, without gradients.

    Parameters
    ----------
    model : Autoencoder
        Any module mapping a (B, D) batch to (B, D); its parameters' dtype and
        device are used.
    images : array of shape (N, D)
        Flat images, numpy or torch.
    batch_size : int, default=1024
        Images per forward pass; bounds memory, does not change the answer.

    Returns
    -------
    error : array of shape (N,)
        float64 numpy array for numpy input, a tensor on the input's device
        for tensor input. The difference is formed in the model's dtype and
        squared and averaged in float64.

    Examples
    --------
    >>> model = Autoencoder(AutoencoderSpec(input_dim=4, latent_dim=2, depth=3, widths=(8, 4)))
    >>> reconstruction_error(model, np.zeros((3, 4))).shape
    (3,)
    """
    caller = "reconstruction_error"
    check_type(model, torch.nn.Module, name="model", caller=caller,
               expected="a torch.nn.Module")
    check_int(batch_size, name="batch_size", caller=caller, low=1)
    x, restore = as_tensor(images)
    if x.ndim != 2:
        raise ValueError(f"The 'images' parameter of {caller} must have shape (N, D). "
                         f"Got {tuple(x.shape)} instead.")
    parameter = next(model.parameters())
    errors = []
    with torch.no_grad():
        for chunk in x.split(batch_size):
            xb = chunk.to(device=parameter.device, dtype=parameter.dtype)
            difference = (model(xb) - xb).to(torch.float64)
            errors.append(difference.square().mean(dim=1).to(x.device))
    result = torch.cat(errors) if errors else torch.zeros(0, dtype=torch.float64)
    return restore(result)
