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
# # 09 · Fast sampling (DDIM) and score-based models
#
# Notebook 08 generated digits with 1000 network evaluations each. This notebook makes sampling 20-100 times
# faster **without retraining**, and then looks at diffusion from a second angle that explains *why* it works:
# the network has learned the **score** $\nabla_x \log p(x)$, the direction in which the data get more likely,
# and a sampler is a way of following it.
#
# **After this notebook you will be able to**
# 1. state the DDIM update, explain why it can skip steps and why $\eta = 0$ makes it deterministic;
# 2. measure the quality-versus-steps trade-off of a sampler with the classifier-FID;
# 3. invert deterministic DDIM to map an image to its noise, and interpolate in that noise space;
# 4. train a score model by **denoising score matching** at several noise levels and draw its vector field;
# 5. sample with **Langevin dynamics**, and explain why annealing over noise levels is needed;
# 6. convert a noise prediction into a score, $\nabla_{x_t}\log q_t(x_t) \approx -\epsilon_\theta(x_t, t)/\sqrt{1-\bar\alpha_t}$,
#    and check it against the exact score of a known distribution.
#
# Prerequisites: notebook 08. Code: `course_lib.models.diffusion` (DDIM) and `course_lib.models.score`.

# %%
import math
import time

import matplotlib.pyplot as plt
import torch

from course_lib import checkpoints, config, data, device, metrics, train, viz
from course_lib.models import ddpm_mnist, diffusion
from course_lib.models import score as sm
from course_lib.models.diffusion import GaussianOptimalDenoiser, NoiseSchedule
from course_lib.nn.time_embedding import TimeConditionedMLP

