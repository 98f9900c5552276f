r"""Telling a network *which* noise level it is looking at: sinusoidal time embeddings.

A diffusion or score network is one network for all noise levels; it is told the level through a
conditioning scalar :math:`t` (a step index ``0..T-1``, or e.g. :math:`\log\sigma`). The Transformer's
sinusoidal encoding (Vaswani et al., 2017), as used by DDPM, turns the scalar into a vector of ``dim``
features at geometrically spaced frequencies:

.. math::

    \operatorname{emb}(t)_{i} = \sin(t\, \omega_i), \quad \operatorname{emb}(t)_{i + d/2} = \cos(t\, \omega_i),
    \qquad \omega_i = \text{max\_period}^{-i / (d/2)}, \quad i = 0, \dots, d/2 - 1,

so that nearby :math:`t` get similar vectors at low frequencies and are still told apart at high ones.
:class:`TimeEmbedding` follows it with a small MLP, and :class:`TimeConditionedMLP` is the denoiser for
2-D toy data of notebooks 08-09.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["sinusoidal_embedding", "TimeEmbedding", "TimeConditionedMLP"]


def sinusoidal_embedding(t: torch.Tensor, dim: int, *, max_period: float = 10_000.0) -> torch.Tensor:
    r"""``t: (B,)`` (int or float) -> ``(B, dim)`` features :math:`[\sin(t\omega_i), \cos(t\omega_i)]` (``dim`` even)."""
    if dim < 2 or dim % 2:
        raise ValueError(f"the embedding size must be an even number >= 2, got {dim}")
    t = torch.as_tensor(t)
    if t.dim() == 0:
        t = t.reshape(1)
    if t.dim() != 1:
        raise ValueError(f"t must be a 1-D tensor (B,) of time steps, got shape {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float().unsqueeze(1) * freqs.unsqueeze(0)  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class TimeEmbedding(nn.Module):
    r"""Sinusoidal features followed by an MLP: ``t: (B,)`` -> ``(B, out_dim)``.

    .. math:: e(t) = W_2\, \operatorname{SiLU}(W_1 \operatorname{emb}(t) + b_1) + b_2

    ``dim``: size of the sinusoidal features; ``out_dim``: size of the result (default ``4 * dim``,
    as in DDPM's U-Net); ``scale``: :math:`t` is multiplied by it before the sinusoids (e.g. ``1000`` for
    a continuous time in [0, 1]).
    """

    def __init__(self, dim: int, out_dim: int | None = None, *, scale: float = 1.0, max_period: float = 10_000.0):
        super().__init__()
        out_dim = out_dim or 4 * dim
        self.dim, self.out_dim, self.scale, self.max_period = dim, out_dim, float(scale), float(max_period)
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t * self.scale, self.dim, max_period=self.max_period))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, out_dim={self.out_dim}, scale={self.scale:g}"


class _ResidualMLPBlock(nn.Module):
    """``h + W2 SiLU(W1 SiLU(LayerNorm(h)) + proj(e))``: a residual MLP block with the time embedding added."""

    def __init__(self, width: int, emb_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.emb = nn.Linear(emb_dim, width)
        self.fc2 = nn.Linear(width, width)
        self.act = nn.SiLU()

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        z = self.fc1(self.act(self.norm(h))) + self.emb(e)
        return h + self.fc2(self.act(z))


class TimeConditionedMLP(nn.Module):
    r"""A residual MLP :math:`f_\theta(x, t)` for low-dimensional data: ``x: (B, D)``, ``t: (B,)`` -> ``(B, D)``.

    Used as the noise predictor :math:`\epsilon_\theta(x_t, t)` of a 2-D diffusion model and, conditioned
    on a noise level instead of a step, as a score network. Layers:
    ``Linear(D, width)``, ``depth`` residual blocks that each add a projection of the
    :class:`TimeEmbedding`, then ``LayerNorm, SiLU, Linear(width, D)``. The last layer starts at zero, so the
    untrained network predicts 0 (a sensible "no idea" for noise or a score).

    Args:
        dim: ``D``, the data dimension (2 for the toy data).
        width: hidden units; depth: residual blocks; time_dim: size of the sinusoidal features;
        time_scale: multiplies ``t`` before the sinusoids (1 for step indices 0..T-1).
    """

    def __init__(self, dim: int = 2, width: int = 128, depth: int = 3, *, time_dim: int = 32,
                 time_scale: float = 1.0):
        super().__init__()
        if dim < 1 or width < 1 or depth < 1:
            raise ValueError(f"dim, width and depth must be positive, got {dim}, {width}, {depth}")
        self.dim = dim
        self.time = TimeEmbedding(time_dim, width, scale=time_scale)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(_ResidualMLPBlock(width, width) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected x of shape (B, {self.dim}), got {tuple(x.shape)}")
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        e = self.time(t)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, e)
        return self.out(h)
