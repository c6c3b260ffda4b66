"""Chapter "The Representation Gap": the n^(-2/d) law, intrinsic dimension and symmetry.

Our reading of Perera et al. (2026): RG_n, the mean squared distance from a
fresh point to its nearest training point (up to a group), falls like
n^(-2/d). Four questions, each on models whose d, volume, density and group
are known (:mod:`lib.datasets.point_clouds`): how close is RG_n to the
asymptotic law as n grows; how well do the RG slope, TwoNN and the
Levina-Bickel MLE recover d; is RG_n the small-noise limit of the
test-minus-train error of the optimal denoiser; and does a group of order k
divide RG by k^(2/d), while a continuous group lowers d by its dimension?
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib.datasets import dsprites, extension, turntable
from lib.datasets.point_clouds import Cube, FlatTorus, Gaussian, PointCloudModel, Sphere
from lib.estimators.intrinsic_dim import LevinaBickelMLE, TwoNN
from lib.estimators.quantization import asymptotic_gap, asymptotic_gap_density
from lib.estimators.representation_gap import RGSlope, optimal_denoiser, representation_gap
from lib.params import Choice, Integer, Specification

__all__ = ["PARAMETERS", "SIZES", "Config", "models", "law_curves", "dimension_table",
           "denoiser_limit", "symmetry_curves", "fitted_exponents", "image_dimensions",
           "digits_dimensions"]

PARAMETERS = Specification("representation-gap", (
    Choice("preset", "default", ("ci", "default", "paper"),
           "problem sizes: ci (seconds), default (a laptop, minutes), paper (up to 10^5 points)"),
    Integer("seed", 0, 0, 2**32 - 1, "seeds every sample, permutation and embedding"),
    Integer("ambient_dim", 50, 2, 4096, "the models are embedded isometrically in R^ambient_dim"),
))

# The image grids carry 3 buffer samples at each end of interval axes; draw inside them.
BUFFER = 3

SIZES = {
    "ci": dict(n_max=2_000, queries=400, repeats=1, dims=(1, 2, 3, 5), id_points=2_000,
               image_points=800, turntable_size=32,
               denoiser_sizes=(100, 300), sigmas=(0.1, 0.03, 0.01, 0.003), group_orders=(4, 16)),
    "default": dict(n_max=30_000, queries=2_000, repeats=3, dims=(1, 2, 3, 5, 8),
                    id_points=8_000, image_points=3_000, turntable_size=64, denoiser_sizes=(100, 300, 1000),
                    sigmas=(0.3, 0.1, 0.03, 0.01, 0.003), group_orders=(4, 16)),
    "paper": dict(n_max=100_000, queries=5_000, repeats=5, dims=(1, 2, 3, 5, 8, 10),
                  id_points=20_000, image_points=10_000, turntable_size=128, denoiser_sizes=(100, 300, 1000, 3000),
                  sigmas=(1.0, 0.3, 0.1, 0.03, 0.01, 0.003), group_orders=(4, 16)),
}


@dataclass(frozen=True)
class Config:
    """Validated parameters of the chapter plus the sizes of its preset."""

    preset: str = "default"
    seed: int = 0
    ambient_dim: int = 50
    sizes: dict = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        PARAMETERS.finish_config(self, SIZES)


def models(config: Config) -> list[PointCloudModel]:
    """Flat tori, spheres, cubes and Gaussians at the preset's intrinsic dimensions.

    Models whose native space exceeds ``ambient_dim`` are left out; Gaussians
    need d > 2 for the law's integral to be finite.
    """
    chosen = []
    for d in config.sizes["dims"]:
        chosen += [FlatTorus(d), Sphere(d), Cube(d)]
        if d > 2:
            chosen.append(Gaussian(d))
    return [m for m in chosen if m.native_dim <= config.ambient_dim]


def _theory(model: PointCloudModel, n):
    d = model.dim
    return asymptotic_gap_density(n, d, model.density_power_integral(2 / d))


def law_curves(config: Config) -> pd.DataFrame:
    """RG_n against the asymptotic law for every model, over nested sizes up to ``n_max``.

    Returns
    -------
    DataFrame with columns ``model, family, d, repeat, n, gap, theory, ratio``.
    """
    sizes = config.sizes
    rng = np.random.default_rng(config.seed)
    grid = np.unique(np.rint(np.geomspace(10, sizes["n_max"], 16)).astype(np.int64))
    rows = []
    for model in models(config):
        for repeat in range(sizes["repeats"]):
            points = model.sample(sizes["n_max"] + sizes["queries"], seed=rng,
                                  ambient_dim=config.ambient_dim)
            curve = representation_gap(points[sizes["queries"]:], points[:sizes["queries"]],
                                       sizes=grid)
            theory = _theory(model, curve.sizes)
            rows += [dict(model=model.name, family=type(model).__name__, d=model.dim,
                          repeat=repeat, n=int(n), gap=float(g), theory=float(t),
                          ratio=float(g / t))
                     for n, g, t in zip(curve.sizes, curve.gap, theory)]
    return pd.DataFrame(rows)


def _estimates(points, seed) -> dict:
    slope = RGSlope(n_permutations=3, n_bootstrap=100, random_state=seed).fit(points)
    low, high = slope.confidence_interval_
    return {"RG slope": slope.dimension_, "RG slope 95% interval": f"[{low:.2f}, {high:.2f}]",
            "TwoNN": TwoNN().fit(points).dimension_,
            "MLE (k=10)": LevinaBickelMLE(n_neighbors=10).fit(points).dimension_}


def dimension_table(config: Config) -> pd.DataFrame:
    """Intrinsic dimension of every model by the RG slope, TwoNN and Levina-Bickel MLE.

    Returns
    -------
    DataFrame with columns ``model, true d, RG slope, RG slope 95% interval,
    TwoNN, MLE (k=10)``.
    """
    rng = np.random.default_rng(config.seed)
    rows = []
    for model in models(config):
        points = model.sample(config.sizes["id_points"], seed=rng, ambient_dim=config.ambient_dim)
        rows.append({"model": model.name, "true d": model.dim, **_estimates(points, config.seed)})
    return pd.DataFrame(rows)


def image_dimensions(config: Config) -> pd.DataFrame:
    """Intrinsic dimension of one class of each image data set, against the number of free axes.

    Parameters are drawn uniformly in each grid's box (continuous, so queries
    and training images never coincide) and rendered: the heart of extended
    dSprites (d = 1..4, blur 0.8 px, 64x64) and the duck of the turntable set
    (d = 1..3, base views of ``turntable_size`` px, extended to 64x64). The
    density in image space is not uniform, which changes the law's constant
    but not its exponent.

    Returns
    -------
    DataFrame with the columns of :func:`dimension_table`, ``model`` naming the data set.
    """
    rng = np.random.default_rng(config.seed)
    count = config.sizes["image_points"]
    renderer = dsprites.DSprites(blur=0.8)
    table = turntable.Turntable(image_size=config.sizes["turntable_size"])
    rows = []
    for dim in (1, 2, 3, 4):
        theta = dsprites.dsprites_grid(dim).interior(BUFFER).uniform_points(count, seed=rng)
        images = renderer.render("heart", dsprites.full_parameters(theta, dim))
        rows.append({"model": f"dSprites heart d={dim}", "true d": dim,
                     **_estimates(images.reshape(count, -1), config.seed)})
    for dim in (1, 2, 3):
        theta = extension.extension_grid(dim).interior(BUFFER).uniform_points(count, seed=rng)
        # float32 rendering is 3x faster; its rounding (1e-7) is far below the nearest-image
        # distances these estimators see.
        images = table.images("duck", theta.astype(np.float32), dim=dim)
        rows.append({"model": f"turntable duck d={dim}", "true d": dim,
                     **_estimates(images.reshape(count, -1), config.seed)})
    return pd.DataFrame(rows)


def denoiser_limit(config: Config) -> pd.DataFrame:
    """Test-minus-train error of the optimal empirical denoiser against RG_n, on S^2.

    For training sets of each size n and each noise level sigma: the mean
    squared error of :func:`~lib.estimators.representation_gap.optimal_denoiser`
    on fresh points and on the training points, both with noise sigma; their
    difference divided by RG_n should tend to 1 as sigma -> 0.

    Returns
    -------
    DataFrame with columns ``n, sigma, test error, train error, gap, ratio``.
    """
    sizes = config.sizes
    rng = np.random.default_rng(config.seed)
    sphere = Sphere(2)
    dim = min(config.ambient_dim, 10)
    rows = []
    for n in sizes["denoiser_sizes"]:
        points = sphere.sample(n + sizes["queries"], seed=rng, ambient_dim=dim)
        train, test = points[:n], points[n:]
        gap = float(representation_gap(train, test, sizes=[n]).gap[0])
        for sigma in sizes["sigmas"]:
            errors = []
            for clean in (test, train):
                noisy = clean + sigma * rng.standard_normal(clean.shape)
                errors.append(float(((optimal_denoiser(noisy, train, sigma) - clean) ** 2)
                                    .sum(1).mean()))
            rows.append({"n": n, "sigma": sigma, "test error": errors[0],
                         "train error": errors[1], "gap": gap,
                         "ratio": (errors[0] - errors[1]) / gap})
    return pd.DataFrame(rows)


def _rotation_of_first_circle(angle: float, dim: int) -> np.ndarray:
    """Orthogonal map of R^dim turning the first two coordinates by ``angle``."""
    g = np.eye(dim)
    g[:2, :2] = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    return g


def symmetry_curves(config: Config) -> pd.DataFrame:
    """RG on the Clifford torus without a group, with C_k and with SO(2) on the first circle.

    The torus S^1 x S^1 of circumference 2 pi each, in R^4 (d = 2, area 4 pi^2).
    C_k turns the first circle by multiples of 2 pi / k: theory RG_n / k. SO(2)
    turns it continuously: the orbit distance is the chord on the second circle
    alone, a curve of length 2 pi, so the exponent moves from -2/2 to -2/1.

    Returns
    -------
    DataFrame with columns ``group, order, n, gap, theory``.
    """
    sizes = config.sizes
    torus = FlatTorus(2, length=2 * math.pi)
    rng = np.random.default_rng(config.seed)
    points = torus.sample(sizes["n_max"] + sizes["queries"], seed=rng)
    train, queries = points[sizes["queries"]:], points[:sizes["queries"]]
    grid = np.unique(np.rint(np.geomspace(10, sizes["n_max"], 12)).astype(np.int64))
    plain = asymptotic_gap(grid, 2, volume=torus.volume)
    rows = []

    def add(group, order, curve, theory):
        rows.extend({"group": group, "order": order, "n": int(n), "gap": float(g),
                     "theory": float(t)} for n, g, t in zip(curve.sizes, curve.gap, theory))

    add("none", 1, representation_gap(train, queries, sizes=grid), plain)
    for k in sizes["group_orders"]:
        matrices = [_rotation_of_first_circle(2 * math.pi * j / k, 4) for j in range(k)]
        add(f"C_{k}", k, representation_gap(train, queries, sizes=grid, group=matrices), plain / k)

    def second_circle(q, x):
        return ((q[:, None, 2:] - x[None, :, 2:]) ** 2).sum(-1)

    add("SO(2)", math.inf, representation_gap(train, queries, sizes=grid,
                                              orbit_distance=second_circle),
        asymptotic_gap(grid, 1, volume=2 * math.pi))
    return pd.DataFrame(rows)


def fitted_exponents(table: pd.DataFrame) -> pd.DataFrame:
    """Slope of log RG on log n over the larger half of the sizes, per group."""
    rows = []
    for group, part in table.groupby("group", sort=False):
        part = part[part["n"] >= np.sqrt(part["n"].min() * part["n"].max())]
        slope = np.polyfit(np.log(part["n"]), np.log(part["gap"]), 1)[0]
        rows.append({"group": group, "fitted exponent": slope,
                     "implied d": -2 / slope})
    return pd.DataFrame(rows)



def digits_dimensions(config: Config) -> pd.DataFrame:
    """Intrinsic dimension of real handwritten digits: scikit-learn's 8x8 digits.

    The 1,797 images ship with scikit-learn (grey levels 0..16, scaled to
    [0, 1]); the whole set and the three most numerous classes, each estimated
    three ways. There is no true d to compare with: the table shows how far
    the estimators agree on real data.

    Returns
    -------
    DataFrame with the columns of :func:`dimension_table` less ``true d``, plus ``points``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.data / 16.0, digits.target
    rows = [{"model": "digits, all classes", "points": len(images),
             **_estimates(images, config.seed)}]
    for label in np.argsort(-np.bincount(labels))[:3]:
        subset = images[labels == label]
        rows.append({"model": f"digit {label}", "points": len(subset),
                     **_estimates(subset, config.seed)})
    return pd.DataFrame(rows)
