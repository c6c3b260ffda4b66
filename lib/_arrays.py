"""The one numpy <-> torch boundary: torch inside, the caller's type outside."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def as_tensor(values, *, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, Callable]:
    """Convert ``values`` to a tensor once and return how to convert results back.

    Parameters
    ----------
    values : numpy array, torch tensor or nested sequence
        Floating and complex arrays keep their dtype (complex is never cast to
        real behind the caller's back: the door's dtype check refuses it by
        name); integer and bool input becomes float64.
    dtype : torch.dtype, optional
        Force this dtype inside (the result is still returned in the caller's
        numpy/torch type).

    Returns
    -------
    tensor : torch.Tensor
        On the caller's device when ``values`` is a tensor, else on the CPU.
    restore : callable
        ``restore(t)`` gives ``t`` back as a numpy array when the input was not
        a tensor, else as a tensor (device unchanged).
    """
    if isinstance(values, torch.Tensor):
        tensor = values if dtype is None else values.to(dtype)
        if not (tensor.is_floating_point() or tensor.is_complex()):
            tensor = tensor.to(torch.float64)
        return tensor, lambda t: t
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.inexact):
        array = array.astype(np.float64)
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:
        # torch.from_numpy shares memory and cannot honour a read-only flag (it warns):
        # a read-only input (a broadcast view, a memmap opened "r") is copied instead.
        array = array.copy()
    tensor = torch.from_numpy(array)
    if dtype is not None:
        tensor = tensor.to(dtype)
    return tensor, lambda t: t.detach().cpu().numpy()
