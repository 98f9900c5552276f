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
# # 04 · Autoencoders and variational autoencoders
#
# An autoencoder squeezes an image through a few numbers and rebuilds it. Add a prior over those
# numbers, make the encoder probabilistic and train with a bound on the log-likelihood, and you get
# a **variational autoencoder** (VAE; Kingma & Welling, 2014; Rezende, Mohamed & Wierstra, 2014): a
# generative model whose likelihood we can measure honestly.
#
# **After this notebook you will be able to**
# 1. explain why a plain autoencoder is *not* a generative model, and what the VAE adds;
# 2. derive the evidence lower bound (ELBO) in two ways and say what its gap to $\log p(x)$ is;
# 3. explain the reparameterisation trick and why the gradient needs it;
# 4. train a VAE, read its reconstruction and KL terms, and recognise posterior collapse and the effect of $\beta$;
# 5. explore a 2-D latent space of digits: classes, interpolations, an interactive decoder;
# 6. report a VAE's likelihood honestly: ELBO, IWAE bounds and the importance-sampled NLL, in nats.
#
# You should know notebook 01 (expectations, Monte Carlo, KL divergence) and notebook 02 (maximum
# likelihood, NLL in nats and bits per dimension).

# %%
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import display

from course_lib import config, data, device, train, viz
from course_lib.metrics.likelihood import nats_to_bits_per_dim
from course_lib.models import vae as V

