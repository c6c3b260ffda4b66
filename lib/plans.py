"""What a chapter run will compute and cost, before it runs: the plan of a dry run.

A study describes its run as :class:`Stage` rows, each a kind of unit (a
network trained, a grid measured, a sweep cell): how many units, how many are
already cached, and a model of one unit's cost, its floating-point work
split into optimiser steps (training) and the rest, and its peak memory. The
model is analytic, from the preset's sizes alone, so a plan is built in
well under a second and computes nothing.

Time is the model's work at this machine's measured speed
(:func:`machine_speed`): a few tenths of a second of training two small MLPs
with Adam on one thread give the cost of a step, ``overhead + flops / rate``,
with ``overhead`` the fixed cost of a step (which dominates for the small
networks most chapters train) and ``rate`` the sustained float32 rate.
Training units are costed at their epoch budget, so the time is an upper
bound for runs that stop on convergence. Peak memory is
:data:`PROCESS_BYTES` (a Python process with torch, numpy and the library
imported) plus what the unit holds at once.

Plans are shown by ``python -m lib.book run CHAPTER -p preset paper
--dry-run`` and ``python -m lib.book plan`` (every chapter at every preset).
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass

import pandas as pd

from lib._checks import check_int, check_real

__all__ = ["Stage", "Speed", "PROCESS_BYTES", "mlp_parameters", "training_steps", "machine_speed",
           "memory_budget", "plan_table", "stage_seconds", "REACH_PAIR", "REACH_QUERY", "MEASURE",
           "SPRITE_PIXEL", "VIEW_PIXEL", "SIMILARITY_PIXEL", "reach_flops", "local_reach_cost",
           "strided_counts", "class_measures_cost", "render_flops"]

#: Resident memory of a worker process before its unit starts: Python with torch, numpy,
#: pandas and ``lib`` imported (about 420 MiB measured on Linux with torch 2.13 CPU).
PROCESS_BYTES = 420 * 2**20


@dataclass(frozen=True)
class Stage:
    """One kind of unit of a chapter run and the model of its cost.

    Parameters
    ----------
    name : str
        What a unit is, e.g. ``"train autoencoder"``.
    units : int
        How many units the run has, >= 0.
    cached : int or None
        How many of them are cached already (None: unknown without computing,
        e.g. a cache keyed by a hash of generated data).
    steps : float
        Optimiser steps of one unit at its budget (0 for no training).
    step_flops : float
        Floating-point operations of one step (forward and backward).
    flops : float
        Other floating-point work of one unit (geometry, spectra, solvers).
    peak_bytes : float
        Memory one unit holds at once, beyond :data:`PROCESS_BYTES`.
    parallel : bool
        Whether the units can run on several workers (through :mod:`lib.sweeps`).
    """

    name: str
    units: int
    cached: int | None
    steps: float = 0.0
    step_flops: float = 0.0
    flops: float = 0.0
    peak_bytes: float = 0.0
    parallel: bool = False

    def __post_init__(self):
        caller = "Stage"
        check_int(self.units, name="units", caller=caller, low=0)
        if self.cached is not None:
            check_int(self.cached, name="cached", caller=caller, low=0, high=self.units)
        for name in ("steps", "step_flops", "flops", "peak_bytes"):
            check_real(getattr(self, name), name=name, caller=caller, low=0.0)

    @classmethod
    def of_units(cls, name: str, units, *, cached: int | None, parallel: bool = False) -> Stage:
        """A stage of units of unequal cost, its per-unit cost the mean (its peak the largest).

        Parameters
        ----------
        name : str
        units : sequence of (steps, step_flops, flops, peak_bytes), one per unit
        cached, parallel
            As for :class:`Stage`.

        The mean is exact for the total time: ``steps`` is the mean step count
        and ``step_flops`` the step-weighted mean, so that ``units * steps *
        (overhead + step_flops / rate)`` is the sum over the units.

        >>> stage = Stage.of_units("train", [(10, 100.0, 0.0, 1.0), (30, 500.0, 0.0, 3.0)],
        ...                        cached=0)
        >>> stage.steps, stage.step_flops, stage.peak_bytes
        (20.0, 400.0, 3.0)
        """
        units = [tuple(float(v) for v in unit) for unit in units]
        count = len(units)
        if not count:
            return cls(name, 0, cached, parallel=parallel)
        steps = sum(u[0] for u in units)
        step_flops = sum(u[0] * u[1] for u in units) / steps if steps else 0.0
        return cls(name, count, cached, steps=steps / count, step_flops=step_flops,
                   flops=sum(u[2] for u in units) / count,
                   peak_bytes=max(u[3] for u in units), parallel=parallel)


@dataclass(frozen=True)
class Speed:
    """This machine's measured training speed on one thread.

    ``seconds = steps * (overhead + step_flops / rate) + flops / rate``.
    """

    rate: float          # sustained floating-point operations per second
    overhead: float      # fixed seconds per optimiser step


def mlp_parameters(widths) -> int:
    """Weights and biases of a stack of dense layers of the given widths.

    >>> mlp_parameters((784, 256, 2))
    201474
    """
    widths = [check_int(w, name="widths", caller="mlp_parameters", low=1) for w in widths]
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def training_steps(n_train: int, batch_size: int, epochs: int) -> int:
    """Optimiser steps of ``epochs`` passes over ``n_train`` samples in batches of ``batch_size``.

    >>> training_steps(1000, 128, 10)
    80
    """
    caller = "training_steps"
    n_train = check_int(n_train, name="n_train", caller=caller, low=0)
    batch_size = check_int(batch_size, name="batch_size", caller=caller, low=1)
    epochs = check_int(epochs, name="epochs", caller=caller, low=0)
    return -(-n_train // batch_size) * epochs


def _steps_per_second(widths, batch: int, seconds: float) -> tuple[float, float]:
    import torch

    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, widths[0], generator=generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad()
        ((model(x) - x) ** 2).mean().backward()
        optimizer.step()

    for _ in range(3):
        step()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        count += 1
    return elapsed / count, 6 * mlp_parameters(widths) * batch


@functools.cache
def machine_speed(seconds: float = 0.25) -> Speed:
    """Time a small and a medium MLP training step on one thread; return :class:`Speed`.

    Two Adam steps costs ``t = overhead + flops / rate`` solve for the two
    unknowns (the small network measures the overhead, the medium one the
    rate). Measured once per process, on one torch thread as the workers run.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        small = _steps_per_second((8, 64, 64, 8), 128, seconds)
        medium = _steps_per_second((784, 512, 64, 512, 784), 128, seconds)
    finally:
        torch.set_num_threads(threads)
    (t_small, f_small), (t_medium, f_medium) = small, medium
    rate = (f_medium - f_small) / max(t_medium - t_small, 1e-9)
    overhead = max(t_small - f_small / rate, 1e-6)
    return Speed(rate=rate, overhead=overhead)


