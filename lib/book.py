"""The book machine: on-disk cache, published outputs, command line.

The chapters are listed once, in :mod:`lib.chapters`. Command line (run from
anywhere inside the project's environment)::

    python -m lib.book list
    python -m lib.book toc                         # writes _toc.yml from the registry
    python -m lib.book run toy-manifolds -p radius 3 -p seed 1
    python -m lib.book run eigenvalue-predictors -p preset paper --dry-run   # the plan only
    python -m lib.book plan                        # every chapter's plan at every preset
    python -m lib.book status --preset default     # each chapter: fresh, stale (why) or failed
    python -m lib.book build --preset default      # runs chapters not fresh, renders the book
    python -m lib.book build --preset ci --rerun   # reruns every chapter first

``run`` validates every ``-p NAME VALUE`` against the chapter's declared
parameters before anything executes (:func:`prepare_run`: each value, the
checks across values, the devices, folders and environment variables they
need, and ``--root``; a bad one exits with status 2 and one line naming it),
converts the Jupytext source ``notebooks/<chapter>.md`` to its paired ``.ipynb``, executes it with
papermill into ``book/chapters/<chapter>.ipynb`` (the injected parameters are
a visible cell of the page) and writes the chapter's figures (PNG and SVG)
and tables (CSV) to ``book/chapters/<chapter>/``; it runs in a temporary
folder and replaces the page only when every cell succeeded, so a failing run
keeps the previous page (and exits 1, printing the failing cell and the end of
its traceback). ``build`` executes the chapters that are not fresh (source,
parameters or the ``lib`` code they reach changed: :mod:`lib.runs`), printing
``[k/n]``, elapsed and expected times, then renders the executed notebooks
with Jupyter Book 1 without re-executing them, after writing ``_toc.yml``
from the registry.

``run --dry-run`` prints the run's plan instead (:func:`chapter_plan`): its
units, how many are cached, and the estimated time and peak memory, computing
nothing; ``run`` refuses to start a run whose estimated peak memory on this
machine exceeds ``--memory-budget`` (GiB; this machine's memory by default)
unless given ``--over-budget``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from lib import runs
from lib._progress import PROGRESS_ENV, latest
from lib.chapters import CHAPTERS, Chapter, write_claims_page, write_toc
from lib.store import CACHE_ENV, PROJECT_ROOT, cache_dir, library_fingerprint

__all__ = ["Chapter", "CHAPTERS", "ChapterFailed", "Published", "cached", "publish", "settings",
           "prepare_run", "chapter_plan", "plan_text", "all_plans_text", "check_memory",
           "run_chapter",
           "chapter_states", "build_book", "main"]

#: Environment variables naming folders a kernel reads; relative values are made absolute
#: before the kernel starts in ``book/chapters/<chapter>/`` (lib.datasets.mnist, .coil20).
PATH_VARIABLES = (CACHE_ENV, "MNIST_DIR", "COIL20_DIR")


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


def _flat(table):
    """A pivot table's row labels as columns and its column levels joined, for CSV and page alike.

    A frame that is not a pivot (column labels without a name, rows not a
    MultiIndex) comes back unchanged: its CSV drops the index, as before.
    """
    import pandas as pd

    pivot = table.columns.name is not None or isinstance(table.columns, pd.MultiIndex)
    if isinstance(table.columns, pd.MultiIndex):
        table = table.set_axis([" ".join(str(part) for part in label if str(part))
                                for label in table.columns], axis="columns")
    if pivot or isinstance(table.index, pd.MultiIndex):
        table = table.rename_axis(columns=None).reset_index()
    return table


class Published:
    """What :func:`publish` returns: the page's view of a figure or table, with its download links.

    In the book (myst-nb renders ``text/markdown`` as MyST, ``_config.yml``) a
    figure is its PNG followed by a "Download" line of ``{download}`` roles
    to its PNG, SVG and CSV, and a table is its HTML followed by a link to its
    CSV: Sphinx copies every file such a role names into ``_build/html``. In
    Jupyter a figure is the PNG itself. Any other attribute is the table's
    :class:`pandas.io.formats.style.Styler` (``.hide(...)`` keeps the links).
    """

    def __init__(self, name: str, files: list[str], *, image: str | None = None,
                 table=None, width: float | None = None):
        self.name, self.files, self.image, self.table = name, files, image, table
        #: A figure's width in inches: the page shows it at that size (96 CSS px per inch),
        #: narrower only when the column is, so its text renders at the size it was set in.
        self.width = width
        #: The page's path to this chapter's outputs folder (the kernel runs inside it).
        self.folder = Path.cwd().name

    def _links(self) -> str:
        links = [f"{{download}}`{Path(file).suffix[1:].upper()} <{self.folder}/{file}>`"
                 for file in self.files]
        return "Download: " + " · ".join(links)

    def _repr_markdown_(self) -> str:
        if self.image:
            body = (f"```{{image}} {self.folder}/{self.image}\n:alt: {self.name}\n"
                    f":width: {round(self.width * CSS_PX_PER_INCH)}px\n"
                    f":class: book-figure\n```")
        else:   # an HTML block: no blank line inside it, one after it
            body = "\n".join(line for line in self.table.to_html().splitlines() if line.strip())
        return f"{body}\n\n{self._links()}\n"

    def _repr_png_(self):
        return Path(self.image).read_bytes() if self.image else None

    def _repr_html_(self):
        return None if self.image else self.table.to_html()

    def __getattr__(self, attribute):
        table = self.__dict__.get("table")
        if table is None or attribute.startswith("_"):
            raise AttributeError(attribute)
        value = getattr(table, attribute)
        if not callable(value):
            return value

        def keep_links(*args, **kwargs):
            out = value(*args, **kwargs)
            if out is table:
                return self
            return out
        return keep_links


def settings(mapping: Mapping):
    """A preset's sizes as a two-column table, ``setting`` and ``value``, for :func:`publish`.

    Nested mappings become dotted names (``training.max_steps``); sequences
    are listed with commas; numbers as :func:`format` ``g`` writes them, so
    ``0.001`` stays ``0.001``. The page then shows a table instead of a dict's repr.

    >>> settings({"seeds": 2, "training": {"rel_tol": 0.02, "sizes": (8, 16)}})
                setting  value
    0             seeds      2
    1  training.rel_tol   0.02
    2    training.sizes  8, 16
    """
    import pandas as pd

    def text(value) -> str:
        if isinstance(value, (list, tuple)):
            return ", ".join(text(item) for item in value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return str(value)
        return format(value, "g") if isinstance(value, float) else str(value)

    def rows(prefix, value):
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from rows(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            yield prefix, text(value)

    return pd.DataFrame(list(rows("", mapping)), columns=["setting", "value"])


#: CSS pixels per inch: a figure is shown at its size in inches times this.
CSS_PX_PER_INCH = 96


def smallest_text(figure) -> float:
    """The smallest font size, in points, of any visible non-empty text of ``figure``.

    Tick labels, titles, legend entries and annotations alike: the figure's
    least legible text, which :func:`publish` records in the PNG.
    """
    from matplotlib.text import Text

    figure.draw_without_rendering()    # tick labels get their text only when drawn
    sizes = [text.get_fontsize() for text in figure.findobj(Text)
             if text.get_visible() and text.get_text().strip()]
    return float(min(sizes)) if sizes else float("nan")


def publish(result, name: str, *, data=None):
    """Save a figure (PNG, SVG, CSV of ``data``) or a table (CSV) beside the chapter; show it.

    Files go to the current directory, which :func:`run_chapter` sets to
    ``book/chapters/<chapter>/``. A figure is shown as the PNG just written,
    so the page and the file are the same image; ``data``, a DataFrame, is
    written as the figure's ``<name>.csv``. A table is shown with four
    significant digits for floats, integers in full and yes/no for booleans
    while the CSV keeps full
    precision and True/False; index and column levels become plain columns.
    Each view links its files (:class:`Published`). The files depend on the
    result alone: two runs with the same parameters write the same bytes.
    """
    import pandas as pd
    from matplotlib.figure import Figure

    if isinstance(result, Figure):
        import matplotlib as mpl

        width, smallest = result.get_size_inches()[0], smallest_text(result)
        # The browser test reads these back to check the text's size as rendered.
        result.savefig(f"{name}.png", dpi=150,
                       metadata={"Width (in)": f"{width:g}", "Smallest text (pt)": f"{smallest:g}"})
        # Same parameters, same bytes: an SVG otherwise carries the time it was written
        # (<dc:date>) and clip-path ids salted with a random uuid on every save.
        with mpl.rc_context({"svg.hashsalt": name}):
            result.savefig(f"{name}.svg", metadata={"Date": None})
        files = [f"{name}.png", f"{name}.svg"]
        if data is not None:
            if not isinstance(data, pd.DataFrame):
                raise TypeError(f"The 'data' parameter of publish must be a pandas DataFrame or "
                                f"None. Got {type(data).__name__} instead.")
            _flat(data).to_csv(f"{name}.csv", index=False)
            files.append(f"{name}.csv")
        return Published(name, files, image=f"{name}.png", width=width)
    if isinstance(result, pd.DataFrame):
        result = _flat(result)
        result.to_csv(f"{name}.csv", index=False)
        numeric = result.select_dtypes("floating").columns
        counts = result.select_dtypes("integer").columns
        flags = result.select_dtypes("bool").columns
        # The theme's tables have no cell padding: adjacent columns ran together.
        padding = [{"selector": "th, td", "props": [("padding", "0.15em 0.7em")]}]
        # Integers (steps, counts, sizes) in full: four significant digits made 13000 "1.3e+04".
        view = (result.style.format("{:.4g}", subset=numeric, na_rep="–")
                .format("{:d}", subset=counts)
                .format(lambda flag: "yes" if flag else "no", subset=flags)
                .hide(axis="index").set_table_styles(padding)
                .set_uuid(name.replace("-", "_")))   # same ids in every build
        return Published(name, [f"{name}.csv"], table=view)
    raise TypeError(f"The 'result' parameter of publish must be a matplotlib Figure or a pandas "
                    f"DataFrame. Got {type(result).__name__} instead.")


# --- outside: running chapters and building the book ----------------------------------


def _chapter(slug: str) -> Chapter:
    if slug not in CHAPTERS:
        raise ValueError(f"The 'chapter' parameter of lib.book must be one of "
                         f"{{{', '.join(CHAPTERS)}}}. Got {slug!r} instead.")
    return CHAPTERS[slug]


def check_root(root) -> Path:
    """Return ``root`` as an absolute path after checking it is a project folder.

    A project folder holds ``notebooks/`` and ``_config.yml``.

    Raises
    ------
    ValueError
        Naming ``--root``, what it must hold and what it lacks.
    """
    root = Path(root).expanduser().absolute()
    start = (f"The '--root' parameter of lib.book must be a project folder holding notebooks/ "
             f"and _config.yml. Got {str(root)!r}")
    if not root.is_dir():
        raise ValueError(f"{start}, which {'is a file' if root.exists() else 'does not exist'}, "
                         f"instead.")
    for need, ok in (("notebooks/", (root / "notebooks").is_dir()),
                     ("_config.yml", (root / "_config.yml").is_file())):
        if not ok:
            raise ValueError(f"{start}, which lacks {need}, instead.")
    return root


def _check_cache_variable() -> None:
    value = os.environ.get(CACHE_ENV, "")
    if value and Path(value).expanduser().exists() and not Path(value).expanduser().is_dir():
        raise ValueError(f"The environment variable {CACHE_ENV} must name a folder (made when "
                         f"missing). Got {value[:80]!r}, which is a file, instead.")


def prepare_run(slug: str, parameters: dict | None = None, *,
                root: Path = PROJECT_ROOT) -> tuple[Chapter, dict, Path]:
    """Every check of a chapter run, with nothing written: ``(chapter, values, root)``.

    The chapter's name; each parameter against its declaration and the
    chapter's checks across parameters (devices torch sees, folders holding
    the files the chapter reads, environment variables the chosen options
    need, options the others would make ignored); ``root`` is a project
    folder holding the chapter's notebook; ``$MANIFOLD_BOOK_CACHE`` is not a
    file. Folder values come back absolute.

    Raises
    ------
    ValueError or TypeError
        The first bad input, named, in the scikit-learn message shape.
    """
    chapter = _chapter(slug)
    values = chapter.parameters.validate(parameters or {})
    root = check_root(root)
    if not chapter.source(root).is_file():
        raise ValueError(f"The '--root' parameter of lib.book must be a project folder holding "
                         f"the chapter's notebook. Got {str(root)!r}, which lacks "
                         f"notebooks/{chapter.slug}.md, instead.")
    _check_cache_variable()
    return chapter, values, root


# --- plans: what a run will cost, before it runs ------------------------------------------

def _workers(values: dict) -> tuple[int, bool]:
    """Units of a parallel stage at once on this machine, and whether they run elsewhere."""
    backend = values.get("backend", "sequential")
    if backend == "dask" and values.get("scheduler"):
        return 1, True
    return (values.get("n_jobs", 1) if backend != "sequential" else 1), False


def chapter_plan(slug: str, parameters: dict | None = None, *, root: Path = PROJECT_ROOT,
                 speed=None, timed: bool = True):
    """The plan of a chapter run, computing nothing: :func:`lib.plans.plan_table` of its stages.

    The parameters are checked as for :func:`run_chapter`; the study's
    ``plan(config)`` lists its stages (units, cached, cost model), timed at
    ``speed`` (default :func:`lib.plans.machine_speed`, measured once per
    process) on the workers the run would use here (``n_jobs`` with a local
    backend). With a Dask scheduler address, the parallel stages run on the
    cluster: their time is for one worker and their memory is not this
    machine's. With ``timed=False`` nothing is measured and the seconds are
    NaN: the memory check before a run needs only the peak.

    Returns
    -------
    table : DataFrame
        :func:`lib.plans.plan_table`'s columns.
    values : dict
        Every parameter of the run, defaults filled in.
    """
    import importlib

    from lib.plans import machine_speed, plan_table

    chapter, values, root = prepare_run(slug, parameters, root=root)
    everything = {**chapter.parameters.defaults, **values}
    study = importlib.import_module(chapter.module)
    with _kernel_environment(root):          # the cache folder the run would read
        stages = study.plan(study.Config(**everything))
    workers, remote = _workers(everything)
    if timed and speed is None:
        speed = machine_speed()
    return plan_table(stages, speed if timed else None, workers=workers,
                      remote=remote), everything


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def plan_text(slug: str, table, values: dict, *, budget: float) -> str:
    """A chapter's plan (:func:`chapter_plan`) as the text ``run --dry-run`` prints."""
    workers, remote = _workers(values)
    where = (f"on the Dask cluster at {values['scheduler']} (times for one worker there)"
             if remote else f"{workers} unit{'s' * (workers > 1)} at once on this machine"
             if values.get("backend", "sequential") != "sequential" else "in this process")
    shown = table.assign(**{
        "seconds per unit": [("" if v != v else f"{v:,.1f}") for v in table["seconds per unit"]],
        "seconds": [f"{v:,.0f}" for v in table["seconds"]],
        "peak MiB per unit": [f"{v:,.0f}" for v in table["peak MiB per unit"]],
        "peak MiB": [f"{v:,.0f}" for v in table["peak MiB"]]})
    total = table.iloc[-1]
    lines = [f"{slug} at preset {values.get('preset')!r}, {where}. A plan: nothing was computed.",
             "", shown.to_string(index=False), "",
             f"Estimated: {_duration(total['seconds'])} for the units left to compute, on this "
             f"machine's measured speed; training is costed at its budget, so runs that stop "
             f"on convergence take less. Peak memory here {total['peak MiB'] / 1024:.1f} GiB of "
             f"a {budget / 2**30:.1f} GiB budget.",
             "GPU: no step time measured on a GPU yet; with -p device cuda the training stages "
             "run there and this CPU estimate does not apply."]
    return "\n".join(lines)


