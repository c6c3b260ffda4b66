"""The layer-geometry study (lib.studies.layer_geometry) against exact answers.

Truths and tolerances:

- The input layer is the rendered images themselves, so on the same grid and
  renderer its measurements are those of image_manifolds.class_geometry; both
  run the same float64 pipeline, so they agree to rounding (1e-10 relative;
  observed: equal).
- An isometry (orthogonal linear map plus a shift, then a zero-padded
  embedding in a wider space) keeps every distance, so every layer's volume,
  curvature, reach and class distance equal the input's up to float64
  rounding amplified by three nested stencils (1e-8 relative; see
  tests/test_taps.py: 1e-16 / h^3 ~ 1e-13 in units of the curvature).
- A layer that multiplies by c after the rotation scales a k-manifold's
  volume by c^k, its total curvature by c^(k-2), its reach and distances by
  c and its reach integral by c^(k+1) (closed forms), to the same 1e-8; after
  rescaling each layer to unit volume nothing changes.
- TwoNN on uniform samples of a d-dimensional image manifold: within 0.5 of
  d at 400 points (measured 1.77-2.02 for d = 2 and 2.84-3.05 for d = 3 on
  500-2000 points, 2026-11-23); a rank-one layer leaves a curve (within 0.5
  of 1).
- The difference stencil the study evaluates reads the grid's own samples,
  so its tangents equal lib.geometry.differences.gradient at grid points to
  rounding (1e-12).
- The plan (study.plan) counts its units from the sizes exactly; its layer
  widths equal the features layer_taps reads, and its multiply-adds are
  summed by hand; its default estimate, at a fixed machine speed, lies within
  5x of the measured cold wall time (a cost model, not a truth).
"""

from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch

from lib import book
from lib.datasets import dsprites
from lib.datasets.toy import Torus
from lib.geometry.differences import gradient, stencil_derivatives
from lib.geometry.measures import COLUMNS
from lib.models.beta_vae import BetaVAE, BetaVAESpec
from lib.studies import image_manifolds
from lib.studies import layer_geometry as study

MEASURED = list(COLUMNS[1:-1])     # the numeric columns, without the degenerate count
SIZE = 32
RENDERER = dsprites.DSprites(image_size=SIZE, blur=0.8)
# 12 rotations: with 8 (45 degree steps) the square at theta +- h is the same image (its
# 90 degree symmetry), so its central difference along the rotation is zero.
SMALL_3D = dict(scales=8, rotations=12, translations=8, max_shift=3.5)


def sprite_classes(dim, **grid_options):
    data = dsprites.extended_dsprites(dim, renderer=RENDERER, dtype=torch.float64,
                                      **grid_options)
    return {label: data.values(label) for label in data.classes}, data.grid


