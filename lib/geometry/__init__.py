"""Geometry of manifolds from sampled values or exact derivatives; no datasets, no plots.

Modules, each importing only those listed above it:

- :mod:`~lib.geometry.differences`: central stencils (orders 2 and 4) on a Grid, periodic padding.
- :mod:`~lib.geometry.pointwise`: metric, volume element, inverse metric of a Jacobian, pointwise.
- :mod:`~lib.geometry.metric`: metric matrix, volume element, total volume of values on a grid.
- :mod:`~lib.geometry.curvature`: Christoffel symbols, scalar curvature of values on a grid.
- :mod:`~lib.geometry.extrinsic`: second fundamental form, Gauss-equation and principal curvatures.
- :mod:`~lib.geometry.reach`: local reach and reach from points and tangent spaces.
- :mod:`~lib.geometry.measures`: the paper's per-class table (volume, curvature, reach, distances).
- :mod:`~lib.geometry.spectra`: Jacobian spectra of an autoencoder in input and latent space.

Autodiff Jacobians and Hessians of maps are one layer down, in :mod:`lib.derivatives`.
"""
