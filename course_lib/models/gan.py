r"""Generative adversarial networks: the minimax game, its non-saturating form, DCGAN, WGAN-GP and the conditional GAN.

**The game** (Goodfellow et al., 2014). A generator :math:`G: z \mapsto x`, :math:`z \sim p(z) = \mathcal N(0, I)`,
and a discriminator :math:`D: x \mapsto D(x) = \sigma(\ell(x)) \in (0, 1)` (the probability that :math:`x` is real,
computed from a *logit* :math:`\ell(x)`) play

.. math::  \min_G \max_D\; V(D, G) = \mathbb E_{x \sim p_\text{data}}[\log D(x)]
           + \mathbb E_{z \sim p(z)}[\log(1 - D(G(z)))] .

For a fixed :math:`G` the best discriminator is :math:`D^*(x) = p_\text{data}(x) / (p_\text{data}(x) + p_G(x))`, and
then :math:`V(D^*, G) = 2\,\mathrm{JS}(p_\text{data} \Vert p_G) - \log 4`: the generator minimises a Jensen-Shannon
divergence. In code every term is written with logits and :math:`\operatorname{softplus}(u) = \log(1 + e^u)`,
which is exact and never takes the log of 0:

.. math::  -\log D(x) = \operatorname{softplus}(-\ell(x)), \qquad -\log(1 - D(x)) = \operatorname{softplus}(\ell(x)).

==================================  ==========================================================================
function                            loss that is *minimised*
==================================  ==========================================================================
:func:`discriminator_loss`          :math:`\mathbb E[\operatorname{softplus}(-\ell(x))] + \mathbb E[\operatorname{softplus}(\ell(G(z)))]`
                                    = binary cross-entropy with real labelled 1 and fake labelled 0
:func:`generator_loss_minimax`      :math:`\mathbb E[\log(1 - D(G(z)))] = -\mathbb E[\operatorname{softplus}(\ell(G(z)))]`
                                    (the original game; its gradient vanishes when :math:`D` rejects the fakes)
:func:`generator_loss_nonsaturating` :math:`-\mathbb E[\log D(G(z))] = \mathbb E[\operatorname{softplus}(-\ell(G(z)))]`:
                                    the generator *maximises* :math:`\log D(G(z))` (what everyone trains with)
:func:`wgan_critic_loss`            :math:`\mathbb E[f(G(z))] - \mathbb E[f(x)]` (Arjovsky et al., 2017)
:func:`wgan_generator_loss`         :math:`-\mathbb E[f(G(z))]`
:func:`gradient_penalty`            :math:`\mathbb E_{\hat x}[(\lVert \nabla_{\hat x} f(\hat x) \rVert_2 - 1)^2]`,
                                    :math:`\hat x = \epsilon x + (1 - \epsilon) G(z)`, :math:`\epsilon \sim U[0, 1]`
                                    (Gulrajani et al., 2017)
==================================  ==========================================================================

**WGAN-GP.** The critic :math:`f` (no sigmoid) estimates the Wasserstein-1 distance through the Kantorovich-Rubinstein
duality :math:`W_1(p, q) = \sup_{\lVert f \rVert_L \le 1} \mathbb E_p[f] - \mathbb E_q[f]`; the gradient penalty
keeps :math:`f` close to 1-Lipschitz along lines between real and generated points. Unlike the JS game,
:math:`-\text{critic loss}` is an estimate of a distance, so it falls as the samples improve: a useful training curve,
provided the critic stays near its optimum (``n_critic`` critic steps per generator step and, on the 2-D toy data, a
generator learning rate about 10x smaller than the critic's; a negative estimate means the critic has fallen behind).

**Conditional GAN** (Mirza & Osindero, 2014). Both networks see the label :math:`y`: :math:`G(z, y)` and
:math:`D(x, y)`. Here the generator concatenates a learned label embedding to :math:`z`, and the discriminator is a
*projection discriminator* (Miyato & Koyama, 2018): :math:`\ell(x, y) = \psi(\phi(x)) + e_y^\top \phi(x)`.

**Training** alternates two updates that must not leak into each other (:func:`gan_train_step`):
the discriminator/critic step uses ``G(z).detach()`` and only ``opt_d`` steps; the generator step freezes
:math:`D`'s parameters (gradients still flow *through* :math:`D` to :math:`G`) and only ``opt_g`` steps.
:func:`train_gan` runs that step in a loop with a ``tqdm`` bar, a :class:`~course_lib.train.History`, an
:class:`~course_lib.train.EMA` of the generator and the NaN guard of the course.

Shapes: latents ``z: (B, latent_dim)``; 2-D data ``x: (B, 2)``; images ``x: (B, C, 28, 28)`` in [-1, 1]
(``"symmetric"`` range, the generator ends in ``tanh``); labels ``y: (B,)`` int64 in ``[0, num_classes)``;
logits and critic scores ``(B,)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import device as _device
from course_lib.train import EMA, History, NonFiniteLossError

__all__ = [
    "MLPGenerator",
    "MLPDiscriminator",
    "DCGANGenerator",
    "DCGANDiscriminator",
    "GAN",
    "discriminator_loss",
    "generator_loss_minimax",
    "generator_loss_nonsaturating",
    "wgan_critic_loss",
    "wgan_generator_loss",
    "interpolate",
    "gradient_penalty",
    "optimal_discriminator",
    "gan_train_step",
    "train_gan",
    "GANTrainResult",
    "LOSSES",
    "mode_coverage_2d",
    "sliced_wasserstein",
    "MNIST_GANS",
    "build_mnist_gan",
    "ModeCoverage",
]

#: The objectives :func:`gan_train_step` knows.
LOSSES = ("nonsaturating", "minimax", "wgan-gp")


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def _check_labels(y: Any, batch: int, num_classes: int | None, who: str) -> torch.Tensor | None:
    """The label contract of the conditional networks: ``y: (B,)`` int64 in ``[0, num_classes)``."""
    if num_classes is None:
        if y is not None:
            raise ValueError(f"{who}: this network is unconditional (num_classes=None) but labels were given; "
                             f"build it with num_classes=10 to condition on labels")
        return None
    if y is None:
        raise ValueError(f"{who}: this network is conditional (num_classes={num_classes}); pass labels y of shape "
                         f"({batch},), e.g. torch.randint(0, {num_classes}, ({batch},))")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{who}: labels must be a tensor of shape ({batch},), got {type(y).__name__}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"{who}: labels must be integers (int64 class indices, not one-hot or float), got {y.dtype}")
    if y.shape != (batch,):
        raise ValueError(f"{who}: labels must have shape ({batch},) to match the batch, got {tuple(y.shape)}"
                         + ("; use y.argmax(1) for one-hot labels" if y.dim() == 2 else ""))
    if batch and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"{who}: labels must lie in [0, {num_classes}), got values {int(y.min())}..{int(y.max())}")
    return y.long()


def _check_latent(z: Any, latent_dim: int, who: str) -> None:
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != latent_dim:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"{who}: z must have shape (B, {latent_dim}), got {shape}; draw it with gan.sample_latent(B)")


# --------------------------------------------------------------------------------------------------
# Networks for 2-D data
# --------------------------------------------------------------------------------------------------


def _mlp(sizes: list[int], activation: Callable[[], nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    r""":math:`G: \mathbb R^{d_z} \to \mathbb R^{D}`, an MLP with ReLU hidden layers and a linear output.

    ``forward(z: (B, latent_dim)) -> x: (B, data_dim)``.
    """

    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.latent_dim, self.data_dim, self.num_classes = int(latent_dim), int(data_dim), None
        self.net = _mlp([latent_dim] + [hidden] * depth + [data_dim], nn.ReLU)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_latent(z, self.latent_dim, "MLPGenerator")
        _check_labels(y, z.shape[0], None, "MLPGenerator")
        return self.net(z)


class MLPDiscriminator(nn.Module):
    r"""The discriminator's logit :math:`\ell: \mathbb R^{D} \to \mathbb R` (:math:`D(x) = \sigma(\ell(x))`), or a WGAN critic.

    LeakyReLU(0.2) hidden layers; ``forward(x: (B, data_dim)) -> (B,)`` logits / critic scores.
    """

    def __init__(self, data_dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.data_dim, self.num_classes = int(data_dim), None
        self.net = _mlp([data_dim] + [hidden] * depth + [1], lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.data_dim:
            raise ValueError(f"MLPDiscriminator: x must have shape (B, {self.data_dim}), got {tuple(x.shape)}")
        _check_labels(y, x.shape[0], None, "MLPDiscriminator")
        return self.net(x).squeeze(1)


# --------------------------------------------------------------------------------------------------
# DCGAN for 28x28 images (Radford et al., 2016), optionally conditional
# --------------------------------------------------------------------------------------------------


class DCGANGenerator(nn.Module):
    r"""DCGAN generator for ``(C, 28, 28)`` images in [-1, 1], optionally conditioned on a class label.

    :math:`z \,(\Vert\, e_y) \xrightarrow{\text{Linear}} (4w, 7, 7) \xrightarrow{\text{ConvT}\,4{\times}4/2}
    (2w, 14, 14) \xrightarrow{\text{ConvT}\,4{\times}4/2} (w, 28, 28) \xrightarrow{\text{Conv}\,3{\times}3}
    (C, 28, 28) \xrightarrow{\tanh}`, with BatchNorm + ReLU after every hidden layer (DCGAN's recipe).

    ``forward(z: (B, latent_dim), y: (B,) int64 | None) -> x: (B, C, 28, 28)`` in [-1, 1]; ``y`` is required
    exactly when ``num_classes`` is set (the label is embedded in ``label_dim`` numbers and appended to ``z``).
    """

    def __init__(self, latent_dim: int = 64, channels: int = 1, width: int = 32, num_classes: int | None = None,
                 label_dim: int = 16):
        super().__init__()
        self.latent_dim, self.channels, self.width, self.num_classes = int(latent_dim), int(channels), int(width), num_classes
        w = self.width
        self.embed = nn.Embedding(num_classes, label_dim) if num_classes is not None else None
        in_dim = latent_dim + (label_dim if num_classes is not None else 0)
        self.project = nn.Sequential(nn.Linear(in_dim, 4 * w * 7 * 7, bias=False), nn.BatchNorm1d(4 * w * 7 * 7), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(2 * w),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, bias=False),  # 14 -> 28
            nn.BatchNorm2d(w),
            nn.ReLU(),
            nn.Conv2d(w, channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_latent(z, self.latent_dim, "DCGANGenerator")
        y = _check_labels(y, z.shape[0], self.num_classes, "DCGANGenerator")
        h = z if y is None else torch.cat([z, self.embed(y)], dim=1)
        h = self.project(h).view(z.shape[0], 4 * self.width, 7, 7)
        return self.net(h)


class DCGANDiscriminator(nn.Module):
    r"""DCGAN discriminator / WGAN critic for ``(C, 28, 28)`` images, optionally a projection discriminator.

    :math:`x \xrightarrow{\text{Conv}\,4{\times}4/2} (w, 14, 14) \xrightarrow{\text{Conv}\,4{\times}4/2} (2w, 7, 7)
    \xrightarrow{\text{Conv}\,3{\times}3/2} (4w, 4, 4) \to \phi(x) \in \mathbb R^{64 w}` (flattened), LeakyReLU(0.2), then
    :math:`\ell(x) = \psi(\phi(x))` or, with labels, :math:`\ell(x, y) = \psi(\phi(x)) + e_y^\top \phi(x)`.

    ``norm``: ``"batch"`` (DCGAN) or ``"layer"`` / ``None`` for WGAN-GP, whose penalty is per example and
    must not mix examples through batch statistics (Gulrajani et al., 2017, sec. 4).
    ``dropout`` (before :math:`\psi`) is a cheap regulariser against a discriminator that wins too fast.
    ``forward(x: (B, C, 28, 28), y: (B,) | None) -> (B,)`` logits / critic scores.
    """

    def __init__(self, channels: int = 1, width: int = 32, num_classes: int | None = None,
                 norm: str | None = "batch", dropout: float = 0.0):
        super().__init__()
        if norm not in ("batch", "layer", None):
            raise ValueError(f"DCGANDiscriminator: norm must be 'batch', 'layer' or None, got {norm!r}")
        self.channels, self.width, self.num_classes, self.norm = int(channels), int(width), num_classes, norm
        w = self.width

        def normalise(c: int, size: int) -> nn.Module:
            if norm == "batch":
                return nn.BatchNorm2d(c)
            if norm == "layer":
                return nn.LayerNorm([c, size, size])
            return nn.Identity()

        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(channels, w, 4, stride=2, padding=1), act(),  # 28 -> 14 (no norm on the first layer)
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), normalise(2 * w, 7), act(),  # 14 -> 7
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), normalise(4 * w, 4), act(),  # 7 -> 4
            nn.Flatten(),  # phi(x): (B, 64 w)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(4 * w * 4 * 4, 1)
        self.embed = nn.Embedding(num_classes, 4 * w * 4 * 4) if num_classes is not None else None
        if self.embed is not None:  # e_y^T phi(x) should start O(1), like the head's logit, not O(sqrt(64 w))
            nn.init.normal_(self.embed.weight, std=1.0 / math.sqrt(4 * w * 4 * 4))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (self.channels, 28, 28):
            raise ValueError(f"DCGANDiscriminator: x must have shape (B, {self.channels}, 28, 28) in [-1, 1], "
                             f"got {tuple(x.shape)}")
        y = _check_labels(y, x.shape[0], self.num_classes, "DCGANDiscriminator")
        phi = self.dropout(self.features(x))
        logit = self.head(phi).squeeze(1)
        if y is not None:
            logit = logit + (self.embed(y) * phi).sum(dim=1)  # projection term e_y^T phi(x)
        return logit


class GAN(nn.Module):
    r"""A generator and a discriminator (or critic) held together, with the latent prior :math:`z \sim \mathcal N(0, I)`.

    ``gan.generator``, ``gan.discriminator``; ``sample_latent(n, generator=None) -> (n, latent_dim)``;
    ``sample(n, labels=None, generator=None) -> x`` in eval mode and without gradients. One ``state_dict``
    holds both networks, so one checkpoint ships a pair.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module):
        super().__init__()
        if getattr(generator, "num_classes", None) != getattr(discriminator, "num_classes", None):
            raise ValueError("GAN: generator and discriminator disagree about num_classes "
                             f"({getattr(generator, 'num_classes', None)} vs {getattr(discriminator, 'num_classes', None)})")
        self.generator = generator
        self.discriminator = discriminator

    @property
    def latent_dim(self) -> int:
        return int(self.generator.latent_dim)

    @property
    def num_classes(self) -> int | None:
        return getattr(self.generator, "num_classes", None)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``z ~ N(0, I)``: ``(n, latent_dim)`` on the networks' device."""
        dev = next(self.generator.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=generator.device if generator else dev).to(dev)

    @torch.no_grad()
    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """``n`` samples ``G(z[, y])`` (eval mode, no grad, in batches); ``labels: (n,)`` for a conditional GAN."""
        was_training = self.generator.training
        self.generator.eval()
        dev = next(self.generator.parameters()).device
        out = []
        try:
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                z = self.sample_latent(m, generator)
                y = labels[start:start + m].to(dev) if labels is not None else None
                out.append(self.generator(z, y))
        finally:
            self.generator.train(was_training)
        return torch.cat(out) if out else torch.empty(0)


