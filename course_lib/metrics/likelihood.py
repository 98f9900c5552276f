r"""Likelihood bookkeeping: stable averages of likelihoods, nats vs bits per dimension, dequantisation.

Likelihoods are reported in the literature in **bits per dimension**: the negative log-likelihood of a
data point in nats, divided by the number of dimensions :math:`D` (pixels x channels) and by
:math:`\ln 2`,

.. math::  \text{bpd}(x) = \frac{-\log p(x)}{D \ln 2}.

It makes numbers comparable across image sizes: a model that knows nothing about 8-bit images
(uniform over 256 levels) scores exactly :math:`\log_2 256 = 8` bits/dim, and published MNIST
models reach about 1 bit/dim.

Two subtleties are handled here:

* **Averaging likelihoods** (importance-sampled NLL of a VAE, IWAE) needs
  :math:`\log \frac1K \sum_k e^{x_k}` of numbers like :math:`x_k \approx -500`, whose exponentials
  underflow: :func:`log_mean_exp` computes it stably.
* **Discrete data, continuous densities.** A density on :math:`[0, 1]^D` can be made arbitrarily large
  on a finite set of points, so its value at the pixel levels means nothing. Adding uniform noise
  (:func:`dequantize`) and correcting by :math:`D \log L` (:func:`discrete_nll_from_density`) turns it
  into an honest upper bound on the discrete NLL (Theis, van den Oord & Bethge, 2016).

All functions accept and return ``torch.Tensor`` (any shape) or plain Python floats where noted.
"""

from __future__ import annotations

import math
from numbers import Real

import torch

from course_lib.data.ranges import check_range

__all__ = [
    "log_mean_exp",
    "nats_to_bits_per_dim",
    "bits_per_dim_to_nats",
    "dequantize",
    "discrete_nll_from_density",
]

_LN2 = math.log(2.0)


def log_mean_exp(x: torch.Tensor, dim: int = -1, keepdim: bool = False) -> torch.Tensor:
    r"""The log of the mean of exponentials along ``dim``, computed without under- or overflow.

    .. math::  \operatorname{LME}(x) = \log \frac{1}{K} \sum_{k=1}^K e^{x_k}
               = m + \log \frac{1}{K} \sum_{k=1}^K e^{x_k - m}, \qquad m = \max_k x_k .

    After subtracting the maximum every exponent is :math:`\le 0` and the largest term is
    :math:`e^0 = 1`, so the sum lies in :math:`[1, K]` and its log is well behaved even when every
    :math:`x_k \approx -10^4`. Typical use is the importance-sampled log-likelihood of a VAE,

    .. math::  \log p(x) \approx \log \frac1K \sum_k \frac{p(x, z_k)}{q(z_k \mid x)},
               \quad z_k \sim q(z \mid x),

    where ``x[b, k] = log p(x_b, z_k) - log q(z_k | x_b)`` has shape ``(B, K)`` and the estimate is
    ``log_mean_exp(x, dim=1)`` of shape ``(B,)``.

    ``-inf`` entries (zero probability) are allowed: they contribute nothing, and a slice that is
    ``-inf`` everywhere gives ``-inf``. ``m`` is treated as a constant for autograd (it cancels
    mathematically), so the gradient is exactly :math:`\partial\,\mathrm{LME} / \partial x_k =
    \operatorname{softmax}(x)_k`.

    Args:
        x: float tensor of any shape with ``x.shape[dim] = K >= 1``.
        dim: the dimension to average over.
        keepdim: keep ``dim`` as a size-1 dimension.

    Returns:
        ``x`` reduced over ``dim``.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"log_mean_exp expects a torch.Tensor, got {type(x).__name__}; wrap it with torch.as_tensor(...)")
    if not x.is_floating_point():
        raise TypeError(f"log_mean_exp needs a floating-point tensor, got dtype {x.dtype}; use x.float()")
    if x.dim() == 0:
        raise ValueError("log_mean_exp needs at least one dimension to average over; got a scalar tensor")
    k = x.shape[dim]
    if k == 0:
        raise ValueError(f"cannot average over dimension {dim} of size 0 (x.shape = {tuple(x.shape)})")
    m = x.detach().amax(dim=dim, keepdim=True)
    # A slice that is -inf everywhere (or +inf somewhere) has an infinite max; shift by 0 there instead,
    # which gives log(0) = -inf (resp. log(inf) = inf), the right answers, instead of inf - inf = nan.
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    out = m + torch.log(torch.exp(x - m).mean(dim=dim, keepdim=True))
    return out if keepdim else out.squeeze(dim)


def _check_num_dims(num_dims: int) -> None:
    if isinstance(num_dims, bool) or not isinstance(num_dims, int) or num_dims < 1:
        raise ValueError(
            f"num_dims must be a positive int (the number of dimensions of one data point, e.g. x[0].numel() "
            f"= 784 for a 1x28x28 image), got {num_dims!r}"
        )


def _check_number(value, name: str) -> None:
    if torch.is_tensor(value):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a float tensor, got dtype {value.dtype}; use {name}.float()")
        return
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number or a float tensor, got {type(value).__name__}")


def nats_to_bits_per_dim(nats, num_dims: int):
    r"""Convert a negative log-likelihood per data point in nats to bits per dimension.

    .. math::  \text{bpd} = \frac{\text{nats}}{D \ln 2}

    Args:
        nats: NLL :math:`-\log p(x)` of whole data points (summed over their dimensions), a float
            or a float tensor of any shape (e.g. ``(B,)``).
        num_dims: :math:`D`, dimensions per data point (``784`` for a 1x28x28 image).

    Returns:
        the same type and shape as ``nats``.

    >>> nats_to_bits_per_dim(784 * math.log(256), 784)   # uniform over 256 levels: 8 bits/dim
    8.0
    """
    _check_number(nats, "nats")
    _check_num_dims(num_dims)
    return nats / (num_dims * _LN2)


def bits_per_dim_to_nats(bpd, num_dims: int):
    r"""Inverse of :func:`nats_to_bits_per_dim`: :math:`\text{nats} = \text{bpd} \cdot D \ln 2`.

    Args:
        bpd: bits per dimension, a float or a float tensor of any shape.
        num_dims: :math:`D`, dimensions per data point.
    """
    _check_number(bpd, "bpd")
    _check_num_dims(num_dims)
    return bpd * (num_dims * _LN2)


def _check_levels(levels: int) -> None:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(
            f"levels must be an int >= 2, the number of discrete values per dimension "
            f"(256 for 8-bit images, 17 for the 8x8 digits), got {levels!r}"
        )


def dequantize(x_levels: torch.Tensor, levels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Uniform dequantisation: map integer levels to continuous values in :math:`[0, 1)`.

    .. math::  y = \frac{x + u}{L}, \qquad u \sim \mathcal U[0, 1)^D ,

    so level :math:`x` is spread uniformly over its own cell :math:`[x/L, (x+1)/L)` and the cells of
    the :math:`L` levels tile :math:`[0, 1)` without overlap. A continuous density trained on such
    ``y`` cannot cheat by piling infinite density on the few values the data takes, and its NLL gives a
    bound on the discrete NLL (see :func:`discrete_nll_from_density`). Draw fresh noise every time the
    data is used (every training step), not once.

    Args:
        x_levels: float tensor of any shape, e.g. ``(B, C, H, W)``, holding integer levels
            ``0 .. levels-1`` (the ``"counts"`` value range). ``[0, 1]`` images must be turned into
            levels first, e.g. ``(x * 255).round()``.
        levels: :math:`L`, the number of levels (256 for 8-bit images, 17 for the 8x8 digits).
        generator: optional ``torch.Generator`` (on ``x_levels``' device) for reproducible noise.

    Returns:
        ``y``, same shape, dtype and device as ``x_levels``, with ``x/L <= y < (x+1)/L`` elementwise
        (kept strictly below the upper edge even where float rounding of ``x + u`` would reach it).
    """
    _check_levels(levels)
    if torch.is_tensor(x_levels) and not x_levels.is_floating_point():
        raise TypeError(f"x_levels has dtype {x_levels.dtype}; pass the levels as floats: x_levels.float()")
    check_range(x_levels, "counts", name="x_levels", levels=levels)
    u = torch.rand(x_levels.shape, generator=generator, dtype=x_levels.dtype, device=x_levels.device)
    y = (x_levels + u) / levels
    upper = (x_levels + 1) / levels
    return torch.minimum(y, torch.nextafter(upper, torch.zeros_like(upper)))


