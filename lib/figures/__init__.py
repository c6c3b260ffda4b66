"""One function per figure: study results in, matplotlib Figure out; nothing is computed here."""

from lib.figures import toy_manifolds

__all__ = ["toy_manifolds"]