clock = config.NotebookClock("04 VAE", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %% [markdown]
# ## 1. The idea in words
#
# A **latent variable model** explains each image $x$ by a hidden cause $z$: first draw
# $z \sim p(z)$, a simple distribution such as $\mathcal N(0, I)$ in a few dimensions, then draw the
# image from $p_\theta(x \mid z)$, whose parameters a neural network (the *decoder*) computes from $z$.
# Generating is then trivial: sample $z$, decode. Training is not: maximum likelihood needs
# $p_\theta(x) = \int p_\theta(x \mid z)\, p(z)\, dz$, an integral over every possible $z$.
#
# The VAE's answer is a second network, the *encoder* $q_\phi(z \mid x)$, that guesses which $z$ could
# have produced $x$. With it we can write a lower bound on $\log p_\theta(x)$, the ELBO, that is cheap to
# estimate and differentiate, and train both networks together by maximising it.
#
# Seen from the outside, this looks like an **autoencoder** (encode $x$ to a short code, decode it
# back), with two additions that make all the difference: the code is a *distribution*, and a KL
# term pulls those distributions towards the prior $p(z)$, so that the prior is a good place to sample from.

# %% [markdown]
# ## 2. A plain autoencoder, and why it is not a generative model
#
# We train an autoencoder on MNIST with a **2-D code**, so that we can look at the code space directly.
# Encoder and decoder are MLPs ($784 \to 512 \to 256 \to 2$ and back). The digits are binarised
# (each pixel is a coin flip with its grey value as probability, redrawn every batch), and the
# reconstruction loss is the Bernoulli negative log-likelihood $-\log p(x \mid z)$: the binary
# cross-entropy summed over the 784 pixels, in nats per image.

# %%
mnist_train = data.mnist("train", value_range="unit")
mnist_test = data.mnist("test", value_range="binary")  # a fixed binarisation, for evaluation
SHAPE = (1, 28, 28)
HIDDEN = (512, 256)
mnist_loader = data.InMemoryLoader(mnist_train.x, batch_size=128, device=DEVICE)
steps_2d = config.budget(full=2500, quick=30)

autoencoder = V.Autoencoder(
    V.MLPEncoder(SHAPE, 2, HIDDEN, gaussian=False), V.MLPDecoder(2, SHAPE, 1, HIDDEN), V.BernoulliLikelihood()
)
ae_result = train.fit(autoencoder, V.autoencoder_loss_fn(binarize=True), mnist_loader, steps=steps_2d,
                      lr=1e-3, device=DEVICE, desc="autoencoder")
viz.plot_history(ae_result.history, title="autoencoder: reconstruction NLL (nats per image)");

# %% [markdown]
# Where do the test digits land in code space? And what comes out if we decode codes we *choose*,
# for example random draws from $\mathcal N(0, I)$, the way we would sample from a generative model?

# %%
x_test, y_test = mnist_test.x.to(DEVICE), mnist_test.y
with torch.no_grad():
    ae_codes = autoencoder.encode(x_test).cpu()
    ae_recon = autoencoder.reconstruct(x_test[:8])  # decoder mean p(x | f(x)) for 8 test digits
    z_random = torch.randn(16, 2, generator=generator)
    ae_samples = autoencoder.likelihood.mean(autoencoder.decode(z_random.to(DEVICE)))

fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
viz.scatter_2d(ae_codes, y_test, ax=axes[0], title="autoencoder: codes of test digits (crosses: random z)")
axes[0].scatter(*z_random.T, marker="x", color="k", s=30, label="random z ~ N(0, I)")
viz.show_images(torch.cat([x_test[:8], ae_recon]), nrow=8, ax=axes[1], title="test digits (top), reconstructions (bottom)")
viz.show_images(ae_samples, nrow=8, ax=axes[2], title="decoded random N(0, I) codes")
plt.tight_layout()
print(f"code range: z1 in [{ae_codes[:, 0].min():.0f}, {ae_codes[:, 0].max():.0f}], "
      f"z2 in [{ae_codes[:, 1].min():.0f}, {ae_codes[:, 1].max():.0f}]")

# %% [markdown]
# The autoencoder rebuilds the test digits recognisably from just two numbers (middle panel; after the short
# quick-mode run only roughly), but its codes live wherever training happened to put them: an irregular
# region of arbitrary scale (see the printed ranges), often with gaps between the classes. Nothing in its loss
# says which codes are *valid*, so there is no distribution to sample codes from: $\mathcal N(0, I)$ is just a
# guess, and the random codes decode to whatever the decoder happens to do there, typically blurry mixtures or
# shapes that are not digits. **A plain autoencoder is a compressor, not a generative model.**

# %% [markdown]
# ## 3. The math: the evidence lower bound (ELBO)
#
# The model is $p_\theta(x, z) = p(z)\, p_\theta(x \mid z)$ with $p(z) = \mathcal N(0, I)$. The encoder is a
# diagonal Gaussian $q_\phi(z \mid x) = \mathcal N\big(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x)\big)$.
#
# **Derivation 1: Jensen's inequality.** Multiply and divide by $q$ inside the integral, then use that
# $\log$ is concave ($\log \mathbb E[w] \ge \mathbb E[\log w]$):
#
# $$\log p_\theta(x) = \log \int q_\phi(z \mid x) \frac{p_\theta(x, z)}{q_\phi(z \mid x)}\, dz
# = \log \mathbb E_{q}\Big[\frac{p_\theta(x, z)}{q_\phi(z \mid x)}\Big]
# \;\ge\; \mathbb E_{q}\Big[\log \frac{p_\theta(x, z)}{q_\phi(z \mid x)}\Big] =: \mathcal L(x).$$
#
# **Derivation 2: the gap is a KL divergence.** Write $p_\theta(x, z) = p_\theta(z \mid x)\, p_\theta(x)$ inside $\mathcal L$:
#
# $$\mathcal L(x) = \mathbb E_q\Big[\log p_\theta(x) + \log \frac{p_\theta(z \mid x)}{q_\phi(z \mid x)}\Big]
# = \log p_\theta(x) - \operatorname{KL}\big(q_\phi(z \mid x) \,\Vert\, p_\theta(z \mid x)\big).$$
#
# The second derivation says more: the ELBO is below $\log p(x)$ by exactly how far the encoder is from
# the true posterior, and it is *equal* to $\log p(x)$ when $q$ is the true posterior. Maximising the ELBO
# over $\phi$ (which does not change $\log p_\theta(x)$) therefore makes $q$ a better posterior; over $\theta$ it
# raises $\log p_\theta(x)$ *or* shrinks the gap, for example by bending the model until its true posterior is
# easy for $q$ to match. The second route is one reason VAEs can end up with unused latent dimensions (section 6).
#
# **The form we compute.** Writing $p(x, z) = p(x \mid z)\, p(z)$ instead gives
#
# $$\mathcal L(x) = \underbrace{\mathbb E_{q_\phi(z \mid x)}\big[\log p_\theta(x \mid z)\big]}_{\text{reconstruction}}
#  - \underbrace{\operatorname{KL}\big(q_\phi(z \mid x) \,\Vert\, p(z)\big)}_{\text{stay close to the prior}},$$
#
# an autoencoder's reconstruction term plus a KL term that ties every code distribution to the prior.
# For two diagonal Gaussians the KL has a closed form,
# $\operatorname{KL} = \tfrac12 \sum_j \big(\mu_j^2 + \sigma_j^2 - \log \sigma_j^2 - 1\big)$ (`V.gaussian_kl`).
# We check it against PyTorch's own implementation:

# %%
mu, logvar = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
q = torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1)
prior = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(3), torch.ones(3)), 1)
print("closed form:       ", V.gaussian_kl(mu, logvar).numpy().round(4))
print("torch.distributions:", torch.distributions.kl_divergence(q, prior).numpy().round(4))
assert torch.allclose(V.gaussian_kl(mu, logvar), torch.distributions.kl_divergence(q, prior), atol=1e-5)

