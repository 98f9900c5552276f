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
# # 02 · Maximum likelihood and density estimation
#
# Notebook 01 treated distributions as given. Here we **learn** them from data. The principle used
# by almost every generative model in this course (autoregressive Transformers, VAEs, flows, and in
# disguise diffusion models) is **maximum likelihood**: choose the parameters under which the
# observed data are most probable. We meet it on models small enough to solve with pen and paper or
# a few lines of linear algebra, so that nothing hides the ideas: a Gaussian, a mixture of Gaussians
# fitted by EM, and a kernel density estimate. At the end we score all three on real handwritten
# digits in **bits per dimension**, the unit in which likelihood models are compared.
#
# **After this notebook you will be able to**
# 1. write down the likelihood of i.i.d. data and say what maximum likelihood (MLE) chooses;
# 2. derive the MLE of a Gaussian's mean and covariance, check it numerically, and explain why the MLE
#    of the variance is **biased**;
# 3. explain why maximising the likelihood is the same as minimising $\mathrm{KL}(p_\text{data}\,\|\,p_\theta)$;
# 4. fit a **mixture of Gaussians with EM**, state its E-step and M-step, and say why the likelihood never
#    decreases;
# 5. build a **kernel density estimate** and choose its bandwidth on held-out data;
# 6. recognise **over-fitting** as a gap between training and test likelihood, and choose model size on
#    validation data;
# 7. report the NLL of discrete images in **nats and bits/dim** with **dequantisation**, and say why a
#    better likelihood does not always mean better samples.
#
# Prerequisites: notebook 01 (densities, KL divergence, Bayes' rule). All models used here live in
# `course_lib.models.density` and are tested against `torch.distributions`, SciPy and scikit-learn.

# %%
import copy
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import distributions as D

from course_lib import config, data, device, viz
from course_lib import probability as P
from course_lib.metrics.likelihood import dequantize, discrete_nll_from_density, nats_to_bits_per_dim
from course_lib.models.density import GaussianDensity, GaussianMixture, KernelDensity, select_bandwidth

