"""The book machine: on-disk cache, published outputs, command line.

The chapters are listed once, in :mod:`lib.chapters`. Command line (run from
anywhere inside the project's environment)::

    python -m lib.book list
    python -m lib.book toc                         # writes _toc.yml from the registry
    python -m lib.book run toy-manifolds -p radius 3 -p seed 1
    python -m lib.book build --preset default      # runs missing chapters, renders the book
    python -m lib.book build --preset ci --rerun   # reruns every chapter first

``run`` validates every ``-p NAME VALUE`` against the chapter's declared
parameters before anything executes, converts the Jupytext source
``notebooks/<chapter>.md`` to its paired ``.ipynb``, executes it with
papermill into ``book/chapters/<chapter>.ipynb`` (the injected parameters are
a visible cell of the page) and writes the chapter's figures (PNG and SVG)
and tables (CSV) to ``book/chapters/<chapter>/``. ``build`` renders the
executed notebooks with Jupyter Book 1 without re-executing them, after
writing ``_toc.yml`` from the registry.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from lib.chapters import CHAPTERS, Chapter, write_toc
from lib.store import CACHE_ENV, PROJECT_ROOT, cache_dir, library_fingerprint

__all__ = ["Chapter", "CHAPTERS", "cached", "publish", "run_chapter",
           "build_book", "main"]


# --- inside a chapter -----------------------------------------------------------------


def cached(function, *args, **kwargs):
    """Call ``function(*args, **kwargs)`` through a joblib.Memory cache keyed by its arguments.

    joblib hashes the function's code and every argument, and writes each
    entry to a temporary name before renaming it into place, so a killed run
    leaves no half-written entry behind. Entries live under
    ``cache_dir() / library_fingerprint()``.
    """
    from joblib import Memory

    location = cache_dir() / library_fingerprint()
    return Memory(location, verbose=0).cache(function)(*args, **kwargs)


def publish(result, name: str):
    """Save a figure (PNG and SVG) or a table (CSV) next to the executed chapter; return its view.

    Files go to the current directory, which :func:`run_chapter` sets to
    ``book/chapters/<chapter>/``. A figure is shown as the PNG just written,
    so the page and the file are the same image; a table is shown with four
    significant digits while the CSV keeps full precision. The files depend on
    the result alone: two runs with the same parameters write the same bytes.
    """
    import pandas as pd
    from IPython.display import Image
    from matplotlib.figure import Figure

    if isinstance(result, Figure):
        import matplotlib as mpl

        result.savefig(f"{name}.png", dpi=150)
        # Same parameters, same bytes: an SVG otherwise carries the time it was written
        # (<dc:date>) and clip-path ids salted with a random uuid on every save.
        with mpl.rc_context({"svg.hashsalt": name}):
            result.savefig(f"{name}.svg", metadata={"Date": None})
        return Image(filename=f"{name}.png")
    if isinstance(result, pd.DataFrame):
        result.to_csv(f"{name}.csv", index=False)
        numeric = result.select_dtypes("number").columns
        # The theme's tables have no cell padding: adjacent columns ran together.
        padding = [{"selector": "th, td", "props": [("padding", "0.15em 0.7em")]}]
        return (result.style.format("{:.4g}", subset=numeric, na_rep="–").hide(axis="index")
                .set_table_styles(padding))
    raise TypeError(f"The 'result' parameter of publish must be a matplotlib Figure or a pandas "
                    f"DataFrame. Got {type(result).__name__} instead.")


# --- outside: running chapters and building the book ----------------------------------


def _chapter(slug: str) -> Chapter:
    if slug not in CHAPTERS:
        raise ValueError(f"The 'chapter' parameter of lib.book must be one of "
                         f"{{{', '.join(CHAPTERS)}}}. Got {slug!r} instead.")
    return CHAPTERS[slug]


def run_chapter(slug: str, parameters: dict | None = None, *, root: Path = PROJECT_ROOT,
                progress: bool = True) -> Path:
    """Validate ``parameters``, then execute one chapter with papermill; return the notebook path.

    Unknown names or out-of-range values raise before any kernel starts.
    """
    import jupytext
    import papermill

    chapter = _chapter(slug)
    values = chapter.parameters.validate(parameters or {})
    source = chapter.source(root)
    paired = source.with_suffix(".ipynb")
    jupytext.write(jupytext.read(source), paired)
    outputs = chapter.outputs(root)
    outputs.mkdir(parents=True, exist_ok=True)
    for stale in outputs.glob("*"):
        stale.unlink()
    # The kernel inherits the environment: point its cache at this root unless the user chose one.
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = previous or str(root / "data" / "cache")
    try:
        papermill.execute_notebook(paired, chapter.executed(root), parameters=values,
                                   cwd=outputs, kernel_name="python3", progress_bar=progress)
    finally:
        if previous is None:
            del os.environ[CACHE_ENV]
    return chapter.executed(root)


def build_book(*, root: Path = PROJECT_ROOT, preset: str = "default", rerun: bool = False,
               progress: bool = True) -> int:
    """Execute chapters that are missing (or all, with ``rerun``) at ``preset``, then render.

    Returns the exit status of ``jupyter-book build`` (strict: warnings are errors).
    """
    for chapter in CHAPTERS.values():
        if rerun or not chapter.executed(root).exists():
            started = time.perf_counter()
            run_chapter(chapter.slug, {"preset": preset}, root=root, progress=progress)
            print(f"{chapter.slug}: executed at preset {preset!r} in "
                  f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    write_toc(root)
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "--path-output",
               str(root), "-W", "-n", "--keep-going"]
    return subprocess.call(command, cwd=root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.book", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT,
                        help="project folder holding notebooks/, book/, _config.yml")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="chapters and their parameters")
    commands.add_parser("toc", help="write _toc.yml from the chapter registry (lib/chapters.py)")
    run = commands.add_parser("run", help="execute one chapter with new parameters")
    run.add_argument("chapter", help=f"one of: {', '.join(CHAPTERS)}")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="set a parameter (repeatable)")
    build = commands.add_parser("build", help="run missing chapters, then render the book")
    build.add_argument("--preset", default="default", choices=("ci", "default", "paper"))
    build.add_argument("--rerun", action="store_true", help="execute every chapter again")
    args = parser.parse_args(argv)

    if args.command == "list":
        for chapter in CHAPTERS.values():
            print(chapter.slug)
            for p in chapter.parameters.parameters:
                print(f"  {p.name:<12} default {p.default!r:<10} {p.allowed}; {p.help}")
        return 0
    if args.command == "toc":
        print(f"wrote {write_toc(args.root)}", file=sys.stderr)
        return 0
    if args.command == "run":
        try:
            chapter = _chapter(args.chapter)
            values = chapter.parameters.parse(args.parameter)
        except (ValueError, TypeError) as error:
            parser.exit(2, f"error: {error}\n")
        path = run_chapter(chapter.slug, values, root=args.root)
        print(f"executed {path}; outputs in {chapter.outputs(args.root)}", file=sys.stderr)
        return 0
    return build_book(root=args.root, preset=args.preset, rerun=args.rerun)


if __name__ == "__main__":
    sys.exit(main())
