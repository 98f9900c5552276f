"""Tests for course_lib.models.vae: every formula against an independent reference.

References: torch.distributions (KL, log-densities of Normal, Bernoulli, Categorical, MultivariateNormal),
closed forms (Gaussian expectations and their gradients), and probabilistic PCA, a linear-Gaussian
VAE whose log p(x), posterior and ELBO are known exactly, so every bound can be checked against the truth.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from course_lib import data, train
from course_lib.models import vae as V

torch.set_default_dtype(torch.float32)


# =========================================================================== Gaussian bookkeeping
def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_q, logvar_q = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    mu_p, logvar_p = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)

    def normal(mu, logvar):
        return D.Independent(D.Normal(mu, torch.exp(0.5 * logvar)), 1)

    ours = V.gaussian_kl(mu_q, logvar_q, mu_p, logvar_p)
    ref = D.kl_divergence(normal(mu_q, logvar_q), normal(mu_p, logvar_p))
    assert ours.shape == (7,)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # the VAE's default: the standard-normal prior
    ref0 = D.kl_divergence(normal(mu_q, logvar_q), normal(torch.zeros(5), torch.zeros(5)))
    torch.testing.assert_close(V.gaussian_kl(mu_q, logvar_q), ref0, rtol=1e-5, atol=1e-5)
    # KL(q || q) = 0 and KL >= 0
    torch.testing.assert_close(V.gaussian_kl(mu_q, logvar_q, mu_q, logvar_q), torch.zeros(7), atol=1e-6, rtol=0)
    assert (ours >= 0).all()


def test_gaussian_kl_is_not_symmetric():
    # a classic slip is swapping q and p; the formula must know which is which
    mu, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, -1.0]])
    forward = V.gaussian_kl(mu, logvar)
    reverse = V.gaussian_kl(torch.zeros(1, 2), torch.zeros(1, 2), mu, logvar)
    assert not torch.allclose(forward, reverse)


def test_log_normal_diag_and_prior_match_torch():
    g = torch.Generator().manual_seed(1)
    z, mu, logvar = (torch.randn(3, 4, 6, generator=g) for _ in range(3))
    ref = D.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(V.log_normal_diag(z, mu, logvar), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(V.log_standard_normal(z), D.Normal(0.0, 1.0).log_prob(z).sum(-1), rtol=1e-5, atol=1e-5)


def test_reparameterize_has_the_right_moments_and_shapes():
    mu, logvar = torch.tensor([[1.0, -3.0]]), torch.tensor([[0.0, math.log(4.0)]])
    z = V.reparameterize(mu, logvar, num_samples=200_000, generator=torch.Generator().manual_seed(0))
    assert z.shape == (200_000, 1, 2)
    torch.testing.assert_close(z.mean(0), mu, atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([[1.0, 2.0]]), atol=0.02, rtol=0)
    assert V.reparameterize(mu, logvar).shape == (1, 2)
    a = V.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(5))
    b = V.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="same shape"):
        V.reparameterize(mu, logvar[:, :1])


def test_reparameterised_gradients_match_analytic_gradients():
    r"""d/dmu and d/dsigma of E[f(z)], z ~ N(mu, sigma^2), for f(z) = z^2 and f(z) = sin z:

    E[z^2] = mu^2 + sigma^2                -> (2 mu, 2 sigma)
    E[sin z] = sin(mu) exp(-sigma^2 / 2)   -> (cos(mu) e^{-s^2/2}, -sigma sin(mu) e^{-s^2/2})
    """
    mu0, sigma0 = torch.tensor([0.7, -1.3]), torch.tensor([0.5, 1.2])
    cases = {
        "square": (lambda z: z**2, lambda m, s: (2 * m, 2 * s)),
        "sin": (torch.sin, lambda m, s: (torch.cos(m) * torch.exp(-(s**2) / 2), -s * torch.sin(m) * torch.exp(-(s**2) / 2))),
    }
    for name, (f, analytic) in cases.items():
        mu = mu0.clone().double().requires_grad_()
        log_sigma = sigma0.log().double().requires_grad_()
        z = V.reparameterize(mu, 2 * log_sigma, num_samples=400_000, generator=torch.Generator().manual_seed(0))
        f(z).mean(0).sum().backward()
        d_mu, d_sigma = analytic(mu0.double(), sigma0.double())
        torch.testing.assert_close(mu.grad, d_mu, atol=0.01, rtol=0, msg=f"{name}: d/dmu")
        # the chain rule through log sigma: d/dlog_sigma = sigma d/dsigma
        torch.testing.assert_close(log_sigma.grad, sigma0.double() * d_sigma, atol=0.01, rtol=0, msg=f"{name}: d/dsigma")


# ============================================================================= likelihoods
def test_bernoulli_likelihood_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 3, 3, generator=g) * 3
    x = torch.bernoulli(torch.full((4, 1, 3, 3), 0.5), generator=g)
    ref = D.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(V.BernoulliLikelihood().log_prob(x, logits), ref, rtol=1e-5, atol=1e-5)


def test_categorical_likelihood_matches_torch_and_uses_the_level_layout():
    g = torch.Generator().manual_seed(0)
    levels, c = 5, 2
    params = torch.randn(3, levels * c, 4, 4, generator=g)
    x = torch.randint(0, levels, (3, c, 4, 4), generator=g).float()
    lik = V.CategoricalLikelihood(levels)
    # documented layout: level l of channel ch is output channel l * C + ch
    logits = params.view(3, levels, c, 4, 4).permute(0, 2, 3, 4, 1)  # (N, C, H, W, L)
    ref = D.Categorical(logits=logits).log_prob(x.long()).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x, params), ref, rtol=1e-5, atol=1e-4)
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(lik.mean(params), (probs * torch.arange(levels)).sum(-1), rtol=1e-5, atol=1e-5)
    sample = lik.sample(params, generator=g)
    assert sample.shape == x.shape and sample.min() >= 0 and sample.max() <= levels - 1
    # uniform logits: exactly log(L) nats per pixel
    flat = torch.zeros(1, levels * c, 4, 4)
    torch.testing.assert_close(-lik.log_prob(x[:1], flat), torch.tensor([c * 16 * math.log(levels)]))


def test_gaussian_likelihood_matches_torch():
    g = torch.Generator().manual_seed(0)
    x, mean = torch.rand(4, 1, 3, 3, generator=g), torch.rand(4, 1, 3, 3, generator=g)
    lik = V.GaussianLikelihood(0.3, learn_sigma=True)
    ref = D.Normal(mean, 0.3).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x, mean), ref, rtol=1e-5, atol=1e-4)
    assert any(p is lik.log_sigma for p in lik.parameters()), "learn_sigma=True must make log sigma a parameter"
    assert not list(V.GaussianLikelihood(0.3).parameters())


def test_likelihoods_refuse_data_in_the_wrong_range():
    with pytest.raises(ValueError, match="binar"):
        V.BernoulliLikelihood().check(torch.rand(2, 1, 4, 4) * 0.9 + 0.05)
    with pytest.raises(ValueError, match="0..16"):
        V.CategoricalLikelihood(17).check(torch.full((2, 1, 4, 4), 0.5))
    with pytest.raises(ValueError, match="levels"):
        V.CategoricalLikelihood(1)


# ===================================================================== probabilistic PCA: the truth
def _ppca(orthogonal: bool, seed: int = 0, D_=6, d=2, sigma=0.5):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D_, d, generator=g, dtype=torch.float64)
    if orthogonal:
        q, _ = torch.linalg.qr(W)
        W = q * torch.tensor([2.0, 0.8], dtype=torch.float64)  # orthogonal columns, different lengths
    b = torch.randn(D_, generator=g, dtype=torch.float64)
    z = torch.randn(64, d, generator=g, dtype=torch.float64)
    x = z @ W.T + b + sigma * torch.randn(64, D_, generator=g, dtype=torch.float64)
    return W, b, sigma, x


def test_ppca_marginal_and_posterior_match_independent_references():
    W, b, sigma, x = _ppca(orthogonal=False)
    ref = D.MultivariateNormal(b, covariance_matrix=W @ W.T + sigma**2 * torch.eye(6, dtype=torch.float64))
    torch.testing.assert_close(V.ppca_log_marginal(x, W, b, sigma), ref.log_prob(x))
    # posterior by Bayes' rule for jointly Gaussian (z, x): precision I + W^T W / sigma^2
    mean, cov = V.ppca_posterior(x, W, b, sigma)
    precision = torch.eye(2, dtype=torch.float64) + W.T @ W / sigma**2
    torch.testing.assert_close(cov, torch.linalg.inv(precision))
    torch.testing.assert_close(mean, (x - b) @ W / sigma**2 @ torch.linalg.inv(precision).T)
    # Bayes: log p(x) = log p(x | z) + log p(z) - log p(z | x) for any z
    z = torch.randn(64, 2, dtype=torch.float64)
    log_joint = D.Normal(z @ W.T + b, sigma).log_prob(x).sum(1) + D.Normal(0.0, 1.0).log_prob(z).sum(1)
    log_post = D.MultivariateNormal(mean, covariance_matrix=cov).log_prob(z)
    torch.testing.assert_close(log_joint - log_post, V.ppca_log_marginal(x, W, b, sigma))


def test_elbo_equals_log_px_with_the_true_posterior():
    W, b, sigma, x = _ppca(orthogonal=True)
    model = V.ppca_vae(W, b, sigma)
    log_px = V.ppca_log_marginal(x, W, b, sigma)
    # the encoder is the exact posterior, so every importance weight equals p(x): zero variance
    log_w = model.log_weights(x, 50, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(log_w, log_px.expand(50, -1))
    with torch.no_grad():
        # the ELBO itself (its expectation, in closed form) equals log p(x) ...
        torch.testing.assert_close(_closed_form_elbo(model, x), log_px, rtol=0, atol=1e-6)
        # ... and so does the Monte Carlo estimate recon - KL, up to its sampling noise (with an analytic
        # KL the estimator is unbiased but not zero-variance, unlike the log-weights above)
        elbo = model.elbo(x, num_samples=20_000, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(elbo, log_px, rtol=0, atol=0.03)


def _closed_form_elbo(model, x):
    r"""E_q[log p(x|z)] - KL for a linear-Gaussian model, with no sampling:
    E_q ||x - W z - b||^2 = ||x - W mu - b||^2 + sum_j ||W_j||^2 s_j^2."""
    mu, logvar = model.encode(x)
    W, b = model.decoder.linear.weight, model.decoder.linear.bias
    sigma = model.likelihood.sigma
    sq = ((x - mu @ W.T - b) ** 2).sum(1) + (logvar.exp() * (W**2).sum(0)).sum(1)
    recon = -0.5 * x.shape[1] * math.log(2 * math.pi * sigma**2) - sq / (2 * sigma**2)
    return recon - V.gaussian_kl(mu, logvar)


def test_elbo_and_iwae_bounds_below_log_px_rising_with_k():
    W, b, sigma, x = _ppca(orthogonal=False)
    model = V.ppca_vae(W, b, sigma)
    with torch.no_grad():  # a worse encoder than the optimal mean-field one makes the gaps clearer
        model.encoder.logvar.add_(0.8)
        model.encoder.linear.bias.add_(0.3)
        log_px = V.ppca_log_marginal(x, W, b, sigma)
        exact_elbo = _closed_form_elbo(model, x)
        # the Monte Carlo ELBO agrees with the closed form
        mc = model.elbo(x, num_samples=20_000, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(mc, exact_elbo, rtol=0, atol=0.15)
        torch.testing.assert_close(mc.mean(), exact_elbo.mean(), rtol=0, atol=0.03)
        assert (exact_elbo < log_px - 0.1).all(), "ELBO <= log p(x), with a visible gap for a poor encoder"
        gen = torch.Generator().manual_seed(1)
        means = {}
        for k in (1, 4, 16, 64, 256):
            reps = 8192 // k  # the expectation over draws, estimated with 8192 log-weights per example
            means[k] = float(model.iwae_bound(x.repeat(reps, 1), k, generator=gen).mean())
        elbo, target = float(exact_elbo.mean()), float(log_px.mean())
        print(f"ELBO {elbo:.4f}, IWAE {means}, log p(x) {target:.4f}")
        assert abs(means[1] - elbo) < 0.03, "IWAE with k=1 is the ELBO in expectation"
        values = list(means.values())
        assert all(a < b_ for a, b_ in zip(values, values[1:])), f"IWAE bounds should rise with k: {means}"
        assert values[-1] <= target + 0.01, f"IWAE bounds stay below log p(x) = {target:.3f}: {means}"
        assert target - values[-1] < 0.2 * (target - elbo), "at k=256 the bound closes most of the gap"
        # the importance-sampled estimate with k in the thousands is within a few hundredths of a nat
        est = model.log_likelihood(x, k=5000, batch_size=16, max_decoded=4096, generator=gen)
        assert est.shape == (64,)
        torch.testing.assert_close(est.mean(), log_px.mean(), rtol=0, atol=0.02)


def test_mean_field_encoder_of_ppca_is_optimal_among_diagonal_gaussians():
    # perturbing the mean-field encoder in any direction can only lower the closed-form ELBO
    W, b, sigma, x = _ppca(orthogonal=False, seed=3)
    model = V.ppca_vae(W, b, sigma)
    with torch.no_grad():
        best = _closed_form_elbo(model, x).mean()
        assert best < V.ppca_log_marginal(x, W, b, sigma).mean(), "non-orthogonal W: mean-field is not exact"
        for p in (model.encoder.logvar, model.encoder.linear.bias):
            for delta in (-0.1, 0.1):
                p.add_(delta)
                assert _closed_form_elbo(model, x).mean() < best
                p.sub_(delta)


# ================================================================================ VAE plumbing
def _digits_vae(arch="mlp", beta=1.0):
    L = data.DIGITS8X8_LEVELS
    if arch == "mlp":
        enc, dec = V.MLPEncoder((1, 8, 8), 4, (32,), input_scale=1 / 16), V.MLPDecoder(4, (1, 8, 8), L, (32,))
    else:
        enc, dec = V.ConvEncoder((1, 8, 8), 4, (8, 16), input_scale=1 / 16), V.ConvDecoder(4, (1, 8, 8), L, (16, 8))
    return V.VAE(enc, dec, V.CategoricalLikelihood(L), beta=beta)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_shapes_bounds_and_sampling(arch):
    torch.manual_seed(0)
    model = _digits_vae(arch)
    x = data.digits8x8("test", value_range="counts").x[:10]
    elbo, recon, kl = model.elbo(x, return_terms=True)
    assert elbo.shape == recon.shape == kl.shape == (10,)
    torch.testing.assert_close(elbo, recon - kl)
    assert model.iwae_bound(x, 5).shape == (10,)
    ll = model.log_likelihood(x, k=64, batch_size=3, max_decoded=20)
    assert ll.shape == (10,) and torch.isfinite(ll).all()
    for how in ("mean", "mode", "sample"):
        s = model.sample(6, how=how, generator=torch.Generator().manual_seed(0))
        assert s.shape == (6, 1, 8, 8)
    assert model.reconstruct(x).shape == x.shape
    # an untrained model with near-uniform logits: about 64 log 17 nats per image, and the bounds are ordered
    assert 100 < -float(ll.mean()) < 400


def test_beta_weights_only_the_kl_in_the_training_loss():
    model = _digits_vae(beta=4.0)
    x = data.digits8x8("train", value_range="counts").x[:16]
    loss, stats = model.loss(x, generator=torch.Generator().manual_seed(0))
    _, recon, kl = model.elbo(x, return_terms=True, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss, -(recon - 4.0 * kl).mean())
    torch.testing.assert_close(stats["elbo"], (recon - kl).mean(), msg="the logged ELBO is the true one (beta = 1)")


def test_errors_name_the_fix():
    L = data.DIGITS8X8_LEVELS
    with pytest.raises(ValueError, match="params_per_pixel=17"):
        V.VAE(V.MLPEncoder((1, 8, 8), 4), V.MLPDecoder(4, (1, 8, 8), 1), V.CategoricalLikelihood(L))
    with pytest.raises(ValueError, match="gaussian=True"):
        V.VAE(V.MLPEncoder((1, 8, 8), 4, gaussian=False), V.MLPDecoder(4, (1, 8, 8), L), V.CategoricalLikelihood(L))
    with pytest.raises(ValueError, match="gaussian=False"):
        V.Autoencoder(V.MLPEncoder((1, 8, 8), 4), V.MLPDecoder(4, (1, 8, 8)), V.BernoulliLikelihood())
    model = _digits_vae()
    with pytest.raises(ValueError, match="0..16"):
        model.elbo(data.digits8x8("test", value_range="unit").x[:4] * 0.5)
    with pytest.raises(ValueError, match="shape"):
        model.elbo(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="objective"):
        model.loss(data.digits8x8("test", value_range="counts").x[:4], objective="vae")
    with pytest.raises(ValueError, match="divisible"):
        V.ConvEncoder((1, 9, 9), 4, (8, 16))


def test_short_training_improves_the_elbo_and_iwae_objective_runs():
    torch.manual_seed(0)
    train_set = data.digits8x8("train", value_range="counts")
    x_val = data.digits8x8("val", value_range="counts").x
    model = _digits_vae()
    with torch.no_grad():
        before = float(model.elbo(x_val, generator=torch.Generator().manual_seed(0)).mean())
    loader = data.InMemoryLoader(train_set.x, batch_size=64, device="cpu")
    train.fit(model, V.loss_fn("elbo"), loader, steps=150, lr=3e-3, progress=False, device="cpu")
    with torch.no_grad():
        after = float(model.elbo(x_val, generator=torch.Generator().manual_seed(0)).mean())
    assert after > before + 30, f"ELBO should rise clearly after training: {before:.1f} -> {after:.1f}"
    result = train.fit(model, V.loss_fn("iwae", k=4), loader, steps=20, progress=False, device="cpu")
    assert "iwae" in result.history


def test_autoencoder_and_dynamic_binarisation():
    torch.manual_seed(0)
    x = data.digits8x8("train", value_range="unit").x[:64]
    ae = V.Autoencoder(V.MLPEncoder((1, 8, 8), 2, (32,), gaussian=False), V.MLPDecoder(2, (1, 8, 8), 1, (32,)), V.BernoulliLikelihood())
    loss, stats = V.autoencoder_loss_fn()(ae, ((x > 0.5).float(),))
    assert torch.isfinite(V.autoencoder_loss_fn(binarize=True)(ae, (x,))[0])
    assert loss.dim() == 0 and "recon" in stats
    vae = V.VAE(V.MLPEncoder((1, 8, 8), 2, (32,)), V.MLPDecoder(2, (1, 8, 8), 1, (32,)), V.BernoulliLikelihood())
    loss, _ = V.loss_fn("elbo", binarize=True)(vae, (x,))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="binar"):
        V.loss_fn("elbo")(vae, (x,))  # grey values given to a Bernoulli likelihood
