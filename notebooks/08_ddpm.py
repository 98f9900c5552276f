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
# # 08 · Diffusion models (DDPM) from first principles
#
# A diffusion model learns to generate data by learning to **remove noise**. We fix a process that
# destroys an image in a thousand small steps of Gaussian noise, and train one network to undo a single
# small step. To generate, start from pure noise and apply the learned denoiser a thousand times.
# This notebook builds the denoising diffusion probabilistic model (DDPM) of Ho, Jain and Abbeel (2020)
# from its equations, checks every equation numerically, trains a 2-D model in seconds and an MNIST model
# live on the CPU, and then loads a checkpoint trained longer by a script in the repository.
#
# **After this notebook you will be able to**
# 1. write the forward (noising) process step by step and in closed form, and explain why the closed form holds;
# 2. compare the linear and cosine noise schedules through $\bar\alpha_t$ and the signal-to-noise ratio;
# 3. derive the posterior $q(x_{t-1} \mid x_t, x_0)$ and use it to define the reverse (generating) step;
# 4. follow the ELBO down to the "predict the noise" loss and say which weights it drops;
# 5. train a diffusion model with `course_lib` on 2-D data and on MNIST, and sample from it with the
#    ancestral DDPM sampler;
# 6. read a denoising trajectory: what the model "believes" the final image is at each step.
#
# Prerequisites: Gaussians and KL divergence (notebook 01), the ELBO (notebook 04). The code lives in
# `course_lib.models.diffusion` (schedules, `q_sample`, posterior, loss, samplers) and `course_lib.nn.unet`,
# tested against closed forms and against Hugging Face `diffusers`' schedulers.

# %%
import math
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import distributions as D

from course_lib import checkpoints, config, data, device, metrics, train, viz
from course_lib.models import ddpm_mnist, diffusion
from course_lib.models.diffusion import NoiseSchedule
from course_lib.nn.time_embedding import TimeConditionedMLP
from course_lib.nn.unet import default_unet

