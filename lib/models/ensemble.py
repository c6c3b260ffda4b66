r"""K models of one architecture trained at once, each as :func:`lib.models.training.train` would.

The members' parameters are stacked along a new first axis
(``torch.func.stack_module_state``); one forward and backward pass runs all
of them, ``vmap`` over ``functional_call`` with the stacked parameters and a
stacked minibatch (in_dims 0 for both: every member draws its own batches);
one Adam (or SGD) step updates the stacked leaves. Adam is elementwise, so a
member's moments and steps are those it would have alone.

Each member keeps its own seeds, batch order, :class:`~lib.models.training.Monitor`
and best state. A member that stops (converged, budget, diverged) leaves the
stack: its best state is kept, and its slices of the parameters and of the
optimiser state are dropped, so the remaining members run on a smaller stack
and the stopped one costs nothing more. The result for each member equals
:func:`~lib.models.training.train` with the same seed up to float rounding
(batched and unbatched matrix products round differently); the tests bound
the difference in float64 (about 1e-15). In float32, on a loss plateau where
Adam divides near-zero gradients by their own scale, that rounding can grow to
O(learning rate) per step (benchmarks/training.py); compare in float64.

Requirements on the model and the loss: a forward pass with no in-place
update of buffers (no batch-norm statistics) and no random draw inside
``loss_fn`` or ``val_fn`` (``vmap`` refuses it); draws belong in ``augment``,
which runs per member, outside ``vmap``, with the member's generator.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import pandas as pd
import torch
from torch.func import functional_call, stack_module_state, vmap

from lib._checks import check_int
from lib._progress import progress_bar
from lib.models._shared import check_device, check_type, seeds as split_seeds
from lib.models.training import (Convergence, Monitor, TrainingResult, batch_stream, check_data,
                                 check_options, eval_steps, make_optimizer)

__all__ = ["train_ensemble"]


class _Objective(torch.nn.Module):
    """``fn(model, *args)`` as a module, so ``functional_call`` swaps the model's parameters
    for the duration of any method the loss calls (``encode``, ``decode_logits``...)."""

    def __init__(self, model: torch.nn.Module, fn: Callable):
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *args):
        return self.fn(self.model, *args)


def _check_members(members, caller):
    for i, member in enumerate(members):
        check_type(member, torch.nn.Module, name="factory", caller=caller,
                   expected="a factory returning torch.nn.Module objects")
    shapes = [[(k, tuple(v.shape), v.dtype) for k, v in m.state_dict().items()] for m in members]
    if any(s != shapes[0] for s in shapes[1:]):
        raise ValueError(f"The 'factory' parameter of {caller} must build one architecture for "
                         f"every seed (same parameter names, shapes and dtypes). Got differing "
                         f"state dicts instead.")


def _compact(opt_kind, opt, params, keep, learning_rate):
    """The stacked leaves and optimiser state restricted to the members in ``keep``."""
    index = torch.as_tensor(keep, device=next(iter(params.values())).device)
    new = {k: v.detach()[index].clone().requires_grad_() for k, v in params.items()}
    new_opt = make_optimizer(opt_kind, new.values(), learning_rate)
    for old_p, new_p in zip(params.values(), new.values()):
        state = opt.state.get(old_p, {})
        new_opt.state[new_p] = {k: (v[index].clone() if torch.is_tensor(v) and v.ndim > 0
                                    else (v.clone() if torch.is_tensor(v) else v))
                                for k, v in state.items()}
    for old_group, new_group in zip(opt.param_groups, new_opt.param_groups):
        new_group["lr"] = old_group["lr"]
    return new, new_opt


def train_ensemble(factory: Callable, loss_fn: Callable, train_data, val_data=None, *,
                   seeds: Sequence[int], criterion: Convergence, batch_size: int = 128,
                   optimizer: str = "adam", learning_rate: float = 1e-3,
                   schedule: Callable | None = None, val_fn: Callable | None = None,
                   augment: Callable | None = None, restore_best: bool = True,
                   on_evaluation: Callable | None = None, device="cpu",
                   progress: bool = False) -> tuple[TrainingResult, ...]:
    r"""Train one model per seed, all at once; member i as ``train(..., seed=seeds[i])``.

    Parameters
    ----------
    factory : callable
        ``factory(init_seed) -> torch.nn.Module``, one architecture for all seeds.
    seeds : sequence of int
        One member per seed, each in [0, inf); at least one.
    loss_fn, train_data, val_data, criterion, batch_size, optimizer, learning_rate
        As for :func:`lib.models.training.train`; the data are shared by all
        members, ``loss_fn`` must run under ``vmap``.
    schedule, val_fn, augment, restore_best, device, progress
        As for :func:`lib.models.training.train`; ``val_fn`` must run under
        ``vmap``. Without ``val_data`` every member trains the whole budget,
        evaluated on schedule with a NaN ``val_loss``, and keeps its last state.
    on_evaluation : callable, optional
        ``on_evaluation(i, model, row)`` after every evaluation of member ``i``
        (its index in ``seeds``), with a module holding the member's current
        (not best) parameters and its history row: checkpoints per epoch.

    Returns
    -------
    tuple of TrainingResult
        One per seed, in order. ``record.wall_seconds`` is the wall time from the
        start until that member stopped.

    Examples
    --------
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
    >>> results = train_ensemble(factory, mse, data, data, seeds=[0, 1, 2], batch_size=16,
    ...                          criterion=Convergence(eval_every=20), learning_rate=0.1)
    >>> [r.record.stopped for r in results]
    ['converged', 'converged', 'converged']
    """
    caller = "train_ensemble"
    check_options(caller, criterion=criterion, optimizer=optimizer, learning_rate=learning_rate,
                  batch_size=batch_size, schedule=schedule, augment=augment, val_fn=val_fn,
                  loss_fn=loss_fn, extra=(("on_evaluation", on_evaluation, True),))
    if not callable(factory) or isinstance(factory, torch.nn.Module):
        raise TypeError(f"The 'factory' parameter of {caller} must be a callable "
                        f"factory(init_seed) -> torch.nn.Module. Got "
                        f"{type(factory).__name__} instead.")
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__") or len(seeds) == 0:
        raise ValueError(f"The 'seeds' parameter of {caller} must be a non-empty sequence of "
                         f"ints in [0, inf). Got {seeds!r} instead.")
    for s in seeds:
        check_int(s, name="seeds", caller=caller, low=0)
    device = check_device(device, caller)
    train_data = check_data(train_data, name="train_data", caller=caller, device=device)
    val_data = check_data(val_data, name="val_data", caller=caller, device=device,
                          allow_none=True)

    streams = [split_seeds(s) for s in seeds]
    members = [factory(init) for init, _, _ in streams]
    _check_members(members, caller)
    members = [m.to(device) for m in members]
    params, buffers = stack_module_state(members)
    base = copy.deepcopy(members[0]).to("meta")
    validate = val_fn or (lambda m, d: loss_fn(m, d, step))
    objective, validation = _Objective(base, loss_fn), _Objective(base, validate)

    def named(tree):
        return {f"model.{k}": v for k, v in tree.items()}

    def member_loss(p, b, batch):
        return functional_call(objective, (named(p), named(b)), (batch, step))

    def member_val(p, b):
        return functional_call(validation, (named(p), named(b)), (val_data,))

    n = len(train_data[0])
    batches = [batch_stream(n, batch_size, torch.Generator().manual_seed(order))
               for _, order, _ in streams]
    draws = [torch.Generator().manual_seed(draw) for _, _, draw in streams]
    monitors = [Monitor(criterion, restore_best=restore_best, validated=val_data is not None)
                for _ in seeds]
    best = [None] * len(seeds)
    walls = [0.0] * len(seeds)
    active = list(range(len(seeds)))
    opt = make_optimizer(optimizer, params.values(), learning_rate)
    is_eval = eval_steps(criterion)
    start = time.perf_counter()
    step = 0

    def _member(j):
        """A module with member j's current parameters (a copy), for on_evaluation."""
        module = copy.deepcopy(members[0])
        module.load_state_dict(snapshot(j))
        return module.eval()

    def snapshot(j):
        return {**{k: v[j].detach().clone() for k, v in params.items()},
                **{k: v[j].clone() for k, v in buffers.items()}}

    def evaluate(train_sums, train_counts):
        if val_data is None:    # the schedule of evaluations runs, with nothing to validate
            vals = [float("nan")] * len(active)
        else:
            with torch.no_grad():
                objective.eval()
                validation.eval()
                vals = vmap(member_val)(params, buffers).double().tolist()
        for j, i in enumerate(active):
            improved = monitors[i].evaluate(step, train_sums[j], train_counts, vals[j])
            if improved and restore_best:
                best[i] = snapshot(j)
            if on_evaluation is not None:
                with torch.no_grad():
                    on_evaluation(i, _member(j), dict(monitors[i].rows[-1]))

    evaluate([0.0] * len(active), 0)
    total = torch.zeros(len(active), dtype=torch.float64, device=device)
    count = 0
    bar = progress_bar(total=criterion.max_steps, desc=f"ensemble of {len(seeds)}", unit="step",
                       show=progress, leave=False)
    while active and step < criterion.max_steps:
        step += 1
        objective.train()
        stacked = []
        for i in active:
            index = next(batches[i]).to(device)
            batch = tuple(t[index] for t in train_data)
            if augment is not None:
                batch = tuple(augment(batch, draws[i], step))
            stacked.append(batch)
        batch = tuple(torch.stack(parts) for parts in zip(*stacked))
        if schedule is not None:
            for group in opt.param_groups:
                group["lr"] = learning_rate * float(schedule(step))
        losses = vmap(member_loss)(params, buffers, batch)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()   # members are independent: each gets its own gradient
        opt.step()
        total += losses.detach().double() * len(index)
        count += len(index)
        bar.update(1)
        if not is_eval(step):
            continue
        evaluate(total.tolist(), count)
        total.zero_()
        count = 0
        keep = [j for j, i in enumerate(active) if monitors[i].stopped is None]
        if len(keep) < len(active):
            for j, i in enumerate(active):
                if monitors[i].stopped is not None:
                    walls[i] = time.perf_counter() - start
                    if not restore_best or val_data is None:
                        best[i] = snapshot(j)
            if keep:
                params, opt = _compact(optimizer, opt, params, keep, learning_rate)
                buffers = {k: v[torch.as_tensor(keep, device=v.device)] for k, v in
                           buffers.items()}
                total = total[torch.as_tensor(keep, device=total.device)]
            active = [active[j] for j in keep]
    bar.close()
    end = time.perf_counter() - start
    for j, i in enumerate(active):    # members still running at the budget (none, normally)
        walls[i] = end
        if val_data is None or not restore_best or best[i] is None:
            best[i] = snapshot(j)
    results = []
    for i, member in enumerate(members):
        member.load_state_dict(best[i])
        record = monitors[i].record(step if monitors[i].stopped is None else
                                    int(monitors[i].rows[-1]["step"]), walls[i])
        results.append(TrainingResult(model=member.eval(), history=pd.DataFrame(monitors[i].rows),
                                      record=record))
    return tuple(results)
