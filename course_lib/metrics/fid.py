r"""Frechet distance between Gaussians fitted to classifier features: FID (Heusel et al., 2017).

Fit a Gaussian to the features of the real images, :math:`\mathcal N(\mu_r, \Sigma_r)`, and one to the
features of the generated images, :math:`\mathcal N(\mu_g, \Sigma_g)`. The Frechet (2-Wasserstein)
distance between them is

.. math::

    d^2 = \lVert \mu_r - \mu_g \rVert_2^2
          + \operatorname{tr}\Big(\Sigma_r + \Sigma_g - 2 \big(\Sigma_r^{1/2} \Sigma_g \Sigma_r^{1/2}\big)^{1/2}\Big).

With Inception-v3 features this is the FID; here the features are those of the course's digit
classifier (64-dim for MNIST, 32-dim for the 8x8 digits), so the numbers are **not** comparable with
published Inception FIDs, only with each other at the same sample size.

**The matrix square root, done stably.** The textbook form :math:`\operatorname{tr}(\Sigma_r \Sigma_g)^{1/2}`
asks for the square root of a *non-symmetric* product; ``scipy.linalg.sqrtm`` of it can return
complex values or lose accuracy when a covariance is near-singular, and implementations patch that
with :math:`\varepsilon I`. But :math:`\Sigma_r \Sigma_g` is similar to the symmetric positive
semi-definite matrix :math:`M = \Sigma_r^{1/2} \Sigma_g \Sigma_r^{1/2}`
(:math:`M = \Sigma_r^{-1/2} (\Sigma_r \Sigma_g) \Sigma_r^{1/2}`), so both have the same eigenvalues
:math:`\lambda_i \ge 0` and

.. math::  \operatorname{tr}\big(\Sigma_r \Sigma_g\big)^{1/2} = \sum_i \sqrt{\lambda_i(M)} .

This module computes :math:`\Sigma_r^{1/2}` and the :math:`\lambda_i` with symmetric eigen-
decompositions (``torch.linalg.eigh``) in float64, clipping round-off negatives to zero: real
results, no :math:`\varepsilon`, correct for singular covariances too.

**Bias.** FID estimated from :math:`N` samples is biased upwards, roughly by :math:`c / N`
(Chong & Forsyth, 2020, *Effectively unbiased FID and Inception Score and where to find them*): two
disjoint sets of *real* digits do not score 0. Compare a model's FID with the real-vs-real floor at the
same :math:`N` (:func:`course_lib.metrics.floor`, :func:`course_lib.metrics.ratio_to_floor`), never
across sample sizes.
"""

from __future__ import annotations

import torch

from course_lib.metrics._checks import (
    as_float64,
    check_enough_for_covariance,
    check_features,
    check_image_pair,
    check_same_dim,
)
from course_lib.metrics.features import as_features

__all__ = ["gaussian_statistics", "sqrtm_psd", "trace_sqrt_product", "frechet_distance", "fid", "fid_from_features"]


