"""The training engine (lib.models.training) and ensemble training (lib.models.ensemble).

Truths: least squares and the Eckart-Young bound (the best rank-1 linear autoencoder
loses the smaller eigenvalues of the covariance); the step budget; bit-identity of
seeded CPU runs; an ensemble equals its members trained one by one, up to the rounding
of batched against unbatched matrix products.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from lib.models import Autoencoder, AutoencoderSpec, TrainingSpec, train_autoencoder
from lib.models._shared import seeds as split_seeds
from lib.models.ensemble import train_ensemble
from lib.models.training import Convergence, train


def mse(model, batch, step):
    return torch.nn.functional.mse_loss(model(batch[0]), batch[-1])


def reconstruction(model, batch, step):
    """Autoencoder loss; with ``augment`` the noisy input is batch[-1], the target batch[0]."""
    return torch.nn.functional.mse_loss(model(batch[-1]), batch[0])


def line(init_seed):
    """A 1 -> 1 linear map whose weights come from the seed's stream."""
    layer = torch.nn.utils.skip_init(torch.nn.Linear, 1, 1, dtype=torch.float64)
    generator = torch.Generator().manual_seed(init_seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(-1, 1, generator=generator)
    return layer


def regression():
    x = torch.linspace(-1, 1, 64, dtype=torch.float64)[:, None]
    return x, 3 * x + 0.5 * torch.cos(4 * x)


SMALL_AE = AutoencoderSpec(input_dim=6, latent_dim=2, depth=3, widths=(8, 4), output="linear")


def small_autoencoder(init_seed):
    return Autoencoder(SMALL_AE, seed=init_seed).double()


def plane_data(n=96, seed=0):
    """Points near a 2-plane in R^6 (float64)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    x = z @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(n, 6))
    return torch.from_numpy(x)


def add_noise(batch, generator, step):
    x = batch[0]
    return (x, x + 0.01 * torch.randn(x.shape, generator=generator, dtype=x.dtype))


# --- convergence against closed forms -----------------------------------------------------


def test_linear_regression_converges_to_least_squares():
    x, y = regression()
    design = torch.cat([x, torch.ones_like(x)], dim=1)
    optimum = float((design @ torch.linalg.lstsq(design, y).solution - y).square().mean())
    rule = Convergence(rel_tol=1e-2, window=10, eval_every=20, max_steps=5_000)
    result = train(line, mse, (x, y), (x, y), criterion=rule, batch_size=16, learning_rate=0.1)
    assert result.record.stopped == "converged"
    assert result.record.steps < rule.max_steps
    # The optimum is a lower bound (validation = training rows); the rule stops once the
    # best loss gains < 1% over a window, so we accept up to 1% above it.
    assert optimum <= result.record.val_loss <= optimum * (1 + rule.rel_tol)


def test_linear_autoencoder_reaches_eckart_young_bound():
    x = plane_data()[:, :3]
    x = x - x.mean(0)
    eigenvalues = torch.linalg.eigvalsh(x.T @ x / len(x))       # ascending
    optimum = float(eigenvalues[:2].sum()) / 3                  # rank-1 code loses two

    def factory(init_seed):
        generator = torch.Generator().manual_seed(init_seed)
        model = torch.nn.Sequential(torch.nn.Linear(3, 1, bias=False, dtype=torch.float64),
                                    torch.nn.Linear(1, 3, bias=False, dtype=torch.float64))
        with torch.no_grad():
            for p in model.parameters():
                p.uniform_(-0.5, 0.5, generator=generator)
        return model

    rule = Convergence(rel_tol=1e-3, window=5, eval_every=25, max_steps=4_000)
    result = train(factory, mse, x, x, criterion=rule, batch_size=32, learning_rate=0.02)
    assert result.record.stopped == "converged"
    # Bound from below exactly; from above by the rule's tolerance plus Adam's
    # minibatch jitter, measured under 0.5% (2026-12): accept 2%.
    assert optimum * (1 - 1e-9) <= result.record.val_loss <= optimum * 1.02


def test_too_small_budget_reports_budget():
    x, y = regression()
    result = train(line, mse, (x, y), (x, y), criterion=Convergence(eval_every=2, max_steps=5),
                   batch_size=16, learning_rate=0.1)
    assert result.record.stopped == "budget"
    assert result.record.steps == 5
    assert result.history["step"].tolist() == [0, 2, 4, 5]


def test_min_steps_defers_convergence():
    x, y = regression()
    rule = Convergence(rel_tol=0.5, window=1, eval_every=10, min_steps=200, max_steps=1_000)
    result = train(line, mse, (x, y), (x, y), criterion=rule, batch_size=16, learning_rate=0.1)
    # The window of one evaluation must lie after min_steps: 200 and 210.
    assert result.record.stopped == "converged"
    assert result.record.steps == 210


def test_no_state_from_before_min_steps_is_restored():
    # A validation loss at its lowest on the plateau before min_steps (a beta-VAE at
    # the mean image) must not bring that state back.
    x, y = regression()
    steps = []

    def plateau_then_worse(model, data):
        steps.append(len(steps) * 10)
        return torch.tensor(0.0 if steps[-1] < 50 else 1.0 + steps[-1] / 1e3)

    rule = Convergence(rel_tol=0.5, window=1, eval_every=10, min_steps=50, max_steps=1_000)
    result = train(line, mse, (x, y), (x, y), criterion=rule, batch_size=16,
                   learning_rate=0.1, val_fn=plateau_then_worse)
    assert (result.record.stopped, result.record.steps) == ("converged", 60)
    assert result.record.best_step == 50
    assert result.record.val_loss == pytest.approx(1.05)


def test_zero_tolerance_trains_the_whole_budget():
    x, y = regression()
    rule = Convergence(rel_tol=0.0, window=1, eval_every=10, max_steps=100)
    result = train(line, mse, (x, y), (x, y), criterion=rule, batch_size=16, learning_rate=0.1)
    assert (result.record.stopped, result.record.steps) == ("budget", 100)


def test_non_finite_loss_stops_as_diverged_and_warns():
    x, y = regression()

    def explodes(model, batch, step):
        return mse(model, batch, step) * (math.inf if step >= 3 else 1.0)

    with pytest.warns(RuntimeWarning, match="diverged.*best state, of step 2, is kept"):
        result = train(line, explodes, (x, y), (x, y), val_fn=lambda m, d: mse(m, d, 0),
                       criterion=Convergence(eval_every=1, max_steps=50), batch_size=16)
    assert result.record.stopped == "diverged"
    assert result.record.steps == 3
    # Keeping the last state, the warning says so.
    with pytest.warns(RuntimeWarning, match="diverged.*the last state is kept"):
        train(line, explodes, (x, y), (x, y), val_fn=lambda m, d: mse(m, d, 0),
              criterion=Convergence(eval_every=1, max_steps=50), batch_size=16,
              restore_best=False)


def test_best_state_is_restored_and_record_is_json():
    x, y = regression()
    result = train(line, mse, (x, y), (x, y), criterion=Convergence(eval_every=5, max_steps=60),
                   batch_size=16, learning_rate=0.1)
    best = result.history.loc[result.history["best"]].iloc[-1]
    assert result.record.best_step == best["step"]
    with torch.no_grad():
        loss = float(mse(result.model, (x, y), 0))
    np.testing.assert_allclose(loss, best["val_loss"], rtol=1e-12)
    entry = json.loads(json.dumps(result.record.as_dict()))
    assert entry["stopped"] == "budget" and entry["steps"] == 60


def test_without_validation_data_trains_the_budget_and_keeps_the_last_state():
    x, y = regression()
    result = train(line, mse, (x, y), criterion=Convergence(max_steps=7), batch_size=16)
    assert (result.record.stopped, result.record.steps) == ("budget", 7)
    assert math.isnan(result.record.val_loss)


def test_without_validation_data_the_evaluations_still_run_on_schedule():
    """No stand-in loss needed: rows every eval_every steps with NaN val_loss, the hook called,
    the training loss exact (learning rate 1e-12: every batch sees the initial line, so each
    row's train_loss is the MSE of the untrained line up to 1e-12 relative), the last state
    kept, whatever the tolerance."""
    x, y = regression()
    seen = []
    rule = Convergence(rel_tol=0.5, window=1, eval_every=4, max_steps=12)  # 4 batches an epoch
    result = train(line, mse, (x, y), criterion=rule, batch_size=16, learning_rate=1e-12,
                   on_evaluation=lambda model, row: seen.append(row))
    assert result.history["step"].tolist() == [0, 4, 8, 12]
    assert result.history["val_loss"].isna().all() and not result.history["best"].any()
    assert pd.DataFrame(seen).equals(result.history)
    with torch.no_grad():
        untrained = float(mse(line(split_seeds(0)[0]), (x, y), 0))
    np.testing.assert_allclose(result.history["train_loss"].iloc[1:], untrained, rtol=1e-9)
    assert (result.record.stopped, result.record.steps, result.record.best_step) == (
        "budget", 12, 12)


def test_without_validation_data_a_non_finite_training_loss_stops_as_diverged():
    x, y = regression()
    y = y.clone()
    y[3] = math.nan
    with pytest.warns(RuntimeWarning, match="diverged"):
        result = train(line, mse, (x, y), criterion=Convergence(eval_every=2, max_steps=50),
                       batch_size=64)
    assert (result.record.stopped, result.record.steps) == ("diverged", 2)


# --- seeds and determinism ----------------------------------------------------------------


def test_seeded_runs_are_bit_identical_and_seeds_differ():
    x = plane_data()
    rule = Convergence(eval_every=6, max_steps=30)

    def run(seed):
        return train(small_autoencoder, reconstruction, x, x, criterion=rule, batch_size=16,
                     augment=add_noise, seed=seed)

    first, again, other = run(3), run(3), run(4)
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    assert first.history.equals(again.history)
    assert not torch.equal(first.model.decoder[0].weight, other.model.decoder[0].weight)


def test_engine_reproduces_train_autoencoder_bit_for_bit():
    """The engine as a caller of the existing loop: same batches, same Adam, same bits."""
    x = plane_data().float().clamp(-3, 3)
    spec = AutoencoderSpec(input_dim=6, latent_dim=2, depth=3, widths=(8, 4), output="linear")
    training = TrainingSpec(epochs=4, batch_size=20, learning_rate=1e-2, seed=5, validation=0.25)
    reference, history = train_autoencoder(spec, training, x, progress=False)

    init_seed, _, split_seed = split_seeds(training.seed)
    n_val = round(training.validation * len(x))
    held = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    x_train, x_val = x[held[n_val:]], x[held[:n_val]]
    per_epoch = math.ceil(len(x_train) / training.batch_size)
    rule = Convergence(rel_tol=0.0, eval_every=per_epoch, max_steps=training.epochs * per_epoch)
    result = train(lambda s: Autoencoder(spec, seed=s), reconstruction, x_train, x_val,
                   criterion=rule, batch_size=training.batch_size,
                   learning_rate=training.learning_rate, restore_best=False, seed=training.seed)
    for a, b in zip(reference.state_dict().values(), result.model.state_dict().values()):
        assert torch.equal(a, b)
    engine = result.history.iloc[1:]
    np.testing.assert_array_equal(engine["val_loss"], history["val_loss"])
    np.testing.assert_allclose(engine["train_loss"], history["train_loss"], rtol=1e-12)


# --- ensembles ----------------------------------------------------------------------------


def test_ensemble_equals_one_by_one():
    x = plane_data()
    seeds = [0, 1, 2]
    # Loose enough that the members stop at different steps (80, 15, 80), so the stack
    # shrinks mid-run and the survivors' optimiser state is carried over.
    rule = Convergence(rel_tol=0.05, window=2, eval_every=5, max_steps=80)
    options = dict(criterion=rule, batch_size=16, learning_rate=1e-2, augment=add_noise)
    together = train_ensemble(small_autoencoder, reconstruction, x, x, seeds=seeds, **options)
    alone = [train(small_autoencoder, reconstruction, x, x, seed=s, **options) for s in seeds]
    assert len({r.record.steps for r in together}) > 1
    for ours, theirs in zip(together, alone):
        assert ours.record.stopped == theirs.record.stopped
        assert (ours.record.steps, ours.record.best_step) == (theirs.record.steps,
                                                              theirs.record.best_step)
        # float64: batched and unbatched products round differently, by ~1e-16 per step;
        # measured max |difference| of the weights 3e-15 after 400 steps (2026-12): the
        # tolerances leave five orders of magnitude for other BLAS builds.
        np.testing.assert_allclose(ours.history["val_loss"], theirs.history["val_loss"],
                                   rtol=1e-10)
        for a, b in zip(ours.model.state_dict().values(), theirs.model.state_dict().values()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


def test_ensemble_is_deterministic_and_budget_is_reported():
    x = plane_data()
    rule = Convergence(rel_tol=0.0, eval_every=5, max_steps=12)
    first = train_ensemble(small_autoencoder, reconstruction, x, x, seeds=[0, 1], criterion=rule,
                           batch_size=16)
    again = train_ensemble(small_autoencoder, reconstruction, x, x, seeds=[0, 1], criterion=rule,
                           batch_size=16)
    assert [r.record.stopped for r in first] == ["budget", "budget"]
    for ours, theirs in zip(first, again):
        for a, b in zip(ours.model.state_dict().values(), theirs.model.state_dict().values()):
            assert torch.equal(a, b)


def test_ensemble_without_validation_data_equals_one_by_one_and_calls_the_hook():
    x = plane_data()
    rule = Convergence(rel_tol=0.1, window=1, eval_every=5, max_steps=12)
    seen = {0: [], 1: []}

    def hook(i, model, row):
        seen[i].append((row["step"], model.encoder[0].weight.detach().clone()))

    together = train_ensemble(small_autoencoder, reconstruction, x, seeds=[0, 1], criterion=rule,
                              batch_size=16, on_evaluation=hook)
    for i, seed in enumerate([0, 1]):
        alone_seen = []
        alone = train(small_autoencoder, reconstruction, x, criterion=rule, batch_size=16,
                      seed=seed, on_evaluation=lambda m, row: alone_seen.append(
                          (row["step"], m.encoder[0].weight.detach().clone())))
        assert together[i].record.stopped == alone.record.stopped == "budget"
        assert together[i].history["step"].tolist() == [0, 5, 10, 12]
        assert together[i].history["val_loss"].isna().all()
        # float64 rounding of batched products, as in test_ensemble_equals_one_by_one
        np.testing.assert_allclose(together[i].history["train_loss"].iloc[1:],
                                   alone.history["train_loss"].iloc[1:], rtol=1e-10)
        assert [s for s, _ in seen[i]] == [s for s, _ in alone_seen]
        for (_, a), (_, b) in zip(seen[i], alone_seen):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)
        for a, b in zip(together[i].model.state_dict().values(),
                        alone.model.state_dict().values()):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


# --- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize("field, value, error", [
    ("rel_tol", -1.0, ValueError), ("window", 0, ValueError), ("eval_every", 1.5, TypeError),
    ("max_steps", 0, ValueError), ("abs_tol", "0", TypeError)])
def test_convergence_rejects_bad_fields_by_name(field, value, error):
    with pytest.raises(error, match=f"'{field}' parameter of Convergence"):
        Convergence(**{field: value})


def test_min_steps_above_budget_is_refused():
    with pytest.raises(ValueError, match="'min_steps' parameter of Convergence"):
        Convergence(max_steps=10, min_steps=11)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"criterion": "converge"}, TypeError, "criterion"),
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"schedule": 0.5}, TypeError, "schedule"),
    ({"seed": -1}, ValueError, "seed"),
    ({"device": "nowhere"}, ValueError, "device"),
])
def test_train_rejects_bad_options_by_name(kwargs, error, name):
    x, y = regression()
    options = {"criterion": Convergence(max_steps=1), **kwargs}
    with pytest.raises(error, match=f"'{name}' parameter of train"):
        train(line, mse, (x, y), **options)


def test_train_rejects_bad_data_and_models_by_name():
    x, y = regression()
    rule = Convergence(max_steps=1)
    with pytest.raises(ValueError, match="'train_data' parameter of train"):
        train(line, mse, (x, y[:10]), criterion=rule)
    with pytest.raises(TypeError, match="'val_data' parameter of train"):
        train(line, mse, (x, y), [[1.0]], criterion=rule)
    with pytest.raises(TypeError, match="'loss_fn' parameter of train"):
        train(line, "mse", (x, y), criterion=rule)
    with pytest.raises(TypeError, match="'model' parameter of train"):
        train(lambda s: "not a module", mse, (x, y), criterion=rule)


def test_train_ensemble_rejects_bad_arguments_by_name():
    x, y = regression()
    rule = Convergence(max_steps=1)
    with pytest.raises(ValueError, match="'seeds' parameter of train_ensemble"):
        train_ensemble(line, mse, (x, y), seeds=[], criterion=rule)
    with pytest.raises(ValueError, match="'seeds' parameter of train_ensemble"):
        train_ensemble(line, mse, (x, y), seeds=[0, -2], criterion=rule)
    with pytest.raises(TypeError, match="'factory' parameter of train_ensemble"):
        train_ensemble(line(0), mse, (x, y), seeds=[0], criterion=rule)

    widths = iter([1, 2])

    def mixed(init_seed):
        return torch.nn.utils.skip_init(torch.nn.Linear, 1, next(widths), dtype=torch.float64)

    with pytest.raises(ValueError, match="'factory' parameter of train_ensemble"):
        train_ensemble(mixed, mse, (x, y), seeds=[0, 1], criterion=rule)


def test_metrics_become_history_columns_and_on_evaluation_sees_every_row():
    x, y = regression()
    seen = []

    def mean_abs_error(model, data):
        return {"mae": (model(data[0]) - data[1]).abs().mean()}

    def record(model, row):
        assert not model.training and not torch.is_grad_enabled()
        seen.append(row)

    rule = Convergence(rel_tol=0.0, eval_every=3, max_steps=7)
    result = train(line, mse, (x, y), (x, y), criterion=rule, batch_size=16,
                   learning_rate=0.1, metrics=mean_abs_error, on_evaluation=record,
                   restore_best=False)
    assert result.history["step"].tolist() == [0, 3, 6, 7]
    with torch.no_grad():
        final = float((result.model(x) - y).abs().mean())
    assert result.history["mae"].iloc[-1] == pytest.approx(final)
    assert pd.DataFrame(seen).equals(result.history)


def test_every_weight_cache_key_changes_with_the_device_type_only():
    from lib.models.autoencoder import cache_key
    from lib.models.beta_vae import BetaVAESpec, BetaVAETraining, beta_vae_cache_key
    from lib.models.cnn import ClassifierTraining, CNNSpec, checkpoint_key

    x = np.zeros((3, 32, 32))
    keys = {
        "autoencoder": lambda device: cache_key(
            AutoencoderSpec(input_dim=4, latent_dim=2, depth=3), TrainingSpec(epochs=1), "z",
            np.zeros((3, 4)), device=device),
        "beta-vae": lambda device: beta_vae_cache_key(
            BetaVAESpec(image_size=32), BetaVAETraining(max_steps=1), "z", x, device=device),
        "cnn": lambda device: checkpoint_key(CNNSpec(image_size=32), ClassifierTraining(epochs=1),
                                             x, device=device),
    }
    for name, key_of in keys.items():
        assert key_of("cpu") != key_of("cuda"), name
        assert key_of("cuda:0") == key_of("cuda:1") == key_of(torch.device("cuda")), name
        assert key_of("cpu") == key_of(torch.device("cpu")), name
