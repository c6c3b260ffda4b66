"""Check that a change leaves every chapter's tables byte-identical.

Runs every chapter at one preset in a clean checkout of a base revision and in
the working tree, each with an empty cache of its own, and compares the CSV
tables the chapters publish, file by file::

    .venv/bin/python tools/compare_tables.py --base f59947c --preset ci

A refactoring that keeps behaviour must print ``identical`` for every table.
Both runs share this process's environment (thread counts change float
reductions, so set ``OMP_NUM_THREADS`` once for both). Columns that measure
wall-clock time can never repeat: ``--ignore-columns seconds`` drops them
before comparing.
Exit status: 0 when every table of the base exists and is byte-identical in
the working tree, 1 otherwise. ``--keep DIR`` leaves both runs in DIR.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chapter_slugs(tree: Path, env: dict) -> list[str]:
    """The chapters a tree registers, read from its own ``lib.book list``."""
    listing = subprocess.run([sys.executable, "-m", "lib.book", "list"], cwd=tree, env=env,
                             check=True, capture_output=True, text=True).stdout
    return [line.strip() for line in listing.splitlines() if line and not line[0].isspace()]


def table_digest(path: Path, ignore_columns: tuple[str, ...]) -> str:
    """sha256 of a CSV's bytes, or of its text without the ``ignore_columns``."""
    if not ignore_columns:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    import pandas as pd

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    kept = table.drop(columns=[c for c in ignore_columns if c in table.columns])
    return hashlib.sha256(kept.to_csv(index=False).encode()).hexdigest()


def run_tree(tree: Path, preset: str, scratch: Path, ignore_columns: tuple[str, ...],
             suffixes: tuple[str, ...] = ("csv",)) -> dict[str, str]:
    """Run every chapter of ``tree`` at ``preset``; return {chapter/table.csv: sha256}."""
    env = dict(os.environ, PYTHONPATH=str(tree), MANIFOLD_BOOK_CACHE=str(scratch / "cache"))
    tables = {}
    for slug in chapter_slugs(tree, env):
        print(f"  {tree.name}: {slug}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "lib.book", "--root", str(tree), "run", slug,
                        "-p", "preset", preset], cwd=tree, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for output in sorted((tree / "book" / "chapters" / slug).iterdir()):
            if output.suffix.lstrip(".") not in suffixes:
                continue
            tables[f"{slug}/{output.name}"] = (table_digest(output, ignore_columns)
                                               if output.suffix == ".csv" else
                                               hashlib.sha256(output.read_bytes()).hexdigest())
    return tables


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--preset", default="ci", choices=("ci", "default", "paper"))
    parser.add_argument("--keep", type=Path, help="keep both runs in this folder")
    parser.add_argument("--suffixes", nargs="+", default=["csv"], choices=("csv", "png", "svg"),
                        help="which outputs to compare (default: the CSV tables)")
    parser.add_argument("--ignore-columns", nargs="*", default=[], metavar="NAME",
                        help="columns left out of the comparison (wall-clock timings)")
    args = parser.parse_args(argv)

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="compare-tables-"))
    base = scratch / "base"
    if base.exists():
        shutil.rmtree(base)
    subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        ignored = tuple(args.ignore_columns)
        suffixes = tuple(args.suffixes)
        before = run_tree(base, args.preset, scratch / "base-run", ignored, suffixes)
        after = run_tree(ROOT, args.preset, scratch / "work-run", ignored, suffixes)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    failures = 0
    for name in sorted(set(before) | set(after)):
        if name not in after:
            verdict = "missing after"
        elif name not in before:
            verdict = "new (no base table)"
        else:
            verdict = "identical" if before[name] == after[name] else "DIFFERENT"
        failures += verdict in ("missing after", "DIFFERENT")
        print(f"{verdict:<20} {name}")
    print(f"{len(before)} base files, {failures} missing or different")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
