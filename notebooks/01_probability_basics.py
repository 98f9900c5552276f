# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Probability basics for generative models
#
# A generative model *is* a probability distribution: a recipe to **sample** new data $x \sim p_\theta$
# and, for many models, a way to **evaluate** how probable a data point is, $p_\theta(x)$. Everything
# in this course is built from a few ideas of probability, and this notebook puts each of them in
# your hands, in code, with every formula checked by a number.
#
# **After this notebook you will be able to**
# 1. tell a pmf, a pdf and a CDF apart, and explain why a density value can be larger than 1;
# 2. sample from a distribution by **inverting its CDF** and by **rejection**, and say when each works;
# 3. estimate an expectation by **Monte Carlo** and give its **standard error**, which shrinks as $1/\sqrt n$;
# 4. update beliefs with **Bayes' rule**, including from many independent observations;
# 5. transform a density with the **change-of-variables** formula (and say why the Jacobian is needed);
# 6. compute **entropy, cross-entropy and KL divergence**, and explain why fitting with KL$(p\|q)$ and
#    KL$(q\|p)$ gives different answers.
#
# Prerequisites: Python, a little PyTorch (tensors), first-year calculus. Every function used here
# lives in `course_lib.probability` and is tested against `torch.distributions` and `scipy.stats`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import stats
from torch import distributions as D

from course_lib import config, device
from course_lib import probability as P
from course_lib import viz