clock = config.NotebookClock("02 maximum likelihood", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %% [markdown]
# The models of this notebook are fitted in closed form or by a few dozen EM iterations on at most a
# few thousand points: a CPU does this in milliseconds, so all tensors stay on the CPU (in `float64`
# inside the models, which avoids any doubt about round-off). The sizes below go through
# `config.budget`: full mode for you, tiny quick mode for the test suite.

# %%
N_TOY = config.budget(full=2000, quick=500)  # points of 2-D toy data
GRID = config.budget(full=150, quick=40)  # resolution of the 2-D density plots
N_REPEATS = config.budget(full=20_000, quick=2_000)  # simulated data sets for the bias check
N_KL = config.budget(full=5_000, quick=1_000)  # samples in the discrete KL example
EM_SEEDS = config.budget(full=10, quick=2)  # EM restarts in the local-optimum experiment
EM_ITERS = config.budget(full=200, quick=30)  # maximum EM iterations per fit
N_INIT = config.budget(full=2, quick=1)  # EM starts per mixture on the digits
N_BANDWIDTHS = config.budget(full=30, quick=10)  # bandwidths tried on the 2-D data
K_GRID = [int(k) for k in np.geomspace(1, 64, config.budget(full=7, quick=3)).round()]  # mixture sizes, 1 to 64
DRAWS = config.budget(full=5, quick=1)  # dequantisation draws when scoring the digits
print(f"N_TOY={N_TOY}, GRID={GRID}, N_REPEATS={N_REPEATS}, N_KL={N_KL}, EM_SEEDS={EM_SEEDS}, EM_ITERS={EM_ITERS}, "
      f"N_INIT={N_INIT}, N_BANDWIDTHS={N_BANDWIDTHS}, K_GRID={K_GRID}, DRAWS={DRAWS}")

# %% [markdown]
# ## 1. The likelihood, in words
#
# We have data $x_1, \dots, x_N$, assumed to be **independent draws from one unknown distribution**
# $p_\text{data}$, and a family of models $p_\theta$ with parameters $\theta$. The **likelihood** of
# $\theta$ is the probability (or density) the model gives to the data we actually saw,
#
# $$L(\theta) = \prod_{n=1}^N p_\theta(x_n), \qquad
#   \ell(\theta) = \log L(\theta) = \sum_{n=1}^N \log p_\theta(x_n).$$
#
# Read it as a function of $\theta$ with the data fixed: it scores how well each setting of the
# parameters explains the data. It is **not** a distribution over $\theta$ (it need not integrate to
# 1 over $\theta$). The **maximum-likelihood estimate** is
#
# $$\hat\theta = \arg\max_\theta \ell(\theta) = \arg\min_\theta \underbrace{-\frac1N \sum_n \log p_\theta(x_n)}_{\text{average NLL: the loss}} .$$
#
# We always work with the **log**: it turns the product into a sum (easy to differentiate, to
# average over minibatches) and avoids underflow. A product of $N$ densities of typical size 0.3 is
# about $0.3^N$, zero in floating point for any real data set:

# %%
mu_true, sigma_true = 1.5, 0.8
x1d = D.Normal(mu_true, sigma_true).sample((N_TOY,))
densities = D.Normal(mu_true, sigma_true).log_prob(x1d).exp()
print(f"product of {N_TOY} densities in float32: {torch.prod(densities).item()}  (underflow)")
print(f"sum of their logs:                     {D.Normal(mu_true, sigma_true).log_prob(x1d).sum().item():.1f}")

# %% [markdown]
# Below, the average log-likelihood of a small 1-D data set as a function of the mean (with $\sigma$
# fixed) and of the standard deviation (with $\mu$ at its MLE). Each curve peaks at the MLE: the
# sample mean, and the standard deviation computed with $1/N$ (more on that $1/N$ in a moment).

# %%
x_small = x1d[:20].double()
mus = torch.linspace(-0.5, 3.5, 401, dtype=torch.float64)
sigmas = torch.linspace(0.3, 2.5, 401, dtype=torch.float64)
mu_hat = x_small.mean()
sigma_hat = ((x_small - mu_hat) ** 2).mean().sqrt()  # the MLE: 1/N
ll_mu = D.Normal(mus[:, None], sigma_true).log_prob(x_small).mean(1)
ll_sigma = D.Normal(mu_hat, sigmas[:, None]).log_prob(x_small).mean(1)

fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
axes[0].hist(x_small.numpy(), bins=10, density=True, color="0.75", label="20 data points")
grid1 = torch.linspace(-1.5, 4.5, 300, dtype=torch.float64)
axes[0].plot(grid1, D.Normal(mu_hat, sigma_hat).log_prob(grid1).exp(), label="MLE Gaussian")
axes[0].plot(grid1, D.Normal(mu_true, sigma_true).log_prob(grid1).exp(), "--", label="true density")
axes[0].legend(frameon=False, fontsize=8)
axes[0].set_title("data and fits")
axes[1].plot(mus, ll_mu)
axes[1].axvline(mu_hat, color="C1", ls="--", label=f"sample mean {mu_hat:.2f}")
axes[1].set(xlabel=r"$\mu$", ylabel="average log-likelihood", title=r"as a function of $\mu$")
axes[1].legend(frameon=False, fontsize=8)
axes[2].plot(sigmas, ll_sigma)
axes[2].axvline(sigma_hat, color="C1", ls="--", label=rf"$\hat\sigma$ (1/N) = {sigma_hat:.2f}")
axes[2].set(xlabel=r"$\sigma$", title=r"as a function of $\sigma$ ($\mu = \hat\mu$)")
axes[2].legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

assert abs(float(mus[ll_mu.argmax()] - mu_hat)) < 0.011, "the log-likelihood in mu should peak at the sample mean"
assert abs(float(sigmas[ll_sigma.argmax()] - sigma_hat)) < 0.006, "the log-likelihood in sigma should peak at the 1/N std"

# %% [markdown]
# ## 2. The MLE of a Gaussian, derived and checked
#
# For $x_n \in \mathbb R^D$ and $p_\theta = \mathcal N(\mu, \Sigma)$,
#
# $$\ell(\mu, \Sigma) = -\frac N2 \big[D \log 2\pi + \log\det\Sigma\big]
#   - \frac12 \sum_{n=1}^N (x_n - \mu)^\top \Sigma^{-1} (x_n - \mu).$$
#
# **Mean.** $\nabla_\mu \ell = \Sigma^{-1} \sum_n (x_n - \mu) = 0$ gives
# $\hat\mu = \frac1N \sum_n x_n$, the sample mean, whatever $\Sigma$ is.
#
# **Covariance.** Write $\Lambda = \Sigma^{-1}$ (the precision), so $\log\det\Sigma = -\log\det\Lambda$, and use
# $\partial_\Lambda \log\det\Lambda = \Lambda^{-1}$ and $\partial_\Lambda\, v^\top\Lambda v = v v^\top$:
#
# $$\nabla_\Lambda \ell = \frac N2 \Sigma - \frac12 \sum_n (x_n - \hat\mu)(x_n - \hat\mu)^\top = 0
#   \quad\Longrightarrow\quad
#   \hat\Sigma = \frac1N \sum_{n=1}^N (x_n - \hat\mu)(x_n - \hat\mu)^\top .$$
#
# (The log-likelihood is concave in $(\mu, \Lambda)$ jointly in the right parametrisation, so this
# stationary point is the global maximum.) `GaussianDensity` implements exactly this. Let us check
# three things numerically on correlated 2-D data: the closed form, a **zero gradient** of the
# log-likelihood at the MLE (by autograd through `torch.distributions`), and that any perturbation
# lowers the likelihood.

# %%
true_cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
true_gauss = D.MultivariateNormal(torch.tensor([1.0, -0.5], dtype=torch.float64), covariance_matrix=true_cov)
x2d = true_gauss.sample((N_TOY,))

gauss = GaussianDensity().fit(x2d)
centred = x2d - x2d.mean(0)
print("MLE mean      :", gauss.mean.numpy().round(4), "  closed form:", x2d.mean(0).numpy().round(4))
print("MLE covariance:", gauss.covariance.numpy().round(4).tolist())
assert torch.allclose(gauss.covariance, centred.T @ centred / len(x2d)), "the MLE covariance divides by N"

# gradient of the average log-likelihood at the MLE, w.r.t. the mean and the covariance
mu_var = gauss.mean.clone().requires_grad_(True)
cov_var = gauss.covariance.clone().requires_grad_(True)
avg_ll = D.MultivariateNormal(mu_var, covariance_matrix=cov_var).log_prob(x2d).mean()
avg_ll.backward()
print(f"|grad wrt mu|max = {mu_var.grad.abs().max():.2e}, |grad wrt Sigma|max = {cov_var.grad.abs().max():.2e}")
assert mu_var.grad.abs().max() < 1e-8 and cov_var.grad.abs().max() < 1e-8, "the gradient vanishes at the MLE"

best = gauss.log_prob(x2d).mean()
for name, mu_, cov_ in [
    ("mean + 0.05", gauss.mean + 0.05, gauss.covariance),
    ("covariance x 1.1", gauss.mean, gauss.covariance * 1.1),
    ("unbiased covariance (1/(N-1))", gauss.mean, centred.T @ centred / (len(x2d) - 1)),
]:
    other = D.MultivariateNormal(mu_, covariance_matrix=cov_).log_prob(x2d).mean()
    print(f"{name:<30} average log-lik {other:.6f}, {float(other - best):+.2e} below the MLE's {best:.6f}")
    assert other < best

# %% [markdown]
# The fitted density, drawn with `viz.plot_density_2d`, next to the true one:

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
viz.plot_density_2d(true_gauss.log_prob, (-3, 5), (-4.5, 3.5), grid=GRID, ax=axes[0], title="true density")
viz.plot_density_2d(gauss.log_prob, (-3, 5), (-4.5, 3.5), grid=GRID, samples=x2d[:500], ax=axes[1], title="MLE fit (+ 500 data points)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### The MLE of the variance is biased
#
# $\hat\sigma^2 = \frac1N \sum_n (x_n - \hat\mu)^2$ measures the spread around $\hat\mu$, which was
# fitted to the same points and is therefore closer to them than the true mean is. On average it
# underestimates: $\mathbb E[\hat\sigma^2] = \frac{N-1}{N}\sigma^2$. Dividing by $N-1$ (Bessel's
# correction, the default of `np.var(ddof=1)` and `torch.var`) removes the bias but is **not** the
# maximum-likelihood estimate. For large $N$ the difference vanishes; for $N = 5$ it is 20%.
# Simulating many data sets of size 5 from $\mathcal N(0, 1)$:

# %%
n_small = 5
sims = torch.randn(N_REPEATS, n_small, generator=generator, dtype=torch.float64)
var_mle = sims.var(dim=1, correction=0)  # 1/N
var_unbiased = sims.var(dim=1, correction=1)  # 1/(N-1)
print(f"average MLE variance     : {var_mle.mean():.4f}   theory (N-1)/N = {(n_small - 1) / n_small:.4f}")
print(f"average unbiased variance: {var_unbiased.mean():.4f}   theory 1")
se = float(var_mle.std() / math.sqrt(N_REPEATS))
assert abs(float(var_mle.mean()) - 0.8) < 5 * se, "E[MLE variance] = (N-1)/N sigma^2"

# %% [markdown]
# ## 3. Maximum likelihood = minimum KL divergence
#
# Why is this the right principle? Divide the log-likelihood by $N$: it is an expectation under the
# **empirical distribution** $\hat p(x) = \frac1N\sum_n \delta(x - x_n)$, and (notebook 01) an expected
# log-probability is a negative cross-entropy:
#
# $$\frac1N \sum_n \log p_\theta(x_n) = \mathbb E_{\hat p}[\log p_\theta(x)] = -H(\hat p, p_\theta)
#   = -H(\hat p) - \mathrm{KL}(\hat p \,\|\, p_\theta).$$
#
# $H(\hat p)$ does not depend on $\theta$, so **maximising the likelihood minimises
# $\mathrm{KL}(\hat p\,\|\,p_\theta)$**, and as $N \to \infty$ ($\hat p \to p_\text{data}$) it minimises
# $\mathrm{KL}(p_\text{data}\,\|\,p_\theta)$: the *forward* KL, which punishes the model for giving low
# probability where data occur (mode-covering, as seen in notebook 01). When $p_\text{data}$ is not
# in the family, the MLE finds its closest member in this sense.
#
# A discrete example where we can compute everything exactly: data on $\{0, \dots, 5\}$ from a
# distribution that is **not** binomial, and the model family $\mathrm{Binomial}(5, \theta)$.

# %%
p_data = torch.tensor([0.05, 0.10, 0.30, 0.35, 0.15, 0.05], dtype=torch.float64)
xs = D.Categorical(p_data).sample((N_KL,))
p_hat = torch.bincount(xs, minlength=6).double() / N_KL  # empirical distribution

thetas = torch.linspace(0.01, 0.99, 981, dtype=torch.float64)
support = torch.arange(6, dtype=torch.float64)
model_pmf = D.Binomial(5, probs=thetas[:, None]).log_prob(support).exp()  # (T, 6)
avg_ll = D.Binomial(5, probs=thetas[:, None]).log_prob(xs.double()).mean(1)  # from the samples directly
kl_hat = P.kl_divergence(p_hat.expand_as(model_pmf), model_pmf)  # KL(p_hat || p_theta) for every theta
identity_gap = (avg_ll - (-P.entropy(p_hat) - kl_hat)).abs().max()
print(f"max |avg log-lik - (-H(p_hat) - KL(p_hat || p_theta))| over the grid: {identity_gap:.2e}")
assert identity_gap < 1e-10, "average log-likelihood = -entropy - KL"

theta_mle = float(xs.double().mean() / 5)  # closed-form MLE of a binomial: sample mean / 5
print(f"argmax likelihood {thetas[avg_ll.argmax()]:.3f} = argmin KL {thetas[kl_hat.argmin()]:.3f} "
      f"= closed form mean/5 {theta_mle:.3f}")
assert avg_ll.argmax() == kl_hat.argmin()

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
axes[0].plot(thetas, avg_ll)
axes[0].set(xlabel=r"$\theta$", ylabel="average log-likelihood", title="maximise this ...", ylim=(-6, None))
axes[1].plot(thetas, kl_hat, color="C3")
axes[1].set(xlabel=r"$\theta$", ylabel=r"KL$(\hat p\,\|\,p_\theta)$ (nats)", title="... = minimise this", ylim=(0, 4))
for ax in axes[:2]:
    ax.axvline(theta_mle, color="k", ls=":", lw=1)
best_pmf = D.Binomial(5, probs=torch.tensor(theta_mle, dtype=torch.float64)).log_prob(support).exp()
axes[2].bar(support - 0.2, p_hat, width=0.4, label=r"data $\hat p$")
axes[2].bar(support + 0.2, best_pmf, width=0.4, label=rf"Binomial(5, {theta_mle:.2f})")
axes[2].set(xlabel="x", title="closest binomial in KL")
axes[2].legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Mixture models and the EM algorithm
#
# One Gaussian cannot describe data with several clusters. A **mixture of $K$ Gaussians**
#
# $$p_\theta(x) = \sum_{k=1}^K \pi_k\, \mathcal N(x \mid \mu_k, \Sigma_k), \qquad \pi_k \ge 0,\ \sum_k \pi_k = 1,$$
#
# is a **latent-variable model**: first draw a component $z \sim \mathrm{Cat}(\pi)$, then
# $x \sim \mathcal N(\mu_z, \Sigma_z)$, and forget $z$. This is the simplest ancestor of the VAE
# (notebook 04). The log-likelihood $\sum_n \log \sum_k \pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k)$ has a sum
# inside the log, and setting its gradient to zero has no closed-form solution. But *if we knew
# which component produced each point*, each component would be fitted by the Gaussian MLE of
# section 2. **Expectation-maximisation** alternates between guessing the components softly and
# refitting:
#
# **E-step** (responsibilities: Bayes' rule for $z$ given $x_n$, computed in log space with logsumexp)
#
# $$r_{nk} = p(z = k \mid x_n) = \frac{\pi_k\, \mathcal N(x_n \mid \mu_k, \Sigma_k)}{\sum_j \pi_j\, \mathcal N(x_n \mid \mu_j, \Sigma_j)} .$$
#
# **M-step** (weighted Gaussian MLEs, with $N_k = \sum_n r_{nk}$ the soft count of component $k$)
#
# $$\pi_k = \frac{N_k}{N}, \qquad \mu_k = \frac1{N_k} \sum_n r_{nk}\, x_n, \qquad
#   \Sigma_k = \frac1{N_k} \sum_n r_{nk} (x_n - \mu_k)(x_n - \mu_k)^\top .$$
#
# **Why the likelihood never decreases.** For any distribution $q_n(k)$ over components, Jensen's
# inequality ($\log$ is concave) gives a lower bound
#
# $$\log p_\theta(x_n) = \log \sum_k q_n(k) \frac{\pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k)}{q_n(k)}
#   \;\ge\; \sum_k q_n(k) \log \frac{\pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k)}{q_n(k)} ,$$
#
# with equality when $q_n(k) = r_{nk}$. The E-step makes the bound touch $\ell(\theta_t)$; the M-step
# maximises the bound over $\theta$ (the formulas above); so $\ell(\theta_{t+1}) \ge \text{bound}(\theta_{t+1})
# \ge \text{bound}(\theta_t) = \ell(\theta_t)$. The same bound, with a neural network for $q$, is the
# ELBO of notebook 04. (In practice a tiny $\varepsilon I$, `reg_covar`, is added to each $\Sigma_k$ so
# that a component that collapses onto a single point cannot make its covariance singular.)
#
# Our data: 2-D samples from the `"8gaussians"` toy distribution, whose true density we know.

# %%
x_toy = data.toy2d("8gaussians", N_TOY, seed=0)
true_toy = data.toy2d_distribution("8gaussians")
true_ll = float(true_toy.log_prob(x_toy).mean())

snapshots = {}  # EM iteration -> a copy of the model at that iteration


def keep_snapshot(model, iteration):
    """Called by fit() after every EM iteration (0 = the initial guess)."""
    if iteration in (0, 1, 2, 5, 10):
        snapshots[iteration] = copy.deepcopy(model)


gmm = GaussianMixture(8, init="random", seed=9, max_iter=EM_ITERS, tol=1e-6).fit(x_toy, callback=keep_snapshot)
snapshots[gmm.n_iter] = copy.deepcopy(gmm)
print(f"EM ran {gmm.n_iter} iterations (converged: {gmm.converged}); "
      f"final average log-likelihood {gmm.history[-1]:.4f}, true density's {true_ll:.4f}")

# %% [markdown]
# First, numerical checks of the two steps on the fitted model: the responsibilities are Bayes' rule
# (`probability.bayes_posterior` from notebook 01 with prior $\pi$ and likelihoods
# $\mathcal N(x_n\mid\mu_k,\Sigma_k)$); Jensen's bound equals the log-likelihood when $q = r$ and is
# below it for any other $q$; and one M-step on the E-step's responsibilities reproduces the
# closed-form means.

# %%
components = D.MultivariateNormal(gmm.means, covariance_matrix=gmm.covariances)  # K Gaussians, batched
x64 = x_toy.double()
log_lik_nk = components.log_prob(x64[:, None, :])  # (N, K): log N(x_n | mu_k, Sigma_k)
r = gmm.responsibilities(x64)  # (N, K)
for n in range(3):
    bayes = P.bayes_posterior(gmm.weights, log_lik_nk[n], log_likelihood=True)
    assert torch.allclose(r[n], bayes, atol=1e-10), "responsibilities are the posterior p(z = k | x_n)"


def jensen_bound(q):
    """sum_n sum_k q_nk log(pi_k N(x_n | k) / q_nk) / N, for q: (N, K) rows summing to 1."""
    return float((q * (gmm.weights.log() + log_lik_nk - torch.log(q.clamp_min(1e-300)))).sum(1).mean())


uniform_q = torch.full_like(r, 1 / 8)
print(f"log-lik {float(gmm.log_prob(x64).mean()):.6f} = bound(q=r) {jensen_bound(r):.6f} "
      f">= bound(q=uniform) {jensen_bound(uniform_q):.4f}")
assert abs(jensen_bound(r) - float(gmm.log_prob(x64).mean())) < 1e-8 and jensen_bound(uniform_q) < jensen_bound(r)

refit = copy.deepcopy(gmm).m_step(x64, r.log())
assert torch.allclose(refit.means, (r.T @ x64) / r.sum(0)[:, None], atol=1e-10), "M-step mean = weighted average"

# %% [markdown]
# Now the fit itself. The start (iteration 0) is deliberately poor: `init="random"` puts the
# centres on random data points, and one hard assignment gives the first guess. Watch the components
# move to the clusters over the iterations, and the log-likelihood climb, monotonically, towards the
# true density's.

# %%
its = sorted(snapshots)
fig, axes = plt.subplots(1, len(its), figsize=(2.6 * len(its), 2.8))
for ax, it in zip(axes, its):
    viz.plot_density_2d(snapshots[it].log_prob, (-4, 4), (-4, 4), grid=GRID, ax=ax,
                        samples=x_toy[:300], title=f"EM iteration {it}")
    ax.plot(*snapshots[it].means.T.numpy(), "r+", ms=8, mew=2)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(gmm.history, "o-", ms=3, label="EM (K = 8)")
ax.axhline(true_ll, color="k", ls="--", lw=1, label="true density")
ax.set(xlabel="EM iteration", ylabel="average log-likelihood", title="EM never decreases the likelihood")
ax.legend(frameon=False)
fig.tight_layout()
plt.show()
assert np.all(np.diff(gmm.history) >= -1e-10), "the EM log-likelihood must be non-decreasing"

# %% [markdown]
# **EM finds a local maximum.** Different starts can end in different places, for example with two
# components sharing one cluster while another cluster gets none. In practice we run EM from several
# starts (`n_init`) and keep the best, and use a smarter start: **k-means++** spreads the initial
# centres out by drawing each new one with probability proportional to its squared distance from the
# centres chosen so far.

# %%
finals = {init: [GaussianMixture(8, init=init, seed=s, max_iter=EM_ITERS).fit(x_toy).history[-1] for s in range(EM_SEEDS)]
          for init in ("random", "kmeans++")}
for init, vals in finals.items():
    print(f"{init:>9}: final average log-likelihood over {EM_SEEDS} starts: " + ", ".join(f"{v:.3f}" for v in sorted(vals)))

# %% [markdown]
# ## 5. Kernel density estimation
#
# A **kernel density estimate** (KDE) puts a small Gaussian "bump" of width $h$ (the **bandwidth**) on
# every training point:
#
# $$p_h(x) = \frac1N \sum_{i=1}^N \mathcal N(x \mid x_i, h^2 I), \qquad
#   \log p_h(x) = \operatorname{logsumexp}_i\Big(-\frac{\|x - x_i\|^2}{2h^2}\Big) - \log N - \frac D2 \log(2\pi h^2).$$
#
# It is a mixture with one component per data point, equal weights and a shared covariance
# $h^2 I$; nothing is fitted, the data *are* the parameters. The bandwidth decides everything: too small
# and the density is a set of spikes on the training points, too large and all structure is blurred.
# First, a check that it really is that mixture:

# %%
x_kde = x_toy[:200].double()
h = 0.3
kde = KernelDensity(h).fit(x_kde)
as_mixture = GaussianMixture(len(x_kde), covariance_type="diag").set_params(
    torch.full((len(x_kde),), 1 / len(x_kde), dtype=torch.float64), x_kde, torch.full_like(x_kde, h**2)
)
probe = x_toy[-50:]
assert torch.allclose(kde.log_prob(probe), as_mixture.log_prob(probe), atol=1e-5), "a KDE is an equal-weight mixture"
print("KDE log p at 3 points:", kde.log_prob(probe[:3]).numpy().round(4), " mixture:", as_mixture.log_prob(probe[:3]).numpy().round(4))

# %% [markdown]
# How to choose $h$? **Not** by the training likelihood: at $h \to 0$ each training point sits on its
# own infinitely tall spike and the training log-likelihood goes to $+\infty$. Instead we maximise the
# likelihood of **held-out** (validation) points, `select_bandwidth(train, val, grid)`. Here on the
# `"moons"` data set:

# %%
moons_train = data.toy2d("moons", N_TOY // 2, seed=1)
moons_val = data.toy2d("moons", N_TOY // 2, seed=2)
bw_grid = torch.logspace(-2, 0.3, N_BANDWIDTHS)
selection = select_bandwidth(moons_train, moons_val, bw_grid)
train_ll_bw = torch.stack([KernelDensity(float(b)).fit(moons_train).log_prob(moons_train).mean() for b in bw_grid])
print(f"bandwidth chosen on validation data: h = {selection.bandwidth:.3f}")

fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
for ax, (hh, name) in zip(axes[:3], [(0.05, "too small"), (selection.bandwidth, "chosen on val"), (0.8, "too large")]):
    viz.plot_density_2d(KernelDensity(hh).fit(moons_train).log_prob, (-4, 4), (-3, 3), grid=GRID, ax=ax,
                        title=f"h = {hh:.3f}: {name}")
axes[3].semilogx(bw_grid, train_ll_bw, label="training points")
axes[3].semilogx(bw_grid, selection.val_log_lik, label="validation points")
axes[3].axvline(selection.bandwidth, color="k", ls=":", lw=1)
axes[3].set(xlabel="bandwidth h", ylabel="average log-likelihood", ylim=(-8, 3), title="choose h on held-out data")
axes[3].legend(frameon=False, fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Over-fitting: training vs test likelihood
#
# A flexible enough model can always raise its **training** likelihood: a mixture with one component
# per point, or a KDE with a tiny bandwidth, memorises the data. What we care about is the likelihood
# of **new** data from the same distribution. Below, mixtures with more and more components and KDEs
# with smaller and smaller bandwidths are fitted to only 150 moons points and scored on those points
# and on fresh test points. (Reported as average negative log-likelihood, lower is better.)

# %%
few_train = data.toy2d("moons", 150, seed=3)
test_pts = data.toy2d("moons", N_TOY, seed=4)
nll = {"train": [], "test": []}
for k in K_GRID:
    model = GaussianMixture(k, reg_covar=1e-4, seed=0, max_iter=EM_ITERS).fit(few_train)
    nll["train"].append(-float(model.log_prob(few_train).mean()))
    nll["test"].append(-float(model.log_prob(test_pts).mean()))
kde_train = [-float(KernelDensity(float(b)).fit(few_train).log_prob(few_train).mean()) for b in bw_grid]
kde_test = [-float(KernelDensity(float(b)).fit(few_train).log_prob(test_pts).mean()) for b in bw_grid]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
axes[0].semilogx(K_GRID, nll["train"], "o-", label="train (150 points)")
axes[0].semilogx(K_GRID, nll["test"], "o-", label="test (new points)")
axes[0].set(xlabel="number of components K", ylabel="average NLL (nats)", title="mixture of Gaussians", ylim=(-4, 8))
if nll["test"][-1] > 8:
    axes[0].annotate(f"K = {K_GRID[-1]}: test NLL {nll['test'][-1]:.0f}", xy=(K_GRID[-1], 8), xytext=(K_GRID[-1] / 12, 6.5),
                     arrowprops=dict(arrowstyle="->"), fontsize=8)
axes[1].semilogx(bw_grid, kde_train, label="train (150 points)")
axes[1].semilogx(bw_grid, kde_test, label="test (new points)")
axes[1].set(xlabel="bandwidth h (smaller = more flexible)", title="kernel density estimate", ylim=(-4, 8))
axes[1].invert_xaxis()
for ax in axes:
    ax.legend(frameon=False)
fig.tight_layout()
plt.show()
best_k = K_GRID[int(np.argmin(nll["test"]))]
print(f"mixture: test NLL is lowest at K = {best_k}; train NLL keeps falling as K grows")
assert nll["train"][-1] < nll["train"][0] and nll["test"][-1] > min(nll["test"]), "over-fitting: train improves, test gets worse"

# %% [markdown]
# The training curves fall forever; the test curves have a minimum. This is over-fitting, and it is
# why every likelihood in this course is reported on a **test split**, with model sizes chosen on a
# separate **validation split** (or, for mixtures, with a criterion such as BIC, $-2\ell + P \log N$,
# which charges for the $P$ parameters: `GaussianMixture.bic`).

# %% [markdown]
# ## 7. Real data: NLL and bits/dim on the 8x8 digits
#
# scikit-learn's 8x8 digits are $D = 64$ pixels with $L = 17$ grey levels (0..16). Split: 1,000 train,
# 350 validation, 447 test.

# %%
digits = {split: data.digits8x8(split, value_range="counts") for split in ("train", "val", "test")}
LEVELS, D_PIX = data.DIGITS8X8_LEVELS, 64
counts = {split: s.x.flatten(1).double() for split, s in digits.items()}  # (N, 64) levels 0..16
viz.show_images(digits["train"].x[:32], nrow=16, value_range="counts", levels=LEVELS, title="training digits")
plt.show()

# %% [markdown]
# ### Discrete data need dequantisation
#
# Our models are **densities** over $\mathbb R^{64}$, but the data are **discrete**. Fitting a density
# to discrete values directly is meaningless: the density can pile up on the few values the data take,
# and its log-likelihood then grows without bound. Three pixels of the digits are 0 in every training
# image, so a Gaussian fitted to the raw pixel values gives them variance 0, plus the regularisation
# $\varepsilon$. Each such pixel contributes $-\frac12\log(2\pi\varepsilon)$ to the log-likelihood of
# every image, which grows without limit as $\varepsilon \to 0$:

# %%
unit_train = counts["train"] / 16
n_constant = int((unit_train.std(0) == 0).sum())
print(f"pixels that are constant over the training set: {n_constant} of {D_PIX}")
raw_nll = {}
for eps in (1e-2, 1e-4, 1e-8, 1e-12, 1e-16):
    g_raw = GaussianDensity(reg_covar=eps).fit(unit_train)
    raw_nll[eps] = float(-g_raw.log_prob(unit_train).mean())
    print(f"Gaussian on raw pixels, reg_covar={eps:g}: NLL = {raw_nll[eps]:7.1f} nats per image, "
          f"'bits/dim' = {nats_to_bits_per_dim(raw_nll[eps], D_PIX):6.2f}")
slope = (raw_nll[1e-12] - raw_nll[1e-16]) / 4  # nats gained per factor 10 in eps
print(f"each factor 10 smaller eps: {slope:.3f} nats more, = {n_constant} x ln(10)/2 = {n_constant * math.log(10) / 2:.3f}")
assert abs(slope - n_constant * math.log(10) / 2) < 0.01

# %% [markdown]
# Negative "bits" and no limit: the number says nothing about the model. The fix is **uniform
# dequantisation**: add uniform noise $u \sim \mathcal U[0,1)^D$ and rescale,
# $y = (x + u)/L \in [0, 1)^D$, so that each discrete value $x$ becomes a little cube of volume $L^{-D}$.
# A density $p$ on $y$ defines a discrete model $P(x) = \int_{\text{cube}(x)} p(y)\,dy$, and by Jensen's
# inequality
#
# $$-\log P(x) \;\le\; \mathbb E_{u}\Big[-\log p\Big(\frac{x + u}{L}\Big)\Big] + D \log L ,$$
#
# an honest **upper bound** on the discrete negative log-likelihood, in **nats per image**
# (Theis, van den Oord & Bethge, 2016). Dividing by $D \ln 2$ gives **bits per dimension**, comparable
# across image sizes: the uniform distribution over 17 levels scores exactly $\log_2 17 = 4.09$ bits/dim,
# a model must beat that. `course_lib.metrics.likelihood` provides `dequantize`,
# `discrete_nll_from_density` and `nats_to_bits_per_dim`. Two checks: the uniform density $p(y) = 1$,
# and the bound against the exact discrete likelihood of a 1-D Gaussian (computed from its CDF):

# %%
uniform_nats = float(discrete_nll_from_density(0.0, D_PIX, LEVELS))  # -log p(y) = 0 for p = 1 on the cube
uniform_bpd = float(nats_to_bits_per_dim(uniform_nats, D_PIX))
print(f"uniform: {uniform_nats:.2f} nats per image = {uniform_bpd:.4f} bits/dim = log2(17) = {math.log2(17):.4f}")
assert abs(uniform_bpd - math.log2(17)) < 1e-12

normal1d = D.Normal(torch.tensor(0.45, dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64))
levels1d = torch.arange(17, dtype=torch.float64)
exact = -torch.log(normal1d.cdf((levels1d + 1) / 17) - normal1d.cdf(levels1d / 17))  # -log P(x), exact
u = torch.rand(20_000, 17, generator=generator, dtype=torch.float64)
bound = -normal1d.log_prob((levels1d + u) / 17).mean(0) + math.log(17)  # Monte Carlo of the bound
print("exact -log P(x):", exact[6:11].numpy().round(3), "\nbound          :", bound[6:11].numpy().round(3))
assert (bound >= exact - 1e-3).all(), "dequantisation gives an upper bound on the discrete NLL"

# %% [markdown]
# ### Fitting and scoring the three models
#
# Each model is fitted on one dequantised draw of the training images, its hyper-parameters are chosen
# on the validation images, never on the test images, and the test NLL is averaged over `DRAWS`
# dequantisation draws. Here we choose the number of components of a diagonal-covariance mixture and
# the KDE bandwidth live. The Gaussian's regularisation ($10^{-4}$) and the full-covariance mixture's
# $K = 3$ and $\varepsilon = 3 \cdot 10^{-4}$ were chosen on the validation split in the same way by
# `bench/density_digits.py`, which searches a larger grid (its table is in `bench/RESULTS.md`).

# %%
deq_gen = torch.Generator().manual_seed(0)
y_train = dequantize(counts["train"], LEVELS, deq_gen)
y_val = [dequantize(counts["val"], LEVELS, deq_gen) for _ in range(DRAWS)]
y_test = [dequantize(counts["test"], LEVELS, deq_gen) for _ in range(DRAWS)]


def nll_nats(model, draws):
    """Discrete NLL bound in nats per image, averaged over dequantisation draws."""
    return float(np.mean([float(discrete_nll_from_density(-model.log_prob(y).mean(), D_PIX, LEVELS)) for y in draws]))


def bpd(nats):
    return float(nats_to_bits_per_dim(nats, D_PIX))


models = {}
models["Gaussian"] = GaussianDensity(reg_covar=1e-4).fit(y_train)

k_candidates = sorted([10, 5, 20, 40][: config.budget(full=4, quick=1)])  # quick mode tries K = 10 only
candidates = {k: GaussianMixture(k, covariance_type="diag", reg_covar=1e-4, n_init=N_INIT, max_iter=EM_ITERS, seed=0).fit(y_train)
              for k in k_candidates}
val_bpd = {k: bpd(nll_nats(m, y_val)) for k, m in candidates.items()}
best_k_digits = min(val_bpd, key=val_bpd.get)
print("diagonal GMM, val bits/dim by K:", {k: round(v, 3) for k, v in val_bpd.items()}, "-> K =", best_k_digits)
models[f"GMM diag, K={best_k_digits}"] = candidates[best_k_digits]
full_gmm = GaussianMixture(3, covariance_type="full", reg_covar=3e-4, n_init=N_INIT, max_iter=EM_ITERS, seed=0)
models["GMM full, K=3"] = full_gmm.fit(y_train)

kde_sel = select_bandwidth(y_train, y_val[0], torch.logspace(-1.2, -0.6, config.budget(full=13, quick=4)))
models[f"KDE, h={kde_sel.bandwidth:.3f}"] = KernelDensity(kde_sel.bandwidth).fit(y_train)

results = {"uniform": (uniform_nats, uniform_nats)}
for name, model in models.items():
    results[name] = (nll_nats(model, [y_train]), nll_nats(model, y_test))
print(f"\n{'model':<20} {'train bits/dim':>14} {'test NLL (nats/image)':>22} {'test bits/dim':>14}")
for name, (tr, te) in results.items():
    print(f"{name:<20} {bpd(tr):>14.3f} {te:>22.1f} {bpd(te):>14.3f}")

fig, ax = plt.subplots(figsize=(6.5, 2.8))
names = list(results)
bars = ax.barh(names, [bpd(results[n][1]) for n in names], color=["0.6"] + [f"C{i}" for i in range(len(names) - 1)])
ax.bar_label(bars, fmt="%.3f", padding=3, fontsize=8)
ax.axvline(uniform_bpd, color="k", ls=":", lw=1)
ax.set(xlabel="test bits/dim (lower is better)", xlim=(2.5, 4.3), title="8x8 digits, test split")
ax.invert_yaxis()
fig.tight_layout()
plt.show()

# %% [markdown]
# The Gaussian and the mixtures beat the uniform baseline by more than a bit per pixel, the mixtures
# most. The KDE, which was so good in 2-D, gains only about half a bit: in 64 dimensions a thousand
# points are far too few to cover the space with bumps (the **curse of dimensionality**), so it needs
# a wide bandwidth that blurs everything. For comparison, the deep models of the later notebooks reach clearly lower numbers on
# these same digits.
#
# ### Samples
#
# Sampling a mixture is ancestral: draw a component $k \sim \mathrm{Cat}(\pi)$, then
# $y \sim \mathcal N(\mu_k, \Sigma_k)$, then quantise back to levels, $x = \lfloor L y \rfloor$ clipped
# to $0..16$. The KDE samples by picking a training image and adding noise of scale $h$.

# %%
def to_levels(y):
    """Quantise dequantised samples y (B, 64) back to images (B, 1, 8, 8) of levels 0..16."""
    return torch.floor(y * LEVELS).clamp(0, LEVELS - 1).reshape(-1, 1, 8, 8).float()


sample_gen = torch.Generator().manual_seed(1)
shown = ["Gaussian", f"GMM diag, K={best_k_digits}", "GMM full, K=3", f"KDE, h={kde_sel.bandwidth:.3f}"]
fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 4.3))
samples = {}
for ax, name in zip(axes, shown):
    samples[name] = to_levels(models[name].sample(36, generator=sample_gen))
    viz.show_images(samples[name], nrow=6, value_range="counts", levels=LEVELS, ax=ax,
                    title=f"{name}\n{bpd(results[name][1]):.2f} bits/dim")
fig.tight_layout()
plt.show()

# %% [markdown]
# The mixture samples are recognisable but noisy: given its component, a diagonal mixture draws every
# pixel independently, so strokes come out speckled; the full-covariance samples are smoother. The KDE
# samples are the most recognisable digits, although the KDE has by far the **worst** likelihood of
# the three. The reason: a KDE sample is a training image plus noise. The KDE has **memorised** its
# training set. Below, samples (top row of each panel) above the training image closest to each
# (bottom row): the KDE's are noisy copies, the mixture's are new images.

# %%
train_levels = counts["train"].float()
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
for ax, name in zip(axes, [f"KDE, h={kde_sel.bandwidth:.3f}", f"GMM diag, K={best_k_digits}"]):
    some = samples[name][:8]
    nearest = torch.cdist(some.flatten(1), train_levels).argmin(1)
    pairs = torch.cat([some, digits["train"].x[nearest]])
    viz.show_images(pairs, nrow=8, value_range="counts", levels=LEVELS, ax=ax,
                    title=f"{name}\nsamples (top), nearest training image (bottom)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Common misconceptions
#
# * **"Higher likelihood means better-looking samples."** Not necessarily, as just seen: the KDE has the
#   worst likelihood and the cleanest samples (memorised training images); a model can also score a good
#   likelihood while producing poor samples, because the likelihood is dominated by getting the many
#   small details (here, noise in every pixel) roughly right. Likelihood, sample quality and novelty are
#   different things; notebook 11 measures each.
# * **"Bits/dim of continuous and discrete data can be compared."** Only after dequantisation. A density
#   on raw discrete values can be made arbitrarily large (we got negative "bits/dim"), and a density on
#   $[0,1]$ data differs from one on $[0,255]$ data by $D \log 255$ nats. Report the discrete bound
#   $\mathbb E_u[-\log p((x+u)/L)] + D \log L$.
# * **"The MLE is unbiased."** The MLE of a Gaussian's variance divides by $N$ and is biased by the factor
#   $(N-1)/N$. MLEs are *consistent* (right as $N \to \infty$), not in general unbiased; the unbiased
#   $1/(N-1)$ estimate is not the maximum-likelihood one.
# * **"The likelihood is the probability of the parameters."** $L(\theta) = p(\text{data} \mid \theta)$ is a
#   function of $\theta$ but not a distribution over it; turning it into one needs a prior and Bayes' rule.
# * **"A bigger training likelihood is a better model."** Training likelihood always rises with capacity
#   (more components, smaller bandwidth); judge on held-out data.
# * **"EM finds the maximum-likelihood mixture."** It finds a *local* maximum that depends on the start;
#   use several starts and a good initialisation (k-means++).
# * **"A negative log-likelihood cannot be negative."** For densities it can (a density can exceed 1);
#   for discrete data (probabilities $\le 1$) it cannot, which is one more reason to dequantise.

# %% [markdown]
# ## Self-check
#
# Each assertion states something you should now be able to predict; a failing one names the section
# to revisit. They run in quick mode too.

# %%
# 1. The Gaussian MLE is the sample mean and the 1/N covariance.
pts = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]], dtype=torch.float64)
g_check = GaussianDensity().fit(pts)
assert torch.allclose(g_check.mean, torch.tensor([1.0, 1.0], dtype=torch.float64)), "section 2: the MLE mean"
assert abs(float(g_check.covariance[0, 0]) - 2 / 3) < 1e-12, "section 2: the MLE variance divides by N = 3"

# 2. Average log-likelihood = -H(p_hat) - KL(p_hat || q): among all distributions q on {0..5}, the empirical
#    distribution itself has the highest likelihood (the lowest cross-entropy), whatever q you try.
q_other = torch.softmax(torch.randn(6, generator=generator, dtype=torch.float64), 0)
assert P.cross_entropy(p_hat, p_hat) < P.cross_entropy(p_hat, q_other), "section 3: the MLE over all categoricals is p_hat"

# 3. EM: the log-likelihood never decreases, responsibilities sum to one.
assert np.all(np.diff(gmm.history) >= -1e-10), "section 4: EM is monotone"
assert torch.allclose(gmm.responsibilities(x_toy).sum(1), torch.ones(len(x_toy))), "section 4: r_nk is a posterior"

# 4. A KDE's training likelihood grows as the bandwidth shrinks; the validation optimum is in between.
assert train_ll_bw[0] > train_ll_bw[-1] and 0 < int(selection.val_log_lik.argmax()) < len(bw_grid) - 1, "section 5"

# 5. Bits/dim: the uniform model over 17 levels scores log2(17); every fitted model beats it on test.
assert all(bpd(te) < math.log2(17) for name, (tr, te) in results.items() if name != "uniform"), "section 7"
print("all self-checks passed")

# %% [markdown]
# ## Summary
#
# * **Maximum likelihood** picks $\hat\theta = \arg\max_\theta \sum_n \log p_\theta(x_n)$; equivalently it
#   minimises $\mathrm{KL}(\hat p\,\|\,p_\theta)$, the forward KL from the data to the model.
# * **Gaussian**: $\hat\mu$ = sample mean, $\hat\Sigma = \frac1N\sum (x_n - \hat\mu)(x_n - \hat\mu)^\top$ (biased by
#   $(N-1)/N$); add $\varepsilon I$ when the data are degenerate.
# * **Mixtures** are latent-variable models fitted by **EM**: the E-step computes responsibilities by
#   Bayes' rule, the M-step refits weighted Gaussians; Jensen's bound makes every step non-decreasing,
#   but the result is a local maximum.
# * **KDE**: a mixture with a bump on every training point; the bandwidth must be chosen on held-out data.
# * **Over-fitting** shows as a gap between training and test NLL; choose capacity on a validation split.
# * **Discrete images**: dequantise, $y = (x + u)/L$, report $\mathbb E_u[-\log p(y)] + D\log L$ nats per image
#   or that divided by $D \ln 2$ in **bits/dim**. On the 8x8 digits the uniform baseline is 4.09, one Gaussian
#   about 3.0, a mixture about 2.9 bits/dim.
# * Likelihood is not sample quality: the KDE memorises its training set.
#
# **Next:** notebook 03 models discrete sequences exactly, with no dequantisation needed, by the chain
# rule of probability: autoregressive models. **Practise first** with the exercises in
# `exercises/02_maximum_likelihood.ipynb`: the Gaussian MLE, the E-step responsibilities, a KDE
# log-likelihood, and converting nats to bits/dim.

# %%
clock.report();
