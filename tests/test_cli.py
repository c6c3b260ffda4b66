"""The command line refuses bad input before any work: exit 2, one line naming it, nothing deleted.

Most cases call ``lib.book.main`` in this process (a study module is imported
once, so a case takes milliseconds); a few run ``python -m lib.book`` as a
user would. Each runs against a fake project root whose chapter folders hold
a sentinel file that a started run would delete.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from lib import book
from lib.datasets.coil20 import N_VIEWS, file_name
from lib.datasets.mnist import MNIST_FILES
from lib.sweeps import cell_key

PROJECT = Path(__file__).resolve().parents[1]
SENTINEL = "sentinel.txt"


@pytest.fixture
def root(tmp_path):
    """A minimal project: notebooks/<slug>.md, _config.yml, book/chapters/<slug>/sentinel.txt."""
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "_config.yml").write_text("title: fake\n")
    for slug in book.CHAPTERS:
        (project / "notebooks" / f"{slug}.md").write_text("# fake\n")
        outputs = project / "book" / "chapters" / slug
        outputs.mkdir(parents=True)
        (outputs / SENTINEL).write_text("kept")
    return project


def _coil20_folder(folder: Path, *, skip: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    for obj in (1, 2, 3):
        for view in range(N_VIEWS):
            if file_name(obj, view) != skip:
                (folder / file_name(obj, view)).touch()
    return folder


def _untouched(project: Path) -> None:
    for slug in book.CHAPTERS:
        assert (project / "book" / "chapters" / slug / SENTINEL).read_text() == "kept"
        assert not (project / "book" / "chapters" / f"{slug}.ipynb").exists()
        assert not (project / "notebooks" / f"{slug}.ipynb").exists()


def _refused(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_:
        book.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err          # one line
    return err


# (chapter, -p pairs, text the message must hold); {tmp} is a fresh folder, {file} a file.
LONG = "x" * 5000
CASES = [
    ("bound-scaling", [("device", "cuda")], "'device' parameter of chapter 'bound-scaling' must "
                                            "be 'cpu' on a machine where torch sees no CUDA GPU"),
    ("layer-geometry", [("device", "cuda")], "'device' parameter of chapter 'layer-geometry'"),
    ("bound-scaling", [("device", "tpu")], "'device' parameter of chapter 'bound-scaling' must "
                                           "be one of {'cpu', 'cuda'}. Got 'tpu'"),
    ("bound-scaling", [("coil20", "{tmp}/missing")], "which does not exist"),
    ("bound-scaling", [("coil20", "{file}")], "which is a file"),
    ("bound-scaling", [("coil20", LONG)], "(5000 characters), which is not a usable path"),
    ("bound-scaling", [("coil20", "{tmp}")], "lacks 'obj1__0.png'"),
    ("bound-scaling", [("coil20", "{coil_without_obj2__5}")], "lacks 'obj2__5.png'"),
    ("bound-scaling", [("backend", "dask"), ("scheduler", "not-an-address")],
     "'scheduler' parameter of chapter 'bound-scaling' must be a scheduler address host:port "
     "or scheme://host:port"),
    ("bound-scaling", [("backend", "dask"), ("scheduler", "tcp://10.0.0.5")], "'scheduler'"),
    ("bound-scaling", [("backend", "dask"), ("scheduler", "tcp://10.0.0.5:99999")], "'scheduler'"),
    ("bound-scaling", [("backend", "dask"), ("scheduler", "http://10.0.0.5:8786")], "'scheduler'"),
    ("bound-scaling", [("scheduler", "tcp://10.0.0.5:8786")],
     "'scheduler' parameter of chapter 'bound-scaling' must be '' (empty) unless backend is "
     "'dask'. Got 'tcp://10.0.0.5:8786' with backend 'sequential'"),
    ("bound-scaling", [("backend", "loky"), ("scheduler", "10.0.0.5:8786")], "backend 'loky'"),
    ("bound-scaling", [("n_jobs", "4")], "'n_jobs' parameter of chapter 'bound-scaling' must be "
                                         "1 with backend 'sequential'"),
    ("bound-scaling", [("backend", "dask"), ("scheduler", "10.0.0.5:8786"), ("n_jobs", "4")],
     "'n_jobs' parameter of chapter 'bound-scaling' must be 1 when a scheduler address"),
    ("eigenvalue-predictors", [("digits", "mnist")], "MNIST_DIR unset"),
    ("eigenvalue-predictors", [("n_jobs", "2")], "'n_jobs' parameter of chapter "
                                                 "'eigenvalue-predictors' must be 1 with backend "
                                                 "'sequential'"),
    ("eigenvalue-predictors", [("device", "cuda"), ("backend", "dask")],
     "'device' parameter of chapter 'eigenvalue-predictors' must be 'cpu' on a machine where "
     "torch sees no CUDA GPU"),
    ("representation-gap", [("scheduler", "tcp://10.0.0.5:8786")],
     "'scheduler' parameter of chapter 'representation-gap' must be '' (empty) unless backend "
     "is 'dask'. Got 'tcp://10.0.0.5:8786' with backend 'loky'"),
    ("representation-gap", [("digits", "mnist")], "MNIST_DIR unset"),
    ("toy-manifolds", [("radius", "-inf")], "'radius' parameter of chapter 'toy-manifolds' must "
                                            "be a float in [0.01, 100.0]. Got -inf"),
    ("toy-manifolds", [("radius", "inf")], "Got inf"),
    ("toy-manifolds", [("radius", "nan")], "'radius'"),
    ("toy-manifolds", [("seed", "1"), ("seed", "2")], "'seed' parameter of chapter "
                                                      "'toy-manifolds' must be given once. "
                                                      "Got '1' and then '2'"),
    ("toy-manifolds", [("colour", "red")], "Unknown parameter 'colour'"),
]


@pytest.mark.parametrize("chapter, pairs, expected", CASES,
                         ids=[f"{c}-{'-'.join(n for n, _ in p)}-{i}"
                              for i, (c, p, _) in enumerate(CASES)])
def test_bad_parameter_exits_2_naming_it_and_deletes_nothing(chapter, pairs, expected, root,
                                                             tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    (tmp_path / "a-file").write_text("x")
    slots = dict(tmp=str(tmp_path), file=str(tmp_path / "a-file"),
                 coil_without_obj2__5=str(_coil20_folder(tmp_path / "coil", skip="obj2__5.png")))
    argv = ["--root", str(root), "run", chapter]
    for name, value in pairs:
        argv += ["-p", name, value.format(**slots) if "{" in value else value]
    err = _refused(capsys, argv)
    assert expected in err
    _untouched(root)


def test_mnist_dir_without_the_files_names_the_first_missing(root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path))
    for name in list(MNIST_FILES.values())[:2]:
        (tmp_path / f"{name}.gz").touch()
    err = _refused(capsys, ["--root", str(root), "run", "eigenvalue-predictors",
                            "-p", "digits", "mnist"])
    assert "'digits' parameter of chapter 'eigenvalue-predictors'" in err
    assert "lacks 't10k-images-idx3-ubyte'" in err
    _untouched(root)


@pytest.mark.parametrize("argv_tail, expected", [
    (["-p", "seed"], "'seed' parameter of lib.book must be given a value (-p seed VALUE)"),
    (["-p", "seed", "-p", "radius", "2"], "'seed' parameter of lib.book must be given a value"),
    (["-p"], "-p option of lib.book must be followed by a parameter name and a value"),
])
def test_parameter_without_a_value_is_named(argv_tail, expected, root, capsys):
    err = _refused(capsys, ["--root", str(root), "run", "toy-manifolds", *argv_tail])
    assert expected in err
    _untouched(root)


@pytest.mark.parametrize("make, expected", [
    (lambda tmp: tmp / "nonexistent", "which does not exist"),
    (lambda tmp: (tmp / "a-file").write_text("x") and tmp / "a-file", "which is a file"),
    (lambda tmp: (tmp / "notebooks").mkdir() or tmp, "which lacks _config.yml"),
])
def test_root_must_be_a_project_folder(make, expected, tmp_path, capsys):
    bad = make(tmp_path)
    err = _refused(capsys, ["--root", str(bad), "run", "toy-manifolds"])
    assert "'--root' parameter of lib.book must be a project folder holding notebooks/ and " \
           "_config.yml" in err and expected in err


def test_root_must_hold_the_chapters_notebook(root, capsys):
    (root / "notebooks" / "toy-manifolds.md").unlink()
    err = _refused(capsys, ["--root", str(root), "run", "toy-manifolds"])
    assert "'--root' parameter" in err and "lacks notebooks/toy-manifolds.md" in err
    _untouched(root)


def test_cache_variable_naming_a_file_is_refused(root, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path / "a-file"))
    err = _refused(capsys, ["--root", str(root), "run", "toy-manifolds"])
    assert "MANIFOLD_BOOK_CACHE must name a folder" in err
    _untouched(root)


def test_relative_folders_are_taken_from_the_callers_directory(tmp_path, monkeypatch):
    """The kernel runs in book/chapters/<chapter>/: the runner hands it absolute paths."""
    from lib.studies import bound_scaling

    _coil20_folder(tmp_path / "coil")
    monkeypatch.chdir(tmp_path)
    values = bound_scaling.PARAMETERS.parse([("coil20", "coil")])
    assert values["coil20"] == str(tmp_path / "coil")
    monkeypatch.setenv("MNIST_DIR", "mnist-copy")
    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", "cache")
    with book._kernel_environment(tmp_path):
        import os

        assert os.environ["MNIST_DIR"] == str(tmp_path / "mnist-copy")
        assert os.environ["MANIFOLD_BOOK_CACHE"] == str(tmp_path / "cache")
    assert os.environ["MNIST_DIR"] == "mnist-copy"


def test_good_values_pass(tmp_path):
    from lib.studies import bound_scaling

    folder = str(_coil20_folder(tmp_path / "coil"))
    for pairs in ([("backend", "dask"), ("scheduler", "tcp://10.0.0.5:8786")],
                  [("backend", "dask"), ("scheduler", "[::1]:8786")],
                  [("backend", "dask"), ("scheduler", "scheduler-host:8786")],
                  [("backend", "dask"), ("n_jobs", "4")],
                  [("backend", "loky"), ("n_jobs", "2"), ("coil20", folder)]):
        bound_scaling.PARAMETERS.parse(pairs)
    assert bound_scaling.Config(coil20=folder).coil20 == folder


# --- as a user runs it ---------------------------------------------------------------------


def _cli(*argv, cwd=PROJECT):
    return subprocess.run([sys.executable, "-m", "lib.book", *argv], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_command_line_negative_infinity_is_a_value_not_an_option(root):
    result = _cli("--root", str(root), "run", "toy-manifolds", "-p", "radius", "-inf")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'radius' parameter of chapter 'toy-manifolds' must be a float" in result.stderr
    _untouched(root)


def test_command_line_nonexistent_root(tmp_path):
    result = _cli("--root", str(tmp_path / "nonexistent"), "run", "toy-manifolds")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'--root' parameter of lib.book" in result.stderr


def test_importing_the_runner_imports_no_torch():
    """The checks that need torch (a device other than the CPU) import it themselves."""
    script = "import sys, lib.book; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)


# --- bound-scaling cells are keyed by what they depend on -----------------------------------


def test_bound_scaling_cell_keys_hold_only_what_the_cell_depends_on(tmp_path, monkeypatch):
    import torch
    from lib.studies import bound_scaling

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    coil_a = str(_coil20_folder(tmp_path / "a"))
    coil_b = str(_coil20_folder(tmp_path / "b"))

    def keys(**options):
        config = bound_scaling.Config(preset="ci", **options)
        return {(c["dataset"], c["dim"], c["estimator"], c["fraction"], c["seed"],
                 c.get("block", "rates")): cell_key(c)
                for c in bound_scaling.cells(config) + bound_scaling.learned_cells(config)}

    plain, with_a, with_b = keys(), keys(coil20=coil_a), keys(coil20=coil_b)
    on_gpu = keys(coil20=coil_a, device="cuda")
    toy = next(k for k in plain if k[0] == "circle")
    vae = next(k for k in plain if k[2] == "beta-vae")
    coil = next(k for k in with_a if k[0] == "coil20")
    # coil20 reaches the COIL-20 cells alone; the device every cell (each runs there).
    assert plain[toy] == with_a[toy] == with_b[toy] != on_gpu[toy]
    assert set(plain) < set(with_a) and all(with_a[k] == plain[k] for k in plain)
    assert with_a[coil] != with_b[coil]
    assert with_a[coil] != on_gpu[coil]
    assert plain[vae] == with_a[vae] != on_gpu[vae]


def test_prose_command_lists_typed_numbers_and_fails_on_them(root, capsys):
    assert book.main(["--root", str(root), "prose"]) == 0
    slug = next(iter(book.CHAPTERS))
    (root / "notebooks" / f"{slug}.md").write_text("# fake\n\nThe slope is -2.23 here.\n")
    assert book.main(["--root", str(root), "prose"]) == 1
    assert capsys.readouterr().out == f"notebooks/{slug}.md:3: -2.23: The slope is -2.23 here.\n"