clock = config.NotebookClock("01 probability basics", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %% [markdown]
# Everything in this notebook is small enough for the CPU, so we keep all tensors there. The sample
# sizes below go through `config.budget`: large in full mode, tiny in quick mode (the test suite's).

# %%
N_SAMPLES = config.budget(full=100_000, quick=5_000)  # samples for histograms and checks
MC_MAX_N = config.budget(full=100_000, quick=2_000)  # largest Monte Carlo sample size
MC_REPEATS = config.budget(full=50, quick=10)  # independent repeats per sample size
FIT_STEPS = config.budget(full=400, quick=150)  # optimiser steps when fitting a Gaussian by KL
print(f"N_SAMPLES={N_SAMPLES}, MC_MAX_N={MC_MAX_N}, MC_REPEATS={MC_REPEATS}, FIT_STEPS={FIT_STEPS}")

# %% [markdown]
# ## 1. Random variables and distributions
#
# A **random variable** $X$ is a quantity whose value is decided by chance. Its **distribution**
# says how likely each value is.
#
# * **Discrete** $X$ (a die, a token, a digit class, a pixel level) has a *probability mass function*
#   (pmf) $p(x) = P(X = x)$, with $0 \le p(x) \le 1$ and $\sum_x p(x) = 1$.
# * **Continuous** $X$ (a height, a pixel intensity in $[0, 1]$, a latent code) has a *probability density
#   function* (pdf) $p(x) \ge 0$ with $\int p(x)\,dx = 1$. A density is **not** a probability:
#   probabilities are areas, $P(a \le X \le b) = \int_a^b p(x)\,dx$, and $P(X = x) = 0$ for every single $x$.
# * Both have a **cumulative distribution function** (CDF) $F(x) = P(X \le x)$, which rises from 0 to 1.
#   For a continuous $X$, $F' = p$.
#
# In PyTorch, distributions live in `torch.distributions` (imported as `D`). Each has `sample`,
# `log_prob` (the log of the pmf or pdf: we almost always work with logs, which do not underflow) and,
# for many, `cdf` and `icdf`.

# %%
die = D.Categorical(probs=torch.tensor([0.1, 0.1, 0.1, 0.1, 0.2, 0.4]))  # a loaded die, faces 1..6
faces = torch.arange(6)
pmf = die.log_prob(faces).exp()
cdf_die = pmf.cumsum(0)

normal = D.Normal(0.0, 1.0)
narrow = D.Normal(0.0, 0.2)
x = torch.linspace(-4, 4, 801)

fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
axes[0].bar(faces + 1, pmf, color="C0")
axes[0].set(title="pmf of a loaded die", xlabel="face", ylabel="P(X = x)")
axes[1].step(np.r_[0, faces + 1, 7], np.r_[0, cdf_die, 1], where="post", color="C0")
axes[1].set(title="its CDF: a staircase", xlabel="x", ylabel="F(x) = P(X ≤ x)")
axes[2].plot(x, normal.log_prob(x).exp(), label="N(0, 1)")
axes[2].plot(x, narrow.log_prob(x).exp(), label="N(0, 0.2²)")
axes[2].axhline(1.0, color="gray", ls=":", lw=1)
axes[2].set(title="pdfs: a density can exceed 1", xlabel="x", ylabel="p(x)")
axes[2].legend(frameon=False)
axes[3].plot(x, normal.cdf(x), label="N(0, 1)")
axes[3].plot(x, narrow.cdf(x), label="N(0, 0.2²)")
axes[3].set(title="their CDFs", xlabel="x", ylabel="F(x)")
axes[3].legend(frameon=False)
fig.tight_layout()
plt.show()

# %% [markdown]
# Let us check the definitions numerically: the pmf sums to 1; the pdf integrates to 1 (trapezoidal
# rule on the grid); the area under the pdf between $a$ and $b$ equals $F(b) - F(a)$; and PyTorch's
# Normal CDF agrees with SciPy's.

# %%
dx = float(x[1] - x[0])
area_narrow = torch.trapezoid(narrow.log_prob(x).exp(), dx=dx)
a, b = -0.5, 1.0
x_ab = torch.linspace(a, b, 1001)
area_ab = torch.trapezoid(normal.log_prob(x_ab).exp(), x_ab)
print(f"sum of the die's pmf          = {pmf.sum():.6f}")
print(f"integral of the N(0, 0.2²) pdf = {area_narrow:.6f}   (its peak value is {narrow.log_prob(torch.tensor(0.0)).exp():.3f} > 1)")
print(f"P({a} ≤ X ≤ {b}) by area        = {area_ab:.6f}")
print(f"F({b}) - F({a})                  = {normal.cdf(torch.tensor(b)) - normal.cdf(torch.tensor(a)):.6f}")
print(f"scipy.stats.norm                = {stats.norm.cdf(b) - stats.norm.cdf(a):.6f}")
assert abs(float(pmf.sum()) - 1) < 1e-6
assert abs(float(area_narrow) - 1) < 1e-4
assert abs(float(area_ab) - (stats.norm.cdf(b) - stats.norm.cdf(a))) < 1e-4

# %% [markdown]
# ## 2. Sampling by inverting the CDF
#
# Computers give us uniform random numbers $U \sim \mathcal U(0, 1)$. To turn them into samples of a
# distribution with CDF $F$, apply the **inverse CDF** (the *quantile function*):
#
# $$X = F^{-1}(U) \quad\Longrightarrow\quad P(X \le x) = P\bigl(F^{-1}(U) \le x\bigr) = P\bigl(U \le F(x)\bigr) = F(x).$$
#
# So $X$ has exactly the CDF $F$. Example: the **exponential** distribution with rate $\lambda$ has
# $F(x) = 1 - e^{-\lambda x}$; solving $u = F(x)$ gives $F^{-1}(u) = -\log(1 - u)/\lambda$.
# `P.exponential_icdf(rate)` is that function and `P.sample_inverse_cdf(icdf, n, generator)` draws
# the uniforms and applies it. The picture: each uniform $u$ on the vertical axis goes across to the
# CDF and down to its sample $x$. Where the CDF is steep (high density) many $u$'s land on a short
# stretch of $x$: that is where the samples pile up.

# %%
rate = 1.5
icdf = P.exponential_icdf(rate)
samples_exp = P.sample_inverse_cdf(icdf, N_SAMPLES, generator)

xs = torch.linspace(0, 4, 400)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
ax = axes[0]
ax.plot(xs, 1 - torch.exp(-rate * xs), color="C0", lw=2, label=r"$F(x) = 1 - e^{-\lambda x}$")
u_demo = torch.tensor([0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97], dtype=torch.float64)
for u_i, x_i in zip(u_demo, icdf(u_demo)):
    ax.annotate("", xy=(float(x_i), float(u_i)), xytext=(0, float(u_i)), arrowprops=dict(arrowstyle="->", color="C1", lw=1))
    ax.annotate("", xy=(float(x_i), 0), xytext=(float(x_i), float(u_i)), arrowprops=dict(arrowstyle="->", color="C1", lw=1))
ax.plot(torch.zeros_like(u_demo), u_demo, "o", color="C1", ms=4, label="uniforms $u$")
ax.plot(icdf(u_demo), torch.zeros_like(u_demo), "v", color="C3", ms=6, label=r"samples $F^{-1}(u)$")
ax.set(xlim=(0, 4), ylim=(0, 1.02), xlabel="x", ylabel="u", title="inverse CDF: across, then down")
ax.legend(frameon=False, loc="center right")
ax = axes[1]
ax.hist(samples_exp.numpy(), bins=80, range=(0, 4), density=True, alpha=0.6, label=f"{N_SAMPLES:,} samples")
ax.plot(xs, rate * torch.exp(-rate * xs), color="C3", lw=2, label=r"pdf $\lambda e^{-\lambda x}$")
ax.set(xlabel="x", ylabel="density", title=f"Exponential(λ = {rate}) by inverse CDF")
ax.legend(frameon=False)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Check.** The sample mean should be $1/\lambda$ up to a few standard errors, and a
# Kolmogorov-Smirnov test (SciPy) should find no difference between the samples and the exact CDF (a
# p-value that is not tiny). The same function samples any distribution whose `icdf` we know, e.g. a
# Normal from `torch.distributions`.

# %%
ks_exp = stats.kstest(samples_exp.double().numpy(), stats.expon(scale=1 / rate).cdf)
print(f"sample mean {samples_exp.mean():.4f} vs 1/λ = {1 / rate:.4f};  KS p-value {ks_exp.pvalue:.3f}")
samples_normal = P.sample_inverse_cdf(D.Normal(2.0, 0.5).icdf, N_SAMPLES, generator)
ks_normal = stats.kstest(samples_normal.double().numpy(), stats.norm(2.0, 0.5).cdf)
print(f"Normal(2, 0.5²) by inverse CDF: mean {samples_normal.mean():.4f}, std {samples_normal.std():.4f}, "
      f"KS p-value {ks_normal.pvalue:.3f}")
assert abs(float(samples_exp.mean()) - 1 / rate) < 5 * (1 / rate) / math.sqrt(N_SAMPLES)
assert ks_exp.pvalue > 1e-4 and ks_normal.pvalue > 1e-4

# %% [markdown]
# **Discrete distributions** work the same way: the CDF is a staircase, and $F^{-1}(u)$ is the first
# outcome whose cumulative probability exceeds $u$. Cut $[0, 1)$ into pieces of lengths
# $p_1, \dots, p_K$ and see which piece $u$ lands in. This is exactly how a language model picks its
# next token (notebook 03). `P.categorical_icdf(probs)` does it with a binary search:

# %%
rolls = P.sample_inverse_cdf(P.categorical_icdf(die.probs), N_SAMPLES, generator)
freq = torch.bincount(rolls, minlength=6) / N_SAMPLES
print("face:       ", [f"{k + 1:>5}" for k in range(6)])
print("frequency:  ", [f"{float(v):.3f}" for v in freq])
print("probability:", [f"{float(v):.3f}" for v in die.probs])
expected_counts = die.probs.double() / die.probs.double().sum() * N_SAMPLES
chi2 = stats.chisquare(torch.bincount(rolls, minlength=6).numpy(), expected_counts.numpy())
print(f"chi-square test p-value: {chi2.pvalue:.3f}")
assert chi2.pvalue > 1e-4

# %% [markdown]
# When $F^{-1}$ has no formula but $F$ does, we can invert $F$ numerically by bisection
# (`P.numerical_icdf(cdf, lo, hi)`); when even $F$ is unknown, as for images, inverse-CDF sampling is
# out of reach. In **more than one dimension** there is no single CDF to invert at all, but the idea
# survives: write $p(x_1, x_2, \dots) = p(x_1)\,p(x_2 \mid x_1)\cdots$ and sample one coordinate at a
# time. That is an **autoregressive model** (notebook 03).
#
# ## 3. Rejection sampling
#
# Suppose we can evaluate a target density only **up to a constant**, $\tilde p(x) = Z\,p(x)$ with
# unknown $Z$ (very common: Bayesian posteriors, energy-based models). Pick a **proposal** $q$ that we
# can sample and evaluate, and a constant $M$ such that the **envelope** $M q(x)$ lies above
# $\tilde p(x)$ everywhere. Then
#
# 1. draw $x \sim q$ and $u \sim \mathcal U(0, 1)$;
# 2. **accept** $x$ if $u \cdot M q(x) < \tilde p(x)$, otherwise throw it away.
#
# Geometrically, the points $(x,\ u\,M q(x))$ are uniform under the envelope curve; keeping those
# under the target curve leaves points uniform under $\tilde p$, whose $x$-coordinates are exact
# samples of $p$. The acceptance rate is the ratio of the areas:
#
# $$P(\text{accept}) = \int q(x)\,\frac{\tilde p(x)}{M q(x)}\,dx = \frac{Z}{M}.$$
#
# Our target: an unnormalised two-bump density, $\tilde p(x) = 5\,\bigl[0.3\,\mathcal N(x; -2, 0.5^2)
# + 0.7\,\mathcal N(x; 1.5, 1)\bigr]$, so $Z = 5$; the proposal is a broad Gaussian $\mathcal N(0, 3^2)$.
# The smallest valid $M$ is $\max_x \tilde p(x)/q(x)$, which we find on a fine grid (plus 1% margin).

# %%
Z_TRUE = 5.0
target_mixture = D.MixtureSameFamily(
    D.Categorical(probs=torch.tensor([0.3, 0.7], dtype=torch.float64)),
    D.Normal(torch.tensor([-2.0, 1.5], dtype=torch.float64), torch.tensor([0.5, 1.0], dtype=torch.float64)),
)


def log_p_tilde(x):
    """Unnormalised log target: log 5 + log of the mixture density. x: (m,) -> (m,)."""
    return math.log(Z_TRUE) + target_mixture.log_prob(x.double())


proposal = D.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64))
grid = torch.linspace(-12, 12, 24_001, dtype=torch.float64)
log_M = float((log_p_tilde(grid) - proposal.log_prob(grid)).max()) + math.log(1.01)
print(f"M = {math.exp(log_M):.2f}; expected acceptance rate Z/M = {Z_TRUE / math.exp(log_M):.3f}")

