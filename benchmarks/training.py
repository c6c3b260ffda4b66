r"""Ensemble training (``lib.models.ensemble.train_ensemble``) against one model after another.

K MLP autoencoders of one architecture (``lib.models.Autoencoder``, ReLU, sigmoid
output, float32) are trained on random images with
``lib.models.training.train``, one seed after another, and with
``train_ensemble`` on the same seeds, for a fixed number of steps (``rel_tol=0``:
no member stops early, so both do the same work). It prints seconds for both and
their ratio at 1 and 2 torch threads, and the largest weight difference between
the two (float rounding only). Sizes:

- ``small``: 64-32-16-4 (8 x 8 digits), batch 64;
- ``mnist``: 784-512-256-128-20, the eigenvalue chapter's depth 4, batch 128.

Run from the repository root, with passive OpenMP waiting on a shared machine::

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/training.py
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/training.py --quick   # fewer steps

Results also go to ``benchmarks/results/training.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lib.models import Autoencoder, AutoencoderSpec
from lib.models.ensemble import train_ensemble
from lib.models.training import Convergence, train
from _timing import timed, write_rows  # noqa: E402  (benchmarks/ is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results" / "training.csv"
SIZES = {"small": (AutoencoderSpec(input_dim=64, latent_dim=4, depth=3, widths=(32, 16)), 64),
         "mnist": (AutoencoderSpec(input_dim=784, latent_dim=20, depth=4), 128)}


def reconstruction(model, batch, step):
    return torch.nn.functional.mse_loss(model(batch[0]), batch[0])


def run(name, k, steps, threads):
    spec, batch_size = SIZES[name]
    x = torch.rand(1024, spec.input_dim, generator=torch.Generator().manual_seed(0))
    rule = Convergence(rel_tol=0.0, eval_every=max(1, steps // 4), max_steps=steps)
    options = dict(criterion=rule, batch_size=batch_size, learning_rate=1e-3)
    factory = lambda s: Autoencoder(spec, seed=s)  # noqa: E731
    seeds = list(range(k))
    torch.set_num_threads(threads)
    train_ensemble(factory, reconstruction, x, x, seeds=seeds[:2],      # warm up vmap
                   **{**options, "criterion": Convergence(rel_tol=0.0, max_steps=2)})
    alone, t_alone = timed(lambda: [train(factory, reconstruction, x, x, seed=s, **options)
                                    for s in seeds])
    together, t_together = timed(lambda: train_ensemble(factory, reconstruction, x, x,
                                                        seeds=seeds, **options))
    gap = max(float((a - b).abs().max()) for p, q in zip(alone, together)
              for a, b in zip(p.model.state_dict().values(), q.model.state_dict().values()))
    return {"size": name, "k": k, "steps": steps, "threads": threads,
            "one_by_one_s": round(t_alone, 3), "ensemble_s": round(t_together, 3),
            "speedup": round(t_alone / t_together, 2), "max_weight_gap": f"{gap:.1e}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--k", type=int, default=8, help="models per ensemble")
    args = parser.parse_args()
    steps = {"small": 100, "mnist": 16} if args.quick else {"small": 400, "mnist": 48}
    rows = []
    for threads in (1, 2):
        for name in SIZES:
            row = run(name, args.k, steps[name], threads)
            rows.append(row)
            print("  ".join(f"{key}={value}" for key, value in row.items()), flush=True)
    write_rows(RESULTS, rows)


if __name__ == "__main__":
    main()
