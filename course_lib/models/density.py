r"""Classical density estimators fitted by maximum likelihood: a Gaussian, a Gaussian mixture (EM), a KDE.

These are the models of notebook 02. All three take data as a float tensor ``x: (N, D)`` (N points,
D dimensions; flatten images first with ``x.flatten(1)``), compute in ``float64`` on the device of
the data (the CPU or a CUDA GPU; Apple's MPS has no float64), and share one interface:

=====================  =====================================================================
``fit(x)``             estimate the parameters from data, returns ``self``
``log_prob(x)``        :math:`\log p(x_n)` for every row, ``(N, D) -> (N,)``, in nats
``sample(n)``          ``n`` new points ``(n, D)`` drawn from the fitted density
=====================  =====================================================================

Maximum likelihood
------------------
Given i.i.d. data :math:`x_1, \dots, x_N` and a model :math:`p_\theta`, the maximum-likelihood
estimate is

.. math::  \hat\theta = \arg\max_\theta \frac1N \sum_{n=1}^N \log p_\theta(x_n),

which, as :math:`N \to \infty`, is the :math:`\theta` minimising
:math:`\mathrm{KL}(p_\text{data} \,\|\, p_\theta)`. The Gaussian has a closed-form MLE
(:class:`GaussianDensity`); a mixture of Gaussians does not, and is fitted by the EM algorithm
(:class:`GaussianMixture`), which increases the likelihood at every iteration; a kernel density
estimate (:class:`KernelDensity`) has no parameters except a bandwidth, which must be chosen on held-out
data (:func:`select_bandwidth`) because the training likelihood grows without bound as it shrinks.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch

__all__ = [
    "GaussianDensity",
    "GaussianMixture",
    "KernelDensity",
    "BandwidthSelection",
    "select_bandwidth",
]

_LOG_2PI = math.log(2.0 * math.pi)
_EPS64 = torch.finfo(torch.float64).eps
# Bound on the number of float64 entries of any (chunk, N) or (K, chunk, D) intermediate: 2**22 = 32 MiB.
_MAX_ELEMENTS = 2**22


# ----------------------------------------------------------------------------------------------------
# input checks shared by the three models
# ----------------------------------------------------------------------------------------------------
def _as_data(x, name: str = "x", num_features: int | None = None) -> torch.Tensor:
    """Check that ``x`` is a finite float tensor ``(N, D)`` and return it as float64."""
    if not torch.is_tensor(x):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (N, D), got {type(x).__name__}; "
            f"convert it with torch.as_tensor({name}, dtype=torch.float64)"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype {x.dtype}; density models need floats: use {name}.float()")
    if x.dim() != 2:
        hint = f" (images: flatten them with {name}.flatten(1))" if x.dim() > 2 else (
            f" (one-dimensional data: use {name}[:, None])" if x.dim() == 1 else ""
        )
        raise ValueError(f"{name} must have shape (N, D), got {tuple(x.shape)}{hint}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(f"{name} has {x.shape[1]} dimensions but the model was fitted on {num_features}")
    if x.device.type == "mps":
        raise TypeError(f"{name} is on Apple's MPS, which has no float64; these models run on the CPU: use {name}.cpu()")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return x.to(torch.float64)


def _check_fitted(model, attribute: str) -> None:
    if getattr(model, attribute, None) is None:
        raise RuntimeError(f"this {type(model).__name__} is not fitted yet: call .fit(x) first")


def _check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{name} must be a non-negative int, got {n!r}")
    return n


def _check_nonnegative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _cholesky(cov: torch.Tensor, what: str, fix: str) -> torch.Tensor:
    """Cholesky factor of (a batch of) covariance matrices, with an error that names the fix."""
    chol, info = torch.linalg.cholesky_ex(cov)
    if bool((info != 0).any()):
        raise ValueError(
            f"the {what} is singular or not positive definite (for example, a dimension that is constant in "
            f"the data, like the border pixels of the 8x8 digits, has variance 0); {fix}"
        )
    return chol


def _gaussian_log_prob_chol(x: torch.Tensor, mean: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\mathcal N(x_n \mid \mu, \Sigma)` with :math:`\Sigma = L L^\top`; x: (N, D) -> (N,)."""
    d = x.shape[1]
    # z = L^{-1} (x - mu): solve the triangular system instead of inverting Sigma.
    z = torch.linalg.solve_triangular(chol, (x - mean).T, upper=False)  # (D, N)
    maha = (z * z).sum(0)  # (N,)
    log_det = 2.0 * torch.log(torch.diagonal(chol)).sum()
    return -0.5 * (d * _LOG_2PI + log_det + maha)