# %%
demo = P.rejection_round(log_p_tilde, proposal, log_M, 1500, generator)
samples_rej, acceptance = P.rejection_sample(log_p_tilde, proposal, log_M, N_SAMPLES, generator)

xg = torch.linspace(-6, 6, 600, dtype=torch.float64)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
ax = axes[0]
ax.plot(xg, math.exp(log_M) * proposal.log_prob(xg).exp(), color="k", lw=2, label=r"envelope $M q(x)$")
ax.plot(xg, log_p_tilde(xg).exp(), color="C0", lw=2, label=r"target $\tilde p(x)$")
acc = demo.accepted
ax.scatter(demo.x[acc], demo.height[acc], s=4, color="C2", label="accepted")
ax.scatter(demo.x[~acc], demo.height[~acc], s=4, color="C3", alpha=0.5, label="rejected")
ax.set(xlim=(-6, 6), ylim=(0, None), xlabel="x", title=f"one round: {int(acc.sum())} of {len(acc)} accepted")
ax.legend(frameon=False, fontsize=8, loc="upper left")
ax = axes[1]
ax.hist(samples_rej.numpy(), bins=100, range=(-6, 6), density=True, alpha=0.6, label=f"{N_SAMPLES:,} accepted samples")
ax.plot(xg, target_mixture.log_prob(xg).exp(), color="C0", lw=2, label=r"normalised target $p(x)$")
ax.set(xlabel="x", ylabel="density", title=f"rejection samples (acceptance rate {acceptance:.3f})")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Check**: the acceptance rate is $Z/M$, and the accepted samples pass a KS test against the
# mixture's exact CDF $F(x) = 0.3\,\Phi\bigl(\tfrac{x+2}{0.5}\bigr) + 0.7\,\Phi(x - 1.5)$.

# %%
mixture_cdf = lambda t: 0.3 * stats.norm(-2, 0.5).cdf(t) + 0.7 * stats.norm(1.5, 1.0).cdf(t)  # noqa: E731
ks_rej = stats.kstest(samples_rej.numpy(), mixture_cdf)
expected_rate = Z_TRUE / math.exp(log_M)
print(f"acceptance {acceptance:.4f} vs Z/M = {expected_rate:.4f};  KS p-value {ks_rej.pvalue:.3f}")
assert abs(acceptance - expected_rate) < 0.03 and ks_rej.pvalue > 1e-4

# %% [markdown]
# If the envelope is too low somewhere, the accepted samples would be *silently wrong* (too few where
# $\tilde p > Mq$). `rejection_sample` checks every proposed point and refuses, saying what to change:

# %%
try:
    P.rejection_sample(log_p_tilde, proposal, log_M - 1.0, 1000, generator)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# **Why we cannot rejection-sample images.** The acceptance rate collapses with dimension. Take the
# simplest case: the uniform distribution on the unit ball in $d$ dimensions, proposed from the cube
# $[-1, 1]^d$. The acceptance rate is the volume ratio $\pi^{d/2} / \bigl(\Gamma(d/2 + 1)\, 2^d\bigr)$:
# 79% in 2-D, 16% in 5-D, 0.25% in 10-D and about $10^{-889}$ for the 784 dimensions of a $28 \times 28$ image.
# A good generative model is, in a sense, a proposal so good that nothing needs rejecting.

# %%
def log10_ball_in_cube(d):
    """log10 of vol(unit ball) / vol([-1, 1]^d) = pi^(d/2) / (Gamma(d/2 + 1) 2^d), in logs (it underflows)."""
    return (0.5 * d * math.log(math.pi) - math.lgamma(d / 2 + 1) - d * math.log(2)) / math.log(10)


for d in (2, 3, 5):
    cube = D.Independent(D.Uniform(-torch.ones(d), torch.ones(d)), 1)
    log_ball = lambda v, cube=cube: torch.where(v.pow(2).sum(1) <= 1, 0.0, -math.inf) + cube.log_prob(v)  # noqa: E731
    _, rate_d = P.rejection_sample(log_ball, cube, 0.0, config.budget(full=20_000, quick=2_000), generator)
    print(f"d = {d:>3}: measured acceptance {rate_d:.4f}, volume ratio {10 ** log10_ball_in_cube(d):.4f}")
    assert abs(rate_d - 10 ** log10_ball_in_cube(d)) < 0.03
for d in (10, 20, 784):
    print(f"d = {d:>3}: volume ratio 10^{log10_ball_in_cube(d):.1f}")

# %% [markdown]
# ## 4. Expectations and Monte Carlo
#
# Almost every quantity we want is an **expectation**: a loss averaged over the data, a likelihood
# averaged over latent codes, a KL divergence. For a function $f$,
#
# $$\mu = \mathbb E_{X \sim p}[f(X)] = \int f(x)\,p(x)\,dx \;\approx\; \hat\mu_n = \frac1n \sum_{i=1}^n f(x_i), \qquad x_i \sim p \text{ independent}.$$
#
# $\hat\mu_n$ is **unbiased** ($\mathbb E[\hat\mu_n] = \mu$) and its variance is $\sigma^2/n$ where
# $\sigma^2 = \mathrm{Var}[f(X)]$. So its typical error, the **standard error**, is
#
# $$\mathrm{SE} = \frac{\sigma}{\sqrt n} \approx \frac{\hat\sigma}{\sqrt n}, \qquad
# \hat\sigma^2 = \frac{1}{n-1}\sum_i \bigl(f(x_i) - \hat\mu_n\bigr)^2,$$
#
# and by the central limit theorem $\hat\mu_n \pm 1.96\,\mathrm{SE}$ covers $\mu$ about 95% of the time.
# Ten times more accuracy costs a hundred times more samples.
#
# Example: $\mathbb E[\cos X]$ for $X \sim \mathcal N(0, 1)$, whose exact value is $e^{-1/2}$.
# `P.monte_carlo(f, sampler, n, generator)` returns the estimate and its standard error.

# %%
true_mean = math.exp(-0.5)
estimate, se = P.monte_carlo(torch.cos, D.Normal(0.0, 1.0), N_SAMPLES, generator)
print(f"Monte Carlo: {estimate:.5f} ± {1.96 * se:.5f} (95%)   exact e^(-1/2) = {true_mean:.5f}")
print(f"error in units of standard errors: {(estimate - true_mean) / se:+.2f}")

