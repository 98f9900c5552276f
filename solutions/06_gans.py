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
# # Exercises 06 · Generative adversarial networks
#
# Four questions on the computations behind notebook 06 (9 points in total): the GAN losses written with
# logits, the optimal discriminator and the Jensen-Shannon divergence, the WGAN-GP gradient penalty, and
# one correct alternating training step. Each asks for a few lines of PyTorch.
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
# Write the computations yourself with `torch`: the tests compare your answers with the tested
# implementations in `course_lib.models.gan`, so do not call that module in your answers.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import config

generator = config.seed_everything(0)
print(f"mode: {config.mode()}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · The losses, written with logits (2 points)
#
# The discriminator outputs a logit $\ell(x)$ and $D(x) = \sigma(\ell(x))$. Complete
#
# * `d_loss(real_logits, fake_logits)`: the discriminator's binary cross-entropy with real examples
#   labelled 1 and fakes labelled 0, $L_D = -\mathbb E[\log D(x)] - \mathbb E[\log(1 - D(G(z)))]$;
# * `g_loss(fake_logits)`: the **non-saturating** generator loss $L_G = -\mathbb E[\log D(G(z))]$.
#
# Both take `(B,)` tensors of logits and return 0-dim tensors (means over the batch). They must stay finite
# for logits like $\pm 1000$: use $-\log \sigma(u) = \operatorname{softplus}(-u)$ and
# $-\log(1 - \sigma(u)) = \operatorname{softplus}(u)$ (`F.softplus`) instead of `torch.log(torch.sigmoid(...))`.

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator BCE: real labelled 1, fake labelled 0; (B,), (B',) logits -> 0-dim."""
    ### BEGIN SOLUTION
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    ### END SOLUTION


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -E log D(G(z)); (B,) logits -> 0-dim."""
    ### BEGIN SOLUTION
    return F.softplus(-fake_logits).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: at D = 1/2 for every example (all logits 0), L_D = 2 log 2 and L_G = log 2.
assert abs(d_loss(torch.zeros(5), torch.zeros(3)).item() - 2 * math.log(2)) < 1e-6, "all-zero logits: L_D = 2 log 2"
assert abs(g_loss(torch.zeros(5)).item() - math.log(2)) < 1e-6, "all-zero logits: L_G = log 2"
assert d_loss(torch.full((4,), 9.0), torch.full((4,), -9.0)).item() < 1e-3, "a confident, correct D has loss ~0"
assert g_loss(torch.tensor([-1000.0])).isfinite(), "g_loss must not overflow for very negative logits"
### BEGIN HIDDEN TESTS
from course_lib.models import gan as _gan

_r, _f = torch.randn(50), torch.randn(40)
assert torch.allclose(d_loss(_r, _f), _gan.discriminator_loss(_r, _f), atol=1e-6)
assert torch.allclose(g_loss(_f), _gan.generator_loss_nonsaturating(_f), atol=1e-6)
assert d_loss(torch.tensor([1000.0, -1000.0]), torch.tensor([-1000.0, 1000.0])).isfinite()
assert d_loss(torch.full((4,), -9.0), torch.full((4,), 9.0)).item() > 10, "labels must not be swapped"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · The optimal discriminator and the Jensen-Shannon divergence (2 points)
#
# For two discrete distributions `p_data` and `p_model` (1-D tensors of probabilities over the same outcomes),
# complete `value_at_optimum(p_data, p_model)`: compute the optimal discriminator
# $D^*(x) = p_\text{data}(x) / (p_\text{data}(x) + p_G(x))$ and return the value of the game
#
# $$V(D^*, G) = \sum_x p_\text{data}(x)\log D^*(x) + \sum_x p_G(x) \log(1 - D^*(x))$$
#
# as a 0-dim tensor. Then complete `jensen_shannon(p, q)` **using** `value_at_optimum` and the identity
# $V(D^*, G) = -\log 4 + 2\,\mathrm{JS}(p_\text{data} \Vert p_G)$. Assume all probabilities are positive.

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def value_at_optimum(p_data: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    """V(D*, G) for discrete distributions (K,) and (K,) -> 0-dim."""
    ### BEGIN SOLUTION
    d = p_data / (p_data + p_model)
    return (p_data * d.log()).sum() + (p_model * (1 - d).log()).sum()
    ### END SOLUTION


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """JS(p || q) in nats, from value_at_optimum."""
    ### BEGIN SOLUTION
    return (value_at_optimum(p, q) + math.log(4)) / 2
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: when p_model = p_data, D* = 1/2 everywhere and V = -log 4, so JS = 0.
_p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
assert abs(value_at_optimum(_p, _p).item() + math.log(4)) < 1e-9, "equal distributions: V(D*, G) = -log 4"
assert abs(jensen_shannon(_p, _p).item()) < 1e-9, "JS of a distribution with itself is 0"
_q = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
assert 0 < jensen_shannon(_p, _q).item() < math.log(2), "JS lies between 0 and log 2"
### BEGIN HIDDEN TESTS
from scipy.spatial.distance import jensenshannon as _js

assert abs(jensen_shannon(_p, _q).item() - _js(_p.numpy(), _q.numpy()) ** 2) < 1e-9
assert abs(jensen_shannon(_p, _q).item() - jensen_shannon(_q, _p).item()) < 1e-9, "JS is symmetric"
_a = torch.tensor([1 - 1e-9, 1e-9], dtype=torch.float64)
assert abs(jensen_shannon(_a, _a.flip(0)).item() - math.log(2)) < 1e-6, "disjoint supports: JS = log 2"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · The WGAN-GP gradient penalty (2 points)
#
# Complete `gradient_penalty(critic, real, fake, eps)`. `critic` maps a batch `(B, ...)` to scores `(B,)`;
# `real` and `fake` have the same shape `(B, ...)`; `eps` has shape `(B,)` with values in $[0, 1]$ (one mixing
# weight per example; in training it is drawn from $U[0, 1]$, here it is given so the answer is deterministic).
# Return the 0-dim tensor
#
# $$\mathrm{GP} = \frac1B \sum_{i} \big(\lVert \nabla_{\hat x} f(\hat x_i) \rVert_2 - 1\big)^2,
#   \qquad \hat x_i = \epsilon_i x_i + (1 - \epsilon_i)\tilde x_i .$$
#
# The penalty is added to the critic's loss, so it must be differentiable with respect to the critic's
# weights: use `torch.autograd.grad(..., create_graph=True)`. The norm is over all dimensions of one example.

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty at x_hat = eps * real + (1 - eps) * fake (eps: (B,), broadcast over the rest)."""
    ### BEGIN SOLUTION
    e = eps.view(-1, *([1] * (real.dim() - 1)))
    x_hat = (e * real.detach() + (1 - e) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: a linear critic f(x) = w . x has gradient w everywhere, so its penalty is (||w|| - 1)^2.
_x, _y, _e = torch.randn(16, 3), torch.randn(16, 3), torch.rand(16)
_w = torch.tensor([2.0, 0.0, 0.0])
assert abs(gradient_penalty(lambda x: x @ _w, _x, _y, _e).item() - 1.0) < 1e-5, "||w|| = 2: penalty (2 - 1)^2 = 1"
assert abs(gradient_penalty(lambda x: x @ (_w / 2), _x, _y, _e).item()) < 1e-6, "unit-norm w: penalty 0"
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
_critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
_f = lambda x: _critic(x).squeeze(1)  # noqa: E731
_r, _fk, _e = torch.randn(6, 3, 2, 2), torch.randn(6, 3, 2, 2), torch.rand(6)
_mine = gradient_penalty(_f, _r, _fk, _e)
_xh = (_e.view(-1, 1, 1, 1) * _r + (1 - _e.view(-1, 1, 1, 1)) * _fk).requires_grad_(True)
(_g,) = torch.autograd.grad(_f(_xh).sum(), _xh)
assert torch.allclose(_mine, ((_g.flatten(1).norm(dim=1) - 1) ** 2).mean(), atol=1e-6)
_mine.backward()
assert _critic[1].weight.grad is not None, "the penalty must be differentiable w.r.t. the critic (create_graph=True)"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q4_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q4 · One alternating training step (3 points)
#
# Complete `train_step(G, D, opt_g, opt_d, real, z_d, z_g)` for the non-saturating GAN, using your
# `d_loss` and `g_loss` from Q1. `G` maps latents `(B, d)` to samples, `D` maps samples to logits `(B,)`;
# `opt_g` holds only `G`'s parameters, `opt_d` only `D`'s. `z_d` is the latent batch for the discriminator
# step, `z_g` the one for the generator step.
#
# 1. Discriminator step: fakes `G(z_d)` **detached**, loss `d_loss(D(real), D(fakes))`, then zero the grads,
#    backward and `opt_d.step()`.
# 2. Generator step: loss `g_loss(D(G(z_g)))` scored by the **updated** discriminator, whose weights must not
#    change; zero the grads, backward, `opt_g.step()`.
#
# Return the two losses as Python floats `(loss_d, loss_g)`.

# %% nbgrader={"grade": false, "grade_id": "q4_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train_step(G, D, opt_g, opt_d, real, z_d, z_g):
    """One D step then one G step; returns (loss_d, loss_g) as floats."""
    ### BEGIN SOLUTION
    fake = G(z_d).detach()
    loss_d = d_loss(D(real), D(fake))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()

    loss_g = g_loss(D(G(z_g)))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q4_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Hint: detach the fakes in the D step; in the G step only opt_g may step (D's grads may be computed, not applied).
import copy

torch.manual_seed(0)
_G = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
_D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
_G0, _D0 = copy.deepcopy(_G), copy.deepcopy(_D)
_og, _od = torch.optim.SGD(_G.parameters(), lr=0.1), torch.optim.SGD(_D.parameters(), lr=0.1)
_real, _zd, _zg = torch.randn(32, 2) + 2, torch.randn(32, 2), torch.randn(32, 2)
_ld, _lg = train_step(_G, _D, _og, _od, _real, _zd, _zg)
assert isinstance(_ld, float) and isinstance(_lg, float), "return two Python floats"
# reference: the same step done by hand on copies
_od0 = torch.optim.SGD(_D0.parameters(), lr=0.1)
_ref_ld = d_loss(_D0(_real), _D0(_G0(_zd).detach()))
_od0.zero_grad(); _ref_ld.backward(); _od0.step()  # noqa: E702
assert abs(_ld - _ref_ld.item()) < 1e-5, "the discriminator loss should be d_loss(D(real), D(G(z_d).detach()))"
assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_D.parameters(), _D0.parameters())), (
    "after train_step, D should equal D after exactly one discriminator step (did the G step change D?)")
### BEGIN HIDDEN TESTS
_og0 = torch.optim.SGD(_G0.parameters(), lr=0.1)
_ref_lg = g_loss(_D0(_G0(_zg)))
_og0.zero_grad(); _ref_lg.backward(); _og0.step()  # noqa: E702
assert abs(_lg - _ref_lg.item()) < 1e-5, "the generator loss should use the updated D"
assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(_G.parameters(), _G0.parameters())), (
    "G should have taken exactly one step of the non-saturating loss (was the D step detached?)")
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Done.** These four pieces are all of a GAN's training logic; `course_lib.models.gan.gan_train_step` adds
# WGAN-GP, labels for conditional GANs and a NaN guard around the same lines.