clock = config.NotebookClock("09 fast sampling and scores", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %% [markdown]
# ## 1. DDIM: the same model, fewer steps
#
# DDPM's loss only ever uses the marginals $q(x_t \mid x_0) = \mathcal N(\sqrt{\bar\alpha_t}x_0, (1-\bar\alpha_t)I)$,
# never the step-by-step chain. Song, Meng and Ermon (2021) noticed that many other processes have the same
# marginals, including non-Markovian ones that jump between any two steps. For the step from $t$ to an
# earlier $s$ (not necessarily $t-1$), with $\hat x_0$ and $\hat\epsilon$ the network's predictions at $x_t$:
#
# $$x_s = \sqrt{\bar\alpha_s}\;\hat x_0 \;+\; \sqrt{1-\bar\alpha_s-\sigma^2}\;\hat\epsilon \;+\; \sigma z,
# \qquad \sigma = \eta\,\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_s}} .$$
#
# Read it as: *"predict the clean image, then re-noise it to the level of step $s$, re-using the predicted
# noise for the deterministic part."* With $\eta = 1$ and $s = t - 1$, $\sigma^2$ equals the posterior variance
# $\tilde\beta_t$ and the update is exactly DDPM's ancestral step (checked below); with $\eta = 0$ no fresh noise is
# added, so the sample is a **deterministic function of $x_T$**: the update is then a discretisation of an ODE
# (equivalent to the "probability-flow ODE" of Song et al., 2021), which is why few, large steps work.
#
# The network is the one trained for DDPM; only the sampler changes. First a check where everything is
# known: for Gaussian data $x_0 \sim \mathcal N(\mu, \Sigma)$ the best possible noise predictor has a closed
# form (`GaussianOptimalDenoiser`, derived in its docstring). A correct sampler fed with it must reproduce
# $\mu$ and $\Sigma$.

# %%
schedule = NoiseSchedule.cosine(1000)
# eta = 1 between consecutive steps is DDPM's ancestral step: the same mean and sigma^2 = beta_tilde_t
g0 = torch.Generator().manual_seed(10)
x0_hat, eps_hat, z = (torch.randn(5, 2, dtype=torch.float64, generator=g0) for _ in range(3))
t = 600
x_t = schedule.q_sample(x0_hat, t, eps_hat)
post_mean, post_var = schedule.q_posterior(x0_hat, x_t, t)
assert torch.allclose(diffusion.ddim_step(schedule, x_t, t, t - 1, eps_hat, x0_hat, eta=1.0, noise=z),
                      post_mean + post_var.sqrt() * z)
print("DDIM with eta = 1 and consecutive steps = DDPM's ancestral step: checked")

mu = torch.tensor([1.0, -0.5], dtype=torch.float64)
sigma_data = torch.tensor([[0.30, 0.15], [0.15, 0.20]], dtype=torch.float64)
oracle = GaussianOptimalDenoiser(mu, sigma_data, schedule)
x_T = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
for steps in (5, 20, 100):
    x = diffusion.ddim_sample(oracle, schedule, steps=steps, x_T=x_T)  # eta = 0
    err = (torch.cov(x.T) - sigma_data).abs().max()
    print(f"DDIM {steps:3d} steps: mean {x.mean(0).numpy().round(3)}, max covariance error {err:.4f}")
again = diffusion.ddim_sample(oracle, schedule, steps=20, x_T=x_T[:5])
assert torch.equal(again, diffusion.ddim_sample(oracle, schedule, steps=20, x_T=x_T[:5])), "eta = 0 is deterministic"

# %% [markdown]
# The error falls roughly like $1/\text{steps}$ (compare 5 and 20 steps), as it should for a first-order ODE
# solver, until it reaches the Monte Carlo error of estimating a covariance from 20,000 samples (a few
# thousandths). The network's errors are not modelled here: this isolates the sampler's own error.
#
# **Why not simply drop the noise from DDPM?** Because DDPM's coefficients assume that noise is added back at
# every step. Without it, the samples shrink towards the mean:

# %%
x = x_T[:2000].clone()
for t in range(schedule.T - 1, -1, -1):  # DDPM's update with z = 0
    x, _ = diffusion.p_sample(oracle, schedule, x, t, noise=torch.zeros_like(x))
print(f"DDPM without its noise: largest covariance entry {torch.cov(x.T).abs().max():.2e} "
      f"(the data's: {sigma_data.abs().max():.2f}); mean {x.mean(0).numpy().round(3)}")
assert torch.cov(x.T).abs().max() < 0.1 * sigma_data.abs().max(), "dropping DDPM's noise should collapse the samples"

# %% [markdown]
# DDIM instead changes the coefficients so that the marginals stay right while no noise is added. Now the real
# thing: the MNIST U-Net shipped with the course (trained by `scripts/train_diffusion_mnist.py`). If the file is
# missing, a shortened fallback training runs here instead (a few extra minutes on a CPU, rougher digits), and
# the cell says so.

# %%
mnist_test = data.mnist("test", value_range="unit")
model, source = ddpm_mnist.load_shipped(device=DEVICE, fallback_steps=config.budget(full=1500, quick=4))
print(f"weights: {source}")
if source != "shipped":
    print("no shipped 'ddpm_mnist' checkpoint: using weights trained on this machine; expect rougher digits")

# %% [markdown]
# Because DDIM with $\eta = 0$ is deterministic, the same $x_T$ usually gives the same digit whatever the
# number of steps; fewer steps mostly make it rougher. Each row below starts from the same 12 noises.

# %%
step_counts = [5, 10, 20, 50, 100]
noise = torch.randn((12, 1, 28, 28), generator=torch.Generator().manual_seed(1)).to(DEVICE)
rows = [diffusion.ddim_sample(model, schedule, steps=s, clip_x0=True, x_T=noise).cpu() for s in step_counts]
fig, axes = plt.subplots(len(step_counts), 1, figsize=(10, 1.1 * len(step_counts) + 0.5))
for ax, s, row in zip(axes, step_counts, rows):
    viz.show_images(row, nrow=12, value_range="symmetric", ax=ax, title=f"DDIM, {s} steps")
plt.tight_layout()

# %% [markdown]
# ### The quality-versus-steps curve
#
# We measure the **classifier-FID** of each sampler against the held-out test digits, as a ratio to the
# real-vs-real floor at the same sample size, and the wall time per image. With a few hundred samples each point
# is noisy: read the trend, not small differences. `bench/diffusion.py` does the same for DDIM ($\eta = 0$) with
# more samples and includes the 1000-step DDPM; its results are in `bench/RESULTS.md`.

# %%
n_eval = config.budget(full=250, quick=80)
curve_steps = [5, 10, 20, 50] if not config.is_quick() else [2, 5]
curve = {}
for eta in (0.0, 1.0):
    for s in curve_steps:
        start = time.perf_counter()
        fake = diffusion.ddim_sample(model, schedule, (n_eval, 1, 28, 28), steps=s, eta=eta, clip_x0=True,
                                     generator=torch.Generator().manual_seed(2), device=DEVICE).cpu()
        seconds = time.perf_counter() - start
        report = metrics.evaluate(mnist_test.x, (fake + 1) / 2)
        curve[(eta, s)] = (report.fid_ratio if report.fid_ratio is not None else report.fid, seconds / n_eval)
        print(f"eta={eta:.0f}, {s:3d} steps: FID {report.fid:6.2f}"
              + (f" = {report.fid_ratio:5.1f} x floor" if report.fid_ratio is not None else "")
              + f", {1000 * seconds / n_eval:.1f} ms per image")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for eta, style in ((0.0, "o-"), (1.0, "s--")):
    xs = curve_steps
    axes[0].plot(xs, [curve[(eta, s)][0] for s in xs], style, label=f"eta = {eta:.0f}" + (" (DDIM)" if eta == 0 else " (ancestral)"))
    axes[1].plot(xs, [1000 * curve[(eta, s)][1] for s in xs], style, label=f"eta = {eta:.0f}")
axes[0].set(xscale="log", yscale="log", xlabel="sampling steps", ylabel="FID / real floor", title="quality")
axes[1].set(xscale="log", xlabel="sampling steps", ylabel="ms per image", title="cost")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
plt.tight_layout()

# %% [markdown]
# What to look for (it is what Song et al. report): with few steps the deterministic sampler ($\eta = 0$) is much
# better than the stochastic one, because every fresh noise injection must be removed again, which coarse steps
# do badly; with many steps the two come closer. `bench/RESULTS.md` compares DDIM with DDPM's full 1000
# ancestral steps on more samples.
#
# ### Inversion and interpolation
#
# A deterministic sampler can be run **backwards**: `ddim_invert` steps the same ODE from an image to its noise
# $x_T$. Decoding that noise gives the image back (up to the discretisation error), and mixing the noises of
# two digits gives a smooth path between them. Gaussian noise lives on a thin shell of radius $\approx\sqrt{d}$, so
# we interpolate along the sphere (spherical interpolation, *slerp*) rather than along the straight line.

# %%
pair = (mnist_test.x[[0, 7]] * 2 - 1).to(DEVICE)
latents = diffusion.ddim_invert(model, schedule, pair, steps=config.budget(full=100, quick=5))
recon = diffusion.ddim_sample(model, schedule, steps=config.budget(full=100, quick=5), clip_x0=True, x_T=latents)
print(f"reconstruction error (mean |x - decode(encode(x))|): {(recon - pair).abs().mean():.3f} on a [-1, 1] scale")


def slerp(a, b, w):
    """Spherical interpolation between two noise tensors (keeps the norm typical of Gaussian noise)."""
    omega = torch.acos(((a * b).sum() / (a.norm() * b.norm())).clamp(-1, 1))
    return (torch.sin((1 - w) * omega) * a + torch.sin(w * omega) * b) / torch.sin(omega)


weights = torch.linspace(0, 1, 8).tolist()
path = torch.cat([slerp(latents[0], latents[1], w)[None] for w in weights])
between = diffusion.ddim_sample(model, schedule, steps=config.budget(full=50, quick=5), clip_x0=True, x_T=path).cpu()
fig, axes = plt.subplots(2, 1, figsize=(9, 2.8))
viz.show_images(torch.cat([pair.cpu(), recon.cpu()]), nrow=4, value_range="symmetric", ax=axes[0],
                title="two test digits and their DDIM reconstructions from the inverted noise")
viz.show_images(between, nrow=8, value_range="symmetric", ax=axes[1], title="decoding a slerp between their noises")
plt.tight_layout()

# %% [markdown]
# ## 2. Scores and Langevin dynamics
#
# The **score** of a density is $s(x) = \nabla_x \log p(x)$: an arrow at every point, pointing uphill in
# probability, blind to the normalising constant. If we know it, **Langevin dynamics** draws samples:
#
# $$x_{k+1} = x_k + \frac{\epsilon}{2}\, \nabla_x \log p(x_k) + \sqrt{\epsilon}\; z_k, \qquad z_k \sim \mathcal N(0, I).$$
#
# The drift climbs towards high density, the noise keeps the chain from collapsing onto the modes, and the
# balance of the two has $p$ as its stationary distribution (exactly in the limit $\epsilon \to 0$; a finite step
# leaves a small bias, since there is no Metropolis correction). Our data: the "8 Gaussians",
# whose density (and hence score) is known exactly, so we can compare everything we learn with the truth.

# %%
mixture = data.toy2d_distribution("8gaussians")
toy = data.toy2d("8gaussians", 20_000, seed=0)
exact_score = sm.mixture_score(mixture, 0.0)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
viz.plot_density_2d(lambda x: mixture.log_prob(x.cpu()), ax=axes[0], xlim=(-4, 4), ylim=(-4, 4), title="p(x)")
viz.plot_vector_field(exact_score, ax=axes[1], normalize=True, title="its score (arrows normalised)")
plt.tight_layout()

# %% [markdown]
# ### Learning the score: denoising score matching at several noise levels
#
# We do not know the score of real data, but we can learn the score of the data **blurred by noise**: if
# $\tilde x = x + \sigma z$, the score of the noise kernel is $-(\tilde x - x)/\sigma^2 = -z/\sigma$, and
# regressing on it (Vincent, 2011),
#
# $$\ell(\theta;\sigma) = \tfrac12\,\mathbb E\,\big\lVert \sigma\, s_\theta(x + \sigma z, \sigma) + z \big\rVert^2,$$
#
# is minimised by the score of the blurred density $q_\sigma = p * \mathcal N(0, \sigma^2 I)$. One network
# $s_\theta(x, \sigma)$ learns it for a whole geometric ladder of levels $\sigma_1 > \dots > \sigma_L$
# (Song & Ermon, 2019): large levels fill the empty space between the modes with useful arrows, small ones
# are faithful to the data. The loss above is already weighted: it equals
# $\tfrac12\sigma^2\,\mathbb E\lVert s_\theta + z/\sigma\rVert^2$, Song & Ermon's weight $\lambda(\sigma) = \sigma^2$,
# which makes every level's loss of order 1 so that all levels count about equally.

# %%
sigmas = sm.geometric_sigmas(sigma_max=5.0, sigma_min=0.05, n=10)
print("noise levels:", [round(s, 3) for s in sigmas.tolist()])
score_net = sm.NoiseConditionalScoreNet(dim=2, width=128, depth=3)
toy_loader = data.InMemoryLoader(toy, batch_size=256, device=DEVICE)
dsm = train.fit(score_net, lambda m, b: sm.dsm_loss(m, b[0], sigmas.to(DEVICE)), toy_loader,
                steps=config.budget(full=3000, quick=100), lr=2e-3, ema_decay=0.995, device=DEVICE,
                desc="denoising score matching")
score_model = dsm.ema.module
viz.plot_history(dsm.history, title="DSM loss");

# %%
levels = [float(sigmas[0]), float(sigmas[4]), float(sigmas[-1])]
fig, axes = plt.subplots(2, 3, figsize=(12, 8))
for col, level in enumerate(levels):
    learned = lambda x, s=level: score_model(x.to(DEVICE), s).cpu()  # noqa: E731
    viz.plot_vector_field(learned, ax=axes[0, col], normalize=True, title=f"learned, sigma = {level:.2f}")
    viz.plot_vector_field(sm.mixture_score(mixture, level), ax=axes[1, col], normalize=True,
                          title=f"exact score of p * N(0, {level:.2f}^2 I)")
plt.tight_layout()

# %%
g = torch.Generator().manual_seed(2)
probe = mixture.sample((2000,)) + 0.5 * torch.randn(2000, 2, generator=g)
with torch.no_grad():
    cos_sim = torch.nn.functional.cosine_similarity(score_model(probe.to(DEVICE), 0.5).cpu(),
                                                    sm.mixture_score(mixture, 0.5)(probe), dim=1).mean()
print(f"mean cosine similarity between learned and exact score at sigma = 0.5: {cos_sim:.3f}")
# (0.5 is not one of the 10 training levels: the network interpolates between them in log sigma)

# %% [markdown]
# ### Why annealing? Plain versus annealed Langevin
#
# Run plain Langevin at the smallest noise level from points spread uniformly over the square. Two things go
# wrong (Song & Ermon, 2019). Between the modes there were almost no training data, so the learned score is
# unreliable exactly where most chains start (the true score there is not small: it points firmly to the nearest
# mode). And the modes are separated by regions of tiny density: once a chain is in a mode it practically never
# leaves, so the share of chains in each mode is set by where they started, not by the mixture weights.
# **Annealed Langevin dynamics** runs a few Langevin steps at each level from the largest to the smallest, with
# step size $\alpha_i = \epsilon\,\sigma_i^2/\sigma_L^2$:
#
# $$x \leftarrow x + \frac{\alpha_i}{2}\, s_\theta(x, \sigma_i) + \sqrt{\alpha_i}\; z .$$
#
# At large $\sigma$ the blurred density is one smooth bump, its score is learned everywhere, and chains move
# freely between the regions of the modes; as $\sigma$ shrinks, the samples settle into the modes in about the
# right proportions.
# A last "denoising" step $x \leftarrow x + \sigma_L^2\, s_\theta(x, \sigma_L)$ removes the remaining noise
# (Tweedie's formula).

# %%
n_chains = config.budget(full=2000, quick=400)
start = torch.rand(n_chains, 2, generator=g) * 8 - 4
n_each = config.budget(full=100, quick=10)
plain = sm.langevin_dynamics(lambda x: score_model(x.to(DEVICE), float(sigmas[-1])).cpu(), start.clone(),
                             step_size=2e-4, n_steps=n_each * len(sigmas), generator=g)
annealed = sm.annealed_langevin(lambda x, s: score_model(x.to(DEVICE), s.to(DEVICE)).cpu(), start.clone(), sigmas,
                                n_steps_each=n_each, step_lr=2e-4, generator=g, return_trajectory=True, keep_every=n_each // 2)
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
viz.scatter_2d(toy[:n_chains], ax=axes[0], lim=4.5, title="data")
viz.scatter_2d(plain, ax=axes[1], lim=4.5, title="plain Langevin (smallest sigma)", color="C3")
viz.scatter_2d(annealed.samples, ax=axes[2], lim=4.5, title="annealed Langevin", color="C1")
plt.tight_layout()

# %%
viz.animate_points(annealed.trajectory, lim=4.5, title="annealed Langevin",
                   frame_labels=["start"] + [f"sigma = {s:.2f}" for s in annealed.sigmas])


# %%
def mode_fractions(x):
    """Share of the points nearest to each of the 8 modes, and the share within 2 standard deviations of a mode
    (for the true mixture that share is 1 - exp(-2) = 0.86)."""
    means = mixture.component_distribution.base_dist.loc
    std = float(mixture.component_distribution.base_dist.scale[0, 0])
    d = torch.cdist(x.double(), means.double())
    nearest = d.argmin(1)
    return torch.bincount(nearest, minlength=8).double() / len(x), (d.min(1).values < 2 * std).double().mean()


for name, x in (("data", toy[:n_chains]), ("plain Langevin", plain), ("annealed Langevin", annealed.samples)):
    fractions, near = mode_fractions(x)
    print(f"{name:18s} mode shares {fractions.numpy().round(2)}, within 2 std of a mode: {near:.2f}")

# %% [markdown]
# ## 3. Noise prediction *is* score estimation
#
# A diffusion model's $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ is data scaled and blurred. Its
# marginal $q_t$ has a score, and the best noise predictor is tied to it exactly (Tweedie's formula,
# Vincent's identity): $\mathbb E[\epsilon \mid x_t] = -\sqrt{1-\bar\alpha_t}\,\nabla_{x_t}\log q_t(x_t)$, so
#
# $$\nabla_{x_t} \log q_t(x_t) \approx -\frac{\epsilon_\theta(x_t, t)}{\sqrt{1-\bar\alpha_t}}
# \quad\text{and}\quad
# \mathbb E[x_0 \mid x_t] = \frac{x_t + (1-\bar\alpha_t)\,\nabla\log q_t(x_t)}{\sqrt{\bar\alpha_t}} .$$
#
# DDPM training is denoising score matching: rescaled, $x_t/\sqrt{\bar\alpha_t} = x_0 + \sigma_t\epsilon$ with
# $\sigma_t^2 = (1-\bar\alpha_t)/\bar\alpha_t = 1/\mathrm{SNR}(t)$, and $L_\text{simple}$ is the loss of Section 2
# with the same weight $\lambda(\sigma) = \sigma^2$ (up to a constant factor). The DDPM sampler plays the role of annealed
# Langevin dynamics: it walks down the same ladder of noise levels following the learned score (formally it
# discretises the reverse-time SDE of Song et al., 2021). First an exact check with the Gaussian
# oracle of Section 1, whose score we also know in closed form; then the same with a trained network: train a
# 2-D noise predictor on the 8 Gaussians and compare its implied score with the exact score of $q_t$, which for a
# Gaussian mixture is again a mixture (`noisy_mixture(p, sqrt(1 - alpha_bar), scale=sqrt(alpha_bar))`).

# %%
t_check = torch.full((6,), 300)
x_check = torch.randn(6, 2, dtype=torch.float64, generator=g0)
closed_form = -(x_check - schedule.sqrt_alpha_bar[300] * mu) @ torch.linalg.inv(
    schedule.alpha_bar[300] * sigma_data + (1 - schedule.alpha_bar[300]) * torch.eye(2, dtype=torch.float64))  # grad log N(sqrt(ab) mu, Sigma_t)
assert torch.allclose(schedule.score_from_eps(oracle(x_check, t_check), t_check), closed_form)
print("score = -eps* / sqrt(1 - alpha_bar) for the optimal noise predictor: checked")

# %%
toy_schedule = NoiseSchedule.linear(1000)
scale = 2.0  # bring the 8 Gaussians (radius 2.8) to roughly unit scale, like the noise
eps_model = TimeConditionedMLP(dim=2, width=128, depth=3)
eps_fit = train.fit(eps_model, lambda m, b: diffusion.diffusion_loss(m, b[0] / scale, toy_schedule), toy_loader,
                    steps=config.budget(full=3000, quick=100), lr=2e-3, ema_decay=0.995, device=DEVICE,
                    desc="2-D noise predictor")
eps_model = eps_fit.ema.module
scaled_mixture = sm.noisy_mixture(mixture, 0.0, scale=1 / scale)  # the data / 2, exactly

fig, axes = plt.subplots(2, 3, figsize=(12, 8))
agreement = {}
for col, t in enumerate([100, 300, 600]):
    ab = float(toy_schedule.alpha_bar[t])
    marginal_score = sm.mixture_score(scaled_mixture, math.sqrt(1 - ab), scale=math.sqrt(ab))

    def implied_score(x, t=t):
        tt = torch.full((len(x),), t, device=DEVICE)
        with torch.no_grad():
            return toy_schedule.score_from_eps(eps_model(x.to(DEVICE), tt), tt).cpu()

    xt = toy_schedule.q_sample(toy[:2000] / scale, t, generator=g)
    agreement[t] = torch.nn.functional.cosine_similarity(implied_score(xt), marginal_score(xt), dim=1).mean().item()
    viz.plot_vector_field(implied_score, ax=axes[0, col], xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), normalize=True,
                          title=f"-eps_theta / sqrt(1 - abar), t = {t + 1}")
    viz.plot_vector_field(marginal_score, ax=axes[1, col], xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), normalize=True,
                          title=f"exact score of q_t, t = {t + 1}")
