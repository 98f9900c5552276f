# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: nbgrader,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # Exercises 01 · Probability basics
#
# Five questions that practise the tools of notebook 01 by building them yourself (10 points in total):
# an inverse-CDF sampler, a Monte Carlo estimate with its standard error, entropy and KL divergence,
# a Bayes posterior that survives thousands of observations, and a density by change of variables.
#
# **How exercises work.** Each question has an answer cell containing
#
# ```python
# # YOUR CODE HERE
# raise NotImplementedError()
# ```
#
# Replace those two lines with your answer, then run the test cell below it. A test cell that runs
# without an error means your answer passes the visible checks; when your work is graded, a few
# hidden checks are added and each test cell is worth the points shown. Test cells are locked: do
# not edit them. Run the notebook from the top (*Run → Run All Cells*) before you hand it in.
#
# Write your answers with plain `torch` operations. `course_lib.probability` contains reference
# versions of some of these functions: the point here is to write them yourself, so do not call it.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import torch
from torch import distributions as D

from course_lib import config

generator = config.seed_everything(0)
print(f"mode: {config.mode()}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · An inverse-CDF sampler (2 points)
#
# The **Rayleigh** distribution with scale $s > 0$ (the length of a 2-D Gaussian vector with
# standard deviation $s$ per coordinate) has CDF
#
# $$F(x) = 1 - \exp\!\left(-\frac{x^2}{2 s^2}\right), \qquad x \ge 0 .$$
#
# 1. Solve $u = F(x)$ for $x$ and implement `rayleigh_icdf(u, scale)`, elementwise on a tensor `u`
#    with values in $(0, 1)$.
# 2. Implement `sample_rayleigh(n, scale, generator)`: draw `n` uniforms with
#    `torch.rand(n, generator=generator, dtype=torch.float64)` and push them through your inverse CDF.
#    Use the generator you are given (the tests check that the same seed gives the same samples).

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def rayleigh_icdf(u: torch.Tensor, scale: float) -> torch.Tensor:
    """Inverse CDF of Rayleigh(scale): u in (0, 1), any shape -> x >= 0, same shape."""
    ### BEGIN SOLUTION
    return scale * torch.sqrt(-2.0 * torch.log1p(-u))
    ### END SOLUTION


def sample_rayleigh(n: int, scale: float, generator: torch.Generator) -> torch.Tensor:
    """n samples of Rayleigh(scale) by inverting the CDF: (n,) float64."""
    ### BEGIN SOLUTION
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return rayleigh_icdf(u, scale)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: from u = 1 - exp(-x^2 / (2 s^2)) you get x^2 = -2 s^2 log(1 - u); take the positive root.
#   The median (u = 1/2) is s * sqrt(2 log 2).
u = torch.tensor([0.5, 0.1, 0.9], dtype=torch.float64)
x = rayleigh_icdf(u, 2.0)
assert isinstance(x, torch.Tensor) and x.shape == u.shape, "rayleigh_icdf should return a tensor of the same shape as u"
assert abs(float(x[0]) - 2.0 * math.sqrt(2 * math.log(2))) < 1e-6, f"the median of Rayleigh(2) is {2 * math.sqrt(2 * math.log(2)):.4f}, got {float(x[0]):.4f}"
F = 1 - torch.exp(-x**2 / (2 * 2.0**2))
assert torch.allclose(F, u, atol=1e-9), "F(rayleigh_icdf(u)) should give back u"
samples = sample_rayleigh(20_000, 1.5, torch.Generator().manual_seed(1))
assert samples.shape == (20_000,), f"expected shape (20000,), got {tuple(samples.shape)}"
mean_exact = 1.5 * math.sqrt(math.pi / 2)
assert abs(float(samples.mean()) - mean_exact) < 0.03, f"the mean of Rayleigh(1.5) is {mean_exact:.3f}, your samples give {float(samples.mean()):.3f}"
print("Q1 passes the visible checks")
### BEGIN HIDDEN TESTS
from scipy import stats as _stats

_a = sample_rayleigh(500, 0.7, torch.Generator().manual_seed(5))
_b = sample_rayleigh(500, 0.7, torch.Generator().manual_seed(5))
assert torch.equal(_a, _b), "sample_rayleigh must draw its uniforms from the generator it is given"
assert (samples >= 0).all(), "Rayleigh samples are never negative"
assert _stats.kstest(samples.double().numpy(), _stats.rayleigh(scale=1.5).cdf).pvalue > 1e-4, "the samples do not follow Rayleigh(1.5)"
_tiny = rayleigh_icdf(torch.tensor([1e-12], dtype=torch.float64), 1.0)
assert torch.isfinite(_tiny).all() and float(_tiny) >= 0
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · A Monte Carlo estimate with its standard error (2 points)
#
# 1. Implement `mc_mean(values)`: given a 1-D tensor of values $f(x_1), \dots, f(x_n)$, return the
#    pair `(estimate, standard_error)` as Python floats, with
#    $\hat\mu_n = \frac1n\sum_i f(x_i)$ and $\mathrm{SE} = \hat\sigma/\sqrt n$, where $\hat\sigma$ is the
#    sample standard deviation with the $1/(n-1)$ normalisation.
# 2. Use it in `tail_probability(n, generator)` to estimate $P(X > 2)$ for $X \sim \mathcal N(0, 1)$
#    from `n` samples `torch.randn(n, generator=generator, dtype=torch.float64)`. Hint: a probability
#    is the expectation of an indicator, $P(X > 2) = \mathbb E[\mathbf 1\{X > 2\}]$.

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def mc_mean(values: torch.Tensor) -> tuple[float, float]:
    """(estimate, standard error) of the mean of the (n,) tensor ``values``."""
    ### BEGIN SOLUTION
    values = values.double()
    n = values.numel()
    return float(values.mean()), float(values.std(correction=1) / math.sqrt(n))
    ### END SOLUTION


def tail_probability(n: int, generator: torch.Generator) -> tuple[float, float]:
    """Monte Carlo estimate of P(X > 2), X ~ N(0, 1), from n samples: (estimate, standard error)."""
    ### BEGIN SOLUTION
    x = torch.randn(n, generator=generator, dtype=torch.float64)
    return mc_mean((x > 2).double())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: values.std() already divides by n - 1; the standard error divides that by sqrt(n).
#   For the tail probability, average (x > 2).double().
est, se = mc_mean(torch.tensor([1.0, 2.0, 3.0, 4.0]))
assert abs(est - 2.5) < 1e-12, f"the mean of [1, 2, 3, 4] is 2.5, got {est}"
assert abs(se - math.sqrt(5 / 3) / 2) < 1e-12, f"the standard error of [1, 2, 3, 4] is sqrt(5/3)/2 = {math.sqrt(5 / 3) / 2:.4f}, got {se:.4f}"
truth = 1 - 0.5 * (1 + math.erf(2 / math.sqrt(2)))  # 0.02275
p_hat, p_se = tail_probability(40_000, torch.Generator().manual_seed(2))
assert abs(p_hat - truth) < 4 * p_se, f"P(X > 2) = {truth:.5f}; your estimate {p_hat:.5f} ± {p_se:.5f} is too far off"
assert abs(p_se - math.sqrt(truth * (1 - truth) / 40_000)) < 1e-4, "for an indicator the standard error is about sqrt(p (1 - p) / n)"
print(f"Q2 passes the visible checks: P(X > 2) ≈ {p_hat:.5f} ± {1.96 * p_se:.5f}")
### BEGIN HIDDEN TESTS
_e, _s = mc_mean(torch.tensor([3.0, 5.0]))
assert abs(_e - 4.0) < 1e-12 and abs(_s - 1.0) < 1e-12, "with n = 2 the sample sd of [3, 5] is sqrt(2) and the SE is 1"
assert isinstance(_e, float) and isinstance(_s, float), "return Python floats"
_, _se_small = tail_probability(10_000, torch.Generator().manual_seed(3))
_, _se_large = tail_probability(40_000, torch.Generator().manual_seed(4))
assert 1.6 < _se_small / _se_large < 2.5, "four times more samples should halve the standard error"
_hits = 0
for _seed in range(100):
    _p, _s = tail_probability(2_000, torch.Generator().manual_seed(100 + _seed))
    _hits += abs(_p - truth) <= 1.96 * _s
assert 85 <= _hits <= 100, f"the 95% intervals covered the truth {_hits} times out of 100"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · Entropy and KL divergence (2 points)
#
# Implement, for probability vectors along the **last** dimension (so a `(B, K)` tensor is a batch
# of `B` distributions and the result has shape `(B,)`), in nats:
#
# $$H(p) = -\sum_k p_k \log p_k, \qquad \mathrm{KL}(p\,\|\,q) = \sum_k p_k \log\frac{p_k}{q_k}.$$
#
# Follow the conventions $0 \log 0 = 0$ and $0 \log(0/q) = 0$ (outcomes with $p_k = 0$ contribute
# nothing, even when $q_k = 0$), and return `inf` for the KL when some $q_k = 0$ where $p_k > 0$.
# Never return `nan`. Hint: `torch.xlogy(a, b)` computes $a \log b$ and is 0 where $a = 0$.

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of probability vectors along the last dim: (..., K) -> (...)."""
    ### BEGIN SOLUTION
    return -torch.xlogy(p, p).sum(-1)
    ### END SOLUTION


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) in nats along the last dim: (..., K), (..., K) -> (...)."""
    ### BEGIN SOLUTION
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: a fair coin has entropy log 2; a certain outcome has entropy 0 (not nan: 0 log 0 = 0).
#   KL(p || q) = sum_k p_k log p_k - sum_k p_k log q_k, and xlogy handles the p_k = 0 terms.
assert abs(float(entropy(torch.tensor([0.5, 0.5]))) - math.log(2)) < 1e-6, "a fair coin has entropy log 2 nats"
h0 = entropy(torch.tensor([1.0, 0.0, 0.0]))
assert not torch.isnan(h0), "entropy returned nan: use the convention 0 log 0 = 0"
assert abs(float(h0)) < 1e-6, "a certain outcome has entropy 0"
p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
q = torch.tensor([0.2, 0.2, 0.6], dtype=torch.float64)
reference = D.kl_divergence(D.Categorical(probs=p), D.Categorical(probs=q))
assert abs(float(kl_divergence(p, q)) - float(reference)) < 1e-9, f"KL(p||q) should be {float(reference):.6f}"
assert abs(float(kl_divergence(p, p))) < 1e-12, "KL(p||p) must be 0"
print("Q3 passes the visible checks")
### BEGIN HIDDEN TESTS
from scipy import stats as _stats

_g = torch.Generator().manual_seed(7)
_P = torch.rand(5, 4, generator=_g, dtype=torch.float64)
_P[:, 1] = 0.0
_P = _P / _P.sum(-1, keepdim=True)
_Q = torch.rand(5, 4, generator=_g, dtype=torch.float64)
_Q = _Q / _Q.sum(-1, keepdim=True)
assert entropy(_P).shape == (5,) and kl_divergence(_P, _Q).shape == (5,), "work along the last dim: (B, K) -> (B,)"
assert torch.allclose(entropy(_P), D.Categorical(probs=_P).entropy()), "batched entropy is wrong"
assert torch.allclose(kl_divergence(_P, _Q), torch.tensor(_stats.entropy(_P.numpy(), _Q.numpy(), axis=-1))), "batched KL is wrong"
assert kl_divergence(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])) == math.inf, "KL must be inf when q = 0 where p > 0"
_k = kl_divergence(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0]))
assert not torch.isnan(_k) and abs(float(_k)) < 1e-12, "terms with p_k = 0 contribute 0 even when q_k = 0"
assert abs(float(kl_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]))) - math.log(2)) < 1e-6
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q4_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q4 · Which coin? A posterior from many flips (2 points)
#
# A bag holds three kinds of coin, with probabilities of heads `biases = [0.2, 0.5, 0.9]` and prior
# probabilities `prior = [0.25, 0.5, 0.25]`. One coin is drawn and flipped many times; `flips` is a
# 1-D tensor of 0s (tails) and 1s (heads). Implement `coin_posterior(flips, biases, prior)` returning
# the `(K,)` posterior $p(\text{coin } k \mid \text{flips})$ by Bayes' rule, with the flips independent
# given the coin:
#
# $$p(k \mid d_{1:N}) \propto p(k) \prod_{i=1}^N b_k^{d_i} (1 - b_k)^{1 - d_i}.$$
#
# It must work for **thousands** of flips: a product of 5,000 numbers below 1 underflows to 0 in
# floating point, so work with logarithms and normalise with `torch.logsumexp` (or `torch.softmax`).

