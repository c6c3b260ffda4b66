"""The bound-scaling study: sampler, rates on closed-form manifolds, backends, chapter sizes."""

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lib.datasets.toy import Torus
from lib.sampling import volume_weighted_subset
from lib.studies import bound_scaling as study
from lib.sweeps import run_cells


def test_volume_weighted_sampler_follows_the_torus_volume_element():
    """Picks per torus grid point over many seeds at a small fraction: chi-square against
    the volume element passes (p > 0.001), and against a uniform draw fails (p < 1e-6).

    One point per draw (round(0.005 * 144) = 1), so each draw is exactly one categorical
    draw with probabilities w / sum(w); 3,000 draws put about 21 in each of 144 cells.
    """
    torus = Torus(R=1.0, r=0.6)
    grid = torus.grid(12)
    weights = torus.volume_element(grid.points).reshape(-1)
    rng = np.random.default_rng(0)
    draws = 3000
    counts = np.zeros(weights.size)
    for _ in range(draws):
        counts[volume_weighted_subset(weights, 0.005, seed=rng)] += 1
    expected = draws * weights / weights.sum()
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    uniform = np.full(weights.size, draws / weights.size)
    assert stats.chisquare(counts, uniform).pvalue < 1e-6


@pytest.fixture(scope="module")
def ci_config():
    return study.Config(preset="ci")


@pytest.fixture
def toy_config(monkeypatch):
    """Toys on grids much larger than the training sets (fractions up to 0.4), three seeds:
    near fraction 1 a training set is the grid itself, whose largest gap shrinks faster
    than that of independent draws, which steepens the curve beyond the law."""
    sizes = dict(study.SIZES["ci"], toys=dict(circle=(1, 2000), sphere=(2, 100)),
                 fractions=(0.05, 0.1, 0.2, 0.4), seeds=3)
    monkeypatch.setitem(study.SIZES, "ci", sizes)
    return study.Config(preset="ci")


def _toy_errors(config, dataset, estimator):
    rows = []
    for fraction in config.sizes["fractions"]:
        for seed in config.seeds:
            rows += study.measure_cell(preset=config.preset, dataset=dataset,
                                       dim=config.sizes["toys"][dataset][0], estimator=estimator,
                                       fraction=fraction, seed=seed)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("dataset, dim, tolerance", [("circle", 1, 0.3), ("sphere", 2, 0.2)])
def test_first_order_exponent_is_minus_two_over_d_on_circle_and_sphere(toy_config, dataset, dim,
                                                                       tolerance):
    """Noise-free local planes err by the curvature term h^2 ~ n^(-2/d).

    Measured (2026-11-23): circle -1.85 (OLS 95% interval -2.04 to -1.66), sphere -0.99
    (-1.11 to -0.86); the tolerance leaves room for the Hausdorff proxy's max over 100
    test points.
    """
    errors = _toy_errors(toy_config, dataset, "local-1")
    table = study.exponent_table(errors, n_bootstrap=200)
    fit = table[table["error"] == "hausdorff"].iloc[0]
    assert fit["exponent"] == pytest.approx(-2 / dim, abs=tolerance)
    assert fit["theory_noiseless"] == pytest.approx(-2 / dim)


@pytest.mark.parametrize("dataset", ["circle", "sphere"])
def test_second_order_converges_faster_than_first(toy_config, dataset):
    """Order 2 beats -2/d by far: measured -3.6 (circle) and -2.1 (sphere), about -4/d, since
    a circle or sphere over its tangent plane is an even function (no cubic term)."""
    first, second = (study.exponent_table(_toy_errors(toy_config, dataset, estimator),
                                          n_bootstrap=200).query("error == 'hausdorff'")
                     for estimator in ("local-1", "local-2"))
    dim = toy_config.sizes["toys"][dataset][0]
    assert second["exponent"].iloc[0] < first["exponent"].iloc[0] - 0.8 / dim
    assert second["exponent"].iloc[0] < -3 / dim + 0.3


def test_dask_and_joblib_backends_give_identical_tables(ci_config, tmp_path):
    from distributed import LocalCluster

    todo = [cell for cell in study.cells(ci_config) if cell["dataset"] == "circle"][:12]
    tables = {}
    for backend in ("sequential", "loky"):
        results = run_cells(study.measure_cell, todo, backend=backend,
                            n_jobs=1 if backend == "sequential" else 2, progress=False)
        tables[backend] = pd.DataFrame([row for result in results for row in result])
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0") as cluster:
        results = run_cells(study.measure_cell, todo, backend="dask", scheduler=cluster,
                            progress=False)
    tables["dask"] = pd.DataFrame([row for result in results for row in result])
    pd.testing.assert_frame_equal(tables["sequential"], tables["loky"])
    pd.testing.assert_frame_equal(tables["sequential"], tables["dask"])


