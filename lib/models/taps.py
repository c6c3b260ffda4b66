r"""What every named layer of a torch model makes of a manifold sampled on a grid.

A network is a chain of maps; fed the points :math:`x(\theta)` of a grid, each
layer :math:`\ell` gives a new map :math:`\theta \mapsto f_\ell(x(\theta))` on
the same grid, which the grid estimators of :mod:`lib.geometry` measure
unchanged. Two views of it:

- :func:`layer_taps`: the features themselves, (N, F) per layer, read by
  forward hooks from an ordinary forward pass of the model (no copy of its
  code), in chunks that fit a memory budget, cached on disk by (model,
  inputs, layer);
- :func:`layer_jacobians`: the exact tangents
  :math:`\partial f_\ell / \partial \theta`, (Q, F, k), by forward-mode
  autodiff (``torch.func.jacfwd``, k is small) through a differentiable
  renderer :math:`\theta \mapsto x` and the model;
  :func:`layer_tangents_on_grid` lays them out as
  :func:`lib.geometry.differences.gradient` does, and
  :func:`finite_difference_error` says how far the stencils are from them.

Layer names: ``"input"`` is what the model is called with (a forward
pre-hook), ``"output"`` what it returns (a tensor), anything else a dotted
path as ``model.get_submodule`` takes it (``"encoder.0"``); a submodule that
happens to be called ``input`` or ``output`` is reached only through those
meanings. Features are flattened per row, ``torch.flatten(out, 1)``
(channel-major for convolutions). Both functions assume rows do not interact
(no batch statistics: the model runs in eval mode), so chunking never changes
the answer; a tapped module must run exactly once per forward pass.

Every call puts the model in eval mode and removes its hooks afterwards,
restoring each submodule's own training flag, also when the forward raises.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch.func import jacfwd, vmap

from lib._arrays import as_tensor
from lib._checks import check_finite, check_in, check_int, check_shape
from lib.geometry.differences import STENCILS, gradient
from lib.grid import Grid
from lib.models._shared import check_type
from lib.store import digest, write_atomic

__all__ = ["model_digest", "layer_taps", "layer_jacobians", "layer_tangents_on_grid",
           "finite_difference_error"]

MIN_MEMORY_BUDGET = 2**16
_NUMPY_DTYPES = (torch.float16, torch.float32, torch.float64)
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def model_digest(model: torch.nn.Module) -> str:
    """Short fingerprint of a model's architecture and weights.

    SHA-256 over the class name, ``repr(model)`` (the module tree with its
    hyper-parameters, e.g. a convolution's stride or the choice of
    activation, which the weights alone do not show) and every ``state_dict``
    entry's name, dtype, shape and bytes. Code inside a custom ``forward`` is
    not covered: change the class name when you change it.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    digest : str
        24 hexadecimal digits.

    Examples
    --------
    >>> import copy, torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Tanh())
    >>> len(model_digest(net)), model_digest(net) == model_digest(copy.deepcopy(net))
    (24, True)
    >>> model_digest(net) == model_digest(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.ReLU()))
    False
    """
    _check_model(model, "model_digest")
    kind = type(model)
    parts = [f"{kind.__module__}.{kind.__qualname__}\0{model!r}\0"]
    for name, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"The 'model' parameter of model_digest must hold only tensors in its "
                            f"state_dict. Got {type(value).__name__} at {name!r} instead.")
        parts += [f"{name}\0{value.dtype}\0{tuple(value.shape)}\0", value]
    return digest(*parts, length=24)


def layer_taps(model: torch.nn.Module, inputs, layers, *, memory_budget: int = 2**28,
               cache_dir=None, input_key: str | None = None) -> dict:
    """Flattened features of named layers for every input row, from one ordinary forward pass.

    Forward hooks (``"input"``: a pre-hook on the model) record what the model
    itself computes, in eval mode and without gradients. Rows go through in
    chunks sized so that one chunk's kept features fit ``memory_budget``
    bytes: one row is run first to measure them. With a single chunk the
    features are those of ``model(inputs)`` itself.

    Parameters
    ----------
    model : torch.nn.Module
        Runs where its parameters live, in their dtype (a model without
        floating parameters or buffers runs on the inputs' device and dtype).
    inputs : array of shape (N, ...)
        Model inputs, numpy or torch, finite; cast to the model's dtype.
    layers : sequence of str
        Names of the layers to tap, see the module docstring; at least one,
        no repeats.
    memory_budget : int, default=2**28
        Bytes of kept features per forward pass, at least 2**16 and at least
        one row's worth; bounds memory, never changes the answer.
    cache_dir : str or path, optional
        If given, each layer is kept in
        ``cache_dir/<model_digest(model)>/<input key>/<layer>.npy`` (written
        atomically); layers found there are read, only the others computed.
    input_key : str, optional
        Name of the inputs in the cache (letters, digits, ``._-``), e.g. the
        grid and renderer that made them; default a digest of their bytes.
        The caller vouches that one key always means the same inputs.

    Returns
    -------
    features : dict of str -> array of shape (N, F_layer)
        In the order of `layers`, in the model's dtype: numpy arrays for
        numpy inputs, tensors on the inputs' device for tensor inputs.

    Examples
    --------
    >>> import numpy as np, torch
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.ReLU())
    >>> taps = layer_taps(net, np.array([[[-1.0, 2.0]], [[3.0, -4.0]]]), ["input", "0", "output"])
    >>> for name, features in taps.items():
    ...     print(name, features.tolist())
    input [[-1.0, 2.0], [3.0, -4.0]]
    0 [[-1.0, 2.0], [3.0, -4.0]]
    output [[0.0, 2.0], [3.0, 0.0]]
    """
    caller = "layer_taps"
    _check_model(model, caller)
    names = _check_layers(model, layers, caller)
    memory_budget = check_int(memory_budget, name="memory_budget", caller=caller,
                              low=MIN_MEMORY_BUDGET)
    if input_key is not None and (not isinstance(input_key, str) or not _KEY.fullmatch(input_key)):
        raise ValueError(f"The 'input_key' parameter of {caller} must be None or a str of letters, "
                         f"digits and '._-' that starts with a letter or digit. "
                         f"Got {input_key!r} instead.")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"The 'cache_dir' parameter of {caller} must be None, a str or a path. "
                        f"Got {type(cache_dir).__name__} instead.")
    x, back = _inputs(model, inputs, caller)
    if back is None or cache_dir is not None:
        _check_numpy_dtype(x.dtype, caller)

    found, folder = {}, None
    if cache_dir is not None:
        key = input_key if input_key is not None else _input_digest(x)
        folder = Path(cache_dir) / model_digest(model) / key
        for name in names:
            file = folder / f"{name}.npy"
            if file.exists():
                found[name] = _read_cached(file, x.shape[0], caller)
    missing = [name for name in names if name not in found]
    computed = _run_chunked(model, x, missing, memory_budget, back, caller) if missing else {}
    if folder is not None and computed:
        folder.mkdir(parents=True, exist_ok=True)
        for name, value in computed.items():
            array = value.cpu().numpy()
            write_atomic(folder / f"{name}.npy", lambda handle, a=array: np.save(handle, a))
    result = {}
    for name in names:
        value = computed[name] if name in computed else torch.from_numpy(found[name])
        result[name] = value.cpu().numpy() if back is None else value.to(back)
    return result


def layer_jacobians(model: torch.nn.Module, render, theta, layers, *, chunk_size: int = 64) -> dict:
    r"""Exact Jacobians of named layers with respect to the render parameters.

    :math:`J_\ell(\theta) = \partial f_\ell(\mathrm{render}(\theta)) / \partial\theta`.
    For one point the map :math:`\theta \mapsto \{\ell: f_\ell\}` (render one
    input, run the model, read the hooks) is differentiated in forward mode
    by ``torch.func.jacfwd`` (k tangent directions, k small) and vectorised
    over points by ``torch.func.vmap``, ``chunk_size`` points at a time. The
    model runs in eval mode; its modes are restored and hooks removed after.

    Parameters
    ----------
    model : torch.nn.Module
        As in :func:`layer_taps`; the rendered inputs are cast to its dtype.
    render : callable
        Map from parameters (B, k), a tensor on the model's device in the
        dtype of `theta`, to model inputs (B, ...), written in torch ops that
        ``vmap`` and forward-mode autodiff support (e.g. a renderer of
        images, or a toy immersion).
    theta : array of shape (Q, k)
        Parameter points, numpy or torch, finite.
    layers : sequence of str
        As in :func:`layer_taps`.
    chunk_size : int, default=64
        Points per vectorised call; bounds memory, never changes the answer.

    Returns
    -------
    jacobians : dict of str -> array of shape (Q, F_layer, k)
        ``jacobians[layer][q, a, i]`` is d feature a / d theta_i at point q,
        in the model's dtype; numpy for numpy `theta`, else tensors on
        `theta`'s device.

    Examples
    --------
    A linear layer after :math:`\theta \mapsto \theta^2`: the Jacobian is
    :math:`W\,\mathrm{diag}(2\theta)`.

    >>> import numpy as np, torch
    >>> layer = torch.nn.utils.skip_init(torch.nn.Linear, 2, 2, bias=False, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    >>> jacobians = layer_jacobians(layer, lambda t: t**2, np.array([[1.0, 1.0]]), ["output"])
    >>> jacobians["output"][0].tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """
    return _jacobians(model, render, theta, layers, chunk_size, "layer_jacobians")


def layer_tangents_on_grid(model: torch.nn.Module, render, grid: Grid, layers, *,
                           chunk_size: int = 64) -> dict:
    """Exact tangents of named layers at every point of a grid, laid out like ``gradient``.

    :func:`layer_jacobians` at ``grid.points``, reshaped to the layout of
    :func:`lib.geometry.differences.gradient` on the features, so exact and
    finite-difference tangents compare entry by entry.

    Parameters
    ----------
    model, render, layers, chunk_size
        As in :func:`layer_jacobians`.
    grid : Grid
        Parameter grid; ``render`` gets its points, float64.

    Returns
    -------
    tangents : dict of str -> ndarray of shape (*grid.shape, F_layer, k)
        numpy, in the model's dtype.

    Examples
    --------
    >>> import torch
    >>> from lib.datasets.toy import Torus
    >>> torus = Torus(R=1.0, r=0.4)
    >>> grid = torus.grid(8)
    >>> tangents = layer_tangents_on_grid(torch.nn.Identity(), torus.immersion, grid, ["output"])
    >>> tangents["output"].shape
    (8, 8, 3, 2)
    """
    caller = "layer_tangents_on_grid"
    _check_grid(grid, caller)
    jacobians = _jacobians(model, render, grid.points.reshape(-1, grid.ndim), layers, chunk_size,
                           caller)
    return {name: value.reshape(*grid.shape, *value.shape[1:]) for name, value in jacobians.items()}


def finite_difference_error(values, jacobian, grid: Grid, *, order: int = 2) -> float:
    r"""Relative error of finite-difference tangents against exact ones.

    .. math::
        \frac{\lVert J_\mathrm{fd} - J \rVert_F}{\lVert J \rVert_F}
        \quad\text{over } \texttt{grid.interior(order // 2)},

    with :math:`J_\mathrm{fd}` = ``gradient(values, grid, order=order)``. It
    falls as :math:`h^\mathrm{order}` on a smooth map; a large value deep in
    a network says the grid is too coarse for that layer.

    Parameters
    ----------
    values : array of shape (*grid.shape, F)
        Features on the grid (e.g. :func:`layer_taps` reshaped), numpy or torch.
    jacobian : array of shape (*grid.shape, F, k)
        Exact tangents, e.g. from :func:`layer_tangents_on_grid`.
    grid : Grid
    order : {2, 4}, default=2
        Accuracy order of the stencil.

    Returns
    -------
    error : float
        Computed in the wider of the two dtypes.

    Examples
    --------
    >>> import torch
    >>> from lib.datasets.toy import Torus
    >>> torus = Torus(R=1.0, r=0.4)
    >>> grid = torus.grid(64)
    >>> exact = layer_tangents_on_grid(torch.nn.Identity(), torus.immersion, grid, ["output"])
    >>> errors = [finite_difference_error(torus.points(grid), exact["output"], grid, order=o)
    ...           for o in (2, 4)]
    >>> bool(errors[0] < 2e-3), bool(errors[1] < 1e-5)
    (True, True)
    """
    caller = "finite_difference_error"
    _check_grid(grid, caller)
    check_in(order, tuple(STENCILS), name="order", caller=caller)
    field, _ = as_tensor(values)
    exact, _ = as_tensor(jacobian)
    sizes = ", ".join(map(str, grid.shape))
    check_shape(field.shape, (*grid.shape, None), name="values", caller=caller,
                describe=f"(*grid.shape, F) = ({sizes}, F)")
    check_shape(exact.shape, (*grid.shape, field.shape[-1], grid.ndim), name="jacobian",
                caller=caller,
                describe=f"(*grid.shape, F, k) = ({sizes}, {field.shape[-1]}, {grid.ndim})")
    check_finite(field, name="values", caller=caller)
    check_finite(exact, name="jacobian", caller=caller)
    dtype = torch.promote_types(field.dtype, exact.dtype)
    estimate = gradient(field.to(dtype), grid, order=order)          # (*G', F, k)
    exact = exact[grid.interior_index(order // 2)].to(device=estimate.device, dtype=dtype)
    scale = torch.linalg.vector_norm(exact)
    if not bool(scale > 0):
        raise ValueError(f"The 'jacobian' parameter of {caller} must be nonzero on "
                         f"grid.interior({order // 2}) to define a relative error. Got all zeros.")
    return float(torch.linalg.vector_norm(estimate - exact) / scale)


# --- hooks ---------------------------------------------------------------------------------


class _Taps:
    """Context in which ``run(inputs)`` returns the flattened features of ``names``.

    Registers the hooks and puts the model in eval mode on entry; on exit
    removes the hooks and gives every submodule back its own training flag.
    """

    def __init__(self, model, names, caller):
        self.model, self.names, self.caller = model, tuple(names), caller
        self.kept, self.handles, self.modes = {}, [], []

    def __enter__(self):
        self.modes = [(module, module.training) for module in self.model.modules()]
        try:
            modules = dict(self.model.named_modules(remove_duplicate=False))
            for name in self.names:
                if name == "input":
                    self.handles.append(self.model.register_forward_pre_hook(
                        lambda module, args: self._keep("input", args[0] if args else None)))
                elif name != "output":
                    self.handles.append(modules[name].register_forward_hook(
                        lambda module, args, output, name=name: self._keep(name, output)))
            self.model.eval()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        self.handles = []
        for module, training in self.modes:
            module.training = training
        return False

    def _keep(self, name, value):
        if name in self.kept:
            raise ValueError(f"The 'layers' parameter of {self.caller} names {name!r}, which ran "
                             f"more than once in one forward pass; tap a module that runs once.")
        self.kept[name] = self._flat(name, value)

    def _flat(self, name, value):
        what = "the model's first argument" if name == "input" else f"layer {name!r}"
        if not isinstance(value, torch.Tensor) or value.dim() == 0:
            got = type(value).__name__ if not isinstance(value, torch.Tensor) else "a 0-d tensor"
            raise TypeError(f"The 'layers' parameter of {self.caller} names {name!r}, which needs "
                            f"{what} to be a tensor of shape (B, ...). Got {got} instead; tap "
                            f"the submodule that computes the tensor you want.")
        # A copy: a later in-place op (ReLU(inplace=True)) must not change what was tapped.
        return value.reshape(value.shape[0], -1).clone()

    def run(self, inputs: torch.Tensor) -> dict:
        """Features (B, F) of every tapped layer for one batch of inputs (B, ...)."""
        self.kept = {}
        try:
            output = self.model(inputs)
            if "output" in self.names:
                self.kept["output"] = self._flat("output", output)
            kept = self.kept
        finally:
            self.kept = {}
        for name in self.names:
            if name not in kept:
                raise ValueError(f"The 'layers' parameter of {self.caller} names {name!r}, which "
                                 f"did not run in the model's forward pass.")
            if kept[name].shape[0] != inputs.shape[0]:
                raise ValueError(f"The 'layers' parameter of {self.caller} names {name!r}, whose "
                                 f"output must have the batch as first axis, "
                                 f"{inputs.shape[0]} rows. Got shape {tuple(kept[name].shape)}.")
        return {name: kept[name] for name in self.names}


# --- checks and helpers --------------------------------------------------------------------


def _check_model(model, caller):
    check_type(model, torch.nn.Module, name="model", caller=caller, expected="a torch.nn.Module")


def _check_grid(grid, caller):
    check_type(grid, Grid, name="grid", caller=caller, expected="a Grid")


def _check_layers(model, layers, caller) -> tuple:
    """The layer names as a tuple, after checking each resolves to a layer of ``model``."""
    valid = ["input", "output", *(name for name, _ in model.named_modules(remove_duplicate=False)
                                    if name)]
    if isinstance(layers, str):
        raise TypeError(f"The 'layers' parameter of {caller} must be a sequence of layer names. "
                        f"Got the str {layers!r} instead; wrap it in a list.")
    try:
        names = tuple(layers)
    except TypeError:
        raise TypeError(f"The 'layers' parameter of {caller} must be a sequence of layer names. "
                        f"Got {type(layers).__name__} instead.") from None
    if not names:
        raise ValueError(f"The 'layers' parameter of {caller} must name at least one layer among "
                         f"{valid}. Got an empty sequence instead.")
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"The 'layers' parameter of {caller} must hold str names. "
                        f"Got {names!r} instead.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"The 'layers' parameter of {caller} must name each layer once. "
                         f"Got {repeated} more than once.")
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise ValueError(f"The 'layers' parameter of {caller} must name layers among {valid}. "
                         f"Got unknown {unknown} instead.")
    return names


def _model_dtype_device(model):
    """dtype and device of the first floating parameter or buffer, or (None, None)."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return None, None


def _check_numpy_dtype(dtype, caller):
    if dtype not in _NUMPY_DTYPES:
        raise TypeError(f"The 'model' parameter of {caller} must compute in a dtype numpy holds "
                        f"({', '.join(map(str, _NUMPY_DTYPES))}) when the result is numpy or "
                        f"cached. Got {dtype} instead; pass tensors and no cache_dir.")


def _inputs(model, inputs, caller):
    """Inputs as a finite tensor in the model's dtype on its device, and where results go.

    The second value is the device results go back to, or None for numpy.
    """
    x, _ = as_tensor(inputs)
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"The 'inputs' parameter of {caller} must have shape (N, ...) with "
                         f"N >= 1. Got {tuple(x.shape)} instead.")
    check_finite(x, name="inputs", caller=caller)
    dtype, device = _model_dtype_device(model)
    if dtype is not None:
        x = x.to(device=device, dtype=dtype)
    return x, (inputs.device if isinstance(inputs, torch.Tensor) else None)


def _input_digest(x: torch.Tensor) -> str:
    return digest(f"{x.dtype}\0{tuple(x.shape)}\0", x, length=24)


def _read_cached(file: Path, rows: int, caller: str) -> np.ndarray:
    array = np.load(file, allow_pickle=False)
    if array.ndim != 2 or array.shape[0] != rows:
        raise ValueError(f"The 'input_key' parameter of {caller} must name the inputs the cache "
                         f"was written for: {file} holds shape {array.shape}, the inputs have "
                         f"{rows} rows. Use another key or clear that folder.")
    return array


def _run_chunked(model, x, names, memory_budget, back, caller) -> dict:
    """Features of ``names`` for all rows of ``x``, chunk by chunk, on the result device."""
    target = torch.device("cpu") if back is None else back
    with _Taps(model, names, caller) as taps, torch.no_grad():
        first = taps.run(x[:1])
        row_bytes = sum(value.numel() * value.element_size() for value in first.values())
        if row_bytes > memory_budget:
            raise ValueError(f"The 'memory_budget' parameter of {caller} must hold the kept "
                             f"features of one row, {row_bytes} bytes. Got {memory_budget}.")
        rows = memory_budget // max(row_bytes, 1)
        # The probe row runs again in the first chunk: with one chunk the features are
        # those of a single forward pass over all rows, bit for bit.
        parts = {name: [] for name in first}
        for chunk in x.split(rows):
            for name, value in taps.run(chunk).items():
                parts[name].append(value.to(target))
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def _jacobians(model, render, theta, layers, chunk_size, caller) -> dict:
    _check_model(model, caller)
    if not callable(render):
        raise TypeError(f"The 'render' parameter of {caller} must be a callable theta (B, k) -> "
                        f"model inputs (B, ...). Got {type(render).__name__} instead.")
    names = _check_layers(model, layers, caller)
    chunk_size = check_int(chunk_size, name="chunk_size", caller=caller, low=1)
    points, restore = as_tensor(theta)
    check_shape(points.shape, (None, None), name="theta", caller=caller, describe="(Q, k)")
    if 0 in points.shape:
        raise ValueError(f"The 'theta' parameter of {caller} must have shape (Q, k) with "
                         f"Q, k >= 1. Got {tuple(points.shape)} instead.")
    check_finite(points, name="theta", caller=caller)
    back = points.device
    dtype, device = _model_dtype_device(model)
    if dtype is None:
        dtype, device = points.dtype, back
    points = points.to(device)

    with _Taps(model, names, caller) as taps, torch.no_grad():
        probe = render(points[:1])
        if (not isinstance(probe, torch.Tensor) or probe.dim() == 0 or probe.shape[0] != 1
                or not probe.is_floating_point()):
            got = (f"shape {tuple(probe.shape)}, dtype {probe.dtype}"
                   if isinstance(probe, torch.Tensor) else type(probe).__name__)
            raise ValueError(f"The 'render' parameter of {caller} must map theta (B, k) to a "
                             f"floating tensor of model inputs (B, ...); render(theta[:1]) gave "
                             f"{got} instead.")
        check_finite(probe, name="render", caller=caller)
        try:
            taps.run(probe.to(dtype))
        except RuntimeError as error:
            raise ValueError(f"The 'render' parameter of {caller} must give inputs the model "
                             f"accepts. Got render(theta[:1]) of shape {tuple(probe.shape)}, "
                             f"on which the model raised {type(error).__name__}: {error}"
                             ) from error

        def features(point):                      # (k,) -> {layer: (F,)}
            kept = taps.run(render(point[None]).to(dtype))
            return {name: value[0] for name, value in kept.items()}

        per_point = vmap(jacfwd(features))
        parts = [per_point(chunk) for chunk in points.split(chunk_size)]
    return {name: restore(torch.cat([part[name] for part in parts]).to(back)) for name in names}
