"""Small CNN classifier: architecture, training, checkpoints, layer taps, rotations.

Truths and tolerances:

- Layer features against a numpy float64 forward pass written from the
  weights alone (explicit 3 x 3 correlation over a zero-padded image, ReLU,
  2 x 2 max, then the two linear layers): the model runs in float32, sums of
  at most 9 x 16 = 144 terms of size O(1), so 1e-5 absolute (eps 6e-8 x 144
  is 1e-5 in the worst case; observed ~1e-7). Max-pooling can flip between
  two near-equal values, which changes the output by no more than that gap.
- Training on sklearn's 1,797 8 x 8 digits: 5 epochs must lower the loss and
  fit > 80 % of them; observed 93-96 % over seeds 0-2 (lr 1e-2, batch 64).
- History: at learning rate 1e-12 the weights move by ~1e-12 per step, so
  every epoch's mean loss and accuracy are the untrained model's, computed
  here from its logits in numpy (cross-entropy = logsumexp - true logit):
  rtol 1e-5 (float32 logits, sums of ~30 batches).
- Rotations: a quarter turn of a square image maps pixel centres onto pixel
  centres, so it equals np.rot90 up to the rounding of the sampling grid,
  1e-12 in float64 (observed 1e-15) and 2e-6 in float32 (observed 4e-7); the
  same for 0 degrees and the identity. At other angles the centroid of a
  Gaussian blob (sigma 1.2-2 px, >= 3 sigma inside the frame) must move to
  the rotated centroid, in pixel units on a 24 x 40 image: 0.02 px (bilinear
  smoothing; observed 0.005 px), mass kept to 2 % (observed 0.4 %).
- Determinism, the checkpoint round trip and augmentation-off vs a mocked
  identity rotation: bit-identical (torch.equal).
- The training engine against the hand-written loop it replaced (the loop
  of commit 671c419, condensed below): without held-out digits every
  checkpoint and every history value bit-identical (torch.equal, exact
  frames), with and without rotations.
- Early stopping: at learning rate 1e-12 the held-out loss moves by ~1e-12
  of itself per epoch, so the rule (rel_tol 1e-3) holds at the first epoch
  it may be asked, epoch ``window``, exactly. On the digits the run must stop
  at the first epoch where the best held-out loss of the history improved by
  less than rel_tol over ``window`` epochs (recomputed here), before the
  budget; a budget shorter than ``window`` can only end in "budget". The
  last epoch's held-out loss and accuracy against the numpy forward pass of
  the returned model: rtol 1e-5 as for the history (float32 logits).
"""

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from lib.datasets.mnist import load_digits_8x8
from lib.models import cnn
from lib.models._shared import seeds as split_seeds
from lib.models.cnn import (ClassifierTraining, CNNSpec, SmallCNN, accuracy, checkpoint_key,
                            load_checkpoint, rotate_images, train_classifier, training_record)
from lib.models.taps import layer_taps

SPEC = CNNSpec(image_size=8, channels=(8, 16), hidden=32)
QUICK = ClassifierTraining(epochs=5, batch_size=64, learning_rate=1e-2, seed=0)
SHORT = ClassifierTraining(epochs=2, batch_size=64, learning_rate=1e-2, seed=0)


# Small networks gain nothing from threads and suffer badly when the CPU is shared.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    d = load_digits_8x8()
    return d.images, d.labels


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a, b):
    sa, sb = state(a), state(b)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def numpy_block(h, conv):
    """Conv2d(3, padding=1) -> ReLU -> MaxPool2d(2) in float64 numpy, (N, C, S, S) in."""
    w = conv.weight.detach().double().numpy()            # (C_out, C_in, 3, 3)
    b = conv.bias.detach().double().numpy()
    n, _, s, _ = h.shape
    padded = np.pad(h, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], s, s)) + b[None, :, None, None]
    for di in range(3):
        for dj in range(3):
            out += np.einsum("ncij,oc->noij", padded[:, :, di:di + s, dj:dj + s], w[:, :, di, dj])
    out = np.maximum(out, 0)
    half = s // 2
    return out[:, :, :2 * half, :2 * half].reshape(n, -1, half, 2, half, 2).max(axis=(3, 5))


