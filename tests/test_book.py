"""The book helpers: the parameter-keyed cache and publishing of figures and tables."""

import pandas as pd
import pytest
from matplotlib.figure import Figure

from lib import book, store

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


def clipped_figure():
    # Axes clip their lines: the SVG then holds clip-path ids, salted at random by default.
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_publish_writes_the_same_bytes_twice(tmp_path, monkeypatch):
    """Two runs with the same parameters give byte-identical PNG and SVG files (issue 20)."""
    outputs = []
    for run in ("first", "second"):
        folder = tmp_path / run
        folder.mkdir()
        monkeypatch.chdir(folder)
        book.publish(clipped_figure(), "line")
        outputs.append({suffix: (folder / f"line.{suffix}").read_bytes()
                        for suffix in ("png", "svg")})
    svg = outputs[0]["svg"].decode()
    assert "clip-path" in svg and "<dc:date>" not in svg
    assert outputs[0] == outputs[1]


def test_publish_rejects_other_types(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="'result' parameter of publish must be a matplotlib"):
        book.publish([1, 2], "list")


def test_cache_lives_under_the_library_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv(book.CACHE_ENV, str(tmp_path))
    fingerprint = store.library_fingerprint()
    book.cached(square, 5)
    assert (tmp_path / fingerprint).is_dir()