def check_memory(table, budget: float) -> None:
    """Refuse a run whose estimated peak memory here (:func:`chapter_plan`) exceeds ``budget`` bytes."""
    peak = float(table.iloc[-1]["peak MiB"]) * 2**20
    if peak > budget:
        raise ValueError(f"The '--memory-budget' option of lib.book must be at least the run's "
                         f"estimated peak memory on this machine, {peak / 2**30:.1f} GiB. Got "
                         f"{budget / 2**30:.1f} GiB instead: fewer workers (-p n_jobs), a Dask "
                         f"cluster (-p backend dask -p scheduler ...), a smaller preset, or "
                         f"--over-budget to run anyway (see --dry-run).")


@contextmanager
def _kernel_environment(root: Path, progress: Path | None = None):
    """Absolute folders in the environment the kernel inherits; the cache under ``root`` by default.

    ``progress`` is the file the kernel's progress bars are relayed to
    (:data:`lib._progress.PROGRESS_ENV`), read by the runner's heartbeat.
    """
    saved = {name: os.environ.get(name) for name in (*PATH_VARIABLES, PROGRESS_ENV)}
    try:
        for name, value in saved.items():
            if value and name in PATH_VARIABLES:
                os.environ[name] = str(Path(value).expanduser().absolute())
        if not saved[CACHE_ENV]:
            os.environ[CACHE_ENV] = str(root / "data" / "cache")
        if progress is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = str(progress)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ChapterFailed(RuntimeError):
    """A chapter raised while executing; its previous page and outputs were kept."""

    def __init__(self, slug: str, message: str):
        super().__init__(f"{slug}: {message}")
        self.slug = slug


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def _heartbeat(label: str, expected: float | None, every: float, relay: Path | None = None):
    """Print ``label``'s elapsed (and expected) time every ``every`` seconds while it runs.

    With ``relay``, each line ends with the latest state of the kernel's
    progress bars (:func:`lib._progress.latest`), e.g. ``autoencoders: 5/20``.
    """
    done = threading.Event()
    started = time.perf_counter()

    def beat():
        while not done.wait(every):
            known = f", about {_clock(expected)} expected" if expected else ""
            state = latest(relay) if relay is not None else ""
            _say(f"{label}: {_clock(time.perf_counter() - started)} elapsed{known}"
                 + (f"; {state}" if state else ""))

    thread = threading.Thread(target=beat, daemon=True)
    if every > 0:
        thread.start()
    try:
        yield
    finally:
        done.set()


