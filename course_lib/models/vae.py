r"""Autoencoders and variational autoencoders (Kingma & Welling, 2014; Rezende et al., 2014), with honest likelihoods.

**The model.** A latent variable :math:`z \in \mathbb{R}^d` with prior :math:`p(z) = \mathcal N(0, I)` and a
decoder :math:`p_\theta(x \mid z)` (Bernoulli, categorical or Gaussian per pixel, its parameters computed by a
network from :math:`z`) define the marginal likelihood

.. math::  p_\theta(x) = \int p_\theta(x \mid z)\, p(z)\, dz ,

which no computer can evaluate exactly for a neural decoder. An encoder :math:`q_\phi(z \mid x) =
\mathcal N(\mu_\phi(x), \operatorname{diag} \sigma^2_\phi(x))` approximates the posterior.

**The ELBO, derived two ways** (both in the notebook and in :meth:`VAE.elbo`):

1. *Jensen.* :math:`\log p(x) = \log \mathbb E_{q}\big[\tfrac{p(x, z)}{q(z \mid x)}\big]
   \ge \mathbb E_{q}\big[\log \tfrac{p(x, z)}{q(z \mid x)}\big] =: \mathcal L(x)`.
2. *The gap is a KL.* :math:`\log p(x) = \mathcal L(x) + \operatorname{KL}\big(q(z \mid x) \,\Vert\, p(z \mid x)\big)`,
   so :math:`\mathcal L(x) \le \log p(x)` with equality iff :math:`q` is the true posterior.

Rearranged, :math:`\mathcal L(x) = \mathbb E_q[\log p(x \mid z)] - \operatorname{KL}(q(z \mid x) \,\Vert\, p(z))`:
a reconstruction term (estimated by sampling) minus a KL term (in closed form for Gaussians, :func:`gaussian_kl`).

**Tighter bounds and honest numbers.** With :math:`K` samples :math:`z_k \sim q(z \mid x)` and weights
:math:`w_k = p(x, z_k) / q(z_k \mid x)`, the IWAE bound (Burda et al., 2016)

.. math::  \mathcal L_K(x) = \mathbb E\Big[\log \frac1K \sum_{k=1}^K w_k\Big], \qquad
           \mathcal L = \mathcal L_1 \le \mathcal L_2 \le \dots \le \mathcal L_K \xrightarrow{K \to \infty} \log p(x),

is a training objective (:meth:`VAE.iwae_bound`) and, with :math:`K` in the thousands, the standard
importance-sampled estimate of :math:`\log p(x)` that papers report as the test NLL
(:meth:`VAE.log_likelihood`). Reported numbers are in **nats per image** (natural log, summed over pixels).

**Likelihoods.** Each matches a named value range of the data (``course_lib.data``):

========================  ===============  ==============================================  =====================
class                     data range       :math:`p(x \mid z)` per pixel                   decoder outputs/pixel
========================  ===============  ==============================================  =====================
:class:`BernoulliLikelihood`    ``"binary"``     :math:`\operatorname{Bern}(\sigma(\ell))`       1 logit
:class:`CategoricalLikelihood`  ``"counts"``     :math:`\operatorname{Cat}(\operatorname{softmax}(\ell_{0..L-1}))`  L logits
:class:`GaussianLikelihood`     continuous       :math:`\mathcal N(\mu, \sigma^2)`              1 mean
========================  ===============  ==============================================  =====================

The Bernoulli and categorical ones are *discrete* likelihoods, so their NLLs are honest code lengths;
a Gaussian density on discrete pixels is not (it can grow without bound), which is why the course
reports Gaussian-decoder numbers only as reconstruction errors.

Shapes: ``x: (B, *data_shape)`` with ``data_shape = (C, H, W)`` for images or ``(D,)`` for vectors;
decoders return ``params: (N, P * data_shape[0], *data_shape[1:])`` with ``P`` parameters per pixel;
latents are ``z: (N, d)``; ``mu, logvar: (B, d)``; per-example quantities are ``(B,)``.

Also here: a plain :class:`Autoencoder` (not a generative model: nothing says which codes are valid),
the :math:`\beta`-VAE weight on the KL (Higgins et al., 2017), and probabilistic PCA
(:func:`ppca_log_marginal`, :func:`ppca_vae`), a linear-Gaussian VAE whose :math:`\log p(x)` is exact and
therefore tests every bound in this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data.ranges import check_range
from course_lib.metrics.likelihood import log_mean_exp
from course_lib.nn.autoencoder_blocks import ConvDecoderBody, ConvEncoderBody, mlp

__all__ = [
    "LOG_2PI",
    "reparameterize",
    "log_normal_diag",
    "log_standard_normal",
    "gaussian_kl",
    "BernoulliLikelihood",
    "CategoricalLikelihood",
    "GaussianLikelihood",
    "MLPEncoder",
    "MLPDecoder",
    "ConvEncoder",
    "ConvDecoder",
    "LinearGaussianEncoder",
    "LinearDecoder",
    "Autoencoder",
    "VAE",
    "loss_fn",
    "autoencoder_loss_fn",
    "kl_per_dimension",
    "active_units",
    "BestOnValidation",
    "ppca_log_marginal",
    "ppca_posterior",
    "ppca_vae",
]

LOG_2PI = math.log(2 * math.pi)
#: ``logvar`` outputs of encoders are clamped to this range: exp(-12) ~ 6e-6 to exp(8) ~ 3e3.
LOGVAR_RANGE = (-12.0, 8.0)


# ==================================================================================================
# Gaussian bookkeeping: the reparameterisation trick, log-densities, the KL in closed form
# ==================================================================================================


def _standard_normal(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``eps ~ N(0, I)`` of ``shape`` on ``like``'s device and dtype, drawn from ``generator`` if given."""
    if generator is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    eps = torch.randn(shape, generator=generator, device=generator.device, dtype=like.dtype)
    return eps.to(like.device)


