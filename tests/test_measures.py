"""Per-class measurements on a grid (lib.geometry.measures) against closed forms.

Truths and tolerances:

- Sphere of radius R on a polar chart without its poles, and the torus: the
  order-2 central difference of these charts is the exact tangent times
  sin(h)/h (the direction is exact), so the volume element is exactly the
  closed form times sinc(h_1) sinc(h_2), and its trapezoid integral (numpy,
  independently) gives the volume to rounding: 1e-12 relative. The tangent
  planes are exact, and on a sphere |y - x|^2 / (2 d(y - x, T_x)) = R for
  every y: the local reach is R at every point, 1e-9 relative (the reach's
  Gram-matrix route). The torus's meridian circles give r at every point
  when r < R - r. Two copies shifted by a are |a| apart at equal parameters
  (1e-12).
- The intrinsic curvature is an O(h^2) estimate: the relative error of
  int S dV / V against 2 / R^2 was measured once (2026-11-23) as
  0.23 h_max^2 on the sphere of radius 2 (theta 41 and 81 points on
  [0.3, 2.8], phi 48 and 96); the test allows 0.5 h_max^2, and halving h
  must divide the error by 2^2 (log2 ratio in [1.8, 2.2]; observed 2.00).
- Rescaling by c: every column scales by a fixed power of c, so
  ``scaled_measures`` of the raw table equals measuring c x, to 1e-8
  relative (rounding of sums over ~10^3 points, amplified by three nested
  stencils; a wrong exponent would be off by c^(+-1)).
"""

import numpy as np
import pandas as pd
import pytest
import torch

from lib.datasets.toy import Sphere, Torus
from lib.geometry.measures import COLUMNS, class_measures, scaled_measures
from lib.grid import Grid

RADIUS = 2.0
SHIFT = np.array([5.0, 0.0, 0.0])


def sphere_grid(n_theta=41, n_phi=48):
    return Grid.product(theta=(0.3, 2.8, n_theta), phi=(0, 2 * np.pi, n_phi, "periodic"))


def two_spheres(grid):
    x = Sphere(RADIUS).points(grid)
    return {"a": x, "b": x + SHIFT}


def sinc(h):
    return np.sin(h) / h


def test_sphere_volume_reach_and_distance_closed_forms():
    grid = sphere_grid()
    table = class_measures(two_spheres(grid), grid)
    assert list(table.columns) == list(COLUMNS) and list(table["class"]) == ["a", "b"]
    region = grid.interior(3)
    theta = region.axes[0].values
    h_theta, h_phi = grid.spacing
    element = RADIUS**2 * np.sin(theta) * sinc(h_theta) * sinc(h_phi)      # FD volume element
    volume = np.trapezoid(element, theta) * 2 * np.pi
    np.testing.assert_allclose(table["volume"], volume, rtol=1e-12)
    np.testing.assert_allclose(table["min reach"], RADIUS, rtol=1e-9)
    np.testing.assert_allclose(table["class distance"], np.linalg.norm(SHIFT), rtol=1e-12)
    # Reach integral: tau = R times the mean volume element on the strided lattice, times
    # the parameter box.
    strided = RADIUS * element[::2].mean() * region.parameter_volume
    np.testing.assert_allclose(table["reach integral"], strided, rtol=1e-9)
    # S > 0 everywhere: no negative part, and the positive part is the whole.
    assert (table["curvature-"] == 0).all()
    np.testing.assert_allclose(table["curvature+"], table["curvature"], rtol=1e-15)


def test_sphere_total_curvature_converges_at_order_two():
    errors = []
    for n_theta, n_phi in [(41, 48), (81, 96)]:
        grid = sphere_grid(n_theta, n_phi)
        row = class_measures({"a": Sphere(RADIUS).points(grid)}, grid).iloc[0]
        error = abs(row["curvature"] / row["volume"] / (2 / RADIUS**2) - 1)
        assert error < 0.5 * grid.max_spacing**2, (n_theta, error)
        assert np.isnan(row["class distance"])          # one class: no distance
        errors.append(error)
    assert 1.8 <= np.log2(errors[0] / errors[1]) <= 2.2


def test_torus_volume_and_reach_on_a_periodic_grid():
    torus = Torus(R=1.0, r=0.4)
    grid = torus.grid(48)                              # both axes periodic: no buffer to drop
    table = class_measures({"torus": torus.points(grid)}, grid)
    h_u, h_v = grid.spacing
    np.testing.assert_allclose(table["volume"], torus.total_volume * sinc(h_u) * sinc(h_v),
                               rtol=1e-12)
    np.testing.assert_allclose(table["min reach"], torus.reach, rtol=1e-9)


def test_rescaling_law_matches_measuring_scaled_points():
    grid = sphere_grid()
    raw = class_measures(two_spheres(grid), grid)
    c = raw["volume"].sum() ** (-1 / 2)
    measured = class_measures({k: c * v for k, v in two_spheres(grid).items()}, grid)
    predicted = scaled_measures(raw, 2)
    assert predicted["volume"].sum() == pytest.approx(1.0, rel=1e-12)
    pd.testing.assert_frame_equal(predicted, measured, rtol=1e-8)


