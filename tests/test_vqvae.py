"""Tests for course_lib.models.vqvae: nearest codes, straight-through gradients, the signs of the VQ loss
terms, EMA codebook updates, dead-code restarts, usage/perplexity, and the Transformer prior over codes."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib import data, train
from course_lib.models import vqvae as Q


def _quantizer(**kw):
    torch.manual_seed(0)
    kw.setdefault("data_init", False)
    kw.setdefault("restart_dead_codes", False)
    vq = Q.VectorQuantizer(8, 3, **kw)
    with torch.no_grad():
        vq.codebook.copy_(torch.randn(8, 3))
        if vq.ema:
            vq.embed_sum.copy_(vq.codebook)
    return vq


def test_quantizer_picks_the_nearest_code():
    vq = _quantizer()
    z_e = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(1))
    out = vq(z_e)
    flat = z_e.movedim(1, -1).reshape(-1, 3)
    brute = torch.cdist(flat, vq.codebook.detach()).argmin(dim=1)
    assert out.indices.shape == (2, 4, 5) and out.indices.dtype == torch.long
    assert torch.equal(out.indices.reshape(-1), brute)
    # the output *is* the chosen codes (the straight-through trick changes gradients, not values)
    torch.testing.assert_close(out.z_q, vq.lookup(out.indices))
    torch.testing.assert_close(out.z_q.movedim(1, -1).reshape(-1, 3), vq.codebook.detach()[brute])


def test_gradient_passes_straight_through():
    vq = _quantizer()
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    w = torch.randn(2, 3, 4, 4)
    (vq(z_e).z_q * w).sum().backward()
    torch.testing.assert_close(z_e.grad, w)  # dz_q/dz_e = identity
    assert vq.codebook.grad is None or torch.all(vq.codebook.grad == 0), "the decoder path must not train codes"
    # and the helper on its own
    a = torch.randn(5, requires_grad=True)
    out = Q.straight_through(a, torch.zeros(5))
    assert torch.equal(out, torch.zeros(5))
    out.sum().backward()
    torch.testing.assert_close(a.grad, torch.ones(5))


def test_commitment_and_codebook_terms_have_the_right_sign_and_target():
    vq = _quantizer(beta=0.25)
    z_e = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(2), requires_grad=True)
    out = vq(z_e)
    e = vq.lookup(out.indices).detach()
    n = z_e.numel()
    # both terms are mean squared distances, i.e. non-negative penalties
    torch.testing.assert_close(out.commitment_loss, ((z_e - e) ** 2).sum() / n)
    torch.testing.assert_close(out.codebook_loss, ((z_e - e) ** 2).sum() / n)
    assert out.loss >= 0
    out.loss.backward()
    # d/dz_e [beta ||z_e - sg(e)||^2 / n] = 2 beta (z_e - e) / n: descent pulls z_e towards its code
    torch.testing.assert_close(z_e.grad, 2 * 0.25 * (z_e - e).detach() / n)
    # the codebook gets only the codebook term, which pulls each code towards its assigned z_e
    flat = z_e.detach().movedim(1, -1).reshape(-1, 3)
    idx = out.indices.reshape(-1)
    expected = torch.zeros(8, 3).index_add_(0, idx, 2 * (vq.codebook.detach()[idx] - flat) / n)
    torch.testing.assert_close(vq.codebook.grad, expected)
    # one small gradient step on both lowers the distance between z_e and its code
    before = ((flat - vq.codebook.detach()[idx]) ** 2).sum()
    with torch.no_grad():
        z_new = (z_e - 0.5 * n * z_e.grad).movedim(1, -1).reshape(-1, 3)
        codebook_new = vq.codebook - 0.5 * vq.codebook.grad
    assert ((z_new - codebook_new[idx]) ** 2).sum() < before


def test_ema_codebook_moves_each_used_code_to_its_cluster_mean():
    vq = _quantizer(ema=True, decay=0.0, eps=1e-12)
    assert not any(p is vq.codebook for p in vq.parameters()), "with EMA the codebook is a buffer, not trained by gradients"
    z_e = torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(3))
    old = vq.codebook.clone()
    out = vq.train()(z_e)
    flat, idx = z_e.movedim(1, -1).reshape(-1, 3), out.indices.reshape(-1)
    for k in range(8):
        members = flat[idx == k]
        if len(members):
            torch.testing.assert_close(vq.codebook[k], members.mean(0), rtol=1e-4, atol=1e-5)
    assert torch.equal(torch.nonzero(~torch.isclose(vq.codebook, old).all(1)).flatten().unique(), idx.unique().sort().values)
    # without EMA, the loss contains no codebook term
    torch.testing.assert_close(out.loss, 0.25 * out.commitment_loss)
    # evaluation mode leaves the codebook alone
    frozen = vq.codebook.clone()
    vq.eval()(z_e * 3)
    assert torch.equal(vq.codebook, frozen)


@pytest.mark.parametrize("ema", [False, True])
def test_dead_codes_are_restarted_onto_encoder_outputs(ema):
    vq = _quantizer(ema=ema, restart_dead_codes=True, usage_decay=0.5)
    with torch.no_grad():
        vq.codebook[5] = 100.0  # far from every input: never chosen
        if ema:
            vq.embed_sum[5] = 100.0
    vq.train()
    g = torch.Generator().manual_seed(4)
    for _ in range(10):
        vq(torch.randn(2, 3, 4, 4, generator=g))
    assert int(vq.restarts) >= 1
    assert vq.codebook[5].abs().max() < 10, "the dead code should now sit on an encoder output"
    out = vq(torch.randn(8, 3, 4, 4, generator=g))
    assert Q.codebook_usage(out.indices, 8) == 1.0 or 5 in out.indices


def test_data_init_starts_every_code_on_an_encoder_output():
    torch.manual_seed(0)
    vq = Q.VectorQuantizer(16, 3, restart_dead_codes=False).train()
    z_e = torch.randn(4, 3, 4, 4) * 5 + 10
    vq(z_e)
    flat = z_e.movedim(1, -1).reshape(-1, 3)
    distances = (vq.codebook.detach()[:, None, :] - flat[None, :, :]).norm(dim=-1)  # (K, N)
    assert distances.min(dim=1).values.max() < 1e-6
    assert bool(vq.initialized)


def test_usage_and_perplexity():
    assert Q.perplexity(torch.arange(10).repeat(5), 10) == pytest.approx(10.0)
    assert Q.perplexity(torch.zeros(50, dtype=torch.long), 10) == pytest.approx(1.0)
    two = torch.tensor([0, 0, 0, 1])  # p = (3/4, 1/4)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert Q.perplexity(two, 4) == pytest.approx(math.exp(h))
    assert Q.codebook_usage(two, 4) == 0.5
    assert Q.codebook_usage(torch.arange(4), 4) == 1.0


def test_errors_name_the_problem():
    vq = _quantizer()
    with pytest.raises(ValueError, match=r"\(B, 3, h, w\)"):
        vq(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="0..7"):
        vq.lookup(torch.tensor([[[9]]]))
    model = Q.VQVAE((1, 8, 8), channels=(8, 16), code_dim=4, num_codes=8)
    with pytest.raises(ValueError, match="255"):
        model.encode(torch.full((1, 1, 8, 8), 200.0))
    with pytest.raises(ValueError, match="divisible"):
        Q.VQVAE((1, 10, 10), channels=(8, 16, 16))


def test_vqvae_shapes_and_a_short_training_run():
    torch.manual_seed(0)
    x = data.digits8x8("train", value_range="unit").x
    model = Q.VQVAE((1, 8, 8), channels=(16, 32), code_dim=8, num_codes=16, num_residual=1)
    assert model.grid_shape == (4, 4)
    x_hat, vq = model(x[:5])
    assert x_hat.shape == (5, 1, 8, 8) and vq.indices.shape == (5, 4, 4)
    before = float(torch.nn.functional.mse_loss(model.eval().reconstruct(x[:200]), x[:200]))
    loader = data.InMemoryLoader(x, batch_size=64, device="cpu")
    result = train.fit(model, Q.vqvae_loss_fn, loader, steps=80, lr=3e-3, progress=False, device="cpu")
    after = float(torch.nn.functional.mse_loss(model.reconstruct(x[:200]), x[:200]))
    assert after < 0.5 * before, f"reconstruction error should fall: {before:.4f} -> {after:.4f}"
    assert {"recon_mse", "commitment", "perplexity"} <= set(result.history.names())
    codes = model.encode_indices(x)
    assert codes.shape == (1000, 4, 4) and Q.codebook_usage(codes, 16) >= 0.75
    assert model.decode_indices(codes[:3]).shape == (3, 1, 8, 8)


def test_code_prior_shifts_masks_and_learns_a_pattern():
    torch.manual_seed(0)
    prior = Q.CodePrior(6, (2, 3), n_layer=1, n_head=2, n_embd=16)
    grids = torch.tensor([[[0, 1, 2], [3, 4, 5]], [[5, 4, 3], [2, 1, 0]]])
    x, y = prior.sequences(grids)
    assert torch.equal(x[0], torch.tensor([6, 0, 1, 2, 3, 4])) and torch.equal(y[0], torch.tensor([0, 1, 2, 3, 4, 5]))
    logits = prior(x)
    assert logits.shape == (2, 6, 7) and torch.isinf(logits[..., 6]).all(), "BOS can never be predicted"
    # log p(c) is the sum of the per-code log-probabilities, and the loss their mean
    logp = torch.log_softmax(logits, -1).gather(-1, y[..., None]).squeeze(-1).sum(1)
    torch.testing.assert_close(prior.log_prob(grids), logp.detach())
    torch.testing.assert_close(prior.loss(grids), -logp.sum() / 12)
    # an untrained prior is uniform over the 6 codes
    torch.testing.assert_close(prior.log_prob(grids), torch.full((2,), -6 * math.log(6)))
    # learn two patterns; samples reproduce them
    loader = data.InMemoryLoader(grids.repeat(16, 1, 1), batch_size=32, device="cpu")
    train.fit(prior, Q.prior_loss_fn, loader, steps=150, lr=1e-2, progress=False, device="cpu")
    samples = prior.sample(20, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (20, 2, 3) and samples.dtype == torch.long
    matches = [any(torch.equal(s, g) for g in grids) for s in samples]
    assert sum(matches) >= 18, f"a trained prior should reproduce its two training grids, got {sum(matches)}/20"
    with pytest.raises(ValueError, match=r"\(B, 2, 3\)"):
        prior.sequences(torch.zeros(1, 3, 3, dtype=torch.long))