def numpy_forward(model, images):
    """Every layer of spec.layer_names, flattened, from the weights alone."""
    h = np.asarray(images, dtype=np.float64)[:, None]
    taps = {"input": h.reshape(len(h), -1)}
    for name in model.conv_names:
        h = numpy_block(h, getattr(model, name)[0])
        taps[name] = h.reshape(len(h), -1)
    fc1, last = model.fc1[0], model.logits
    hidden = np.maximum(taps[name] @ fc1.weight.detach().double().numpy().T
                        + fc1.bias.detach().double().numpy(), 0)
    taps["fc1"] = hidden
    taps["logits"] = (hidden @ last.weight.detach().double().numpy().T
                      + last.bias.detach().double().numpy())
    return taps


def test_architecture_has_named_blocks():
    spec = CNNSpec()
    model = SmallCNN(spec)
    assert [name for name, _ in model.named_children()] == ["conv1", "conv2", "fc1", "logits"]
    assert [(b[0].in_channels, b[0].out_channels, b[0].kernel_size, b[0].padding)
            for b in (model.conv1, model.conv2)] == [(1, 16, (3, 3), (1, 1)),
                                                      (16, 32, (3, 3), (1, 1))]
    assert (model.fc1[0].in_features, model.fc1[0].out_features) == (32 * 7 * 7, 64)
    assert (model.logits.in_features, model.logits.out_features) == (64, 10)
    assert tuple(model(torch.zeros(2, 1, 28, 28)).shape) == (2, 10)
    # 10 x 10 floors to 5 then 2: odd sizes work as in MaxPool2d.
    odd = CNNSpec(image_size=10, channels=(3, 4), in_channels=3, n_classes=4)
    assert odd.flat_features == 4 * 2 * 2
    assert tuple(SmallCNN(odd)(torch.zeros(1, 3, 10, 10)).shape) == (1, 4)


def test_initial_weights_follow_pytorchs_uniform_law():
    model = SmallCNN(CNNSpec(), seed=4)
    for layer, fan_in in ((model.conv2[0], 16 * 9), (model.fc1[0], 1568)):
        w = layer.weight.detach().double().numpy().ravel()
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(w).max() <= bound
        # Mean and variance of U(-b, b): 0 and b^2/3, 4 standard errors.
        assert abs(w.mean()) < 4 * bound / np.sqrt(3 * w.size)
        assert abs(w.var() / (bound**2 / 3) - 1) < 4 * np.sqrt(0.8 / w.size)
    assert not same_weights(model, SmallCNN(CNNSpec(), seed=5))


def test_training_lowers_the_loss_and_fits_the_digits(digits, tmp_path):
    images, labels = digits
    model, history = train_classifier(SPEC, QUICK, images, labels, checkpoint_dir=tmp_path,
                                      progress=False)
    assert history.columns.tolist() == ["epoch", "train_loss", "train_accuracy"]
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert history["train_loss"].iloc[-1] < 0.3 * history["train_loss"].iloc[0]
    assert not model.training
    assert accuracy(model, images, labels) > 0.8
    # accuracy() against the numpy forward pass.
    predicted = numpy_forward(model, images)["logits"].argmax(axis=1)
    assert accuracy(model, images, labels) == pytest.approx(np.mean(predicted == labels), abs=2e-3)


def test_history_is_the_mean_batch_loss_and_accuracy(digits, tmp_path):
    images, labels = digits[0][:200], digits[1][:200]
    frozen = ClassifierTraining(epochs=2, batch_size=7, learning_rate=1e-12)
    model, history = train_classifier(SPEC, frozen, images, labels, checkpoint_dir=tmp_path,
                                      progress=False)
    logits = numpy_forward(model, images)["logits"]
    peak = logits.max(axis=1)
    loss = (np.log(np.exp(logits - peak[:, None]).sum(axis=1)) + peak
            - logits[np.arange(200), labels])
    np.testing.assert_allclose(history["train_loss"], loss.mean(), rtol=1e-5)
    np.testing.assert_allclose(history["train_accuracy"], np.mean(logits.argmax(1) == labels))


