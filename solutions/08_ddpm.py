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
# # Exercises 08 · Diffusion models (DDPM)
#
# Five questions that rebuild the equations of notebook 08 from scratch (10 points in total): the closed-form
# forward process, the cosine schedule, the posterior $q(x_{t-1} \mid x_t, x_0)$, one ancestral sampling step,
# and the weights that $L_\text{simple}$ drops from the ELBO.
#
# **How exercises work.** Each question has an answer cell containing
#
# ```python
# # YOUR CODE HERE
# raise NotImplementedError()
# ```
#
# Replace those two lines with your answer, then run the test cell below it. A test cell that runs without an
# error means your answer passes the visible checks; when your work is graded, a few hidden checks are added
# and each test cell is worth the points shown. Test cells are locked: do not edit them.
#
# **Conventions** (the same as `course_lib`): the schedule is a tensor `betas` of shape `(T,)`, indexed from 0,
# so `betas[t]` is the paper's $\beta_{t+1}$ and $\bar\alpha$ at index `t` is $\prod_{s \le t}(1 - \beta_s)$.
# Write your answers with plain `torch` operations; `course_lib.models.diffusion` is used by the tests as the
# reference, so do not call it in your answers.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import torch
from torch import distributions as D

from course_lib import config
from course_lib.models import diffusion as _reference