# %% nbgrader={"grade": false, "grade_id": "q4_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def coin_posterior(flips: torch.Tensor, biases: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Posterior over K coins: flips (N,) in {0, 1}, biases (K,), prior (K,) -> (K,) summing to 1."""
    ### BEGIN SOLUTION
    flips = flips.double()
    biases, prior = biases.double(), prior.double()
    heads = flips.sum()
    tails = flips.numel() - heads
    log_joint = prior.log() + heads * biases.log() + tails * torch.log1p(-biases)
    return torch.softmax(log_joint, dim=0)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q4_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: log p(k | flips) = log p(k) + (#heads) log b_k + (#tails) log(1 - b_k) + const;
#   torch.softmax over k removes the constant and normalises without underflow.
biases = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
prior = torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64)
one_head = coin_posterior(torch.tensor([1.0]), biases, prior)
by_hand = prior * biases / (prior * biases).sum()
assert one_head.shape == (3,), f"expected shape (3,), got {tuple(one_head.shape)}"
assert torch.allclose(one_head.double(), by_hand), f"after one head the posterior is {by_hand.tolist()}, got {one_head.tolist()}"
many = torch.cat([torch.ones(2_700), torch.zeros(300)])  # 90% heads in 3,000 flips
post = coin_posterior(many, biases, prior)
assert not torch.isnan(post).any(), "the posterior contains nan: a product of 3,000 likelihoods underflows, use logs"
assert abs(float(post.sum()) - 1) < 1e-9 and float(post[2]) > 0.999, "after 2,700 heads in 3,000 flips the coin is almost surely the 0.9 one"
print(f"Q4 passes the visible checks: posterior after 3,000 flips = {[round(v, 4) for v in post.tolist()]}")
### BEGIN HIDDEN TESTS
from scipy import stats as _stats

