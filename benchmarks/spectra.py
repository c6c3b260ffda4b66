r"""Throughput of :func:`lib.geometry.spectra.autoencoder_spectra` against a full-Jacobian loop.

On a random MNIST-sized MLP autoencoder (784-512-256-128-d, ReLU, sigmoid
output, float32 weights, the stand-in architecture of the eigenvalue chapter
at depth n = 4) it measures, for d = 10 and 20, the spectra throughput in
points per second of

- ``batched fwd``: ``autoencoder_spectra`` (torch.func forward mode, vmap over
  points, d x d products only, float64 eigenvalues), batch 256 (CPU) or 4096 (CUDA);
- ``batched rev``: the same with ``mode="reverse"`` (the jacrev fallback);
- ``loop full``: one point at a time, the full 784 x 784 Jacobian of D o E by
  ``torch.autograd.functional.jacobian`` (784 backward passes) and its float64
  eigenvalues, plus the d x d Jacobian of E o D at z and its eigenvalues; run
  on a few points only and extrapolated to a rate;
- ``loop full vec``: the same loop with ``vectorize=True`` (vmap over the 784
  backward passes), a stronger baseline.

It prints the speed-up of ``batched fwd`` over both loops (target: >= 50x over
``loop full`` on CPU) and checks on the looped points that the d largest
eigenvalues of the 784 x 784 Jacobian equal the batched d x d spectrum
(relative difference, complex moduli, after pairing).

Run from the repository root::

    .venv/bin/python benchmarks/spectra.py            # 1 to 3 minutes on a 2-core CPU
    .venv/bin/python benchmarks/spectra.py --quick    # under a minute: fewer points
    .venv/bin/python benchmarks/spectra.py --device cuda   # model and points on a GPU

On a GPU the model and the points are moved to the device before the clock
starts, and the clock stops after ``torch.cuda.synchronize``. Results also go
to ``benchmarks/results/spectra.csv``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from lib.geometry.spectra import autoencoder_spectra, paired_differences
from _timing import timed, write_rows  # noqa: E402  (benchmarks/ is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results" / "spectra.csv"
WIDTHS = (512, 256, 128)
D_IN = 784


def mlp(sizes, generator, output=None):
    """ReLU MLP with PyTorch's default-like uniform init, drawn from ``generator``."""
    layers = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        linear = torch.nn.Linear(fan_in, fan_out)
        bound = 1.0 / fan_in ** 0.5
        with torch.no_grad():
            linear.weight.copy_((torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound)
            linear.bias.copy_((torch.rand(fan_out, generator=generator) * 2 - 1) * bound)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    if output is not None:
        layers.append(output)
    return torch.nn.Sequential(*layers).eval()


def autoencoder(d, seed):
    generator = torch.Generator().manual_seed(seed)
    encoder = mlp([D_IN, *WIDTHS, d], generator)
    decoder = mlp([d, *WIDTHS[::-1], D_IN], generator, output=torch.nn.Sigmoid())
    return encoder, decoder


def full_loop(encoder, decoder, x, vectorize):
    """Per point: eigenvalues of the 784 x 784 J_I and of the d x d J_L (float64)."""
    eig_input, eig_latent = [], []
    for point in x:
        full = torch.autograd.functional.jacobian(lambda v: decoder(encoder(v[None]))[0], point,
                                                  vectorize=vectorize)
        eig_input.append(torch.linalg.eigvals(full.double()))
        with torch.no_grad():
            z = encoder(point[None])[0]
        latent = torch.autograd.functional.jacobian(lambda u: encoder(decoder(u[None]))[0], z,
                                                    vectorize=vectorize)
        eig_latent.append(torch.linalg.eigvals(latent.double()))
    return torch.stack(eig_input).cpu().numpy(), torch.stack(eig_latent).cpu().numpy()


def measure(d, device, batch, n_batched, n_loop):
    """Time every method at latent dimension d; print a table; return CSV rows."""
    encoder, decoder = (m.to(device) for m in autoencoder(d, seed=0))
    x = torch.from_numpy(np.random.default_rng(1).random((n_batched, D_IN), dtype=np.float32))
    x = x.to(device)
    autoencoder_spectra(encoder, decoder, x[:8])                     # warm-up, outside the clocks
    fast, t_fwd = timed(lambda: autoencoder_spectra(encoder, decoder, x, batch_size=batch), device)
    n_rev = max(n_batched // 4, 1)
    _, t_rev = timed(lambda: autoencoder_spectra(encoder, decoder, x[:n_rev], mode="reverse",
                                                 batch_size=batch), device)
    (eig_full, eig_lat), t_loop = timed(lambda: full_loop(encoder, decoder, x[:n_loop], False),
                                        device)
    _, t_vec = timed(lambda: full_loop(encoder, decoder, x[:n_loop], True), device)
    top = np.take_along_axis(eig_full, np.argsort(-np.abs(eig_full), axis=1)[:, :d], axis=1)
    scale = np.abs(top).max(axis=1)
    err_i = (paired_differences(fast.eig_input[:n_loop], top)[0] * d / scale).max()
    err_l = (paired_differences(fast.eig_latent[:n_loop], eig_lat)[0] * d / scale).max()
    timings = {"batched fwd": (n_batched, t_fwd), "batched rev": (n_rev, t_rev),
               "loop full": (n_loop, t_loop), "loop full vec": (n_loop, t_vec)}
    fwd_rate = n_batched / t_fwd
    print(f"\nd = {d}: {n_batched} batched points, {n_loop} looped points")
    print(f"{'method':<15}{'points':>8}{'seconds':>10}{'points/s':>12}{'fwd speed-up':>14}")
    rows = []
    for method, (n, seconds) in timings.items():
        print(f"{method:<15}{n:>8}{seconds:>10.2f}{n / seconds:>12.1f}"
              f"{fwd_rate / (n / seconds):>13.1f}x")
        rows.append({"device": str(device), "d": d, "method": method, "points": n,
                     "seconds": round(seconds, 4), "points_per_s": round(n / seconds, 2)})
    print(f"batched vs full 784 x 784 on the looped points: max relative eigenvalue "
          f"difference {err_i:.1e} (input), {err_l:.1e} (latent)")
    print(f"target >= 50x over 'loop full': "
          f"{'met' if fwd_rate * t_loop / n_loop >= 50 else 'NOT met'}")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer points: a smoke run")
    parser.add_argument("--device", default="cpu", help="torch device of model and points")
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--batch-size", type=int, default=None,
                        help="points per vectorised chunk (default 256 on CPU, 4096 on CUDA)")
    args = parser.parse_args()
    device = torch.device(args.device)
    n_batched, n_loop = (256, 2) if args.quick else (2048, 5)
    batch = args.batch_size or (4096 if device.type == "cuda" else 256)
    if device.type == "cuda":
        n_batched *= 8
    where = (f" ({torch.cuda.get_device_name()})" if device.type == "cuda"
             else f", torch threads = {torch.get_num_threads()}")
    print(f"784-{'-'.join(map(str, WIDTHS))}-d autoencoder, ReLU, float32 weights; "
          f"batch {batch}, device = {device}{where}")
    rows = [row for d in args.dims for row in measure(d, device, batch, n_batched, n_loop)]
    write_rows(RESULTS, rows)


if __name__ == "__main__":
    main()