def _move_into_place(notebook: Path, outputs: Path, chapter: Chapter, root: Path,
                     scratch: Path) -> None:
    """Replace the chapter's page and outputs folder by those of a finished run."""
    target = chapter.outputs(root)
    if target.exists():
        os.replace(target, scratch / "previous")
    os.replace(outputs, target)
    os.replace(notebook, chapter.executed(root))


#: The tag :func:`_finish_page` gives every code cell: sphinx-book-theme widens such a cell
#: over the right margin on wide screens and hides the page's contents panel (which
#: lives in that margin) while one is in view.
WIDE_TAG = "full-width"


def _finish_page(notebook: Path, text: str) -> None:
    """Tag every code cell :data:`WIDE_TAG`; end the notebook with its provenance ``text``.

    Code cells are wide so that a line of code, a table and a figure drawn
    10.5 inches wide fit without a scroll bar or shrunken text
    (``book/_static/book.css``); prose keeps the theme's reading width. The
    provenance is a markdown cell (tag ``provenance``), not a code cell: the
    notebook stays what papermill executed, valid for nbformat, and re-running
    it adds no output.
    """
    import nbformat

    executed = nbformat.read(notebook, as_version=4)
    for cell in executed.cells:
        if cell.cell_type == "code" and WIDE_TAG not in cell.metadata.get("tags", []):
            cell.metadata.setdefault("tags", []).append(WIDE_TAG)
    executed.cells.append(nbformat.v4.new_markdown_cell(text, metadata={"tags": ["provenance"]}))
    nbformat.validate(executed)
    nbformat.write(executed, notebook)


