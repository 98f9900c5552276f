"""Tests of course_lib.models.diffusion: every formula against a closed form or an independent oracle.

Oracles: Gaussian conditioning done by hand, torch.distributions + autograd for scores, Monte Carlo for
the forward process, Hugging Face diffusers' DDPMScheduler / DDIMScheduler (a test dependency only) for the
reverse steps, and, end to end, the exact noise predictor of Gaussian data, which a correct sampler must
turn back into the data's mean and covariance.
"""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.models import diffusion as dm
from course_lib.models.diffusion import GaussianOptimalDenoiser, NoiseSchedule

try:  # a test dependency only: the oracle for the schedulers, never imported by course_lib
    import diffusers
except ImportError:  # pragma: no cover
    diffusers = None
needs_diffusers = pytest.mark.skipif(diffusers is None, reason="Hugging Face diffusers (test dependency) is not installed")

T = 1000
DIFFUSERS_PREDICTION = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}


pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def linear():
    return NoiseSchedule.linear(T)


@pytest.fixture(scope="module")
def cosine():
    return NoiseSchedule.cosine(T)


def gaussian_data():
    mean = torch.tensor([0.5, -0.3, 0.1], dtype=torch.float64)
    a = torch.tensor([[0.6, 0.2, 0.0], [0.0, 0.4, -0.1], [0.1, 0.0, 0.3]], dtype=torch.float64)
    return mean, a @ a.T  # a full, well-conditioned covariance


def sample_stats(x: torch.Tensor):
    x = x.double()
    return x.mean(0), torch.cov(x.T)


# --------------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------------


def test_linear_schedule_endpoints_and_monotonicity(linear):
    assert linear.T == T and len(linear) == T
    assert math.isclose(float(linear.betas[0]), 1e-4) and math.isclose(float(linear.betas[-1]), 0.02)
    assert (linear.betas.diff() > 0).all(), "linear betas increase"
    assert (linear.alpha_bar.diff() < 0).all(), "alpha_bar decreases strictly: every step adds noise"
    assert math.isclose(float(linear.alpha_bar[0]), 1 - 1e-4), "alpha_bar_1 = 1 - beta_1"
    assert 1e-5 < float(linear.alpha_bar[-1]) < 1e-4, "Ho et al.'s schedule ends at alpha_bar_T ~ 4e-5"
    assert (linear.snr.diff() < 0).all() and float(linear.alpha_bar_prev[0]) == 1.0


def test_cosine_schedule_endpoints_and_monotonicity(cosine):
    assert (cosine.betas.diff() >= 0).all() and float(cosine.betas.max()) <= 0.999
    assert (cosine.alpha_bar.diff() < 0).all()
    f0 = math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    for t in (0, 250, 500, 750):  # alpha_bar_t = f(t/T) / f(0) while beta is below its cap
        u = (t + 1) / T
        assert math.isclose(float(cosine.alpha_bar[t]), math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2 / f0,
                            rel_tol=1e-9)
    assert float(cosine.alpha_bar[-1]) < 1e-6, "the cosine schedule ends at (almost) pure noise"
    mid = T // 2  # the cosine schedule keeps more signal in the middle than the linear one
    assert float(cosine.alpha_bar[mid]) > float(NoiseSchedule.linear(T).alpha_bar[mid])


@needs_diffusers
@pytest.mark.parametrize("name, diffusers_name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_schedules_match_diffusers(name, diffusers_name):
    ours = NoiseSchedule.from_name(name, T)
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule=diffusers_name)
    torch.testing.assert_close(ours.betas.float(), ref.betas, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ours.alpha_bar.float(), ref.alphas_cumprod, rtol=1e-4, atol=1e-7)


def test_bad_schedules_and_steps_are_refused(linear):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        NoiseSchedule(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="unknown schedule"):
        NoiseSchedule.from_name("sigmoid")
    with pytest.raises(ValueError, match=r"0\.\.999"):
        linear.q_sample(torch.zeros(2, 3), torch.tensor([0, 1000]))
    with pytest.raises(TypeError, match="integer"):
        linear.q_sample(torch.zeros(2, 3), torch.tensor([0.5, 1.0]))


