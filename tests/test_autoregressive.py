"""Autoregressive models: counts vs gradient descent, causality, sampling filters, exact likelihoods.

References used as oracles: a pure-Python count of the bigrams, a hand-written cross-entropy loop,
``torch.nn.MultiheadAttention``, brute-force enumeration of every string of a tiny vocabulary.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from course_lib import data, train
from course_lib.data.chars import (
    IGNORE_INDEX,
    CharVocab,
    context_windows,
    names_to_tensors,
    write_names_file,
)
from course_lib.models.autoregressive import (
    GPT,
    CountBigram,
    MLPLanguageModel,
    NeuralBigram,
    bigram_loss,
    count_parameters,
    evaluate,
    filter_logits,
    generate,
    next_token_loss,
    next_token_probs,
    sample_names,
    sample_novelty,
    sequence_nll,
)
from course_lib.nn.attention import MultiHeadSelfAttention, SpatialSelfAttention, attention

VOCAB = CharVocab()


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def splits():
    return data.names("train"), data.names("test")


def tiny_gpt(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    model = GPT(VOCAB.size, 12, **cfg)
    with torch.no_grad():  # the read-out starts at 0 (uniform); make the outputs depend on the input
        model.lm_head.weight.normal_(0, 0.5)
    return model.eval()


# --------------------------------------------------------------------------------------------------
# Characters and data layout
# --------------------------------------------------------------------------------------------------


def test_vocab_and_layout_match_makemore():
    assert VOCAB.size == 27 and VOCAB.itos[0] == "." and VOCAB.encode("az") == [1, 26]
    x, y = names_to_tensors(["emma", "bo"], VOCAB)
    assert x.tolist() == [[0, 5, 13, 13, 1], [0, 2, 15, 0, 0]]
    assert y.tolist() == [[5, 13, 13, 1, 0], [2, 15, 0, IGNORE_INDEX, IGNORE_INDEX]]
    assert VOCAB.decode(x[0, 1:]) == "emma" and VOCAB.decode(y[1]) == "bo"
    ctx, nxt = context_windows(["emma"], VOCAB, 3)
    assert ctx.tolist() == [[0, 0, 0], [0, 0, 5], [0, 5, 13], [5, 13, 13], [13, 13, 1]]
    assert nxt.tolist() == [5, 13, 13, 1, 0]


def test_vocab_errors_name_the_fix():
    with pytest.raises(ValueError, match="lowercase"):
        VOCAB.encode("Emma")
    with pytest.raises(ValueError, match="length >= 5"):
        names_to_tensors(["emma"], VOCAB, length=4)
    with pytest.raises(TypeError, match="wrap it in a list"):
        names_to_tensors("emma", VOCAB)
    with pytest.raises(ValueError, match="boundary"):
        CharVocab("ab.")


def test_write_names_file_is_one_name_per_line(tmp_path, splits):
    train_names, _ = splits
    path = write_names_file(train_names, tmp_path / "train.txt")
    assert path.read_text().splitlines() == train_names
    assert path.read_text().endswith("\n") and "\r" not in path.read_text()


# --------------------------------------------------------------------------------------------------
# Bigrams: counting and gradient descent agree
# --------------------------------------------------------------------------------------------------


def test_count_bigram_test_nll_equals_direct_count(splits):
    train_names, test_names = splits
    alpha = 0.5
    model = CountBigram(VOCAB.size, alpha=alpha).fit_names(train_names, VOCAB)
    # the oracle: plain Python counting of ". n a m e ." pairs, no tensors
    pairs = Counter()
    for w in train_names:
        s = "." + w + "."
        pairs.update(zip(s, s[1:]))
    row = Counter()
    for (a, _), n in pairs.items():
        row[a] += n
    nll, chars = 0.0, 0
    for w in test_names:
        s = "." + w + "."
        for a, b in zip(s, s[1:]):
            nll -= math.log((pairs[(a, b)] + alpha) / (row[a] + alpha * 27))
            chars += 1
    result = evaluate(model, test_names, VOCAB)
    assert result.n_chars == chars
    assert result.nats_per_char == pytest.approx(nll / chars, abs=1e-5)
    assert result.bits_per_char == pytest.approx(nll / chars / math.log(2), abs=1e-5)
    assert result.perplexity == pytest.approx(math.exp(nll / chars), rel=1e-5)
    assert result.nats_per_name == pytest.approx(nll / len(test_names), rel=1e-5)
    assert torch.allclose(model.probs.sum(1), torch.ones(27, dtype=torch.float64))


def test_unsmoothed_bigram_needs_alpha_for_unseen_rows():
    model = CountBigram(VOCAB.size, alpha=0.0).fit_names(["ab"], VOCAB)
    with pytest.raises(ValueError, match="alpha > 0"):
        model.probs


def test_neural_bigram_converges_to_the_count_bigram(splits):
    train_names, test_names = splits
    alpha = 1.0
    counts = CountBigram(VOCAB.size, alpha=alpha).fit_names(train_names, VOCAB)
    ctx, nxt = context_windows(train_names, VOCAB, 1)
    batch = [(ctx[:, 0], nxt)]  # full batch: plain gradient descent on the exact objective
    model = NeuralBigram(VOCAB.size)
    before = evaluate(model, test_names, VOCAB).nats_per_char
    assert before == pytest.approx(math.log(27), abs=1e-6)  # W = 0 is the uniform model
    train.fit(model, lambda m, b: bigram_loss(m, b, alpha=alpha), batch, steps=200, lr=0.5,
              device="cpu", progress=False)
    probs = F.softmax(model.W.detach().double(), dim=1)
    assert (probs - counts.probs).abs().max() < 1e-3
    nn_nll = evaluate(model, test_names, VOCAB).nats_per_char
    count_nll = evaluate(counts, test_names, VOCAB).nats_per_char
    assert nn_nll == pytest.approx(count_nll, abs=1e-4)


# --------------------------------------------------------------------------------------------------
# Loss and exact likelihood
# --------------------------------------------------------------------------------------------------


def test_loss_equals_hand_written_cross_entropy():
    model = tiny_gpt()
    x, y = names_to_tensors(["anna", "bob", "christopher"], VOCAB)
    logits = model(x)
    total, n = 0.0, 0
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            if y[b, t] == IGNORE_INDEX:
                continue
            z = logits[b, t].detach().double()
            total += float(torch.log(torch.exp(z).sum()) - z[y[b, t]])
            n += 1
    assert n == 4 + 1 + 3 + 1 + 11 + 1
    assert float(next_token_loss(model, (x, y)).detach()) == pytest.approx(total / n, rel=1e-5)
    per_name = sequence_nll(model, x, y)
    assert float(per_name.sum()) == pytest.approx(total, rel=1e-5)


@torch.no_grad()
def test_probabilities_of_all_strings_sum_to_one():
    """Exact likelihood: P(every string of length <= 2), the empty one included, plus P(longer) is 1."""
    vocab = CharVocab("ab")
    torch.manual_seed(0)
    model = GPT(vocab.size, 4, n_layer=1, n_head=1, n_embd=8).eval()
    with torch.no_grad():
        model.lm_head.weight.normal_(0, 1.0)
    words = ["".join(p) for n in (1, 2) for p in itertools.product("ab", repeat=n)]
    x, y = names_to_tensors(words, vocab)
    p_short = sequence_nll(model, x, y).neg().exp().sum()
    p_empty = F.softmax(model(torch.zeros(1, 1, dtype=torch.long))[0, 0], -1)[0]  # "." right after the start
    # P(the name is longer than 2) = P(the first 3 predictions are letters) = sum over 3-letter prefixes
    prefixes = torch.tensor([[0] + [vocab.stoi[c] for c in p] for p in itertools.product("ab", repeat=3)])
    logp = F.log_softmax(model(prefixes[:, :3]), -1)
    p_long = logp.gather(2, prefixes[:, 1:, None]).sum(dim=(1, 2)).exp().sum()
    assert float(p_empty + p_short + p_long) == pytest.approx(1.0, abs=1e-5)


def test_evaluate_is_uniform_for_an_untrained_gpt_and_rejects_long_names(splits):
    _, test_names = splits
    model = GPT(VOCAB.size, 12)  # lm_head starts at zero: uniform predictions
    result = evaluate(model, test_names, VOCAB)
    assert result.nats_per_char == pytest.approx(math.log(27), abs=1e-5)
    with pytest.raises(ValueError, match="block_size"):
        evaluate(model, ["a" * 20], VOCAB)


# --------------------------------------------------------------------------------------------------
# Causality
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [tiny_gpt, lambda: MLPLanguageModel(27, context=3, hidden=32).eval()],
                         ids=["gpt", "mlp"])
def test_future_tokens_do_not_change_past_outputs(make):
    model = make()
    torch.manual_seed(1)
    x = torch.randint(0, 27, (4, 10))
    base = model(x)
    for t in range(9):
        changed = x.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1 + torch.arange(4)) % 27
        out = model(changed)
        assert torch.allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-6), f"output at <= {t} saw position {t + 1}"
        assert not torch.allclose(out[:, t + 1], base[:, t + 1]), "the changed position itself should matter"


def test_attention_weights_are_causal_and_normalised():
    model = tiny_gpt()
    x = torch.randint(0, 27, (3, 7))
    logits, maps = model(x, return_attention=True)
    assert torch.allclose(logits, model(x), atol=1e-5)  # the explicit path equals the fused kernel
    assert len(maps) == 2
    for w in maps:
        assert w.shape == (3, 2, 7, 7)
        assert torch.allclose(w.sum(-1), torch.ones(3, 2, 7))
        assert (w.triu(diagonal=1) == 0).all()


def test_mlp_on_sequences_equals_mlp_on_context_windows():
    torch.manual_seed(0)
    model = MLPLanguageModel(27, context=4, embed_dim=5, hidden=16).eval()
    words = ["emma", "jo", "maximilian"]
    x, y = names_to_tensors(words, VOCAB)
    ctx, nxt = context_windows(words, VOCAB, 4)
    seq_logits = model(x)[y != IGNORE_INDEX]  # (M, V) in the same order as the windows
    win_logits = model(ctx)[:, -1]  # last position of each window: exactly that context
    assert torch.allclose(seq_logits, win_logits, atol=1e-6)
    assert torch.equal(y[y != IGNORE_INDEX], nxt)


# --------------------------------------------------------------------------------------------------
# Attention against torch.nn.MultiheadAttention
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_self_attention_matches_torch(causal):
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(12, 3, causal=causal).eval()
    ref = torch.nn.MultiheadAttention(12, 3, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(2, 5, 12)
    mask = torch.ones(5, 5, dtype=torch.bool).triu(1) if causal else None  # torch: True = NOT allowed
    expected, expected_w = ref(x, x, x, attn_mask=mask, average_attn_weights=False)
    out, w = ours(x, return_weights=True)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(w, expected_w, atol=1e-5)
    assert torch.allclose(ours(x), expected, atol=1e-5)


def test_attention_formula_by_hand():
    torch.manual_seed(0)
    q, k, v = torch.randn(4, 3), torch.randn(5, 3), torch.randn(5, 2)
    out, w = attention(q, k, v, return_weights=True)
    for t in range(4):
        scores = torch.stack([q[t] @ k[s] / math.sqrt(3) for s in range(5)])
        a = scores.exp() / scores.exp().sum()
        assert torch.allclose(w[t], a, atol=1e-6)
        assert torch.allclose(out[t], (a[:, None] * v).sum(0), atol=1e-6)
    assert torch.allclose(attention(q, k, v), out, atol=1e-6)


def test_spatial_self_attention_starts_as_identity_and_mixes_pixels():
    torch.manual_seed(0)
    block = SpatialSelfAttention(16, n_heads=2)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(block(x), x)
    torch.nn.init.normal_(block.attn.proj.weight)
    y = block(x)
    x2 = x.clone()
    x2[:, :, 0, 0] += 1.0  # one pixel changes: every other pixel's output changes (global receptive field)
    assert not torch.allclose(block(x2)[:, :, 3, 3], y[:, :, 3, 3])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        block(torch.randn(16, 4, 4))


# --------------------------------------------------------------------------------------------------
# Sampling: temperature, top-k, top-p
# --------------------------------------------------------------------------------------------------


def test_temperature_to_zero_gives_the_argmax():
    model = tiny_gpt()
    x = torch.randint(0, 27, (8, 5))
    argmax = model(x)[:, -1].argmax(-1)
    greedy = next_token_probs(model, x, temperature=0)
    assert torch.equal(greedy.argmax(-1), argmax) and torch.equal(greedy.sum(-1), torch.ones(8))
    cold = next_token_probs(model, x, temperature=1e-3)
    assert torch.allclose(cold, greedy, atol=1e-4)
    warm = next_token_probs(model, x, temperature=1.0)
    assert torch.allclose(warm, model(x)[:, -1].softmax(-1), atol=1e-6)
    assert (warm.max(-1).values < cold.max(-1).values).all()
    # generation at temperature 0 is greedy decoding, whatever the random generator
    start = torch.zeros(2, 1, dtype=torch.long)
    a = generate(model, start, 6, temperature=0, generator=torch.Generator().manual_seed(1))
    b = generate(model, start, 6, temperature=0, generator=torch.Generator().manual_seed(2))
    idx = start
    for _ in range(6):
        idx = torch.cat([idx, model(idx)[:, -1:].argmax(-1)], 1)
    assert torch.equal(a, b) and torch.equal(a, idx)


def test_top_k_never_samples_outside_the_k_most_likely():
    torch.manual_seed(0)
    logits = torch.randn(3, 27) * 2
    allowed = logits.topk(5, dim=-1).indices
    probs = F.softmax(filter_logits(logits, top_k=5), -1)
    draws = torch.multinomial(probs, 2000, replacement=True, generator=torch.Generator().manual_seed(0))
    for row in range(3):
        seen = set(draws[row].tolist())
        assert seen <= set(allowed[row].tolist())
        assert len(seen) == 5  # ... and does sample all k of them
    assert torch.equal(filter_logits(logits, top_k=27), logits)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99, 1.0])
def test_top_p_keeps_the_smallest_set_with_mass_at_least_p(p):
    torch.manual_seed(int(p * 100))
    logits = torch.randn(50, 27) * 1.5
    probs = logits.softmax(-1)
    kept = torch.isfinite(filter_logits(logits, top_p=p))
    for row in range(50):
        k = int(kept[row].sum())
        order = probs[row].argsort(descending=True)
        assert set(order[:k].tolist()) == set(kept[row].nonzero().flatten().tolist()), "keeps the most likely"
        mass = float(probs[row][kept[row]].sum())
        assert mass >= p - 1e-6, "the kept set reaches p"
        assert mass - float(probs[row, order[k - 1]]) < p or k == 1, "and no smaller set does"


def test_sampling_rejects_bad_settings():
    logits = torch.randn(2, 27)
    with pytest.raises(ValueError, match="top_k"):
        filter_logits(logits, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(logits, top_p=1.5)
    with pytest.raises(ValueError, match="temperature"):
        next_token_probs(tiny_gpt(), torch.zeros(1, 1, dtype=torch.long), temperature=-1)
    with pytest.raises(TypeError, match="int64"):
        tiny_gpt()(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="block_size"):
        tiny_gpt()(torch.zeros(1, 13, dtype=torch.long))


def test_sample_names_are_reproducible_and_stop_at_the_end_token(splits):
    train_names, test_names = splits
    model = CountBigram(VOCAB.size).fit_names(train_names, VOCAB)
    a = sample_names(model, VOCAB, 50, generator=torch.Generator().manual_seed(0))
    b = sample_names(model, VOCAB, 50, generator=torch.Generator().manual_seed(0))
    assert a == b and all("." not in s and len(s) <= 30 for s in a)
    gpt = tiny_gpt()
    names = sample_names(gpt, VOCAB, 10, generator=torch.Generator().manual_seed(0))
    assert all(len(s) <= 11 for s in names)
    shares = sample_novelty(["emma", test_names[0], "zzxq", ""], train_names + ["emma"], test_names)
    assert shares == {"copied": 0.25, "held_out": 0.25, "novel": 0.25, "empty": 0.25}


def test_gpt_parameter_count_and_initial_loss():
    model = GPT(27, 16, n_layer=4, n_head=4, n_embd=64)
    # per block: 2 LayerNorms (4C) + qkv (3C^2 + 3C) + proj (C^2 + C) + FFN (8C^2 + 5C)
    c = 64
    per_block = 4 * c + 3 * c * c + 3 * c + c * c + c + 8 * c * c + 5 * c
    assert count_parameters(model) == 27 * c + 16 * c + 4 * per_block + 2 * c + 27 * c
    assert count_parameters(CountBigram(27)) == 0
    x, y = names_to_tensors(["emma", "olivia"], VOCAB, length=16)
    assert float(next_token_loss(model, (x, y)).detach()) == pytest.approx(math.log(27), abs=1e-6)
