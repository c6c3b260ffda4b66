"""Threads: torch's intra-op count for a block of work, and blocks of work side by side."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


def set_torch_threads(count: int | None) -> int | None:
    """Set torch's intra-op threads to ``count`` where torch is loaded; return the old count.

    Nothing happens (and None comes back) when ``count`` is None or torch has
    not been imported: a process that never loaded torch has no pool to size.
    """
    torch = sys.modules.get("torch")
    if torch is None or count is None:
        return None
    old = torch.get_num_threads()
    if old != count:
        torch.set_num_threads(count)
    return old


@contextmanager
def torch_threads(count: int | None):
    """Run the block on ``count`` torch threads (None: as set), then restore the caller's count."""
    old = set_torch_threads(count)
    try:
        yield
    finally:
        if old is not None:
            set_torch_threads(old)


def map_blocks(function, items, workers: int) -> list:
    """``[function(item) for item in items]``, on up to ``workers`` Python threads side by side.

    For CPU work cut into independent blocks, each made of torch (or other
    GIL-releasing) operations that the caller runs on one thread inside
    :func:`torch_threads`: the blocks then never meet at an OpenMP barrier,
    where idle threads spin unless ``OMP_WAIT_POLICY=PASSIVE`` was set before
    torch was loaded, which made a loaded 2-core machine 3-20x slower than
    one thread. Each block's result does not depend on the thread that ran it.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))
