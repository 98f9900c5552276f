"""Tests of course_lib.models.score: noise levels, blurred mixtures, DSM, (annealed) Langevin dynamics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributions as D

from course_lib.models import score as sm


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def unequal_mixture(weights=(0.25, 0.75), std=0.3):
    """Two well-separated Gaussians at (-2, 0) and (2, 0) with unequal weights."""
    means = torch.tensor([[-2.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    return D.MixtureSameFamily(D.Categorical(probs=torch.tensor(weights, dtype=torch.float64)),
                               D.Independent(D.Normal(means, torch.full_like(means, std)), 1))


def test_geometric_sigmas():
    s = sm.geometric_sigmas(5.0, 0.01, 8)
    assert s.shape == (8,) and math.isclose(float(s[0]), 5.0, rel_tol=1e-5) and math.isclose(float(s[-1]), 0.01,
                                                                                              rel_tol=1e-5)
    ratios = s[:-1] / s[1:]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios), rtol=1e-4) and (ratios > 1).all()
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        sm.geometric_sigmas(0.1, 1.0)


def test_noisy_mixture_is_the_convolution_with_gaussian_noise():
    """q_sigma(x) = E_z p(x - sigma z), estimated by Monte Carlo, equals the closed form."""
    mixture, sigma = unequal_mixture(), 0.7
    blurred = sm.noisy_mixture(mixture, sigma)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(400_000, 2, generator=g, dtype=torch.float64)
    for point in ([0.0, 0.0], [1.5, -0.4], [-2.2, 0.3]):
        x = torch.tensor(point, dtype=torch.float64)
        mc = mixture.log_prob(x - sigma * z).exp().mean()
        assert math.isclose(float(blurred.log_prob(x).exp()), float(mc), rel_tol=0.02)
    # the diffusion marginal: sqrt(ab) x + sqrt(1 - ab) z
    a, sd = 0.6, 0.8
    scaled = sm.noisy_mixture(mixture, sd, scale=a)
    samples = a * mixture.sample((200_000,)) + sd * torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(samples.mean(0), scaled.mean, atol=0.01, rtol=0)
    torch.testing.assert_close(samples.var(0), scaled.variance, atol=0.02, rtol=0.01)
    mvn = D.MixtureSameFamily(D.Categorical(probs=torch.tensor([0.5, 0.5])),
                              D.MultivariateNormal(torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2) * 0.25))
    torch.testing.assert_close(sm.noisy_mixture(mvn, 0.5).component_distribution.covariance_matrix[0],
                               torch.eye(2) * 0.5)


def test_mixture_score_matches_finite_differences():
    mixture = unequal_mixture()
    x = torch.tensor([[0.3, -0.2], [1.9, 0.1], [-2.5, 0.4]], dtype=torch.float64)
    for sigma in (0.0, 0.5):
        dist = sm.noisy_mixture(mixture, sigma) if sigma else mixture
        h = 1e-5
        fd = torch.stack([(dist.log_prob(x + h * e) - dist.log_prob(x - h * e)) / (2 * h)
                          for e in torch.eye(2, dtype=torch.float64)], dim=1)
        torch.testing.assert_close(sm.mixture_score(mixture, sigma)(x), fd, rtol=1e-5, atol=1e-6)
        if sigma:
            torch.testing.assert_close(sm.mixture_score(mixture)(x, torch.full((3,), sigma)), fd, rtol=1e-5,
                                       atol=1e-6)


def test_dsm_loss_is_minimised_by_the_true_blurred_score():
    mixture = unequal_mixture()
    sigmas = sm.geometric_sigmas(2.0, 0.1, 5).double()
    x = mixture.sample((20_000,))
    exact = sm.mixture_score(mixture)

    def per_level(score_fn):
        """The DSM loss of ``score_fn`` with common random numbers (the same sigma draws and noise)."""
        return sm.dsm_loss(by_level(score_fn), x, sigmas, generator=torch.Generator().manual_seed(1))

    best = float(per_level(exact))
    assert best < float(per_level(lambda xt, s: 1.2 * exact(xt, s)))
    assert best < float(per_level(lambda xt, s: exact(xt, s) + 0.2))
    assert best < float(per_level(lambda xt, s: 0.8 * exact(xt, s)))


def by_level(score_fn):
    """Evaluate a one-level-per-call score on a batch with mixed noise levels, level by level."""

    def batched(xt, s):
        out = torch.empty_like(xt)
        for v in s.unique():
            mask = s == v
            out[mask] = score_fn(xt[mask], s[mask])
        return out

    return batched


def test_trained_score_net_approximates_the_true_score():
    from course_lib import train

    torch.manual_seed(0)
    mixture = unequal_mixture(std=0.4)
    sigmas = sm.geometric_sigmas(2.0, 0.1, 6)
    data = mixture.sample((4096,)).float()
    loader = [(data[i : i + 256],) for i in range(0, 4096, 256)]
    net = sm.NoiseConditionalScoreNet(2, width=64, depth=2)
    train.fit(net, lambda m, b: sm.dsm_loss(m, b[0], sigmas), loader, steps=400, lr=3e-3, device="cpu",
              progress=False)
    x = mixture.sample((500,)).float() + 0.5 * torch.randn(500, 2)
    with torch.no_grad():
        learned = net(x, 0.5)
    true = sm.mixture_score(mixture, 0.5)(x)
    cosine = torch.nn.functional.cosine_similarity(learned, true, dim=1).mean()
    assert cosine > 0.9, f"the learned score should point where the true one does (cosine {cosine:.2f})"


def test_langevin_with_the_exact_score_samples_a_gaussian():
    target = D.MultivariateNormal(torch.tensor([1.0, -1.0]), torch.tensor([[1.0, 0.5], [0.5, 0.8]]))

    def score(x):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            return torch.autograd.grad(target.log_prob(xg).sum(), xg)[0]

    g = torch.Generator().manual_seed(2)
    x = sm.langevin_dynamics(score, torch.zeros(20_000, 2), step_size=0.01, n_steps=800, generator=g)
    torch.testing.assert_close(x.mean(0), target.mean, atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), target.covariance_matrix, atol=0.06, rtol=0)


def test_annealed_langevin_with_exact_scores_samples_the_mixture_and_plain_langevin_does_not():
    mixture = unequal_mixture(weights=(0.25, 0.75), std=0.3)
    sigmas = sm.geometric_sigmas(3.0, 0.05, 10)
    g = torch.Generator().manual_seed(3)
    start = torch.rand(4000, 2, generator=g, dtype=torch.float64) * 8 - 4
    x = sm.annealed_langevin(sm.mixture_score(mixture), start, sigmas, n_steps_each=50, step_lr=5e-4, generator=g)
    right = (x[:, 0] > 0).double().mean()
    assert abs(float(right) - 0.75) < 0.03, f"annealing should recover the weight 0.75, got {right:.3f}"
    for centre, mask in ((2.0, x[:, 0] > 0), (-2.0, x[:, 0] <= 0)):
        assert abs(float(x[mask, 0].mean()) - centre) < 0.05
        assert abs(float(x[mask].std(0).mean()) - 0.3) < 0.05
    # plain Langevin at the data's own score keeps the start's 50/50 split: it cannot cross between modes
    plain = sm.langevin_dynamics(sm.mixture_score(mixture, 0.0), start, step_size=5e-3, n_steps=500, generator=g)
    assert abs(float((plain[:, 0] > 0).double().mean()) - 0.5) < 0.05


def test_annealed_langevin_trajectory_and_errors():
    mixture = unequal_mixture()
    sigmas = sm.geometric_sigmas(1.0, 0.1, 3)
    out = sm.annealed_langevin(sm.mixture_score(mixture), torch.zeros(5, 2, dtype=torch.float64), sigmas,
                               n_steps_each=10, keep_every=10, return_trajectory=True)
    assert out.trajectory.shape == (5, 5, 2) and len(out.sigmas) == 4
    with pytest.raises(ValueError, match="decrease"):
        sm.annealed_langevin(sm.mixture_score(mixture), torch.zeros(2, 2), sigmas.flip(0))
    with pytest.raises(ValueError, match="batch of vectors"):
        sm.dsm_loss(lambda x, s: x, torch.zeros(4, 1, 2, 2), sigmas)
