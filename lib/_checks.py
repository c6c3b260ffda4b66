"""Argument checks whose errors name the parameter, the caller and the range.

Every message has the scikit-learn shape: ``The 'radius' parameter of
sphere must be a float in (0, inf). Got -1.0 instead.``
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _prefix(name: str, caller: str) -> str:
    return f"The {name!r} parameter of {caller}"


def check_real(value, *, name: str, caller: str, low=-math.inf, high=math.inf,
               low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float after checking it lies in the given range."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    expected = f"a float in {left}{low}, {high}{right}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(name, caller)} must be {expected}. Got {value!r} instead.")
    value = float(value)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above or math.isnan(value):
        raise ValueError(f"{_prefix(name, caller)} must be {expected}. Got {value!r} instead.")
    return value


def check_int(value, *, name: str, caller: str, low: int | None = None,
              high: int | None = None) -> int:
    """Return ``value`` as an int after checking ``low <= value <= high``."""
    lo = "-inf" if low is None else low
    hi = "inf" if high is None else high
    expected = f"an int in [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_prefix(name, caller)} must be {expected}. Got {value!r} instead.")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{_prefix(name, caller)} must be {expected}. Got {value!r} instead.")
    return value


def check_in(value, allowed, *, name: str, caller: str):
    """Return ``value`` after checking it is one of ``allowed``."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{_prefix(name, caller)} must be one of {{{options}}}. "
                         f"Got {value!r} instead.")
    return value


def check_finite(array, *, name: str, caller: str) -> None:
    """Raise if ``array`` (numpy or torch) holds NaN or infinity.

    A real array is first summed, one read with no temporary (in its own
    dtype for float32 and float64, in float32 for the half types): NaN or
    infinity anywhere makes the sum non-finite, so a finite sum proves the
    array finite. Only a non-finite sum (a bad entry, or an overflow of finite
    ones) pays for the elementwise test, which counts the bad entries.
    """
    if isinstance(array, np.ndarray):
        if array.dtype.kind == "f":
            wide = None if array.dtype.itemsize >= 4 else np.float32
            with np.errstate(over="ignore", invalid="ignore"):   # a bad sum is the signal
                if np.isfinite(np.sum(array, dtype=wide)):
                    return
    elif array.dtype.is_floating_point:
        wide = None if array.element_size() >= 4 else _torch_float32()
        if bool(array.sum(dtype=wide).isfinite()):
            return
    finite = np.isfinite(array) if isinstance(array, np.ndarray) else array.isfinite()
    if not bool(finite.all()):
        raise ValueError(f"{_prefix(name, caller)} must hold only finite values. "
                         f"Got {int((~finite).sum())} non-finite entries instead.")


def _torch_float32():
    """torch.float32, imported only when a half-precision tensor is checked."""
    import torch

    return torch.float32


def check_shape(shape, expected, *, name: str, caller: str, describe: str) -> None:
    """Raise unless ``shape`` matches ``expected``; ``None`` entries match anything."""
    ok = len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))
    if not ok:
        raise ValueError(f"{_prefix(name, caller)} must have shape {describe}. "
                         f"Got {tuple(shape)} instead.")


FLOAT_DTYPES = ("float32", "float64")


REAL_DTYPES = ("float16", "bfloat16", "float32", "float64")


def check_float_dtype(array, *, name: str, caller: str, allowed=FLOAT_DTYPES) -> None:
    """Raise a TypeError unless ``array`` (numpy or torch) has a dtype in ``allowed``.

    By default float32 or float64, for the torch linear algebra inside (QR,
    SVD, LU, cdist), which has no float16 or bfloat16 kernels on the CPU and
    would fail midway with a raw torch error. ``allowed=REAL_DTYPES`` refuses
    only complex input, for computations that are plain sums (stencils). Call
    it after :func:`lib._arrays.as_tensor`, which has already turned integer
    and bool input into float64 (and keeps complex input complex).
    """
    dtype = str(array.dtype).removeprefix("torch.")
    if dtype not in allowed:
        expected = " or ".join((", ".join(allowed[:-1]), allowed[-1]))
        raise TypeError(f"{_prefix(name, caller)} must have dtype {expected}. "
                        f"Got {dtype} instead.")


