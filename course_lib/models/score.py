r"""Score-based generative modelling: denoising score matching and annealed Langevin dynamics (Song & Ermon, 2019).

The **score** of a density :math:`p` is the vector field :math:`\nabla_x \log p(x)`: it points towards more
probable points and does not need the normalising constant. Given the score, **Langevin dynamics** samples
from :math:`p`:

.. math::  x_{k+1} = x_k + \frac{\epsilon}{2} \nabla_x \log p(x_k) + \sqrt{\epsilon}\, z_k, \qquad z_k \sim \mathcal N(0, I),

which, as :math:`\epsilon \to 0` and :math:`k \to \infty`, has :math:`p` as its stationary distribution
(:func:`langevin_dynamics`).

**Learning the score from data.** The score of the data is unknown, but the score of the data *blurred by*
Gaussian noise, :math:`q_\sigma(\tilde x) = \int p(x) \mathcal N(\tilde x; x, \sigma^2 I) dx`, can be learned by
regression (Vincent, 2011): since :math:`\nabla_{\tilde x} \log \mathcal N(\tilde x; x, \sigma^2 I) = -(\tilde x - x)/\sigma^2`,

.. math::

    \mathbb E_{x, \tilde x} \Big\lVert s_\theta(\tilde x, \sigma) + \frac{\tilde x - x}{\sigma^2} \Big\rVert^2
    \quad\text{is minimised by}\quad s_\theta(\tilde x, \sigma) = \nabla_{\tilde x} \log q_\sigma(\tilde x).

**Several noise levels.** Large :math:`\sigma` fills the empty space between the modes of the data with
useful gradients and mixes between modes; small :math:`\sigma` is close to the data. One network
:math:`s_\theta(x, \sigma)` learns all levels :math:`\sigma_1 > \dots > \sigma_L` (a geometric sequence,
:func:`geometric_sigmas`) with the weights :math:`\lambda(\sigma) = \sigma^2` that make every level's loss
of the same size (:func:`dsm_loss`), and **annealed Langevin dynamics** (:func:`annealed_langevin`) runs
Langevin at each level in turn, from the largest to the smallest, with step
:math:`\alpha_i = \epsilon\, \sigma_i^2 / \sigma_L^2`.

**The link to diffusion.** A DDPM noise predictor is a score model in disguise:
:math:`\nabla_{x_t} \log q_t(x_t) = -\epsilon_\theta(x_t, t) / \sqrt{1-\bar\alpha_t}`
(:meth:`course_lib.models.diffusion.NoiseSchedule.score_from_eps`); here
:math:`\tilde x = x + \sigma z` and the network's "noise" is :math:`-\sigma\, s_\theta`.

For Gaussian mixtures the blurred score is exact (:func:`noisy_mixture`, :func:`mixture_score`): the tests
check that Langevin dynamics with it samples the mixture.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.distributions as D
from torch import nn

from course_lib.nn.time_embedding import TimeConditionedMLP

__all__ = [
    "geometric_sigmas",
    "NoiseConditionalScoreNet",
    "dsm_loss",
    "langevin_dynamics",
    "annealed_langevin",
    "LangevinOutput",
    "noisy_mixture",
    "mixture_score",
]

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
NoiseConditionalScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def geometric_sigmas(sigma_max: float = 3.0, sigma_min: float = 0.02, n: int = 10) -> torch.Tensor:
    r"""``(n,)`` noise levels :math:`\sigma_1 = \sigma_\max > \dots > \sigma_n = \sigma_\min`, a geometric sequence.

    Song & Ermon's recipe: :math:`\sigma_\max` about the largest distance between data points (so that the
    noisiest level connects all modes), :math:`\sigma_\min` small enough that :math:`q_{\sigma_\min} \approx p`,
    a constant ratio :math:`\sigma_{i}/\sigma_{i+1}`.
    """
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2 (several noise levels), got {n!r}")
    return torch.exp(torch.linspace(math.log(sigma_max), math.log(sigma_min), n))


def _sigma_batch(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """``sigma`` as a ``(B,)`` tensor on ``x``'s device and dtype."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.dim() == 0:
        sigma = sigma.expand(x.shape[0])
    if sigma.shape != (x.shape[0],):
        raise ValueError(f"sigma must be a number or one value per example ({x.shape[0]},), got {tuple(sigma.shape)}")
    if (sigma <= 0).any():
        raise ValueError("noise levels sigma must be positive")
    return sigma


