"""The eigenvalue-predictors study (lib.studies.eigenvalues): its comparison with the paper,
its summaries over seeds and its device parameter.

Truths and tolerances:

- The seed interval is Student's: three replicates a - s, a, a + s have mean a,
  sd s (ddof=1) and half-width t(0.975, 2) s / sqrt(3) = 2.4843 s, so a paper
  value 2.4 s away lies inside and one 2.6 s away outside (a margin of 3% of
  the half-width: an interval from ddof=0 (2.03 s) or from the normal quantile
  (1.13 s) fails). A single fit uses its own OLS interval, given here.
- Summaries over seeds equal scipy.stats.t.interval on the same values (1e-12).

- The parameter defaults to "cpu", and "cuda" is refused where torch sees no
  CUDA GPU, with an error naming the parameter and the chapter (lib.params.Device).
- An autoencoder trained on CUDA is measured where it lives; the same weights
  moved to the CPU must give the same reconstruction errors and Jacobian
  traces up to float32 rounding in a different summation order: about 1e-6
  relative per layer, so 1e-3 relative on the errors (differences of O(0.1)
  residuals) and 1e-3 of the largest trace on the traces (a sum of products
  that can cancel to near zero at single points).
"""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from lib.geometry.spectra import autoencoder_spectra
from lib.models import reconstruction_error
from lib.studies import eigenvalues as study


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_an_autoencoder_trained_on_cuda_is_measured_there_as_on_the_cpu(tmp_path):
    """One ci autoencoder (depth 4, d = 2, 5 epochs), trained and measured on CUDA."""
    config = study.Config(preset="ci", device="cuda")
    table = study.example_spectra(config, tmp_path, depth=4, latent_dim=2)
    model, data = study.trained_model(config, 4, 2, tmp_path)   # read back from the cache
    assert next(model.parameters()).device.type == "cuda"
    on_cpu = copy.deepcopy(model).cpu()
    x = data.flat()[table["point"].to_numpy()]
    np.testing.assert_allclose(table["mse"], reconstruction_error(on_cpu, x), rtol=1e-3)
    spectra = autoencoder_spectra(on_cpu.encoder, on_cpu.decoder, x)
    for column, expected in (("trace_I", spectra.trace_input), ("trace_L", spectra.trace_latent)):
        np.testing.assert_allclose(table[column], expected, rtol=1e-3,
                                   atol=1e-3 * np.abs(expected).max())


COEFFICIENTS = ("Intercept", "slope", "test_ind", "interaction", "test_slope")
PAPER_LATENT_LOG_OMEGA_D2 = {"Intercept": -0.0144, "slope": -0.0897, "test_ind": 0.017,
                             "interaction": 0.0066, "test_slope": -0.083}   # Table 1, d = 2


def fits_around(paper, offsets, spread=0.01, replicates=3):
    """Regression rows whose coefficients sit at paper + offset * spread, -/+ spread."""
    rows = []
    for r, step in zip(range(replicates), (-1, 0, 1)):
        row = {"depth": 4, "latent_dim": 2, "replicate": r, "space": "latent",
               "predictor": "log omega"}
        for name in COEFFICIENTS:
            centre = paper[name] + offsets[name] * spread
            row[name] = centre + step * spread
            row[f"{name}_low"], row[f"{name}_high"] = row[name] - 1, row[name] + 1
        rows.append(row)
    return pd.DataFrame(rows)


def test_paper_tables_compare_every_coefficient_with_a_t_interval_over_seeds():
    offsets = {"Intercept": 2.4, "slope": -2.4, "test_ind": 2.6, "interaction": -2.6,
               "test_slope": 0.0}
    table = study.paper_tables(fits_around(PAPER_LATENT_LOG_OMEGA_D2, offsets))
    table = table.set_index("coefficient")
    assert list(table.index) == list(COEFFICIENTS)
    assert (table["n"] == 3).all() and (table["table"] == 1).all()
    half = stats.t.ppf(0.975, 2) * 0.01 / np.sqrt(3)
    np.testing.assert_allclose(table["high"] - table["ours"], half, rtol=1e-12)
    for name in COEFFICIENTS:
        assert table.loc[name, "paper"] == PAPER_LATENT_LOG_OMEGA_D2[name]
        assert table.loc[name, "inside"] == (abs(offsets[name]) < 2.5), name
    counts = study.inside_counts(table.reset_index())
    assert counts.loc["all"].tolist() == [5, 3]
    assert counts.loc["test_ind"].tolist() == [1, 0]


