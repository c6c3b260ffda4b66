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
shuffled minibatches. All randomness comes from ``TrainingSpec.seed`` through
private :class:`torch.Generator` objects (initial weights by PyTorch's default
law U(-1/sqrt(fan_in), 1/sqrt(fan_in)); minibatch order), so one seed gives
bit-identical weights on the CPU and the global RNG is never touched.
:func:`trained_autoencoder` caches weights under a hash of every parameter and
of the image bytes, read back with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from lib._arrays import as_tensor
from lib._checks import check_finite, check_in, check_int, check_real, check_shape
from lib.models._shared import (cached_training, check_cache, check_device, check_schedule,
                                check_type, image_digest, key, record, seeded_layer, seeds)
from lib.models.training import Convergence, TrainingResult, train

__all__ = ["ACTIVATIONS", "DEPTH_WIDTHS", "OPTIMIZERS", "OUTPUTS", "Autoencoder",
           "AutoencoderSpec", "TrainingSpec", "cache_key", "reconstruction_error",
           "train_autoencoder", "trained_autoencoder"]

# Hidden widths of the encoder by depth n: n linear layers, the last one to the latent space.
DEPTH_WIDTHS = {3: (512, 256), 4: (512, 256, 128), 5: (512, 256, 128, 64)}
# All three have forward-mode derivatives (jacfwd); ReLU's at 0 is taken as 0.
ACTIVATIONS = {"relu": torch.nn.ReLU, "elu": torch.nn.ELU, "tanh": torch.nn.Tanh}
OUTPUTS = {"sigmoid": torch.nn.Sigmoid, "linear": None}
OPTIMIZERS = ("adam", "sgd")
# Part of every cache key: bump it when training changes what a given spec produces.
CACHE_VERSION = 1


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
        """Widths of the encoder from input to latent: (D, *hidden_widths, d)."""
        return (self.input_dim, *self.hidden_widths, self.latent_dim)


@dataclass(frozen=True)
class TrainingSpec:
    """How an autoencoder is trained.

    Parameters
    ----------
    epochs : int
        Passes over the training images, in [1, inf).
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

    Examples
    --------
    >>> TrainingSpec(epochs=300).batch_size
    128
    """

    epochs: int
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    validation: float = 0.0

    def __post_init__(self):
        caller = "TrainingSpec"
        check_schedule(self, caller)
        check_in(self.optimizer, OPTIMIZERS, name="optimizer", caller=caller)
        check_real(self.validation, name="validation", caller=caller, low=0.0, high=1.0,
                   high_open=True)


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
    The loop is :func:`lib.models.training.train` for ``training.epochs``
    epochs, without early stopping, keeping the last state.

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


def _train(spec, training, images, *, device, progress, caller) -> TrainingResult:
    """:func:`train_autoencoder` with the engine's record: what the weight cache stores."""
    _check_specs(spec, training, caller)
    x = _images(images, spec, caller).to(torch.float32)
    device = check_device(device, caller)
    split_seed = seeds(training.seed)[2]

    n_val = max(1, round(training.validation * len(x))) if training.validation > 0 else 0
    if n_val > 0:
        if n_val >= len(x):
            raise ValueError(f"The 'validation' share {training.validation} of {caller} leaves no "
                             f"training image out of {len(x)}. Use a smaller share.")
        held = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
        x, x_val = x[held[n_val:]], x[held[:n_val]]
    # The engine with one evaluation per epoch, no early stop (rel_tol = abs_tol = 0 never
    # converges), no stop at a NaN and the last state kept: an epoch's train_loss is the
    # engine's mean since the previous evaluation. Without held-out images a constant
    # stand-in validation loss only marks the epochs.
    per_epoch = -(-len(x) // training.batch_size)
    rule = Convergence(rel_tol=0.0, eval_every=per_epoch, max_steps=int(training.epochs) * per_epoch)
    result = train(lambda init_seed: Autoencoder(spec, seed=init_seed), _reconstruction_loss, x,
                   x_val if n_val > 0 else x, criterion=rule, batch_size=training.batch_size,
                   optimizer=training.optimizer, learning_rate=training.learning_rate,
                   val_fn=None if n_val > 0 else _no_validation, restore_best=False,
                   stop_on_nonfinite=False, seed=training.seed, device=device,
                   progress=progress)
    history = result.history.iloc[1:]   # drop the untrained model's evaluation at step 0
    columns = {"epoch": history["step"].to_numpy() // per_epoch,
               "train_loss": history["train_loss"].to_numpy()}
    if n_val > 0:
        columns["val_loss"] = history["val_loss"].to_numpy()
    return TrainingResult(model=result.model, history=pd.DataFrame(columns), record=result.record)


def _reconstruction_loss(model, batch, step):
    return torch.nn.functional.mse_loss(model(batch[0]), batch[0])


def _no_validation(model, data):
    return torch.zeros(())


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
    history) and ``<key>.json`` (the parameters, for people), with
    ``key = cache_key(spec, training, data_key, images)``; each is written to
    a temporary file in ``cache_dir`` and renamed into place, the weights
    last, so a model counts as cached once ``<key>.pt`` exists. The device
    type is part of the key: a CPU run never reads weights a GPU trained.

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
    caller = "trained_autoencoder"
    _check_specs(spec, training, caller)
    check_cache(data_key, cache_dir, caller)
    _images(images, spec, caller)
    device = check_device(device, caller)
    result = cached_training(cache_dir, _record(spec, training, data_key, images, device),
                             build=lambda: Autoencoder(spec), device=device,
                             train=lambda: _train(spec, training, images, device=device,
                                                  progress=progress, caller=caller))
    return result.model, result.history


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