def gaussian_statistics(features, *, name: str = "features") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Mean and unbiased covariance of ``features: (N, D)``: ``(mu (D,), sigma (D, D))``, float64 on the CPU.

    .. math::  \mu = \frac1N \sum_n h_n, \qquad \Sigma = \frac{1}{N - 1} \sum_n (h_n - \mu)(h_n - \mu)^\top

    Needs :math:`N > D` (a covariance from :math:`N` samples has rank at most :math:`N - 1`); fewer
    samples are an error, not a silently singular matrix.
    """
    f = check_features(features, name=name)
    check_enough_for_covariance(f, name=name)
    mu = f.mean(dim=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)
    return mu, sigma


def _check_covariance(sigma: torch.Tensor, d: int, name: str) -> torch.Tensor:
    if sigma.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}) to match the mean, got {tuple(sigma.shape)}")
    if not torch.isfinite(sigma).all():
        raise ValueError(f"{name} contains NaN or inf")
    scale = float(sigma.abs().max()) or 1.0
    if float((sigma - sigma.T).abs().max()) > 1e-6 * scale:
        raise ValueError(f"{name} is not symmetric; pass a covariance matrix (e.g. from gaussian_statistics)")
    return (sigma + sigma.T) / 2


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    r"""Symmetric square root of a symmetric positive semi-definite matrix ``a: (D, D)``.

    .. math::  A = U \Lambda U^\top \ \Rightarrow\ A^{1/2} = U \max(\Lambda, 0)^{1/2} U^\top

    Eigenvalues below zero (round-off of a PSD matrix) are clipped to zero; a clearly indefinite
    matrix (an eigenvalue below :math:`-10^{-6} \lambda_{\max}`) is an error.
    """
    a = as_float64(a, name="a")
    if a.dim() != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"sqrtm_psd needs a square matrix, got shape {tuple(a.shape)}")
    a = _check_covariance(a, a.shape[0], "a")
    evals, evecs = torch.linalg.eigh(a)
    top = float(evals.abs().max()) if evals.numel() else 0.0
    if float(evals.min()) < -1e-6 * max(top, 1e-300):
        raise ValueError(
            f"the matrix is not positive semi-definite (smallest eigenvalue {float(evals.min()):.3g}); "
            "covariance matrices are PSD, so check how it was computed"
        )
    return (evecs * evals.clamp(min=0).sqrt()) @ evecs.T


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> float:
    r""":math:`\operatorname{tr}(\Sigma_1 \Sigma_2)^{1/2} = \sum_i \sqrt{\lambda_i(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})}`, float64."""
    root1 = sqrtm_psd(sigma1)
    m = root1 @ as_float64(sigma2, name="sigma2") @ root1
    evals = torch.linalg.eigvalsh((m + m.T) / 2)
    return float(evals.clamp(min=0).sqrt().sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    r"""Squared Frechet distance between :math:`\mathcal N(\mu_1, \Sigma_1)` and :math:`\mathcal N(\mu_2, \Sigma_2)`.

    .. math::  d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
               - 2 \sum_i \sqrt{\lambda_i\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)}

    ``mu1, mu2: (D,)``, ``sigma1, sigma2: (D, D)`` symmetric PSD (tensors or arrays); computed in float64.
    Returns a Python float :math:`\ge 0` (tiny negative round-off is returned as 0).
    """
    mu1, mu2 = as_float64(mu1, name="mu1"), as_float64(mu2, name="mu2")
    if mu1.dim() != 1 or mu2.shape != mu1.shape:
        raise ValueError(f"mu1 and mu2 must be vectors of the same length (D,), got {tuple(mu1.shape)} and {tuple(mu2.shape)}")
    if not (torch.isfinite(mu1).all() and torch.isfinite(mu2).all()):
        raise ValueError("mu1 or mu2 contains NaN or inf")
    d = mu1.shape[0]
    sigma1 = _check_covariance(as_float64(sigma1, name="sigma1"), d, "sigma1")
    sigma2 = _check_covariance(as_float64(sigma2, name="sigma2"), d, "sigma2")
    mean_term = float(((mu1 - mu2) ** 2).sum())
    value = mean_term + float(torch.trace(sigma1) + torch.trace(sigma2)) - 2 * trace_sqrt_product(sigma1, sigma2)
    return max(value, 0.0)


def fid_from_features(real, fake) -> float:
    """FID between two feature matrices ``real: (N_r, D)`` and ``fake: (N_g, D)`` (both need ``N > D``)."""
    real = check_features(real, name="real")
    fake = check_features(fake, name="fake")
    check_same_dim(real, fake)
    return frechet_distance(*gaussian_statistics(real, name="real"), *gaussian_statistics(fake, name="fake"))


def fid(real: torch.Tensor, fake: torch.Tensor, *, classifier=None, batch_size: int = 500,
        device: torch.device | str | None = None) -> float:
    r"""Frechet distance between the classifier features of ``real`` and ``fake`` (lower is better, 0 = same Gaussian).

    ``real``, ``fake``: images ``(N, C, H, W)`` in [0, 1] (features extracted on ``device`` in batches of
    ``batch_size``) or feature matrices ``(N, D)``. ``classifier``: ``"mnist"``, ``"digits8x8"``, a module,
    or ``None`` (chosen from the image size). Both sets need more samples than feature dimensions.

    >>> fid(data.mnist("test").x, samples)          # samples: (1000, 1, 28, 28) in [0, 1]
    """
    check_image_pair(real, fake)
    f_real = as_features(real, classifier, batch_size=batch_size, device=device, name="real")
    f_fake = as_features(fake, classifier, batch_size=batch_size, device=device, name="fake")
    return fid_from_features(f_real, f_fake)