def test_the_page_view_of_a_paper_table_is_one_row_per_coefficient_and_d():
    """Long, so that it fits the page: the paper's coefficient order, inside as yes/no/–."""
    offsets = {"Intercept": 2.4, "slope": -2.4, "test_ind": 2.6, "interaction": -2.6,
               "test_slope": 0.0}
    comparison = study.paper_tables(fits_around(PAPER_LATENT_LOG_OMEGA_D2, offsets))
    unknown = comparison.assign(latent_dim=3, paper=np.nan, inside=False)
    view = study.paper_table_view(pd.concat([unknown, comparison]), 1)
    assert list(view.columns) == ["space", "coefficient", "d", "ours", "95% interval",
                                  "paper", "inside"]
    assert list(view["coefficient"]) == [name for name in COEFFICIENTS for _ in (2, 3)]
    assert list(view["d"]) == [2, 3] * len(COEFFICIENTS)
    known = view[view["d"] == 2].set_index("coefficient")
    assert [known.loc[name, "inside"] for name in COEFFICIENTS] == \
        ["yes" if abs(offsets[name]) < 2.5 else "no" for name in COEFFICIENTS]
    assert (view.loc[view["d"] == 3, "inside"] == "–").all()
    row = comparison.set_index("coefficient").loc["slope"]
    assert known.loc["slope", "95% interval"] == f"[{row['low']:.3g}, {row['high']:.3g}]"
    assert study.paper_table_view(comparison, 2).empty


def test_a_single_seed_is_compared_through_its_own_fit_interval():
    fits = fits_around(PAPER_LATENT_LOG_OMEGA_D2, dict.fromkeys(COEFFICIENTS, 50.0),
                       replicates=1)   # 0.5 away, each fit's interval +-1: all inside
    table = study.paper_tables(fits)
    assert (table["n"] == 1).all() and table["inside"].all()
    np.testing.assert_allclose(table["high"] - table["low"], 2.0)


def test_length_summary_is_a_t_interval_over_seeds_per_epoch_and_the_kept_state():
    rng = np.random.default_rng(0)
    rows = []
    for r, best in enumerate((30, 34, 41)):
        for stage, epoch in (("epoch", 5), ("epoch", 20), ("kept", best)):
            rows.append({"latent_dim": 5, "replicate": r, "stage": stage, "epoch": epoch,
                         "statistic": "s", "value": rng.normal()})
    length = pd.DataFrame(rows)
    summary = study.length_summary(length)
    assert summary["epoch"].tolist() == [5.0, 20.0, 35.0]      # kept: the mean best epoch
    groups = [length[length["epoch"] == 5], length[length["epoch"] == 20],
              length[length["stage"] == "kept"]]
    for expected, (_, got) in zip(groups, summary.iterrows()):
        values = expected["value"].to_numpy()
        low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(),
                                     scale=stats.sem(values))
        np.testing.assert_allclose([got["mean"], got["low"], got["high"]],
                                   [values.mean(), low, high], rtol=1e-12)


def test_bad_comparison_input_is_refused_by_name():
    with pytest.raises(ValueError, match="'epoch' parameter of autoencoder_checkpoint"):
        from lib.models.autoencoder import AutoencoderSpec, TrainingSpec, autoencoder_checkpoint
        autoencoder_checkpoint(AutoencoderSpec(input_dim=4, latent_dim=2, depth=3),
                               TrainingSpec(epochs=3), "x", np.zeros((3, 4)), 4, cache_dir="/tmp")


