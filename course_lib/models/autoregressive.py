r"""Autoregressive models of character sequences: counts, a neural bigram, an MLP and a GPT.

An autoregressive model factorises the probability of a sequence :math:`x = (x_1, \dots, x_n)` by
the chain rule of probability, with an end token :math:`x_{n+1} = \texttt{.}`,

.. math::

    p_\theta(x) = \prod_{t=1}^{n+1} p_\theta(x_t \mid x_{<t}),
    \qquad
    -\log p_\theta(x) = \sum_{t=1}^{n+1} -\log p_\theta(x_t \mid x_{<t}),

so the likelihood is **exact** (no bound, no sampling) and training by maximum likelihood is
next-character classification with the cross-entropy loss. The models differ only in how much of
the past :math:`x_{<t}` they look at (their ``context_size``):

====================  ==================================================  ==================
model                 :math:`p(x_t \mid x_{<t})` depends on               ``context_size``
====================  ==================================================  ==================
:class:`CountBigram`  :math:`x_{t-1}`, by counting (with add-α smoothing)  1
:class:`NeuralBigram` :math:`x_{t-1}`, a table of logits learned by SGD    1
:class:`MLPLanguageModel`  the last ``n`` characters (Bengio et al., 2003)  ``n``
:class:`GPT`          every earlier character, by causal self-attention    ``block_size``
====================  ==================================================  ==================

All four share one interface, so the same training loss, sampler and evaluation serve them all::

    logits = model(idx)       # idx: (B, T) int64 token ids -> logits: (B, T, V) float
                              # logits[b, t] scores the token that follows idx[b, :t+1]

Data layout (see :mod:`course_lib.data.chars`): a name ``emma`` is the input ``. e m m a`` with the
targets ``e m m a .``; padded targets are ``-1`` (:data:`~course_lib.data.chars.IGNORE_INDEX`).

Sampling: :func:`generate` (temperature, top-k, top-p / nucleus) and :func:`sample_names`.
Evaluation: :func:`evaluate` gives the test NLL per character in nats and bits and the perplexity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data.chars import IGNORE_INDEX, CharVocab, names_to_tensors
from course_lib.nn.attention import MultiHeadSelfAttention

__all__ = [
    "CountBigram",
    "NeuralBigram",
    "MLPLanguageModel",
    "GPT",
    "Block",
    "FeedForward",
    "next_token_loss",
    "bigram_loss",
    "sequence_nll",
    "NLLResult",
    "evaluate",
    "filter_logits",
    "next_token_probs",
    "generate",
    "sample_names",
    "sample_novelty",
    "count_parameters",
]

_LN2 = math.log(2.0)


def _check_idx(idx: torch.Tensor, vocab_size: int) -> None:
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"expected token ids as a tensor (B, T) int64, got {type(idx).__name__}")
    if idx.dim() != 2:
        raise ValueError(f"expected token ids of shape (B, T), got {tuple(idx.shape)}; add a batch dimension with idx[None]")
    if idx.dtype != torch.long:
        raise TypeError(f"token ids must be int64 (torch.long), got {idx.dtype}; use idx.long()")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= vocab_size):
        raise ValueError(
            f"token ids must lie in 0..{vocab_size - 1}, got {int(idx.min())}..{int(idx.max())}; "
            "did you pass targets with -1 padding as inputs?"
        )


# ==================================================================================================
# Bigrams: by counting and by gradient descent
# ==================================================================================================


class CountBigram(nn.Module):
    r"""The bigram model estimated by counting, with add-:math:`\alpha` (Laplace) smoothing.

    With :math:`N_{ij}` the number of times character :math:`j` follows character :math:`i` in the
    training names (the boundary ``.`` included at both ends),

    .. math::

        p(x_t = j \mid x_{t-1} = i) = \frac{N_{ij} + \alpha}{\sum_{j'} N_{ij'} + \alpha V}.

    :math:`\alpha = 0` is the maximum-likelihood estimate (it gives probability 0, i.e. infinite NLL,
    to any pair never seen in training); :math:`\alpha = 1` is Laplace's rule, the posterior mean
    under a uniform Dirichlet prior.

    ``counts: (V, V) float64`` buffer; ``forward(idx: (B, T)) -> (B, T, V)`` log-probabilities (valid
    logits: their softmax is the table's row).
    """

    context_size = 1

    def __init__(self, vocab_size: int, alpha: float = 1.0):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0 (pseudo-counts), got {alpha}")
        self.vocab_size, self.alpha = int(vocab_size), float(alpha)
        self.register_buffer("counts", torch.zeros(vocab_size, vocab_size, dtype=torch.float64))

    def fit(self, prev: torch.Tensor, nxt: torch.Tensor) -> CountBigram:
        """Count the pairs ``prev[m] -> nxt[m]`` (``(M,) int64`` each, e.g. from ``context_windows(..., 1)``)."""
        prev, nxt = prev.reshape(-1), nxt.reshape(-1)
        if prev.shape != nxt.shape:
            raise ValueError(f"prev and nxt must have the same length, got {tuple(prev.shape)} and {tuple(nxt.shape)}")
        _check_idx(prev[None], self.vocab_size)
        _check_idx(nxt[None], self.vocab_size)
        pair = prev.to(self.counts.device) * self.vocab_size + nxt.to(self.counts.device)
        n = torch.bincount(pair, minlength=self.vocab_size**2).reshape(self.vocab_size, self.vocab_size)
        self.counts.copy_(n.to(torch.float64))
        return self

    def fit_names(self, words: Sequence[str], vocab: CharVocab) -> CountBigram:
        """Count every adjacent pair of ``. w_1 ... w_n .`` over the ``words``."""
        from course_lib.data.chars import context_windows

        if vocab.size != self.vocab_size:
            raise ValueError(f"the vocabulary has {vocab.size} tokens but the model {self.vocab_size}")
        ctx, nxt = context_windows(words, vocab, 1)
        return self.fit(ctx[:, 0], nxt)

    @property
    def probs(self) -> torch.Tensor:
        """``P: (V, V) float64``, ``P[i, j] = p(j | i)``; every row sums to 1."""
        smoothed = self.counts + self.alpha
        totals = smoothed.sum(dim=1, keepdim=True)
        if (totals == 0).any():
            raise ValueError(
                "some characters were never followed by anything in the training data and alpha=0, so their row "
                "of probabilities is undefined; use alpha > 0 (e.g. 1.0)"
            )
        return smoothed / totals

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _check_idx(idx, self.vocab_size)
        return self.probs.log().to(torch.float32)[idx]


class NeuralBigram(nn.Module):
    r"""The bigram as a one-layer neural network: one-hot input, a ``V x V`` weight matrix, softmax.

    .. math::

        p(x_t = \cdot \mid x_{t-1} = i) = \operatorname{softmax}(\mathrm{onehot}(i)\, W) = \operatorname{softmax}(W_{i,:}).

    Multiplying a one-hot vector by :math:`W` just selects a row, so the layer is an embedding lookup.
    Trained with :func:`bigram_loss`, whose smoothing term makes its optimum *exactly* the
    :class:`CountBigram` with the same :math:`\alpha`.

    ``W: (V, V)`` parameter (initialised to 0: the uniform distribution);
    ``forward(idx: (B, T)) -> (B, T, V)`` logits.
    """

    context_size = 1

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.W = nn.Parameter(torch.zeros(vocab_size, vocab_size))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _check_idx(idx, self.vocab_size)
        return F.one_hot(idx, self.vocab_size).to(self.W.dtype) @ self.W  # selects rows: = W[idx]


def bigram_loss(model: NeuralBigram, batch: Sequence[torch.Tensor], *, alpha: float = 0.0, num_pairs: int | None = None):
    r"""Cross-entropy of a :class:`NeuralBigram` plus the smoothing term that mirrors add-α counts.

    For a batch of :math:`M` pairs :math:`(i_m, j_m)` (``batch = (prev: (M,), nxt: (M,))``),

    .. math::

        L(W) = \frac{1}{M} \Big[ \sum_{m=1}^{M} -\log p_W(j_m \mid i_m)
               + \alpha \sum_{i=1}^{V} \sum_{j=1}^{V} -\log p_W(j \mid i) \Big].

    The second term is :math:`\alpha` imaginary observations of *every* pair, so setting the gradient
    to zero gives :math:`p_W(j \mid i) = (N_{ij} + \alpha) / (N_i + \alpha V)`: the smoothed counts.
    With full batches (``M`` = all training pairs) gradient descent converges to :class:`CountBigram`.
    ``num_pairs``: the size of the whole training set when batches are smaller (the term is scaled
    by ``M / num_pairs`` so that an epoch adds it once). Returns ``(loss, {"nll": data term})``.
    """
    prev, nxt = batch
    logp = F.log_softmax(model(prev.reshape(1, -1))[0], dim=-1)  # (M, V)
    nll = F.nll_loss(logp, nxt.reshape(-1))
    loss = nll
    if alpha > 0:
        all_logp = F.log_softmax(model.W, dim=-1)  # (V, V)
        m = prev.numel()
        loss = loss - alpha * all_logp.sum() / (num_pairs if num_pairs is not None else m)
    return loss, {"nll": nll.detach()}


# ==================================================================================================
# The MLP of Bengio et al. (2003)
# ==================================================================================================


class MLPLanguageModel(nn.Module):
    r"""A neural probabilistic language model over a fixed context (Bengio, Ducharme, Vincent & Jauvin, 2003).

    Each of the last :math:`n` characters is mapped to a learned embedding (the matrix :math:`C`),
    the embeddings are concatenated, and a hidden ``tanh`` layer predicts the next character:

    .. math::

        e = [C(x_{t-n}), \dots, C(x_{t-1})] \in \mathbb{R}^{n d}, \qquad
        h = \tanh(H e + d), \qquad
        p(x_t \mid x_{t-n:t-1}) = \operatorname{softmax}(U h + b).

    Positions before the start of the name read the boundary token. Unlike counts, similar
    characters get similar embeddings, so the model generalises to contexts it has never seen.

    Args:
        vocab_size: ``V``. context: ``n``. embed_dim: ``d``. hidden: the width of ``h``.
        dropout: dropout on ``h`` (training only).

    ``forward(idx: (B, T)) -> (B, T, V)`` logits; the context of position ``t`` is ``idx[:, t-n+1 : t+1]``.
    """

    def __init__(self, vocab_size: int, context: int = 3, embed_dim: int = 16, hidden: int = 256, dropout: float = 0.0):
        super().__init__()
        if context < 1:
            raise ValueError(f"context must be >= 1, got {context}")
        self.vocab_size, self.context_size = int(vocab_size), int(context)
        self.C = nn.Embedding(vocab_size, embed_dim)
        self.H = nn.Linear(context * embed_dim, hidden)
        self.U = nn.Linear(hidden, vocab_size)
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():  # start near the uniform prediction: initial loss ~ log V
            self.U.weight.mul_(0.1)
            self.U.bias.zero_()

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _check_idx(idx, self.vocab_size)
        n = self.context_size
        windows = F.pad(idx, (n - 1, 0), value=0).unfold(1, n, 1)  # (B, T, n): idx[t-n+1 .. t]
        e = self.C(windows).flatten(2)  # (B, T, n*d)
        h = self.dropout(torch.tanh(self.H(e)))
        return self.U(h)


# ==================================================================================================
# GPT: a causal Transformer
# ==================================================================================================


class FeedForward(nn.Module):
    r"""The Transformer's position-wise MLP: :math:`\mathrm{FFN}(x) = W_2\, \mathrm{GELU}(W_1 x + b_1) + b_2`.

    ``fc: Linear(C, 4C)``, ``proj: Linear(4C, C)``; ``x: (B, T, C)`` -> ``(B, T, C)``.
    """

    def __init__(self, dim: int, *, expansion: int = 4, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(dim, expansion * dim)
        self.proj = nn.Linear(expansion * dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    r"""A pre-LayerNorm Transformer block (as in GPT-2):

    .. math::

        x \leftarrow x + \operatorname{MHSA}_{\text{causal}}(\operatorname{LN}_1(x)), \qquad
        x \leftarrow x + \operatorname{FFN}(\operatorname{LN}_2(x)).

    The residual stream ``x`` is only ever *added to*, so gradients reach the first layer unchanged
    and deep stacks train stably. ``x: (B, T, C)`` -> ``(B, T, C)``.
    """

    def __init__(self, dim: int, n_head: int, *, dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, n_head, causal=True, dropout=dropout)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = FeedForward(dim, dropout=dropout)

    def forward(self, x: torch.Tensor, *, return_weights: bool = False):
        if return_weights:
            a, weights = self.attn(self.ln_1(x), return_weights=True)
            x = x + a
            return x + self.mlp(self.ln_2(x)), weights
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    r"""A decoder-only causal Transformer (Radford et al., 2018/2019), small enough for a CPU.

    .. math::

        h^{(0)}_t = E_{x_t} + P_t, \qquad
        h^{(l)} = \operatorname{Block}_l(h^{(l-1)}), \qquad
        p(x_{t+1} \mid x_{\le t}) = \operatorname{softmax}\big(\operatorname{LN}(h^{(L)}_t)\, W_{\text{out}}\big),

    with token embeddings :math:`E` (``wte``), learned position embeddings :math:`P` (``wpe``), ``n_layer``
    pre-LayerNorm :class:`Block` s with causal multi-head self-attention, a final LayerNorm (``ln_f``)
    and a linear read-out (``lm_head``). The causal mask means the logits at position ``t`` depend on
    ``idx[:, :t+1]`` only, so all ``T`` next-token predictions of a sequence train in one pass.

    Initialisation (GPT-2): weights :math:`\mathcal{N}(0, 0.02^2)`, biases 0, and the two projections
    that write into the residual stream (``attn.proj``, ``mlp.proj``) scaled by :math:`1/\sqrt{2 L}`,
    so the residual stream's variance does not grow with depth; the read-out starts at 0 so the first
    prediction is uniform (loss :math:`\log V`).

    Args:
        vocab_size: ``V``. block_size: the longest input ``T`` (the context size).
        n_layer, n_head, n_embd: depth ``L``, heads ``H`` and width ``C`` (``C % H == 0``).
        dropout: on embeddings, attention weights and residual branches (training only).

    ``forward(idx: (B, T)) -> logits (B, T, V)``; ``forward(idx, return_attention=True)`` also returns a
    list of ``L`` attention-weight tensors ``(B, H, T, T)``.
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        *,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 64,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.vocab_size, self.block_size = int(vocab_size), int(block_size)
        self.n_layer, self.n_head, self.n_embd = n_layer, n_head, n_embd
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout=dropout) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
        nn.init.zeros_(self.lm_head.weight)

    @property
    def context_size(self) -> int:
        return self.block_size

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, *, return_attention: bool = False):
        _check_idx(idx, self.vocab_size)
        t = idx.shape[1]
        if t > self.block_size:
            raise ValueError(
                f"the sequence has {t} tokens but the model's block_size is {self.block_size}; crop it to the last "
                f"{self.block_size} (generate() does this) or build the GPT with a larger block_size"
            )
        pos = torch.arange(t, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        maps = []
        for block in self.blocks:
            if return_attention:
                x, w = block(x, return_weights=True)
                maps.append(w)
            else:
                x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        return (logits, maps) if return_attention else logits


# ==================================================================================================
# Loss and evaluation
# ==================================================================================================


def next_token_loss(model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Mean next-token cross-entropy over the non-padded positions of a batch ``(x, y)``.

    .. math:: L = \frac{1}{|\mathcal{T}|} \sum_{(b, t) \in \mathcal{T}} -\log p_\theta(y_{bt} \mid x_{b, \le t}),

    where :math:`\mathcal{T}` are the positions with ``y != -1``. ``x, y: (B, T) int64``. This is the
    loss ``train.fit`` minimises for every model of this module.
    """
    x, y = batch
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE_INDEX)


@torch.no_grad()
def sequence_nll(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""``-log p(sequence)`` in nats, one per row: :math:`\sum_t -\log p(y_t \mid x_{\le t})` over ``y != -1``.

    ``x, y: (B, T) int64`` -> ``(B,) float32``.
    """
    logits = model(x)
    nll = F.cross_entropy(logits.transpose(1, 2), y.clamp_min(0), reduction="none")  # (B, T)
    return (nll * (y != IGNORE_INDEX)).sum(dim=1)


@dataclass(frozen=True)
class NLLResult:
    r"""Held-out negative log-likelihood of a set of names.

    ``nats_per_char`` :math:`= \frac{\sum_i -\log p(w_i)}{\sum_i (|w_i| + 1)}`: the end-of-name token
    counts as a character (it is a prediction the model must make), which is the same unit as
    makemore's reported loss. ``bits_per_char = nats_per_char / ln 2``;
    ``perplexity = exp(nats_per_char)`` (the model is as uncertain as a uniform choice among that many
    characters); ``nats_per_name`` = the mean :math:`-\log p(w)`.
    """

    nats_per_char: float
    bits_per_char: float
    perplexity: float
    nats_per_name: float
    n_names: int
    n_chars: int

    def __str__(self) -> str:
        return (
            f"{self.nats_per_char:.4f} nats/char = {self.bits_per_char:.4f} bits/char, perplexity "
            f"{self.perplexity:.2f}, {self.nats_per_name:.2f} nats/name ({self.n_names} names)"
        )


@torch.no_grad()
def evaluate(model: nn.Module, words: Sequence[str], vocab: CharVocab, *, batch_size: int = 1024) -> NLLResult:
    """Exact held-out NLL of ``words`` under ``model`` (in eval mode; the mode is restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        dev = next(model.parameters(), next(model.buffers(), torch.empty(0))).device
        total, chars = 0.0, 0
        words = list(words)
        for start in range(0, len(words), batch_size):
            chunk = words[start : start + batch_size]
            length = max(len(w) for w in chunk) + 1
            if length > getattr(model, "block_size", length):
                raise ValueError(
                    f"a name of {length - 1} characters needs {length} positions, more than the model's block_size "
                    f"{model.block_size}; build the GPT with block_size >= {length}"
                )
            x, y = names_to_tensors(chunk, vocab, length=length)
            total += float(sequence_nll(model, x.to(dev), y.to(dev)).double().sum())
            chars += sum(len(w) + 1 for w in chunk)
    finally:
        model.train(was_training)
    nats = total / chars
    return NLLResult(nats, nats / _LN2, math.exp(nats), total / len(words), len(words), chars)


# ==================================================================================================
# Sampling
# ==================================================================================================


def filter_logits(logits: torch.Tensor, *, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    r"""Set to :math:`-\infty` the logits outside the top-k and/or the nucleus (top-p); ``(..., V)`` -> ``(..., V)``.

    * **top-k** keeps the ``k`` largest logits (ties at the k-th value are kept).
    * **top-p** (nucleus sampling, Holtzman et al., 2020) keeps the smallest set of most likely tokens
      whose probability mass is at least ``p``: sort :math:`p_{(1)} \ge p_{(2)} \ge \dots` and keep
      :math:`(1), \dots, (m)` with :math:`m = \min\{m : \sum_{i \le m} p_{(i)} \ge p\}`.

    With both, top-k is applied first. The most likely token is always kept.
    """
    out = logits.clone()
    v = logits.shape[-1]
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int (or None), got {top_k!r}")
        if top_k < v:
            kth = torch.topk(out, top_k, dim=-1).values[..., -1:]
            out = out.masked_fill(out < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < float(top_p) <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # mass of the strictly more likely tokens
        drop_sorted = mass_before >= top_p  # already reached p without this token
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, float("-inf"))
    return out


def next_token_probs(
    model: nn.Module,
    idx: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    r"""The sampling distribution of the next token after ``idx: (B, T)``: ``(B, V)`` probabilities.

    .. math:: q(x_{T+1} = v) \propto \exp(\ell_v / \tau) \quad \text{on the kept tokens (top-k / top-p)},

    where :math:`\ell` are the model's logits at the last position and :math:`\tau` the temperature:
    :math:`\tau = 1` is the model itself, :math:`\tau < 1` sharpens it, :math:`\tau \to 0` puts all mass
    on the argmax (``temperature=0`` is exactly greedy decoding), :math:`\tau > 1` flattens it.
    The context is cropped to the model's ``context_size``.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    ctx = getattr(model, "context_size", None)
    if ctx is not None and idx.shape[1] > ctx:
        idx = idx[:, -ctx:]
    logits = model(idx)[:, -1, :].float()  # (B, V)
    if temperature == 0:
        return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).float()
    logits = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)
    return logits.softmax(dim=-1)