# %% [markdown]
# ### Checking both derivations where $\log p(x)$ is known exactly
#
# For neural decoders $\log p(x)$ is intractable, so we check the algebra on **probabilistic PCA**, the
# linear-Gaussian latent variable model $z \sim \mathcal N(0, I_d)$, $x \mid z \sim \mathcal N(Wz + b, \sigma^2 I_D)$.
# Everything is Gaussian, so $p(x) = \mathcal N(b, WW^\top + \sigma^2 I)$ and the posterior $p(z \mid x)$ are
# known in closed form. `V.ppca_vae` builds it as a VAE whose encoder is the best *diagonal* Gaussian
# approximation of the posterior. We estimate the ELBO by Monte Carlo and compare:

# %%
D_ppca, d_ppca, sigma_ppca = 5, 2, 0.5
W = torch.randn(D_ppca, d_ppca, generator=generator, dtype=torch.float64)
b = torch.randn(D_ppca, generator=generator, dtype=torch.float64)
x_ppca = (torch.randn(8, d_ppca, generator=generator, dtype=torch.float64) @ W.T + b
          + sigma_ppca * torch.randn(8, D_ppca, generator=generator, dtype=torch.float64))
ppca = V.ppca_vae(W, b, sigma_ppca)
with torch.no_grad():
    log_px = V.ppca_log_marginal(x_ppca, W, b, sigma_ppca)
    elbo_ppca = ppca.elbo(x_ppca, num_samples=config.budget(full=50000, quick=50000), generator=generator)
    # KL(q || true posterior), with torch.distributions as an independent reference
    post_mean, post_cov = V.ppca_posterior(x_ppca, W, b, sigma_ppca)
    q_mu, q_logvar = ppca.encode(x_ppca)
    kl_gap = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(q_mu, covariance_matrix=torch.diag_embed(q_logvar.exp())),
        torch.distributions.MultivariateNormal(post_mean, covariance_matrix=post_cov))
print(f"{'log p(x)':>10} {'ELBO':>10} {'gap':>8} {'KL(q||p(z|x))':>14}")
for lp, el, kl in zip(log_px[:5], elbo_ppca[:5], kl_gap[:5]):
    print(f"{lp:10.3f} {el:10.3f} {lp - el:8.3f} {kl:14.3f}")
assert (elbo_ppca <= log_px + 0.05).all(), "derivation 1: the ELBO is a lower bound"
assert torch.allclose(log_px - elbo_ppca, kl_gap, atol=0.05), "derivation 2: the gap is KL(q || p(z|x))"

# %% [markdown]
# The ELBO sits below $\log p(x)$ by exactly $\operatorname{KL}(q \,\Vert\, p(z \mid x))$ (up to Monte Carlo
# noise). Here the gap is not zero because the true posterior has correlated coordinates, which no
# diagonal Gaussian can match: this is the **approximation gap** of a mean-field encoder. With orthogonal
# columns of $W$ the posterior is diagonal, the encoder exact, and the gap vanishes (a test in
# `tests/test_vae.py` checks that).

# %% [markdown]
# ## 4. The reparameterisation trick
#
# To train, we need $\nabla_\phi\, \mathbb E_{q_\phi(z \mid x)}[f(z)]$, the gradient of an expectation whose
# *distribution* depends on the parameters. We cannot push the gradient through "draw a sample". The trick
# is to move the randomness out of the parameters' way:
#
# $$z = \mu + \sigma \odot \varepsilon, \quad \varepsilon \sim \mathcal N(0, I)
# \qquad\Longrightarrow\qquad
# \nabla_{\mu, \sigma}\, \mathbb E[f(z)] = \mathbb E_\varepsilon\big[\nabla_{\mu, \sigma} f(\mu + \sigma \varepsilon)\big].$$
#
# Now $z$ is an ordinary differentiable function of $(\mu, \sigma)$, and one sample gives an unbiased
# gradient (`V.reparameterize`). The alternative that works for any distribution, the *score-function*
# (REINFORCE) estimator $\mathbb E[f(z)\, \nabla \log q(z)]$, is also unbiased but far noisier. We compare both on
# $f(z) = z^2$, where $\partial_\mu \mathbb E[z^2] = \partial_\mu (\mu^2 + \sigma^2) = 2\mu$:

# %%
mu0, sigma0 = 1.0, 0.5
n_grad = config.budget(full=10000, quick=2000)
mu_param = torch.tensor([mu0], requires_grad=True)
z = V.reparameterize(mu_param.expand(n_grad), torch.full((n_grad,), 2 * math.log(sigma0)), generator=generator)
autograd_estimate = torch.autograd.grad((z**2).mean(), mu_param)[0].item()  # backprop through z = mu + sigma eps
z = z.detach()
reparam = 2 * z  # the same gradient, sample by sample: d/dmu (mu + sigma eps)^2 = 2 z
score = z**2 * (z - mu0) / sigma0**2  # score function: f(z) d/dmu log N(z; mu, sigma^2)
print(f"exact gradient 2 mu = {2 * mu0:.3f}; autograd through the reparameterisation: {autograd_estimate:.3f}")
print(f"reparameterised: mean {reparam.mean():.3f}, std per sample {reparam.std():.2f}")
print(f"score function:  mean {score.mean():.3f}, std per sample {score.std():.2f}")
assert abs(autograd_estimate - reparam.mean()) < 1e-4 and abs(autograd_estimate - 2 * mu0) < 0.05
assert score.std() > 2 * reparam.std(), "the score-function estimator is the noisier one"

# %% [markdown]
# Both estimators are right on average; the reparameterised one has a much smaller spread, which is
# why a VAE can train with a single sample of $z$ per image.

# %% [markdown]
# ## 5. A VAE on MNIST with a 2-D latent space
#
# Same networks as the autoencoder, except that the encoder now outputs a mean and a log-variance
# (`gaussian=True`), and the loss is the negative ELBO: reconstruction NLL plus KL, in nats per image.

# %%
vae2d = V.VAE(V.MLPEncoder(SHAPE, 2, HIDDEN), V.MLPDecoder(2, SHAPE, 1, HIDDEN), V.BernoulliLikelihood())
vae2d_result = train.fit(vae2d, V.loss_fn("elbo", binarize=True), mnist_loader, steps=steps_2d, lr=1e-3,
                         device=DEVICE, desc="VAE, 2-D latent")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
viz.plot_history(vae2d_result.history, keys=["kl"], ax=axes[0], title="KL term (nats per image)")
viz.plot_history(vae2d_result.history, keys=["elbo"], ax=axes[1], title="ELBO (nats per image, higher is better)")
plt.tight_layout()

# %%
with torch.no_grad():
    vae_mu, _ = vae2d.encode(x_test)
    vae_mu = vae_mu.cpu()
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
viz.scatter_2d(ae_codes, y_test, ax=axes[0], title="autoencoder codes")
viz.scatter_2d(vae_mu, y_test, ax=axes[1], title="VAE posterior means")
circle = plt.Circle((0, 0), 2.0, fill=False, ls="--", color="k")
axes[1].add_patch(circle)
plt.tight_layout()
print(f"VAE posterior means: mean {vae_mu.mean(0).numpy().round(2)}, std {vae_mu.std(0).numpy().round(2)} "
      "(the prior has mean 0, std 1)")

# %% [markdown]
# The KL term keeps the codes inside the prior's bulk (the dashed circle has radius 2) and packs the
# classes next to each other without large empty regions. Now random $z \sim \mathcal N(0, I)$ lands
# where the decoder has learned something. A regular grid of $z$ values, placed at the quantiles of the
# prior, shows the whole learned *manifold* of digits:

