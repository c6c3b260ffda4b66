"""Chapter parameters: declared once, validated before anything executes."""

import subprocess
import sys
from pathlib import Path

import papermill
import jupytext
import pytest

from lib import book
from lib.studies import toy_manifolds

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("slug", list(book.CHAPTERS))
def test_parameters_cell_matches_declaration(slug, tmp_path):
    """The notebook's tagged cell holds exactly the declared parameters, at their defaults."""
    chapter = book.CHAPTERS[slug]
    notebook = tmp_path / f"{slug}.ipynb"
    jupytext.write(jupytext.read(chapter.source(PROJECT)), notebook)
    found = papermill.inspect_notebook(notebook)
    assert list(found) == list(chapter.parameters.names)
    for name, default in chapter.parameters.defaults.items():
        assert eval(found[name]["default"]) == default, name  # literals written by us


@pytest.mark.parametrize("pairs, error, match", [
    ([("radius", "-1")], ValueError, "'radius' parameter of chapter 'toy-manifolds' must be a "
                                     "float in \\[0.01, 100.0\\]. Got -1.0"),
    ([("preset", "huge")], ValueError, "'preset' .* must be one of \\{'ci', 'default', 'paper'\\}"),
    ([("seed", "1.5")], TypeError, "'seed' .* must be an int in \\[0, 4294967295\\]"),
    ([("radius", "nan")], ValueError, "'radius'"),
    ([("radius", "abc")], TypeError, "'radius'"),
    ([("colour", "red")], ValueError, "Unknown parameter 'colour' .* radius \\(a float in"),
])
def test_bad_values_are_named_with_their_range(pairs, error, match):
    with pytest.raises(error, match=match):
        toy_manifolds.PARAMETERS.parse(pairs)


def test_parse_coerces_types():
    values = toy_manifolds.PARAMETERS.parse([("radius", "3"), ("seed", "1"), ("preset", "ci")])
    assert values == {"radius": 3.0, "seed": 1, "preset": "ci"}


def test_config_validates_and_picks_sizes():
    config = toy_manifolds.Config(preset="ci", radius=2.0)
    assert config.sizes == toy_manifolds.SIZES["ci"]
    with pytest.raises(ValueError, match="'tube_ratio'"):
        toy_manifolds.Config(tube_ratio=1.5)


def test_cli_rejects_bad_parameter_before_executing(tmp_path):
    """A bad value exits with status 2 and a message, and no notebook is written."""
    result = subprocess.run(
        [sys.executable, "-m", "lib.book", "--root", str(tmp_path), "run", "toy-manifolds",
         "-p", "radius", "0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "'radius' parameter of chapter 'toy-manifolds' must be a float in [0.01, 100.0]" \
        in result.stderr
    assert not any(tmp_path.iterdir())


def test_cli_rejects_unknown_chapter(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lib.book", "run", "no-such-chapter"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"'chapter' parameter of lib.book must be one of {{{', '.join(book.CHAPTERS)}}}" \
        in result.stderr


def test_text_parameters_pass_strings_and_name_themselves_otherwise():
    from lib.studies import bound_scaling

    values = bound_scaling.PARAMETERS.parse([("scheduler", "tcp://10.0.0.5:8786"),
                                             ("n_jobs", "4"), ("backend", "dask")])
    assert values == {"scheduler": "tcp://10.0.0.5:8786", "n_jobs": 4, "backend": "dask"}
    with pytest.raises(TypeError, match="'coil20' parameter of chapter 'bound-scaling' must be "
                                        "a str \\(empty for none\\). Got 3"):
        bound_scaling.PARAMETERS.validate({"coil20": 3})
