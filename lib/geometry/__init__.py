"""Estimators on sampled manifolds; no datasets, no plots.

:mod:`lib.geometry.differences` (central differences on a grid),
:mod:`lib.geometry.jacobian` (exact derivatives by autodiff),
:mod:`lib.geometry.extrinsic` (metric and extrinsic curvature from
derivatives), :mod:`lib.geometry.metric` (metric and volume on a grid),
:mod:`lib.geometry.curvature` (intrinsic curvature from the metric),
:mod:`lib.geometry.reach` (reach from points and tangents),
:mod:`lib.geometry.measures` (the per-class table of volume, curvature, reach
and distances) and :mod:`lib.geometry.spectra` (Jacobian spectra of an
autoencoder).
"""
