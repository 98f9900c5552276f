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
# # 06 · Generative adversarial networks
#
# Every model so far was trained by maximising a likelihood or a bound on it. A GAN throws the
# likelihood away: a **generator** turns noise into samples, a **discriminator** tries to tell them
# from real data, and each network learns from the other's mistakes.
#
# **After this notebook you will be able to**
# 1. write down the GAN minimax game, the optimal discriminator and the Jensen-Shannon divergence it hides;
# 2. explain why everyone trains the generator with the *non-saturating* loss (it maximises $\log D(G(z))$);
# 3. implement one correct alternating training step (detach, freeze, one optimiser per network);
# 4. watch the discriminator's decision surface evolve on 2-D data, and recognise and reduce **mode collapse**;
# 5. train a DCGAN on MNIST and judge it with classifier-FID and class coverage, not with its loss;
# 6. explain WGAN-GP, its gradient penalty, and why its critic's loss is a useful training curve.
#
# Prerequisites: notebook 02 (divergences and maximum likelihood) and 04 (latent-variable generators).

# %%
import copy
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from course_lib import config, device

clock = config.NotebookClock("06 GANs", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %% [markdown]
# ## 1. The idea in words
#
# A forger (the generator $G$) paints banknotes from random noise $z$; a detective (the discriminator
# $D$) sees real and forged notes and says how likely each one is to be real. The detective is trained
# to be right; the forger is trained to make the detective wrong. If both keep improving, the forgeries
# end up indistinguishable from real notes, and then the best the detective can do is say "50/50".
#
# Nothing in this game needs a density $p_G(x)$: a GAN is an *implicit* model. You can sample from it,
# but you cannot ask it how likely an image is. That buys sharp samples and fast sampling (one network
# evaluation), and costs us a stable objective: training is a game, not a minimisation.

# %% [markdown]
# ## 2. The math
#
# With $D(x) = \sigma(\ell(x))$ the discriminator's probability that $x$ is real (computed from a logit
# $\ell$), Goodfellow et al. (2014) define the value
#
# $$
# V(D, G) = \mathbb E_{x \sim p_\text{data}}[\log D(x)] + \mathbb E_{z \sim p(z)}[\log(1 - D(G(z)))],
# \qquad \min_G \max_D V(D, G).
# $$
#
# $D$ maximises the log-likelihood of a binary classifier with real examples labelled 1 and generated ones
# labelled 0; its loss is the binary cross-entropy
# $L_D = \mathbb E[\operatorname{softplus}(-\ell(x))] + \mathbb E[\operatorname{softplus}(\ell(G(z)))]$
# (using $-\log\sigma(u) = \operatorname{softplus}(-u)$ and $-\log(1 - \sigma(u)) = \operatorname{softplus}(u)$).
#
# **The optimal discriminator.** For fixed $G$, maximising $p_\text{data}(x)\log D + p_G(x)\log(1 - D)$
# pointwise gives
#
# $$
# D^*(x) = \frac{p_\text{data}(x)}{p_\text{data}(x) + p_G(x)}, \qquad
# V(D^*, G) = -\log 4 + 2\,\mathrm{JS}(p_\text{data} \,\Vert\, p_G),
# $$
#
# so, against a perfect discriminator, the generator minimises the Jensen-Shannon divergence, which is
# zero only when $p_G = p_\text{data}$. We check both statements on two discrete distributions, with
# `scipy`'s Jensen-Shannon distance as an independent oracle:

# %%
from scipy.spatial.distance import jensenshannon

from course_lib import checkpoints, data, metrics, viz
from course_lib.models import gan as gan_lib

p_data = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
p_model = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)


def value(d):
    """V(D, G) for a discriminator given as one probability per outcome."""
    return (p_data * d.log()).sum() + (p_model * (1 - d).log()).sum()


