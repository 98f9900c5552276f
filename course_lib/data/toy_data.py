"""Synthetic 2-D distributions for intuition: every point can be plotted, every density drawn.

All live in roughly [-4, 4] x [-4, 4] and are sampled i.i.d. with a ``torch.Generator`` seeded by
``seed`` (the same ``(name, n, seed)`` always gives the same points, on any machine):

=================  ===============================================================================
``"moons"``        two interleaved half circles (as sklearn's ``make_moons``), scaled by 2.5, centred,
                   Gaussian noise std 0.2; each point picks a moon with probability 1/2
``"rings"``        three concentric circles, radii 1.2, 2.4, 3.6, noise std 0.1; a ring is picked with
                   probability proportional to its radius (uniform density along the rings)
``"8gaussians"``   mixture of 8 equally weighted isotropic Gaussians, centres on the circle of radius
                   2 sqrt(2) at angles k pi / 4, std sqrt(2) / 4 (the FFJORD benchmark)
``"checkerboard"`` uniform on the 8 dark 2x2 squares of a 4x4 checkerboard covering [-4, 4]^2
``"swissroll"``    t = 1.5 pi (1 + 2u), u ~ U(0, 1); x = (t cos t, t sin t) * 3.75 / (4.5 pi), noise std 0.15
``"2gaussians"``   mixture of two equally weighted isotropic Gaussians at (-2, 0) and (2, 0), std 0.5
=================  ===============================================================================

:func:`toy2d_distribution` returns the exact density (a ``torch.distributions.MixtureSameFamily``)
of the two Gaussian mixtures, the ones with a closed form.
"""

from __future__ import annotations

import math

import torch
from torch import distributions as D

TOY2D_NAMES = ("moons", "rings", "8gaussians", "checkerboard", "swissroll", "2gaussians")

_MIXTURES = {
    "8gaussians": {
        "means": [
            (2 * math.sqrt(2) * math.cos(k * math.pi / 4), 2 * math.sqrt(2) * math.sin(k * math.pi / 4)) for k in range(8)
        ],
        "std": math.sqrt(2) / 4,
    },
    "2gaussians": {"means": [(-2.0, 0.0), (2.0, 0.0)], "std": 0.5},
}
_RING_RADII = (1.2, 2.4, 3.6)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or name not in TOY2D_NAMES:
        raise ValueError(f"unknown toy 2-D distribution {name!r}; known: {', '.join(TOY2D_NAMES)}")


def _mixture_params(name: str) -> tuple[torch.Tensor, float]:
    spec = _MIXTURES[name]
    return torch.tensor(spec["means"], dtype=torch.float32), float(spec["std"])


def toy2d(name: str, n: int, *, seed: int = 0) -> torch.Tensor:
    """``n`` i.i.d. samples of the toy distribution ``name``: a ``(n, 2) float32`` tensor on the CPU.

    ``name`` is one of ``"moons"``, ``"rings"``, ``"8gaussians"``, ``"checkerboard"``, ``"swissroll"``,
    ``"2gaussians"`` (see the module docstring for each one's definition).
    """
    _check_name(name)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (the number of points), got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    g = torch.Generator().manual_seed(seed)

    def uniform(*shape):
        return torch.rand(*shape, generator=g)

    def normal(*shape):
        return torch.randn(*shape, generator=g)

    if name in _MIXTURES:
        means, std = _mixture_params(name)
        component = torch.randint(len(means), (n,), generator=g)
        return means[component] + std * normal(n, 2)
    if name == "moons":
        t = math.pi * uniform(n)
        upper = uniform(n) < 0.5
        x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
        y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
        points = torch.stack([x - 0.5, y - 0.25], dim=1) * 2.5
        return points + 0.2 * normal(n, 2)
    if name == "rings":
        radii = torch.tensor(_RING_RADII)
        ring = torch.multinomial(radii / radii.sum(), n, replacement=True, generator=g)
        angle = 2 * math.pi * uniform(n)
        points = radii[ring, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        return points + 0.1 * normal(n, 2)
    if name == "checkerboard":
        x1 = 4 * uniform(n) - 2  # column in [-2, 2)
        x2 = uniform(n) - 2 * torch.randint(2, (n,), generator=g).float()  # [-2, -1) or [0, 1)
        x2 = x2 + torch.floor(x1) % 2  # shift every other column by one square
        return 2 * torch.stack([x1, x2], dim=1)
    # swissroll
    t = 1.5 * math.pi * (1 + 2 * uniform(n))
    points = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) * (3.75 / (4.5 * math.pi))
    return points + 0.15 * normal(n, 2)


def toy2d_distribution(name: str) -> D.MixtureSameFamily:
    """The exact density of a toy distribution with a closed form: ``"8gaussians"`` or ``"2gaussians"``.

    ``p(x) = sum_k pi_k N(x; mu_k, sigma^2 I)`` with equal weights ``pi_k = 1 / K``: the same means and
    std that :func:`toy2d` samples from, so ``toy2d_distribution(name).log_prob(toy2d(name, n))`` is the
    true log-likelihood (in nats) of the samples; ``log_prob`` takes ``(..., 2)`` and returns ``(...)``.
    """
    _check_name(name)
    if name not in _MIXTURES:
        raise ValueError(
            f"{name!r} has no closed-form density here; toy2d_distribution supports {', '.join(_MIXTURES)} "
            "(estimate the others' density from samples, e.g. with a KDE)"
        )
    means, std = _mixture_params(name)
    weights = D.Categorical(probs=torch.full((len(means),), 1.0 / len(means)))
    components = D.Independent(D.Normal(means, torch.full_like(means, std)), 1)
    return D.MixtureSameFamily(weights, components)
