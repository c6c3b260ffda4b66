"""The runner re-executes what changed and keeps the previous page when a chapter fails.

Each test runs against a scratch project root holding two registered chapters
(``toy-manifolds`` and ``grid-geometry``, for their declared parameters and
code fingerprints) whose sources are tiny notebooks: a kernel start each, a
few seconds in all. The book itself is not rendered (``render=False``).
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lib import book, runs

PROJECT = Path(__file__).resolve().parents[1]
SLUGS = ("toy-manifolds", "grid-geometry")

TINY = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A tiny chapter

```{{code-cell}} ipython3
---
tags: [parameters]
---
preset = "default"
```

```{{code-cell}} ipython3
open("marker.txt", "w").write({marker!r} + preset)
{extra}
```
"""


def _source(root, slug, marker, extra=""):
    (root / "notebooks" / f"{slug}.md").write_text(TINY.format(marker=marker, extra=extra))


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "_config.yml").write_text("title: scratch\n")
    for slug in SLUGS:
        _source(root, slug, f"first {slug} ")
    monkeypatch.setattr(book, "CHAPTERS", {slug: book.CHAPTERS[slug] for slug in SLUGS})
    monkeypatch.setenv(book.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("MANIFOLD_BOOK_HEARTBEAT", "0")
    assert book.build_book(root=root, preset="ci", render=False, progress=False) == 0
    return root


def _states(root, preset="ci"):
    return {slug: state for slug, state in book.chapter_states(root=root, preset=preset).items()}


def _marker(root, slug):
    return (book.CHAPTERS[slug].outputs(root) / "marker.txt").read_text()


def test_a_changed_source_makes_that_chapter_stale_and_only_it_runs(project, capsys, tmp_path):
    assert {slug: s.state for slug, s in _states(project).items()} == dict.fromkeys(SLUGS, "fresh")
    times = json.loads((tmp_path / "cache" / runs.TIMES_FILE).read_text())
    assert set(times) == set(SLUGS) and all("ci" in times[slug] for slug in SLUGS)
    untouched = book.CHAPTERS["grid-geometry"].executed(project).stat().st_mtime_ns

    _source(project, "toy-manifolds", "second ")
    state = _states(project)["toy-manifolds"]
    assert state.state == "stale" and "notebooks/toy-manifolds.md changed" in state.reason
    assert _states(project)["grid-geometry"].state == "fresh"

    capsys.readouterr()
    assert book.build_book(root=project, preset="ci", render=False, progress=False) == 0
    err = capsys.readouterr().err
    assert "[1/1] toy-manifolds: executing at preset 'ci'" in err
    assert "grid-geometry: fresh at preset 'ci', kept" in err
    assert "last run took" in err and "done in" in err
    assert _marker(project, "toy-manifolds") == "second ci"
    assert book.CHAPTERS["grid-geometry"].executed(project).stat().st_mtime_ns == untouched


def test_a_changed_parameter_or_library_code_makes_chapters_stale(project, monkeypatch):
    state = _states(project, preset="default")["toy-manifolds"]
    assert state.state == "stale" and "preset 'ci' -> 'default'" in state.reason
    monkeypatch.setattr(runs, "code_fingerprint", lambda module: "another")
    state = _states(project)["toy-manifolds"]
    assert "code reached by lib.studies.toy_manifolds changed" in state.reason
    assert "code of lib.figures.toy_manifolds changed" in state.reason


def test_a_failing_chapter_keeps_its_previous_page_and_exits_non_zero(project, capsys):
    chapter = book.CHAPTERS["toy-manifolds"]
    page = chapter.executed(project).read_text()
    _source(project, "toy-manifolds", "broken ", extra='raise ValueError("boom")')

    capsys.readouterr()
    assert book.build_book(root=project, preset="ci", render=False, progress=False) == 1
    err = capsys.readouterr().err
    assert "ValueError: boom" in err and 'raise ValueError("boom")' in err   # cell and traceback
    assert "previous page kept" in err
    assert chapter.executed(project).read_text() == page
    assert _marker(project, "toy-manifolds") == "first toy-manifolds ci"
    assert not list(chapter.executed(project).parent.glob(".run-*"))        # no scratch left
    state = _states(project)["toy-manifolds"]
    assert state.state == "failed" and "ValueError: boom" in state.reason

    assert book.main(["--root", str(project), "run", "toy-manifolds", "-p", "preset", "ci"]) == 1
    assert chapter.executed(project).read_text() == page

    _source(project, "toy-manifolds", "fixed ")
    assert book.build_book(root=project, preset="ci", render=False, progress=False) == 0
    assert _states(project)["toy-manifolds"].state == "fresh"
    assert _marker(project, "toy-manifolds") == "fixed ci"


def test_status_command_lists_every_chapter(project, capsys):
    assert book.main(["--root", str(project), "status", "--preset", "ci"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == list(SLUGS)
    assert all(line.split()[1] == "fresh" for line in out)



def _make_dry_run(target):
    result = subprocess.run(["make", "-n", target, "VENV=/nonexistent-venv"], cwd=PROJECT,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_keeps_the_cache_and_the_book_exports_the_thread_policy():
    clean = _make_dry_run("clean")
    assert "rm -rf _build book/chapters" in clean and "data/cache" not in clean
    assert "rm -rf data/cache" in _make_dry_run("clean-cache")
    assert "export OMP_WAIT_POLICY := PASSIVE" in (PROJECT / "Makefile").read_text()


def test_provenance_names_commit_parameters_device_date_and_versions(tmp_path):
    inputs = {"source": "abc", "parameters": {"preset": "ci", "seed": 0}, "code": "c1",
              "figures": None}
    made = runs.provenance(inputs, 75.4, PROJECT, finished=0.0)
    assert made["commit"] is None or len(made["commit"]) == 40
    assert made["dirty"] in (None, True, False)
    assert made["preset"] == "ci" and made["parameters"] == {"preset": "ci", "seed": 0}
    assert made["date"][:4] in ("1969", "1970") and made["seconds"] == 75.4
    assert made["versions"]["python"] and made["versions"]["numpy"] and made["device"]
    outside = runs.provenance(inputs, 1.0, tmp_path)           # not a git checkout
    assert outside["commit"] is None and outside["dirty"] is None
    text = runs.provenance_markdown(outside, "toy-manifolds")
    assert text.startswith(":::{container} provenance") and text.endswith(":::")
    assert "not a git checkout" in text and "run time 0:01" in text
    assert "`preset = 'ci'`, `seed = 0`" in text
    assert "{download}`notebook (.ipynb) <toy-manifolds.ipynb>`" in text
    assert "</notebooks/toy-manifolds.md>`" in text


def test_the_executed_page_ends_with_its_provenance(project):
    import nbformat

    chapter = book.CHAPTERS["toy-manifolds"]
    notebook = nbformat.read(chapter.executed(project), as_version=4)
    nbformat.validate(notebook)
    last = notebook.cells[-1]
    assert last.cell_type == "markdown" and last.metadata["tags"] == ["provenance"]
    assert "preset: `ci`" in last.source
    record = json.loads(runs.record_path(chapter, project).read_text())
    assert record["provenance"]["parameters"]["preset"] == "ci"
    assert (chapter.outputs(project) / "marker.txt").read_text() == "first toy-manifolds ci"


def test_a_chapters_progress_bars_reach_the_terminal_not_the_page(project, capsys,
                                                                   monkeypatch):
    """The kernel's bars are relayed to the runner's heartbeat; the page gets none of them."""
    import nbformat

    loop = ("import time\nfrom lib._progress import progress_bar\n"
            "for _ in progress_bar(range(4), desc='tiny loop'):\n    time.sleep(1.0)")
    _source(project, "toy-manifolds", "looping ", extra=loop)
    monkeypatch.setenv("MANIFOLD_BOOK_HEARTBEAT", "0.5")
    capsys.readouterr()
    notebook = book.run_chapter("toy-manifolds", {"preset": "ci"}, root=project)
    err = capsys.readouterr().err
    beats = [line for line in err.splitlines() if "elapsed" in line]
    assert any("tiny loop" in line and "/4" in line for line in beats), err
    cells = nbformat.read(notebook, as_version=4).cells
    # Every code cell is wide on the page (the theme's full-width tag), the prose is not.
    assert all(book.WIDE_TAG in cell.metadata.get("tags", []) for cell in cells
               if cell.cell_type == "code")
    assert not any(book.WIDE_TAG in cell.metadata.get("tags", []) for cell in cells
                   if cell.cell_type == "markdown")
    assert not [output for cell in cells if cell.cell_type == "code"
                for output in cell.outputs if output.output_type == "stream"]
