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
# # 03 · Autoregressive models: from counting bigrams to a GPT that writes names
#
# An **autoregressive** model generates data one piece at a time, each piece conditioned on
# everything generated so far. It is the idea behind every large language model, behind PixelCNN
# and WaveNet, and behind the priors of VQ-VAEs (notebook 05). In this notebook we build four such
# models of the same data, 4,130 real first names from the US census, each a little smarter than the
# last, and measure exactly how much better each one is.
#
# **After this notebook you will be able to**
# 1. write the probability of a sequence with the **chain rule** and explain why autoregressive models
#    give **exact likelihoods**;
# 2. build a **bigram** model by counting, build the same model as a one-layer neural network trained
#    by gradient descent, and show that the two agree;
# 3. explain what the **MLP** of Bengio et al. (2003) adds: learned character embeddings over a fixed context;
# 4. explain **causal self-attention** and read an attention pattern, and train a small **GPT**;
# 5. compare models by held-out **negative log-likelihood** in nats and bits per character and by **perplexity**;
# 6. control sampling with **temperature, top-k and top-p**, and measure how many samples are new names
#    rather than copies of the training data.
#
# Prerequisites: notebook 01 (cross-entropy, KL) and 02 (maximum likelihood, held-out NLL). All models
# live in `course_lib.models.autoregressive`; attention lives in `course_lib.nn.attention`.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from course_lib import config, device

clock = config.NotebookClock("03 autoregressive models", full_minutes=10)
DEVICE = device.get_device()
generator = config.seed_everything(0)
print(f"mode: {config.mode()}, device: {device.describe(DEVICE)}")

# %%
from course_lib import data, train, viz
from course_lib.data.chars import CharVocab, context_windows, names_to_tensors, write_names_file
from course_lib.models import autoregressive as ar
from course_lib.nn.attention import attention

# %% [markdown]
# ## 1. The data: names as sequences of characters
#
# `data.names` gives a fixed split of the 5,163 distinct first names in the 1990 US census: 4,130 for
# training, 516 for validation (to choose settings) and 517 for the final test. We never look at the
# test names while building a model.

# %%
train_names, val_names, test_names = (data.names(split, kind="first") for split in ("train", "val", "test"))
print(f"{len(train_names):,} train / {len(val_names)} val / {len(test_names)} test names, e.g. {', '.join(train_names[:10])}")
lengths = np.array([len(w) for w in train_names])
print(f"lengths {lengths.min()}..{lengths.max()} letters, mean {lengths.mean():.2f}")

# %% [markdown]
# A model needs integers, not letters. The vocabulary has the 26 letters plus one special token `.`
# (id 0) that marks both the **start** and the **end** of a name. The end token matters: a model of
# names must also decide *when to stop*. A name of $n$ letters is therefore $n + 1$ predictions:
#
# | position $t$ | 1 | 2 | 3 | 4 | 5 |
# |---|---|---|---|---|---|
# | input (what the model has seen) | `.` | `e` | `m` | `m` | `a` |
# | target (what it must predict) | `e` | `m` | `m` | `a` | `.` |

# %%
vocab = CharVocab()
x_emma, y_emma = names_to_tensors(["emma"], vocab)
print(vocab)
print("inputs :", x_emma[0].tolist(), "=", " ".join(vocab.itos[i] for i in x_emma[0]))
print("targets:", y_emma[0].tolist(), "=", " ".join(vocab.itos[i] for i in y_emma[0]))

# %% [markdown]
# The splits can be written as plain text, one name per line, which is the format other tools read
# (for example karpathy/makemore, which `bench/autoregressive_names.py` compares with on exactly
# these names). We write to a temporary folder only, to show the format:

# %%
import tempfile
from pathlib import Path

with tempfile.TemporaryDirectory() as folder:
    path = write_names_file(train_names, Path(folder) / "names_train.txt")
    print(path.read_text()[:40].replace("\n", " | "), "...")