def _local_kernel(folder: str):
    """A kernel manager whose kernel talks over sockets in ``folder``, not TCP ports.

    The kernel runs on this machine only: IPC keeps its traffic off the
    network, and ipykernel's warning about unencrypted TCP out of the terminal.
    The folder's path is short (under the system's temporary folder) because a
    Unix socket's path is limited to about 100 characters.
    """
    from jupyter_client.manager import KernelManager

    class LocalKernelManager(KernelManager):
        def __init__(self, **kwargs):
            super().__init__(**{"transport": "ipc", "ip": os.path.join(folder, "kernel"),
                                **kwargs})

    return LocalKernelManager


def run_chapter(slug: str, parameters: dict | None = None, *, root: Path = PROJECT_ROOT,
                progress: bool = True, label: str | None = None) -> Path:
    """Validate ``parameters``, then execute one chapter with papermill; return the notebook path.

    Every check of :func:`prepare_run` passes before anything is written or
    deleted under ``root``; relative folders (parameters and the variables in
    :data:`PATH_VARIABLES`) are taken from the current directory, not the
    kernel's. The chapter runs into a temporary folder beside the page; only
    when every cell succeeded does its notebook, ended by a markdown cell with
    its provenance (:func:`lib.runs.provenance`: commit, parameters, device,
    date, run time, versions; never in the CSV, PNG or SVG files), replace the
    old page with its outputs, and the run is recorded (:mod:`lib.runs`: its
    inputs beside the page, its time under the cache). With ``progress``, the
    elapsed and the expected time (the last run's at this preset) are printed
    every ``$MANIFOLD_BOOK_HEARTBEAT`` seconds (60 by default; 0 turns it off).

    Raises
    ------
    ChapterFailed
        When a cell raised or the kernel died: the previous page and outputs
        stay, the failure is recorded, and the message holds the failing cell
        and the end of its traceback.
    """
    chapter, values, root = prepare_run(slug, parameters, root=root)
    import jupytext
    import papermill

    source = chapter.source(root)
    paired = source.with_suffix(".ipynb")
    jupytext.write(jupytext.read(source), paired)
    everything = {**chapter.parameters.defaults, **values}
    inputs = runs.run_inputs(chapter, everything, root)
    label = label or chapter.slug
    folder = chapter.executed(root).parent
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".run-{chapter.slug}-", dir=folder))
    notebook, outputs = scratch / chapter.executed(root).name, scratch / chapter.slug
    outputs.mkdir()
    relay = scratch / "progress.txt"
    try:
        with _kernel_environment(root, relay):
            cache = cache_dir()
            expected = runs.expected_seconds(chapter.slug, everything.get("preset"), cache)
            every = float(os.environ.get("MANIFOLD_BOOK_HEARTBEAT", "60")) if progress else 0
            started = time.perf_counter()
            try:
                with _heartbeat(label, expected, every, relay), \
                        tempfile.TemporaryDirectory(prefix="kernel-") as sockets:
                    papermill.execute_notebook(paired, notebook, parameters=values, cwd=outputs,
                                               kernel_name="python3", progress_bar=False,
                                               kernel_manager_class=_local_kernel(sockets))
            except Exception as error:
                runs.record_failure(chapter, root, inputs, error)
                kept = ("previous page kept: " + str(chapter.executed(root))
                        if chapter.executed(root).exists() else "no previous page")
                raise ChapterFailed(chapter.slug, f"{runs.describe_failure(error)}\n  {kept}") \
                    from error
            seconds = time.perf_counter() - started
            made = runs.provenance(inputs, seconds, root)
            _finish_page(notebook, runs.provenance_markdown(made, chapter.slug))
            _move_into_place(notebook, outputs, chapter, root, scratch)
            runs.record_success(chapter, root, inputs, seconds, cache, made)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return chapter.executed(root)


