"""Tests of course_lib.nn.unet and course_lib.nn.time_embedding: shapes, time conditioning, sizes, errors."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.models import diffusion as dm
from course_lib.nn.time_embedding import TimeConditionedMLP, TimeEmbedding, sinusoidal_embedding
from course_lib.nn.unet import UNET_PRESETS, UNet, default_unet, unet_config


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def randomise_zero_inits(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """The U-Net starts as 'predict zero' (zero-initialised last layers); give every weight a random value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def test_sinusoidal_embedding_matches_the_formula():
    t = torch.tensor([0, 1, 17, 999])
    emb = sinusoidal_embedding(t, 8)
    assert emb.shape == (4, 8)
    for row, tt in enumerate(t.tolist()):
        for i in range(4):
            w = 10_000 ** (-i / 4)
            assert math.isclose(float(emb[row, i]), math.sin(tt * w), abs_tol=1e-4)
            assert math.isclose(float(emb[row, i + 4]), math.cos(tt * w), abs_tol=1e-4)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(t, 7)


def test_time_embedding_and_mlp_shapes():
    assert TimeEmbedding(16)(torch.arange(5)).shape == (5, 64)
    net = TimeConditionedMLP(2, width=32, depth=2)
    x, t = torch.randn(7, 2), torch.randint(0, 1000, (7,))
    assert torch.equal(net(x, t), torch.zeros(7, 2)), "the untrained MLP starts by predicting zero"
    randomise_zero_inits(net)
    assert net(x, t).shape == (7, 2)
    assert not torch.allclose(net(x, torch.zeros(7, dtype=torch.long)), net(x, torch.full((7,), 500)))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        net(torch.randn(7, 3), t)


@pytest.mark.parametrize("size, preset", [(28, "mnist-small"), (8, "cpu-8x8"), (28, "plain-two-level")])
def test_unet_output_has_the_input_shape(size, preset):
    model = UNet(1, **unet_config(preset))
    x = torch.randn(3, 1, size, size)
    out = model(x, torch.tensor([0, 10, 999]))
    assert out.shape == x.shape
    assert torch.equal(out, torch.zeros_like(out)), "zero-initialised output layer: the untrained net predicts 0"


def test_unet_time_conditioning_changes_the_output():
    model = randomise_zero_inits(UNet(1, channels=(8, 16, 16)))
    x = torch.randn(2, 1, 28, 28)
    a = model(x, torch.tensor([0, 0]))
    b = model(x, torch.tensor([900, 900]))
    assert (a - b).abs().mean() > 1e-3 * a.abs().mean(), "the step must change the prediction"
    # and each image only sees its own step: changing image 1's step leaves image 0's output alone
    c = model(x, torch.tensor([0, 900]))
    torch.testing.assert_close(c[0], a[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c[1], b[1], rtol=1e-4, atol=1e-5)


def test_every_parameter_gets_a_gradient():
    model = randomise_zero_inits(UNet(1, channels=(8, 16, 16), attention_levels=(1, 2)))
    loss = model(torch.randn(2, 1, 8, 8), torch.tensor([3, 700])).pow(2).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"parameters without gradient: {missing}"


def test_cpu_default_size_and_gpu_default_is_wider():
    cpu = default_unet(28, device="cpu")
    assert cpu.num_parameters() == 686_769, "the CPU preset is pinned: notebooks' timings depend on it"
    assert cpu.channels == (16, 32, 64)
    gpu = default_unet(28, device="cuda")  # only chooses the size; nothing is moved to a GPU
    assert gpu.num_parameters() > 5 * cpu.num_parameters()
    assert default_unet(8, device="cpu").channels == UNET_PRESETS["cpu-8x8"]["channels"]
    assert 0.28e6 < UNet(1, **unet_config("plain-two-level")).num_parameters() < 0.32e6, "the 0.3M baseline"
    with pytest.raises(ValueError, match="28x28 and 8x8"):
        default_unet(32)


def test_unet_errors_name_the_fix():
    model = UNet(1, channels=(8, 16, 16))
    with pytest.raises(ValueError, match="multiples of 4"):
        model(torch.randn(1, 1, 30, 30), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model(torch.randn(1, 3, 28, 28), torch.tensor([1]))
    with pytest.raises(ValueError, match="one step per image"):
        model(torch.randn(2, 1, 28, 28), torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="attention_levels"):
        UNet(1, channels=(8, 16), attention_levels=(2,))
    with pytest.raises(ValueError, match="unknown U-Net preset"):
        unet_config("huge")


def test_unet_trains_with_ema_through_the_shared_loop():
    from course_lib import train

    schedule = dm.NoiseSchedule.cosine(100)
    model = UNet(1, channels=(8, 16, 16))
    x = torch.rand(64, 1, 8, 8) * 2 - 1
    loader = [(x[i : i + 16],) for i in range(0, 64, 16)]
    result = train.fit(model, lambda m, b: dm.diffusion_loss(m, b[0], schedule), loader, steps=12, lr=2e-3,
                       ema_decay=0.99, device="cpu", progress=False, log_every=4)
    assert result.ema is not None and result.ema.num_updates == 12
    ema_state, model_state = result.ema.module.state_dict(), result.model.state_dict()
    assert any(not torch.equal(ema_state[k], model_state[k]) for k in model_state), "EMA weights lag the model"
    samples = dm.ddim_sample(result.ema.module, schedule, (2, 1, 8, 8), steps=5, clip_x0=True, device="cpu")
    assert samples.shape == (2, 1, 8, 8) and samples.abs().max() <= 1.0 + 1e-5
