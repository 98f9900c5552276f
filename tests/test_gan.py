"""Tests of course_lib.models.gan: losses against hand computations, the gradient penalty, the alternating step."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

from course_lib.models import gan as G
from course_lib.train import NonFiniteLossError


def _sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u))


# ---- losses against hand computations ------------------------------------------------------------


def test_discriminator_loss_is_binary_cross_entropy_real_one_fake_zero():
    real = torch.tensor([0.3, -1.2, 2.0])
    fake = torch.tensor([-0.5, 1.5])
    by_hand = -sum(math.log(_sigmoid(u)) for u in real.tolist()) / 3 - sum(
        math.log(1 - _sigmoid(u)) for u in fake.tolist()
    ) / 2
    assert G.discriminator_loss(real, fake).item() == pytest.approx(by_hand, rel=1e-6)
    bce = nn.functional.binary_cross_entropy_with_logits
    assert G.discriminator_loss(real, fake).item() == pytest.approx(
        bce(real, torch.ones(3)).item() + bce(fake, torch.zeros(2)).item(), rel=1e-6)
    # at D = 1/2 everywhere the loss is 2 log 2; labels swapped would make a confident D lose
    assert G.discriminator_loss(torch.zeros(4), torch.zeros(4)).item() == pytest.approx(2 * math.log(2))
    good = G.discriminator_loss(torch.full((4,), 8.0), torch.full((4,), -8.0)).item()
    bad = G.discriminator_loss(torch.full((4,), -8.0), torch.full((4,), 8.0)).item()
    assert good < 1e-3 < 10 < bad


def test_generator_losses_by_hand_and_their_gradients():
    fake = torch.tensor([-3.0, 0.0, 2.0], requires_grad=True)
    mm = G.generator_loss_minimax(fake)
    ns = G.generator_loss_nonsaturating(fake)
    assert mm.item() == pytest.approx(sum(math.log(1 - _sigmoid(u)) for u in [-3.0, 0.0, 2.0]) / 3, rel=1e-6)
    assert ns.item() == pytest.approx(-sum(math.log(_sigmoid(u)) for u in [-3.0, 0.0, 2.0]) / 3, rel=1e-6)
    # d/dl: minimax -sigma(l)/B (vanishes when D rejects the fake), non-saturating -(1 - sigma(l))/B
    (g_mm,) = torch.autograd.grad(mm, fake)
    (g_ns,) = torch.autograd.grad(ns, fake)
    for u, a, b in zip([-3.0, 0.0, 2.0], g_mm.tolist(), g_ns.tolist()):
        assert a == pytest.approx(-_sigmoid(u) / 3, rel=1e-5)
        assert b == pytest.approx(-(1 - _sigmoid(u)) / 3, rel=1e-5)
    # saturation: a rejected fake (logit -10) gives the minimax loss almost no gradient
    logit = torch.tensor([-10.0], requires_grad=True)
    (g_rej,) = torch.autograd.grad(G.generator_loss_minimax(logit), logit)
    (g_ok,) = torch.autograd.grad(G.generator_loss_nonsaturating(logit), logit)
    assert abs(g_rej.item()) < 1e-4 and abs(g_ok.item()) > 0.99


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for value in (G.discriminator_loss(big, big), G.generator_loss_minimax(big), G.generator_loss_nonsaturating(big)):
        assert torch.isfinite(value)


def test_wgan_losses_by_hand():
    real = torch.tensor([1.0, 2.0, 3.0])
    fake = torch.tensor([-1.0, 0.5])
    assert G.wgan_critic_loss(real, fake).item() == pytest.approx(-0.25 - 2.0)
    assert G.wgan_generator_loss(fake).item() == pytest.approx(0.25)


def test_optimal_discriminator_gives_minus_log4_plus_2js():
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.2, 0.6])
    d = G.optimal_discriminator(p, q)
    value = (p * d.log()).sum() + (q * (1 - d).log()).sum()
    m = (p + q) / 2
    js = 0.5 * (p * (p / m).log()).sum() + 0.5 * (q * (q / m).log()).sum()
    assert value.item() == pytest.approx(-math.log(4) + 2 * js.item(), rel=1e-6)


# ---- gradient penalty --------------------------------------------------------------------------------


def test_gradient_penalty_zero_for_unit_norm_linear_critic_and_positive_otherwise():
    torch.manual_seed(0)
    real, fake = torch.randn(64, 1, 28, 28), torch.randn(64, 1, 28, 28)
    w = torch.randn(784)
    for scale, expected in ((1.0, 0.0), (3.0, 4.0), (0.5, 0.25)):
        lin = nn.Linear(784, 1)
        with torch.no_grad():
            lin.weight.copy_(scale * w / w.norm())

        def critic(x, lin=lin):
            return lin(x.flatten(1)).squeeze(1)

        gp = G.gradient_penalty(critic, real, fake)
        assert gp.item() == pytest.approx(expected, abs=1e-5), f"||w|| = {scale}: (||w|| - 1)^2 = {expected}"
    # a nonlinear critic: positive, and it back-propagates into the critic's weights
    mlp = G.MLPDiscriminator(data_dim=2)
    gp = G.gradient_penalty(mlp, torch.randn(32, 2), torch.randn(32, 2))
    assert gp.item() > 0
    gp.backward()
    weights = [p for name, p in mlp.named_parameters() if name.endswith("weight")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)  # (the last bias has no effect)


def test_interpolation_weight_is_uniform_and_points_lie_between():
    real, fake = torch.ones(20_000, 3), torch.zeros(20_000, 3)
    x_hat, eps = G.interpolate(real, fake, torch.Generator().manual_seed(0))
    assert eps.shape == (20_000,)
    assert torch.allclose(x_hat, eps[:, None].expand(-1, 3))  # eps * 1 + (1 - eps) * 0
    assert stats.kstest(eps.numpy(), "uniform").pvalue > 0.01
    assert 0.0 <= eps.min() and eps.max() <= 1.0
    with pytest.raises(ValueError, match="same shape"):
        G.interpolate(torch.zeros(2, 3), torch.zeros(3, 3))


# ---- networks and label contract ----------------------------------------------------------------------


def test_shapes_and_conditional_label_contract():
    gen = G.DCGANGenerator(latent_dim=8, width=8, num_classes=10)
    disc = G.DCGANDiscriminator(width=8, num_classes=10)
    z, y = torch.randn(5, 8), torch.tensor([0, 3, 9, 1, 1])
    x = gen(z, y)
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert disc(x, y).shape == (5,)
    # different labels, same z: different images
    gen.eval()
    assert not torch.allclose(gen(z, torch.zeros(5, dtype=torch.long)), gen(z, torch.full((5,), 7)))
    with pytest.raises(ValueError, match="conditional"):
        gen(z)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        gen(z, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="argmax"):
        gen(z, nn.functional.one_hot(y, 10))
    with pytest.raises(TypeError, match="integers"):
        gen(z, y.float())
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        gen(z, torch.tensor([0, 1, 2, 3, 10]))
    with pytest.raises(ValueError, match="unconditional"):
        G.DCGANGenerator(latent_dim=8, width=8)(z, y)
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        gen(torch.randn(5, 7), y)
    with pytest.raises(ValueError, match="disagree"):
        G.GAN(gen, G.DCGANDiscriminator(width=8))
    with pytest.raises(ValueError, match="28, 28"):
        disc(torch.zeros(2, 1, 8, 8), y[:2])


def test_sample_is_reproducible_and_restores_train_mode():
    torch.manual_seed(0)
    pair = G.GAN(G.MLPGenerator(), G.MLPDiscriminator())
    a = pair.sample(7, generator=torch.Generator().manual_seed(1))
    b = pair.sample(7, generator=torch.Generator().manual_seed(1))
    assert a.shape == (7, 2) and torch.equal(a, b)
    assert pair.generator.training


# ---- the alternating step ------------------------------------------------------------------------------


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(module, before, weights_only=False):
    """Which parameters moved (``weights_only``: only the weight matrices; a WGAN critic's last bias
    gets no gradient, since E f(x) - E f(G(z)) does not depend on it)."""
    return [not torch.equal(p, q) for (name, p), q in zip(module.named_parameters(), before)
            if not weights_only or name.endswith("weight")]


@pytest.mark.parametrize("loss", G.LOSSES)
def test_each_update_changes_only_its_own_network(loss):
    torch.manual_seed(0)
    pair = G.GAN(G.MLPGenerator(hidden=16), G.MLPDiscriminator(hidden=16))
    opt_g = torch.optim.SGD(pair.generator.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(pair.discriminator.parameters(), lr=0.1)
    real = torch.randn(32, 2) + 3
    g0, d0 = _snapshot(pair.generator), _snapshot(pair.discriminator)
    logs = G.gan_train_step(pair, real, opt_g, opt_d, loss=loss, update_generator=False)
    assert not any(_changed(pair.generator, g0)), "a discriminator step must not touch the generator"
    assert all(_changed(pair.discriminator, d0, weights_only=True)), "the D step should update every D weight"
    assert "g_loss" not in logs
    # the generator step: D's weights must not move, and D must be trainable again afterwards
    g0, d0 = _snapshot(pair.generator), _snapshot(pair.discriminator)
    opt_d_frozen = torch.optim.SGD(pair.discriminator.parameters(), lr=0.0)  # D step is a no-op
    logs = G.gan_train_step(pair, real, opt_g, opt_d_frozen, loss=loss)
    assert not any(_changed(pair.discriminator, d0)), "the generator step must not update the discriminator"
    assert all(_changed(pair.generator, g0)), "the generator step should update every G parameter"
    assert all(p.requires_grad for p in pair.discriminator.parameters())
    assert "g_loss" in logs and ("wasserstein" in logs if loss == "wgan-gp" else "d_real" in logs)


def test_generator_step_moves_fakes_towards_higher_D():
    torch.manual_seed(0)
    pair = G.GAN(G.MLPGenerator(hidden=16), G.MLPDiscriminator(hidden=16))
    opt_g = torch.optim.SGD(pair.generator.parameters(), lr=0.05)
    opt_d = torch.optim.SGD(pair.discriminator.parameters(), lr=0.0)
    z = torch.randn(256, 2)
    before = pair.discriminator(pair.generator(z)).mean().item()
    for _ in range(5):
        G.gan_train_step(pair, torch.randn(256, 2), opt_g, opt_d)
    after = pair.discriminator(pair.generator(z)).mean().item()
    assert after > before, "the non-saturating step must raise the discriminator's logit on the fakes"


def test_discriminator_step_labels_real_as_real():
    torch.manual_seed(0)
    pair = G.GAN(G.MLPGenerator(hidden=16), G.MLPDiscriminator(hidden=16))
    opt_g = torch.optim.Adam(pair.generator.parameters(), lr=0.0)
    opt_d = torch.optim.Adam(pair.discriminator.parameters(), lr=1e-2)
    real = torch.randn(128, 2) + torch.tensor([4.0, 4.0])
    for _ in range(100):
        logs = G.gan_train_step(pair, real, opt_g, opt_d, update_generator=False)
    assert logs["d_real"] > 0.9 and logs["d_fake"] < 0.1


def test_wrong_optimiser_and_bad_loss_are_refused():
    pair = G.GAN(G.MLPGenerator(hidden=8), G.MLPDiscriminator(hidden=8))
    both = torch.optim.SGD(pair.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(pair.discriminator.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="only the generator"):
        G.gan_train_step(pair, torch.randn(4, 2), both, opt_d)
    with pytest.raises(ValueError, match="loss must be one of"):
        G.gan_train_step(pair, torch.randn(4, 2), both, opt_d, loss="hinge")


def test_nan_loss_raises_course_error():
    pair = G.GAN(G.MLPGenerator(hidden=8), G.MLPDiscriminator(hidden=8))
    opt_g = torch.optim.SGD(pair.generator.parameters(), lr=0.1)
    opt_d = torch.optim.SGD(pair.discriminator.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError):
        G.gan_train_step(pair, torch.full((4, 2), float("nan")), opt_g, opt_d, step=3)


def test_conditional_step_and_train_gan_history():
    from course_lib.data import InMemoryLoader

    torch.manual_seed(0)
    pair = G.GAN(G.DCGANGenerator(latent_dim=8, width=4, num_classes=10),
                 G.DCGANDiscriminator(width=4, num_classes=10, norm="layer"))
    x = torch.rand(64, 1, 28, 28) * 2 - 1
    y = torch.arange(64) % 10
    calls = []
    result = G.train_gan(pair, InMemoryLoader(x, y, batch_size=16, device="cpu"), steps=6, loss="wgan-gp",
                         n_critic=2, ema_decay=0.9, log_every=3, device="cpu", progress=False,
                         callback=lambda step, gan, hist: calls.append(step))
    assert calls == [3, 6] and result.history.steps == [3, 6]
    assert {"critic_loss", "gp", "wasserstein", "g_loss"} <= set(result.history.names())
    assert result.ema.num_updates == 3  # one per generator step (every n_critic-th step)
    samples = result.sample(10, labels=torch.arange(10))
    assert samples.shape == (10, 1, 28, 28)


def test_train_gan_updates_an_ema_the_caller_made():
    from course_lib.data import InMemoryLoader
    from course_lib.train import EMA

    torch.manual_seed(0)
    pair = G.GAN(G.MLPGenerator(latent_dim=2), G.MLPDiscriminator())
    ema = EMA(pair.generator, 0.5, warmup=False)
    before = [p.clone() for p in ema.module.parameters()]
    seen = []

    def callback(step, gan, hist):  # the average is readable while training runs
        seen.append(ema.num_updates)

    result = G.train_gan(pair, InMemoryLoader(torch.randn(64, 2), batch_size=16, device="cpu"), steps=4,
                         ema=ema, log_every=2, device="cpu", progress=False, callback=callback)
    assert result.ema is ema and seen == [2, 4]
    assert any(not torch.equal(b, p) for b, p in zip(before, ema.module.parameters()))
    with pytest.raises(ValueError, match="not both"):
        G.train_gan(pair, InMemoryLoader(torch.randn(64, 2), batch_size=16, device="cpu"), steps=1, ema=ema,
                    ema_decay=0.9, device="cpu", progress=False)
    with pytest.raises(TypeError, match="EMA"):
        G.train_gan(pair, InMemoryLoader(torch.randn(64, 2), batch_size=16, device="cpu"), steps=1, ema=0.9,
                    device="cpu", progress=False)


def test_mode_coverage_counts_modes():
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    pts = torch.cat([torch.zeros(50, 2), torch.tensor([[5.0, 0.0]]).repeat(50, 1), torch.full((10, 2), 20.0)])
    cov = G.mode_coverage_2d(pts, centres, std=0.1)
    assert cov.counts.tolist() == [50, 50, 0] and cov.modes_covered == 2
    assert cov.high_quality == pytest.approx(100 / 110)


def test_build_mnist_gan_names():
    for name in G.MNIST_GANS:
        pair = G.build_mnist_gan(name)
        assert pair.latent_dim == G.MNIST_GANS[name]["latent_dim"]
    with pytest.raises(ValueError, match="known"):
        G.build_mnist_gan("biggan")


def test_sliced_wasserstein_of_a_shift():
    torch.manual_seed(0)
    x = torch.randn(4000, 2)
    assert G.sliced_wasserstein(x, x) == 0.0
    # shifting by a in 1-D moves every projection by a cos(angle): SW_1 = |a| E|cos phi| = 2|a| / pi in 2-D
    shifted = x + torch.tensor([3.0, 0.0])
    sw = G.sliced_wasserstein(x, shifted, num_projections=4000, generator=torch.Generator().manual_seed(0))
    assert sw == pytest.approx(3.0 * 2 / math.pi, rel=0.03)
    with pytest.raises(ValueError, match="same N"):
        G.sliced_wasserstein(x, x[:10])


def test_train_gan_logs_window_means(monkeypatch):
    """Each history row is the mean of the per-step values since the previous row, not the last step's value."""
    from course_lib.data import InMemoryLoader

    counter = iter(range(1, 100))
    monkeypatch.setattr(G, "gan_train_step", lambda *args, **kwargs: {"wasserstein": float(next(counter))})
    pair = G.GAN(G.MLPGenerator(hidden=8), G.MLPDiscriminator(hidden=8))
    result = G.train_gan(pair, InMemoryLoader(torch.randn(32, 2), batch_size=8, device="cpu"), steps=10,
                         loss="wgan-gp", log_every=4, device="cpu", progress=False)
    assert result.history.steps == [4, 8, 10]
    assert result.history.values["wasserstein"] == [2.5, 6.5, 9.5]  # means of 1..4, 5..8, 9..10