def chapter_states(*, root: Path = PROJECT_ROOT, preset: str = "default") -> dict:
    """``{slug: lib.runs.Status}`` of every chapter for a build at ``preset``."""
    return {chapter.slug: runs.chapter_status(
                chapter, {**chapter.parameters.defaults, "preset": preset}, root)
            for chapter in CHAPTERS.values()}


def build_book(*, root: Path = PROJECT_ROOT, preset: str = "default", rerun: bool = False,
               progress: bool = True, render: bool = True) -> int:
    """Execute the chapters that are not fresh at ``preset`` (all, with ``rerun``), then render.

    A chapter is re-executed when its source, its parameters or the ``lib``
    code it reaches changed since its page was made, or when it never ran or
    failed (:func:`lib.runs.chapter_status`). Each run prints ``[k/n]``, its
    elapsed and expected time; a failing chapter keeps its previous page, the
    others still run, and the build returns 1. Otherwise returns the exit
    status of ``jupyter-book build`` (strict: warnings are errors), or 0
    without ``render``.
    """
    states = chapter_states(root=root, preset=preset)
    todo = [slug for slug, state in states.items() if rerun or state.state != "fresh"]
    for slug, state in states.items():
        if slug not in todo:
            _say(f"{slug}: fresh at preset {preset!r}, kept")
    failed, begun = [], time.perf_counter()
    for k, slug in enumerate(todo, 1):
        label = f"[{k}/{len(todo)}] {slug}"
        with _kernel_environment(root):
            expected = runs.expected_seconds(slug, preset, cache_dir())
        why = "--rerun" if rerun and states[slug].state == "fresh" else str(states[slug])
        _say(f"{label}: executing at preset {preset!r} ({why}); "
             + (f"last run took {_clock(expected)}" if expected else "no earlier run timed"))
        started = time.perf_counter()
        try:
            run_chapter(slug, {"preset": preset}, root=root, progress=progress, label=label)
        except ChapterFailed as error:
            failed.append(slug)
            _say(f"{label}: {error}")
            continue
        _say(f"{label}: done in {_clock(time.perf_counter() - started)}; "
             f"{_clock(time.perf_counter() - begun)} since the build began")
    if failed:
        _say(f"failed: {', '.join(failed)} (python -m lib.book status lists every chapter)")
    if not render:
        return 1 if failed else 0
    write_toc(root)
    write_claims_page(root)     # the introduction includes it
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root),
               "--path-output", str(root), "-W", "-n", "--keep-going"]
    status = subprocess.call(command, cwd=root)
    return 1 if failed else status