class NoiseConditionalScoreNet(nn.Module):
    r"""A noise-conditional score network for low-dimensional data: ``forward(x: (B, D), sigma: (B,) or float) -> (B, D)``.

    .. math:: s_\theta(x, \sigma) = \frac{f_\theta(x, \log\sigma)}{\sigma}

    :math:`f_\theta` is a :class:`~course_lib.nn.time_embedding.TimeConditionedMLP` that sees
    :math:`\log\sigma` through a sinusoidal embedding. Dividing by :math:`\sigma` builds in the right scale
    (the true score of the blurred data has size about :math:`1/\sigma`), as in NCSNv2 (Song & Ermon, 2020);
    :math:`f_\theta` then predicts :math:`-\tilde z`, a unit-size "noise".
    """

    def __init__(self, dim: int = 2, width: int = 128, depth: int = 3, *, time_dim: int = 32):
        super().__init__()
        self.dim = dim
        # log(sigma) spans a few units; a scale of 100 spreads it over the embedding's frequencies
        self.net = TimeConditionedMLP(dim, width, depth, time_dim=time_dim, time_scale=100.0)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        sigma = _sigma_batch(sigma, x)
        return self.net(x, sigma.log()) / sigma.unsqueeze(1)


def dsm_loss(model: NoiseConditionalScoreFn, x: torch.Tensor, sigmas: torch.Tensor, *,
             generator: torch.Generator | None = None, reduction: str = "mean") -> torch.Tensor:
    r"""Denoising score matching over several noise levels (Song & Ermon, 2019, eq. 5-6). ``x: (B, D)`` clean data.

    Each example gets a level :math:`\sigma \sim \mathcal U\{\sigma_1..\sigma_L\}` and noise :math:`z`:

    .. math::

        \tilde x = x + \sigma z, \qquad
        \ell = \tfrac12 \sigma^2 \Big\lVert s_\theta(\tilde x, \sigma) + \frac{z}{\sigma} \Big\rVert^2
             = \tfrac12 \big\lVert \sigma s_\theta(\tilde x, \sigma) + z \big\rVert^2

    (the target :math:`-z/\sigma = -(\tilde x - x)/\sigma^2` is the score of the noise kernel; the weight
    :math:`\sigma^2` equalises the levels). Returns the batch mean, or ``(B,)`` with ``reduction="none"``.
    ``model(x_tilde, sigma) -> score`` with ``sigma: (B,)``.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if x.dim() != 2:
        raise ValueError(f"x must be a batch of vectors (B, D), got shape {tuple(x.shape)}")
    sigmas = torch.as_tensor(sigmas, dtype=x.dtype)
    if sigmas.dim() != 1 or (sigmas <= 0).any():
        raise ValueError("sigmas must be a 1-D tensor of positive noise levels, e.g. geometric_sigmas()")
    dev = generator.device if generator is not None else "cpu"
    idx = torch.randint(0, len(sigmas), (x.shape[0],), generator=generator, device=dev)
    sigma = sigmas[idx.cpu()].to(x.device)
    z = torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype).to(x.device)
    x_tilde = x + sigma.unsqueeze(1) * z
    score = model(x_tilde, sigma)
    per_example = 0.5 * (sigma.unsqueeze(1) * score + z).pow(2).sum(dim=1)
    return per_example.mean() if reduction == "mean" else per_example


class LangevinOutput(NamedTuple):
    """``samples: (N, D)``; ``trajectory: (K + 1, N, D)`` the kept states (the first is the start);
    ``sigmas``: for annealed Langevin, the noise level of each kept state after the first (else empty)."""

    samples: torch.Tensor
    trajectory: torch.Tensor
    sigmas: list[float]


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)


def _check_steps(n_steps: int, step_size: float) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
    if not step_size > 0:
        raise ValueError(f"the step size must be positive, got {step_size!r}")


@torch.no_grad()
def langevin_dynamics(score_fn: ScoreFn, x: torch.Tensor, *, step_size: float, n_steps: int,
                      generator: torch.Generator | None = None, return_trajectory: bool = False,
                      keep_every: int = 1) -> torch.Tensor | LangevinOutput:
    r"""Unadjusted Langevin dynamics :math:`x \leftarrow x + \frac{\epsilon}{2} \nabla \log p(x) + \sqrt{\epsilon} z` from ``x: (N, D)``.

    ``score_fn(x: (N, D)) -> (N, D)``; ``step_size`` :math:`\epsilon`; ``n_steps`` updates. Without a
    Metropolis correction the stationary distribution is slightly wider than :math:`p` (bias
    :math:`O(\epsilon)`), and in a landscape of separated modes the chain rarely crosses between them: the
    fractions of samples in each mode stay what the start gave them. Annealing fixes that.
    """
    _check_steps(n_steps, step_size)
    states = [x.detach().cpu()] if return_trajectory else []
    for k in range(n_steps):
        x = x + 0.5 * step_size * score_fn(x) + math.sqrt(step_size) * _noise(x, generator)
        if return_trajectory and ((k + 1) % keep_every == 0 or k == n_steps - 1):
            states.append(x.detach().cpu())
    if not torch.isfinite(x).all():
        raise FloatingPointError("Langevin dynamics diverged (NaN/inf); use a smaller step_size")
    return LangevinOutput(x, torch.stack(states), []) if return_trajectory else x


@torch.no_grad()
def annealed_langevin(score_fn: NoiseConditionalScoreFn, x: torch.Tensor, sigmas: torch.Tensor, *,
                      n_steps_each: int = 100, step_lr: float = 2e-5, denoise: bool = True,
                      generator: torch.Generator | None = None, return_trajectory: bool = False,
                      keep_every: int = 10) -> torch.Tensor | LangevinOutput:
    r"""Annealed Langevin dynamics (Song & Ermon, 2019, Algorithm 1) from ``x: (N, D)`` through ``sigmas`` (decreasing).

    For each level :math:`\sigma_i` in turn, ``n_steps_each`` Langevin updates with step
    :math:`\alpha_i = \epsilon\, \sigma_i^2 / \sigma_L^2` (``step_lr`` is :math:`\epsilon`):

    .. math::  x \leftarrow x + \frac{\alpha_i}{2} s_\theta(x, \sigma_i) + \sqrt{\alpha_i}\, z .

    With ``denoise=True`` a last step :math:`x \leftarrow x + \sigma_L^2 s_\theta(x, \sigma_L)` (Tweedie's
    formula, :math:`\mathbb E[x \mid \tilde x]`) removes the noise of the smallest level (Jolicoeur-Martineau
    et al., 2021). ``score_fn(x, sigma: (N,)) -> (N, D)``. Start ``x`` from wide noise (e.g.
    :math:`\mathcal N(0, \sigma_1^2 I)`) or anything else: the large levels forget the start.
    """
    sigmas = torch.as_tensor(sigmas, dtype=torch.float64).cpu()
    if sigmas.dim() != 1 or len(sigmas) < 1 or (sigmas <= 0).any():
        raise ValueError("sigmas must be a 1-D tensor of positive noise levels")
    if (sigmas.diff() >= 0).any():
        raise ValueError("sigmas must decrease (largest noise first), e.g. geometric_sigmas(3.0, 0.02, 10)")
    _check_steps(n_steps_each, step_lr)
    sigma_last = float(sigmas[-1])
    states = [x.detach().cpu()] if return_trajectory else []
    kept_sigmas: list[float] = []
    k = 0
    for sigma in sigmas.tolist():
        alpha = step_lr * (sigma / sigma_last) ** 2
        level = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
        for _ in range(n_steps_each):
            x = x + 0.5 * alpha * score_fn(x, level) + math.sqrt(alpha) * _noise(x, generator)
            k += 1
            if return_trajectory and k % keep_every == 0:
                states.append(x.detach().cpu())
                kept_sigmas.append(sigma)
    if denoise:
        level = torch.full((x.shape[0],), sigma_last, dtype=x.dtype, device=x.device)
        x = x + sigma_last**2 * score_fn(x, level)
    if not torch.isfinite(x).all():
        raise FloatingPointError("annealed Langevin dynamics diverged (NaN/inf); use a smaller step_lr")
    if return_trajectory:
        states.append(x.detach().cpu())
        kept_sigmas.append(sigma_last)
        return LangevinOutput(x, torch.stack(states), kept_sigmas)
    return x


# --------------------------------------------------------------------------------------------------
# Exact scores of Gaussian mixtures (tests, notebook 09)
# --------------------------------------------------------------------------------------------------


def noisy_mixture(mixture: D.MixtureSameFamily, sigma: float, *, scale: float = 1.0) -> D.MixtureSameFamily:
    r"""The law of :math:`a x + \sigma z` for :math:`x` from a Gaussian mixture and :math:`z \sim \mathcal N(0, I)`, in closed form.

    With ``scale`` :math:`a = 1` this is the mixture blurred by noise, :math:`q_\sigma = p * \mathcal N(0, \sigma^2 I)`
    (score models); with :math:`a = \sqrt{\bar\alpha_t}`, :math:`\sigma = \sqrt{1-\bar\alpha_t}` it is the
    diffusion marginal :math:`q(x_t)`. Each component :math:`\mathcal N(\mu_k, \Sigma_k)` becomes
    :math:`\mathcal N(a\mu_k, a^2\Sigma_k + \sigma^2 I)`; the weights are unchanged. Components must be
    ``Independent(Normal)`` (diagonal, as :func:`course_lib.data.toy2d_distribution` makes them) or
    ``MultivariateNormal``.
    """
    if not isinstance(mixture, D.MixtureSameFamily):
        raise TypeError(f"expected a torch.distributions.MixtureSameFamily, got {type(mixture).__name__}")
    if sigma < 0 or scale <= 0:
        raise ValueError(f"need sigma >= 0 and scale > 0, got sigma={sigma}, scale={scale}")
    comp = mixture.component_distribution
    if isinstance(comp, D.Independent) and isinstance(comp.base_dist, D.Normal):
        base = comp.base_dist
        blurred = D.Independent(D.Normal(scale * base.loc, (scale**2 * base.scale**2 + sigma**2).sqrt()),
                                comp.reinterpreted_batch_ndims)
    elif isinstance(comp, D.MultivariateNormal):
        eye = torch.eye(comp.loc.shape[-1], dtype=comp.loc.dtype)
        blurred = D.MultivariateNormal(scale * comp.loc, scale**2 * comp.covariance_matrix + sigma**2 * eye)
    else:
        raise TypeError("components must be Independent(Normal) or MultivariateNormal to blur them in closed form")
    return D.MixtureSameFamily(mixture.mixture_distribution, blurred)


def mixture_score(mixture: D.MixtureSameFamily, sigma: float | None = None, *, scale: float = 1.0) -> Callable:
    r"""The exact score :math:`\nabla_x \log q_\sigma(x)` of a Gaussian mixture, by automatic differentiation.

    With ``sigma`` given: ``score(x: (N, D)) -> (N, D)`` of the mixture blurred at that level. With
    ``sigma=None``: a noise-conditional ``score(x, sigma: (N,)) -> (N, D)`` (one level per call, as annealed
    Langevin uses it), a drop-in for a trained :class:`NoiseConditionalScoreNet`. ``scale``: the score of
    :math:`a x + \sigma z` instead (see :func:`noisy_mixture`), e.g. a diffusion marginal :math:`q(x_t)`.
    """

    def fixed(x: torch.Tensor, level: float) -> torch.Tensor:
        dist = noisy_mixture(mixture, level, scale=scale) if (level > 0 or scale != 1.0) else mixture
        with torch.enable_grad():
            xg = x.detach().to(mixture.mean.dtype).requires_grad_(True)
            (grad,) = torch.autograd.grad(dist.log_prob(xg).sum(), xg)
        return grad.to(x.dtype)

    if sigma is not None:
        return lambda x: fixed(x, float(sigma))

    def conditional(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        level = torch.as_tensor(level)
        values = level.unique() if level.dim() else level.reshape(1)
        if values.numel() != 1:
            raise ValueError("mixture_score's conditional score takes one noise level per call")
        return fixed(x, float(values[0]))

    return conditional