def test_error_table_caches_cells_so_a_new_fraction_computes_one_cell(tmp_path, monkeypatch):
    config = study.Config(preset="ci")
    sizes = dict(config.sizes, toys={"circle": (1, 400)},
                 dsprites=dict(config.sizes["dsprites"], grids={}),
                 turntable=dict(config.sizes["turntable"], grids={}),
                 local=("local-1",), vae=dict(config.sizes["vae"], cases=()), seeds=1)
    calls = []
    original = study.measure_cell

    def counting(**cell):
        calls.append(cell["fraction"])
        return original(**cell)

    monkeypatch.setattr(study, "measure_cell", counting)
    monkeypatch.setitem(study.SIZES, "ci", dict(sizes, fractions=(0.1, 1.0)))
    first = study.error_table(study.Config(preset="ci"), sweep_dir=tmp_path, models_dir=tmp_path,
                              progress=False)
    assert sorted(calls) == [0.1, 1.0] and len(first) == 2
    monkeypatch.setitem(study.SIZES, "ci", dict(sizes, fractions=(0.1, 0.5, 1.0)))
    second = study.error_table(study.Config(preset="ci"), sweep_dir=tmp_path,
                               models_dir=tmp_path, progress=False)
    assert sorted(calls) == [0.1, 0.5, 1.0] and len(second) == 3
    pd.testing.assert_frame_equal(second[second.fraction != 0.5].reset_index(drop=True), first)


def test_image_sample_is_the_interior_of_its_grid_with_positive_volume_element(ci_config):
    sample = study.manifold_sample(ci_config, "dsprites", 2)
    grid = study.dsprites.dsprites_grid(2, **ci_config.sizes["dsprites"]["grids"][2])
    assert sample.points.shape == (math.prod(grid.interior(1).shape), 32 * 32)
    assert np.all(sample.volume_element > 0)
    assert sample.reach > 0 and sample.volume > 0
    # On volume 1 the scale is V^(-1/d).
    assert sample.scale == pytest.approx(sample.volume ** -0.5)


def test_toy_samples_have_unit_volume_and_closed_form_reach(ci_config):
    sphere = study.manifold_sample(ci_config, "sphere", 2)
    assert sphere.volume == pytest.approx(1.0)
    assert sphere.reach == pytest.approx(1 / math.sqrt(4 * math.pi))
    assert sphere.scale == pytest.approx(1.0)


def test_config_rejects_bad_parameters():
    with pytest.raises(ValueError, match="'backend' parameter of chapter 'bound-scaling'"):
        study.Config(backend="spark")
    with pytest.raises(ValueError, match="'n_jobs' parameter of chapter 'bound-scaling'"):
        study.Config(n_jobs=0)
    with pytest.raises(TypeError, match="'scheduler' parameter of chapter 'bound-scaling'"):
        study.Config(scheduler=3)
    if not study.torch.cuda.is_available():
        with pytest.raises(ValueError, match="'device' parameter of chapter 'bound-scaling' must "
                                             "be 'cpu' on a machine where torch sees no CUDA"):
            study.Config(device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not study.torch.cuda.is_available(), reason="needs CUDA")
def test_cells_on_the_gpu_match_the_cpu():
    """Images (float32), where neighbours are not tied: on a toy grid equidistant neighbours
    are common and the CPU's k-d tree and the GPU's ranked search may break ties apart.
    Tolerance 2e-3: an error is a small difference of float32 pixels (measured on an H100,
    2026-11-23: Hausdorff within 1e-4, mean within 6.5e-4)."""
    for estimator in ("local-1", "local-2"):
        cell = dict(preset="ci", dataset="dsprites", dim=2, estimator=estimator, fraction=0.5,
                    seed=0)
        cpu, = study.measure_cell(**cell)
        gpu, = study.measure_cell(**cell, device="cuda")
        assert gpu["hausdorff"] == pytest.approx(cpu["hausdorff"], rel=2e-3)
        assert gpu["mean"] == pytest.approx(cpu["mean"], rel=2e-3)