def test_lazy_classes_are_called_once_each_and_give_the_same_table():
    grid = sphere_grid()
    values = two_spheres(grid)
    calls = []

    def lazy(label):
        def make():
            calls.append(label)
            return torch.from_numpy(values[label])
        return make

    eager = class_measures(values, grid)
    from_callables = class_measures({label: lazy(label) for label in values}, grid)
    from_generator = class_measures(((label, values[label]) for label in values), grid)
    assert calls == ["a", "b"]
    pd.testing.assert_frame_equal(from_callables, eager, rtol=0, atol=0)
    pd.testing.assert_frame_equal(from_generator, eager, rtol=0, atol=0)


def test_a_degenerate_class_raises_or_reports_nan_curvature_and_reach():
    # The second class does not move along phi: its metric has rank 1 everywhere.
    grid = sphere_grid()
    flat = Sphere(RADIUS).points(grid)[:, :1].repeat(grid.shape[1], axis=1)
    values = {"sphere": Sphere(RADIUS).points(grid), "flat": flat}
    with pytest.raises(ValueError, match="'values'.*class 'flat'.*non-degenerate metric.*"
                                         "1680 degenerate points.*degenerate='nan'"):
        class_measures(values, grid)
    table = class_measures(values, grid, degenerate="nan").set_index("class")
    assert table.loc["flat", ["curvature", "curvature+", "curvature-", "min reach",
                              "reach integral"]].isna().all()
    # det g = 0 up to rounding of the Gram matrix.
    assert table.loc["flat", "volume"] < 1e-12 * table.loc["sphere", "volume"]
    assert table.loc["flat", "degenerate points"] == 1680
    assert table.loc["sphere", "degenerate points"] == 0
    assert table.loc["sphere", ["curvature", "min reach"]].notna().all()
    # Equal parameters, |x_sphere - x_flat|: the distance is still measured for both.
    assert table["class distance"].notna().all()


def test_a_wider_buffer_measures_the_inner_region():
    # buffer 4 on the grid = buffer 3 on the grid cut by one layer: same region, same stencils.
    grid = sphere_grid()
    x = Sphere(RADIUS).points(grid)
    wide = class_measures({"a": x}, grid, buffer=4)
    inner = class_measures({"a": x[grid.interior_index(1)]}, grid.interior(1), buffer=3)
    columns = ["volume", "curvature", "curvature+", "curvature-"]
    pd.testing.assert_frame_equal(wide[columns], inner[columns], rtol=1e-12)


GRID = sphere_grid()
POINTS = Sphere(RADIUS).points(GRID)


@pytest.mark.parametrize("call, error, match", [
    (lambda: class_measures({"a": POINTS}, "grid"), TypeError, "'grid' parameter of class_measures"),
    (lambda: class_measures({"a": POINTS}, GRID, buffer=2), ValueError,
     r"'buffer' parameter of class_measures must be an int in \[3, 19\]. Got 2"),
    (lambda: class_measures({"a": POINTS}, GRID, buffer=20), ValueError, r"\[3, 19\]"),
    (lambda: class_measures({"a": POINTS}, GRID, reach_stride=0), ValueError,
     r"'reach_stride'.*\[1, inf\]"),
    (lambda: class_measures({"a": POINTS}, GRID, degenerate="skip"), ValueError,
     r"'degenerate' parameter of class_measures must be one of \{'raise', 'nan'\}"),
    (lambda: class_measures({"a": POINTS}, Grid.product(t=(0, 1, 7), s=(0, 1, 9))), ValueError,
     "'grid'.*at least 8 samples"),
    (lambda: class_measures({"a": POINTS[:-1]}, GRID), ValueError,
     r"'values'.*\(\*grid.shape, D\) = \(41, 48, D\) for class 'a'. Got \(40, 48, 3\)"),
    (lambda: class_measures({"a": POINTS, "b": POINTS[..., :2]}, GRID), ValueError,
     "'values'.*same D"),
    (lambda: class_measures({}, GRID), ValueError, "'values'.*at least one class"),
    (lambda: class_measures([("a", POINTS), ("a", POINTS)], GRID), ValueError,
     "'values'.*each class once"),
    (lambda: class_measures(POINTS, GRID), TypeError, "'values'.*mapping"),
    (lambda: class_measures([POINTS], GRID), TypeError, r"'values'.*\(label, array\) pairs"),
    (lambda: class_measures({"a": np.where(POINTS > 1, np.nan, POINTS)}, GRID), ValueError,
     "'values'.*finite"),
    (lambda: scaled_measures(pd.DataFrame({"volume": [1.0]}), 2), ValueError,
     "'table' parameter of scaled_measures.*columns"),
    (lambda: scaled_measures([1.0], 2), TypeError, "'table'.*DataFrame"),
    (lambda: scaled_measures(class_measures({"a": POINTS}, GRID), 0), ValueError,
     r"'dim' parameter of scaled_measures must be an int in \[1, inf\]"),
])
def test_errors_name_the_parameter(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    values = two_spheres(GRID)
    on_gpu = {k: torch.from_numpy(v).cuda() for k, v in values.items()}
    pd.testing.assert_frame_equal(class_measures(on_gpu, GRID), class_measures(values, GRID),
                                  rtol=1e-10)