def test_training_is_deterministic_and_leaves_global_state_alone(digits, tmp_path):
    images, labels = digits[0][:400], digits[1][:400]
    training = dataclasses.replace(SHORT, seed=5, rotation_augmentation=20.0)
    torch_before, numpy_before = torch.random.get_rng_state(), np.random.get_state()
    first, history_1 = train_classifier(SPEC, training, images, labels,
                                        checkpoint_dir=tmp_path / "a", progress=False)
    assert torch.equal(torch.random.get_rng_state(), torch_before)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_before))
    torch.rand(3)   # a moved global RNG must not matter
    second, history_2 = train_classifier(SPEC, training, images, labels,
                                         checkpoint_dir=tmp_path / "b", progress=False)
    other, _ = train_classifier(SPEC, dataclasses.replace(training, seed=6), images, labels,
                                checkpoint_dir=tmp_path / "a", progress=False)
    assert same_weights(first, second)
    pd.testing.assert_frame_equal(history_1, history_2, check_exact=True)
    assert not any(torch.equal(a, b) for a, b in zip(state(first).values(),
                                                      state(other).values()))


def test_checkpoints_every_epoch_and_reload(digits, tmp_path, monkeypatch):
    images, labels = digits[0][:300], digits[1][:300]
    training = dataclasses.replace(SHORT, epochs=3)
    model, history = train_classifier(SPEC, training, images, labels, checkpoint_dir=tmp_path,
                                      progress=False)
    key = checkpoint_key(SPEC, training, images)
    assert os.listdir(tmp_path) == [key]
    assert sorted(os.listdir(tmp_path / key)) == ["epoch_001.pt", "epoch_002.pt", "epoch_003.pt",
                                                  "history.csv", "record.json"]
    record = json.loads((tmp_path / key / "record.json").read_text())
    assert record["spec"]["channels"] == [8, 16] and record["training"]["epochs"] == 3
    assert record["validation"] is None
    assert record["record"] == training_record(SPEC, training, images, checkpoint_dir=tmp_path)
    assert (record["record"]["stopped"], record["record"]["epochs_trained"]) == ("budget", 3)
    assert record["record"]["steps"] == record["record"]["best_step"] == 3 * 5   # ceil(300 / 64)
    assert record["record"]["val_loss"] is None
    assert record["record"]["train_loss"] == history["train_loss"].iloc[-1]
    raw = torch.load(tmp_path / key / "epoch_003.pt", weights_only=True)
    assert all(torch.equal(raw[k], v) for k, v in state(model).items())
    epochs = [load_checkpoint(SPEC, training, images, e, checkpoint_dir=tmp_path)
              for e in (1, 2, 3)]
    x = torch.as_tensor(images[:, None], dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(epochs[-1](x), model(x))
        assert not torch.equal(epochs[0](x), epochs[1](x))

    # Everything present: no training at all (Adam is never built).
    def no_training(*args, **kwargs):
        raise AssertionError("trained although every checkpoint exists")

    monkeypatch.setattr(cnn.torch.optim, "Adam", no_training)
    again, history_2 = train_classifier(SPEC, training, images, labels, checkpoint_dir=tmp_path,
                                        progress=False)
    assert same_weights(model, again) and not again.training
    pd.testing.assert_frame_equal(history, history_2, check_exact=False, rtol=1e-15)
    monkeypatch.undo()

    # A missing epoch trains again, to the same weights.
    (tmp_path / key / "epoch_002.pt").unlink()
    redone, _ = train_classifier(SPEC, training, images, labels, checkpoint_dir=tmp_path,
                                 progress=False)
    assert same_weights(model, redone)
    assert same_weights(epochs[1], load_checkpoint(SPEC, training, images, 2,
                                                   checkpoint_dir=tmp_path))
    assert not [p for p in os.listdir(tmp_path / key) if p.endswith(".tmp")]


def test_checkpoint_key_and_label_guard(digits, tmp_path):
    images, labels = digits[0][:100], digits[1][:100]
    keys = {checkpoint_key(SPEC, SHORT, images), checkpoint_key(SPEC, SHORT, images[:-1]),
            checkpoint_key(SPEC, dataclasses.replace(SHORT, seed=1), images),
            checkpoint_key(SPEC, dataclasses.replace(SHORT, rotation_augmentation=5.0), images),
            checkpoint_key(dataclasses.replace(SPEC, hidden=16), SHORT, images)}
    assert len(keys) == 5
    # The key is of the float32 images as trained on, whatever the caller's layout or type.
    assert checkpoint_key(SPEC, SHORT, images) == checkpoint_key(
        SPEC, SHORT, torch.as_tensor(images[:, None], dtype=torch.float32))
    train_classifier(SPEC, SHORT, images, labels, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="'labels' parameter of train_classifier differs"):
        train_classifier(SPEC, SHORT, images, labels[::-1].copy(), checkpoint_dir=tmp_path,
                         progress=False)


def test_layer_names_are_the_taps_of_a_numpy_forward_pass(digits):
    images = digits[0][:50]
    model = SmallCNN(SPEC, seed=2)
    model.train()
    features = layer_taps(model, images[:, None], SPEC.layer_names)
    expected = numpy_forward(model, images)
    assert list(features) == ["input", "conv1", "conv2", "fc1", "logits"]
    shapes = {"input": 64, "conv1": 8 * 4 * 4, "conv2": 16 * 2 * 2, "fc1": 32, "logits": 10}
    for name, width in shapes.items():
        assert features[name].shape == (50, width) and features[name].dtype == np.float32
        np.testing.assert_allclose(features[name], expected[name], rtol=0, atol=1e-5)
    assert np.array_equal(features["input"], images.reshape(50, -1).astype(np.float32))
    # The model's own mode is restored and no hook is left behind.
    assert model.training
    assert not model._forward_pre_hooks and not any(m._forward_hooks for m in model.modules())


def test_quarter_turns_are_rot90_and_zero_is_the_identity():
    rng = np.random.default_rng(0)
    # A pattern in the centre with a zero border: nothing crosses the frame.
    x = np.zeros((3, 2, 9, 9))
    x[:, :, 2:7, 2:7] = rng.random((3, 2, 5, 5))
    for dtype, atol in ((np.float64, 1e-12), (np.float32, 2e-6)):
        xd = x.astype(dtype)
        for k in (-1, 1, 2, 3):
            turned = rotate_images(xd, 90.0 * k)
            assert turned.dtype == dtype
            np.testing.assert_allclose(turned, np.rot90(xd, k, axes=(2, 3)), rtol=0, atol=atol)
        np.testing.assert_allclose(rotate_images(xd, 0.0), xd, rtol=0, atol=atol)
    as_tensor = rotate_images(torch.as_tensor(x[:, 0]), 90.0)
    assert isinstance(as_tensor, torch.Tensor)
    torch.testing.assert_close(as_tensor, torch.rot90(torch.as_tensor(x[:, 0]), 1, dims=(1, 2)),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("angle", [30.0, -75.0, 137.0, 11.5])
def test_rotation_moves_a_blob_centroid_by_the_angle(angle):
    height, width = 24, 40   # not square: angles act in pixel units, no shear
    rows, cols = np.mgrid[0:height, 0:width]
    cy, cx = (height - 1) / 2, (width - 1) / 2
    offsets = [(5.0, -2.0, 1.2), (3.0, 4.0, 2.0), (-5.5, 0.5, 1.2), (1.0, -5.0, 2.0)]
    blobs = np.stack([np.exp(-((cols - cx - dx) ** 2 + (rows - cy - dy) ** 2) / (2 * s * s))
                      for dx, dy, s in offsets])
    out = rotate_images(blobs, angle)
    t = np.radians(angle)
    for blob, turned, (dx, dy, _) in zip(blobs, out, offsets):
        mass = turned.sum()
        centroid = ((turned * (cols - cx)).sum() / mass, (turned * (rows - cy)).sum() / mass)
        # Counter-clockwise as displayed: y points up, so flip rows before and after.
        expected = (dx * np.cos(t) + dy * np.sin(t), dx * -np.sin(t) + dy * np.cos(t))
        np.testing.assert_allclose(centroid, expected, rtol=0, atol=0.02)
        assert mass == pytest.approx(blob.sum(), rel=0.02)


def test_per_image_angles_equal_a_loop():
    x = np.random.default_rng(1).random((4, 10, 10))
    angles = np.array([0.0, 12.0, -40.0, 95.0])
    looped = np.stack([rotate_images(x[i:i + 1], a)[0] for i, a in enumerate(angles)])
    np.testing.assert_allclose(rotate_images(x, angles), looped, rtol=0, atol=1e-14)


def test_augmentation_rotates_batches_and_nothing_else(digits, tmp_path, monkeypatch):
    images, labels = digits[0][:300], digits[1][:300]
    plain, history = train_classifier(SPEC, SHORT, images, labels,
                                      checkpoint_dir=tmp_path / "plain", progress=False)
    # Augmentation with the rotation replaced by the identity: the angle stream is
    # its own, so batch order and weights are those of plain training, bit for bit.
    seen = []

    def identity(x, angles):
        seen.append(angles.clone())
        return x

    monkeypatch.setattr(cnn, "_rotate", identity)
    training = dataclasses.replace(SHORT, rotation_augmentation=25.0)
    mocked, mocked_history = train_classifier(SPEC, training, images, labels,
                                              checkpoint_dir=tmp_path / "mocked", progress=False)
    monkeypatch.undo()
    assert same_weights(plain, mocked)
    pd.testing.assert_frame_equal(history, mocked_history, check_exact=True)
    assert len(seen) == 2 * 5   # ceil(300 / 64) batches per epoch
    drawn = torch.cat(seen).numpy()
    assert np.abs(drawn).max() <= 25.0 and len(np.unique(drawn)) == len(drawn) == 600
    # The real rotation does change training.
    rotated, _ = train_classifier(SPEC, training, images, labels,
                                  checkpoint_dir=tmp_path / "real", progress=False)
    assert not same_weights(plain, rotated)


def test_accuracy_of_a_known_classifier():
    # Zero weights everywhere but a logits bias: every image is put in class 3.
    model = SmallCNN(SPEC)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.logits.bias[3] = 1.0
    labels = np.array([3, 3, 1, 0, 3, 9, 3, 3])
    assert accuracy(model, np.zeros((8, 8, 8)), labels) == 5 / 8
    assert accuracy(model, np.zeros((8, 8, 8)), labels, batch_size=3) == 5 / 8


@pytest.mark.parametrize("kwargs, error, name", [
    ({"in_channels": 0}, ValueError, "in_channels"),
    ({"image_size": 3}, ValueError, "image_size"),        # two poolings need 4 pixels
    ({"image_size": 8.0}, TypeError, "image_size"),
    ({"channels": ()}, ValueError, "channels"),
    ({"channels": (4, 0)}, ValueError, "channels"),
    ({"channels": (4, 1.5)}, TypeError, "channels"),
    ({"channels": 4}, TypeError, "channels"),
    ({"hidden": 0}, ValueError, "hidden"),
    ({"n_classes": 1}, ValueError, "n_classes"),
])
def test_bad_spec_names_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=f"'{name}' parameter of CNNSpec"):
        CNNSpec(**kwargs)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": 1, "batch_size": 0}, ValueError, "batch_size"),
    ({"epochs": 1, "learning_rate": 0.0}, ValueError, "learning_rate"),
    ({"epochs": 1, "seed": -1}, ValueError, "seed"),
    ({"epochs": 1, "rotation_augmentation": -1.0}, ValueError, "rotation_augmentation"),
    ({"epochs": 1, "rotation_augmentation": 181.0}, ValueError, "rotation_augmentation"),
    ({"epochs": 1, "rotation_augmentation": "30"}, TypeError, "rotation_augmentation"),
])
def test_bad_training_names_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=f"'{name}' parameter of ClassifierTraining"):
        ClassifierTraining(**kwargs)