# --------------------------------------------------------------------------------------------------
# Forward process
# --------------------------------------------------------------------------------------------------


def test_q_sample_mean_and_variance_match_the_closed_form(linear):
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[0.8, -0.5]]).expand(200_000, 2)
    for t in (0, 99, 499, 999):
        xt = linear.q_sample(x0, t, generator=g)
        ab = float(linear.alpha_bar[t])
        torch.testing.assert_close(xt.mean(0), math.sqrt(ab) * x0[0], atol=0.01, rtol=0)
        torch.testing.assert_close(xt.var(0), torch.full((2,), 1 - ab), atol=0.01, rtol=0.01)
        mean, var = linear.q_mean_variance(x0[:1], t)
        torch.testing.assert_close(mean, math.sqrt(ab) * x0[:1])
        assert math.isclose(float(var), 1 - ab, rel_tol=1e-6)


def test_iterating_single_steps_gives_the_closed_form(linear):
    """x_t = sqrt(1 - beta) x_{t-1} + sqrt(beta) eps, iterated, has q(x_t | x_0)'s mean and variance.

    The swapped step sqrt(beta) x_{t-1} + sqrt(1 - beta) eps (a common mistake) would fail this test.
    """
    g = torch.Generator().manual_seed(1)
    x = torch.full((40_000, 1), 0.9)
    for t in range(200):
        x = linear.q_step(x, t, generator=g)
    ab = float(linear.alpha_bar[199])
    assert abs(float(x.mean()) - math.sqrt(ab) * 0.9) < 0.015
    assert abs(float(x.var()) - (1 - ab)) < 0.02


