r"""Denoising diffusion probabilistic models (Ho et al., 2020) and DDIM (Song et al., 2021), from first principles.

Schedules and samplers live here, apart from any network (as in Hugging Face ``diffusers``): one trained
noise predictor :math:`\epsilon_\theta(x_t, t)` serves the DDPM ancestral sampler and the DDIM sampler alike.
A *model* is any callable ``model(x_t, t) -> output`` with ``x_t: (B, ...)`` and ``t: (B,) int64``;
``output`` has the shape of ``x_t`` and is interpreted according to ``prediction`` (``"eps"``, ``"x0"`` or
``"v"``). Images are ``(B, C, H, W)`` in [-1, 1]; 2-D toy data are ``(B, 2)``.

**Time indices.** Following ``diffusers``, the code counts steps from 0: index ``t = 0, ..., T-1`` is the
paper's step :math:`t + 1`. So ``betas[0]`` is :math:`\beta_1`, ``alpha_bar[t]`` is
:math:`\bar\alpha_{t+1} = \prod_{s \le t} (1 - \beta_s)`, and "one step before index 0" is the clean
data :math:`x_0` (written ``t_prev = -1``, with :math:`\bar\alpha = 1`).

**Forward process** (a fixed Markov chain that adds Gaussian noise; nothing is learned):

.. math::

    q(x_t \mid x_{t-1}) = \mathcal N\big(\sqrt{1-\beta_t}\, x_{t-1},\ \beta_t I\big), \quad\text{i.e.}\quad
    x_t = \sqrt{1-\beta_t}\, x_{t-1} + \sqrt{\beta_t}\, \epsilon,

and, composing Gaussians, in closed form from the data (:meth:`NoiseSchedule.q_sample`):

.. math::

    q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\ (1-\bar\alpha_t) I\big), \qquad
    \bar\alpha_t = \prod_{s=1}^t (1 - \beta_s).

**Posterior** of one step given the data (:meth:`NoiseSchedule.q_posterior`):

.. math::

    q(x_{t-1} \mid x_t, x_0) = \mathcal N(\tilde\mu_t, \tilde\beta_t I), \quad
    \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\, x_0
                + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\, x_t, \quad
    \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t .

**Training** (:func:`diffusion_loss`): the ELBO reduces, up to per-step weights, to regressing the noise,
:math:`L_\text{simple} = \mathbb E_{t, x_0, \epsilon} \lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t} x_0 +
\sqrt{1-\bar\alpha_t}\epsilon, t) \rVert^2`.

**Sampling**: the ancestral DDPM sampler (:func:`ddpm_sample`, :func:`p_sample`) plugs the predicted
:math:`\hat x_0` into the posterior; DDIM (:func:`ddim_sample`, :func:`ddim_step`) takes any subsequence of
steps and, with :math:`\eta = 0`, is deterministic and invertible (:func:`ddim_invert`).

**Conversions** between the three parameterisations and the score (:meth:`NoiseSchedule.predict_x0_from_eps`,
:meth:`~NoiseSchedule.score_from_eps`, ...):

.. math::

    \hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon}{\sqrt{\bar\alpha_t}}, \qquad
    v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\, x_0, \qquad
    \nabla_{x_t} \log q(x_t) \approx -\frac{\hat\epsilon}{\sqrt{1-\bar\alpha_t}} .

The tests (``tests/test_diffusion.py``) check every formula against its closed form, against
``diffusers``' ``DDPMScheduler``/``DDIMScheduler`` for the same betas, and end to end with the exact noise
predictor of Gaussian data (:class:`GaussianOptimalDenoiser`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import nn

__all__ = [
    "PREDICTIONS",
    "WEIGHTINGS",
    "linear_beta_schedule",
    "cosine_beta_schedule",
    "NoiseSchedule",
    "diffusion_loss",
    "p_sample",
    "ddpm_sample",
    "ddim_timesteps",
    "ddim_step",
    "ddim_sample",
    "ddim_invert",
    "SamplerOutput",
    "GaussianOptimalDenoiser",
    "plot_schedules",
]

#: What a network's output means: the noise, the clean data, or the velocity v (Salimans & Ho, 2022).
PREDICTIONS = ("eps", "x0", "v")
#: Loss weightings over time steps: plain MSE in the prediction's own space, or Min-SNR-gamma (Hang et al., 2023).
WEIGHTINGS = ("none", "min_snr")

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------------
# Beta schedules
# --------------------------------------------------------------------------------------------------


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"the number of diffusion steps T must be a positive int, got {T!r}")
    return T


def linear_beta_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    r"""Ho et al.'s linear schedule :math:`\beta_t` from ``beta_start`` to ``beta_end`` in ``T`` equal steps.

    Returns ``betas: (T,) float64``. The defaults are the paper's (for T = 1000); they leave
    :math:`\bar\alpha_T \approx 4 \cdot 10^{-5}`, i.e. almost pure noise at the last step. With much smaller
    T, scale both ends by ``1000 / T`` to keep the same total amount of noise.
    """
    _check_T(T)
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}")
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_beta_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    r"""Nichol & Dhariwal's cosine schedule, defined through :math:`\bar\alpha` rather than :math:`\beta`.

    .. math::

        f(u) = \cos^2\!\Big(\frac{u + s}{1 + s}\,\frac{\pi}{2}\Big), \qquad
        \beta_t = \min\!\Big(1 - \frac{f(t/T)}{f((t-1)/T)},\ \beta_\text{max}\Big), \quad t = 1..T,

    so that :math:`\bar\alpha_t \approx f(t/T)/f(0)` falls off gently at both ends (the linear schedule destroys
    small images' information too early). ``s`` keeps :math:`\beta_1` from being tiny; ``max_beta`` (0.999)
    avoids the singularity at :math:`t = T`. Identical to ``diffusers``' ``"squaredcos_cap_v2"``.
    Returns ``betas: (T,) float64``.
    """
    _check_T(T)
    if not s >= 0 or not 0 < max_beta < 1:
        raise ValueError(f"need s >= 0 and 0 < max_beta < 1, got s={s}, max_beta={max_beta}")
    u = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


_SCHEDULES = {"linear": linear_beta_schedule, "cosine": cosine_beta_schedule}


# --------------------------------------------------------------------------------------------------
# The schedule: forward process, posterior, conversions
# --------------------------------------------------------------------------------------------------


def _broadcast(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values: (B,)`` -> ``(B, 1, ..., 1)`` with as many dims as ``like``, in ``like``'s dtype and device."""
    return values.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


class NoiseSchedule:
    r"""A variance schedule :math:`\beta_1..\beta_T` and everything derived from it (no network inside).

    Build one with ``NoiseSchedule.linear(T)``, ``NoiseSchedule.cosine(T)``, ``NoiseSchedule.from_name(name, T)``
    or ``NoiseSchedule(betas)``. All tables are ``(T,) float64`` tensors on the CPU, indexed by the
    0-based step ``t`` (see the module docstring); functions taking ``t`` accept an int or a ``(B,)``
    integer tensor and return values in the dtype and on the device of their tensor arguments.

    Tables (paper notation, index ``t`` = paper step ``t + 1``):

    - ``betas`` :math:`\beta_t`, ``alphas`` :math:`\alpha_t = 1 - \beta_t`,
    - ``alpha_bar`` :math:`\bar\alpha_t = \prod_{s \le t} \alpha_s` (diffusers: ``alphas_cumprod``),
      ``alpha_bar_prev`` :math:`\bar\alpha_{t-1}` (1 at the first step),
    - ``snr`` :math:`\bar\alpha_t / (1 - \bar\alpha_t)`, the signal-to-noise ratio of :math:`x_t`; ``log_snr``,
    - ``posterior_variance`` :math:`\tilde\beta_t`, ``posterior_mean_coef_x0``, ``posterior_mean_coef_xt``.
    """

    def __init__(self, betas: torch.Tensor | Sequence[float], *, name: str = "custom"):
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().cpu()
        if betas.dim() != 1 or betas.numel() == 0:
            raise ValueError(f"betas must be a non-empty 1-D tensor (T,), got shape {tuple(betas.shape)}")
        if not torch.isfinite(betas).all() or (betas <= 0).any() or (betas >= 1).any():
            raise ValueError("every beta_t must lie strictly between 0 and 1 (a variance fraction per step)")
        self.name = name
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)
        self.alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])
        self.sqrt_alpha_bar = self.alpha_bar.sqrt()
        self.sqrt_one_minus_alpha_bar = (1.0 - self.alpha_bar).sqrt()
        self.snr = self.alpha_bar / (1.0 - self.alpha_bar)
        self.log_snr = self.snr.log()
        # q(x_{t-1} | x_t, x_0) = N(coef_x0 * x_0 + coef_xt * x_t, beta_tilde I)      (Ho et al., eq. 6-7)
        self.posterior_variance = (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar) * betas
        self.posterior_mean_coef_x0 = self.alpha_bar_prev.sqrt() * betas / (1.0 - self.alpha_bar)
        self.posterior_mean_coef_xt = self.alphas.sqrt() * (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar)

    # -- construction --------------------------------------------------------------------------------
    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """Ho et al.'s linear schedule (see :func:`linear_beta_schedule`)."""
        return cls(linear_beta_schedule(T, beta_start, beta_end), name="linear")

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """Nichol & Dhariwal's cosine schedule (see :func:`cosine_beta_schedule`)."""
        return cls(cosine_beta_schedule(T, s, max_beta), name="cosine")

    @classmethod
    def from_name(cls, name: str, T: int = 1000) -> NoiseSchedule:
        """``"linear"`` or ``"cosine"`` with their default parameters."""
        if name not in _SCHEDULES:
            raise ValueError(f"unknown schedule {name!r}; use one of {sorted(_SCHEDULES)}")
        return cls(_SCHEDULES[name](T), name=name)

    @property
    def T(self) -> int:
        """The number of diffusion steps."""
        return self.betas.numel()

    def __len__(self) -> int:
        return self.T

    def __repr__(self) -> str:
        return (f"NoiseSchedule({self.name}, T={self.T}, beta {self.betas[0]:.2e}..{self.betas[-1]:.3g}, "
                f"alpha_bar_T={self.alpha_bar[-1]:.2e})")

    # -- indexing ------------------------------------------------------------------------------------
    def _t(self, t: int | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``t`` as a ``(B,)`` int64 CPU tensor for indexing the tables (an int is repeated B times)."""
        batch = x.shape[0] if x.dim() > 0 else 1
        if isinstance(t, bool):
            raise TypeError("t must be an int or an integer tensor, not a bool")
        if isinstance(t, int):
            t = torch.full((batch,), t, dtype=torch.long)
        elif isinstance(t, torch.Tensor):
            if t.is_floating_point() or t.is_complex():
                raise TypeError(f"t must hold integer step indices 0..{self.T - 1}, got dtype {t.dtype}; use .long()")
            t = t.detach().to("cpu", torch.long).reshape(-1)
            if t.numel() == 1 and batch != 1:
                t = t.expand(batch)
            if t.numel() != batch:
                raise ValueError(f"t has {t.numel()} entries but the batch has {batch}; pass one step per example")
        else:
            raise TypeError(f"t must be an int or an integer tensor, got {type(t).__name__}")
        if (t < 0).any() or (t >= self.T).any():
            raise ValueError(f"step indices must lie in 0..{self.T - 1} (T={self.T}), got {t.min()}..{t.max()}")
        return t

    def at(self, table: torch.Tensor, t: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` shaped ``(B, 1, ..., 1)`` (``(1, ..., 1)`` for an int ``t``) to broadcast against ``like: (B, ...)``."""
        if isinstance(t, int) and not isinstance(t, bool):
            if not 0 <= t < self.T:
                raise ValueError(f"step indices must lie in 0..{self.T - 1} (T={self.T}), got {t}")
            return table[t].to(device=like.device, dtype=like.dtype).reshape([1] * max(like.dim(), 1))
        return _broadcast(table[self._t(t, like)], like)

    # -- forward process ---------------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Sample :math:`x_t \sim q(x_t \mid x_0)` in one go: :math:`x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1-\bar\alpha_t}\, \epsilon`.

        ``x0: (B, ...)`` (images ``(B, C, H, W)`` in [-1, 1]); ``t``: int or ``(B,)`` step indices;
        ``noise``: :math:`\epsilon \sim \mathcal N(0, I)` of ``x0``'s shape (drawn with ``generator`` if not given).
        Returns ``x_t`` of ``x0``'s shape.
        """
        if noise is None:
            noise = randn_like(x0, generator)
        elif noise.shape != x0.shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)}, x0 has {tuple(x0.shape)}; they must match")
        return self.at(self.sqrt_alpha_bar, t, x0) * x0 + self.at(self.sqrt_one_minus_alpha_bar, t, x0) * noise

    def q_mean_variance(self, x0: torch.Tensor, t: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Mean :math:`\sqrt{\bar\alpha_t}\, x_0` (shape of ``x0``) and variance :math:`1 - \bar\alpha_t` (``(B, 1, ..)``) of :math:`q(x_t \mid x_0)`."""
        return self.at(self.sqrt_alpha_bar, t, x0) * x0, self.at(1.0 - self.alpha_bar, t, x0)

    def q_step(self, x_prev: torch.Tensor, t: int | torch.Tensor, noise: torch.Tensor | None = None, *,
               generator: torch.Generator | None = None) -> torch.Tensor:
        r"""One forward step :math:`x_t = \sqrt{1-\beta_t}\, x_{t-1} + \sqrt{\beta_t}\, \epsilon` (``x_prev`` is :math:`x_{t-1}`).

        Iterating it from ``t = 0`` gives the same distribution as :meth:`q_sample`; the factor
        :math:`\sqrt{1-\beta_t}` shrinks the signal so that the total variance stays 1 for unit-variance data.
        """
        if noise is None:
            noise = randn_like(x_prev, generator)
        return self.at(self.alphas.sqrt(), t, x_prev) * x_prev + self.at(self.betas.sqrt(), t, x_prev) * noise

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t: int | torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Mean :math:`\tilde\mu_t(x_t, x_0)` and variance :math:`\tilde\beta_t` of :math:`q(x_{t-1} \mid x_t, x_0)`.

        ``x0, x_t: (B, ...)``; returns ``(mean: (B, ...), variance: (B, 1, ..., 1))``. At the first step
        (index 0) the variance is 0: :math:`x_{t-1}` is then the data itself.
        """
        if x0.shape != x_t.shape:
            raise ValueError(f"x0 {tuple(x0.shape)} and x_t {tuple(x_t.shape)} must have the same shape")
        mean = self.at(self.posterior_mean_coef_x0, t, x_t) * x0 + self.at(self.posterior_mean_coef_xt, t, x_t) * x_t
        return mean, self.at(self.posterior_variance, t, x_t)

    # -- conversions between parameterisations ------------------------------------------------------
    def predict_x0_from_eps(self, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        r""":math:`\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon) / \sqrt{\bar\alpha_t}` (invert :meth:`q_sample`)."""
        return (x_t - self.at(self.sqrt_one_minus_alpha_bar, t, x_t) * eps) / self.at(self.sqrt_alpha_bar, t, x_t)

    def predict_eps_from_x0(self, x_t: torch.Tensor, t, x0: torch.Tensor) -> torch.Tensor:
        r""":math:`\hat\epsilon = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0) / \sqrt{1-\bar\alpha_t}`."""
        return (x_t - self.at(self.sqrt_alpha_bar, t, x_t) * x0) / self.at(self.sqrt_one_minus_alpha_bar, t, x_t)

    def v_target(self, x0: torch.Tensor, eps: torch.Tensor, t) -> torch.Tensor:
        r"""The velocity :math:`v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\, x_0` (Salimans & Ho, 2022)."""
        return self.at(self.sqrt_alpha_bar, t, x0) * eps - self.at(self.sqrt_one_minus_alpha_bar, t, x0) * x0

    def predict_x0_from_v(self, x_t: torch.Tensor, t, v: torch.Tensor) -> torch.Tensor:
        r""":math:`\hat x_0 = \sqrt{\bar\alpha_t}\, x_t - \sqrt{1-\bar\alpha_t}\, \hat v`."""
        return self.at(self.sqrt_alpha_bar, t, x_t) * x_t - self.at(self.sqrt_one_minus_alpha_bar, t, x_t) * v

    def predict_eps_from_v(self, x_t: torch.Tensor, t, v: torch.Tensor) -> torch.Tensor:
        r""":math:`\hat\epsilon = \sqrt{1-\bar\alpha_t}\, x_t + \sqrt{\bar\alpha_t}\, \hat v`."""
        return self.at(self.sqrt_one_minus_alpha_bar, t, x_t) * x_t + self.at(self.sqrt_alpha_bar, t, x_t) * v

    def score_from_eps(self, eps: torch.Tensor, t) -> torch.Tensor:
        r"""The score of the noisy marginal, :math:`\nabla_{x_t} \log q_t(x_t) = -\,\mathbb E[\epsilon \mid x_t] / \sqrt{1-\bar\alpha_t}`.

        Exact when ``eps`` is the optimal predictor :math:`\mathbb E[\epsilon \mid x_t]` (Tweedie's formula);
        for a trained :math:`\epsilon_\theta` it is the model's score estimate.
        """
        return -eps / self.at(self.sqrt_one_minus_alpha_bar, t, eps)

    def eps_from_score(self, score: torch.Tensor, t) -> torch.Tensor:
        r"""Inverse of :meth:`score_from_eps`: :math:`\epsilon = -\sqrt{1-\bar\alpha_t}\, \nabla \log q_t`."""
        return -score * self.at(self.sqrt_one_minus_alpha_bar, t, score)

    def x0_from_score(self, x_t: torch.Tensor, t, score: torch.Tensor) -> torch.Tensor:
        r"""Tweedie's formula :math:`\mathbb E[x_0 \mid x_t] = (x_t + (1-\bar\alpha_t) \nabla \log q_t(x_t)) / \sqrt{\bar\alpha_t}`."""
        return (x_t + self.at(1.0 - self.alpha_bar, t, x_t) * score) / self.at(self.sqrt_alpha_bar, t, x_t)

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t, prediction: str = "eps") -> torch.Tensor:
        """What a network with this ``prediction`` type should output for ``x_t = q_sample(x0, t, eps)``."""
        _check_prediction(prediction)
        if prediction == "eps":
            return eps
        if prediction == "x0":
            return x0
        return self.v_target(x0, eps, t)

    def split_output(self, output: torch.Tensor, x_t: torch.Tensor, t, prediction: str = "eps", *,
                     clip_x0: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(eps_hat, x0_hat)`` from a network's ``output`` of type ``prediction``.

        With ``clip_x0`` (images in [-1, 1]), :math:`\hat x_0` is clipped to [-1, 1] and :math:`\hat\epsilon` is
        recomputed from the clipped :math:`\hat x_0` so that the two stay consistent with ``x_t``.
        """
        _check_prediction(prediction)
        if output.shape != x_t.shape:
            raise ValueError(
                f"the model returned shape {tuple(output.shape)} for x_t of shape {tuple(x_t.shape)}; a diffusion "
                "network must output a tensor of the input's shape (noise, x0 or v)"
            )
        if prediction == "eps":
            eps, x0 = output, self.predict_x0_from_eps(x_t, t, output)
        elif prediction == "x0":
            x0 = output
            eps = self.predict_eps_from_x0(x_t, t, x0)
        else:
            eps, x0 = self.predict_eps_from_v(x_t, t, output), self.predict_x0_from_v(x_t, t, output)
        if clip_x0:
            x0 = x0.clamp(-1.0, 1.0)
            eps = self.predict_eps_from_x0(x_t, t, x0)
        return eps, x0


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS} (what the network outputs), got {prediction!r}")


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise of ``x``'s shape, dtype and device; drawn from ``generator`` (on its device) if given."""
    return _randn(tuple(x.shape), generator, x.device, x.dtype)


def _randn(shape, generator, device, dtype=torch.float32) -> torch.Tensor:
    if generator is None:
        return torch.randn(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


# --------------------------------------------------------------------------------------------------
# Training objective
# --------------------------------------------------------------------------------------------------


def diffusion_loss(model: Model, x0: torch.Tensor, schedule: NoiseSchedule, *, prediction: str = "eps",
                   weighting: str = "none", min_snr_gamma: float = 5.0, t: torch.Tensor | None = None,
                   noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
                   reduction: str = "mean") -> torch.Tensor:
    r"""The denoising loss for a batch of clean data ``x0: (B, ...)`` (images ``(B, C, H, W)`` in [-1, 1]).

    Draw :math:`t \sim \mathcal U\{0..T-1\}` and :math:`\epsilon \sim \mathcal N(0, I)` per example, form
    :math:`x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1-\bar\alpha_t} \epsilon` and regress the network's output on
    its target (``prediction``: ``"eps"`` the noise, ``"x0"`` the data, ``"v"`` the velocity):

    .. math::  L = \mathbb E_{t, x_0, \epsilon}\; w(t)\, \frac{1}{D} \big\lVert \text{target} - f_\theta(x_t, t) \big\rVert^2 .

    With ``prediction="eps"`` and ``weighting="none"`` this is Ho et al.'s :math:`L_\text{simple}`. Since
    :math:`\lVert \epsilon - \hat\epsilon \rVert^2 = \text{SNR}(t) \lVert x_0 - \hat x_0 \rVert^2` and
    :math:`\lVert v - \hat v \rVert^2 = (1 + \text{SNR}(t)) \lVert x_0 - \hat x_0 \rVert^2`, the three
    parameterisations are the same regression with different weights over :math:`t`.
    ``weighting="min_snr"`` (Hang et al., 2023) sets the weight in :math:`x_0`-space to
    :math:`\min(\text{SNR}(t), \gamma)`, i.e. :math:`w(t) = \min(\text{SNR}, \gamma)/\text{SNR}` for
    ``"eps"``, :math:`\min(\text{SNR}, \gamma)` for ``"x0"``, :math:`\min(\text{SNR}, \gamma)/(\text{SNR}+1)` for
    ``"v"``: it stops the nearly clean steps (huge SNR) from dominating and speeds up training.

    ``t``, ``noise``: fix them (e.g. in tests) instead of drawing. ``reduction="none"`` returns the
    per-example losses ``(B,)`` (e.g. to plot the loss against ``t``).
    """
    _check_prediction(prediction)
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if not isinstance(x0, torch.Tensor) or x0.dim() < 2:
        raise ValueError("x0 must be a batch (B, ...) of clean data, e.g. images (B, C, H, W) in [-1, 1]")
    if x0.dim() == 4:
        lo, hi = float(x0.min()), float(x0.max())
        if hi > 1.5 or lo < -1.5:
            raise ValueError(
                f"images for a diffusion model should be in [-1, 1] (the 'symmetric' range), got values in "
                f"[{lo:.3g}, {hi:.3g}]; load them with value_range='symmetric' or map x -> 2 x - 1 from [0, 1]"
            )
    b = x0.shape[0]
    if t is None:
        t = torch.randint(0, schedule.T, (b,), generator=generator,
                          device=generator.device if generator is not None else "cpu").to(x0.device)
    if noise is None:
        noise = randn_like(x0, generator)
    x_t = schedule.q_sample(x0, t, noise)
    output = model(x_t, t.to(x0.device))
    target = schedule.target(x0, noise, t, prediction)
    if output.shape != target.shape:
        raise ValueError(
            f"the model returned shape {tuple(output.shape)} for inputs of shape {tuple(x0.shape)}; it must return "
            f"the {prediction!r} prediction with the input's shape"
        )
    per_example = (output.float() - target.float()).pow(2).flatten(1).mean(dim=1)  # (B,)
    if weighting == "min_snr":
        snr = schedule.snr[schedule._t(t, x0)].to(per_example.device, per_example.dtype)
        clipped = snr.clamp(max=float(min_snr_gamma))
        per_example = per_example * {"eps": clipped / snr, "x0": clipped, "v": clipped / (snr + 1)}[prediction]
    return per_example.mean() if reduction == "mean" else per_example


# --------------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------------


class SamplerOutput(NamedTuple):
    """What the samplers return with ``return_trajectory=True``.

    ``samples``: the final :math:`x_0`, ``(B, ...)``; ``trajectory``: ``(K + 1, B, ...)`` the states, from
    :math:`x_T` (pure noise) to the samples; ``x0_predictions``: ``(K, B, ...)`` the model's :math:`\\hat x_0`
    at each kept step; ``timesteps``: the step index of each kept step (``len == K``). With ``keep_every=k``
    only every k-th step is kept (the first and the last state always are).
    """

    samples: torch.Tensor
    trajectory: torch.Tensor
    x0_predictions: torch.Tensor
    timesteps: list[int]


def _model_output(model: Model, x_t: torch.Tensor, t: int) -> torch.Tensor:
    t_batch = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
    out = model(x_t, t_batch)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model must return a tensor, got {type(out).__name__}")
    if not torch.isfinite(out).all():
        raise FloatingPointError(f"the model returned NaN/inf at step t={t}; was it trained (or loaded) correctly?")
    return out


def p_sample(model: Model, schedule: NoiseSchedule, x_t: torch.Tensor, t: int, *, prediction: str = "eps",
             variance: str = "posterior", clip_x0: bool = False, noise: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One ancestral step :math:`x_{t-1} \sim p_\theta(x_{t-1} \mid x_t)`; returns ``(x_prev, x0_hat)``.

    The model's :math:`\hat x_0(x_t)` is plugged into the true posterior's mean (Ho et al., eq. 11):

    .. math::

        x_{t-1} = \tilde\mu_t(x_t, \hat x_0) + \sigma_t z
                = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\epsilon\Big) + \sigma_t z,
        \qquad z \sim \mathcal N(0, I),

    with :math:`\sigma_t^2 = \tilde\beta_t` (``variance="posterior"``, diffusers' ``"fixed_small"``) or
    :math:`\beta_t` (``"beta"``, ``"fixed_large"``); no noise is added at the last step (``t == 0``).
    ``x_t: (B, ...)``; ``t``: int step index; ``noise``: the :math:`z` to use (else drawn from ``generator``).
    """
    if variance not in ("posterior", "beta"):
        raise ValueError(f"variance must be 'posterior' (beta tilde) or 'beta', got {variance!r}")
    _check_int_step(t, schedule)
    output = _model_output(model, x_t, t)
    _, x0_hat = schedule.split_output(output, x_t, t, prediction, clip_x0=clip_x0)
    mean, posterior_var = schedule.q_posterior(x0_hat, x_t, t)
    if t == 0:
        return mean, x0_hat
    var = posterior_var if variance == "posterior" else schedule.at(schedule.betas, t, x_t)
    z = noise if noise is not None else randn_like(x_t, generator)
    return mean + var.sqrt() * z, x0_hat


def _check_int_step(t, schedule: NoiseSchedule) -> None:
    if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < schedule.T:
        raise ValueError(f"t must be an int step index in 0..{schedule.T - 1}, got {t!r}")


def _initial_noise(shape, x_T, generator, device) -> torch.Tensor:
    if x_T is not None:
        if shape is not None and tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T has shape {tuple(x_T.shape)} but shape={tuple(shape)} was asked for")
        return x_T
    if shape is None:
        raise ValueError("give the shape of the batch to generate, e.g. (16, 1, 28, 28), or a starting x_T")
    if device is None:
        from course_lib.device import get_device

        device = get_device()
    return _randn(tuple(shape), generator, torch.device(device))


class _Recorder:
    def __init__(self, enabled: bool, keep_every: int, total: int, x_T: torch.Tensor):
        if isinstance(keep_every, bool) or not isinstance(keep_every, int) or keep_every < 1:
            raise ValueError(f"keep_every must be a positive int, got {keep_every!r}")
        self.enabled, self.keep_every, self.total = enabled, keep_every, total
        self.states = [x_T.detach().cpu()] if enabled else []
        self.x0s: list[torch.Tensor] = []
        self.steps: list[int] = []

    def add(self, i: int, t: int, x: torch.Tensor, x0_hat: torch.Tensor) -> None:
        if self.enabled and ((i + 1) % self.keep_every == 0 or i == self.total - 1):
            self.states.append(x.detach().cpu())
            self.x0s.append(x0_hat.detach().cpu())
            self.steps.append(int(t))

    def result(self, x: torch.Tensor):
        if not self.enabled:
            return x
        return SamplerOutput(x, torch.stack(self.states), torch.stack(self.x0s), self.steps)


def _progress(iterable, enabled: bool, desc: str, total: int):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


@torch.no_grad()
def ddpm_sample(model: Model, schedule: NoiseSchedule, shape: Sequence[int] | None = None, *,
                prediction: str = "eps", variance: str = "posterior", clip_x0: bool = False,
                generator: torch.Generator | None = None, device: torch.device | str | None = None,
                x_T: torch.Tensor | None = None, return_trajectory: bool = False, keep_every: int = 1,
                progress: bool = False) -> torch.Tensor | SamplerOutput:
    r"""DDPM ancestral sampling (Ho et al., Algorithm 2): :math:`x_T \sim \mathcal N(0, I)`, then :func:`p_sample` for t = T..1.

    ``shape``: the batch to generate, e.g. ``(64, 1, 28, 28)`` (or give ``x_T``); ``device``: where to
    sample (default the course's device); ``clip_x0=True`` for images in [-1, 1]. All ``T`` steps are used
    (for fewer steps use :func:`ddim_sample`, whose ``eta=1`` is the ancestral sampler on a subsequence).
    Returns the samples ``(B, ...)``, or a :class:`SamplerOutput` with ``return_trajectory=True``. The model
    is called under ``torch.no_grad()`` in whatever mode it is in: pass an eval-mode model (``fit``
    returns one; EMA copies are always in eval mode).
    """
    x = _initial_noise(shape, x_T, generator, device)
    record = _Recorder(return_trajectory, keep_every, schedule.T, x)
    for i, t in enumerate(_progress(range(schedule.T - 1, -1, -1), progress, "DDPM sampling", schedule.T)):
        x, x0_hat = p_sample(model, schedule, x, t, prediction=prediction, variance=variance, clip_x0=clip_x0,
                             generator=generator)
        record.add(i, t, x, x0_hat)
    return record.result(x)


def ddim_timesteps(T: int, steps: int, spacing: str = "trailing") -> list[int]:
    r"""A decreasing subsequence :math:`\tau_S > \dots > \tau_1` of the step indices ``0..T-1`` for DDIM.

    ``spacing`` (the names of Lin et al., 2024, and ``diffusers``): ``"trailing"`` (default) starts at the
    last step ``T - 1``, i.e. from pure noise: ``round(arange(T, 0, -T/S)) - 1``; ``"leading"``:
    ``arange(S) * (T // S)`` (the DDIM paper's, which never visits the noisiest steps); ``"linspace"``:
    ``round(linspace(0, T-1, S))``.
    """
    _check_T(T)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an int between 1 and T={T}, got {steps!r}")
    if spacing == "trailing":
        ts = torch.round(torch.arange(T, 0, -T / steps, dtype=torch.float64)).long() - 1
    elif spacing == "leading":
        ts = (torch.arange(steps) * (T // steps)).flip(0)
    elif spacing == "linspace":
        ts = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().long().flip(0)
    else:
        raise ValueError(f"spacing must be 'trailing', 'leading' or 'linspace', got {spacing!r}")
    return [int(t) for t in ts]


def _check_timesteps(timesteps: Sequence[int], schedule: NoiseSchedule) -> list[int]:
    ts = [int(t) for t in timesteps]
    if not ts:
        raise ValueError("timesteps is empty")
    if any(not 0 <= t < schedule.T for t in ts):
        raise ValueError(f"timesteps must lie in 0..{schedule.T - 1}, got {ts[:5]}...")
    if any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError("timesteps must be strictly decreasing (from noisy to clean), e.g. [999, 979, ..., 19]")
    return ts


def ddim_step(schedule: NoiseSchedule, x_t: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor,
              x0_hat: torch.Tensor, *, eta: float = 0.0, noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One DDIM update from step ``t`` to an earlier step ``t_prev`` (``-1`` = the data), given :math:`\hat\epsilon, \hat x_0`.

    Song et al. (2021), eq. 12, with :math:`\bar\alpha' = \bar\alpha_{t_\text{prev}}` (1 for ``t_prev = -1``):

    .. math::

        x_{t_\text{prev}} = \sqrt{\bar\alpha'}\, \hat x_0
            + \sqrt{1 - \bar\alpha' - \sigma^2}\, \hat\epsilon + \sigma z, \qquad
        \sigma = \eta \sqrt{\frac{1-\bar\alpha'}{1-\bar\alpha_t}} \sqrt{1 - \frac{\bar\alpha_t}{\bar\alpha'}} .

    :math:`\eta = 0` is the deterministic DDIM (an ODE solver); :math:`\eta = 1` with consecutive steps is
    DDPM's ancestral step with :math:`\sigma^2 = \tilde\beta_t`. ``x_t, eps, x0_hat: (B, ...)``.
    """
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"eta must lie in [0, 1] (0: deterministic DDIM, 1: DDPM-like), got {eta!r}")
    if not (-1 <= t_prev < t):
        raise ValueError(f"t_prev must satisfy -1 <= t_prev < t, got t={t}, t_prev={t_prev}")
    ab = schedule.alpha_bar[t]
    ab_prev = schedule.alpha_bar[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
    sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
    direction = (1 - ab_prev - sigma**2).clamp(min=0).sqrt()
    x_prev = float(ab_prev.sqrt()) * x0_hat + float(direction) * eps
    if float(sigma) > 0:
        z = noise if noise is not None else randn_like(x_t, generator)
        x_prev = x_prev + float(sigma) * z
    return x_prev


@torch.no_grad()
def ddim_sample(model: Model, schedule: NoiseSchedule, shape: Sequence[int] | None = None, *, steps: int = 50,
                eta: float = 0.0, timesteps: Sequence[int] | None = None, spacing: str = "trailing",
                prediction: str = "eps", clip_x0: bool = False, generator: torch.Generator | None = None,
                device: torch.device | str | None = None, x_T: torch.Tensor | None = None,
                return_trajectory: bool = False, keep_every: int = 1,
                progress: bool = False) -> torch.Tensor | SamplerOutput:
    r"""DDIM sampling (Song et al., 2021) on ``steps`` of the ``T`` training steps (or the given ``timesteps``).

    Starting from :math:`x_{\tau_S} \sim \mathcal N(0, I)`, each :func:`ddim_step` predicts :math:`\hat x_0`
    and jumps to the next kept step; the last jump goes to the data (``t_prev = -1``). The same network
    trained for DDPM is used unchanged: only the sampler differs. ``eta`` in [0, 1]: 0 deterministic (given
    ``x_T``), 1 ancestral. ``timesteps``: any strictly decreasing subsequence of ``0..T-1`` (overrides
    ``steps``/``spacing``, see :func:`ddim_timesteps`). Other arguments as in :func:`ddpm_sample`.
    """
    ts = _check_timesteps(timesteps if timesteps is not None else ddim_timesteps(schedule.T, steps, spacing), schedule)
    x = _initial_noise(shape, x_T, generator, device)
    record = _Recorder(return_trajectory, keep_every, len(ts), x)
    for i in _progress(range(len(ts)), progress, f"DDIM sampling ({len(ts)} steps)", len(ts)):
        t = ts[i]
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        eps, x0_hat = schedule.split_output(_model_output(model, x, t), x, t, prediction, clip_x0=clip_x0)
        x = ddim_step(schedule, x, t, t_prev, eps, x0_hat, eta=eta, generator=generator)
        record.add(i, t, x, x0_hat)
    return record.result(x)


@torch.no_grad()
def ddim_invert(model: Model, schedule: NoiseSchedule, x0: torch.Tensor, *, steps: int = 50,
                timesteps: Sequence[int] | None = None, spacing: str = "trailing", prediction: str = "eps",
                return_trajectory: bool = False) -> torch.Tensor | SamplerOutput:
    r"""Run deterministic DDIM backwards: encode data ``x0: (B, ...)`` into the noise :math:`x_T` that DDIM (``eta=0``) decodes to it.

    The DDIM ODE is stepped from the data towards the noise along the same steps as :func:`ddim_sample`
    (reversed), using the model at the current point (first-order, so the round trip
    ``ddim_sample(x_T=ddim_invert(x0))`` is exact only as the steps get small):

    .. math::  x_{t} = \sqrt{\bar\alpha_t}\, \hat x_0(x_{t'}) + \sqrt{1 - \bar\alpha_t}\, \hat\epsilon(x_{t'}),
               \quad t' < t \text{ the previous (cleaner) step.}

    Returns :math:`x_T` with ``x0``'s shape (or a :class:`SamplerOutput` whose trajectory runs from data to noise).
    """
    ts = _check_timesteps(timesteps if timesteps is not None else ddim_timesteps(schedule.T, steps, spacing), schedule)
    up = list(reversed(ts))  # increasing: the clean end first
    x = x0
    record = _Recorder(return_trajectory, 1, len(up), x)
    for i, t in enumerate(up):
        if i == 0:
            # At the data itself there is no step to evaluate the model at; use the first kept step's noise
            # level (exact in the limit of a small first step: x_{tau_1} -> x_0).
            eps_hat, _ = schedule.split_output(_model_output(model, x, t), x, t, prediction)
            x0_hat = x
        else:
            t_cur = up[i - 1]  # the model at the current point x_{t_cur}
            eps_hat, x0_hat = schedule.split_output(_model_output(model, x, t_cur), x, t_cur, prediction)
        x = float(schedule.sqrt_alpha_bar[t]) * x0_hat + float(schedule.sqrt_one_minus_alpha_bar[t]) * eps_hat
        record.add(i, t, x, x0_hat)
    return record.result(x)


# --------------------------------------------------------------------------------------------------
# The exact noise predictor for Gaussian data (tests, notebook 09)
# --------------------------------------------------------------------------------------------------


class GaussianOptimalDenoiser(nn.Module):
    r"""The exact minimiser of the noise-prediction loss when the data are Gaussian, :math:`x_0 \sim \mathcal N(\mu, \Sigma)`.

    Then :math:`x_t \sim \mathcal N(\sqrt{\bar\alpha_t}\mu,\ \Sigma_t)` with
    :math:`\Sigma_t = \bar\alpha_t \Sigma + (1-\bar\alpha_t) I`, and since
    :math:`\operatorname{Cov}(\epsilon, x_t) = \sqrt{1-\bar\alpha_t}\, I`,

    .. math::

        \epsilon^*(x_t, t) = \mathbb E[\epsilon \mid x_t]
            = \sqrt{1-\bar\alpha_t}\; \Sigma_t^{-1} (x_t - \sqrt{\bar\alpha_t}\mu)
            = -\sqrt{1-\bar\alpha_t}\; \nabla_{x_t} \log q_t(x_t).

    A stand-in for a perfectly trained network: ``forward(x_t: (B, D), t: (B,)) -> (B, D)`` (any trailing
    shape flattening to D also works). ``prediction`` selects the output type (``"eps"``, ``"x0"``, ``"v"``).
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor, schedule: NoiseSchedule, *, prediction: str = "eps"):
        super().__init__()
        _check_prediction(prediction)
        mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        cov = torch.as_tensor(cov, dtype=torch.float64)
        d = mean.numel()
        if cov.shape != (d, d):
            raise ValueError(f"cov must be ({d}, {d}) for a mean of {d} entries, got {tuple(cov.shape)}")
        if not torch.allclose(cov, cov.T) or torch.linalg.eigvalsh(cov).min() < 0:
            raise ValueError("cov must be a symmetric positive semi-definite matrix")
        self.schedule, self.prediction = schedule, prediction
        ab = schedule.alpha_bar.reshape(-1, 1, 1)
        eye = torch.eye(d, dtype=torch.float64)
        precision_t = torch.linalg.inv(ab * cov + (1 - ab) * eye)  # (T, D, D): Sigma_t^{-1}
        self.register_buffer("mean", mean)
        self.register_buffer("precision_t", precision_t)

    def score(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        r""":math:`\nabla \log q_t(x_t) = -\Sigma_t^{-1}(x_t - \sqrt{\bar\alpha_t}\mu)`, ``(B, D) -> (B, D)``."""
        flat = x_t.reshape(x_t.shape[0], -1).double()
        idx = self.schedule._t(t, x_t)
        if bool((idx == idx[0]).all()):  # one step for the whole batch (as in the samplers): one matrix
            centred = flat - float(self.schedule.sqrt_alpha_bar[idx[0]]) * self.mean.to(flat.device)
            score = -centred @ self.precision_t[int(idx[0])].to(flat.device)  # the precision is symmetric
        else:
            centred = flat - self.schedule.sqrt_alpha_bar[idx].to(flat.device).unsqueeze(1) * self.mean
            prec = self.precision_t[idx.to(self.precision_t.device)].to(flat.device)
            score = -(prec @ centred.unsqueeze(-1)).squeeze(-1)
        return score.reshape(x_t.shape).to(x_t.dtype)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = self.schedule.eps_from_score(self.score(x_t, t), t)
        if self.prediction == "eps":
            return eps
        x0 = self.schedule.predict_x0_from_eps(x_t, t, eps)
        return x0 if self.prediction == "x0" else self.schedule.v_target(x0, eps, t)


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------


def plot_schedules(schedules: dict[str, NoiseSchedule] | Sequence[NoiseSchedule], *, figsize=(12, 3.2)):
    r"""Three panels for each schedule: :math:`\beta_t`, :math:`\bar\alpha_t` (signal kept) and :math:`\log \text{SNR}(t)`.

    ``schedules``: ``{"label": NoiseSchedule}`` or a list (labelled by their names). Returns the Figure.
    """
    import matplotlib.pyplot as plt

    if not isinstance(schedules, dict):
        schedules = {s.name: s for s in schedules}
    fig, axes = plt.subplots(1, 3, figsize=figsize)
    for label, sched in schedules.items():
        steps = torch.arange(1, sched.T + 1)
        axes[0].plot(steps, sched.betas, label=label)
        axes[1].plot(steps, sched.alpha_bar, label=label)
        axes[2].plot(steps, sched.log_snr, label=label)
    for ax, title in zip(axes, [r"$\beta_t$", r"$\bar\alpha_t$ (signal variance kept)", r"$\log \mathrm{SNR}(t)$"]):
        ax.set_title(title)
        ax.set_xlabel("step t")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    return fig
