r"""One training engine: a seeded minibatch loop that stops when the validation loss has converged.

:func:`train` fits one model; :func:`lib.models.ensemble.train_ensemble` fits K
models of one architecture at once with the same bookkeeping. Both take

- a model, or a factory ``factory(init_seed) -> torch.nn.Module``;
- ``loss_fn(model, batch, step) -> scalar tensor``: the training loss of a
  minibatch ``batch`` (a tuple of tensors, rows of ``train_data``) at step
  ``step`` (1-based; a schedule such as the beta-VAE's capacity reads it);
- ``train_data`` and ``val_data``: a tensor or a tuple of tensors sharing
  their first dimension N;
- a :class:`Convergence` criterion, which also holds the step budget.

The loop draws minibatches from seeded permutations of the training rows, one
epoch after another (the last batch of an epoch may be smaller). Before the
first step and every ``eval_every`` steps (and after the last) it evaluates the
validation loss ``val_fn(model, val_data)`` without gradients, keeps the best
state, and asks the criterion whether to stop. The best state is restored at
the end (``restore_best=True``). Without ``val_data`` the same schedule of
evaluations runs (the training loss is recorded, ``val_loss`` is NaN and
``on_evaluation`` is called), nothing can converge, the run stops at the
budget with reason ``"budget"`` and the last state is kept.

**Convergence.** Let :math:`b_k` be the best validation loss after the k-th
evaluation (:math:`b_0` that of the untrained model). Training has converged at
evaluation k, at step :math:`s_k`, when

.. math:: b_{k-w} - b_k < \mathrm{rtol}\,|b_{k-w}| + \mathrm{atol},
   \qquad k \ge w,\ s_k \ge \mathrm{min\_steps},

that is, when the last ``window`` = w evaluations improved the best loss by less
than ``rel_tol`` of itself. A run without any new best for w evaluations has
improved by 0 and has converged (the classic patience rule is the case
``rel_tol -> 0+``); ``rel_tol = atol = 0`` never converges and trains for the
whole budget. Otherwise the run stops at ``max_steps`` with reason ``"budget"``,
or at the first non-finite validation or training loss with reason
``"diverged"`` (and a warning; ``stop_on_nonfinite=False`` trains on instead).

**Randomness.** ``lib.models._shared.seeds`` turns ``seed`` into three
streams on the CPU: initial weights (passed to the factory), minibatch order,
and the ``augment`` hook's draws (noise, rotations). The global RNG is never
touched, so one seed and one thread count give bit-identical weights on the
CPU, on any device the draws are the same.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch

from lib._checks import check_in, check_int, check_real
from lib._progress import progress_bar
from lib.models._shared import check_device, check_type, seeds

__all__ = ["OPTIMIZERS", "STOP_REASONS", "Convergence", "Monitor", "TrainingRecord",
           "TrainingResult", "batch_stream", "check_data", "make_optimizer", "train"]

OPTIMIZERS = ("adam", "sgd")
STOP_REASONS = ("converged", "budget", "diverged")


@dataclass(frozen=True)
class Convergence:
    r"""When a training run stops: the relative-improvement rule and the step budget.

    Parameters
    ----------
    rel_tol : float, default=1e-2
        Converged once the best validation loss improved by less than this share
        of itself over the last ``window`` evaluations; in [0, inf).
    window : int, default=10
        Evaluations the improvement is measured over, in [1, inf).
    eval_every : int, default=100
        Optimiser steps between evaluations of the validation loss, in [1, inf).
    max_steps : int, default=10_000
        The budget: the run stops there with reason ``"budget"``, in [1, inf).
    min_steps : int, default=0
        No convergence before this step, and no state from before it is
        restored over a later one (a beta-VAE sits on a mean-image plateau
        for its first 400-1,200 steps); in [0, max_steps].
    abs_tol : float, default=0.0
        Absolute slack added to ``rel_tol * |b|``, for losses that tend to 0.

    Examples
    --------
    >>> rule = Convergence(rel_tol=0.01, window=2)
    >>> rule.converged([1.0, 0.5, 0.499, 0.498], step=300)
    True
    >>> rule.converged([1.0, 0.5, 0.4], step=200)
    False
    """

    rel_tol: float = 1e-2
    window: int = 10
    eval_every: int = 100
    max_steps: int = 10_000
    min_steps: int = 0
    abs_tol: float = 0.0

    def __post_init__(self):
        caller = "Convergence"
        check_real(self.rel_tol, name="rel_tol", caller=caller, low=0.0)
        check_int(self.window, name="window", caller=caller, low=1)
        check_int(self.eval_every, name="eval_every", caller=caller, low=1)
        check_int(self.max_steps, name="max_steps", caller=caller, low=1)
        check_int(self.min_steps, name="min_steps", caller=caller, low=0, high=self.max_steps)
        check_real(self.abs_tol, name="abs_tol", caller=caller, low=0.0)

    def converged(self, best: list[float], step: int) -> bool:
        """Whether the run has converged, given the best loss after each evaluation so far."""
        if step < self.min_steps or len(best) <= self.window:
            return False
        old, new = best[-1 - self.window], best[-1]
        return old - new < self.rel_tol * abs(old) + self.abs_tol


@dataclass(frozen=True)
class TrainingRecord:
    """Why and where a run stopped: what the weight cache stores beside the weights.

    Attributes
    ----------
    stopped : {"converged", "budget", "diverged"}
    steps : int
        Optimiser steps taken.
    best_step : int
        Step of the restored state (0: the untrained model).
    train_loss : float
        Mean training loss over the steps since the previous evaluation,
        weighted by batch size (NaN when no validation data: every step).
    val_loss : float
        Validation loss of the restored state (NaN without validation data).
    wall_seconds : float
        Wall time of the loop, evaluations included.
    """

    stopped: str
    steps: int
    best_step: int
    train_loss: float
    val_loss: float
    wall_seconds: float

    def as_dict(self) -> dict:
        """The record as a JSON-ready dict (NaN becomes None)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> TrainingRecord:
        """The record :meth:`as_dict` wrote (None becomes NaN).

        Examples
        --------
        >>> record = TrainingRecord("converged", 900, 700, 0.5, 0.25, 1.5)
        >>> TrainingRecord.from_dict(record.as_dict()) == record
        True
        """
        floats = {"train_loss", "val_loss", "wall_seconds"}
        return cls(**{k: (math.nan if v is None and k in floats else v)
                      for k, v in values.items()})


