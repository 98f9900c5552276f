r"""Encoder and decoder bodies shared by the autoencoder families (AE, VAE, VQ-VAE).

These are plain feature extractors; what the features *mean* (a Gaussian posterior's
:math:`(\mu, \log\sigma^2)`, a VQ-VAE's continuous codes :math:`z_e`) is decided by the model module
(:mod:`course_lib.models.vae`, :mod:`course_lib.models.vqvae`) that puts a head on them.

* :func:`mlp` - a multilayer perceptron ``(N, d_in) -> (N, d_out)``.
* :class:`ResidualBlock` - :math:`y = x + \operatorname{Conv}_{1\times1}(\phi(\operatorname{Conv}_{3\times3}(\phi(x))))`,
  the block of the VQ-VAE paper (van den Oord et al., 2017), shape-preserving.
* :class:`ConvEncoderBody` - ``(B, C, H, W) -> (B, C', H / 2^n, W / 2^n)``: a 3x3 stem and ``n`` stride-2 4x4
  convolutions (each halves the resolution), then optional residual blocks.
* :class:`ConvDecoderBody` - the mirror image: ``(B, C', h, w) -> (B, C_out, h 2^n, w 2^n)`` with stride-2
  4x4 transposed convolutions (each doubles the resolution) and a 3x3 output convolution.

Example: a 28x28 digit through ``ConvEncoderBody(1, (32, 64))`` becomes a ``(B, 64, 7, 7)`` feature map
(28 -> 14 -> 7); ``ConvDecoderBody(64, (64, 32), out_channels=1)`` maps it back to ``(B, 1, 28, 28)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["mlp", "ResidualBlock", "ConvEncoderBody", "ConvDecoderBody", "activation"]

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "silu": nn.SiLU, "gelu": nn.GELU, "elu": nn.ELU}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name: ``"relu"``, ``"leaky_relu"`` (slope 0.2), ``"silu"``, ``"gelu"``, ``"elu"``."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; use one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def _check_channels(channels: Sequence[int], what: str) -> tuple[int, ...]:
    channels = tuple(channels)
    if not channels or not all(isinstance(c, int) and c > 0 for c in channels):
        raise ValueError(f"{what} must be a non-empty sequence of positive ints, got {channels!r}")
    return channels


def mlp(sizes: Sequence[int], *, act: str = "leaky_relu", final_activation: bool = False) -> nn.Sequential:
    """A multilayer perceptron ``(N, sizes[0]) -> (N, sizes[-1])``.

    ``sizes = (d_in, h_1, ..., h_m, d_out)``: linear layers between consecutive sizes, the activation
    ``act`` after every layer but the last (and after the last too with ``final_activation``).
    """
    sizes = _check_channels(sizes, "sizes")
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least an input and an output size, got sizes={sizes!r}")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(sizes) - 2 or final_activation:
            layers.append(activation(act))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    r"""Shape-preserving residual block ``(B, C, H, W) -> (B, C, H, W)``.

    .. math:: y = x + W_2 * \phi(W_1 * \phi(x)),

    with :math:`W_1` a 3x3 convolution to ``hidden`` channels and :math:`W_2` a 1x1 convolution back to
    ``C`` (as in the VQ-VAE paper). :math:`W_2` starts at zero, so the block starts as the identity.
    """

    def __init__(self, channels: int, hidden: int | None = None, *, act: str = "silu"):
        super().__init__()
        hidden = hidden or channels
        self.net = nn.Sequential(
            activation(act), nn.Conv2d(channels, hidden, 3, padding=1), activation(act), nn.Conv2d(hidden, channels, 1)
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ConvEncoderBody(nn.Module):
    """Convolutional encoder body ``(B, in_channels, H, W) -> (B, channels[-1], H / 2^n, W / 2^n)``.

    A 3x3 stem convolution to ``channels[0]``, then for each following entry of ``channels`` a stride-2
    4x4 convolution (``n = len(channels) - 1`` halvings, so ``H`` and ``W`` must be divisible by ``2^n``),
    then ``num_residual`` :class:`ResidualBlock` s, then the activation.

    ``ConvEncoderBody(1, (32, 64))``: 28x28 -> 14x14 (one halving; 32 -> 64 channels).
    ``ConvEncoderBody(1, (32, 32, 64))``: 28x28 -> 14x14 -> 7x7.
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (32, 64), *, num_residual: int = 0, act: str = "silu"):
        super().__init__()
        channels = _check_channels(channels, "channels")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels[0], 3, padding=1)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [activation(act), nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)]
        layers += [ResidualBlock(channels[-1], act=act) for _ in range(num_residual)]
        layers.append(activation(act))
        self.net = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, channels[-1]
        self.downsampling = 2 ** (len(channels) - 1)

    def output_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """``(C', H', W')`` of the feature map for an input of ``height x width`` (checks divisibility)."""
        f = self.downsampling
        if height % f or width % f:
            raise ValueError(f"this encoder halves the resolution {f.bit_length() - 1} time(s): height and width "
                             f"must be divisible by {f}, got {height}x{width}")
        return self.out_channels, height // f, width // f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected images (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        self.output_shape(x.shape[2], x.shape[3])
        return self.net(x)


class ConvDecoderBody(nn.Module):
    """Convolutional decoder body ``(B, channels[0], h, w) -> (B, out_channels, h 2^n, w 2^n)``.

    ``num_residual`` residual blocks on the input, then for each following entry of ``channels`` the
    activation and a stride-2 4x4 transposed convolution (``n = len(channels) - 1`` doublings), then the
    activation and a 3x3 output convolution to ``out_channels`` (no final activation: the outputs are
    the parameters of a likelihood, e.g. logits).
    """

    def __init__(self, out_channels: int, channels: Sequence[int] = (64, 32), *, num_residual: int = 0, act: str = "silu"):
        super().__init__()
        channels = _check_channels(channels, "channels")
        layers: list[nn.Module] = [ResidualBlock(channels[0], act=act) for _ in range(num_residual)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [activation(act), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
        layers += [activation(act), nn.Conv2d(channels[-1], out_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)
        self.in_channels, self.out_channels = channels[0], out_channels
        self.upsampling = 2 ** (len(channels) - 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() != 4 or h.shape[1] != self.in_channels:
            raise ValueError(f"expected a feature map (B, {self.in_channels}, h, w), got shape {tuple(h.shape)}")
        return self.net(h)