d_star = gan_lib.optimal_discriminator(p_data, p_model)
js = jensenshannon(p_data.numpy(), p_model.numpy()) ** 2  # scipy returns sqrt(JS), natural log
print(f"V(D*, G) = {value(d_star):.6f},   -log 4 + 2 JS = {-math.log(4) + 2 * js:.6f}")
assert abs(value(d_star) - (-math.log(4) + 2 * js)) < 1e-12
random_d = torch.rand(1000, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
assert all(value(d) <= value(d_star) + 1e-12 for d in random_d), "no discriminator beats D*"
print("D* beats 1,000 random discriminators; at p_G = p_data, D* = 1/2 and V = -log 4 =", -math.log(4))

# %% [markdown]
# **The generator's loss: minimax or non-saturating?** Taken literally, the generator minimises
# $\mathbb E[\log(1 - D(G(z)))]$. Early in training the fakes are bad, $D(G(z)) \approx 0$, and this
# function is *flat* there: with $\ell$ the logit of a fake,
#
# $$
# \frac{\partial}{\partial \ell}\log(1 - \sigma(\ell)) = -\sigma(\ell) \xrightarrow{\ \ell \to -\infty\ } 0 .
# $$
#
# The generator gets no gradient exactly when it needs one most (it *saturates*). Goodfellow et al. already
# proposed the fix every implementation uses: the generator **maximises** $\log D(G(z))$, i.e. minimises
# $L_G^\text{ns} = -\mathbb E[\log D(G(z))]$, whose gradient $-(1 - \sigma(\ell))$ is largest when the fakes
# are rejected. Both losses have the same fixed point ($D = 1/2$ everywhere). Below, autograd's
# gradients of `course_lib`'s two losses against the formulas:

# %%
logits = torch.linspace(-8, 4, 200, requires_grad=True)
grad_minimax, = torch.autograd.grad(gan_lib.generator_loss_minimax(logits) * len(logits), logits)
grad_ns, = torch.autograd.grad(gan_lib.generator_loss_nonsaturating(logits) * len(logits), logits)
s = torch.sigmoid(logits.detach())
assert torch.allclose(grad_minimax, -s, atol=1e-6) and torch.allclose(grad_ns, -(1 - s), atol=1e-6)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(s, grad_minimax.abs(), label=r"minimax: $|\partial_\ell \log(1 - D)| = D$")
ax.plot(s, grad_ns.abs(), label=r"non-saturating: $|\partial_\ell \log D| = 1 - D$")
ax.set_xlabel("D(G(z)): how real the discriminator finds a fake")
ax.set_ylabel("gradient size for the generator")
ax.axvspan(0, 0.1, color="grey", alpha=0.2)
ax.text(0.01, 0.5, "early training:\nfakes rejected", fontsize=8)
ax.legend(fontsize=8)
ax.set_title("the minimax loss saturates where the generator needs a signal");

# %% [markdown]
# ## 3. One training step, done right
#
# Training alternates two updates; `gan_lib.gan_train_step` does both, and most GAN bugs live here:
#
# 1. **Discriminator step.** Draw $z$, make $\tilde x = G(z)$ and **detach** it (the discriminator's loss
#    must not push gradients into $G$). Real batch labelled 1, fake batch labelled 0. Only `opt_d` steps.
# 2. **Generator step.** Fresh $z$, score $G(z)$ with $D$ while $D$'s parameters are **frozen**: gradients
#    flow *through* $D$ into $G$ but $D$'s weights must not move. Only `opt_g` steps.
#
# One optimiser per network (`opt_g` over `G.parameters()`, `opt_d` over `D.parameters()`); the step refuses
# an optimiser that holds the other network's weights. Let us verify the contract on a tiny pair:

# %%
pair = gan_lib.GAN(gan_lib.MLPGenerator(latent_dim=2), gan_lib.MLPDiscriminator())
opt_g = torch.optim.Adam(pair.generator.parameters(), lr=1e-3)
opt_d = torch.optim.Adam(pair.discriminator.parameters(), lr=1e-3)
g_before = [p.detach().clone() for p in pair.generator.parameters()]
logs = gan_lib.gan_train_step(pair, data.toy2d("8gaussians", 256, seed=1), opt_g, opt_d, update_generator=False)
unchanged = all(torch.equal(p, q) for p, q in zip(pair.generator.parameters(), g_before))
print(f"after a discriminator-only step: generator unchanged = {unchanged}; logs = "
      + ", ".join(f"{k} {v:.3f}" for k, v in logs.items()))
assert unchanged
try:
    gan_lib.gan_train_step(pair, torch.randn(8, 2), torch.optim.Adam(pair.parameters()), opt_d)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## 4. The game on 2-D data: watching the discriminator
#
# Our data: a mixture of 8 Gaussians on a circle (`data.toy2d("8gaussians")`). The generator is an MLP
# from $z \in \mathbb R^2$ to the plane, the discriminator an MLP from the plane to a logit. While they
# train, we keep snapshots of both. In each panel below, the colour is $D(x)$ (yellow: "real", dark:
# "fake") and the white dots are generated samples: the generator's samples are pushed *up the
# discriminator's slope*, towards regions $D$ calls real, and $D$ keeps redrawing its boundary.

# %%
toy = data.toy2d("8gaussians", 20_000, seed=0)
mixture = data.toy2d_distribution("8gaussians")
centres = mixture.component_distribution.mean
mode_std = mixture.component_distribution.stddev[0, 0].item()
steps_2d = config.budget(full=2000, quick=60)
log_every_2d = config.budget(full=50, quick=10)
snapshot_at = {round(f * steps_2d / log_every_2d) * log_every_2d for f in (0.05, 0.15, 0.4, 1.0)}
snapshots, sample_frames = [], []
fixed_z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))


