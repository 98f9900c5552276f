"""Input checks shared by the sample-quality metrics: every bad input is an error that names the fix.

Internal module; the public functions live in ``features``, ``fid``, ``kid`` and friends.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch


def as_float64(x, *, name: str) -> torch.Tensor:
    """``x`` (tensor, array or nested list) as a CPU float64 tensor, detached."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    elif not torch.is_tensor(x):
        try:
            x = torch.as_tensor(x)
        except Exception as err:  # noqa: BLE001 - re-raised with the name of the argument
            raise TypeError(f"{name} must be a tensor or array, got {type(x).__name__}") from err
    if x.is_complex():
        raise TypeError(f"{name} is complex; metrics take real-valued features")
    return x.detach().to(device="cpu", dtype=torch.float64)


def check_features(f, *, name: str) -> torch.Tensor:
    """Validate a feature matrix ``(N, D)`` and return it as CPU float64.

    NaN/inf features (a generator that produced NaN images, or a classifier fed garbage) are an
    error, never a silent NaN metric.
    """
    f = as_float64(f, name=name)
    if f.dim() != 2:
        raise ValueError(
            f"{name} must be a feature matrix of shape (N, D) or a batch of images (N, C, H, W); "
            f"got shape {tuple(f.shape)}"
        )
    if f.shape[0] == 0 or f.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(f.shape)})")
    bad = ~torch.isfinite(f)
    if bad.any():
        rows = int(bad.any(dim=1).sum())
        raise ValueError(
            f"{name} has NaN or inf features in {rows} of {f.shape[0]} samples; the images (or the model that "
            "made them) contain non-finite values: find and fix them before computing a metric"
        )
    return f


def check_same_dim(real: torch.Tensor, fake: torch.Tensor, *, names=("real", "fake")) -> None:
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"{names[0]} features have dimension {real.shape[1]} but {names[1]} features have {fake.shape[1]}; "
            "both sets must go through the same classifier"
        )


def check_enough_for_covariance(f: torch.Tensor, *, name: str) -> None:
    """A ``D``-dim covariance from ``N`` samples has rank at most ``N - 1``: require ``N > D``."""
    n, d = f.shape
    if n <= d:
        raise ValueError(
            f"{name} has {n} samples of {d}-dim features, but a {d}x{d} covariance needs more samples than "
            f"dimensions (N > {d}, better N >= {4 * d}): use more samples or a classifier with fewer features"
        )


def check_positive_int(value, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_image_pair(a: torch.Tensor, b: torch.Tensor, *, names=("real", "fake")) -> None:
    """Two image batches must agree in (C, H, W): comparing 28x28 with 8x8 digits is a mistake."""
    if torch.is_tensor(a) and torch.is_tensor(b) and a.dim() == 4 and b.dim() == 4 and a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"{names[0]} images have shape (C, H, W) = {tuple(a.shape[1:])} but {names[1]} images have "
            f"{tuple(b.shape[1:])}; compare images of the same size (e.g. both 28x28 MNIST)"
        )
