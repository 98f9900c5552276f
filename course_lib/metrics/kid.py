r"""Kernel Inception Distance: an unbiased squared MMD between classifier features (Binkowski et al., 2018).

With a kernel :math:`k` on feature vectors, the squared maximum mean discrepancy between the real
distribution :math:`P` and the model's :math:`Q` is

.. math::  \operatorname{MMD}^2(P, Q) = \mathbb E\, k(x, x') + \mathbb E\, k(y, y') - 2\, \mathbb E\, k(x, y),
           \qquad x, x' \sim P,\ y, y' \sim Q,

and KID uses the cubic polynomial kernel of the paper,

.. math::  k(a, b) = \Big(\frac{a^\top b}{D} + 1\Big)^3 \qquad (\gamma = 1/D,\ c = 1,\ \text{degree } 3).

From real features :math:`x_1..x_m` and generated :math:`y_1..y_n` the **unbiased** estimator (a
U-statistic: pairs of a sample with itself are left out) is

.. math::  \widehat{\operatorname{MMD}}^2_u = \frac{1}{m(m-1)} \sum_{i \ne i'} k(x_i, x_{i'})
           + \frac{1}{n(n-1)} \sum_{j \ne j'} k(y_j, y_{j'}) - \frac{2}{mn} \sum_{i, j} k(x_i, y_j).

Unlike FID its expectation is exactly the population value, so two real sets score 0 **on average at
every sample size**; individual estimates scatter around it and can be negative. What shrinks with
:math:`N` is the spread, so KID comes with a standard error.

**Standard error.** The two-sample jackknife (Arvesen, 1969): with :math:`\hat\theta_{-i}` the
estimate without :math:`x_i` and :math:`\hat\theta_{-j}` the one without :math:`y_j`,

.. math::  \widehat{\operatorname{Var}} = \frac{m-1}{m} \sum_i (\hat\theta_{-i} - \bar\theta_{x})^2
           + \frac{n-1}{n} \sum_j (\hat\theta_{-j} - \bar\theta_{y})^2 .

Every leave-one-out estimate follows from the kernel row sums in closed form, so the whole thing
costs no more than the estimate itself. When the two distributions differ (a model against real data)
it matches the spread of KID over independent draws; when they are the same (real against real, the
degenerate case of the U-statistic) it is conservative, i.e. larger than the true spread: use the
recorded real-vs-real floors (:func:`course_lib.metrics.floor`) for the noise level of that case. (Binkowski et al. and torchmetrics instead average over
random subsets and report the subsets' standard deviation; on the full sets used here the estimate
is the same U-statistic with ``subsets=1, subset_size=N``.)

Kernel sums are accumulated in row blocks of ``chunk_size`` in float64 on the CPU, so memory stays
:math:`O(\text{chunk} \cdot N)` even for tens of thousands of samples.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from course_lib.metrics._checks import check_features, check_image_pair, check_positive_int, check_same_dim
from course_lib.metrics.features import as_features

__all__ = ["KIDResult", "polynomial_kernel", "mmd2_unbiased", "kid", "kid_from_features"]


class KIDResult(NamedTuple):
    """``value``: the unbiased MMD^2 estimate; ``std_error``: its jackknife standard error; sample sizes."""

    value: float
    std_error: float
    n_real: int
    n_fake: int

    def __str__(self) -> str:
        return f"KID = {self.value:.5f} +- {self.std_error:.5f} (N_real={self.n_real}, N_fake={self.n_fake})"


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor, *, degree: int = 3, gamma: float | None = None,
                      coef: float = 1.0) -> torch.Tensor:
    r""":math:`k(a_i, b_j) = (\gamma\, a_i^\top b_j + c)^{d}` for ``a: (M, D)``, ``b: (N, D)`` -> ``(M, N)``; ``gamma`` default ``1/D``."""
    if gamma is None:
        gamma = 1.0 / a.shape[1]
    return (a @ b.T * gamma + coef) ** degree


class _RowSums(NamedTuple):
    xx: torch.Tensor  # (m,) sum over i' != i of k(x_i, x_i')
    yy: torch.Tensor  # (n,) sum over j' != j of k(y_j, y_j')
    xy_rows: torch.Tensor  # (m,) sum_j k(x_i, y_j)
    xy_cols: torch.Tensor  # (n,) sum_i k(x_i, y_j)


def _row_sums(x: torch.Tensor, y: torch.Tensor, kernel: "_Poly", chunk_size: int) -> _RowSums:
    """Kernel row/column sums, accumulated over row blocks of ``chunk_size`` (never the full matrix)."""

    def off_diagonal_sums(a: torch.Tensor) -> torch.Tensor:
        out = torch.empty(a.shape[0], dtype=torch.float64)
        for s in range(0, a.shape[0], chunk_size):
            rows = a[s:s + chunk_size]
            out[s:s + chunk_size] = kernel(rows, a).sum(dim=1) - kernel.diag(rows)
        return out

    xy_rows = torch.empty(x.shape[0], dtype=torch.float64)
    xy_cols = torch.zeros(y.shape[0], dtype=torch.float64)
    for s in range(0, x.shape[0], chunk_size):
        block = kernel(x[s:s + chunk_size], y)
        xy_rows[s:s + chunk_size] = block.sum(dim=1)
        xy_cols += block.sum(dim=0)
    return _RowSums(off_diagonal_sums(x), off_diagonal_sums(y), xy_rows, xy_cols)


class _Poly:
    """The polynomial kernel with fixed parameters, with a cheap diagonal."""

    def __init__(self, degree: int, gamma: float, coef: float):
        self.degree, self.gamma, self.coef = degree, gamma, coef

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return polynomial_kernel(a, b, degree=self.degree, gamma=self.gamma, coef=self.coef)

    def diag(self, a: torch.Tensor) -> torch.Tensor:
        return ((a * a).sum(dim=1) * self.gamma + self.coef) ** self.degree


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, *, degree: int = 3, gamma: float | None = None,
                  coef: float = 1.0, chunk_size: int = 2048) -> KIDResult:
    r"""Unbiased :math:`\widehat{\operatorname{MMD}}^2_u` with the polynomial kernel and its jackknife standard error.

    ``x: (m, D)``, ``y: (n, D)`` feature matrices (any float dtype; computed in float64 on the CPU),
    ``m, n >= 3``. See the module docstring for the formulas.
    """
    x = check_features(x, name="real")
    y = check_features(y, name="fake")
    check_same_dim(x, y)
    m, n = x.shape[0], y.shape[0]
    if m < 3 or n < 3:
        raise ValueError(f"KID needs at least 3 samples per set for its standard error, got {m} real and {n} fake")
    degree = check_positive_int(degree, name="degree")
    chunk_size = check_positive_int(chunk_size, name="chunk_size")
    gamma = 1.0 / x.shape[1] if gamma is None else float(gamma)
    if not (gamma > 0 and math.isfinite(gamma)):
        raise ValueError(f"gamma must be a positive number, got {gamma!r}")
    sums = _row_sums(x, y, _Poly(degree, gamma, float(coef)), chunk_size)
    a, b, c = sums.xx.sum(), sums.yy.sum(), sums.xy_rows.sum()
    value = a / (m * (m - 1)) + b / (n * (n - 1)) - 2 * c / (m * n)
    # leave-one-out estimates (closed form from the row sums)
    loo_x = (a - 2 * sums.xx) / ((m - 1) * (m - 2)) + b / (n * (n - 1)) - 2 * (c - sums.xy_rows) / ((m - 1) * n)
    loo_y = a / (m * (m - 1)) + (b - 2 * sums.yy) / ((n - 1) * (n - 2)) - 2 * (c - sums.xy_cols) / (m * (n - 1))
    var = (m - 1) / m * ((loo_x - loo_x.mean()) ** 2).sum() + (n - 1) / n * ((loo_y - loo_y.mean()) ** 2).sum()
    return KIDResult(float(value), float(var.sqrt()), m, n)


def kid_from_features(real, fake, *, degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> KIDResult:
    """KID between feature matrices ``real: (m, D)`` and ``fake: (n, D)``; see :func:`mmd2_unbiased`."""
    return mmd2_unbiased(real, fake, degree=degree, gamma=gamma, coef=coef)


def kid(real: torch.Tensor, fake: torch.Tensor, *, classifier=None, degree: int = 3, gamma: float | None = None,
        coef: float = 1.0, batch_size: int = 500, device: torch.device | str | None = None) -> KIDResult:
    r"""Kernel Inception Distance between the classifier features of ``real`` and ``fake``.

    ``real``, ``fake``: images ``(N, C, H, W)`` in [0, 1] or feature matrices ``(N, D)``; ``classifier`` as
    in :func:`course_lib.metrics.fid`. Returns a :class:`KIDResult` ``(value, std_error, n_real, n_fake)``;
    lower is better, 0 means no detectable difference, and a value within about two standard errors of
    0 is indistinguishable from it at this sample size.
    """
    check_image_pair(real, fake)
    f_real = as_features(real, classifier, batch_size=batch_size, device=device, name="real")
    f_fake = as_features(fake, classifier, batch_size=batch_size, device=device, name="fake")
    return mmd2_unbiased(f_real, f_fake, degree=degree, gamma=gamma, coef=coef)
