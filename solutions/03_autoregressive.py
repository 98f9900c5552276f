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
# # Exercises 03 · Autoregressive models
#
# Six questions that rebuild, by hand, the pieces of notebook 03: counting bigrams, the chain rule,
# perplexity, temperature, nucleus (top-p) sampling and causal attention (13 points in total).
#
# Replace each `# YOUR CODE HERE` / `raise NotImplementedError()` with your answer and run the test
# cell below it. A test cell that runs without an error passes the visible checks; hidden checks are
# added when your work is graded. Use plain PyTorch: the point is to write each formula yourself, so
# do **not** call the `course_lib.models.autoregressive` or `course_lib.nn.attention` functions that
# solve the question (the tests use them to check you).
#
# Conventions (as in the notebook): the vocabulary is `.` (id 0, the start and end token) followed by
# `a`..`z` (ids 1..26); a name $w = c_1 \dots c_n$ is modelled as the $n + 1$ predictions
# $p(c_1 \mid .)\, p(c_2 \mid . c_1) \cdots p(. \mid . c_1 \dots c_n)$.

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math

import torch
import torch.nn.functional as F

from course_lib import config, data
from course_lib.data.chars import CharVocab, names_to_tensors

config.seed_everything(0)
vocab = CharVocab()  # vocab.stoi["a"] == 1, vocab.itos[0] == "."
train_names = data.names("train")
test_names = data.names("test")
print(f"{vocab}; {len(train_names)} training names, e.g. {train_names[:5]}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "q1_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q1 · Count the bigrams (2 points)
#
# Complete `bigram_counts(words)`: return an `int64` tensor `N` of shape `(27, 27)` where `N[i, j]` is
# the number of times token `j` directly follows token `i` in the sequences `. c_1 ... c_n .` of all the
# words. For `["ab"]` the pairs are `.a`, `ab`, `b.`, so `N[0, 1] = N[1, 2] = N[2, 0] = 1` and all other
# entries are 0.

# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bigram_counts(words):
    """(27, 27) int64 counts of adjacent token pairs in ". w ." over the words."""
    ### BEGIN SOLUTION
    N = torch.zeros(27, 27, dtype=torch.int64)
    for w in words:
        ids = [0] + [vocab.stoi[c] for c in w] + [0]
        for i, j in zip(ids, ids[1:]):
            N[i, j] += 1
    return N
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: prepend and append the boundary token 0 to the ids of each word, then walk over zip(ids, ids[1:]).
N_ab = bigram_counts(["ab"])
assert isinstance(N_ab, torch.Tensor) and N_ab.shape == (27, 27), "bigram_counts should return a (27, 27) tensor"
assert N_ab.dtype == torch.int64, f"counts are integers: use dtype torch.int64, got {N_ab.dtype}"
assert N_ab[0, 1] == 1 and N_ab[1, 2] == 1 and N_ab[2, 0] == 1 and N_ab.sum() == 3, "wrong counts for ['ab']"
N_train = bigram_counts(train_names)
assert N_train.sum() == sum(len(w) + 1 for w in train_names), "a word of n letters has n + 1 pairs"
print("Q1 passes the visible checks; the most common first letter is", vocab.itos[int(N_train[0].argmax())])
### BEGIN HIDDEN TESTS
from course_lib.models.autoregressive import CountBigram as _CountBigram

_reference = _CountBigram(27).fit_names(train_names, vocab).counts.long()
assert torch.equal(N_train, _reference), "the counts over the training names differ from the reference"
assert torch.equal(bigram_counts(["aa", "a"]), bigram_counts(["a"]) + bigram_counts(["aa"])), "counts must add up"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q2_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q2 · Score a name with the chain rule (2 points)
#
# `model(idx)` maps token ids `idx` of shape `(B, T)` to logits of shape `(B, T, 27)`, where
# `logits[b, t]` scores the token that follows `idx[b, :t + 1]` (every model of the notebook works like
# this). Complete `log_prob(model, word)`: return $\log p(w) = \sum_{t=1}^{n+1} \log p(x_t \mid x_{<t})$ as a
# Python float, in nats, for one word (end token included). The model below is the smoothed count
# bigram of the notebook, so you can check a few factors by hand.

# %% nbgrader={"grade": false, "grade_id": "q2_setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
from course_lib.models.autoregressive import CountBigram

bigram = CountBigram(27, alpha=0.1).fit_names(train_names, vocab)  # bigram(idx) -> (B, T, 27) log-probabilities

# %% nbgrader={"grade": false, "grade_id": "q2_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def log_prob(model, word):
    """log p(word) in nats under an autoregressive model, the end token included."""
    ### BEGIN SOLUTION
    ids = [0] + [vocab.stoi[c] for c in word]
    targets = torch.tensor([vocab.stoi[c] for c in word] + [0])
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0]  # (n + 1, 27)
    return float(F.log_softmax(logits, dim=-1)[torch.arange(len(targets)), targets].sum())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q2_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: the input is [0, c_1, ..., c_n] and the targets are [c_1, ..., c_n, 0]; take log_softmax of the