# --- the MSE bound under orthonormal eigenvectors -------------------------------------------
# Truths: for a symmetric J_I (orthonormal eigenvectors) rho is the exact first-order term
# |(J_I - I) v| (rounding: 1e-12), and for a linear map the first order is exact, so the bound
# |r(x + v)| <= |r(x)| + rho holds by the triangle inequality. For any J_I, rho equals the
# formula evaluated on the eigenpairs of the full N x N matrix (numpy.linalg.eig, a route that
# never uses the d x d product; 1e-10), and "first order" equals |(J - I) v| with the full
# autograd Jacobian of A (1e-10).


def orthonormal(n, d, seed):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.linalg.qr(rng.normal(size=(n, d)))[0])


def test_bound_is_the_exact_first_order_term_when_eigenvectors_are_orthonormal():
    w = orthonormal(8, 3, 0)
    scale = torch.tensor([1.7, 0.6, -0.3], dtype=torch.float64)
    rng = np.random.default_rng(1)
    x, v = rng.normal(size=(20, 8)), 0.3 * rng.normal(size=(20, 8))
    terms = study.bound_terms(lambda a: a @ w * scale, lambda z: z @ w.T, x, v)
    np.testing.assert_allclose(terms["rho"], terms["first order"], rtol=1e-12)
    assert (terms["orthogonality"] < 1e-12).all()
    assert (terms["residual moved"] <= terms["residual"] + terms["rho"] + 1e-12).all()


def test_bound_terms_match_the_full_eigendecomposition_of_a_non_normal_map():
    w = orthonormal(7, 2, 2)
    m = torch.tensor([[1.2, 0.9], [0.0, 0.4]], dtype=torch.float64)   # non-normal
    rng = np.random.default_rng(3)
    x, v = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    terms = study.bound_terms(lambda a: a @ w @ m.T, lambda z: z @ w.T, x, v)
    j = (w @ m @ w.T).numpy()                                           # J_I, 7 x 7
    lam, vectors = np.linalg.eig(j)
    keep = np.argsort(-np.abs(lam))[:2]
    lam, u = lam[keep], vectors[:, keep] / np.linalg.norm(vectors[:, keep], axis=0)
    for i, step in enumerate(v):
        c = u.conj().T @ step
        perp = step - (u @ c).real
        rho = np.sqrt(np.sum(np.abs(lam - 1) ** 2 * np.abs(c) ** 2) + perp @ perp)
        assert terms["rho"].iloc[i] == pytest.approx(rho, rel=1e-10)
        assert terms["first order"].iloc[i] == pytest.approx(np.linalg.norm(j @ step - step),
                                                             rel=1e-10)
    assert (terms["orthogonality"] > 0.1).all()
    assert not np.allclose(terms["rho"], terms["first order"], rtol=1e-3)


def test_first_order_term_uses_the_networks_full_jacobian():
    encoder = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(),
                                  torch.nn.Linear(5, 2)).double()
    decoder = torch.nn.Sequential(torch.nn.Linear(2, 5), torch.nn.Tanh(),
                                  torch.nn.Linear(5, 6)).double()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in [*encoder.parameters(), *decoder.parameters()]:
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64))
    rng = np.random.default_rng(4)
    x, v = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    terms = study.bound_terms(encoder, decoder, x, v)
    for i in range(3):
        full = torch.autograd.functional.jacobian(lambda a: decoder(encoder(a)),
                                                  torch.from_numpy(x[i])).numpy()
        assert terms["first order"].iloc[i] == pytest.approx(
            np.linalg.norm(full @ v[i] - v[i]), rel=1e-10)


def digits_of(counts):
    """A Digits set with ``counts[c]`` training and 2 test images of each class c."""
    from lib.datasets.mnist import Digits
    labels = np.concatenate([np.full(n + 2, c) for c, n in enumerate(counts)])
    split = np.concatenate([["train"] * n + ["test"] * 2 for n in counts])
    return Digits(np.zeros((len(labels), 2, 2)), labels, split, "demo")