# %% [markdown]
# ## 2. The math: the chain rule and exact likelihoods
#
# Any distribution over sequences can be written, **without any assumption**, as a product of conditionals
# (the chain rule of probability). For a name of $n$ letters $x_1, \dots, x_n$ we append the end token
# $x_{n+1} = \texttt{.}$, so that the length is part of what is modelled:
#
# $$
# p(x) = p(x_1, \dots, x_n, x_{n+1} = \texttt{.}) = p(x_1)\, p(x_2 \mid x_1)\, p(x_3 \mid x_1, x_2) \cdots
#      = \prod_{t=1}^{n+1} p(x_t \mid x_{<t}),
# $$
#
# where $x_{<t} = (x_1, \dots, x_{t-1})$ (every conditional also sees the start token, which we leave out of the
# notation). An autoregressive model
# parameterises each conditional with a network $p_\theta(x_t \mid x_{<t}) = \operatorname{softmax}(f_\theta(x_{<t}))_{x_t}$.
# Models differ only in **how much of the past they look at**: a bigram only at $x_{t-1}$, an MLP at the
# last few characters, a Transformer at all of them.
#
# Taking logs turns the product into a sum, so the negative log-likelihood of a name is the sum of the
# next-character cross-entropies:
#
# $$
# -\log p_\theta(x) = \sum_{t=1}^{n+1} -\log p_\theta(x_t \mid x_{<t}).
# $$
#
# **Why the likelihood is exact.** Each factor is a softmax over the 27 tokens, so it sums to 1 over
# $x_t$; summing the product over $x_{n+1}$, then $x_n$, and so on back to $x_1$ gives 1. (With names of
# *every* length, the probabilities of all finite names add up to 1 as long as the model stops with
# probability 1; we check this numerically for the bigram in section 3.) Nothing is approximated: the
# number we compute is $\log p_\theta(x)$ itself, not a bound or a Monte Carlo estimate. No latent
# variable has to be integrated out (a VAE only gets a lower bound, notebook 04), no density has to
# be normalised (an energy model cannot), and nothing is adversarial (a GAN has no likelihood at all,
# notebook 06). The price is sequential sampling: one forward pass per character.
#
# We report held-out NLL **per character**, counting the end token as a character:
#
# $$
# \text{nats/char} = \frac{\sum_i -\log p_\theta(x^{(i)})}{\sum_i (|x^{(i)}| + 1)}, \qquad
# \text{bits/char} = \frac{\text{nats/char}}{\ln 2}, \qquad
# \text{perplexity} = e^{\text{nats/char}}.
# $$
#
# A model that knows nothing predicts each of the 27 tokens with probability $1/27$: $\log 27 = 3.30$
# nats/char, perplexity 27. Perplexity is an *effective* number of choices: a model with perplexity 6 is, on
# average, as surprised by each character as a fair choice among 6 tokens would be (a geometric mean over
# positions, not the number of candidates at any particular position).

# %%
uniform = ar.evaluate(ar.NeuralBigram(vocab.size), test_names, vocab)  # W = 0: every token 1/27
print(f"uniform model: {uniform}")
assert abs(uniform.nats_per_char - math.log(27)) < 1e-6 and abs(uniform.perplexity - 27) < 1e-4

# %% [markdown]
# ## 3. The bigram model by counting
#
# The simplest autoregressive model looks only at the previous character. Its maximum-likelihood
# estimate is a table of counts: with $N_{ij}$ the number of times $j$ follows $i$ in the training names,
#
# $$
# \hat p(x_t = j \mid x_{t-1} = i) = \frac{N_{ij} + \alpha}{\sum_{j'} N_{ij'} + 27\alpha}.
# $$
#
# With $\alpha = 0$ this is exactly the maximum-likelihood estimate; but then any pair never seen in
# training (say `q` followed by `x`) gets probability 0, and a single such pair in a test name gives it
# infinite NLL. Adding $\alpha$ **pseudo-counts** to every cell (Laplace smoothing) fixes that.

# %%
counts = ar.CountBigram(vocab.size, alpha=1.0).fit_names(train_names, vocab)
N = counts.counts.numpy()
fig, ax = plt.subplots(figsize=(7.5, 7))
ax.imshow(np.log1p(N), cmap="Blues")
ax.set_xticks(range(27), vocab.itos)
ax.set_yticks(range(27), vocab.itos)
ax.set_xlabel("next character $x_t$")
ax.set_ylabel("previous character $x_{t-1}$")
ax.set_title("bigram counts $N_{ij}$ in the training names (colour: log(1 + N))")
for i in range(27):
    for j in range(27):
        if N[i, j] > 0:
            ax.text(j, i, int(N[i, j]), ha="center", va="center", fontsize=5,
                    color="white" if N[i, j] > 200 else "black")
plt.tight_layout()
plt.show()

# %% [markdown]
# Read a row: after `q` comes almost only `u`; the first row (after the start token `.`) is the
# distribution of first letters; the first column (before the end token) says which letters names
# end with: `a`, `e`, `n`, `y`. How much smoothing is best is a question for the **validation** names:

# %%
alphas = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
val_nll = [ar.evaluate(ar.CountBigram(vocab.size, a).fit_names(train_names, vocab), val_names, vocab).nats_per_char
           for a in alphas]
alpha = alphas[int(np.argmin(val_nll))]
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.semilogx(alphas, val_nll, "o-")
ax.axvline(alpha, color="gray", ls=":")
ax.set_xlabel(r"pseudo-count $\alpha$")
ax.set_ylabel("validation nats/char")
ax.set_title(r"smoothing is a regulariser: choose $\alpha$ on held-out names")
plt.tight_layout()
plt.show()
bigram = ar.CountBigram(vocab.size, alpha=alpha).fit_names(train_names, vocab)
bigram_test = ar.evaluate(bigram, test_names, vocab)
print(f"alpha = {alpha}: test {bigram_test}")

# %% [markdown]
# **Checking the chain rule numerically.** The log-probability of `emma` is the sum of its five
# conditional log-probabilities, read off the table:

# %%
P = bigram.probs  # (27, 27): P[i, j] = p(j | i)
factors = [P[i, j].item() for i, j in zip(x_emma[0].tolist(), y_emma[0].tolist())]
for i, j, p in zip(x_emma[0].tolist(), y_emma[0].tolist(), factors):
    print(f"p({vocab.itos[j]} | {vocab.itos[i]}) = {p:.4f}")
log_p = sum(math.log(p) for p in factors)
nll_emma = ar.sequence_nll(bigram, x_emma, y_emma).item()
print(f"log p(emma) = {log_p:.4f}; the model's sequence NLL = {nll_emma:.4f}")
assert abs(log_p + nll_emma) < 1e-4

# %% [markdown]
# **Checking that the probabilities of all names sum to 1.** For a bigram we can add up the probability
# of *every possible string* of each length $n$ with matrix products: with $s$ the row of first letters,
# $L$ the letter-to-letter block of the table and $e$ the column of end probabilities,
# $P(\text{length} = n) = s\, L^{n-1} e$ (and $P(\text{length} = 0) = p(\texttt{.} \mid \texttt{.})$), while
# $s\, L^{N-1} \mathbf{1}$ is the probability that the name is still going after $N - 1$ letters. The lengths below
# $N$ plus that remainder must add up to exactly 1, and on the way we get the model's distribution of name
# lengths, which we can compare with the data's:

# %%
s, L, e = P[0, 1:], P[1:, 1:], P[1:, 0]
p_length = [P[0, 0].item()]  # the empty name: "." straight after the start
v = s.clone()  # v = s L^(n-1): probability of each letter at position n, all earlier tokens letters
for n in range(1, 60):
    p_length.append((v @ e).item())
    v = v @ L
longer = v.sum().item()  # probability that the first 59 tokens are all letters
print(f"P(length < 60) = {sum(p_length):.10f}, P(length >= 60) = {longer:.2e}, total = {sum(p_length) + longer:.12f}")
assert abs(sum(p_length) + longer - 1) < 1e-9
fig, ax = plt.subplots(figsize=(6.5, 3.2))
ax.bar(np.arange(1, 16) - 0.2, np.bincount(lengths, minlength=16)[1:16] / len(lengths), width=0.4, label="training names")
ax.bar(np.arange(1, 16) + 0.2, p_length[1:16], width=0.4, label="bigram model")
ax.set_xlabel("name length (letters)")
ax.set_ylabel("probability")
ax.set_title("a bigram cannot count: its lengths are roughly geometric")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# The bigram has no memory beyond one character, so "when to stop" depends only on the last letter:
# it produces far too many very short and very long names. Better models will fix this.
#
# ## 4. The same bigram as a neural network
#
# Now forget counting. Feed the previous character as a **one-hot** vector to a single linear layer
# with weights $W \in \mathbb{R}^{27 \times 27}$ and apply a softmax:
# $p_W(\cdot \mid i) = \operatorname{softmax}(\operatorname{onehot}(i)\, W) = \operatorname{softmax}(W_{i,:})$.
# Train $W$ by gradient descent on the cross-entropy. Smoothing has an exact counterpart: add $\alpha$
# imaginary observations of *every* pair to the loss,
#
# $$
# L(W) = \frac{1}{M}\Big[\sum_{m=1}^M -\log p_W(j_m \mid i_m) + \alpha \sum_{i, j} -\log p_W(j \mid i)\Big],
# $$
#
# whose minimum is exactly the smoothed count table. So gradient descent must end where counting
# started. We train on all $M$ training pairs at once (full-batch gradient descent) with `train.fit`:

# %%
prev, nxt = context_windows(train_names, vocab, 1)  # (M, 1) previous character, (M,) next
print(f"{len(nxt):,} training pairs")
neural_bigram = ar.NeuralBigram(vocab.size)
result = train.fit(neural_bigram, lambda m, b: ar.bigram_loss(m, b, alpha=alpha), [(prev[:, 0], nxt)],
                   steps=config.budget(full=200, quick=150), lr=0.5, device="cpu", log_every=1, desc="neural bigram")
train_nll_counts = ar.evaluate(bigram, train_names, vocab).nats_per_char
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(result.history.steps, result.history.values["nll"], label="neural bigram (gradient descent)")
ax.axhline(train_nll_counts, color="k", ls="--", label="count bigram")
ax.set_ylim(train_nll_counts - 0.05, 3.4)
ax.set_xlabel("step")
ax.set_ylabel("training nats/char")
ax.set_title("gradient descent converges to the counts")
ax.legend()
plt.tight_layout()
plt.show()
neural_probs = F.softmax(neural_bigram.W.detach().double(), dim=1)
gap = (neural_probs - bigram.probs).abs().max().item()
neural_test = ar.evaluate(neural_bigram, test_names, vocab)
print(f"largest difference between the two tables: {gap:.2e}")
print(f"test: counts {bigram_test.nats_per_char:.5f}, neural {neural_test.nats_per_char:.5f} nats/char")

