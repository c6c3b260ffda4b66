"""The store: cache folder, fingerprints of code and data, atomic writes.

Truths: the hashes are SHA-256 (hashlib) of the documented bytes, so they are
checked against hashlib itself; the fingerprints are checked on a copy of
``lib`` in a temporary folder, edited there.
"""

import hashlib
import shutil

import numpy as np
import pytest
import torch

from lib import store


@pytest.fixture
def lib_copy(tmp_path, monkeypatch):
    """A copy of lib under tmp_path, which the fingerprints read instead of the real one."""
    shutil.copytree(store.PROJECT_ROOT / "lib", tmp_path / "lib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(store, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(store, "__file__", str(tmp_path / "lib" / "store.py"))
    return tmp_path / "lib"


def touch(folder, relative):
    with open(folder / relative, "a") as handle:
        handle.write("\n# edited\n")


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(store.CACHE_ENV, str(tmp_path))
    assert store.cache_dir() == tmp_path
    monkeypatch.delenv(store.CACHE_ENV)
    assert store.cache_dir() == store.PROJECT_ROOT / "data" / "cache"


def test_library_fingerprint_follows_computing_code_but_not_figures(lib_copy):
    """Editing a figure redraws without recomputing; editing a study recomputes."""
    before = store.library_fingerprint()
    assert len(before) == 12 and store.library_fingerprint() == before
    touch(lib_copy, "figures/_style.py")
    assert store.library_fingerprint() == before
    touch(lib_copy, "studies/toy_manifolds.py")
    assert store.library_fingerprint() != before


def test_code_fingerprint_follows_what_a_study_imports(lib_copy):
    """A sweep keyed on code_fingerprint recomputes when code it reaches changes (an
    estimator it imports lazily inside a function, a module two imports away) and not
    when another chapter or a figure changes."""
    study = "lib.studies.bound_scaling"
    before = store.code_fingerprint(study)
    assert len(before) == 12 and store.code_fingerprint(study) == before
    for unrelated in ("studies/eigenvalues.py", "figures/bound_scaling.py", "graphs/nnk.py",
                      "studies/__init__.py"):
        touch(lib_copy, unrelated)
        assert store.code_fingerprint(study) == before, unrelated
    touch(lib_copy, "models/beta_vae.py")          # imported inside a function of the study
    after_model = store.code_fingerprint(study)
    assert after_model != before
    touch(lib_copy, "neighbors.py")                # reached through lib.estimators.projection
    assert store.code_fingerprint(study) != after_model
    with pytest.raises(ValueError, match="'module' parameter of code_fingerprint"):
        store.code_fingerprint("lib.studies.no_such_chapter")


def test_code_fingerprint_changes_with_an_imported_module(lib_copy):
    """The store is reached by the sweeps it keys: editing it changes their fingerprint."""
    before = store.code_fingerprint("lib.sweeps")
    touch(lib_copy, "store.py")
    assert store.code_fingerprint("lib.sweeps") != before


def test_digest_is_sha256_of_the_parts_in_order():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = hashlib.sha256(b"head" + array.tobytes())
    assert store.digest("head", array) == expected.hexdigest()
    assert store.digest(b"head", torch.from_numpy(array)) == expected.hexdigest()
    # A transposed (non-contiguous) array is hashed in C order, as tobytes() gives it.
    assert store.digest(array.T, length=24) == hashlib.sha256(array.T.tobytes()).hexdigest()[:24]
    assert store.digest(store.canonical_json({"b": 1, "a": [2.5]}), length=24) == \
        hashlib.sha256(b'{"a": [2.5], "b": 1}').hexdigest()[:24]
    with pytest.raises(TypeError, match="'parts' parameter of digest"):
        store.digest(3)


def test_write_atomic_replaces_the_whole_file(tmp_path):
    path = tmp_path / "entry.json"
    store.write_atomic(path, lambda handle: handle.write(b"old"))
    store.write_atomic(path, lambda handle: handle.write(b"new and longer"))
    assert path.read_bytes() == b"new and longer"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]


def test_write_atomic_leaves_no_partial_file_when_the_writer_raises(tmp_path):
    path = tmp_path / "weights.pt"

    def half_then_fail(handle):
        handle.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.write_atomic(path, half_then_fail)
    assert list(tmp_path.iterdir()) == []
    # An earlier complete file survives a failed rewrite untouched.
    store.write_atomic(path, lambda handle: handle.write(b"complete"))
    with pytest.raises(OSError, match="disk full"):
        store.write_atomic(path, half_then_fail)
    assert path.read_bytes() == b"complete" and [p.name for p in tmp_path.iterdir()] == [path.name]
