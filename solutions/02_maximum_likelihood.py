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
# # Exercises 02 · Maximum likelihood and density estimation
#
# Four questions on the computations behind notebook 02 (9 points in total): the maximum-likelihood
# Gaussian, the E-step of EM, the log-likelihood of a kernel density estimate, and bits per dimension
# of discrete images. Each asks for a few lines of PyTorch.
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
# not edit them (the grader restores them anyway). Run the notebook from the top (*Run → Run All
# Cells*) before you hand it in.
#
# Write the computations yourself with `torch` (and `torch.distributions` where a question allows
# it): the point is to see each formula work. The tests compare your answers with the tested
# implementations in `course_lib`, so do not call `course_lib.models.density` or
# `course_lib.metrics` in your answers.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import torch
from torch import distributions as D

from course_lib import config

generator = config.seed_everything(0)
print(f"mode: {config.mode()}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · The maximum-likelihood Gaussian (2 points)
#
# For data $x_1, \dots, x_N \in \mathbb R^D$ the maximum-likelihood estimates of a Gaussian's mean and
# covariance are
#
# $$\hat\mu = \frac1N \sum_{n=1}^N x_n, \qquad
#   \hat\Sigma = \frac1N \sum_{n=1}^N (x_n - \hat\mu)(x_n - \hat\mu)^\top .$$
#
# Complete `gaussian_mle(x)`: `x` has shape `(N, D)`; return `(mean, cov)` with shapes `(D,)` and
# `(D, D)`. Careful with the normaliser: the MLE divides by $N$, not $N - 1$ (`torch.cov` divides by
# $N-1$ unless told otherwise).

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gaussian_mle(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MLE of a Gaussian: x (N, D) -> mean (D,), covariance (D, D) with the 1/N normaliser."""
    ### BEGIN SOLUTION
    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / x.shape[0]
    return mean, cov
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: centre the data (x - mean); the covariance is then centred.T @ centred divided by N.
#   For three points (0, 0), (2, 0), (1, 3) the mean is (1, 1) and the first variance is 2/3.
pts = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]], dtype=torch.float64)
mean, cov = gaussian_mle(pts)
assert mean.shape == (2,) and cov.shape == (2, 2), f"expected shapes (2,) and (2, 2), got {tuple(mean.shape)}, {tuple(cov.shape)}"
assert torch.allclose(mean, torch.tensor([1.0, 1.0], dtype=torch.float64)), f"the mean of the three points is (1, 1), got {mean}"
assert abs(float(cov[0, 0]) - 2 / 3) < 1e-9, f"the MLE variance of x-coordinates 0, 2, 1 is 2/3 (divide by N = 3), got {float(cov[0, 0]):.4f}"
assert torch.allclose(cov, cov.T), "a covariance matrix is symmetric"
print("Q1 passes the visible checks")
### BEGIN HIDDEN TESTS
from course_lib.models.density import GaussianDensity as _GaussianDensity

_x = torch.randn(200, 4, generator=torch.Generator().manual_seed(11), dtype=torch.float64) @ torch.randn(
    4, 4, generator=torch.Generator().manual_seed(12), dtype=torch.float64
)
_mean, _cov = gaussian_mle(_x)
_ref = _GaussianDensity().fit(_x)
assert torch.allclose(_mean, _ref.mean, atol=1e-9), "the mean differs from the MLE on random 4-D data"
assert torch.allclose(_cov, _ref.covariance, atol=1e-9), "the covariance differs from the MLE (1/N) on random 4-D data"
# the MLE maximises the likelihood: the gradient of the mean log-likelihood vanishes there
_mu = _mean.detach().clone().requires_grad_(True)
D.MultivariateNormal(_mu, covariance_matrix=_cov.detach()).log_prob(_x).mean().backward()
assert _mu.grad.abs().max() < 1e-8
_m1, _c1 = gaussian_mle(torch.tensor([[3.0, -1.0]]))
assert torch.allclose(_m1, torch.tensor([3.0, -1.0])) and torch.allclose(_c1, torch.zeros(2, 2)), "one point: mean = the point, covariance = 0"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · The E-step: responsibilities (3 points)
#
# A mixture of $K$ Gaussians has weights $\pi$ `(K,)`, means $\mu_k$ `(K, D)` and covariances $\Sigma_k$
# `(K, D, D)`. The E-step of EM computes, for every point $x_n$ and component $k$, the posterior
# probability that $k$ generated $x_n$:
#
# $$r_{nk} = \frac{\pi_k\, \mathcal N(x_n \mid \mu_k, \Sigma_k)}{\sum_j \pi_j\, \mathcal N(x_n \mid \mu_j, \Sigma_j)} .$$
#
# Complete `responsibilities(x, weights, means, covariances)` returning `r` of shape `(N, K)`.
# You may use `torch.distributions.MultivariateNormal` for $\log \mathcal N$ (it accepts a batch of
# $K$ means and covariances; `x[:, None, :]` then broadcasts against them). **Work in log space**: for
# points far from every component all the densities underflow to 0 and the ratio becomes `0/0 = nan`;
# `torch.logsumexp` or `torch.softmax` of the log-numerators avoids that.

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def responsibilities(x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> torch.Tensor:
    """E-step: x (N, D), weights (K,), means (K, D), covariances (K, D, D) -> r (N, K), rows summing to 1."""
    ### BEGIN SOLUTION
    log_joint = torch.log(weights) + D.MultivariateNormal(means, covariance_matrix=covariances).log_prob(x[:, None, :])
    return torch.exp(log_joint - torch.logsumexp(log_joint, dim=1, keepdim=True))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Hint: log_joint[n, k] = log(weights[k]) + log N(x_n | mu_k, Sigma_k) has shape (N, K); then
#   r = exp(log_joint - logsumexp(log_joint, dim=1, keepdim=True)), which is softmax over k.
w = torch.tensor([0.5, 0.5], dtype=torch.float64)
mus = torch.tensor([[-2.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
covs = torch.eye(2, dtype=torch.float64).expand(2, 2, 2)
pts = torch.tensor([[-2.0, 0.0], [0.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
r = responsibilities(pts, w, mus, covs)
assert r.shape == (3, 2), f"r should have shape (N, K) = (3, 2), got {tuple(r.shape)}"
assert torch.allclose(r.sum(1), torch.ones(3, dtype=torch.float64)), "each row of r is a distribution over components: it sums to 1"
assert torch.allclose(r[1], torch.tensor([0.5, 0.5], dtype=torch.float64)), "a point halfway between two equal components belongs to each with probability 1/2"
assert r[0, 0] > 0.99 and r[2, 1] > 0.99, "a point on top of a component belongs to it"
print("Q2 passes the visible checks")
### BEGIN HIDDEN TESTS
from course_lib.models.density import GaussianMixture as _GaussianMixture

_g = torch.Generator().manual_seed(5)
_k, _d = 3, 3
_w = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
_mu = torch.randn(_k, _d, generator=_g, dtype=torch.float64) * 2
_a = torch.randn(_k, _d, _d, generator=_g, dtype=torch.float64)
_cov = _a @ _a.transpose(1, 2) + 0.3 * torch.eye(_d, dtype=torch.float64)
_x = torch.randn(50, _d, generator=_g, dtype=torch.float64) * 3
_ref = _GaussianMixture(_k).set_params(_w, _mu, _cov)
assert torch.allclose(responsibilities(_x, _w, _mu, _cov), _ref.responsibilities(_x), atol=1e-8), "r differs from the reference E-step"
# unequal weights matter
_r_uneq = responsibilities(pts[1:2], torch.tensor([0.9, 0.1], dtype=torch.float64), mus, covs)
assert torch.allclose(_r_uneq, torch.tensor([[0.9, 0.1]], dtype=torch.float64)), "the weights pi_k multiply the densities"
# far away from everything: the densities underflow, the answer must not be nan
_far = torch.tensor([[60.0, 0.0], [-60.0, 5.0]], dtype=torch.float64)
_r_far = responsibilities(_far, w, mus, covs)
assert torch.isfinite(_r_far).all(), "far-away points give nan: compute in log space (logsumexp / softmax)"
assert _r_far[0, 1] > 0.999 and _r_far[1, 0] > 0.999, "a far point still belongs to the nearer component"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · The log-likelihood of a kernel density estimate (2 points)
#
# A Gaussian KDE with bandwidth $h$ on training points $x_1, \dots, x_N \in \mathbb R^D$ has
#
# $$\log p_h(y) = \operatorname{logsumexp}_{i=1}^{N}\Big(-\frac{\|y - x_i\|^2}{2h^2}\Big) - \log N - \frac D2 \log(2\pi h^2).$$
#
# Complete `kde_log_prob(y, train, h)`: `y` is `(M, D)`, `train` is `(N, D)`, return `(M,)`.
# `torch.cdist(y, train)` gives all the distances `(M, N)`. Use `torch.logsumexp` (summing
# `exp(...)` first underflows for small $h$ or far points).

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kde_log_prob(y: torch.Tensor, train: torch.Tensor, h: float) -> torch.Tensor:
    """Gaussian KDE log-density: y (M, D), train (N, D), bandwidth h > 0 -> (M,)."""
    ### BEGIN SOLUTION
    n, d = train.shape
    sq = torch.cdist(y, train) ** 2  # (M, N)
    return torch.logsumexp(-sq / (2 * h**2), dim=1) - math.log(n) - 0.5 * d * math.log(2 * math.pi * h**2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: with a single training point the KDE is the Gaussian N(x_1, h^2 I), so kde_log_prob must
#   equal D.MultivariateNormal(x_1, h**2 * torch.eye(D)).log_prob(y).
one = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
ys = torch.tensor([[0.0, 0.0], [1.0, -1.0], [3.0, 2.0]], dtype=torch.float64)
out = kde_log_prob(ys, one, 0.5)
assert out.shape == (3,), f"expected shape (M,) = (3,), got {tuple(out.shape)}"
ref = D.MultivariateNormal(one[0], 0.25 * torch.eye(2, dtype=torch.float64)).log_prob(ys)
assert torch.allclose(out, ref, atol=1e-8), f"with one training point the KDE is N(x_1, h^2 I): expected {ref}, got {out}"
two = torch.tensor([[0.0, 0.0], [4.0, 0.0]], dtype=torch.float64)
mid = kde_log_prob(torch.tensor([[2.0, 0.0]], dtype=torch.float64), two, 1.0)
assert abs(float(mid) - float(D.MultivariateNormal(two[0], torch.eye(2, dtype=torch.float64)).log_prob(torch.tensor([2.0, 0.0], dtype=torch.float64)))) < 1e-8, \
    "halfway between two points the two bumps are equal, and the 1/N average of two equal values is that value"
print("Q3 passes the visible checks")
### BEGIN HIDDEN TESTS
from course_lib.models.density import KernelDensity as _KernelDensity

_g = torch.Generator().manual_seed(7)
_train = torch.randn(100, 3, generator=_g, dtype=torch.float64)
_y = torch.randn(20, 3, generator=_g, dtype=torch.float64) * 2
for _h in (0.1, 0.4, 2.0):
    assert torch.allclose(kde_log_prob(_y, _train, _h), _KernelDensity(_h).fit(_train).log_prob(_y), atol=1e-6), f"wrong log-density for h = {_h}"
_far = kde_log_prob(torch.tensor([[30.0, 0.0, 0.0]], dtype=torch.float64), _train, 0.05)
assert torch.isfinite(_far).all(), "far from the data the sum of exponentials underflows: use torch.logsumexp"
assert torch.allclose(_far, _KernelDensity(0.05).fit(_train).log_prob(torch.tensor([[30.0, 0.0, 0.0]], dtype=torch.float64)), rtol=1e-6)
_one_d = kde_log_prob(torch.tensor([[0.0]], dtype=torch.float64), torch.tensor([[0.0], [1.0]], dtype=torch.float64), 1.0)
assert torch.allclose(_one_d, torch.log(0.5 * (D.Normal(0.0, 1.0).log_prob(torch.tensor([0.0, 1.0], dtype=torch.float64)).exp().sum()))), "1-D case"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q4_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q4 · Bits per dimension of discrete images (2 points)
#
# A density $p$ is fitted to dequantised images $y = (x + u)/L$ with $D$ pixels of $L$ levels. If its
# average negative log-likelihood on dequantised test images is `nll_nats` (nats per image), the
# discrete NLL is at most `nll_nats` $+ D \log L$ nats per image, and in **bits per dimension**
#
# $$\text{bpd} = \frac{\text{nll\_nats} + D \log L}{D \ln 2} .$$
#
# Complete `bits_per_dim(nll_nats, num_dims, levels)` returning a Python `float`. Check yourself: the
# uniform density on $[0, 1]^D$ has $-\log p(y) = 0$ and must score $\log_2 L$ bits/dim.

# %% nbgrader={"grade": false, "grade_id": "q4_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bits_per_dim(nll_nats: float, num_dims: int, levels: int) -> float:
    """Discrete NLL bound in bits per dimension from the dequantised NLL in nats per image."""
    ### BEGIN SOLUTION
    return float((nll_nats + num_dims * math.log(levels)) / (num_dims * math.log(2)))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q4_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: nats -> bits divides by ln 2 (math.log(2)); "per dimension" divides by D. Do not forget the
#   D log L term, which converts the density on [0, 1]^D into probabilities of the L^D discrete images.
uniform = bits_per_dim(0.0, 64, 17)
assert isinstance(uniform, float), f"return a Python float, got {type(uniform).__name__}"
assert abs(uniform - math.log2(17)) < 1e-9, f"the uniform density over 17 levels scores log2(17) = {math.log2(17):.4f} bits/dim, got {uniform}"
assert abs(bits_per_dim(0.0, 784, 256) - 8.0) < 1e-9, "uniform over 256 levels: 8 bits/dim"
print("Q4 passes the visible checks")
### BEGIN HIDDEN TESTS
from course_lib.metrics.likelihood import discrete_nll_from_density as _dnll
from course_lib.metrics.likelihood import nats_to_bits_per_dim as _n2b

for _nll, _dims, _levels in [(-50.0, 64, 17), (120.5, 784, 256), (-3000.0, 3072, 256), (10.0, 1, 2)]:
    _expected = _n2b(_dnll(_nll, _dims, _levels), _dims)
    assert abs(bits_per_dim(_nll, _dims, _levels) - _expected) < 1e-9, f"wrong for nll={_nll}, D={_dims}, L={_levels}"
assert bits_per_dim(-50.0, 64, 17) < math.log2(17), "a density better than uniform (negative NLL) beats log2(L) bits/dim"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Done
#
# You implemented the three computations that notebook 02 is built on: a closed-form MLE, the E-step
# of EM (Bayes' rule in log space), and a kernel density estimate, and you turned a density's
# likelihood into the number papers report. Notebook 03 replaces densities on dequantised pixels by
# exact discrete probabilities: autoregressive models.
