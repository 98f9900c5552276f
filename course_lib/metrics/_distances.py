"""Blocked Euclidean nearest-neighbour computations in float64 (internal).

Distances are computed block by block (``chunk`` query rows against all reference rows), so memory
stays ``O(chunk * N)``. Squared distances use ``|a|^2 + |b|^2 - 2 a.b`` with float64 matrix products;
the round-off (about 1e-16 of the squared norms) is negligible for features and images, and exact
duplicates come out at distance ~1e-7 or below rather than exactly 0.
"""

from __future__ import annotations

import torch


def _sq_dists(a: torch.Tensor, b: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    d2 = (a * a).sum(dim=1, keepdim=True) + b_sq[None, :] - 2.0 * (a @ b.T)
    return d2.clamp_(min=0.0)


def kth_neighbour_distance(x: torch.Tensor, k: int, *, chunk: int = 1024) -> torch.Tensor:
    """``x: (N, D)`` -> ``(N,)``: distance from each point to its ``k``-th nearest *other* point of ``x``."""
    n = x.shape[0]
    if n <= k:
        raise ValueError(f"the k-nearest-neighbour radius needs more than k = {k} samples, got {n}")
    x_sq = (x * x).sum(dim=1)
    out = torch.empty(n, dtype=torch.float64)
    for s in range(0, n, chunk):
        d2 = _sq_dists(x[s:s + chunk], x, x_sq)
        rows = torch.arange(s, min(s + chunk, n))
        d2[rows - s, rows] = float("inf")  # a point is not its own neighbour
        out[s:s + chunk] = d2.kthvalue(k, dim=1).values
    return out.sqrt_()


def nearest(query: torch.Tensor, reference: torch.Tensor, *, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``query: (M, D)``: distance ``(M,)`` to, and index ``(M,)`` of, its nearest row of ``reference``."""
    ref_sq = (reference * reference).sum(dim=1)
    dist = torch.empty(query.shape[0], dtype=torch.float64)
    index = torch.empty(query.shape[0], dtype=torch.int64)
    for s in range(0, query.shape[0], chunk):
        d2, idx = _sq_dists(query[s:s + chunk], reference, ref_sq).min(dim=1)
        dist[s:s + chunk], index[s:s + chunk] = d2, idx
    return dist.sqrt_(), index


def inside_any_ball(query: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, *,
                    chunk: int = 1024) -> torch.Tensor:
    """``(M,)`` bool: whether each query point lies in at least one ball ``|q - c_i| <= r_i``."""
    c_sq = (centres * centres).sum(dim=1)
    r2 = radii.to(torch.float64) ** 2
    out = torch.empty(query.shape[0], dtype=torch.bool)
    for s in range(0, query.shape[0], chunk):
        out[s:s + chunk] = (_sq_dists(query[s:s + chunk], centres, c_sq) <= r2[None, :]).any(dim=1)
    return out
