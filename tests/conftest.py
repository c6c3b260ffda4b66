"""Shared fixtures: a built copy of the book at the ci preset, Chromium launch options, Dask workers."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lib import book

PROJECT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def copy_book_sources(target: Path) -> Path:
    """Copy what a book build reads (not the library, not outputs) into ``target``."""
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(PROJECT / name, target / name)
    shutil.copytree(PROJECT / "book", target / "book", ignore=shutil.ignore_patterns("chapters"))
    (target / "notebooks").mkdir()
    for source in (PROJECT / "notebooks").glob("*.md"):
        shutil.copy(source, target / "notebooks" / source.name)
    return target


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Every chapter executed at the ci preset and the book rendered, in a scratch root."""
    root = copy_book_sources(tmp_path_factory.mktemp("book"))
    status = book.build_book(root=root, preset="ci", rerun=True, progress=False)
    assert status == 0, "jupyter-book build failed (strict mode: warnings are errors)"
    return root


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright: Debian's Chromium, since Playwright cannot fetch its own offline."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def one_thread():
    """Torch on one thread for the test, restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def dask_scheduler():
    """A Dask scheduler with no workers; the test starts its own with :func:`start_worker`."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@contextlib.contextmanager
def start_worker(address: str, *, code: Path = PROJECT, folder: Path, env: dict | None = None):
    """A ``dask worker`` process joined to ``address``, running in ``folder``.

    Its working folder and Dask's local directory are ``folder``; it imports
    ``lib`` from ``code`` (another checkout for a worker with other code) and
    sees only the environment variables given in ``env`` besides the basics,
    so it shares no cache folder with the test unless told.
    """
    folder.mkdir(parents=True, exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    environment = {**keep, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1",
                   "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1",
         "--nthreads", "1", "--local-directory", str(folder), "--no-dashboard",
         "--name", folder.name],
        cwd=folder, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
