"""The beta-VAE: architecture and layer taps, the objective, seeded training, early stopping, cache.

Truths and tolerances:

- Layer shapes from the architecture: each stride-2 convolution halves the
  side down to 4 x 4, each transposed one doubles it back; checked through
  forward hooks on ``get_submodule(name)``, the way the layer-wise study taps them.
- KL of N(mu, diag e^s) from N(0, I): 0.5 (mu^2 + e^s - 1 - s) per latent,
  e.g. 0.5 per latent at mu = 1, s = 0, summed over latents and averaged
  over the batch; the reconstruction against a float64 numpy Bernoulli NLL.
  Both are float32 sums of <= 2,048 terms of size O(1): rtol 1e-5.
- Capacity objective R + gamma |KL - C| and beta objective R + beta KL, from
  the returned parts: rtol 1e-6 (one float32 multiply-add).
- Learning: on 200 rendered discs the best validation negative ELBO must
  fall below 0.9 x that of the best input-blind model, the mean training
  image as Bernoulli means (a closed form computed here in numpy; observed
  0.73 for seed 0 after 500 steps, 0.58-0.88 over seeds 0-2), and may never
  go below the entropy of the validation pixels, an exact lower bound
  (BCE(l, x) >= H(x) for any logit l, KL >= 0).
- Determinism and the cache round trip: bit-identical (torch.equal), with
  one thread (the thread count changes float reduction order).
"""

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from lib.models import beta_vae as bv
from lib.models.beta_vae import (BetaVAE, BetaVAEProjection, BetaVAESpec, BetaVAETraining,
                                 beta_vae_cache_key, beta_vae_loss, train_beta_vae,
                                 trained_beta_vae, validation_neg_elbo)

SMALL = BetaVAESpec(image_size=32, channels=8, hidden=32, latent_dim=4)
QUICK = BetaVAETraining(max_steps=12, batch_size=16, eval_every=4, learning_rate=1e-3)

# Small networks gain nothing from threads and suffer badly when the CPU is shared.
pytestmark = pytest.mark.usefixtures("one_thread")


def discs(n, size=32, seed=0):
    """Soft-edged discs of random radius in [3, 8] and centre in [9, 23]^2, values in [0, 1]."""
    rng = np.random.default_rng(seed)
    radius = rng.uniform(3, 8, n)
    cx, cy = rng.uniform(9, 23, (2, n))
    yy, xx = np.mgrid[:size, :size] + 0.5
    distance = np.hypot(xx[None] - cx[:, None, None], yy[None] - cy[:, None, None])
    return np.clip(radius[:, None, None] - distance + 0.5, 0.0, 1.0)


