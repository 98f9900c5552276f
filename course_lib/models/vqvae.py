r"""VQ-VAE: discrete latent codes, the straight-through estimator, and an autoregressive prior over codes
(van den Oord, Vinyals & Kavukcuoglu, 2017, *Neural Discrete Representation Learning*).

**Quantisation.** An encoder maps an image to a grid of continuous vectors :math:`z_e(x) \in \mathbb{R}^{D \times h \times w}`.
Each vector is replaced by its nearest entry of a codebook :math:`\{e_1, \dots, e_K\} \subset \mathbb{R}^D`,

.. math::  k^\ast = \arg\min_k \lVert z_e - e_k \rVert_2^2, \qquad z_q = e_{k^\ast},

and the decoder reconstructs the image from :math:`z_q`. An image becomes ``h * w`` integers in
``0..K-1`` (a 28x28 digit: a 7x7 grid of codes).

**Straight-through gradients.** The argmin has no useful gradient, so the backward pass copies the
decoder's gradient from :math:`z_q` to :math:`z_e` unchanged (Bengio et al., 2013). In code:
``z_q = z_e + (z_q - z_e).detach()``: the value is :math:`z_q`, the Jacobian :math:`\partial z_q / \partial z_e = I`.

**The loss** (:math:`\operatorname{sg}` = stop-gradient, ``.detach()``):

.. math::  \mathcal L = \underbrace{\lVert x - \hat x(z_q) \rVert^2}_{\text{reconstruction}}
           + \underbrace{\lVert \operatorname{sg}[z_e] - e \rVert^2}_{\text{codebook: moves } e \text{ to } z_e}
           + \beta \underbrace{\lVert z_e - \operatorname{sg}[e] \rVert^2}_{\text{commitment: keeps } z_e \text{ near } e} .

The codebook term trains only the codes, the commitment term only the encoder (with :math:`\beta = 0.25`);
both are *penalties* (added to the loss), so gradient descent pulls codes and encoder outputs together.
With ``ema=True`` the codebook term is replaced by exponential moving averages of the vectors assigned
to each code (van den Oord et al., 2017, appendix; Razavi et al., 2019): with decay :math:`\gamma`,

.. math::  N_k \leftarrow \gamma N_k + (1 - \gamma)\, n_k, \qquad
           m_k \leftarrow \gamma m_k + (1 - \gamma) \sum_{i: k_i^\ast = k} z_{e,i}, \qquad
           e_k = m_k / N_k ,

i.e. each code tracks the running mean of its cluster (online k-means).

**Dead codes.** Codes that no encoder output chooses receive no update and stay dead; a codebook with
many dead codes wastes capacity. :class:`VectorQuantizer` tracks each code's share of assignments with an
EMA and *restarts* codes whose share falls far below uniform, moving them onto random encoder outputs of
the current batch (as in Jukebox, Dhariwal et al., 2020). :func:`codebook_usage` (share of codes in use) and
:func:`perplexity` (:math:`\exp H` of the code histogram, between 1 and :math:`K`) measure the health of a codebook.

**The prior.** The VQ-VAE itself has no useful prior (during training it is uniform over codes). To
generate, fit an autoregressive model to the code grids of the training images, read in raster order,

.. math::  p(c) = \prod_{t=1}^{hw} p(c_t \mid c_{<t}),

here the causal Transformer of :mod:`course_lib.models.autoregressive` (:class:`CodePrior`), sample a grid
with its :func:`~course_lib.models.autoregressive.generate` and decode it.

Shapes: images ``x: (B, C, H, W)`` in [0, 1]; ``z_e, z_q: (B, D, h, w)``; code grids ``indices: (B, h, w) int64``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data.ranges import check_range
from course_lib.models.autoregressive import GPT, generate
from course_lib.nn.autoencoder_blocks import ConvDecoderBody, ConvEncoderBody

__all__ = [
    "VQOutput",
    "VectorQuantizer",
    "straight_through",
    "codebook_usage",
    "perplexity",
    "VQVAE",
    "vqvae_loss_fn",
    "CodePrior",
    "prior_loss_fn",
]


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    r"""The straight-through estimator: the value of ``z_q`` with the gradient of ``z_e``.

    .. math::  \tilde z = z_e + \operatorname{sg}[z_q - z_e], \qquad \tilde z = z_q, \qquad
               \frac{\partial \tilde z}{\partial z_e} = I .
    """
    return z_e + (z_q - z_e).detach()


def _code_histogram(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    return torch.bincount(indices.reshape(-1).long(), minlength=num_codes).to(torch.float64)


def codebook_usage(indices: torch.Tensor, num_codes: int) -> float:
    """Fraction of the ``num_codes`` codes that occur at least once in ``indices`` (any shape, int)."""
    return float((_code_histogram(indices, num_codes) > 0).double().mean())


def perplexity(indices: torch.Tensor, num_codes: int) -> float:
    r"""Perplexity of the code histogram, :math:`\exp\big(-\sum_k p_k \log p_k\big)` with :math:`p_k` the share of code ``k``.

    1 when one code is used for everything, ``num_codes`` when all are used equally often: the
    "effective number of codes".
    """
    p = _code_histogram(indices, num_codes)
    p = p / p.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float(entropy.exp())


@dataclass
class VQOutput:
    """What :meth:`VectorQuantizer.forward` returns.

    ``z_q``: ``(B, D, h, w)`` quantised vectors with straight-through gradients to ``z_e``;
    ``indices``: ``(B, h, w) int64``; ``loss``: the quantiser's part of the loss (codebook term, unless EMA,
    plus ``beta`` times the commitment term); ``codebook_loss``, ``commitment_loss``: the two terms
    (mean squared distances, 0-dim); ``perplexity``: of this batch's codes (a float).
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: float


