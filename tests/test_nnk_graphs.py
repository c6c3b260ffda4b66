"""The nnk-graphs study (lib.studies.nnk_graphs): its CNN stopping rules and its devices.

Truths and tolerances:

- corrupt_labels: the share of replaced labels is Binomial(N, rate) / N, so
  with N = 200,000 it lies within 5 standard deviations, 5 sqrt(rate (1 - rate) / N),
  of the rate; a replaced label is never the true one, and each of the other
  n - 1 classes receives 1/(n - 1) of them, again within 5 binomial standard
  deviations.
- channel_rule: frozen and improved counts worked out by hand from the rule
  (an equal error is no improvement; an improvement resets the counter; a
  frozen channel stays frozen even if its error later falls).
- stopping_epochs: each minimum-based rule keeps the epoch of its minimum (the
  earliest on ties), built into a synthetic table; the channel-wise rule keeps
  the last epoch with an improving channel before every channel froze.
- stopping_summary: the Student-t interval of (1, 2, 3) is 2 +- t_{0.975, 2} / sqrt(3),
  with t_{0.975, 2} = 4.302652729911275 (Student's t table).
- A CNN that converges before its budget (forced here: a tolerance no run can
  beat stops every run after its first window) is read at the epoch it
  stopped, never at the budget it did not train: a function that assumed the
  budget would ask for a checkpoint that was never written.

- The parameter defaults to "cpu", and "cuda" is refused where torch sees no
  CUDA GPU, with an error naming the parameter and the chapter (lib.params.Device).
- CNNs trained on CUDA keep their checkpoints under a key holding the device
  type, and the study reads them back from there: every network trains its
  full ci budget (no held-out loss, so none converges early). The input
  layer's features are the digits themselves whatever the network, so its
  NNK neighbourhoods agree exactly across seeds (stability 1.0), wherever
  the network ran; every stability is a mean Jaccard index, in [0, 1].
- The eigenvalue chapter's autoencoders, trained on CUDA, encode there: one
  row per latent dimension, finite, with a local PCA dimension of the codes
  at most d (the codes lie in R^d).
- The plan (study.plan) counts its units from the sizes exactly, and the
  CNN's steps from the digits digit_split gives; its default estimate, at a
  fixed machine speed, lies within 5x of the measured cold wall time.
"""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lib.studies import eigenvalues
from lib.studies import nnk_graphs as study


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cnns_trained_on_cuda_are_read_back_and_measured(tmp_path):
    """The ci CNNs (8x8 digits, 3 epochs): trained, their records read, their layers graphed."""
    config = study.Config(preset="ci", device="cuda")
    sizes = study.SIZES["ci"]
    trainings = study.cnn_training(config, tmp_path)
    assert len(trainings) == sizes["cnn_seeds"] + 1
    assert set(trainings["stopped"]) <= {"budget", "converged"}
    assert (trainings["epochs"] <= sizes["cnn_epochs"]).all()
    stability = study.stability(config, tmp_path).set_index("layer")
    assert stability.loc["input", "stability"] == 1.0
    assert stability["stability"].between(0.0, 1.0).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_autoencoder_codes_of_models_trained_on_cuda(tmp_path):
    config = study.Config(preset="ci", device="cuda")
    autoencoders = eigenvalues.Config(preset="ci", device="cuda")
    codes = study.autoencoder_codes(config, autoencoders, tmp_path).set_index("latent d")
    assert list(codes.index) == list(autoencoders.sizes["latent_dims"])
    assert np.isfinite(codes.to_numpy()).all()
    assert (codes["NNK local PCA d"] <= codes.index).all()


# --- label noise and the digit split ----------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5])
def test_corrupt_labels_replaces_the_rate_uniformly_among_the_other_classes(rate):
    count, classes = 200_000, 10
    labels = np.arange(count) % classes
    noisy = study.corrupt_labels(labels, rate, n_classes=classes, seed=1)
    replaced = noisy != labels
    assert abs(replaced.mean() - rate) <= 5 * math.sqrt(rate * (1 - rate) / count)
    if rate == 0:
        return
    shift = (noisy[replaced] - labels[replaced]) % classes
    assert shift.min() >= 1      # never the true class
    share = np.bincount(shift, minlength=classes)[1:] / replaced.sum()
    p = 1 / (classes - 1)
    assert np.abs(share - p).max() <= 5 * math.sqrt(p * (1 - p) / replaced.sum())