#   logits and pick, at each position t, the entry of the target.
P = bigram.probs
lp = log_prob(bigram, "ab")
expected = math.log(P[0, 1]) + math.log(P[1, 2]) + math.log(P[2, 0])
assert isinstance(lp, float), f"log_prob should return a Python float, got {type(lp).__name__}"
assert abs(lp - expected) < 1e-4, f"log p('ab') should be {expected:.4f}, got {lp:.4f}"
assert log_prob(bigram, "emma") > log_prob(bigram, "xqzt"), "a real name should be more probable than 'xqzt'"
print(f"Q2 passes the visible checks: log p(emma) = {log_prob(bigram, 'emma'):.3f} nats")
### BEGIN HIDDEN TESTS
from course_lib.models.autoregressive import GPT as _GPT
from course_lib.models.autoregressive import sequence_nll as _sequence_nll

torch.manual_seed(1)
_gpt = _GPT(27, 12, n_layer=1, n_head=2, n_embd=8).eval()
with torch.no_grad():
    _gpt.lm_head.weight.normal_(0, 1.0)
for _w in ["emma", "christopher", "jo", "a"]:
    _x, _y = names_to_tensors([_w], vocab)
    assert abs(log_prob(_gpt, _w) + float(_sequence_nll(_gpt, _x, _y))) < 1e-4, f"wrong log p({_w!r}) for a GPT"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q3_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q3 · Perplexity (2 points)
#
# Complete `perplexity(model, words)`: the exponential of the average NLL per character, where each word
# of $n$ letters counts as $n + 1$ characters (its end token):
#
# $$\text{ppl} = \exp\Big(\frac{\sum_i -\log p(w_i)}{\sum_i (|w_i| + 1)}\Big).$$
#
# You may use your `log_prob` from Q2.

# %% nbgrader={"grade": false, "grade_id": "q3_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def perplexity(model, words):
    """exp(total NLL / total characters, end tokens included)."""
    ### BEGIN SOLUTION
    total = -sum(log_prob(model, w) for w in words)
    return math.exp(total / sum(len(w) + 1 for w in words))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q3_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: a model that predicts every token with probability 1/27 has perplexity exactly 27.
from course_lib.models.autoregressive import NeuralBigram

uniform = NeuralBigram(27)  # all weights 0: every token has probability 1/27
assert abs(perplexity(uniform, ["emma", "bo"]) - 27) < 1e-3, "the uniform model's perplexity is 27"
ppl = perplexity(bigram, test_names[:100])
assert 5 < ppl < 15, f"the bigram's perplexity on test names should be around 10, got {ppl:.2f}"
print(f"Q3 passes the visible checks: bigram perplexity {ppl:.2f} on 100 test names")
### BEGIN HIDDEN TESTS
from course_lib.models.autoregressive import evaluate as _evaluate

