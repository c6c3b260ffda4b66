"""Every public numerical function fed corrupted input: a named error or a finite answer.

Issue 20.

The functions and how to call them are in ``bad_input_cases.CASES``, one
entry per name in the ``__all__`` of the geometry, estimator, graph,
neighbour, sampling and grid modules (a coverage test enforces it). Each
entry is fed valid input of random size (Hypothesis draws the seed), then the
same input corrupted one way (``KINDS``): another dtype (float16/32, bfloat16,
int, bool, complex), a tensor, NaN or inf at a random entry, no rows, one row,
a duplicated row, a constant array, an extra or a missing axis. The outcome
must be either a ValueError or TypeError whose message names the function
and one of its parameters (the scikit-learn shape of ``lib._checks``), or an
answer whose numbers are all finite; on valid input (numpy or torch) the
answer must also pass the entry's closed form or invariant, if it has one.

Runtime: every example is one call on a few dozen points or a grid of at most
11 x 11; Hypothesis is derandomized and keeps no database, so CI sees the same
examples every run.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from bad_input_cases import CASES, KNOWN_DEFECTS, MODULES, NOT_FED, affine_on_grid
from lib.geometry import curvature, differences, metric, reach
from lib.grid import Axis, Grid, Sampled

KINDS = ("valid", "torch", "float32", "float16", "bfloat16", "int64", "bool", "complex",
         "nan", "inf", "empty", "single", "duplicate", "constant", "ndim+", "ndim-")
# Corruptions that leave valid input valid, with the same answer: the closed form applies.
KEEPS_ANSWER = ("valid", "torch")
PROFILE = settings(max_examples=2, deadline=None, derandomize=True, database=None,
                   phases=[Phase.explicit, Phase.generate])  # no shrinking: CI time


def corrupt(x, kind, rng):
    """``x`` (a numpy array) corrupted one way."""
    x = np.asarray(x)
    if kind in ("valid", "torch"):
        return x if kind == "valid" else torch.from_numpy(x.copy())
    if kind in ("float32", "float16", "int64", "bool"):
        # A real dtype for complex input (eigenvalues) means its real part, said so here
        # rather than by numpy's ComplexWarning.
        real = np.real(x) if kind != "bool" else x
        return np.rint(real).astype(kind) if kind == "int64" else (x != 0 if kind == "bool"
                                                                   else real.astype(kind))
    if kind == "bfloat16":
        # torch has no complex bfloat16: complex input (eigenvalues) keeps its real part.
        return torch.from_numpy(np.real(x).astype(np.float32)).to(torch.bfloat16)
    if kind == "complex":
        return x + 0.5j
    if kind in ("nan", "inf"):
        y = x.astype(np.result_type(x.dtype, np.float64))   # complex input stays complex
        if y.size:
            y.flat[rng.integers(y.size)] = np.nan if kind == "nan" else np.inf
        return y
    if kind in ("empty", "single"):
        return x[:0] if kind == "empty" else x[:1] if x.ndim else x
    if kind == "duplicate":
        y = x.copy()
        if y.ndim and len(y) > 1:
            y[-1] = y[0]
        return y
    if kind == "constant":
        return np.full_like(x, x.flat[0] if x.size else 0)
    if kind == "ndim+":
        return x[..., None]
    return x[..., 0] if x.ndim else x                       # ndim-


def numbers(out, found=None):
    """Every numeric array or float inside ``out``, as float64 numpy arrays."""
    found = [] if found is None else found
    if isinstance(out, torch.Tensor):
        found.append(out.detach().cpu().to(torch.complex128 if out.is_complex()
                                           else torch.float64).numpy())
    elif isinstance(out, np.ndarray) and out.dtype.kind in "biufc":
        found.append(out.astype(np.complex128 if out.dtype.kind == "c" else np.float64))
    elif isinstance(out, (int, float, np.number)) and not isinstance(out, bool):
        found.append(np.asarray(out, dtype=float))
    elif scipy.sparse.issparse(out):
        found.append(np.asarray(out.data, dtype=float))
    elif hasattr(out, "select_dtypes"):                    # a DataFrame
        found.append(out.select_dtypes("number").to_numpy(dtype=float))
    elif dataclasses.is_dataclass(out) and not isinstance(out, type):
        for f in dataclasses.fields(out):
            numbers(getattr(out, f.name), found)
    elif isinstance(out, (tuple, list)):
        for item in out:
            numbers(item, found)
    elif hasattr(out, "get_params"):                        # a fitted estimator
        for key, value in vars(out).items():
            if key.endswith("_") and not key.startswith("_"):
                numbers(value, found)
    return found


def assert_named_error_or_finite(case, args, kind):
    with warnings.catch_warnings():
        # A complex array cast to real loses its imaginary part with only a warning:
        # that is a wrong answer, not a finite one.
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        warnings.filterwarnings("error", message=".*discards the imaginary part")
        try:
            out = case.call(**args)
        except (ValueError, TypeError) as error:
            if kind in KEEPS_ANSWER:
                raise
            message = str(error)
            assert case.caller in message, f"error does not name {case.caller}: {message}"
            named = any(f"'{name}'" in message for name in case.arrays + case.names)
            assert named or f"{case.caller} needs" in message, (
                f"error names none of {case.arrays + case.names}: {message}")
            return None
    for array in numbers(out):
        bad = ~np.isfinite(array)
        if case.allow_inf:
            bad &= ~(np.isposinf(array.real) if array.dtype.kind == "c" else np.isposinf(array))
        assert not bad.any(), f"{int(bad.sum())} non-finite numbers in the answer to {kind} input"
    return out


def as_numpy(out):
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return type(out)(**{f.name: as_numpy(getattr(out, f.name))
                            for f in dataclasses.fields(out)})
    if isinstance(out, tuple):
        return tuple(as_numpy(item) for item in out)
    return out


def _pairs(prefixes) -> list:
    pairs = []
    for name in sorted(CASES):
        if not name.startswith(prefixes):
            continue
        for kind in KINDS:
            known = kind in KNOWN_DEFECTS.get(name, ())
            marks = [pytest.mark.xfail(strict=True, reason="known defect (KNOWN_DEFECTS)")] * known
            pairs.append(pytest.param(name, kind, marks=marks, id=f"{name}-{kind}"))
    return pairs


def named_error_or_finite_answer(name, kind, seed, which):
    case = CASES[name]
    if case.kinds is not None and kind not in case.kinds:
        return
    rng = np.random.default_rng(seed)
    args = case.build(rng)
    valid = dict(args)
    param = case.arrays[which % len(case.arrays)]
    args[param] = corrupt(args[param], kind, rng)
    for key in case.torch_only:
        if isinstance(args[key], np.ndarray):
            args[key] = torch.from_numpy(np.ascontiguousarray(args[key]))
    out = assert_named_error_or_finite(case, args, kind)
    if kind in KEEPS_ANSWER and case.check is not None:
        result = case.check(as_numpy(out), valid)
        assert result is not False, f"{name}: the answer fails its check"


# One test function per package: Hypothesis chains the settings of a test each time it
# runs, and a single function parametrized ~1000 times overflows the recursion limit.
SEEDS = dict(seed=st.integers(0, 2**32 - 1), which=st.integers(0, 2))


@pytest.mark.parametrize("name, kind", _pairs("lib.geometry."))
@PROFILE
@given(**SEEDS)
def test_geometry_named_error_or_finite_answer(name, kind, seed, which):
    named_error_or_finite_answer(name, kind, seed, which)


@pytest.mark.parametrize("name, kind", _pairs("lib.estimators."))
@PROFILE
@given(**SEEDS)
def test_estimators_named_error_or_finite_answer(name, kind, seed, which):
    named_error_or_finite_answer(name, kind, seed, which)


@pytest.mark.parametrize("name, kind", _pairs("lib.graphs."))
@PROFILE
@given(**SEEDS)
def test_graphs_named_error_or_finite_answer(name, kind, seed, which):
    named_error_or_finite_answer(name, kind, seed, which)


@pytest.mark.parametrize("name, kind", _pairs(("lib.neighbors.", "lib.sampling.")))
@PROFILE
@given(**SEEDS)
def test_neighbors_sampling_named_error_or_finite_answer(name, kind, seed, which):
    named_error_or_finite_answer(name, kind, seed, which)


def test_every_public_function_has_an_entry():
    # A new public function must get an entry in bad_input_cases.CASES (or, for a
    # constant or result container, in NOT_FED with the reason).
    public = {f"{module.__name__}.{name}" for module in MODULES for name in module.__all__}
    missing = sorted(public - set(CASES) - set(NOT_FED))
    assert not missing, f"no bad-input entry for {missing}"
    stale = sorted((set(CASES) | set(NOT_FED)) - public)
    assert not stale, f"entries for names no module exports: {stale}"


# --------------------------------------------------------------------------- degenerate grids

@PROFILE
@given(n=st.integers(-2, 1), start=st.floats(-5, 5))
def test_degenerate_axes_are_refused_by_name(n, start):
    # One point per axis (or none) has no spacing; a zero-length axis has spacing 0.
    with pytest.raises(ValueError, match=r"The 'n' parameter of Axis 't' must be an int in "
                                         r"\[2, inf\]"):
        Axis("t", start, start + 1.0, n)
    with pytest.raises(ValueError, match=r"The 'stop' parameter of Axis 't' must"):
        Axis("t", start, start, 5)


def test_degenerate_grids_are_refused_by_name():
    with pytest.raises(ValueError, match="The 'axes' parameter of Grid must hold at least one"):
        Grid(())
    with pytest.raises(ValueError, match="The 'stop' parameter of Axis 'u' must"):
        Grid.product(u=(1.0, 1.0, 4))
    with pytest.raises(ValueError, match="The 'n' parameter of Axis 'u' must"):
        Grid.product(u=(0.0, 1.0, 1), v=(0.0, 1.0, 5))


GRID_FUNCTIONS = {"gradient": differences.gradient, "derivatives": differences.derivatives,
                  "metric_matrix": metric.metric_matrix, "volume_element": metric.volume_element,
                  "total_volume": metric.total_volume,
                  "scalar_curvature": curvature.scalar_curvature, "grid_reach": reach.grid_reach}


@pytest.mark.parametrize("caller", sorted(GRID_FUNCTIONS))
@settings(max_examples=6, deadline=None, derandomize=True, database=None)
@given(sizes=st.lists(st.integers(2, 9), min_size=1, max_size=2),
       periodic=st.lists(st.booleans(), min_size=2, max_size=2), order=st.sampled_from([2, 4]))
def test_small_grids_give_a_named_error_or_an_answer_on_the_interior(caller, sizes, periodic,
                                                                     order):
    # From 2 samples per axis up: too few for the stencil (or the three nested stencils
    # of the curvature) must be a named error, never an empty or a wrapped-around answer.
    grid = Grid.product(**{f"t{i}": (0.0, 1.0, n, "periodic") if p else (0.0, 1.0, n)
                           for i, (n, p) in enumerate(zip(sizes, periodic))})
    t = grid.points
    # A map that is smooth on periodic axes too: one circle per axis, in R^(2k).
    values = np.concatenate([np.stack([np.cos(2 * np.pi * t[..., i]),
                                       np.sin(2 * np.pi * t[..., i])], -1)
                             for i in range(grid.ndim)], -1)
    try:
        out = GRID_FUNCTIONS[caller](values, grid, order=order)
    except ValueError as error:
        assert caller in str(error) and "'grid'" in str(error) or "'order'" in str(error), error
        return
    for array in numbers(out):
        assert np.isfinite(array[~np.isposinf(array)]).all()
    if caller in ("volume_element", "scalar_curvature"):
        depth = order // 2 * (3 if caller == "scalar_curvature" else 1)
        assert np.shape(out) == grid.interior(depth).shape


def test_sampled_and_grid_argument():
    grid, values, A = affine_on_grid(np.random.default_rng(0))
    np.testing.assert_array_equal(metric.volume_element(Sampled(values, grid)),
                                  metric.volume_element(values, grid))
    with pytest.raises(TypeError, match="The 'grid' parameter of volume_element must be a Grid"):
        metric.volume_element(values, grid.shape)
    with pytest.raises(TypeError, match="The 'grid' parameter of volume_element must be omitted"):
        metric.volume_element(Sampled(values, grid), grid)


@pytest.mark.parametrize("caller", ["volume_element", "total_volume", "scalar_curvature"])
@pytest.mark.parametrize("half", ["numpy-float16", "torch-bfloat16"])
def test_half_precision_grid_measures_are_refused_by_name(caller, half):
    # They raised torch's "lu_cpu" not implemented for 'Half' from the determinant/inverse.
    grid, values, _ = affine_on_grid(np.random.default_rng(1))
    x = values.astype(np.float16) if half.startswith("numpy") else torch.from_numpy(
        values).to(torch.bfloat16)
    function = {"volume_element": metric.volume_element, "total_volume": metric.total_volume,
                "scalar_curvature": curvature.scalar_curvature}[caller]
    with pytest.raises(TypeError, match=f"The 'values' parameter of {caller} must have dtype "
                                        f"float32 or float64. Got {half.split('-')[1]} instead."):
        function(x, grid)


@pytest.mark.parametrize("value", [0.0, 3.0, 1e-200])
def test_scalar_curvature_of_a_constant_map_is_the_degenerate_metric_error(value):
    # g = 0 everywhere: det(g) / scale**k was 0 / 0 (scale**k underflows), the check
    # passed and torch.linalg.inv raised its own _LinAlgError. 9 = the 3 x 3 interior
    # left by three nested stencils on a 9 x 9 grid.
    grid = Grid.product(u=(0.0, 1.0, 9), v=(0.0, 1.0, 9))
    with pytest.raises(ValueError, match="scalar_curvature needs a non-degenerate metric g = "
                                         "J\\^T J .* Got 9 degenerate points"):
        curvature.scalar_curvature(np.full((9, 9, 3), value), grid)
