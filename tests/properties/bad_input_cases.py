"""One entry per public function of the numerical library, for the bad-input properties.

Each :class:`Case` knows how to build valid arguments of random size from a
seed (``build``), how to call the function (``call``), which arguments hold
arrays that the suite corrupts (``arrays``), and, where it is cheap, what the
answer must be on valid input (``check``: a closed form or an invariant).
The suite in ``test_bad_input_properties.py`` reads this table; the coverage
test there fails when a name in a module's ``__all__`` has no entry here.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from lib.geometry import (curvature, differences, extrinsic, measures, metric, pointwise, reach,
                          spectra)
from lib.estimators import intrinsic_dim, local, projection, representation_gap
from lib.graphs import metrics, nnk, nnk_solver, propagation
from lib import grid as gridmod, neighbors, sampling
from lib.grid import Grid

MODULES = [differences, pointwise, metric, curvature, extrinsic, reach, measures, spectra,
           intrinsic_dim, local, projection, representation_gap, nnk, nnk_solver, metrics,
           propagation, neighbors, sampling, gridmod]

# Names in __all__ that are not functions to feed: constants and result containers
# (their values are checked where they are produced), and the grid classes, whose
# degenerate forms have their own properties in the test module.
NOT_FED = {
    "lib.geometry.differences.STENCILS": "constant",
    "lib.geometry.differences.SECOND_STENCILS": "constant",
    "lib.geometry.reach.ReachResult": "result container",
    "lib.geometry.reach.EXPLICIT_MAX_DIM": "constant",
    "lib.geometry.measures.COLUMNS": "constant",
    "lib.geometry.measures.DEGENERATE": "constant",
    "lib.geometry.measures.MIN_BUFFER": "constant",
    "lib.geometry.spectra.Spectra": "result container",
    "lib.estimators.local.QuadraticFit": "result container",
    "lib.estimators.projection.ManifoldEstimator": "protocol",
    "lib.estimators.projection.ProjectionError": "result container",
    "lib.estimators.representation_gap.RGCurve": "result container",
    "lib.estimators.representation_gap.CALIBRATION_LAWS": "constant",
    "lib.graphs.nnk.NNKGraph": "result container",
    "lib.graphs.metrics.DegreeCalibration": "result container",
    "lib.graphs.metrics.InterpolationError": "result container",
    "lib.graphs.propagation.Propagation": "result container",
    "lib.sampling.Split": "result container",
    "lib.grid.Axis": "test_degenerate_axes_are_refused_by_name",
    "lib.grid.Grid": "test_degenerate_grids_are_refused_by_name",
    "lib.grid.Sampled": "test_sampled_and_grid_argument",
    "lib.grid.accepts_sampled": "test_sampled_and_grid_argument",
}


@dataclass(frozen=True)
class Case:
    """How to feed one public function (see the module docstring)."""

    caller: str
    build: Callable[[np.random.Generator], dict]
    call: Callable[..., Any]
    arrays: tuple[str, ...]
    check: Callable[[Any, dict], None] | None = None
    names: tuple[str, ...] = ()          # parameter names an error may give, beyond ``arrays``
    torch_only: tuple[str, ...] = ()     # arguments documented as tensors: corrupted as tensors
    allow_inf: bool = False              # +inf is a correct answer (reach of flat pieces)
    kinds: tuple[str, ...] | None = None  # corruptions that make sense (default: all)
    complex_ok: bool = False             # complex input is documented (eigenvalues)


# --------------------------------------------------------------------------- builders

def affine_on_grid(rng, *, min_n=8):
    """An affine map theta -> A theta + c on an interval grid of random shape (k = 1 or 2)."""
    k = int(rng.integers(1, 3))
    axes = {f"t{i}": (0.0, float(rng.uniform(0.5, 2.0)), int(rng.integers(min_n, min_n + 4)))
            for i in range(k)}
    grid = Grid.product(**axes)
    D = k + int(rng.integers(1, 3))
    A = rng.standard_normal((D, k)) + 2 * np.eye(D, k)
    values = grid.points @ A.T + rng.standard_normal(D)
    return grid, values, A


def point_cloud(rng, n=None, dim=2, ambient=3):
    """Points on a random dim-plane in R^ambient, plus small normal noise (no exact ties)."""
    n = int(rng.integers(30, 50)) if n is None else n
    basis = np.linalg.qr(rng.standard_normal((ambient, dim)))[0]
    return rng.uniform(-1, 1, (n, dim)) @ basis.T + 1e-3 * rng.standard_normal((n, ambient))


def circle(rng, n=None):
    n = int(rng.integers(24, 40)) if n is None else n
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    points = np.stack([np.cos(t), np.sin(t)], 1)
    tangents = np.stack([-np.sin(t), np.cos(t)], 1)[:, :, None]
    return points, tangents


def jacobians(rng, *, square_plus_one=False):
    Q, k = int(rng.integers(1, 6)), int(rng.integers(1, 3))
    D = k + 1 if square_plus_one else k + int(rng.integers(1, 3))
    J = rng.standard_normal((Q, D, k)) + 2 * np.eye(D, k)
    H = rng.standard_normal((Q, D, k, k))
    return J, H + np.swapaxes(H, -1, -2)


def nnk_problem(rng):
    B, k = int(rng.integers(1, 5)), int(rng.integers(2, 5))
    M = rng.standard_normal((B, k, k))
    A = M @ np.swapaxes(M, -1, -2) + k * np.eye(k)
    return A, rng.standard_normal((B, k))


def factor_problem(rng, count=None, k=None):
    """An NNLS in factor form: M (B, m, k) and y (B, m)."""
    count = count or int(rng.integers(1, 5))
    k = k or int(rng.integers(2, 5))
    rows = int(rng.integers(2, 6))
    return {"factor": rng.standard_normal((count, rows, k)),
            "target": rng.standard_normal((count, rows))}


def labelled_cloud(rng):
    x = point_cloud(rng, n=int(rng.integers(30, 40)))
    return x, (x[:, 0] > np.median(x[:, 0])).astype(np.int64)


@functools.lru_cache(maxsize=None)
def calibration():
    return metrics.degree_calibration((1, 2), n_neighbors=8, n_points=150, min_nodes=5, seed=0)


def graph_of(points, k=6):
    return nnk.nnk_graph(points, k)


def linear_pair(D=4, d=2, seed=0):
    W = torch.as_tensor(np.random.default_rng(seed).standard_normal((d, D)))
    return (lambda x: x @ W.T), (lambda z: z @ W)


def measures_table(rng):
    n = int(rng.integers(2, 5))
    return rng.uniform(0.5, 2.0, (n, len(measures.COLUMNS)))


# --------------------------------------------------------------------------- checks

def close(a, b, rtol=1e-7, atol=1e-9):
    a = np.asarray(a, dtype=float)
    np.testing.assert_allclose(a, np.broadcast_to(np.asarray(b, dtype=float), a.shape),
                               rtol=rtol, atol=atol)


def check_gradient(out, args):
    # Central stencils are exact on affine maps; rounding is ~eps |x| / h, so 1e-9 absolute.
    close(out, np.broadcast_to(args["A"], out.shape), atol=1e-9)


def check_derivatives(out, args):
    check_gradient(out.jacobian, args)
    close(out.hessian, 0, atol=1e-6)   # second differences lose eps |x| / h^2 ~ 1e-12 * 1e4


def check_derivative_vectors(out, args):
    k = args["A"].shape[1]
    # Rows: the k first derivatives (the columns of A), then the second ones (zero).
    close(np.swapaxes(out[..., :k, :], -1, -2), np.broadcast_to(args["A"], (*out.shape[:-2],
                                                                            *args["A"].shape)),
          atol=1e-9)
    close(out[..., k:, :], 0, atol=1e-6)


def check_metric(out, args):
    close(out, np.broadcast_to(args["A"].T @ args["A"], out.shape), rtol=1e-8)


def check_volume(out, args):
    A = args["A"]
    close(out, np.sqrt(np.linalg.det(A.T @ A)), rtol=1e-8)


def check_total_volume(out, args):
    A, inner = args["A"], args["grid"].interior(1)
    close(out, np.sqrt(np.linalg.det(A.T @ A)) * inner.parameter_volume, rtol=1e-8)


def check_zero(out, args):
    close(out, 0, atol=1e-6)   # a flat metric: curvature/christoffels vanish up to rounding


def check_circle_reach(out, args):
    close(out.local, 1.0, rtol=1e-8)   # every normal of the unit circle meets the centre


def check_neighbours(out, args):
    distances, indices = out
    x = args["points"]
    full = np.linalg.norm(x[:, None] - x[None], axis=-1)
    np.fill_diagonal(full, np.inf)
    close(distances, np.sort(full, 1)[:, :distances.shape[1]], rtol=1e-10)


def check_query_neighbours(out, args):
    distances, _ = out
    full = np.linalg.norm(args["queries"][:, None] - args["reference"][None], axis=-1)
    close(distances, np.sort(full, 1)[:, :distances.shape[1]], rtol=1e-10)


def check_orthonormal(out, args):
    close(np.swapaxes(out, -1, -2) @ out, np.eye(out.shape[-1]), atol=1e-10)


def check_normal_part(out, args):
    # II is normal: J^T II = 0 up to the rounding of the QR basis.
    close(np.einsum("qai,qajk->qijk", args["jacobian"], out), 0, atol=1e-9)


def check_flat_dimension(out, args):
    assert 0.5 < out.dimension_ < 4.0, out.dimension_


def check_fps(out, args):
    idx = np.asarray(out)
    assert len(np.unique(idx)) == len(idx) == args["n"]


# --------------------------------------------------------------------------- the table

def _grid_case(fn, caller, check, *, order=None):
    def build(rng):
        grid, values, A = affine_on_grid(rng)
        return {"values": values, "grid": grid, "A": A}
    return Case(caller, build, lambda values, grid, A: fn(values, grid), ("values",), check,
                names=("grid", "order"))


def _christoffels_build(rng):
    grid, _, A = affine_on_grid(rng)
    return {"metric": np.broadcast_to(A.T @ A, (*grid.shape, A.shape[1], A.shape[1])).copy(),
            "grid": grid}


def _slabs(values, grid, A):
    x = torch.as_tensor(values) if isinstance(values, np.ndarray) else values
    return differences.by_slabs(lambda s, sub: differences.gradient(s, sub), x, grid, halo=1,
                                slab_bytes=64)


def _stencil_build(rng):
    k = int(rng.integers(1, 3))
    A = rng.standard_normal((3, k))
    return {"theta": rng.standard_normal(k), "spacing": rng.uniform(0.01, 0.1, k), "A": A}


def _stencil_call(theta, spacing, A):
    At = torch.as_tensor(A)
    return differences.stencil_derivatives(lambda t: t.to(At.dtype) @ At.T, theta, spacing)


def _reach_build(rng):
    points, tangents = circle(rng)
    return {"queries": points, "tangents": tangents, "candidates": points.copy()}


def _class_measures_build(rng):
    # A bent sheet: a quarter-cylinder patch in R^3 (curvature 0, reach = radius 1).
    grid = Grid.product(u=(0.0, 1.0, int(rng.integers(9, 12))), v=(0.0, 1.0, 9))
    u, v = grid.points[..., 0], grid.points[..., 1]
    return {"values": np.stack([np.cos(u), np.sin(u), v], -1), "grid": grid}


def _shifted_sheet(grid):
    u, v = grid.points[..., 0], grid.points[..., 1]
    return np.stack([np.cos(u), np.sin(u), v + 5.0], -1)


def _graph_case(fn, caller, attribute, check=None):
    """A metric of an NNK graph: the corrupted array is one field of the graph."""
    def build(rng):
        graph = graph_of(point_cloud(rng))
        return {attribute: np.asarray(getattr(graph, attribute)), "graph": graph}

    def call(graph, **fields):
        return fn(dataclasses.replace(graph, **fields))
    # The library names a field of the graph as 'graph.theta', 'graph.candidates', ...
    return Case(caller, build, call, (attribute,), check,
                names=("graph", f"graph.{attribute}", "graph.candidates"))


def _as_csr(a):
    # scipy builds no CSR matrix of another rank: such an array goes in as it is.
    return __import__("scipy.sparse").sparse.csr_matrix(a) if np.ndim(a) == 2 else a


def _spectra_build(rng):
    return {"x": rng.standard_normal((int(rng.integers(1, 5)), 4))}


def _eig(rng):
    n, d = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    return rng.standard_normal((n, d)) + 1j * rng.standard_normal((n, d))


def _projection_call(train, queries):
    return projection.LocalProjection(1).fit(train).project(queries)


def _projection_build(rng):
    t = np.linspace(0, 1, int(rng.integers(20, 30)))
    line = np.stack([t, 2 * t], 1)
    return {"train": line, "queries": line[::3] + 0.01 * rng.standard_normal((len(line[::3]), 2))}


def _prop_build(rng):
    x, y = labelled_cloud(rng)
    W = nnk.knn_graph(x, 5).toarray()
    given = np.full(len(y), -1)
    given[[int(np.flatnonzero(y == c)[0]) for c in (0, 1)]] = [0, 1]
    return {"weights": W, "labels": y, "given": given}


def _stability_build(rng):
    x = point_cloud(rng)
    return {"first": nnk.knn_graph(x, 5).toarray(), "second": nnk.knn_graph(x, 6).toarray()}


def _splits_build(rng):
    x = point_cloud(rng, n=40)
    return {"points": x, "volume_element": rng.uniform(0.5, 1.5, len(x))}


CASES: dict[str, Case] = {
    # lib.geometry.differences
    "lib.geometry.differences.gradient": _grid_case(differences.gradient, "gradient",
                                                    check_gradient),
    "lib.geometry.differences.derivatives": _grid_case(differences.derivatives, "derivatives",
                                                       check_derivatives),
    "lib.geometry.differences.derivative_vectors": _grid_case(
        differences.derivative_vectors, "derivative_vectors", check_derivative_vectors),
    "lib.geometry.differences.by_slabs": Case(
        "by_slabs", lambda rng: dict(zip(("grid", "values", "A"), affine_on_grid(rng))),
        _slabs, ("values",), check_gradient, names=("grid", "halo")),
    "lib.geometry.differences.stencil_derivatives": Case(
        "stencil_derivatives", _stencil_build, _stencil_call, ("theta", "spacing"),
        lambda out, args: close(out.jacobian, args["A"], rtol=1e-6)),
    # lib.geometry.pointwise
    "lib.geometry.pointwise.checked_jacobian": Case(
        "f", lambda rng: {"jacobian": jacobians(rng)[0]},
        lambda jacobian: pointwise.checked_jacobian(jacobian, caller="f")[0], ("jacobian",)),
    "lib.geometry.pointwise.metric_from_jacobian": Case(
        "metric_from_jacobian", lambda rng: {"jacobian": jacobians(rng)[0]},
        pointwise.metric_from_jacobian, ("jacobian",),
        lambda out, a: close(out, np.swapaxes(a["jacobian"], -1, -2) @ a["jacobian"])),
    "lib.geometry.pointwise.volume_element_from_jacobian": Case(
        "volume_element_from_jacobian", lambda rng: {"jacobian": jacobians(rng)[0]},
        pointwise.volume_element_from_jacobian, ("jacobian",),
        lambda out, a: close(out, np.prod(np.linalg.svd(a["jacobian"])[1], -1), rtol=1e-8)),
    "lib.geometry.pointwise.is_degenerate": Case(
        "is_degenerate", lambda rng: {"metric": np.eye(2) * rng.uniform(0.5, 2)},
        lambda metric: pointwise.is_degenerate(metric), ("metric",), torch_only=("metric",),
        check=lambda out, a: (not bool(out))),
    "lib.geometry.pointwise.inverse_metric": Case(
        "f", lambda rng: {"metric": np.eye(2) * rng.uniform(0.5, 2)},
        lambda metric: pointwise.inverse_metric(metric, caller="f"), ("metric",),
        torch_only=("metric",), check=lambda out, a: close(out, np.linalg.inv(a["metric"]))),
    # lib.geometry.metric
    "lib.geometry.metric.metric_matrix": _grid_case(metric.metric_matrix, "metric_matrix",
                                                    check_metric),
    "lib.geometry.metric.volume_element": _grid_case(metric.volume_element, "volume_element",
                                                     check_volume),
    "lib.geometry.metric.total_volume": _grid_case(metric.total_volume, "total_volume",
                                                   check_total_volume),
    # lib.geometry.curvature
    "lib.geometry.curvature.christoffels": Case(
        "christoffels", _christoffels_build, curvature.christoffels, ("metric",), check_zero,
        names=("grid", "order")),
    "lib.geometry.curvature.scalar_curvature": _grid_case(curvature.scalar_curvature,
                                                          "scalar_curvature", check_zero),
    # lib.geometry.extrinsic
    "lib.geometry.extrinsic.second_fundamental_form": Case(
        "second_fundamental_form", lambda rng: dict(zip(("jacobian", "hessian"), jacobians(rng))),
        extrinsic.second_fundamental_form, ("jacobian", "hessian"), check_normal_part),
    "lib.geometry.extrinsic.scalar_curvature_from_derivatives": Case(
        "scalar_curvature_from_derivatives",
        lambda rng: (lambda J, H: {"jacobian": J, "hessian": 0 * H})(*jacobians(rng)),
        extrinsic.scalar_curvature_from_derivatives, ("jacobian", "hessian"), check_zero),
    "lib.geometry.extrinsic.grid_scalar_curvature": _grid_case(extrinsic.grid_scalar_curvature,
                                                               "grid_scalar_curvature",
                                                               check_zero),
    "lib.geometry.extrinsic.principal_curvatures": Case(
        "principal_curvatures", lambda rng: _principal_build(rng),
        extrinsic.principal_curvatures, ("jacobian", "hessian", "normal")),
    # lib.geometry.reach
    "lib.geometry.reach.local_reach": Case(
        "local_reach", _reach_build, reach.local_reach, ("queries", "tangents", "candidates"),
        check_circle_reach, allow_inf=True),
    "lib.geometry.reach.grid_reach": Case(
        "grid_reach", lambda rng: _class_measures_build(rng), reach.grid_reach, ("values",),
        lambda out, a: close(out.local, 1.0, rtol=1e-2), names=("grid",), allow_inf=True),
    # lib.geometry.measures
    "lib.geometry.measures.class_measures": Case(
        "class_measures", _class_measures_build,
        # Two classes: the class distance of a lone class is NaN by definition.
        lambda values, grid: measures.class_measures({"a": values, "b": _shifted_sheet(grid)},
                                                     grid),
        ("values",),
        names=("grid", "buffer"), allow_inf=True),
    "lib.geometry.measures.degenerate_metric": Case(
        "degenerate_metric", lambda rng: {"jacobian": jacobians(rng)[0]},
        measures.degenerate_metric, ("jacobian",),
        lambda out, a: (not np.asarray(out).any()) or None),
    "lib.geometry.measures.scaled_measures": Case(
        "scaled_measures", lambda rng: {"table": measures_table(rng)},
        lambda table: measures.scaled_measures(
            __import__("pandas").DataFrame(table, columns=list(measures.COLUMNS)), 2),
        # NaN and +inf are values class_measures writes (degenerate class, lone class, flat
        # class: reach +inf) and scale to themselves; only the volumes must be finite.
        ("table",), allow_inf=True,
        kinds=("valid", "inf", "single", "duplicate", "int64", "bool", "float32", "float16",
               "constant", "empty")),
    # lib.geometry.spectra
    "lib.geometry.spectra.autoencoder_spectra": Case(
        "autoencoder_spectra", _spectra_build,
        lambda x: spectra.autoencoder_spectra(*linear_pair(), x), ("x",),
        names=("encoder", "decoder")),
    "lib.geometry.spectra.paired_differences": Case(
        "paired_differences", lambda rng: {"eig_a": _eig(rng), "eig_b": None},
        lambda eig_a, eig_b: spectra.paired_differences(eig_a, eig_a if eig_b is None else eig_b),
        ("eig_a",), lambda out, a: close(out, 0), complex_ok=True),
    "lib.geometry.spectra.arithmetic_mean": Case(
        "arithmetic_mean", lambda rng: {"eig": _eig(rng)}, spectra.arithmetic_mean, ("eig",),
        lambda out, a: close(out, a["eig"].real.mean(1)), complex_ok=True),
    "lib.geometry.spectra.geometric_mean": Case(
        "geometric_mean",
        lambda rng: {"sign": np.ones(3), "logabs": rng.standard_normal(3)},
        lambda sign, logabs: spectra.geometric_mean(sign, logabs, 2), ("sign", "logabs"),
        lambda out, a: close(out, np.exp(a["logabs"] / 2)), names=("d",)),
    "lib.geometry.spectra.small_eigenvalue_count": Case(
        "small_eigenvalue_count", lambda rng: {"eig": _eig(rng)}, spectra.small_eigenvalue_count,
        ("eig",), lambda out, a: close(out, (np.abs(a["eig"]) < 0.1).sum(1)), complex_ok=True),
    # lib.estimators
    "lib.estimators.intrinsic_dim.TwoNN": Case(
        "TwoNN", lambda rng: {"X": point_cloud(rng)}, lambda X: intrinsic_dim.TwoNN().fit(X),
        ("X",), check_flat_dimension),
    "lib.estimators.intrinsic_dim.LevinaBickelMLE": Case(
        "LevinaBickelMLE", lambda rng: {"X": point_cloud(rng)},
        lambda X: intrinsic_dim.LevinaBickelMLE().fit(X), ("X",), check_flat_dimension,
        names=("n_neighbors",)),
    "lib.estimators.local.local_pca_tangents": Case(
        "local_pca_tangents", lambda rng: {"points": point_cloud(rng)},
        lambda points: local.local_pca_tangents(points, n_neighbors=6, dim=2), ("points",),
        check_orthonormal, names=("n_neighbors", "dim")),
    "lib.estimators.local.quadratic_fit_curvature": Case(
        "quadratic_fit_curvature", lambda rng: {"points": point_cloud(rng)},
        lambda points: local.quadratic_fit_curvature(points, n_neighbors=10, dim=2), ("points",),
        names=("n_neighbors", "dim")),
    "lib.estimators.local.knn_volume": Case(
        "knn_volume", lambda rng: {"points": point_cloud(rng)},
        lambda points: local.knn_volume(points, n_neighbors=6, dim=2), ("points",),
        lambda out, a: (out > 0) or None, names=("n_neighbors", "dim")),
    "lib.estimators.local.aamari_reach": Case(
        "aamari_reach", lambda rng: {"points": circle(rng)[0]},
        lambda points: local.aamari_reach(points, n_neighbors=4, dim=1), ("points",),
        names=("n_neighbors", "dim"), allow_inf=True),
    "lib.estimators.projection.LocalProjection": Case(
        "LocalProjection", _projection_build, _projection_call, ("train", "queries"),
        names=("points", "dim", "n_neighbors")),
    "lib.estimators.projection.projection_error": Case(
        "projection_error", _projection_build,
        lambda train, queries: projection.projection_error(
            projection.LocalProjection(1).fit(train), queries),
        ("queries",), names=("points", "estimator")),
    "lib.estimators.representation_gap.representation_gap": Case(
        "representation_gap", lambda rng: {"train": point_cloud(rng),
                                           "queries": point_cloud(rng, n=5)},
        representation_gap.representation_gap, ("train", "queries"), names=("sizes",)),
    "lib.estimators.representation_gap.default_sizes": Case(
        "default_sizes", lambda rng: {"n_train": np.array(int(rng.integers(2, 500)))},
        lambda n_train: representation_gap.default_sizes(
            n_train.item() if isinstance(n_train, np.ndarray) and n_train.ndim == 0 else n_train),
        # No "empty": a 0-d n_train has no rows to drop (corrupt() raised IndexError itself).
        ("n_train",), kinds=("valid", "nan", "inf", "bool", "float32", "ndim+")),
    "lib.estimators.representation_gap.RGSlope": Case(
        "RGSlope", lambda rng: {"X": point_cloud(rng, n=60)},
        lambda X: representation_gap.RGSlope(n_permutations=2, n_bootstrap=5,
                                             random_state=0).fit(X),
        ("X",), names=("n_queries", "sizes", "train", "queries")),
    "lib.estimators.representation_gap.optimal_denoiser": Case(
        "optimal_denoiser", lambda rng: {"noisy": point_cloud(rng, n=5),
                                         "train": point_cloud(rng)},
        lambda noisy, train: representation_gap.optimal_denoiser(noisy, train, 0.1),
        ("noisy", "train"), names=("sigma",)),
    # lib.graphs.nnk
    "lib.graphs.nnk.nnk_graph": Case(
        "nnk_graph", lambda rng: {"points": point_cloud(rng)},
        lambda points: nnk.nnk_graph(points, 5), ("points",), names=("n_neighbors",)),
    "lib.graphs.nnk.knn_graph": Case(
        "knn_graph", lambda rng: {"points": point_cloud(rng)},
        lambda points: nnk.knn_graph(points, 5), ("points",), names=("n_neighbors",)),
    "lib.graphs.nnk.unit_rows": Case(
        "f", lambda rng: {"x": point_cloud(rng, n=5)}, lambda x: nnk.unit_rows(x, "f"), ("x",),
        lambda out, a: close(np.linalg.norm(out, axis=1), 1.0), torch_only=("x",),
        names=("points",)),
    # lib.graphs.nnk_solver (tensors in, tensors out)
    "lib.graphs.nnk_solver.solve_exact": Case(
        "solve_exact", lambda rng: dict(zip("Ab", nnk_problem(rng))),
        lambda A, b: nnk_solver.solve_exact(A, b, tol=1e-10), ("A", "b"),
        torch_only=("A", "b"), names=("tol",)),
    # One node, numpy float64 (its documented input; nnk_graph calls it row by row).
    "lib.graphs.nnk_solver.solve_reference": Case(
        "solve_reference", lambda rng: (lambda A, b: {"A": A[0], "b": b[0]})(*nnk_problem(rng)),
        lambda A, b: nnk_solver.solve_reference(A, b, x_tol=1e-10), ("A", "b"),
        names=("x_tol",)),
    "lib.graphs.nnk_solver.fallback_nnls": Case(
        "fallback_nnls", lambda rng: (lambda A, b: {"A": A[0], "b": b[0]})(*nnk_problem(rng)),
        nnk_solver.fallback_nnls, ("A", "b"), torch_only=("A", "b")),
    "lib.graphs.nnk_solver.solve_factor": Case(
        "solve_factor", lambda rng: factor_problem(rng),
        lambda factor, target: nnk_solver.solve_factor(factor, target, tol=1e-10),
        ("factor", "target"), torch_only=("factor", "target"), names=("tol",)),
    "lib.graphs.nnk_solver.factor_error": Case(
        "factor_error", lambda rng: {"theta": np.abs(rng.standard_normal((2, 4))),
                                     **factor_problem(rng, count=2, k=4)},
        nnk_solver.factor_error, ("theta", "factor", "target"),
        torch_only=("theta", "factor", "target")),
    "lib.graphs.nnk_solver.kkt_residual": Case(
        "kkt_residual", lambda rng: _with_theta(rng), nnk_solver.kkt_residual,
        ("theta", "A", "b"), torch_only=("theta", "A", "b")),
    "lib.graphs.nnk_solver.objective": Case(
        "objective", lambda rng: _with_theta(rng), nnk_solver.objective,
        ("theta", "A", "b"), torch_only=("theta", "A", "b")),
    # lib.graphs.metrics
    "lib.graphs.metrics.class_labels": Case(
        "f", lambda rng: {"labels": rng.integers(0, 3, 6)},
        lambda labels: metrics.class_labels(labels, 6, 3, "f", name="labels"), ("labels",),
        lambda out, a: close(out, a["labels"])),
    "lib.graphs.metrics.degree_calibration": Case(
        "degree_calibration", lambda rng: {"dims": np.array([1, 2])},
        lambda dims: metrics.degree_calibration(dims, n_neighbors=8, n_points=150, min_nodes=5),
        ("dims",), names=("n_neighbors", "n_points"),
        kinds=("valid", "nan", "inf", "float16", "complex", "bool", "empty", "ndim+")),
    "lib.graphs.metrics.dimension_from_degree": Case(
        "dimension_from_degree", lambda rng: {"counts": rng.uniform(2, 8, 6)},
        lambda counts: metrics.dimension_from_degree(counts, calibration()), ("counts",),
        lambda out, a: (np.all((np.asarray(out) >= 1) & (np.asarray(out) <= 2))) or None,
        names=("calibration",)),
    "lib.graphs.metrics.geometric_stability": Case(
        "geometric_stability", _stability_build,
        lambda first, second: metrics.geometric_stability(
            [_as_csr(first), _as_csr(second)]),
        ("first", "second"), names=("graphs", "graphs[0]", "graphs[1]"),
        kinds=("valid", "nan", "inf", "empty", "single", "int64", "bool", "float32", "ndim+")),
    "lib.graphs.metrics.local_dimension": Case(
        "local_dimension", lambda rng: (lambda x: {"points": x, "graph": graph_of(x)})(
            point_cloud(rng)),
        metrics.local_dimension, ("points",), names=("graph",)),
    "lib.graphs.metrics.polytope_diameter": Case(
        "polytope_diameter", lambda rng: (lambda x: {"points": x, "graph": graph_of(x)})(
            point_cloud(rng)),
        metrics.polytope_diameter, ("points",), names=("graph",)),
    "lib.graphs.metrics.loo_interpolation_error": Case(
        "loo_interpolation_error",
        lambda rng: (lambda x, y: {"labels": y, "graph": graph_of(x)})(*labelled_cloud(rng)),
        lambda labels, graph: metrics.loo_interpolation_error(graph, labels, 2), ("labels",),
        names=("graph", "n_classes")),
    "lib.graphs.metrics.neighbor_count": _graph_case(metrics.neighbor_count, "neighbor_count",
                                                     "theta"),
    "lib.graphs.metrics.weighted_degree": _graph_case(metrics.weighted_degree, "weighted_degree",
                                                      "theta"),
    "lib.graphs.metrics.reconstruction_error": _graph_case(metrics.reconstruction_error,
                                                           "reconstruction_error", "error"),
    # lib.graphs.propagation
    "lib.graphs.propagation.label_propagation": Case(
        "label_propagation", _prop_build,
        lambda weights, labels, given: propagation.label_propagation(weights, given),
        ("weights", "given"), names=("labels", "n_classes")),
    "lib.graphs.propagation.propagation_accuracy": Case(
        "propagation_accuracy", lambda rng: dict(zip(("points", "labels"), labelled_cloud(rng))),
        lambda points, labels: propagation.propagation_accuracy(points, labels, 0.3, 5, seed=0),
        ("points", "labels"), lambda out, a: (0 <= out <= 1) or None,
        names=("n_neighbors", "fraction")),
    "lib.graphs.propagation.stratified_labels": Case(
        "stratified_labels", lambda rng: {"labels": rng.integers(0, 3, 12)},
        lambda labels: propagation.stratified_labels(labels, 0.5, seed=0), ("labels",),
        names=("fraction",)),
    "lib.graphs.propagation.graph_accuracy": Case(
        "graph_accuracy", _prop_build, propagation.graph_accuracy,
        ("weights", "labels", "given"), lambda out, a: (0 <= out <= 1) or None),
    # lib.neighbors
    "lib.neighbors.nearest_neighbors": Case(
        "nearest_neighbors", lambda rng: {"points": point_cloud(rng)},
        lambda points: neighbors.nearest_neighbors(points, 3), ("points",), check_neighbours,
        names=("n_neighbors",)),
    "lib.neighbors.query_neighbors": Case(
        "query_neighbors", lambda rng: {"reference": point_cloud(rng),
                                        "queries": point_cloud(rng, n=4)},
        lambda reference, queries: neighbors.query_neighbors(reference, queries, 3),
        ("reference", "queries"), check_query_neighbours, names=("n_neighbors",)),
    # lib.sampling
    "lib.sampling.farthest_point_sampling": Case(
        "farthest_point_sampling", lambda rng: {"points": point_cloud(rng), "n": 5},
        lambda points, n: sampling.farthest_point_sampling(points, n, seed=0), ("points",),
        check_fps, names=("n",)),   # one row: n = 5 > N is refused naming 'n'
    "lib.sampling.manifold_splits": Case(
        "manifold_splits", _splits_build,
        lambda points, volume_element: sampling.manifold_splits(
            points, volume_element, fractions=(0.5, 1.0), test_size=5),
        ("points", "volume_element"), names=("test_size", "fractions")),
    "lib.sampling.volume_weighted_subset": Case(
        "volume_weighted_subset", lambda rng: {"weights": rng.uniform(0.5, 1.5, 20)},
        lambda weights: sampling.volume_weighted_subset(weights, 0.5, seed=0), ("weights",),
        lambda out, a: (len(np.unique(out)) == len(out) == 10) or None, names=("fraction",)),
}


def _principal_build(rng):
    J, H = jacobians(rng, square_plus_one=True)
    normal = np.cross(J[..., 0], J[..., 1]) if J.shape[-1] == 2 else J[..., ::-1, 0] * [1, -1]
    normal = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
    return {"jacobian": J, "hessian": H, "normal": normal}


def _with_theta(rng):
    A, b = nnk_problem(rng)
    return {"theta": np.abs(rng.standard_normal(b.shape)), "A": A, "b": b}


# Defects the suite has found and the library has not fixed yet: function -> corruptions
# that raise a raw error (torch, numpy, scipy, an error naming no parameter) or return a
# non-finite answer. The suite marks them xfail(strict=True): fixing one makes its test
# pass unexpectedly and fail, so the entry must then be removed from this table. The 189
# entries of the suite's first run are all fixed; a new one goes here with its issue.
KNOWN_DEFECTS: dict[str, tuple[str, ...]] = {}