@dataclass(frozen=True)
class TrainingResult:
    """A trained model (best state, eval mode), its history and its :class:`TrainingRecord`.

    ``history`` has one row per evaluation: ``step``, ``train_loss`` (mean since
    the previous evaluation, NaN at step 0), ``val_loss`` and ``best``.
    """

    model: torch.nn.Module
    history: pd.DataFrame
    record: TrainingRecord


# --- pieces the single and the ensemble loop share ------------------------------------------


def check_data(data, *, name: str, caller: str, device, allow_none: bool = False):
    """``data`` as a tuple of tensors on ``device`` sharing a first dimension N >= 1."""
    if data is None and allow_none:
        return None
    if isinstance(data, torch.Tensor):
        data = (data,)
    message = (f"The {name!r} parameter of {caller} must be a tensor or a tuple of tensors "
               f"with a common first dimension N >= 1.")
    if not isinstance(data, (tuple, list)) or not data or not all(
            isinstance(t, torch.Tensor) for t in data):
        raise TypeError(f"{message} Got {type(data).__name__} instead.")
    lengths = {t.shape[0] if t.ndim else None for t in data}
    if len(lengths) != 1 or None in lengths or 0 in lengths:
        shapes = [tuple(t.shape) for t in data]
        raise ValueError(f"{message} Got shapes {shapes} instead.")
    return tuple(t.to(device) for t in data)