@needs_diffusers
def test_q_sample_matches_diffusers_add_noise_and_velocity(linear):
    ref = diffusers.DDPMScheduler(num_train_timesteps=T)
    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(6, 1, 4, 4, generator=g), torch.randn(6, 1, 4, 4, generator=g)
    t = torch.tensor([0, 5, 100, 500, 900, 999])
    torch.testing.assert_close(linear.q_sample(x0, t, noise), ref.add_noise(x0, noise, t), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(linear.v_target(x0, noise, t), ref.get_velocity(x0, noise, t), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Posterior and conversions
# --------------------------------------------------------------------------------------------------


def test_posterior_is_gaussian_conditioning(cosine):
    """q(x_{t-1} | x_t, x_0) by Bayes' rule for the pair x_{t-1} | x_0 and x_t | x_{t-1}."""
    g = torch.Generator().manual_seed(3)
    x0, xt = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    for t in (1, 10, 500, 998):
        ab_prev, alpha, beta = (float(cosine.alpha_bar[t - 1]), float(cosine.alphas[t]), float(cosine.betas[t]))
        # prior x_{t-1} ~ N(sqrt(ab_prev) x0, 1 - ab_prev); likelihood x_t ~ N(sqrt(alpha) x_{t-1}, beta)
        precision = 1 / (1 - ab_prev) + alpha / beta
        var = 1 / precision
        mean = var * (math.sqrt(ab_prev) * x0 / (1 - ab_prev) + math.sqrt(alpha) * xt / beta)
        ours_mean, ours_var = cosine.q_posterior(x0, xt, t)
        torch.testing.assert_close(ours_mean, mean, rtol=1e-9, atol=1e-9)
        assert math.isclose(float(ours_var[0]), var, rel_tol=1e-9)
    mean0, var0 = cosine.q_posterior(x0, xt, 0)
    torch.testing.assert_close(mean0, x0), "at the first step the posterior is the data itself"
    assert float(var0.abs().max()) == 0.0


@pytest.mark.parametrize("t", [0, 37, 500, 999])
def test_parameterisation_conversions_round_trip(linear, t):
    g = torch.Generator().manual_seed(4)
    x0, eps = torch.randn(4, 1, 5, 5, generator=g), torch.randn(4, 1, 5, 5, generator=g)
    xt = linear.q_sample(x0, t, eps)
    rt = dict(rtol=1e-4, atol=2e-3 if t == 999 else 1e-5)  # 1/sqrt(alpha_bar_T) ~ 150 amplifies rounding
    torch.testing.assert_close(linear.predict_x0_from_eps(xt, t, eps), x0, **rt)
    torch.testing.assert_close(linear.predict_eps_from_x0(xt, t, x0), eps, rtol=1e-4, atol=1e-3 if t == 0 else 1e-5)
    v = linear.v_target(x0, eps, t)
    torch.testing.assert_close(linear.predict_x0_from_v(xt, t, v), x0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(linear.predict_eps_from_v(xt, t, v), eps, rtol=1e-4, atol=1e-5)
    for prediction, output in (("eps", eps), ("x0", x0), ("v", v)):
        e, x = linear.split_output(output, xt, t, prediction)
        torch.testing.assert_close(x, x0, **rt)
    torch.testing.assert_close(linear.eps_from_score(linear.score_from_eps(eps, t), t), eps)


def test_optimal_denoiser_score_is_the_gradient_of_the_noisy_log_density(linear):
    """score_from_eps(eps*) equals autograd of log N(x_t; sqrt(ab) mu, ab Sigma + (1 - ab) I), and Tweedie holds."""
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, linear)
    g = torch.Generator().manual_seed(5)
    for t in (0, 200, 999):
        ab = linear.alpha_bar[t]
        noisy = torch.distributions.MultivariateNormal(ab.sqrt() * mean, ab * cov + (1 - ab) * torch.eye(3))
        x = torch.randn(7, 3, generator=g, dtype=torch.float64).requires_grad_(True)
        (grad,) = torch.autograd.grad(noisy.log_prob(x).sum(), x)
        tt = torch.full((7,), t)
        eps = model(x.detach(), tt)
        torch.testing.assert_close(linear.score_from_eps(eps, tt), grad, rtol=1e-6, atol=1e-8)
        # Tweedie: E[x0 | x_t] from the score equals Gaussian conditioning
        ex0 = mean + (ab.sqrt() * cov @ torch.linalg.inv(ab * cov + (1 - ab) * torch.eye(3)) @
                      (x.detach() - ab.sqrt() * mean).T).T
        torch.testing.assert_close(linear.x0_from_score(x.detach(), tt, model.score(x.detach(), tt)), ex0,
                                   rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------------------------------
# Loss
# --------------------------------------------------------------------------------------------------


def test_loss_is_zero_for_the_right_target_and_the_weightings_relate(linear):
    g = torch.Generator().manual_seed(6)
    x0 = torch.rand(8, 1, 6, 6, generator=g) * 2 - 1
    noise = torch.randn(8, 1, 6, 6, generator=g)
    t = torch.randint(0, T, (8,), generator=g)
    for prediction in dm.PREDICTIONS:
        oracle = lambda xt, tt, p=prediction: linear.target(x0, noise, tt, p)  # noqa: E731
        loss = dm.diffusion_loss(oracle, x0, linear, prediction=prediction, t=t, noise=noise)
        assert float(loss) < 1e-10, f"a model that outputs the {prediction} target has zero loss"
    # the same denoiser expressed as eps- and x0-predictions: ||eps - eps_hat||^2 = SNR ||x0 - x0_hat||^2
    weight = torch.randn(1, generator=g)
    f_eps = lambda xt, tt: torch.tanh(weight * xt)  # noqa: E731
    f_x0 = lambda xt, tt: linear.predict_x0_from_eps(xt, tt, f_eps(xt, tt))  # noqa: E731
    f_v = lambda xt, tt: linear.v_target(f_x0(xt, tt), f_eps(xt, tt), tt)  # noqa: E731
    kw = dict(t=t, noise=noise, reduction="none")
    l_eps = dm.diffusion_loss(f_eps, x0, linear, prediction="eps", **kw)
    l_x0 = dm.diffusion_loss(f_x0, x0, linear, prediction="x0", **kw)
    l_v = dm.diffusion_loss(f_v, x0, linear, prediction="v", **kw)
    snr = linear.snr[t].float()
    torch.testing.assert_close(l_eps, snr * l_x0, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(l_v, (snr + 1) * l_x0, rtol=1e-3, atol=1e-6)
    # Min-SNR-5 is the same weighting min(SNR, 5) in x0-space whatever the parameterisation
    w = snr.clamp(max=5.0)
    for prediction, f in (("eps", f_eps), ("x0", f_x0), ("v", f_v)):
        lw = dm.diffusion_loss(f, x0, linear, prediction=prediction, weighting="min_snr", **kw)
        torch.testing.assert_close(lw, w * l_x0, rtol=1e-3, atol=1e-6)


def test_loss_refuses_bad_inputs(linear):
    model = lambda xt, tt: xt  # noqa: E731
    with pytest.raises(ValueError, match="symmetric"):
        dm.diffusion_loss(model, torch.rand(2, 1, 4, 4) * 255, linear)
    with pytest.raises(ValueError, match="prediction"):
        dm.diffusion_loss(model, torch.zeros(2, 1, 4, 4), linear, prediction="score")
    with pytest.raises(ValueError, match="shape"):
        dm.diffusion_loss(lambda xt, tt: xt[:, :1], torch.zeros(2, 3), linear)


def test_loss_trains_a_model_through_the_shared_loop(linear):
    from course_lib import train

    net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.SiLU(), torch.nn.Linear(32, 2))
    model = lambda xt, tt: net(torch.cat([xt, tt.float().unsqueeze(1) / T], 1))  # noqa: E731
    x = torch.randn(512, 2) * 0.5
    loader = [(x[i : i + 64],) for i in range(0, 512, 64)]

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, xt, tt):
            return model(xt, tt)

    result = train.fit(Wrap(), lambda m, b: dm.diffusion_loss(m, b[0], linear), loader, steps=150, lr=3e-3,
                       device="cpu", progress=False, log_every=10)
    losses = result.history.values["loss"]
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:2]) / 2, "the denoising loss should go down"


