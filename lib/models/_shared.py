"""What the model modules share (internal to :mod:`lib.models`).

Seeds and cache keys, argument checks, seeded layers, and the weight cache
that loads a trained model or trains it and writes it. The names are public
inside this private module: the sibling modules import them from here, and
nothing outside :mod:`lib.models` should.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib._checks import check_int, check_real
from lib.store import canonical_json, digest, write_atomic, write_json

__all__ = ["cached_training", "check_cache", "check_device", "check_schedule", "check_type",
           "hardware", "image_digest", "key", "load_state", "record", "save_state",
           "seeded_layer", "seeds", "write_history"]


# --- seeds and keys ------------------------------------------------------------------------


def seeds(seed: int) -> tuple[int, int, int]:
    """Three independent seeds from one: weights, batch order, and a third stream.

    The third is the validation draw of the autoencoder and the beta-VAE and
    the rotation angles of the CNN.

    Examples
    --------
    >>> len(set(seeds(0))), seeds(0) == seeds(0)
    (3, True)
    """
    words = np.random.SeedSequence(seed).generate_state(3, dtype=np.uint64)
    return tuple(int(w >> np.uint64(1)) for w in words)


def image_digest(images) -> str:
    """SHA-256 (64 hex digits) of an array's dtype, shape and bytes, numpy or torch.

    A tensor is hashed as its numpy copy, so both give one digest.

    Examples
    --------
    >>> image_digest(np.zeros((2, 3), np.float32)) == image_digest(torch.zeros(2, 3))
    True
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    array = np.ascontiguousarray(images)
    return digest(f"{array.dtype.str}{array.shape}", array)


def hardware(device, dtype: torch.dtype = torch.float32) -> dict:
    """The part of a cache record that says where and in what precision a model trained.

    The device type, not its index: ``cuda:0`` and ``cuda:1`` run the same
    kernels, while a CPU and a GPU round differently and a model trained on
    one is not the model the other would train.

    Examples
    --------
    >>> hardware("cuda:1")
    {'device': 'cuda', 'dtype': 'float32'}
    """
    return {"device": torch.device(device).type, "dtype": str(dtype).removeprefix("torch.")}


def record(version: int, spec, training, images_digest: str, *, device,
           dtype: torch.dtype = torch.float32, **extra) -> dict:
    """The parameters that determine a trained model, as the JSON record its key hashes.

    ``{"version", "spec", "training", "images"}`` (the dataclasses as dicts),
    the :func:`hardware` entries of ``device`` and ``dtype``, and the ``extra``
    entries.
    """
    return {"version": version, **extra, **hardware(device, dtype),
            "spec": dataclasses.asdict(spec), "training": dataclasses.asdict(training),
            "images": images_digest}


def key(entry: dict) -> str:
    """Cache key of a JSON record: 24 hex digits of the SHA-256 of its canonical JSON.

    Examples
    --------
    >>> key({"b": 1, "a": 2}) == key({"a": 2, "b": 1}) and len(key({}))
    24
    """
    return digest(canonical_json(entry), length=24)


# --- checks --------------------------------------------------------------------------------


def check_type(value, types, *, name: str, caller: str, expected: str) -> None:
    """Raise a TypeError naming the parameter unless ``isinstance(value, types)``."""
    if not isinstance(value, types):
        raise TypeError(f"The {name!r} parameter of {caller} must be {expected}. "
                        f"Got {type(value).__name__} instead.")


def check_device(device, caller: str) -> torch.device:
    """``device`` as a torch.device; a ValueError naming the parameter if it names none."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"The 'device' parameter of {caller} must name a torch device such as "
                         f"'cpu' or 'cuda'. Got {device!r} instead.") from error


def check_schedule(training, caller: str) -> None:
    """The fields every training spec shares: epochs, batch size, learning rate, seed."""
    check_int(training.epochs, name="epochs", caller=caller, low=1)
    check_int(training.batch_size, name="batch_size", caller=caller, low=1)
    check_real(training.learning_rate, name="learning_rate", caller=caller, low=0.0,
               low_open=True, high_open=True)
    check_int(training.seed, name="seed", caller=caller, low=0)


def check_cache(data_key, cache_dir, caller: str) -> None:
    """``data_key`` a non-empty str, ``cache_dir`` a str or path: the weight cache's arguments."""
    check_type(data_key, str, name="data_key", caller=caller, expected="a non-empty str")
    if not data_key:
        raise ValueError(f"The 'data_key' parameter of {caller} must be a non-empty str naming "
                         f"the data. Got '' instead.")
    check_type(cache_dir, (str, os.PathLike), name="cache_dir", caller=caller,
               expected="a str or Path")


# --- layers --------------------------------------------------------------------------------


def seeded_layer(kind: type, *args, fan_in: int, generator: torch.Generator, **kwargs):
    """``kind(*args, **kwargs)`` with its initial weights drawn from ``generator``.

    PyTorch's default law for Conv2d, ConvTranspose2d and Linear,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the weight first, then the bias;
    ``skip_init`` builds the layer without touching the global RNG.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> layer = seeded_layer(torch.nn.Linear, 4, 2, fan_in=4, generator=g)
    >>> bool(layer.weight.abs().max() <= 0.5)
    True
    """
    layer = torch.nn.utils.skip_init(kind, *args, **kwargs)
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


# --- files ---------------------------------------------------------------------------------


def save_state(model: torch.nn.Module, path: Path) -> None:
    """Write the model's ``state_dict``, on the CPU, atomically to ``path``."""
    state = {name: value.detach().cpu() for name, value in model.state_dict().items()}
    write_atomic(path, lambda handle: torch.save(state, handle))


def load_state(model: torch.nn.Module, path: Path, device) -> torch.nn.Module:
    """Move ``model`` to ``device``, load the weights at ``path`` (``weights_only``), eval mode."""
    model = model.to(device)
    model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    return model.eval()



def write_history(path: Path, history: pd.DataFrame) -> None:
    """Write a training history as CSV, atomically."""
    write_atomic(path, lambda handle: handle.write(history.to_csv(index=False).encode()))


def cached_training(cache_dir, entry: dict, *, build, train, device):
    """Load a trained model, its history and its training record, or ``train()`` and write them.

    The files in ``cache_dir`` are ``<key>.pt`` (weights), ``<key>.csv``
    (history) and ``<key>.json`` (``entry`` with the record under
    ``"record"``), ``key`` the hash of ``entry`` (:func:`key`). They are
    written atomically, the weights last, so a model counts as cached once
    its weights exist; they are read with ``weights_only=True``. ``build()``
    makes an untrained model of the right architecture; ``train()`` returns a
    :class:`lib.models.training.TrainingResult`, and so does this function.
    """
    # lib.models.training imports this module for seeds and checks.
    from lib.models.training import TrainingRecord, TrainingResult

    folder = Path(cache_dir)
    name = key(entry)
    weights, history_file = folder / f"{name}.pt", folder / f"{name}.csv"
    meta = folder / f"{name}.json"
    if weights.is_file() and history_file.is_file() and meta.is_file():
        stored = json.loads(meta.read_text())
        if "record" in stored:
            return TrainingResult(model=load_state(build(), weights, device),
                                  history=pd.read_csv(history_file),
                                  record=TrainingRecord.from_dict(stored["record"]))

    result = train()
    folder.mkdir(parents=True, exist_ok=True)
    write_json(meta, {**entry, "record": result.record.as_dict()})
    write_history(history_file, result.history)
    save_state(result.model, weights)
    return result
