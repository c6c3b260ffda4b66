"""MLP autoencoders: architecture, training, determinism, the weight cache, per-point MSE.

Truths and tolerances:

- Architecture: layer widths against the stand-in recipe (512, 256, 128, 64
  truncated to depth - 1), counted from the modules themselves.
- Learning: after 30 epochs on 300 of scikit-learn's 8 x 8 digits the
  reconstruction MSE must fall below 0.6 x the MSE of the best constant
  output, the mean image (a closed form: the mean per-pixel variance,
  computed here in numpy). Observed ratios, seeds 0-5: 0.35-0.51 (ReLU).
- The training loss is the MSE averaged over pixels and points: with
  SGD at lr = 1e-12 the model cannot move (steps ~1e-12 x O(1) gradients), so
  every epoch's loss must equal the untrained model's mean per-point error
  to float32 rounding, rtol 1e-5 (sums of ~50 x 64 float32 terms).
- reconstruction_error against a numpy float64 forward pass: 1e-12 relative
  when the model runs in float64 (rounding only), 1e-4 relative in float32
  (eps 6e-8 grown through three layers of at most 64 terms, then the
  difference A(x) - x, which loses up to 2 digits where A(x) ~ x).
- Jacobians under torch.func (forward mode) against reverse-mode autograd on
  a float64 model: the same products of the same numbers, 1e-12.
- Determinism and the cache round trip: bit-identical (torch.equal).
"""

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch.func import functional_call, jacfwd, vmap

from lib.datasets.mnist import load_digits_8x8
from lib.models import autoencoder as ae
from lib.models.autoencoder import (DEPTH_WIDTHS, Autoencoder, AutoencoderSpec, TrainingSpec,
                                    cache_key, reconstruction_error, train_autoencoder,
                                    trained_autoencoder)

SMALL = AutoencoderSpec(input_dim=64, latent_dim=8, depth=3, widths=(32, 16))
QUICK = TrainingSpec(epochs=30, batch_size=32, learning_rate=1e-2, seed=0)


# Small networks gain nothing from threads and suffer badly when the CPU is shared.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return load_digits_8x8().flat()[:300]


def numpy_forward(model, x):
    """A(x) in float64 numpy, from the weights alone."""
    activations = {"relu": lambda h: np.maximum(h, 0), "tanh": np.tanh,
                   "elu": lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0)))}
    act = activations[model.spec.activation]
    h = np.asarray(x, dtype=np.float64)
    for part in (model.encoder, model.decoder):
        linears = [m for m in part if isinstance(m, torch.nn.Linear)]
        for i, layer in enumerate(linears):
            h = h @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()
            if i < len(linears) - 1:
                h = act(h)
    return 1 / (1 + np.exp(-h)) if model.spec.output == "sigmoid" else h


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("depth", [3, 4, 5])
@pytest.mark.parametrize("latent_dim", [2, 10, 20])
def test_shapes_follow_the_stand_in_recipe(depth, latent_dim):
    spec = AutoencoderSpec(latent_dim=latent_dim, depth=depth)
    model = Autoencoder(spec)
    expected = (784, *(512, 256, 128, 64)[:depth - 1], latent_dim)
    for part, widths in ((model.encoder, expected), (model.decoder, expected[::-1])):
        linears = [m for m in part if isinstance(m, torch.nn.Linear)]
        assert len(linears) == depth
        assert [(m.in_features, m.out_features) for m in linears] == list(zip(widths[:-1],
                                                                              widths[1:]))
        assert all(isinstance(m, (torch.nn.Linear, torch.nn.ReLU, torch.nn.Sigmoid)) for m in part)
    assert isinstance(model.encoder[-1], torch.nn.Linear)          # linear latent layer
    assert isinstance(model.decoder[-1], torch.nn.Sigmoid)
    x = torch.rand(7, 784)
    z, y = model.encoder(x), model(x)
    assert z.shape == (7, latent_dim) and y.shape == (7, 784)
    assert bool(((y > 0) & (y < 1)).all())
    assert spec.hidden_widths == DEPTH_WIDTHS[depth]