def watch(step, gan, history):
    """Callback: keep generated samples every row, and D + samples at the chosen steps."""
    with torch.no_grad():
        samples = gan.generator.eval()(fixed_z.to(DEVICE)).cpu()
    gan.generator.train()
    sample_frames.append(samples)
    if step in snapshot_at:
        snapshots.append((step, copy.deepcopy(gan.discriminator).cpu().eval(), samples))


torch.manual_seed(0)
gan_2d = gan_lib.GAN(gan_lib.MLPGenerator(latent_dim=2), gan_lib.MLPDiscriminator())
loader_2d = data.InMemoryLoader(toy, batch_size=256, device=DEVICE)
result_2d = gan_lib.train_gan(gan_2d, loader_2d, steps=steps_2d, loss="nonsaturating", lr_g=1e-3, lr_d=1e-3,
                              log_every=log_every_2d, callback=watch, desc="2-D GAN")


def show_snapshots(snaps, title):
    fig, axes = plt.subplots(1, len(snaps), figsize=(3.2 * len(snaps), 3.4))
    for ax, (step, disc, samples) in zip(axes, snaps):
        viz.plot_density_2d(lambda x, disc=disc: F.logsigmoid(disc(x)), xlim=(-4.5, 4.5), ylim=(-4.5, 4.5),
                            grid=120, samples=samples[:500], ax=ax, title=f"step {step}", cmap="magma")
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", color="cyan", s=30, label="data modes")
    fig.suptitle(title)
    plt.tight_layout()
    return fig


show_snapshots(snapshots, "colour: D(x); dots: samples of G (non-saturating GAN on 8 Gaussians)");

# %% [markdown]
# The same run as an animation of the generated points (one frame per logged step):

# %%
viz.animate_points(torch.stack(sample_frames), lim=4.5, max_frames=40,
                   frame_labels=[f"step {s}" for s in result_2d.history.steps], title="generator samples")

# %%
coverage_ns = gan_lib.mode_coverage_2d(sample_frames[-1], centres, mode_std)
print("non-saturating GAN:", coverage_ns)
viz.plot_history(result_2d.history, keys=["d_loss", "g_loss", "d_real", "d_fake"]);

# %% [markdown]
# Look at the loss curves: they do not go down together, and they are not meant to. At the game's
# equilibrium $D = 1/2$ everywhere, so $L_D \to 2\log 2 \approx 1.39$ and $L_G^\text{ns} \to \log 2 \approx 0.69$;
# the curves hover around those values whether the samples are good or not.

# %% [markdown]
# ## 5. Mode collapse
#
# The generator is rewarded for samples the *current* discriminator finds real; nothing in its loss asks
# it to cover every mode. Take it to the extreme: freeze a discriminator and let the generator play its
# best response. Every $z$ is then pushed to wherever $D$ is highest, and the whole distribution collapses
# onto a point or two:

# %%
frozen_disc = copy.deepcopy(snapshots[0][1]).to(DEVICE)
best_response = gan_lib.GAN(copy.deepcopy(gan_2d.generator), frozen_disc)
opt_g = torch.optim.Adam(best_response.generator.parameters(), lr=1e-3)
opt_d_frozen = torch.optim.SGD(best_response.discriminator.parameters(), lr=0.0)  # D never moves
for step in range(config.budget(full=400, quick=20)):
    gan_lib.gan_train_step(best_response, toy[:256].to(DEVICE), opt_g, opt_d_frozen)