class VectorQuantizer(nn.Module):
    r"""Nearest-neighbour quantisation of ``z_e: (B, D, h, w)`` against a codebook ``(K, D)``.

    Args:
        num_codes: ``K``. code_dim: ``D``.
        beta: weight of the commitment term :math:`\lVert z_e - \operatorname{sg}[e] \rVert^2`.
        ema: update the codebook by exponential moving averages (no codebook loss) instead of by gradients.
        decay: :math:`\gamma` of the EMA updates; eps: Laplace smoothing of the cluster sizes.
        restart_dead_codes: in training, move codes whose EMA share of the assignments drops below
            ``dead_share / K`` onto random encoder outputs of the current batch.
        usage_decay: decay of the EMA of each code's share (about ``1 / (1 - usage_decay)`` steps of memory).
        data_init: on the first training batch, initialise the codebook with random encoder outputs
            (instead of the small random values it starts with), so that every code starts in use.

    Buffers: ``usage: (K,)`` (EMA share of each code, sums to 1), ``restarts`` (total codes restarted),
    and with EMA ``cluster_size: (K,)``, ``embed_sum: (K, D)``.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        *,
        beta: float = 0.25,
        ema: bool = False,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_dead_codes: bool = True,
        dead_share: float = 0.03,
        usage_decay: float = 0.99,
        data_init: bool = True,
    ):
        super().__init__()
        if num_codes < 2 or code_dim < 1:
            raise ValueError(f"need num_codes >= 2 and code_dim >= 1, got {num_codes} and {code_dim}")
        if beta < 0:
            raise ValueError(f"beta (the commitment weight) must be >= 0, got {beta}")
        self.num_codes, self.code_dim, self.beta = int(num_codes), int(code_dim), float(beta)
        self.ema, self.decay, self.eps = bool(ema), float(decay), float(eps)
        self.restart_dead_codes, self.dead_share, self.usage_decay = bool(restart_dead_codes), float(dead_share), float(usage_decay)
        self.data_init = bool(data_init)
        init = torch.empty(num_codes, code_dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        if self.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("cluster_size", torch.ones(num_codes))
            self.register_buffer("embed_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("usage", torch.full((num_codes,), 1.0 / num_codes))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(not self.data_init))

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, code_dim={self.code_dim}, beta={self.beta}, ema={self.ema}"

    # -- nearest neighbours --------------------------------------------------------------------------
    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        r"""Index of the nearest code of each row of ``flat: (N, D)`` -> ``(N,) int64``.

        :math:`\lVert z - e_k \rVert^2 = \lVert z \rVert^2 - 2 z^\top e_k + \lVert e_k \rVert^2`, minimised over ``k``.
        """
        e = self.codebook
        d2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(1)[None, :]
        return d2.argmin(dim=1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of a grid ``indices: (B, h, w)`` -> ``(B, D, h, w)``."""
        if indices.dtype != torch.long:
            raise TypeError(f"indices must be int64 (torch.long), got {indices.dtype}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_codes):
            raise ValueError(f"code indices must lie in 0..{self.num_codes - 1}, got {int(indices.min())}..{int(indices.max())}")
        return F.embedding(indices, self.codebook).movedim(-1, 1)

    # -- forward -------------------------------------------------------------------------------------
    def forward(self, z_e: torch.Tensor) -> VQOutput:
        """Quantise ``z_e: (B, D, h, w)``; in training mode also update the EMA codebook and restart dead codes."""
        if z_e.dim() != 4 or z_e.shape[1] != self.code_dim:
            raise ValueError(f"expected z_e of shape (B, {self.code_dim}, h, w), got {tuple(z_e.shape)}")
        b, d, h, w = z_e.shape
        flat = z_e.movedim(1, -1).reshape(-1, d)  # (B h w, D)
        if self.training and not bool(self.initialized):
            self._init_from(flat.detach())
        indices = self.nearest(flat.detach())
        e = self.codebook[indices]  # (B h w, D), differentiable w.r.t. the codebook unless EMA
        codebook_loss = F.mse_loss(e, flat.detach())  # || sg[z_e] - e ||^2: trains the codes
        commitment_loss = F.mse_loss(flat, e.detach())  # || z_e - sg[e] ||^2: trains the encoder
        loss = self.beta * commitment_loss + (0.0 if self.ema else codebook_loss)
        if self.training:
            with torch.no_grad():
                self._update_statistics(flat.detach(), indices)
        z_q = e.view(b, h, w, d).movedim(-1, 1)
        return VQOutput(
            z_q=straight_through(z_e, z_q),
            indices=indices.view(b, h, w),
            loss=loss,
            codebook_loss=codebook_loss.detach() if self.ema else codebook_loss,
            commitment_loss=commitment_loss,
            perplexity=perplexity(indices, self.num_codes),
        )

    @torch.no_grad()
    def _init_from(self, flat: torch.Tensor) -> None:
        pick = torch.randint(0, flat.shape[0], (self.num_codes,), device=flat.device)
        self.codebook.data.copy_(flat[pick])
        if self.ema:
            self.embed_sum.copy_(flat[pick])
            self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    def _update_statistics(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        one_hot = F.one_hot(indices, self.num_codes).to(flat.dtype)  # (N, K)
        counts = one_hot.sum(0)  # n_k
        self.usage.mul_(self.usage_decay).add_(counts / counts.sum(), alpha=1 - self.usage_decay)
        if self.ema:
            self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.embed_sum.mul_(self.decay).add_(one_hot.T @ flat, alpha=1 - self.decay)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace smoothing
            self.codebook.copy_(self.embed_sum / smoothed[:, None])
        if self.restart_dead_codes:
            self._restart(flat)

    def _restart(self, flat: torch.Tensor) -> int:
        dead = torch.nonzero(self.usage < self.dead_share / self.num_codes).flatten()
        if dead.numel() == 0:
            return 0
        pick = torch.randint(0, flat.shape[0], (dead.numel(),), device=flat.device)
        new = flat[pick]
        self.codebook.data[dead] = new
        self.usage[dead] = 1.0 / self.num_codes  # a fresh start: give it time to be chosen
        if self.ema:
            self.embed_sum[dead] = new
            self.cluster_size[dead] = 1.0
        self.restarts.add_(dead.numel())
        return int(dead.numel())


class VQVAE(nn.Module):
    r"""A convolutional VQ-VAE for images ``(B, C, H, W)`` in [0, 1].

    encoder: :class:`~course_lib.nn.autoencoder_blocks.ConvEncoderBody` + a 1x1 convolution to ``code_dim``;
    quantiser: :class:`VectorQuantizer`; decoder: a 1x1 convolution + :class:`~course_lib.nn.autoencoder_blocks.ConvDecoderBody`
    to one logit per pixel, :math:`\hat x = \sigma(\text{logit})`.

    Each entry of ``channels`` after the first halves the resolution: ``channels=(32, 64, 64)`` turns a
    28x28 digit into a 7x7 grid of codes. ``recon="mse"`` trains with :math:`\lVert x - \hat x \rVert^2`
    (the paper's choice); ``"bce"`` with the binary cross-entropy of the logits (sharper digits).
    Both are averaged over pixels, as the VQ terms are averaged over code elements.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        *,
        channels: Sequence[int] = (32, 64, 64),
        code_dim: int = 16,
        num_codes: int = 64,
        num_residual: int = 1,
        beta: float = 0.25,
        ema: bool = True,
        recon: str = "mse",
        **quantizer_kwargs,
    ):
        super().__init__()
        c, height, width = (int(s) for s in image_shape)
        if recon not in ("mse", "bce"):
            raise ValueError(f"recon must be 'mse' or 'bce', got {recon!r}")
        self.image_shape, self.recon = (c, height, width), recon
        body = ConvEncoderBody(c, channels, num_residual=num_residual)
        _, h, w = body.output_shape(height, width)
        self.grid_shape = (h, w)
        self.encoder = nn.Sequential(body, nn.Conv2d(body.out_channels, code_dim, 1))
        self.quantizer = VectorQuantizer(num_codes, code_dim, beta=beta, ema=ema, **quantizer_kwargs)
        rev = tuple(reversed(tuple(channels)))
        self.decoder = nn.Sequential(nn.Conv2d(code_dim, rev[0], 1), ConvDecoderBody(c, rev, num_residual=num_residual))

    @property
    def num_codes(self) -> int:
        return self.quantizer.num_codes

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"expected images (B, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}")
        check_range(x, "unit")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, C, H, W)`` in [0, 1] -> continuous codes ``z_e: (B, D, h, w)``."""
        self._check(x)
        return self.encoder(x)

    @torch.no_grad()
    def encode_indices(self, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
        """Code grid of each image: ``(B, h, w) int64`` (no training-mode side effects)."""
        out = []
        for start in range(0, x.shape[0], batch_size):
            z_e = self.encode(x[start : start + batch_size])
            flat = z_e.movedim(1, -1).reshape(-1, z_e.shape[1])
            out.append(self.quantizer.nearest(flat).view(z_e.shape[0], *z_e.shape[2:]))
        return torch.cat(out)

    def decode_logits(self, z_q: torch.Tensor) -> torch.Tensor:
        """``z_q: (B, D, h, w)`` -> pixel logits ``(B, C, H, W)``."""
        return self.decoder(z_q)

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Code grids ``(B, h, w)`` -> images ``(B, C, H, W)`` in [0, 1]."""
        return torch.sigmoid(self.decode_logits(self.quantizer.lookup(indices)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, VQOutput]:
        """``x -> (x_hat in [0, 1] (B, C, H, W), VQOutput)``."""
        vq = self.quantizer(self.encode(x))
        return torch.sigmoid(self.decode_logits(vq.z_q)), vq

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Encode, quantise, decode: ``(B, C, H, W)`` in [0, 1]."""
        return self.decode_indices(self.encode_indices(x))

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        r"""Reconstruction + codebook + :math:`\beta` commitment (see the module docstring); stats: ``recon_mse``,
        ``commitment``, ``codebook``, ``perplexity``."""
        vq = self.quantizer(self.encode(x))
        logits = self.decode_logits(vq.z_q)
        x_hat = torch.sigmoid(logits)
        mse = F.mse_loss(x_hat, x)
        recon = mse if self.recon == "mse" else F.binary_cross_entropy_with_logits(logits, x)
        return recon + vq.loss, {
            "recon_mse": mse.detach(),
            "commitment": vq.commitment_loss.detach(),
            "codebook": vq.codebook_loss.detach(),
            "perplexity": vq.perplexity,
        }


def vqvae_loss_fn(model: VQVAE, batch) -> tuple[torch.Tensor, dict[str, float]]:
    """``loss_fn`` for ``train.fit``: :meth:`VQVAE.loss` on ``batch[0]``."""
    return model.loss(batch[0])


class CodePrior(nn.Module):
    r"""An autoregressive prior over VQ-VAE code grids: a :class:`~course_lib.models.autoregressive.GPT` over raster order.

    .. math::  p(c) = \prod_{t=1}^{T} p(c_t \mid \texttt{BOS}, c_1, \dots, c_{t-1}), \qquad T = h w .

    The GPT's vocabulary is the ``K`` codes plus a start token ``BOS = K``; its input is
    ``[BOS, c_1, ..., c_{T-1}]`` and its targets ``[c_1, ..., c_T]``. ``BOS`` never appears as a target, so its
    logit is masked to :math:`-\infty` at every output: the prior is a distribution over codes only, and
    :func:`~course_lib.models.autoregressive.generate` can never emit it.

    Args:
        num_codes: ``K``; grid_shape: ``(h, w)``; the rest is passed to ``GPT``.

    ``forward(idx: (B, t)) -> logits (B, t, K + 1)``.
    """

    def __init__(self, num_codes: int, grid_shape: Sequence[int], *, n_layer: int = 4, n_head: int = 4, n_embd: int = 64, dropout: float = 0.0):
        super().__init__()
        self.num_codes, self.grid_shape = int(num_codes), tuple(int(s) for s in grid_shape)
        self.seq_len = math.prod(self.grid_shape)
        self.bos = self.num_codes
        self.gpt = GPT(self.num_codes + 1, self.seq_len, n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=dropout)
        self.vocab_size, self.block_size = self.gpt.vocab_size, self.gpt.block_size

    @property
    def context_size(self) -> int:
        return self.block_size

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        logits = self.gpt(idx)
        return logits.index_fill(-1, torch.tensor([self.bos], device=logits.device), float("-inf"))

    def sequences(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Code grids ``(B, h, w)`` -> GPT inputs and targets ``(x, y)``, each ``(B, h w)`` int64."""
        if indices.dim() != 3 or tuple(indices.shape[1:]) != self.grid_shape:
            raise ValueError(f"expected code grids (B, {self.grid_shape[0]}, {self.grid_shape[1]}), got {tuple(indices.shape)}")
        y = indices.reshape(indices.shape[0], -1).long()
        x = torch.cat([torch.full_like(y[:, :1], self.bos), y[:, :-1]], dim=1)
        return x, y

    def loss(self, indices: torch.Tensor) -> torch.Tensor:
        """Mean next-code cross-entropy in nats per code."""
        x, y = self.sequences(indices)
        logits = self(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    @torch.no_grad()
    def log_prob(self, indices: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p(c)` of each grid, in nats: ``(B, h, w)`` -> ``(B,)``."""
        x, y = self.sequences(indices)
        return -F.cross_entropy(self(x).transpose(1, 2), y, reduction="none").sum(1)

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               generator: torch.Generator | None = None, batch_size: int = 500) -> torch.Tensor:
        """``n`` code grids ``(n, h, w) int64`` sampled with :func:`~course_lib.models.autoregressive.generate`."""
        dev = next(self.parameters()).device
        out = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            prompt = torch.full((m, 1), self.bos, dtype=torch.long, device=dev)
            seq = generate(self, prompt, self.seq_len, temperature, top_k, top_p, generator=generator)
            out.append(seq[:, 1:].reshape(m, *self.grid_shape))
        return torch.cat(out)


def prior_loss_fn(model: CodePrior, batch) -> torch.Tensor:
    """``loss_fn`` for ``train.fit``: :meth:`CodePrior.loss` on ``batch[0]`` (code grids ``(B, h, w)``)."""
    return model.loss(batch[0])