plt.tight_layout()
print("cosine similarity of implied and exact scores on samples of q_t:",
      {t + 1: round(v, 3) for t, v in agreement.items()})

# %% [markdown]
# ## Common misconceptions
#
# * *"DDIM is a different model that must be trained separately."* It is a different **sampler** for the same
#   network; any $\epsilon$-, $x_0$- or $v$-prediction model trained with the DDPM loss can use it.
# * *"DDIM with $\eta = 0$ is the same as DDPM without noise."* Dropping the noise term from DDPM's update
#   shrinks the samples towards the mean (in Section 1 the variance all but vanished); DDIM changes the
#   *coefficients* so that the marginals stay right while no noise is added.
# * *"More sampling steps always help a lot."* Past roughly 50-100 DDIM steps the curve flattens (in the DDIM
#   paper and in `bench/RESULTS.md`); the network's own error, not the solver, then limits quality.
# * *"The score is the gradient of the density."* It is the gradient of the **log**-density, which does not
#   need the normalising constant and is large even where the density is tiny.
# * *"Langevin dynamics with the right score always gives the right samples."* Only in the limit; with
#   separated modes and finite time, unannealed chains keep the mode proportions they started with.
# * *"Score models and diffusion models are different families."* They are two descriptions of the same thing:
#   $\epsilon_\theta = -\sqrt{1-\bar\alpha_t}\, s_\theta$.

