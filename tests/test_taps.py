"""Layer taps and exact per-layer tangents (lib.models.taps).

Truths and tolerances:

- Taps against a plain forward pass of the same model in eval mode (and the
  prefix of the Sequential run by hand): with one chunk the taps *are* that
  forward pass, so equality to rounding; a different chunking may change how
  the BLAS blocks the rows, so 1e-12 relative in float64 (observed: equal).
  A float32 conv net: 1e-6 relative.
- Exact Jacobians against torch.autograd.functional.jacobian (reverse mode,
  one point at a time) and against the closed form W @ J_render of a linear
  layer: both exact, so they differ by rounding only, 1e-12 relative.
- Order of the finite differences: on a smooth tanh network over a periodic
  torus (no border, and the rectangle rule is spectral), halving h divides
  the error of the order-p stencil by 2^p; the asymptotic constant is reached
  at the resolutions used within 20 %: ratio in [3.2, 4.8] for p = 2 (32 -> 64
  samples per axis; observed 3.87-3.99) and in [12.8, 19.2] for p = 4
  (48 -> 96; observed 14.4-16.0).
- Isometries (orthogonal layers, a rotated zero-padded embedding, biases)
  keep distances to rounding, so every estimate (volume, curvature field,
  reach) of every layer equals the input's to 1e-9 relative (rounding
  amplified by three nested stencils: 1e-16 / h^3 ~ 1e-13). Scaling one layer
  by 2 multiplies a surface's volume by 4, its curvature by 1/4 and its reach
  by 2 (closed forms), checked to the same 1e-9.
"""

import copy

import numpy as np
import pytest
import torch

from lib.datasets.toy import Torus
from lib.geometry.curvature import scalar_curvature
from lib.geometry.metric import total_volume
from lib.geometry.pointwise import volume_element_from_jacobian
from lib.geometry.reach import grid_reach
from lib.grid import Grid
from lib.models.taps import (finite_difference_error, layer_jacobians, layer_taps,
                             layer_tangents_on_grid, model_digest)

# Torch's two threads contend with the other jobs on this machine: small vmap calls
# then take 20 ms instead of 1 ms.
pytestmark = pytest.mark.usefixtures("one_thread")

TORUS = Torus(R=1.0, r=0.4)


def seeded_linear(n_in, n_out, seed, *, dtype=torch.float64, bias_scale=0.5):
    """Linear layer with N(0, 1/n_in) weights from its own generator (no global RNG)."""
    generator = torch.Generator().manual_seed(seed)
    layer = torch.nn.utils.skip_init(torch.nn.Linear, n_in, n_out, dtype=dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(n_out, n_in, generator=generator, dtype=dtype) / n_in**0.5)
        layer.bias.copy_(bias_scale * torch.randn(n_out, generator=generator, dtype=dtype))
    return layer


def mlp(dtype=torch.float64):
    """Linear-Tanh-Dropout-Linear: the dropout tells eval mode from training mode."""
    return torch.nn.Sequential(seeded_linear(4, 16, 0, dtype=dtype), torch.nn.Tanh(),
                               torch.nn.Dropout(0.5), seeded_linear(16, 3, 1, dtype=dtype))


def conv_net():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 6, 3),
                                   torch.nn.Flatten(), torch.nn.Linear(6 * 2 * 2, 5))


def rows(count, *shape, seed=0):
    return np.random.default_rng(seed).normal(size=(count, *shape))


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def modes(model):
    return [m.training for m in model.modules()]


def reference(model, x):
    """Plain forward pass in eval mode, and the model's modes restored by hand."""
    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    with torch.no_grad():
        out = model(x)
    for m, training in saved:
        m.training = training
    return out


# --- taps ----------------------------------------------------------------------------------