# %% [markdown]
# Same model, two ways of fitting it. Counting is faster here, but the neural version is the one that
# **generalises to richer inputs**: to condition on more than one character we only need a network
# with a bigger input, whereas a count table over 3 previous characters would have $27^3 \times 27 \approx 530{,}000$
# cells for only about 29,000 training characters: almost all of them would be empty.
#
# ## 5. A longer context: the MLP of Bengio et al. (2003)
#
# Bengio, Ducharme, Vincent and Jauvin's neural probabilistic language model looks at the last $n$
# characters. Each character gets a learned **embedding** (a row of a matrix $C$), the $n$ embeddings are
# concatenated and passed through a hidden layer:
#
# $$
# e = [C(x_{t-n}), \dots, C(x_{t-1})], \qquad h = \tanh(He + d), \qquad
# p(x_t \mid x_{t-n:t-1}) = \operatorname{softmax}(Uh + b).
# $$
#
# Because characters are represented by learned vectors rather than by separate rows of a table, what the model
# learns about one context can carry over to similar contexts it has never seen, and the number of parameters
# grows *linearly* with $n$, not exponentially.
# Every model from now on is trained with the same loss, `ar.next_token_loss` (the mean cross-entropy over
# all non-padded positions of a batch of whole names), and the same recipe: AdamW with weight decay, gradient
# clipping, and an exponential moving average (EMA) of the weights, which is what we evaluate (section 6
# says why). A callback records the validation NLL during training.

# %%
block_size = max(len(w) for w in train_names + val_names + test_names) + 1  # longest name + end token
x_train, y_train = names_to_tensors(train_names, vocab, length=block_size)  # (4130, 12) each
loader = data.InMemoryLoader(x_train, y_train, batch_size=64, device=DEVICE)


def validation_tracker(every, steps):
    """A train.fit callback that records the validation nats/char every `every` steps and at the end."""
    curve = {"step": [], "val": []}

    def callback(step, model, history):
        if step % every == 0 or step == steps:
            curve["step"].append(step)
            curve["val"].append(ar.evaluate(model, val_names, vocab).nats_per_char)

    return curve, callback


mlp_steps = config.budget(full=6000, quick=40)
torch.manual_seed(0)
mlp = ar.MLPLanguageModel(vocab.size, context=4, embed_dim=16, hidden=256, dropout=0.1)
mlp_val, mlp_callback = validation_tracker(config.budget(full=500, quick=20), mlp_steps)
mlp_result = train.fit(mlp, ar.next_token_loss, loader, steps=mlp_steps, lr=3e-3, weight_decay=0.1,
                       clip_grad_norm=1.0, ema_decay=0.998, device=DEVICE, desc="MLP", callback=mlp_callback)
mlp_ema = mlp_result.ema.module  # the exponential moving average of the weights: see below
mlp_test = ar.evaluate(mlp_ema, test_names, vocab)
print(f"MLP ({ar.count_parameters(mlp):,} parameters, {mlp_result.seconds:.0f} s): test {mlp_test}")

# %% [markdown]
# ## 6. Attention: looking at the whole past
#
# The MLP sees a fixed window of $n$ characters. To see *every* earlier character, whatever the length,
# we need an operation that turns a variable number of inputs into one vector. **Attention** does it with a
# weighted average whose weights the network computes. Each position $t$ emits a *query* $q_t$, every
# position $s$ a *key* $k_s$ and a *value* $v_s$ (three linear maps of its embedding); position $t$ then
# reads
#
# $$
# \operatorname{out}_t = \sum_{s \le t} a_{ts}\, v_s, \qquad
# a_{ts} = \frac{\exp(q_t \cdot k_s / \sqrt d)}{\sum_{s' \le t} \exp(q_t \cdot k_{s'} / \sqrt d)}.
# $$
#
# In matrix form $\operatorname{softmax}(QK^\top/\sqrt d + M)\,V$, where the **causal mask** $M$ is $-\infty$ above
# the diagonal: position $t$ may not look at $s > t$, the characters it is supposed to predict. Dividing by
# $\sqrt d$ keeps the scores of order 1 at initialisation (a dot product of two $d$-dimensional vectors with
# unit-variance entries has variance $d$), so the softmax is not saturated. Let us check the
# formula by hand on three positions:

