"""The numpy <-> torch boundary of lib._arrays."""

import warnings

import numpy as np
import torch

from lib._arrays import as_tensor


def test_read_only_arrays_convert_without_a_warning():
    """torch.from_numpy cannot share a read-only buffer; as_tensor copies it instead."""
    array = np.arange(6.0).reshape(2, 3)
    array.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor, restore = as_tensor(array)
    assert tensor.tolist() == array.tolist() and not np.shares_memory(restore(tensor), array)


def test_writable_arrays_are_shared_not_copied():
    array = np.arange(6.0)
    tensor, _ = as_tensor(array)
    assert np.shares_memory(tensor.numpy(), array) and tensor.dtype == torch.float64
