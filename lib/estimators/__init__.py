"""Point-cloud estimators: intrinsic dimension (scikit-learn API) and local geometry.

:mod:`lib.estimators.intrinsic_dim` holds :class:`TwoNN` and
:class:`LevinaBickelMLE`; :mod:`lib.estimators.local` holds local PCA
tangents, quadratic-fit curvature, kNN volume and the reach with estimated
tangents; :mod:`lib.estimators.projection` projects queries onto a manifold
estimated from samples (local fits of order 1 and 2);
:mod:`lib.estimators.representation_gap` holds the Representation Gap curve,
its slope as a dimension estimate (:class:`RGSlope`) and the optimal
empirical denoiser. Inputs are samples (N, D); no grids, no datasets, no
plots. The statistics that judge estimators (rates, regressions,
quantization constants) are in :mod:`lib.stats`.
"""

from lib.estimators.intrinsic_dim import LevinaBickelMLE, TwoNN
from lib.estimators.local import (QuadraticFit, aamari_reach, knn_volume, local_pca_tangents,
                                  quadratic_fit_curvature)

__all__ = ["TwoNN", "LevinaBickelMLE", "QuadraticFit", "local_pca_tangents",
           "quadratic_fit_curvature", "knn_volume", "aamari_reach"]