def test_initial_weights_follow_pytorchs_uniform_law():
    layer = Autoencoder(AutoencoderSpec(depth=3)).encoder[0]        # 784 -> 512
    w = layer.weight.detach().double().numpy().ravel()
    bound = 1 / np.sqrt(784)
    assert np.abs(w).max() <= bound
    # Mean and variance of U(-b, b): 0 and b^2/3; 4 standard errors of n = 401,408 draws.
    n = w.size
    assert abs(w.mean()) < 4 * bound / np.sqrt(3 * n)
    assert abs(w.var() / (bound**2 / 3) - 1) < 4 * np.sqrt(0.8 / n)   # Var(w^2)/E(w^2)^2 = 4/5


@pytest.mark.parametrize("activation", ["relu", "elu", "tanh"])
def test_encoder_and_decoder_work_under_torch_func(activation):
    spec = dataclasses.replace(SMALL, activation=activation)
    model = Autoencoder(spec, seed=3).double()
    x = torch.rand(5, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for part, inputs in ((model.encoder, x), (model.decoder, model.encoder(x).detach())):
        params = {k: v.detach() for k, v in part.named_parameters()}
        batched = vmap(jacfwd(lambda v: functional_call(part, params, (v,))))(inputs)
        loop = torch.stack([torch.autograd.functional.jacobian(part, v) for v in inputs])
        torch.testing.assert_close(batched, loop, rtol=1e-12, atol=1e-12)


def test_training_beats_the_mean_image(digits):
    mean_image_mse = np.mean((digits - digits.mean(axis=0)) ** 2)
    model, history = train_autoencoder(SMALL, QUICK, digits, progress=False)
    assert history.columns.tolist() == ["epoch", "train_loss"]
    assert history["epoch"].tolist() == list(range(1, 31))
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]
    assert reconstruction_error(model, digits).mean() < 0.6 * mean_image_mse


def test_loss_is_mse_over_pixels_and_points(digits):
    # Batches of 7 out of 50 leave a short last batch: the epoch mean must weight by size.
    training = TrainingSpec(epochs=3, batch_size=7, learning_rate=1e-12, optimizer="sgd")
    model, history = train_autoencoder(SMALL, training, digits[:50], progress=False)
    untrained = reconstruction_error(model, digits[:50]).mean()
    np.testing.assert_allclose(history["train_loss"], untrained, rtol=1e-5)


def test_validation_loss_is_the_held_out_mse():
    # Identical images make the held-out draw irrelevant, so the truth is known.
    x = np.tile(load_digits_8x8().flat()[:1], (40, 1))
    training = TrainingSpec(epochs=2, batch_size=8, validation=0.25)
    model, history = train_autoencoder(SMALL, training, x, progress=False)
    assert history.columns.tolist() == ["epoch", "train_loss", "val_loss"]
    np.testing.assert_allclose(history["val_loss"].iloc[-1],
                               reconstruction_error(model, x[:1])[0], rtol=1e-5)


def test_training_is_deterministic_and_leaves_global_state_alone(digits):
    training = TrainingSpec(epochs=2, batch_size=64, seed=5)
    rng_before = torch.random.get_rng_state()
    flag_before = torch.are_deterministic_algorithms_enabled()
    first, history_1 = train_autoencoder(SMALL, training, digits, progress=False)
    torch.rand(3)    # a moved global RNG must not matter
    second, history_2 = train_autoencoder(SMALL, training, digits, progress=False)
    other, _ = train_autoencoder(SMALL, dataclasses.replace(training, seed=6), digits,
                                 progress=False)
    assert all(torch.equal(a, b) for a, b in zip(state(first).values(), state(second).values()))
    pd.testing.assert_frame_equal(history_1, history_2, check_exact=True)
    assert not any(torch.equal(a, b) for a, b in zip(state(first).values(), state(other).values()))
    torch.rand(3)
    assert torch.are_deterministic_algorithms_enabled() == flag_before
    torch.random.set_rng_state(rng_before)
    train_autoencoder(SMALL, training, digits, progress=False)
    assert torch.equal(torch.random.get_rng_state(), rng_before)


