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
# # Exercises 04 · Autoencoders and variational autoencoders
#
# Five questions that rebuild the pieces of a VAE from notebook 04 yourself (10 points in total): the
# closed-form KL term, the reparameterisation trick, a one-sample ELBO, the IWAE bound from importance
# log-weights, and a posterior-collapse diagnostic.
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
# Write your answers with plain `torch` operations. `course_lib.models.vae` contains reference
# versions of these functions (the tests use them as a check): do not call it in your answers.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import torch
import torch.nn.functional as F
from torch import distributions as D

from course_lib import config
from course_lib.models import vae as V

generator = config.seed_everything(0)
print(f"mode: {config.mode()}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · The KL term in closed form (2 points)
#
# For an encoder $q(z \mid x) = \mathcal N(\mu, \operatorname{diag}\sigma^2)$ and the prior $p(z) = \mathcal N(0, I)$,
#
# $$\operatorname{KL}\big(q \,\Vert\, p\big) = \frac12 \sum_{j=1}^{d} \big(\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1\big).$$
#
# Implement `kl_to_standard_normal(mu, logvar)`: `mu` and `logvar` ($= \log\sigma^2$) have shape `(B, d)`;
# return the KL of each row, shape `(B,)`, in nats.

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag exp(logvar)) || N(0, I) ) per row: (B, d), (B, d) -> (B,)."""
    ### BEGIN SOLUTION
    return 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: exp(logvar) is sigma^2; sum over the latent dimension (dim=1), not over the batch.
#   A posterior equal to the prior (mu = 0, logvar = 0) has KL exactly 0.
mu, logvar = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
kl = kl_to_standard_normal(mu, logvar)
assert kl.shape == (6,), f"expected one KL per row, shape (6,), got {tuple(kl.shape)}"
reference = D.kl_divergence(D.Independent(D.Normal(mu, (0.5 * logvar).exp()), 1),
                            D.Independent(D.Normal(torch.zeros(4), torch.ones(4)), 1))
assert torch.allclose(kl, reference, atol=1e-5), f"KL differs from torch.distributions: {kl} vs {reference}"
assert torch.allclose(kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2)), "q = p gives KL = 0"
print("Q1 passes the visible checks")
### BEGIN HIDDEN TESTS
big_mu = torch.randn(100, 16, generator=generator) * 3
big_lv = torch.randn(100, 16, generator=generator) * 2
assert torch.allclose(kl_to_standard_normal(big_mu, big_lv), V.gaussian_kl(big_mu, big_lv), rtol=1e-5, atol=1e-4)
assert (kl_to_standard_normal(big_mu, big_lv) >= 0).all()
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · The reparameterisation trick (2 points)
#
# Implement `reparameterize(mu, logvar, generator)` that returns one sample
# $z = \mu + \sigma \odot \varepsilon$ with $\sigma = \exp(\tfrac12 \log\sigma^2)$ and
# $\varepsilon \sim \mathcal N(0, I)$ of the same shape as `mu`, drawn with
# `torch.randn(mu.shape, generator=generator)`. Gradients must flow from `z` back to `mu` and `logvar`
# (so do **not** use `torch.normal(mu, sigma)`).

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One differentiable sample z ~ N(mu, diag exp(logvar)), same shape as mu."""
    ### BEGIN SOLUTION
    eps = torch.randn(mu.shape, generator=generator)
    return mu + torch.exp(0.5 * logvar) * eps
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: sigma = exp(logvar / 2), not exp(logvar); check the sample's mean and standard deviation.
mu = torch.full((50_000, 2), 1.5, requires_grad=True)
logvar = torch.full((50_000, 2), math.log(0.25), requires_grad=True)
z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
assert z.shape == mu.shape, f"z should have the shape of mu, got {tuple(z.shape)}"
assert abs(z.mean().item() - 1.5) < 0.02, f"the mean of z should be mu = 1.5, got {z.mean().item():.3f}"
assert abs(z.std().item() - 0.5) < 0.02, f"the std of z should be sigma = 0.5, got {z.std().item():.3f}"
z.sum().backward()
assert mu.grad is not None and logvar.grad is not None, "gradients must flow back to mu and logvar"
assert torch.allclose(mu.grad, torch.ones_like(mu)), "dz/dmu should be 1"
print("Q2 passes the visible checks")
### BEGIN HIDDEN TESTS
# d/dlogvar of sum(z) = 0.5 * sigma * eps = 0.5 * (z - mu): checks the exp(logvar / 2) scaling exactly
torch.testing.assert_close(logvar.grad, 0.5 * (z - mu).detach(), rtol=1e-4, atol=1e-5)
a = reparameterize(torch.zeros(3), torch.zeros(3), torch.Generator().manual_seed(5))
b = reparameterize(torch.zeros(3), torch.zeros(3), torch.Generator().manual_seed(5))
assert torch.equal(a, b), "use the generator you are given"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · A one-sample ELBO for binary images (2 points)
#
# An encoder gives $(\mu, \log\sigma^2)$ for each image, and a decoder maps $z$ to one **logit** per pixel of
# a Bernoulli likelihood. Implement
#
# $$\mathcal L(x) = \log p(x \mid z) - \operatorname{KL}\big(q(z \mid x) \,\Vert\, \mathcal N(0, I)\big), \qquad
# z = \mu + \sigma \varepsilon \text{ (one sample)},$$
#
# where $\log p(x \mid z) = \sum_i x_i \log \sigma(\ell_i) + (1 - x_i) \log(1 - \sigma(\ell_i))$ is summed over all
# pixels of an image. `x: (B, 1, 8, 8)` holds 0/1 values, `encoder(x)` returns `(mu, logvar)`, each `(B, d)`,
# and `decoder(z)` returns logits `(B, 1, 8, 8)`. Return the ELBO of each image, `(B,)`, in nats. Use your
# `reparameterize` and `kl_to_standard_normal`, and `F.binary_cross_entropy_with_logits(..., reduction="none")`
# (computing $\log\sigma(\ell)$ from the logits is stable; taking the log of a probability is not).

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def elbo_bernoulli(x: torch.Tensor, encoder, decoder, generator: torch.Generator) -> torch.Tensor:
    """One-sample ELBO per image of a Bernoulli VAE: x (B, 1, 8, 8) in {0, 1} -> (B,) nats."""
    ### BEGIN SOLUTION
    mu, logvar = encoder(x)
    z = reparameterize(mu, logvar, generator)
    logits = decoder(z)
    log_px_given_z = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)
    return log_px_given_z - kl_to_standard_normal(mu, logvar)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: the reconstruction term is minus the binary cross-entropy, summed over the 64 pixels of each image;
