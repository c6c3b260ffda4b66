r"""Denoisers trained on a finite sample, with and without a symmetry built in.

A denoiser maps a noisy point ``y = x + sigma z`` back towards ``x``. Trained
on ``n`` points by minimising :math:`E|D(x + \sigma z) - x|^2` over the
training points and fresh noise, it can at best memorise them: the optimal
empirical denoiser (:func:`lib.estimators.representation_gap.optimal_denoiser`)
is the minimiser over all functions. How far a network's test error exceeds
its training error, against ``n``, is what the Representation Gap chapter
sets beside that limit.

- :class:`MLPDenoiser`: a residual MLP on R^D, ``D(y) = y + f(y)``.
- :class:`PlaneCanonicalized`: any denoiser on R^D made exactly equivariant to
  rotations of the first two coordinates (SO(2) acting on a plane): turn
  ``y`` so that its part in that plane lies on the positive first axis,
  denoise, turn back.
- :class:`ConvDenoiser`: a residual fully convolutional network on images.
  With circular padding every layer commutes with cyclic shifts
  (``torch.roll``), so the network is exactly shift-equivariant; with
  ``coordinates=True`` it also reads two channels of pixel coordinates,
  which breaks that symmetry and nothing else: the plain twin of the
  comparison.
- :func:`train_denoiser` trains any of them with the book's training engine
  (:func:`lib.models.training.train`) until the training objective has
  converged; :func:`denoising_error` measures one on clean points.
"""

from __future__ import annotations

import math

import torch

from lib._checks import check_in, check_int, check_real
from lib.models._shared import seeded_layer, seeds
from lib.models.training import Convergence, TrainingResult, train

__all__ = ["MLPDenoiser", "PlaneCanonicalized", "ConvDenoiser", "denoising_loss",
           "train_denoiser", "denoising_error"]