@pytest.mark.parametrize(("kwargs", "error", "name"), [
    (dict(rate=1.0), ValueError, "rate"), (dict(rate=-0.1), ValueError, "rate"),
    (dict(rate=0.1, n_classes=1), ValueError, "n_classes"),
    (dict(rate=0.1, labels=np.array([0, 10])), ValueError, "labels"),
    (dict(rate=0.1, labels=np.array([0.0, 1.0])), TypeError, "labels"),
])
def test_corrupt_labels_bad_input_names_the_parameter(kwargs, error, name):
    kwargs = {"labels": np.array([0, 1, 2]), **kwargs}
    with pytest.raises(error, match=f"'{name}' parameter of corrupt_labels"):
        study.corrupt_labels(kwargs.pop("labels"), kwargs.pop("rate"), **kwargs)


def test_digit_split_is_disjoint_noisy_where_trained_and_clean_where_tested():
    config = study.Config(preset="ci")
    sizes = config.sizes
    digits = study.digit_split(config)
    images, noisy = digits.train
    assert len(digits.validation[1]) == sizes["validation"]
    assert len(digits.probe) == sizes["probe"] and digits.probe.max() < len(noisy)
    flat = lambda x: {row.tobytes() for row in x.reshape(len(x), -1)}   # noqa: E731
    assert not flat(images) & flat(digits.validation[0])
    assert not flat(images) & flat(digits.test[0])
    # The replaced share is Binomial(N, rate) / N: within 5 standard deviations.
    n, rate = len(noisy), sizes["label_noise"]
    assert abs(digits.flipped.mean() - rate) <= 5 * math.sqrt(rate * (1 - rate) / n)
    again = study.digit_split(config)
    assert np.array_equal(again.train[1], noisy) and np.array_equal(again.probe, digits.probe)


def test_measured_epochs_keep_the_first_and_the_last():
    assert study.measured_epochs(3, None) == [1, 2, 3]
    assert study.measured_epochs(3, 10) == [1, 2, 3]
    epochs = study.measured_epochs(50, 5)
    assert epochs[0] == 1 and epochs[-1] == 50 and epochs == sorted(set(epochs))
    assert len(epochs) == 5
    # Spaced over a common budget, runs that stop at different epochs share all but the last.
    short, long = (study.measured_epochs(e, 6, budget=60) for e in (28, 29))
    assert short[:-1] == long[:-1] and (short[-1], long[-1]) == (28, 29)
    with pytest.raises(ValueError, match="'epochs_trained' parameter of measured_epochs"):
        study.measured_epochs(0, None)


# --- the stopping rules -----------------------------------------------------------------------