#   then subtract the KL. Compare with course_lib's VAE, which uses the same random numbers here.
from course_lib import data

torch.manual_seed(0)
vae = V.VAE(V.MLPEncoder((1, 8, 8), 3, (32,)), V.MLPDecoder(3, (1, 8, 8), 1, (32,)), V.BernoulliLikelihood())
x_bin = data.digits8x8("test", value_range="binary").x[:20]
with torch.no_grad():
    yours = elbo_bernoulli(x_bin, vae.encoder, vae.decoder, torch.Generator().manual_seed(1))
    reference = vae.elbo(x_bin, generator=torch.Generator().manual_seed(1))
assert yours.shape == (20,), f"expected one ELBO per image, shape (20,), got {tuple(yours.shape)}"
assert torch.allclose(yours, reference, atol=1e-3), f"your ELBO {yours[:3]} differs from the reference {reference[:3]}"
assert (yours < 0).all(), "an ELBO of discrete data is a log-probability bound: it must be negative"
print("Q3 passes the visible checks")
### BEGIN HIDDEN TESTS
x_more = data.digits8x8("val", value_range="binary").x[:50]
with torch.no_grad():
    a = elbo_bernoulli(x_more, vae.encoder, vae.decoder, torch.Generator().manual_seed(7))
    b = vae.elbo(x_more, generator=torch.Generator().manual_seed(7))
assert torch.allclose(a, b, atol=1e-3)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q4_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q4 · The IWAE bound from log-weights (2 points)
#
# Given log importance weights $\log w_{k,b} = \log p(x_b, z_{k,b}) - \log q(z_{k,b} \mid x_b)$ of `K` samples
# for each of `B` images, as a tensor of shape `(K, B)`, the IWAE estimate of each image is
#
# $$\hat{\mathcal L}_K(x_b) = \log \frac1K \sum_{k=1}^K w_{k,b} .$$
#
# Implement `iwae_from_log_weights(log_w) -> (B,)`. The log-weights of real images are around $-100$ nats
# and below, so $e^{\log w}$ underflows to 0 in floating point: subtract the maximum over `k` first
# (the log-sum-exp trick) and add it back afterwards. Do not use `torch.logsumexp` or `course_lib`.

