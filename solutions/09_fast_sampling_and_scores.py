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
# # Exercises 09 · Fast sampling (DDIM) and score-based models
#
# Five questions on notebook 09 (10 points in total): the DDIM update, its noise level $\sigma(\eta)$, turning a
# noise prediction into a score and a denoised image, Langevin dynamics, and the denoising score matching loss.
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
# Write your answers with plain `torch` operations; `course_lib.models.diffusion` and `course_lib.models.score`
# serve the tests as references, so do not call them in your answers.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import torch

from course_lib import config
from course_lib.models import diffusion as _diffusion
from course_lib.models import score as _score

generator = config.seed_everything(0)
schedule = _diffusion.NoiseSchedule.cosine(1000)
alpha_bar = schedule.alpha_bar  # (1000,) float64, alpha_bar[t] for the step index t = 0..999
print(f"mode: {config.mode()}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · The deterministic DDIM update (2 points)
#
# Implement `ddim_update(xt, eps_hat, ab_t, ab_s)`: from $x_t$, the predicted noise $\hat\epsilon$ and the two
# cumulative products $\bar\alpha_t$, $\bar\alpha_s$ (floats, $s$ earlier than $t$), return the $\eta = 0$ update
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon}{\sqrt{\bar\alpha_t}}, \qquad
# x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s}\,\hat\epsilon .$$

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_update(xt: torch.Tensor, eps_hat: torch.Tensor, ab_t: float, ab_s: float) -> torch.Tensor:
    """One deterministic DDIM step from x_t to x_s (eta = 0)."""
    ### BEGIN SOLUTION
    x0_hat = (xt - math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(ab_t)
    return math.sqrt(ab_s) * x0_hat + math.sqrt(1 - ab_s) * eps_hat
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: if eps_hat were the true noise, x_s would be exactly the forward process at step s with the same noise.
xt = torch.randn(2, 1, 4, 4, dtype=torch.float64)
eps_hat = torch.randn(2, 1, 4, 4, dtype=torch.float64)
t, s = 800, 600
ours = ddim_update(xt, eps_hat, float(alpha_bar[t]), float(alpha_bar[s]))
x0_hat = schedule.predict_x0_from_eps(xt, t, eps_hat)
ref = _diffusion.ddim_step(schedule, xt, t, s, eps_hat, x0_hat, eta=0.0)
assert ours.shape == xt.shape and torch.allclose(ours, ref), "does not match the DDIM update"
print("Q1 passes the visible checks")
### BEGIN HIDDEN TESTS
_x0 = torch.randn(3, 2, dtype=torch.float64)
_e = torch.randn(3, 2, dtype=torch.float64)
_xt = schedule.q_sample(_x0, 500, _e)
assert torch.allclose(ddim_update(_xt, _e, float(alpha_bar[500]), float(alpha_bar[100])), schedule.q_sample(_x0, 100, _e))
assert torch.allclose(ddim_update(_xt, _e, float(alpha_bar[500]), 1.0), _x0), "to s = data (alpha_bar = 1) gives x0_hat"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · How much noise does DDIM add? (2 points)
#
# For $\eta \in [0, 1]$ the DDIM step from $t$ to $s$ adds noise with standard deviation
#
# $$\sigma(\eta) = \eta\,\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}}\,\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_s}} .$$
#
# Implement `ddim_sigma(ab_t, ab_s, eta)` (a float). The test checks the claim of the notebook: with $\eta = 1$ and
# consecutive steps ($s = t - 1$), $\sigma^2$ is DDPM's posterior variance $\tilde\beta_t$.

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def ddim_sigma(ab_t: float, ab_s: float, eta: float) -> float:
    """The standard deviation of the fresh noise in a DDIM step from t to s."""
    ### BEGIN SOLUTION
    return eta * math.sqrt((1 - ab_s) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_s)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: 1 - alpha_bar_t / alpha_bar_{t-1} = beta_t.
t = 400
sigma = ddim_sigma(float(alpha_bar[t]), float(alpha_bar[t - 1]), 1.0)
assert abs(sigma**2 - float(schedule.posterior_variance[t])) < 1e-12, "eta = 1, s = t - 1 should give beta tilde"
assert ddim_sigma(float(alpha_bar[t]), float(alpha_bar[100]), 0.0) == 0.0, "eta = 0 adds no noise"
print("Q2 passes the visible checks")
### BEGIN HIDDEN TESTS
_a, _b = float(alpha_bar[900]), float(alpha_bar[300])
assert abs(ddim_sigma(_a, _b, 0.5) - 0.5 * ddim_sigma(_a, _b, 1.0)) < 1e-12
assert ddim_sigma(_a, _b, 1.0) ** 2 < 1 - _b, "the noise never exceeds the total noise level of step s"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · From predicted noise to the score and back to the data (2 points)
#
# 1. `score_from_eps(eps_hat, ab)`: the score estimate $\nabla_{x_t}\log q_t(x_t) \approx -\hat\epsilon/\sqrt{1-\bar\alpha_t}$.
# 2. `tweedie(xt, score, ab)`: Tweedie's formula $\mathbb E[x_0 \mid x_t] = \big(x_t + (1-\bar\alpha_t)\,\nabla\log q_t(x_t)\big)/\sqrt{\bar\alpha_t}$.
#
# The test uses Gaussian data, for which the optimal noise predictor (and hence the exact score) is known.

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def score_from_eps(eps_hat: torch.Tensor, ab: float) -> torch.Tensor:
    """-eps_hat / sqrt(1 - alpha_bar)."""
    ### BEGIN SOLUTION
    return -eps_hat / math.sqrt(1 - ab)
    ### END SOLUTION


def tweedie(xt: torch.Tensor, score: torch.Tensor, ab: float) -> torch.Tensor:
    """E[x0 | x_t] = (x_t + (1 - alpha_bar) score) / sqrt(alpha_bar)."""
    ### BEGIN SOLUTION
    return (xt + (1 - ab) * score) / math.sqrt(ab)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: for Gaussian data N(mu, S), x_t is Gaussian with mean sqrt(ab) mu and covariance ab S + (1 - ab) I,
#   and the score of a Gaussian is -covariance^{-1} (x - mean).
mu = torch.tensor([0.5, -1.0], dtype=torch.float64)
S = torch.tensor([[0.4, 0.1], [0.1, 0.3]], dtype=torch.float64)
oracle = _diffusion.GaussianOptimalDenoiser(mu, S, schedule)
t = 300
ab = float(alpha_bar[t])
xt = torch.randn(5, 2, dtype=torch.float64)
eps_star = oracle(xt, torch.full((5,), t))
cov_t = ab * S + (1 - ab) * torch.eye(2, dtype=torch.float64)
exact = -(torch.linalg.inv(cov_t) @ (xt - math.sqrt(ab) * mu).T).T
assert torch.allclose(score_from_eps(eps_star, ab), exact), "the score of the optimal noise predictor is the exact score"
posterior_mean = mu + (math.sqrt(ab) * S @ torch.linalg.inv(cov_t) @ (xt - math.sqrt(ab) * mu).T).T
assert torch.allclose(tweedie(xt, exact, ab), posterior_mean), "Tweedie's formula gives E[x0 | x_t]"
print("Q3 passes the visible checks")
### BEGIN HIDDEN TESTS
_t = torch.full((5,), 900)
_ab = float(alpha_bar[900])
assert torch.allclose(score_from_eps(oracle(xt, _t), _ab), schedule.score_from_eps(oracle(xt, _t), _t))
assert torch.allclose(tweedie(xt, exact, ab), schedule.x0_from_score(xt, t, exact))
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q4_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q4 · Langevin dynamics (2 points)
#
# Implement `langevin(score_fn, x, step_size, n_steps, generator)`: repeat `n_steps` times
#
# $$x \leftarrow x + \frac{\epsilon}{2}\,\nabla\log p(x) + \sqrt{\epsilon}\; z, \qquad z \sim \mathcal N(0, I),$$
#
# drawing $z$ with `torch.randn(x.shape, generator=generator, dtype=x.dtype)`, and return the final `x`.

# %% nbgrader={"grade": false, "grade_id": "q4_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def langevin(score_fn, x: torch.Tensor, step_size: float, n_steps: int, generator: torch.Generator) -> torch.Tensor:
    """Unadjusted Langevin dynamics from x: (N, D)."""
    ### BEGIN SOLUTION
    for _ in range(n_steps):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
        x = x + 0.5 * step_size * score_fn(x) + math.sqrt(step_size) * z
    return x
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q4_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: the score of N(m, s^2) is -(x - m) / s^2. Starting all chains at 0, they should spread out to N(m, s^2).
m, s = 2.0, 0.5
samples = langevin(lambda x: -(x - m) / s**2, torch.zeros(10_000, 1, dtype=torch.float64), 0.01, 400,
                   torch.Generator().manual_seed(1))
assert samples.shape == (10_000, 1)
assert abs(float(samples.mean()) - m) < 0.03, f"the chains should centre on {m}, got {float(samples.mean()):.3f}"
assert abs(float(samples.std()) - s) < 0.03, f"the chains should spread to std {s}, got {float(samples.std()):.3f}"
print("Q4 passes the visible checks")
### BEGIN HIDDEN TESTS
_a = langevin(lambda x: -x, torch.zeros(5, 2, dtype=torch.float64), 0.1, 10, torch.Generator().manual_seed(3))
_b = _score.langevin_dynamics(lambda x: -x, torch.zeros(5, 2, dtype=torch.float64), step_size=0.1, n_steps=10,
                              generator=torch.Generator().manual_seed(3))
assert torch.allclose(_a, _b), "use the generator as described, one randn per step"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q5_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q5 · The denoising score matching loss (2 points)
#
# For one noise level $\sigma$, clean data `x` of shape `(B, D)` and given noise `z` of the same shape, implement
#
# $$\ell = \frac{1}{B}\sum_{b=1}^{B} \tfrac12\,\big\lVert \sigma\, s(x_b + \sigma z_b, \sigma) + z_b \big\rVert^2$$
#
# as `dsm_loss(score_fn, x, sigma, z)`, where `score_fn(x_tilde, sigma)` returns scores of shape `(B, D)`.
# Then answer: which function minimises it? Return that function's value at a point from `best_score(x_tilde, x_data, sigma)`:
# the score of the data blurred by $\mathcal N(0, \sigma^2 I)$ when the data are **a single point** `x_data` (shape `(D,)`).

# %% nbgrader={"grade": false, "grade_id": "q5_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def dsm_loss(score_fn, x: torch.Tensor, sigma: float, z: torch.Tensor) -> torch.Tensor:
    """Denoising score matching at one noise level: a 0-dim tensor."""
    ### BEGIN SOLUTION
    return 0.5 * (sigma * score_fn(x + sigma * z, sigma) + z).pow(2).sum(dim=1).mean()
    ### END SOLUTION


def best_score(x_tilde: torch.Tensor, x_data: torch.Tensor, sigma: float) -> torch.Tensor:
    """The score of N(x_data, sigma^2 I) at x_tilde: (B, D)."""
    ### BEGIN SOLUTION
    return -(x_tilde - x_data) / sigma**2
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q5_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: blurring one point by N(0, sigma^2 I) gives the Gaussian N(x_data, sigma^2 I).
point = torch.tensor([1.0, -2.0], dtype=torch.float64)
x = point.expand(4000, 2)
z = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
sigma = 0.3
exact = lambda xt, s: best_score(xt, point, s)  # noqa: E731
loss_best = dsm_loss(exact, x, sigma, z)
assert loss_best.dim() == 0, "return a 0-dim tensor (the batch mean)"
assert float(loss_best) < 1e-12, "for a single data point the blurred score fits the target exactly: loss 0"
assert float(dsm_loss(lambda xt, s: 1.1 * exact(xt, s), x, sigma, z)) > 1e-3
print("Q5 passes the visible checks")
### BEGIN HIDDEN TESTS
_x = torch.randn(64, 3, dtype=torch.float64)
_z = torch.randn(64, 3, dtype=torch.float64)
_f = lambda xt, s: torch.tanh(xt) / s  # noqa: E731
_expected = 0.5 * ((0.7 * _f(_x + 0.7 * _z, 0.7) + _z) ** 2).sum(1).mean()
assert torch.allclose(dsm_loss(_f, _x, 0.7, _z), _expected)
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Done
#
# You wrote DDIM's update and noise level, read a noise predictor as a score (and a denoiser, by Tweedie),
# sampled with Langevin dynamics and wrote the loss that learns scores from data. Notebook 10 conditions the same
# kind of model on labels.