_flips = torch.tensor([1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 0])
_post = coin_posterior(_flips, biases, prior)
_lik = _stats.binom.pmf(int(_flips.sum()), len(_flips), biases.numpy())
_expected = prior.numpy() * _lik / (prior.numpy() * _lik).sum()
assert torch.allclose(_post.double(), torch.tensor(_expected), atol=1e-9), "posterior for 12 flips is wrong"
_first, _second = _flips[:5], _flips[5:]
_seq = coin_posterior(_second, biases, coin_posterior(_first, biases, prior))
assert torch.allclose(_post.double(), _seq.double(), atol=1e-9), "updating in two batches must equal updating at once"
_huge = coin_posterior(torch.cat([torch.ones(25_000), torch.zeros(25_000)]), biases, prior)
assert not torch.isnan(_huge).any() and float(_huge[1]) > 0.999, "50% heads in 50,000 flips: the fair coin"
assert torch.allclose(coin_posterior(torch.tensor([]), biases, prior).double(), prior), "no flips: posterior = prior"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q5_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q5 · A density by change of variables (2 points)
#
# Let $X \sim \mathcal N(0, 1)$ and $Y = \sigma(X) = 1/(1 + e^{-X})$, the logistic sigmoid, which maps
# the real line onto $(0, 1)$ (the *logit-normal* distribution). The inverse is the logit,
# $\sigma^{-1}(y) = \log\frac{y}{1 - y}$, and its derivative is $\frac{1}{y(1 - y)}$. Implement
#
# $$\log p_Y(y) = \log p_X\bigl(\sigma^{-1}(y)\bigr) + \log\left|\frac{d\sigma^{-1}}{dy}\right|$$
#
# as `logit_normal_log_prob(y)` for a tensor `y` with values in $(0, 1)$. You may use
# `D.Normal(0.0, 1.0).log_prob` for $\log p_X$.