class MLPDenoiser(torch.nn.Module):
    """``D(y) = y + f(y)``, ``f`` an MLP with ``depth`` hidden layers of ``width`` ReLUs.

    The last layer starts at zero, so the untrained network is the identity
    (the best denoiser for vanishing noise). Weights come from ``seed``.

    Examples
    --------
    >>> net = MLPDenoiser(4, width=8, depth=2, seed=0)
    >>> y = torch.randn(3, 4)
    >>> bool(torch.equal(net(y), y))
    True
    """

    def __init__(self, dim: int, *, width: int = 64, depth: int = 3, seed: int = 0):
        super().__init__()
        caller = "MLPDenoiser"
        check_int(dim, name="dim", caller=caller, low=1)
        check_int(width, name="width", caller=caller, low=1)
        check_int(depth, name="depth", caller=caller, low=1)
        generator = torch.Generator().manual_seed(seeds(seed)[0])
        layers, fan_in = [], dim
        for _ in range(depth):
            layers += [seeded_layer(torch.nn.Linear, fan_in, width, fan_in=fan_in,
                                    generator=generator), torch.nn.ReLU()]
            fan_in = width
        last = torch.nn.Linear(fan_in, dim)
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
        self.f = torch.nn.Sequential(*layers, last)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` of shape ``(N, D)``; returns the denoised ``(N, D)``."""
        return y + self.f(y)


class PlaneCanonicalized(torch.nn.Module):
    """``inner`` made exactly equivariant to rotations of coordinates 0 and 1.

    With ``R`` the rotation taking ``(y_0, y_1)`` to ``(r, 0)``:
    ``D(y) = R^T inner(R y)``. Then ``D(g y) = g D(y)`` for every rotation
    ``g`` of that plane (a point with ``r = 0`` is left at angle 0). The inner
    network sees only the quotient by the group: ``r`` and the other
    coordinates.

    Examples
    --------
    >>> net = PlaneCanonicalized(MLPDenoiser(4, width=8, seed=1))
    >>> with torch.no_grad():
    ...     _ = [p.normal_() for p in net.parameters()]
    >>> y, turn = torch.randn(5, 4, dtype=torch.float64), torch.eye(4, dtype=torch.float64)
    >>> turn[:2, :2] = torch.tensor([[0.6, -0.8], [0.8, 0.6]])
    >>> net = net.double()
    >>> bool(torch.allclose(net(y @ turn.T), net(y) @ turn.T))
    True
    """

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    @staticmethod
    def _turn(y: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        first = cos * y[:, :1] - sin * y[:, 1:2]
        second = sin * y[:, :1] + cos * y[:, 1:2]
        return torch.cat([first, second, y[:, 2:]], dim=1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` of shape ``(N, D)``, ``D >= 2``; returns the denoised ``(N, D)``."""
        radius = torch.linalg.vector_norm(y[:, :2], dim=1, keepdim=True)
        safe = torch.where(radius > 0, radius, torch.ones_like(radius))
        cos = torch.where(radius > 0, y[:, :1] / safe, torch.ones_like(radius))
        sin = torch.where(radius > 0, y[:, 1:2] / safe, torch.zeros_like(radius))
        return self._turn(self.inner(self._turn(y, cos, -sin)), cos, sin)


class ConvDenoiser(torch.nn.Module):
    """A residual stack of ``depth`` 3 x 3 convolutions with ``channels`` ReLU maps.

    ``D(y) = y + f(y)`` on images of shape ``(N, 1, H, W)``. Padding is
    circular, so ``f`` commutes with every cyclic shift of the image. With
    ``coordinates`` two more input channels hold each pixel's row and column
    (in [-1, 1]): the network can then tell positions apart and is no longer
    shift-equivariant. The last convolution starts at zero (identity).

    Examples
    --------
    >>> net = ConvDenoiser(channels=4, depth=2, seed=0)
    >>> with torch.no_grad():
    ...     _ = [p.normal_() for p in net.parameters()]
    >>> y = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    >>> net = net.double()
    >>> shifted = torch.roll(y, shifts=(3, -2), dims=(2, 3))
    >>> bool(torch.allclose(net(shifted), torch.roll(net(y), shifts=(3, -2), dims=(2, 3))))
    True
    """

    def __init__(self, *, channels: int = 8, depth: int = 3, coordinates: bool = False,
                 seed: int = 0):
        super().__init__()
        caller = "ConvDenoiser"
        check_int(channels, name="channels", caller=caller, low=1)
        check_int(depth, name="depth", caller=caller, low=1)
        self.coordinates = bool(coordinates)
        generator = torch.Generator().manual_seed(seeds(seed)[0])
        layers, fan_in = [], 3 if self.coordinates else 1
        for _ in range(depth):
            layers += [seeded_layer(torch.nn.Conv2d, fan_in, channels, 3, padding=1,
                                    padding_mode="circular", fan_in=9 * fan_in,
                                    generator=generator), torch.nn.ReLU()]
            fan_in = channels
        last = torch.nn.Conv2d(fan_in, 1, 3, padding=1, padding_mode="circular")
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
        self.f = torch.nn.Sequential(*layers, last)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` of shape ``(N, 1, H, W)``; returns the denoised images."""
        x = y
        if self.coordinates:
            n, _, h, w = y.shape
            rows = torch.linspace(-1, 1, h, dtype=y.dtype, device=y.device)
            columns = torch.linspace(-1, 1, w, dtype=y.dtype, device=y.device)
            grid = torch.stack(torch.meshgrid(rows, columns, indexing="ij"))
            x = torch.cat([y, grid.expand(n, 2, h, w)], dim=1)
        return y + self.f(x)