collapsed = best_response.sample(1000, generator=torch.Generator().manual_seed(1)).cpu()
coverage_collapsed = gan_lib.mode_coverage_2d(collapsed, centres, mode_std)
print("generator trained against a frozen discriminator:", coverage_collapsed)
fig = viz.plot_density_2d(lambda x: F.logsigmoid(frozen_disc(x)), xlim=(-4.5, 4.5), ylim=(-4.5, 4.5), grid=120,
                          samples=collapsed, cmap="magma", title="best response to a frozen D: collapse")

# %% [markdown]
# In real training the discriminator reacts, then the generator jumps to the next favourite spot, and the
# pair can chase each other around the circle without ever covering it. A classic way to provoke it is to
# let the generator move much faster than the discriminator can follow (here: 5 generator steps per
# discriminator step and a larger generator learning rate); we count the modes reached.

# %%
def endless(loader):
    """Batches from a loader, epoch after epoch."""
    while True:
        yield from loader


def train_unbalanced(steps, g_steps=5, seed=0):
    """A GAN whose generator takes g_steps Adam steps (lr 5e-3) per discriminator step (lr 1e-3)."""
    torch.manual_seed(seed)
    g = gan_lib.GAN(gan_lib.MLPGenerator(latent_dim=2), gan_lib.MLPDiscriminator()).to(DEVICE)
    og = torch.optim.Adam(g.generator.parameters(), lr=5e-3, betas=(0.5, 0.999))
    od = torch.optim.Adam(g.discriminator.parameters(), lr=1e-3, betas=(0.5, 0.999))
    od_off = torch.optim.SGD(g.discriminator.parameters(), lr=0.0)  # for the extra generator-only steps
    loader = data.InMemoryLoader(toy, batch_size=256, device=DEVICE, seed=seed)
    batches = endless(loader)
    for step in range(steps):
        real = next(batches)[0]
        gan_lib.gan_train_step(g, real, og, od, update_generator=False)
        for _ in range(g_steps):
            gan_lib.gan_train_step(g, real, og, od_off)
    return g


unbalanced = train_unbalanced(config.budget(full=600, quick=15))
samples_unbalanced = unbalanced.sample(2000, generator=torch.Generator().manual_seed(1)).cpu()
coverage_unbalanced = gan_lib.mode_coverage_2d(samples_unbalanced, centres, mode_std)
print("unbalanced GAN:", coverage_unbalanced, "| samples per mode:", coverage_unbalanced.counts.tolist())

# %% [markdown]
# **Reducing it.** The first remedy is the one we already used in section 4: keep the discriminator able to
# follow the generator (one discriminator step per generator step, equal learning rates, Adam with
# $\beta_1 = 0.5$). That balanced run reached the modes counted below; the unbalanced one collapsed.

# %%
print(f"balanced (section 4): {coverage_ns.modes_covered}/8 modes;  unbalanced: {coverage_unbalanced.modes_covered}/8;  "
      f"frozen D: {coverage_collapsed.modes_covered}/8")

# %% [markdown]
# **A different objective: WGAN-GP.** The Jensen-Shannon game gives the generator a gradient only where the
# discriminator is uncertain; a saturated discriminator is flat almost everywhere. Arjovsky et al. (2017)
# replace it by the Wasserstein-1 distance in its dual form
#
# $$
# W_1(p_\text{data}, p_G) = \sup_{\lVert f\rVert_L \le 1} \mathbb E_{x \sim p_\text{data}}[f(x)] - \mathbb E_{z}[f(G(z))],
# $$
#
# where the **critic** $f$ is any 1-Lipschitz function (no sigmoid, no probabilities). A 1-Lipschitz critic
# has a useful slope everywhere, pointing every generated point towards the data, including the modes
# nobody visits (provided the critic keeps up with the generator, see below; count the modes). Gulrajani et al. (2017) enforce the constraint softly with a **gradient penalty** at
# random points $\hat x = \epsilon x + (1 - \epsilon)\tilde x$, $\epsilon \sim U[0, 1]$, between a real
# $x$ and a fake $\tilde x$:
#
# $$
# L_f = \mathbb E[f(\tilde x)] - \mathbb E[f(x)] + \lambda\, \mathbb E_{\hat x}\big[(\lVert \nabla_{\hat x} f(\hat x)\rVert_2 - 1)^2\big],
# \qquad L_G = -\mathbb E[f(G(z))], \quad \lambda = 10 .
# $$
#
# A linear critic $f(x) = w^\top x$ has gradient $w$ everywhere, so its penalty is exactly $(\lVert w\rVert - 1)^2$:

