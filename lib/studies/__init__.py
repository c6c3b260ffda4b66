"""One module per question a chapter asks; each returns data and never plots."""

from lib.studies import toy_manifolds

__all__ = ["toy_manifolds"]