def test_bad_calls_name_the_parameter(digits, tmp_path):
    images, labels = digits[0][:20], digits[1][:20]
    train = lambda *a, **k: train_classifier(*a, checkpoint_dir=tmp_path / "c", progress=False,
                                             **k)
    with pytest.raises(ValueError, match=r"'images' parameter of train_classifier.*S = spec"):
        train(SPEC, SHORT, np.zeros((20, 9, 9)), labels)
    with pytest.raises(ValueError, match="'images' parameter of train_classifier.*finite"):
        train(SPEC, SHORT, np.full((20, 8, 8), np.nan), labels)
    with pytest.raises(ValueError, match=r"'labels' parameter of train_classifier.*\[0, 9\]"):
        train(SPEC, SHORT, images, labels + 1)
    with pytest.raises(ValueError, match=r"'labels' parameter of train_classifier.*\(20,\)"):
        train(SPEC, SHORT, images, labels[:-1])
    with pytest.raises(TypeError, match="'labels' parameter of train_classifier"):
        train(SPEC, SHORT, images, labels.astype(float))
    with pytest.raises(TypeError, match="'training' parameter of train_classifier"):
        train(SPEC, {"epochs": 1}, images, labels)
    with pytest.raises(ValueError, match="'device' parameter of train_classifier"):
        train(SPEC, SHORT, images, labels, device="abacus")
    with pytest.raises(TypeError, match="'checkpoint_dir' parameter of train_classifier"):
        train_classifier(SPEC, SHORT, images, labels, checkpoint_dir=3, progress=False)
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match=r"'epoch' parameter of load_checkpoint.*\[1, 2\]"):
        load_checkpoint(SPEC, SHORT, images, 3, checkpoint_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="epoch 1"):
        load_checkpoint(SPEC, SHORT, images, 1, checkpoint_dir=tmp_path)
    model = SmallCNN(SPEC)
    with pytest.raises(ValueError, match="'batch_size' parameter of accuracy"):
        accuracy(model, images, labels, batch_size=0)
    with pytest.raises(TypeError, match="'model' parameter of accuracy"):
        accuracy(torch.nn.Linear(64, 10), images, labels)
    with pytest.raises(ValueError, match=r"'angles_degrees' parameter of rotate_images.*\(20,\)"):
        rotate_images(images, np.zeros(3))
    with pytest.raises(ValueError, match="'images' parameter of rotate_images"):
        rotate_images(images[0], 10.0)