# %%
w = torch.tensor([0.6, 0.8])  # unit norm
for scale in (1.0, 2.0):
    gp = gan_lib.gradient_penalty(lambda x: x @ (scale * w), torch.randn(512, 2), torch.randn(512, 2))
    print(f"||w|| = {scale}: penalty {gp.item():.6f}, (||w|| - 1)^2 = {(scale - 1) ** 2}")
    assert abs(gp.item() - (scale - 1) ** 2) < 1e-6

# %% [markdown]
# Now the same data with WGAN-GP. Its loss estimates $W_1$ only if the critic stays close to the supremum
# for the *current* generator, so the critic must move faster than the generator: five critic steps per
# generator step ($n_\text{critic} = 5$, $\lambda = 10$, Adam $\beta = (0.5, 0.9)$, as Gulrajani et al.), and
# a generator learning rate ten times smaller than the critic's ($10^{-4}$ vs $10^{-3}$, a *two time-scale*
# update). Along the way we also measure an **independent** distance between samples and data, the sliced
# Wasserstein distance `gan_lib.sliced_wasserstein` (it needs no network), to judge the training curves
# from outside.

# %%
steps_wgan = config.budget(full=3000, quick=50)
outside = {"step": [], "sliced_w": []}


def measure(step, gan, history):
    samples = gan.sample(2000, generator=torch.Generator().manual_seed(2)).cpu()
    outside["step"].append(step)
    outside["sliced_w"].append(gan_lib.sliced_wasserstein(samples, toy[:2000], generator=torch.Generator().manual_seed(3)))


torch.manual_seed(0)
wgan_2d = gan_lib.GAN(gan_lib.MLPGenerator(latent_dim=2), gan_lib.MLPDiscriminator())
result_wgan = gan_lib.train_gan(wgan_2d, loader_2d, steps=steps_wgan, loss="wgan-gp", n_critic=5, lr_g=1e-4,
                                lr_d=1e-3, betas=(0.5, 0.9), log_every=config.budget(full=100, quick=10),
                                callback=measure, desc="2-D WGAN-GP")
samples_wgan = wgan_2d.sample(2000, generator=torch.Generator().manual_seed(1)).cpu()
coverage_wgan = gan_lib.mode_coverage_2d(samples_wgan, centres, mode_std)
print("WGAN-GP:", coverage_wgan)

fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
viz.scatter_2d(toy[:2000], ax=axes[0], lim=4.5, title="data")
viz.scatter_2d(samples_unbalanced, ax=axes[1], lim=4.5,
               title=f"unbalanced GAN: {coverage_unbalanced.modes_covered}/8 modes")
fig.suptitle(f"balanced GAN of section 4: {coverage_ns.modes_covered}/8 modes")
viz.scatter_2d(samples_wgan, ax=axes[2], lim=4.5, title=f"WGAN-GP: {coverage_wgan.modes_covered}/8 modes")
plt.tight_layout()

# %% [markdown]
# **Why the critic's loss is a useful training signal.** With a near-optimal critic, $-L_f$ (without the
# penalty) estimates $W_1(p_\text{data}, p_G)$: it is a *distance*, so it falls as the samples improve. The
# JS game's losses are not: they measure how the two players are doing against each other. Compare each
# curve with the independent sliced Wasserstein distance. What is plotted: each point of the critic's curve
# is $\overline{f(x)} - \overline{f(G(z))}$ on the training minibatches, averaged over the 100 critic steps
# since the previous point (`train_gan` logs window means). At the very start the estimate *rises*: the
# critic is still learning to separate data from an untrained generator. Once it has caught up (after the
# peak), the two curves fall together; we measure that with a rank (Spearman) correlation.
#
# The estimate is only as good as the critic. A supremum over critics can never be negative (the constant
# critic scores 0), so a negative value means the critic is far from optimal. That is what happens if the
# generator learns as fast as the critic (try `lr_g=1e-3` above): it outruns the critic, the estimate jumps
# around and even turns negative, its correlation with the sliced distance drops to about zero or below, and
# the samples hop between modes. A critic's curve is trustworthy only when the critic keeps up.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
h = result_wgan.history
axes[0].plot(h.steps, h.values["wasserstein"], label=r"critic's estimate of $W_1$ ($-L_f$ without GP)")
axes[0].plot(outside["step"], outside["sliced_w"], label="sliced Wasserstein (independent)")
axes[0].set_title("WGAN-GP: critic's estimate vs an independent distance")
axes[0].set_xlabel("critic step")
axes[0].legend(fontsize=8)
h_ns = result_2d.history
axes[1].plot(h_ns.steps, h_ns.values["g_loss"], label="non-saturating G loss")
axes[1].plot(h_ns.steps, h_ns.values["d_loss"], label="D loss")
axes[1].axhline(math.log(2), color="grey", ls=":")
axes[1].axhline(2 * math.log(2), color="grey", ls=":")
axes[1].set_title("JS GAN: losses (dotted: their values at equilibrium)")
axes[1].set_xlabel("step")
axes[1].legend(fontsize=8)
plt.tight_layout()

