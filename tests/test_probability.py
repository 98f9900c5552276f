"""probability: every formula against an independent reference (torch.distributions, scipy.stats, hand sums).

The random tests use fixed seeds, so they are deterministic; their tolerances are several standard errors
wide, and each family also has a check that the same test *fails* on a wrong answer.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch.distributions import (
    Beta,
    Categorical,
    ExpTransform,
    Independent,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
    Uniform,
    kl_divergence as torch_kl,
)

from course_lib import probability as P


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------------
# inverse CDF
# ---------------------------------------------------------------------------------------------------
def test_exponential_by_inverse_cdf_passes_a_ks_test_and_a_wrong_rate_fails_it():
    x = P.sample_inverse_cdf(P.exponential_icdf(2.0), 20_000, gen(1)).double().numpy()
    assert stats.kstest(x, stats.expon(scale=0.5).cdf).pvalue > 1e-3
    assert stats.kstest(x, stats.expon(scale=0.55).cdf).pvalue < 1e-6  # the test can tell 10% apart
    assert abs(x.mean() - 0.5) < 4 * 0.5 / math.sqrt(x.size)


def test_inverse_cdf_of_torch_distributions_and_cauchy():
    z = P.sample_inverse_cdf(Normal(1.0, 2.0).icdf, 20_000, gen(2))
    assert z.dtype == torch.get_default_dtype() and z.shape == (20_000,)
    assert torch.isfinite(z).all()
    assert stats.kstest(z.double().numpy(), stats.norm(1.0, 2.0).cdf).pvalue > 1e-3
    c = P.sample_inverse_cdf(P.cauchy_icdf(-1.0, 0.5), 20_000, gen(3), dtype=torch.float64)
    assert c.dtype == torch.float64
    assert stats.kstest(c.numpy(), stats.cauchy(-1.0, 0.5).cdf).pvalue > 1e-3


def test_inverse_cdf_is_reproducible_and_takes_shapes():
    a = P.sample_inverse_cdf(P.exponential_icdf(1.0), (3, 4), gen(7))
    b = P.sample_inverse_cdf(P.exponential_icdf(1.0), (3, 4), gen(7))
    assert a.shape == (3, 4) and torch.equal(a, b)


def test_categorical_inverse_cdf_matches_the_probabilities():
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3])
    k = P.sample_inverse_cdf(P.categorical_icdf(probs), 30_000, gen(4))
    assert k.dtype == torch.int64
    counts = torch.bincount(k, minlength=4).numpy()
    assert counts[1] == 0, "a zero-probability outcome must never be drawn"
    nonzero = [0, 2, 3]
    expected = probs.numpy()[nonzero] * k.numel()
    assert stats.chisquare(counts[nonzero], expected).pvalue > 1e-3
    # boundaries: u just below F(0) = 0.1 -> 0, at/above it -> 2 (skipping the empty outcome 1)
    icdf = P.categorical_icdf(probs)
    u = torch.tensor([0.0, 0.0999, 0.1001, 0.6999, 0.7001, 1.0 - 1e-12], dtype=torch.float64)
    assert icdf(u).tolist() == [0, 0, 2, 2, 3, 3]


def test_numerical_inverse_cdf_agrees_with_scipy_ppf():
    icdf = P.numerical_icdf(lambda x: Normal(0.0, 1.0).cdf(x), -12.0, 12.0)
    u = torch.tensor([1e-6, 0.025, 0.3, 0.5, 0.9, 0.999], dtype=torch.float64)
    np.testing.assert_allclose(icdf(u).numpy(), stats.norm.ppf(u.numpy()), atol=1e-9)


@pytest.mark.parametrize("rate", [0, -1.0, float("inf")])
def test_exponential_icdf_rejects_bad_rates(rate):
    with pytest.raises(ValueError, match="rate must be a positive"):
        P.exponential_icdf(rate)


def test_inverse_cdf_input_errors():
    with pytest.raises(ValueError, match="n must be an int"):
        P.sample_inverse_cdf(P.exponential_icdf(1.0), 0)
    with pytest.raises(TypeError, match="torch.Generator"):
        P.sample_inverse_cdf(P.exponential_icdf(1.0), 5, generator=0)
    with pytest.raises(ValueError, match="elementwise"):
        P.sample_inverse_cdf(lambda u: u.sum(), 5)


# ---------------------------------------------------------------------------------------------------
# rejection sampling
# ---------------------------------------------------------------------------------------------------
BETA_MODE = 0.2
BETA_M = float(stats.beta(2, 5).pdf(BETA_MODE))  # max of the Beta(2, 5) density = 2.4576


def beta25_log_prob(x):
    """log Beta(2, 5) density, -inf outside (0, 1)."""
    inside = (x > 0) & (x < 1)
    safe = torch.where(inside, x, torch.full_like(x, 0.5))
    return torch.where(inside, Beta(2.0, 5.0).log_prob(safe), torch.full_like(x, -math.inf))


def test_rejection_sampling_beta_passes_ks_and_acceptance_is_one_over_m():
    n = 20_000
    samples, rate = P.rejection_sample(beta25_log_prob, Uniform(0.0, 1.0), math.log(BETA_M), n, gen(5))
    assert samples.shape == (n,)
    assert stats.kstest(samples.double().numpy(), stats.beta(2, 5).cdf).pvalue > 1e-3
    assert stats.kstest(samples.double().numpy(), stats.beta(2, 4).cdf).pvalue < 1e-6
    assert abs(rate - 1 / BETA_M) < 0.01, (rate, 1 / BETA_M)


def test_rejection_sampling_unnormalised_bimodal_target():
    # p~(x) = Z * (0.3 N(-2, 0.5^2) + 0.7 N(1.5, 1)), Z = 5, proposal N(0, 3^2); acceptance = Z / M.
    Z = 5.0
    w, mu, sd = np.array([0.3, 0.7]), np.array([-2.0, 1.5]), np.array([0.5, 1.0])

    def log_target(x):
        comps = Normal(torch.tensor(mu), torch.tensor(sd)).log_prob(x.double()[:, None]) + torch.tensor(np.log(w))
        return math.log(Z) + torch.logsumexp(comps, 1)

    proposal = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64))
    grid = torch.linspace(-15, 15, 30_001, dtype=torch.float64)
    log_M = float((log_target(grid) - proposal.log_prob(grid)).max()) + 1e-3
    samples, rate = P.rejection_sample(log_target, proposal, log_M, 20_000, gen(6))
    mixture_cdf = lambda x: sum(wk * stats.norm(mk, sk).cdf(x) for wk, mk, sk in zip(w, mu, sd))  # noqa: E731
    assert stats.kstest(samples.numpy(), mixture_cdf).pvalue > 1e-3
    assert abs(rate - Z / math.exp(log_M)) < 0.02


def test_rejection_sampling_in_two_dimensions_gives_pi_over_four():
    # Uniform on the unit disc from a uniform proposal on the square [-1, 1]^2: acceptance pi/4.
    proposal = Independent(Uniform(-torch.ones(2), torch.ones(2)), 1)
    log_target = lambda x: torch.where((x**2).sum(1) <= 1, 0.0, -math.inf) + proposal.log_prob(x)  # noqa: E731
    samples, rate = P.rejection_sample(log_target, proposal, 0.0, 10_000, gen(8))
    assert samples.shape == (10_000, 2)
    assert (samples.pow(2).sum(1) <= 1).all()
    assert abs(rate - math.pi / 4) < 0.02
    # radius of a uniform point in the disc has CDF r^2
    r = samples.double().pow(2).sum(1).sqrt().numpy()
    assert stats.kstest(r, lambda t: np.clip(t, 0, 1) ** 2).pvalue > 1e-3


def test_rejection_round_geometry():
    rnd = P.rejection_round(beta25_log_prob, Uniform(0.0, 1.0), math.log(BETA_M), 2000, gen(9))
    assert rnd.x.shape == rnd.height.shape == rnd.accepted.shape == (2000,)
    assert (rnd.height >= 0).all() and (rnd.height <= BETA_M + 1e-9).all()
    assert torch.equal(rnd.accepted, rnd.height < beta25_log_prob(rnd.x).double().exp())


def test_rejection_with_generator_is_reproducible_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, _ = P.rejection_sample(beta25_log_prob, Uniform(0.0, 1.0), math.log(BETA_M), 100, gen(10))
    b, _ = P.rejection_sample(beta25_log_prob, Uniform(0.0, 1.0), math.log(BETA_M), 100, gen(10))
    assert torch.equal(a, b)
    assert torch.equal(state, torch.get_rng_state())


def test_rejection_envelope_violation_names_the_fix():
    with pytest.raises(ValueError, match="envelope is violated.*Increase log_M to at least 0.89"):
        P.rejection_sample(beta25_log_prob, Uniform(0.0, 1.0), math.log(1.5), 1000, gen(11))


def test_rejection_gives_up_with_a_clear_message_when_too_few_are_accepted():
    with pytest.raises(RuntimeError, match=r"accepted only .* Tighten log_M"):
        P.rejection_sample(beta25_log_prob, Uniform(0.0, 1.0), math.log(1e6), 1000, gen(12), max_rounds=2)


def test_rejection_input_errors():
    with pytest.raises(TypeError, match="torch.distributions"):
        P.rejection_sample(beta25_log_prob, "uniform", 1.0, 10)
    with pytest.raises(ValueError, match="batch_shape"):
        P.rejection_sample(beta25_log_prob, Uniform(torch.zeros(2), torch.ones(2)), 1.0, 10)
    with pytest.raises(ValueError, match="shape"):
        P.rejection_sample(lambda x: x[:1], Uniform(0.0, 1.0), 1.0, 10)
    with pytest.raises(ValueError, match="NaN"):
        P.rejection_sample(lambda x: x * math.nan, Uniform(0.0, 1.0), 1.0, 10)


# ---------------------------------------------------------------------------------------------------
# Monte Carlo
# ---------------------------------------------------------------------------------------------------
def test_monte_carlo_standard_error_matches_sigma_over_sqrt_n():
    est, se = P.monte_carlo(lambda x: x**2, Normal(0.0, 1.0), 40_000, gen(13))
    assert est.dtype == torch.float64 and est.shape == ()
    sigma = math.sqrt(2.0)  # Var[X^2] = E[X^4] - 1 = 2
    assert abs(float(se) - sigma / math.sqrt(40_000)) < 0.05 * sigma / math.sqrt(40_000)
    assert abs(float(est) - 1.0) < 4 * float(se)


def test_monte_carlo_intervals_cover_the_truth_95_percent_of_the_time():
    g = gen(14)
    truth = 1.0 - math.exp(-1.0)  # E[1{X < 1}] for X ~ Exp(1)
    hits = 0
    repeats = 400
    for _ in range(repeats):
        est, se = P.monte_carlo(lambda x: (x < 1).double(), lambda m: -torch.log1p(-torch.rand(m, generator=g)), 200)
        hits += abs(float(est) - truth) <= 1.96 * float(se)
    coverage = hits / repeats  # binomial sd at 0.95: 0.011
    assert 0.91 <= coverage <= 0.985, coverage


def test_monte_carlo_vector_valued_f():
    est, se = P.monte_carlo(lambda x: torch.stack([x, x**2, x**3], 1), Normal(0.0, 1.0), 50_000, gen(15))
    assert est.shape == se.shape == (3,)
    np.testing.assert_allclose(est.numpy(), [0.0, 1.0, 0.0], atol=float(4 * se.max()))


def test_error_curve_falls_like_one_over_sqrt_n():
    curve = P.monte_carlo_error_curve(
        lambda x: x**2, Normal(0.0, 1.0), [10, 100, 1000, 10_000], true_value=1.0, repeats=40, generator=gen(16)
    )
    slope = np.polyfit(np.log(curve.ns.numpy()), np.log(curve.rmse.numpy()), 1)[0]
    assert -0.65 < slope < -0.35, slope
    assert abs(curve.sigma - math.sqrt(2)) < 0.05
    torch.testing.assert_close(curve.theory, curve.sigma / curve.ns.sqrt())
    ratio = (curve.rmse / curve.theory).numpy()
    assert ((ratio > 0.6) & (ratio < 1.5)).all(), ratio
    # a "1/n" error claim would fail: the error at n = 10,000 is far above sigma / 10,000
    assert curve.rmse[-1] > 10 * curve.sigma / 10_000


def test_monte_carlo_input_errors():
    with pytest.raises(ValueError, match=">= 2"):
        P.monte_carlo(lambda x: x, Normal(0.0, 1.0), 1)
    with pytest.raises(ValueError, match="one per sample"):
        P.monte_carlo(lambda x: x.mean(), Normal(0.0, 1.0), 10)
    with pytest.raises(ValueError, match="own generator"):
        P.monte_carlo(lambda x: x, lambda m: torch.randn(m), 10, gen(0))
    with pytest.raises(ValueError, match="finite"):
        P.monte_carlo(lambda x: x / 0.0, Normal(0.0, 1.0), 10)


# ---------------------------------------------------------------------------------------------------
# Bayes' rule
# ---------------------------------------------------------------------------------------------------
def test_bayes_diagnostic_test_by_hand():
    prior = torch.tensor([0.01, 0.99], dtype=torch.float64)  # [ill, healthy]
    positive = torch.tensor([0.99, 0.05], dtype=torch.float64)  # sensitivity, false-positive rate
    post = P.bayes_posterior(prior, positive)
    by_hand = 0.01 * 0.99 / (0.01 * 0.99 + 0.99 * 0.05)
    assert abs(float(post[0]) - by_hand) < 1e-12
    assert abs(float(post.sum()) - 1) < 1e-12
    # two independent positive tests = updating twice = a (K, 2) likelihood table
    twice = P.bayes_posterior(prior, torch.stack([positive, positive], 1))
    sequential = P.bayes_posterior(post, positive)
    torch.testing.assert_close(twice, sequential)
    by_hand_2 = 0.01 * 0.99**2 / (0.01 * 0.99**2 + 0.99 * 0.05**2)
    assert abs(float(twice[0]) - by_hand_2) < 1e-12


def test_bayes_many_observations_do_not_underflow_and_log_likelihood_option():
    # coin bias in {0.3, 0.5, 0.7}; 2,000 flips with 1,400 heads: the posterior is all on 0.7
    biases = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64)
    flips = torch.cat([torch.ones(1400), torch.zeros(600)]).double()
    lik = torch.where(flips[None, :] == 1, biases[:, None], 1 - biases[:, None])  # (3, 2000)
    assert float(lik.prod(1).max()) == 0.0  # a naive product underflows
    post = P.bayes_posterior(torch.full((3,), 1 / 3, dtype=torch.float64), lik)
    assert float(post[2]) > 1 - 1e-12
    torch.testing.assert_close(post, P.bayes_posterior(torch.full((3,), 1 / 3, dtype=torch.float64), lik.log(), log_likelihood=True))
    # against scipy: posterior ratio 0.7 vs 0.5 = binomial pmf ratio (few flips, no underflow)
    small = lik[:, :20]
    post = P.bayes_posterior(torch.full((3,), 1 / 3, dtype=torch.float64), small)
    heads = int(flips[:20].sum())
    pmf = stats.binom.pmf(heads, 20, biases.numpy())
    np.testing.assert_allclose(post.numpy(), pmf / pmf.sum(), rtol=1e-10)


def test_bayes_input_errors():
    prior = torch.tensor([0.5, 0.5])
    with pytest.raises(ValueError, match="likelihood.T"):
        P.bayes_posterior(prior, torch.ones(3, 2))
    with pytest.raises(ValueError, match="log_likelihood=True"):
        P.bayes_posterior(prior, torch.tensor([-1.0, -2.0]))
    with pytest.raises(ValueError, match="probability 0 under every hypothesis"):
        P.bayes_posterior(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="sum to 1"):
        P.bayes_posterior(torch.tensor([0.5, 0.6]), torch.tensor([1.0, 1.0]))


# ---------------------------------------------------------------------------------------------------
# change of variables
# ---------------------------------------------------------------------------------------------------
def test_lognormal_by_change_of_variables_matches_transformed_distribution_and_scipy():
    base = Normal(torch.tensor(0.3, dtype=torch.float64), torch.tensor(0.8, dtype=torch.float64))
    log_prob = P.change_of_variables_log_prob(base.log_prob, torch.log, lambda y: -torch.log(y))
    y = torch.linspace(0.05, 6.0, 200, dtype=torch.float64)
    reference = TransformedDistribution(base, [ExpTransform()])
    torch.testing.assert_close(log_prob(y), reference.log_prob(y))
    np.testing.assert_allclose(log_prob(y).numpy(), stats.lognorm(s=0.8, scale=math.exp(0.3)).logpdf(y.numpy()), rtol=1e-10)
    # leaving out the Jacobian gives a wrong density (it does not even integrate to 1)
    no_jacobian = base.log_prob(torch.log(y))
    assert (no_jacobian - reference.log_prob(y)).abs().max() > 0.5


def test_two_dimensional_linear_change_of_variables_matches_multivariate_normal():
    A = torch.tensor([[2.0, 0.5], [-0.3, 0.7]], dtype=torch.float64)
    b = torch.tensor([1.0, -1.0], dtype=torch.float64)
    base = Independent(Normal(torch.zeros(2, dtype=torch.float64), 1.0), 1)
    A_inv = torch.linalg.inv(A)
    log_prob = P.change_of_variables_log_prob(
        base.log_prob,
        lambda y: (y - b) @ A_inv.T,
        lambda y: torch.full(y.shape[:1], -torch.linalg.slogdet(A).logabsdet.item(), dtype=y.dtype),
    )
    y = torch.randn(50, 2, generator=gen(17), dtype=torch.float64) * 2
    reference = MultivariateNormal(b, covariance_matrix=A @ A.T)
    torch.testing.assert_close(log_prob(y), reference.log_prob(y))


def test_log_abs_det_jacobian_by_autograd():
    A = torch.tensor([[2.0, 0.5], [-0.3, 0.7]], dtype=torch.float64)
    x = torch.randn(7, 2, generator=gen(18), dtype=torch.float64)
    got = P.log_abs_det_jacobian(lambda v: v @ A.T, x)
    torch.testing.assert_close(got, torch.linalg.slogdet(A).logabsdet.expand(7))
    # polar -> cartesian: (r, theta) -> (r cos theta, r sin theta) has |det J| = r
    rt = torch.rand(9, 2, generator=gen(19), dtype=torch.float64) + 0.1
    polar = lambda v: torch.stack([v[:, 0] * torch.cos(v[:, 1]), v[:, 0] * torch.sin(v[:, 1])], 1)  # noqa: E731
    torch.testing.assert_close(P.log_abs_det_jacobian(polar, rt), torch.log(rt[:, 0]))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        P.log_abs_det_jacobian(polar, torch.ones(3))


def test_change_of_variables_shape_mismatch_is_explained():
    base = Independent(Normal(torch.zeros(2), 1.0), 1)
    log_prob = P.change_of_variables_log_prob(base.log_prob, lambda y: y, lambda y: torch.zeros_like(y))
    with pytest.raises(ValueError, match="both must be"):
        log_prob(torch.zeros(4, 2))


# ---------------------------------------------------------------------------------------------------
# entropy, cross-entropy, KL
# ---------------------------------------------------------------------------------------------------
def random_probs(shape, seed, zeros=True):
    g = gen(seed)
    p = torch.rand(shape, generator=g, dtype=torch.float64)
    if zeros:
        p = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.2, 0.0, p)
        p[..., 0] += 0.1  # at least one positive entry per row
    return p / p.sum(-1, keepdim=True)


def test_entropy_matches_categorical_and_scipy():
    p = random_probs((6, 5), 20)
    ours = P.entropy(p)
    assert ours.shape == (6,)
    torch.testing.assert_close(ours, Categorical(probs=p).entropy())
    np.testing.assert_allclose(ours.numpy(), stats.entropy(p.numpy(), axis=-1), rtol=1e-12)
    np.testing.assert_allclose(P.entropy(p, base=2).numpy(), stats.entropy(p.numpy(), base=2, axis=-1), rtol=1e-12)
    assert float(P.entropy(torch.tensor([0.5, 0.5]), base=2)) == pytest.approx(1.0)
    assert float(P.entropy(torch.tensor([1.0, 0.0, 0.0]))) == 0.0  # 0 log 0 = 0
    assert float(P.entropy(torch.full((8,), 1 / 8))) == pytest.approx(math.log(8))


def test_kl_and_cross_entropy_match_torch_and_scipy():
    p = random_probs((6, 5), 21)
    q = random_probs((6, 5), 22, zeros=False)
    kl = P.kl_divergence(p, q)
    torch.testing.assert_close(kl, torch_kl(Categorical(probs=p), Categorical(probs=q)))
    np.testing.assert_allclose(kl.numpy(), stats.entropy(p.numpy(), q.numpy(), axis=-1), rtol=1e-10)
    torch.testing.assert_close(P.cross_entropy(p, q), P.entropy(p) + kl)  # H(p, q) = H(p) + KL(p || q)
    assert (kl >= 0).all()
    assert float(P.kl_divergence(p[0], p[0])) == 0.0
    assert not torch.allclose(P.kl_divergence(p, q), P.kl_divergence(q, p)), "KL is not symmetric"


def test_kl_is_infinite_where_q_misses_p():
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])
    assert P.kl_divergence(p, q) == math.inf and P.cross_entropy(p, q) == math.inf
    assert math.isfinite(float(P.kl_divergence(q, p)))  # the reverse direction is finite: log 2
    assert float(P.kl_divergence(q, p)) == pytest.approx(math.log(2))


@pytest.mark.parametrize(
    "p, q, message",
    [
        ([0.5, 0.6], [0.5, 0.5], "sum to 1"),
        ([1.5, -0.5], [0.5, 0.5], "negative entries"),
        ([0.5, 0.5], [0.3, 0.3, 0.4], "same K outcomes"),
        ([math.nan, 1.0], [0.5, 0.5], "NaN"),
    ],
)
def test_discrete_information_input_errors(p, q, message):
    with pytest.raises(ValueError, match=message):
        P.kl_divergence(torch.tensor(p), torch.tensor(q))


def test_gaussian_kl_matches_torch_distributions():
    g = gen(23)
    mu_p, mu_q = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64)
    var_p = torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.1
    var_q = torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.1
    ours = P.gaussian_kl(mu_p, var_p, mu_q, var_q)
    ref = torch_kl(Independent(Normal(mu_p, var_p.sqrt()), 1), Independent(Normal(mu_q, var_q.sqrt()), 1))
    assert ours.shape == (4,)
    torch.testing.assert_close(ours, ref)
    uni = P.gaussian_kl(1.0, 2.0, 0.0, 1.0, event_dims=0)
    torch.testing.assert_close(uni, torch_kl(Normal(1.0, math.sqrt(2.0)), Normal(0.0, 1.0)))
    # VAE case: KL(N(mu, var) || N(0, I)) with broadcasting
    torch.testing.assert_close(P.gaussian_kl(mu_p, var_p, 0.0, 1.0), 0.5 * (var_p + mu_p**2 - 1 - var_p.log()).sum(1))


def test_gaussian_kl_errors_name_the_fix():
    with pytest.raises(ValueError, match="logvar.exp"):
        P.gaussian_kl(torch.zeros(2), torch.tensor([-1.0, 1.0]), torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="event_dims=0"):
        P.gaussian_kl(0.0, 1.0, 0.0, 1.0)


def test_gaussian_entropy_matches_normal_and_can_be_negative():
    var = torch.tensor([[0.01, 1.0, 4.0]], dtype=torch.float64)
    torch.testing.assert_close(P.gaussian_entropy(var, event_dims=0), Normal(0.0, var.sqrt()).entropy())
    torch.testing.assert_close(P.gaussian_entropy(var), Normal(0.0, var.sqrt()).entropy().sum(1))
    assert float(P.gaussian_entropy(torch.tensor(0.01), event_dims=0)) < 0


def bimodal_log_prob(x):
    x = torch.as_tensor(x, dtype=torch.float64)
    comps = Normal(torch.tensor([-2.0, 2.0], dtype=torch.float64), 0.5).log_prob(x[:, None])
    return torch.logsumexp(comps + math.log(0.5), 1)


def test_forward_kl_fit_is_moment_matching():
    grid = torch.linspace(-14, 14, 2801, dtype=torch.float64)
    threads = torch.get_num_threads()
    fit = P.fit_gaussian_kl(bimodal_log_prob, grid, direction="forward", mu0=0.5, sigma0=1.0)
    assert torch.get_num_threads() == threads, "the fit must restore torch's thread setting"
    assert abs(fit.mu) < 1e-3
    assert fit.sigma == pytest.approx(math.sqrt(0.25 + 4.0), abs=2e-3)  # mixture variance: E[var] + Var[mean]


def test_reverse_kl_fit_is_mode_seeking_and_exact_on_a_gaussian():
    grid = torch.linspace(-10, 10, 2001, dtype=torch.float64)
    fit = P.fit_gaussian_kl(bimodal_log_prob, grid, direction="reverse", mu0=1.0)
    assert fit.mu == pytest.approx(2.0, abs=0.01) and fit.sigma == pytest.approx(0.5, abs=0.01)
    assert fit.kl == pytest.approx(math.log(2), abs=0.01)  # one whole mode missed: KL = log 2
    left = P.fit_gaussian_kl(bimodal_log_prob, grid, direction="reverse", mu0=-1.0)
    assert left.mu == pytest.approx(-2.0, abs=0.01)
    exact = P.fit_gaussian_kl(Normal(torch.tensor(1.0, dtype=torch.float64), 1.5).log_prob, grid, direction="reverse")
    assert exact.mu == pytest.approx(1.0, abs=1e-3) and exact.sigma == pytest.approx(1.5, abs=1e-3)
    assert exact.kl < 1e-6
    with pytest.raises(ValueError, match="'forward'"):
        P.fit_gaussian_kl(bimodal_log_prob, grid, direction="backward")