def test_real_coil20_rows_come_from_the_loader_when_a_folder_is_given(tmp_path):
    """A COIL-20 folder written here (3 objects x 72 views of a blob that circles with the
    view angle, 128 x 128 PNG) adds coil20 cases; its d = 1 sample has 3 x 72 points and a
    cell measures a finite error."""
    from PIL import Image

    rows, cols = np.mgrid[0:128, 0:128]
    for obj in (1, 2, 3):
        for view in range(72):
            angle = 2 * np.pi * view / 72
            centre = 64 + 20 * np.array([np.sin(angle + obj), np.cos(angle + obj)])
            blob = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * 8.0**2))
            Image.fromarray((255 * blob).astype(np.uint8)).save(tmp_path / f"obj{obj}__{view}.png")
    config = study.Config(preset="ci", coil20=str(tmp_path))
    assert ("coil20", 1) in config.cases()
    sample = study.manifold_sample(config, "coil20", 1)
    assert sample.points.shape == (3 * 72, 32 * 32) and np.all(sample.volume_element > 0)
    row, = study.measure_cell(preset="ci", dataset="coil20", dim=1, estimator="local-1",
                              fraction=1.0, seed=0, coil20=str(tmp_path))
    assert 0 < row["mean"] <= row["hausdorff"] < 1


# --- the learned sweep (Fig. 4) ---------------------------------------------------------------


def test_learned_cells_hold_every_estimator_on_the_vae_data_and_nothing_of_the_rates_sweep():
    config = study.Config(preset="ci")
    vae = config.sizes["vae"]
    learned = study.learned_cells(config)
    assert {cell["block"] for cell in learned} == {"learned"}
    assert {cell["estimator"] for cell in learned} == {*config.sizes["local"], "beta-vae"}
    assert {(c["dataset"], c["dim"]) for c in learned} == set(map(tuple, vae["cases"]))
    assert len(learned) == len(vae["cases"]) * 3 * len(vae["fractions"]) * vae["seeds"]
    assert all("block" not in cell and cell["estimator"] != "beta-vae"
               for cell in study.cells(config))


def test_learned_cell_reports_the_mean_image_ratio_and_the_training_record(tmp_path):
    cell = dict(preset="ci", dataset="dsprites", dim=2, fraction=1.0, seed=0, block="learned",
                models_dir=str(tmp_path))
    local, = study.measure_cell(estimator="local-1", **cell)
    vae, = study.measure_cell(estimator="beta-vae", **cell)
    # A local projection through its training points nearly reproduces held-out grid images;
    # the ci beta-VAE (60 steps) is still at or worse than the mean image.
    assert 0 < local["test_ratio"] < 0.2 and local["stopped"] == ""
    assert vae["test_ratio"] > 0.5
    assert vae["stopped"] == "budget" and vae["steps"] == 60
    assert vae["train_seconds"] > 0 and math.isfinite(vae["val_ratio"])
    with pytest.raises(ValueError, match="'block' parameter of measure_cell"):
        study.measure_cell(estimator="local-1", **dict(cell, block="fig4"))


def test_vae_summary_counts_convergence_and_reads_the_interval():
    learned = pd.DataFrame([
        dict(dataset="a", dim=2, estimator="beta-vae", stopped="converged", fraction=0.5,
             test_ratio=0.1, train_ratio=0.095),
        dict(dataset="a", dim=2, estimator="beta-vae", stopped="budget", fraction=0.1,
             test_ratio=0.3, train_ratio=0.05),
        dict(dataset="b", dim=3, estimator="beta-vae", stopped="converged", fraction=1.0,
             test_ratio=0.15, train_ratio=0.1),
        dict(dataset="b", dim=3, estimator="local-1", stopped="", fraction=1.0,
             test_ratio=0.01, train_ratio=0.0)])
    exponents = pd.DataFrame([
        dict(error="hausdorff", dataset="a", dim=2, estimator="beta-vae", exponent=-0.1,
             ci_low=-0.3, ci_high=0.1),
        dict(error="hausdorff", dataset="a", dim=2, estimator="local-1", exponent=-1.0,
             ci_low=-1.1, ci_high=-0.9),
        dict(error="hausdorff", dataset="b", dim=3, estimator="beta-vae", exponent=-0.5,
             ci_low=-0.7, ci_high=-0.2),
        dict(error="hausdorff", dataset="b", dim=3, estimator="local-1", exponent=-0.6,
             ci_low=-0.7, ci_high=-0.5),
        dict(error="mean", dataset="b", dim=3, estimator="beta-vae", exponent=9.0,
             ci_low=8.0, ci_high=10.0)])
    summary = study.vae_summary(learned, exponents).set_index("dataset")
    assert summary.loc["a", ["runs", "converged"]].tolist() == [2, 1]
    assert summary.loc["a", "worst_test_ratio"] == 0.3 and not summary.loc["a", "learned"]
    assert summary.loc["b", "learned"] and summary.loc["b", "runs"] == 1
    assert not summary.loc["a", "falls"] and summary.loc["b", "falls"]
    assert summary.loc["b", "exponent"] == -0.5 and summary.loc["b", "local_exponent"] == -0.6
    # Smallest and largest training fraction of each data set (not the row order).
    assert summary.loc["a", ["smallest_train_ratio", "smallest_test_ratio",
                             "largest_train_ratio", "largest_test_ratio"]].tolist() == \
        [0.05, 0.3, 0.095, 0.1]
    assert summary.loc["b", "smallest_test_ratio"] == summary.loc["b", "largest_test_ratio"]
    # a: 0.05 < 0.8 * 0.3 memorises, |0.1 - 0.095| < 0.1 * 0.1 fits new points as its own;
    # b (one run): 0.1 < 0.8 * 0.15 memorises, and |0.15 - 0.1| is not within 10%.
    assert summary.loc["a", "memorises"] and summary.loc["a", "fit_limited"]
    assert summary.loc["b", "memorises"] and not summary.loc["b", "fit_limited"]