def orthogonal(n, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def linear(weight, bias):
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
        layer.bias.copy_(torch.as_tensor(bias))
    return layer


def isometric_network(dim_in, *, scale=1.0, seed=0):
    """flatten -> rotate (orthogonal, shifted) -> stretch (times scale) -> embed (zero rows)."""
    rng = np.random.default_rng(seed)
    extra = 7
    embed = np.vstack([orthogonal(dim_in, seed + 1), np.zeros((extra, dim_in))])
    return torch.nn.Sequential(OrderedDict(
        flatten=torch.nn.Flatten(),
        rotate=linear(orthogonal(dim_in, seed), rng.normal(size=dim_in)),
        stretch=linear(scale * np.eye(dim_in), np.zeros(dim_in)),
        embed=linear(embed, rng.normal(size=dim_in + extra))))


LAYERS = ["input", "rotate", "stretch", "embed"]


def by_layer(table, layer, scale="raw"):
    part = table[(table["layer"] == layer) & (table["scale"] == scale)]
    return part.set_index("class")[MEASURED]


def test_input_layer_equals_the_image_manifold_chapter(monkeypatch):
    # The image-manifold chapter's ci dSprites grid (d = 2, 64 x 64, blur 0.8), dSprites only.
    reference_config = image_manifolds.Config(preset="ci", dsprites_dim=2)
    original = image_manifolds._sources
    monkeypatch.setattr(image_manifolds, "_sources", lambda config: original(config)[:1])
    reference = image_manifolds.class_geometry(reference_config)
    scaled_reference = image_manifolds.scaled_geometry(reference)

    monkeypatch.setitem(study.SIZES, "ci", dict(
        study.SIZES["ci"], image_size=64, dsprites=dict(dim=2, grid=dict(scales=10, rotations=12)),
        twonn_points=20))
    config = study.Config(preset="ci")
    table = study.layer_measures(config, datasets=["dsprites"], networks=["untrained"],
                                 layers=["input"])
    assert set(table["layer"]) == {"input"} and (table["degenerate points"] == 0).all()
    for scale, truth in (("raw", reference), ("unit volume", scaled_reference)):
        pd.testing.assert_frame_equal(by_layer(table, "input", scale),
                                      truth.set_index("class")[MEASURED], rtol=1e-10)


def test_isometric_layers_keep_volume_curvature_reach_and_distances():
    classes, grid = sprite_classes(2, scales=10, rotations=12)
    model = isometric_network(SIZE * SIZE)
    table = study.grid_layer_measures(model, classes, grid, image_shape=(1, SIZE, SIZE),
                                      layers=LAYERS)
    first = by_layer(table, "input")
    assert (first["volume"] > 0).all() and (first["min reach"] > 0).all()
    for layer in LAYERS[1:]:
        pd.testing.assert_frame_equal(by_layer(table, layer), first, rtol=1e-8)
    assert list(table["depth"].unique()) == [0, 1, 2, 3]


def test_a_stretched_layer_changes_the_measures_by_their_closed_forms():
    c, k = 2.0, 3
    classes, grid = sprite_classes(k, **SMALL_3D)
    model = isometric_network(SIZE * SIZE, scale=c)
    table = study.grid_layer_measures(model, classes, grid, image_shape=(1, SIZE, SIZE),
                                      layers=LAYERS)
    first = by_layer(table, "input")
    exponents = {"volume": k, "curvature": k - 2, "curvature+": k - 2, "curvature-": k - 2,
                 "min reach": 1, "reach integral": k + 1, "class distance": 1}
    assert (first["curvature+"] > 0).all() and (first["curvature-"] < 0).all()
    pd.testing.assert_frame_equal(by_layer(table, "rotate"), first, rtol=1e-8)
    for layer in ("stretch", "embed"):
        predicted = first * pd.Series({name: c**p for name, p in exponents.items()})
        pd.testing.assert_frame_equal(by_layer(table, layer), predicted[MEASURED], rtol=1e-8)
        pd.testing.assert_frame_equal(by_layer(table, layer, "unit volume"),
                                      by_layer(table, "input", "unit volume"), rtol=1e-8)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_network_on_cuda_gives_the_cpu_measures():
    classes, grid = sprite_classes(2, scales=10, rotations=12)
    model = isometric_network(SIZE * SIZE, scale=2.0)
    on_cpu = study.grid_layer_measures(model, classes, grid, image_shape=(1, SIZE, SIZE),
                                       layers=LAYERS)
    on_gpu = study.grid_layer_measures(model.cuda(), classes, grid, image_shape=(1, SIZE, SIZE),
                                       layers=LAYERS)
    pd.testing.assert_frame_equal(on_gpu, on_cpu, rtol=1e-8)


def uniform_sprites(dim, count, seed, **grid_options):
    region = dsprites.dsprites_grid(dim, **grid_options).interior(study.BUFFER)
    theta = region.uniform_points(count, seed=seed)
    return {label: RENDERER.render(label, dsprites.full_parameters(theta, dim)).reshape(count, -1)
            for label in ("ellipse", "heart")}


@pytest.mark.parametrize("dim, grid_options", [(2, dict(scales=10, rotations=12)),
                                               (3, SMALL_3D)])
def test_twonn_of_the_input_layer_is_close_to_d(dim, grid_options):
    samples = uniform_sprites(dim, 400, 0, **grid_options)
    rank_one = torch.nn.Sequential(OrderedDict(
        flatten=torch.nn.Flatten(), line=linear(np.ones((1, SIZE * SIZE)), np.zeros(1))))
    table = study.layer_dimensions(rank_one, samples, image_shape=(1, SIZE, SIZE),
                                   layers=["input", "line"]).set_index(["class", "layer"])
    for label in samples:
        assert abs(table.loc[(label, "input"), "twonn"] - dim) < 0.5
        assert table.loc[(label, "input"), "twonn points"] == 400
        assert abs(table.loc[(label, "line"), "twonn"] - 1) < 0.5


def test_the_study_stencil_reads_the_grid_samples():
    torus = Torus(R=1.0, r=0.4)
    grid = torus.grid(24)
    values = torch.as_tensor(torus.points(grid))
    lookup = study._grid_lookup(grid, values)
    expected = gradient(values, grid)
    for index in [(0, 0), (5, 17), (23, 3)]:
        fd = stencil_derivatives(lookup, torch.as_tensor(grid.points[index]), grid.spacing)
        np.testing.assert_allclose(fd.jacobian.numpy(), expected[index].numpy(), rtol=1e-12,
                                   atol=1e-14)


def test_layer_part_and_trends_on_a_synthetic_table():
    layers = ["input", "encoder.conv1", "mu", "decoder.fc1", "output"]
    assert [study.layer_part(name) for name in layers] == ["input", "encoder", "mu", "decoder",
                                                            "output"]
    rows = [dict(dataset="toy", network="trained", **{"class": "a"}, scale="unit volume",
                 layer=layer, depth=depth, curvature=float(depth), **{"curvature+": 2.0**depth},
                 **{"min reach": 1.0 / (1 + depth)}, **{"class distance": 1.0})
            for depth, layer in enumerate(layers)]
    trends = study.trend_table(pd.DataFrame(rows)).iloc[0]
    assert trends["curvature @ mu"] == 2.0 and trends["min reach @ output"] == 0.2
    assert trends["curvature+ vs depth"] == pytest.approx(1.0)
    assert trends["min reach vs depth"] == pytest.approx(-1.0)
    assert np.isnan(trends["class distance vs depth"])      # constant: no rank correlation


# --- why a layer degenerates -----------------------------------------------------------------


def known_rank_model():
    """Torus point (R^3) -> an isometric lift to R^5 -> a map of rank 1 -> ReLU with every unit off."""
    layers = OrderedDict(
        lift=torch.nn.Linear(3, 5, dtype=torch.float64),
        flatten=torch.nn.Linear(5, 4, bias=False, dtype=torch.float64),
        off=torch.nn.Sequential(torch.nn.Linear(4, 6, dtype=torch.float64), torch.nn.ReLU()))
    model = torch.nn.Sequential(layers)
    with torch.no_grad():
        layers["lift"].weight.copy_(torch.as_tensor(orthogonal(5, 0)[:, :3]))
        # Rows of rank 1: multiples of one row.
        row = torch.as_tensor(np.random.default_rng(1).normal(size=(1, 5)))
        layers["flatten"].weight.copy_(torch.tensor([[1.0], [-2.0], [0.5], [0.0]],
                                                    dtype=torch.float64) * row)
        layers["off"][0].bias.fill_(-1e3)              # no input of this size turns a unit on
    return model


def test_jacobian_ranks_of_a_model_with_known_ranks():
    # The torus immersion has rank 2 in R^3; the isometric lift keeps it, a linear map of
    # rank 1 leaves 1 (the tangent plane is not in its kernel), the dead ReLU layer has
    # Jacobian 0: rank 0.
    torus = Torus(R=1.0, r=0.4)
    theta = torus.grid(6).points.reshape(-1, 2)[:5]
    table = study.jacobian_ranks(known_rank_model(), torus.immersion, theta,
                                 ["input", "lift", "flatten", "off"])
    ranks = table.groupby("layer", sort=False)["rank"].agg(["min", "max"])
    assert ranks.to_dict("index") == {"input": {"min": 2, "max": 2}, "lift": {"min": 2, "max": 2},
                                      "flatten": {"min": 1, "max": 1},
                                      "off": {"min": 0, "max": 0}}
    degenerate = table.groupby("layer", sort=False)["degenerate"].all()
    assert not degenerate["lift"] and degenerate["flatten"] and degenerate["off"]
    # An exact isometry keeps the singular values of the torus: r and R + r cos(phi).
    lift = table[table["layer"] == "lift"]
    np.testing.assert_allclose(lift["sigma max"], table[table["layer"] == "input"]["sigma max"],
                               rtol=1e-12)


def test_jacobian_ranks_sees_a_collapsed_direction():
    # theta -> (theta_0, 0): the second direction is lost, so the rank is 1 < k = 2 and the
    # metric is degenerate, although the features are not constant.
    layer = torch.nn.Linear(2, 2, bias=False, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.0]]))
    table = study.jacobian_ranks(layer, lambda t: t, np.array([[0.1, 0.2], [1.0, -1.0]]),
                                 ["output"])
    assert table["rank"].tolist() == [1, 1] and table["degenerate"].all()
    np.testing.assert_allclose(table["sigma max"], 3.0)
    np.testing.assert_allclose(table["sigma min"], 0.0, atol=1e-15)


