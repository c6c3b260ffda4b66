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


def test_published_views_link_their_files_and_show_flags_as_yes_no(tmp_path, monkeypatch):
    folder = tmp_path / "a-chapter"
    folder.mkdir()
    monkeypatch.chdir(folder)
    view = book.publish(clipped_figure(), "line", data=pd.DataFrame({"x": [0, 1]}))
    text = view._repr_markdown_()
    assert text.startswith("```{image} a-chapter/line.png\n")
    for suffix in ("PNG", "SVG", "CSV"):
        assert f"{{download}}`{suffix} <a-chapter/line.{suffix.lower()}>`" in text
    assert (folder / "line.csv").read_text() == "x\n0\n1\n"
    assert "CSV" not in book.publish(clipped_figure(), "bare")._repr_markdown_()

    table = book.publish(pd.DataFrame({"d": [2, 4], "ok": [True, False]}), "flags")
    text = table._repr_markdown_()
    assert ">yes<" in text and ">no<" in text and "True" not in text
    assert "\n\n" not in text.split("Download")[0].strip()     # one HTML block, then the link
    assert "{download}`CSV <a-chapter/flags.csv>`" in text
    assert (folder / "flags.csv").read_text() == "d,ok\n2,True\n4,False\n"   # CSV unchanged
    assert "{download}" in table.hide(["ok"], axis="columns")._repr_markdown_()
    # Integers in full, floats to four significant digits.
    text = book.publish(pd.DataFrame({"steps": [13000], "ratio": [0.0123456]}),
                        "digits")._repr_markdown_()
    assert ">13000<" in text and ">0.01235<" in text and "e+04" not in text


def test_publish_writes_pivot_tables_with_their_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    long = pd.DataFrame({"d": [2, 2, 4, 4], "space": ["in", "out"] * 2, "v": [1, 2, 3, 4]})
    book.publish(long.pivot(index="d", columns="space", values="v"), "wide")
    assert (tmp_path / "wide.csv").read_text() == "d,in,out\n2,1,2\n4,3,4\n"


def test_publish_records_the_width_and_the_smallest_text_for_the_page(tmp_path, monkeypatch):
    """The PNG carries what the browser test needs; the page shows the figure at its width."""
    from PIL import Image

    folder = tmp_path / "a-chapter"
    folder.mkdir()
    monkeypatch.chdir(folder)
    fig = Figure(figsize=(6.5, 3))
    ax = fig.add_subplot()
    ax.plot([0, 1], [1, 0])
    ax.set_title("a title", fontsize=12)
    ax.tick_params(axis="x", labelsize=7)   # tick labels exist only once the figure is drawn
    assert book.smallest_text(fig) == 7.0
    view = book.publish(fig, "line")
    with Image.open(folder / "line.png") as image:
        assert image.text["Width (in)"] == "6.5" and image.text["Smallest text (pt)"] == "7"
        assert image.size[0] == 6.5 * 150
    text = view._repr_markdown_()
    assert text.startswith("```{image} a-chapter/line.png\n")
    assert f":width: {round(6.5 * book.CSS_PX_PER_INCH)}px" in text
    assert ":class: book-figure" in text


def test_a_figure_is_never_wider_than_the_page_allows():
    from lib.figures._style import MAX_WIDTH, new_figure

    assert new_figure(figsize=(30, 4)).get_size_inches().tolist() == [MAX_WIDTH, 4]
    assert new_figure(figsize=(6, 4)).get_size_inches().tolist() == [6, 4]


def test_settings_show_a_presets_sizes_as_a_table():
    table = book.settings({"image_size": 32, "training": {"max_steps": 16000, "rel_tol": 0.02,
                                                          "learning_rate": 1e-3},
                           "objects": ("duck", "car"), "flag": True})
    assert dict(zip(table["setting"], table["value"])) == {
        "image_size": "32", "training.max_steps": "16000", "training.rel_tol": "0.02",
        "training.learning_rate": "0.001", "objects": "duck, car", "flag": "True"}