def test_channel_rule_counts_patience_by_hand():
    errors = np.array([[0.5, 0.4, 0.3],
                       [0.4, 0.4, 0.3],    # c0 improves; c1, c2 equal: no gain
                       [0.4, 0.3, 0.3],    # c1 improves (reset); c0 no gain; c2 frozen (p=2)
                       [0.4, 0.3, 0.1],    # c2 would improve but is frozen; c0 frozen
                       [0.4, 0.3, 0.1]])   # c1 frozen
    rule = study.channel_rule(errors, 2)
    assert rule["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert rule["improved channels"].tolist() == [3, 1, 1, 0, 0]
    assert rule["frozen channels"].tolist() == [0, 0, 1, 2, 3]


def test_channel_rule_bad_input_names_the_parameter():
    with pytest.raises(ValueError, match="'patience' parameter of channel_rule"):
        study.channel_rule(np.zeros((3, 2)), 0)
    with pytest.raises(ValueError, match="'errors' parameter of channel_rule"):
        study.channel_rule(np.zeros(3), 1)


def _curves(replicate, validation, loo, test, improved, frozen, loss=None):
    count = len(test)
    return pd.DataFrame({"replicate": replicate, "epoch": np.arange(1, count + 1),
                         "validation error": validation, "NNK LOO error": loo,
                         "validation loss": validation if loss is None else loss,
                         "test error": test, "improved channels": improved,
                         "frozen channels": frozen, "channels": 2})


def test_stopping_epochs_keep_each_criterions_minimum_and_the_channel_rules_epoch():
    table = pd.concat([
        # Validation minimum tied at epochs 2 and 4: the earliest; LOO lowest at 1; every
        # channel frozen at epoch 4, the last improvement at 3.
        _curves(0, [0.5, 0.2, 0.3, 0.2, 0.4], [0.1, 0.3, 0.3, 0.3, 0.3],
                [0.6, 0.25, 0.3, 0.2, 0.5], [2, 1, 1, 0, 0], [0, 0, 1, 2, 2],
                loss=[1.0, 0.9, 0.8, 0.85, 0.9]),
        # The channels never all freeze: the rule does not stop, it keeps its last improvement.
        _curves(1, [0.5, 0.4, 0.3], [0.3, 0.2, 0.25], [0.5, 0.45, 0.35], [2, 0, 1],
                [0, 1, 1]),
    ])
    picks = study.stopping_epochs(table).set_index(["replicate", "rule"])
    rules = study.STOPPING_RULES
    expected = {(0, rules[0]): (2, 0.25, True), (0, rules[1]): (3, 0.3, True),
                (0, rules[2]): (1, 0.6, True), (0, rules[3]): (3, 0.3, True),
                (0, rules[4]): (5, 0.5, False), (0, rules[5]): (4, 0.2, True),
                (1, rules[0]): (3, 0.35, False), (1, rules[2]): (2, 0.45, True),
                (1, rules[3]): (3, 0.35, False), (1, rules[4]): (3, 0.35, False)}
    for index, (epoch, error, stopped) in expected.items():
        row = picks.loc[index]
        assert (row["epoch"], row["rule stopped"]) == (epoch, stopped), index
        assert row["test error"] == pytest.approx(error, abs=1e-15), index


def test_stopping_summary_is_the_student_t_interval_over_seeds():
    per_seed = pd.DataFrame([{"replicate": r, "rule": rule, "epoch": r + 1,
                              "test error": 0.1 * (r + 1), "rule stopped": r == 0}
                             for rule in study.STOPPING_RULES for r in range(3)])
    summary = study.stopping_summary(per_seed).set_index("rule")
    half = 4.302652729911275 / math.sqrt(3)      # t_{0.975, 2} * s / sqrt(3), s = 1
    row = summary.loc[study.STOPPING_RULES[0]]
    assert row["epoch"] == pytest.approx(2.0, abs=1e-12)
    assert row["epoch low"] == pytest.approx(2 - half, abs=1e-9)
    assert row["epoch high"] == pytest.approx(2 + half, abs=1e-9)
    assert row["test error high"] == pytest.approx(0.2 + 0.1 * half, abs=1e-9)
    assert row["stopped"] == 1 and row["seeds"] == 3
    assert list(summary.index) == list(study.STOPPING_RULES)


def test_networks_that_stop_early_are_read_at_the_epoch_they_stopped(tmp_path, monkeypatch):
    """A tolerance of 10 (1000% improvement per window) converges every run after one epoch."""
    monkeypatch.setattr(study, "CNN_REL_TOL", 10.0)
    monkeypatch.setitem(study.SIZES, "ci", dict(study.SIZES["ci"], cnn_epochs=3, cnn_window=1,
                                                cnn_seeds=2, probe=60, rotated_digits=20,
                                                angles=3))
    config = study.Config(preset="ci")
    trainings = study.cnn_training(config, tmp_path)
    assert (trainings["stopped"] == "converged").all()
    assert (trainings["epochs"] == 1).all()
    assert study.layer_epochs(config, tmp_path)["epoch"].max() == 1
    curves = study.channel_epochs(config, tmp_path)
    assert curves.groupby("replicate")["epoch"].max().tolist() == [1, 1]
    assert study.stability(config, tmp_path).set_index("layer").loc["input", "stability"] == 1.0
    assert len(study.rotation_invariance(config, tmp_path)) == 2 * 5


def test_claim_verdicts_read_each_claim_by_its_criterion():
    """Three seeds; every number is chosen so the verdict is known."""
    rules = study.STOPPING_RULES
    per_seed = pd.DataFrame([
        {"replicate": r, "rule": rule, "test error": error}
        for r, offset in enumerate((-0.001, 0.0, 0.001))
        for rule, error in ((rules[0], 0.10 + offset), (rules[2], 0.15 + offset),   # +5%: fails
                            (rules[3], 0.10 + 2 * offset))])                       # 0 +- 0.2%
    by_channel = pd.DataFrame([
        {"replicate": r, "epoch": e, "NNK LOO error": loo * e, "test error": 0.1 * e}
        for r, loo in enumerate((0.04, 0.05, 0.06)) for e in (1, 2, 3)])          # 0.5 of test
    spreading = pd.DataFrame([
        {"graph": graph, "k": k, "fraction": 0.1, "repeat": r,
         "accuracy": 0.9 - (0.01 if graph == "NNK" else 0.1) * k / 40 + 0.001 * r}
        for graph in ("NNK", "kNN") for k in (5, 10, 20, 40) for r in range(3)])
    calibration = pd.DataFrame({"family": "point cloud",
                                "data": ["cube d=1", "cube d=2", "sphere d=1", "sphere d=2"],
                                "true d": [1, 2, 1, 2], "NNK degree": [2.0, 4.0, 2.0, 1.9]})
    verdicts = study.claim_verdicts(per_seed, by_channel, spreading, calibration)["verdict"]
    assert verdicts.tolist() == ["does not hold", "holds", "holds", "holds",
                                 "inconclusive at these sizes"]


def test_plan_counts_the_chapters_units_at_every_preset():
    """The networks the chapter trains or reads (its CNNs, the eigenvalue chapter's depth-4
    autoencoders, layer-geometry's beta-VAEs) and the graphs it builds, counted from the
    sizes; the CNNs' steps from the training digits digit_split gives; more work at larger
    presets; the default within 5x of the chapter's measured cold wall time."""
    from lib.models.cnn import CNNSpec, SmallCNN
    from lib.models.taps import layer_taps
    from lib.plans import Speed, stage_seconds, training_steps
    from lib.studies import layer_geometry

    speed = Speed(rate=7.8e10, overhead=6.6e-4)          # this machine's, measured 2026-12
    totals, peaks = [], []
    for preset in ("ci", "default", "paper"):
        config = study.Config(preset=preset)
        sizes = config.sizes
        stages = {stage.name: stage for stage in study.plan(config)}
        epochs_measured = len(study.measured_epochs(sizes["cnn_epochs"], sizes["layer_epochs"]))
        size = layer_geometry.SIZES[preset]["image_size"]
        vae_layers = 2 * len(layer_geometry.BetaVAESpec(image_size=size).layer_names)
        assert {name: stage.units for name, stage in stages.items()} == {
            "train eigenvalue-predictors' autoencoder":
                len(eigenvalues.SIZES[preset]["latent_dims"]),
            "train layer-geometry's beta-VAE": 2,
            "train CNN": sizes["cnn_seeds"] + 1,
            "CNN epoch: NNK leave-one-out on the probe digits":
                sizes["cnn_seeds"] * sizes["cnn_epochs"],
            "CNN layer graphs at a measured epoch": sizes["cnn_seeds"] * epochs_measured,
            "CNN layer graphs of a seed's last epoch": sizes["cnn_seeds"],
            "rotated digits through a CNN": 2,
            "calibration point cloud": 3 * len(sizes["dims"]),
            "calibration image cloud": 2 * len(sizes["image_dims"]),
            "degree calibration on a cube": max(sizes["dims"] + sizes["image_dims"]) + 1,
            "propagation graphs at one k": len(sizes["ks"]),
            "beta-VAE layer graph": vae_layers}
        assert all(stage.cached is None and not stage.parallel for stage in stages.values())
        totals.append(sum(stage.units * stage_seconds(stage, speed)
                          for stage in stages.values()))
        peaks.append(max(stage.peak_bytes for stage in stages.values()))
    assert totals[0] < totals[1] < totals[2] and peaks[0] < peaks[1] < peaks[2]
    # Measured 2026-12-06: 1,157 s cold at default, its networks trained until they converged
    # (the plan costs their budgets).
    assert 1157 / 5 < totals[1] < 1157 * 5
    # The CNN's step count follows the digits it trains on, its widths the taps it reads.
    config = study.Config(preset="ci")
    train = len(study.digit_split(config).train[1])
    cnn = next(stage for stage in study.plan(config) if stage.name == "train CNN")
    assert cnn.steps == training_steps(train, 128, config.sizes["cnn_epochs"])
    spec = CNNSpec(image_size=8)
    taps = layer_taps(SmallCNN(spec).eval(), np.zeros((1, 1, 8, 8), np.float32),
                      list(spec.layer_names[1:]))
    assert [width for _, width, _ in study._cnn_layers(spec)] == [
        64, *(taps[name].shape[1] for name in spec.layer_names[1:])]
