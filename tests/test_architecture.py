"""The shape of the project: one-way imports, one chapter registry, indexes naming their contents.

- Imports point one way. Every ``lib`` module sits in a layer (:data:`LAYERS`); it may
  import from lower layers and from its own unit (the longest prefix of :data:`LAYERS`
  it falls under, e.g. ``lib.geometry``), never upward and never sideways into another
  unit of its own layer. No module imports a private name (``_x``) from another module;
  public names of private modules (``lib._checks``, ``lib.figures._style``) are fine.
- The chapter registry (``lib/chapters.py``) is the one list of chapters: ``_toc.yml``
  is generated from it, every notebook is registered and registers its title and study.
- Every figure caption names the ``lib`` function that computes the figure.
- Every package docstring names the public modules the package holds.

Reading the imports is static (``ast``): module level and inside functions alike.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lib import chapters

PROJECT = Path(__file__).resolve().parents[1]
LIB = PROJECT / "lib"

# --- the layer order ------------------------------------------------------------------

#: Module prefix -> layer, low to high. A module belongs to the longest prefix it falls
#: under (its *unit*); it may import its own unit and units of lower layers only.
#: Units of one layer are siblings: they do not import each other.
LAYERS = {
    # private helpers, importing nothing from lib
    "lib._arrays": 0, "lib._checks": 0, "lib._lazy": 0, "lib._progress": 0, "lib._threads": 0,
    # foundations (lib.store and lib.derivatives are issue 16's new modules)
    "lib.grid": 1, "lib.params": 1, "lib.store": 1, "lib.derivatives": 1, "lib.prose": 1,
    "lib.claims": 1,
    # geometry of sampled values and the data; siblings, so neither imports the other
    "lib.geometry": 2, "lib.neighbors": 2, "lib.sampling": 2, "lib.datasets": 2,
    # what is fitted or run on data
    "lib.estimators": 3, "lib.graphs": 3, "lib.models": 3, "lib.sweeps": 3, "lib.plans": 3,
    "lib.clusters": 3,
    # statistics that judge estimators (quantization measures k-means codebooks
    # with lib.estimators.representation_gap)
    "lib.stats": 4,
    "lib.studies": 5,
    "lib.figures": 6,
    "lib.chapters": 7, "lib.runs": 7,
    "lib.book": 8,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """Whether a dotted ``lib`` name is a module or package in this checkout."""
    base = PROJECT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def lib_imports(module: str, source: str, *, is_package: bool = False):
    """Every import of ``lib`` in a module's source: (target module, imported name or None, line).

    ``import lib.x`` and ``from lib import x`` (x a module) give (``lib.x``, None);
    ``from lib.x import y`` with y not a module gives (``lib.x``, ``"y"``).
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "lib"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:                              # relative: from .x import y
                package = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(package + ([base] if base else []))
            if base.split(".")[0] != "lib":
                continue
            for alias in node.names:
                if is_module(f"{base}.{alias.name}"):
                    found.append((f"{base}.{alias.name}", None, node.lineno))
                else:
                    found.append((base, alias.name, node.lineno))
    return found


def unit(module: str) -> str:
    """The longest prefix of :data:`LAYERS` that ``module`` falls under."""
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise KeyError(f"{module} has no layer: add its prefix to LAYERS in {__file__}")
    return max(matches, key=len)


def violations(module: str, imports) -> set[tuple]:
    """(kind, importer, imported module, name) for every import that breaks the rules."""
    found = set()
    for target, name, _ in imports:
        if target != "lib" and unit(target) != unit(module):
            below, above = LAYERS[unit(target)], LAYERS[unit(module)]
            if below > above:
                found.add(("upward", module, target, None))
            elif below == above:
                found.add(("sideways", module, target, None))
        if name is not None and name.startswith("_") and not name.startswith("__"):
            found.add(("private", module, target, name))
    return found


def lib_modules():
    return sorted(LIB.rglob("*.py"))


def all_violations() -> set[tuple]:
    found = set()
    for path in lib_modules():
        module = module_name(path)
        if module == "lib":
            continue
        found |= violations(module, lib_imports(module, path.read_text(),
                                                is_package=path.name == "__init__.py"))
    return found


def test_every_module_has_a_layer():
    for path in lib_modules():
        if module_name(path) != "lib":
            unit(module_name(path))


def test_importing_lib_has_no_side_effects():
    """lib/__init__ imports nothing; lib.book, lib.studies and lib.figures import no chapter."""
    assert not lib_imports("lib", (LIB / "__init__.py").read_text(), is_package=True)
    script = ("import sys, lib, lib.book, lib.studies, lib.figures; "
              "print(sorted(m for m in sys.modules if m.startswith('lib.')))")
    loaded = ast.literal_eval(subprocess.run([sys.executable, "-c", script], capture_output=True,
                                             text=True, check=True, cwd=PROJECT).stdout)
    chapters_loaded = [m for m in loaded if m.startswith(("lib.studies.", "lib.figures."))]
    assert "lib.chapters" in loaded and not chapters_loaded, chapters_loaded