# %% nbgrader={"grade": false, "grade_id": "q4_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def iwae_from_log_weights(log_w: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k exp(log_w[k, b]) for each column b, computed stably: (K, B) -> (B,)."""
    ### BEGIN SOLUTION
    m = log_w.max(dim=0).values
    return m + torch.log(torch.exp(log_w - m).mean(dim=0))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q4_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: with m = max_k log_w[k], log mean exp(log_w) = m + log mean exp(log_w - m); every exp is then <= 1.
small = torch.log(torch.tensor([[0.2, 1.0], [0.6, 3.0]]))  # K = 2 weights for B = 2 images
assert torch.allclose(iwae_from_log_weights(small), torch.log(torch.tensor([0.4, 2.0])), atol=1e-6), \
    "the mean of the weights (0.2, 0.6) is 0.4 and of (1, 3) is 2"
log_w = torch.randn(500, 8, generator=generator) - 1000.0
result = iwae_from_log_weights(log_w)
assert torch.isfinite(result).all(), "log-weights near -1000 must not underflow to -inf: subtract the maximum first"
assert torch.allclose(result, torch.logsumexp(log_w, 0) - math.log(500), atol=1e-3)
print("Q4 passes the visible checks")
### BEGIN HIDDEN TESTS
# K = 1 is the log-weight itself; the estimate never exceeds the largest log-weight
one = torch.randn(1, 5, generator=generator) * 50
assert torch.allclose(iwae_from_log_weights(one), one[0])
huge = torch.randn(50, 4, generator=generator) + 500.0
assert torch.isfinite(iwae_from_log_weights(huge)).all()
assert (iwae_from_log_weights(huge) <= huge.max(0).values + 1e-4).all()
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q5_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q5 · Which latent dimensions are in use? (2 points)
#
# A latent dimension $j$ is **active** (Burda et al., 2016) when its posterior mean moves with the input:
#
# $$A_j = \operatorname{Var}_n\big(\mu_{nj}\big) > 0.01,$$
#
# the variance over the images $n$ of the encoder means. A collapsed dimension has
# $\mu_{nj} \approx 0$ for every image. Implement `count_active(mu, threshold=0.01)` for encoder means
# `mu: (N, d)`: return the number of active dimensions as a Python `int`. (Use the unbiased variance,
# `torch.var`'s default.)

# %% nbgrader={"grade": false, "grade_id": "q5_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_active(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior mean varies across images by more than threshold."""
    ### BEGIN SOLUTION
    return int((mu.var(dim=0) > threshold).sum())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q5_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: the variance is taken over the images (dim=0), one value per latent dimension.
mu = torch.cat([torch.randn(200, 3, generator=generator), 0.01 * torch.randn(200, 5, generator=generator)], dim=1)
n_active = count_active(mu)
assert isinstance(n_active, int), f"return a Python int, got {type(n_active).__name__}"
assert n_active == 3, f"3 dimensions vary across images and 5 are collapsed; you counted {n_active} active"
print("Q5 passes the visible checks")
### BEGIN HIDDEN TESTS
assert count_active(torch.zeros(10, 4)) == 0
assert count_active(mu, threshold=1e-6) == 8
encoder = V.MLPEncoder((1, 8, 8), 6, (16,), input_scale=1 / 16)
vae6 = V.VAE(encoder, V.MLPDecoder(6, (1, 8, 8), 17, (16,)), V.CategoricalLikelihood(17))
x_counts = data.digits8x8("val", value_range="counts").x
with torch.no_grad():
    expected, _ = V.active_units(vae6, x_counts, threshold=1e-4)
    assert count_active(vae6.encode(x_counts)[0], threshold=1e-4) == expected
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Done
#
# You have written every piece of a VAE's objective: the KL term, the reparameterised sample, the
# one-sample ELBO, and the importance-weighted bound that, with thousands of samples, is the honest
# test log-likelihood. Q5's diagnostic is how you spot posterior collapse in your own models.