def test_cache_round_trip_skips_training(digits, tmp_path, monkeypatch):
    calls = []
    engine = ae.train

    def counting(*args, **kwargs):   # the training engine, as the module calls it
        calls.append(1)
        return engine(*args, **kwargs)

    monkeypatch.setattr(ae, "train", counting)
    training = TrainingSpec(epochs=2, batch_size=64)
    model, history = trained_autoencoder(SMALL, training, "digits-300", digits, cache_dir=tmp_path,
                                         progress=False)
    loaded, history_2 = trained_autoencoder(SMALL, training, "digits-300", digits,
                                            cache_dir=tmp_path, progress=False)
    assert len(calls) == 1
    key = cache_key(SMALL, training, "digits-300", digits)
    assert sorted(os.listdir(tmp_path)) == [f"{key}.csv", f"{key}.json", f"{key}.pt"]
    raw = torch.load(tmp_path / f"{key}.pt", weights_only=True)
    assert all(torch.equal(raw[k], v) for k, v in state(model).items())
    x = torch.as_tensor(digits, dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    pd.testing.assert_frame_equal(history, history_2, check_exact=False, rtol=1e-15)
    # Any change of parameters or data trains again.
    trained_autoencoder(SMALL, dataclasses.replace(training, seed=1), "digits-300", digits,
                        cache_dir=tmp_path, progress=False)
    trained_autoencoder(SMALL, training, "digits-300", digits[:-1], cache_dir=tmp_path,
                        progress=False)
    assert len(calls) == 3


def test_failed_write_leaves_no_partial_files(digits, tmp_path, monkeypatch):
    def broken_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ae.torch, "save", broken_save)
    training = TrainingSpec(epochs=1, batch_size=64)
    with pytest.raises(OSError, match="disk full"):
        trained_autoencoder(SMALL, training, "digits-300", digits, cache_dir=tmp_path,
                            progress=False)
    assert not [p for p in os.listdir(tmp_path) if p.endswith((".tmp", ".pt"))]
    monkeypatch.undo()
    trained_autoencoder(SMALL, training, "digits-300", digits, cache_dir=tmp_path, progress=False)
    assert sorted(p.rsplit(".", 1)[1] for p in os.listdir(tmp_path)) == ["csv", "json", "pt"]


def test_cache_key_depends_on_everything():
    x = np.zeros((3, 64))
    keys = {cache_key(SMALL, QUICK, "a", x), cache_key(SMALL, QUICK, "b", x),
            cache_key(SMALL, QUICK, "a", x.astype(np.float32)),
            cache_key(SMALL, QUICK, "a", x + 1e-9),
            cache_key(dataclasses.replace(SMALL, latent_dim=7), QUICK, "a", x),
            cache_key(SMALL, dataclasses.replace(QUICK, learning_rate=2e-2), "a", x)}
    assert len(keys) == 6
    assert cache_key(SMALL, QUICK, "a", x) == cache_key(SMALL, QUICK, "a", torch.zeros(3, 64,
                                                                                    dtype=torch.float64))


@pytest.mark.parametrize("activation", ["relu", "elu", "tanh"])
def test_reconstruction_error_matches_numpy(activation, digits):
    spec = dataclasses.replace(SMALL, activation=activation)
    model = Autoencoder(spec, seed=1)
    expected = np.mean((numpy_forward(model, digits) - digits) ** 2, axis=1)
    np.testing.assert_allclose(reconstruction_error(model, digits), expected, rtol=1e-4)
    np.testing.assert_allclose(reconstruction_error(model, digits, batch_size=7),
                               reconstruction_error(model, digits), rtol=1e-6)
    np.testing.assert_allclose(reconstruction_error(model.double(), digits, batch_size=64),
                               expected, rtol=1e-12)
    as_tensor = reconstruction_error(model, torch.as_tensor(digits))
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (300,)