def test_claim_verdicts_read_each_rate_by_its_criterion():
    import pandas as pd

    exponents = pd.DataFrame({
        "error": "hausdorff", "estimator": "local-1", "dataset": ["a", "b", "c"], "dim": 2,
        "exponent": [-1.1, -0.9, -0.4], "ci_low": [-1.2, -1.0, -0.45],
        "ci_high": [-1.0, -0.8, -0.35], "theory_noiseless": -1.0, "theory_genovese": -0.5})
    complexity = pd.DataFrame({"n_required": [100.0, 50.0, 9.0],
                               "n_measured": [10.0, float("nan"), 9.0]})
    summary = pd.DataFrame({"dataset": ["x", "y"], "dim": [3, 4], "exponent": [-0.5, 0.1],
                            "ci_low": [-0.8, -0.2], "ci_high": [-0.2, 0.4]})
    table = study.claim_verdicts(exponents, complexity, summary)
    assert table["verdict"].tolist() == [
        "holds", "holds", "does not hold",              # the interval reaches -1 or not
        "does not hold",                                # c is flatter than -0.5
        "holds",                                        # 10x and 1x the points needed
        "holds", "inconclusive at these sizes"]         # the VAE exponents
    assert table["ours"].iloc[4] == "1 to 10 times the points needed"


# --- the plan of a run ---------------------------------------------------------------------

PRESETS = ("ci", "default", "paper")


@pytest.mark.parametrize("preset", PRESETS)
def test_plan_runs_every_cell_of_both_sweeps_and_is_built_at_once(preset):
    config = study.Config(preset=preset)
    start = time.perf_counter()
    stages = study.plan(config)
    assert time.perf_counter() - start < 1.0
    rates, vae, local = [stage for stage in stages if stage.parallel]
    assert rates.units == len(study.cells(config))
    assert vae.units + local.units == len(study.learned_cells(config))
    # The beta-VAEs train to their budget; the local projections do not train.
    assert vae.steps == config.sizes["vae"]["training"]["max_steps"]
    assert rates.steps == local.steps == 0 and rates.flops > 0 and local.flops > 0
    renders = [stage for stage in stages if not stage.parallel]
    assert [stage.units for stage in renders] == [len(config.sizes["vae"]["cases"]),
                                                  len(config.cases())]


def test_plan_counts_the_cells_in_the_sweep_cache(tmp_path, monkeypatch):
    from lib.store import cache_folder
    from lib.sweeps import cell_key

    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path))
    config = study.Config(preset="ci")

    def cached():
        return [stage.cached for stage in study.plan(config) if stage.parallel]

    assert cached() == [0, 0, 0] and not any(tmp_path.iterdir())    # a plan writes nothing
    folder = cache_folder(None, "sweeps", code_of=study.__name__) / "bound-scaling.measure_cell"
    folder.mkdir(parents=True)
    vae = next(cell for cell in study.learned_cells(config) if cell["estimator"] == "beta-vae")
    for cell in (study.cells(config)[5], vae):
        (folder / f"{cell_key(cell)}.json").write_text(json.dumps({"cell": cell, "result": []}))
    assert cached() == [1, 1, 0]


def test_plan_costs_more_at_each_larger_preset_and_with_more_workers():
    from lib.plans import Speed, stage_seconds

    speed = Speed(rate=8e10, overhead=5e-4)
    plans = [study.plan(study.Config(preset=preset)) for preset in PRESETS]
    seconds = [sum(stage.units * stage_seconds(stage, speed) for stage in stages)
               for stages in plans]
    peaks = [max(stage.peak_bytes for stage in stages) for stages in plans]
    assert seconds[0] < seconds[1] < seconds[2] and peaks[0] <= peaks[1] <= peaks[2]
    # Each worker renders the data sets it meets: four workers render more than one.
    alone = plans[1][0]
    four = study.plan(study.Config(preset="default", backend="loky", n_jobs=4))[0]
    assert four.units == alone.units and four.flops > alone.flops