def test_latent_activity_counts_the_dimensions_that_carry_information():
    # mu = W h with rows 2.. zero and logvar = log 4 everywhere: the KL of an unused dimension
    # is 0.5 (4 - log 4 - 1) exactly, 0.81 nats, above the threshold although mu is 0. With
    # logvar = 0 it is 0.5 mu^2: zero for the unused rows.
    spec = BetaVAESpec(image_size=32, channels=2, hidden=8, latent_dim=4)
    model = BetaVAE(spec, seed=0).double().eval()
    images = torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(0),
                        dtype=torch.float64)
    with torch.no_grad():
        model.mu.weight[2:] = 0.0
        model.mu.bias.zero_()
        model.mu.weight[:2] *= 50.0
        model.logvar.weight.zero_()
        model.logvar.bias.zero_()
    table = study.latent_activity(model, images)
    assert table["active"].tolist() == [True, True, False, False]
    np.testing.assert_array_equal(table["kl"].iloc[2:], 0.0)
    np.testing.assert_array_equal(table["mu variance"].iloc[2:], 0.0)
    with torch.no_grad():
        mu, _ = model.encode(images)
    np.testing.assert_allclose(table["kl"].iloc[:2], 0.5 * (mu[:, :2]**2).mean(0), rtol=1e-12)
    with torch.no_grad():
        model.logvar.bias.fill_(np.log(4.0))
    table = study.latent_activity(model, images)
    np.testing.assert_allclose(table["kl"].iloc[2:], 0.5 * (4 - np.log(4.0) - 1), rtol=1e-12)
    assert table["active"].all()


