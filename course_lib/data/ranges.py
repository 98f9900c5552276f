"""Named value ranges for images, and the check every function that takes images runs.

=============  ==============  ===========================================
name           values          typical use
=============  ==============  ===========================================
``unit``       [0, 1]          plotting, Bernoulli/continuous likelihoods
``symmetric``  [-1, 1]         GANs and diffusion models (tanh outputs)
``binary``     {0, 1}          Bernoulli VAEs, binarised MNIST
``counts``     0..L-1 floats   discrete likelihoods (8x8 digits: L = 17)
=============  ==============  ===========================================
"""

from __future__ import annotations

import torch

VALUE_RANGES = {
    "unit": (0.0, 1.0),
    "symmetric": (-1.0, 1.0),
    "binary": (0.0, 1.0),
    "counts": (0.0, float("inf")),
}

_TOLERANCE = 1e-4


def _describe(lo: float, hi: float) -> str:
    return f"[{lo:.3g}, {hi:.3g}]"


def guess_range(x: torch.Tensor) -> str:
    """Guess the named range of ``x`` from its values (used by plotting with ``value_range="auto"``).

    Raises ``ValueError`` for values that fit no named range (e.g. standardised data).
    """
    if not torch.is_tensor(x):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError("cannot guess the value range of an empty tensor")
    if not torch.isfinite(x).all():
        raise ValueError("the tensor contains NaN or inf values; check the model's output before plotting it")
    lo, hi = float(x.min()), float(x.max())
    if lo >= -_TOLERANCE and hi <= 1 + _TOLERANCE:
        return "unit"
    if lo >= -1 - _TOLERANCE and hi <= 1 + _TOLERANCE:
        return "symmetric"
    if lo >= 0 and hi > 1 and torch.equal(x, x.round()):
        return "counts"
    raise ValueError(
        f"values in {_describe(lo, hi)} fit none of the named ranges "
        "[0, 1], [-1, 1] or integer counts; rescale them, e.g. x = (x - x.min()) / (x.max() - x.min())"
    )


def check_range(x: torch.Tensor, expected: str, *, name: str = "x", levels: int | None = None) -> None:
    """Raise a ``ValueError`` that names the fix when ``x`` is not in the ``expected`` named range.

    ``expected`` is one of ``"unit"``, ``"symmetric"``, ``"binary"``, ``"counts"`` (``levels`` then bounds
    the counts by ``levels - 1``). NaN/inf values are always an error.
    """
    if expected not in VALUE_RANGES:
        raise ValueError(f"unknown value range {expected!r}; use one of {sorted(VALUE_RANGES)}")
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} has dtype {x.dtype}; images in the course are float tensors: use {name}.float()"
            + (" / 255" if expected in {"unit", "symmetric"} else "")
        )
    if x.numel() == 0:
        return
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values")
    lo, hi = float(x.min()), float(x.max())
    if expected == "counts":
        top = (levels - 1) if levels is not None else float("inf")
        if lo < 0 or hi > top or not torch.equal(x, x.round()):
            raise ValueError(
                f"{name} should hold integer levels 0..{top if levels else 'L-1'}, got values in {_describe(lo, hi)}"
            )
        return
    want_lo, want_hi = VALUE_RANGES[expected]
    if lo >= want_lo - _TOLERANCE and hi <= want_hi + _TOLERANCE:
        if expected == "binary" and not torch.all((x == 0) | (x == 1)):
            raise ValueError(f"{name} should be binary (0 or 1); binarise it, e.g. (x > 0.5).float()")
        return
    if hi > 1.5 and lo >= 0:
        fix = "divide by 255" if hi <= 255 + _TOLERANCE else "rescale it"
        if expected == "symmetric":
            fix = "map it with x / 127.5 - 1" if hi <= 255 + _TOLERANCE else "rescale it"
        raise ValueError(
            f"{name} has values in {_describe(lo, hi)}, which look like 0..255 pixel values, but {expected} "
            f"range {_describe(want_lo, want_hi)} is expected: {fix}"
        )
    if expected in {"unit", "binary"} and lo >= -1 - _TOLERANCE and hi <= 1 + _TOLERANCE:
        raise ValueError(
            f"{name} has values in {_describe(lo, hi)}, which look like the [-1, 1] range, but [0, 1] is "
            f"expected: map it with ({name} + 1) / 2"
        )
    raise ValueError(
        f"{name} has values in {_describe(lo, hi)} but the {expected} range {_describe(want_lo, want_hi)} is expected"
    )
