import numpy as np
import pytest

from lib.grid import Axis, Grid


def test_spacing_interval_and_periodic():
    grid = Grid.product(a=(0.0, 1.0, 11), b=(0.0, 2 * np.pi, 8, "periodic"))
    assert grid.shape == (11, 8)
    np.testing.assert_allclose(grid.spacing, (0.1, np.pi / 4), rtol=1e-15)
    assert grid.points.shape == (11, 8, 2)
    # The periodic axis stops one step short of its end; the interval axis includes it.
    np.testing.assert_allclose(grid.points[-1, -1], (1.0, 2 * np.pi - np.pi / 4), rtol=1e-15)


def test_quadrature_is_exact_for_linear_and_trigonometric_integrands():
    grid = Grid.product(x=(0.0, 2.0, 5), t=(0.0, 2 * np.pi, 6, "periodic"))
    x, t = np.moveaxis(grid.points, -1, 0)
    # Trapezoid is exact for linear functions; the periodic rule for low-degree trig polynomials.
    np.testing.assert_allclose(grid.integrate((3 * x + 1) * (1 + np.cos(2 * t))), 8 * 2 * np.pi,
                               rtol=1e-13)


def test_trapezoid_error_halves_twice_per_refinement():
    errors = []
    for n in (11, 21, 41):
        grid = Grid.product(x=(0.0, 1.0, n))
        errors.append(abs(grid.integrate(np.exp(grid.points[..., 0])) - (np.e - 1)))
    # Second order: halving h divides the error by about 4.
    np.testing.assert_allclose(np.log2(np.array(errors[:-1]) / errors[1:]), 2.0, atol=0.02)


def test_interior_index_matches_interior_grid():
    grid = Grid.product(x=(0.0, 1.0, 9), t=(0.0, 1.0, 6, "periodic"))
    inner = grid.interior(2)
    assert inner.shape == (5, 6)
    np.testing.assert_allclose(grid.points[grid.interior_index(2)], inner.points, atol=1e-15)


@pytest.mark.parametrize("spec, match", [
    ((0.0, 1.0, 1), "'n' parameter of Axis 'x' must be an int in \\[2, inf\\]"),
    ((1.0, 0.0, 5), "'stop' parameter of Axis 'x'"),
    ((0.0, 1.0, 5, "cyclic"), "must be \\(start, stop, n\\)"),
])
def test_bad_axes_are_named(spec, match):
    with pytest.raises(ValueError, match=match):
        Grid.product(x=spec)


def test_interior_too_deep_names_depth_and_bound():
    grid = Grid.product(x=(0.0, 1.0, 6))
    with pytest.raises(ValueError, match="'depth' parameter of Grid.interior must leave .* at most 2"):
        grid.interior(3)


def test_axis_type_errors():
    with pytest.raises(TypeError, match="'n' parameter"):
        Axis("x", 0.0, 1.0, 2.5)


def test_uniform_points_fill_the_box_uniformly_and_follow_the_seed():
    grid = Grid.product(s=(0.5, 1.0, 5), a=(0.0, 2 * np.pi, 8, "periodic"))
    points = grid.uniform_points(20_000, seed=3)
    assert points.shape == (20_000, 2)
    assert points[:, 0].min() >= 0.5 and points[:, 0].max() <= 1.0
    assert points[:, 1].min() >= 0.0 and points[:, 1].max() < 2 * np.pi
    # Means within 5 standard errors of the box centre (uniform sd = length / sqrt 12).
    for column, (low, high) in enumerate([(0.5, 1.0), (0.0, 2 * np.pi)]):
        error = (high - low) / np.sqrt(12 * len(points))
        assert abs(points[:, column].mean() - (low + high) / 2) < 5 * error
    np.testing.assert_array_equal(grid.uniform_points(5, seed=3), points[:5])


# --- the grid-geometry chapter's plan (lib.studies.grid_geometry.plan) -------------------------


def test_grid_geometry_plan_counts_its_units_at_every_preset():
    """A finite-difference unit per testbed manifold and level, a reach per reach order too,
    a baseline per baseline level; more work and memory at larger presets; the default
    within 5x of the chapter's measured wall time."""
    from lib.plans import Speed, stage_seconds
    from lib.studies import grid_geometry as study

    speed = Speed(rate=7.8e10, overhead=6.6e-4)          # this machine's, measured 2026-12
    totals, peaks = [], []
    for preset in ("ci", "default", "paper"):
        config = study.Config(preset=preset)
        sizes, beds = config.sizes, len(study.testbed())
        stages = study.plan(config)
        assert [(stage.name, stage.units) for stage in stages] == [
            ("finite differences on a grid", beds * len(sizes["levels"])),
            ("grid reach", beds * len(sizes["levels"]) * len(sizes["reach_orders"])),
            ("point-cloud baselines on the torus", len(sizes["baseline_levels"]))]
        assert all(stage.cached is None and not stage.parallel for stage in stages)
        totals.append(sum(stage.units * stage_seconds(stage, speed) for stage in stages))
        peaks.append(max(stage.peak_bytes for stage in stages))
    assert totals[0] < totals[1] < totals[2] and peaks[0] < peaks[1] < peaks[2]
    # Measured 2026-12-07: the whole chapter 150 s at default (book/chapters/*.run.json).
    assert 150 / 5 < totals[1] < 150 * 5