# %%
grid_n = 15
quantiles = torch.linspace(0.03, 0.97, grid_n)
coords = torch.distributions.Normal(0.0, 1.0).icdf(quantiles)
z_grid = torch.stack(torch.meshgrid(coords, coords.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
manifold = vae2d.sample(len(z_grid), z=z_grid)
fig, axes = plt.subplots(1, 2, figsize=(12, 6))
viz.show_images(manifold, nrow=grid_n, ax=axes[0], title="decoder mean on a grid of z (prior quantiles)")
viz.show_images(vae2d.sample(64, generator=generator), nrow=8, ax=axes[1], title="samples: z ~ N(0, I), decoder mean")
plt.tight_layout()

# %% [markdown]
# With only two latent numbers the VAE cannot draw every digit sharply (look for classes that share a region
# of the map, such as 4s and 9s), but in a full-mode run almost every point of the prior's bulk decodes to
# something digit-like, and neighbouring points decode to
# similar digits. That smoothness is what **interpolation** exploits: walk in a straight line between the
# codes of two real digits and decode along the way. Walking between the *pixels* instead just fades one
# image into the other.

# %%
def interpolate(model, x_a, x_b, steps=10):
    """Decode the straight line between the posterior means of x_a and x_b: (steps, C, H, W)."""
    with torch.no_grad():
        z_a, z_b = model.encode(x_a[None])[0], model.encode(x_b[None])[0]
        t = torch.linspace(0, 1, steps, device=z_a.device)[:, None]
        return model.sample(steps, z=(1 - t) * z_a + t * z_b)


pairs = [(int((y_test == a).nonzero()[0]), int((y_test == b_).nonzero()[0])) for a, b_ in [(0, 6), (1, 7), (3, 8)]]
rows = []
for i, j in pairs:
    rows.append(interpolate(vae2d, x_test[i], x_test[j]))
    t = torch.linspace(0, 1, 10, device=x_test.device)[:, None, None, None]
    rows.append((1 - t) * x_test[i] + t * x_test[j])
viz.show_images(torch.cat(rows), nrow=10, title="rows 1, 3, 5: through the latent space; rows 2, 4, 6: in pixel space");

# %% [markdown]
# ### An interactive latent explorer
#
# Move the sliders to choose $z = (z_1, z_2)$; the cross shows where you are among the test digits and the
# right panel shows the decoded image. (In quick mode, or wherever widgets cannot be shown, a static grid
# of decoded images takes the explorer's place.)

# %%
def show_decoded(z1=0.0, z2=0.0):
    """Plot the latent map with a cross at (z1, z2) and the decoder's mean image for that z."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4))
    viz.scatter_2d(vae_mu, y_test, ax=left, s=3, lim=3.5, title="posterior means of test digits")
    left.scatter([z1], [z2], marker="x", s=120, color="k")
    viz.show_images(vae2d.sample(1, z=torch.tensor([[z1, z2]])), ax=right, title=f"decoded z = ({z1:.1f}, {z2:.1f})")
    display(fig)
    plt.close(fig)


try:
    import ipywidgets as widgets
except ImportError:  # the course installs ipywidgets; a static grid keeps the notebook usable without it
    widgets = None
if config.is_quick() or widgets is None:
    coarse = torch.linspace(-2.5, 2.5, 7)
    z_static = torch.stack(torch.meshgrid(coarse, coarse.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)
    viz.show_images(vae2d.sample(len(z_static), z=z_static), nrow=7, title="static explorer: z1, z2 in [-2.5, 2.5]")
else:
    slider = dict(min=-3.0, max=3.0, step=0.1, continuous_update=False)
    widgets.interact(show_decoded, z1=widgets.FloatSlider(value=0.0, **slider), z2=widgets.FloatSlider(value=0.0, **slider));

# %% [markdown]
# ## 6. $\beta$ and posterior collapse
#
# Nothing forces the VAE to *use* its latent space. The KL term is smallest when $q(z \mid x) = p(z)$ for
# every $x$, i.e. when the code says nothing about the image; if the decoder can model the data well enough
# on its own, the optimum may switch some latent dimensions off entirely. This is **posterior collapse**:
# those dimensions' posteriors equal the prior, their KL is 0, and their posterior means do not move
# with the input. Two ways to count the dimensions in use: those that carry more than 0.1 nats of KL on
# average (`V.kl_per_dimension`), and the *active units* of Burda et al. (2016), whose posterior mean varies
# across inputs, $\operatorname{Var}_x \mathbb E_q[z_j] > 0.01$ (`V.active_units`; a more lenient count).
#
# The **$\beta$-VAE** (Higgins et al., 2017) weights the KL term, $\mathbb E_q[\log p(x \mid z)] - \beta\,
# \operatorname{KL}(q \,\Vert\, p)$. With $\beta > 1$ information in $z$ costs more, so fewer dimensions stay
# active and reconstructions blur (the hope is more disentangled, interpretable codes); with $\beta < 1$
# codes carry more information and reconstructions sharpen, at the price of a worse match to the prior
# (worse samples). Since the KL is never negative, $\beta = 1$ gives the tightest of these bounds on
# $\log p(x)$: $\beta > 1$ gives a looser lower bound, and $\beta < 1$ is no bound at all (it can exceed $\log p(x)$).
# Whatever $\beta$ a model was trained with, we evaluate it with the true ELBO ($\beta = 1$).
#
# We train three VAEs with 16 latent dimensions on the 8x8 digits (quick to train; a categorical
# decoder over the 17 grey levels and the weight decay of section 7) and compare them on the validation digits:

# %%
LEVELS = data.DIGITS8X8_LEVELS
digits_train = data.digits8x8("train", value_range="counts")
digits_val = data.digits8x8("val", value_range="counts")
digits_test = data.digits8x8("test", value_range="counts")
digits_loader = data.InMemoryLoader(digits_train.x, batch_size=32, device=DEVICE)
x_val, x_dtest = digits_val.x.to(DEVICE), digits_test.x.to(DEVICE)


def digits_vae(latent_dim=16, beta=1.0):
    """Tomczak's MLP VAE for the 8x8 digits: 64 -> 256 -> 256 -> (mu, logvar) and 16 -> 256 -> 256 -> 64 x 17 logits."""
    encoder = V.MLPEncoder((1, 8, 8), latent_dim, (256, 256), input_scale=1 / 16)
    decoder = V.MLPDecoder(latent_dim, (1, 8, 8), LEVELS, (256, 256))
    return V.VAE(encoder, decoder, V.CategoricalLikelihood(LEVELS), beta=beta)


betas = [0.2, 1.0, 5.0]
beta_steps = config.budget(full=1200, quick=20)
beta_models, beta_rows = {}, []
for beta in betas:
    torch.manual_seed(0)
    model = digits_vae(beta=beta)
    train.fit(model, V.loss_fn("elbo"), digits_loader, steps=beta_steps, lr=1e-3, weight_decay=0.5, device=DEVICE,
              progress=False)
    with torch.no_grad():
        elbo, recon, kl = model.elbo(x_val, num_samples=10, return_terms=True, generator=generator)
        informative = int((V.kl_per_dimension(model, x_val) > 0.1).sum())
        active, _ = V.active_units(model, x_val)
    beta_models[beta] = model
    beta_rows.append((beta, -recon.mean().item(), kl.mean().item(), -elbo.mean().item(), informative, active))
print(f"{'beta':>5} {'recon NLL':>10} {'KL':>6} {'-ELBO':>7} {'dims > 0.1 nats':>16} {'active units':>13}"
      "   (validation, nats per image)")
for row in beta_rows:
    print(f"{row[0]:5.1f} {row[1]:10.1f} {row[2]:6.1f} {row[3]:7.1f} {row[4]:13d}/16 {row[5]:10d}/16")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
width = 0.27
for i, beta in enumerate(betas):
    kl_dims = V.kl_per_dimension(beta_models[beta], x_val).cpu()
    axes[0].bar(torch.arange(16) + (i - 1) * width, kl_dims.sort(descending=True).values, width, label=f"beta = {beta:g}")
axes[0].set(xlabel="latent dimension (sorted by KL)", ylabel="KL (nats)", title="information per latent dimension")
axes[0].legend()
recons = [x_dtest[:8].cpu()] + [beta_models[beta].reconstruct(x_dtest[:8], how="mean").cpu() for beta in betas]
viz.show_images(torch.cat(recons) / (LEVELS - 1), nrow=8, value_range="unit", ax=axes[1],
                title="test digits; reconstructions (means) with beta = " + ", ".join(f"{b:g}" for b in betas))
plt.tight_layout()

# %% [markdown]
# Read the table from top to bottom: as $\beta$ grows the KL (the information the code carries, in nats)
# falls, reconstructions get worse, and latent dimensions switch off: their bars drop to zero. At $\beta = 5$
# the collapse is complete in the full-mode run: the KL is about 0, every reconstruction is the same blurry
# average digit, and the decoder ignores $z$. Even at $\beta = 1$ only some of the 16 dimensions carry
# information: the model keeps just what pays for its KL. The best $-$ELBO (always computed with $\beta = 1$, the
# quantity that bounds the likelihood) should be at $\beta = 1$, the only model trained on the ELBO itself:
# $\beta = 0.2$ reconstructs better but pays far more KL than it saves.

# %% [markdown]
# ## 7. Honest likelihoods: the ELBO, the IWAE bound and the importance-sampled NLL
#
# A VAE's training curve shows the ELBO, but the ELBO is a *bound*. To report how likely the model finds
# test data, papers estimate $\log p(x)$ itself by **importance sampling** with the encoder as proposal.
# With $K$ samples $z_k \sim q(z \mid x)$,
#
# $$\log p(x) = \log \mathbb E_{q}\Big[\frac{p(x, z)}{q(z \mid x)}\Big]
# \approx \log \frac1K \sum_{k=1}^K \frac{p(x \mid z_k)\, p(z_k)}{q(z_k \mid x)} =: \hat{\mathcal L}_K(x).$$
#
# By Jensen, $\mathbb E[\hat{\mathcal L}_K]$ is still a lower bound, the **IWAE bound** $\mathcal L_K$ (Burda,
# Grosse & Salakhutdinov, 2016), and $\mathcal L_1 = \mathcal L \le \mathcal L_2 \le \dots \le \mathcal L_K \to \log p(x)$.
# With $K$ in the thousands it is the standard *importance-sampled NLL*. (The sum is computed in log space
# with `log_mean_exp`: the weights are like $e^{-100}$.) The bound can also be **trained**: an IWAE
# maximises $\mathcal L_K$ instead of $\mathcal L_1$, which rewards encoders that cover the posterior.
#
# The setting is Tomczak's *Deep Generative Modeling* code for the 8x8 digits: 1,000 training, 350
# validation and 447 test images, pixels with 17 grey levels modelled by a **categorical** decoder, an MLP
# with 16 latents. The likelihood is discrete, so the NLL is an honest code length, in **nats per image**
# (bits/dim = nats / (64 ln 2)). Tomczak's VAE reaches about 100.5 nats; our target is **at most 100**.
#
# A model with 440,000 parameters over-fits 1,000 digits within a few hundred steps, so we keep the weights
# with the best validation likelihood (*early stopping*, `V.BestOnValidation`) and a strong weight decay.

# %%
likelihood_steps = config.budget(full=2000, quick=20)
eval_every = config.budget(full=100, quick=10)
k_val = config.budget(full=50, quick=5)


def train_digits(objective, k=1):
    """Train digits_vae() with the given objective; keep the weights with the best validation log-likelihood."""
    torch.manual_seed(0)
    model = digits_vae()
    keeper = V.BestOnValidation(lambda m: m.log_likelihood(x_val, k=k_val, generator=generator).mean(), every=eval_every)
    result = train.fit(model, V.loss_fn(objective, k=k), digits_loader, steps=likelihood_steps, lr=1e-3,
                       weight_decay=0.5, device=DEVICE, log_every=eval_every, callback=keeper,
                       desc=f"{objective} (k={k})")
    keeper.restore(model)
    print(f"{objective}: best validation step {keeper.best_step}, {result.seconds:.0f} s")
    return model, keeper


vae_digits, vae_keeper = train_digits("elbo")
iwae_digits, iwae_keeper = train_digits("iwae", k=10)

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, keeper in [("VAE (ELBO)", vae_keeper), ("IWAE (k=10)", iwae_keeper)]:
    steps_seen, scores = zip(*keeper.scores)
    ax.plot(steps_seen, [-s for s in scores], label=name)
    ax.axvline(keeper.best_step, ls=":", color=ax.lines[-1].get_color())
ax.set(xlabel="step", ylabel=f"validation NLL, K={k_val} (nats)", title="over-fitting, and the weights we keep")
ax.set_ylim(top=min(130, ax.get_ylim()[1]))
ax.legend();

# %% [markdown]
# Now the test split. For each model: the ELBO (with an exact KL), IWAE bounds with growing $K$, and the
# importance-sampled log-likelihood with $K$ in the thousands (`model.log_likelihood`, computed in chunks).

# %%
k_values = [1, config.budget(full=10, quick=2), config.budget(full=100, quick=5)]
k_nll = config.budget(full=2000, quick=20)
test_elbo, bounds, test_nll = {}, {}, {}
for name, model in [("VAE", vae_digits), ("IWAE", iwae_digits)]:
    with torch.no_grad():
        test_elbo[name] = model.elbo(x_dtest, num_samples=10, generator=generator).mean().item()
        bounds[name] = [model.log_likelihood(x_dtest, k=k, generator=generator).mean().item() for k in k_values]
        test_nll[name] = -model.log_likelihood(x_dtest, k=k_nll, generator=generator).mean().item()
        bounds[name].append(-test_nll[name])
k_values.append(k_nll)
print(f"{'model':6} {'-ELBO':>8} {'NLL (K=' + str(k_nll) + ')':>14} {'bits/dim':>9}   test split, nats per image")
for name in test_nll:
    bpd = float(nats_to_bits_per_dim(test_nll[name], 64))
    print(f"{name:6} {-test_elbo[name]:8.2f} {test_nll[name]:14.2f} {bpd:9.3f}")
nll_vae, nll_iwae = test_nll["VAE"], test_nll["IWAE"]
print(f"IWAE - VAE: {nll_iwae - nll_vae:+.2f} nats; notebook 02's best density model (a Gaussian mixture) scored "
      "127.8 nats per image (a dequantisation bound, bench/RESULTS.md)")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, values in bounds.items():
    ax.plot(k_values, [-v for v in values], "o-", label=f"{name}-trained")
ax.set(xscale="log", xlabel="K (importance samples)", ylabel="-IWAE bound (nats per image)",
       title="the bound tightens as K grows")
ax.legend();

# %% [markdown]
# Three things to read off:
#
# * **The ELBO understates the model.** For the same weights, the importance-sampled NLL is a few nats
#   better than $-$ELBO (compare the two columns of the table): the ELBO pays for the gap $\operatorname{KL}(q \,\Vert\, p(z \mid x))$, the likelihood does not.
#   Comparing an ELBO of one model with an importance-sampled NLL of another is comparing apples and pears.
# * **The IWAE objective buys likelihood.** Trained on $\mathcal L_{10}$, the same architecture reaches a
#   better test NLL (in this setting by about 1 to 2 nats), while its *ELBO* is typically worse: an IWAE's
#   encoder spreads out to cover the posterior, which the importance weights correct for but the ELBO
#   punishes.
# * **Latent variables pay.** Notebook 02's Gaussian mixture needed about 128 nats for the same test digits;
#   the VAE needs well under 100 (in our full-mode runs about 94; quick mode trains far too briefly to get there).
#
# `bench/vae.py` measures both architectures (MLP and convolutional), both datasets and both objectives, with
# training times, and records them in `bench/RESULTS.md`.

# %% [markdown]
# ## Common misconceptions
#
# * *"A VAE is an autoencoder with noise."* The noise is the smaller part. The prior $p(z)$ and the KL term
#   are what make the latent space a place you can sample from; without them (section 2) random codes
#   decode to rubbish. **A plain autoencoder is not a generative model.**
# * *"The VAE's loss is the negative log-likelihood."* It is the negative ELBO, an upper bound on the NLL.
#   Report the importance-sampled NLL ($K$ in the thousands) when you claim a likelihood, and say which you report.
# * *"You can backpropagate through sampling."* Not through `torch.normal(mu, sigma)`: the sample is not a
#   differentiable function of its parameters. Write it as $\mu + \sigma \varepsilon$ (reparameterisation).
# * *"A KL near zero means the model fits well."* A KL near zero means the code carries no information:
#   posterior collapse. Look at the KL per dimension and the number of active units.
# * *"Larger $\beta$ gives a better model."* Larger $\beta$ trades reconstruction and likelihood for a simpler
#   code. The $\beta$-weighted objective is the tightest bound on $\log p(x)$ at $\beta = 1$ (looser for
#   $\beta > 1$, not a bound for $\beta < 1$), so likelihoods are always reported with $\beta = 1$.
# * *"The IWAE bound with large K is exact."* It is a lower bound (in expectation) for every finite K, with a gap
#   that shrinks roughly like $1/K$; for the same model, its expectation is always at least the ELBO. A single
#   estimate can fall below either, by Monte Carlo noise.

# %% [markdown]
# ## Self-checks

# %%
# Self-check 1: the bounds are ordered, ELBO <= IWAE_K <= ... (the K=1 "bound" is a noisy ELBO estimate).
for name, values in bounds.items():
    assert values[-1] >= values[1] - 0.5, f"{name}: the K={k_values[-1]} bound should not be below K={k_values[1]}"
    assert -test_nll[name] >= test_elbo[name] - 0.5, f"{name}: the importance-sampled log p(x) should be >= the ELBO"
# Self-check 2: the VAE's KL keeps its codes near the prior, unlike the autoencoder's.
assert vae_mu.abs().mean() < 3, "the VAE's posterior means should lie in the bulk of N(0, I)"
# Self-check 3: beta trades information for simplicity: the KL falls as beta grows.
kls = [row[2] for row in beta_rows]
assert kls[0] >= kls[-1], f"KL should fall as beta grows, got {kls}"
if not config.is_quick():
    assert nll_vae <= 100.0, f"the VAE should reach <= 100 nats on the 8x8 test digits, got {nll_vae:.1f}"
    assert nll_iwae < nll_vae, "the IWAE-trained model should have the better test NLL"
    assert beta_rows[0][4] > beta_rows[1][4] > beta_rows[2][4], "larger beta should leave fewer informative dimensions"
print("self-checks passed")

# %% [markdown]
# ## Summary
#
# * A latent variable model generates by $z \sim p(z)$, $x \sim p_\theta(x \mid z)$; its likelihood is an intractable integral.
# * The ELBO $\mathbb E_q[\log p(x \mid z)] - \operatorname{KL}(q(z \mid x) \,\Vert\, p(z)) = \log p(x) - \operatorname{KL}(q \,\Vert\, p(z \mid x))$
#   is a tractable lower bound; the encoder $q$ is trained to close the gap.
# * The reparameterisation $z = \mu + \sigma \varepsilon$ gives low-variance gradients through the sampling step.
# * $\beta$ trades reconstruction for a simpler code; too much pressure (or too strong a decoder) collapses the posterior.
#   Likelihoods are always evaluated with $\beta = 1$, the tightest bound.
# * Honest numbers: importance-sampled NLL with thousands of samples, in nats per image or bits/dim, on a fixed test split.
#
# **Exercises:** `exercises/04_vae.ipynb` (the closed-form KL, the reparameterisation trick, the IWAE bound from
# log-weights, and active units). **Next:** 05 · VQ-VAE, where the latent code becomes discrete.

# %%
clock.report();
