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

Shapes: images ``(B, C, 28, 28)`` in [-1, 1]; PatchGAN outputs ``(B, 1, 7, 7)`` scores.
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
    "random_shift",
    "class_preservation",
    "ClassPreservation",
    "no_translation",
    "domain_fid",
    "TranslationFID",
    "translation_fid",
    "real_vs_real_fid",
    "ResnetGenerator",
    "LocalGenerator",
    "PatchDiscriminator",
    "CycleGAN",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "cyclegan_train_step",
    "train_cyclegan",
    "CycleGANTrainResult",
    "CYCLEGAN_RECIPES",
    "build_cyclegan",
    "DigitDomains",
    "digit_domains",
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


def random_shift(x: torch.Tensor, max_shift: int, *, background: float = -1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Translate each image by its own random integer offset :math:`(\delta_x, \delta_y) \sim
    \mathcal U\{-s, \dots, s\}^2`, filling the uncovered border with ``background``.

    Used as *differentiable augmentation* of everything a discriminator sees, real and generated alike
    (Zhao et al., 2020, "DiffAugment"): with only 1,000 images in domain B, a discriminator otherwise learns
    the exact pixel positions of its training set. The shift is differentiable in ``x`` (it only moves
    pixels), so the generator's gradient passes through it. ``x: (B, C, H, W)`` -> ``(B, C, H, W)``;
    ``max_shift = 0`` returns ``x`` itself.
    """
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"random_shift: max_shift must be an int >= 0, got {max_shift!r}")
    if x.dim() != 4:
        raise ValueError(f"random_shift: x must be (B, C, H, W), got {tuple(x.shape)}")
    if max_shift == 0:
        return x
    b, c, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s), value=background)  # (B, C, H + 2s, W + 2s)
    offsets = torch.randint(0, 2 * s + 1, (2, b), generator=generator).to(x.device)
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, c, h, w + 2 * s)
    cols = (offsets[1][:, None] + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


@dataclass
class ClassPreservation:
    """Share of translations whose class survives: ``a_to_b`` (MNIST -> 8x8 style), ``b_to_a``; ``n_a``, ``n_b``.

    ``per_class_a_to_b``, ``per_class_b_to_a``: ``(10,)`` the same share within each true class (NaN for a class
    with no example); ``read_a_to_b``, ``read_b_to_a``: ``(N,)`` the classes the classifiers read.
    """

    a_to_b: float
    b_to_a: float
    n_a: int
    n_b: int
    per_class_a_to_b: torch.Tensor | None = None
    per_class_b_to_a: torch.Tensor | None = None
    read_a_to_b: torch.Tensor | None = None
    read_b_to_a: torch.Tensor | None = None

    def __str__(self) -> str:
        return (f"class preserved: A->B {self.a_to_b:.1%} of {self.n_a}, B->A {self.b_to_a:.1%} of {self.n_b}")


def _as_read_by(x: torch.Tensor, domain: str) -> tuple[torch.Tensor, str]:
    """``x: (N, 1, 28, 28)`` in [-1, 1] as ``domain``'s shipped classifier reads it, and that classifier's name:
    ``"A"``: in [0, 1] for the MNIST classifier; ``"B"``: brought to 8x8 (:func:`digits28_to_8x8`) for the 8x8 one."""
    if domain not in ("A", "B"):
        raise ValueError(f"domain must be 'A' (MNIST) or 'B' (8x8 digits), got {domain!r}")
    unit = ((x.cpu() + 1) / 2).clamp(0, 1)
    return (unit, "mnist") if domain == "A" else (digits28_to_8x8(unit), "digits8x8")


def class_preservation(model: "CycleGAN", a: torch.Tensor, y_a: torch.Tensor, b: torch.Tensor, y_b: torch.Tensor,
                       *, device: torch.device | str | None = None) -> ClassPreservation:
    r"""How often a translated digit is still read as the same digit by the *target* domain's classifier.

    A -> B: :math:`G(a)` is brought to 8x8 (:func:`digits28_to_8x8`) and read by the shipped 8x8 digit classifier;
    B -> A: :math:`F(b)` is read by the shipped MNIST classifier. ``a, b: (N, 1, 28, 28)`` in [-1, 1] (B already
    brought to 28x28), ``y_a, y_b: (N,)`` their true labels.
    """
    from course_lib import metrics

    pred_b = metrics.extract_logits(*_as_read_by(model.translate(a, "AB"), "B"), device=device).argmax(1)
    pred_a = metrics.extract_logits(*_as_read_by(model.translate(b, "BA"), "A"), device=device).argmax(1)
    y_a, y_b = y_a.cpu().long(), y_b.cpu().long()

    def per_class(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hits = torch.zeros(10).index_add_(0, y, (pred == y).float())
        return hits / torch.bincount(y, minlength=10).float()  # 0 / 0 = NaN for a class with no example

    return ClassPreservation(a_to_b=float((pred_b == y_a).float().mean()), b_to_a=float((pred_a == y_b).float().mean()),
                             n_a=len(a), n_b=len(b), per_class_a_to_b=per_class(pred_b, y_a),
                             per_class_b_to_a=per_class(pred_a, y_b), read_a_to_b=pred_b, read_b_to_a=pred_a)


def no_translation() -> "CycleGAN":
    """The yardstick for :func:`class_preservation`: a CycleGAN whose generators (and discriminators) return their
    input unchanged, so the classifiers read the untranslated digits. A translator earns its keep where it beats this."""
    return CycleGAN(nn.Identity(), nn.Identity(), nn.Identity(), nn.Identity())


def domain_fid(x: torch.Tensor, reference: torch.Tensor, domain: str, *,
               device: torch.device | str | None = None) -> float:
    r"""Classifier-FID between two sets of 28x28 images, in the feature space of ``domain``'s shipped classifier.

    ``domain = "A"``: the MNIST classifier's features (64-d); ``"B"``: the 8x8 classifier's features (32-d) of the
    images brought to 8x8 by :func:`digits28_to_8x8`. ``x: (N, 1, 28, 28)``, ``reference: (M, 1, 28, 28)`` in
    [-1, 1], N and M larger than the feature dimension. Lower = ``x`` looks more like ``reference`` to that
    domain's classifier; it says nothing about whether each image kept its class (:func:`class_preservation`).
    """
    from course_lib import metrics

    reference_view, classifier = _as_read_by(reference, domain)
    return metrics.fid(reference_view, _as_read_by(x, domain)[0], classifier=classifier, device=device)


@dataclass
class TranslationFID:
    """How much translations look like their target domain: ``a_to_b`` = FID(G(a), b_ref) in the 8x8 classifier's
    features, ``b_to_a`` = FID(F(b), a_ref) in the MNIST classifier's (:func:`domain_fid`)."""

    a_to_b: float
    b_to_a: float

    def __str__(self) -> str:
        return f"FID to the target domain: A->B {self.a_to_b:.2f}, B->A {self.b_to_a:.2f}"


def translation_fid(model: "CycleGAN", a: torch.Tensor, b: torch.Tensor, reference_a: torch.Tensor,
                    reference_b: torch.Tensor, *, device: torch.device | str | None = None) -> TranslationFID:
    r"""FID of the translations :math:`G(a)` to ``reference_b`` and :math:`F(b)` to ``reference_a``
    (held-out real images of each domain), each in the target domain's classifier features. The yardsticks:
    :func:`no_translation` (how far the untouched inputs are) and ``domain_fid`` of two real sets of one domain
    (the floor). ``a, b, reference_*: (N, 1, 28, 28)`` in [-1, 1].
    """
    return TranslationFID(a_to_b=domain_fid(model.translate(a, "AB"), reference_b, "B", device=device),
                          b_to_a=domain_fid(model.translate(b, "BA"), reference_a, "A", device=device))


def real_vs_real_fid(train: "DigitDomains", test: "DigitDomains", n_a: int, n_b: int, *,
                     device: torch.device | str | None = None) -> TranslationFID:
    """The floor of :func:`translation_fid` at the same sizes: ``a_to_b`` = FID between ``n_a`` real training
    digits of domain B and ``test.b`` (in the 8x8 classifier's features), ``b_to_a`` = FID between ``n_b`` real
    training digits of domain A and ``test.a`` (MNIST features). Translations of ``n_a`` A digits and ``n_b``
    B digits, compared with the same test sets, cannot be expected to score below these."""
    return TranslationFID(a_to_b=domain_fid(train.b[:n_a], test.b, "B", device=device),
                          b_to_a=domain_fid(train.a[:n_b], test.a, "A", device=device))


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


class LocalGenerator(nn.Module):
    r"""A generator that can only make *local* edits: ``depth`` 3x3 convolutions at full resolution, no downsampling.

    c3s1-w, (``depth`` - 2) x c3s1-w, c3s1-C, tanh; InstanceNorm + ReLU between, reflect padding. The
    convolutions of each output pixel see only the :math:`(2\,\text{depth} + 1) \times (2\,\text{depth} + 1)`
    input pixels around it (9x9 for ``depth = 4``: less than half a digit's 20-pixel box). The only information
    that travels further is what InstanceNorm computes over the whole image: a mean and a standard deviation per
    feature map. It can thicken, blur, sharpen or bend a stroke where it stands, but it cannot redraw a digit
    as another one: the inductive bias that keeps a translation's content. :class:`ResnetGenerator` goes down
    to 7x7, where every output pixel sees the whole digit. ``(B, C, H, W)`` -> ``(B, C, H, W)`` in [-1, 1],
    any H, W > ``depth``.
    """

    def __init__(self, channels: int = 1, width: int = 32, depth: int = 4):
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
            raise ValueError(f"LocalGenerator: depth must be an int >= 2 (convolutions), got {depth!r}")
        layers: list[nn.Module] = []
        c = channels
        for _ in range(depth - 1):
            layers += [nn.Conv2d(c, width, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(width, affine=True),
                       nn.ReLU()]
            c = width
        layers += [nn.Conv2d(width, channels, 3, padding=1, padding_mode="reflect"), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.channels, self.depth = channels, depth

    @property
    def receptive_field(self) -> int:
        """Side of the square of input pixels that the convolutions of one output pixel see: ``2 * depth + 1``
        (InstanceNorm's per-map statistics aside)."""
        return 2 * self.depth + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels or min(x.shape[2:]) <= self.depth:
            raise ValueError(f"LocalGenerator: x must be (B, {self.channels}, H, W) with H, W > {self.depth}, "
                             f"got {tuple(x.shape)}")
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
    (0.5 :math:`\lambda_\text{cyc}`) as in the paper. ``augment_shift`` > 0: every image a discriminator
    sees, real or translated, is first moved by up to that many pixels (:func:`random_shift`), in both the
    discriminators' and the generators' losses.
    """

    def __init__(self, G_AB: nn.Module | None = None, G_BA: nn.Module | None = None, D_A: nn.Module | None = None,
                 D_B: nn.Module | None = None, *, width: int = 16, blocks: int = 3, lambda_cycle: float = 10.0,
                 lambda_identity: float = 5.0, augment_shift: int = 0):
        super().__init__()
        if isinstance(augment_shift, bool) or not isinstance(augment_shift, int) or augment_shift < 0:
            raise ValueError(f"CycleGAN: augment_shift must be an int >= 0 (pixels), got {augment_shift!r}")
        self.augment_shift = augment_shift
        self.G_AB = G_AB if G_AB is not None else ResnetGenerator(width=width, blocks=blocks)
        self.G_BA = G_BA if G_BA is not None else ResnetGenerator(width=width, blocks=blocks)
        self.D_A = D_A if D_A is not None else PatchDiscriminator(width=width)
        self.D_B = D_B if D_B is not None else PatchDiscriminator(width=width)
        self.lambda_cycle, self.lambda_identity = float(lambda_cycle), float(lambda_identity)

    def discriminate(self, which: str, x: torch.Tensor) -> torch.Tensor:
        """``D_A(x)`` (``which="A"``) or ``D_B(x)``, after the random shift when ``augment_shift`` > 0."""
        if which not in ("A", "B"):
            raise ValueError(f"discriminate: which must be 'A' or 'B', got {which!r}")
        d = self.D_A if which == "A" else self.D_B
        return d(random_shift(x, self.augment_shift) if self.training else x)

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
        adversarial = (lsgan_generator_loss(self.discriminate("B", fake_b))
                       + lsgan_generator_loss(self.discriminate("A", fake_a)))
        cycle = (self.G_BA(fake_b) - a).abs().mean() + (self.G_AB(fake_a) - b).abs().mean()
        identity = self.identity_loss(a, b) if self.lambda_identity > 0 else torch.zeros((), device=a.device)
        loss = adversarial + self.lambda_cycle * cycle + self.lambda_identity * identity
        logs = {"g_adv": float(adversarial.detach()), "cycle": float(cycle.detach()), "identity": float(identity.detach())}
        return loss, logs, (fake_b, fake_a)

    def discriminator_loss(self, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor
                           ) -> torch.Tensor:
        """LSGAN loss of both discriminators; the fakes are detached here."""
        return (lsgan_discriminator_loss(self.discriminate("A", a), self.discriminate("A", fake_a.detach()))
                + lsgan_discriminator_loss(self.discriminate("B", b), self.discriminate("B", fake_b.detach())))

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "AB", batch_size: int = 500) -> torch.Tensor:
        """``G_AB(x)`` (``"AB"``) or ``G_BA(x)`` (``"BA"``) in eval mode, without gradients, in batches."""
        if direction not in ("AB", "BA"):
            raise ValueError(f"translate: direction must be 'AB' or 'BA', got {direction!r}")
        net = self.G_AB if direction == "AB" else self.G_BA
        was = net.training
        net.eval()
        param = next(net.parameters(), None)
        dev = param.device if param is not None else x.device  # a parameter-free net (nn.Identity) stays put
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
                   time_limit: float | None = None, progress: bool = True, desc: str = "CycleGAN",
                   lr_decay_from: int | None = None) -> CycleGANTrainResult:
    """Alternate :func:`cyclegan_train_step` over unpaired batches ``(a,)`` / ``(b,)`` from two loaders.

    The two loaders are iterated independently (different sizes and orders: nothing pairs them). Adam for
    each side; a row of averages every ``log_every`` steps, ``callback(step, model, history)``; ``time_limit``
    in seconds stops at the next logging row. ``lr_decay_from``: keep ``lr`` until that step, then decay both
    learning rates linearly to zero at ``steps`` (the paper's schedule, with ``lr_decay_from = steps // 2``).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"train_cyclegan: steps must be a positive int, got {steps!r}")
    if lr_decay_from is not None and (isinstance(lr_decay_from, bool) or not isinstance(lr_decay_from, int)
                                      or not 0 <= lr_decay_from < steps):
        raise ValueError(f"train_cyclegan: lr_decay_from must be an int in [0, steps), got {lr_decay_from!r}")
    from tqdm.auto import tqdm

    dev = _device.get_device(device)
    model.to(dev)
    opt_g = torch.optim.Adam(model.generator_parameters(), lr=lr, betas=betas)
    opt_d = torch.optim.Adam(model.discriminator_parameters(), lr=lr, betas=betas)
    schedules = []
    if lr_decay_from is not None:
        def factor(done: int) -> float:  # multiplier for the (done + 1)-th step
            return min(1.0, (steps - done) / (steps - lr_decay_from))

        schedules = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_d)]

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
            for schedule in schedules:
                schedule.step()
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


#: The recipes of the shipped checkpoints, made by ``scripts/train_cyclegan.py --name NAME``. Both use PatchGAN
#: discriminators (width 16) whose inputs are shifted by up to 2 pixels, the paper's loss weights, unpaired batches
#: of 32 from each domain, Adam 2e-4 kept for the first ``lr_decay_from`` steps and then decayed linearly to 0
#: (the paper's schedule). They differ in the generators:
#:
#: * ``cyclegan_digits``: :class:`LocalGenerator` (width 32, depth 4: each output pixel sees 9x9 input pixels);
#: * ``cyclegan_digits_resnet``: the paper's :class:`ResnetGenerator` (width 16, 3 residual blocks at 7x7).
CYCLEGAN_RECIPES: dict[str, dict] = {
    "cyclegan_digits": {"generator": "local", "width": 32, "depth": 4, "discriminator_width": 16,
                        "lambda_cycle": 10.0, "lambda_identity": 5.0, "augment_shift": 2, "batch_size": 32,
                        "lr": 2e-4, "steps": 3000, "lr_decay_from": 1500},
    "cyclegan_digits_resnet": {"generator": "resnet", "width": 16, "blocks": 3, "discriminator_width": 16,
                               "lambda_cycle": 10.0, "lambda_identity": 5.0, "augment_shift": 2, "batch_size": 32,
                               "lr": 2e-4, "steps": 5000, "lr_decay_from": 2500},
}


def build_cyclegan(name: str) -> CycleGAN:
    """A fresh :class:`CycleGAN` with the architecture and loss weights of ``CYCLEGAN_RECIPES[name]``.

    Load the shipped weights with ``checkpoints.load_into(build_cyclegan(name), name)``.
    """
    if name not in CYCLEGAN_RECIPES:
        raise ValueError(f"build_cyclegan: unknown recipe {name!r}; choose one of {sorted(CYCLEGAN_RECIPES)}")
    spec = CYCLEGAN_RECIPES[name]
    if spec["generator"] == "local":
        G_AB, G_BA = (LocalGenerator(width=spec["width"], depth=spec["depth"]) for _ in range(2))
    else:
        G_AB, G_BA = (ResnetGenerator(width=spec["width"], blocks=spec["blocks"]) for _ in range(2))
    D_A, D_B = (PatchDiscriminator(width=spec["discriminator_width"]) for _ in range(2))
    return CycleGAN(G_AB, G_BA, D_A, D_B, lambda_cycle=spec["lambda_cycle"], lambda_identity=spec["lambda_identity"],
                    augment_shift=spec["augment_shift"])


@dataclass
class DigitDomains:
    """The two unpaired domains of a split, in [-1, 1] at 28x28: ``a`` (MNIST) with labels ``y_a``, ``b`` (8x8
    digits brought to 28x28 by :func:`digits8x8_to_28`) with labels ``y_b``. The labels are for evaluation only."""

    a: torch.Tensor
    y_a: torch.Tensor
    b: torch.Tensor
    y_b: torch.Tensor


def digit_domains(split: str) -> DigitDomains:
    """Load domain A (``data.mnist(split)``) and domain B (``data.digits8x8(split)`` at 28x28), both in [-1, 1]."""
    from course_lib import data

    mnist = data.mnist(split, value_range="symmetric")
    digits = data.digits8x8(split, value_range="symmetric")
    return DigitDomains(a=mnist.x, y_a=mnist.y, b=digits8x8_to_28(digits.x), y_b=digits.y)
