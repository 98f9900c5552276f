r"""The course's MNIST DDPM in one place: schedule, U-Net and loss of the shipped ``ddpm_mnist`` checkpoint.

Notebooks 08 and 09, ``scripts/train_diffusion_mnist.py`` and ``bench/diffusion.py`` all need the same three
choices, so they live here rather than being repeated:

* the noise schedule: cosine (Nichol & Dhariwal 2021) with :math:`T = 1000`;
* the network: :class:`~course_lib.nn.unet.UNet` preset ``"mnist-small"`` (0.69M parameters), one channel;
* the loss: noise prediction with Min-SNR-5 weights,
  :math:`\mathbb E_{t, x_0, \epsilon}\, w_t \lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t} x_0 +
  \sqrt{1 - \bar\alpha_t}\epsilon, t) \rVert^2` with :math:`w_t = \min(\mathrm{SNR}_t, 5)/\mathrm{SNR}_t`
  (:func:`course_lib.models.diffusion.diffusion_loss`).

:func:`load_shipped` gives the shipped weights (sha256-checked, ``weights_only``) or, when the file is missing,
trains the same recipe for a few steps here and says so. Images are ``(B, 1, 28, 28)`` in ``[-1, 1]``.
"""

from __future__ import annotations

import torch

from course_lib import checkpoints, data, train
from course_lib import device as _device
from course_lib.models.diffusion import NoiseSchedule, diffusion_loss
from course_lib.nn.unet import UNet, unet_config

CHECKPOINT = "ddpm_mnist"
SCHEDULE_NAME, T = "cosine", 1000
UNET_PRESET = "mnist-small"
PREDICTION, WEIGHTING = "eps", "min_snr"


def noise_schedule() -> NoiseSchedule:
    """The schedule the shipped model was trained with: cosine, ``T = 1000``."""
    return NoiseSchedule.from_name(SCHEDULE_NAME, T)


def build_unet() -> UNet:
    """A freshly initialised U-Net of the shipped architecture (seed first for reproducibility)."""
    return UNet(1, **unet_config(UNET_PRESET))


def loss(model: torch.nn.Module, batch, schedule: NoiseSchedule) -> torch.Tensor:
    """The training loss on ``batch = (x0, ...)``, ``x0: (B, 1, 28, 28)`` in ``[-1, 1]``; a scalar."""
    return diffusion_loss(model, batch[0], schedule, prediction=PREDICTION, weighting=WEIGHTING)


def load_shipped(*, device=None, fallback_steps: int = 2000, progress: bool = True) -> tuple[UNet, str]:
    """The shipped noise predictor on ``device`` in eval mode, and where its weights came from.

    Returns ``(model, source)`` with ``source`` as in :func:`course_lib.checkpoints.load_or_train`:
    ``"shipped"``, ``"cache"`` or ``"trained"``. The fallback trains the recipe (AdamW 2e-3, batch 64, clipping 1,
    EMA 0.999, no learning-rate decay) for ``fallback_steps`` steps on the MNIST training digits and uses the EMA
    weights: rougher digits than the shipped model, which was trained longer.
    """
    if fallback_steps < 1:
        raise ValueError(f"fallback_steps must be >= 1, got {fallback_steps}")
    dev = _device.get_device(device)
    schedule = noise_schedule()

    def train_fallback(model):
        images = data.mnist("train", value_range="symmetric")
        loader = data.InMemoryLoader(images.x, images.y, batch_size=64, device=dev)
        result = train.fit(model, lambda m, b: loss(m, b, schedule), loader, steps=fallback_steps, lr=2e-3,
                           ema_decay=0.999, clip_grad_norm=1.0, device=dev, progress=progress,
                           desc="DDPM (no shipped weights: training here)")
        return result.ema.copy_to(model)

    model, source = checkpoints.load_or_train(CHECKPOINT, build_unet(), train_fallback)
    return model.to(dev).eval(), source
