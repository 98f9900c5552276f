"""Tests for course_lib.metrics.likelihood against independent references (torch.logsumexp, float64
direct sums, closed forms, scipy's KS test)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib.metrics.likelihood import (
    bits_per_dim_to_nats,
    dequantize,
    discrete_nll_from_density,
    log_mean_exp,
    nats_to_bits_per_dim,
)


# ----------------------------------------------------------------------------- log_mean_exp
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_log_mean_exp_matches_logsumexp_minus_log_k(dim):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, 3, generator=g) * 10
    expected = torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])
    torch.testing.assert_close(log_mean_exp(x, dim=dim), expected, rtol=1e-6, atol=1e-5)


def test_log_mean_exp_matches_direct_float64_on_moderate_values():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 50, generator=g, dtype=torch.float64) * 3
    direct = torch.log(torch.exp(x).mean(dim=1))
    torch.testing.assert_close(log_mean_exp(x, dim=1), direct, rtol=1e-12, atol=1e-12)


def test_log_mean_exp_keepdim_shape():
    x = torch.zeros(2, 3, 4)
    assert log_mean_exp(x, dim=1, keepdim=True).shape == (2, 1, 4)
    assert log_mean_exp(x, dim=1).shape == (2, 4)
    # the mean of identical values is that value
    torch.testing.assert_close(log_mean_exp(torch.full((3, 5), -2.5)), torch.full((3,), -2.5))


@pytest.mark.parametrize("offset", [1e4, -1e4])
def test_log_mean_exp_is_stable_for_large_magnitudes(offset):
    small = torch.tensor([0.0, math.log(2.0), math.log(3.0)])
    x = offset + small
    # a naive computation over- or underflows ...
    naive = torch.log(torch.exp(x).mean())
    assert not torch.isfinite(naive)
    # ... while the stable one gives offset + log(mean(1, 2, 3)) = offset + log 2
    out = log_mean_exp(x)
    assert torch.isfinite(out)
    assert abs(float(out) - (offset + math.log(2.0))) < 1e-2  # float32 spacing at 1e4 is ~1e-3


def test_log_mean_exp_handles_minus_inf():
    x = torch.tensor([[0.0, -math.inf, math.log(3.0)], [-math.inf, -math.inf, -math.inf]])
    out = log_mean_exp(x, dim=1)
    assert abs(float(out[0]) - math.log(4.0 / 3.0)) < 1e-6  # (1 + 0 + 3) / 3
    assert out[1] == -math.inf
    assert not torch.isnan(out).any()


def test_log_mean_exp_gradient_is_softmax():
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    log_mean_exp(x).backward()
    torch.testing.assert_close(x.grad, torch.softmax(x.detach(), dim=0))


def test_log_mean_exp_rejects_bad_input():
    with pytest.raises(TypeError, match="float"):
        log_mean_exp(torch.arange(4))
    with pytest.raises(ValueError, match="size 0"):
        log_mean_exp(torch.zeros(3, 0), dim=1)
    with pytest.raises(TypeError, match="torch.Tensor"):
        log_mean_exp([1.0, 2.0])


# ----------------------------------------------------------------------------- conversions
def test_conversions_round_trip_and_known_values():
    nats = torch.tensor([0.0, 100.0, 543.21])
    torch.testing.assert_close(bits_per_dim_to_nats(nats_to_bits_per_dim(nats, 784), 784), nats)
    assert nats_to_bits_per_dim(784 * math.log(256), 784) == pytest.approx(8.0)
    assert bits_per_dim_to_nats(1.0, 10) == pytest.approx(10 * math.log(2))
    # float in, float out
    assert isinstance(nats_to_bits_per_dim(1.0, 3), float)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, None])
def test_conversions_reject_bad_num_dims(bad):
    with pytest.raises(ValueError, match="num_dims"):
        nats_to_bits_per_dim(1.0, bad)


def test_conversions_reject_integer_tensor():
    with pytest.raises(TypeError, match="float"):
        nats_to_bits_per_dim(torch.tensor([3, 4]), 2)


# ----------------------------------------------------------------------------- discrete bound
@pytest.mark.parametrize("levels", [2, 17, 256])
def test_uniform_density_gives_log2_levels_bits_per_dim(levels):
    num_dims = 64
    nll_uniform = torch.zeros(5)  # p(y) = 1 on [0, 1]^D
    bpd = nats_to_bits_per_dim(discrete_nll_from_density(nll_uniform, num_dims, levels), num_dims)
    torch.testing.assert_close(bpd, torch.full((5,), math.log2(levels)))


def test_bound_is_tight_for_a_density_constant_on_cells():
    # A discrete distribution P on L levels and the density p(y) = L * P(floor(L y)) that spreads it over
    # the cells: for every x and every u, -log p((x + u) / L) + log L = -log P(x) exactly.
    levels = 5
    probs = torch.tensor([0.1, 0.4, 0.2, 0.05, 0.25], dtype=torch.float64)
    x = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0, 4.0, 1.0], dtype=torch.float64)
    y = dequantize(x, levels, generator=torch.Generator().manual_seed(0))
    cell = torch.floor(y * levels).long()
    assert torch.equal(cell, x.long())
    nll_density = -torch.log(levels * probs[cell])
    bound = discrete_nll_from_density(nll_density, 1, levels)
    torch.testing.assert_close(bound, -torch.log(probs[x.long()]))


def test_discrete_nll_rejects_bad_levels():
    with pytest.raises(ValueError, match="levels"):
        discrete_nll_from_density(1.0, 4, 1)
    with pytest.raises(ValueError, match="levels"):
        discrete_nll_from_density(1.0, 4, 16.0)


# ----------------------------------------------------------------------------- dequantize
def test_dequantize_stays_in_its_cell_and_keeps_shape_dtype():
    levels = 17
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, levels, (64, 1, 8, 8), generator=g).float()
    y = dequantize(x, levels, generator=g)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.all(y >= x / levels)
    assert torch.all(y < (x + 1) / levels)
    assert torch.equal(torch.floor(y * levels), x)


def test_dequantize_top_edge_is_open_even_under_float_rounding():
    # 255 + u rounds to 256.0 in float32 for u close to 1: the result must still stay below 1.
    x = torch.full((200_000,), 255.0)
    y = dequantize(x, 256, generator=torch.Generator().manual_seed(3))
    assert float(y.max()) < 1.0


def test_dequantize_noise_is_uniform_ks():
    levels = 4
    x = torch.tensor([0.0, 1.0, 2.0, 3.0]).repeat(2500)
    y = dequantize(x, levels, generator=torch.Generator().manual_seed(0))
    u = (y * levels - x).double().numpy()  # recovered noise, should be U[0, 1)
    result = stats.kstest(u, "uniform")
    assert result.pvalue > 1e-3, f"dequantisation noise does not look uniform: {result}"
    # and it is not uniform in the wrong place: per-level noise means ~ 0.5
    means = np.array([u[x.numpy() == k].mean() for k in range(levels)])
    assert np.all(np.abs(means - 0.5) < 0.03)


def test_dequantize_is_reproducible_with_a_generator():
    x = torch.tensor([[0.0, 3.0], [5.0, 16.0]])
    a = dequantize(x, 17, generator=torch.Generator().manual_seed(7))
    b = dequantize(x, 17, generator=torch.Generator().manual_seed(7))
    c = dequantize(x, 17, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dequantize_rejects_bad_input_with_a_fix():
    with pytest.raises(TypeError, match=r"\.float\(\)"):
        dequantize(torch.tensor([0, 1, 2]), 17)
    with pytest.raises(ValueError, match="integer levels"):
        dequantize(torch.tensor([0.5, 0.2]), 17)  # [0, 1] images, not levels
    with pytest.raises(ValueError, match="integer levels"):
        dequantize(torch.tensor([0.0, 17.0]), 17)  # level 17 does not exist with 17 levels
    with pytest.raises(ValueError, match="levels must be an int"):
        dequantize(torch.tensor([0.0, 1.0]), 1)