def test_taps_equal_a_plain_forward_pass_mlp():
    model = mlp()
    model.train()
    model[1].eval()                        # mixed modes must come back as they were
    before = modes(model)
    x = rows(50, 4)
    taps = layer_taps(model, x, ["output", "input", "1"])
    assert list(taps) == ["output", "input", "1"]
    t = torch.from_numpy(x)
    np.testing.assert_allclose(taps["output"], reference(model, t).numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(taps["1"], reference(model[:2], t).numpy(), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(taps["input"], x)
    assert isinstance(taps["1"], np.ndarray) and taps["1"].dtype == np.float64
    assert no_hooks(model) and modes(model) == before


def test_taps_equal_a_plain_forward_pass_conv_net_float32():
    model = conv_net()
    x = rows(12, 1, 8, 8)
    taps = layer_taps(model, torch.from_numpy(x), ["0", "3", "output"])
    t = torch.from_numpy(x).float()
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in taps.values())
    torch.testing.assert_close(taps["0"], torch.flatten(reference(model[:1], t), 1),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(taps["3"], torch.flatten(reference(model[:4], t), 1),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(taps["output"], reference(model, t), rtol=1e-6, atol=1e-6)
    assert taps["3"].shape == (12, 6 * 2 * 2)
    assert no_hooks(model) and model.training


def test_taps_are_not_changed_by_later_in_place_ops():
    model = torch.nn.Sequential(seeded_linear(3, 6, 0), torch.nn.ReLU(inplace=True))
    theta = rows(8, 2)
    x = render(torch.from_numpy(theta))
    taps = layer_taps(model, x, ["0", "output"])
    with torch.no_grad():
        before_relu = model[0](x)
    assert bool((before_relu < 0).any())                 # the ReLU does change something
    np.testing.assert_allclose(taps["0"], before_relu, rtol=1e-12, atol=0)
    np.testing.assert_allclose(taps["output"], before_relu.clamp_min(0), rtol=1e-12, atol=0)
    # Exact tangents: d relu(z) = [z > 0] dz, entry by entry.
    jac = layer_jacobians(model, render, theta, ["0", "output"])
    active = (before_relu > 0).numpy()[..., None]
    np.testing.assert_allclose(jac["output"], np.where(active, jac["0"], 0.0), rtol=1e-12, atol=0)


def test_hooks_removed_and_modes_restored_when_the_forward_raises():
    class Boom(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model = torch.nn.Sequential(seeded_linear(4, 3, 0), Boom())
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        layer_taps(model, rows(5, 4), ["input", "0", "output"])
    assert no_hooks(model) and all(modes(model))
    with pytest.raises(ValueError, match="'render'.*RuntimeError: boom"):   # probe forward
        layer_jacobians(model, lambda t: t.repeat(1, 2), rows(3, 2), ["0"])
    assert no_hooks(model) and all(modes(model))


def test_chunking_never_changes_the_features():
    model = torch.nn.Sequential(seeded_linear(64, 1024, 0), torch.nn.Tanh(),
                                seeded_linear(1024, 3, 1))
    x = rows(40, 64)
    calls = []
    model.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    whole = layer_taps(model, x, ["input", "1", "output"])
    assert calls == [1, 40]                                      # probe row, then one chunk
    calls.clear()
    # 2**16 bytes hold 7 rows of (64 + 1024 + 3) float64 features.
    chunked = layer_taps(model, x, ["input", "1", "output"], memory_budget=2**16)
    assert calls == [1] + [7] * 5 + [5]
    for name in whole:
        np.testing.assert_allclose(chunked[name], whole[name], rtol=1e-12, atol=0)


# --- cache ---------------------------------------------------------------------------------


def test_cache_reads_files_and_computes_only_missing_layers(tmp_path, monkeypatch):
    model = mlp()
    x = rows(30, 4)
    first = layer_taps(model, x, ["input", "1", "output"], cache_dir=tmp_path)
    (folder,) = (tmp_path / model_digest(model)).iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["1.npy", "input.npy", "output.npy"]
    assert not list(tmp_path.rglob("*.tmp"))

    def refuse(*args, **kwargs):
        raise AssertionError("forward ran although every layer was cached")

    with monkeypatch.context() as patch:
        patch.setattr(model, "forward", refuse)
        again = layer_taps(model, x, ["output", "1"], cache_dir=tmp_path)
        as_tensor = layer_taps(model, torch.from_numpy(x), ["1"], cache_dir=tmp_path)
    np.testing.assert_array_equal(again["output"], first["output"])
    np.testing.assert_array_equal(again["1"], first["1"])
    assert isinstance(as_tensor["1"], torch.Tensor)
    np.testing.assert_array_equal(as_tensor["1"].numpy(), first["1"])

    # A cached layer is read, not recomputed: a planted file comes back as it is.
    np.save(folder / "1.npy", np.zeros_like(first["1"]))
    mixed = layer_taps(model, x, ["1", "0"], cache_dir=tmp_path)
    np.testing.assert_array_equal(mixed["1"], 0.0)
    np.testing.assert_allclose(mixed["0"], reference(model[:1], torch.from_numpy(x)).numpy(),
                               rtol=1e-12)
    assert (folder / "0.npy").exists() and not list(tmp_path.rglob("*.tmp"))


def test_cache_folders_follow_weights_and_input_key(tmp_path):
    model = mlp()
    x = rows(10, 4)
    layer_taps(model, x, ["output"], cache_dir=tmp_path, input_key="grid-a")
    assert (tmp_path / model_digest(model) / "grid-a" / "output.npy").exists()
    assert model_digest(copy.deepcopy(model)) == model_digest(model)
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed[0].weight[0, 0] += 1e-9
    assert model_digest(changed) != model_digest(model)
    out = layer_taps(changed, x, ["output"], cache_dir=tmp_path, input_key="grid-a")
    assert len(list(tmp_path.iterdir())) == 2
    np.testing.assert_allclose(out["output"], reference(changed, torch.from_numpy(x)).numpy(),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="'input_key'"):
        layer_taps(model, rows(11, 4), ["output"], cache_dir=tmp_path, input_key="grid-a")


# --- exact Jacobians -----------------------------------------------------------------------


def render(theta):
    """A nonlinear map R^2 -> R^3 standing in for a renderer."""
    t0, t1 = theta[:, 0], theta[:, 1]
    return torch.stack([torch.sin(t0) * t1, torch.cos(t1), t0**2 + t1], dim=-1)


def test_exact_jacobians_match_reverse_mode_autograd():
    model = torch.nn.Sequential(seeded_linear(3, 6, 0), torch.nn.Tanh(), seeded_linear(6, 4, 1))
    theta = rows(9, 2, seed=1)
    layers = ["input", "1", "output"]
    exact = layer_jacobians(model, render, theta, layers, chunk_size=4)
    one_by_one = layer_jacobians(model, render, torch.from_numpy(theta), layers, chunk_size=1)
    prefixes = {"input": lambda x: x, "1": model[:2], "output": model}
    for name in layers:
        assert isinstance(exact[name], np.ndarray) and exact[name].shape[1:] == (
            {"input": 3, "1": 6, "output": 4}[name], 2)
        assert isinstance(one_by_one[name], torch.Tensor)
        np.testing.assert_allclose(one_by_one[name].numpy(), exact[name], rtol=1e-13, atol=1e-15)
        for q, point in enumerate(torch.from_numpy(theta)):
            truth = torch.autograd.functional.jacobian(
                lambda t, prefix=prefixes[name]: prefix(render(t[None]))[0], point)
            np.testing.assert_allclose(exact[name][q], truth.numpy(), rtol=1e-12, atol=1e-14)


def test_jacobian_of_a_linear_layer_is_w_times_the_render_jacobian():
    model = torch.nn.Sequential(seeded_linear(3, 5, 2), torch.nn.Tanh())
    theta = rows(7, 2, seed=2)
    jac = layer_jacobians(model, render, theta, ["0"])["0"]
    weight = model[0].weight.detach().numpy()
    for q, point in enumerate(torch.from_numpy(theta)):
        j_render = torch.autograd.functional.jacobian(lambda t: render(t[None])[0], point)
        np.testing.assert_allclose(jac[q], weight @ j_render.numpy(), rtol=1e-12, atol=1e-14)


def test_float32_model_gets_rendered_inputs_in_its_dtype():
    model = torch.nn.Sequential(seeded_linear(3, 5, 2, dtype=torch.float32))
    jac = layer_jacobians(model, render, rows(4, 2), ["0"])["0"]
    assert jac.dtype == np.float32 and jac.shape == (4, 5, 2)


# --- finite differences converge to the exact tangents at the stencil's order --------------


def tanh_network():
    """R^3 -> R^8 -> R^5, tanh after each layer, float64, weights N(0, 1/fan_in)."""
    return torch.nn.Sequential(seeded_linear(3, 8, 0), torch.nn.Tanh(),
                               seeded_linear(8, 5, 1), torch.nn.Tanh())


def fd_errors(model, resolution, order, layers):
    grid = TORUS.grid(resolution)
    taps = layer_taps(model, TORUS.points(grid).reshape(-1, 3), layers)
    exact = layer_tangents_on_grid(model, TORUS.immersion, grid, layers, chunk_size=1024)
    return {name: finite_difference_error(taps[name].reshape(*grid.shape, -1), exact[name], grid,
                                          order=order) for name in layers}


@pytest.mark.parametrize("order, coarse, band", [(2, 32, (3.2, 4.8)), (4, 48, (12.8, 19.2))])
def test_finite_difference_error_falls_at_the_stencil_order(order, coarse, band):
    layers = ["input", "1", "3"]
    model = tanh_network()
    at_h = fd_errors(model, coarse, order, layers)
    at_half_h = fd_errors(model, 2 * coarse, order, layers)
    for name in layers:
        ratio = at_h[name] / at_half_h[name]
        assert band[0] <= ratio <= band[1], (name, ratio)


def test_tangents_on_grid_use_the_layout_of_gradient():
    grid = TORUS.grid(16)
    exact = layer_tangents_on_grid(torch.nn.Identity(), TORUS.immersion, grid, ["output"])
    jac = exact["output"]
    assert jac.shape == (*grid.shape, 3, 2)
    u, v = grid.points[..., 0], grid.points[..., 1]
    ring = TORUS.R + TORUS.r * np.cos(v)
    np.testing.assert_allclose(jac[..., 0], np.stack([-ring * np.sin(u), ring * np.cos(u),
                                                      0 * u], -1), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(jac[..., 2, 1], TORUS.r * np.cos(v), rtol=1e-12, atol=1e-14)


# --- isometries keep every layer's geometry ------------------------------------------------


def orthogonal(n, seed):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))
    return q


def linear_map(matrix, bias):
    layer = torch.nn.utils.skip_init(torch.nn.Linear, matrix.shape[1], matrix.shape[0],
                                     dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(matrix)
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float64))
    return layer


def isometric_network(scale_second=1.0):
    """R^3 -Q1-> R^3 -Q2-> R^3 -> R^6 (zero-padded, then rotated), with biases."""
    padded = torch.cat([torch.eye(3, dtype=torch.float64), torch.zeros(3, 3, dtype=torch.float64)])
    return torch.nn.Sequential(linear_map(orthogonal(3, 0), [0.3, -1.0, 2.0]),
                               linear_map(scale_second * orthogonal(3, 1), [1.0, 0.5, 0.0]),
                               linear_map(orthogonal(6, 2) @ padded, np.linspace(-1, 1, 6)))


def layer_geometry(model, grid):
    layers = ["input", "0", "1", "2"]
    taps = layer_taps(model, TORUS.points(grid).reshape(-1, 3), layers)
    exact = layer_tangents_on_grid(model, TORUS.immersion, grid, layers, chunk_size=4096)
    result = {}
    for name in layers:
        values = taps[name].reshape(*grid.shape, -1)
        result[name] = {"volume": total_volume(values, grid),
                        "curvature": scalar_curvature(values, grid),
                        "reach": grid_reach(values, grid).reach,
                        "volume element": volume_element_from_jacobian(exact[name])}
    return result


def test_isometric_layers_keep_volume_curvature_and_reach():
    grid = TORUS.grid(40)
    geometry = layer_geometry(isometric_network(), grid)
    first = geometry["input"]
    # Sanity of the input itself against the torus's closed forms (loose: O(h^2) stencils).
    assert first["volume"] == pytest.approx(TORUS.total_volume, rel=1e-2)
    assert first["reach"] == pytest.approx(TORUS.reach, rel=5e-2)
    np.testing.assert_allclose(first["volume element"], TORUS.volume_element(grid.points),
                               rtol=1e-12)
    curvature_scale = np.abs(first["curvature"]).max()
    for name in ["0", "1", "2"]:
        layer = geometry[name]
        assert layer["volume"] == pytest.approx(first["volume"], rel=1e-9)
        assert layer["reach"] == pytest.approx(first["reach"], rel=1e-9)
        np.testing.assert_allclose(layer["curvature"], first["curvature"], rtol=0,
                                   atol=1e-9 * curvature_scale)
        assert layer["curvature"].mean() == pytest.approx(first["curvature"].mean(), rel=1e-9)
        np.testing.assert_allclose(layer["volume element"], first["volume element"], rtol=1e-9)


def test_a_scaled_layer_changes_the_geometry_by_its_closed_form():
    grid = TORUS.grid(40)
    geometry = layer_geometry(isometric_network(scale_second=2.0), grid)
    first = geometry["input"]
    assert geometry["0"]["volume"] == pytest.approx(first["volume"], rel=1e-9)
    for name in ["1", "2"]:                              # after the scaled layer
        layer = geometry[name]
        assert layer["volume"] == pytest.approx(4 * first["volume"], rel=1e-9)
        assert layer["reach"] == pytest.approx(2 * first["reach"], rel=1e-9)
        np.testing.assert_allclose(4 * layer["curvature"], first["curvature"], rtol=0,
                                   atol=1e-9 * np.abs(first["curvature"]).max())
        np.testing.assert_allclose(layer["volume element"], 4 * first["volume element"],
                                   rtol=1e-9)


# --- errors name the parameter -------------------------------------------------------------


class Pair(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = seeded_linear(3, 2, 0)
        self.unused = seeded_linear(3, 2, 1)

    def forward(self, x):
        return self.encoder(x), x


class Twice(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = seeded_linear(3, 3, 0)

    def forward(self, x):
        return self.layer(self.layer(x))


@pytest.mark.parametrize("call, error, match", [
    (lambda: layer_taps(mlp(), rows(3, 4), "1"), TypeError, "'layers'.*wrap it in a list"),
    (lambda: layer_taps(mlp(), rows(3, 4), []), ValueError, "'layers'.*at least one"),
    (lambda: layer_taps(mlp(), rows(3, 4), ["9"]), ValueError,
     r"'layers'.*among \['input', 'output', '0', '1', '2', '3'\].*\['9'\]"),
    (lambda: layer_taps(mlp(), rows(3, 4), ["1", "1"]), ValueError, "'layers'.*once"),
    (lambda: layer_taps(mlp(), rows(3, 4), [1]), TypeError, "'layers'.*str"),
    (lambda: layer_taps(mlp(), rows(3, 4), 5), TypeError, "'layers'.*sequence"),
    (lambda: layer_taps(Pair(), rows(3, 3), ["output"]), TypeError, "'layers'.*'output'.*tuple"),
    (lambda: layer_taps(Pair(), rows(3, 3), ["unused"]), ValueError, "'layers'.*did not run"),
    (lambda: layer_taps(Twice(), rows(3, 3), ["layer"]), ValueError, "'layers'.*more than once"),
    (lambda: layer_taps(mlp(), rows(3, 4), ["1"], memory_budget=2**16 - 1), ValueError,
     r"'memory_budget'.*\[65536, inf\]"),
    (lambda: layer_taps(mlp(), rows(3, 4), ["1"], memory_budget=2.0**20), TypeError,
     "'memory_budget'"),
    (lambda: layer_taps(torch.nn.Flatten(), rows(2, 9000), ["input", "output"],
                        memory_budget=2**16), ValueError, "'memory_budget'.*one row"),
    (lambda: layer_taps(mlp(), np.full((3, 4), np.nan), ["1"]), ValueError, "'inputs'.*finite"),
    (lambda: layer_taps(mlp(), np.zeros((0, 4)), ["1"]), ValueError, "'inputs'.*N >= 1"),
    (lambda: layer_taps(mlp(), rows(3, 4), ["1"], cache_dir="/tmp", input_key="../x"),
     ValueError, "'input_key'"),
    (lambda: layer_taps(mlp(), rows(3, 4), ["1"], cache_dir=3), TypeError, "'cache_dir'"),
    (lambda: layer_taps(lambda x: x, rows(3, 4), ["1"]), TypeError, "'model'.*torch.nn.Module"),
    (lambda: model_digest("net"), TypeError, "'model' parameter of model_digest"),
    (lambda: layer_jacobians(mlp(), render, rows(3, 2), ["1"], chunk_size=0), ValueError,
     r"'chunk_size'.*\[1, inf\]"),
    (lambda: layer_jacobians(mlp(), "render", rows(3, 2), ["1"]), TypeError, "'render'"),
    (lambda: layer_jacobians(mlp(), lambda t: t[0], rows(3, 2), ["1"]), ValueError,
     r"'render'.*\(B, \.\.\.\)"),
    (lambda: layer_jacobians(mlp(), render, rows(3, 2), ["1"]), ValueError,
     "'render'.*model accepts"),                                  # (B, 3) into Linear(4, 16)
    (lambda: layer_jacobians(mlp(), render, rows(3), ["1"]), ValueError, r"'theta'.*\(Q, k\)"),
    (lambda: layer_jacobians(mlp(), render, np.full((3, 2), np.inf), ["1"]), ValueError,
     "'theta'.*finite"),
    (lambda: layer_jacobians(mlp(), render, rows(3, 2), ["x"]), ValueError, "'layers'"),
    (lambda: layer_tangents_on_grid(mlp(), render, (0, 1, 5), ["1"]), TypeError,
     "'grid' parameter of layer_tangents_on_grid"),
])
def test_errors_name_the_parameter(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_finite_difference_error_checks_its_arguments():
    grid = Grid.product(x=(0.0, 1.0, 11), y=(0.0, 1.0, 12, "periodic"))
    values = np.zeros((11, 12, 3))
    jacobian = np.ones((11, 12, 3, 2))
    caller = "of finite_difference_error"
    with pytest.raises(ValueError, match=rf"'values' parameter {caller}.*\(11, 12, F\)"):
        finite_difference_error(values[:, :5], jacobian, grid)
    with pytest.raises(ValueError, match=rf"'jacobian' parameter {caller}.*\(11, 12, 3, 2\)"):
        finite_difference_error(values, jacobian[..., :1], grid)
    with pytest.raises(ValueError, match=f"'order' parameter {caller}"):
        finite_difference_error(values, jacobian, grid, order=3)
    with pytest.raises(ValueError, match=f"'jacobian' parameter {caller}.*nonzero"):
        finite_difference_error(values, 0 * jacobian, grid)
    with pytest.raises(ValueError, match=f"'values' parameter {caller}.*finite"):
        finite_difference_error(np.full_like(values, np.nan), jacobian, grid)
    with pytest.raises(TypeError, match=f"'grid' parameter {caller}"):
        finite_difference_error(values, jacobian, grid.shape)
    # The error itself: a linear field has exact central differences.
    slope = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    linear = grid.points[..., :1] * slope[:, 0]                          # (11, 12, 3)
    exact = np.broadcast_to(slope, (11, 12, 3, 2))
    assert finite_difference_error(linear, exact, grid) == pytest.approx(0, abs=1e-13)
    assert finite_difference_error(linear, 2 * exact, grid) == pytest.approx(0.5, rel=1e-12)


# --- CUDA ----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(tmp_path):
    model = torch.nn.Sequential(seeded_linear(3, 6, 0), torch.nn.Tanh(), seeded_linear(6, 4, 1))
    theta = rows(20, 2, seed=3)
    x = render(torch.from_numpy(theta))
    layers = ["input", "1", "output"]
    cpu_taps = layer_taps(model, x, layers)
    cpu_jac = layer_jacobians(model, render, theta, layers)
    gpu = copy.deepcopy(model).cuda()
    gpu_taps = layer_taps(gpu, x.cuda(), layers, cache_dir=tmp_path)
    cached = layer_taps(gpu, x.cuda(), layers, cache_dir=tmp_path)
    numpy_taps = layer_taps(gpu, x.numpy(), layers)
    gpu_jac = layer_jacobians(gpu, render, torch.from_numpy(theta).cuda(), layers, chunk_size=7)
    numpy_jac = layer_jacobians(gpu, render, theta, layers)
    for name in layers:
        assert gpu_taps[name].is_cuda and cached[name].is_cuda and gpu_jac[name].is_cuda
        assert isinstance(numpy_taps[name], np.ndarray) and isinstance(numpy_jac[name], np.ndarray)
        for value in (gpu_taps[name].cpu(), cached[name].cpu(), torch.from_numpy(numpy_taps[name])):
            torch.testing.assert_close(value, cpu_taps[name], rtol=1e-12, atol=1e-14)
        for value in (gpu_jac[name].cpu(), torch.from_numpy(numpy_jac[name])):
            torch.testing.assert_close(value, torch.from_numpy(cpu_jac[name]), rtol=1e-12,
                                       atol=1e-14)
    # Inputs on the CPU, model on the GPU: features come back on the inputs' device.
    assert not layer_taps(gpu, x, ["1"])["1"].is_cuda
    assert no_hooks(gpu)