def test_failed_write_leaves_no_partial_checkpoint(digits, tmp_path, monkeypatch):
    images, labels = digits[0][:100], digits[1][:100]

    def broken_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(cnn.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        train_classifier(SPEC, SHORT, images, labels, checkpoint_dir=tmp_path, progress=False)
    folder = tmp_path / checkpoint_key(SPEC, SHORT, images)
    assert sorted(os.listdir(folder)) == ["record.json"]
    monkeypatch.undo()
    model, _ = train_classifier(SPEC, SHORT, images, labels, checkpoint_dir=tmp_path,
                                progress=False)
    assert same_weights(model, load_checkpoint(SPEC, SHORT, images, 2, checkpoint_dir=tmp_path))


# --- the training engine ------------------------------------------------------------------


def reference_loop(spec, training, images, labels):
    """The epoch loop train_classifier ran before the engine (commit 671c419), on the CPU."""
    init_seed, order_seed, angle_seed = split_seeds(training.seed)
    model = SmallCNN(spec, seed=init_seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=training.learning_rate)
    order = torch.Generator().manual_seed(order_seed)
    angles = torch.Generator().manual_seed(angle_seed)
    x = torch.as_tensor(images[:, None], dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    states, rows = [], []
    for epoch in range(1, training.epochs + 1):
        model.train()
        loss_sum, hits = torch.zeros((), dtype=torch.float64), 0
        for batch in torch.randperm(len(x), generator=order).split(training.batch_size):
            xb, yb = x[batch], y[batch]
            if training.rotation_augmentation > 0:
                draw = 2 * torch.rand(len(batch), generator=angles, dtype=torch.float64) - 1
                xb = rotate_images(xb, draw * training.rotation_augmentation)
            scores = model(xb)
            loss = torch.nn.functional.cross_entropy(scores, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * len(batch)
            hits += int((scores.detach().argmax(1) == yb).sum())
        rows.append({"epoch": epoch, "train_loss": float(loss_sum) / len(x),
                     "train_accuracy": hits / len(x)})
        states.append(state(model))
    return states, pd.DataFrame(rows)


@pytest.mark.parametrize("training", [
    ClassifierTraining(epochs=3, batch_size=64, learning_rate=1e-2, seed=0),
    ClassifierTraining(epochs=3, batch_size=48, learning_rate=1e-2, seed=4,
                       rotation_augmentation=30.0),
    ClassifierTraining(epochs=2, batch_size=300, learning_rate=3e-3, seed=7),   # one batch
], ids=["plain", "rotations", "full-batch"])
def test_engine_reproduces_the_hand_written_loop_bit_for_bit(digits, tmp_path, training):
    images, labels = digits[0][:300], digits[1][:300]
    model, history = train_classifier(SPEC, training, images, labels, checkpoint_dir=tmp_path,
                                      progress=False)
    states, expected = reference_loop(SPEC, training, images, labels)
    for epoch, reference in enumerate(states, start=1):
        saved = state(load_checkpoint(SPEC, training, images, epoch, checkpoint_dir=tmp_path))
        assert all(torch.equal(saved[k], reference[k]) for k in reference), epoch
    assert all(torch.equal(v, states[-1][k]) for k, v in state(model).items())
    pd.testing.assert_frame_equal(history, expected, check_exact=True)


def held_out(digits, n_train=600, n_val=300):
    """Training and held-out digits from a seeded permutation (the set is sorted by class)."""
    order = np.random.default_rng(0).permutation(len(digits[0]))
    images, labels = digits[0][order], digits[1][order]
    return ((images[:n_train], labels[:n_train]),
            (images[n_train:n_train + n_val], labels[n_train:n_train + n_val]))


def test_frozen_weights_converge_at_the_first_epoch_the_rule_looks(digits, tmp_path):
    (images, labels), (val_images, val_labels) = held_out(digits)
    frozen = ClassifierTraining(epochs=10, batch_size=100, learning_rate=1e-12, rel_tol=1e-3,
                                window=2)
    _, history = train_classifier(SPEC, frozen, images, labels, val_images=val_images,
                                  val_labels=val_labels, checkpoint_dir=tmp_path,
                                  progress=False)
    run = training_record(SPEC, frozen, images, checkpoint_dir=tmp_path)
    assert (run["stopped"], run["epochs_trained"], run["steps"]) == ("converged", 2, 12)
    assert history["epoch"].tolist() == [1, 2]


def test_held_out_digits_stop_training_where_the_rule_says(digits, tmp_path, monkeypatch):
    (images, labels), (val_images, val_labels) = held_out(digits)
    training = ClassifierTraining(epochs=40, batch_size=64, learning_rate=1e-2, rel_tol=0.05,
                                  window=2)
    model, history = train_classifier(SPEC, training, images, labels, val_images=val_images,
                                      val_labels=val_labels, checkpoint_dir=tmp_path,
                                      progress=False)
    run = training_record(SPEC, training, images, checkpoint_dir=tmp_path)
    assert run["stopped"] == "converged" and run["epochs_trained"] < training.epochs
    assert history.columns.tolist() == ["epoch", "train_loss", "train_accuracy", "val_loss",
                                        "val_accuracy"]
    assert len(history) == run["epochs_trained"] and run["steps"] == 10 * len(history)
    # The rule recomputed from the history: best held-out loss b_k after epoch k, with b_0
    # the untrained model's (the first check may use it).
    logits = numpy_forward(SmallCNN(SPEC, seed=split_seeds(training.seed)[0]),
                           val_images)["logits"]
    best = np.minimum.accumulate(np.concatenate([[cross_entropy(logits, val_labels)],
                                                 history["val_loss"].to_numpy()]))
    gains = best[:-2] - best[2:] < 0.05 * np.abs(best[:-2])
    assert np.flatnonzero(gains)[0] + 2 == run["epochs_trained"]
    assert run["val_loss"] == pytest.approx(best[-1], rel=1e-12)
    assert run["best_step"] == 10 * (int(np.argmin(history["val_loss"])) + 1)
    # The last epoch's held-out loss and accuracy are the returned model's, which is the
    # last epoch's (nothing restored), and no epoch after it was saved.
    last = numpy_forward(model, val_images)["logits"]
    assert history["val_loss"].iloc[-1] == pytest.approx(cross_entropy(last, val_labels),
                                                         rel=1e-5)
    assert history["val_accuracy"].iloc[-1] == accuracy(model, val_images, val_labels)
    assert same_weights(model, load_checkpoint(SPEC, training, images, len(history),
                                               checkpoint_dir=tmp_path))
    with pytest.raises(FileNotFoundError, match="stopped early"):
        load_checkpoint(SPEC, training, images, len(history) + 1, checkpoint_dir=tmp_path)

    # Fewer epochs than the budget, yet finished: the cache serves it, record and all.
    def no_training(*args, **kwargs):
        raise AssertionError("trained although the run is stored")

    monkeypatch.setattr(cnn.torch.optim, "Adam", no_training)
    again, history_2 = train_classifier(SPEC, training, images, labels, val_images=val_images,
                                        val_labels=val_labels, checkpoint_dir=tmp_path,
                                        progress=False)
    assert same_weights(model, again)
    pd.testing.assert_frame_equal(history, history_2, check_exact=False, rtol=1e-15)
    assert training_record(SPEC, training, images, checkpoint_dir=tmp_path) == run


def cross_entropy(logits, labels):
    peak = logits.max(axis=1)
    log_z = np.log(np.exp(logits - peak[:, None]).sum(axis=1)) + peak
    return float(np.mean(log_z - logits[np.arange(len(labels)), labels]))


def test_a_budget_shorter_than_the_window_reports_budget(digits, tmp_path):
    (images, labels), (val_images, val_labels) = held_out(digits)
    training = ClassifierTraining(epochs=2, batch_size=64, learning_rate=1e-2, rel_tol=0.5,
                                  window=3)
    _, history = train_classifier(SPEC, training, images, labels, val_images=val_images,
                                  val_labels=val_labels, checkpoint_dir=tmp_path,
                                  progress=False)
    run = training_record(SPEC, training, images, checkpoint_dir=tmp_path)
    assert (run["stopped"], run["epochs_trained"], len(history)) == ("budget", 2, 2)
    assert json.loads(json.dumps(run)) == run


def test_other_held_out_data_under_one_folder_is_refused(digits, tmp_path):
    (images, labels), (val_images, val_labels) = held_out(digits, 200, 50)
    train_classifier(SPEC, SHORT, images, labels, val_images=val_images, val_labels=val_labels,
                     checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="'val_images' parameter of train_classifier"):
        train_classifier(SPEC, SHORT, images, labels, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="'val_images' parameter of train_classifier"):
        train_classifier(SPEC, SHORT, images, labels, val_images=val_images,
                         val_labels=val_labels[::-1].copy(), checkpoint_dir=tmp_path,
                         progress=False)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"rel_tol": -0.1}, ValueError, "rel_tol"),
    ({"rel_tol": float("inf")}, ValueError, "rel_tol"),
    ({"rel_tol": "0.1"}, TypeError, "rel_tol"),
    ({"window": 0}, ValueError, "window"),
    ({"window": 2.0}, TypeError, "window"),
])
def test_bad_stopping_rule_names_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=f"'{name}' parameter of ClassifierTraining"):
        ClassifierTraining(epochs=1, **kwargs)


