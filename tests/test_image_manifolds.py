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


@pytest.fixture(scope="module")
def dsprites_only():
    """The ci config with the turntable left out (its rendering is tested elsewhere)."""
    original = study._sources
    study._sources = lambda config: original(config)[:1]
    yield study.Config(preset="ci", dsprites_dim=2)
    study._sources = original


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