def reparameterize(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Sample :math:`z \sim \mathcal N(\mu, \operatorname{diag} \sigma^2)` as a differentiable function of :math:`(\mu, \log\sigma^2)`.

    .. math::  z = \mu + \sigma \odot \varepsilon, \qquad \sigma = \exp(\tfrac12 \log\sigma^2), \qquad
               \varepsilon \sim \mathcal N(0, I).

    The randomness sits in :math:`\varepsilon`, which does not depend on the parameters, so
    :math:`\nabla_{\mu,\sigma} \mathbb E[f(z)] = \mathbb E[\nabla_{\mu,\sigma} f(\mu + \sigma \varepsilon)]`
    and a single sample gives an unbiased, low-variance gradient (Kingma & Welling, 2014).

    Args:
        mu, logvar: ``(B, d)`` (any shape, the same for both).
        num_samples: ``K`` to draw ``K`` samples per row: the result is ``(K, B, d)``.
        generator: a ``torch.Generator`` for reproducible draws.

    Returns:
        ``z: (B, d)``, or ``(K, B, d)`` with ``num_samples``.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    shape = mu.shape if num_samples is None else (int(num_samples), *mu.shape)
    if num_samples is not None and int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    eps = _standard_normal(shape, mu, generator)
    return mu + torch.exp(0.5 * logvar) * eps


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Log-density of a diagonal Gaussian, summed over the last dimension.

    .. math::  \log \mathcal N(z; \mu, \operatorname{diag}\sigma^2)
               = -\frac12 \sum_{j=1}^d \Big[\log 2\pi + \log\sigma_j^2 + \frac{(z_j - \mu_j)^2}{\sigma_j^2}\Big]

    ``z``, ``mu``, ``logvar`` broadcast against each other, e.g. ``z: (K, B, d)`` with ``mu: (B, d)``;
    returns the broadcast shape without the last dimension.
    """
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar)).sum(dim=-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    r"""Log-density of the prior :math:`\mathcal N(0, I)`, summed over the last dimension:
    :math:`-\frac12 \sum_j (\log 2\pi + z_j^2)`. ``z: (..., d)`` -> ``(...)``."""
    return -0.5 * (LOG_2PI + z**2).sum(dim=-1)


def gaussian_kl(
    mu_q: torch.Tensor,
    logvar_q: torch.Tensor,
    mu_p: torch.Tensor | None = None,
    logvar_p: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""KL divergence between diagonal Gaussians, summed over the last dimension, in nats.

    .. math::  \operatorname{KL}\big(\mathcal N(\mu_q, \sigma_q^2) \,\Vert\, \mathcal N(\mu_p, \sigma_p^2)\big)
               = \frac12 \sum_j \Big[\log\frac{\sigma_{p,j}^2}{\sigma_{q,j}^2}
               + \frac{\sigma_{q,j}^2 + (\mu_{q,j} - \mu_{p,j})^2}{\sigma_{p,j}^2} - 1\Big]

    With the defaults ``mu_p = 0``, ``logvar_p = 0`` (the standard-normal prior of a VAE) this is
    :math:`\frac12 \sum_j (\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1)`.

    Args:
        mu_q, logvar_q: ``(B, d)``; mu_p, logvar_p: broadcastable to it, or ``None`` for 0.

    Returns:
        ``(B,)``, always ``>= 0``.
    """
    mu_p = torch.zeros_like(mu_q) if mu_p is None else mu_p
    logvar_p = torch.zeros_like(logvar_q) if logvar_p is None else logvar_p
    kl = 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) + (mu_q - mu_p) ** 2) * torch.exp(-logvar_p) - 1.0)
    return kl.sum(dim=-1)


# ==================================================================================================
# Likelihoods p(x | z): each turns decoder outputs ("params") into log-probabilities of data
# ==================================================================================================


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(dim=1)


def _check_params(x: torch.Tensor, params: torch.Tensor, per_pixel: int, name: str) -> None:
    expected = (x.shape[0], per_pixel * x.shape[1], *x.shape[2:])
    if tuple(params.shape) != expected:
        raise ValueError(
            f"{name}: decoder output has shape {tuple(params.shape)} but data of shape {tuple(x.shape)} needs "
            f"{expected} ({per_pixel} parameter(s) per pixel); check the decoder's params_per_pixel"
        )


