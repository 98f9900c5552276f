r"""A small U-Net noise predictor :math:`\epsilon_\theta(x_t, t)` for 28x28 and 8x8 images (after Ho et al., 2020).

The network maps a noisy image and its step to a tensor of the same shape,
``x_t: (B, C, H, W), t: (B,) -> (B, C_out, H, W)``, and is told the step through a sinusoidal
:class:`~course_lib.nn.time_embedding.TimeEmbedding` added inside every residual block. Its shape::

    stem 3x3 conv ── level 0 (H x W) ──────────────────────────────── level 0 ── out (GroupNorm, SiLU, 3x3 conv)
                       └ down (stride-2 conv) ─ level 1 (H/2) ───── level 1 ┘ up (nearest x2, 3x3 conv)
                                                └ down ─ level 2 (H/4) ─ middle (res, attention, res) ┘

Every level has ``num_res_blocks`` residual blocks on the way down, whose outputs (and the stem's and the
downsamplers') are kept as *skip connections* and concatenated on the way up (``num_res_blocks + 1`` blocks per
level), so the decoder sees fine detail that the bottleneck has lost. A residual block is

.. math::

    h = \operatorname{Conv}(\operatorname{SiLU}(\operatorname{GN}(x))) + W_e\, \operatorname{SiLU}(e(t)), \qquad
    y = \operatorname{skip}(x) + \operatorname{Conv}(\operatorname{Dropout}(\operatorname{SiLU}(\operatorname{GN}(h))))

(GN: GroupNorm; the second convolution starts at zero, so every block starts as the identity). Self-attention
(:class:`~course_lib.nn.attention.SpatialSelfAttention`) runs only at the lowest resolutions (7x7 = 49 pixels
for MNIST), where it is cheap and gives every pixel a view of the whole digit. The last convolution also
starts at zero: the untrained network predicts :math:`\epsilon = 0`.

Sizes: :func:`unet_config` names presets; :func:`default_unet` picks the CPU-sized one on a CPU and the wider
one on a GPU. 28 is divisible by 4 (28 -> 14 -> 7) and 8 by 4 (8 -> 4 -> 2), so three levels fit both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from course_lib.nn.attention import SpatialSelfAttention
from course_lib.nn.time_embedding import TimeEmbedding

__all__ = ["ResBlock", "Downsample", "Upsample", "UNet", "UNET_PRESETS", "unet_config", "default_unet"]


def _groups(channels: int, groups: int) -> int:
    """The largest divisor of ``channels`` that is at most ``groups`` (GroupNorm needs one)."""
    for g in range(min(groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """Residual block with GroupNorm, SiLU and the time embedding added: ``x: (B, C_in, H, W), e: (B, E) -> (B, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int, *, groups: int = 8, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_channels, groups), in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_channels)
        self.norm2 = nn.GroupNorm(_groups(out_channels, groups), out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.emb(self.act(e))[:, :, None, None]  # the step, one bias per channel
        h = self.conv2(self.dropout(self.act(self.norm2(h))))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3x3 convolution: ``(B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour x2 then a 3x3 convolution, ``(B, C, H, W) -> (B, C, 2H, 2W)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    r"""The diffusion U-Net: ``forward(x: (B, C, H, W), t: (B,) step indices) -> (B, out_channels, H, W)``.

    Args:
        in_channels: image channels ``C`` (1 for digits).
        channels: feature channels per level, e.g. ``(32, 64, 64)``: level ``i`` runs at ``H / 2^i``;
            ``H`` and ``W`` must be divisible by ``2^(len(channels) - 1)``.
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_levels: indices of the levels with self-attention after each residual block (the middle
            always has one when ``mid_attention``); keep them at low resolution.
        out_channels: default ``in_channels`` (a noise, x0 or v prediction has the image's shape).
        time_dim: size of the sinusoidal step features (the embedding is ``4 * channels[0]`` wide).
        groups: GroupNorm groups (reduced to a divisor of each width); dropout: inside residual blocks;
        n_heads: attention heads; mid_attention: attention in the middle block.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (32, 64, 64), num_res_blocks: int = 1,
                 attention_levels: Sequence[int] = (2,), *, out_channels: int | None = None, time_dim: int | None = None,
                 groups: int = 8, dropout: float = 0.0, n_heads: int = 1, mid_attention: bool = True):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty sequence of positive widths, got {channels}")
        if num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {num_res_blocks}")
        bad = [lvl for lvl in attention_levels if not 0 <= lvl < len(channels)]
        if bad:
            raise ValueError(f"attention_levels {bad} do not exist; levels are 0..{len(channels) - 1}")
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.channels = channels
        self.num_res_blocks = num_res_blocks
        self.attention_levels = tuple(sorted(set(attention_levels)))
        self.config = dict(in_channels=in_channels, channels=channels, num_res_blocks=num_res_blocks,
                           attention_levels=self.attention_levels, out_channels=self.out_channels,
                           time_dim=time_dim or channels[0], groups=groups, dropout=dropout, n_heads=n_heads,
                           mid_attention=mid_attention)
        emb_dim = 4 * channels[0]
        self.time = TimeEmbedding(time_dim or channels[0], emb_dim)

        def res(cin, cout):
            return ResBlock(cin, cout, emb_dim, groups=groups, dropout=dropout)

        def attn(c):
            return SpatialSelfAttention(c, n_heads, groups=groups)

        self.stem = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        # encoder: record the width of every skip connection in the order it is pushed
        self.down_blocks, self.down_attn, self.downsamplers = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        skip_widths = [channels[0]]
        width = channels[0]
        for level, c in enumerate(channels):
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(res(width, c))
                attns.append(attn(c) if level in self.attention_levels else nn.Identity())
                width = c
                skip_widths.append(width)
            self.down_blocks.append(blocks)
            self.down_attn.append(attns)
            if level < len(channels) - 1:
                self.downsamplers.append(Downsample(width))
                skip_widths.append(width)
        self.mid1 = res(width, width)
        self.mid_attn = attn(width) if mid_attention else nn.Identity()
        self.mid2 = res(width, width)
        # decoder: each block eats one skip connection
        self.up_blocks, self.up_attn, self.upsamplers = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(channels))):
            c = channels[level]
            blocks, attns = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                blocks.append(res(width + skip_widths.pop(), c))
                attns.append(attn(c) if level in self.attention_levels else nn.Identity())
                width = c
            self.up_blocks.append(blocks)
            self.up_attn.append(attns)
            if level > 0:
                self.upsamplers.append(Upsample(width))
        assert not skip_widths
        self.out = nn.Sequential(nn.GroupNorm(_groups(width, groups), width), nn.SiLU(),
                                 nn.Conv2d(width, self.out_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @property
    def downsampling_factor(self) -> int:
        """``2 ** (levels - 1)``: image sides must be multiples of it."""
        return 2 ** (len(self.channels) - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected images (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        f = self.downsampling_factor
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"image sides must be multiples of {f} for {len(self.channels)} levels, got "
                             f"{tuple(x.shape[-2:])}; use fewer levels or pad the images")
        t = torch.as_tensor(t, device=x.device)
        if t.dim() == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must hold one step per image, shape ({x.shape[0]},), got {tuple(t.shape)}")
        e = self.time(t)
        h = self.stem(x)
        skips = [h]
        for level, (blocks, attns) in enumerate(zip(self.down_blocks, self.down_attn)):
            for block, att in zip(blocks, attns):
                h = att(block(h, e))
                skips.append(h)
            if level < len(self.downsamplers):
                h = self.downsamplers[level](h)
                skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, e)), e)
        for i, (blocks, attns) in enumerate(zip(self.up_blocks, self.up_attn)):
            for block, att in zip(blocks, attns):
                h = att(block(torch.cat([h, skips.pop()], dim=1), e))
            if i < len(self.upsamplers):
                h = self.upsamplers[i](h)
        return self.out(h)

    def num_parameters(self) -> int:
        """The number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


#: Named sizes (keyword arguments of :class:`UNet`).
#:
#: - ``"mnist-small"`` (0.69M parameters): the course's CPU model for 28x28 digits. Widths grow as the
#:   resolution falls (16 channels at 28x28, 32 at 14x14, 64 at 7x7), so each level costs about the same and
#:   the expensive full-resolution level stays thin; attention at 7x7 and in the middle.
#: - ``"cpu"``: an alias of ``"mnist-small"``; ``"gpu"`` (6.8M): wider (64/128/128) and deeper (two blocks per level), for a GPU.
#: - ``"cpu-8x8"`` / ``"gpu-8x8"``: the same ideas for 8x8 digits (8 -> 4 -> 2).
#: - ``"plain-two-level"`` (0.30M): the textbook baseline of ``bench/diffusion_baseline.py``: two levels
#:   (28 and 14), the same width at full resolution as deeper down, no attention.
UNET_PRESETS: dict[str, dict] = {
    "mnist-small": dict(channels=(16, 32, 64), num_res_blocks=1, attention_levels=(2,)),
    "cpu": dict(channels=(16, 32, 64), num_res_blocks=1, attention_levels=(2,)),
    "gpu": dict(channels=(64, 128, 128), num_res_blocks=2, attention_levels=(1, 2)),
    "cpu-8x8": dict(channels=(32, 64, 64), num_res_blocks=1, attention_levels=(1, 2)),
    "gpu-8x8": dict(channels=(64, 128, 128), num_res_blocks=2, attention_levels=(1, 2)),
    "plain-two-level": dict(channels=(22, 44), num_res_blocks=1, attention_levels=(), mid_attention=False),
}


def unet_config(name: str) -> dict:
    """A copy of the keyword arguments of preset ``name`` (see :data:`UNET_PRESETS`)."""
    if name not in UNET_PRESETS:
        raise ValueError(f"unknown U-Net preset {name!r}; use one of {sorted(UNET_PRESETS)}")
    return dict(UNET_PRESETS[name])


def default_unet(image_size: int = 28, in_channels: int = 1, *, device: torch.device | str | None = None,
                 **overrides) -> UNet:
    """The course's U-Net for ``image_size`` (28 or 8): the ``"cpu"`` preset on a CPU, ``"gpu"`` on a GPU/MPS.

    ``device`` is only used to choose the size (default: :func:`course_lib.device.get_device`); keyword
    ``overrides`` replace preset entries, e.g. ``default_unet(28, channels=(16, 32, 32))``.
    """
    from course_lib.device import get_device

    if image_size not in (8, 28):
        raise ValueError(f"the presets are made for 28x28 and 8x8 images, got {image_size}; build UNet(...) directly")
    kind = "cpu" if torch.device(device or get_device()).type == "cpu" else "gpu"
    config = unet_config(kind if image_size == 28 else f"{kind}-8x8")
    config.update(overrides)
    return UNet(in_channels, **config)