# %%
torch.manual_seed(0)
q, k, v = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 2)
out, weights = attention(q, k, v, causal=True, return_weights=True)
scores = q @ k.T / math.sqrt(4)
scores = scores.masked_fill(torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf"))
by_hand = scores.softmax(dim=-1)
print("attention weights (rows: query t, columns: key s):\n", by_hand.numpy().round(3))
assert torch.allclose(weights, by_hand, atol=1e-6) and torch.allclose(out, by_hand @ v, atol=1e-6)
assert torch.allclose(out[0], v[0]), "the first position can only attend to itself"

# %% [markdown]
# **The GPT.** A Transformer block refines each position's vector in two steps, attention (gather
# information from earlier positions) and a small MLP (process it), each added to a **residual stream**
# and each preceded by a LayerNorm (the "pre-LN" arrangement of GPT-2, which trains stably without a
# learning-rate warm-up):
#
# $$
# h \leftarrow h + \operatorname{MultiHeadAttention}(\operatorname{LN}(h)), \qquad
# h \leftarrow h + \operatorname{MLP}(\operatorname{LN}(h)).
# $$
#
# The input is a token embedding plus a **position embedding** (attention itself does not know the order of
# its inputs), and the output is a linear read-out to 27 logits. Multi-head attention runs 4 attentions of size
# 16 side by side, so different heads can track different things. The weights start small
# ($\mathcal N(0, 0.02^2)$, residual projections scaled by $1/\sqrt{2L}$) so that the residual stream does not
# blow up with depth, and the read-out starts at zero so the first predictions are uniform (loss $\log 27$).
#
# Thanks to the mask, one forward pass computes all 12 next-character predictions of a name in parallel,
# each seeing only its past. Changing a *later* character must not change any *earlier* output; we check
# that on the untrained model:

# %%
torch.manual_seed(0)
gpt = ar.GPT(vocab.size, block_size, n_layer=4, n_head=4, n_embd=64, dropout=0.1).to(DEVICE)
gpt.eval()
with torch.no_grad():
    x = names_to_tensors(["isabella"], vocab, length=block_size)[0].to(DEVICE)
    changed = x.clone()
    changed[0, 5] = vocab.stoi["z"]  # "isabzlla": position 5 changes
    delta = (gpt(changed) - gpt(x)).abs().amax(dim=-1)[0]
print("largest change of the logits at each position:", delta.cpu().numpy().round(6))
assert delta[:5].max() == 0, "positions before the change must not see it"
print(f"{ar.count_parameters(gpt):,} parameters; initial loss {ar.next_token_loss(gpt, (x_train[:256].to(DEVICE), y_train[:256].to(DEVICE))).item():.4f} (log 27 = {math.log(27):.4f})")

# %% [markdown]
# Training uses the same loss, loop and recipe as the MLP. The training set is tiny for a Transformer (about
# 29,000 characters for 200,000 parameters), so regularisation matters: dropout 0.1, weight decay 0.1, and an
# exponential moving average (EMA) of the weights, $\bar\theta \leftarrow 0.998\,\bar\theta + 0.002\,\theta$ after
# every step, which we evaluate instead of the last, noisy iterate. In full mode this cell takes a few minutes
# on a 2-core laptop CPU (the progress bar shows the estimate for your machine).

# %%
gpt_steps = config.budget(full=5000, quick=30)
gpt_val, gpt_callback = validation_tracker(config.budget(full=500, quick=15), gpt_steps)
gpt_result = train.fit(gpt, ar.next_token_loss, loader, steps=gpt_steps, lr=1e-3, weight_decay=0.1,
                       clip_grad_norm=1.0, ema_decay=0.998, device=DEVICE, desc="GPT", callback=gpt_callback)
gpt_ema = gpt_result.ema.module
gpt_test = ar.evaluate(gpt_ema, test_names, vocab)
print(f"GPT ({ar.count_parameters(gpt):,} parameters, {gpt_result.seconds:.0f} s): test {gpt_test}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
for ax, res, val, name in [(axes[0], mlp_result, mlp_val, "MLP"), (axes[1], gpt_result, gpt_val, "GPT")]:
    viz.plot_history(res.history, keys=["loss"], ax=ax, title=f"{name}: training loss (minibatch, dropout on)")
    ax.plot(val["step"], val["val"], "o-", color="C3", label="validation nats/char")
    ax.axhline(bigram_test.nats_per_char, color="gray", ls=":", label="bigram (test)")
    ax.set_ylim(1.5, 3.4)
    ax.set_xlabel("step")
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### What does the GPT attend to?
#
# Below, each panel is one attention head of the first and of the last layer, for the test name
# `elisabeth`, which the model has never seen. Row $t$ shows where position $t$ (whose next character is being
# predicted) looks; everything above the diagonal is zero because of the mask. Patterns to look for (which
# ones appear depends on the run): heads that look at the current or previous character (a learned
# bigram/trigram), heads that look back to the start token (a way to keep track of how far into the name we
# are), and heads that spread their attention over the whole prefix. After a short quick-mode run the
# patterns are still close to uniform averages over the past.

# %%
word = "elisabeth"  # a test name
x_word = names_to_tensors([word], vocab)[0].to(DEVICE)
with torch.no_grad():
    _, maps = gpt_ema(x_word, return_attention=True)
labels = ["."] + list(word)
fig, axes = plt.subplots(2, gpt.n_head, figsize=(3.2 * gpt.n_head, 6.6))
for row, layer in enumerate([0, gpt.n_layer - 1]):
    for h in range(gpt.n_head):
        ax = axes[row, h]
        ax.imshow(maps[layer][0, h].cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(f"layer {layer + 1}, head {h + 1}", fontsize=10)
        if h == 0:
            ax.set_ylabel("query: position predicting the next char")
        if row == 1:
            ax.set_xlabel("key: position attended to")
fig.suptitle(f"GPT attention patterns for '{word}' (rows sum to 1; above the diagonal is masked)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 7. Which model is best? Held-out likelihood
#
# All of them are exact likelihoods of the same test names, so their numbers are directly comparable. One
# bit/char less means the model finds the whole test set $2^{N}$ times more probable, where $N$ is its number of
# characters (end tokens included); a single name of $n$ letters becomes $2^{n+1}$ times more probable.

# %%
table = [("uniform", uniform, 0), ("bigram (counts)", bigram_test, 0),
         ("bigram (neural)", neural_test, ar.count_parameters(neural_bigram)),
         ("MLP, 4 characters", mlp_test, ar.count_parameters(mlp)), ("GPT", gpt_test, ar.count_parameters(gpt))]
print(f"{'model':20s} {'nats/char':>9s} {'bits/char':>9s} {'perplexity':>10s} {'nats/name':>9s} {'params':>8s}")
for name, r, n_params in table:
    print(f"{name:20s} {r.nats_per_char:9.4f} {r.bits_per_char:9.4f} {r.perplexity:10.2f} {r.nats_per_name:9.2f} {n_params:8,}")
fig, ax = plt.subplots(figsize=(6.5, 2.8))
ax.barh([t[0] for t in table][::-1], [t[1].bits_per_char for t in table][::-1], color="C0")
for i, (_, r, _) in enumerate(table[::-1]):
    ax.text(r.bits_per_char + 0.02, i, f"{r.bits_per_char:.3f}", va="center")
ax.set_xlabel("test bits per character (lower is better)")
ax.set_xlim(0, 5.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# A likelihood also **scores** any string. A real name that was never in the training set should be far
# more probable than a string of random letters of the same length:

# %%
for w in [test_names[0], test_names[1], "emma", "xqzvtk", "aaaaaa"]:
    xw, yw = names_to_tensors([w], vocab)
    nll_gpt = ar.sequence_nll(gpt_ema, xw.to(DEVICE), yw.to(DEVICE)).item()
    nll_bi = ar.sequence_nll(bigram, xw, yw).item()
    tag = "test name" if w in test_names else "train name" if w in train_names else "not a name"
    print(f"{w:10s} ({tag:10s}) -log p: GPT {nll_gpt:6.2f} nats, bigram {nll_bi:6.2f} nats")

# %% [markdown]
# **Where does the context help?** By the chain rule, a name's NLL is a sum of per-character terms
# $-\log p(x_t \mid x_{<t})$, so we can ask *which* predictions each model gets better at. Below, the
# test-set average of those terms is split into the first letter (no context at all, for any model),
# the letters after it, and the end token (the decision to stop).

# %%
x_test, y_test = names_to_tensors(test_names, vocab, length=block_size)
first = torch.zeros_like(y_test, dtype=torch.bool)
first[:, 0] = True
end = y_test == 0
middle = (y_test != -1) & ~first & ~end
groups = {"first letter": first, "other letters": middle, "end of name": end}
breakdown = {}
for name, model in [("bigram", bigram), ("MLP", mlp_ema), ("GPT", gpt_ema)]:
    with torch.no_grad():
        logits = model(x_test.to(DEVICE)).cpu()
    nll = F.cross_entropy(logits.transpose(1, 2), y_test.clamp_min(0), reduction="none")  # (N, T) nats
    breakdown[name] = {g: nll[mask].mean().item() for g, mask in groups.items()}
    total = sum(nll[mask].sum().item() for mask in groups.values()) / int((y_test != -1).sum())
    assert abs(total - ar.evaluate(model, test_names, vocab).nats_per_char) < 1e-4  # the parts add up
fig, ax = plt.subplots(figsize=(7, 3))
for k, (name, parts) in enumerate(breakdown.items()):
    ax.bar(np.arange(3) + (k - 1) * 0.27, list(parts.values()), width=0.27, label=name)
ax.set_xticks(range(3), [f"{g}\n({int(m.sum())} predictions)" for g, m in groups.items()])
ax.set_ylabel("mean nats per prediction")
ax.set_title("test NLL by kind of prediction")
ax.legend()
plt.tight_layout()
plt.show()
for name, parts in breakdown.items():
    print(f"{name:7s}" + "".join(f"  {g}: {v:.3f}" for g, v in parts.items()))

# %% [markdown]
# All models are about equally unsure about the first letter: only the start token is known, so the best any
# model can do is the frequency of first letters. Context pays off for the letters inside a name, and most of all for
# the **end**: a bigram can only guess from the last letter whether the name is over, while the MLP sees the
# last four letters and the GPT sees the whole name, including its length so far.
#
# **How much does attention buy here?** Compare the MLP and GPT rows of the table above rather than taking it on
# faith. Names are short (at most 11 letters, 6 on average), so a window of four characters already sees most of
# what matters, and on these data the GPT's advantage over the MLP is small: in the full-mode run recorded in
# `bench/RESULTS.md` the two are within a few thousandths of a nat per character of each other, both far ahead of
# the bigram. Attention pays off on longer sequences (sentences, code grids of images in notebook 05), where a
# fixed window cannot see the relevant context.

# %% [markdown]
# ## 8. Sampling: temperature, top-k and top-p
#
# To generate a name we start from `.` and repeatedly sample the next character from the model's
# conditional, append it, and stop at the end token. Three knobs change the distribution we sample from,
# **not** the model:
#
# * **temperature** $\tau$: sample from $q(x) \propto \exp(\ell_x/\tau)$ for logits $\ell$. $\tau = 1$ is the
#   model; $\tau < 1$ sharpens it towards the most likely characters; $\tau \to 0$ is greedy decoding (always
#   the argmax); $\tau > 1$ flattens it towards uniform.
# * **top-k**: keep only the $k$ most likely tokens, renormalise.
# * **top-p** (nucleus sampling, Holtzman et al., 2020): keep the *smallest* set of most likely tokens whose
#   probabilities add up to at least $p$, renormalise; the set is small where the model is sure and large
#   where it is not.
#
# Here is the GPT's next-character distribution after the prefix `ma`, and what each filter keeps:

# %%
prefix = torch.tensor([[0, vocab.stoi["m"], vocab.stoi["a"]]], device=DEVICE)
with torch.no_grad():
    logits = gpt_ema(prefix)[0, -1]
probs = logits.softmax(-1).cpu()
kept_k = torch.isfinite(ar.filter_logits(logits, top_k=5)).cpu()
kept_p = torch.isfinite(ar.filter_logits(logits, top_p=0.9)).cpu()
order = probs.argsort(descending=True)
fig, axes = plt.subplots(1, 2, figsize=(12, 3), sharey=True)
for ax, kept, title in [(axes[0], kept_k, "top-k, k = 5"), (axes[1], kept_p, "top-p, p = 0.9")]:
    ax.bar(range(27), probs[order], color=["C0" if kept[i] else "lightgray" for i in order])
    ax.set_xticks(range(27), [vocab.itos[i] for i in order])
    ax.set_title(f"p(next | 'ma'): {title} keeps {int(kept.sum())} characters, mass {probs[kept].sum():.2f}")
axes[0].set_ylabel("probability")
plt.tight_layout()
plt.show()

# %% [markdown]
# Now samples at several temperatures. A sample is **copied** if it is one of the training names, **held-out**
# if it is a real census name the model never saw (val or test: a sign it learned what names look like),
# and **novel** otherwise.

# %%
n_samples = config.budget(full=1000, quick=100)
settings = [dict(temperature=0.0), dict(temperature=0.5), dict(temperature=1.0), dict(temperature=1.5),
            dict(temperature=1.0, top_k=5), dict(temperature=1.0, top_p=0.9)]
novelty, distinct = {}, {}
for setting in settings:
    names = ar.sample_names(gpt_ema, vocab, n_samples, generator=torch.Generator().manual_seed(0), **setting)
    label = ", ".join(f"{k.replace('temperature', 'T').replace('_', '-')}={v}" for k, v in setting.items())
    novelty[label] = ar.sample_novelty(names, train_names, val_names + test_names)
    distinct[label] = len(set(names)) / len(names)
    print(f"{label:14s} {distinct[label]:6.1%} distinct | {' '.join(names[:12])}")

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.2))
labels = list(novelty)
bottom = np.zeros(len(labels))
for key, color in [("copied", "C7"), ("held_out", "C2"), ("novel", "C0"), ("empty", "C3")]:
    share = np.array([novelty[label][key] for label in labels])
    ax.bar([label.replace(", ", "\n") for label in labels], share, bottom=bottom, color=color, label=key.replace("_", "-"))
    bottom += share
ax.set_ylabel("share of samples")
ax.set_title("GPT samples: copied from training, real but unseen, or new")
ax.legend(loc="upper left", bbox_to_anchor=(1, 1))
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the chart from left to right (the exact shares depend on the run; quick mode trains far too briefly for
# them to mean much). Low temperature **memorises**: greedy decoding returns one single name, and at
# $\tau = 0.5$ a large share of the samples are (frequent) training names. High temperature invents freely, at
# the price of more implausible strings. At $\tau = 1$ (the model itself) many samples are new, and some are
# real census names that the model never saw in training: evidence that it learned what names look like, not a
# list. "Novel" is not the same as
# "wrong" either: 4,130 names are a small part of all plausible names; read a few of the samples above! Top-k and
# top-p cut off the unlikely tail, so they copy more than $\tau = 1$ but rarely produce implausible strings.
#
# For comparison, the samples of the bigram show what "no memory" sounds like:

# %%
print("bigram:", " ".join(ar.sample_names(bigram, vocab, 15, generator=torch.Generator().manual_seed(0))))
print("MLP   :", " ".join(ar.sample_names(mlp_ema, vocab, 15, generator=torch.Generator().manual_seed(0))))
print("GPT   :", " ".join(ar.sample_names(gpt_ema, vocab, 15, generator=torch.Generator().manual_seed(0))))

# %% [markdown]
# ## Common misconceptions
#
# * *"Autoregressive models only predict the next token; they do not give the probability of a whole
#   sequence."* They do, exactly: by the chain rule the product of the conditionals **is** the joint
#   probability, and we checked that the probabilities of all strings add up to 1.
# * *"Greedy decoding (temperature 0) gives the most probable name."* It gives the most probable character
#   at each step, which is not the same as the most probable sequence (that needs a search, e.g. beam search).
#   It also returns the same single name every time.
# * *"Temperature, top-k and top-p are part of the model / of training."* They only change how we sample.
#   Likelihoods are always evaluated with the model itself ($\tau = 1$, no filtering); a filtered distribution
#   can give probability 0 to a real name (one character outside the kept set is enough), i.e. infinite NLL.
# * *"The causal mask is only needed when generating."* It is needed in **training**: without it, position $t$
#   would see the very character it has to predict, the loss would drop to almost 0, and the model would be
#   useless at generation time, when the future is not available.
# * *"A lower training loss means a better model."* With only 29,000 characters of data a GPT can memorise: in a
#   full-mode run its training loss keeps falling after its validation NLL has flattened (compare the two curves
#   above). Only held-out likelihood ranks models.
# * *"A perplexity of 6 means the model hesitates between 6 letters at every position."* It is the exponential of
#   the average NLL, a geometric mean: the model is nearly certain at some positions (after `q`) and very unsure
#   at others (the first letter). Only *on average* is it as uncertain as a fair choice among 6.
# * *"A sample found in the training set proves memorisation."* Common names *should* be likely under a good
#   model; memorisation shows when almost *all* samples are copies (low temperature), and generalisation when
#   the model produces real names it never saw.
# * *"nats/char numbers can be compared across papers freely."* Only for the same data, the same split and the
#   same convention: here the end token counts as a character (as in makemore's loss); dropping it changes the
#   number.
#
# ## Self-checks

# %%
# Self-check 1: counting and gradient descent give the same bigram.
assert gap < 5e-3, f"the neural bigram's table differs from the counts by {gap:.2e}; it should converge to them"
assert abs(neural_test.nats_per_char - bigram_test.nats_per_char) < 5e-3
# Self-check 2: every model beats guessing by a wide margin.
assert bigram_test.nats_per_char < uniform.nats_per_char - 0.5
assert mlp_test.nats_per_char < uniform.nats_per_char and gpt_test.nats_per_char < uniform.nats_per_char
# Self-check 3: the trained GPT is still causal and sampling filters behave.
with torch.no_grad():
    changed = x_word.clone()
    changed[0, -1] = vocab.stoi["q"]
    assert torch.allclose(gpt_ema(changed)[0, :-1], gpt_ema(x_word)[0, :-1], atol=1e-5)
probs_k = ar.next_token_probs(gpt_ema, prefix, top_k=5)
assert int((probs_k > 0).sum()) == 5
assert distinct["T=0.0"] == 1 / n_samples, "greedy decoding is deterministic: every sample is the same name"
if not config.is_quick():
    # full mode: the MLP is clearly better than the bigram, on names none of them has seen
    assert mlp_test.nats_per_char < bigram_test.nats_per_char - 0.2, "the MLP should clearly beat the bigram"
    # on names this short the GPT and the MLP are close (bench/RESULTS.md): ask for "as good", within 0.02 nats/char
    assert gpt_test.nats_per_char < mlp_test.nats_per_char + 0.02, "the GPT should be at least as good as the MLP"
print("self-checks passed")

# %% [markdown]
# ## Summary
#
# * The chain rule writes any distribution over sequences as a product of next-token conditionals; modelling
#   each with a softmax gives an **exact, normalised likelihood**, and maximum likelihood becomes next-token
#   classification with the cross-entropy.
# * Counting bigrams and a one-layer network trained by gradient descent give the **same** model; the network
#   is the one that scales to longer contexts.
# * The MLP adds **embeddings** and a fixed window; the GPT replaces the window by **causal self-attention**
#   over the whole past. Both beat the bigram clearly on held-out names; on names this short the GPT is only
#   about as good as the MLP, and its advantage grows with the length of the context that matters.
# * **Temperature, top-k and top-p** trade diversity for plausibility at sampling time; low temperatures copy the
#   training data, and the share of real-but-unseen names is evidence of generalisation.
#
# `bench/autoregressive_names.py` records these test numbers (and a comparison with karpathy/makemore's
# Transformer trained on the same names for the same time) in `bench/RESULTS.md`.
#
# **Exercises:** `exercises/03_autoregressive.ipynb`: count bigrams yourself, score a name with the chain rule,
# implement temperature and top-p sampling, and write causal attention from scratch.
#
# Next: **04 · autoencoders and VAEs**, where the likelihood is no longer exact and we will need a bound.

# %%
clock.report();