def stage_seconds(stage: Stage, speed: Speed) -> float:
    """Estimated seconds of one unit of ``stage`` at ``speed``, on one thread."""
    return stage.steps * (speed.overhead + stage.step_flops / speed.rate) + stage.flops / speed.rate


def memory_budget() -> int:
    """Bytes of memory this machine has (the default budget of a run)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def plan_table(stages, speed: Speed | None, *, workers: int = 1,
               remote: bool = False) -> pd.DataFrame:
    """The plan of a run as a table: one row per stage, then a total row.

    Parameters
    ----------
    stages : sequence of Stage
    speed : Speed or None
        From :func:`machine_speed`; None leaves the seconds NaN (the memory
        alone needs no timing).
    workers : int, default=1
        Units of a parallel stage that run at once on this machine (the
        run's local workers); a stage that is not parallel runs one unit at
        a time.
    remote : bool, default=False
        Whether the parallel stages run on a cluster's workers instead: their
        seconds are then one worker's, and their memory is not this
        machine's (0 in ``peak MiB``).

    Returns
    -------
    DataFrame
        Columns ``stage, units, cached, to compute, seconds per unit, seconds,
        peak MiB per unit, peak MiB`` (``seconds``: wall time of the units
        left to compute, on ``workers`` where the stage is parallel; ``peak
        MiB``: memory of the units that run at once, each in its own process
        where parallel). The last row, ``total``, sums the seconds and takes
        the largest peak: the memory this machine needs.
    """
    workers = check_int(workers, name="workers", caller="plan_table", low=1)
    if not isinstance(remote, bool):
        raise TypeError(f"The 'remote' parameter of plan_table must be a bool. Got {remote!r} "
                        f"instead.")
    rows = []
    for stage in stages:
        left = stage.units - (stage.cached or 0)
        at_once = min(workers, max(left, 1)) if stage.parallel and not remote else 1
        here = 0 if stage.parallel and remote else at_once
        per_unit = math.nan if speed is None else stage_seconds(stage, speed)
        unit_mib = (PROCESS_BYTES + stage.peak_bytes) / 2**20
        rows.append({"stage": stage.name, "units": stage.units,
                     "cached": "?" if stage.cached is None else stage.cached,
                     "to compute": left, "seconds per unit": per_unit,
                     "seconds": per_unit * math.ceil(left / at_once),
                     "peak MiB per unit": unit_mib, "peak MiB": unit_mib * here})
    table = pd.DataFrame(rows, columns=["stage", "units", "cached", "to compute",
                                        "seconds per unit", "seconds", "peak MiB per unit",
                                        "peak MiB"])
    total = {"stage": "total", "units": int(table["units"].sum()), "cached": "",
             "to compute": int(table["to compute"].sum()), "seconds per unit": math.nan,
             "seconds": float(table["seconds"].sum(min_count=1)),
             "peak MiB per unit": float(table["peak MiB per unit"].max()) if rows else 0.0,
             "peak MiB": float(table["peak MiB"].max()) if rows else 0.0}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


# --- costs of the library's kernels that several chapters run -------------------------------
#
# Memory-bound work counted in flop-equivalents at the dense rate of machine_speed, from short
# one-thread timings of the library's functions on the project's 2-core machine (2026-12).

#: Work of ``lib.geometry.reach.local_reach`` beyond its Gram matmuls, per query and
#: candidate (about 45 ns).
REACH_PAIR = 4.0e3
#: Work of ``lib.geometry.reach.local_reach`` per query and ambient dimension (the QR and
#: rank of its tangents, about 0.45 us).
REACH_QUERY = 4.0e4
#: Work of the finite differences of ``lib.geometry.measures.class_measures`` per grid
#: point, feature and axis.
MEASURE = 2.9e3
#: Work of rendering one dSprites pixel.
SPRITE_PIXEL = 7.5e3
#: Work of one pixel of a turntable view's base render.
VIEW_PIXEL = 6.0e5
#: Work of one pixel of the turntable's scaling and rotation of each image.
SIMILARITY_PIXEL = 2.8e4


def reach_flops(queries: int, candidates: int, ambient: int, dim: int) -> float:
    """Work of :func:`lib.geometry.reach.local_reach` for ``queries`` x ``candidates`` in R^ambient."""
    return (queries * candidates * (2.0 * ambient * (dim + 1) + REACH_PAIR)
            + queries * ambient * REACH_QUERY)


def local_reach_cost(queries: int, candidates: int, ambient: int,
                     dim: int) -> tuple[float, float]:
    """(flops, peak bytes) of :func:`lib.geometry.reach.local_reach` in float64 at its default
    memory budget: two work blocks and the queries' tangents and the candidates, twice."""
    block = min(queries * candidates * (dim + 4) * 8.0, 2.0**28)
    arrays = (queries * ambient * (dim + 1) + candidates * ambient) * 8.0 * 2
    return reach_flops(queries, candidates, ambient, dim), 2 * block + arrays


def strided_counts(grid, stride: int, buffer: int) -> tuple[int, int]:
    """Queries and candidates of a grid reach: every ``stride``-th point per axis, the queries
    in ``grid.interior(buffer)``, the candidates on the same lattice over the whole grid."""
    queries = candidates = 1
    for axis in grid.axes:
        inner = axis.n if axis.periodic else axis.n - 2 * buffer
        queries *= -(-inner // stride)
        candidates *= len(range(0 if axis.periodic else buffer % stride, axis.n, stride))
    return queries, candidates


def class_measures_cost(grid, features: int, stride: int, buffer: int) -> tuple[float, float]:
    """(flops, peak bytes) of :func:`lib.geometry.measures.class_measures` on one class of
    ``features`` per grid point: its differences, and its reach at every ``stride``-th point;
    the points and two (G, D, k) gradients (the tangents, the curvature's own) at once."""
    k = grid.ndim
    queries, candidates = strided_counts(grid, stride, buffer)
    flops = grid.size * features * k * MEASURE + reach_flops(queries, candidates, features, k)
    return flops, grid.size * features * (1 + 2 * k) * 8.0


def render_flops(source, images: int, views: int | None = None) -> float:
    """Rendering ``images`` images of one class of an image testbed (``source``: its
    ``name``, ``image_size`` and ``base_size``); a turntable renders ``views`` views (default
    one per image) and scales and rotates every image."""
    pixels = source.image_size ** 2
    if source.name != "turntable":
        return images * pixels * SPRITE_PIXEL
    views = images if views is None else views
    return views * source.base_size ** 2 * VIEW_PIXEL + images * pixels * SIMILARITY_PIXEL