# ----------------------------------------------------------------------------------------------------
# a single Gaussian
# ----------------------------------------------------------------------------------------------------
class GaussianDensity:
    r"""A multivariate Gaussian :math:`\mathcal N(\mu, \Sigma)` fitted by maximum likelihood.

    Setting the gradient of the average log-likelihood

    .. math::  \ell(\mu, \Sigma) = -\frac12 \Big[ D \log 2\pi + \log\det\Sigma
               + \frac1N \sum_{n=1}^N (x_n - \mu)^\top \Sigma^{-1} (x_n - \mu) \Big]

    to zero gives the closed forms

    .. math::  \hat\mu = \frac1N \sum_n x_n, \qquad
               \hat\Sigma = \frac1N \sum_n (x_n - \hat\mu)(x_n - \hat\mu)^\top .

    Note the :math:`1/N`, not :math:`1/(N-1)`: the MLE of the covariance is **biased**,
    :math:`\mathbb E[\hat\Sigma] = \frac{N-1}{N} \Sigma`, because it measures spread around
    :math:`\hat\mu`, which was fitted to the same points and is therefore closer to them than the true
    mean. We keep it: it is *the* maximiser of the likelihood (``np.cov`` and ``torch.cov`` divide by
    :math:`N-1` by default, which gives a slightly lower training likelihood), and the bias vanishes
    as :math:`N` grows.

    **Regularisation.** When a dimension is constant in the data (the border pixels of the 8x8
    digits are always 0) or :math:`N \le D`, :math:`\hat\Sigma` is singular: the density is infinite
    on a lower-dimensional subspace and :math:`\log p` of any other point is :math:`-\infty`.
    ``reg_covar`` :math:`=\varepsilon > 0` uses :math:`\hat\Sigma + \varepsilon I` instead, a
    Gaussian that is slightly wider in every direction.

    Args:
        reg_covar: :math:`\varepsilon \ge 0` added to the diagonal of the covariance (0 = the pure MLE).

    Attributes (after :meth:`fit`):
        mean: ``(D,)`` float64, :math:`\hat\mu`.
        covariance: ``(D, D)`` float64, :math:`\hat\Sigma + \varepsilon I`.
        num_samples: ``N``, the number of points it was fitted on.

    >>> g = GaussianDensity().fit(torch.randn(1000, 2))
    >>> g.log_prob(torch.zeros(1, 2))        # about -log(2 pi) = -1.84
    """

    def __init__(self, reg_covar: float = 0.0):
        self.reg_covar = _check_nonnegative(reg_covar, "reg_covar")
        self.mean: torch.Tensor | None = None
        self.covariance: torch.Tensor | None = None
        self.num_samples: int | None = None
        self._chol: torch.Tensor | None = None
        self._dtype = torch.float32

    def fit(self, x: torch.Tensor) -> "GaussianDensity":
        """Set ``mean`` and ``covariance`` to the MLE of ``x: (N, D)`` (plus ``reg_covar * I``); returns ``self``."""
        x_in = x
        x = _as_data(x)
        n, d = x.shape
        mean = x.mean(0)
        centred = x - mean
        covariance = centred.T @ centred / n  # the MLE: 1/N, not 1/(N-1)
        covariance = covariance + self.reg_covar * torch.eye(d, dtype=x.dtype, device=x.device)
        self._chol = _cholesky(
            covariance,
            "covariance matrix of the data",
            "pass reg_covar > 0, e.g. GaussianDensity(reg_covar=1e-3), or fit on dequantised data",
        )
        self.mean, self.covariance, self.num_samples = mean, covariance, n
        self._dtype = x_in.dtype
        return self

    @property
    def num_parameters(self) -> int:
        r"""Free parameters: :math:`D` for the mean plus :math:`D(D+1)/2` for the symmetric covariance."""
        _check_fitted(self, "mean")
        d = self.mean.shape[0]
        return d + d * (d + 1) // 2

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r"""Log-density :math:`\log \mathcal N(x_n \mid \hat\mu, \hat\Sigma)` of each row.

        Args:
            x: ``(N, D)`` float tensor.

        Returns:
            ``(N,)`` log-densities in nats, in the dtype of ``x``.
        """
        _check_fitted(self, "mean")
        out = _gaussian_log_prob_chol(_as_data(x, num_features=self.mean.shape[0]), self.mean, self._chol)
        return out.to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Draw ``n`` points :math:`x = \hat\mu + L z`, :math:`z \sim \mathcal N(0, I)`, :math:`LL^\top = \hat\Sigma`.

        Returns:
            ``(n, D)`` in the dtype of the training data.
        """
        _check_fitted(self, "mean")
        n = _check_count(n)
        # noise is drawn on the CPU (where a torch.Generator usually lives), then moved to the data's device
        z = torch.randn(n, self.mean.shape[0], generator=generator, dtype=torch.float64).to(self.mean.device)
        return (self.mean + z @ self._chol.T).to(self._dtype)

    def __repr__(self) -> str:
        shape = "unfitted" if self.mean is None else f"D={self.mean.shape[0]}, fitted on N={self.num_samples}"
        return f"GaussianDensity(reg_covar={self.reg_covar:g}; {shape})"


# ----------------------------------------------------------------------------------------------------
# a mixture of Gaussians, fitted by EM
# ----------------------------------------------------------------------------------------------------
class GaussianMixture:
    r"""A mixture of :math:`K` Gaussians fitted by the expectation-maximisation (EM) algorithm.

    .. math::  p_\theta(x) = \sum_{k=1}^K \pi_k \, \mathcal N(x \mid \mu_k, \Sigma_k),
               \qquad \pi_k \ge 0, \; \sum_k \pi_k = 1 .

    The log-likelihood :math:`\sum_n \log \sum_k \pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k)` has a sum
    inside the log and no closed-form maximiser. EM alternates two closed-form steps:

    **E-step** (responsibilities: the posterior probability that component :math:`k` generated
    :math:`x_n`), computed in log space with ``logsumexp`` so that tiny densities do not underflow:

    .. math::  r_{nk} = \frac{\pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k)}
                             {\sum_j \pi_j \mathcal N(x_n \mid \mu_j, \Sigma_j)}
               = \exp\!\big(\log \pi_k + \log\mathcal N_{nk} - \operatorname{logsumexp}_j
                 (\log \pi_j + \log\mathcal N_{nj})\big) .

    **M-step** (weighted MLEs, with :math:`N_k = \sum_n r_{nk}`):

    .. math::  \pi_k = \frac{N_k}{N}, \qquad \mu_k = \frac1{N_k} \sum_n r_{nk} x_n, \qquad
               \Sigma_k = \frac1{N_k} \sum_n r_{nk} (x_n - \mu_k)(x_n - \mu_k)^\top + \varepsilon I .

    Each iteration cannot decrease the log-likelihood: the E-step makes Jensen's lower bound
    :math:`\sum_n \sum_k r_{nk} \log \frac{\pi_k \mathcal N_{nk}}{r_{nk}}` touch the log-likelihood at
    the current parameters and the M-step maximises that bound. ``history`` records the mean
    log-likelihood per data point after every iteration so that you can check it.

    The small :math:`\varepsilon` (``reg_covar``, the same convention as scikit-learn) keeps a component
    that collapses onto a few points, where the likelihood is unbounded, from making :math:`\Sigma_k`
    singular. Strictly, the guarantee holds for :math:`\varepsilon = 0`: with :math:`\varepsilon > 0`
    the M-step is no longer the exact maximiser. For :math:`\varepsilon` small against the data's
    variances (the default ``1e-6``) any dip is at rounding level; a large :math:`\varepsilon` (say a
    tenth of the variances) can make the likelihood dip slightly near convergence, which then ends the
    iterations through ``tol``.

    ``covariance_type="diag"`` restricts every :math:`\Sigma_k` to a diagonal matrix (:math:`KD`
    covariance parameters instead of :math:`KD(D+1)/2`); its M-step keeps only the diagonal of the
    formula above.

    **Initialisation** (EM finds a local maximum, so the start matters): ``"kmeans++"`` picks
    :math:`K` centres from the data by k-means++ seeding (each next centre drawn with probability
    proportional to its squared distance to the nearest centre chosen so far), ``"random"`` picks
    :math:`K` distinct data points uniformly; then every point is assigned to its nearest centre and
    one M-step on these hard responsibilities gives the initial :math:`\pi, \mu, \Sigma`. With
    ``n_init > 1`` EM is run from several starts and the one with the highest final likelihood is kept.

    Args:
        n_components: :math:`K`.
        covariance_type: ``"full"`` or ``"diag"``.
        reg_covar: :math:`\varepsilon \ge 0` added to every covariance's diagonal.
        max_iter: maximum number of EM iterations.
        tol: stop when an iteration increases the mean log-likelihood per point by less than ``tol``.
        init: ``"kmeans++"`` or ``"random"``.
        n_init: number of starts; the best is kept.
        seed: seeds the initialisation (start ``i`` uses ``seed + i``).

    Attributes (after :meth:`fit`):
        weights: ``(K,)`` float64, :math:`\pi`.
        means: ``(K, D)`` float64, :math:`\mu_k`.
        covariances: ``(K, D, D)`` (full) or ``(K, D)`` (diag, the variances) float64.
        history: ``list[float]``, mean log-likelihood per point at the initial parameters and after
            each EM iteration (length ``n_iter + 1``), non-decreasing (see above for ``reg_covar``).
        initial_params: ``dict`` with the ``weights``, ``means``, ``covariances`` EM started from.
        n_iter: iterations run; converged: whether ``tol`` was reached before ``max_iter``.

    >>> gmm = GaussianMixture(n_components=3, seed=0).fit(x)          # x: (N, 2)
    >>> gmm.history[-1], gmm.log_prob(x).mean()                        # equal
    """

    def __init__(
        self,
        n_components: int,
        *,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        tol: float = 1e-4,
        init: str = "kmeans++",
        n_init: int = 1,
        seed: int = 0,
    ):
        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be an int >= 1, got {n_components!r}")
        if covariance_type not in ("full", "diag"):
            raise ValueError(f"covariance_type must be 'full' or 'diag', got {covariance_type!r}")
        if init not in ("kmeans++", "random"):
            raise ValueError(f"init must be 'kmeans++' or 'random', got {init!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
            raise ValueError(f"max_iter must be an int >= 0, got {max_iter!r}")
        if isinstance(n_init, bool) or not isinstance(n_init, int) or n_init < 1:
            raise ValueError(f"n_init must be an int >= 1, got {n_init!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.reg_covar = _check_nonnegative(reg_covar, "reg_covar")
        self.max_iter = max_iter
        self.tol = _check_nonnegative(tol, "tol")
        self.init = init
        self.n_init = n_init
        self.seed = seed
        self.weights: torch.Tensor | None = None
        self.means: torch.Tensor | None = None
        self.covariances: torch.Tensor | None = None
        self.history: list[float] = []
        self.initial_params: dict | None = None
        self.n_iter = 0
        self.converged = False
        self._chol: torch.Tensor | None = None
        self._dtype = torch.float32

    # -- parameters ------------------------------------------------------------------------------
    def set_params(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> "GaussianMixture":
        r"""Set :math:`\pi: (K,)`, :math:`\mu: (K, D)` and :math:`\Sigma: (K, D, D)` or ``(K, D)`` (diag) directly.

        Useful to evaluate a mixture with known parameters, or to start :meth:`em_step` from them.
        """
        weights = torch.as_tensor(weights, dtype=torch.float64)
        means = torch.as_tensor(means, dtype=torch.float64, device=weights.device)
        covariances = torch.as_tensor(covariances, dtype=torch.float64, device=weights.device)
        k = self.n_components
        if weights.shape != (k,):
            raise ValueError(f"weights must have shape ({k},), got {tuple(weights.shape)}")
        if means.dim() != 2 or means.shape[0] != k:
            raise ValueError(f"means must have shape ({k}, D), got {tuple(means.shape)}")
        d = means.shape[1]
        want = (k, d, d) if self.covariance_type == "full" else (k, d)
        if tuple(covariances.shape) != want:
            raise ValueError(
                f"covariances must have shape {want} for covariance_type={self.covariance_type!r}, "
                f"got {tuple(covariances.shape)}"
            )
        if (weights < 0).any() or abs(float(weights.sum()) - 1.0) > 1e-6:
            raise ValueError(f"weights must be non-negative and sum to 1, got sum {float(weights.sum()):.6g}")
        return self._set_params(weights, means, covariances)

    def _set_params(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> "GaussianMixture":
        """Store float64 parameters of the right shapes and factorise the covariances (no other checks)."""
        if self.covariance_type == "full":
            chol = _cholesky(
                covariances,
                "covariance matrix of a mixture component",
                "increase reg_covar (e.g. GaussianMixture(..., reg_covar=1e-3)) or use fewer components",
            )
        else:
            if not (covariances > 0).all():
                raise ValueError(
                    "a diagonal covariance has a variance <= 0 (a dimension constant within a component); "
                    "increase reg_covar, e.g. GaussianMixture(..., reg_covar=1e-3)"
                )
            chol = covariances.sqrt()  # (K, D) standard deviations
        self.weights, self.means, self.covariances, self._chol = weights, means, covariances, chol
        return self

    @property
    def num_parameters(self) -> int:
        r"""Free parameters: :math:`K-1` weights, :math:`KD` means and :math:`KD(D+1)/2` (full) or :math:`KD` (diag) covariances."""
        _check_fitted(self, "means")
        k, d = self.means.shape
        cov = k * d * (d + 1) // 2 if self.covariance_type == "full" else k * d
        return (k - 1) + k * d + cov

    # -- the two steps ---------------------------------------------------------------------------
    def _component_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log \pi_k + \log\mathcal N(x_n \mid \mu_k, \Sigma_k)`; x: (N, D) float64 -> (N, K)."""
        k, d = self.means.shape
        n = x.shape[0]
        out = torch.empty(n, k, dtype=torch.float64, device=x.device)
        if self.covariance_type == "full":
            # W_k = L_k^{-1}: then ||L_k^{-1}(x - mu_k)||^2 is the Mahalanobis distance.
            eye = torch.eye(d, dtype=torch.float64, device=x.device).expand(k, d, d)
            inv_chol_t = torch.linalg.solve_triangular(self._chol, eye, upper=False).transpose(1, 2)  # (K, D, D)
            shifted_means = (self.means.unsqueeze(1) @ inv_chol_t).squeeze(1)  # (K, D)
            log_det = 2.0 * torch.log(torch.diagonal(self._chol, dim1=1, dim2=2)).sum(1)  # (K,)
            chunk = max(1, _MAX_ELEMENTS // (k * d))
            for start in range(0, n, chunk):
                xb = x[start : start + chunk]
                z = torch.matmul(xb, inv_chol_t) - shifted_means.unsqueeze(1)  # (K, B, D)
                maha = (z * z).sum(-1).T  # (B, K)
                out[start : start + chunk] = -0.5 * (d * _LOG_2PI + log_det + maha)
        else:
            precision = 1.0 / self.covariances  # (K, D)
            log_det = torch.log(self.covariances).sum(1)  # (K,)
            # sum_d (x_d - mu_d)^2 / var_d, expanded so that no (N, K, D) tensor is formed
            maha = (
                (x * x) @ precision.T
                - 2.0 * x @ (self.means * precision).T
                + (self.means * self.means * precision).sum(1)
            )
            out = -0.5 * (d * _LOG_2PI + log_det + maha.clamp_min(0.0))
        return out + torch.log(self.weights)

    def e_step(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        r"""E-step: log-responsibilities :math:`\log r_{nk}` ``(N, K)`` and the mean log-likelihood per point.

        .. math::  \log r_{nk} = \log\pi_k + \log\mathcal N_{nk} - \log p(x_n), \qquad
                   \log p(x_n) = \operatorname{logsumexp}_k (\log\pi_k + \log\mathcal N_{nk}).
        """
        _check_fitted(self, "means")
        return self._e_step(_as_data(x, num_features=self.means.shape[1]))

    def _e_step(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """:meth:`e_step` for data already checked and in float64."""
        joint = self._component_log_prob(x)  # (N, K)
        log_px = torch.logsumexp(joint, dim=1, keepdim=True)  # (N, 1)
        return joint - log_px, float(log_px.mean())

    def m_step(self, x: torch.Tensor, log_resp: torch.Tensor) -> "GaussianMixture":
        r"""M-step: the weighted MLEs :math:`\pi_k, \mu_k, \Sigma_k` given log-responsibilities ``(N, K)``."""
        x = _as_data(x)
        self._set_from_resp(x, log_resp.exp())
        return self

    def _set_from_resp(self, x: torch.Tensor, resp: torch.Tensor) -> None:
        n, d = x.shape
        nk = resp.sum(0) + 10 * _EPS64  # (K,); the tiny constant keeps an empty component finite
        means = (resp.T @ x) / nk[:, None]  # (K, D)
        if self.covariance_type == "full":
            k = means.shape[0]
            covariances = torch.empty(k, d, d, dtype=torch.float64, device=x.device)
            step = max(1, _MAX_ELEMENTS // (n * d))  # components per batch, to bound the (k, N, D) memory
            for j in range(0, k, step):
                diff = x - means[j : j + step, None, :]  # (k, N, D)
                weighted = resp.T[j : j + step, :, None] * diff  # r_nk (x_n - mu_k)
                covariances[j : j + step] = weighted.transpose(1, 2) @ diff / nk[j : j + step, None, None]
            covariances.diagonal(dim1=1, dim2=2).add_(self.reg_covar)
        else:
            avg_x2 = (resp.T @ (x * x)) / nk[:, None]
            covariances = (avg_x2 - means * means).clamp_min(0.0) + self.reg_covar
        self._set_params(nk / n, means, covariances)

    def em_step(self, x: torch.Tensor) -> float:
        """One EM iteration (E-step then M-step); returns the mean log-likelihood *before* the step."""
        log_resp, mean_ll = self.e_step(x)
        self.m_step(x, log_resp)
        return mean_ll

    # -- initialisation and fitting --------------------------------------------------------------
    def _initial_centres(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        k = self.n_components
        if self.init == "random":
            idx = torch.randperm(n, generator=generator)[:k]
            return x[idx.to(x.device)]
        # k-means++ seeding (Arthur & Vassilvitskii, 2007)
        first = int(torch.randint(n, (1,), generator=generator))
        centres = [x[first]]
        d2 = ((x - x[first]) ** 2).sum(1)
        for _ in range(1, k):
            total = float(d2.sum())
            if total <= 0:  # fewer distinct points than components: pick any
                nxt = int(torch.randint(n, (1,), generator=generator))
            else:
                nxt = int(torch.multinomial((d2 / total).cpu(), 1, generator=generator))
            centres.append(x[nxt])
            d2 = torch.minimum(d2, ((x - x[nxt]) ** 2).sum(1))
        return torch.stack(centres)

    def _initialize(self, x: torch.Tensor, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        centres = self._initial_centres(x, generator)
        d2 = torch.cdist(x, centres)  # (N, K)
        labels = d2.argmin(1)
        resp = torch.nn.functional.one_hot(labels, self.n_components).to(torch.float64)
        self._set_from_resp(x, resp)

    def fit(self, x: torch.Tensor, callback: Callable[["GaussianMixture", int], None] | None = None) -> "GaussianMixture":
        r"""Fit by EM from ``n_init`` starts; returns ``self``.

        Args:
            x: ``(N, D)`` float tensor with ``N >= n_components``.
            callback: optional ``callback(model, iteration)``, called with the initial parameters
                (``iteration = 0``) and after every EM iteration (only for the first start when
                ``n_init > 1``). Use ``copy.deepcopy(model)`` in it to keep snapshots.
        """
        x_in = x
        x = _as_data(x)
        if x.shape[0] < self.n_components:
            raise ValueError(f"cannot fit {self.n_components} components to {x.shape[0]} points; use fewer components")
        best = None
        for start in range(self.n_init):
            self._initialize(x, self.seed + start)
            initial = {"weights": self.weights.clone(), "means": self.means.clone(), "covariances": self.covariances.clone()}
            cb = callback if start == 0 else None
            log_resp, mean_ll = self._e_step(x)
            history = [mean_ll]
            self.history, self.n_iter, self.converged = history, 0, False  # visible to the callback
            if cb is not None:
                cb(self, 0)
            converged = False
            for it in range(1, self.max_iter + 1):
                self._set_from_resp(x, log_resp.exp())  # M-step
                log_resp, mean_ll = self._e_step(x)  # E-step
                history.append(mean_ll)
                self.n_iter = it
                if cb is not None:
                    cb(self, it)
                if mean_ll - history[-2] < self.tol:
                    converged = True
                    break
            if best is None or history[-1] > best["history"][-1]:
                best = {
                    "params": (self.weights, self.means, self.covariances),
                    "history": history,
                    "initial": initial,
                    "converged": converged,
                }
        self.set_params(*best["params"])
        self.history = best["history"]
        self.initial_params = best["initial"]
        self.n_iter = len(self.history) - 1
        self.converged = best["converged"]
        self._dtype = x_in.dtype
        return self

    # -- using the fitted model ------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x_n) = \operatorname{logsumexp}_k(\log\pi_k + \log\mathcal N(x_n\mid\mu_k,\Sigma_k))`; ``(N, D) -> (N,)``."""
        _check_fitted(self, "means")
        joint = self._component_log_prob(_as_data(x, num_features=self.means.shape[1]))
        return torch.logsumexp(joint, dim=1).to(x.dtype)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        r"""Posterior component probabilities :math:`r_{nk} = p(k \mid x_n)`, ``(N, D) -> (N, K)``, rows sum to 1."""
        log_resp, _ = self.e_step(x)
        return log_resp.exp().to(x.dtype)

    def bic(self, x: torch.Tensor) -> float:
        r"""Bayesian information criterion, lower is better:
        :math:`\mathrm{BIC} = -2 \sum_n \log p(x_n) + P \log N` with :math:`P` = :attr:`num_parameters`."""
        ll = self.log_prob(_as_data(x)).sum()
        return float(-2.0 * ll + self.num_parameters * math.log(x.shape[0]))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Ancestral sampling: :math:`k \sim \mathrm{Cat}(\pi)`, then :math:`x \sim \mathcal N(\mu_k, \Sigma_k)`.

        Returns:
            ``(n, D)`` in the dtype of the training data.
        """
        _check_fitted(self, "means")
        n = _check_count(n)
        k, d = self.means.shape
        device = self.means.device
        comp = torch.multinomial(self.weights.cpu(), n, replacement=True, generator=generator).to(device) if n else (
            torch.zeros(0, dtype=torch.long, device=device)
        )
        z = torch.randn(n, d, generator=generator, dtype=torch.float64).to(device)
        if self.covariance_type == "full":
            noise = (self._chol[comp] @ z.unsqueeze(-1)).squeeze(-1)  # L_k z
        else:
            noise = self._chol[comp] * z  # sigma_k * z
        return (self.means[comp] + noise).to(self._dtype)

    def __repr__(self) -> str:
        state = "unfitted" if self.means is None else f"D={self.means.shape[1]}, {self.n_iter} EM iterations"
        return (
            f"GaussianMixture(n_components={self.n_components}, covariance_type={self.covariance_type!r}, "
            f"reg_covar={self.reg_covar:g}; {state})"
        )


# ----------------------------------------------------------------------------------------------------
# kernel density estimation
# ----------------------------------------------------------------------------------------------------
class KernelDensity:
    r"""Gaussian kernel density estimate: one small Gaussian on every training point.

    .. math::  p_h(x) = \frac1N \sum_{i=1}^N \mathcal N(x \mid x_i, h^2 I), \qquad
               \log p_h(x) = \operatorname{logsumexp}_i\!\Big(-\frac{\|x - x_i\|^2}{2h^2}\Big)
               - \log N - \frac D2 \log(2\pi h^2).

    "Fitting" only stores the data. The bandwidth :math:`h` sets the trade-off: large :math:`h`
    over-smooths (every point sees a blurry average), small :math:`h` over-fits (spikes on the
    training points; the *training* log-likelihood :math:`\to +\infty` as :math:`h \to 0`, while the
    log-likelihood of new points :math:`\to -\infty`). Choose it on held-out data with
    :func:`select_bandwidth`. Evaluating costs :math:`O(N)` per query point; queries are processed in
    chunks so that memory stays bounded.

    Args:
        bandwidth: :math:`h > 0`, in the units of the data.

    >>> kde = KernelDensity(bandwidth=0.2).fit(train)     # train: (N, D)
    >>> kde.log_prob(test).mean()
    """

    def __init__(self, bandwidth: float):
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)) or not bandwidth > 0 or math.isinf(bandwidth):
            raise ValueError(f"bandwidth must be a finite number > 0, got {bandwidth!r}")
        self.bandwidth = float(bandwidth)
        self.data: torch.Tensor | None = None
        self._sq_norms: torch.Tensor | None = None
        self._dtype = torch.float32

    def fit(self, x: torch.Tensor) -> "KernelDensity":
        """Store the training points ``x: (N, D)``; returns ``self``."""
        self.data = _as_data(x)
        self._sq_norms = (self.data * self.data).sum(1)
        self._dtype = x.dtype
        return self

    def log_prob(self, x: torch.Tensor, *, max_elements: int = _MAX_ELEMENTS) -> torch.Tensor:
        r""":math:`\log p_h(x_m)` of each row of ``x: (M, D)`` -> ``(M,)``, in the dtype of ``x``.

        Squared distances are formed chunk by chunk, at most ``max_elements`` float64 entries at a time.
        """
        _check_fitted(self, "data")
        q = _as_data(x, num_features=self.data.shape[1])
        n, d = self.data.shape
        h2 = self.bandwidth**2
        const = -math.log(n) - 0.5 * d * math.log(2.0 * math.pi * h2)
        chunk = max(1, max_elements // n)
        out = torch.empty(q.shape[0], dtype=torch.float64, device=q.device)
        for start in range(0, q.shape[0], chunk):
            qb = q[start : start + chunk]
            # ||q - x_i||^2 = ||q||^2 - 2 q.x_i + ||x_i||^2  (float64; clamp the rounding below 0)
            sq = ((qb * qb).sum(1, keepdim=True) - 2.0 * qb @ self.data.T + self._sq_norms).clamp_min(0.0)
            out[start : start + chunk] = torch.logsumexp(-sq / (2.0 * h2), dim=1) + const
        return out.to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Pick a training point uniformly and add :math:`h z`, :math:`z \sim \mathcal N(0, I)`; returns ``(n, D)``."""
        _check_fitted(self, "data")
        n = _check_count(n)
        idx = torch.randint(self.data.shape[0], (n,), generator=generator).to(self.data.device)
        z = torch.randn(n, self.data.shape[1], generator=generator, dtype=torch.float64).to(self.data.device)
        return (self.data[idx] + self.bandwidth * z).to(self._dtype)

    def __repr__(self) -> str:
        state = "unfitted" if self.data is None else f"N={self.data.shape[0]}, D={self.data.shape[1]}"
        return f"KernelDensity(bandwidth={self.bandwidth:g}; {state})"


class BandwidthSelection(NamedTuple):
    """Result of :func:`select_bandwidth`."""

    bandwidth: float
    """the bandwidth with the highest validation log-likelihood"""
    grid: torch.Tensor
    """``(G,)`` the bandwidths tried"""
    val_log_lik: torch.Tensor
    """``(G,)`` mean log-likelihood per validation point for each bandwidth"""


def select_bandwidth(train: torch.Tensor, val: torch.Tensor, grid: Sequence[float] | torch.Tensor) -> BandwidthSelection:
    r"""Choose a KDE bandwidth by maximum likelihood on held-out data.

    .. math::  \hat h = \arg\max_{h \in \text{grid}} \frac1M \sum_{m=1}^M \log p_h(x^\text{val}_m \mid x^\text{train}).

    (Maximising the likelihood of the *training* points would pick the smallest :math:`h` in the grid.)

    Args:
        train: ``(N, D)`` the points the KDE is built on.
        val: ``(M, D)`` held-out points.
        grid: bandwidths to try, each > 0.

    Returns:
        :class:`BandwidthSelection` ``(bandwidth, grid, val_log_lik)``.
    """
    values = [float(h) for h in (grid.tolist() if torch.is_tensor(grid) else grid)]
    if not values:
        raise ValueError("grid is empty; pass bandwidths to try, e.g. torch.logspace(-2, 0, 20)")
    kde = KernelDensity(values[0]).fit(train)
    val64 = _as_data(val, "val", num_features=kde.data.shape[1])
    scores = []
    for h in values:
        kde.bandwidth = KernelDensity(h).bandwidth  # validates h
        scores.append(float(kde.log_prob(val64).mean()))
    scores_t = torch.tensor(scores, dtype=torch.float64)
    best = int(torch.argmax(scores_t))
    return BandwidthSelection(values[best], torch.tensor(values, dtype=torch.float64), scores_t)