from scipy.stats import spearmanr

w_estimate, sliced = list(h.values["wasserstein"]), outside["sliced_w"]
peak = max(range(len(w_estimate)), key=w_estimate.__getitem__)  # where the critic has caught up
rho_all = spearmanr(w_estimate, sliced).statistic
rho_after = spearmanr(w_estimate[peak:], sliced[peak:]).statistic if len(w_estimate) - peak >= 5 else float("nan")
print(f"Spearman correlation between the critic's W estimate and the sliced Wasserstein distance: "
      f"{rho_all:.2f} over the whole run, {rho_after:.2f} from step {h.steps[peak]} on (after the critic's estimate peaks)")
print(f"smallest estimate after the peak: {min(w_estimate[peak:]):.2f} (a near-optimal critic never goes below 0)")

# %% [markdown]
# ## 6. DCGAN on MNIST
#
# For images, Radford et al. (2016) found a recipe that makes the game train reliably: a convolutional
# generator that upsamples with transposed convolutions, BatchNorm in both networks (except the
# discriminator's input layer and the generator's output), ReLU in $G$, LeakyReLU(0.2) in $D$, a $\tanh$
# output so images live in $[-1, 1]$, and Adam with learning rate $2\cdot10^{-4}$ and $\beta_1 = 0.5$.
# `gan_lib.DCGANGenerator` maps $z \in \mathbb R^{64}$ to a $(1, 28, 28)$ image:
# $(64) \to (4w, 7, 7) \to (2w, 14, 14) \to (w, 28, 28) \to (1, 28, 28)$. We also keep an exponential
# moving average (EMA) of the generator's weights, which gives visibly cleaner samples than the last iterate.
#
# A few minutes on a CPU show the dynamics: blobs, then strokes, then digit-like shapes.

# %%
mnist_train = data.mnist("train", value_range="symmetric")  # GANs use [-1, 1] (tanh output)
mnist_test = data.mnist("test", value_range="unit")  # the metrics take [0, 1]
spec = gan_lib.MNIST_GANS["dcgan_mnist"]
torch.manual_seed(0)
dcgan = gan_lib.build_mnist_gan("dcgan_mnist")
loader_mnist = data.InMemoryLoader(mnist_train.x, batch_size=spec["batch_size"], device=DEVICE)
z_grid = torch.randn(32, spec["latent_dim"], generator=torch.Generator().manual_seed(0))
live_frames = []


def keep_frame(step, gan, history):
    with torch.no_grad():
        live_frames.append(gan.generator.eval()(z_grid.to(DEVICE)).cpu())
    gan.generator.train()


result_dcgan = gan_lib.train_gan(dcgan, loader_mnist, steps=config.budget(full=800, quick=8), loss="nonsaturating",
                                 lr_g=spec["lr_g"], lr_d=spec["lr_d"], betas=spec["betas"],
                                 ema_decay=spec["ema_decay"], log_every=config.budget(full=50, quick=4),
                                 callback=keep_frame, time_limit=config.budget(full=150, quick=30), desc="DCGAN")
print(f"{result_dcgan.steps} steps in {result_dcgan.seconds:.0f} s")
live_samples = result_dcgan.sample(32, generator=torch.Generator().manual_seed(0))
viz.show_images(live_samples, nrow=16, value_range="symmetric",
                title=f"live DCGAN after {result_dcgan.steps} steps (EMA generator)");

