"""The image-manifold study: its per-class measurements and its scaling law.

``scaled_geometry`` predicts the measurements after x -> c x from the raw ones
by the exponents of each quantity (lengths c, k-volume c^k, total curvature
c^(k-2), reach integral c^(k+1)); here the prediction is checked against
measuring images that were actually multiplied by c. Everything is linear or
homogeneous in the images, so the two agree to rounding (tolerance 1e-8
relative, well above float64 rounding of sums over ~10^4 points, and far
below any wrong exponent, which would be off by a factor c^{+-1} = 2^{+-1}).
"""

import numpy as np
import pandas as pd
import pytest

from lib.studies import image_manifolds as study

COLUMNS = ["volume", "curvature", "curvature+", "curvature-", "min reach", "reach integral",
           "class distance"]


@pytest.fixture
def dsprites_only(monkeypatch):
    """The ci config with the turntable left out (its rendering is tested elsewhere)."""
    original = study._sources
    monkeypatch.setattr(study, "_sources", lambda config: original(config)[:1])
    return study.Config(preset="ci", dsprites_dim=2)


def test_rescaling_law_matches_measuring_rescaled_images(dsprites_only, monkeypatch):
    config = dsprites_only
    raw = study.class_geometry(config)
    total = raw["volume"].sum()
    factor = total ** (-1 / 2)                       # k = 2: unit total volume
    original = study._class_images
    monkeypatch.setattr(study, "_class_images",
                        lambda *args: original(*args) * factor)
    measured = study.class_geometry(config)
    predicted = study.scaled_geometry(raw)
    assert predicted["volume"].sum() == pytest.approx(1.0, rel=1e-12)
    pd.testing.assert_frame_equal(predicted[COLUMNS], measured[COLUMNS], rtol=1e-8)


def test_per_class_geometry_is_sane_on_dsprites(dsprites_only):
    table = study.class_geometry(dsprites_only)
    assert list(table["class"]) == ["square", "ellipse", "heart"]
    # Positive and negative parts add up to the total; the clipped field has both signs here.
    np.testing.assert_allclose(table["curvature+"] + table["curvature-"], table["curvature"],
                               rtol=1e-10)
    assert (table["volume"] > 0).all() and (table["min reach"] > 0).all()
    assert (table["class distance"] > 0).all()


def test_fitted_orders_recover_the_stencil_order_from_synthetic_errors():
    spacing = 0.5 / 4.0 ** np.arange(5)
    rows = [dict(dataset="toy", quantity="tangents", order=order, spacing=h, error=3 * h**order,
                 point=0, **{"class": "a"}) for order in (2, 4) for h in spacing]
    orders = study.fitted_orders(pd.DataFrame(rows)).set_index("order")["observed order"]
    assert orders[2] == pytest.approx(2.0, abs=1e-9) and orders[4] == pytest.approx(4.0, abs=1e-9)


def test_config_rejects_out_of_range_dimension():
    with pytest.raises(ValueError, match="'dsprites_dim' parameter .* must be an int in \\[1, 4\\]"):
        study.Config(dsprites_dim=5)


def test_plan_counts_the_chapters_units_at_every_preset():
    """A class unit per rendered class, a point unit per class and point of ``convergence``,
    per data set; more work at larger presets, memory growing with the grid and the image;
    the default within 5x of the chapter's measured wall time."""
    from lib.plans import Speed, stage_seconds

    speed = Speed(rate=7.8e10, overhead=6.6e-4)          # this machine's, measured 2026-12
    totals, peaks = [], []
    for preset in ("ci", "default", "paper"):
        config = study.Config(preset=preset)
        stages = {stage.name: stage for stage in study.plan(config)}
        turntable = config.sizes["turntable"]["objects"]
        expected = {"dsprites class on its grid": 3, "turntable class on its grid": turntable,
                    "thumbnails of a data set": 2}
        for name, (classes, points) in config.sizes["convergence"].items():
            expected[f"{name} point: differences against autodiff"] = classes * points
        assert {name: stage.units for name, stage in stages.items()} == expected
        assert all(stage.cached is None and not stage.parallel for stage in stages.values())
        totals.append(sum(stage.units * stage_seconds(stage, speed)
                          for stage in stages.values()))
        peaks.append(max(stage.peak_bytes for stage in stages.values()))
    assert totals[0] < totals[1] < totals[2] and peaks[0] < peaks[1] <= peaks[2]
    # Measured 2026-12-07: the whole chapter 324 s at default (book/chapters/*.run.json).
    assert 324 / 5 < totals[1] < 324 * 5
    # A class holds its float64 images and two (G, D, k) gradients: 7 G D 8 bytes at d = 3.
    sprites = next(s for s in study._sources(study.Config(preset="default"))
                   if s.name == "dsprites")
    stage = study.plan(study.Config(preset="default"))[0]
    assert stage.peak_bytes == sprites.grid.size * sprites.image_size**2 * 7 * 8
    smaller = study.plan(study.Config(preset="default", dsprites_dim=2))[0]
    assert smaller.peak_bytes < stage.peak_bytes and smaller.flops < stage.flops