class BernoulliLikelihood(nn.Module):
    r"""Independent Bernoulli pixels for binary data (``value_range="binary"``): one logit :math:`\ell` per pixel.

    .. math::  \log p(x \mid z) = \sum_i x_i \log \sigma(\ell_i) + (1 - x_i) \log(1 - \sigma(\ell_i))
               = -\sum_i \operatorname{BCE}_{\text{logits}}(\ell_i, x_i)

    computed from the logits (``binary_cross_entropy_with_logits``), never from rounded probabilities.
    """

    value_range = "binary"
    params_per_pixel = 1
    discrete = True

    def check(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise a ``ValueError`` naming the fix unless ``x`` holds 0/1 values."""
        check_range(x, "binary", name=name)

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``x: (N, *data_shape)`` in {0, 1}, ``params: (N, *data_shape)`` logits -> ``(N,)`` nats."""
        _check_params(x, params, 1, "BernoulliLikelihood")
        return -_sum_per_example(F.binary_cross_entropy_with_logits(params, x, reduction="none"))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathbb E[x \\mid z] = \\sigma(\\ell)` in [0, 1]."""
        return torch.sigmoid(params)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return (params > 0).to(params.dtype)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(params.shape, generator=generator, device=generator.device if generator else params.device)
        return (u.to(params.device) < torch.sigmoid(params)).to(params.dtype)


class CategoricalLikelihood(nn.Module):
    r"""Independent categorical pixels over ``levels`` grey levels (``value_range="counts"``): ``L`` logits per pixel.

    .. math::  \log p(x \mid z) = \sum_i \log \operatorname{softmax}(\ell_{i,0}, \dots, \ell_{i,L-1})_{x_i}

    The likelihood of Tomczak's *Deep Generative Modeling* code for the 8x8 digits (``L = 17``). Decoder
    outputs ``params: (N, L * C, H, W)`` are read as ``(N, L, C, H, W)``: level ``l`` of channel ``c`` sits in
    output channel ``l * C + c``.
    """

    value_range = "counts"
    discrete = True

    def __init__(self, levels: int):
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels must be an int >= 2 (e.g. data.DIGITS8X8_LEVELS = 17), got {levels!r}")
        self.levels = levels
        self.params_per_pixel = levels

    def extra_repr(self) -> str:
        return f"levels={self.levels}"

    def check(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise a ``ValueError`` naming the fix unless ``x`` holds integer levels ``0..levels-1``."""
        check_range(x, "counts", name=name, levels=self.levels)

    def logits(self, params: torch.Tensor) -> torch.Tensor:
        """``(N, L * C, *rest)`` -> ``(N, L, C, *rest)``."""
        n, lc = params.shape[:2]
        if lc % self.levels:
            raise ValueError(f"decoder output has {lc} channels, not a multiple of levels={self.levels}")
        return params.reshape(n, self.levels, lc // self.levels, *params.shape[2:])

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``x: (N, *data_shape)`` integer levels as floats, ``params: (N, L * C, ...)`` -> ``(N,)`` nats."""
        _check_params(x, params, self.levels, "CategoricalLikelihood")
        nll = F.cross_entropy(self.logits(params), x.long(), reduction="none")  # (N, C, ...)
        return -_sum_per_example(nll)

    def probs(self, params: torch.Tensor) -> torch.Tensor:
        """``(N, L, C, ...)`` probabilities of each level."""
        return torch.softmax(self.logits(params), dim=1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        r""":math:`\mathbb E[x \mid z] = \sum_l l\, p_l`, a float in ``[0, L-1]`` (not an integer)."""
        levels = torch.arange(self.levels, device=params.device, dtype=params.dtype)
        return torch.einsum("nl...,l->n...", self.probs(params), levels)

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return self.logits(params).argmax(dim=1).to(params.dtype)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        probs = self.probs(params).movedim(1, -1)  # (N, C, ..., L)
        flat = probs.reshape(-1, self.levels)
        if generator is not None and generator.device != flat.device:
            flat_s = torch.multinomial(flat.cpu(), 1, generator=generator).to(flat.device)
        else:
            flat_s = torch.multinomial(flat, 1, generator=generator)
        return flat_s.reshape(probs.shape[:-1]).to(params.dtype)


class GaussianLikelihood(nn.Module):
    r"""Independent Gaussian pixels :math:`\mathcal N(x_i; \mu_i, \sigma^2)`: the decoder outputs the means.

    .. math::  \log p(x \mid z) = -\frac12 \sum_i \Big[\log 2\pi\sigma^2 + \frac{(x_i - \mu_i)^2}{\sigma^2}\Big]

    With a fixed :math:`\sigma` this is a scaled squared error, :math:`-\lVert x - \mu \rVert^2 / 2\sigma^2` + const,
    so :math:`\sigma` sets how much reconstruction counts against the KL. ``learn_sigma=True`` learns one
    shared :math:`\log\sigma`. A *density*: its values on discrete pixels are not code lengths.

    Args:
        sigma: the standard deviation (initial value if learned).
        learn_sigma: make :math:`\log\sigma` a parameter.
        value_range: ``"unit"`` or ``"symmetric"`` to check image data, ``None`` for any real vectors.
    """

    params_per_pixel = 1
    discrete = False

    def __init__(self, sigma: float = 0.1, *, learn_sigma: bool = False, value_range: str | None = None):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        log_sigma = torch.tensor(math.log(sigma))
        if learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        self.value_range = value_range

    @property
    def sigma(self) -> float:
        return float(self.log_sigma.exp())

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:.4g}, learn_sigma={isinstance(self.log_sigma, nn.Parameter)}"

    def check(self, x: torch.Tensor, name: str = "x") -> None:
        if self.value_range is not None:
            check_range(x, self.value_range, name=name)
        elif not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf values")

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``x, params: (N, *data_shape)`` (``params`` = means) -> ``(N,)`` nats (a log-density)."""
        _check_params(x, params, 1, "GaussianLikelihood")
        log_sigma = self.log_sigma.clamp(min=-7.0)
        return _sum_per_example(-0.5 * LOG_2PI - log_sigma - 0.5 * (x - params) ** 2 * torch.exp(-2 * log_sigma))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def mode(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return params + self.log_sigma.exp() * _standard_normal(params.shape, params, generator)


# ==================================================================================================
# Encoders (x -> (mu, logvar) or a point) and decoders (z -> likelihood parameters)
# ==================================================================================================


def _check_shape(data_shape: Sequence[int]) -> tuple[int, ...]:
    data_shape = tuple(int(s) for s in data_shape)
    if len(data_shape) not in (1, 3) or min(data_shape) < 1:
        raise ValueError(f"data_shape must be (C, H, W) for images or (D,) for vectors, got {data_shape}")
    return data_shape


def _gaussian_head(h: torch.Tensor, latent_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    mu, logvar = h.split(latent_dim, dim=-1)
    return mu, logvar.clamp(*LOGVAR_RANGE)


def _check_input(x: torch.Tensor, data_shape: tuple[int, ...], who: str) -> None:
    if tuple(x.shape[1:]) != data_shape:
        raise ValueError(f"{who} expects x of shape (B, {', '.join(map(str, data_shape))}), got {tuple(x.shape)}")


class MLPEncoder(nn.Module):
    r"""Fully connected encoder: ``x: (B, *data_shape)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``.

    :math:`[\mu, \log\sigma^2] = \operatorname{MLP}(\operatorname{flatten}(x))`. With ``gaussian=False``
    (a plain autoencoder) it returns one point ``z: (B, latent_dim)`` instead. ``input_scale`` multiplies the
    input first (e.g. ``1/16`` for counts 0..16, so the network sees values in [0, 1]).
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        latent_dim: int,
        hidden: Sequence[int] = (256, 256),
        *,
        gaussian: bool = True,
        act: str = "leaky_relu",
        input_scale: float = 1.0,
    ):
        super().__init__()
        self.data_shape, self.latent_dim, self.gaussian = _check_shape(data_shape), int(latent_dim), gaussian
        self.input_scale = float(input_scale)
        d_in = math.prod(self.data_shape)
        self.net = mlp((d_in, *hidden, (2 if gaussian else 1) * self.latent_dim), act=act)

    def forward(self, x: torch.Tensor):
        _check_input(x, self.data_shape, "MLPEncoder")
        h = self.net(x.flatten(1) * self.input_scale)
        return _gaussian_head(h, self.latent_dim) if self.gaussian else h


class MLPDecoder(nn.Module):
    """Fully connected decoder: ``z: (N, latent_dim)`` -> ``params: (N, P * data_shape[0], *data_shape[1:])``.

    ``P = params_per_pixel`` (1 for Bernoulli logits or Gaussian means, ``L`` for a categorical likelihood).
    """

    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        params_per_pixel: int = 1,
        hidden: Sequence[int] = (256, 256),
        *,
        act: str = "leaky_relu",
    ):
        super().__init__()
        self.data_shape, self.latent_dim, self.params_per_pixel = _check_shape(data_shape), int(latent_dim), int(params_per_pixel)
        self.out_shape = (self.params_per_pixel * self.data_shape[0], *self.data_shape[1:])
        self.net = mlp((self.latent_dim, *hidden, math.prod(self.out_shape)), act=act)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"MLPDecoder expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.net(z).view(z.shape[0], *self.out_shape)


class ConvEncoder(nn.Module):
    r"""Convolutional encoder: images ``(B, C, H, W)`` -> ``(mu, logvar)``, each ``(B, latent_dim)``.

    A :class:`~course_lib.nn.autoencoder_blocks.ConvEncoderBody` (each entry of ``channels`` after the first
    halves the resolution), flattened, then a linear layer to :math:`[\mu, \log\sigma^2]`
    (or to one point with ``gaussian=False``).
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] = (32, 64),
        *,
        gaussian: bool = True,
        num_residual: int = 0,
        act: str = "silu",
        input_scale: float = 1.0,
    ):
        super().__init__()
        self.data_shape, self.latent_dim, self.gaussian = _check_shape(data_shape), int(latent_dim), gaussian
        if len(self.data_shape) != 3:
            raise ValueError(f"ConvEncoder needs image data (C, H, W), got data_shape={self.data_shape}")
        self.input_scale = float(input_scale)
        self.body = ConvEncoderBody(self.data_shape[0], channels, num_residual=num_residual, act=act)
        c, h, w = self.body.output_shape(*self.data_shape[1:])
        self.head = nn.Linear(c * h * w, (2 if gaussian else 1) * self.latent_dim)

    def forward(self, x: torch.Tensor):
        _check_input(x, self.data_shape, "ConvEncoder")
        h = self.head(self.body(x * self.input_scale).flatten(1))
        return _gaussian_head(h, self.latent_dim) if self.gaussian else h


class ConvDecoder(nn.Module):
    """Convolutional decoder: ``z: (N, latent_dim)`` -> ``params: (N, P * C, H, W)``.

    A linear layer to a ``(channels[0], H / 2^n, W / 2^n)`` feature map, then a
    :class:`~course_lib.nn.autoencoder_blocks.ConvDecoderBody` (``n = len(channels) - 1`` doublings).
    """

    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        params_per_pixel: int = 1,
        channels: Sequence[int] = (64, 32),
        *,
        num_residual: int = 0,
        act: str = "silu",
    ):
        super().__init__()
        self.data_shape, self.latent_dim, self.params_per_pixel = _check_shape(data_shape), int(latent_dim), int(params_per_pixel)
        if len(self.data_shape) != 3:
            raise ValueError(f"ConvDecoder needs image data (C, H, W), got data_shape={self.data_shape}")
        c, height, width = self.data_shape
        self.body = ConvDecoderBody(self.params_per_pixel * c, channels, num_residual=num_residual, act=act)
        f = self.body.upsampling
        if height % f or width % f:
            raise ValueError(f"{height}x{width} images are not divisible by the decoder's upsampling factor {f}")
        self.start = (self.body.in_channels, height // f, width // f)
        self.fc = nn.Linear(self.latent_dim, math.prod(self.start))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"ConvDecoder expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.body(self.fc(z).view(z.shape[0], *self.start))


class LinearGaussianEncoder(nn.Module):
    r"""Linear encoder with an input-independent variance: :math:`\mu = A x + c`, :math:`\log\sigma^2 = s`.

    ``x: (B, D)`` -> ``(mu, logvar)``, each ``(B, d)``. For probabilistic PCA with orthogonal columns of
    :math:`W` the true posterior lies in this family (see :func:`ppca_vae`).
    """

    def __init__(self, data_dim: int, latent_dim: int):
        super().__init__()
        self.data_shape, self.latent_dim, self.gaussian = (int(data_dim),), int(latent_dim), True
        self.linear = nn.Linear(data_dim, latent_dim)
        self.logvar = nn.Parameter(torch.zeros(latent_dim))

    def forward(self, x: torch.Tensor):
        _check_input(x, self.data_shape, "LinearGaussianEncoder")
        mu = self.linear(x)
        return mu, self.logvar.expand_as(mu)


class LinearDecoder(nn.Module):
    """Linear decoder :math:`\\mu(z) = W z + b`: ``z: (N, d)`` -> ``(N, D)`` (the Gaussian means of probabilistic PCA)."""

    def __init__(self, latent_dim: int, data_dim: int):
        super().__init__()
        self.data_shape, self.latent_dim, self.params_per_pixel = (int(data_dim),), int(latent_dim), 1
        self.linear = nn.Linear(latent_dim, data_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)


# ==================================================================================================
# Models
# ==================================================================================================


class Autoencoder(nn.Module):
    r"""A plain (deterministic) autoencoder: :math:`z = f(x)`, :math:`\hat x = g(z)`, trained to reconstruct.

    Loss: :math:`-\log p(x \mid z = f(x))` with the given likelihood (binary cross-entropy for Bernoulli,
    scaled squared error for Gaussian), in nats per image. Nothing shapes the distribution of the codes
    :math:`f(x)`, so there is no :math:`p(z)` to sample from: decoding random :math:`z` gives rubbish. That is
    why an autoencoder is **not** a generative model; the VAE adds the prior and the KL term.

    ``encoder``: ``x -> z: (B, d)`` (e.g. ``MLPEncoder(..., gaussian=False)``); ``decoder``: ``z -> params``.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module):
        super().__init__()
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.latent_dim = int(decoder.latent_dim)
        if getattr(encoder, "gaussian", False):
            raise ValueError("an Autoencoder needs an encoder that returns one point: pass gaussian=False to it")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (B, *data_shape)`` -> ``z: (B, d)``."""
        self.likelihood.check(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean of :math:`p(x \\mid f(x))`, same shape as ``x``."""
        return self.likelihood.mean(self.decode(self.encode(x)))

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean reconstruction NLL over the batch, in nats per image; stats ``{"recon": ...}``."""
        recon = -self.likelihood.log_prob(x, self.decode(self.encode(x))).mean()
        return recon, {"recon": recon.detach()}


class VAE(nn.Module):
    r"""A variational autoencoder: prior :math:`\mathcal N(0, I)`, Gaussian encoder, any likelihood.

    Args:
        encoder: ``x: (B, *data_shape)`` -> ``(mu, logvar)``, each ``(B, d)`` (:class:`MLPEncoder`, :class:`ConvEncoder`).
        decoder: ``z: (N, d)`` -> likelihood parameters (:class:`MLPDecoder`, :class:`ConvDecoder`).
        likelihood: :class:`BernoulliLikelihood`, :class:`CategoricalLikelihood` or :class:`GaussianLikelihood`.
        beta: weight of the KL term in the *training* loss (a :math:`\beta`-VAE when ``beta != 1``); the bounds
            and likelihoods this class reports always use the true ELBO (:math:`\beta = 1`).

    Main methods: :meth:`elbo`, :meth:`iwae_bound`, :meth:`log_likelihood` (importance-sampled, K in the
    thousands), :meth:`loss` (for ``train.fit``), :meth:`sample`, :meth:`reconstruct`.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, likelihood: nn.Module, *, beta: float = 1.0):
        super().__init__()
        if not getattr(encoder, "gaussian", True):
            raise ValueError("a VAE needs an encoder that returns (mu, logvar): pass gaussian=True to it")
        self.encoder, self.decoder, self.likelihood = encoder, decoder, likelihood
        self.latent_dim = int(encoder.latent_dim)
        if int(decoder.latent_dim) != self.latent_dim:
            raise ValueError(f"encoder latent_dim {self.latent_dim} != decoder latent_dim {decoder.latent_dim}")
        if getattr(decoder, "params_per_pixel", 1) != likelihood.params_per_pixel:
            raise ValueError(
                f"the decoder outputs {decoder.params_per_pixel} parameter(s) per pixel but {type(likelihood).__name__} "
                f"needs {likelihood.params_per_pixel}; build the decoder with params_per_pixel={likelihood.params_per_pixel}"
            )
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.data_shape = tuple(decoder.data_shape)

    # -- the two networks --------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The posterior's parameters :math:`(\mu_\phi(x), \log\sigma^2_\phi(x))`, each ``(B, d)``; checks ``x``'s range."""
        self.likelihood.check(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters for ``z: (N, d)``: ``(N, P * C, H, W)``."""
        return self.decoder(z)

    def log_prob_x_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p_\theta(x \mid z)` for ``x: (B, ...)`` and ``z: (B, d)`` or ``(K, B, d)`` -> ``(B,)`` or ``(K, B)``."""
        if z.dim() == 2:
            return self.likelihood.log_prob(x, self.decode(z))
        k, b = z.shape[:2]
        xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        return self.likelihood.log_prob(xk, self.decode(z.reshape(k * b, -1))).view(k, b)

    # -- bounds ------------------------------------------------------------------------------------
    def elbo(
        self,
        x: torch.Tensor,
        *,
        beta: float = 1.0,
        num_samples: int = 1,
        generator: torch.Generator | None = None,
        return_terms: bool = False,
    ):
        r"""The evidence lower bound per example, in nats.

        .. math::  \mathcal L_\beta(x) = \underbrace{\mathbb E_{q(z \mid x)}[\log p(x \mid z)]}_{\text{recon}}
                   - \beta\, \underbrace{\operatorname{KL}(q(z \mid x) \,\Vert\, \mathcal N(0, I))}_{\text{kl}}
                   \;\overset{\beta = 1}{=}\; \log p(x) - \operatorname{KL}(q(z \mid x) \,\Vert\, p(z \mid x)) \le \log p(x)

        The expectation is estimated with ``num_samples`` reparameterised samples (differentiable); the KL
        is exact (:func:`gaussian_kl`).

        Args:
            x: ``(B, *data_shape)`` in the likelihood's value range.
            beta: KL weight (1 = the true ELBO).
            return_terms: also return ``recon`` and ``kl``.

        Returns:
            ``elbo: (B,)``, or ``(elbo, recon, kl)``, each ``(B,)``.
        """
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, num_samples=num_samples, generator=generator)  # (S, B, d)
        recon = self.log_prob_x_given_z(x, z).mean(dim=0)
        kl = gaussian_kl(mu, logvar)
        value = recon - beta * kl
        return (value, recon, kl) if return_terms else value

    def log_weights(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None, posterior=None) -> torch.Tensor:
        r"""Log importance weights :math:`\log w_k = \log p(x \mid z_k) + \log p(z_k) - \log q(z_k \mid x)`,
        :math:`z_k \sim q(z \mid x)` reparameterised. ``x: (B, ...)`` -> ``(K, B)``.

        ``posterior``: precomputed ``(mu, logvar)`` of ``x`` (saves the encoder pass when called in chunks).
        """
        mu, logvar = self.encode(x) if posterior is None else posterior
        z = reparameterize(mu, logvar, num_samples=k, generator=generator)  # (K, B, d)
        return self.log_prob_x_given_z(x, z) + log_standard_normal(z) - log_normal_diag(z, mu, logvar)

    def iwae_bound(self, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""The importance-weighted bound (Burda et al., 2016), one draw of it per example, in nats.

        .. math::  \mathcal L_K(x) = \log \frac1K \sum_{k=1}^K \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)},
                   \qquad z_k \sim q(z \mid x).

        Its expectation rises with ``k`` towards :math:`\log p(x)`; ``k = 1`` is a one-sample ELBO estimate
        (with a sampled instead of an exact KL). Differentiable, so ``-iwae_bound(x, k).mean()`` is the IWAE
        training loss. ``x: (B, ...)`` -> ``(B,)``.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        return log_mean_exp(self.log_weights(x, k, generator=generator), dim=0)

    @torch.no_grad()
    def log_likelihood(
        self,
        x: torch.Tensor,
        k: int = 1000,
        *,
        batch_size: int = 100,
        max_decoded: int = 8192,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        r"""Importance-sampled estimate of :math:`\log p(x)` with ``k`` samples (Rezende et al., 2014; Burda et al., 2016).

        .. math::  \log p(x) \approx \log \frac1K \sum_{k=1}^K \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)}
                   = \mathcal L_K(x), \qquad z_k \sim q(z \mid x),

        the standard way papers report a VAE's test NLL (:math:`K = 5000`). It is still a lower bound in
        expectation, but a tight one: the gap shrinks like :math:`O(1/K)`. Computed without gradients, ``batch_size``
        examples at a time, with at most ``max_decoded`` decoder evaluations per call (samples are drawn in
        chunks and their log-weights concatenated before the log-mean-exp), so ``k`` in the thousands fits in memory.

        Args:
            x: ``(B, *data_shape)``; k: importance samples per example.

        Returns:
            ``(B,)`` estimates of :math:`\log p(x)` in nats (negate for the NLL).
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        was_training = self.training
        self.eval()
        out = []
        starts = range(0, x.shape[0], batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"log p(x), K={k}", leave=False)
        try:
            for start in starts:
                xb = x[start : start + batch_size]
                posterior = self.encode(xb)
                chunk = max(1, max_decoded // xb.shape[0])
                weights = [
                    self.log_weights(xb, min(chunk, k - s), generator=generator, posterior=posterior)
                    for s in range(0, k, chunk)
                ]
                out.append(log_mean_exp(torch.cat(weights, dim=0), dim=0))
        finally:
            self.train(was_training)
        return torch.cat(out)

    # -- training ----------------------------------------------------------------------------------
    def loss(
        self, x: torch.Tensor, *, objective: str = "elbo", k: int = 1, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""Training loss for ``train.fit``: the mean over the batch of

        * ``objective="elbo"``: :math:`-\mathcal L_\beta(x)` with ``self.beta`` (``k`` samples for the recon term);
        * ``objective="iwae"``: :math:`-\mathcal L_K(x)` with ``K = k``.

        Returns ``(loss, stats)``; stats hold ``elbo``, ``recon`` and ``kl`` (nats per image; for IWAE also ``iwae``).
        """
        if objective == "elbo":
            elbo, recon, kl = self.elbo(x, beta=self.beta, num_samples=k, generator=generator, return_terms=True)
            loss = -elbo.mean()
            if self.beta != 1.0:
                elbo = recon - kl
            return loss, {"elbo": elbo.mean().detach(), "recon": recon.mean().detach(), "kl": kl.mean().detach()}
        if objective == "iwae":
            bound = self.iwae_bound(x, k, generator=generator)
            return -bound.mean(), {"iwae": bound.mean().detach()}
        raise ValueError(f"unknown objective {objective!r}; use 'elbo' or 'iwae'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The per-example ELBO ``(B,)`` (one sample)."""
        return self.elbo(x)

    # -- generating --------------------------------------------------------------------------------
    def _params_to_x(self, params: torch.Tensor, how: str, generator) -> torch.Tensor:
        if how == "mean":
            return self.likelihood.mean(params)
        if how == "mode":
            return self.likelihood.mode(params)
        if how == "sample":
            return self.likelihood.sample(params, generator=generator)
        raise ValueError(f"how must be 'mean', 'mode' or 'sample', got {how!r}")

    @torch.no_grad()
    def sample(self, n: int, *, how: str = "mean", generator: torch.Generator | None = None, z: torch.Tensor | None = None):
        r"""Generate: :math:`z \sim \mathcal N(0, I)`, then the likelihood's ``how`` (``"mean"``, ``"mode"`` or
        ``"sample"``) of :math:`p(x \mid z)`. ``z: (n, d)`` may be given. Returns ``(n, *data_shape)``."""
        param = next(self.parameters())
        if z is None:
            z = _standard_normal((n, self.latent_dim), param, generator)
        return self._params_to_x(self.decode(z.to(param.device)), how, generator)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, *, how: str = "mean", use_mean_z: bool = True) -> torch.Tensor:
        r"""Decode the posterior mean :math:`\mu_\phi(x)` (or a sample with ``use_mean_z=False``); same shape as ``x``."""
        mu, logvar = self.encode(x)
        z = mu if use_mean_z else reparameterize(mu, logvar)
        return self._params_to_x(self.decode(z), how, None)


def loss_fn(objective: str = "elbo", *, k: int = 1, binarize: bool = False) -> Callable:
    r"""A ``loss_fn(model, batch)`` for ``train.fit`` that calls :meth:`VAE.loss` on ``batch[0]``.

    ``binarize=True`` draws a fresh binarisation :math:`x \sim \operatorname{Bern}(x_{\text{unit}})` of each batch
    of ``"unit"`` images (*dynamic binarisation*, a standard regulariser for Bernoulli VAEs on MNIST).
    """
    if objective not in ("elbo", "iwae"):
        raise ValueError(f"unknown objective {objective!r}; use 'elbo' or 'iwae'")

    def _loss(model: VAE, batch):
        x = batch[0]
        if binarize:
            check_range(x, "unit", name="batch[0]")
            x = torch.bernoulli(x)
        return model.loss(x, objective=objective, k=k)

    return _loss


def autoencoder_loss_fn(*, binarize: bool = False) -> Callable:
    """A ``loss_fn(model, batch)`` for ``train.fit`` that calls :meth:`Autoencoder.loss` on ``batch[0]``
    (``binarize`` as in :func:`loss_fn`)."""

    def _loss(model: Autoencoder, batch):
        x = batch[0]
        if binarize:
            check_range(x, "unit", name="batch[0]")
            x = torch.bernoulli(x)
        return model.loss(x)

    return _loss


# ==================================================================================================
# Diagnostics: posterior collapse, and keeping the best weights on validation data
# ==================================================================================================


@torch.no_grad()
def kl_per_dimension(model: VAE, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    r"""Average KL of each latent dimension over ``x``: ``(d,)`` nats, summing to the mean KL term.

    .. math::  \operatorname{KL}_j = \frac1N \sum_n \tfrac12 \big(\mu_{nj}^2 + \sigma_{nj}^2 - \log\sigma_{nj}^2 - 1\big)

    A dimension with :math:`\operatorname{KL}_j \approx 0` carries no information about :math:`x`: its posterior
    is the prior whatever the input (*posterior collapse* of that dimension).
    """
    total = None
    for start in range(0, x.shape[0], batch_size):
        mu, logvar = model.encode(x[start : start + batch_size])
        part = (0.5 * (mu**2 + logvar.exp() - logvar - 1)).sum(0)
        total = part if total is None else total + part
    return total / x.shape[0]


@torch.no_grad()
def active_units(model: VAE, x: torch.Tensor, *, threshold: float = 0.01, batch_size: int = 500) -> tuple[int, torch.Tensor]:
    r"""Number of *active* latent dimensions (Burda et al., 2016) and each dimension's activity.

    .. math::  A_j = \operatorname{Var}_{x}\big(\mathbb E_{q(z \mid x)}[z_j]\big) = \operatorname{Var}_n(\mu_{nj}), \qquad
               \text{active} \iff A_j > \text{threshold}

    A collapsed dimension's posterior mean does not move with the input. Returns ``(count, A: (d,))``.
    """
    mus = torch.cat([model.encode(x[s : s + batch_size])[0] for s in range(0, x.shape[0], batch_size)])
    activity = mus.var(dim=0)
    return int((activity > threshold).sum()), activity


class BestOnValidation:
    r"""A ``train.fit`` callback that keeps a copy of the weights with the best validation score.

    Small datasets (1,000 training digits) are over-fitted long before the training loss stops falling;
    the standard remedy is *early stopping*: score the model on held-out data every ``every`` steps and
    keep the best weights. ``score(model) -> float`` (higher is better, e.g. the validation ELBO or
    importance-sampled log-likelihood per image) is called in eval mode under ``torch.no_grad``.

    >>> keeper = BestOnValidation(lambda m: m.elbo(x_val).mean(), every=100)
    >>> train.fit(model, loss, loader, steps=3000, log_every=100, callback=keeper)
    >>> keeper.restore(model)           # the weights of step keeper.best_step

    ``scores``: list of ``(step, score)``; ``best_step``, ``best_score``; ``fit``'s ``log_every`` must divide ``every``.
    """

    def __init__(self, score: Callable[[nn.Module], float], every: int = 100):
        if every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every}")
        self.score_fn, self.every = score, int(every)
        self.scores: list[tuple[int, float]] = []
        self.best_step, self.best_score, self.best_state = 0, -math.inf, None

    def __call__(self, step: int, model: nn.Module, history=None) -> None:
        if step % self.every:
            return
        was_training = model.training
        model.eval()
        with torch.no_grad():
            value = float(self.score_fn(model))
        model.train(was_training)
        self.scores.append((step, value))
        if value > self.best_score:
            self.best_step, self.best_score = step, value
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best weights into ``model`` (in eval mode) and return it."""
        if self.best_state is None:
            raise RuntimeError(f"no validation score was recorded: train for at least every={self.every} steps, with "
                               f"fit's log_every dividing {self.every}")
        model.load_state_dict(self.best_state)
        return model.eval()


# ==================================================================================================
# Probabilistic PCA: the linear-Gaussian VAE whose log p(x) is exact
# ==================================================================================================


def ppca_log_marginal(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""Exact :math:`\log p(x)` of probabilistic PCA (Tipping & Bishop, 1999).

    Model: :math:`z \sim \mathcal N(0, I_d)`, :math:`x \mid z \sim \mathcal N(W z + b, \sigma^2 I_D)`; hence

    .. math::  p(x) = \mathcal N(x;\, b,\, C), \qquad C = W W^\top + \sigma^2 I_D .

    ``x: (B, D)``, ``W: (D, d)``, ``b: (D,)`` -> ``(B,)``.
    """
    D = W.shape[0]
    C = W @ W.T + sigma**2 * torch.eye(D, dtype=W.dtype, device=W.device)
    L = torch.linalg.cholesky(C)
    r = torch.linalg.solve_triangular(L, (x - b).T, upper=False)  # (D, B)
    return -0.5 * (D * LOG_2PI + 2 * torch.log(torch.diagonal(L)).sum() + (r**2).sum(dim=0))


def ppca_posterior(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The exact posterior of probabilistic PCA, a full-covariance Gaussian.

    .. math::  p(z \mid x) = \mathcal N\big(M^{-1} W^\top (x - b),\; \sigma^2 M^{-1}\big), \qquad M = W^\top W + \sigma^2 I_d .

    ``x: (B, D)`` -> ``(mean (B, d), covariance (d, d))`` (the covariance does not depend on ``x``). It is
    diagonal exactly when the columns of ``W`` are orthogonal.
    """
    d = W.shape[1]
    M = W.T @ W + sigma**2 * torch.eye(d, dtype=W.dtype, device=W.device)
    Minv = torch.linalg.inv(M)
    return (x - b) @ W @ Minv.T, sigma**2 * Minv


def ppca_vae(W: torch.Tensor, b: torch.Tensor, sigma: float) -> VAE:
    r"""Probabilistic PCA as a :class:`VAE` with the best diagonal-Gaussian (mean-field) encoder.

    Decoder: :class:`LinearDecoder` :math:`W z + b` with a fixed-:math:`\sigma` :class:`GaussianLikelihood`.
    Encoder: :class:`LinearGaussianEncoder` with the exact posterior mean
    :math:`M^{-1} W^\top (x - b)` and the variances :math:`\sigma_j^2 = 1 / (\Sigma^{-1})_{jj}`, where
    :math:`\Sigma = \sigma^2 M^{-1}` is the posterior covariance: the diagonal Gaussian closest to the true
    posterior in :math:`\operatorname{KL}(q \Vert p)`. When the columns of :math:`W` are orthogonal this *is*
    the true posterior and the ELBO equals :math:`\log p(x)` exactly; otherwise the gap is the KL between
    the mean-field and the full-covariance posterior (the *approximation gap*).

    ``W: (D, d)``, ``b: (D,)``. All parameters are float64 copies of the inputs' values.
    """
    D, d = W.shape
    W, b = W.double(), b.double()
    M = W.T @ W + sigma**2 * torch.eye(d, dtype=torch.float64)
    A = torch.linalg.solve(M, W.T)  # (d, D): posterior mean = A (x - b)
    precision = M / sigma**2  # inverse of the posterior covariance sigma^2 M^{-1}
    encoder, decoder = LinearGaussianEncoder(D, d).double(), LinearDecoder(d, D).double()
    with torch.no_grad():
        encoder.linear.weight.copy_(A)
        encoder.linear.bias.copy_(-A @ b)
        encoder.logvar.copy_(-torch.log(torch.diagonal(precision)))
        decoder.linear.weight.copy_(W)
        decoder.linear.bias.copy_(b)
    return VAE(encoder, decoder, GaussianLikelihood(sigma).double())
