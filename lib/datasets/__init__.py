"""Data: toy immersions with closed-form geometry (:mod:`lib.datasets.toy`), the image
testbed (:mod:`~lib.datasets.dsprites`, :mod:`~lib.datasets.turntable` with its solids
:mod:`~lib.datasets.solids`, :mod:`~lib.datasets.coil20`, the in-plane extension
:mod:`~lib.datasets.extension`, on the common :mod:`~lib.datasets.images`; one interface
to all three in :mod:`~lib.datasets.testbed`), point clouds of known law
(:mod:`~lib.datasets.point_clouds`) and real handwritten digits (:mod:`~lib.datasets.mnist`)."""