def test_imports_point_downward_and_take_no_private_names():
    new = all_violations()
    assert not new, "\n".join(f"{kind}: {source} imports {target}" + (f".{name}" if name else "")
                              for kind, source, target, name in sorted(new, key=str))


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("lib.geometry.metric", "from lib.studies.toy_manifolds import Config",
     {("upward", "lib.geometry.metric", "lib.studies.toy_manifolds", None)}),
    ("lib.grid", "def f():\n    import lib.book\n",
     {("upward", "lib.grid", "lib.book", None)}),
    ("lib.datasets.toy", "from lib import neighbors",
     {("sideways", "lib.datasets.toy", "lib.neighbors", None)}),
    ("lib.studies.eigenvalues", "from lib.models.autoencoder import _device",
     {("private", "lib.studies.eigenvalues", "lib.models.autoencoder", "_device")}),
    ("lib.graphs.metrics", "from .nnk import _unit_rows",
     {("private", "lib.graphs.metrics", "lib.graphs.nnk", "_unit_rows")}),
    # Allowed: down the layers, within a unit, public names of private modules.
    ("lib.studies.nnk_graphs", "from lib.studies import eigenvalues\n"
     "from lib.geometry.reach import local_reach\nfrom lib._checks import check_int\n"
     "from lib.models._shared import seeds", set()),
])
def test_checker_flags_synthetic_violations(module, source, expected):
    """The checker can fail: it flags an upward, a sideways and a private import."""
    assert violations(module, lib_imports(module, source)) == expected


# --- the chapter registry -------------------------------------------------------------


def test_committed_toc_is_generated_from_the_registry():
    assert (PROJECT / "_toc.yml").read_text() == chapters.toc_text(), \
        "run `python -m lib.book toc` and commit _toc.yml"


def test_toc_lists_every_chapter_once_in_registry_order():
    toc = yaml.safe_load(chapters.toc_text())
    files = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    registered = [f"book/chapters/{slug}" for slug in chapters.CHAPTERS]
    assert files[: len(registered)] == registered
    assert [part["caption"] for part in toc["parts"]][-1] == chapters.APPENDIX[0]


def test_every_notebook_is_registered():
    assert sorted(path.stem for path in (PROJECT / "notebooks").glob("*.md")) == \
        sorted(chapters.CHAPTERS)


@pytest.mark.parametrize("slug", list(chapters.CHAPTERS))
def test_registry_entry_matches_notebook_and_study(slug):
    """The title is the notebook's first heading, and the notebook imports its study."""
    chapter = chapters.CHAPTERS[slug]
    text = chapter.source(PROJECT).read_text()
    assert re.search(r"^# (.+)$", text, re.M).group(1) == chapter.title
    assert f"from lib.studies import {chapter.study} as study" in text
    assert (LIB / "studies" / f"{chapter.study}.py").is_file()
    assert chapter.parameters.parameters


# --- figure captions ------------------------------------------------------------------

CELL = re.compile(r"^```\{code-cell\}[^\n]*\n---\n(.*?)\n---\n", re.M | re.S)
REFERENCE = re.compile(r"\b(?:lib\.)?studies(?:\.\w+)+|\blib(?:\.\w+)+")


def resolve(reference: str):
    """The object a dotted ``lib`` reference names (``studies.x.f`` means ``lib.studies.x.f``)."""
    parts = (reference if reference.startswith("lib.") else f"lib.{reference}").split(".")
    for end in range(len(parts), 0, -1):
        if is_module(".".join(parts[:end])):
            target = importlib.import_module(".".join(parts[:end]))
            for attribute in parts[end:]:
                target = getattr(target, attribute)
            return target
    raise ImportError(reference)


def captions():
    found = []
    for notebook in sorted((PROJECT / "notebooks").glob("*.md")):
        for match in CELL.finditer(notebook.read_text()):
            figure = (yaml.safe_load(match.group(1)).get("mystnb") or {}).get("figure") or {}
            if "caption" in figure:
                found.append(pytest.param(figure["caption"],
                                          id=f"{notebook.stem}:{figure.get('name')}"))
    return found


def test_notebooks_have_captioned_figures():
    assert len(captions()) >= 2 * len(chapters.CHAPTERS)


@pytest.mark.parametrize("caption", captions())
def test_caption_names_the_lib_function_behind_the_figure(caption):
    references = REFERENCE.findall(caption)
    assert references, f"the caption names no lib function (e.g. `studies.x.f`): {caption!r}"
    for reference in references:
        assert callable(resolve(reference)), reference


def test_resolve_rejects_names_that_do_not_exist():
    with pytest.raises(AttributeError):
        resolve("studies.toy_manifolds.no_such_function")


# --- package docstrings ---------------------------------------------------------------

PACKAGES = sorted(path.parent for path in LIB.rglob("__init__.py"))


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: module_name(path / "x")[:-2])
def test_package_docstring_names_every_public_module(package):
    """The docstring names each public module; for studies and figures the registry does.

    lib.studies and lib.figures hold one module per chapter, and their index is the
    chapter registry: adding a chapter touches no package docstring.
    """
    name = module_name(package / "__init__.py")
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    named = set(re.findall(r"lib(?:\.\w+)+", docstring))
    if name in ("lib.studies", "lib.figures"):
        named |= {f"{name}.{chapter.study}" for chapter in chapters.CHAPTERS.values()}
    held = {f"{name}.{path.stem if path.suffix else path.name}" for path in package.iterdir()
            if not path.name.startswith("_")
            and (path.suffix == ".py" or (path / "__init__.py").is_file())}
    assert held <= named, f"not named in the docstring of {name}: {sorted(held - named)}"


# --- the API reference ----------------------------------------------------------------


def test_api_reference_documents_every_public_module_in_layer_order():
    """book/api.md lists each public module once, from the lowest layer to the highest."""
    listed = re.findall(r"^\.\. automodule:: (\S+)", (PROJECT / "book" / "api.md").read_text(),
                        flags=re.MULTILINE)
    public = {module_name(path) for path in lib_modules()
              if not any(part.startswith("_") and part != "__init__.py"
                         for part in path.relative_to(LIB).parts)}
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert set(listed) == public, (sorted(public - set(listed)), sorted(set(listed) - public))
    layers = [LAYERS[unit(module)] if module != "lib" else -1 for module in listed]
    assert layers == sorted(layers), [(m, l) for m, l in zip(listed, layers)]