# %% [markdown]
# **Does the error really fall like $1/\sqrt n$?** `P.monte_carlo_error_curve` repeats the estimate
# `MC_REPEATS` times at each sample size and measures the root-mean-square error. On a log-log plot
# it is a line of slope $-1/2$, right on top of the theory $\sigma/\sqrt n$; the standard error that
# each single run reports about itself sits on the same line. The left panel follows one run as $n$
# grows: the estimate wanders inside its shrinking $\pm 1.96\,$SE band.

# %%
ns = np.unique(np.logspace(1, math.log10(MC_MAX_N), 12).astype(int)).tolist()
curve = P.monte_carlo_error_curve(torch.cos, D.Normal(0.0, 1.0), ns, true_value=true_mean, repeats=MC_REPEATS, generator=generator)
slope = np.polyfit(np.log(curve.ns.numpy()), np.log(curve.rmse.numpy()), 1)[0]

one_run = torch.cos(torch.randn(MC_MAX_N, generator=generator, dtype=torch.float64))
steps_n = torch.arange(1, MC_MAX_N + 1, dtype=torch.float64)
running = one_run.cumsum(0) / steps_n
running_sd = ((one_run**2).cumsum(0) / steps_n - running**2).clamp_min(0).sqrt()
band = 1.96 * running_sd / steps_n.sqrt()

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
ax = axes[0]
start = 10
ax.plot(steps_n[start:], running[start:], color="C0", lw=1, label=r"running estimate $\hat\mu_n$")
ax.fill_between(steps_n[start:], (running - band)[start:], (running + band)[start:], color="C0", alpha=0.2, label="± 1.96 SE")
ax.axhline(true_mean, color="k", ls="--", lw=1, label=r"exact $e^{-1/2}$")
ax.set(xscale="log", xlabel="n", title="one Monte Carlo run")
ax.legend(frameon=False, fontsize=8)
ax = axes[1]
ax.loglog(curve.ns, curve.rmse, "o", color="C0", label=f"measured RMSE over {MC_REPEATS} runs (slope {slope:.2f})")
ax.loglog(curve.ns, curve.mean_standard_error, "x", color="C1", label="average reported SE")
ax.loglog(curve.ns, curve.theory, "-", color="k", lw=1, label=rf"theory $\sigma/\sqrt{{n}}$, $\sigma$ = {curve.sigma:.3f}")
ax.set(xlabel="n (samples)", ylabel="error", title="Monte Carlo error shrinks as 1/√n")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Check** the slope, and the value of $\sigma$: $\mathrm{Var}[\cos X] = \mathbb E[\cos^2 X] - e^{-1}
# = \tfrac12(1 + e^{-2}) - e^{-1}$.

# %%
sigma_exact = math.sqrt(0.5 * (1 + math.exp(-2)) - math.exp(-1))
print(f"fitted slope {slope:.3f} (theory -0.5);  sigma {curve.sigma:.4f} vs exact {sigma_exact:.4f}")
assert -0.75 < slope < -0.25
assert abs(curve.sigma - sigma_exact) < 0.02

# %% [markdown]
# **Dimension.** The rate $1/\sqrt n$ holds in *any* dimension: Monte Carlo does not care how many
# coordinates $x$ has, which is why it, and not a grid, is used in high dimensions (a grid with 10
# points per axis needs $10^{784}$ points for an MNIST image). But the constant $\sigma$ depends on the
# problem and can grow with the dimension. Take $f(x) = \prod_{j=1}^d \cos x_j$ with
# $X \sim \mathcal N(0, I_d)$: the mean is $e^{-d/2}$ and the *relative* standard deviation is
# $\sqrt{\bigl(\tfrac{e}{2}(1 + e^{-2})\bigr)^d - 1} \approx 1.24^d$: exponential in $d$. The same
# happens when estimating a likelihood by averaging over latent codes (notebook 04): the estimator is
# unbiased but its variance can be enormous.

# %%
n_dim = config.budget(full=100_000, quick=4_000)
dims = [1, 2, 5, 10, 20]
rel_measured, rel_theory = [], []
for d in dims:
    est_d, se_d = P.monte_carlo(
        lambda v: torch.cos(v).prod(1), D.Independent(D.Normal(torch.zeros(d), 1.0), 1), n_dim, generator
    )
    rel_measured.append(float(se_d) / math.exp(-d / 2))
    rel_theory.append(math.sqrt((math.e / 2 * (1 + math.exp(-2))) ** d - 1) / math.sqrt(n_dim))
    print(f"d = {d:>2}: estimate {float(est_d):.3e} (exact {math.exp(-d / 2):.3e}), "
          f"relative SE {rel_measured[-1]:.4f} (theory {rel_theory[-1]:.4f})")

fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.semilogy(dims, rel_measured, "o", label=f"measured, n = {n_dim:,}")
ax.semilogy(dims, rel_theory, "-", color="k", lw=1, label="theory")
ax.set(xlabel="dimension d", ylabel="relative standard error", title=r"same $1/\sqrt{n}$, growing $\sigma$")
ax.legend(frameon=False)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Bayes' rule
#
# Joint probabilities factor both ways, $p(h, d) = p(d \mid h)\,p(h) = p(h \mid d)\,p(d)$. Solving for
# the hypothesis given the data:
#
# $$\underbrace{p(h \mid d)}_{\text{posterior}} = \frac{\overbrace{p(d \mid h)}^{\text{likelihood}}\;\overbrace{p(h)}^{\text{prior}}}{\underbrace{p(d)}_{\text{evidence}}},
# \qquad p(d) = \sum_{h'} p(d \mid h')\,p(h').$$
#
# **A diagnostic test.** A disease affects 1% of people. The test detects 99% of the ill
# (sensitivity $p(+ \mid \text{ill}) = 0.99$) but also flags 5% of the healthy
# ($p(+ \mid \text{healthy}) = 0.05$). You test positive. How likely are you to be ill?

# %%
prior = torch.tensor([0.01, 0.99], dtype=torch.float64)  # [ill, healthy]
p_positive = torch.tensor([0.99, 0.05], dtype=torch.float64)  # likelihood of a positive test
posterior = P.bayes_posterior(prior, p_positive)
by_hand = 0.99 * 0.01 / (0.99 * 0.01 + 0.05 * 0.99)
print(f"P(ill | +) = {posterior[0]:.4f}   (by hand: {by_hand:.4f})")

# %% [markdown]
# Only about **17%**, not 99%. In natural frequencies: of 10,000 people, 100 are ill and 99 of them
# test positive; of the 9,900 healthy, 495 test positive too. Of the 594 positives only 99 are ill.
# The prior matters: confusing $p(+ \mid \text{ill})$ with $p(\text{ill} \mid +)$ is the *base-rate
# fallacy*. Let us also check the formula by simulation (Monte Carlo again): sample a population,
# sample their test results, and count.

# %%
n_people = config.budget(full=1_000_000, quick=100_000)
ill = torch.rand(n_people, generator=generator) < 0.01
positive = torch.rand(n_people, generator=generator) < torch.where(ill, 0.99, 0.05)
frac = float(ill[positive].float().mean())
se_frac = math.sqrt(frac * (1 - frac) / int(positive.sum()))
print(f"simulated P(ill | +) = {frac:.4f} ± {1.96 * se_frac:.4f}")
assert abs(float(posterior[0]) - by_hand) < 1e-12
assert abs(frac - by_hand) < 5 * se_frac

