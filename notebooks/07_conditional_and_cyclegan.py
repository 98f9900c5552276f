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
# # 07 · Conditional and unpaired GANs
#
# Notebook 06 trained a generator that draws *some* digit. Here we take control: a **conditional GAN**
# draws the digit you ask for, and a **CycleGAN** translates digits between two styles, MNIST and the
# scikit-learn 8x8 digits, although nobody ever paired an MNIST digit with its 8x8 twin.
#
# **After this notebook you will be able to**
# 1. explain how a label enters both networks of a conditional GAN, and why it must enter the discriminator too;
# 2. measure whether a conditional generator obeys, with a classifier;
# 3. write down CycleGAN's adversarial, cycle-consistency and identity losses and say what each one buys;
# 4. train a CycleGAN between two unpaired digit domains, draw translation grids both ways and measure
#    how often the digit's class survives the translation.
#
# Prerequisites: notebook 06 (GANs, the non-saturating loss, the alternating step).

# %%
import matplotlib.pyplot as plt
import torch

from course_lib import config, device

clock = config.NotebookClock("07 conditional and CycleGAN", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %% [markdown]
# ## 1. The idea in words
#
# *Conditional GAN.* Give both players the label $y$. The generator gets $(z, y)$ and must draw a "7" when
# asked for a 7; the discriminator gets $(x, y)$ and asks "is this a **real 7**?". If only the generator saw
# the label, it could ignore it: a beautiful 3 would fool a label-blind discriminator just as well.
#
# *CycleGAN.* We have a pile of MNIST digits (domain A) and a pile of 8x8 digits (domain B), never the same
# digit written both ways. A generator $G: A \to B$ is trained so that its outputs look like domain B
# (adversarially), and a second generator $F: B \to A$ the other way. Looking right is not enough: $G$ could
# turn every 3 into a nice-looking 8x8 **5**. The **cycle** constraint $F(G(a)) \approx a$ forbids throwing
# the content away, because $F$ could not recover the 3 from the 5.

# %% [markdown]
# ## 2. The math
#
# **Conditional GAN** (Mirza & Osindero, 2014): the game of notebook 06 with every term conditioned on $y$,
#
# $$
# \min_G \max_D\; \mathbb E_{(x, y) \sim p_\text{data}}[\log D(x, y)] + \mathbb E_{z, y}[\log(1 - D(G(z, y), y))],
# $$
#
# whose optimal discriminator is $D^*(x, y) = p_\text{data}(x \mid y) / (p_\text{data}(x \mid y) + p_G(x \mid y))$
# for each class: the generator must match every class-conditional distribution. Our generator appends a
# learned label embedding $e_y$ to $z$; our discriminator is a *projection discriminator* (Miyato & Koyama, 2018),
#
# $$ \ell(x, y) = \psi(\phi(x)) + e_y^\top \phi(x), $$
#
# an unconditional logit plus the agreement between the image features $\phi(x)$ and a learned vector per class.
#
# **CycleGAN** (Zhu et al., 2017) trains $G: A \to B$, $F: B \to A$ and discriminators $D_A$, $D_B$ with
#
# $$
# \mathcal L = \mathcal L_\text{GAN}(G, D_B) + \mathcal L_\text{GAN}(F, D_A)
#  + \lambda_\text{cyc}\big(\mathbb E\lVert F(G(a)) - a\rVert_1 + \mathbb E\lVert G(F(b)) - b\rVert_1\big)
#  + \lambda_\text{id}\big(\mathbb E\lVert G(b) - b\rVert_1 + \mathbb E\lVert F(a) - a\rVert_1\big),
# $$
#
# with least-squares adversarial terms ($D$ minimises $\mathbb E(D(b) - 1)^2 + \mathbb E D(G(a))^2$, $G$ minimises
# $\mathbb E(D(G(a)) - 1)^2$), $\lambda_\text{cyc} = 10$, $\lambda_\text{id} = 5$. A check of the cycle term: a
# pair of generators that each add $s$ to every pixel misses the round trip by $2s$ per pixel in each direction,
# so the cycle loss is $4s$; the identity pair has cycle loss 0.

# %%
from torch import nn

from course_lib import checkpoints, data, metrics, viz
from course_lib.models import cyclegan as cyclegan_lib
from course_lib.models import gan as gan_lib


class AddConstant(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, x):
        return x + self.s


a_check, b_check = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
shifted = cyclegan_lib.CycleGAN(AddConstant(0.1), AddConstant(0.1), nn.Identity(), nn.Identity())
identity = cyclegan_lib.CycleGAN(nn.Identity(), nn.Identity(), nn.Identity(), nn.Identity())
print(f"cycle loss: shift pair {shifted.cycle_loss(a_check, b_check):.4f} (4s = 0.4), "
      f"identity pair {identity.cycle_loss(a_check, b_check):.4f}")
assert abs(shifted.cycle_loss(a_check, b_check).item() - 0.4) < 1e-5
assert identity.cycle_loss(a_check, b_check).item() == 0.0

# %% [markdown]
# ## 3. A conditional GAN that writes the digit you ask for
#
# Same DCGAN networks as notebook 06, with the label going into both. Training it to obey reliably takes
# longer than a lab session on a CPU, so we load weights made by `scripts/train_gans.py` (if they are missing,
# `load_or_train` trains here, more briefly and with worse results). Each row below asks for one digit.

# %%
mnist_train = data.mnist("train", value_range="symmetric")
spec = gan_lib.MNIST_GANS["cgan_mnist"]


def train_cgan_now(model):
    """Fallback when no shipped weights exist."""
    loader = data.InMemoryLoader(mnist_train.x, mnist_train.y, batch_size=spec["batch_size"], device=DEVICE)
    result = gan_lib.train_gan(model, loader, steps=config.budget(full=1500, quick=8), loss="nonsaturating",
                               lr_g=spec["lr_g"], lr_d=spec["lr_d"], betas=spec["betas"], ema_decay=spec["ema_decay"],
                               time_limit=config.budget(full=180, quick=30), desc="conditional GAN (fallback)")
    result.ema.copy_to(model.generator)
    return model


cgan, source = checkpoints.load_or_train("cgan_mnist", gan_lib.build_mnist_gan("cgan_mnist"), train_cgan_now)
cgan.to(DEVICE)
print(f"conditional GAN weights: {source}")
asked = torch.arange(10).repeat_interleave(10)  # ten of each digit, one digit per row
grid = cgan.sample(100, labels=asked, generator=torch.Generator().manual_seed(0))
viz.show_images(grid, nrow=10, value_range="symmetric", title="row k: the generator asked for digit k");

# %% [markdown]
# **Does it obey?** We ask for each digit equally often and let the course's MNIST classifier read the results.
# The share of samples read as the requested digit is the *label agreement*; the confusion matrix shows which
# requests fail.

# %%
n_ask = config.budget(full=10_000, quick=500)
requested = torch.arange(n_ask) % 10
samples = ((cgan.sample(n_ask, labels=requested, generator=torch.Generator().manual_seed(1)).cpu() + 1) / 2).clamp(0, 1)
read = metrics.extract_logits(samples).argmax(1)
agreement = (read == requested).float().mean().item()
confusion = torch.zeros(10, 10)
confusion.index_put_((requested, read), torch.ones(n_ask), accumulate=True)
print(f"label agreement: {agreement:.1%} of {n_ask:,} samples")
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.imshow(confusion / confusion.sum(1, keepdim=True), cmap="Blues", vmin=0, vmax=1)
ax.set_xlabel("digit the classifier reads")
ax.set_ylabel("digit requested")
ax.set_xticks(range(10))
ax.set_yticks(range(10))
ax.set_title("conditional GAN: requested vs read");

# %% [markdown]
# One $z$, ten labels: with the noise fixed, the label changes *which* digit is drawn, while $z$ tends to keep
# the *style* (slant, thickness) the same across the row:

# %%
z_style = cgan.sample_latent(6, generator=torch.Generator().manual_seed(3)).repeat_interleave(10, dim=0)
with torch.no_grad():
    styles = cgan.generator.eval()(z_style, torch.arange(10).repeat(6).to(DEVICE))
viz.show_images(styles, nrow=10, value_range="symmetric", title="each row: one z, digits 0-9");

# %% [markdown]
# ## 4. CycleGAN between two digit domains that were never paired
#
# Domain A: MNIST. Domain B: the 8x8 digits, resized to 20x20 and centred in 28x28 like MNIST
# (`cyclegan_lib.digits8x8_to_28`): blocky, blurry, thick strokes. We shuffle both sets independently: the
# loaders never meet, so no pair is ever shown.

# %%
digits_train = data.digits8x8("train", value_range="symmetric")
domain_a = mnist_train.x
domain_b = cyclegan_lib.digits8x8_to_28(digits_train.x)
fig, axes = plt.subplots(1, 2, figsize=(10, 2.2))
viz.show_images(domain_a[:16], nrow=16, value_range="symmetric", ax=axes[0], title="domain A: MNIST")
viz.show_images(domain_b[:16], nrow=16, value_range="symmetric", ax=axes[1], title="domain B: 8x8 digits at 28x28")
plt.tight_layout()

# %%
torch.manual_seed(0)
cyclegan = cyclegan_lib.CycleGAN(width=16, blocks=3)
loader_a = data.InMemoryLoader(domain_a, batch_size=32, device=DEVICE, seed=1)
loader_b = data.InMemoryLoader(domain_b, batch_size=32, device=DEVICE, seed=2)
result_cycle = cyclegan_lib.train_cyclegan(cyclegan, loader_a, loader_b, steps=config.budget(full=3000, quick=6),
                                           lr=2e-4, log_every=config.budget(full=50, quick=3),
                                           time_limit=config.budget(full=300, quick=30), desc="CycleGAN")
print(f"{result_cycle.steps} steps in {result_cycle.seconds:.0f} s")
viz.plot_history(result_cycle.history, keys=["cycle", "identity", "g_adv", "d_loss"]);

# %% [markdown]
# **Translation grids, both ways.** Top row of each pair: inputs; bottom row: translations. Held-out digits
# of each domain.

# %%
mnist_test = data.mnist("test", value_range="symmetric")
digits_test = data.digits8x8("test", value_range="symmetric")
test_a, test_b = mnist_test.x, cyclegan_lib.digits8x8_to_28(digits_test.x)
fig, axes = plt.subplots(2, 1, figsize=(10, 3.2))
viz.show_images(torch.cat([test_a[:16], cyclegan.translate(test_a[:16], "AB").cpu()]), nrow=16,
                value_range="symmetric", clip=True, ax=axes[0], title="A -> B: MNIST (top) in the 8x8 style (bottom)")
viz.show_images(torch.cat([test_b[:16], cyclegan.translate(test_b[:16], "BA").cpu()]), nrow=16,
                value_range="symmetric", clip=True, ax=axes[1], title="B -> A: 8x8 digits (top) in the MNIST style (bottom)")
plt.tight_layout()

# %% [markdown]
# **Does the digit survive?** A translation that looks right but changes the digit is a failure the
# adversarial loss cannot see. We read each translation with the classifier of its *target* domain (the
# shipped 8x8 classifier for A -> B, after bringing the image back to 8x8; the MNIST classifier for B -> A)
# and count how often it reads the input's true label.

# %%
n_test = config.budget(full=len(test_b), quick=100)
preserved = cyclegan_lib.class_preservation(cyclegan, test_a[:n_test], mnist_test.y[:n_test], test_b[:n_test],
                                            digits_test.y[:n_test])
print(preserved)

# %% [markdown]
# A few minutes of CPU training give translations whose style is already clearly changing; how many keep
# their class depends on how far training got (compare the number above with the identity loss curve: early
# on, the generators are close to the identity, which preserves the class but not the style). CycleGAN has
# no term that *knows* about classes: preservation comes only from the cycle constraint and the
# architecture's bias towards small, local edits.

# %% [markdown]
# ## Common misconceptions
#
# * *"Conditioning the generator is enough."* If the discriminator does not see the label, nothing
#   penalises a generator that ignores it; the label must enter **both** networks.
# * *"The cycle loss makes the translation correct."* It makes it **invertible**. A generator could map every
#   3 to an 8x8 "8" and every 8 to a "3" and still satisfy the cycle; that is why we measure class
#   preservation with a classifier that was not part of training.
# * *"CycleGAN needs paired examples."* It needs two *sets*; the loaders above are shuffled independently.
# * *"Lower generator loss means better translations."* As in notebook 06, adversarial losses measure the
#   players against each other; judge the translation grids and the preservation rate.

# %% [markdown]
# ## Self-check

# %%
assert grid.shape == (100, 1, 28, 28), "the conditional generator returns one image per requested label"
assert 0.0 <= agreement <= 1.0 and confusion.sum() == n_ask
assert result_cycle.history.values["cycle"][-1] < result_cycle.history.values["cycle"][0] or config.is_quick(), (
    "the cycle loss should fall during training")
assert 0.0 <= preserved.a_to_b <= 1.0 and 0.0 <= preserved.b_to_a <= 1.0
if not config.is_quick() and source == "shipped":
    assert agreement > 0.8, f"the shipped conditional GAN should mostly obey its labels, got {agreement:.1%}"
print("self-check passed")

# %% [markdown]
# ## Summary
#
# * A conditional GAN feeds the label to both networks; a classifier's agreement with the requested label
#   measures whether the generator obeys.
# * CycleGAN learns two translations from unpaired sets: adversarial terms for style, a cycle-consistency term
#   that keeps the content recoverable, an identity term against needless changes. Whether the content (the
#   digit's class) really survives must be measured, here with the target domain's classifier.
#
# Next: **08 · diffusion models**. Exercises: `exercises/07_conditional_and_cyclegan.ipynb`.

# %%
clock.report();