def test_claim_table_counts_signs_and_treats_an_undefined_trend_as_not_following():
    trends = pd.DataFrame({
        "dataset": "toy", "network": "trained", "class": ["a", "b", "c"],
        "curvature+ vs depth": [0.5, np.nan, 0.9], "curvature+ @ input": [1.0, 1.0, 2.0],
        "curvature+ @ output": [4.0, np.nan, 1.0],
        "min reach vs depth": [-0.9, 0.2, -0.1], "min reach @ input": [1.0, 1.0, 1.0],
        "min reach @ output": [0.5, 2.0, 0.9],
        "class distance vs depth": [0.0, 1.0, 1.0], "class distance @ input": [1.0, 1.0, 1.0],
        "class distance @ output": [1.0, 3.0, 5.0],
        "curvature+ @ mu": [8.0, 1.0, 4.0], "min reach @ mu": 1.0, "class distance @ mu": 1.0})
    claims = study.claim_table(trends).set_index("quantity")
    assert claims["following"].to_dict() == {"curvature+": 2, "min reach": 2,
                                             "class distance": 2}   # rho = 0 does not count
    assert (claims["classes"] == 3).all()
    assert claims.loc["curvature+", "rho min"] == 0.5          # the NaN class has no rho
    assert claims.loc["curvature+", "growth min"] == 0.5
    assert claims.loc["min reach", "growth max"] == 2.0
    assert (claims.loc["curvature+", "at mu min"], claims.loc["curvature+", "at mu max"]) == (
        1.0, 8.0)
    pooled = study.claim_table(pd.concat([trends, trends.assign(dataset="other")]),
                               by=["network"]).set_index("quantity")
    assert pooled.loc["curvature+", "classes"] == 6 and pooled.loc["curvature+", "following"] == 4


