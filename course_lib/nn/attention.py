r"""Scaled dot-product attention and multi-head self-attention (Vaswani et al., 2017).

For queries :math:`Q \in \mathbb{R}^{T \times d}`, keys :math:`K \in \mathbb{R}^{S \times d}` and
values :math:`V \in \mathbb{R}^{S \times d_v}`,

.. math::

    \operatorname{Attention}(Q, K, V) = A V, \qquad
    A = \operatorname{softmax}\Big(\frac{Q K^\top}{\sqrt{d}} + M\Big) \in \mathbb{R}^{T \times S},

where the softmax is taken over each row (each query's weights over the keys sum to 1) and the
mask :math:`M` holds 0 where attending is allowed and :math:`-\infty` where it is not. A **causal**
mask, :math:`M_{ts} = -\infty` for :math:`s > t`, lets position :math:`t` look only at positions
:math:`\le t`: that is what makes a Transformer an autoregressive model.

**Multi-head** self-attention projects the same sequence :math:`X \in \mathbb{R}^{T \times C}` into
:math:`H` heads of size :math:`d = C / H`, attends in each head separately and mixes the heads with
an output projection:

.. math::

    \operatorname{MHSA}(X) = \big[\operatorname{head}_1, \dots, \operatorname{head}_H\big] W^O, \qquad
    \operatorname{head}_h = \operatorname{Attention}(X W^Q_h, X W^K_h, X W^V_h).

Used by the GPT of :mod:`course_lib.models.autoregressive` (``causal=True`` on ``(B, T, C)`` sequences)
and, through :class:`SpatialSelfAttention`, by diffusion U-Nets on ``(B, C, H, W)`` feature maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["causal_mask", "attention", "MultiHeadSelfAttention", "SpatialSelfAttention"]


def causal_mask(t: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(T, T) bool``, True where query ``t`` may attend to key ``s``, i.e. ``s <= t`` (lower triangle)."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    return_weights: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    r"""Scaled dot-product attention :math:`\operatorname{softmax}(Q K^\top / \sqrt{d} + M)\, V`.

    Args:
        q: ``(..., T, d)`` queries; k: ``(..., S, d)`` keys; v: ``(..., S, d_v)`` values
            (typically ``(B, H, T, d)``).
        causal: mask keys after the query (``s > t``); needs ``T == S``.
        mask: optional ``bool`` tensor broadcastable to ``(..., T, S)``, True = may attend.
        dropout_p: dropout on the attention weights (only pass a non-zero value in training).
        return_weights: also return the weights ``A: (..., T, S)`` (rows sum to 1). This uses the
            explicit formula; without it PyTorch's fused ``F.scaled_dot_product_attention`` is used,
            which computes the same thing faster.

    Returns:
        ``out: (..., T, d_v)``, and ``A`` if ``return_weights``.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys need the same size d, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values need the same length S, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if causal and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"a causal mask needs as many queries as keys, got T={q.shape[-2]} and S={k.shape[-2]}")
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got {mask.dtype}")
    if not return_weights and causal and mask is None:  # the fused kernel's own causal mask (fastest)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    if causal:
        cm = causal_mask(q.shape[-2], q.device)
        mask = cm if mask is None else mask & cm
    if not return_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    out = F.dropout(weights, p=dropout_p) @ v if dropout_p > 0 else weights @ v
    return out, weights


class MultiHeadSelfAttention(nn.Module):
    r"""Multi-head self-attention over a sequence ``x: (B, T, C)`` -> ``(B, T, C)``.

    One linear layer computes queries, keys and values of all heads at once
    (:math:`[Q, K, V] = X W^{QKV} + b`, ``qkv: Linear(C, 3C)``), each head of size ``C // n_heads``
    attends separately, and ``proj: Linear(C, C)`` is :math:`W^O`.

    Args:
        dim: ``C``, the embedding size; must be divisible by ``n_heads``.
        n_heads: ``H``.
        causal: position ``t`` attends only to positions ``<= t`` (for autoregressive models).
        dropout: dropout on the attention weights and on the output (training only).
        bias: biases in the two linear layers.
    """

    def __init__(self, dim: int, n_heads: int, *, causal: bool = False, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if dim % n_heads != 0:
            raise ValueError(f"dim={dim} must be divisible by n_heads={n_heads} (each head gets dim // n_heads)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.dim, self.n_heads, self.causal, self.dropout = dim, n_heads, causal, dropout
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)

    def forward(
        self, x: torch.Tensor, *, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``x: (B, T, C)`` -> ``(B, T, C)``; with ``return_weights`` also ``A: (B, H, T, T)``."""
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"expected x of shape (B, T, {self.dim}), got {tuple(x.shape)}")
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=-1)
        # (B, T, C) -> (B, H, T, d): each head attends on its own slice of the channels
        q, k, v = (z.view(b, t, self.n_heads, c // self.n_heads).transpose(1, 2) for z in (q, k, v))
        p = self.dropout if self.training else 0.0
        result = attention(q, k, v, causal=self.causal, dropout_p=p, return_weights=return_weights)
        out, weights = result if return_weights else (result, None)
        out = out.transpose(1, 2).reshape(b, t, c)  # heads side by side again
        out = F.dropout(self.proj(out), p=p, training=self.training)
        return (out, weights) if return_weights else out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_heads={self.n_heads}, causal={self.causal}, dropout={self.dropout}"


class SpatialSelfAttention(nn.Module):
    r"""Self-attention between the pixels of a feature map, with a residual connection (as in DDPM's U-Net).

    .. math:: y = x + \operatorname{MHSA}(\operatorname{GroupNorm}(x))

    where the ``H W`` pixels are the sequence and the ``C`` channels the embedding. Every pixel can
    look at every other (no mask), which gives a convolutional network a global receptive field.

    Args:
        channels: ``C`` (divisible by ``n_heads`` and by ``groups``).
        n_heads: attention heads.
        groups: groups of the ``GroupNorm`` (reduced to a divisor of ``C`` if needed).

    ``x: (B, C, H, W)`` -> ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, n_heads: int = 1, *, groups: int = 8):
        super().__init__()
        groups = math.gcd(channels, groups)
        self.norm = nn.GroupNorm(groups, channels)
        self.attn = MultiHeadSelfAttention(channels, n_heads)
        nn.init.zeros_(self.attn.proj.weight)  # starts as the identity map: x + 0
        nn.init.zeros_(self.attn.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"expected a feature map (B, C, H, W), got shape {tuple(x.shape)}")
        b, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)  # (B, H*W, C)
        out = self.attn(seq).transpose(1, 2).reshape(b, c, h, w)
        return x + out