# %% [markdown]
# **Many observations.** With $N$ observations that are independent given the hypothesis, the
# likelihood is a product, $p(d_1, \dots, d_N \mid h) = \prod_i p(d_i \mid h)$: `bayes_posterior`
# takes a $(K, N)$ table and works in log space, because a product of many small numbers underflows
# to 0. A second positive test (independent of the first) is the same as using the first posterior as
# the new prior:

# %%
two_tests = P.bayes_posterior(prior, torch.stack([p_positive, p_positive], dim=1))
sequential = P.bayes_posterior(posterior, p_positive)
print(f"after two positive tests: P(ill) = {two_tests[0]:.4f}  (updating twice: {sequential[0]:.4f})")
assert torch.allclose(two_tests, sequential)

# %% [markdown]
# **Which digit is this?** Bayes' rule turns any generative model into a classifier:
# $p(\text{class} \mid x) \propto p(x \mid \text{class})\,p(\text{class})$. Let us build the simplest
# generative model of 8x8 digit images: binarise each pixel ($x_j \in \{0, 1\}$) and model each class
# as 64 independent coins, $p(x \mid k) = \prod_{j} \theta_{kj}^{x_j}(1 - \theta_{kj})^{1 - x_j}$, with
# $\theta_{kj}$ the fraction of training images of class $k$ whose pixel $j$ is on (with +1/+2
# smoothing, so no probability is exactly 0). This is *naive Bayes*: the independence assumption is
# wrong (neighbouring pixels are strongly correlated), which is exactly what the models of the next
# notebooks fix. For each test image the likelihood table is $(K = 10, N = 64)$.

# %%
from course_lib import data  # noqa: E402

train_digits, test_digits = data.digits8x8("train"), data.digits8x8("test")
x_train = (train_digits.x.flatten(1) > 0.5).double()  # (1000, 64) in {0, 1}
x_test = (test_digits.x.flatten(1) > 0.5).double()  # (447, 64)
counts = torch.bincount(train_digits.y, minlength=10).double()
class_prior = counts / counts.sum()  # (10,)
theta = torch.stack([(x_train[train_digits.y == k].sum(0) + 1) / (counts[k] + 2) for k in range(10)])  # (10, 64)


def digit_posterior(image_bits):
    """Posterior over the 10 classes for one binarised image (64,), by Bayes' rule with a (10, 64) table."""
    log_lik = image_bits * theta.log() + (1 - image_bits) * (1 - theta).log()  # (10, 64)
    return P.bayes_posterior(class_prior, log_lik, log_likelihood=True)


posteriors = torch.stack([digit_posterior(img) for img in x_test])  # (447, 10)
accuracy = float((posteriors.argmax(1) == test_digits.y).double().mean())
print(f"naive-Bayes test accuracy: {accuracy:.1%} (chance: 10%)")

predicted = posteriors.argmax(1)
first_correct = {}  # class -> index of its first correctly classified test image
for i in (predicted == test_digits.y).nonzero().flatten().tolist():
    first_correct.setdefault(int(test_digits.y[i]), i)
wrong = (predicted != test_digits.y).nonzero().flatten()
shown = [first_correct[k] for k in sorted(first_correct)[:8:2]] + wrong[:2].tolist()  # 4 right (4 classes), 2 wrong
fig, axes = plt.subplots(2, 6, figsize=(13, 4.2), gridspec_kw=dict(height_ratios=[1.2, 1]))
for col, idx in enumerate(shown):
    axes[0, col].imshow(x_test[idx].reshape(8, 8), cmap="gray_r")
    axes[0, col].set(xticks=[], yticks=[], title=f"true class {int(test_digits.y[idx])}")
    axes[1, col].bar(range(10), posteriors[idx], color=["C3" if k == int(test_digits.y[idx]) else "C0" for k in range(10)])
    axes[1, col].set(xticks=range(10), ylim=(0, 1), xlabel="class k")
axes[1, 0].set_ylabel("p(k | x)")
fig.suptitle("posterior over classes for binarised test digits (red: the true class); four right, two wrong")
fig.tight_layout()
plt.show()

# %% [markdown]
# The posteriors are very confident, often too confident: treating 64 correlated pixels as 64
# independent pieces of evidence counts the same evidence many times over.
#
# ## 6. Change of variables
#
# If $X$ has density $p_X$ and $Y = f(X)$ for an invertible, differentiable $f$, then
#
# $$p_Y(y) = p_X\bigl(f^{-1}(y)\bigr)\,\left|\det \frac{\partial f^{-1}(y)}{\partial y}\right|,
# \qquad \log p_Y(y) = \log p_X\bigl(f^{-1}(y)\bigr) + \log\left|\det J_{f^{-1}}(y)\right|.$$
#
# Why the extra factor? Probability is conserved: the mass $p_X(x)\,|dx|$ in a small interval around
# $x$ ends up in the interval of length $|dy|$ around $y = f(x)$. Where $f$ stretches space
# ($|dy| > |dx|$) the density must drop, where it squeezes space it must rise. Forgetting the
# Jacobian gives a function that is not even a density (it does not integrate to 1).
#
# **1-D example.** $X \sim \mathcal N(0, 1)$ and $Y = e^X$ (the *log-normal*). Here $f^{-1}(y) = \log y$
# and $\left|\tfrac{d}{dy}\log y\right| = 1/y$, so $\log p_Y(y) = \log \mathcal N(\log y; 0, 1) - \log y$.
# `P.change_of_variables_log_prob(base_log_prob, inverse_fn, log_abs_det_jacobian_of_inverse)`
# builds this function; we compare it with a histogram of transformed samples, with
# `torch.distributions.TransformedDistribution` and with SciPy.

# %%
base = D.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
log_p_y = P.change_of_variables_log_prob(base.log_prob, torch.log, lambda y: -torch.log(y))
y_samples = torch.exp(base.sample((N_SAMPLES,)))

