"""Plans of a run (lib.plans, ``python -m lib.book run ... --dry-run`` and ``plan``).

Truths: a stage of unequal units costs the sum of its units' costs (``Stage.of_units`` is
exact, not an average of products); ``plan_table`` runs a parallel stage's units
``workers`` at a time (ceil(left / workers) rounds) and a serial one a unit at a time,
and memory at once is per unit x units at once; the dry run and ``plan`` compute nothing
(no file appears under the cache) and take seconds; a run whose estimated peak exceeds
``--memory-budget`` is refused before anything is written.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from lib import book
from lib.plans import (PROCESS_BYTES, Speed, Stage, machine_speed, mlp_parameters, plan_table,
                       stage_seconds, training_steps)

SPEED = Speed(rate=1e9, overhead=1e-3)


def test_mlp_parameters_and_steps_count_weights_biases_and_batches():
    assert mlp_parameters((3, 4, 2)) == 3 * 4 + 4 + 4 * 2 + 2
    assert training_steps(257, 128, 3) == 9
    assert training_steps(0, 128, 3) == 0


def test_stage_of_unequal_units_costs_the_sum_of_its_units():
    rng = np.random.default_rng(0)
    units = [(float(rng.integers(0, 1000)), float(rng.uniform(1e3, 1e7)),
              float(rng.uniform(0, 1e9)), float(rng.uniform(0, 1e9))) for _ in range(7)]
    stage = Stage.of_units("train", units, cached=2)
    each = sum(Stage("one", 1, None, *unit).steps * (SPEED.overhead + unit[1] / SPEED.rate)
               + unit[2] / SPEED.rate for unit in units)
    assert stage.units * stage_seconds(stage, SPEED) == pytest.approx(each, rel=1e-12)
    assert stage.peak_bytes == max(u[3] for u in units)
    assert Stage.of_units("none", [], cached=None).units == 0


@pytest.mark.parametrize("kwargs, name", [
    (dict(units=-1, cached=None), "units"), (dict(units=2, cached=3), "cached"),
    (dict(units=2, cached=None, steps=-1.0), "steps"),
    (dict(units=2, cached=None, peak_bytes=math.nan), "peak_bytes")])
def test_bad_stage_is_refused_by_name(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=f"'{name}' parameter of Stage"):
        Stage("bad", **kwargs)


def test_plan_table_runs_parallel_units_workers_at_a_time_and_serial_ones_alone():
    parallel = Stage("cells", 10, 3, flops=2e9, peak_bytes=2**30, parallel=True)
    serial = Stage("figure", 4, None, flops=1e9, peak_bytes=2**29)
    table = plan_table([parallel, serial], SPEED, workers=3)
    cells, figure, total = (table.iloc[i] for i in range(3))
    assert cells["to compute"] == 7 and cells["seconds per unit"] == pytest.approx(2.0)
    assert cells["seconds"] == pytest.approx(2.0 * math.ceil(7 / 3))
    assert cells["peak MiB"] == pytest.approx(3 * (PROCESS_BYTES + 2**30) / 2**20)
    assert figure["seconds"] == pytest.approx(4.0) and figure["to compute"] == 4
    assert figure["peak MiB"] == pytest.approx((PROCESS_BYTES + 2**29) / 2**20)
    assert total["stage"] == "total" and total["seconds"] == pytest.approx(6.0 + 4.0)
    assert total["peak MiB"] == cells["peak MiB"]
    # On a cluster the parallel units use the workers' memory, not this machine's.
    remote = plan_table([parallel, serial], SPEED, remote=True)
    assert remote.iloc[0]["peak MiB"] == 0 and remote.iloc[0]["seconds"] == pytest.approx(14.0)
    assert remote.iloc[2]["peak MiB"] == figure["peak MiB"]


def test_machine_speed_is_positive_and_finite():
    speed = machine_speed()
    assert 1e7 < speed.rate < 1e14 and 0 < speed.overhead < 1.0


def _files(folder):
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


def test_every_chapter_has_a_plan_at_every_preset_in_seconds_computing_nothing(
        tmp_path, monkeypatch):
    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path / "cache"))
    machine_speed()                                   # measured once per process
    started = time.perf_counter()
    text = book.all_plans_text()
    assert time.perf_counter() - started < 30
    for slug in book.CHAPTERS:
        for preset in ("ci", "default", "paper"):
            assert any(line.split()[:2] == [slug, preset] for line in text.splitlines()), \
                (slug, preset)
    assert _files(tmp_path / "cache") == []


def test_paper_costs_more_than_default_and_default_more_than_ci(tmp_path, monkeypatch):
    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path / "cache"))
    for slug in book.CHAPTERS:
        seconds = [book.chapter_plan(slug, {"preset": p}, speed=SPEED)[0].iloc[-1]["seconds"]
                   for p in ("ci", "default", "paper")]
        assert seconds[0] < seconds[1] <= seconds[2], (slug, seconds)


def test_the_dry_run_counts_cells_already_in_the_sweep_cache(tmp_path, monkeypatch):
    from lib.store import cache_folder
    from lib.studies import eigenvalues as study
    from lib.sweeps import cell_key

    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path / "cache"))
    cells = study.model_cells(study.Config(preset="ci"))
    folder = (cache_folder(None, "sweeps", code_of="lib.studies.eigenvalues")
              / "eigenvalue-predictors.model_cell")
    folder.mkdir(parents=True)
    for cell in cells[:2]:
        (folder / f"{cell_key(cell)}.json").write_text("{}")
    table, _ = book.chapter_plan("eigenvalue-predictors", {"preset": "ci"}, speed=SPEED)
    row = table.iloc[0]
    assert (row["units"], row["cached"], row["to compute"]) == (len(cells), 2, len(cells) - 2)
    spread, _ = book.chapter_plan("eigenvalue-predictors",
                                  {"preset": "ci", "backend": "loky", "n_jobs": 2}, speed=SPEED)
    assert spread.iloc[0]["seconds"] == pytest.approx(row["seconds per unit"]
                                                      * math.ceil((len(cells) - 2) / 2))


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path / "cache"))
    assert book.main(["run", "eigenvalue-predictors", "-p", "preset", "paper", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "eigenvalue-predictors at preset 'paper'" in out and "nothing was computed" in out
    assert "train an autoencoder" in out and "Peak memory here" in out
    assert _files(tmp_path / "cache") == []


def test_a_run_over_its_memory_budget_is_refused_before_it_starts(tmp_path, monkeypatch, capsys):
    from conftest import copy_book_sources

    root = copy_book_sources(tmp_path)
    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as exit_:
        book.main(["--root", str(root), "run", "toy-manifolds", "-p", "preset", "ci",
                   "--memory-budget", "0.01"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "'--memory-budget' option of lib.book must be at least" in err and "0.0 GiB" in err
    assert not (root / "book" / "chapters" / "toy-manifolds.ipynb").exists()


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "lots"])
def test_a_bad_memory_budget_is_named(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        book.main(["run", "toy-manifolds", "--memory-budget", value])
    assert exit_.value.code == 2
    assert "'--memory-budget' option of lib.book must be a number of GiB in (0, inf)" in \
        capsys.readouterr().err


def test_the_memory_check_before_a_run_measures_no_speed(monkeypatch):
    """Peak memory does not depend on speed: an untimed plan has the same memory as a timed one
    and leaves every time NaN, so a plain run pays for no speed measurement."""
    import lib.plans as plans

    timed, _ = book.chapter_plan("eigenvalue-predictors", {"preset": "ci"}, speed=SPEED)
    monkeypatch.setattr(plans, "machine_speed",
                        lambda *a: pytest.fail("the memory check measured the machine"))
    untimed, _ = book.chapter_plan("eigenvalue-predictors", {"preset": "ci"}, timed=False)
    assert untimed["peak MiB"].tolist() == timed["peak MiB"].tolist()
    assert untimed["seconds per unit"].isna().all() and untimed["seconds"].isna().all()