# --------------------------------------------------------------------------------------------------
# Reverse steps against diffusers
# --------------------------------------------------------------------------------------------------


@needs_diffusers
@pytest.mark.parametrize("prediction", dm.PREDICTIONS)
@pytest.mark.parametrize("variance, variance_type", [("posterior", "fixed_small"), ("beta", "fixed_large")])
def test_p_sample_matches_diffusers_ddpm_step(linear, prediction, variance, variance_type):
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=False,
                                  prediction_type=DIFFUSERS_PREDICTION[prediction], variance_type=variance_type)
    g = torch.Generator().manual_seed(7)
    sample = torch.randn(3, 1, 4, 4, generator=g)
    output = torch.randn(3, 1, 4, 4, generator=g)
    for t in (999, 500, 10, 1, 0):
        expected = ref.step(output, t, sample, generator=torch.Generator().manual_seed(t)).prev_sample
        ours, _ = dm.p_sample(lambda x, tt: output, linear, sample, t, prediction=prediction, variance=variance,
                              generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


@needs_diffusers
def test_p_sample_with_clipping_matches_diffusers(linear):
    ref = diffusers.DDPMScheduler(num_train_timesteps=T, clip_sample=True)
    g = torch.Generator().manual_seed(8)
    sample, output = torch.randn(3, 1, 4, 4, generator=g) * 2, torch.randn(3, 1, 4, 4, generator=g)
    for t in (900, 100, 0):
        expected = ref.step(output, t, sample, generator=torch.Generator().manual_seed(t)).prev_sample
        ours, _ = dm.p_sample(lambda x, tt: output, linear, sample, t, clip_x0=True,
                              generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


@needs_diffusers
@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
def test_ddim_timesteps_match_diffusers(spacing):
    for steps in (10, 50, 100, 1000):
        ref = diffusers.DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing)
        ref.set_timesteps(steps)
        assert dm.ddim_timesteps(T, steps, spacing) == ref.timesteps.tolist()


@needs_diffusers
@pytest.mark.parametrize("prediction", dm.PREDICTIONS)
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_matches_diffusers(cosine, prediction, eta):
    steps = 20
    ref = diffusers.DDIMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                                  prediction_type=DIFFUSERS_PREDICTION[prediction], timestep_spacing="trailing")
    ref.set_timesteps(steps)
    ts = dm.ddim_timesteps(T, steps)
    g = torch.Generator().manual_seed(9)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        sample, output, z = (torch.randn(2, 1, 3, 3, generator=g) for _ in range(3))
        expected = ref.step(output, t, sample, eta=eta, variance_noise=z).prev_sample
        eps, x0 = cosine.split_output(output, sample, t, prediction)
        ours = dm.ddim_step(cosine, sample, t, t_prev, eps, x0, eta=eta, noise=z)
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