@pytest.fixture(scope="module")
def images():
    return discs(40)


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- architecture -------------------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64])
def test_every_tapped_layer_has_the_shape_of_the_architecture(size):
    spec = dataclasses.replace(SMALL, image_size=size)
    model = BetaVAE(spec)
    m, c, h, d = int(np.log2(size // 4)), spec.channels, spec.hidden, spec.latent_dim
    expected = {"input": (3, 1, size, size), "encoder.fc1": (3, h), "encoder.fc2": (3, h),
                "mu": (3, d), "decoder.fc1": (3, h), "decoder.fc2": (3, h),
                "decoder.fc3": (3, c * 16), "output": (3, 1, size, size)}
    for i in range(1, m + 1):
        expected[f"encoder.conv{i}"] = (3, c, size >> i, size >> i)
        expected[f"decoder.deconv{i}"] = (3, 1 if i == m else c, 4 << i, 4 << i)
    assert set(model.layer_names) == set(expected) and len(model.layer_names) == len(expected)
    assert model.layer_names[0] == "input" and model.layer_names[-1] == "output"
    assert model.layer_names.index("mu") == m + 3          # input, M convs, fc1, fc2, mu
    assert expected[f"encoder.conv{m}"][2:] == (4, 4)

    seen = {}

    def keep(name):
        return lambda module, args, output: seen.__setitem__(name, tuple(output.shape))

    handles = [model.get_submodule(name).register_forward_hook(keep(name))
               for name in model.layer_names[1:-1]]
    handles.append(model.register_forward_hook(keep("output")))
    handles.append(model.register_forward_pre_hook(
        lambda module, args: seen.__setitem__("input", tuple(args[0].shape))))
    model(torch.rand(3, 1, size, size))
    for handle in handles:
        handle.remove()
    assert seen == expected

    convs = [mod for mod in model.encoder.modules() if isinstance(mod, torch.nn.Conv2d)]
    deconvs = [mod for mod in model.decoder.modules()
               if isinstance(mod, torch.nn.ConvTranspose2d)]
    for layer in convs + deconvs:
        assert (layer.kernel_size, layer.stride, layer.padding) == ((4, 4), (2, 2), (1, 1))
    assert len(convs) == len(deconvs) == m
    assert isinstance(model.decoder[-1], torch.nn.ConvTranspose2d)      # logits, no activation


def test_forward_is_the_decoded_mean_code():
    model = BetaVAE(SMALL, seed=1)
    x = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 4) and not torch.equal(mu, logvar)
    y = model(x)
    assert torch.equal(y, torch.sigmoid(model.decode_logits(mu)))       # the same operations
    assert bool(((y >= 0) & (y <= 1)).all())


def test_initial_weights_are_seeded_and_leave_the_global_rng_alone():
    before = torch.get_rng_state()
    a, b, c = BetaVAE(SMALL, seed=0), BetaVAE(SMALL, seed=0), BetaVAE(SMALL, seed=1)
    assert torch.equal(torch.get_rng_state(), before)
    assert same_state(state(a), state(b)) and not same_state(state(a), state(c))
    # PyTorch's default law: |w| <= 1/sqrt(fan_in), fan_in = c_in x 4 x 4 for conv1.
    assert float(a.encoder.conv1[0].weight.detach().abs().max()) <= 1 / np.sqrt(16)


# --- objective ----------------------------------------------------------------------------

def test_kl_and_reconstruction_match_their_closed_forms():
    training = BetaVAETraining(10, objective="beta")
    rng = np.random.default_rng(0)
    x = rng.random((4, 1, 8, 8))
    logits = rng.normal(0, 2, (4, 1, 8, 8))
    p = 1 / (1 + np.exp(-logits))
    nll = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum() / 4
    mu, logvar = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    kl = 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar).sum() / 4
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in
         {"x": x, "logits": logits, "mu": mu, "logvar": logvar}.items()}
    parts = beta_vae_loss(t["logits"], t["x"], t["mu"], t["logvar"], training, 0)
    np.testing.assert_allclose(float(parts["reconstruction"]), nll, rtol=1e-5)
    np.testing.assert_allclose(float(parts["kl"]), kl, rtol=1e-5)
    # mu = 1, logvar = 0: 0.5 per latent, whatever the batch size.
    ones = beta_vae_loss(t["logits"], t["x"], torch.ones(4, 5), torch.zeros(4, 5), training, 0)
    np.testing.assert_allclose(float(ones["kl"]), 0.5 * 5, rtol=1e-6)
    # The prior itself: KL = 0 exactly.
    assert float(beta_vae_loss(t["logits"], t["x"], torch.zeros(4, 5), torch.zeros(4, 5),
                               training, 0)["kl"]) == 0.0