def check_grid_field(field, grid, *, order: int, caller: str, name: str = "values",
                     nested: int = 1, trailing: tuple | None = None,
                     describe_trailing: str = "D") -> None:
    """Raise unless ``field`` (a tensor) can be differenced ``nested`` times on ``grid``.

    Checks ``order`` (2 or 4), the leading shape ``grid.shape``, a real dtype and
    finite entries, then that every interval axis keeps at least 2 samples after
    ``nested`` stencils of half-width ``order // 2`` and every periodic axis has
    the ``order + 1`` distinct samples one stencil reads (fewer would wrap onto
    the point itself). ``trailing``, if given, is the shape of the axes after the
    grid's (``None`` entries match anything), described as ``describe_trailing``.
    Errors name ``name`` or ``'grid'`` and ``caller``.
    """
    check_in(order, (2, 4), name="order", caller=caller)
    if trailing is None:
        describe = f"(*grid.shape, *F) = ({', '.join(map(str, grid.shape))}, ...)"
        check_shape(field.shape[:grid.ndim], grid.shape, name=name, caller=caller,
                    describe=describe)
    else:
        describe = (f"(*grid.shape, {describe_trailing}) = "
                    f"({', '.join(map(str, grid.shape))}, {describe_trailing})")
        check_shape(field.shape, (*grid.shape, *trailing), name=name, caller=caller,
                    describe=describe)
    check_float_dtype(field, name=name, caller=caller, allowed=REAL_DTYPES)
    check_finite(field, name=name, caller=caller)
    depth = order // 2
    for axis in grid.axes:
        need = order + 1 if axis.periodic else 2 * depth * nested + 2
        if axis.n < need:
            kind = "periodic" if axis.periodic else "interval"
            raise ValueError(f"The 'grid' parameter of {caller} must have at least {need} "
                             f"samples on every {kind} axis for order {order}. Got n={axis.n} "
                             f"on axis {axis.name!r} instead.")


def check_sample_matrix(X, *, name: str, caller: str, min_samples: int = 1) -> None:
    """Raise, naming ``name`` and ``caller``, unless ``X`` is a finite real (n_samples, n_features) array.

    For scikit-learn estimators, before ``validate_data``: its own errors
    ("Found array with 0 sample(s)", "Input X contains NaN", "Got unsupported
    ScalarType BFloat16") name the class but not the parameter. The wording
    keeps the phrases scikit-learn's estimator checks look for ("1 sample",
    "NaN", "inf", "Complex data not supported"). Only inspects: numpy arrays,
    torch tensors and array-likes that numpy converts; sparse matrices,
    object arrays and anything numpy cannot convert are left to
    ``validate_data``, as are the feature count and the dtype conversion.
    """
    prefix = _prefix(name, caller)
    if hasattr(X, "tocsr"):                                # scipy.sparse: validate_data's case
        return
    dtype = str(getattr(X, "dtype", "")).removeprefix("torch.")
    if type(X).__module__.startswith("torch"):
        if dtype == "bfloat16":
            raise TypeError(f"{prefix} must have dtype float32 or float64 (bfloat16 has no numpy "
                            f"dtype). Got bfloat16 instead.")
        array = X.detach().cpu().numpy() if dtype else X
    else:
        try:
            array = np.asarray(X)
        except Exception:                                  # ragged and the like
            return
    kind = array.dtype.kind
    if kind == "c":
        raise ValueError(f"{prefix} must be real: Complex data not supported. "
                         f"Got {array.dtype} instead.")
    if array.ndim != 2:
        raise ValueError(f"{prefix} must have shape (n_samples, n_features). "
                         f"Got {tuple(array.shape)} instead.")
    if array.shape[0] < min_samples:
        raise ValueError(f"{prefix} must hold at least {min_samples} samples. Got "
                         f"{array.shape[0]} sample(s) (shape={tuple(array.shape)}) instead.")
    if kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            raise ValueError(f"{prefix} must hold only finite values (no NaN or inf). Got "
                             f"{int((~finite).sum())} NaN or inf entries instead.")
