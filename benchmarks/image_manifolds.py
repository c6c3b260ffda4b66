r"""Render throughput of the image-manifold data sets, against the reference and batched vs looped.

Four measurements, each printed with the ratio against its alternative run in
the same process:

1. **dSprites** (:mod:`lib.datasets.dsprites`): ``extended_dsprites`` on a
   whole grid (which renders each scale and rotation once for all
   translations), the batched renderer at arbitrary points, the same
   renderer called one image at a time, and
   the reference ``microscope.datasets.custom_dsprites.dsprites`` (OpenCV on a
   4x upscaled canvas, then blur) on a grid with the same number of images
   per axis.
2. **Turntable views** (:mod:`lib.datasets.turntable`): 128x128 views per
   second, batched over views against one view per call.
3. **COIL-20 extension** (:mod:`lib.datasets.extension`): the paper's padding,
   in-plane rotation and scaling to 64x64. Our views are written as a COIL-20
   folder (``objX__Y.png``) and both :func:`lib.datasets.coil20.extended_coil20`
   and the reference's ``extended_coil20`` read that same folder.
4. **Default grids**: wall time of ``extended_dsprites(d)`` and
   ``extended_turntable(d)`` at the chapter's ``default`` sizes.

The reference and OpenCV are installed only for benchmarks (see
``benchmarks/README.md``); a missing reference skips its column. ``torch``
keeps its default thread count. Run from the repository root::

    .venv/bin/python benchmarks/image_manifolds.py          # about 3 minutes on 2 cores
    .venv/bin/python benchmarks/image_manifolds.py --quick  # smaller grids, a smoke run
    .venv/bin/python benchmarks/image_manifolds.py --device cuda   # ours on a GPU as well

Results are also written to ``benchmarks/results/image_manifolds.csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from lib.datasets import coil20, dsprites, extension, turntable  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def best_time(function, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def synchronised(function, device):
    def run():
        result = function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return result
    return run


def reference_available() -> bool:
    try:
        import cv2  # noqa: F401
        import microscope.datasets.custom_dsprites  # noqa: F401
    except ImportError as error:
        print(f"[reference skipped: {error}]")
        return False
    return True


def bench_dsprites(quick: bool, device: torch.device, rows: list) -> None:
    sizes, angles, shifts = (4, 8, 6) if quick else (6, 16, 8)
    grid = dsprites.dsprites_grid(4, scales=sizes, rotations=angles, translations=shifts,
                                  max_shift=shifts - 1.0)
    theta = torch.as_tensor(grid.points.reshape(-1, 4), dtype=torch.float32, device=device)
    renderer = dsprites.DSprites()
    count = theta.shape[0] * len(dsprites.SHAPES)

    batched = best_time(synchronised(
        lambda: [renderer.render(shape, theta) for shape in dsprites.SHAPES], device))
    looped_count = min(200, theta.shape[0])
    looped = best_time(synchronised(
        lambda: [renderer.render("heart", theta[i]) for i in range(looped_count)], device), 1)
    grid_path = best_time(synchronised(
        lambda: dsprites.extended_dsprites(4, scales=sizes, rotations=angles, translations=shifts,
                                           max_shift=shifts - 1.0, device=device), device), 1)
    rows.append(dict(benchmark="dsprites", method=f"ours, whole grid ({device.type})",
                     images=count, seconds=grid_path, images_per_s=count / grid_path))
    rows.append(dict(benchmark="dsprites", method=f"ours, any points ({device.type})",
                     images=count, seconds=batched, images_per_s=count / batched))
    rows.append(dict(benchmark="dsprites", method=f"ours one image per call ({device.type})",
                     images=looped_count, seconds=looped, images_per_s=looped_count / looped))
    if device.type == "cpu" and reference_available():
        from microscope.datasets.custom_dsprites import dsprites as reference_dsprites

        reference = best_time(lambda: reference_dsprites(
            n_sizes=sizes, n_angles=angles, max_translation=shifts, translation_stride=2,
            verbose=False), 1)
        rows.append(dict(benchmark="dsprites", method="reference (OpenCV, 4x canvas)",
                         images=count, seconds=reference, images_per_s=count / reference))


def bench_turntable(quick: bool, device: torch.device, rows: list) -> torch.Tensor:
    renderer = turntable.Turntable()
    objects = turntable.OBJECTS[:2 if quick else 4]
    views = 18
    angles = torch.arange(views, dtype=torch.float32, device=device) * (2 * np.pi / views)
    batched = best_time(synchronised(
        lambda: [renderer.render(name, angles) for name in objects], device), 1)
    looped = best_time(synchronised(
        lambda: [renderer.render(objects[0], angles[i]) for i in range(4)], device), 1)
    count = views * len(objects)
    rows.append(dict(benchmark="turntable views 128x128", method=f"ours batched ({device.type})",
                     images=count, seconds=batched, images_per_s=count / batched))
    rows.append(dict(benchmark="turntable views 128x128",
                     method=f"ours one view per call ({device.type})", images=4, seconds=looped,
                     images_per_s=4 / looped))
    return turntable.turntable_views(renderer, objects=turntable.OBJECTS, views=72).cpu()


def bench_extension(views: torch.Tensor, quick: bool, rows: list) -> None:
    objects = 2 if quick else 20
    with tempfile.TemporaryDirectory() as folder:
        for obj in range(objects):
            for view in range(72):
                image = (views[obj, view].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
                from PIL import Image
                Image.fromarray(image).save(Path(folder) / f"obj{obj + 1}__{view}.png")
        scales, rotations = (22, 16)
        count = objects * 18 * scales * rotations
        ours = best_time(lambda: coil20.extended_coil20(path=folder,
                                                        objects=range(1, objects + 1)), 1)
        rows.append(dict(benchmark="COIL-20 extension to 64x64", method="ours (smooth kernel)",
                         images=count, seconds=ours, images_per_s=count / ours))
        if objects == 20 and reference_available():
            from microscope.datasets import coil20 as reference_coil20

            os.environ["COIL20_PATH"] = folder
            reference = best_time(lambda: reference_coil20.extended_coil20(verbose=False), 1)
            rows.append(dict(benchmark="COIL-20 extension to 64x64",
                             method="reference (OpenCV warps)", images=count, seconds=reference,
                             images_per_s=count / reference))


def bench_default_grids(quick: bool, rows: list) -> None:
    from lib.studies.image_manifolds import SIZES

    sizes = SIZES["ci" if quick else "default"]
    for dim in (3, 4):
        started = time.perf_counter()
        manifold = dsprites.extended_dsprites(dim, **sizes["dsprites"])
        seconds = time.perf_counter() - started
        count = manifold.images.shape[0] * manifold.grid.size
        rows.append(dict(benchmark=f"default grid: extended dSprites d={dim}",
                         method="ours, float32", images=count, seconds=seconds,
                         images_per_s=count / seconds))
        del manifold
    spec = sizes["turntable"]
    started = time.perf_counter()
    manifold = turntable.extended_turntable(
        3, renderer=turntable.Turntable(image_size=spec["base_size"]),
        objects=turntable.OBJECTS[:spec["objects"]], views=spec["views"], scales=spec["scales"],
        rotations=spec["rotations"])
    seconds = time.perf_counter() - started
    count = manifold.images.shape[0] * manifold.grid.size
    rows.append(dict(benchmark="default grid: turntable d=3", method="ours, float32",
                     images=count, seconds=seconds, images_per_s=count / seconds))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--device", default="cpu", help="also time ours on this device")
    args = parser.parse_args(argv)
    rows: list = []
    devices = [torch.device("cpu")]
    if args.device != "cpu":
        devices.append(torch.device(args.device))
    views = None
    for device in devices:
        bench_dsprites(args.quick, device, rows)
        views = bench_turntable(args.quick, device, rows)
    bench_extension(views, args.quick, rows)
    bench_default_grids(args.quick, rows)

    table = pd.DataFrame(rows)
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "image_manifolds.csv", index=False)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("\nRatios of images per second (ours over the alternative, same process):")
    pairs = [("dsprites", "ours, whole grid (cpu)", "reference (OpenCV, 4x canvas)"),
             ("dsprites", "ours, any points (cpu)", "ours one image per call (cpu)"),
             ("turntable views 128x128", "ours batched (cpu)", "ours one view per call (cpu)"),
             ("COIL-20 extension to 64x64", "ours (smooth kernel)", "reference (OpenCV warps)")]
    rate = table.set_index(["benchmark", "method"])["images_per_s"]
    for benchmark, ours, other in pairs:
        if (benchmark, ours) in rate.index and (benchmark, other) in rate.index:
            print(f"  {benchmark}: {ours} / {other} = "
                  f"{rate[(benchmark, ours)] / rate[(benchmark, other)]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
