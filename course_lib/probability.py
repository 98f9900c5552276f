r"""Probability basics for notebook 01: sampling, Monte Carlo, Bayes' rule, change of variables, entropy and KL.

Every generative model in the course is built from the handful of ideas in this module:

=====================================  ===================================================================
idea                                   functions
=====================================  ===================================================================
sampling by inverse CDF                :func:`sample_inverse_cdf`, :func:`exponential_icdf`,
                                       :func:`cauchy_icdf`, :func:`categorical_icdf`, :func:`numerical_icdf`
sampling by rejection                  :func:`rejection_sample`, :func:`rejection_round`
expectations by Monte Carlo            :func:`monte_carlo`, :func:`monte_carlo_error_curve`
Bayes' rule (discrete hypotheses)      :func:`bayes_posterior`
change of variables                    :func:`change_of_variables_log_prob`, :func:`log_abs_det_jacobian`
information: entropy, cross-entropy,   :func:`entropy`, :func:`cross_entropy`, :func:`kl_divergence`,
KL divergence                          :func:`gaussian_kl`, :func:`gaussian_entropy`, :func:`fit_gaussian_kl`
=====================================  ===================================================================

Conventions: discrete distributions are probability vectors along the **last** dimension
(``p: (..., K)``, entries >= 0, summing to 1); results are in nats (natural log) unless ``base=2``
asks for bits. Randomness comes from an optional ``torch.Generator``; the global RNG is never reseeded.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor
from torch.distributions import Distribution

__all__ = [
    "sample_inverse_cdf",
    "exponential_icdf",
    "cauchy_icdf",
    "categorical_icdf",
    "numerical_icdf",
    "RejectionRound",
    "RejectionResult",
    "rejection_round",
    "rejection_sample",
    "MonteCarloEstimate",
    "ErrorCurve",
    "monte_carlo",
    "monte_carlo_error_curve",
    "bayes_posterior",
    "change_of_variables_log_prob",
    "log_abs_det_jacobian",
    "entropy",
    "cross_entropy",
    "kl_divergence",
    "gaussian_kl",
    "gaussian_entropy",
    "GaussianFit",
    "fit_gaussian_kl",
]


# ----------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------
def _check_n(n: int, name: str = "n", minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {n!r}")
    return n


def _check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
            "make one with config.seed_everything(seed) or torch.Generator().manual_seed(seed)"
        )


def _sample_distribution(dist: Distribution, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """``dist.sample(shape)``, made reproducible by ``generator`` without disturbing the global RNG.

    ``torch.distributions`` draws from the global RNG and takes no generator, so a seed is drawn from
    ``generator`` and used inside :func:`torch.random.fork_rng`, which restores the global state after.
    """
    if generator is None:
        return dist.sample(shape)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return dist.sample(shape)


def _uniform(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """``U ~ Uniform(0, 1)`` in float64, strictly inside (0, 1) so that ``F^{-1}(U)`` is finite."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    return u.clamp_min(2.0**-60)


@contextlib.contextmanager
def _single_thread():
    """Run a loop of many tiny tensor operations on one intra-op thread, restoring the setting after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _log_of(value: float | Tensor, name: str) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a single number, got a tensor of shape {tuple(value.shape)}")
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------------
# sampling by inverse CDF
# ----------------------------------------------------------------------------------------------------
def sample_inverse_cdf(
    icdf: Callable[[Tensor], Tensor],
    n: int | tuple[int, ...],
    generator: torch.Generator | None = None,
    *,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""Draw samples by inverting the CDF: :math:`U \sim \mathcal U(0,1)`, :math:`X = F^{-1}(U)`.

    Why it works: :math:`P(X \le x) = P(F^{-1}(U) \le x) = P(U \le F(x)) = F(x)`, so ``X`` has CDF ``F``.

    Args:
        icdf: the quantile function :math:`F^{-1}`, applied elementwise to a float64 tensor of
            uniforms in (0, 1), e.g. ``exponential_icdf(2.0)`` or ``torch.distributions.Normal(0, 1).icdf``.
        n: number of samples, or a shape tuple.
        generator: optional ``torch.Generator`` for reproducible draws.
        dtype: floating dtype of the result (default ``torch.get_default_dtype()``); integer results
            (e.g. from :func:`categorical_icdf`) are returned as they are.

    Returns:
        ``(n,)`` (or ``shape``) tensor of samples.
    """
    shape = (n,) if isinstance(n, int) and not isinstance(n, bool) else tuple(n)
    for size in shape:
        _check_n(size, "n")
    _check_generator(generator)
    if not callable(icdf):
        raise TypeError(f"icdf must be a function u -> F^-1(u), got {type(icdf).__name__}")
    x = icdf(_uniform(shape, generator))
    if not torch.is_tensor(x) or x.shape != torch.Size(shape):
        got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"icdf must map a tensor of shape {shape} elementwise to the same shape, got {got}")
    if x.is_floating_point():
        x = x.to(dtype or torch.get_default_dtype())
    return x