assert abs(perplexity(bigram, test_names) - _evaluate(bigram, test_names, vocab).perplexity) < 1e-3
assert abs(perplexity(bigram, ["a"]) - math.exp(-log_prob(bigram, "a") / 2)) < 1e-6, "'a' counts as 2 characters"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q4_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q4 · Temperature (2 points)
#
# Complete `temperature_probs(logits, temperature)` for logits of shape `(V,)` and a temperature
# $\tau > 0$: return the probabilities $q_v = \exp(\ell_v / \tau) / \sum_{v'} \exp(\ell_{v'} / \tau)$.
# Compute it in a numerically safe way: it must work for $\tau = 10^{-3}$ without NaNs.

# %% nbgrader={"grade": false, "grade_id": "q4_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def temperature_probs(logits, temperature):
    """softmax(logits / temperature) for logits (V,) and temperature > 0."""
    ### BEGIN SOLUTION
    return torch.softmax(logits / temperature, dim=-1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q4_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: torch.softmax subtracts the maximum before exponentiating, so it never overflows.
logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
q1 = temperature_probs(logits, 1.0)
assert torch.allclose(q1, torch.softmax(logits, 0)), "temperature 1 is the model's own distribution"
cold = temperature_probs(logits, 1e-3)
assert not torch.isnan(cold).any(), "a small temperature must not give NaNs: use a stable softmax"
assert torch.allclose(cold, torch.tensor([1.0, 0.0, 0.0, 0.0]), atol=1e-6), "temperature -> 0 gives the argmax"
hot = temperature_probs(logits, 1e3)
assert torch.allclose(hot, torch.full((4,), 0.25), atol=1e-3), "a huge temperature gives nearly uniform probabilities"
print("Q4 passes the visible checks:", temperature_probs(logits, 0.5).numpy().round(3))
### BEGIN HIDDEN TESTS
_l = torch.randn(27) * 3
_entropies = [float(-(temperature_probs(_l, _t) * temperature_probs(_l, _t).clamp_min(1e-30).log()).sum())
              for _t in (0.25, 0.5, 1.0, 2.0, 4.0)]
assert all(a < b for a, b in zip(_entropies, _entropies[1:])), "the entropy should grow with the temperature"
assert abs(float(temperature_probs(_l, 0.7).sum()) - 1) < 1e-5
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q5_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q5 · Nucleus (top-p) sampling (2 points)
#
# Complete `top_p_probs(probs, p)` for a probability vector of shape `(V,)` and $0 < p \le 1$: keep the
# **smallest** set of most likely tokens whose total probability is at least $p$, set every other
# probability to 0 and renormalise. For `probs = [0.5, 0.3, 0.15, 0.05]` and `p = 0.75` the kept set is
# the first two tokens, and the result is `[0.625, 0.375, 0, 0]`.

# %% nbgrader={"grade": false, "grade_id": "q5_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def top_p_probs(probs, p):
    """Zero all but the smallest set of most likely tokens with mass >= p, then renormalise."""
    ### BEGIN SOLUTION
    sorted_probs, order = torch.sort(probs, descending=True)
    mass_before = torch.cumsum(sorted_probs, dim=0) - sorted_probs
    keep_sorted = mass_before < p  # the token is needed: the more likely ones have not reached p yet
    keep_sorted[0] = True
    keep = torch.zeros_like(keep_sorted)
    keep[order] = keep_sorted
    filtered = torch.where(keep, probs, torch.zeros_like(probs))
    return filtered / filtered.sum()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q5_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
# Hint: sort the probabilities in decreasing order (torch.sort returns the order too); a token is kept if
#   the mass of the tokens *before* it in that order is still below p.
probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
assert torch.allclose(top_p_probs(probs, 0.75), torch.tensor([0.625, 0.375, 0.0, 0.0])), "p=0.75 keeps two tokens"
assert torch.allclose(top_p_probs(probs, 0.4), torch.tensor([1.0, 0.0, 0.0, 0.0])), "p=0.4 keeps only the top token"
assert torch.allclose(top_p_probs(probs, 1.0), probs), "p=1 keeps everything"
shuffled = torch.tensor([0.05, 0.3, 0.5, 0.15])
assert torch.allclose(top_p_probs(shuffled, 0.9), torch.tensor([0.0, 0.3, 0.5, 0.15]) / 0.95), "order must not matter"
print("Q5 passes the visible checks")
### BEGIN HIDDEN TESTS
from course_lib.models.autoregressive import filter_logits as _filter_logits

torch.manual_seed(0)
for _ in range(20):
    _probs = torch.softmax(torch.randn(27) * 2, 0)
    for _p in (0.1, 0.5, 0.83, 0.97):
        _expected = torch.softmax(_filter_logits(_probs.log(), top_p=_p), 0)
        assert torch.allclose(top_p_probs(_probs, _p), _expected, atol=1e-5), f"wrong result for p={_p}"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "q6_prompt", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Q6 · Causal self-attention from scratch (3 points)
#
# Complete `causal_attention(q, k, v)` for one head: `q`, `k` of shape `(T, d)` and `v` of shape
# `(T, d_v)`. Return `(out, weights)` with
#
# $$ A = \operatorname{softmax}\Big(\frac{q k^\top}{\sqrt d} + M\Big), \qquad \text{out} = A v, $$
#
# where the softmax is over each row and the mask $M_{ts} = -\infty$ for $s > t$ (0 otherwise), so that
# position $t$ only attends to positions $s \le t$. `weights` is $A$, of shape `(T, T)`.

# %% nbgrader={"grade": false, "grade_id": "q6_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_attention(q, k, v):
    """One head of causal scaled dot-product attention: returns out (T, d_v) and weights (T, T)."""
    ### BEGIN SOLUTION
    t, d = q.shape
    scores = q @ k.T / math.sqrt(d)
    future = torch.ones(t, t, dtype=torch.bool).triu(diagonal=1)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    return weights @ v, weights
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "q6_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
# Hint: torch.ones(T, T, dtype=torch.bool).triu(diagonal=1) marks the future; fill those scores with
#   float("-inf") before the softmax, so their weights become exactly 0.
torch.manual_seed(0)
q, k, v = torch.randn(5, 4), torch.randn(5, 4), torch.randn(5, 3)
out, weights = causal_attention(q, k, v)
assert out.shape == (5, 3) and weights.shape == (5, 5), "out should be (T, d_v) and weights (T, T)"
assert torch.allclose(weights.sum(dim=1), torch.ones(5)), "each row of weights is a distribution: it sums to 1"
assert torch.all(weights.triu(diagonal=1) == 0), "no position may attend to the future"
assert torch.allclose(out[0], v[0], atol=1e-6), "the first position can only attend to itself"
v_changed = v.clone()
v_changed[4] += 10.0
assert torch.allclose(causal_attention(q, k, v_changed)[0][:4], out[:4], atol=1e-6), "the last value leaked backwards"
print("Q6 passes the visible checks")
### BEGIN HIDDEN TESTS
from course_lib.nn.attention import attention as _attention

for _t, _d in [(1, 2), (7, 8), (12, 16)]:
    _q, _k, _v = torch.randn(_t, _d), torch.randn(_t, _d), torch.randn(_t, 5)
    _out, _w = causal_attention(_q, _k, _v)
    _ref_out, _ref_w = _attention(_q, _k, _v, causal=True, return_weights=True)
    assert torch.allclose(_out, _ref_out, atol=1e-5) and torch.allclose(_w, _ref_w, atol=1e-5), f"wrong for T={_t}"
_out, _w = causal_attention(q * 2.0, k, v)
assert torch.allclose(_w, causal_attention(q, k * 2.0, v)[1], atol=1e-6)
_q, _k = torch.randn(3, 64) * 3, torch.randn(3, 64) * 3
assert not torch.isnan(causal_attention(_q, _k, torch.randn(3, 2))[0]).any(), "scale the scores by 1/sqrt(d)"
### END HIDDEN TESTS

# %% [markdown] nbgrader={"grade": false, "grade_id": "outro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# **Done.** With `bigram_counts`, `log_prob` and `perplexity` you can evaluate any autoregressive model of
# names; with `temperature_probs` and `top_p_probs` you can sample from it in a controlled way; and
# `causal_attention` is the heart of the GPT. In the notebook's GPT it runs in 4 heads side by side, in 4
# layers, on learned projections of the characters.