def test_degeneracy_summary_sets_the_grid_beside_the_exact_ranks():
    measures = pd.DataFrame({
        "dataset": "toy", "dim": 2, "network": "trained",
        "layer": ["input", "mu", "decoder.fc1", "decoder.fc1", "decoder.fc1", "output",
                  "decoder.fc2"],
        "depth": [0, 1, 2, 2, 2, 4, 3], "class": ["a", "a", "a", "b", "a", "a", "a"],
        "degenerate points": [0, 0, 3, 4, 99, 1, 2]}).assign(
        scale=["raw"] * 4 + ["unit volume"] + ["raw"] * 2)
    ranks = pd.DataFrame({
        "dataset": "toy", "network": "trained", "class": ["a"] * 5 + ["b"] * 5,
        "layer": ["input", "mu", "decoder.fc1", "decoder.fc2", "output"] * 2,
        "depth": [0, 1, 2, 3, 4] * 2, "points": 5,
        "min rank": [2, 2, 1, 2, 2] * 2, "rank below d": [0, 0, 2, 0, 0] + [0] * 5,
        "degenerate": [0, 0, 3, 0, 1] + [0] * 5, "sigma ratio": [0.5, 0.4, 0.0, 0.1, 1e-5] * 2})
    latents = pd.DataFrame({"dataset": "toy", "network": "trained", "active": [True, False]})
    row = study.degeneracy_summary(measures, ranks, latents).iloc[0]
    assert (row["degenerate layers"], row["degenerate points"]) == (3, 10)   # raw scale only
    assert row["first degenerate layer"] == "decoder.fc1" and row["active latents"] == 1
    assert (row["sampled points"], row["min rank"], row["rank-deficient points"]) == (10, 1, 2)
    assert row["first rank-deficient layer"] == "decoder.fc1"
    assert (row["exact degenerate points"], row["min sigma ratio"]) == (4, 0.0)
    # fc1: rank 1 < d; output: full rank but flagged; fc2: degenerate on the grid only.
    assert (row["rank-deficient layers"], row["ill-conditioned layers"],
            row["unexplained layers"]) == (1, 1, 1)


def test_training_summary_reads_the_kept_state_of_each_network():
    history = pd.DataFrame({
        "dataset": ["a"] * 3 + ["b"] * 2, "images": 10, "objective": "beta = 1",
        "step": [0, 10, 20, 0, 10], "val_neg_elbo": [5.0, 3.0, 4.0, 2.0, 1.0],
        "reconstruction": 1.0, "kl": [0.0, 1.0, 2.0, 0.0, 3.0],
        "reconstruction_ratio": [1.0, 0.3, 0.2, 1.0, 0.1],
        "stopped": ["converged"] * 3 + ["budget"] * 2, "steps": [20] * 3 + [10] * 2,
        "best_step": [10] * 3 + [10] * 2, "wall seconds": 1.0})
    runs = study.training_summary(history).set_index("dataset")
    assert runs.loc["a", "reconstruction_ratio"] == 0.3 and runs.loc["a", "kl"] == 1.0
    assert runs.loc["b", "stopped"] == "budget" and runs.loc["b", "val_neg_elbo"] == 1.0