generator = config.seed_everything(0)
T = 1000
betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)  # Ho et al.'s linear schedule
print(f"mode: {config.mode()}, T = {T}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · The forward process in closed form (2 points)
#
# Implement `q_sample(x0, t, noise, betas)`, which returns
#
# $$x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\;\epsilon, \qquad \bar\alpha_t = \prod_{s \le t} (1 - \beta_s),$$
#
# for a batch `x0` of shape `(B, ...)` (any number of trailing dimensions), integer step indices `t` of shape
# `(B,)` (one per example) and `noise` $\epsilon$ of the shape of `x0`. Hint: `torch.cumprod`; to multiply each
# example by its own coefficient, reshape the `(B,)` coefficients to `(B, 1, ..., 1)`.

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise; x0, noise: (B, ...), t: (B,) int64."""
    ### BEGIN SOLUTION
    alpha_bar = torch.cumprod(1 - betas, dim=0)[t].to(x0.dtype)
    shape = (-1,) + (1,) * (x0.dim() - 1)
    return alpha_bar.sqrt().reshape(shape) * x0 + (1 - alpha_bar).sqrt().reshape(shape) * noise
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: at t = 0 almost nothing happens (alpha_bar = 1 - 1e-4); at t = T - 1 almost only noise is left.
x0 = torch.rand(4, 1, 5, 5, dtype=torch.float64) * 2 - 1
eps = torch.randn(4, 1, 5, 5, dtype=torch.float64)
t = torch.tensor([0, 10, 500, 999])
xt = q_sample(x0, t, eps, betas)
assert isinstance(xt, torch.Tensor) and xt.shape == x0.shape, f"expected shape {tuple(x0.shape)}"
ab0 = 1 - 1e-4
assert torch.allclose(xt[0], math.sqrt(ab0) * x0[0] + math.sqrt(1 - ab0) * eps[0]), "wrong value at t = 0"
assert torch.allclose(xt, _reference.NoiseSchedule(betas).q_sample(x0, t, eps)), "does not match the closed form"
print("Q1 passes the visible checks")
### BEGIN HIDDEN TESTS
_x = torch.randn(3, 2, dtype=torch.float64)
_e = torch.randn(3, 2, dtype=torch.float64)
_t = torch.tensor([999, 0, 250])
assert torch.allclose(q_sample(_x, _t, _e, betas), _reference.NoiseSchedule(betas).q_sample(_x, _t, _e)), "2-D inputs"
_many = q_sample(torch.full((50_000, 1), 0.5, dtype=torch.float64), torch.full((50_000,), 300),
                 torch.randn(50_000, 1, dtype=torch.float64), betas)
_ab = float(torch.cumprod(1 - betas, 0)[300])
assert abs(float(_many.var()) - (1 - _ab)) < 0.02 and abs(float(_many.mean()) - 0.5 * math.sqrt(_ab)) < 0.01
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · The cosine schedule (2 points)
#
# Nichol & Dhariwal define the schedule through $\bar\alpha$: with $f(u) = \cos^2\!\big(\frac{u + s}{1 + s}\cdot\frac{\pi}{2}\big)$,
#
# $$\bar\alpha_t = \frac{f(t / T)}{f(0)}, \qquad \beta_t = 1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}}, \qquad t = 1, \dots, T,$$
#
# and cap each $\beta_t$ at `max_beta` $= 0.999$ (the last one would otherwise be exactly 1).
# Implement `cosine_betas(T, s=0.008, max_beta=0.999)` returning the `(T,)` float64 tensor of $\beta_1..\beta_T$.

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The (T,) betas of the cosine schedule, float64."""
    ### BEGIN SOLUTION
    u = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: compute f on the T + 1 points u = 0, 1/T, ..., 1; then beta_t = 1 - f(t/T) / f((t-1)/T).
cb = cosine_betas(1000)
assert cb.shape == (1000,) and cb.dtype == torch.float64, "expected a (1000,) float64 tensor"
assert (cb > 0).all() and (cb <= 0.999).all(), "betas must lie in (0, max_beta]"
assert (cb.diff() >= 0).all(), "cosine betas increase with t"
f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
assert abs(float(torch.cumprod(1 - cb, 0)[499]) - f(0.5) / f(0)) < 1e-9, "alpha_bar at t = T/2 should be f(1/2) / f(0)"
print("Q2 passes the visible checks")
### BEGIN HIDDEN TESTS
assert torch.allclose(cosine_betas(1000), _reference.cosine_beta_schedule(1000))
assert torch.allclose(cosine_betas(50, s=0.02, max_beta=0.5), _reference.cosine_beta_schedule(50, 0.02, 0.5))
assert float(cosine_betas(10)[-1]) == 0.999, "the last beta is capped"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · The posterior $q(x_{t-1} \mid x_t, x_0)$ (2 points)
#
# Implement `posterior(x0, xt, t, betas)` for an **int** step index `t >= 1` (so that $\bar\alpha_{t-1}$ is
# `alpha_bar[t - 1]`), returning the pair `(mean, variance)`:
#
# $$\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\, x_0
#             + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\, x_t, \qquad
# \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t ,$$
#
# with `mean` of the shape of `x0` and `variance` a Python float.

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def posterior(x0: torch.Tensor, xt: torch.Tensor, t: int, betas: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Mean (shape of x0) and variance (float) of q(x_{t-1} | x_t, x_0), for an int step index t >= 1."""
    ### BEGIN SOLUTION
    alpha_bar = torch.cumprod(1 - betas, dim=0)
    ab, ab_prev, beta = float(alpha_bar[t]), float(alpha_bar[t - 1]), float(betas[t])
    mean = math.sqrt(ab_prev) * beta / (1 - ab) * x0 + math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab) * xt
    return mean, (1 - ab_prev) / (1 - ab) * beta
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: the variance is smaller than beta_t: knowing x0 removes some uncertainty about x_{t-1}.
x0 = torch.randn(3, 4, dtype=torch.float64)
xt = torch.randn(3, 4, dtype=torch.float64)
mean, var = posterior(x0, xt, 300, betas)
ref_mean, ref_var = _reference.NoiseSchedule(betas).q_posterior(x0, xt, 300)
assert mean.shape == x0.shape, f"the mean should have shape {tuple(x0.shape)}"
assert torch.allclose(mean, ref_mean), "the posterior mean does not match"
assert abs(float(var) - float(ref_var[0])) < 1e-12, "the posterior variance does not match"
assert float(var) < float(betas[300])
print("Q3 passes the visible checks")
### BEGIN HIDDEN TESTS
for _t in (1, 2, 999):
    _m, _v = posterior(x0, xt, _t, betas)
    _rm, _rv = _reference.NoiseSchedule(betas).q_posterior(x0, xt, _t)
    assert torch.allclose(_m, _rm) and abs(float(_v) - float(_rv[0])) < 1e-12, f"wrong at t = {_t}"
# Bayes by hand for one pixel: precisions add
_ab = torch.cumprod(1 - betas, 0)
_prec = 1 / (1 - float(_ab[499])) + (1 - float(betas[500])) / float(betas[500])
assert abs(float(posterior(x0, xt, 500, betas)[1]) - 1 / _prec) < 1e-12
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q4_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q4 · One ancestral sampling step (2 points)
#
# Given the network's noise prediction $\hat\epsilon$ at $x_t$, DDPM samples
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\hat\epsilon\Big) + \sigma_t z,
# \qquad \sigma_t^2 = \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t,$$
#
# and adds **no noise at the last step** (index `t = 0`). Implement `ddpm_step(xt, t, eps_hat, z, betas)` for an
# int `t >= 0`, where `z` is the standard normal noise to use.

# %% nbgrader={"grade": false, "grade_id": "q4_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddpm_step(xt: torch.Tensor, t: int, eps_hat: torch.Tensor, z: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """One reverse step x_t -> x_{t-1} with sigma_t^2 = beta tilde (no noise at t = 0)."""
    ### BEGIN SOLUTION
    alpha_bar = torch.cumprod(1 - betas, dim=0)
    beta, ab = float(betas[t]), float(alpha_bar[t])
    mean = (xt - beta / math.sqrt(1 - ab) * eps_hat) / math.sqrt(1 - beta)
    if t == 0:
        return mean
    ab_prev = float(alpha_bar[t - 1])
    return mean + math.sqrt((1 - ab_prev) / (1 - ab) * beta) * z
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q4_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: this mean is the posterior mean of Q3 with x0 replaced by the model's guess
#   x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t).
schedule = _reference.NoiseSchedule(betas)
xt = torch.randn(2, 1, 4, 4, dtype=torch.float64)
eps_hat = torch.randn(2, 1, 4, 4, dtype=torch.float64)
z = torch.randn(2, 1, 4, 4, dtype=torch.float64)
for t in (700, 1):
    ref, _ = _reference.p_sample(lambda x, tt: eps_hat, schedule, xt, t, noise=z)
    assert torch.allclose(ddpm_step(xt, t, eps_hat, z, betas), ref), f"wrong step at t = {t}"
print("Q4 passes the visible checks")
### BEGIN HIDDEN TESTS
_ref0, _ = _reference.p_sample(lambda x, tt: eps_hat, schedule, xt, 0, noise=z)
assert torch.allclose(ddpm_step(xt, 0, eps_hat, z, betas), _ref0), "no noise at the last step (t = 0)"
assert torch.allclose(ddpm_step(xt, 0, eps_hat, z, betas), ddpm_step(xt, 0, eps_hat, 5 * z, betas))
_ref999, _ = _reference.p_sample(lambda x, tt: eps_hat, schedule, xt, 999, noise=z)
assert torch.allclose(ddpm_step(xt, 999, eps_hat, z, betas), _ref999)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q5_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q5 · What $L_\text{simple}$ drops from the ELBO (2 points)
#
# With the model's variance fixed to $\sigma_t^2 = \beta_t$, the ELBO term for step $t$ is
# $\mathrm{KL}\big(q(x_{t-1}\mid x_t,x_0)\,\|\,p_\theta(x_{t-1}\mid x_t)\big) = \text{const} + \lambda_t\,\lVert \epsilon - \hat\epsilon \rVert^2$ with
#
# $$\lambda_t = \frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)} .$$
#
# 1. Implement `elbo_weights(betas)` returning the `(T,)` tensor of $\lambda_t$ for $\sigma_t^2 = \beta_t$.
# 2. Implement `weight_ratio(betas)`: the ratio $\lambda_{\max} / \lambda_{\min}$ over all steps **except the
#    first** (index 0), a float. It says how unevenly the true ELBO weights the steps that $L_\text{simple}$
#    treats equally.

# %% nbgrader={"grade": false, "grade_id": "q5_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def elbo_weights(betas: torch.Tensor) -> torch.Tensor:
    """(T,) weights lambda_t of ||eps - eps_hat||^2 in the ELBO, for sigma_t^2 = beta_t."""
    ### BEGIN SOLUTION
    alphas = 1 - betas
    alpha_bar = torch.cumprod(alphas, dim=0)
    return betas**2 / (2 * betas * alphas * (1 - alpha_bar))
    ### END SOLUTION


def weight_ratio(betas: torch.Tensor) -> float:
    """max / min of the ELBO weights over the steps 1..T-1 (index 0 left out)."""
    ### BEGIN SOLUTION
    w = elbo_weights(betas)[1:]
    return float(w.max() / w.min())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q5_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: with sigma^2 = beta the weight simplifies to beta_t / (2 alpha_t (1 - alpha_bar_t)); the early steps,
#   where 1 - alpha_bar_t is tiny, get by far the largest weights.
w = elbo_weights(betas)
assert w.shape == (T,), "one weight per step"
t = 250
schedule = _reference.NoiseSchedule(betas)
x0 = torch.randn(1, 3, dtype=torch.float64)
eps = torch.randn(1, 3, dtype=torch.float64)
eps_hat = torch.randn(1, 3, dtype=torch.float64)
xt = schedule.q_sample(x0, t, eps)
mu_q = schedule.q_posterior(x0, xt, t)[0]
mu_p = schedule.q_posterior(schedule.predict_x0_from_eps(xt, t, eps_hat), xt, t)[0]
sd = math.sqrt(float(betas[t]))
kl = D.kl_divergence(D.Independent(D.Normal(mu_q, sd), 1), D.Independent(D.Normal(mu_p, sd), 1))
assert torch.allclose(kl, w[t] * (eps - eps_hat).pow(2).sum(1)), "KL should equal lambda_t ||eps - eps_hat||^2"
assert weight_ratio(betas) > 10, "the ELBO weights vary a lot over the steps"
print(f"Q5 passes the visible checks: the ELBO weights span a factor {weight_ratio(betas):.0f}")
### BEGIN HIDDEN TESTS
_a = 1 - betas
_ab = torch.cumprod(_a, 0)
assert torch.allclose(elbo_weights(betas), betas / (2 * _a * (1 - _ab)))
assert abs(weight_ratio(betas) - float((betas / (2 * _a * (1 - _ab)))[1:].max() / (betas / (2 * _a * (1 - _ab)))[1:].min())) < 1e-6
assert isinstance(weight_ratio(betas), float)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Done
#
# You rebuilt DDPM's forward process, its cosine schedule, the posterior it imitates, the ancestral step and the
# ELBO weights that $L_\text{simple}$ drops. Notebook 09 re-uses the same network with a faster sampler (DDIM) and
# reads the noise prediction as a score.