def discrete_nll_from_density(nll_nats, num_dims: int, levels: int):
    r"""Turn the NLL of dequantised data under a density on :math:`[0,1]^D` into a discrete NLL bound.

    Let :math:`x \in \{0, \dots, L-1\}^D` be discrete data and :math:`p` a density on :math:`[0,1]^D`.
    It defines a discrete model by integrating over the cell of each :math:`x`,

    .. math::  P(x) = \int_{[0,1)^D} p\!\left(\tfrac{x+u}{L}\right) L^{-D} \, du ,

    (the factor :math:`L^{-D}` is the Jacobian of :math:`u \mapsto (x+u)/L`). By Jensen's inequality
    (:math:`\log` is concave),

    .. math::  -\log P(x) \;\le\; \mathbb E_{u \sim \mathcal U[0,1)^D}
               \left[-\log p\!\left(\tfrac{x+u}{L}\right)\right] + D \log L .

    So the average NLL (in nats) of :func:`dequantize`-d data under :math:`p`, plus :math:`D \log L`,
    is an upper bound on the NLL of the discrete data: the number to report, e.g. converted with
    :func:`nats_to_bits_per_dim`. Equality holds when :math:`p` is constant on every cell. Example: the
    uniform density :math:`p = 1` has NLL 0, and gives :math:`D \log L` nats, i.e. exactly
    :math:`\log_2 L` bits per dimension (8 for 8-bit images).

    Note the scale: this assumes the density is over ``y = (x + u) / L`` in :math:`[0, 1]`. For a
    density over ``x + u`` in :math:`[0, L]` there is no correction term; for ``[-1, 1]`` data
    (``2y - 1``) the correction is :math:`D \log(L/2)`.

    Reference: L. Theis, A. van den Oord, M. Bethge, "A note on the evaluation of generative models",
    ICLR 2016, section 3.1.

    Args:
        nll_nats: :math:`-\log p(y)` per data point in nats (summed over its :math:`D` dimensions),
            a float or a float tensor of any shape, e.g. ``(B,)``.
        num_dims: :math:`D`.
        levels: :math:`L`.

    Returns:
        ``nll_nats + D log L``, same type and shape as ``nll_nats``.
    """
    _check_number(nll_nats, "nll_nats")
    _check_num_dims(num_dims)
    _check_levels(levels)
    return nll_nats + num_dims * math.log(levels)