def test_linear_output_has_no_final_activation():
    spec = dataclasses.replace(SMALL, output="linear")
    model = Autoencoder(spec)
    assert isinstance(model.decoder[-1], torch.nn.Linear)
    x = np.random.default_rng(0).normal(size=(4, 64))
    expected = np.mean((numpy_forward(model, x) - x) ** 2, axis=1)
    np.testing.assert_allclose(reconstruction_error(model.double(), x), expected, rtol=1e-12)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"latent_dim": 0}, ValueError, "latent_dim"),
    ({"latent_dim": 800}, ValueError, "latent_dim"),
    ({"latent_dim": 2.0}, TypeError, "latent_dim"),
    ({"input_dim": -1}, ValueError, "input_dim"),
    ({"depth": 2}, ValueError, "depth"),
    ({"depth": 6}, ValueError, "depth"),
    ({"depth": 4.0}, TypeError, "depth"),
    ({"activation": "sigmoid"}, ValueError, "activation"),
    ({"output": "softmax"}, ValueError, "output"),
    ({"widths": (32, 16)}, ValueError, "widths"),            # depth 4 needs three
    ({"depth": 3, "widths": (32, 0)}, ValueError, "widths"),
    ({"depth": 3, "widths": (32, 1.5)}, TypeError, "widths"),
    ({"depth": 3, "widths": 32}, TypeError, "widths"),
])
def test_bad_architecture_names_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=f"'{name}' parameter of AutoencoderSpec"):
        AutoencoderSpec(**kwargs)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": 1, "batch_size": 0}, ValueError, "batch_size"),
    ({"epochs": 1, "learning_rate": 0.0}, ValueError, "learning_rate"),
    ({"epochs": 1, "learning_rate": "fast"}, TypeError, "learning_rate"),
    ({"epochs": 1, "optimizer": "lbfgs"}, ValueError, "optimizer"),
    ({"epochs": 1, "seed": -1}, ValueError, "seed"),
    ({"epochs": 1, "validation": 1.0}, ValueError, "validation"),
])
def test_bad_training_names_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=f"'{name}' parameter of TrainingSpec"):
        TrainingSpec(**kwargs)


def test_bad_calls_name_the_parameter(digits, tmp_path):
    training = TrainingSpec(epochs=1)
    with pytest.raises(ValueError, match=r"'images' parameter of train_autoencoder.*\(N, 64\)"):
        train_autoencoder(SMALL, training, digits[:, :10], progress=False)
    with pytest.raises(ValueError, match="'images' parameter of train_autoencoder.*finite"):
        train_autoencoder(SMALL, training, np.full((3, 64), np.nan), progress=False)
    with pytest.raises(TypeError, match="'training' parameter of train_autoencoder"):
        train_autoencoder(SMALL, {"epochs": 1}, digits, progress=False)
    with pytest.raises(ValueError, match="'device' parameter of train_autoencoder"):
        train_autoencoder(SMALL, training, digits, device="abacus", progress=False)
    with pytest.raises(ValueError, match="'data_key' parameter of trained_autoencoder"):
        trained_autoencoder(SMALL, training, "", digits, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="'data_key' parameter of trained_autoencoder"):
        trained_autoencoder(SMALL, training, 3, digits, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="'batch_size' parameter of reconstruction_error"):
        reconstruction_error(Autoencoder(SMALL), digits, batch_size=0)
    assert not os.listdir(tmp_path)


# --- the convergence rule and checkpoints (issue 18) -------------------------------------


