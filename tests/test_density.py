"""Tests for course_lib.models.density against independent references: torch.distributions,
scipy.stats (multivariate_normal, gaussian_kde), sklearn.mixture.GaussianMixture and
sklearn.neighbors.KernelDensity, and closed forms."""

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGMM
from sklearn.neighbors import KernelDensity as SklearnKDE

from course_lib.models.density import GaussianDensity, GaussianMixture, KernelDensity, select_bandwidth


def _blobs(n_per=(300, 200, 150), seed=0, d=2, spread=6.0):
    """Well-separated isotropic blobs; returns (x: (N, d) float64, true means: (K, d))."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(len(n_per), d, generator=g, dtype=torch.float64) * spread
    # make sure the blobs really are far apart
    while torch.pdist(means).min() < 4.0:
        means = torch.randn(len(n_per), d, generator=g, dtype=torch.float64) * spread
    parts = [means[k] + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64) for k, n in enumerate(n_per)]
    return torch.cat(parts), means


def _correlated(n=500, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ a.T + torch.arange(d, dtype=torch.float64)


# ======================================================================================= Gaussian
def test_gaussian_mle_is_mean_and_biased_covariance():
    x = _correlated()
    g = GaussianDensity().fit(x)
    torch.testing.assert_close(g.mean, x.mean(0))
    # the MLE divides by N: numpy's bias=True; the unbiased 1/(N-1) estimate differs
    torch.testing.assert_close(g.covariance, torch.from_numpy(np.cov(x.numpy().T, bias=True)))
    unbiased = torch.from_numpy(np.cov(x.numpy().T))
    assert not torch.allclose(g.covariance, unbiased)
    torch.testing.assert_close(g.covariance * len(x) / (len(x) - 1), unbiased)


def test_gaussian_log_prob_matches_torch_and_scipy():
    x = _correlated()
    g = GaussianDensity().fit(x)
    query = _correlated(n=50, seed=1)
    ref = torch.distributions.MultivariateNormal(g.mean, covariance_matrix=g.covariance).log_prob(query)
    torch.testing.assert_close(g.log_prob(query), ref, rtol=1e-10, atol=1e-10)
    ref_scipy = stats.multivariate_normal(g.mean.numpy(), g.covariance.numpy()).logpdf(query.numpy())
    np.testing.assert_allclose(g.log_prob(query).numpy(), ref_scipy, rtol=1e-10)
    assert g.log_prob(query).shape == (50,)
    assert g.log_prob(query.float()).dtype == torch.float32


def test_gaussian_mle_maximises_the_likelihood():
    x = _correlated()
    g = GaussianDensity().fit(x)
    best = g.log_prob(x).mean()
    mu = g.mean.clone().requires_grad_(True)
    cov = g.covariance.clone().requires_grad_(True)
    ll = torch.distributions.MultivariateNormal(mu, covariance_matrix=cov).log_prob(x).mean()
    ll.backward()
    assert mu.grad.abs().max() < 1e-10 and cov.grad.abs().max() < 1e-10
    for scale in (0.9, 1.1):  # any other covariance (e.g. the unbiased one) fits worse
        other = torch.distributions.MultivariateNormal(g.mean, covariance_matrix=g.covariance * scale)
        assert other.log_prob(x).mean() < best


def test_gaussian_singular_data_needs_regularisation():
    x = _correlated(d=3)
    x = torch.cat([x, torch.zeros(len(x), 1, dtype=x.dtype)], dim=1)  # a constant dimension, like a border pixel
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianDensity().fit(x)
    g = GaussianDensity(reg_covar=1e-3).fit(x)
    assert torch.isfinite(g.log_prob(x)).all()
    torch.testing.assert_close(g.covariance[3, 3], torch.tensor(1e-3, dtype=torch.float64))


def test_gaussian_samples_have_the_fitted_moments():
    x = _correlated()
    g = GaussianDensity().fit(x.float())
    s = g.sample(20000, generator=torch.Generator().manual_seed(0))
    assert s.shape == (20000, 3) and s.dtype == torch.float32
    torch.testing.assert_close(s.double().mean(0), g.mean, atol=0.1, rtol=0)
    torch.testing.assert_close(torch.cov(s.double().T), g.covariance, atol=0.15, rtol=0.05)


def test_gaussian_errors_are_clear():
    with pytest.raises(RuntimeError, match="fit"):
        GaussianDensity().log_prob(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="flatten"):
        GaussianDensity().fit(torch.zeros(5, 1, 8, 8))
    with pytest.raises(TypeError, match="float"):
        GaussianDensity().fit(torch.zeros(5, 2, dtype=torch.long))
    g = GaussianDensity().fit(_correlated())
    with pytest.raises(ValueError, match="fitted on 3"):
        g.log_prob(torch.zeros(4, 2))


# ======================================================================================= mixture
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("init", ["kmeans++", "random"])
def test_em_log_likelihood_is_monotone(covariance_type, init):
    x = _correlated(n=400, d=2)  # one blob fitted with 4 components: many slow EM iterations
    gmm = GaussianMixture(4, covariance_type=covariance_type, init=init, max_iter=150, tol=0.0, seed=3).fit(x)
    h = np.array(gmm.history)
    assert len(h) == gmm.n_iter + 1 and gmm.n_iter > 10
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[1:])), f"EM decreased the log-likelihood: {np.diff(h).min()}"
    assert h[-1] > h[0]
    # the last entry is the log-likelihood of the final parameters
    assert math.isclose(h[-1], float(gmm.log_prob(x).mean()), rel_tol=1e-12)


def test_em_recovers_the_means_of_separated_blobs():
    x, true_means = _blobs()
    gmm = GaussianMixture(3, seed=0).fit(x)
    # match each true mean to its nearest fitted mean
    dist = torch.cdist(true_means, gmm.means)
    assert sorted(dist.argmin(1).tolist()) == [0, 1, 2], "two true blobs share one component"
    assert dist.min(1).values.max() < 0.15
    torch.testing.assert_close(gmm.weights.sort().values, torch.tensor([150, 200, 300.0], dtype=torch.float64) / 650, atol=0.01, rtol=0)
    assert gmm.converged


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_em_matches_sklearn_from_the_same_start(covariance_type):
    x = _correlated(n=300, d=3, seed=2)
    gmm = GaussianMixture(3, covariance_type=covariance_type, max_iter=25, tol=0.0, seed=1).fit(x)
    assert gmm.n_iter == 25
    init = gmm.initial_params
    precisions = torch.linalg.inv(init["covariances"]) if covariance_type == "full" else 1.0 / init["covariances"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = SklearnGMM(
            3,
            covariance_type=covariance_type,
            reg_covar=gmm.reg_covar,
            max_iter=25,
            tol=0.0,
            weights_init=init["weights"].numpy(),
            means_init=init["means"].numpy(),
            precisions_init=precisions.numpy(),
        ).fit(x.numpy())
    # 25 EM iterations from identical parameters give the same parameters and likelihood
    np.testing.assert_allclose(gmm.means.numpy(), ref.means_, atol=1e-8)
    np.testing.assert_allclose(gmm.weights.numpy(), ref.weights_, atol=1e-8)
    np.testing.assert_allclose(gmm.covariances.numpy(), ref.covariances_, atol=1e-8)
    assert abs(float(gmm.log_prob(x).mean()) - ref.score(x.numpy())) < 1e-8
    assert abs(gmm.bic(x) - ref.bic(x.numpy())) < 1e-6


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_log_prob_responsibilities_and_bic_match_sklearn_with_given_parameters(covariance_type):
    x = _correlated(n=200, d=3, seed=4)
    g = torch.Generator().manual_seed(0)
    k, d = 3, 3
    weights = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    means = torch.randn(k, d, generator=g, dtype=torch.float64) * 2
    if covariance_type == "full":
        a = torch.randn(k, d, d, generator=g, dtype=torch.float64)
        covs = a @ a.transpose(1, 2) + 0.5 * torch.eye(d, dtype=torch.float64)
    else:
        covs = torch.rand(k, d, generator=g, dtype=torch.float64) + 0.3
    ours = GaussianMixture(k, covariance_type=covariance_type).set_params(weights, means, covs)
    ref = SklearnGMM(k, covariance_type=covariance_type)
    ref.weights_, ref.means_, ref.covariances_ = weights.numpy(), means.numpy(), covs.numpy()
    prec = np.linalg.inv(covs.numpy()) if covariance_type == "full" else 1.0 / covs.numpy()
    ref.precisions_cholesky_ = np.linalg.cholesky(prec) if covariance_type == "full" else np.sqrt(prec)
    np.testing.assert_allclose(ours.log_prob(x).numpy(), ref.score_samples(x.numpy()), rtol=1e-10)
    np.testing.assert_allclose(ours.responsibilities(x).numpy(), ref.predict_proba(x.numpy()), atol=1e-10)
    assert abs(ours.bic(x) - ref.bic(x.numpy())) < 1e-6
    # and against torch.distributions' own mixture
    comp = (
        torch.distributions.MultivariateNormal(means, covariance_matrix=covs)
        if covariance_type == "full"
        else torch.distributions.Independent(torch.distributions.Normal(means, covs.sqrt()), 1)
    )
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(weights), comp)
    torch.testing.assert_close(ours.log_prob(x), mix.log_prob(x), rtol=1e-10, atol=1e-10)


def test_responsibilities_are_a_posterior():
    x, _ = _blobs()
    gmm = GaussianMixture(3, seed=0).fit(x.float())
    r = gmm.responsibilities(x.float())
    assert r.shape == (len(x), 3) and r.dtype == torch.float32
    torch.testing.assert_close(r.sum(1), torch.ones(len(x)))
    # separated blobs: every point belongs clearly to one component
    assert (r.max(1).values > 0.99).float().mean() > 0.98


def test_gmm_samples_follow_the_mixture():
    x, _ = _blobs()
    gmm = GaussianMixture(3, seed=0).fit(x)
    s = gmm.sample(6000, generator=torch.Generator().manual_seed(1))
    assert s.shape == (6000, 2) and s.dtype == torch.float64
    labels = gmm.responsibilities(s).argmax(1)
    frac = torch.bincount(labels, minlength=3).double() / len(s)
    torch.testing.assert_close(frac, gmm.weights, atol=0.03, rtol=0)
    # samples score like data under the model (same expected log-likelihood)
    assert abs(float(gmm.log_prob(s).mean()) - float(gmm.log_prob(x).mean())) < 0.1


def test_bic_prefers_the_true_number_of_components():
    x, _ = _blobs()
    bics = {k: GaussianMixture(k, seed=0, n_init=2).fit(x).bic(x) for k in (1, 2, 3, 4, 6)}
    assert min(bics, key=bics.get) == 3, bics


def test_n_init_keeps_the_best_start_and_callback_sees_every_iteration():
    x, _ = _blobs(n_per=(100, 100, 100, 100, 100), seed=3)
    seen = []
    gmm = GaussianMixture(5, init="random", n_init=4, seed=0).fit(x, callback=lambda m, it: seen.append(it))
    single = [GaussianMixture(5, init="random", seed=s).fit(x).history[-1] for s in range(4)]
    assert math.isclose(gmm.history[-1], max(single), rel_tol=1e-12)
    assert seen[0] == 0 and seen == list(range(len(seen)))
    # snapshots taken in the callback are independent copies
    snaps = []
    GaussianMixture(3, seed=0, max_iter=3, tol=0.0).fit(_correlated(), callback=lambda m, it: snaps.append(copy.deepcopy(m)))
    assert len(snaps) == 4 and not torch.equal(snaps[0].means, snaps[-1].means)
    assert [len(m.history) for m in snaps] == [1, 2, 3, 4]


def test_gmm_errors_are_clear():
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="tied")
    with pytest.raises(ValueError, match="init"):
        GaussianMixture(2, init="kmeans")
    with pytest.raises(ValueError, match="fewer components"):
        GaussianMixture(5).fit(torch.randn(3, 2))
    with pytest.raises(RuntimeError, match="fit"):
        GaussianMixture(2).sample(3)
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture(2).set_params(torch.tensor([0.5, 0.6]), torch.zeros(2, 1), torch.ones(2, 1, 1))


# ======================================================================================= KDE
@pytest.mark.parametrize("bandwidth", [0.2, 0.5, 2.0])
def test_kde_matches_sklearn(bandwidth):
    g = torch.Generator().manual_seed(0)
    train = torch.randn(300, 3, generator=g, dtype=torch.float64)
    query = torch.randn(70, 3, generator=g, dtype=torch.float64)
    ours = KernelDensity(bandwidth).fit(train).log_prob(query)
    ref = SklearnKDE(kernel="gaussian", bandwidth=bandwidth, rtol=0, atol=0).fit(train.numpy()).score_samples(query.numpy())
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9)


def test_kde_matches_brute_force_far_from_the_data():
    # Small bandwidth, queries far out: log p ~ -160. (sklearn's tree-based KernelDensity loses accuracy
    # here, by hundreds of nats, so the reference is a direct float64 logsumexp with scipy.)
    from scipy.special import logsumexp

    g = torch.Generator().manual_seed(0)
    train = torch.randn(300, 3, generator=g, dtype=torch.float64)
    query = torch.randn(70, 3, generator=g, dtype=torch.float64) * 1.5
    h = 0.05
    d2 = ((query.numpy()[:, None, :] - train.numpy()[None]) ** 2).sum(-1)
    ref = logsumexp(-d2 / (2 * h * h), axis=1) - math.log(300) - 1.5 * math.log(2 * math.pi * h * h)
    assert ref.min() < -100
    np.testing.assert_allclose(KernelDensity(h).fit(train).log_prob(query).numpy(), ref, rtol=1e-10)


def test_kde_matches_scipy_gaussian_kde():
    g = torch.Generator().manual_seed(1)
    # 1-D: scipy's kernel variance is factor^2 * var(data), so factor = h / std gives bandwidth h
    x1 = torch.randn(200, 1, generator=g, dtype=torch.float64)
    h = 0.25
    ref = stats.gaussian_kde(x1[:, 0].numpy(), bw_method=h / x1[:, 0].std().item())
    q1 = torch.linspace(-4, 4, 50, dtype=torch.float64)[:, None]
    np.testing.assert_allclose(KernelDensity(h).fit(x1).log_prob(q1).numpy(), ref.logpdf(q1[:, 0].numpy()), rtol=1e-9)
    # 2-D: scipy's kernel covariance is factor^2 * Cov = factor^2 L L^T. In whitened coordinates
    # z = L^{-1} x it is isotropic with bandwidth `factor`, and p_x(x) = p_z(L^{-1} x) / det L.
    x2 = _correlated(n=250, d=2, seed=5)
    factor = 0.4
    ref2 = stats.gaussian_kde(x2.numpy().T, bw_method=factor)
    chol = torch.linalg.cholesky(torch.from_numpy(np.cov(x2.numpy().T)))
    whiten = lambda v: torch.linalg.solve_triangular(chol, v.T, upper=False).T  # noqa: E731
    q2 = _correlated(n=40, d=2, seed=6)
    ours = KernelDensity(factor).fit(whiten(x2)).log_prob(whiten(q2)) - torch.log(torch.diagonal(chol)).sum()
    np.testing.assert_allclose(ours.numpy(), ref2.logpdf(q2.numpy().T), rtol=1e-9)


def test_kde_chunking_does_not_change_the_result():
    g = torch.Generator().manual_seed(2)
    train, query = torch.randn(100, 4, generator=g), torch.randn(33, 4, generator=g)
    kde = KernelDensity(0.5).fit(train)
    torch.testing.assert_close(kde.log_prob(query, max_elements=150), kde.log_prob(query))
    assert kde.log_prob(query).dtype == torch.float32


def test_kde_is_normalised():
    # integrate the 1-D density numerically
    train = torch.tensor([[-1.0], [0.0], [2.5]], dtype=torch.float64)
    kde = KernelDensity(0.3).fit(train)
    grid = torch.linspace(-6, 8, 20001, dtype=torch.float64)[:, None]
    mass = torch.trapezoid(kde.log_prob(grid).exp(), grid[:, 0])
    assert abs(float(mass) - 1.0) < 1e-8


def test_kde_samples_are_jittered_training_points():
    train = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    s = KernelDensity(0.1).fit(train).sample(4000, generator=torch.Generator().manual_seed(0))
    near = torch.cdist(s, train).min(1)
    assert s.shape == (4000, 2) and (near.values < 0.6).all()
    assert abs(float((near.indices == 0).float().mean()) - 0.5) < 0.05
    torch.testing.assert_close(near.values.pow(2).mean() / 2, torch.tensor(0.01), rtol=0.1, atol=0)


def test_select_bandwidth_picks_the_held_out_optimum():
    g = torch.Generator().manual_seed(3)
    train, val = torch.randn(400, 2, generator=g), torch.randn(400, 2, generator=g)
    grid = torch.logspace(-2, 1, 25)
    sel = select_bandwidth(train, val, grid)
    assert sel.val_log_lik.shape == (25,)
    assert sel.bandwidth == float(grid[int(sel.val_log_lik.argmax())])
    # Silverman's rule of thumb for N(0, I) in 2-D is about n^(-1/6) = 0.37; the held-out optimum is nearby
    assert 0.15 < sel.bandwidth < 0.8
    # the extremes are clearly worse: too small over-fits, too large over-smooths
    assert sel.val_log_lik[0] < sel.val_log_lik.max() - 1 and sel.val_log_lik[-1] < sel.val_log_lik.max() - 1
    # while the training likelihood keeps growing as h shrinks
    train_ll = [KernelDensity(float(h)).fit(train).log_prob(train).mean() for h in grid[:5]]
    assert all(a > b for a, b in zip(train_ll, train_ll[1:]))


def test_kde_errors_are_clear():
    with pytest.raises(ValueError, match="bandwidth"):
        KernelDensity(0.0)
    with pytest.raises(ValueError, match="grid is empty"):
        select_bandwidth(torch.randn(5, 2), torch.randn(5, 2), [])
    with pytest.raises(ValueError, match="fitted on 2"):
        KernelDensity(1.0).fit(torch.randn(5, 2)).log_prob(torch.randn(3, 4))
