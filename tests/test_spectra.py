"""Autoencoder Jacobian spectra against independent computations.

Every truth here is computed without the code under test: the full D x D
Jacobian of D o E and the d x d Jacobian of E o D by
``torch.autograd.functional.jacobian`` (reverse mode, no torch.func), and the
chain rule written out in numpy from the weight matrices and the activation
derivatives of the forward pass (ReLU masks, ELU and tanh slopes).

Tolerances: nets and points are float64, and both sides are exact up to
rounding. Products of O(1) matrices carry errors ~1e-15; eigenvalues of a
non-normal d x d matrix can amplify them by their condition number (observed
below 1e2 for these nets), so spectra are compared to 1e-10 relative to the
largest modulus (observed 1e-15). The D - d zero eigenvalues of J_I are
semisimple when J_E J_D is invertible (ker J_E and im J_D are complementary
invariant subspaces), so they come out at ~1e-16 |J|; we allow 1e-10.
Traces and determinants: 1e-10 relative. The pairing helper's known answers
are exact up to float rounding (1e-12). CPU vs CUDA: same float64 algorithms,
different kernels, 1e-10.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch

from lib.geometry.spectra import (Spectra, arithmetic_mean, autoencoder_spectra, geometric_mean,
                                  paired_differences, small_eigenvalue_count)

RTOL = 1e-10
SINGULAR = 1e-12  # |det| below this: singular up to rounding (entries are O(1))
ACTIVATIONS = {"relu": torch.nn.ReLU, "elu": torch.nn.ELU, "tanh": torch.nn.Tanh}


def mlp(sizes, activation, seed):
    """A float64 MLP with O(1) Jacobians: weights N(0, 2 / fan_in), biases N(0, 0.1^2)."""
    generator = torch.Generator().manual_seed(seed)
    layers = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        linear = torch.nn.Linear(fan_in, fan_out).double()
        with torch.no_grad():
            linear.weight.copy_(torch.randn(fan_out, fan_in, generator=generator,
                                            dtype=torch.float64) * (2.0 / fan_in) ** 0.5)
            linear.bias.copy_(0.1 * torch.randn(fan_out, generator=generator, dtype=torch.float64))
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return torch.nn.Sequential(*layers)


def autoencoder(activation="relu", widths=(8,), D=12, d=3, seed=0):
    encoder = mlp([D, *widths, d], activation, seed)
    decoder = mlp([d, *widths[::-1], D], activation, seed + 1)
    return encoder, decoder


def points(n=6, D=12, seed=0):
    return np.random.default_rng(seed).standard_normal((n, D))


def chain_rule_jacobian(net, point):
    """Jacobian of a Sequential at one point, by the chain rule in numpy.

    Linear: W; ReLU: diag(1[h > 0]) (derivative 0 at the kink); ELU (alpha 1):
    diag(1 if h > 0 else exp(h)); tanh: diag(1 - tanh(h)^2).
    """
    h = np.asarray(point, dtype=np.float64)
    jac = np.eye(h.size)
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
            h, jac = w @ h + b, w @ jac
        elif isinstance(layer, torch.nn.ReLU):
            h, jac = np.maximum(h, 0.0), (h > 0)[:, None] * jac
        elif isinstance(layer, torch.nn.ELU):
            h, jac = np.where(h > 0, h, np.expm1(h)), np.where(h > 0, 1.0, np.exp(h))[:, None] * jac
        elif isinstance(layer, torch.nn.Tanh):
            h = np.tanh(h)
            jac = (1.0 - h ** 2)[:, None] * jac
        else:
            raise NotImplementedError(type(layer))
    return h, jac


def by_modulus(values):
    return values[np.argsort(-np.abs(values), kind="stable")]


def assert_same_spectrum(ours, truth, scale=None):
    """Equal as multisets, to RTOL times the largest modulus."""
    ours, truth = np.atleast_2d(ours), np.atleast_2d(truth)
    scale = scale if scale is not None else max(1.0, float(np.abs(truth).max()))
    r1, _ = paired_differences(ours, truth)
    assert r1.max() <= RTOL * scale, (r1.max(), ours, truth)


def full_input_jacobian(encoder, decoder, point):
    x = torch.as_tensor(point, dtype=torch.float64)
    return torch.autograd.functional.jacobian(lambda v: decoder(encoder(v[None]))[0], x).numpy()


def latent_jacobian(encoder, decoder, point):
    with torch.no_grad():
        z = encoder(torch.as_tensor(point, dtype=torch.float64)[None])[0]
    return torch.autograd.functional.jacobian(lambda u: encoder(decoder(u[None]))[0], z).numpy()


# (a), (c), (d): the full Jacobians -------------------------------------------------------------

@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_input_spectrum_is_nonzero_spectrum_of_full_jacobian(activation):
    encoder, decoder = autoencoder(activation)
    x = points()
    result = autoencoder_spectra(encoder, decoder, x)
    d = result.latent_dim
    for k in range(len(x)):
        full = full_input_jacobian(encoder, decoder, x[k])
        eig = by_modulus(np.linalg.eigvals(full))
        scale = max(1.0, np.abs(full).max())
        assert_same_spectrum(result.eig_input[k], eig[:d], scale)
        assert np.abs(eig[d:]).max() <= RTOL * scale
        # (c) the d x d trace is the D x D trace; slogdet is the eigenvalue product.
        np.testing.assert_allclose(result.trace_input[k], np.trace(full), rtol=RTOL, atol=RTOL)
        np.testing.assert_allclose(result.trace_input[k], result.eig_input[k].sum().real,
                                   rtol=RTOL, atol=RTOL)
        product = np.prod(result.eig_input[k])
        assert abs(product.imag) <= RTOL * max(1.0, abs(product))
        assert result.sign_input[k] == np.sign(product.real)
        np.testing.assert_allclose(result.logabs_input[k], np.log(abs(product.real)), rtol=RTOL)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_latent_spectrum_is_spectrum_of_jacobian_of_E_after_D(activation):
    encoder, decoder = autoencoder(activation, widths=(10, 8), seed=3)
    x = points(seed=1)
    result = autoencoder_spectra(encoder, decoder, x)
    for k in range(len(x)):
        jac = latent_jacobian(encoder, decoder, x[k])
        assert_same_spectrum(result.eig_latent[k], np.linalg.eigvals(jac))
        np.testing.assert_allclose(result.trace_latent[k], np.trace(jac), rtol=RTOL, atol=RTOL)
        sign, logabs = np.linalg.slogdet(jac)
        if logabs > np.log(SINGULAR):
            assert result.sign_latent[k] == sign
            np.testing.assert_allclose(result.logabs_latent[k], logabs, rtol=RTOL)
        else:  # a dead ReLU layer makes J_L singular: the sign of a rounding error is noise
            assert result.logabs_latent[k] < np.log(SINGULAR)


# (b): the chain rule from weight matrices and activation masks -------------------------------

@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("widths", [(8,), (10, 8)])
def test_spectra_equal_product_of_weights_and_masks(activation, widths):
    encoder, decoder = autoencoder(activation, widths=widths, seed=5)
    x = points(n=8, seed=2)
    result = autoencoder_spectra(encoder, decoder, x)
    for k in range(len(x)):
        z, jac_e = chain_rule_jacobian(encoder, x[k])
        xhat, jac_d = chain_rule_jacobian(decoder, z)
        _, jac_e_hat = chain_rule_jacobian(encoder, xhat)
        assert_same_spectrum(result.eig_input[k], np.linalg.eigvals(jac_e @ jac_d))
        assert_same_spectrum(result.eig_latent[k], np.linalg.eigvals(jac_e_hat @ jac_d))


def test_reverse_mode_and_chunking_and_input_type_do_not_change_the_answer():
    encoder, decoder = autoencoder("elu", widths=(10, 8))
    x = points(n=11)
    ref = autoencoder_spectra(encoder, decoder, x)
    for other in (autoencoder_spectra(encoder, decoder, x, mode="reverse"),
                  autoencoder_spectra(encoder, decoder, x, batch_size=1),
                  autoencoder_spectra(encoder, decoder, x, batch_size=4),
                  autoencoder_spectra(encoder, decoder, torch.from_numpy(x))):
        for name in ("eig_input", "eig_latent"):
            assert_same_spectrum(getattr(other, name), getattr(ref, name))
        for name in ("trace_input", "trace_latent", "logabs_input", "logabs_latent"):
            np.testing.assert_allclose(getattr(other, name), getattr(ref, name), rtol=RTOL)
        np.testing.assert_array_equal(other.sign_input, ref.sign_input)


def test_float32_modules_and_the_dtype_option():
    encoder, decoder = autoencoder("tanh")
    x = points()
    ref = autoencoder_spectra(encoder, decoder, x)
    enc32, dec32 = copy.deepcopy(encoder).float(), copy.deepcopy(decoder).float()
    low = autoencoder_spectra(enc32, dec32, x)
    # float32 Jacobians: ~1e-7 relative per product entry, amplified at most ~1e2.
    assert paired_differences(low.eig_input, ref.eig_input)[0].max() < 1e-4
    assert low.eig_input.dtype == np.complex128 and low.trace_input.dtype == np.float64
    # dtype=float64 evaluates float64 copies of the parameters (rounded once from float32).
    high = autoencoder_spectra(enc32, dec32, x, dtype=torch.float64)
    exact = autoencoder_spectra(copy.deepcopy(enc32).double(), copy.deepcopy(dec32).double(), x)
    assert_same_spectrum(high.eig_input, exact.eig_input)
    assert next(enc32.parameters()).dtype == torch.float32


def test_parameters_get_no_gradient_and_modules_are_untouched():
    encoder, decoder = autoencoder("relu")
    before = [p.detach().clone() for p in encoder.parameters()]
    for mode in ("forward", "reverse"):
        autoencoder_spectra(encoder, decoder, points(), mode=mode)
        # Plain callables that close over the modules work too.
        autoencoder_spectra(lambda v: encoder(v), lambda u: decoder(u), points(), mode=mode)
    assert all(p.grad is None for p in [*encoder.parameters(), *decoder.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters()))


def test_table_columns_and_log_omega():
    encoder, decoder = autoencoder("relu", d=4, seed=7)
    result = autoencoder_spectra(encoder, decoder, points(n=30, seed=3))
    table = result.as_table()
    assert isinstance(result, Spectra) and len(table) == 30
    assert list(table.columns) == ([f"eig_I_{i}" for i in range(1, 5)]
                                   + [f"eig_L_{i}" for i in range(1, 5)]
                                   + ["trace_I", "trace_L", "sign_I", "sign_L",
                                      "log_omega_I", "log_omega_L"])
    positive = result.sign_input > 0
    assert 0 < positive.sum() < 30  # both cases occur for this seed
    np.testing.assert_array_equal(table["log_omega_I"].to_numpy()[positive],
                                  result.logabs_input[positive])
    assert table["log_omega_I"].isna().to_numpy()[~positive].all()
    np.testing.assert_array_equal(table["eig_L_2"].to_numpy(), result.eig_latent[:, 1])
    moduli = np.abs(result.eig_input)
    assert (np.diff(moduli, axis=1) <= 0).all()  # documented order: decreasing modulus


# (e): invariances ------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [255.0, 0.3])
def test_uniform_pixel_rescaling_leaves_spectra_unchanged(scale):
    # E'(x') = E(x' / s), D'(z) = s D(z): A'(x') = s A(x' / s), evaluated at x' = s x.
    encoder, decoder = autoencoder("elu")
    x = points()
    ref = autoencoder_spectra(encoder, decoder, x)
    moved = autoencoder_spectra(lambda v: encoder(v / scale), lambda u: scale * decoder(u),
                                scale * x)
    assert_same_spectrum(moved.eig_input, ref.eig_input)
    assert_same_spectrum(moved.eig_latent, ref.eig_latent)


def test_invertible_linear_map_of_latent_space_leaves_spectra_unchanged():
    # E' = M E, D' = D M^{-1}: J_L' = M J_L M^{-1} and J_E' J_D' = M (J_E J_D) M^{-1}.
    encoder, decoder = autoencoder("tanh", d=4, seed=2)
    rng = np.random.default_rng(4)
    m = torch.from_numpy(np.linalg.qr(rng.standard_normal((4, 4)))[0]
                         @ np.diag([0.5, 1.0, 2.0, 3.0]) @ rng.standard_normal((4, 4)))
    # M^{-1} as a matrix, not torch.linalg.solve: in torch 2.13, vmap(jacfwd(.)) through
    # linalg.solve returns wrong Jacobians (checked against jacfwd without vmap).
    m_inv = torch.linalg.inv(m)
    x = points()
    ref = autoencoder_spectra(encoder, decoder, x)
    moved = autoencoder_spectra(lambda v: encoder(v) @ m.T, lambda u: decoder(u @ m_inv.T), x)
    assert_same_spectrum(moved.eig_latent, ref.eig_latent, scale=np.linalg.cond(m.numpy()))
    assert_same_spectrum(moved.eig_input, ref.eig_input, scale=np.linalg.cond(m.numpy()))


# (f): pairing and the per-point summaries ------------------------------------------------------

def random_spectra(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) + 1j * rng.standard_normal((n, d))


def test_pairing_of_a_permuted_copy_is_zero():
    a = random_spectra(50, 6, 0)
    rng = np.random.default_rng(1)
    b = np.stack([row[rng.permutation(6)] for row in a])
    r1, r2 = paired_differences(a, b)
    np.testing.assert_array_equal(r1, 0.0)
    np.testing.assert_array_equal(r2, 0.0)


def test_pairing_of_a_known_small_perturbation():
    # Eigenvalues on a grid with spacing 1; shifts of modulus <= 0.1 < 1/2 keep the identity
    # pairing optimal, so r1 = sum|delta| / d and r2 = |delta|_2 / d exactly.
    d = 5
    a = np.array([[0, 1, 2 + 1j, 3 - 1j, 4]], dtype=complex)
    delta = np.array([[0.1, -0.05j, 0.03 + 0.04j, 0.0, -0.02]])
    r1, r2 = paired_differences(a, (a + delta)[:, ::-1])
    np.testing.assert_allclose(r1, np.abs(delta).sum() / d, rtol=1e-12)
    np.testing.assert_allclose(r2, np.sqrt((np.abs(delta) ** 2).sum()) / d, rtol=1e-12)


def test_pairing_is_the_minimum_over_all_permutations():
    d = 4
    a, b = random_spectra(40, d, 2), random_spectra(40, d, 3)
    r1, _ = paired_differences(a, b)
    orders = [list(p) for p in itertools.permutations(range(d))]
    brute = np.array([min(np.abs(a[k] - b[k, p]).sum() for p in orders) for k in range(len(a))]) / d
    np.testing.assert_allclose(r1, brute, rtol=1e-12)


def test_means_and_counts_from_the_spectra():
    encoder, decoder = autoencoder("elu", d=4, seed=11)
    result = autoencoder_spectra(encoder, decoder, points(n=20, seed=5))
    d = result.latent_dim
    np.testing.assert_allclose(arithmetic_mean(result.eig_input), result.trace_input / d,
                               rtol=RTOL, atol=RTOL)
    product = np.prod(result.eig_latent, axis=1).real
    np.testing.assert_allclose(geometric_mean(result.sign_latent, result.logabs_latent, d),
                               np.abs(product) ** (1 / d), rtol=RTOL)
    np.testing.assert_allclose(
        geometric_mean(result.sign_latent, result.logabs_latent, d, signed=True),
        np.sign(product) * np.abs(product) ** (1 / d), rtol=RTOL)
    assert geometric_mean([0.0], [-np.inf], 3).tolist() == [0.0]
    for threshold in (0.1, 0.5):
        expected = [sum(abs(v) < threshold for v in row) for row in result.eig_input]
        assert small_eigenvalue_count(result.eig_input, threshold).tolist() == expected


# (g): bad input --------------------------------------------------------------------------------

def test_bad_input_raises_with_the_parameter_named():
    encoder, decoder = autoencoder("relu")
    x = points()
    with pytest.raises(TypeError, match="'encoder' parameter of autoencoder_spectra"):
        autoencoder_spectra("not a module", decoder, x)
    with pytest.raises(TypeError, match="'decoder' parameter of autoencoder_spectra"):
        autoencoder_spectra(encoder, 3, x)
    with pytest.raises(ValueError, match=r"'x' parameter of .* must have shape \(N, D\)"):
        autoencoder_spectra(encoder, decoder, x[0])
    with pytest.raises(ValueError, match="'x' parameter of autoencoder_spectra.*input dimension"):
        autoencoder_spectra(encoder, decoder, x[:, :5])
    with pytest.raises(ValueError, match="'x' parameter of autoencoder_spectra.*N >= 1"):
        autoencoder_spectra(encoder, decoder, x[:0])
    with pytest.raises(ValueError, match="'x' parameter of autoencoder_spectra.*finite"):
        autoencoder_spectra(encoder, decoder, np.where(x > 1, np.nan, x))
    with pytest.raises(ValueError, match="'decoder' parameter of autoencoder_spectra.*back to"):
        autoencoder_spectra(encoder, lambda u: decoder(u)[:, :6], x)
    with pytest.raises(ValueError, match="'encoder' parameter of autoencoder_spectra.*\\(B, d\\)"):
        autoencoder_spectra(lambda v: encoder(v)[:, 0], decoder, x)
    with pytest.raises(ValueError, match=r"'batch_size' parameter of .*\[1, inf\]"):
        autoencoder_spectra(encoder, decoder, x, batch_size=0)
    with pytest.raises(ValueError, match="'mode' parameter of autoencoder_spectra"):
        autoencoder_spectra(encoder, decoder, x, mode="backward")
    with pytest.raises(TypeError, match="'dtype' parameter of autoencoder_spectra"):
        autoencoder_spectra(encoder, decoder, x, dtype=torch.int64)
    a = random_spectra(3, 4, 0)
    with pytest.raises(ValueError, match="'eig_b' parameter of paired_differences"):
        paired_differences(a, a[:, :3])
    with pytest.raises(ValueError, match=r"'eig_a' parameter of paired_differences.*\(N, d\)"):
        paired_differences(a[0], a[0])
    with pytest.raises(ValueError, match="'threshold' parameter of small_eigenvalue_count"):
        small_eigenvalue_count(a, threshold=-1.0)
    with pytest.raises(ValueError, match="'sign' parameter of geometric_mean"):
        geometric_mean([0.5], [0.0], 3)
    with pytest.raises(ValueError, match=r"'d' parameter of geometric_mean.*\[1, inf\]"):
        geometric_mean([1.0], [0.0], 0)


# CUDA ------------------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_cuda_matches_cpu(mode):
    encoder, decoder = autoencoder("elu", widths=(10, 8), d=4)
    x = points(n=40)
    cpu = autoencoder_spectra(encoder, decoder, x, mode=mode)
    gpu = autoencoder_spectra(copy.deepcopy(encoder).cuda(), copy.deepcopy(decoder).cuda(), x,
                              mode=mode, batch_size=16)
    assert isinstance(gpu.eig_input, np.ndarray)
    for name in ("eig_input", "eig_latent"):
        assert_same_spectrum(getattr(gpu, name), getattr(cpu, name))
    for name in ("trace_input", "trace_latent", "logabs_input", "logabs_latent"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=RTOL, atol=RTOL)
    np.testing.assert_array_equal(gpu.sign_latent, cpu.sign_latent)