@needs_diffusers
def test_full_ddim_loop_matches_diffusers(linear):
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, linear)
    ref = diffusers.DDIMScheduler(num_train_timesteps=T, clip_sample=False)
    ref.set_timesteps(25)
    x_T = torch.randn(64, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    x = x_T.clone()
    for t in ref.timesteps:
        x = ref.step(model(x, torch.full((64,), int(t))), int(t), x, eta=0.0).prev_sample
    ours = dm.ddim_sample(model, linear, steps=25, spacing="leading", x_T=x_T)
    torch.testing.assert_close(ours, x, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# End to end with the exact denoiser of Gaussian data
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule_name, prediction", [("linear", "eps"), ("cosine", "v")])
def test_ddpm_with_the_optimal_denoiser_reproduces_gaussian_data(schedule_name, prediction):
    schedule = NoiseSchedule.from_name(schedule_name, T)
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, schedule, prediction=prediction)
    g = torch.Generator().manual_seed(11)
    x = dm.ddpm_sample(model, schedule, (10_000, 3), prediction=prediction, generator=g, device="cpu")
    m, c = sample_stats(x)
    torch.testing.assert_close(m, mean, atol=0.02, rtol=0)
    torch.testing.assert_close(c, cov, atol=0.02, rtol=0)


def test_ddim_with_the_optimal_denoiser_reproduces_gaussian_data(linear):
    """Deterministic DDIM is a first-order ODE solver: its error in the covariance shrinks like 1 / steps."""
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, linear)
    x_T = torch.randn(10_000, 3, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    errors = {}
    for steps in (20, 200):
        m, c = sample_stats(dm.ddim_sample(model, linear, steps=steps, x_T=x_T))
        torch.testing.assert_close(m, mean, atol=0.02, rtol=0)
        errors[steps] = float((c - cov).abs().max())
    assert errors[200] < 0.02, f"200 DDIM steps should reproduce the covariance, error {errors[200]:.3f}"
    assert errors[20] > 2 * errors[200], "fewer steps, larger discretisation error"
    assert errors[20] < 0.15, f"even 20 steps should be close, error {errors[20]:.3f}"


def test_stochastic_ddim_with_the_optimal_denoiser_reproduces_gaussian_data(linear):
    """eta = 1 on a subsequence: right with enough steps; with big jumps it under-disperses (sigma^2 = beta tilde
    ignores the uncertainty of x0_hat), the reason Nichol & Dhariwal learn the variance for fast sampling."""
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, linear)
    x_T = torch.randn(10_000, 3, generator=torch.Generator().manual_seed(16), dtype=torch.float64)
    m, c = sample_stats(dm.ddim_sample(model, linear, steps=250, eta=1.0, x_T=x_T,
                                       generator=torch.Generator().manual_seed(17)))
    torch.testing.assert_close(m, mean, atol=0.02, rtol=0)
    torch.testing.assert_close(c, cov, atol=0.03, rtol=0)
    _, c_coarse = sample_stats(dm.ddim_sample(model, linear, steps=25, eta=1.0, x_T=x_T,
                                              generator=torch.Generator().manual_seed(17)))
    assert (torch.diagonal(c_coarse) < torch.diagonal(cov) - 0.02).all()