# %% [markdown]
# ## Self-check

# %%
# Self-check
ddim_steps_err = float((torch.cov(diffusion.ddim_sample(oracle, schedule, steps=100, x_T=x_T).T) - sigma_data).abs().max())
assert ddim_steps_err < 0.02, "DDIM with the exact denoiser and 100 steps should reproduce the covariance"
assert recon.shape == pair.shape
fractions, near = mode_fractions(annealed.samples)
assert dsm.history.last() < dsm.history.values["loss"][0], "the DSM loss should go down"
if not config.is_quick():
    assert cos_sim > 0.9, "the learned score should point where the exact one does"
    assert near > 0.7 and fractions.min() > 0.06, "annealed Langevin should put samples in all 8 modes"
    assert min(agreement.values()) > 0.8, "noise prediction should give the score of q_t"
    assert curve[(0.0, 50)][0] < curve[(0.0, 5)][0], "50 DDIM steps should beat 5"
print("self-check passed")

# %% [markdown]
# ## Summary
#
# * DDIM re-uses the DDPM network with a non-Markovian sampler; $\eta = 0$ turns sampling into a deterministic ODE
#   solve that works with 20-50 steps, can be inverted, and maps noise to images smoothly.
# * Denoising score matching learns $\nabla\log q_\sigma$ by regression; annealed Langevin dynamics follows it from
#   large to small $\sigma$ and finds all modes in about the right proportions, where plain Langevin does not.
# * Predicting the noise is predicting the score: $s_\theta = -\epsilon_\theta/\sqrt{1-\bar\alpha_t}$.
#
# **Next:** notebook 10 steers the same kind of model with labels (classifier-free guidance) and moves it into a
# VAE's latent space. Exercises: `exercises/09_fast_sampling_and_scores.ipynb`.

# %%
clock.report();