def test_held_out_loss_converges_and_a_small_budget_reports_budget(digits, tmp_path):
    """On 300 8 x 8 digits (60 held out) the validation MSE flattens within the budget:
    the rule (best held-out MSE improves < 1% over 5 epochs) fires, the best state is the
    one returned, and the same run cut at 3 epochs reports "budget"."""
    rule = dict(batch_size=32, learning_rate=1e-2, validation=0.2, rel_tol=0.01, window=5)
    result = ae.trained_autoencoder_result(SMALL, TrainingSpec(epochs=500, **rule), "d300",
                                           digits, cache_dir=tmp_path, progress=False)
    per_epoch = -(-240 // 32)
    record, history = result.record, result.history
    assert record.stopped == "converged" and record.steps < 500 * per_epoch
    assert len(history) == record.steps // per_epoch
    best = history["val_loss"].cummin().to_numpy()
    # The rule, recomputed from the history (best[0] is the untrained model's loss, which
    # the history does not keep): it holds at the last epoch and at no earlier one.
    fired = [k for k in range(5, len(best)) if best[k - 5] - best[k] < 0.01 * best[k - 5]]
    assert fired[:1] == [len(best) - 1]
    assert record.best_step == per_epoch * (1 + int(history["val_loss"].idxmin()))
    held = torch.randperm(300, generator=torch.Generator().manual_seed(ae.seeds(0)[2]))[:60]
    np.testing.assert_allclose(reconstruction_error(result.model, digits[held.numpy()]).mean(),
                               history["val_loss"].min(), rtol=1e-5)  # float32 sums
    short = ae.trained_autoencoder_result(SMALL, TrainingSpec(epochs=3, **rule), "d300", digits,
                                          cache_dir=tmp_path, progress=False)
    assert (short.record.stopped, short.record.steps) == ("budget", 3 * per_epoch)


def test_a_checkpoint_is_the_same_run_cut_at_that_epoch(digits, tmp_path):
    """Epoch k of a long run = a k-epoch budget run keeping its last state, bit for bit."""
    long = TrainingSpec(epochs=6, batch_size=64, validation=0.2, rel_tol=0.01)
    result = ae.trained_autoencoder_result(SMALL, long, "d300", digits, cache_dir=tmp_path,
                                           checkpoints=(2, 4), progress=False)
    cut = TrainingSpec(epochs=2, batch_size=64, validation=0.2, restore_best=False)
    reference, _ = train_autoencoder(SMALL, cut, digits, progress=False)
    kept = ae.autoencoder_checkpoint(SMALL, long, "d300", digits, 2, cache_dir=tmp_path)
    for a, b in zip(state(reference).values(), state(kept).values()):
        assert torch.equal(a, b)
    # A cached model missing a checkpoint is trained again, with the same bits.
    (tmp_path / f"{cache_key(SMALL, long, 'd300', digits)}.epoch-4.pt").unlink()
    again = ae.trained_autoencoder_result(SMALL, long, "d300", digits, cache_dir=tmp_path,
                                          checkpoints=(2, 4), progress=False)
    for a, b in zip(state(result.model).values(), state(again.model).values()):
        assert torch.equal(a, b)
    assert ae.autoencoder_checkpoint(SMALL, long, "d300", digits, 4, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="'epoch' parameter of autoencoder_checkpoint"):
        ae.autoencoder_checkpoint(SMALL, long, "d300", digits, 3, cache_dir=tmp_path)


def test_without_held_out_digits_the_history_has_no_stand_in_loss(digits):
    result = ae._train(SMALL, TrainingSpec(epochs=3, batch_size=64), digits, device="cpu",
                       progress=False, caller="t")
    assert result.history.columns.tolist() == ["epoch", "train_loss"]
    assert (result.record.stopped, result.record.steps) == ("budget", 3 * 5)
    assert np.isnan(result.record.val_loss)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"epochs": 5, "rel_tol": 0.01}, ValueError, "rel_tol"),
    ({"epochs": 5, "validation": 0.1, "rel_tol": -0.1}, ValueError, "rel_tol"),
    ({"epochs": 5, "validation": 0.1, "window": 0}, ValueError, "window"),
    ({"epochs": 5, "restore_best": "yes"}, TypeError, "restore_best"),
])
def test_bad_convergence_fields_name_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=f"'{name}' parameter of TrainingSpec"):
        TrainingSpec(**kwargs)


def test_bad_checkpoints_name_the_parameter(digits, tmp_path):
    with pytest.raises(ValueError, match="'checkpoints' parameter of trained_autoencoder_result"):
        ae.trained_autoencoder_result(SMALL, TrainingSpec(epochs=2), "d", digits,
                                      cache_dir=tmp_path, checkpoints=(3,))
