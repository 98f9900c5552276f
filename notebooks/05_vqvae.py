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
# # 05 · VQ-VAE: discrete codes and a Transformer prior
#
# The VAE of notebook 04 describes an image by a few real numbers. The **vector-quantised VAE**
# (VQ-VAE; van den Oord, Vinyals & Kavukcuoglu, 2017) describes it by a small grid of *integers*, each an
# index into a learned codebook, much like words from a vocabulary. Images then become sequences of
# tokens, and the autoregressive Transformer of notebook 03 can learn their distribution. This two-stage
# recipe (compress to tokens, then model the tokens) underlies DALL-E, VQGAN and the latent diffusion of
# notebook 10.
#
# **After this notebook you will be able to**
# 1. explain how a VQ-VAE turns an image into a grid of discrete codes, and why it needs no KL term;
# 2. explain the straight-through estimator and the roles of the codebook and commitment losses;
# 3. monitor a codebook (usage, perplexity), recognise dead codes and fix them with restarts;
# 4. train a Transformer prior over code grids and generate new digits from it;
# 5. judge the samples with a classifier FID against its real-vs-real floor.
#
# You need notebook 03 (the GPT and `generate`) and notebook 04 (autoencoders and VAEs).

# %%
import matplotlib.pyplot as plt
import torch

from course_lib import config, data, device, metrics, train, viz
from course_lib.models import vqvae as Q