def test_a_wrong_sampler_is_caught():
    """The end-to-end check has teeth: forgetting the noise in DDPM (sigma = 0) shrinks the covariance."""
    schedule = NoiseSchedule.linear(T)
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, schedule)
    x = torch.randn(5000, 3, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    for t in range(T - 1, -1, -1):
        _, x0_hat = schedule.split_output(model(x, torch.full((5000,), t)), x, t)
        x, _ = schedule.q_posterior(x0_hat, x, t)  # mean only: no sigma_t z
    _, c = sample_stats(x)
    assert (torch.diagonal(c) < 0.5 * torch.diagonal(cov)).all()


def test_ddim_eta0_is_deterministic_and_nearly_invertible(linear):
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, linear)
    x_T = torch.randn(256, 3, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    a = dm.ddim_sample(model, linear, steps=50, x_T=x_T, generator=torch.Generator().manual_seed(1))
    b = dm.ddim_sample(model, linear, steps=50, x_T=x_T, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b), "with eta = 0 the sampler is a deterministic function of x_T"
    x0 = torch.distributions.MultivariateNormal(mean, cov).sample((256,))
    errors = {}
    for steps in (50, 500):
        latent = dm.ddim_invert(model, linear, x0, steps=steps)
        back = dm.ddim_sample(model, linear, steps=steps, x_T=latent)
        errors[steps] = float((back - x0).abs().mean())
    assert errors[500] < 0.01, f"encode then decode with 500 steps should return the data, error {errors[500]:.4f}"
    assert errors[50] > 3 * errors[500], "the round trip gets exact as the steps get small"
    torch.testing.assert_close(sample_stats(latent)[1], torch.eye(3, dtype=torch.float64), atol=0.25, rtol=0)


def test_ddim_eta1_on_every_step_is_ddpm(linear):
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, linear)
    a = dm.ddpm_sample(model, linear, (32, 3), generator=torch.Generator().manual_seed(15), device="cpu")
    b = dm.ddim_sample(model, linear, (32, 3), steps=T, eta=1.0, generator=torch.Generator().manual_seed(15),
                       device="cpu")
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_trajectories_and_argument_errors(linear):
    mean, cov = gaussian_data()
    model = GaussianOptimalDenoiser(mean, cov, linear)
    out = dm.ddim_sample(model, linear, (5, 3), steps=20, return_trajectory=True, keep_every=5, device="cpu")
    assert out.trajectory.shape == (5, 5, 3) and out.x0_predictions.shape == (4, 5, 3)
    assert out.timesteps[-1] == dm.ddim_timesteps(T, 20)[-1]
    assert torch.equal(out.trajectory[-1], out.samples)
    full = dm.ddpm_sample(model, linear, (2, 3), return_trajectory=True, keep_every=100, device="cpu")
    assert full.trajectory.shape == (11, 2, 3) and full.timesteps[-1] == 0
    with pytest.raises(ValueError, match="eta"):
        dm.ddim_sample(model, linear, (2, 3), eta=1.5, device="cpu")
    with pytest.raises(ValueError, match="decreasing"):
        dm.ddim_sample(model, linear, (2, 3), timesteps=[0, 500, 999], device="cpu")
    with pytest.raises(ValueError, match="shape"):
        dm.ddim_sample(model, linear, device="cpu")
    with pytest.raises(ValueError, match="output a tensor of the input's shape"):
        dm.ddim_sample(lambda x, t: x[:, :1], linear, (2, 3), device="cpu")


def test_plot_schedules(linear, cosine):
    import matplotlib

    matplotlib.use("Agg")
    fig = dm.plot_schedules({"linear": linear, "cosine": cosine})
    assert len(fig.axes) == 3 and len(fig.axes[1].lines) == 2