def test_training_subsets_are_nested_stratified_shares_of_the_training_digits():
    counts = [40, 41, 7, 100, 1, 33, 50, 60, 70, 80]
    data = digits_of(counts)
    quarter, half = (study.training_subset(data, f, seed=3) for f in (0.25, 0.5))
    assert set(quarter) <= set(half) and (data.split[half] == "train").all()
    for c, n in enumerate(counts):
        assert (data.labels[quarter] == c).sum() == max(1, round(0.25 * n)), c
        assert (data.labels[half] == c).sum() == max(1, round(0.5 * n)), c
    np.testing.assert_array_equal(study.training_subset(data, 0.25, seed=3), quarter)
    assert not np.array_equal(study.training_subset(data, 0.25, seed=4), quarter)
    every = study.training_subset(data, 1.0, seed=3)
    np.testing.assert_array_equal(every, np.flatnonzero(data.split == "train"))


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_a_share_outside_0_1_is_refused_by_name(fraction):
    with pytest.raises(ValueError, match="'fraction' parameter of training_subset"):
        study.training_subset(digits_of([4] * 10), fraction, seed=0)


def size_rows(statistic, per_doubling, at_full, n_full=4000, offsets=(-0.1, 0.0, 0.1)):
    """Three seeds whose statistic moves by per_doubling + offset per doubling of n, and
    sits at at_full + offset / 10 with all n_full digits (the offsets sum to 0)."""
    rows = []
    for r, offset in enumerate(offsets):
        for n in (n_full // 4, n_full // 2, n_full):
            value = at_full + offset / 10 + (per_doubling + offset) * np.log2(n / n_full)
            rows.append({"latent_dim": 20, "replicate": r, "fraction": n / n_full,
                         "n_train": n, "stopped": "converged", "epochs": 9,
                         "statistic": statistic, "value": value})
    return pd.DataFrame(rows)


def test_size_trends_recover_the_change_per_doubling_and_extrapolate_on_the_line():
    size = size_rows("test slope, trace, latent", per_doubling=0.3, at_full=1.0)
    trend = study.size_trends(size, target=64_000).iloc[0]
    slopes = 0.3 + np.array([-0.1, 0.0, 0.1])
    low, high = stats.t.interval(0.95, 2, loc=slopes.mean(), scale=stats.sem(slopes))
    np.testing.assert_allclose([trend["per doubling"], trend["low"], trend["high"]],
                               [0.3, low, high], rtol=1e-12)
    assert trend["doublings to target"] == pytest.approx(4.0)        # 4,000 -> 64,000
    assert trend["at target"] == pytest.approx(1.0 + 0.3 * 4.0)


def test_an_extrapolated_count_or_error_stops_at_zero_and_a_share_at_one():
    size = pd.concat([size_rows("small eigenvalues, latent", -2.0, at_full=3.0),
                      size_rows("test MSE", -0.01, at_full=0.02),
                      size_rows("omega < 0, latent, test", 0.2, at_full=0.5),
                      size_rows("test slope, trace, latent", -0.5, at_full=0.1)])
    trends = study.size_trends(size).set_index("statistic")["at target"]
    assert trends["small eigenvalues, latent"] == 0.0
    assert trends["test MSE"] == 0.0
    assert trends["omega < 0, latent, test"] == 1.0
    assert trends["test slope, trace, latent"] < 0      # a slope may be negative


def test_size_summary_is_a_t_interval_over_seeds_per_share():
    size = size_rows("test MSE", per_doubling=-0.01, at_full=0.02)
    summary = study.size_summary(size)
    assert summary["n_train"].tolist() == [1000, 2000, 4000]
    for (_, got), n in zip(summary.iterrows(), (1000, 2000, 4000)):
        values = size.loc[size["n_train"] == n, "value"].to_numpy()
        low, high = stats.t.interval(0.95, 2, loc=values.mean(), scale=stats.sem(values))
        np.testing.assert_allclose([got["mean"], got["low"], got["high"]],
                                   [values.mean(), low, high], rtol=1e-12)


def test_the_per_doubling_view_has_a_column_per_d_and_the_interval_in_each_cell():
    size = pd.concat([size_rows("test MSE", -0.01, at_full=0.02),
                      size_rows("test MSE", -0.02, at_full=0.03).assign(latent_dim=2)])
    view = study.size_trend_view(study.size_trends(size))
    assert list(view.columns) == ["d = 2", "d = 20"] and list(view.index) == ["test MSE"]
    assert view.loc["test MSE", "d = 20"].startswith("-0.01 [")
    assert view.loc["test MSE", "d = 2"].startswith("-0.02 [")


# --- the sweep on a Dask cluster --------------------------------------------------------


def _chapter_tables(config, root):
    kwargs = dict(models_dir=root / "models", sweep_dir=root / "sweeps")
    return {"points": study.point_tables(config, progress=False, **kwargs),
            "length": study.training_length(config, **kwargs),
            "size": study.training_size(config, **kwargs)}


def test_the_paper_grid_is_one_independent_cell_per_autoencoder():
    """Spreading the paper preset needs nothing but its cells: one per network, all distinct."""
    from lib.sweeps import cell_key

    sizes = study.SIZES["paper"]
    paper = study.Config(preset="paper")
    cells, shares = study.model_cells(paper), study.size_cells(paper)
    dims, depths = len(sizes["latent_dims"]), len(sizes["depths"])
    assert len(cells) == dims * (depths - 1) + dims * sizes["seeds"]       # 19 x 2 + 19 x 3
    assert len(shares) == len(sizes["size_dims"]) * sizes["seeds"] * (
        len(sizes["size_fractions"]) - 1)
    assert len({cell_key(c) for c in cells + shares}) == len(cells) + len(shares)
    assert all(c["preset"] == "paper" and c["device"] == "cpu" for c in cells + shares)


@pytest.mark.slow
def test_the_ci_sweep_on_two_dask_workers_in_their_own_folders_gives_the_sequential_tables(
        tmp_path, dask_scheduler):
    """Two ``dask worker`` processes, each with its own working folder and book cache, run the
    chapter's ci sweep; the tables equal the sequential run's, and the weights the workers
    trained come back, byte for byte, into this process's weight cache."""
    from conftest import start_worker

    sequential = _chapter_tables(study.Config(preset="ci"), tmp_path / "sequential")
    workers = [tmp_path / name for name in ("worker-a", "worker-b")]
    with start_worker(dask_scheduler, folder=workers[0],
                      env={"MANIFOLD_BOOK_CACHE": str(workers[0] / "cache")}), \
            start_worker(dask_scheduler, folder=workers[1],
                         env={"MANIFOLD_BOOK_CACHE": str(workers[1] / "cache")}):
        config = study.Config(preset="ci", backend="dask", scheduler=dask_scheduler)
        spread = _chapter_tables(config, tmp_path / "dask")
    for name, table in sequential.items():
        pd.testing.assert_frame_equal(spread[name], table, check_exact=True)
    weights = sorted(p.name for p in (tmp_path / "sequential" / "models").glob("*.pt"))
    assert weights and weights == sorted(p.name for p in (tmp_path / "dask" / "models").glob("*.pt"))
    for name in weights:
        assert ((tmp_path / "dask" / "models" / name).read_bytes()
                == (tmp_path / "sequential" / "models" / name).read_bytes())
    # The workers kept nothing in their own caches or folders: their files went to the client.
    assert not any(folder.joinpath("cache").exists() for folder in workers)


def test_cuda_is_checked_on_the_cluster_workers_when_a_scheduler_is_given(monkeypatch):
    """A login node without a GPU may send cuda cells to a cluster; run locally it may not."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = study.Config(preset="ci", device="cuda", backend="dask",
                          scheduler="tcp://10.0.0.5:8786")
    assert config.device == "cuda"
    with pytest.raises(ValueError, match="'device' parameter of chapter 'eigenvalue-predictors'"):
        study.Config(preset="ci", device="cuda", backend="dask")
