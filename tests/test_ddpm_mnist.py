"""The course's MNIST DDPM recipe: the shipped checkpoint loads into the recipe's architecture, and without it a
short fallback training runs (and says so)."""

import pytest
import torch

from course_lib import checkpoints
from course_lib.models import ddpm_mnist
from course_lib.models.diffusion import NoiseSchedule


def test_schedule_is_the_cosine_schedule_with_1000_steps():
    schedule = ddpm_mnist.noise_schedule()
    reference = NoiseSchedule.cosine(1000)
    assert schedule.T == 1000
    assert torch.allclose(schedule.alpha_bar, reference.alpha_bar)


def test_shipped_weights_load_verified_and_predict_noise_of_the_right_shape():
    assert ddpm_mnist.CHECKPOINT in checkpoints.names(), "ddpm_mnist.pt should ship with the course"
    entry = checkpoints.manifest()[ddpm_mnist.CHECKPOINT]
    assert f"preset '{ddpm_mnist.UNET_PRESET}'" in entry["notes"] and "cosine schedule, T=1000" in entry["notes"]
    model, source = ddpm_mnist.load_shipped(device="cpu")
    assert source == "shipped" and not model.training
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        eps = model(x, torch.tensor([0, 500, 999]))
    assert eps.shape == x.shape and torch.isfinite(eps).all()
    # a trained noise predictor recovers the noise of a noised digit far better than guessing zero
    from course_lib import data

    x0 = data.mnist("test", value_range="symmetric").x[:64]
    schedule = ddpm_mnist.noise_schedule()
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x0.shape, generator=g)
    t = torch.full((64,), 300)
    with torch.no_grad():
        eps_hat = model(schedule.q_sample(x0, t, noise), t)
    assert torch.mean((eps_hat - noise) ** 2) < 0.2 * torch.mean(noise**2)


def test_without_shipped_weights_the_recipe_trains_here(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "DIRECTORY", tmp_path / "none")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    model, source = ddpm_mnist.load_shipped(device="cpu", fallback_steps=1, progress=False)
    assert source == "trained" and not model.training
    assert sum(p.numel() for p in model.parameters()) == ddpm_mnist.build_unet().num_parameters()
    with pytest.raises(ValueError, match="fallback_steps"):
        ddpm_mnist.load_shipped(fallback_steps=0)
