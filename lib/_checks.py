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
    """Raise if ``array`` (numpy or torch) holds NaN or infinity."""
    finite = np.isfinite(array) if isinstance(array, np.ndarray) else array.isfinite()
    if not bool(finite.all()):
        raise ValueError(f"{_prefix(name, caller)} must hold only finite values. "
                         f"Got {int((~finite).sum())} non-finite entries instead.")


def check_shape(shape, expected, *, name: str, caller: str, describe: str) -> None:
    """Raise unless ``shape`` matches ``expected``; ``None`` entries match anything."""
    ok = len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))
    if not ok:
        raise ValueError(f"{_prefix(name, caller)} must have shape {describe}. "
                         f"Got {tuple(shape)} instead.")


FLOAT_DTYPES = ("float32", "float64")


def check_float_dtype(array, *, name: str, caller: str) -> None:
    """Raise a TypeError unless ``array`` (numpy or torch) is float32 or float64.

    For the torch linear algebra inside (QR, SVD, LU, cdist), which has no
    float16 or bfloat16 kernels on the CPU and would fail midway with a raw
    torch error. Call it after :func:`lib._arrays.as_tensor`, which has
    already turned integer input into float64.
    """
    dtype = str(array.dtype).removeprefix("torch.")
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{_prefix(name, caller)} must have dtype float32 or float64. "
                        f"Got {dtype} instead.")