def _flat_error(denoised: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Mean over points of the squared distance, whatever each point's shape."""
    return ((denoised - clean) ** 2).flatten(1).sum(1).mean()


def denoising_loss(model, batch, step) -> torch.Tensor:
    """Mean squared distance between ``model(noisy)`` and ``clean``, ``batch = (clean, noisy)``."""
    clean, noisy = batch
    return _flat_error(model(noisy), clean)


def train_denoiser(model: torch.nn.Module, points, sigma: float, *, criterion: Convergence,
                   batch_size: int = 128, learning_rate: float = 1e-3, seed: int = 0,
                   device="cpu") -> TrainingResult:
    """Train ``model`` to denoise ``points`` at noise level ``sigma`` until it has converged.

    Each step draws fresh Gaussian noise for its batch (the third stream of
    ``seed``). The stopping rule watches the training objective itself: the
    mean squared error on the training points with one fixed draw of noise,
    evaluated every ``criterion.eval_every`` steps. A run stops when that
    objective no longer improves (``"converged"``), not when a held-out
    error turns up: what is measured is the network trained to the end,
    memorising as far as it can.

    Parameters
    ----------
    model : torch.nn.Module
        A denoiser taking points of the shape of ``points`` (copied, then trained).
    points : tensor of shape ``(n, ...)``
        Clean training points.
    sigma : float
        Noise level, in (0, inf).
    criterion, batch_size, learning_rate, seed, device
        As for :func:`lib.models.training.train`.

    Returns
    -------
    TrainingResult
        The trained model, its history and the record of why it stopped.
    """
    caller = "train_denoiser"
    check_real(sigma, name="sigma", caller=caller, low=0.0, low_open=True)
    points = torch.as_tensor(points)
    generator = torch.Generator().manual_seed(seeds(seed)[2])
    fixed = points + sigma * torch.randn(points.shape, generator=generator, dtype=points.dtype)

    def add_noise(batch, stream, step):
        (clean,) = batch
        noise = torch.randn(clean.shape, generator=stream, dtype=clean.dtype,
                            device=clean.device)
        return clean, clean + sigma * noise

    return train(model, denoising_loss, (points,), (points, fixed), criterion=criterion, batch_size=batch_size,
                 learning_rate=learning_rate, augment=add_noise, seed=seed, device=device)


@torch.no_grad()
def denoising_error(model: torch.nn.Module, clean, sigma: float, *, seed: int = 0,
                    repeats: int = 4, batch_size: int = 4096,
                    standard_error: bool = False, spread: str = "points"):
    """Mean squared error of ``model`` on ``clean`` points, each noised ``repeats`` times.

    Parameters
    ----------
    model : torch.nn.Module
    clean : tensor of shape ``(N, ...)``
    sigma : float
        Noise level, in (0, inf).
    seed : int, default=0
        Seeds the noise: two calls with one seed add the same noise.
    repeats : int, default=4
        Noise draws per point, in [1, inf).
    batch_size : int, default=4096
        Points per forward pass.
    standard_error : bool, default=False
        Also return the standard error of the mean.
    spread : {"points", "draws"}, default="points"
        What the standard error is over. "points": the points are a sample
        of a law (a test set): the spread of the per-point errors (each
        averaged over its draws) over the square root of the number of
        points. "draws": the points are fixed (a training set) and only the
        noise is random: the spread of the per-draw errors (each averaged
        over the points) over the square root of ``repeats``.

    Returns
    -------
    float, or (float, float) with ``standard_error``
        ``mean |model(x + sigma z) - x|^2`` over points and draws.
    """
    caller = "denoising_error"
    check_real(sigma, name="sigma", caller=caller, low=0.0, low_open=True)
    check_int(repeats, name="repeats", caller=caller, low=1)
    check_in(spread, ("points", "draws"), name="spread", caller=caller)
    clean = torch.as_tensor(clean)
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else clean.device
    generator = torch.Generator().manual_seed(int(seed))
    errors = torch.zeros(repeats, len(clean), dtype=torch.float64)
    model.eval()
    for draw in range(repeats):
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        for start in range(0, len(clean), batch_size):
            x = clean[start:start + batch_size]
            y = (x + sigma * noise[start:start + batch_size]).to(device)
            error = ((model(y).cpu() - x) ** 2).flatten(1).sum(1)
            errors[draw, start:start + len(x)] = error.double()
    mean = float(errors.mean()) if len(clean) else math.nan
    if not standard_error:
        return mean
    means = errors.mean(0) if spread == "points" else errors.mean(1)
    error_of_mean = (float(means.std()) / math.sqrt(len(means)) if len(means) > 1
                     else math.nan)
    return mean, error_of_mean