def all_plans_text(*, root: Path = PROJECT_ROOT, presets=("ci", "default", "paper")) -> str:
    """One line per chapter and preset: units, left to compute, estimated time, peak memory."""
    import pandas as pd

    from lib.plans import machine_speed

    speed, rows = machine_speed(), []
    for slug in CHAPTERS:
        for preset in presets:
            table, _ = chapter_plan(slug, {"preset": preset}, root=root, speed=speed)
            stages, total = table.iloc[:-1], table.iloc[-1]
            worst = stages.loc[stages["peak MiB per unit"].idxmax(), "stage"] if len(stages) else ""
            rows.append({"chapter": slug, "preset": preset, "units": int(total["units"]),
                         "to compute": int(total["to compute"]),
                         "estimated": _duration(total["seconds"]),
                         "peak MiB": f"{total['peak MiB']:,.0f}", "largest unit": worst})
    return (pd.DataFrame(rows).to_string(index=False)
            + f"\n\nAt this machine's measured speed ({speed.rate / 1e9:.0f} GFLOP/s sustained, "
              f"{speed.overhead * 1e3:.2f} ms per optimiser step), each chapter's default "
              f"parameters; training costed at its budget. Details: python -m lib.book run "
              f"CHAPTER -p preset PRESET --dry-run.")


