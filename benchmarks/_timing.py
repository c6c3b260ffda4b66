"""Wall-clock timing and result files shared by the benchmark scripts.

Imported as ``_timing``: the scripts run from the repository root, with
``benchmarks/`` first on ``sys.path``."""

from __future__ import annotations

import csv
import time
from pathlib import Path


def timed(fn, device="cpu"):
    """``(fn(), seconds)``; on a CUDA device the clock waits for the device to finish."""
    import torch  # here, so that write_rows leaves a parent process free of torch's threads

    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write benchmark rows (dicts with the same keys) to a CSV, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