def test_capacity_grows_linearly_then_stays():
    training = BetaVAETraining(10, capacity_max=20.0, capacity_steps=400)
    steps = np.array([0, 1, 100, 399, 400, 401, 10_000])
    expected = 20.0 * np.minimum(1.0, steps / 400)
    np.testing.assert_allclose([training.capacity(int(s)) for s in steps], expected, rtol=1e-15)
    x, logits = torch.full((2, 1, 4, 4), 0.5), torch.zeros(2, 1, 4, 4)
    got = [float(beta_vae_loss(logits, x, torch.ones(2, 3), torch.zeros(2, 3), training,
                               int(s))["capacity"]) for s in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("mu_value", [0.5, 10.0])    # KL = 0.375 below C, 150 above C
def test_capacity_objective_is_reconstruction_plus_gamma_abs_gap(mu_value):
    training = BetaVAETraining(10, objective="capacity", gamma=100.0, capacity_max=20.0,
                               capacity_steps=100)
    x, logits = torch.rand(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    mu, logvar = torch.full((2, 3), mu_value), torch.zeros(2, 3)
    parts = beta_vae_loss(logits, x, mu, logvar, training, 50)     # C = 10 nats
    kl = 0.5 * 3 * mu_value**2
    np.testing.assert_allclose(float(parts["kl"]), kl, rtol=1e-6)
    np.testing.assert_allclose(float(parts["loss"]),
                               float(parts["reconstruction"]) + 100.0 * abs(kl - 10.0), rtol=1e-6)


def test_beta_objective_is_reconstruction_plus_beta_kl():
    training = BetaVAETraining(10, objective="beta", beta=4.0)
    x, logits = torch.rand(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    mu, logvar = torch.randn(2, 3), torch.randn(2, 3)
    parts = beta_vae_loss(logits, x, mu, logvar, training, 50)
    np.testing.assert_allclose(float(parts["loss"]),
                               float(parts["reconstruction"]) + 4.0 * float(parts["kl"]),
                               rtol=1e-6)
    assert float(parts["capacity"]) == 0.0


# --- training -----------------------------------------------------------------------------

def test_training_is_bit_identical_for_a_seed(images):
    before = torch.get_rng_state()
    a = train_beta_vae(SMALL, QUICK, images, progress=False)
    b = train_beta_vae(SMALL, QUICK, torch.from_numpy(images), progress=False)
    c = train_beta_vae(SMALL, dataclasses.replace(QUICK, seed=1), images, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    assert same_state(state(a.model), state(b.model))
    pd.testing.assert_frame_equal(a.history, b.history, check_exact=True)
    assert not same_state(state(a.model), state(c.model))
    assert not a.history["val_neg_elbo"].equals(c.history["val_neg_elbo"])
    assert a.history.columns.tolist() == ["step", "train_loss", "val_excess", "val_neg_elbo",
                                          "reconstruction", "kl", "reconstruction_ratio",
                                          "capacity", "best"]
    assert a.history["step"].tolist() == [0, 4, 8, 12]
    assert (a.record.stopped, a.record.steps) == ("budget", 12)


def _held_out(x, training):
    """The training and validation images as the trainer splits them, flat float64."""
    n = len(x)
    held = bv._split(torch.from_numpy(x).float().reshape(n, 1, 32, 32), training, "test")
    return (part.double().numpy().reshape(len(part), -1) for part in held)


def test_training_learns_more_than_the_mean_image():
    x = discs(200)
    training = BetaVAETraining(max_steps=500, objective="beta", beta=4.0, batch_size=32,
                               learning_rate=2e-3, eval_every=100, window=3, seed=0)
    result = train_beta_vae(SMALL, training, x, progress=False)
    model, history = result.model, result.history
    train, val = _held_out(x, training)
    assert len(val) == 20 and len(train) == 180

    def bernoulli_nll(target, p):           # summed over pixels, mean over images
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(target > 0, target * np.log(p), 0.0) + \
                np.where(target < 1, (1 - target) * np.log(1 - p), 0.0)
        return -terms.sum(axis=1).mean()

    mean_image = bernoulli_nll(val, np.clip(train.mean(axis=0), 1e-12, 1 - 1e-12))
    entropy = bernoulli_nll(val, val)
    best = history["val_neg_elbo"].min()
    assert best < 0.9 * mean_image
    assert best < 0.5 * history["val_neg_elbo"].iloc[0]
    assert (history["val_neg_elbo"] >= entropy).all()
    # The criterion is the objective minimised (R + 4 KL here, not the -ELBO R + KL) less
    # the pixels' binary entropy, the smallest R.
    np.testing.assert_allclose(history["val_neg_elbo"],
                               history["reconstruction"] + history["kl"], rtol=1e-12)
    np.testing.assert_allclose(history["reconstruction"] + 4.0 * history["kl"]
                               - history["val_excess"], entropy, rtol=1e-6)
    kept = history.loc[history["step"] == result.record.best_step].iloc[0]
    np.testing.assert_allclose(validation_neg_elbo(model, x, training), kept["val_neg_elbo"],
                               rtol=1e-12)
    assert result.record.val_loss == pytest.approx(kept["val_excess"], rel=1e-12)
    # The ratio column: squared error of sigmoid(decoder(mu(x))) over that of the mean
    # training image, on the validation images, for the state kept.
    with torch.no_grad():
        projected = model(torch.from_numpy(val).float().reshape(-1, 1, 32, 32))
    error = ((projected.double().numpy().reshape(len(val), -1) - val) ** 2).sum()
    ratio = error / ((train.mean(axis=0) - val) ** 2).sum()
    kept = history.loc[history["best"], "reconstruction_ratio"].iloc[-1]
    assert kept == pytest.approx(ratio, rel=1e-5)
    assert ratio < 0.9


def test_training_stops_when_converged_and_keeps_the_best_state(images):
    # Adam at lr 0.05 overshoots: the validation loss stops improving within 100 steps.
    window = 2
    training = BetaVAETraining(max_steps=400, objective="beta", batch_size=16,
                               learning_rate=5e-2, eval_every=5, window=window, rel_tol=1e-3)
    result = train_beta_vae(SMALL, training, images, progress=False)
    history = result.history
    assert result.record.stopped == "converged"
    assert history["step"].iloc[-1] == result.record.steps < training.max_steps
    # Stopped at the first evaluation where the best loss of `window` evaluations ago was
    # improved by less than rel_tol of itself, never earlier.
    best = history["val_excess"].cummin().to_numpy()
    gain = best[:-window] - best[window:]
    stalled = gain < training.rel_tol * np.abs(best[:-window])
    assert stalled[-1] and not stalled[:-1].any()
    # The returned weights are the best ones, not the last ones.
    kept = history.loc[history["val_excess"].idxmin()]
    val = validation_neg_elbo(result.model, images, training)
    np.testing.assert_allclose(val, kept["val_neg_elbo"], rtol=1e-12)
    assert history["val_excess"].iloc[-1] > kept["val_excess"]
    assert result.record.best_step == kept["step"]


def test_absolute_tolerance_stops_a_run_the_relative_rule_alone_would_not(images):
    # rel_tol = 0 never converges; an absolute floor larger than any gain stops the run at
    # the first evaluation that has `window` before it.
    training = BetaVAETraining(max_steps=40, objective="beta", batch_size=16, eval_every=4,
                               window=2, rel_tol=0.0, learning_rate=1e-3)
    assert train_beta_vae(SMALL, training, images, progress=False).record.stopped == "budget"
    floor = dataclasses.replace(training, abs_tol=1e9)
    assert floor.convergence.abs_tol == 1e9
    record = train_beta_vae(SMALL, floor, images, progress=False).record
    assert (record.stopped, record.steps) == ("converged", 8)


def test_capacity_objective_never_converges_before_the_capacity_is_reached(images):
    # A flat validation loss (lr 1e-6: the model barely moves) would converge at once;
    # the capacity objective keeps training until C reaches C_max, and restores no state
    # from before it.
    training = BetaVAETraining(max_steps=60, objective="capacity", capacity_steps=40,
                               batch_size=16, learning_rate=1e-6, eval_every=5, window=1,
                               rel_tol=0.5)
    result = train_beta_vae(SMALL, training, images, progress=False)
    assert (result.record.stopped, result.record.steps) == ("converged", 45)
    assert result.record.best_step >= 40
    assert result.history["capacity"].tolist()[-2:] == [20.0, 20.0]
    # Its criterion is the capacity objective at C_max, less the pixels' entropy.
    history = result.history
    criterion = history["reconstruction"] + 100.0 * (history["kl"] - 20.0).abs()
    entropy = criterion - history["val_excess"]
    np.testing.assert_allclose(entropy, entropy.iloc[0], rtol=1e-9)
    assert 0 < entropy.iloc[0] < history["reconstruction"].min()
    too_short = dataclasses.replace(training, max_steps=20)
    record = train_beta_vae(SMALL, too_short, images, progress=False).record
    assert (record.stopped, record.steps) == ("budget", 20)


# --- cache --------------------------------------------------------------------------------

def test_cache_round_trip_without_retraining(images, tmp_path, monkeypatch):
    first = trained_beta_vae(SMALL, QUICK, "discs", images, cache_dir=tmp_path, progress=False)
    key = beta_vae_cache_key(SMALL, QUICK, "discs", images)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{key}.{ext}" for ext in ("csv", "json", "pt"))

    def refuse(*args, **kwargs):
        raise AssertionError("trained again instead of loading the cache")

    monkeypatch.setattr(bv, "train_beta_vae", refuse)
    again = trained_beta_vae(SMALL, QUICK, "discs", images.reshape(40, -1), cache_dir=tmp_path)
    assert same_state(state(first.model), state(again.model))
    pd.testing.assert_frame_equal(first.history, again.history, check_exact=False, rtol=1e-15)
    assert again.record == first.record and again.record.stopped == "budget"
    saved = torch.load(tmp_path / f"{key}.pt", weights_only=True)
    assert isinstance(saved, dict) and saved.keys() == first.model.state_dict().keys()
    assert all(isinstance(v, torch.Tensor) for v in saved.values())
    stored = json.loads((tmp_path / f"{key}.json").read_text())
    assert stored["record"]["stopped"] == "budget" and stored["device"] == "cpu"


def test_cache_key_follows_images_spec_training_and_name(images):
    key = beta_vae_cache_key(SMALL, QUICK, "discs", images)
    assert key == beta_vae_cache_key(SMALL, QUICK, "discs", torch.from_numpy(images))
    assert key == beta_vae_cache_key(SMALL, QUICK, "discs", images.reshape(40, -1))
    assert key == beta_vae_cache_key(SMALL, dataclasses.replace(QUICK, beta=4), "discs", images)
    others = {beta_vae_cache_key(SMALL, QUICK, "discs", images * 0.5),
              beta_vae_cache_key(SMALL, QUICK, "discs", images[:-1]),
              beta_vae_cache_key(dataclasses.replace(SMALL, latent_dim=5), QUICK, "discs", images),
              beta_vae_cache_key(SMALL, dataclasses.replace(QUICK, seed=1), "discs", images),
              beta_vae_cache_key(SMALL, dataclasses.replace(QUICK, gamma=50.0), "discs", images),
              beta_vae_cache_key(SMALL, QUICK, "blobs", images)}
    assert key not in others and len(others) == 6


# --- the estimator ------------------------------------------------------------------------

def test_projection_round_trip_keeps_the_callers_type(images, tmp_path):
    flat = images.reshape(40, -1)
    estimator = BetaVAEProjection(SMALL, QUICK, cache_dir=tmp_path, data_key="discs")
    with pytest.raises(RuntimeError, match="fit"):
        estimator.project(flat)
    assert estimator.fit(flat) is estimator
    projected = estimator.project(flat[:7])
    assert isinstance(projected, np.ndarray) and projected.dtype == np.float64
    assert projected.shape == (7, 32 * 32)
    assert ((projected >= 0) & (projected <= 1)).all()
    with torch.no_grad():
        direct = estimator.model_(torch.from_numpy(flat[:7]).float().reshape(7, 1, 32, 32))
    np.testing.assert_array_equal(projected, direct.reshape(7, -1).double().numpy())
    small_batches = BetaVAEProjection(SMALL, QUICK, cache_dir=tmp_path, data_key="discs",
                                      batch_size=3).fit(flat)
    np.testing.assert_allclose(small_batches.project(flat[:7]), projected, rtol=1e-6)
    as_torch = estimator.project(torch.from_numpy(flat[:7]).float())
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32
    np.testing.assert_allclose(as_torch.numpy(), projected, rtol=1e-6)


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"image_size": 48}, "'image_size' parameter of BetaVAESpec must be one of"),
    ({"image_size": 32.0}, "'image_size' parameter of BetaVAESpec must be an int"),
    ({"channels": 0}, r"'channels' parameter of BetaVAESpec must be an int in \[1, inf\]"),
    ({"hidden": 0}, "'hidden' parameter of BetaVAESpec"),
    ({"latent_dim": 0}, "'latent_dim' parameter of BetaVAESpec"),
])
def test_spec_errors_name_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        BetaVAESpec(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"max_steps": 0}, r"'max_steps' parameter of BetaVAETraining must be an int in \[1, inf\]"),
    ({"objective": "vae"}, "'objective' parameter of BetaVAETraining must be one of"),
    ({"beta": 0.0}, r"'beta' parameter of BetaVAETraining must be a float in \(0.0, inf\)"),
    ({"gamma": -1.0}, "'gamma' parameter of BetaVAETraining"),
    ({"capacity_max": -0.1}, r"'capacity_max' parameter of BetaVAETraining .* \[0.0, inf\)"),
    ({"capacity_max": float("inf")}, "'capacity_max' parameter of BetaVAETraining"),
    ({"capacity_steps": 0}, "'capacity_steps' parameter of BetaVAETraining"),
    ({"batch_size": 0}, "'batch_size' parameter of BetaVAETraining"),
    ({"learning_rate": 0.0}, "'learning_rate' parameter of BetaVAETraining"),
    ({"validation": 0.0}, r"'validation' parameter of BetaVAETraining .* \(0.0, 1.0\)"),
    ({"validation": 1.0}, "'validation' parameter of BetaVAETraining"),
    ({"eval_every": 0}, "'eval_every' parameter of BetaVAETraining"),
    ({"window": 0}, "'window' parameter of BetaVAETraining"),
    ({"rel_tol": -0.1}, r"'rel_tol' parameter of BetaVAETraining .* \[0.0, inf\)"),
    ({"abs_tol": -0.1}, r"'abs_tol' parameter of BetaVAETraining .* \[0.0, inf\)"),
    ({"min_steps": 11}, r"'min_steps' parameter of BetaVAETraining .* \[0, 10\]"),
    ({"seed": -1}, "'seed' parameter of BetaVAETraining"),
    ({"seed": 1.5}, "'seed' parameter of BetaVAETraining"),
])
def test_training_errors_name_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        BetaVAETraining(**{"max_steps": 10, **kwargs})


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 16, 16)), r"'images' parameter of train_beta_vae must have shape \(N, S, S\)"),
    (np.zeros((4, 32 * 31)), "'images' parameter of train_beta_vae must have shape"),
    (np.zeros((0, 32, 32)), "'images' parameter of train_beta_vae must hold at least one"),
    (np.full((4, 32, 32), 1.5), (r"'images' parameter of train_beta_vae must hold pixel values "
                                r"in \[0, 1\]")),
    (np.full((4, 32, 32), -0.1), r"in \[0, 1\]"),
    (np.full((4, 32, 32), np.nan), "'images' parameter of train_beta_vae must hold only finite"),
    (np.zeros((1, 32, 32)), ("'images' parameter of train_beta_vae must leave at least 1 "
                            "training and 1 validation image under the 'validation' share")),
])
def test_image_errors_name_the_parameter(bad, match):
    with pytest.raises(ValueError, match=match):
        train_beta_vae(SMALL, QUICK, bad, progress=False)