def batch_stream(n: int, batch_size: int, generator: torch.Generator):
    """Index batches of seeded permutations of range(n), one epoch after another, forever."""
    while True:
        yield from torch.randperm(n, generator=generator).split(batch_size)


def make_optimizer(name: str, parameters, learning_rate: float) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` (default betas) or plain ``torch.optim.SGD``."""
    kind = torch.optim.Adam if name == "adam" else torch.optim.SGD
    return kind(parameters, lr=learning_rate)


def check_options(caller, *, criterion, optimizer, learning_rate, batch_size, schedule,
                  augment, val_fn, loss_fn, extra=()):
    check_type(criterion, Convergence, name="criterion", caller=caller,
               expected="a Convergence")
    check_in(optimizer, OPTIMIZERS, name="optimizer", caller=caller)
    check_real(learning_rate, name="learning_rate", caller=caller, low=0.0, low_open=True,
               high_open=True)
    check_int(batch_size, name="batch_size", caller=caller, low=1)
    for name, value, optional in (("loss_fn", loss_fn, False), ("schedule", schedule, True),
                                  ("augment", augment, True), ("val_fn", val_fn, True),
                                  *extra):
        if not callable(value) and not (optional and value is None):
            raise TypeError(f"The {name!r} parameter of {caller} must be callable"
                            f"{' or None' if optional else ''}. Got {type(value).__name__} "
                            f"instead.")


class Monitor:
    """The bookkeeping of one run: losses since the last evaluation, best loss, stop reason.

    ``evaluate`` at an evaluation step with the validation loss (and any extra
    ``metrics`` for the history row) returns whether the state is the one to
    keep, and sets ``stopped`` once the criterion or a non-finite loss ends the
    run. Before ``criterion.min_steps`` every finite evaluation is kept (the
    latest state) and none enters the comparison: a state from a plateau the
    run must leave (a beta-VAE at the mean image) is never restored over a
    later one.

    Without validation data (``validated=False``) every evaluation records a
    NaN validation loss, nothing is kept or compared, and the run stops at the
    budget, or as diverged at a non-finite training loss when
    ``stop_on_nonfinite``; the state to keep is the last.
    """

    def __init__(self, criterion: Convergence, stop_on_nonfinite: bool = True,
                 restore_best: bool = True, validated: bool = True):
        self.criterion = criterion
        self.validated = validated
        self.stop_on_nonfinite = stop_on_nonfinite
        self.restore_best = restore_best
        self.rows: list[dict] = []
        self.best: list[float] = []     # best loss after each evaluation at step >= min_steps
        self.best_step = 0
        self.kept = math.nan            # validation loss of the state to keep
        self.stopped: str | None = None

    def evaluate(self, step: int, train_sum: float, train_count: int, val: float,
                 metrics: dict | None = None) -> bool:
        train_loss = train_sum / train_count if train_count else math.nan
        if not self.validated:
            improved = False
        elif step < self.criterion.min_steps:
            improved = math.isfinite(val)
        else:
            previous = self.best[-1] if self.best else math.inf
            improved = val < previous                  # NaN never improves
            self.best.append(val if improved else previous)
        if improved:
            self.best_step, self.kept = step, val
        self.rows.append({"step": step, "train_loss": train_loss, "val_loss": val,
                          **(metrics or {}), "best": improved})
        if self.stop_on_nonfinite and not (
                (math.isfinite(val) or not self.validated)
                and (step == 0 or math.isfinite(train_loss))):
            self.stopped = "diverged"
        elif self.criterion.converged(self.best, step):
            self.stopped = "converged"
        elif step >= self.criterion.max_steps:
            self.stopped = "budget"
        return improved

    def record(self, steps: int, wall: float) -> TrainingRecord:
        if not self.validated:
            self.best_step = steps      # the last state is the one kept
        if self.stopped == "diverged":
            warnings.warn(f"Training diverged at step {steps}: a non-finite loss "
                          + (f"(the best state, of step {self.best_step}, is kept)."
                             if self.restore_best else "(the last state is kept)."),
                          RuntimeWarning, stacklevel=3)
        last = self.rows[-1]
        return TrainingRecord(stopped=self.stopped, steps=steps, best_step=self.best_step,
                              train_loss=float(last["train_loss"]), val_loss=float(self.kept),
                              wall_seconds=wall)


def eval_steps(criterion: Convergence):
    """Whether ``step`` is an evaluation step: every ``eval_every`` steps and the last."""
    return lambda step: step % criterion.eval_every == 0 or step == criterion.max_steps


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train(model, loss_fn: Callable, train_data, val_data=None, *, criterion: Convergence,
          batch_size: int = 128, optimizer: str = "adam", learning_rate: float = 1e-3,
          schedule: Callable | None = None, val_fn: Callable | None = None,
          augment: Callable | None = None, restore_best: bool = True,
          stop_on_nonfinite: bool = True, metrics: Callable | None = None,
          on_evaluation: Callable | None = None, seed: int = 0, device="cpu",
          progress: bool = False) -> TrainingResult:
    r"""Train one model by minibatch gradient steps until ``criterion`` stops it.

    Parameters
    ----------
    model : torch.nn.Module or callable
        A module (copied, then trained; ``seed`` then drives the batches only)
        or a factory ``model(init_seed) -> torch.nn.Module``.
    loss_fn : callable
        ``loss_fn(model, batch, step) -> scalar tensor``, ``batch`` a tuple of
        tensors (rows of ``train_data``, then what ``augment`` appends).
    train_data : tensor or tuple of tensors
        N rows each; moved to ``device``.
    val_data : tensor or tuple of tensors, optional
        Held-out rows. Without them the evaluations still run on schedule
        (``val_loss`` NaN, ``metrics`` not called, ``on_evaluation`` called),
        the run ends at ``criterion.max_steps`` (``"budget"``) and the last
        state is kept.
    criterion : Convergence
        Stopping rule, evaluation interval and budget.
    batch_size : int, default=128
    optimizer : {"adam", "sgd"}, default="adam"
    learning_rate : float, default=1e-3
    schedule : callable, optional
        ``schedule(step) -> factor``; step ``step`` uses ``learning_rate * factor``.
    val_fn : callable, optional
        ``val_fn(model, val_data) -> scalar tensor``, run without gradients;
        default ``loss_fn(model, val_data, step)``.
    augment : callable, optional
        ``augment(batch, generator, step) -> batch``: seeded draws per step
        (reparameterisation noise, rotations) from the third stream of ``seed``.
    restore_best : bool, default=True
        Return the state of the best evaluation rather than the last.
    stop_on_nonfinite : bool, default=True
        Stop with reason ``"diverged"`` at the first non-finite loss; False
        trains on through NaN to the budget or convergence (a NaN never
        improves the best loss).
    metrics : callable, optional
        ``metrics(model, val_data) -> dict`` of floats, run without gradients
        at every evaluation: extra columns of ``history`` (a beta-VAE's
        reconstruction and KL apart). They never decide when to stop.
    on_evaluation : callable, optional
        ``on_evaluation(model, row)`` after every evaluation, with the model
        in its current (not the best) state and the history row, a dict:
        checkpoints per epoch, for example.
    seed : int, default=0
    device : str or torch.device, default="cpu"
    progress : bool, default=False
        Show a tqdm bar over steps.

    Returns
    -------
    TrainingResult
        ``model`` (eval mode, on ``device``), ``history``, ``record``.

    Examples
    --------
    A line fitted to y = 3x + cos(4x)/2 (least squares: slope 3.000, MSE 0.1302):

    >>> x = torch.linspace(-1, 1, 64, dtype=torch.float64)[:, None]
    >>> data = (x, 3 * x + 0.5 * torch.cos(4 * x))
    >>> def mse(model, batch, step):
    ...     return torch.nn.functional.mse_loss(model(batch[0]), batch[1])
    >>> def factory(init_seed):   # weights from the seed's stream, not the global RNG
    ...     line = torch.nn.utils.skip_init(torch.nn.Linear, 1, 1, dtype=torch.float64)
    ...     generator = torch.Generator().manual_seed(init_seed)
    ...     with torch.no_grad():
    ...         for p in line.parameters():
    ...             p.uniform_(-1, 1, generator=generator)
    ...     return line
    >>> result = train(factory, mse, data, data, criterion=Convergence(eval_every=20),
    ...                batch_size=16, learning_rate=0.1)
    >>> result.record.stopped, round(result.record.val_loss, 3)
    ('converged', 0.13)
    """
    caller = "train"
    check_options(caller, criterion=criterion, optimizer=optimizer, learning_rate=learning_rate,
                  batch_size=batch_size, schedule=schedule, augment=augment, val_fn=val_fn,
                  loss_fn=loss_fn, extra=(("metrics", metrics, True),
                                          ("on_evaluation", on_evaluation, True)))
    check_int(seed, name="seed", caller=caller, low=0)
    device = check_device(device, caller)
    train_data = check_data(train_data, name="train_data", caller=caller, device=device)
    val_data = check_data(val_data, name="val_data", caller=caller, device=device,
                          allow_none=True)
    init_seed, order_seed, draw_seed = seeds(seed)
    if isinstance(model, torch.nn.Module):
        model = copy.deepcopy(model)
    elif callable(model):
        model = model(init_seed)
    check_type(model, torch.nn.Module, name="model", caller=caller,
               expected="a torch.nn.Module or a factory returning one")
    model = model.to(device)
    opt = make_optimizer(optimizer, model.parameters(), learning_rate)
    # Generators on the CPU: the same batches and draws on any device.
    batches = batch_stream(len(train_data[0]), batch_size,
                           torch.Generator().manual_seed(order_seed))
    draws = torch.Generator().manual_seed(draw_seed)
    monitor = Monitor(criterion, stop_on_nonfinite, restore_best, validated=val_data is not None)
    validate = val_fn or (lambda m, d: loss_fn(m, d, step))
    is_eval = eval_steps(criterion)

    def evaluate(step, train_sum, train_count):
        nonlocal best_state
        with torch.no_grad():
            if val_data is None:
                val, extra = math.nan, None
            else:
                val = float(validate(model, val_data))
                extra = ({k: float(v) for k, v in metrics(model, val_data).items()}
                         if metrics is not None else None)
        if monitor.evaluate(step, train_sum, train_count, val, extra) and restore_best:
            best_state = _state(model)
        if on_evaluation is not None:
            with torch.no_grad():
                on_evaluation(model, dict(monitor.rows[-1]))
        bar.set_postfix(val=f"{val:.4g}", refresh=False)

    start = time.perf_counter()
    best_state = None
    step = 0
    bar = progress_bar(total=criterion.max_steps, desc="train", unit="step", show=progress,
                       leave=False)
    model.eval()
    evaluate(0, 0.0, 0)
    # Losses are summed where they live and read once per evaluation: a read per step
    # would stall a GPU on every batch.
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    while monitor.stopped is None and step < criterion.max_steps:
        step += 1
        model.train()
        index = next(batches).to(device)
        batch = tuple(t[index] for t in train_data)
        if augment is not None:
            batch = tuple(augment(batch, draws, step))
        if schedule is not None:
            for group in opt.param_groups:
                group["lr"] = learning_rate * float(schedule(step))
        loss = loss_fn(model, batch, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach().double() * len(index)
        count += len(index)
        bar.update(1)
        if is_eval(step):
            model.eval()
            evaluate(step, float(total), count)
            total.zero_()
            count = 0
    bar.close()
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    record = monitor.record(step, time.perf_counter() - start)
    return TrainingResult(model=model.eval(), history=pd.DataFrame(monitor.rows), record=record)