@torch.no_grad()
def generate(
    model: nn.Module,
    prompt: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    *,
    generator: torch.Generator | None = None,
    stop_token: int | None = None,
) -> torch.Tensor:
    r"""Sample a continuation token by token: :math:`x_{t+1} \sim q(\cdot \mid x_{\le t})`, appended, repeated.

    Args:
        model: any model of this module (in eval mode: ``generate`` switches it and restores the mode).
        prompt: ``(B, T0) int64`` token ids (for names: ``torch.zeros(B, 1)`` = the start token).
        max_new_tokens: how many tokens to add.
        temperature, top_k, top_p: see :func:`next_token_probs`.
        generator: a ``torch.Generator`` (on the CPU) for reproducible samples.
        stop_token: if given, a row that has produced it keeps producing it (padding), and generation
            stops early once every row has.

    Returns:
        ``(B, T0 + n) int64``, the prompt followed by ``n <= max_new_tokens`` new tokens.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    vocab_size = getattr(model, "vocab_size", None)
    if vocab_size is not None:
        _check_idx(prompt, vocab_size)
    was_training = model.training
    model.eval()
    idx = prompt
    done = torch.zeros(prompt.shape[0], dtype=torch.bool, device=prompt.device)
    try:
        for _ in range(max_new_tokens):
            probs = next_token_probs(model, idx, temperature=temperature, top_k=top_k, top_p=top_p)
            nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)  # (B, 1)
            if stop_token is not None:
                nxt = nxt.masked_fill(done[:, None], stop_token)
                done = done | (nxt[:, 0] == stop_token)
            idx = torch.cat([idx, nxt], dim=1)
            if stop_token is not None and bool(done.all()):
                break
    finally:
        model.train(was_training)
    return idx


def sample_names(
    model: nn.Module,
    vocab: CharVocab,
    n: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    max_length: int | None = None,
    generator: torch.Generator | None = None,
) -> list[str]:
    """``n`` names sampled from the start token until the end token (or cut at ``max_length`` characters).

    ``max_length`` defaults to ``context_size - 1`` for a GPT (the longest name it was built for) and
    30 otherwise.
    """
    if max_length is None:
        max_length = model.block_size - 1 if isinstance(model, GPT) else 30
    dev = next(model.parameters(), next(model.buffers(), torch.empty(0))).device
    start = torch.zeros(n, 1, dtype=torch.long, device=dev)
    out = generate(model, start, max_length, temperature, top_k, top_p, generator=generator, stop_token=0)
    return [vocab.decode(row[1:]) for row in out.cpu()]  # a name still going after max_length is cut there


def sample_novelty(samples: Iterable[str], train: Iterable[str], held_out: Iterable[str] = ()) -> dict[str, float]:
    """Shares of ``samples`` that copy a training name, are real names the model never saw, or are new.

    Returns ``{"copied": ..., "held_out": ..., "novel": ..., "empty": ...}`` (fractions summing to 1):
    ``copied`` = in ``train``; ``held_out`` = not in train but in ``held_out`` (real names never
    trained on: a sign of generalisation); ``novel`` = in neither; ``empty`` = the empty string.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("no samples to judge")
    train, held_out = set(train), set(held_out) - set(train)
    counts = {"copied": 0, "held_out": 0, "novel": 0, "empty": 0}
    for s in samples:
        key = "empty" if not s else "copied" if s in train else "held_out" if s in held_out else "novel"
        counts[key] += 1
    return {k: v / len(samples) for k, v in counts.items()}


def count_parameters(model: nn.Module) -> int:
    """Number of parameters, frozen ones included (e.g. an EMA copy); a :class:`CountBigram` has none (its counts are a buffer)."""
    return sum(p.numel() for p in model.parameters())