def test_other_errors_name_the_parameter(images, tmp_path):
    with pytest.raises(TypeError, match="'spec' parameter of train_beta_vae must be a BetaVAESpec"):
        train_beta_vae(dataclasses.asdict(SMALL), QUICK, images)
    with pytest.raises(TypeError, match="'training' parameter of train_beta_vae"):
        train_beta_vae(SMALL, {"max_steps": 1}, images)
    with pytest.raises(ValueError, match="'device' parameter of train_beta_vae"):
        train_beta_vae(SMALL, QUICK, images, device="abacus")
    with pytest.raises(ValueError, match="'validation' share 0.9"):
        train_beta_vae(SMALL, dataclasses.replace(QUICK, validation=0.9), images[:3])
    with pytest.raises(TypeError, match="'spec' parameter of BetaVAE must be a BetaVAESpec"):
        BetaVAE(None)
    with pytest.raises(ValueError, match="'seed' parameter of BetaVAE"):
        BetaVAE(SMALL, seed=-1)
    with pytest.raises(ValueError, match="'data_key' parameter of trained_beta_vae"):
        trained_beta_vae(SMALL, QUICK, "", images, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="'cache_dir' parameter of trained_beta_vae"):
        trained_beta_vae(SMALL, QUICK, "discs", images, cache_dir=None)
    with pytest.raises(ValueError, match="'step' parameter of beta_vae_loss"):
        beta_vae_loss(torch.zeros(1, 4), torch.zeros(1, 4), torch.zeros(1, 2),
                      torch.zeros(1, 2), QUICK, -1)
    with pytest.raises(ValueError, match="'x' parameter of beta_vae_loss must have shape"):
        beta_vae_loss(torch.zeros(1, 4), torch.zeros(1, 5), torch.zeros(1, 2),
                      torch.zeros(1, 2), QUICK, 0)
    with pytest.raises(ValueError, match="'logvar' parameter of beta_vae_loss"):
        beta_vae_loss(torch.zeros(1, 4), torch.zeros(1, 4), torch.zeros(1, 2),
                      torch.zeros(1, 3), QUICK, 0)
    with pytest.raises(TypeError, match="'logits' parameter of beta_vae_loss must be a torch"):
        beta_vae_loss(np.zeros((1, 4)), torch.zeros(1, 4), torch.zeros(1, 2),
                      torch.zeros(1, 2), QUICK, 0)
    with pytest.raises(ValueError, match="'step' parameter of BetaVAETraining.capacity"):
        QUICK.capacity(-1)
    with pytest.raises(TypeError, match="'model' parameter of validation_neg_elbo"):
        validation_neg_elbo(torch.nn.Linear(2, 2), images, QUICK)
    estimator = BetaVAEProjection(SMALL, QUICK, cache_dir=tmp_path, data_key="discs")
    with pytest.raises(ValueError, match=r"'points' parameter of BetaVAEProjection.fit must "
                                         r"have shape \(N, S\*S\) = \(N, 1024\)"):
        estimator.fit(images)
    with pytest.raises(ValueError, match="'batch_size' parameter of BetaVAEProjection.fit"):
        BetaVAEProjection(SMALL, QUICK, cache_dir=tmp_path, data_key="discs",
                          batch_size=0).fit(images.reshape(40, -1))
    estimator.fit(images.reshape(40, -1))
    with pytest.raises(ValueError, match="'queries' parameter of BetaVAEProjection.project"):
        estimator.project(images)
    with pytest.raises(ValueError, match="'queries' parameter of BetaVAEProjection.project "
                                         "must hold only finite"):
        estimator.project(np.full((2, 1024), np.inf))