# %%
viz.animate_images(live_frames, nrow=16, value_range="symmetric", clip=True,
                   frame_labels=[f"step {s}" for s in result_dcgan.history.steps], title="fixed z, during training")

# %% [markdown]
# Good MNIST samples need more steps than a lab session has on a CPU. The repository ships a DCGAN with
# exactly this architecture trained by `scripts/train_gans.py` (its manifest entry, printed below, says how
# many steps and what it scored); we load it here. If the file is missing, `load_or_train` trains it now
# instead (slowly).

# %%
def train_dcgan_now(model):
    """Fallback when no shipped weights exist: train here (with an EMA generator, as the script does)."""
    result = gan_lib.train_gan(model, loader_mnist, steps=config.budget(full=3000, quick=8), loss="nonsaturating",
                               lr_g=spec["lr_g"], lr_d=spec["lr_d"], betas=spec["betas"], ema_decay=spec["ema_decay"],
                               desc="DCGAN (fallback)")
    result.ema.copy_to(model.generator)
    return model


shipped, source = checkpoints.load_or_train("dcgan_mnist", gan_lib.build_mnist_gan("dcgan_mnist"), train_dcgan_now)
shipped.to(DEVICE)
print(f"DCGAN weights: {source}")
if source == "shipped":
    print("manifest:", checkpoints.manifest()["dcgan_mnist"]["notes"])
viz.show_images(shipped.sample(64, generator=torch.Generator().manual_seed(0)), nrow=16, value_range="symmetric",
                title="shipped DCGAN: 64 samples");

# %% [markdown]
# **Judging the samples.** A GAN has no likelihood, so we measure samples in the feature space of the
# course's MNIST classifier (notebook 11 explains these metrics): the **classifier-FID** between generated
# and held-out real digits, stated as a ratio to the FID of two *real* sets of the same size (the floor;
# FID is biased upwards at small N), **precision/recall**, and the **class histogram**, which exposes mode
# collapse directly: a collapsed MNIST GAN draws some digits far more often than others.

# %%
n_eval = config.budget(full=1000, quick=250)
n_classes = config.budget(full=10_000, quick=500)
fake = ((shipped.sample(n_classes, generator=torch.Generator().manual_seed(1)).cpu() + 1) / 2).clamp(0, 1)
fid_value = metrics.fid(mnist_test.x[:n_eval], fake[:n_eval])
fid_ratio = metrics.ratio_to_floor(fid_value, "fid", n_eval)
pr = metrics.precision_recall(mnist_test.x[:n_eval], fake[:n_eval])
classes = metrics.class_histogram(fake)
print(f"classifier-FID {fid_value:.2f} at N = {n_eval} = {fid_ratio:.1f} x the real-vs-real floor; "
      f"precision {pr.precision:.2f}, recall {pr.recall:.2f}")
print(classes)
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.bar(range(10), classes.fractions)
ax.axhspan(0.07, 0.13, color="green", alpha=0.15, label="7%-13%")
ax.set_xticks(range(10))
ax.set_xlabel("digit the classifier reads")
ax.set_ylabel("share of samples")
ax.legend()
ax.set_title(f"{n_classes:,} DCGAN samples");

# %% [markdown]
# ## 7. WGAN-GP on MNIST
#
# WGAN-GP on images: the critic is the DCGAN discriminator with **LayerNorm instead of BatchNorm**
# (the penalty is per example; batch statistics would couple the examples) and no sigmoid, 5 critic steps
# per generator step and Adam with $\beta = (0, 0.9)$. Each step is slower (the penalty needs a second
# backward pass), but the critic's estimate of $W_1$ tells us, during training, whether things improve.

# %%
torch.manual_seed(0)
wgan_mnist = gan_lib.GAN(gan_lib.DCGANGenerator(latent_dim=64, width=16),
                         gan_lib.DCGANDiscriminator(width=16, norm="layer"))
result_wgan_mnist = gan_lib.train_gan(wgan_mnist, loader_mnist, steps=config.budget(full=1500, quick=10),
                                      loss="wgan-gp", n_critic=5, lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9),
                                      log_every=config.budget(full=50, quick=5),
                                      time_limit=config.budget(full=150, quick=30), desc="WGAN-GP MNIST")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5), gridspec_kw={"width_ratios": [1, 1.4]})