ys = torch.linspace(0.01, 6, 600, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.hist(y_samples.numpy(), bins=120, range=(0, 6), density=True, alpha=0.5, label="histogram of exp(X)")
ax.plot(ys, log_p_y(ys).exp(), color="C3", lw=2, label=r"$p_X(\log y)\cdot 1/y$ (change of variables)")
ax.plot(ys, base.log_prob(torch.log(ys)).exp(), color="gray", ls="--", lw=2, label=r"$p_X(\log y)$: Jacobian forgotten")
ax.set(xlabel="y", ylabel="density", title="Y = exp(X), X ~ N(0, 1)")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

lognormal = D.TransformedDistribution(base, [D.ExpTransform()])
err_torch = float((log_p_y(ys) - lognormal.log_prob(ys)).abs().max())
err_scipy = float(np.abs(log_p_y(ys).numpy() - stats.lognorm(s=1.0).logpdf(ys.numpy())).max())
wide = torch.linspace(1e-4, 200, 400_001, dtype=torch.float64)
print(f"max |difference| vs TransformedDistribution: {err_torch:.2e}, vs scipy.stats.lognorm: {err_scipy:.2e}")
print(f"integral with the Jacobian: {torch.trapezoid(log_p_y(wide).exp(), wide):.4f};  without: "
      f"{torch.trapezoid(base.log_prob(torch.log(wide)).exp(), wide):.2f}")
assert err_torch < 1e-10 and err_scipy < 1e-10

# %% [markdown]
# **2-D.** In $D$ dimensions the factor is the absolute determinant of the $D \times D$ Jacobian
# matrix: how much $f^{-1}$ scales a small volume. As an example, bend a standard 2-D Gaussian into a
# funnel: $f(x_1, x_2) = (x_1,\; x_2\, e^{x_1/2})$. Its inverse is $x_1 = y_1$,
# $x_2 = y_2\, e^{-y_1/2}$, with the triangular Jacobian
# $\begin{pmatrix} 1 & 0 \\ \cdot & e^{-y_1/2} \end{pmatrix}$, so
# $\log|\det J_{f^{-1}}(y)| = -y_1/2$. We check that value against automatic differentiation
# (`P.log_abs_det_jacobian`), and the resulting density against samples pushed through $f$.
#
# This is the whole idea of **normalising flows**: stack invertible maps whose Jacobian determinants
# are cheap (triangular, as here) to turn a simple Gaussian into a complicated density that we can
# still sample *and* evaluate exactly. Diffusion models (notebook 08) also meet this formula: their
# probability-flow ODE is a continuous flow.

# %%
base2 = D.Independent(D.Normal(torch.zeros(2), torch.ones(2)), 1)


def funnel(x):
    """f: (B, 2) -> (B, 2), (x1, x2) -> (x1, x2 * exp(x1 / 2))."""
    return torch.stack([x[:, 0], x[:, 1] * torch.exp(x[:, 0] / 2)], dim=1)


def funnel_inverse(y):
    """f^{-1}: (B, 2) -> (B, 2)."""
    return torch.stack([y[:, 0], y[:, 1] * torch.exp(-y[:, 0] / 2)], dim=1)


log_p_funnel = P.change_of_variables_log_prob(base2.log_prob, funnel_inverse, lambda y: -y[:, 0] / 2)

y_check = funnel(base2.sample((5,)))
print("log|det J| by formula:  ", [f"{v:.4f}" for v in (-y_check[:, 0] / 2).tolist()])
print("log|det J| by autograd: ", [f"{v:.4f}" for v in P.log_abs_det_jacobian(funnel_inverse, y_check).tolist()])
assert torch.allclose(P.log_abs_det_jacobian(funnel_inverse, y_check), -y_check[:, 0] / 2, atol=1e-5)

# numerical integral of the transformed density over a large box (should be close to 1)
g1, g2 = torch.meshgrid(torch.linspace(-6, 6, 241), torch.linspace(-25, 25, 1001), indexing="ij")
box = torch.stack([g1.reshape(-1), g2.reshape(-1)], 1)
mass = float(log_p_funnel(box).exp().sum() * (12 / 240) * (50 / 1000))
print(f"integral of p_Y over [-6, 6] x [-25, 25]: {mass:.4f}")
assert abs(mass - 1) < 0.01

x_base = base2.sample((config.budget(full=2000, quick=500),))
fig, axes = plt.subplots(1, 2, figsize=(9, 5))
viz.plot_density_2d(base2.log_prob, xlim=(-3.5, 3.5), ylim=(-5, 5), samples=x_base, ax=axes[0], title="X ~ N(0, I) and samples")
viz.plot_density_2d(log_p_funnel, xlim=(-3.5, 3.5), ylim=(-5, 5), samples=funnel(x_base), ax=axes[1],
                    title="Y = f(X): change-of-variables density\nand the same samples pushed through f")
for ax in axes:
    ax.set(xlabel="first coordinate", ylabel="second coordinate")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 7. Entropy, cross-entropy and KL divergence
#
# **Entropy** measures the uncertainty of a distribution, the average surprise $-\log p(x)$:
#
# $$H(p) = -\sum_x p(x) \log p(x) \qquad (0 \log 0 = 0).$$
#
# In bits ($\log_2$) it is the average number of yes/no questions, or bits of an optimal code, needed
# to pin down a sample. It is 0 for a certain outcome and at most $\log K$ (the uniform distribution).
#
# **Cross-entropy** is the average surprise when data come from $p$ but we score them with a model $q$:
#
# $$H(p, q) = -\sum_x p(x) \log q(x) = H(p) + \mathrm{KL}(p \,\|\, q), \qquad
# \mathrm{KL}(p \,\|\, q) = \sum_x p(x) \log \frac{p(x)}{q(x)} \;\ge\; 0.$$
#
# The **Kullback-Leibler divergence** is the *extra* surprise paid for using $q$ instead of $p$; it is
# zero only when $q = p$. It is infinite if $q(x) = 0$ somewhere $p(x) > 0$: the model calls an
# observed outcome impossible.

# %%
p_coin = torch.linspace(0, 1, 201, dtype=torch.float64)
coins = torch.stack([p_coin, 1 - p_coin], dim=1)  # (201, 2): a batch of coins
H_bits = P.entropy(coins, base=2)

p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
q = torch.tensor([0.2, 0.2, 0.6], dtype=torch.float64)
print(f"H(p) = {P.entropy(p):.4f} nats, H(q) = {P.entropy(q):.4f} nats, uniform on 3: log 3 = {math.log(3):.4f}")
print(f"H(p, q) = {P.cross_entropy(p, q):.4f} = H(p) + KL(p||q) = {P.entropy(p) + P.kl_divergence(p, q):.4f}")
print(f"KL(p||q) = {P.kl_divergence(p, q):.4f}   but   KL(q||p) = {P.kl_divergence(q, p):.4f}   (not symmetric)")
print(f"KL(p||[0.5, 0.5, 0]) = {P.kl_divergence(p, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))}  (q misses an outcome of p)")

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(p_coin, H_bits)
ax.set(xlabel="P(heads)", ylabel="H (bits)", title="entropy of a coin: 1 bit when fair, 0 when certain")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Check** against the references: `torch.distributions.Categorical.entropy`, the registered
# `torch.distributions.kl_divergence`, and `scipy.stats.entropy` (which computes both).

# %%
cat_p, cat_q = D.Categorical(probs=p), D.Categorical(probs=q)
checks = {
    "H(p) vs Categorical.entropy": (P.entropy(p), cat_p.entropy()),
    "H(p) in bits vs scipy": (P.entropy(p, base=2), stats.entropy(p.numpy(), base=2)),
    "KL(p||q) vs torch kl_divergence": (P.kl_divergence(p, q), D.kl_divergence(cat_p, cat_q)),
    "KL(p||q) vs scipy": (P.kl_divergence(p, q), stats.entropy(p.numpy(), q.numpy())),
    "H(p, q) vs -sum p log q": (P.cross_entropy(p, q), -(p * q.log()).sum()),
}
for name, (ours, reference) in checks.items():
    print(f"{name:<34} {float(ours):.10f}  {float(reference):.10f}")
    assert abs(float(ours) - float(reference)) < 1e-10, name

# %% [markdown]
# **Gaussians.** For continuous distributions the sums become integrals. Between two Gaussians (with
# diagonal covariances, summing over the $D$ dimensions) the KL has a closed form, which reappears in
# every VAE (notebook 04):
#
# $$\mathrm{KL}\bigl(\mathcal N(\mu_p, \sigma_p^2)\,\|\,\mathcal N(\mu_q, \sigma_q^2)\bigr)
# = \frac12 \sum_{d=1}^D \left[\log\frac{\sigma_{q,d}^2}{\sigma_{p,d}^2} + \frac{\sigma_{p,d}^2 + (\mu_{p,d} - \mu_{q,d})^2}{\sigma_{q,d}^2} - 1\right].$$
#
# We check `P.gaussian_kl` against `torch.distributions` and against a Monte Carlo estimate of
# $\mathbb E_p[\log p(X) - \log q(X)]$ (with its standard error, from section 4).

# %%
mu_p, var_p = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([1.0, 0.5, 2.0])
mu_q, var_q = torch.tensor([0.5, 0.0, -1.0]), torch.tensor([2.0, 1.0, 1.0])
dist_p = D.Independent(D.Normal(mu_p, var_p.sqrt()), 1)
dist_q = D.Independent(D.Normal(mu_q, var_q.sqrt()), 1)
kl_closed = P.gaussian_kl(mu_p, var_p, mu_q, var_q)
kl_torch = D.kl_divergence(dist_p, dist_q)
kl_mc, kl_se = P.monte_carlo(lambda v: dist_p.log_prob(v) - dist_q.log_prob(v), dist_p, N_SAMPLES, generator)
print(f"closed form {kl_closed:.5f}   torch.distributions {kl_torch:.5f}   Monte Carlo {kl_mc:.5f} ± {1.96 * kl_se:.5f}")
assert abs(float(kl_closed) - float(kl_torch)) < 1e-5
assert abs(float(kl_closed) - float(kl_mc)) < 5 * float(kl_se)

# %% [markdown]
# ### Forward or reverse KL? Fitting one Gaussian to two bumps
#
# Because KL is not symmetric, "make $q$ close to $p$" has two different meanings. Let $p$ be a
# mixture of two well-separated Gaussians and $q = \mathcal N(\mu, \sigma^2)$ a single Gaussian.
#
# * **Forward KL**, $\min_q \mathrm{KL}(p\,\|\,q) = \min_q \bigl(-\mathbb E_{x \sim p}[\log q(x)]\bigr) + \text{const}$.
#   The expectation is over data from $p$: this is **maximum likelihood** (notebook 02). $q$ is
#   punished heavily wherever $p$ has mass and $q$ does not, so it **covers all the modes**, even
#   if that puts mass between them where $p$ has none. Its optimum matches $p$'s mean and variance.
# * **Reverse KL**, $\min_q \mathrm{KL}(q\,\|\,p) = \min_q \mathbb E_{x \sim q}[\log q(x) - \log p(x)]$.
#   The expectation is over $q$'s own samples: $q$ is punished wherever *it* puts mass that $p$ lacks,
#   so it is **mode-seeking**: it sits on one bump and ignores the other. Which bump depends on where
#   the optimisation starts. This is the direction of variational inference and of the VAE's
#   encoder (notebook 04).
#
# `P.fit_gaussian_kl` minimises either direction over $(\mu, \log\sigma)$ with gradient descent.

# %%
bimodal = D.MixtureSameFamily(
    D.Categorical(probs=torch.tensor([0.5, 0.5], dtype=torch.float64)),
    D.Normal(torch.tensor([-2.0, 2.0], dtype=torch.float64), torch.tensor([0.6, 0.6], dtype=torch.float64)),
)
kl_grid = torch.linspace(-12, 12, 2401, dtype=torch.float64)
forward_fit = P.fit_gaussian_kl(bimodal.log_prob, kl_grid, direction="forward", steps=FIT_STEPS)
reverse_right = P.fit_gaussian_kl(bimodal.log_prob, kl_grid, direction="reverse", mu0=1.0, steps=FIT_STEPS)
reverse_left = P.fit_gaussian_kl(bimodal.log_prob, kl_grid, direction="reverse", mu0=-1.0, steps=FIT_STEPS)
for name, fit in [("forward KL(p||q)", forward_fit), ("reverse KL(q||p), start +1", reverse_right),
                  ("reverse KL(q||p), start -1", reverse_left)]:
    print(f"{name:<28} mu = {fit.mu:+.3f}, sigma = {fit.sigma:.3f}, KL = {fit.kl:.3f} nats")

xk = torch.linspace(-6, 6, 600, dtype=torch.float64)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
for ax, fits, title in [
    (axes[0], [(forward_fit, "C1", "q minimising KL(p||q)")], "forward KL: mode-covering (= maximum likelihood)"),
    (axes[1], [(reverse_right, "C2", "q minimising KL(q||p), start +1"), (reverse_left, "C4", "... start -1")],
     "reverse KL: mode-seeking"),
]:
    ax.fill_between(xk, bimodal.log_prob(xk).exp(), color="C0", alpha=0.3, label="p: two bumps")
    for fit, color, label in fits:
        ax.plot(xk, D.Normal(fit.mu, fit.sigma).log_prob(xk).exp(), color=color, lw=2, label=label)
    ax.set(xlabel="x", title=title, ylim=(0, 0.95))
    ax.legend(frameon=False, fontsize=8, loc="upper center")
axes[0].set_ylabel("density")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Check.** The forward fit is moment matching: the mixture's mean is 0 and its variance is
# $\mathbb E[\text{component variance}] + \mathrm{Var}[\text{component mean}] = 0.6^2 + 2^2$. The reverse
# fits land on one component each, close to $\mathcal N(\pm 2, 0.6^2)$, and their KL is close to
# $\log 2$: $q$ matches one half of $p$, which has only half its mass there, so
# $\log q(x) - \log p(x) \approx \log 2$ wherever $q$ puts its mass.

# %%
print(f"forward: sigma {forward_fit.sigma:.4f} vs sqrt(0.36 + 4) = {math.sqrt(0.36 + 4):.4f}")
print(f"reverse: mu = {reverse_right.mu:.3f} / {reverse_left.mu:.3f}, sigma {reverse_right.sigma:.3f}, "
      f"KL {reverse_right.kl:.4f} vs log 2 = {math.log(2):.4f}")
assert abs(forward_fit.mu) < 0.02 and abs(forward_fit.sigma - math.sqrt(4.36)) < 0.02
assert abs(reverse_right.mu - 2) < 0.05 and abs(reverse_left.mu + 2) < 0.05
assert abs(reverse_right.kl - math.log(2)) < 0.01

# %% [markdown]
# ## Common misconceptions
#
# * **"A density is a probability, so it is at most 1."** No: only areas under a pdf are
#   probabilities. $\mathcal N(0, 0.2^2)$ has density 1.99 at 0, and $\mathcal N(0, 0.01^2)$ almost 40.
#   Consequently a negative *log*-likelihood of continuous data can be negative, and the differential
#   entropy $\tfrac12 \log(2\pi e \sigma^2)$ of a narrow Gaussian is negative (below).
# * **"KL is a distance."** It is not symmetric, $\mathrm{KL}(p\|q) \ne \mathrm{KL}(q\|p)$, and it does
#   not satisfy the triangle inequality. The two directions lead to different fits (mode-covering vs
#   mode-seeking), and one can be infinite while the other is finite.
# * **"Monte Carlo breaks down in high dimensions."** Its error is $\sigma/\sqrt n$ in every dimension.
#   What can grow with the dimension is $\sigma$, the spread of $f(X)$: look at that, not at $d$.
# * **"The average of more samples always converges."** Only if the mean exists. The Cauchy
#   distribution has none, and its running average never settles (below). Heavy-tailed importance
#   weights behave similarly badly.
# * **"To get the density of $f(X)$, plug $f^{-1}(y)$ into $p_X$."** You also need the Jacobian factor
#   $|\det J_{f^{-1}}(y)|$; without it the result does not integrate to 1.
# * **"A positive result from a 99%-accurate test means 99% certainty."** $p(+ \mid \text{ill})$ is not
#   $p(\text{ill} \mid +)$; with a 1% base rate it was 17%.
# * **"Rejection sampling is exact, so it is the way to sample anything."** It is exact, but its
#   acceptance rate $Z/M$ collapses in high dimensions, and too small an $M$ silently gives wrong samples.

# %%
print(f"density of N(0, 0.01²) at 0: {D.Normal(0.0, 0.01).log_prob(torch.tensor(0.0)).exp():.2f}")
print(f"differential entropy of N(0, 0.1²): {P.gaussian_entropy(torch.tensor(0.01), event_dims=0):.3f} nats (negative!)")

n_cauchy = config.budget(full=100_000, quick=5_000)
cauchy = P.sample_inverse_cdf(P.cauchy_icdf(0.0, 1.0), n_cauchy, generator, dtype=torch.float64)
gauss = torch.randn(n_cauchy, generator=generator, dtype=torch.float64)
steps_c = torch.arange(1, n_cauchy + 1, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(6.5, 3.4))
ax.plot(steps_c, cauchy.cumsum(0) / steps_c, label="running mean of Cauchy samples")
ax.plot(steps_c, gauss.cumsum(0) / steps_c, label="running mean of N(0, 1) samples")
ax.axhline(0, color="k", lw=0.8)
ax.set(xscale="log", xlabel="n", ylim=(-5, 5), title="a mean that does not exist cannot be estimated")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Self-check
#
# Each cell below asserts something you should now be able to predict. If one fails, the message
# says what to revisit. (They run in quick mode too, so they test ideas, not long computations.)

# %%
# 1. Inverse CDF: uniforms through F^-1 of Exp(2) have mean 1/2.
check = P.sample_inverse_cdf(P.exponential_icdf(2.0), 20_000, generator)
assert abs(float(check.mean()) - 0.5) < 0.02, "Exp(rate) has mean 1/rate: revisit section 2"

# 2. Rejection: with a normalised target, the acceptance rate is 1/M.
beta = D.Beta(2.0, 5.0)
M_beta = float(beta.log_prob(torch.tensor(0.2)).exp())  # the density's maximum, at the mode 0.2
log_beta = lambda v: beta.log_prob(v.clamp(1e-6, 1 - 1e-6))  # noqa: E731
_, beta_rate = P.rejection_sample(log_beta, D.Uniform(0.0, 1.0), math.log(M_beta), 5_000, generator)
assert abs(beta_rate - 1 / M_beta) < 0.03, "acceptance = Z / M with Z = 1 here: revisit section 3"

# 3. Monte Carlo: 4x the samples halves the standard error.
_, se_small = P.monte_carlo(torch.cos, D.Normal(0.0, 1.0), 2_000, generator)
_, se_large = P.monte_carlo(torch.cos, D.Normal(0.0, 1.0), 8_000, generator)
assert 1.6 < float(se_small / se_large) < 2.5, "the standard error falls as 1/sqrt(n): revisit section 4"

# 4. Bayes: a likelihood that is the same for every hypothesis teaches nothing.
assert torch.allclose(P.bayes_posterior(prior, torch.tensor([0.3, 0.3], dtype=torch.float64)), prior), \
    "the posterior equals the prior when the data are equally likely under every hypothesis: section 5"

# 5. Change of variables: Y = 2X for X ~ N(0, 1) has density p_X(y / 2) / 2, i.e. N(0, 2²).
log_p_2x = P.change_of_variables_log_prob(D.Normal(0.0, 1.0).log_prob, lambda y: y / 2, lambda y: torch.full_like(y, -math.log(2)))
y_test = torch.linspace(-3, 3, 7)
assert torch.allclose(log_p_2x(y_test), D.Normal(0.0, 2.0).log_prob(y_test), atol=1e-6), "remember the Jacobian: section 6"

# 6. Information: entropy of a uniform over 8 outcomes is 3 bits; KL(p||p) = 0; KL is asymmetric.
assert abs(float(P.entropy(torch.full((8,), 1 / 8), base=2)) - 3) < 1e-6, "uniform over K has entropy log K: section 7"
assert float(P.kl_divergence(p, p)) == 0.0 and float(P.kl_divergence(p, q)) != float(P.kl_divergence(q, p))
print("all self-checks passed")

# %% [markdown]
# ## Summary
#
# * A **pmf** gives probabilities, a **pdf** gives densities (areas are probabilities), a **CDF** gives
#   $P(X \le x)$. We work with `log_prob` because products of probabilities underflow.
# * **Inverse-CDF sampling** $X = F^{-1}(U)$ is exact and cheap when $F^{-1}$ is known; one coordinate at a
#   time it becomes autoregressive sampling. **Rejection sampling** needs only $\tilde p$ up to a constant
#   and an envelope $Mq \ge \tilde p$; it accepts a fraction $Z/M$, hopeless in high dimensions.
# * **Monte Carlo** estimates $\mathbb E[f(X)]$ with standard error $\sigma/\sqrt n$, in any dimension;
#   always report the standard error.
# * **Bayes' rule**: posterior $\propto$ likelihood $\times$ prior; compute in log space; a generative
#   model of each class is a classifier.
# * **Change of variables**: $\log p_Y(y) = \log p_X(f^{-1}(y)) + \log|\det J_{f^{-1}}(y)|$, the basis of
#   normalising flows.
# * **Entropy, cross-entropy, KL**: $H(p, q) = H(p) + \mathrm{KL}(p\|q)$; minimising the forward KL is
#   maximum likelihood and covers modes, minimising the reverse KL (variational inference) seeks modes.
#
# **Next:** notebook 02 fits densities to data by maximum likelihood. **Practise first** with the
# exercises in `exercises/01_probability_basics.ipynb`: an inverse-CDF sampler, a Monte Carlo estimate
# with its standard error, entropy and KL of discrete distributions, and a Bayes posterior.

# %%
clock.report();