# %% nbgrader={"grade": false, "grade_id": "q5_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def logit_normal_log_prob(y: torch.Tensor) -> torch.Tensor:
    """log density of Y = sigmoid(X), X ~ N(0, 1); y in (0, 1), any shape -> same shape."""
    ### BEGIN SOLUTION
    x = torch.log(y) - torch.log1p(-y)
    return D.Normal(0.0, 1.0).log_prob(x) - torch.log(y) - torch.log1p(-y)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q5_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: log|d logit(y)/dy| = -log y - log(1 - y). At y = 1/2: logit = 0 and the derivative is 4,
#   so log p_Y(1/2) = log N(0; 0, 1) + log 4.
half = logit_normal_log_prob(torch.tensor([0.5], dtype=torch.float64))
expected_half = -0.5 * math.log(2 * math.pi) + math.log(4)
assert abs(float(half) - expected_half) < 1e-6, f"log p_Y(0.5) should be {expected_half:.5f}, got {float(half):.5f}"
grid = torch.linspace(1e-6, 1 - 1e-6, 200_001, dtype=torch.float64)
mass = float(torch.trapezoid(logit_normal_log_prob(grid).exp(), grid))
assert abs(mass - 1) < 1e-3, f"a density must integrate to 1; yours integrates to {mass:.4f} (did you forget the Jacobian?)"
print("Q5 passes the visible checks")
### BEGIN HIDDEN TESTS
_ref = D.TransformedDistribution(D.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0), [D.SigmoidTransform()])
_y = torch.tensor([0.01, 0.2, 0.5, 0.7, 0.99], dtype=torch.float64)
assert torch.allclose(logit_normal_log_prob(_y).double(), _ref.log_prob(_y), atol=1e-6), "does not match TransformedDistribution"
_samples = torch.sigmoid(torch.randn(20_000, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
_hist = torch.histc(_samples, bins=10, min=0.0, max=1.0) / (20_000 * 0.1)
_centres = torch.linspace(0.05, 0.95, 10, dtype=torch.float64)
assert torch.allclose(_hist, logit_normal_log_prob(_centres).exp().double(), atol=0.1), "the density does not match a histogram of sigmoid(X)"
assert logit_normal_log_prob(torch.rand(2, 3, dtype=torch.float64) * 0.98 + 0.01).shape == (2, 3)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Done
#
# You wrote, from scratch, the tools of notebook 01: inverse-CDF sampling, Monte Carlo with an honest
# error bar, entropy and KL, Bayes' rule in log space, and the change-of-variables formula. Notebook
# 02 puts them to work: it fits densities by maximum likelihood, which is minimising the forward KL.