# --- GPU ----------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_cache_and_projection(images, tmp_path):
    result = trained_beta_vae(SMALL, QUICK, "discs", images, cache_dir=tmp_path,
                              device="cuda", progress=False)
    history = result.history
    assert all(p.is_cuda for p in result.model.parameters())
    cpu_history = train_beta_vae(SMALL, QUICK, images, progress=False).history
    # Same batches and noise, other kernels: the trajectories agree to float32 rounding
    # grown over 12 Adam steps (observed < 1e-4 relative).
    np.testing.assert_allclose(history["val_neg_elbo"], cpu_history["val_neg_elbo"], rtol=1e-3)
    # The key holds the device: a CPU run trains its own model rather than read this one.
    assert beta_vae_cache_key(SMALL, QUICK, "discs", images, device="cuda") != \
        beta_vae_cache_key(SMALL, QUICK, "discs", images)
    loaded = trained_beta_vae(SMALL, QUICK, "discs", images, cache_dir=tmp_path,
                              device="cuda").model.cpu()
    estimator = BetaVAEProjection(SMALL, QUICK, cache_dir=tmp_path, data_key="discs",
                                  device="cuda").fit(images.reshape(40, -1))
    queries = torch.from_numpy(images.reshape(40, -1)[:5]).cuda()
    projected = estimator.project(queries)
    assert projected.is_cuda and projected.dtype == torch.float64 and projected.shape == (5, 1024)
    with torch.no_grad():
        on_cpu = loaded(torch.from_numpy(images[:5, None]).float()).reshape(5, -1).double()
    torch.testing.assert_close(projected.cpu(), on_cpu, rtol=1e-4, atol=1e-5)
