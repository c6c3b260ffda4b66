"""Estimators on sampled manifolds; no datasets, no plots."""
