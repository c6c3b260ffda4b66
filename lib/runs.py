"""Records of chapter runs: what made each executed page, whether it is still fresh, how long.

As Jupyter Book's execution cache (jupyter-cache) does for its notebooks, an
executed chapter is *fresh* while everything that made it is unchanged: the
Jupytext source ``notebooks/<slug>.md``, the parameters (the preset and any
others, defaults filled in), the ``lib`` code its study module reaches and
the code of the figures it draws (:func:`lib.store.code_fingerprint` of
``lib.studies.<study>`` and ``lib.figures.<study>``). Anything else is
*stale*, with the reason; a chapter whose last run raised, with the inputs it
has now, is *failed*.

Two small JSON files, each written atomically with :func:`lib.store.write_json`:

- ``book/chapters/<slug>.run.json``, beside the executed notebook:
  ``{"inputs": ..., "seconds": ..., "finished": ..., "provenance": ...,
  "failed": null}`` for the page in place (:func:`provenance`, also shown at
  the end of the page by :func:`provenance_markdown`), and ``"failed": {"inputs", "cell", "error", "traceback",
  "finished"}`` after a run that raised (the page in place is then the
  previous one, or none);
- ``<cache>/chapter-times.json``: ``{slug: {preset: seconds}}`` of the last
  successful run, which the runner shows as the expected time.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lib.store import canonical_json, code_fingerprint, digest, write_json

__all__ = ["Status", "chapter_status", "describe_failure", "expected_seconds", "provenance",
           "provenance_markdown", "record_failure", "record_success", "record_path", "run_inputs",
           "TIMES_FILE"]

TIMES_FILE = "chapter-times.json"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Status:
    """State of one chapter: ``"fresh"``, ``"stale"`` or ``"failed"``, and why."""

    state: str
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.state} ({self.reason})" if self.reason else self.state


def _fingerprint(module: str) -> str | None:
    try:
        return code_fingerprint(module)
    except ValueError:          # a study without a figures module of its own
        return None


def run_inputs(chapter, values: dict, root: Path) -> dict:
    """What a run of ``chapter`` with ``values`` (defaults filled in) depends on, as JSON data."""
    return {"source": digest(chapter.source(root).read_bytes(), length=16),
            "parameters": json.loads(canonical_json(values)),
            "code": _fingerprint(chapter.module),
            "figures": _fingerprint(f"lib.figures.{chapter.study}")}


def record_path(chapter, root: Path) -> Path:
    """``book/chapters/<slug>.run.json``."""
    return chapter.executed(root).with_suffix(".run.json")


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)


def _changes(old: dict, new: dict, chapter) -> list[str]:
    """Why a page made with ``old`` inputs is stale for ``new`` ones, one phrase per input."""
    reasons = []
    if old.get("source") != new["source"]:
        reasons.append(f"notebooks/{chapter.slug}.md changed")
    before, after = old.get("parameters") or {}, new["parameters"]
    changed = [f"{name} {before.get(name)!r} -> {after.get(name)!r}"
               for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
    if changed:
        reasons.append("parameters changed: " + ", ".join(changed))
    if old.get("code") != new["code"]:
        reasons.append(f"code reached by {chapter.module} changed")
    if old.get("figures") != new["figures"]:
        reasons.append(f"code of lib.figures.{chapter.study} changed")
    return reasons


def chapter_status(chapter, values: dict, root: Path) -> Status:
    """Whether the executed page of ``chapter`` is fresh for ``values`` (defaults filled in)."""
    record = _read(record_path(chapter, root))
    inputs = run_inputs(chapter, values, root)
    failed = record.get("failed")
    if failed and failed.get("inputs") == inputs:
        return Status("failed", f"{failed.get('error')} in cell {failed.get('cell')}")
    if not chapter.executed(root).is_file():
        return Status("stale", "never executed")
    if not record.get("inputs"):
        return Status("stale", "no record of what made the executed page")
    reasons = _changes(record["inputs"], inputs, chapter)
    return Status("stale", "; ".join(reasons)) if reasons else Status("fresh")


def record_success(chapter, root: Path, inputs: dict, seconds: float, cache: Path,
                   made: dict | None = None) -> None:
    """Record the page now in place, its run time (per chapter and preset) and its provenance."""
    made = made or provenance(inputs, seconds, root)
    _write(record_path(chapter, root), {"inputs": inputs, "seconds": round(seconds, 1),
                                        "finished": made["date"], "provenance": made,
                                        "failed": None})
    path = Path(cache) / TIMES_FILE
    times = _read(path)
    preset = str(inputs["parameters"].get("preset"))
    times.setdefault(chapter.slug, {})[preset] = round(seconds, 1)
    _write(path, times)


def record_failure(chapter, root: Path, inputs: dict, error: BaseException) -> None:
    """Record a failed run; the record of the page in place (if any) is kept beside it."""
    path = record_path(chapter, root)
    record = _read(path)
    cell, summary, lines = _failure_parts(error)
    record["failed"] = {"inputs": inputs, "cell": cell, "error": summary,
                        "traceback": lines[-20:],
                        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write(path, record)


def expected_seconds(slug: str, preset, cache: Path) -> float | None:
    """Seconds the last successful run of ``slug`` at ``preset`` took, or None."""
    return _read(Path(cache) / TIMES_FILE).get(slug, {}).get(str(preset))


def _failure_parts(error: BaseException) -> tuple[str | None, str, list[str]]:
    """(cell label, "Name: value", traceback lines without colour codes) of a failed run."""
    if hasattr(error, "ename") and hasattr(error, "traceback"):      # PapermillExecutionError
        lines = _ANSI.sub("", "\n".join(error.traceback)).splitlines()
        cell = f"{error.cell_index} (In [{error.exec_count}])"
        return cell, f"{error.ename}: {error.evalue}", lines
    return None, f"{type(error).__name__}: {error}", []


def describe_failure(error: BaseException, *, source: str | None = None, tail: int = 15) -> str:
    """The failing cell's source and the end of its traceback, for the terminal."""
    cell, summary, lines = _failure_parts(error)
    text = [f"failed: {summary}" + (f" in cell {cell}" if cell else "")]
    code = getattr(error, "source", None) or source
    if code:
        text += ["  the cell:"] + [f"    {line}" for line in code.splitlines()]
    if lines:
        text += [f"  end of the traceback ({min(tail, len(lines))} of {len(lines)} lines):"]
        text += [f"    {line}" for line in lines[-tail:]]
    return "\n".join(text)


