"""Thread policy on a busy CPU: training, an NNK graph, idle and loaded.

Each case runs in a fresh Python process (``OMP_WAIT_POLICY`` is read when
torch's OpenMP runtime starts, so it must be in the environment before
``import torch``). ``--work training`` (the default) times
``lib.models.train_autoencoder`` on random 784-pixel images, the default
depth-4 autoencoder (784-512-256-128-10), batch 128, ``--steps`` optimiser
steps. ``--work nnk`` times :func:`lib.graphs.nnk_graph` (Gaussian kernel,
k = 50, N = 2,000 ReLU features in D = 784 from ``benchmarks/nnk.py``, its
exact candidate search included), whose blocks run side by side on Python
threads, one torch thread each. Cases: torch threads 1 and 2, with
``OMP_WAIT_POLICY`` unset (OpenMP's default: idle threads spin) and
``PASSIVE`` (idle threads sleep), each idle and under load (``--load``
processes running ``while True: pass``, started and stopped by this script).

    .venv/bin/python benchmarks/threads.py                # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/threads.py --steps 100    # quicker
    .venv/bin/python benchmarks/threads.py --work nnk     # the NNK graph, about a minute

Results also go to ``benchmarks/results/threads-<work>.csv``, with the machine's one-minute
load average after each case: on a shared machine "idle" means no load of ours.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _timing import write_rows  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
import numpy as np, torch
from lib.models.autoencoder import AutoencoderSpec, TrainingSpec, train_autoencoder
threads, steps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
images = np.random.default_rng(0).random((128 * 20, 784), dtype=np.float32)
epochs = max(1, steps // 20)
start = time.perf_counter()
train_autoencoder(AutoencoderSpec(), TrainingSpec(epochs=epochs), images, progress=False)
print(time.perf_counter() - start)
"""

NNK_CHILD = """
import sys, time
import torch
sys.path.insert(0, "benchmarks")
from nnk import features
from lib.graphs import nnk_graph
threads = int(sys.argv[1])
torch.set_num_threads(threads)
x = torch.from_numpy(features(2000, 784))
nnk_graph(x[:300], 50)                              # imports and thread pools, outside the clock
start = time.perf_counter()
nnk_graph(x, 50)
print(time.perf_counter() - start)
"""


def run_case(threads: int, steps: int, passive: bool, work: str = "training") -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    env.pop("OMP_WAIT_POLICY", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    child = CHILD if work == "training" else NNK_CHILD
    out = subprocess.run([sys.executable, "-c", child, str(threads), str(steps)], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--load", type=int, default=1, help="busy processes while loaded")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", choices=("training", "nnk"), default="training")
    args = parser.parse_args()
    rows = []
    for loaded in (False, True):
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(args.load if loaded else 0)]
        try:
            time.sleep(0.5 if loaded else 0)
            for threads in (1, 2):
                for passive in (False, True):
                    for repeat in range(args.repeats):
                        seconds = run_case(threads, args.steps, passive, args.work)
                        row = {"work": args.work, "load": args.load if loaded else 0,
                               "threads": threads,
                               "omp_wait_policy": "PASSIVE" if passive else "(unset)",
                               "steps": args.steps, "repeat": repeat,
                               "loadavg_1min_after": round(os.getloadavg()[0], 2),
                               "seconds": round(seconds, 2),
                               "ms_per_step": (round(1000 * seconds / (args.steps // 20 * 20), 1)
                                               if args.work == "training" else "")}
                        rows.append(row)
                        print(row, flush=True)
        finally:
            for process in busy:
                process.kill()
                process.wait()
    write_rows(ROOT / "benchmarks" / "results" / f"threads-{args.work}.csv", rows)
    print(f"\n{'load':>4} {'threads':>7} {'OMP_WAIT_POLICY':>15} {'s':>7} {'ms/step':>8}")
    for row in rows:
        print(f"{row['load']:>4} {row['threads']:>7} {row['omp_wait_policy']:>15} "
              f"{row['seconds']:>7} {row['ms_per_step']:>8}")


if __name__ == "__main__":
    main()
