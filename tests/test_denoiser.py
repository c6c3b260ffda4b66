"""Trained denoisers: exact symmetries, the engine's stopping rule, and the memorising limit."""

import math

import numpy as np
import pytest
import torch

from lib.estimators.representation_gap import optimal_denoiser
from lib.models.denoiser import (ConvDenoiser, MLPDenoiser, PlaneCanonicalized, denoising_error,
                                 train_denoiser)
from lib.models.training import Convergence


def _randomised(net):
    """Random weights everywhere (the last layer starts at zero, which would hide a bug)."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator,
                                        dtype=parameter.dtype))
    return net


def _plane_turn(angle, dim):
    turn = torch.eye(dim, dtype=torch.float64)
    turn[:2, :2] = torch.tensor([[math.cos(angle), -math.sin(angle)],
                                 [math.sin(angle), math.cos(angle)]], dtype=torch.float64)
    return turn


@pytest.mark.parametrize("angle", [0.3, 2.0, -2.9])
def test_the_canonicalized_denoiser_is_equivariant_to_turns_of_its_plane(angle):
    net = _randomised(PlaneCanonicalized(MLPDenoiser(4, width=16, seed=0)).double())
    y = torch.randn(64, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    turn = _plane_turn(angle, 4)
    with torch.no_grad():
        np.testing.assert_allclose(net(y @ turn.T), net(y) @ turn.T, atol=1e-12)


def test_the_plain_mlp_is_not_equivariant():
    """The check above can fail: an unconstrained MLP does not commute with the turn."""
    net = _randomised(MLPDenoiser(4, width=16, seed=0).double())
    y = torch.randn(64, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    turn = _plane_turn(1.0, 4)
    assert (net(y @ turn.T) - net(y) @ turn.T).abs().max() > 1e-2


@pytest.mark.parametrize("shift", [(1, 0), (0, 5), (3, -2)])
def test_the_circular_conv_denoiser_commutes_with_cyclic_shifts_and_its_twin_does_not(shift):
    y = torch.rand(3, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rolled = torch.roll(y, shifts=shift, dims=(2, 3))
    circular = _randomised(ConvDenoiser(channels=4, depth=2, seed=0).double())
    with torch.no_grad():
        np.testing.assert_allclose(circular(rolled),
                                   torch.roll(circular(y), shift, dims=(2, 3)), atol=1e-12)
    located = _randomised(ConvDenoiser(channels=4, depth=2, coordinates=True, seed=0).double())
    assert (located(rolled) - torch.roll(located(y), shift, dims=(2, 3))).abs().max() > 1e-3


def test_untrained_denoisers_are_the_identity():
    y = torch.randn(5, 6)
    assert torch.equal(MLPDenoiser(6, seed=3)(y), y)
    images = torch.rand(2, 1, 8, 8)
    assert torch.equal(ConvDenoiser(coordinates=True, seed=3)(images), images)


def test_a_denoiser_trained_on_a_tiny_set_approaches_the_optimal_empirical_denoiser():
    """Four points, small noise: both send a noisy training point back to the point itself.

    The optimal empirical denoiser is the minimiser of the training objective
    over all functions; a converged network on four well-separated points
    must land within a small share of the noise's own error of it.
    """
    torch.manual_seed(0)
    points = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]],
                          dtype=torch.float64)
    sigma = 0.1
    rule = Convergence(rel_tol=0.01, window=5, eval_every=100, max_steps=6000,
                       abs_tol=1e-4 * 2 * sigma ** 2)
    result = train_denoiser(MLPDenoiser(2, width=32, depth=2, seed=0).double(), points, sigma,
                            criterion=rule, batch_size=4, learning_rate=3e-3, seed=0)
    assert result.record.stopped == "converged"
    generator = torch.Generator().manual_seed(5)
    clean = points.repeat(50, 1)
    noisy = clean + sigma * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        trained = result.model(noisy).numpy()
    optimal = optimal_denoiser(noisy.numpy(), points.numpy(), sigma)
    noise_error = 2 * sigma ** 2
    assert ((trained - optimal) ** 2).sum(1).mean() < 0.1 * noise_error
    # ... and its training error is far below the noise it removes.
    assert denoising_error(result.model, points, sigma, seed=1, repeats=50) < 0.2 * noise_error


def test_denoising_error_is_seeded_and_exact_for_the_identity():
    """The identity keeps all the noise: its error is D sigma^2 up to the draws' spread."""
    identity = MLPDenoiser(8, seed=0).double()
    clean = torch.zeros(2000, 8, dtype=torch.float64)
    first = denoising_error(identity, clean, 0.5, seed=3, repeats=2)
    assert first == denoising_error(identity, clean, 0.5, seed=3, repeats=2)
    assert first == pytest.approx(8 * 0.25, rel=0.03)    # chi^2 of 32,000 dof: sd 0.8 %
    mean, spread = denoising_error(identity, clean, 0.5, seed=3, repeats=2, standard_error=True)
    # Per point: 0.25 chi^2_16 / 2, sd 0.25 sqrt(32) / 2 = 0.71; over 2000 points 0.0158.
    assert mean == first and spread == pytest.approx(0.25 * math.sqrt(32) / 2 / math.sqrt(2000),
                                                     rel=0.1)
    # Over draws of the noise on fixed points: per draw 0.25 chi^2_16000 / 2000, sd 0.022;
    # over 50 draws 0.0032.
    _, by_draws = denoising_error(identity, clean, 0.5, seed=3, repeats=50, standard_error=True,
                                  spread="draws")
    assert by_draws == pytest.approx(0.25 * math.sqrt(2 * 16000) / 2000 / math.sqrt(50), rel=0.3)


@pytest.mark.parametrize("call, match", [
    (lambda: MLPDenoiser(0), "'dim' parameter of MLPDenoiser"),
    (lambda: ConvDenoiser(channels=0), "'channels' parameter of ConvDenoiser"),
    (lambda: denoising_error(MLPDenoiser(2), torch.zeros(3, 2), 0.0), "'sigma' parameter"),
    (lambda: denoising_error(MLPDenoiser(2), torch.zeros(3, 2), 0.1, spread="seeds"),
     "'spread' parameter of denoising_error"),
    (lambda: train_denoiser(MLPDenoiser(2), torch.zeros(3, 2), -1.0,
                            criterion=Convergence()), "'sigma' parameter of train_denoiser"),
])
def test_bad_input_is_refused_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