#: Distributions whose versions a page reports (the project itself is "lib").
PACKAGES = ("torch", "numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "papermill",
            "jupyter-book")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _device() -> str:
    """The accelerator torch sees (name), else the CPU and its core count."""
    cpu = f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
    try:
        import torch
    except ImportError:
        return cpu
    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)}; {cpu}"
    return cpu


def provenance(inputs: dict, seconds: float, root: Path, *, finished: float | None = None) -> dict:
    """What made a page, as JSON data: commit, dirty tree, parameters, device, date, versions.

    ``commit`` and ``dirty`` are None outside a git checkout; ``dirty`` is
    whether tracked files differ from the commit. None of it enters a
    chapter's CSV, PNG or SVG files: only the page and ``<slug>.run.json``.
    """
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if commit else None
    parameters = dict(inputs["parameters"])
    return {"commit": commit, "dirty": None if status is None else bool(status),
            "preset": parameters.get("preset"), "parameters": parameters,
            "device": _device(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(finished)),
            "seconds": round(seconds, 1),
            "versions": {"python": platform.python_version(),
                         **{name: _version(name) for name in PACKAGES},
                         "lib": _version("manifold-book")},
            "code": {"source": inputs["source"], "study": inputs["code"],
                     "figures": inputs["figures"]}}


def provenance_markdown(made: dict, slug: str) -> str:
    """The provenance block ending a chapter's page (MyST), with its two download links."""
    if made["commit"] is None:
        commit = "not a git checkout"
    else:
        commit = f"`{made['commit'][:12]}`" + (" (tree dirty: uncommitted changes)"
                                                if made["dirty"] else " (tree clean)")
    parameters = ", ".join(f"`{name} = {value!r}`" for name, value in made["parameters"].items())
    versions = ", ".join(f"{name} {version}" for name, version in made["versions"].items()
                         if version)
    minutes, secs = divmod(int(round(made["seconds"])), 60)
    return "\n".join([
        ":::{container} provenance",
        "**Provenance.** This page was executed by `python -m lib.book` (papermill):",
        "",
        f"- commit: {commit}",
        f"- preset: `{made['preset']}`; parameters: {parameters}",
        f"- device: {made['device']}",
        f"- date: {made['date']}; run time {minutes}:{secs:02d}",
        f"- versions: {versions}",
        f"- code fingerprints: source `{made['code']['source']}`, study `{made['code']['study']}`"
        + (f", figures `{made['code']['figures']}`" if made["code"]["figures"] else ""),
        "",
        f"Download this page: {{download}}`notebook (.ipynb) <{slug}.ipynb>` · "
        f"{{download}}`Jupytext source (.md) </notebooks/{slug}.md>`",
        ":::",
    ])