def _gib(text: str) -> float:
    """``--memory-budget`` in GiB, as bytes."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"The '--memory-budget' option of lib.book must be a "
                                         f"number of GiB in (0, inf). Got {text!r} instead.")
    return value * 2**30


PARAMETER_FLAGS = ("-p", "--parameter")


def _take_parameters(argv: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Split ``-p NAME VALUE`` triples off ``argv``: (the rest, the pairs).

    argparse takes a value that starts with ``-`` for an option (``-p radius
    -inf``) and reports a missing value without the parameter's name, so the
    pairs are read here: any token after NAME is its value, unless it is
    another ``-p`` or there is none.
    """
    rest, pairs, i = [], [], 0
    while i < len(argv):
        if argv[i] not in PARAMETER_FLAGS:
            rest.append(argv[i])
            i += 1
            continue
        name = argv[i + 1] if i + 1 < len(argv) else None
        value = argv[i + 2] if i + 2 < len(argv) else None
        if name is None or name in PARAMETER_FLAGS:
            raise ValueError(f"The {argv[i]} option of lib.book must be followed by a parameter "
                             f"name and a value (-p NAME VALUE). Got nothing instead.")
        if value is None or value in PARAMETER_FLAGS:
            raise ValueError(f"The {name!r} parameter of lib.book must be given a value "
                             f"(-p {name} VALUE). Got none instead.")
        pairs.append((name, value))
        i += 3
    return rest, pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lib.book", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT,
                        help="project folder holding notebooks/, book/, _config.yml")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="chapters and their parameters")
    commands.add_parser("toc", help="write _toc.yml from the chapter registry (lib/chapters.py)")
    run = commands.add_parser("run", help="execute one chapter with new parameters")
    run.add_argument("chapter", help=f"one of: {', '.join(CHAPTERS)}")
    # Read by _take_parameters before argparse sees argv; declared here for --help.
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="set a parameter (once each)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the run's plan (units, cached, estimated time and peak memory) "
                          "and compute nothing")
    run.add_argument("--memory-budget", type=_gib, default=None, metavar="GIB",
                     help="refuse a run whose estimated peak memory here exceeds GIB "
                          "(default: this machine's memory)")
    run.add_argument("--over-budget", action="store_true",
                     help="run even when the estimated peak memory exceeds the budget")
    plan = commands.add_parser("plan", help="every chapter's plan at every preset (computes "
                                            "nothing)")
    plan.add_argument("--preset", choices=("ci", "default", "paper"), action="append",
                      help="only these presets (repeatable)")
    build = commands.add_parser("build", help="run chapters that are not fresh, then render the book")
    build.add_argument("--preset", default="default", choices=("ci", "default", "paper"))
    build.add_argument("--rerun", action="store_true", help="execute every chapter again")
    status = commands.add_parser("status", help="each chapter: fresh, stale (why) or failed")
    status.add_argument("--preset", default="default", choices=("ci", "default", "paper"))
    commands.add_parser("prose", help="numbers typed by hand in the chapters' prose "
                                      "(exit 1 when there are any)")
    try:
        argv, pairs = _take_parameters(list(sys.argv[1:] if argv is None else argv))
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    args = parser.parse_args(argv)
    if pairs and args.command != "run":
        parser.exit(2, f"error: The -p option of lib.book is for the run command. "
                       f"Got it with {args.command!r} instead.\n")

    if args.command == "list":
        for chapter in CHAPTERS.values():
            print(chapter.slug)
            for p in chapter.parameters.parameters:
                print(f"  {p.name:<12} default {p.default!r:<10} {p.allowed}; {p.help}")
        return 0
    try:   # the parameters first: they are what a user of run most often mistypes
        if args.command == "run":
            chapter = _chapter(args.chapter)
            values = chapter.parameters.parse(pairs)
            chapter, values, root = prepare_run(chapter.slug, values, root=args.root)
        else:
            root = check_root(args.root)
    except (ValueError, TypeError) as error:
        parser.exit(2, f"error: {error}\n")
    if args.command == "toc":
        print(f"wrote {write_toc(root)}", file=sys.stderr)
        return 0
    if args.command == "prose":
        from lib.prose import typed_numbers

        found = 0
        for chapter in CHAPTERS.values():
            source = chapter.source(root)
            for hit in typed_numbers(source.read_text(encoding="utf-8")):
                print(f"{source.relative_to(root)}:{hit.line}: {hit.number}: {hit.text}")
                found += 1
        return 1 if found else 0
    if args.command == "status":
        for slug, state in chapter_states(root=root, preset=args.preset).items():
            print(f"{slug:<24} {state}")
        return 0
    if args.command == "plan":
        print(all_plans_text(root=root, presets=args.preset or ("ci", "default", "paper")))
        return 0
    if args.command == "run":
        from lib.plans import memory_budget

        budget = args.memory_budget or memory_budget()
        if args.dry_run or not args.over_budget:
            # The memory check needs no timing: measure the machine only for a dry run.
            table, everything = chapter_plan(chapter.slug, values, root=root,
                                             timed=args.dry_run)
            if args.dry_run:
                print(plan_text(chapter.slug, table, everything, budget=budget))
                return 0
            try:
                check_memory(table, budget)
            except ValueError as error:
                parser.exit(2, f"error: {error}\n")
        try:
            path = run_chapter(chapter.slug, values, root=root)
        except ChapterFailed as error:
            _say(str(error))
            return 1
        print(f"executed {path}; outputs in {chapter.outputs(root)}", file=sys.stderr)
        return 0
    return build_book(root=root, preset=args.preset, rerun=args.rerun)


if __name__ == "__main__":
    sys.exit(main())