def exponential_icdf(rate: float) -> Callable[[Tensor], Tensor]:
    r"""Quantile function of :math:`\mathrm{Exponential}(\lambda)`: :math:`F^{-1}(u) = -\log(1-u)/\lambda`.

    From :math:`F(x) = 1 - e^{-\lambda x}` for :math:`x \ge 0`. Computed as ``-log1p(-u) / rate``
    (accurate for small ``u``).
    """
    if not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive finite number, got {rate!r} (the mean is 1/rate)")

    def icdf(u: Tensor) -> Tensor:
        return -torch.log1p(-u) / rate

    return icdf


def cauchy_icdf(loc: float = 0.0, scale: float = 1.0) -> Callable[[Tensor], Tensor]:
    r"""Quantile function of :math:`\mathrm{Cauchy}(x_0, \gamma)`.

    :math:`F^{-1}(u) = x_0 + \gamma\tan(\pi(u - \tfrac12))`, from :math:`F(x) = \tfrac12 + \arctan((x - x_0)/\gamma)/\pi`.

    The Cauchy distribution has no mean: a Monte Carlo average of its samples never settles down.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")

    def icdf(u: Tensor) -> Tensor:
        return loc + scale * torch.tan(math.pi * (u - 0.5))

    return icdf


def categorical_icdf(probs: Tensor) -> Callable[[Tensor], Tensor]:
    r"""Inverse CDF of a discrete distribution on :math:`\{0, \dots, K-1\}`.

    :math:`F^{-1}(u) = \min\{k : F(k) > u\}` with :math:`F(k) = \sum_{j \le k} p_j`: cut [0, 1) into
    intervals of lengths :math:`p_0, \dots, p_{K-1}` and return the interval ``u`` falls in.

    Args:
        probs: ``(K,)`` probability vector.

    Returns:
        a function mapping uniforms ``u`` (any shape) to ``int64`` indices of the same shape.
    """
    probs = _as_probs(probs, "probs")
    if probs.dim() != 1:
        raise ValueError(f"probs must be one probability vector of shape (K,), got shape {tuple(probs.shape)}")
    cdf = probs.to(torch.float64).cumsum(0)
    last = probs.shape[0] - 1

    def icdf(u: Tensor) -> Tensor:
        k = torch.searchsorted(cdf.to(u.device), u.to(torch.float64).contiguous(), right=True)
        return k.clamp_max(last)  # u within rounding of 1 lands in the last bin

    return icdf


def numerical_icdf(
    cdf: Callable[[Tensor], Tensor], lo: float, hi: float, *, iterations: int = 60
) -> Callable[[Tensor], Tensor]:
    r"""Invert a continuous, increasing CDF numerically by bisection on ``[lo, hi]``.

    For distributions without a closed-form quantile function. Each of ``iterations`` steps halves the
    bracket, so the error is at most :math:`(hi - lo) / 2^{\text{iterations}}` (60 steps reach float64
    precision). ``lo`` and ``hi`` must bracket the support: :math:`F(lo) \approx 0`, :math:`F(hi) \approx 1`.
    """
    if not hi > lo:
        raise ValueError(f"need lo < hi to bracket the support, got lo={lo!r}, hi={hi!r}")
    _check_n(iterations, "iterations")

    def icdf(u: Tensor) -> Tensor:
        u = u.to(torch.float64)
        left = torch.full_like(u, float(lo))
        right = torch.full_like(u, float(hi))
        for _ in range(iterations):
            mid = 0.5 * (left + right)
            below = cdf(mid) < u
            left = torch.where(below, mid, left)
            right = torch.where(below, right, mid)
        return 0.5 * (left + right)

    return icdf


# ----------------------------------------------------------------------------------------------------
# sampling by rejection
# ----------------------------------------------------------------------------------------------------
class RejectionRound(NamedTuple):
    """One round of rejection sampling, for pictures: ``x: (m, *event)``, ``height: (m,)``, ``accepted: (m,) bool``.

    ``height = u * M q(x)`` with ``u ~ U(0, 1)``: the points ``(x, height)`` are uniform under the
    envelope ``M q``; the accepted ones are those that fall under the target curve ``p~(x)``.
    """

    x: Tensor
    height: Tensor
    accepted: Tensor


class RejectionResult(NamedTuple):
    """``samples: (n, *event)`` drawn exactly from the target, and the fraction of proposals accepted."""

    samples: Tensor
    acceptance_rate: float


def rejection_round(
    log_target: Callable[[Tensor], Tensor],
    proposal: Distribution,
    log_M: float,
    m: int,
    generator: torch.Generator | None = None,
    *,
    check_envelope: bool = True,
    tolerance: float = 1e-4,
) -> RejectionRound:
    r"""Propose ``m`` points from ``proposal`` and accept each with probability :math:`\tilde p(x) / (M q(x))`.

    In log space: draw :math:`x \sim q`, :math:`u \sim \mathcal U(0,1)` and accept when
    :math:`\log u + \log M + \log q(x) < \log \tilde p(x)`. This needs the envelope condition
    :math:`\tilde p(x) \le M q(x)` everywhere; a proposed point that violates it (by more than
    ``tolerance`` in log space) raises a ``ValueError`` saying how large ``log_M`` must at least be.

    Returns:
        :class:`RejectionRound` ``(x: (m, *event), height: (m,), accepted: (m,) bool)``.
    """
    _check_n(m, "m")
    _check_generator(generator)
    log_M = _log_of(log_M, "log_M")
    if not isinstance(proposal, Distribution):
        raise TypeError(
            f"proposal must be a torch.distributions.Distribution (it is sampled and its log_prob is used), "
            f"got {type(proposal).__name__}; e.g. torch.distributions.Uniform(0., 1.)"
        )
    if proposal.batch_shape != torch.Size():
        raise ValueError(
            f"proposal has batch_shape {tuple(proposal.batch_shape)}; rejection sampling needs a single "
            "distribution. Wrap a product of independent coordinates in torch.distributions.Independent(..., 1)"
        )
    x = _sample_distribution(proposal, (m,), generator)
    log_q = proposal.log_prob(x).to(torch.float64)
    log_p = log_target(x)
    if not torch.is_tensor(log_p) or log_p.shape != (m,):
        got = tuple(log_p.shape) if torch.is_tensor(log_p) else type(log_p).__name__
        raise ValueError(f"log_target must map x of shape {tuple(x.shape)} to log-densities of shape ({m},), got {got}")
    log_p = log_p.to(torch.float64)
    if torch.isnan(log_p).any():
        raise ValueError("log_target returned NaN at some proposed points; return -inf outside the support instead")
    if torch.isinf(log_p).any() and (log_p == math.inf).any():
        raise ValueError("log_target returned +inf: the target density must be bounded for rejection sampling")
    gap = log_p - log_q  # log p~(x) - log q(x): must stay <= log M
    if check_envelope:
        worst = gap.max()
        if worst > log_M + tolerance:
            at = x[int(gap.argmax())]
            raise ValueError(
                f"the envelope is violated: at x = {at.tolist()} the target exceeds M q(x) "
                f"(log p~(x) - log q(x) = {float(worst):.4f} > log_M = {log_M:.4f}). "
                f"Increase log_M to at least {float(worst):.4f} (better: the maximum of log p~ - log q over "
                "the whole support), or use a proposal with heavier tails"
            )
    log_u = torch.log(_uniform((m,), generator)).to(log_q.device)
    log_height = log_u + log_M + log_q
    accepted = log_height < log_p
    return RejectionRound(x=x, height=log_height.exp(), accepted=accepted)


def rejection_sample(
    log_target: Callable[[Tensor], Tensor],
    proposal: Distribution,
    log_M: float,
    n: int,
    generator: torch.Generator | None = None,
    *,
    max_rounds: int = 50,
    max_batch: int = 1_000_000,
    check_envelope: bool = True,
) -> RejectionResult:
    r"""Draw ``n`` exact samples from a target density known up to a constant, by rejection.

    Given a (possibly unnormalised) target :math:`\tilde p = Z p`, a proposal :math:`q` we can sample
    and evaluate, and a constant :math:`M` with :math:`\tilde p(x) \le M q(x)` for all :math:`x`:

    1. draw :math:`x \sim q` and :math:`u \sim \mathcal U(0, 1)`;
    2. keep :math:`x` if :math:`u\, M q(x) < \tilde p(x)`, i.e. with probability :math:`\tilde p(x) / (M q(x))`.

    The kept points are distributed exactly as :math:`p`, and the acceptance rate is
    :math:`P(\text{accept}) = \int q(x)\, \tilde p(x) / (M q(x))\, dx = Z / M` (``1/M`` for a normalised
    target), so a tight envelope (small ``M``) wastes fewer proposals.

    Args:
        log_target: ``x: (m, *event) -> (m,)`` log of :math:`\tilde p` (``-inf`` outside the support).
        proposal: a ``torch.distributions.Distribution`` with ``batch_shape == ()``.
        log_M: :math:`\log M`.
        n: number of samples wanted.
        generator: optional ``torch.Generator`` (the proposal's draws are made reproducible too).
        max_rounds: give up after this many rounds of proposals.
        max_batch: most proposals drawn in one round.
        check_envelope: raise if a proposed point violates the envelope (recommended).

    Returns:
        :class:`RejectionResult` ``(samples: (n, *event), acceptance_rate: float)``.

    Raises:
        ValueError: the envelope is violated at a proposed point (the message names the ``log_M`` needed).
        RuntimeError: fewer than ``n`` points were accepted within ``max_rounds`` rounds.
    """
    _check_n(n, "n")
    _check_n(max_rounds, "max_rounds")
    _check_n(max_batch, "max_batch")
    kept: list[Tensor] = []
    accepted_total = proposed_total = 0
    batch = min(n, max_batch)
    for _ in range(max_rounds):
        result = rejection_round(log_target, proposal, log_M, batch, generator, check_envelope=check_envelope)
        kept.append(result.x[result.accepted])
        accepted_total += int(result.accepted.sum())
        proposed_total += batch
        if accepted_total >= n:
            samples = torch.cat(kept)[:n]
            return RejectionResult(samples=samples, acceptance_rate=accepted_total / proposed_total)
        # Propose enough next time to finish, judging by the acceptance rate so far (with 20% slack).
        rate = max(accepted_total / proposed_total, 1e-3)
        batch = min(max_batch, max(64, math.ceil(1.2 * (n - accepted_total) / rate)))
    rate = accepted_total / proposed_total
    raise RuntimeError(
        f"rejection sampling accepted only {accepted_total} of the {n} samples wanted after {max_rounds} rounds "
        f"({proposed_total} proposals, acceptance rate {rate:.2e}). The rate is Z/M: log_M = {float(log_M):.3f} "
        "is probably far larger than needed, or the proposal puts little mass where the target lives. "
        "Tighten log_M, move the proposal towards the target, or raise max_rounds"
    )


# ----------------------------------------------------------------------------------------------------
# Monte Carlo
# ----------------------------------------------------------------------------------------------------
class MonteCarloEstimate(NamedTuple):
    r"""A Monte Carlo estimate :math:`\hat\mu_n` and its standard error :math:`\hat\sigma / \sqrt n`."""

    estimate: Tensor
    standard_error: Tensor


class ErrorCurve(NamedTuple):
    r"""How the Monte Carlo error shrinks with the sample size (see :func:`monte_carlo_error_curve`).

    ``ns: (L,)`` sample sizes; ``rmse: (L,)`` root-mean-square error over the repeats;
    ``mean_standard_error: (L,)`` average estimated standard error; ``theory: (L,)`` :math:`\sigma/\sqrt n`;
    ``sigma``: the standard deviation of ``f(X)`` (estimated from all the draws).
    """

    ns: Tensor
    rmse: Tensor
    mean_standard_error: Tensor
    theory: Tensor
    sigma: float


Sampler = Distribution | Callable[[int], Tensor]


def _draw(sampler: Sampler, n: int, generator: torch.Generator | None) -> Tensor:
    if isinstance(sampler, Distribution):
        return _sample_distribution(sampler, (n,), generator)
    if callable(sampler):
        if generator is not None:
            raise ValueError(
                "a generator can only be used with a torch.distributions sampler; a sampler function "
                "should draw from its own generator (e.g. lambda n: torch.randn(n, generator=g))"
            )
        return sampler(n)
    raise TypeError(
        f"sampler must be a torch.distributions.Distribution or a function n -> samples, got {type(sampler).__name__}"
    )


def _values(f: Callable[[Tensor], Tensor], x: Tensor, n: int) -> Tensor:
    values = f(x)
    if not torch.is_tensor(values) or values.dim() == 0 or values.shape[0] != n:
        got = tuple(values.shape) if torch.is_tensor(values) else type(values).__name__
        raise ValueError(f"f must map the {n} samples to values of shape ({n}, ...), one per sample; got {got}")
    values = values.to(torch.float64)
    if not torch.isfinite(values).all():
        raise ValueError("f returned NaN or inf values; Monte Carlo needs E[f(X)] to be finite")
    return values


def monte_carlo(
    f: Callable[[Tensor], Tensor], sampler: Sampler, n: int, generator: torch.Generator | None = None
) -> MonteCarloEstimate:
    r"""Estimate :math:`\mathbb E_{X \sim p}[f(X)]` by an average over ``n`` samples, with its standard error.

    .. math::
        \hat\mu_n = \frac1n \sum_{i=1}^n f(x_i), \qquad
        \mathrm{SE} = \frac{\hat\sigma}{\sqrt n}, \qquad
        \hat\sigma^2 = \frac{1}{n-1}\sum_i \bigl(f(x_i) - \hat\mu_n\bigr)^2 .

    By the central limit theorem :math:`\hat\mu_n \approx \mathcal N(\mu, \sigma^2/n)`, so
    :math:`\hat\mu_n \pm 1.96\,\mathrm{SE}` covers the truth about 95% of the time. The error falls as
    :math:`1/\sqrt n` whatever the dimension of :math:`X`; only :math:`\sigma` depends on the problem.

    Args:
        f: ``x: (n, ...) -> (n,)`` (or ``(n, d)`` for several expectations at once).
        sampler: a ``torch.distributions.Distribution``, or a function ``n -> (n, ...)`` samples.
        n: number of samples (>= 2, to estimate the spread).
        generator: optional ``torch.Generator`` (only with a Distribution sampler).

    Returns:
        :class:`MonteCarloEstimate` of float64 tensors of shape ``f(x).shape[1:]`` (0-d for scalar ``f``).
    """
    _check_n(n, "n", minimum=2)
    _check_generator(generator)
    values = _values(f, _draw(sampler, n, generator), n)
    return MonteCarloEstimate(values.mean(0), values.std(0, correction=1) / math.sqrt(n))


def monte_carlo_error_curve(
    f: Callable[[Tensor], Tensor],
    sampler: Sampler,
    ns: list[int] | Tensor,
    *,
    true_value: float,
    repeats: int = 20,
    generator: torch.Generator | None = None,
) -> ErrorCurve:
    r"""Measure the Monte Carlo error for each sample size in ``ns``, to plot against :math:`\sigma/\sqrt n`.

    For each ``n``, ``repeats`` independent estimates :math:`\hat\mu_n^{(r)}` are made and
    :math:`\mathrm{RMSE}(n) = \sqrt{\tfrac1R \sum_r (\hat\mu_n^{(r)} - \mu)^2}` is compared with the
    theory :math:`\sigma / \sqrt n`: on a log-log plot both are lines of slope :math:`-1/2`.

    Args:
        f: scalar function ``x: (m, ...) -> (m,)``.
        sampler: as in :func:`monte_carlo`.
        ns: increasing sample sizes, e.g. ``[10, 100, 1000]``.
        true_value: the exact expectation :math:`\mu`.
        repeats: independent estimates per sample size.

    Returns:
        :class:`ErrorCurve` ``(ns, rmse, mean_standard_error, theory, sigma)``.
    """
    ns_list = [int(v) for v in (ns.tolist() if torch.is_tensor(ns) else ns)]
    if not ns_list:
        raise ValueError("ns must list at least one sample size")
    for v in ns_list:
        _check_n(v, "each n in ns", minimum=2)
    _check_n(repeats, "repeats", minimum=2)
    _check_generator(generator)
    rmse, mean_se, all_values = [], [], []
    for n in ns_list:
        values = _values(f, _draw(sampler, n * repeats, generator), n * repeats)
        if values.dim() != 1:
            raise ValueError(f"f must be scalar-valued for an error curve (shape (m,)), got {tuple(values.shape)}")
        values = values.reshape(repeats, n)
        estimates = values.mean(1)
        rmse.append(float(((estimates - true_value) ** 2).mean().sqrt()))
        mean_se.append(float((values.std(1, correction=1) / math.sqrt(n)).mean()))
        all_values.append(values.reshape(-1))
    sigma = float(torch.cat(all_values).std(correction=1))
    ns_tensor = torch.tensor(ns_list, dtype=torch.float64)
    return ErrorCurve(
        ns=ns_tensor,
        rmse=torch.tensor(rmse, dtype=torch.float64),
        mean_standard_error=torch.tensor(mean_se, dtype=torch.float64),
        theory=sigma / ns_tensor.sqrt(),
        sigma=sigma,
    )


# ----------------------------------------------------------------------------------------------------
# Bayes' rule
# ----------------------------------------------------------------------------------------------------
def bayes_posterior(prior: Tensor, likelihood: Tensor, *, log_likelihood: bool = False) -> Tensor:
    r"""Posterior over ``K`` discrete hypotheses by Bayes' rule.

    .. math::
        p(h_k \mid D) = \frac{p(D \mid h_k)\, p(h_k)}{\sum_j p(D \mid h_j)\, p(h_j)},
        \qquad p(D \mid h_k) = \prod_{i=1}^N p(d_i \mid h_k) \ \text{(independent observations)}.

    Computed in log space (a product of many small likelihoods would underflow), normalised with
    ``logsumexp``.

    Args:
        prior: ``(K,)`` probability vector :math:`p(h_k)`.
        likelihood: ``(K,)`` values :math:`p(D \mid h_k)` for one observation, or ``(K, N)`` values
            :math:`p(d_i \mid h_k)` for ``N`` independent observations. Likelihoods need not sum to 1
            over ``k`` (they are functions of the hypothesis, not distributions over it) and may be
            densities larger than 1.
        log_likelihood: set ``True`` when ``likelihood`` holds log-likelihoods.

    Returns:
        ``(K,)`` posterior probabilities (same dtype as ``prior``).
    """
    prior = _as_probs(prior, "prior")
    if prior.dim() != 1:
        raise ValueError(f"prior must be one probability vector of shape (K,), got shape {tuple(prior.shape)}")
    likelihood = torch.as_tensor(likelihood)
    if not likelihood.is_floating_point():
        likelihood = likelihood.to(prior.dtype)
    K = prior.shape[0]
    if likelihood.dim() not in (1, 2) or likelihood.shape[0] != K:
        raise ValueError(
            f"likelihood must have shape (K,) or (K, N) with K = {K} hypotheses (one row per hypothesis), "
            f"got {tuple(likelihood.shape)}; if your array is (N, K), pass likelihood.T"
        )
    if torch.isnan(likelihood).any():
        raise ValueError("likelihood contains NaN")
    if log_likelihood:
        log_lik = likelihood
        if (log_lik == math.inf).any():
            raise ValueError("log-likelihoods must not be +inf")
    else:
        if (likelihood < 0).any():
            raise ValueError(
                "likelihoods must be >= 0; if you passed log-likelihoods, "
                "call bayes_posterior(..., log_likelihood=True)"
            )
        log_lik = torch.log(likelihood)
    if log_lik.dim() == 2:
        log_lik = log_lik.sum(1)
    log_joint = torch.log(prior).to(log_lik.dtype) + log_lik.to(device=prior.device)
    log_evidence = torch.logsumexp(log_joint, 0)
    if not torch.isfinite(log_evidence):
        raise ValueError(
            "the data have probability 0 under every hypothesis with non-zero prior, so the posterior is "
            "undefined; check the likelihood table (or give some prior mass to a hypothesis that explains the data)"
        )
    return torch.exp(log_joint - log_evidence).to(prior.dtype)


# ----------------------------------------------------------------------------------------------------
# change of variables
# ----------------------------------------------------------------------------------------------------
def change_of_variables_log_prob(
    base_log_prob: Callable[[Tensor], Tensor],
    inverse_fn: Callable[[Tensor], Tensor],
    log_abs_det_jacobian_of_inverse: Callable[[Tensor], Tensor],
) -> Callable[[Tensor], Tensor]:
    r"""The log-density of :math:`Y = f(X)` for an invertible, differentiable ``f``.

    .. math::
        \log p_Y(y) = \log p_X\bigl(f^{-1}(y)\bigr) + \log\bigl|\det J_{f^{-1}}(y)\bigr| ,

    where :math:`J_{f^{-1}}(y) = \partial f^{-1}(y) / \partial y`. In 1-D the factor is
    :math:`|dx/dy|`: probability mass :math:`p_X(x)\,|dx|` is conserved while ``f`` stretches or
    squeezes the line, so densities change by the local stretch. (Equivalently
    :math:`-\log|\det J_f(x)|` at :math:`x = f^{-1}(y)`.) Normalising flows (later notebooks) stack
    many such ``f`` and train them by maximising exactly this log-density.

    Args:
        base_log_prob: ``x -> log p_X(x)``; shape ``(B,)`` for ``x: (B,)`` in 1-D or ``x: (B, D)``.
        inverse_fn: :math:`f^{-1}`, ``y -> x`` with the same shape as ``y``.
        log_abs_det_jacobian_of_inverse: ``y -> log|det J_{f^{-1}}(y)|`` of shape ``(B,)``
            (in 1-D, elementwise ``log|d f^{-1}/dy|``).

    Returns:
        a function ``y -> log p_Y(y)`` of shape ``(B,)``.

    Example: ``Y = exp(X)``, ``X ~ N(0, 1)`` (a log-normal): ``inverse_fn = torch.log``,
    ``log|dx/dy| = -log y``.
    """
    for name, fn in (
        ("base_log_prob", base_log_prob),
        ("inverse_fn", inverse_fn),
        ("log_abs_det_jacobian_of_inverse", log_abs_det_jacobian_of_inverse),
    ):
        if not callable(fn):
            raise TypeError(f"{name} must be a function, got {type(fn).__name__}")

    def log_prob(y: Tensor) -> Tensor:
        log_px = base_log_prob(inverse_fn(y))
        log_det = log_abs_det_jacobian_of_inverse(y)
        if log_px.shape != log_det.shape:
            raise ValueError(
                f"base_log_prob gave shape {tuple(log_px.shape)} but the log|det J| gave {tuple(log_det.shape)}; "
                "for D-dimensional y: (B, D), both must be (B,) (sum elementwise log-derivatives over the last dim)"
            )
        return log_px + log_det

    return log_prob


def log_abs_det_jacobian(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r""":math:`\log|\det J_f(x)|` for each row of ``x: (B, D)``, computed by automatic differentiation.

    ``fn`` maps ``(B, D) -> (B, D)`` row by row (row ``b`` of the output depends only on row ``b`` of
    the input). The full ``D x D`` Jacobian of each row is formed, so this is meant for small ``D``
    (checking formulas, 2-D pictures); flows are designed so that the determinant is cheap instead.

    Returns:
        ``(B,)`` tensor.
    """
    if x.dim() != 2:
        raise ValueError(f"x must have shape (B, D), got {tuple(x.shape)}; for 1-D data use x[:, None]")
    B, D = x.shape

    def summed(inp: Tensor) -> Tensor:
        out = fn(inp)
        if out.shape != (B, D):
            raise ValueError(f"fn must map (B, D) = {(B, D)} to the same shape, got {tuple(out.shape)}")
        return out.sum(0)  # (D,): row b of the output only depends on row b of the input

    jac = torch.autograd.functional.jacobian(summed, x.detach(), vectorize=True)  # (D, B, D)
    jac = jac.permute(1, 0, 2)  # (B, D_out, D_in)
    return torch.linalg.slogdet(jac).logabsdet


# ----------------------------------------------------------------------------------------------------
# entropy, cross-entropy, KL
# ----------------------------------------------------------------------------------------------------
def _as_probs(p, name: str) -> Tensor:
    """Validate a probability vector (or a batch of them along the last dim) and return it as a float tensor."""
    p = torch.as_tensor(p)
    if not p.is_floating_point():
        p = p.to(torch.get_default_dtype())
    if p.dim() == 0 or p.shape[-1] == 0:
        raise ValueError(
            f"{name} must be a probability vector of shape (..., K) with K >= 1, got shape {tuple(p.shape)}"
        )
    if torch.isnan(p).any() or torch.isinf(p).any():
        raise ValueError(f"{name} contains NaN or inf")
    if (p < 0).any():
        raise ValueError(
            f"{name} has negative entries (min {float(p.min()):.3g}); probabilities must be >= 0. "
            "Did you pass logits or log-probabilities? Use torch.softmax(logits, -1) or log_p.exp()"
        )
    sums = p.sum(-1)
    atol = 1e-6 if p.dtype == torch.float64 else 1e-4
    if ((sums - 1).abs() > atol).any():
        raise ValueError(
            f"{name} must sum to 1 along the last dimension (got sums between {float(sums.min()):.6g} and "
            f"{float(sums.max()):.6g}); normalise it with {name} / {name}.sum(-1, keepdim=True)"
        )
    return p


def _pair(p, q) -> tuple[Tensor, Tensor]:
    p, q = _as_probs(p, "p"), _as_probs(q, "q")
    if p.shape != q.shape:
        raise ValueError(
            f"p has shape {tuple(p.shape)} and q has shape {tuple(q.shape)}; both must be probability vectors "
            "over the same K outcomes (last dimension) with the same batch shape"
        )
    dtype = torch.promote_types(p.dtype, q.dtype)
    return p.to(dtype), q.to(dtype)


def _in_base(value: Tensor, base: float | None) -> Tensor:
    if base is None:
        return value
    if not (base > 0 and base != 1):
        raise ValueError(f"base must be positive and not 1 (2 for bits, None or e for nats), got {base!r}")
    return value / math.log(base)


def entropy(p: Tensor, *, base: float | None = None) -> Tensor:
    r"""Shannon entropy :math:`H(p) = -\sum_k p_k \log p_k` of probability vectors along the last dim.

    Uses :math:`0 \log 0 = 0` (``torch.xlogy``). Ranges from 0 (a certain outcome) to
    :math:`\log K` (uniform). ``p: (..., K) -> (...)``, in nats, or bits with ``base=2``.
    """
    p = _as_probs(p, "p")
    return _in_base(-torch.xlogy(p, p).sum(-1), base)


def cross_entropy(p: Tensor, q: Tensor, *, base: float | None = None) -> Tensor:
    r"""Cross-entropy :math:`H(p, q) = -\sum_k p_k \log q_k = H(p) + \mathrm{KL}(p \,\|\, q)`.

    The average code length (or negative log-likelihood) when data come from ``p`` but are scored by
    the model ``q``: the classification loss and the maximum-likelihood objective. Infinite when
    ``q_k = 0`` for some ``p_k > 0``; terms with ``p_k = 0`` contribute 0. ``p, q: (..., K) -> (...)``.
    """
    p, q = _pair(p, q)
    return _in_base(-torch.xlogy(p, q).sum(-1), base)


def kl_divergence(p: Tensor, q: Tensor, *, base: float | None = None) -> Tensor:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(p \,\|\, q) = \sum_k p_k \log(p_k / q_k) \ge 0`.

    Zero only when ``p == q``; **not symmetric** (:math:`\mathrm{KL}(p\|q) \ne \mathrm{KL}(q\|p)`
    in general), so not a distance. Terms with ``p_k = 0`` contribute 0; the divergence is ``inf``
    when ``q_k = 0`` for some ``p_k > 0``. ``p, q: (..., K) -> (...)``.
    """
    p, q = _pair(p, q)
    positive = p > 0
    safe_p = torch.where(positive, p, torch.ones_like(p))
    terms = torch.where(positive, p * (torch.log(safe_p) - torch.log(q)), torch.zeros_like(p))
    return _in_base(terms.sum(-1), base)


def _gaussian_params(*tensors) -> list[Tensor]:
    tensors = [torch.as_tensor(t) for t in tensors]
    dtype = torch.get_default_dtype()
    for t in tensors:
        if t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    tensors = [t.to(dtype) for t in tensors]
    try:
        return list(torch.broadcast_tensors(*tensors))
    except RuntimeError as err:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise ValueError(f"the Gaussian parameters must have broadcastable shapes, got {shapes}") from err


def _check_variances(**variances: Tensor) -> None:
    for name, var in variances.items():
        if torch.isnan(var).any() or not (var > 0).all():
            raise ValueError(
                f"{name} must hold positive variances (sigma**2), got min {float(var.min()):.3g}. "
                "If you have log-variances pass logvar.exp(); if you have standard deviations pass std**2"
            )


def _sum_event(value: Tensor, event_dims: int) -> Tensor:
    if isinstance(event_dims, bool) or not isinstance(event_dims, int) or event_dims < 0:
        raise ValueError(f"event_dims must be an int >= 0, got {event_dims!r}")
    if event_dims > value.dim():
        raise ValueError(
            f"event_dims={event_dims} but the parameters have only {value.dim()} dimension(s); "
            "for univariate Gaussians given as plain numbers use event_dims=0"
        )
    if event_dims == 0:
        return value
    return value.sum(dim=tuple(range(-event_dims, 0)))


def gaussian_kl(mu_p, var_p, mu_q, var_q, *, event_dims: int = 1) -> Tensor:
    r"""Closed-form KL divergence between diagonal Gaussians, :math:`\mathrm{KL}(p \,\|\, q)`.

    With :math:`p = \mathcal N(\mu_p, \mathrm{diag}\,\sigma_p^2)` and :math:`q = \mathcal N(\mu_q, \mathrm{diag}\,\sigma_q^2)`:

    .. math::
        \mathrm{KL} = \frac12 \sum_{d} \left[ \log\frac{\sigma_{q,d}^2}{\sigma_{p,d}^2}
        + \frac{\sigma_{p,d}^2 + (\mu_{p,d} - \mu_{q,d})^2}{\sigma_{q,d}^2} - 1 \right].

    With :math:`q = \mathcal N(0, I)` this is the KL term of the VAE's ELBO (notebook 04).

    Args:
        mu_p, var_p, mu_q, var_q: means and **variances** (not standard deviations), broadcastable,
            e.g. ``(B, D)`` each.
        event_dims: how many trailing dims are the Gaussian's dimensions and are summed over
            (1: ``(B, D) -> (B,)``; 0: elementwise, for univariate Gaussians).

    Returns:
        the KL in nats, of the broadcast shape without the last ``event_dims`` dims.
    """
    mu_p, var_p, mu_q, var_q = _gaussian_params(mu_p, var_p, mu_q, var_q)
    _check_variances(var_p=var_p, var_q=var_q)
    terms = 0.5 * (torch.log(var_q) - torch.log(var_p) + (var_p + (mu_p - mu_q) ** 2) / var_q - 1.0)
    return _sum_event(terms, event_dims)


def gaussian_entropy(var, *, event_dims: int = 1) -> Tensor:
    r"""Differential entropy of a diagonal Gaussian: :math:`h = \frac12 \sum_d \log(2\pi e\, \sigma_d^2)`.

    Unlike the entropy of a discrete distribution it can be **negative** (when :math:`\sigma^2 < 1/(2\pi e)`).
    ``var``: variances, ``(..., D)`` with ``event_dims=1`` or any shape with ``event_dims=0``.
    """
    (var,) = _gaussian_params(var)
    _check_variances(var=var)
    return _sum_event(0.5 * torch.log(2 * math.pi * math.e * var), event_dims)


class GaussianFit(NamedTuple):
    """Result of :func:`fit_gaussian_kl`: the fitted mean and standard deviation, and the final KL (nats)."""

    mu: float
    sigma: float
    kl: float


def fit_gaussian_kl(
    log_target: Callable[[Tensor], Tensor],
    grid: Tensor,
    *,
    direction: str = "forward",
    mu0: float = 0.0,
    sigma0: float = 1.0,
    steps: int = 400,
    lr: float = 0.1,
) -> GaussianFit:
    r"""Fit one Gaussian :math:`q = \mathcal N(\mu, \sigma^2)` to a 1-D target :math:`p` by minimising a KL.

    * ``direction="forward"``: :math:`\min_q \mathrm{KL}(p \,\|\, q) = \min_q -\mathbb E_p[\log q] + \text{const}`,
      the maximum-likelihood direction (notebook 02). Its optimum matches the mean and variance of
      :math:`p`: **mode-covering** (a broad ``q`` over all of ``p``'s modes).
    * ``direction="reverse"``: :math:`\min_q \mathrm{KL}(q \,\|\, p) = \min_q \mathbb E_q[\log q - \log p]`,
      the variational-inference direction (VAEs, notebook 04). ``q`` is punished for mass where
      :math:`p` is small, so it is **mode-seeking**: it locks onto one mode (which one depends on
      ``mu0``).

    Both are computed on ``grid`` by discretising the densities into probability vectors
    (:math:`P_i \propto p(x_i)`, :math:`Q_i \propto q(x_i)`; the KL of these approaches the continuous KL
    as the grid gets finer) and minimised over :math:`(\mu, \log\sigma)` with Adam.

    Args:
        log_target: ``x: (G,) -> (G,)`` log-density of ``p`` (unnormalised is fine).
        grid: ``(G,)`` evenly spaced points covering both densities' mass.
        direction: ``"forward"`` or ``"reverse"``.
        mu0, sigma0: starting point.

    Returns:
        :class:`GaussianFit` ``(mu, sigma, kl)``.
    """
    if direction not in ("forward", "reverse"):
        raise ValueError(f"direction must be 'forward' (KL(p||q)) or 'reverse' (KL(q||p)), got {direction!r}")
    if not sigma0 > 0:
        raise ValueError(f"sigma0 must be positive, got {sigma0!r}")
    _check_n(steps, "steps")
    grid = torch.as_tensor(grid, dtype=torch.float64)
    if grid.dim() != 1 or grid.numel() < 10:
        raise ValueError(f"grid must be a 1-D tensor of at least 10 points, got shape {tuple(grid.shape)}")
    log_p = log_target(grid).to(torch.float64).detach()
    if torch.isnan(log_p).any():
        raise ValueError("log_target returned NaN on the grid")
    log_P = log_p - torch.logsumexp(log_p, 0)
    P = log_P.exp()
    params = torch.tensor([float(mu0), math.log(sigma0)], dtype=torch.float64)  # (mu, log sigma)

    def objective(theta: Tensor) -> Tensor:
        mu, log_sigma = theta[0], theta[1]
        log_q = -0.5 * ((grid - mu) / log_sigma.exp()) ** 2 - log_sigma
        log_Q = log_q - torch.logsumexp(log_q, 0)
        if direction == "forward":
            return (P * (log_P.clamp_min(-1e4) - log_Q)).sum()
        return (log_Q.exp() * (log_Q - log_P)).sum()

    # Adam, written out (two parameters do not need torch.optim), with the step size decayed
    # linearly to 0 so that the last steps settle exactly on the optimum. Run on one thread: the
    # tensors are tiny, and on a busy 2-core machine thread synchronisation made it 10-50x slower.
    m = torch.zeros_like(params)
    v = torch.zeros_like(params)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    with _single_thread():
        for t in range(1, steps + 1):
            theta = params.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(theta), theta)
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            params = params - lr * (1 - (t - 1) / steps) * m_hat / (v_hat.sqrt() + eps)
        with torch.no_grad():
            kl = float(objective(params))
    mu, sigma = float(params[0]), float(params[1].exp())
    if not (math.isfinite(mu) and math.isfinite(sigma) and math.isfinite(kl)):
        raise RuntimeError(
            "the KL fit diverged (non-finite mu, sigma or KL); use a wider grid that covers the target's "
            "mass, a start (mu0, sigma0) inside it, or a smaller lr"
        )
    return GaussianFit(mu=mu, sigma=sigma, kl=kl)