# --------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Binary cross-entropy of the discriminator, real labelled 1 and fake labelled 0.

    .. math:: L_D = -\mathbb E_x[\log D(x)] - \mathbb E_z[\log(1 - D(G(z)))]
              = \overline{\operatorname{softplus}(-\ell_\text{real})} + \overline{\operatorname{softplus}(\ell_\text{fake})}

    ``real_logits: (B,)``, ``fake_logits: (B',)`` -> 0-dim. At :math:`D \equiv 1/2` it equals :math:`2 \log 2`.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The generator's side of the original minimax game, to be *minimised*:

    .. math:: L_G^\text{mm} = \mathbb E_z[\log(1 - D(G(z)))] = -\overline{\operatorname{softplus}(\ell_\text{fake})}.

    Its gradient w.r.t. the logit is :math:`-\sigma(\ell)`, which vanishes when the discriminator confidently
    rejects the fakes (:math:`\ell \to -\infty`): the generator *saturates* early in training.
    """
    return -F.softplus(fake_logits).mean()


def generator_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    r"""The non-saturating generator loss: the generator **maximises** :math:`\log D(G(z))`.

    .. math:: L_G^\text{ns} = -\mathbb E_z[\log D(G(z))] = \overline{\operatorname{softplus}(-\ell_\text{fake})}.

    Same fixed point as the minimax loss, but the gradient w.r.t. the logit is :math:`-(1 - \sigma(\ell))`,
    largest exactly when the discriminator rejects the fakes.
    """
    return F.softplus(-fake_logits).mean()


def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    r"""WGAN critic loss (without the penalty): :math:`L_f = \mathbb E_z[f(G(z))] - \mathbb E_x[f(x)]`.

    :math:`-L_f` estimates :math:`W_1(p_\text{data}, p_G)` when :math:`f` is 1-Lipschitz.
    """
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    r"""WGAN generator loss :math:`L_G = -\mathbb E_z[f(G(z))]`."""
    return -fake_scores.mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Random points on the lines between real and fake examples: :math:`\hat x = \epsilon x + (1 - \epsilon) \tilde x`.

    One :math:`\epsilon \sim U[0, 1]` per example, broadcast over the other dimensions.
    ``real, fake: (B, ...)`` of the same shape -> ``(x_hat: (B, ...), eps: (B,))``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"interpolate: real {tuple(real.shape)} and fake {tuple(fake.shape)} must have the same shape")
    eps = torch.rand(real.shape[0], generator=generator, device=generator.device if generator else real.device)
    eps = eps.to(device=real.device, dtype=real.dtype)
    e = eps.view(-1, *([1] * (real.dim() - 1)))
    return e * real + (1 - e) * fake, eps


def gradient_penalty(critic: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor, *,
                     labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
                     target: float = 1.0) -> torch.Tensor:
    r"""The WGAN-GP penalty (Gulrajani et al., 2017):

    .. math:: \mathrm{GP} = \mathbb E_{\hat x}\big[(\lVert \nabla_{\hat x} f(\hat x) \rVert_2 - 1)^2\big],
              \qquad \hat x = \epsilon x + (1 - \epsilon) \tilde x,\ \epsilon \sim U[0, 1].

    ``critic(x_hat[, labels]) -> (B,)``; ``real, fake: (B, ...)`` (``fake`` is detached here). The gradient is
    taken with ``create_graph=True`` so that the penalty can be back-propagated into the critic's weights.
    Zero for a linear critic :math:`f(x) = w^\top x + b` with :math:`\lVert w \rVert = 1`, positive otherwise.
    """
    x_hat, _ = interpolate(real.detach(), fake.detach(), generator)
    x_hat.requires_grad_(True)
    scores = critic(x_hat) if labels is None else critic(x_hat, labels)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - target) ** 2).mean()


def optimal_discriminator(p_data: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    r""":math:`D^*(x) = p_\text{data}(x) / (p_\text{data}(x) + p_G(x))`, the best response to a fixed generator."""
    return p_data / (p_data + p_model)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def _params_of(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def _check_optimizers(gan: GAN, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> None:
    g_ids = {id(p) for p in gan.generator.parameters()}
    d_ids = {id(p) for p in gan.discriminator.parameters()}
    if not _params_of(opt_g) <= g_ids:
        raise ValueError("gan_train_step: opt_g must hold only the generator's parameters; make it with "
                         "torch.optim.Adam(gan.generator.parameters(), ...)")
    if not _params_of(opt_d) <= d_ids:
        raise ValueError("gan_train_step: opt_d must hold only the discriminator's parameters; make it with "
                         "torch.optim.Adam(gan.discriminator.parameters(), ...)")


def _finite(value: torch.Tensor, step: int | None, what: str) -> float:
    v = float(value.detach().float().item())
    if not math.isfinite(v):
        raise NonFiniteLossError(step or 0, v, quantity=what)
    return v


def gan_train_step(gan: GAN, real: torch.Tensor, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, *,
                   labels: torch.Tensor | None = None, loss: str = "nonsaturating", gp_weight: float = 10.0,
                   update_generator: bool = True, generator: torch.Generator | None = None,
                   step: int | None = None) -> dict[str, float]:
    r"""One alternating update: a discriminator (critic) step, then (if ``update_generator``) a generator step.

    1. **D step.** :math:`\tilde x = G(z).\text{detach}()` (no gradient reaches :math:`G`), real examples labelled 1,
       fakes labelled 0 (:func:`discriminator_loss`), or the critic loss plus ``gp_weight`` :math:`\times`
       :func:`gradient_penalty` for ``loss="wgan-gp"``; only ``opt_d`` steps.
    2. **G step.** A fresh :math:`z`; :math:`D`'s parameters are frozen (``requires_grad_(False)``) so the
       gradient flows *through* :math:`D` into :math:`G` only; only ``opt_g`` steps.

    For WGAN-GP call it with ``update_generator=False`` on ``n_critic - 1`` of every ``n_critic`` steps.

    ``real: (B, ...)`` on the networks' device; ``labels: (B,)`` for a conditional GAN (the fakes are generated
    for the same labels, so real and fake batches have equal class proportions). Returns floats:
    ``d_loss`` (or ``critic_loss``, ``gp``, ``wasserstein`` = :math:`\mathbb E f(x) - \mathbb E f(\tilde x)`),
    ``d_real`` / ``d_fake`` (mean :math:`D`) and, after a G step, ``g_loss``.
    """
    if loss not in LOSSES:
        raise ValueError(f"gan_train_step: loss must be one of {LOSSES}, got {loss!r}")
    _check_optimizers(gan, opt_g, opt_d)
    G, D = gan.generator, gan.discriminator
    G.train()
    D.train()
    B = real.shape[0]
    logs: dict[str, float] = {}

    # ---- discriminator / critic step: G's output is detached, only opt_d steps ------------------
    with torch.no_grad():
        fake = G(gan.sample_latent(B, generator), labels)
    real_out = D(real, labels)
    fake_out = D(fake.detach(), labels)
    if loss == "wgan-gp":
        critic = wgan_critic_loss(real_out, fake_out)
        gp = gradient_penalty(D, real, fake, labels=labels, generator=generator)
        d_loss = critic + gp_weight * gp
        critic_value = _finite(critic, step, "critic loss")
        logs.update(critic_loss=critic_value, wasserstein=-critic_value, gp=_finite(gp, step, "gradient penalty"))
    else:
        d_loss = discriminator_loss(real_out, fake_out)
        logs.update(d_loss=_finite(d_loss, step, "discriminator loss"),
                    d_real=float(torch.sigmoid(real_out.detach()).mean()),
                    d_fake=float(torch.sigmoid(fake_out.detach()).mean()))
    _finite(d_loss, step, "discriminator loss")
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()

    # ---- generator step: D frozen (gradients flow through it, not into it), only opt_g steps ------
    if update_generator:
        D.requires_grad_(False)
        try:
            fake = G(gan.sample_latent(B, generator), labels)
            fake_out = D(fake, labels)
            if loss == "wgan-gp":
                g_loss = wgan_generator_loss(fake_out)
            elif loss == "minimax":
                g_loss = generator_loss_minimax(fake_out)
            else:
                g_loss = generator_loss_nonsaturating(fake_out)
            logs["g_loss"] = _finite(g_loss, step, "generator loss")
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
        finally:
            D.requires_grad_(True)
    return logs


@dataclass
class GANTrainResult:
    """What :func:`train_gan` returns: ``gan`` (eval mode), ``history`` (:class:`~course_lib.train.History`),
    ``ema`` (an :class:`~course_lib.train.EMA` of the generator, or ``None``), ``steps`` (discriminator steps
    done), ``seconds``."""

    gan: GAN
    history: History
    ema: EMA | None
    steps: int
    seconds: float

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               use_ema: bool = True) -> torch.Tensor:
        """Samples from the EMA generator when there is one (and ``use_ema``), else from ``gan.generator``."""
        if use_ema and self.ema is not None:
            return GAN(self.ema.module, self.gan.discriminator).sample(n, labels, generator)
        return self.gan.sample(n, labels, generator)


def train_gan(gan: GAN, loader: Iterable, *, steps: int, loss: str = "nonsaturating", lr_g: float = 2e-4,
              lr_d: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999), n_critic: int = 1,
              gp_weight: float = 10.0, ema_decay: float | None = None, device: torch.device | str | None = None,
              log_every: int = 10, callback: Callable[[int, GAN, History], None] | None = None,
              generator: torch.Generator | None = None, progress: bool = True, desc: str = "GAN",
              time_limit: float | None = None, ema: EMA | None = None) -> GANTrainResult:
    r"""Train a :class:`GAN` by alternating :func:`gan_train_step` for ``steps`` discriminator steps.

    The generator is updated after every ``n_critic``-th discriminator step (``n_critic=5`` with
    ``loss="wgan-gp"`` as in Gulrajani et al.; 1 for the JS game). Two Adam optimisers, one per network,
    with DCGAN's ``betas=(0.5, 0.999)`` (WGAN-GP used ``(0.0, 0.9)``).

    ``loader`` yields tuples ``(x,)`` or ``(x, y)`` (an :class:`~course_lib.data.InMemoryLoader`); with a
    conditional GAN the labels ``y`` go to both networks. Every ``log_every`` steps a row of averages is
    added to the history and ``callback(step, gan, history)`` is called (e.g. to snapshot the decision
    surface). ``time_limit`` (seconds): stop at the first logging row after that much wall time (the result's
    ``steps`` says how many were done). A NaN/inf loss raises :class:`~course_lib.train.NonFiniteLossError`.

    ``ema_decay`` keeps an :class:`~course_lib.train.EMA` of the generator, updated after each generator step;
    pass your own ``ema=EMA(gan.generator, decay, warmup=True)`` instead when a callback needs to read the
    average during training (e.g. to evaluate snapshots of it).
    """
    if loss not in LOSSES:
        raise ValueError(f"train_gan: loss must be one of {LOSSES}, got {loss!r}")
    for name, value in (("steps", steps), ("n_critic", n_critic), ("log_every", log_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"train_gan: {name} must be a positive int, got {value!r}")
    if isinstance(loader, torch.Tensor):
        raise TypeError("train_gan: loader is a tensor; wrap it: course_lib.data.InMemoryLoader(x, batch_size=128)")
    from tqdm.auto import tqdm

    dev = _device.get_device(device)
    gan.to(dev)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr_d, betas=betas)
    if ema is not None and ema_decay is not None:
        raise ValueError("train_gan: pass either ema_decay or ema (an EMA you made of gan.generator), not both")
    if ema is not None and not isinstance(ema, EMA):
        raise TypeError(f"train_gan: ema must be a course_lib.train.EMA, got {type(ema).__name__}")
    if ema is None and ema_decay is not None:
        ema = EMA(gan.generator, ema_decay, warmup=True)
    if ema is not None:
        ema.module.to(dev)
    history = History()
    sums: dict[str, list[float]] = {}
    started = time.perf_counter()

    def batches():
        while True:
            empty = True
            for batch in loader:
                empty = False
                yield batch
            if empty:
                raise ValueError("train_gan: the loader yielded no batches (empty dataset, or batch_size too large "
                                 "with drop_last=True?)")

    it = batches()
    done = 0
    bar = tqdm(total=steps, desc=desc, disable=not progress, dynamic_ncols=True)
    try:
        for step in range(1, steps + 1):
            batch = _device.to_device(next(it), dev)
            if isinstance(batch, torch.Tensor):
                batch = (batch,)
            real = batch[0]
            labels = batch[1] if gan.num_classes is not None else None
            if gan.num_classes is not None and len(batch) < 2:
                raise ValueError("train_gan: a conditional GAN needs a loader of (x, y) batches")
            logs = gan_train_step(gan, real, opt_g, opt_d, labels=labels, loss=loss, gp_weight=gp_weight,
                                  update_generator=(step % n_critic == 0), generator=generator, step=step)
            if ema is not None and "g_loss" in logs:
                ema.update(gan.generator)
            for k, v in logs.items():
                sums.setdefault(k, []).append(v)
            bar.update(1)
            done = step
            if step % log_every == 0 or step == steps:
                means = {k: sum(v) / len(v) for k, v in sums.items() if v}
                history.log(step, means)
                sums = {}
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(means.items())[:4]}, refresh=False)
                if callback is not None:
                    callback(step, gan, history)
                if time_limit is not None and time.perf_counter() - started > time_limit:
                    break
    finally:
        bar.close()
    gan.eval()
    return GANTrainResult(gan=gan, history=history, ema=ema, steps=done, seconds=time.perf_counter() - started)


# --------------------------------------------------------------------------------------------------
# Mode coverage on 2-D mixtures
# --------------------------------------------------------------------------------------------------


@dataclass
class ModeCoverage:
    """``counts: (K,)`` samples near each mode; ``modes_covered`` (modes with at least ``min_share`` of
    the samples); ``high_quality`` (share of samples within the radius of some mode)."""

    counts: torch.Tensor
    modes_covered: int
    high_quality: float

    def __str__(self) -> str:
        return (f"{self.modes_covered}/{len(self.counts)} modes covered, "
                f"{self.high_quality:.0%} of samples within 3 std of a mode")


def mode_coverage_2d(samples: torch.Tensor, centres: torch.Tensor, std: float, *, radius_in_std: float = 3.0,
                     min_share: float | None = None) -> ModeCoverage:
    r"""How many modes of a 2-D Gaussian mixture a sampler reaches (the metric of Metz et al., 2017).

    A sample belongs to mode :math:`k` if it lies within ``radius_in_std`` standard deviations of centre
    :math:`\mu_k`; mode :math:`k` is covered if it holds at least ``min_share`` of the samples (default: a
    quarter of its fair share, :math:`1 / (4K)`). ``samples: (N, 2)``, ``centres: (K, 2)``.
    """
    samples = samples.detach().float().cpu()
    centres = torch.as_tensor(centres).float().cpu()
    K = centres.shape[0]
    d = torch.cdist(samples, centres)
    nearest = d.argmin(dim=1)
    close = d.min(dim=1).values <= radius_in_std * std
    counts = torch.bincount(nearest[close], minlength=K)
    share = 1.0 / (4 * K) if min_share is None else min_share
    covered = int((counts >= share * max(len(samples), 1)).sum())
    return ModeCoverage(counts=counts, modes_covered=covered, high_quality=float(close.float().mean()))


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, num_projections: int = 256,
                       generator: torch.Generator | None = None) -> float:
    r"""Sliced Wasserstein-1 distance between two equal-size point clouds, an independent yardstick of sample quality.

    .. math:: \mathrm{SW}_1(p, q) = \mathbb E_{\theta \sim U(S^{D-1})}\big[W_1(\theta^\top_\# p,\ \theta^\top_\# q)\big],
              \qquad W_1 \text{ in 1-D} = \frac1N \sum_i \lvert u_{(i)} - v_{(i)} \rvert

    (sorted projections :math:`u_{(i)}, v_{(i)}`), averaged over ``num_projections`` random unit directions.
    ``x, y: (N, D)`` -> float. Needs no network, so it can judge a GAN's training curves from outside.
    """
    if x.dim() != 2 or x.shape != y.shape:
        raise ValueError(f"sliced_wasserstein: x and y must both be (N, D) with the same N, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    x, y = x.detach().float().cpu(), y.detach().float().cpu()
    theta = torch.randn(x.shape[1], num_projections, generator=generator)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, _ = (x @ theta).sort(dim=0)
    py, _ = (y @ theta).sort(dim=0)
    return float((px - py).abs().mean())


# --------------------------------------------------------------------------------------------------
# The MNIST GANs shipped as checkpoints (made by scripts/train_gans.py)
# --------------------------------------------------------------------------------------------------

#: name -> architecture and training recipe of each shipped MNIST GAN (checkpoint name = key).
MNIST_GANS: dict[str, dict[str, Any]] = {
    "dcgan_mnist": {"latent_dim": 64, "width": 24, "num_classes": None, "norm": "batch", "dropout": 0.25,
                    "loss": "nonsaturating", "n_critic": 1, "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999),
                    "batch_size": 64, "ema_decay": 0.999},
    "cgan_mnist": {"latent_dim": 64, "width": 24, "num_classes": 10, "norm": "batch", "dropout": 0.25,
                   "loss": "nonsaturating", "n_critic": 1, "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999),
                   "batch_size": 64, "ema_decay": 0.999},
}


def build_mnist_gan(name: str) -> GAN:
    """A fresh :class:`GAN` with the architecture of the shipped checkpoint ``name`` (see :data:`MNIST_GANS`).

    Load the shipped weights with ``checkpoints.load_into(build_mnist_gan(name), name)``; the state_dict holds
    the discriminator and the EMA generator (``generator.*``).
    """
    if name not in MNIST_GANS:
        raise ValueError(f"build_mnist_gan: unknown GAN {name!r}; known: {', '.join(MNIST_GANS)}")
    spec = MNIST_GANS[name]
    generator = DCGANGenerator(spec["latent_dim"], width=spec["width"], num_classes=spec["num_classes"])
    discriminator = DCGANDiscriminator(width=spec["width"], num_classes=spec["num_classes"], norm=spec["norm"],
                                       dropout=spec["dropout"])
    return GAN(generator, discriminator)