def test_zero_tolerance_is_one_training_whatever_its_type():
    assert ClassifierTraining(epochs=1, rel_tol=0) == ClassifierTraining(epochs=1)
    x = np.zeros((3, 8, 8))
    assert checkpoint_key(SPEC, ClassifierTraining(epochs=1, rel_tol=0), x) == checkpoint_key(
        SPEC, ClassifierTraining(epochs=1), x)


def test_bad_held_out_data_is_refused_before_training(digits, tmp_path):
    images, labels = digits[0][:20], digits[1][:20]

    def train(**kwargs):
        return train_classifier(SPEC, SHORT, images, labels, checkpoint_dir=tmp_path / "c",
                                progress=False, **kwargs)

    with pytest.raises(ValueError, match="'val_labels' parameter of train_classifier"):
        train(val_images=images)
    with pytest.raises(ValueError, match="'val_images' parameter of train_classifier"):
        train(val_labels=labels)
    with pytest.raises(ValueError, match=r"'val_images' parameter of train_classifier.*S = spec"):
        train(val_images=np.zeros((5, 9, 9)), val_labels=labels[:5])
    with pytest.raises(ValueError, match=r"'val_labels' parameter of train_classifier.*\(5,\)"):
        train(val_images=images[:5], val_labels=labels[:4])
    with pytest.raises(ValueError, match=r"'val_labels' parameter of train_classifier.*\[0, 9\]"):
        train(val_images=images[:5], val_labels=labels[:5] + 10)
    with pytest.raises(TypeError, match="'val_labels' parameter of train_classifier"):
        train(val_images=images[:5], val_labels=labels[:5].astype(float))
    with pytest.raises(ValueError, match="'val_images' parameter of train_classifier.*finite"):
        train(val_images=np.full((5, 8, 8), np.nan), val_labels=labels[:5])
    assert not (tmp_path / "c").exists()
    with pytest.raises(FileNotFoundError, match="No finished training run"):
        training_record(SPEC, SHORT, images, checkpoint_dir=tmp_path)
    with pytest.raises(TypeError, match="'checkpoint_dir' parameter of training_record"):
        training_record(SPEC, SHORT, images, checkpoint_dir=None)
    with pytest.raises(ValueError, match="'images' parameter of training_record"):
        training_record(SPEC, SHORT, np.zeros((3, 9, 9)), checkpoint_dir=tmp_path)


def test_a_stopping_rule_without_held_out_digits_is_refused_before_training(digits, tmp_path):
    (images, labels), _ = held_out(digits)
    training = ClassifierTraining(epochs=3, rel_tol=0.01)
    with pytest.raises(ValueError, match="'val_images' parameter of train_classifier must be "
                                         "given when training.rel_tol > 0"):
        train_classifier(SPEC, training, images, labels, checkpoint_dir=tmp_path,
                         progress=False)
    assert not any(tmp_path.iterdir())
