"""Data: immersions with closed-form geometry (:mod:`lib.datasets.toy`)."""