@pytest.mark.parametrize("call, error, match", [
    (lambda: study.Config(preset="huge"), ValueError, "'preset' parameter .* must be one of"),
    (lambda: study.Config(device="tpu"), ValueError, "'device' parameter .* one of"),
    (lambda: study.Config(seed=-1), ValueError, r"'seed' parameter .* \[0, 2147483647\]"),
    (lambda: study.network(study.Config(preset="ci"), "dsprites", "half"), ValueError,
     "'kind' parameter of network must be one of"),
    (lambda: study.network(study.Config(preset="ci"), "mnist", "untrained"), ValueError,
     "'dataset' parameter of layer_geometry must be one of"),
    (lambda: study.layer_part("middle"), ValueError, "'layer' parameter of layer_part"),
    (lambda: study.grid_layer_measures(torch.nn.Flatten(), {}, Torus().grid(8),
                                       image_shape=(1, 4, 4)), ValueError,
     "'layers' parameter of grid_layer_measures must name"),
])
def test_errors_name_the_parameter(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- the chapter at the ci preset -----------------------------------------------------------


@pytest.mark.slow
def test_chapter_publishes_sane_tables_and_figures(built_book):
    outputs = book.CHAPTERS["layer-geometry"].outputs(built_book)
    for name in ("training", "layers-dsprites", "layers-turntable", "twonn", "tangent-errors"):
        assert (outputs / f"{name}.png").stat().st_size > 20_000
        assert (outputs / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    measures = pd.read_csv(outputs / "layer-measures.csv")
    config = study.Config(preset="ci")
    layers = BetaVAESpec(image_size=config.sizes["image_size"]).layer_names
    cells = measures.groupby(["dataset", "network", "scale"])
    assert len(cells) == 2 * 2 * 2
    for _, part in cells:
        assert sorted(part["layer"].unique()) == sorted(layers)
    # Every layer and class has a finite positive volume; curvature and reach are either
    # measured or NaN with the degenerate points that explain it.
    assert np.isfinite(measures["volume"]).all() and (measures["volume"] > 0).all()
    nan = measures["curvature"].isna()
    assert (measures.loc[nan, "degenerate points"] > 0).all()
    assert (measures.loc[~nan, "min reach"] > 0).all()
    assert (measures["twonn"] > 0).all()
    unit = measures[measures["scale"] == "unit volume"]
    np.testing.assert_allclose(unit.groupby(["dataset", "network", "layer"])["volume"].sum(), 1,
                               rtol=1e-12)
    errors = pd.read_csv(outputs / "tangent-errors.csv")
    at_input = errors[(errors["layer"] == "input") & (errors["quantity"] == "tangents")]
    assert len(at_input) and (at_input["error"] < 1).all()
    trends = pd.read_csv(outputs / "trends.csv")
    assert len(trends) == 2 * len(measures[["dataset", "class"]].drop_duplicates())
    runs = pd.read_csv(outputs / "training-summary.csv")
    assert sorted(runs["dataset"]) == ["dsprites", "turntable"]
    assert set(runs["stopped"]) <= {"converged", "budget", "diverged"}
    assert (runs["best_step"] <= runs["steps"]).all() and (runs["reconstruction_ratio"] > 0).all()
    # Every degenerate layer of the grid is classed by its exact Jacobians, and the counts of
    # the table agree with the measurements.
    degeneracy = pd.read_csv(outputs / "degeneracy.csv")
    causes = degeneracy[["rank-deficient layers", "ill-conditioned layers",
                         "unexplained layers"]].sum(axis=1)
    assert (causes == degeneracy["degenerate layers"]).all()
    raw = measures[measures["scale"] == "raw"]
    assert degeneracy["degenerate points"].sum() == raw["degenerate points"].sum()
    ranks = pd.read_csv(outputs / "jacobian-ranks.csv")
    assert ((ranks["min rank"] >= 0) & (ranks["max rank"] <= ranks["dim"])).all()


def test_claim_verdicts_hold_when_every_class_follows_and_fail_at_half():
    pooled = pd.DataFrame({"network": ["trained", "trained", "trained", "untrained"],
                           "claim": ["a", "b", "c", "a"], "quantity": ["x", "y", "z", "x"],
                           "classes": [4, 4, 4, 4], "following": [4, 3, 2, 4],
                           "rho min": [0.1, -0.2, -0.5, 0.3], "rho max": [0.9, 0.8, 0.7, 0.9]})
    table = study.claim_verdicts(pooled)
    assert table["verdict"].tolist() == ["holds", "inconclusive at these sizes", "does not hold"]
    assert table["ours"].iloc[1] == "3 of 4 classes; rho -0.20 to 0.80"


def test_plan_layer_sizes_are_the_widths_layer_taps_reads():
    """The plan's architecture count: every layer's width equals its tapped features, and
    the multiply-adds of the 32 x 32 default network are worked out by hand."""
    from lib.models.taps import layer_taps

    for size in (32, 64):
        spec = BetaVAESpec(image_size=size, channels=3, hidden=5, latent_dim=2)
        model = BetaVAE(spec).double().eval()
        inner = [name for name in spec.layer_names if name != "input"]
        taps = layer_taps(model, np.zeros((1, 1, size, size)), inner)
        widths = {name: width for name, width, _ in study.layer_sizes(spec)}
        assert list(widths) == list(spec.layer_names)
        assert widths == {"input": size * size, **{name: taps[name].shape[1] for name in inner}}
    # conv 16^2*32*16 + 8^2*32^2*16 + 4^2*32^2*16; fc 512*256 + 256^2 + 2*256*10;
    # decoder 10*256 + 256^2 + 256*512; deconv 4^2*32^2*16 + 8^2*32^2*16 + 16^2*32*16.
    rows = study.layer_sizes(BetaVAESpec(image_size=32, channels=32, hidden=256))
    assert sum(macs for _, _, macs in rows) == (131072 + 1048576 + 262144 + 131072 + 65536
                                                + 5120 + 2560 + 65536 + 131072 + 262144
                                                + 1048576 + 131072)


def test_plan_counts_the_chapters_units_at_every_preset(tmp_path, monkeypatch):
    """Two networks trained at their step budget, one measures unit per data set and
    network, one Jacobian unit per network, class and sampled point; more work and memory
    at larger presets; the default within 5x of the chapter's measured cold wall time."""
    from lib.plans import Speed, stage_seconds

    monkeypatch.setenv("MANIFOLD_BOOK_CACHE", str(tmp_path))
    speed = Speed(rate=7.8e10, overhead=6.6e-4)          # this machine's, measured 2026-12
    totals, peaks = [], []
    for preset in ("ci", "default", "paper"):
        config = study.Config(preset=preset)
        sizes = config.sizes
        classes = len(sizes["turntable"]["objects"]) + len(dsprites.SHAPES)
        points = sizes["tangent_points"] + sizes["rank_points"]
        stages = study.plan(config)
        assert [(stage.name, stage.units) for stage in stages] == [
            ("train beta-VAE", 2), ("layer measures of a network", 2 * len(study.NETWORKS)),
            ("exact layer Jacobians at a point", len(study.NETWORKS) * classes * points)]
        assert stages[0].steps == sizes["training"]["max_steps"]
        assert stages[0].parallel and stages[0].cached == 0        # an empty cache
        assert all(stage.cached is None and not stage.parallel for stage in stages[1:])
        totals.append(sum(stage.units * stage_seconds(stage, speed) for stage in stages))
        peaks.append(max(stage.peak_bytes for stage in stages))
    assert totals[0] < totals[1] < totals[2] and peaks[0] < peaks[1] < peaks[2]
    # Measured 2026-12: 870-890 s cold at default (two networks converged at 7,000 and 6,750
    # steps of the 16,000 the plan costs), 119 s warm.
    assert 880 / 5 < totals[1] < 880 * 5


def test_both_networks_train_at_once_on_two_processes_with_the_same_weights(tmp_path):
    """The two beta-VAEs are independent cells: two loky processes train the ci networks
    with the weights, byte for byte, and the records a sequential run gives."""
    def networks(root, **execution):
        config = study.Config(preset="ci", **execution)
        records = study.train_networks(config, models_dir=root / "models",
                                       sweep_dir=root / "sweeps", progress=False)
        weights = {p.name: p.read_bytes() for p in sorted((root / "models").glob("*.pt"))}
        return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in records], weights

    sequential = networks(tmp_path / "sequential")
    spread = networks(tmp_path / "spread", backend="loky", n_jobs=2)
    assert len(sequential[1]) == len(study.training_cells(study.Config(preset="ci"))) == 2
    assert spread == sequential
