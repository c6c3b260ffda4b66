"""Wall-clock timing shared by the benchmark scripts (imported as ``_timing``: the scripts run
from the repository root, with ``benchmarks/`` first on ``sys.path``)."""

from __future__ import annotations

import time

import torch


def timed(fn, device="cpu"):
    """``(fn(), seconds)``; on a CUDA device the clock waits for the device to finish."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start