clock = config.NotebookClock("08 DDPM", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %% [markdown]
# ## 1. The idea in words
#
# * **Forward process (fixed, no learning).** Take a clean image $x_0$. Add a little Gaussian noise to get
#   $x_1$, a little more to get $x_2$, and so on for $T = 1000$ steps. Each step also shrinks the image slightly,
#   so that after many steps nothing of the image is left and $x_T$ is (almost exactly) standard Gaussian noise.
# * **Reverse process (learned).** If each step adds only a little noise, undoing one step is a simple problem:
#   the previous image is close to the current one, and the uncertainty about it is nearly Gaussian. A neural
#   network learns this one-step denoiser. In practice it is trained to answer a regression question:
#   *"which noise was added to this image?"*
# * **Generation.** Draw $x_T \sim \mathcal N(0, I)$ and denoise step by step down to $x_0$.
#
# There is no discriminator and no game: a diffusion model is trained by **plain least-squares regression**,
# one network, one loss that goes down steadily. That is a large part of why it trains so reliably.

# %% [markdown]
# ## 2. The forward process
#
# A *variance schedule* $0 < \beta_1 < \dots < \beta_T < 1$ sets how much noise each step adds:
#
# $$q(x_t \mid x_{t-1}) = \mathcal N\big(\sqrt{1-\beta_t}\, x_{t-1},\ \beta_t I\big)
#   \quad\Longleftrightarrow\quad
#   x_t = \sqrt{1-\beta_t}\; x_{t-1} + \sqrt{\beta_t}\; \epsilon_t, \qquad \epsilon_t \sim \mathcal N(0, I).$$
#
# The signal is multiplied by $\sqrt{1-\beta_t}$ (slightly less than 1) and the noise by $\sqrt{\beta_t}$
# (small). The shrinking matters: if $x_{t-1}$ has unit variance, so does $x_t$, because
# $(1-\beta_t) + \beta_t = 1$. Without it the variance would grow with every step.
#
# Ho et al. use a **linear** schedule from $\beta_1 = 10^{-4}$ to $\beta_T = 0.02$ with $T = 1000$.
# In code the steps are counted from 0 (as in `diffusers`): index `t = 0..T-1` is the paper's step $t + 1$.
# Images live in $[-1, 1]$ (the "symmetric" range), so that pure noise and data have comparable scales.

# %%
mnist = data.mnist("train", value_range="symmetric")
mnist_test = data.mnist("test", value_range="unit")  # the metrics take [0, 1]
linear = NoiseSchedule.linear(1000)
cosine = NoiseSchedule.cosine(1000)
print(linear)
print(cosine)

digit = mnist.x[:1]  # (1, 1, 28, 28) in [-1, 1]
shown_steps = [0, 50, 100, 200, 300, 500, 700, 999]
x, chain = digit.clone(), {}
g = torch.Generator().manual_seed(0)
for t in range(1000):  # the Markov chain, one small step at a time
    x = linear.q_step(x, t, generator=g)
    if t in shown_steps:
        chain[t] = x
viz.show_images(torch.cat([chain[t] for t in shown_steps]), nrow=8, value_range="symmetric", clip=True,
                labels=[f"t={t + 1}" for t in shown_steps], title="a digit dissolving: 1000 steps of the forward chain");

# %% [markdown]
# ### Jumping to any step in closed form
#
# Running a thousand steps to get one noisy training image would be slow. Fortunately we never have to.
# Write $\alpha_t = 1 - \beta_t$ and unroll two steps:
#
# $$x_t = \sqrt{\alpha_t}\, x_{t-1} + \sqrt{1-\alpha_t}\,\epsilon_t
#       = \sqrt{\alpha_t \alpha_{t-1}}\, x_{t-2} + \underbrace{\sqrt{\alpha_t(1-\alpha_{t-1})}\,\epsilon_{t-1}
#         + \sqrt{1-\alpha_t}\,\epsilon_t}_{\text{sum of independent Gaussians}} .$$
#
# A sum of independent zero-mean Gaussians is Gaussian with the *sum of the variances*:
# $\alpha_t(1-\alpha_{t-1}) + (1-\alpha_t) = 1 - \alpha_t\alpha_{t-1}$. By induction, with
# $\bar\alpha_t = \prod_{s=1}^{t} \alpha_s$,
#
# $$q(x_t \mid x_0) = \mathcal N\big(\sqrt{\bar\alpha_t}\, x_0,\ (1-\bar\alpha_t) I\big)
#   \quad\Longleftrightarrow\quad x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1-\bar\alpha_t}\;\epsilon .$$
#
# This is `NoiseSchedule.q_sample`. Let us check it against the step-by-step chain on many copies of
# one pixel value: both must have the same mean and variance at every step.

# %%
n_copies = config.budget(full=20_000, quick=5_000)
x0_pixel = torch.full((n_copies, 1), 0.8)
x = x0_pixel.clone()
g = torch.Generator().manual_seed(1)
for t in range(300):
    x = linear.q_step(x, t, generator=g)
closed = linear.q_sample(x0_pixel, 299, generator=g)
ab = float(linear.alpha_bar[299])
print(f"after 300 steps: chain mean {x.mean():.4f}, var {x.var():.4f} | closed form mean {closed.mean():.4f}, "
      f"var {closed.var():.4f} | theory mean {math.sqrt(ab) * 0.8:.4f}, var {1 - ab:.4f}")
mean_tol, var_tol = 5 * math.sqrt((1 - ab) / n_copies), 5 * (1 - ab) * math.sqrt(2 / n_copies)  # 5 standard errors
for sample in (x, closed):
    assert abs(float(sample.mean()) - math.sqrt(ab) * 0.8) < mean_tol and abs(float(sample.var()) - (1 - ab)) < var_tol

# %% [markdown]
# **A common error, checked.** Some tutorials write the step the other way round,
# $x_t = \sqrt{\beta_t}\, x_{t-1} + \sqrt{1-\beta_t}\,\epsilon$. That destroys the image in a single step
# ($\sqrt{\beta_1} = 0.01$) and makes every later step almost pure noise: there is nothing gradual left to
# learn to undo.

# %%
wrong = x0_pixel.clone()
for t in range(3):
    wrong = linear.betas[t].sqrt().float() * wrong + (1 - linear.betas[t]).sqrt().float() * torch.randn_like(wrong)
print(f"swapped formula after 3 steps: mean {wrong.mean():.4f} (the signal 0.8 is gone), var {wrong.var():.3f}")

# %% [markdown]
# ### Schedules: how fast is the signal destroyed?
#
# What matters is not $\beta_t$ itself but how much signal is left: $\bar\alpha_t$, or the **signal-to-noise
# ratio** $\mathrm{SNR}(t) = \bar\alpha_t / (1 - \bar\alpha_t)$ of $x_t$. The linear schedule destroys small
# images quickly: for 28x28 digits, most of its steps are spent on images that are already almost pure
# noise. The **cosine** schedule of Nichol & Dhariwal (2021) defines $\bar\alpha_t$ directly,
# $\bar\alpha_t = f(t/T)/f(0)$ with $f(u) = \cos^2\!\big(\frac{u + s}{1 + s}\frac{\pi}{2}\big)$ and a small offset
# $s = 0.008$ (the betas follow as $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$, capped at 0.999 near $t = T$).
# Its log-SNR falls almost linearly over most of the steps (steeply only at the two ends), so the information
# disappears more evenly over the steps. Compare the right-hand panels below.

# %%
diffusion.plot_schedules({"linear (Ho et al.)": linear, "cosine (Nichol & Dhariwal)": cosine});

# %%
t_show = torch.tensor([0, 100, 250, 400, 550, 700, 850, 999])
noise = torch.randn((len(t_show), 1, 28, 28), generator=torch.Generator().manual_seed(2))
rows = [sched.q_sample(digit.expand(len(t_show), -1, -1, -1), t_show, noise) for sched in (linear, cosine)]
viz.show_images(torch.cat(rows), nrow=len(t_show), value_range="symmetric", clip=True,
                labels=[f"lin t={t + 1}" for t in t_show.tolist()] + [f"cos t={t + 1}" for t in t_show.tolist()],
                title="the same noise, two schedules (top: linear, bottom: cosine)");

# %%
# the cosine formula, checked in one line: alpha_bar_t = f(t/T) / f(0) (below the beta cap)
f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
assert abs(float(cosine.alpha_bar[499]) - f(500 / 1000) / f(0)) < 1e-9
print(f"alpha_bar at t=500: linear {float(linear.alpha_bar[499]):.4f}, cosine {float(cosine.alpha_bar[499]):.4f}")

# %% [markdown]
# ## 3. Going backwards: the posterior $q(x_{t-1} \mid x_t, x_0)$
#
# The reverse step $q(x_{t-1} \mid x_t)$ is intractable: it depends on the whole data distribution. But
# **given the clean image** $x_0$ it is a Gaussian we can write down. By Bayes' rule,
# $q(x_{t-1} \mid x_t, x_0) \propto q(x_t \mid x_{t-1})\, q(x_{t-1} \mid x_0)$, a product of two Gaussians in
# $x_{t-1}$, which gives
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal N\big(\tilde\mu_t(x_t, x_0),\ \tilde\beta_t I\big), \quad
# \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\, x_0
#             + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\, x_t, \quad
# \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t .$$
#
# We check it by doing the Bayes computation numerically for one pixel: precisions add, and the mean is the
# precision-weighted average of what each factor says about $x_{t-1}$.

# %%
t = 400
ab_prev, alpha_t, beta_t = float(linear.alpha_bar[t - 1]), float(linear.alphas[t]), float(linear.betas[t])
x0_val, xt_val = torch.tensor([[0.6]], dtype=torch.float64), torch.tensor([[-0.3]], dtype=torch.float64)
# prior x_{t-1} | x0 ~ N(sqrt(ab_prev) x0, 1 - ab_prev); likelihood x_t | x_{t-1} ~ N(sqrt(alpha) x_{t-1}, beta)
precision = 1 / (1 - ab_prev) + alpha_t / beta_t
bayes_mean = (math.sqrt(ab_prev) * x0_val / (1 - ab_prev) + math.sqrt(alpha_t) * xt_val / beta_t) / precision
mean, var = linear.q_posterior(x0_val, xt_val, t)
print(f"posterior mean {float(mean):.6f} (Bayes {float(bayes_mean):.6f}), variance {float(var):.6f} (Bayes {1 / precision:.6f})")
assert torch.allclose(mean, bayes_mean) and abs(float(var) - 1 / precision) < 1e-12

# %% [markdown]
# The generative model copies this form: $p_\theta(x_{t-1} \mid x_t) = \mathcal N(\mu_\theta(x_t, t), \sigma_t^2 I)$
# with a fixed variance ($\sigma_t^2 = \tilde\beta_t$ or $\beta_t$; both work) and a learned mean. Since the
# posterior mean needs $x_0$, which we do not have when generating, the network **predicts** it. It is
# convenient to predict the noise instead: substituting $x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon)/\sqrt{\bar\alpha_t}$,
#
# $$\tilde\mu_t = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon\Big)
# \quad\Rightarrow\quad
# \mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\epsilon_\theta(x_t, t)\Big).$$

# %%
eps = torch.randn(4, 3, dtype=torch.float64)
x0_batch = torch.randn(4, 3, dtype=torch.float64)
xt_batch = linear.q_sample(x0_batch, t, eps)
mu_from_eps = (xt_batch - beta_t / math.sqrt(1 - float(linear.alpha_bar[t])) * eps) / math.sqrt(alpha_t)
assert torch.allclose(linear.q_posterior(x0_batch, xt_batch, t)[0], mu_from_eps)
print("posterior mean written with the noise: checked")

# %% [markdown]
# ## 4. From the ELBO to "predict the noise"
#
# Like a VAE, a diffusion model is trained by maximising a lower bound on $\log p_\theta(x_0)$, with the
# forward chain playing the encoder (fixed, no parameters). The bound splits into one term per step:
#
# $$-\log p_\theta(x_0) \le \underbrace{\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T\ \text{(no parameters)}}
#   + \sum_{t=2}^{T} \underbrace{\mathbb E_q\, \mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}}
#   \; \underbrace{-\ \mathbb E_q \log p_\theta(x_0 \mid x_1)}_{L_0} .$$
#
# Each $L_{t-1}$ is a KL between two Gaussians whose variances are fixed ($\tilde\beta_t$ and $\sigma_t^2$), so the
# only part that depends on $\theta$ is a squared distance between the means, and with the noise parameterisation
# above it becomes a squared distance between noises (the means differ by
# $\frac{\beta_t}{\sqrt{\alpha_t}\sqrt{1-\bar\alpha_t}}(\epsilon_\theta - \epsilon)$):
#
# $$L_{t-1} = \mathbb E\Big[\frac{1}{2\sigma_t^2}\lVert \tilde\mu_t - \mu_\theta \rVert^2\Big] + C_t
#           = \mathbb E\Big[\frac{\beta_t^2}{2\sigma_t^2\,\alpha_t\,(1-\bar\alpha_t)}
#             \big\lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\big\rVert^2\Big] + C_t,$$
#
# where $C_t$ does not depend on $\theta$ (it is 0 when $\sigma_t^2 = \tilde\beta_t$).
#
# Ho et al. found that **dropping the weight** in front gives better samples:
#
# $$L_\text{simple} = \mathbb E_{t \sim \mathcal U\{1..T\},\ x_0,\ \epsilon}\,
#   \big\lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t)\big\rVert^2 .$$
#
# Training is then: pick a random image, a random step and a random noise; make $x_t$ in closed form;
# regress the noise. We check the KL identity with `torch.distributions`, for an arbitrary "network output",
# and print the weight at a few steps to see what dropping it changes:

# %%
eps_theta = torch.randn(4, 3, dtype=torch.float64)  # any prediction of the noise
sigma2 = float(linear.posterior_variance[t])
mu_true = linear.q_posterior(x0_batch, xt_batch, t)[0]
mu_model = (xt_batch - beta_t / math.sqrt(1 - float(linear.alpha_bar[t])) * eps_theta) / math.sqrt(alpha_t)
kl = D.kl_divergence(D.Independent(D.Normal(mu_true, sigma2**0.5), 1), D.Independent(D.Normal(mu_model, sigma2**0.5), 1))
weight = beta_t**2 / (2 * sigma2 * alpha_t * (1 - float(linear.alpha_bar[t])))
print(f"ELBO weight at t={t + 1}: {weight:.3f}")
assert torch.allclose(kl, weight * (eps - eps_theta).pow(2).sum(1))
print("KL(q || p_theta) = weight x ||eps - eps_theta||^2: checked")
# the same weight at every step (index 0 is L_0, not a KL: its weight comes out as inf)
elbo_weight = linear.betas**2 / (2 * linear.posterior_variance * linear.alphas * (1 - linear.alpha_bar))
print("ELBO weight (sigma_t^2 = beta_tilde_t, linear schedule):",
      {s: round(float(elbo_weight[s - 1]), 4) for s in (2, 10, 100, 500, 1000)})

# %% [markdown]
# The ELBO's weights are roughly a hundred times larger at the first, almost clean steps than in the middle.
# $L_\text{simple}$ sets them all to one: compared with the ELBO it **down-weights the small-$t$ terms**, so the
# network spends its capacity on the harder, noisier steps (Ho et al., Section 3.4). The price: $L_\text{simple}$
# is no longer a bound on the likelihood; the samples look better.
#
# `diffusion.diffusion_loss(model, x0, schedule)` is $L_\text{simple}$ (averaged over pixels). It also offers
# predicting $x_0$ or the "velocity" $v = \sqrt{\bar\alpha_t}\epsilon - \sqrt{1-\bar\alpha_t}x_0$ instead of the
# noise, and **Min-SNR weighting** (Hang et al., 2023): since
# $\lVert\epsilon - \hat\epsilon\rVert^2 = \mathrm{SNR}(t)\,\lVert x_0 - \hat x_0\rVert^2$, all these losses are the
# same regression with different weights over $t$, and capping the weight at $\min(\mathrm{SNR}(t), 5)$ in
# $x_0$-space stops the almost-clean steps from dominating. Hang et al. report training converging several times
# faster with it, which on a CPU budget can be the difference between blobs and digits.
#
# ## 5. A 2-D diffusion model in seconds
#
# On 2-D data everything is visible. The network is a small residual MLP
# $\epsilon_\theta(x_t, t)$ that sees $t$ through a sinusoidal embedding (`TimeConditionedMLP`).

# %%
toy = data.toy2d("swissroll", 20_000, seed=0)
toy = toy / toy.std()  # unit scale, like the noise
toy_schedule = NoiseSchedule.linear(1000)
toy_model = TimeConditionedMLP(dim=2, width=128, depth=3)
toy_loader = data.InMemoryLoader(toy, batch_size=256, device=DEVICE)


def toy_loss(model, batch):
    (x0,) = batch
    return diffusion.diffusion_loss(model, x0, toy_schedule)  # L_simple: predict the noise


toy_result = train.fit(toy_model, toy_loss, toy_loader, steps=config.budget(full=2000, quick=100), lr=2e-3,
                       ema_decay=0.995, device=DEVICE, desc="2-D DDPM")
print(f"trained in {toy_result.seconds:.1f} s")
viz.plot_history(toy_result.history, title="L_simple on the swiss roll");

# %% [markdown]
# Sampling with the ancestral sampler (Ho et al., Algorithm 2): start from $x_T \sim \mathcal N(0, I)$ and
# repeat $x_{t-1} = \mu_\theta(x_t, t) + \sigma_t z$ down to $t = 1$ (no noise at the last step). We keep the
# trajectory to watch the cloud of noise fold into the spiral.

# %%
n_toy = config.budget(full=1500, quick=300)
toy_out = diffusion.ddpm_sample(toy_result.ema.module, toy_schedule, (n_toy, 2), generator=torch.Generator().manual_seed(3),
                                device=DEVICE, return_trajectory=True, keep_every=50)
fig, axes = plt.subplots(1, 5, figsize=(15, 3))
for ax, k in zip(axes, [0, 8, 14, 18, 20]):
    label = "x_T (noise)" if k == 0 else f"after step t = {toy_out.timesteps[k - 1] + 1}"
    viz.scatter_2d(toy_out.trajectory[k], ax=ax, lim=3, title=label)
plt.tight_layout()

# %%
viz.animate_points(toy_out.trajectory, lim=3, title="DDPM sampling on 2-D data",
                   frame_labels=["x_T"] + [f"after t = {t + 1}" for t in toy_out.timesteps])

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
viz.scatter_2d(toy[:n_toy], ax=axes[0], lim=3, title="data")
viz.scatter_2d(toy_out.samples, ax=axes[1], lim=3, title="DDPM samples", color="C1");

# %% [markdown]
# ## 6. MNIST, trained live on this machine
#
# For images the denoiser is a **U-Net** (`course_lib.nn.unet.UNet`): convolutions that go down to 7x7 and
# back up to 28x28, with skip connections that carry fine detail past the bottleneck, residual blocks with
# GroupNorm, the step $t$ added in every block, and self-attention at 7x7. On a CPU the course uses a small
# one (`"mnist-small"`, 0.69M parameters: 16 channels at 28x28, 32 at 14x14, 64 at 7x7); on a GPU
# `default_unet` picks a wider one.
#
# The recipe, chosen to get readable digits in minutes on a laptop (it is `scripts/train_diffusion_mnist.py`'s
# `"live"` recipe; `bench/diffusion_baseline.py` compares it with a plain textbook recipe):
# cosine schedule, $T = 1000$, noise prediction with Min-SNR-5 weights, AdamW with learning rate
# $2\cdot10^{-3}$, batches of 64, gradient clipping at 1, and an **exponential moving average** (EMA) of the
# weights (decay 0.999) that we sample from. Training stops after a fixed time budget (about five minutes in
# full mode) or a maximum number of steps, whichever comes first: we first time a few steps to see how many fit.

# %%
schedule = NoiseSchedule.cosine(1000)
torch.manual_seed(0)
unet = default_unet(28, device=DEVICE)  # "mnist-small" on a CPU, wider on a GPU
print(f"U-Net: {unet.num_parameters():,} parameters, channels {unet.channels}")
loader = data.InMemoryLoader(mnist.x, mnist.y, batch_size=64, device=DEVICE)


def ddpm_loss(model, batch):
    x0, _ = batch  # (B, 1, 28, 28) in [-1, 1]; the labels are not used
    return diffusion.diffusion_loss(model, x0, schedule, prediction="eps", weighting="min_snr")


fixed_noise = torch.randn((16, 1, 28, 28), generator=torch.Generator().manual_seed(4))
progress_frames, progress_steps = [], []


def show_progress(step, model, history):
    """Every few hundred steps: what the raw (non-EMA) model makes of the same 16 noises with 10 DDIM steps."""
    if step % 250 == 0:
        model.eval()
        progress_frames.append(diffusion.ddim_sample(model, schedule, steps=10, clip_x0=True,
                                                     x_T=fixed_noise.to(DEVICE)).cpu())
        progress_steps.append(step)


time_limit = config.budget(full=300.0, quick=15.0)  # seconds of training
max_steps = config.budget(full=3000, quick=6)
warmup = config.budget(full=30, quick=2)
state_file = Path(tempfile.mkdtemp()) / "ddpm_live_state.pt"  # lets the second call continue the first
fit_args = dict(lr=2e-3, ema_decay=0.999, clip_grad_norm=1.0, device=DEVICE, checkpoint_path=state_file,
                resume=True, log_every=config.budget(full=50, quick=2), callback=show_progress)
start = time.perf_counter()
train.fit(unet, ddpm_loss, loader, steps=warmup, desc="timing a few steps", **fit_args)
seconds_per_step = (time.perf_counter() - start) / warmup
live_steps = max(warmup, min(max_steps, int(time_limit / seconds_per_step)))
print(f"{seconds_per_step:.2f} s per step here -> training for {live_steps} steps")
live = train.fit(unet, ddpm_loss, loader, steps=live_steps, desc="DDPM on MNIST", **fit_args)
live_seconds = time.perf_counter() - start
print(f"{live.steps} steps in {live_seconds:.0f} s")
viz.plot_history(live.history, logy=True, title="denoising loss (Min-SNR weighted)");

# %%
if progress_frames:
    viz.animate_images(progress_frames, nrow=16, value_range="symmetric", clip=True,
                       frame_labels=[f"step {s}" for s in progress_steps], title="the same 16 noises during training")

# %% [markdown]
# Now we sample from the EMA weights. Here we use 50 steps of DDIM (notebook 09) to save time; it uses the
# very same network. We take DDIM's **stochastic** variant ($\eta = 1$): on 50 of the 1000 steps it makes
# DDPM's own update, drawing fresh noise at each step. For a model trained only a few minutes this matters: the
# fresh noise washes out part of the network's errors, which the deterministic variant ($\eta = 0$) carries to
# the end. On this recipe's snapshot at 1,500 steps, 500 samples scored 4.5x the floor with $\eta = 1$ against
# 10.2x with $\eta = 0$ (measured once with `bench/diffusion.py`'s sampler; notebook 09 compares the two).
# To judge the samples we compute the **classifier-FID** between them and the held-out
# test digits, in the feature space of the course's MNIST classifier (notebook 11 explains it), as a ratio to
# the FID between two sets of *real* digits of the same size (the "floor"). A ratio of 1 means "as close to
# the test digits as other real digits are".

# %%
ema_model = live.ema.module
n_eval = config.budget(full=500, quick=80)
live_samples = diffusion.ddim_sample(ema_model, schedule, (n_eval, 1, 28, 28), steps=config.budget(full=50, quick=5),
                                     eta=1.0, clip_x0=True, generator=torch.Generator().manual_seed(5),
                                     device=DEVICE).cpu()
viz.show_images(live_samples[:48], nrow=16, value_range="symmetric", title=f"live model after {live.steps} steps (EMA)");

# %%
live_report = metrics.evaluate(mnist_test.x, (live_samples + 1) / 2)
live_ratio = live_report.fid_ratio
print(f"classifier-FID {live_report.fid:.2f} with {n_eval} samples"
      + (f" = {live_ratio:.1f} x the real-vs-real floor" if live_ratio is not None else " (no floor at this N)")
      + f"; precision {live_report.precision_recall.precision:.2f}, recall {live_report.precision_recall.recall:.2f}")

# %% [markdown]
# ## 7. The shipped checkpoint, and a denoising trajectory
#
# The repository ships the same U-Net (`"mnist-small"`) with the same loss, trained longer (and with the learning
# rate decayed to 0 at the end) by `scripts/train_diffusion_mnist.py --ship`; its manifest entry, printed below,
# says how long and on what. `bench/diffusion.py` measures its samples (section "Diffusion on MNIST" of
# `bench/RESULTS.md`). If the file is missing, `load_or_train` falls back to a **shortened** run of that recipe here
# (a few extra minutes on a CPU, and rougher digits), and says so.
# This time we sample with the **full ancestral DDPM sampler**, all 1000 steps, and keep the trajectory: both
# the noisy state $x_t$ and the model's current guess of the final image,
# $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t))/\sqrt{\bar\alpha_t}$.

# %%
# course_lib.models.ddpm_mnist holds the shipped model's schedule, architecture and loss (the ones used above)
shipped, source = ddpm_mnist.load_shipped(device=DEVICE, fallback_steps=config.budget(full=2000, quick=4))
print(f"weights: {source}")
if source == "shipped":
    print("manifest:", checkpoints.manifest()["ddpm_mnist"]["notes"])
else:
    print("no shipped 'ddpm_mnist' checkpoint: these are weights trained on this machine (shortened recipe), "
          "so expect rougher digits than the shipped model gives")

# %%
n_traj = config.budget(full=12, quick=2)
ancestral_steps = config.budget(full=1000, quick=20)
kw = dict(clip_x0=True, generator=torch.Generator().manual_seed(6), device=DEVICE, return_trajectory=True,
          keep_every=max(1, ancestral_steps // 40), progress=True)
if ancestral_steps == schedule.T:  # full mode: all 1000 ancestral steps
    out = diffusion.ddpm_sample(shipped, schedule, (n_traj, 1, 28, 28), **kw)
else:  # quick mode: the same ancestral update on a subsequence of steps (DDIM with eta = 1, notebook 09)
    out = diffusion.ddim_sample(shipped, schedule, (n_traj, 1, 28, 28), steps=ancestral_steps, eta=1.0, **kw)
viz.show_images(out.samples, nrow=n_traj, value_range="symmetric", title=f"ancestral sampling, {ancestral_steps} steps (shipped model)");

# %%
picks = torch.linspace(0, len(out.timesteps) - 1, 8).round().long().tolist()  # 8 of the kept steps
fig, axes = plt.subplots(2, 1, figsize=(12, 4.2))
labels = [f"t={out.timesteps[k] + 1}" for k in picks]
viz.show_images(torch.cat([out.trajectory[k + 1][:1] for k in picks]), nrow=len(picks), value_range="symmetric",
                clip=True, ax=axes[0], title="the state after the denoising step at t", labels=labels)
viz.show_images(torch.cat([out.x0_predictions[k][:1] for k in picks]), nrow=len(picks), value_range="symmetric",
                ax=axes[1], title="the model's guess x0_hat at the same step", labels=labels);

# %%
viz.animate_images(out.trajectory, nrow=n_traj, value_range="symmetric", clip=True, title="x_T -> x_0",
                   frame_labels=["x_T"] + [f"after t = {t + 1}" for t in out.timesteps])

# %% [markdown]
# Read the two rows from left to right. Early on, $\hat x_0$ is a blurry average of digits (the best guess in the
# least-squares sense when almost nothing is known); the coarse shape is settled well before the end, and the
# last steps mostly sharpen strokes. The noisy state $x_t$ itself looks like noise until surprisingly late.
#
# ## Common misconceptions
#
# * *"The forward step is $x_t = \sqrt{\beta_t}x_{t-1} + \sqrt{1-\beta_t}\epsilon$."* No: the signal keeps the
#   large factor $\sqrt{1-\beta_t}$ and the noise gets the small one $\sqrt{\beta_t}$; we saw the swapped version
#   wipe out the image in one step.
# * *"Diffusion models are a kind of GAN."* They are not adversarial: there is no discriminator, no game and no
#   mode collapse from one; training is least-squares regression of the noise, and the loss decreases steadily.
# * *"Training needs the whole 1000-step chain for each image."* No: $x_t$ is sampled in closed form at a random $t$,
#   so a training step costs one network evaluation.
# * *"The network removes all the noise at once."* It predicts the noise (equivalently $\hat x_0$), but sampling
#   only moves a small step towards that guess and adds fresh noise, 1000 times; jumping straight to $\hat x_0$
#   gives the blurry averages shown above.
# * *"The loss value tells you the sample quality."* The denoising loss averages over all noise levels, has a floor
#   above 0 (the noise cannot be recovered exactly from $x_t$) and changes little while the samples still improve a
#   lot; judge samples with a sample metric (here the classifier-FID) and your eyes.
# * *"Diffusion models have no likelihood."* They have an ELBO, a computable lower bound on $\log p_\theta(x_0)$
#   (Section 4); $L_\text{simple}$ only drops its weights for training.

# %% [markdown]
# ## Self-check

# %%
# Self-check: closed form, posterior, training and samples.
assert torch.allclose(linear.alpha_bar, torch.cumprod(1 - linear.betas, 0)), "alpha_bar is the running product of 1 - beta"
assert float(linear.alpha_bar[-1]) < 1e-3, "after T steps almost no signal is left"
assert live.history.values["loss"][-1] < live.history.values["loss"][0], "the denoising loss should go down"
assert live_samples.shape == (n_eval, 1, 28, 28) and live_samples.abs().max() <= 1.0 + 1e-5
assert toy_result.history.last() < 0.9, "the 2-D model should predict the noise better than guessing 0 (loss 1)"
if not config.is_quick() and live_ratio is not None and live.steps >= 1000:
    assert live_ratio < 30, f"the live model's FID ratio {live_ratio:.1f} is far off for {live.steps} steps; is the loss going down?"
elif not config.is_quick():
    print(f"only {live.steps} steps fitted in the time budget on this machine: expect rough digits")
print("self-check passed")

# %% [markdown]
# ## Summary
#
# * The forward process $x_t = \sqrt{1-\beta_t}x_{t-1} + \sqrt{\beta_t}\epsilon$ has the closed form
#   $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon$; the schedule decides how fast the SNR falls.
# * Given $x_0$, one reverse step is the Gaussian $q(x_{t-1}\mid x_t, x_0)$; the model imitates it by predicting
#   the noise, and the ELBO reduces to a weighted noise-regression loss; DDPM drops the weights.
# * One network, trained by regression, generates by denoising 1000 times from pure noise.
#
# **Next:** notebook 09 samples the same network in 50 steps or fewer (DDIM) and shows that predicting the
# noise is learning the **score** $\nabla_x \log p$. Exercises: `exercises/08_ddpm.ipynb`.

# %%
clock.report();
