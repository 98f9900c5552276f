r"""CycleGAN (Zhu et al., 2017): translation between two image domains that were never paired.

Two generators :math:`G: A \to B` and :math:`F: B \to A` and two discriminators :math:`D_A`, :math:`D_B`. With
unpaired samples :math:`a \sim p_A`, :math:`b \sim p_B` the generators minimise

.. math::

    \mathcal L(G, F) = \underbrace{\mathcal L_\text{GAN}(G, D_B) + \mathcal L_\text{GAN}(F, D_A)}_\text{adversarial}
    + \lambda_\text{cyc}\,\underbrace{\big(\mathbb E\lVert F(G(a)) - a\rVert_1 + \mathbb E\lVert G(F(b)) - b\rVert_1\big)}_\text{cycle consistency}
    + \lambda_\text{id}\,\underbrace{\big(\mathbb E\lVert G(b) - b\rVert_1 + \mathbb E\lVert F(a) - a\rVert_1\big)}_\text{identity}

(the norms are per-pixel means). The adversarial terms make translations look like the other domain; the
cycle term asks that translating there and back returns the input, which is what keeps *content* (here: the
digit's class) although no pair :math:`(a, b)` was ever shown; the identity term discourages changes that
are not needed (an image already in the target domain should pass through). As in the paper, the
adversarial loss is the least-squares GAN (Mao et al., 2017): :math:`D` minimises
:math:`\mathbb E[(D(b) - 1)^2] + \mathbb E[D(G(a))^2]`, :math:`G` minimises :math:`\mathbb E[(D(G(a)) - 1)^2]`,
with PatchGAN discriminators that score overlapping patches.

The course's two domains: **A** = MNIST digits, **B** = scikit-learn's 8x8 digits brought to 28x28 by
:func:`digits8x8_to_28` (blurrier, thicker, differently centred), both in [-1, 1].

Shapes: images ``(B, C, 28, 28)`` in [-1, 1]; PatchGAN outputs ``(B, 1, 6, 6)`` scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import device as _device
from course_lib.train import History, NonFiniteLossError

__all__ = [
    "digits8x8_to_28",
    "digits28_to_8x8",
    "class_preservation",
    "ClassPreservation",
    "ResnetGenerator",
    "PatchDiscriminator",
    "CycleGAN",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "cyclegan_train_step",
    "train_cyclegan",
    "CycleGANTrainResult",
]


def digits8x8_to_28(x: torch.Tensor, *, box: int = 20) -> torch.Tensor:
    r"""Bring 8x8 digits to MNIST's format: resize to ``box x box`` (bilinear) and centre in 28x28 with zero padding.

    MNIST digits fit a 20x20 box centred in 28x28, so ``box=20`` matches their scale. ``x: (B, 1, 8, 8)`` in
    [0, 1] (``"unit"``) or [-1, 1] (``"symmetric"``: the padding is then -1, the background). -> ``(B, 1, 28, 28)``.
    """
    if x.dim() != 4 or x.shape[1:] != (1, 8, 8):
        raise ValueError(f"digits8x8_to_28: x must be (B, 1, 8, 8), got {tuple(x.shape)}")
    if x.min() < -1.0 - 1e-6 or x.max() > 1.0 + 1e-6:
        raise ValueError("digits8x8_to_28: values must be in [0, 1] or [-1, 1]; load the digits with "
                         "data.digits8x8(value_range='unit') or 'symmetric', not 'counts'")
    background = -1.0 if x.min() < 0 else 0.0
    resized = F.interpolate(x, size=(box, box), mode="bilinear", align_corners=False)
    pad = (28 - box) // 2
    return F.pad(resized, (pad, 28 - box - pad, pad, 28 - box - pad), value=background)


def digits28_to_8x8(x: torch.Tensor, *, box: int = 20) -> torch.Tensor:
    """The inverse view of :func:`digits8x8_to_28`: crop the centred ``box x box`` and average-pool it to 8x8.

    ``x: (B, 1, 28, 28)`` -> ``(B, 1, 8, 8)`` in the same range; used to classify domain-B images with the
    8x8 digit classifier.
    """
    if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
        raise ValueError(f"digits28_to_8x8: x must be (B, 1, 28, 28), got {tuple(x.shape)}")
    pad = (28 - box) // 2
    return F.interpolate(x[:, :, pad:pad + box, pad:pad + box], size=(8, 8), mode="area")


@dataclass
class ClassPreservation:
    """Share of translations whose class survives: ``a_to_b`` (MNIST -> 8x8 style), ``b_to_a``; ``n_a``, ``n_b``."""

    a_to_b: float
    b_to_a: float
    n_a: int
    n_b: int

    def __str__(self) -> str:
        return (f"class preserved: A->B {self.a_to_b:.1%} of {self.n_a}, B->A {self.b_to_a:.1%} of {self.n_b}")


def class_preservation(model: "CycleGAN", a: torch.Tensor, y_a: torch.Tensor, b: torch.Tensor, y_b: torch.Tensor,
                       *, device: torch.device | str | None = None) -> ClassPreservation:
    r"""How often a translated digit is still read as the same digit by the *target* domain's classifier.

    A -> B: :math:`G(a)` is brought to 8x8 (:func:`digits28_to_8x8`) and read by the shipped 8x8 digit classifier;
    B -> A: :math:`F(b)` is read by the shipped MNIST classifier. ``a, b: (N, 1, 28, 28)`` in [-1, 1] (B already
    brought to 28x28), ``y_a, y_b: (N,)`` their true labels.
    """
    from course_lib import metrics

    fake_b = (model.translate(a, "AB").cpu() + 1) / 2
    fake_a = (model.translate(b, "BA").cpu() + 1) / 2
    pred_b = metrics.extract_logits(digits28_to_8x8(fake_b).clamp(0, 1), "digits8x8", device=device).argmax(1)
    pred_a = metrics.extract_logits(fake_a.clamp(0, 1), "mnist", device=device).argmax(1)
    return ClassPreservation(a_to_b=float((pred_b == y_a.cpu()).float().mean()),
                             b_to_a=float((pred_a == y_b.cpu()).float().mean()), n_a=len(a), n_b=len(b))


class _ResidualBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(c, affine=True),
                                   nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"),
                                   nn.InstanceNorm2d(c, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    r"""CycleGAN's ResNet generator, scaled down for 28x28: c7s1-w, d2w, d4w, ``blocks`` x R4w, u2w, uw, c7s1-C, tanh.

    InstanceNorm + ReLU; ``(B, C, 28, 28)`` -> ``(B, C, 28, 28)`` in [-1, 1] (28 -> 14 -> 7 -> 14 -> 28).
    """

    def __init__(self, channels: int = 1, width: int = 16, blocks: int = 3):
        super().__init__()
        w = width
        norm = lambda c: nn.InstanceNorm2d(c, affine=True)  # noqa: E731
        layers: list[nn.Module] = [nn.Conv2d(channels, w, 7, padding=3, padding_mode="reflect"), norm(w), nn.ReLU(),
                                   nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), norm(2 * w), nn.ReLU(),
                                   nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), norm(4 * w), nn.ReLU()]
        layers += [_ResidualBlock(4 * w) for _ in range(blocks)]
        layers += [nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1), norm(2 * w), nn.ReLU(),
                   nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), norm(w), nn.ReLU(),
                   nn.Conv2d(w, channels, 7, padding=3, padding_mode="reflect"), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (self.channels, 28, 28):
            raise ValueError(f"ResnetGenerator: x must be (B, {self.channels}, 28, 28) in [-1, 1], got {tuple(x.shape)}")
        return self.net(x)


class PatchDiscriminator(nn.Module):
    r"""PatchGAN discriminator: one score per overlapping patch (receptive field about 16x16 pixels).

    C4-w (stride 2, no norm), C4-2w (stride 2), C3-4w (stride 1), conv to 1 map; LeakyReLU(0.2), InstanceNorm.
    ``(B, C, 28, 28)`` -> ``(B, 1, 7, 7)`` scores (no sigmoid: used with the least-squares loss).
    """

    def __init__(self, channels: int = 1, width: int = 16):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # 14
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.InstanceNorm2d(2 * w, affine=True), nn.LeakyReLU(0.2),  # 7
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.InstanceNorm2d(4 * w, affine=True), nn.LeakyReLU(0.2),  # 7
            nn.Conv2d(4 * w, 1, 3, padding=1),  # 7
        )
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (self.channels, 28, 28):
            raise ValueError(f"PatchDiscriminator: x must be (B, {self.channels}, 28, 28), got {tuple(x.shape)}")
        return self.net(x)


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    r"""Least-squares discriminator loss :math:`\tfrac12\big(\mathbb E[(D(x) - 1)^2] + \mathbb E[D(\tilde x)^2]\big)`."""
    return 0.5 * (((real_scores - 1) ** 2).mean() + (fake_scores ** 2).mean())


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    r"""Least-squares generator loss :math:`\mathbb E[(D(G(a)) - 1)^2]`."""
    return ((fake_scores - 1) ** 2).mean()


class CycleGAN(nn.Module):
    r"""The four networks: ``G_AB`` (:math:`G`), ``G_BA`` (:math:`F`), ``D_A``, ``D_B``, and the loss terms.

    Pass your own modules (any ``(B, C, H, W) -> (B, C, H, W)`` generators) or get the default small
    :class:`ResnetGenerator` / :class:`PatchDiscriminator`. ``lambda_cycle`` = 10 and ``lambda_identity`` = 5
    (0.5 :math:`\lambda_\text{cyc}`) as in the paper.
    """

    def __init__(self, G_AB: nn.Module | None = None, G_BA: nn.Module | None = None, D_A: nn.Module | None = None,
                 D_B: nn.Module | None = None, *, width: int = 16, blocks: int = 3, lambda_cycle: float = 10.0,
                 lambda_identity: float = 5.0):
        super().__init__()
        self.G_AB = G_AB if G_AB is not None else ResnetGenerator(width=width, blocks=blocks)
        self.G_BA = G_BA if G_BA is not None else ResnetGenerator(width=width, blocks=blocks)
        self.D_A = D_A if D_A is not None else PatchDiscriminator(width=width)
        self.D_B = D_B if D_B is not None else PatchDiscriminator(width=width)
        self.lambda_cycle, self.lambda_identity = float(lambda_cycle), float(lambda_identity)

    def generator_parameters(self):
        return list(self.G_AB.parameters()) + list(self.G_BA.parameters())

    def discriminator_parameters(self):
        return list(self.D_A.parameters()) + list(self.D_B.parameters())

    def cycle_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathbb E\lvert F(G(a)) - a\rvert + \mathbb E\lvert G(F(b)) - b\rvert` (mean absolute error per pixel)."""
        return (self.G_BA(self.G_AB(a)) - a).abs().mean() + (self.G_AB(self.G_BA(b)) - b).abs().mean()

    def identity_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathbb E\lvert G(b) - b\rvert + \mathbb E\lvert F(a) - a\rvert`."""
        return (self.G_AB(b) - b).abs().mean() + (self.G_BA(a) - a).abs().mean()

    def generator_loss(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, dict[str, float], tuple]:
        r"""The full generator objective :math:`\mathcal L(G, F)`; returns ``(loss, logs, (fake_b, fake_a))``."""
        fake_b, fake_a = self.G_AB(a), self.G_BA(b)
        adversarial = lsgan_generator_loss(self.D_B(fake_b)) + lsgan_generator_loss(self.D_A(fake_a))
        cycle = (self.G_BA(fake_b) - a).abs().mean() + (self.G_AB(fake_a) - b).abs().mean()
        identity = self.identity_loss(a, b) if self.lambda_identity > 0 else torch.zeros((), device=a.device)
        loss = adversarial + self.lambda_cycle * cycle + self.lambda_identity * identity
        logs = {"g_adv": float(adversarial.detach()), "cycle": float(cycle.detach()), "identity": float(identity.detach())}
        return loss, logs, (fake_b, fake_a)

    def discriminator_loss(self, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor
                           ) -> torch.Tensor:
        """LSGAN loss of both discriminators; the fakes are detached here."""
        return (lsgan_discriminator_loss(self.D_A(a), self.D_A(fake_a.detach()))
                + lsgan_discriminator_loss(self.D_B(b), self.D_B(fake_b.detach())))

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AB", batch_size: int = 500) -> torch.Tensor:
        """``G_AB(x)`` (``"AB"``) or ``G_BA(x)`` (``"BA"``) in eval mode, without gradients, in batches."""
        if direction not in ("AB", "BA"):
            raise ValueError(f"translate: direction must be 'AB' or 'BA', got {direction!r}")
        net = self.G_AB if direction == "AB" else self.G_BA
        was = net.training
        net.eval()
        dev = next(net.parameters()).device
        try:
            out = [net(x[i:i + batch_size].to(dev)) for i in range(0, len(x), batch_size)]
        finally:
            net.train(was)
        return torch.cat(out)


def cyclegan_train_step(model: CycleGAN, a: torch.Tensor, b: torch.Tensor, opt_g: torch.optim.Optimizer,
                        opt_d: torch.optim.Optimizer, *, step: int | None = None) -> dict[str, float]:
    r"""One update of both generators (discriminators frozen), then of both discriminators (fakes detached).

    ``a: (B, C, 28, 28)`` from domain A, ``b`` from domain B (unpaired; any batch sizes). ``opt_g`` must hold
    only the generators' parameters, ``opt_d`` only the discriminators'. Returns the logged losses as floats.
    """
    g_ids = {id(p) for p in model.generator_parameters()}
    d_ids = {id(p) for p in model.discriminator_parameters()}
    if not {id(p) for grp in opt_g.param_groups for p in grp["params"]} <= g_ids:
        raise ValueError("cyclegan_train_step: opt_g must hold only G_AB's and G_BA's parameters "
                         "(make it from model.generator_parameters())")
    if not {id(p) for grp in opt_d.param_groups for p in grp["params"]} <= d_ids:
        raise ValueError("cyclegan_train_step: opt_d must hold only D_A's and D_B's parameters "
                         "(make it from model.discriminator_parameters())")
    model.train()
    for d in (model.D_A, model.D_B):
        d.requires_grad_(False)
    try:
        g_loss, logs, (fake_b, fake_a) = model.generator_loss(a, b)
    finally:
        for d in (model.D_A, model.D_B):
            d.requires_grad_(True)
    if not torch.isfinite(g_loss):
        raise NonFiniteLossError(step or 0, float(g_loss), quantity="generator loss")
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()

    d_loss = model.discriminator_loss(a, b, fake_a, fake_b)
    if not torch.isfinite(d_loss):
        raise NonFiniteLossError(step or 0, float(d_loss), quantity="discriminator loss")
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    logs.update(g_loss=float(g_loss.detach()), d_loss=float(d_loss.detach()))
    return logs


@dataclass
class CycleGANTrainResult:
    """``model`` (eval mode), ``history``, ``steps`` done, ``seconds``."""

    model: CycleGAN
    history: History
    steps: int
    seconds: float


def train_cyclegan(model: CycleGAN, loader_a: Iterable, loader_b: Iterable, *, steps: int, lr: float = 2e-4,
                   betas: tuple[float, float] = (0.5, 0.999), device: torch.device | str | None = None,
                   log_every: int = 10, callback: Callable[[int, CycleGAN, History], None] | None = None,
                   time_limit: float | None = None, progress: bool = True, desc: str = "CycleGAN") -> CycleGANTrainResult:
    """Alternate :func:`cyclegan_train_step` over unpaired batches ``(a,)`` / ``(b,)`` from two loaders.

    The two loaders are iterated independently (different sizes and orders: nothing pairs them). Adam for
    each side; a row of averages every ``log_every`` steps, ``callback(step, model, history)``; ``time_limit``
    in seconds stops at the next logging row.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"train_cyclegan: steps must be a positive int, got {steps!r}")
    from tqdm.auto import tqdm

    dev = _device.get_device(device)
    model.to(dev)
    opt_g = torch.optim.Adam(model.generator_parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(model.discriminator_parameters(), lr=lr, betas=betas)

    def endless(loader):
        while True:
            empty = True
            for batch in loader:
                empty = False
                yield batch[0] if isinstance(batch, (tuple, list)) else batch
            if empty:
                raise ValueError("train_cyclegan: a loader yielded no batches")

    it_a, it_b = endless(loader_a), endless(loader_b)
    history, sums, done, started = History(), {}, 0, time.perf_counter()
    bar = tqdm(total=steps, desc=desc, disable=not progress, dynamic_ncols=True)
    try:
        for step in range(1, steps + 1):
            a, b = next(it_a).to(dev), next(it_b).to(dev)
            for k, v in cyclegan_train_step(model, a, b, opt_g, opt_d, step=step).items():
                sums.setdefault(k, []).append(v)
            bar.update(1)
            done = step
            if step % log_every == 0 or step == steps:
                means = {k: sum(v) / len(v) for k, v in sums.items()}
                history.log(step, means)
                sums = {}
                bar.set_postfix({k: f"{means[k]:.3g}" for k in ("cycle", "g_adv", "d_loss")}, refresh=False)
                if callback is not None:
                    callback(step, model, history)
                if time_limit is not None and time.perf_counter() - started > time_limit:
                    break
    finally:
        bar.close()
    model.eval()
    return CycleGANTrainResult(model=model, history=history, steps=done, seconds=time.perf_counter() - started)