h = result_wgan_mnist.history
axes[0].plot(h.steps, h.values["wasserstein"])
axes[0].set_xlabel("critic step")
axes[0].set_title(r"critic's estimate of $W_1$")
viz.show_images(wgan_mnist.sample(32, generator=torch.Generator().manual_seed(0)), nrow=8, value_range="symmetric",
                ax=axes[1], title=f"WGAN-GP after {result_wgan_mnist.steps} critic steps")
plt.tight_layout()

# %% [markdown]
# ## Common misconceptions
#
# * *"The generator minimises $\log(1 - D(G(z)))$."* In the paper's equation, yes; in practice it
#   **maximises** $\log D(G(z))$ (the non-saturating loss), because the minimax loss has vanishing gradients
#   when the discriminator wins, which is how training starts (section 2).
# * *"A falling generator loss means progress."* In the JS game the generator's loss only says how it
#   does against the *current* discriminator. It falls when the discriminator gets worse, and it rises while
#   the samples improve against a discriminator that improves faster. Judge samples with an independent
#   measure (FID, class coverage, the sliced distance of section 5). The WGAN critic's loss is the exception
#   that proves the rule: it estimates a distance.
# * *"The discriminator should win."* A discriminator that rejects everything with certainty gives the
#   generator no useful gradient; the equilibrium is $D = 1/2$, not $D$ perfect.
# * *"Good-looking samples mean the GAN learned the distribution."* A collapsed generator can produce
#   perfect 1s and nothing else. Always check coverage (the class histogram) as well as fidelity.
# * *"Detaching is optional."* Without `detach()` in the discriminator step, the discriminator's loss
#   back-propagates into the generator and, with a shared optimiser, trains it to be *caught*.
# * *"A GAN gives likelihoods."* It does not: it is an implicit model, which is why it is evaluated with
#   sample-based metrics.

# %% [markdown]
# ## Self-check

# %%
assert abs(value(d_star) - (-math.log(4) + 2 * js)) < 1e-12, "V(D*, G) should equal -log 4 + 2 JS"
assert coverage_collapsed.modes_covered <= 3, "a generator trained against a frozen D should collapse"
assert result_wgan.history.steps[-1] == steps_wgan, "the 2-D WGAN-GP should have finished its steps"
assert torch.isfinite(torch.tensor(result_wgan.history.values["wasserstein"])).all()
assert fake.shape == (n_classes, 1, 28, 28) and 0 <= fake.min() and fake.max() <= 1
if not config.is_quick():
    assert coverage_ns.modes_covered >= 7, f"the balanced GAN should cover (nearly) all 8 modes, got {coverage_ns}"
    assert coverage_unbalanced.modes_covered < coverage_ns.modes_covered, "the unbalanced GAN should cover fewer modes"
    assert coverage_wgan.modes_covered >= 7, f"the 2-D WGAN-GP should cover (nearly) all 8 modes, got {coverage_wgan}"
    assert rho_after >= 0.6, f"the critic's estimate should fall with the sliced distance, Spearman {rho_after:.2f}"
    if source == "shipped":
        assert classes.num_covered == 10, "the shipped DCGAN should draw every digit"
print("self-check passed")

# %% [markdown]
# ## Summary
#
# * A GAN is a two-player game: $D$ classifies real vs generated, $G$ tries to fool it. Against the optimal
#   discriminator $D^* = p_\text{data}/(p_\text{data} + p_G)$ the generator minimises a Jensen-Shannon divergence.
# * Train the generator with the non-saturating loss $-\log D(G(z))$; detach fakes in the discriminator step,
#   freeze the discriminator in the generator step, one optimiser per network.
# * The generator follows the discriminator's slope; chasing it can collapse the generator onto a few modes.
#   Keeping the discriminator able to follow reduces collapse; WGAN-GP's Lipschitz critic gives gradients
#   everywhere, and, as long as the critic keeps up with the generator (here: a 10x smaller generator learning
#   rate), its loss estimates a distance, so it is a useful training curve.
# * GANs are evaluated by their samples: classifier-FID against the real floor, precision/recall, coverage.
#
# Next: **07 · conditional and unpaired GANs**, where the label goes into both networks and CycleGAN
# translates between two digit domains nobody paired. Exercises: `exercises/06_gans.ipynb`.

# %%
clock.report();