clock = config.NotebookClock("05 VQ-VAE", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %% [markdown]
# ## 1. The idea in words
#
# An encoder CNN turns a $28 \times 28$ digit into a $7 \times 7$ grid of vectors $z_e \in \mathbb R^{16}$.
# Each vector is then **snapped to the nearest of $K = 64$ codebook vectors** $e_1, \dots, e_K$, and the
# decoder rebuilds the image from the snapped grid. What is stored about the image is just the 49
# indices, $49 \log_2 64 = 294$ bits, against $784 \times 8 = 6{,}272$ bits of raw pixels.
#
# Two problems must be solved. *Training through a snap*: "take the nearest code" has no useful
# gradient, so the VQ-VAE copies the decoder's gradient straight past it. *Generating*: the VQ-VAE alone
# has no distribution over code grids to sample from, so a second model, an autoregressive **prior**, is
# trained afterwards on the code grids of the training images. Sampling a grid from the prior and decoding
# it generates a new digit.

# %% [markdown]
# ## 2. The math
#
# ### Quantisation
#
# For each position of the grid, with codebook $\{e_k\}_{k=1}^K \subset \mathbb R^D$,
#
# $$k^\ast = \arg\min_k \lVert z_e - e_k \rVert_2^2, \qquad z_q = e_{k^\ast},$$
#
# computed for all positions at once from $\lVert z - e_k \rVert^2 = \lVert z \rVert^2 - 2 z^\top e_k + \lVert e_k \rVert^2$.
# We check `VectorQuantizer` against a brute-force search:

# %%
quantizer = Q.VectorQuantizer(8, 2, data_init=False, restart_dead_codes=False)
with torch.no_grad():
    quantizer.codebook.copy_(torch.randn(8, 2, generator=generator) * 2)
z_e = torch.randn(1, 2, 3, 3, generator=generator) * 2  # a 3x3 grid of 2-D vectors
out = quantizer(z_e)
flat = z_e.movedim(1, -1).reshape(-1, 2)
brute_force = torch.cdist(flat, quantizer.codebook.detach()).argmin(dim=1)
print("chosen codes:\n", out.indices[0])
assert torch.equal(out.indices.flatten(), brute_force)

# %%
fig, ax = plt.subplots(figsize=(4.5, 4.5))
cb = quantizer.codebook.detach()
ax.scatter(*cb.T, s=120, marker="*", color="k", label="codebook $e_k$")
for i, (z, k) in enumerate(zip(flat, out.indices.flatten())):
    ax.annotate("", xy=cb[k].tolist(), xytext=z.tolist(), arrowprops=dict(arrowstyle="->", color="C1"))
ax.scatter(*flat.T, s=25, color="C1", label="encoder outputs $z_e$")
ax.set_aspect("equal")
ax.legend(loc="best", fontsize=8)
ax.set_title("each $z_e$ is replaced by its nearest code");

# %% [markdown]
# ### The straight-through estimator
#
# $z_q$ is a piecewise-constant function of $z_e$: its gradient is zero almost everywhere, so nothing
# would reach the encoder. The **straight-through estimator** (Bengio et al., 2013) pretends, in the
# backward pass only, that quantisation is the identity:
#
# $$\tilde z = z_e + \operatorname{sg}[z_q - z_e] \qquad (\text{value } z_q, \quad \partial \tilde z / \partial z_e = I),$$
#
# where $\operatorname{sg}$ is the stop-gradient (`.detach()` in PyTorch). The decoder sees $z_q$; the encoder
# receives the gradient the decoder computed at $z_q$, as if it had been taken at $z_e$. This is a biased
# gradient, good when $z_e$ is close to $z_q$, which is what the next loss term enforces. A check:
# the gradient with respect to $z_e$ of $\sum w \odot \tilde z$ must be exactly $w$:

# %%
z_e = torch.randn(1, 2, 3, 3, generator=generator, requires_grad=True)
w = torch.randn(1, 2, 3, 3, generator=generator)
(quantizer(z_e).z_q * w).sum().backward()
print("max |grad - w| =", (z_e.grad - w).abs().max().item())
assert torch.allclose(z_e.grad, w)

# %% [markdown]
# ### The loss
#
# $$\mathcal L = \underbrace{\lVert x - \hat x(z_q) \rVert^2}_{\text{reconstruction}}
# + \underbrace{\lVert \operatorname{sg}[z_e] - e \rVert^2}_{\text{codebook}}
# + \beta \underbrace{\lVert z_e - \operatorname{sg}[e] \rVert^2}_{\text{commitment}}, \qquad \beta = 0.25 ,$$
#
# where $e = e_{k^\ast}$ is the code chosen for $z_e$ (so $e = z_q$ in value), summed over the positions of the
# grid. `course_lib` averages each squared norm over its elements (mean squared errors), pixels for the first
# term and code coordinates for the other two; that only rescales the terms. The reconstruction term trains encoder and decoder (through the straight-through path). The **codebook**
# term moves each chosen code towards the encoder outputs assigned to it (it trains only $e$); the
# **commitment** term keeps the encoder's outputs close to their codes (it trains only the encoder), so that
# they do not drift away from the codebook. Both are penalties: gradient descent *decreases* the distance.
# Check: the gradient of $\beta \lVert z_e - \operatorname{sg}[e] \rVert^2$ (a mean over the $n$ elements) is
# $2\beta (z_e - e)/n$, which points from the code to $z_e$, so a descent step moves $z_e$ towards $e$:

# %%
z_e = torch.randn(1, 2, 3, 3, generator=generator, requires_grad=True)
quantizer.codebook.grad = None
out = quantizer(z_e)
out.loss.backward()
e = quantizer.lookup(out.indices)
expected = 2 * 0.25 * (z_e - e).detach() / z_e.numel()
assert torch.allclose(z_e.grad, expected, atol=1e-7), "commitment gradient: 2 beta (z_e - e) / n"
step = z_e.detach() - 1.0 * z_e.grad
print(f"distance to the codes before a descent step {((z_e - e) ** 2).sum():.4f}, after {((step - e) ** 2).sum():.4f}")
assert ((step - e) ** 2).sum() < ((z_e - e) ** 2).sum()

# %% [markdown]
# **Why no KL term?** The VQ-VAE is a VAE whose posterior $q(z = k \mid x)$ puts all its mass on the nearest
# code, with a uniform prior $p(z = k) = 1/K$ during training. Then $\operatorname{KL}(q \,\Vert\, p) = \log K$ per
# position, a constant, so it drops out of the loss. The prior is learned *afterwards* (section 5).
#
# **EMA codebook.** Instead of the codebook loss, the model below updates each code as an exponential
# moving average of the encoder outputs assigned to it: with $n_k$ the number of encoder outputs of the batch
# assigned to code $k$ and decay $\gamma = 0.99$,
#
# $$N_k \leftarrow \gamma N_k + (1-\gamma)\, n_k, \qquad
# m_k \leftarrow \gamma m_k + (1-\gamma) \sum_{i: k_i^\ast = k} z_{e,i}, \qquad e_k = m_k / N_k ,$$
#
# a running mean of each code's cluster: online k-means, which is more stable than gradient steps on the codebook
# (`ema=True`; van den Oord et al., 2017, appendix; Razavi et al., 2019). `course_lib` adds a tiny Laplace
# smoothing to $N_k$ so that a code with an empty cluster never divides by zero. The commitment term stays.
#
# **Codebook health.** Two numbers: the *usage*, the share of the $K$ codes that the data uses at all, and
# the *perplexity* $\exp\big(-\sum_k p_k \log p_k\big)$ of the code histogram, the effective number of codes
# (between 1 and $K$).

# %% [markdown]
# ## 3. Dead codes, and restarting them
#
# A code that no encoder output picks gets no update and stays unused forever: a **dead code**. With the
# original recipe (a small random codebook near the origin) many codes are never picked: early in training
# the encoder's outputs move fast and claim only the few codes nearest to them. `VectorQuantizer` tracks an
# exponential moving average of each code's share of the assignments and **restarts** codes whose share has
# fallen far below uniform (below $0.03/K$: a code that had its fair share $1/K$ gets there after about 350
# steps without being chosen, since its share decays by a factor 0.99 per step and $0.99^{350} \approx 0.03$),
# moving them onto random encoder outputs of the current batch. We compare training with and without restarts on
# the 8x8 digits (small and fast), both from the same small random codebook, with a generous 128 codes:

# %%
digits = data.digits8x8("train", value_range="unit").x
digits_test = data.digits8x8("test", value_range="unit").x.to(DEVICE)
digits_loader = data.InMemoryLoader(digits, batch_size=64, device=DEVICE)
dead_steps = config.budget(full=600, quick=10)
log_every = config.budget(full=20, quick=5)


def usage_tracker(x, every, log):
    """A train.fit callback that appends (step, codebook usage on x) to log every `every` steps."""
    def callback(step, model, history):
        if step % every == 0:
            log.append((step, Q.codebook_usage(model.encode_indices(x), model.num_codes)))
    return callback


usage_logs, dead_mse = {}, {}
for name, kwargs in [("no restarts", dict(restart_dead_codes=False, data_init=False)),
                     ("dead-code restarts", dict(restart_dead_codes=True, data_init=False))]:
    torch.manual_seed(0)
    small = Q.VQVAE((1, 8, 8), channels=(16, 32), code_dim=8, num_codes=128, num_residual=0, ema=True, **kwargs)
    usage_logs[name] = []
    train.fit(small, Q.vqvae_loss_fn, digits_loader, steps=dead_steps, lr=2e-3, device=DEVICE, log_every=log_every,
              callback=usage_tracker(digits_test, log_every, usage_logs[name]), progress=False)
    dead_mse[name] = torch.nn.functional.mse_loss(small.reconstruct(digits_test), digits_test).item()

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, log in usage_logs.items():
    ax.plot(*zip(*log), label=name)
ax.set(xlabel="step", ylabel="share of the 128 codes in use", ylim=(0, 1.05), title="dead codes on the 8x8 digits")
ax.legend(fontsize=8);
for name, log in usage_logs.items():
    print(f"{name}: {log[-1][1]:.0%} of the codes in use at the end, test reconstruction MSE {dead_mse[name]:.4f}")

# %% [markdown]
# In a full-mode run: without restarts most of the codebook never comes alive and the model makes do with a
# fraction of its capacity. With restarts the usage jumps once the first dead codes are detected (after the
# few hundred steps it takes to call a code dead), almost every code ends up in use, and the reconstructions
# improve. (Quick mode stops long before the first restart.) The MNIST model below also initialises its codebook
# from the encoder outputs of the first batch (`data_init=True`, the default), so every code starts in use.

# %% [markdown]
# ## 4. A VQ-VAE on MNIST
#
# Encoder: a $3 \times 3$ convolution and two stride-2 convolutions ($28 \to 14 \to 7$) with a residual block,
# then a $1 \times 1$ convolution to 16 dimensions; codebook of $K = 64$ codes; decoder: the mirror image with
# transposed convolutions; reconstruction loss: mean squared error on pixels in $[0, 1]$. We track the
# codebook's usage and perplexity on the test digits while training.

# %%
mnist_train = data.mnist("train", value_range="unit").x
mnist_test = data.mnist("test", value_range="unit").x
x_test = mnist_test.to(DEVICE)
mnist_loader = data.InMemoryLoader(mnist_train, batch_size=64, device=DEVICE)
vq_steps = config.budget(full=1500, quick=10)
track_every = config.budget(full=100, quick=10)

torch.manual_seed(0)
vqvae = Q.VQVAE((1, 28, 28), channels=(16, 32, 32), code_dim=16, num_codes=64, num_residual=1, ema=True)
health = []


def track_codebook(step, model, history):
    if step % track_every == 0:
        codes = model.encode_indices(x_test)
        health.append((step, Q.codebook_usage(codes, model.num_codes), Q.perplexity(codes, model.num_codes)))


vq_result = train.fit(vqvae, Q.vqvae_loss_fn, mnist_loader, steps=vq_steps, lr=2e-3, device=DEVICE,
                      log_every=track_every, callback=track_codebook, desc="VQ-VAE")
print(f"{sum(p.numel() for p in vqvae.parameters()):,} parameters; {vq_result.seconds:.0f} s; "
      f"{int(vqvae.quantizer.restarts)} dead-code restarts")

# %%
steps_seen, usage, perplexities = zip(*health)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
viz.plot_history(vq_result.history, keys=["recon_mse"], ax=axes[0], logy=True, title="reconstruction MSE per pixel")
axes[1].plot(steps_seen, usage)
axes[1].set(xlabel="step", ylabel="share of codes used (test digits)", ylim=(0, 1.05), title="codebook usage")
axes[2].plot(steps_seen, perplexities)
axes[2].axhline(vqvae.num_codes, ls=":", color="k")
axes[2].set(xlabel="step", ylabel="perplexity", ylim=(0, vqvae.num_codes + 4), title=f"perplexity (max {vqvae.num_codes})")
plt.tight_layout()

# %%
with torch.no_grad():
    test_codes = vqvae.encode_indices(x_test)
    recon = vqvae.reconstruct(x_test)
recon_mse = torch.nn.functional.mse_loss(recon, x_test).item()
final_usage = Q.codebook_usage(test_codes, vqvae.num_codes)
print(f"test reconstruction MSE {recon_mse:.4f} per pixel; {final_usage:.0%} of the {vqvae.num_codes} codes in use, "
      f"perplexity {Q.perplexity(test_codes, vqvae.num_codes):.1f}")
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
viz.show_images(x_test[:32], nrow=8, ax=axes[0], title="test digits")
viz.show_images(recon[:32], nrow=8, ax=axes[1], title="reconstructions from 49 codes each")
plt.tight_layout()
print("the first test digit, as the decoder sees it:\n", test_codes[0].cpu())
blank = torch.nn.functional.avg_pool2d(x_test, 4)[:, 0] == 0  # (N, 7, 7): positions whose 4x4 patch is all black
blank_codes = test_codes[blank]
top_share = torch.bincount(blank_codes, minlength=vqvae.num_codes).max().item() / len(blank_codes)
print(f"{blank.float().mean():.0%} of the positions are blank 4x4 patches; they use {blank_codes.unique().numel()} "
      f"different codes, the most common one at {top_share:.0%} of them")

# %% [markdown]
# After full training the reconstructions are close to the originals although each digit is now only 49
# integers between 0 and 63, like the grid printed above. Codes are not simply "ink" and "no ink": each position
# of the grid sees a neighbourhood of the image (its receptive field is larger than its 4x4 patch), so even blank
# patches can get different codes depending on the strokes nearby (the count above). What a code means depends on where it is and on its neighbours, which is
# exactly what the prior has to learn.

# %% [markdown]
# ## 5. A Transformer prior over codes
#
# To generate, we need $p(c)$ for a grid $c$ of 49 codes. We read the grid in raster order (left to right,
# top to bottom) and factorise it by the chain rule, exactly as for names in notebook 03:
#
# $$p(c) = \prod_{t=1}^{49} p(c_t \mid c_1, \dots, c_{t-1}).$$
#
# `Q.CodePrior` wraps the course's `GPT` (`course_lib.models.autoregressive`) with a vocabulary of the 64
# codes plus a start token, and samples with its `generate`. We train it on the code grids of the 4,000
# training digits; its test NLL is an *exact* log-likelihood of the test codes (in nats per image), because
# both the codes and the prior are discrete. Note what it measures: how well the prior predicts the *code grids*
# the encoder produces, not a likelihood of the images themselves (the decoder is trained with a squared error,
# not as a likelihood), so it cannot be compared with the VAE's NLL of notebook 04. The uniform distribution over
# codes, $49 \log 64 \approx 203.8$ nats, is the baseline.

# %%
with torch.no_grad():
    train_codes = vqvae.encode_indices(mnist_train.to(DEVICE))
prior_steps = config.budget(full=1500, quick=10)
torch.manual_seed(0)
prior = Q.CodePrior(vqvae.num_codes, vqvae.grid_shape, n_layer=3, n_head=4, n_embd=48, dropout=0.1)
code_loader = data.InMemoryLoader(train_codes, batch_size=64, device=DEVICE)
prior_result = train.fit(prior, Q.prior_loss_fn, code_loader, steps=prior_steps, lr=1e-3, weight_decay=0.1,
                         device=DEVICE, desc="code prior")
with torch.no_grad():
    prior_nll = -prior.log_prob(test_codes).mean().item()
uniform_nll = 49 * torch.log(torch.tensor(float(vqvae.num_codes))).item()
print(f"prior NLL of the test codes: {prior_nll:.1f} nats per image (uniform over codes: {uniform_nll:.1f})")
viz.plot_history(prior_result.history, title="code prior: cross-entropy per code (nats)");

# %%
n_samples = config.budget(full=1000, quick=250)
with torch.no_grad():
    sampled_codes = prior.sample(n_samples, generator=generator)
    samples = vqvae.decode_indices(sampled_codes)
    uniform_codes = torch.randint(0, vqvae.num_codes, (n_samples, *vqvae.grid_shape), generator=generator)
    uniform_samples = vqvae.decode_indices(uniform_codes.to(DEVICE))
fig, axes = plt.subplots(1, 2, figsize=(12, 6))
viz.show_images(samples[:64], nrow=8, ax=axes[0], title="samples: codes from the Transformer prior")
viz.show_images(uniform_samples[:64], nrow=8, ax=axes[1], title="codes drawn uniformly at random")
plt.tight_layout()

# %% [markdown]
# Without a prior (right) the decoder receives grids of codes that never occur together, and produces
# texture, not digits. The prior learned which codes go where.
#
# **How good are the samples?** We compare them with real test digits by the classifier FID of notebook 11
# (`metrics.fid`, features of the course's MNIST classifier), and put it next to the FID between two sets of
# real digits of the same size, the *floor* a perfect model would reach at this sample size.

# %%
real = x_test[:n_samples]
fid_prior = metrics.fid(real, samples)
fid_uniform = metrics.fid(real, uniform_samples)
fid_recon = metrics.fid(real, recon[:n_samples])
floor = metrics.floor("fid", n_samples)
print(f"FID (N={n_samples}): prior samples {fid_prior:.2f}, reconstructions {fid_recon:.2f}, "
      f"uniform codes {fid_uniform:.1f}; real-vs-real floor {floor.mean:.2f}")
print(f"prior samples are {metrics.ratio_to_floor(fid_prior, 'fid', n_samples):.1f} x the floor")

# %% [markdown]
# Read the three numbers against the floor. The reconstructions are a flattering comparison (they are copies
# of the very test digits they are compared with, so they can even come out below the floor), but a value near
# the floor says the codes lose little. The prior's samples are typically further away, so most of the
# remaining gap is the prior's: a larger Transformer, more training digits or longer training should shrink it.
# In quick mode the models are barely trained and these numbers mean little. `bench/vae.py` records the
# full-mode numbers in `bench/RESULTS.md`.

# %% [markdown]
# ## Common misconceptions
#
# * *"The VQ-VAE is a VAE with a Gaussian latent."* Its latents are discrete indices; the KL term of a VAE
#   becomes the constant $\log K$ per position and disappears from the loss.
# * *"The straight-through estimator is the true gradient."* It is a biased surrogate: the true gradient of
#   the quantiser is zero almost everywhere. It works because the commitment term keeps $z_e$ near $z_q$.
# * *"The commitment loss trains the codebook."* It trains the encoder (the codes are behind a stop-gradient);
#   the codebook term (or the EMA update) moves the codes.
# * *"A VQ-VAE can generate on its own."* Decoding random codes gives texture (section 5). Generation needs a
#   prior over code grids, trained in a second stage.
# * *"All codes get used automatically."* Without care many codes die at the start; watch the usage and
#   perplexity, and restart dead codes.

# %% [markdown]
# ## Self-checks

# %%
# Self-check 1: the quantiser's output is made of codebook vectors.
z_q = vqvae.quantizer.lookup(test_codes[:4])
assert torch.allclose(z_q[0, :, 0, 0], vqvae.quantizer.codebook[test_codes[0, 0, 0]]), "z_q holds codebook vectors"
# Self-check 2: the codebook is alive, and the restarts did their job in the 8x8 comparison.
assert final_usage > 0 and (config.is_quick() or final_usage >= 0.8), f"only {final_usage:.0%} of the codes are in use"
usage_without, usage_with = (log[-1][1] for log in usage_logs.values())
assert usage_with >= usage_without, "restarts should not reduce codebook usage"
# Self-check 3: the prior beats uniform codes, in likelihood and (after full training) in FID.
assert prior_nll < uniform_nll, "the trained prior should assign the test codes more probability than uniform"
if not config.is_quick():
    assert fid_prior < fid_uniform, "prior samples should be closer to real digits than decoded random codes"
    assert recon_mse < 0.01, f"reconstruction MSE {recon_mse:.4f} is too high"
print("self-checks passed")

# %% [markdown]
# ## Summary
#
# * A VQ-VAE encodes an image into a grid of indices into a learned codebook (nearest-neighbour quantisation).
# * The straight-through estimator copies gradients past the quantiser; the codebook term (or EMA updates)
#   moves codes towards the encoder outputs, the commitment term keeps the encoder near its codes.
# * Codebook usage and perplexity diagnose dead codes; restarting them keeps the whole codebook alive.
# * Generation is a second stage: an autoregressive Transformer over code grids, sampled and decoded.
#
# **Exercises:** `exercises/05_vqvae.ipynb` (nearest-code quantisation, straight-through gradients, the two
# VQ loss terms, codebook perplexity, and code grids as token sequences). **Next:** 06 · GANs.

# %%
clock.report();
