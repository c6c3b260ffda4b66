"""The book helpers: the parameter-keyed cache and publishing of figures and tables."""

import pandas as pd
import pytest
from matplotlib.figure import Figure

from lib import book

CALLS = []


def square(x):
    CALLS.append(x)
    return x * x


def test_cached_computes_once_per_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv(book.CACHE_ENV, str(tmp_path))
    CALLS.clear()
    assert [book.cached(square, 3), book.cached(square, 3), book.cached(square, 4)] == [9, 9, 16]
    assert CALLS == [3, 4]
    # Entries live on disk under the chosen folder, so a new process finds them too.
    assert any(tmp_path.rglob("output.pkl"))


def test_publish_writes_png_svg_and_csv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    book.publish(fig, "line")
    book.publish(pd.DataFrame({"a": [1.0, 2.0]}), "numbers")
    assert (tmp_path / "line.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in (tmp_path / "line.svg").read_text()
    assert pd.read_csv(tmp_path / "numbers.csv")["a"].tolist() == [1.0, 2.0]


def test_publish_rejects_other_types(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="'result' parameter of publish must be a matplotlib"):
        book.publish([1, 2], "list")


def test_cache_lives_under_the_library_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv(book.CACHE_ENV, str(tmp_path))
    fingerprint = book.library_fingerprint()
    assert len(fingerprint) == 12 and fingerprint == book.library_fingerprint()
    book.cached(square, 5)
    assert (tmp_path / fingerprint).is_dir()


def test_fingerprint_follows_computing_code_but_not_figures(tmp_path, monkeypatch):
    """Editing a figure redraws without recomputing; editing a study recomputes."""
    import shutil

    copy = tmp_path / "lib"
    shutil.copytree(book.PROJECT_ROOT / "lib", copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(book, "__file__", str(copy / "book.py"))
    before = book.library_fingerprint()
    with open(copy / "figures" / "_style.py", "a") as handle:
        handle.write("\n# a new colour\n")
    assert book.library_fingerprint() == before
    with open(copy / "studies" / "toy_manifolds.py", "a") as handle:
        handle.write("\n# a new measurement\n")
    assert book.library_fingerprint() != before


def test_code_fingerprint_follows_what_a_study_imports(tmp_path, monkeypatch):
    """A sweep keyed on code_fingerprint recomputes when code it reaches changes (an
    estimator it imports lazily inside a function, a module two imports away) and not
    when another chapter or a figure changes."""
    import shutil

    shutil.copytree(book.PROJECT_ROOT / "lib", tmp_path / "lib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(book, "PROJECT_ROOT", tmp_path)
    study = "lib.studies.bound_scaling"
    before = book.code_fingerprint(study)
    assert len(before) == 12 and book.code_fingerprint(study) == before

    def touch(relative):
        with open(tmp_path / "lib" / relative, "a") as handle:
            handle.write("\n# edited\n")

    for unrelated in ("studies/eigenvalues.py", "figures/bound_scaling.py", "graphs/nnk.py",
                      "studies/__init__.py"):
        touch(unrelated)
        assert book.code_fingerprint(study) == before, unrelated
    touch("models/beta_vae.py")              # imported inside a function of the study
    after_model = book.code_fingerprint(study)
    assert after_model != before
    touch("neighbors.py")                    # reached through lib.estimators.projection
    assert book.code_fingerprint(study) != after_model
    with pytest.raises(ValueError, match="'module' parameter of code_fingerprint"):
        book.code_fingerprint("lib.studies.no_such_chapter")
