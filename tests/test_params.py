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
                                             ("backend", "dask")])
    assert values == {"scheduler": "tcp://10.0.0.5:8786", "backend": "dask"}
    with pytest.raises(TypeError, match="'coil20' parameter of chapter 'bound-scaling' must be "
                                        "an existing folder .* \\(empty for none\\). Got 3"):
        bound_scaling.PARAMETERS.validate({"coil20": 3})


# --- the Config each study generates from its PARAMETERS -------------------------------


def _studies():
    import importlib
    import pkgutil

    import lib.studies

    return [importlib.import_module(f"lib.studies.{module.name}")
            for module in pkgutil.iter_modules(lib.studies.__path__)
            if not module.name.startswith("_")]


STUDIES = _studies()


@pytest.mark.parametrize("study", STUDIES, ids=lambda study: study.__name__.rsplit(".", 1)[1])
def test_config_has_exactly_the_declared_parameters_and_sizes(study):
    import dataclasses

    fields = dataclasses.fields(study.Config)
    assert [f.name for f in fields] == [*study.PARAMETERS.names, "sizes"]
    config = study.Config(preset="ci")
    assert {name: getattr(config, name) for name in study.PARAMETERS.names} == \
        dict(study.PARAMETERS.defaults, preset="ci")
    assert config.sizes == study.SIZES["ci"]
    assert hash(config) == hash(study.Config(preset="ci"))


@pytest.mark.parametrize("study", STUDIES, ids=lambda study: study.__name__.rsplit(".", 1)[1])
def test_config_rejects_a_bad_value_naming_it(study):
    chapter = study.PARAMETERS.chapter
    with pytest.raises(ValueError, match=f"'preset' parameter of chapter '{chapter}' must be one "
                                         f"of"):
        study.Config(preset="huge")
    with pytest.raises(TypeError, match=f"'seed' parameter of chapter '{chapter}' must be an int"):
        study.Config(seed=1.5)


@pytest.mark.parametrize("study", STUDIES, ids=lambda study: study.__name__.rsplit(".", 1)[1])
def test_config_pickles_with_its_sizes(study):
    import pickle

    import joblib

    config = study.Config(preset="ci")
    again = pickle.loads(pickle.dumps(config))
    assert again == config and hash(again) == hash(config)
    assert again.sizes == config.sizes and type(again.sizes) is type(config.sizes)
    assert joblib.hash(again) == joblib.hash(config)


def test_configs_differing_only_in_sizes_differ(monkeypatch):
    """Tests shrink a preset's sizes: in-memory caches keyed on the Config must see it."""
    import joblib

    before = toy_manifolds.Config(preset="ci")
    monkeypatch.setitem(toy_manifolds.SIZES, "ci", dict(toy_manifolds.SIZES["ci"], samples=10))
    after = toy_manifolds.Config(preset="ci")
    assert after.sizes["samples"] == 10 and before.sizes["samples"] != 10
    assert after != before
    assert hash(after) != hash(before)   # equal hashes of different sizes: possible, not here
    assert joblib.hash(after) != joblib.hash(before)


def test_config_coerces_and_keeps_sizes_out_of_its_arguments():
    import dataclasses

    config = toy_manifolds.Config(preset="ci", radius=2)
    assert type(config.radius) is float and config == toy_manifolds.Config(preset="ci",
                                                                            radius=2.0)
    with pytest.raises(TypeError):
        toy_manifolds.Config(sizes={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1
    moved = dataclasses.replace(config, seed=3)
    assert moved.seed == 3 and moved.sizes == config.sizes


def test_config_keeps_the_methods_of_its_class():
    from lib.studies import bound_scaling

    config = bound_scaling.Config(preset="ci", seed=5)
    assert config.seeds == tuple(5 + k for k in range(bound_scaling.SIZES["ci"]["seeds"]))
    assert ("dsprites", 2) in config.cases()


def test_sizes_are_frozen_all_the_way_down_and_read_like_dicts():
    from lib.params import FrozenDict, frozen

    sizes = frozen({"grids": {1: {"views": 96}}, "cases": (("dsprites", {"d": 2}),)})
    assert isinstance(sizes["grids"][1], FrozenDict) and isinstance(sizes["cases"][0][1],
                                                                    FrozenDict)
    assert sizes == {"grids": {1: {"views": 96}}, "cases": (("dsprites", {"d": 2}),)}
    assert repr(sizes) == "{'grids': {1: {'views': 96}}, 'cases': (('dsprites', {'d': 2}),)}"
    assert dict(sizes["grids"][1], views=3) == {"views": 3}
    assert hash(sizes) == hash(frozen({"cases": (("dsprites", {"d": 2}),),
                                       "grids": {1: {"views": 96}}}))   # order does not matter
    for change in (lambda: sizes.__setitem__("x", 1), lambda: sizes["grids"].pop(1),
                   lambda: sizes.update(x=1), lambda: sizes.clear()):
        with pytest.raises(TypeError, match="FrozenDict cannot be changed"):
            change()


def test_values_in_reads_the_declared_names_of_a_namespace():
    namespace = dict(toy_manifolds.PARAMETERS.defaults, preset="ci", unrelated=3)
    values = toy_manifolds.PARAMETERS.values_in(namespace)
    assert list(values) == list(toy_manifolds.PARAMETERS.names) and values["preset"] == "ci"
    del namespace["radius"]
    with pytest.raises(ValueError, match="must define every parameter of chapter "
                                         "'toy-manifolds'.* Got no 'radius'"):
        toy_manifolds.PARAMETERS.values_in(namespace)


def test_nnk_chapter_takes_the_eigenvalue_chapters_full_config():
    from lib.studies import nnk_graphs

    with pytest.raises(TypeError, match="'autoencoders' parameter of autoencoder_codes must be "
                                        "a lib.studies.eigenvalues.Config"):
        nnk_graphs.autoencoder_codes(nnk_graphs.Config(preset="ci"), None)


def test_a_config_class_cannot_declare_fields_of_its_own():
    from lib.params import ChapterConfig

    with pytest.raises(TypeError, match="must not define 'radius'"):
        class Config(ChapterConfig, parameters=toy_manifolds.PARAMETERS,
                     sizes=toy_manifolds.SIZES):
            radius: float = 2.0


@pytest.mark.parametrize("study_name", ["bound_scaling", "layer_geometry", "eigenvalues",
                                        "nnk_graphs"])
def test_every_chapter_that_trains_has_a_device_parameter(study_name):
    """Default "cpu"; "cuda" refused, naming the parameter and the chapter, without a GPU."""
    import importlib

    import torch

    study = importlib.import_module(f"lib.studies.{study_name}")
    assert study.PARAMETERS.defaults["device"] == "cpu"
    assert study.Config().device == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=f"'device' parameter of chapter "
                                             f"'{study.PARAMETERS.chapter}' must be 'cpu' on a "
                                             f"machine where torch sees no CUDA"):
            study.Config(device="cuda")
