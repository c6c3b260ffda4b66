"""The chapter registry: the one list that names every chapter of the book.

Adding a chapter is a study module (``lib/studies/<module>.py`` with its
``PARAMETERS``), a Jupytext notebook (``notebooks/<slug>.md``) and one
:class:`Chapter` entry in :data:`CHAPTERS` below. Everything else follows
from this list: ``_toc.yml`` is generated from it (:func:`toc_text`, written by
``python -m lib.book toc`` and before every ``build``), the book's intro
lists the chapters through the toc, the command line (``python -m lib.book
list | run``) and the tests read it, and :mod:`lib.studies` and
:mod:`lib.figures` import a chapter's module when it is first used.

Importing this module imports no study: a chapter's declared parameters are
read from its study module on first use (:attr:`Chapter.parameters`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Chapter", "CHAPTERS", "APPENDIX", "CLAIMS_PAGE", "toc_text", "write_toc",
           "claims_page_text", "write_claims_page"]


@dataclass(frozen=True)
class Chapter:
    """A chapter: its slug, title, part of the book and study module.

    Parameters
    ----------
    slug : str
        File name of the notebook (``notebooks/<slug>.md``) and of the executed
        page (``book/chapters/<slug>.ipynb``); the name on the command line.
    title : str
        The notebook's first heading (a test checks that they agree).
    part : str
        Caption of the part of the book the chapter belongs to; parts appear
        in the toc in the order of their first chapter here.
    study : str
        Module of :mod:`lib.studies` that computes the chapter (and of
        :mod:`lib.figures` that draws it, where there is one); it holds the
        chapter's ``PARAMETERS``.
    """

    slug: str
    title: str
    part: str
    study: str

    @property
    def module(self) -> str:
        """Dotted name of the chapter's study module, e.g. ``"lib.studies.toy_manifolds"``."""
        return f"lib.studies.{self.study}"

    @property
    def parameters(self):
        """The study's declared parameters (:class:`lib.params.Specification`)."""
        return importlib.import_module(self.module).PARAMETERS

    def source(self, root: Path) -> Path:
        return root / "notebooks" / f"{self.slug}.md"

    def executed(self, root: Path) -> Path:
        return root / "book" / "chapters" / f"{self.slug}.ipynb"

    def outputs(self, root: Path) -> Path:
        return root / "book" / "chapters" / self.slug


#: The chapter registry: each :class:`Chapter` by its slug, in book order.
CHAPTERS = {chapter.slug: chapter for chapter in (
    Chapter("toy-manifolds", "Toy manifolds with closed-form geometry",
            "Ground truth", "toy_manifolds"),
    Chapter("grid-geometry", "Measuring geometry on a grid",
            "Ground truth", "grid_geometry"),
    Chapter("image-manifolds", "The image manifolds",
            "Ground truth", "image_manifolds"),
    Chapter("representation-gap", "The Representation Gap and intrinsic dimension",
            "Geometry and generalization", "representation_gap"),
    Chapter("eigenvalue-predictors", "Eigenvalues as predictors of generalization",
            "Geometry and generalization", "eigenvalues"),
    Chapter("nnk-graphs", "Neighbourhood graphs of a network's representations",
            "Geometry and generalization", "nnk_graphs"),
    Chapter("bound-scaling", "How fast can a manifold be learned?",
            "Learning the manifold", "bound_scaling"),
    Chapter("layer-geometry", "What a network does to the data manifold",
            "Learning the manifold", "layer_geometry"),
)}

#: The last part of the book: pages under ``book/`` that are not chapters.
APPENDIX = ("Using the book", ("book/rerun", "book/api", "book/references"))

_TOC_HEADER = """\
# Generated from the chapter registry (lib/chapters.py) by `python -m lib.book toc`;
# edit the registry, not this file (tests/test_architecture.py checks they agree).
# Chapters are the papermill-executed notebooks under book/chapters/ (not committed).
format: jb-book
root: book/intro
parts:
"""


def toc_text() -> str:
    """The text of ``_toc.yml``: one part per caption of :data:`CHAPTERS`, then :data:`APPENDIX`."""
    parts: dict[str, list[str]] = {}
    for chapter in CHAPTERS.values():
        parts.setdefault(chapter.part, []).append(f"book/chapters/{chapter.slug}")
    caption, pages = APPENDIX
    parts[caption] = list(pages)
    lines = [_TOC_HEADER.rstrip("\n")]
    for caption, files in parts.items():
        lines += [f"  - caption: {caption}", "    chapters:"]
        lines += [f"      - file: {file}" for file in files]
    return "\n".join(lines) + "\n"


def write_toc(root: Path) -> Path:
    """Write :func:`toc_text` to ``root / "_toc.yml"`` (only if it changed); return the path."""
    path = Path(root) / "_toc.yml"
    text = toc_text()
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


#: Where the book-wide claims table is written (under ``book/chapters/``, which holds
#: generated pages only); the introduction includes it.
CLAIMS_PAGE = Path("book") / "chapters" / "claims.md"


def _cell(value) -> str:
    """A value as one cell of a Markdown table."""
    return " ".join(str(value).split()).replace("|", "\\|")


def claims_page_text(root: Path) -> str:
    """Every chapter's published ``claims`` table (:mod:`lib.claims`) as one Markdown section.

    Per chapter with a ``claims.csv`` among its outputs: a linked heading, its
    verdict counts and a table of claim, paper, this run and verdict (the
    criterion is on the chapter's page). Chapters that test no claims, or have
    not run, are listed as such.
    """
    import pandas as pd

    from lib.claims import COLUMNS, VERDICTS, verdict_counts

    lines, missing, total = [], [], dict.fromkeys(VERDICTS, 0)
    for chapter in CHAPTERS.values():
        path = chapter.outputs(root) / "claims.csv"
        table = pd.read_csv(path) if path.is_file() else None
        if table is None or not set(COLUMNS) <= set(table.columns):
            missing.append(f"{{doc}}`chapters/{chapter.slug}`")
            continue
        counts = verdict_counts(table)
        total = {v: total[v] + counts[v] for v in VERDICTS}
        lines += [f"**{{doc}}`chapters/{chapter.slug}`**: "
                  + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", "",
                  "| claim | paper | this run | verdict |", "|---|---|---|---|"]
        lines += [f"| {_cell(r.claim)} | {_cell(r.paper)} | {_cell(r.ours)} | {_cell(r.verdict)} |"
                  for r in table.itertuples()]
        lines.append("")
    head = ["In all: " + ", ".join(f"{n} {v}" for v, n in total.items()) + ".", ""]
    if missing:
        lines += ["Chapters without a claims table (they test none, or have not run): "
                  + ", ".join(missing) + "."]
    return "\n".join(head + lines) + "\n"


def write_claims_page(root: Path) -> Path:
    """Write :func:`claims_page_text` to ``root / CLAIMS_PAGE``; return the path."""
    path = Path(root) / CLAIMS_PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(claims_page_text(root))
    return path
