"""``ImageSet``: the images-plus-labels record every image dataset of the course returns.

An ``ImageSet`` *is* the tuple ``(x, y)``, so it unpacks and feeds a loader directly::

    x, y = data.mnist("train")                 # x: (4000, 1, 28, 28) float32, y: (4000,) int64
    loader = data.InMemoryLoader(*data.mnist("train"), batch_size=128)

and it also carries three read-only descriptive fields: ``name`` (``"mnist"``, ``"digits8x8"``),
``value_range`` (``"unit"``, ``"symmetric"``, ``"binary"``, ``"counts"``) and ``source`` (where the
images came from, e.g. ``"embedded"`` or ``"full"``).

This module also holds the one conversion from stored integer pixel levels to the named ranges, so
that MNIST and the 8x8 digits agree on what ``"symmetric"`` or ``"binary"`` means.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

IMAGE_RANGES = ("unit", "symmetric", "binary", "counts")


class _XY(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor


class ImageSet(_XY):
    """Images ``x: (N, C, H, W) float32`` and labels ``y: (N,) int64`` plus ``name``, ``value_range``, ``source``.

    The tuple part is ``(x, y)`` (``x, y = ds`` works, and ``len(ds) == 2``; use ``len(ds.x)`` for the
    number of images). ``name``, ``value_range`` and ``source`` are attributes that cannot be reassigned.
    """

    def __new__(cls, x: torch.Tensor, y: torch.Tensor, name: str, value_range: str, source: str):
        if not torch.is_tensor(x) or x.dim() != 4:
            raise ValueError(f"ImageSet.x must be a (N, C, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")
        if not torch.is_tensor(y) or y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"ImageSet.y must be a (N,) tensor with N = {x.shape[0]}, got {getattr(y, 'shape', type(y).__name__)}"
            )
        if value_range not in IMAGE_RANGES:
            raise ValueError(f"unknown value_range {value_range!r}; use one of {list(IMAGE_RANGES)}")
        self = super().__new__(cls, x, y)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "value_range", value_range)
        object.__setattr__(self, "source", source)
        return self

    def __setattr__(self, key, value):
        raise AttributeError(f"ImageSet is read-only; build a new one instead of setting {key!r}")

    def _replace(self, **changes) -> "ImageSet":
        """A copy with some of ``x``, ``y``, ``name``, ``value_range``, ``source`` replaced."""
        fields = {"x": self.x, "y": self.y, "name": self.name, "value_range": self.value_range, "source": self.source}
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"ImageSet has no field(s) {sorted(unknown)}; fields are {list(fields)}")
        fields.update(changes)
        return type(self)(**fields)

    def __reduce__(self):
        return (type(self), (self.x, self.y, self.name, self.value_range, self.source))

    def __repr__(self) -> str:
        shape = tuple(self.x.shape)
        return (
            f"ImageSet(name={self.name!r}, source={self.source!r}, value_range={self.value_range!r}, "
            f"x={shape} {str(self.x.dtype).replace('torch.', '')}, y=({len(self.y)},) "
            f"{str(self.y.dtype).replace('torch.', '')}, device={self.x.device})"
        )


def check_choice(value: object, choices, what: str) -> None:
    """Raise ``ValueError`` naming the allowed values when ``value`` is not one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{what}={value!r} is not available; use one of {list(choices)}")


def levels_to_range(levels: np.ndarray, max_level: int, value_range: str, binary: np.ndarray | None = None) -> torch.Tensor:
    """Convert stored integer pixel levels to a fresh float32 tensor in the named range.

    ``levels: (N, C, H, W) uint8`` with values ``0..max_level`` (MNIST: 255, 8x8 digits: 16).

    - ``"unit"``:      ``x = levels / max_level`` in [0, 1]
    - ``"symmetric"``: ``x = 2 levels / max_level - 1`` in [-1, 1]
    - ``"counts"``:    ``x = levels`` as floats, ``max_level + 1`` levels
    - ``"binary"``:    the precomputed ``binary: (N, C, H, W) bool`` sample ``b ~ Bernoulli(levels / max_level)``

    The result never shares memory with the cached arrays, so a learner modifying it in place
    cannot change what the next call returns.
    """
    if value_range == "binary":
        if binary is None:
            raise AssertionError("binary images must be sampled by the caller (with its fixed seed)")
        return torch.from_numpy(binary).to(torch.float32)
    x = torch.from_numpy(levels).to(torch.float32)  # a new tensor: uint8 -> float32 copies
    if value_range == "unit":
        return x.div_(max_level)
    if value_range == "symmetric":
        return x.div_(max_level / 2.0).sub_(1.0)  # p / (max / 2) - 1: exact at both ends
    if value_range == "counts":
        return x
    raise ValueError(f"unknown value_range {value_range!r}; use one of {list(IMAGE_RANGES)}")


def bernoulli_binarize(levels: np.ndarray, max_level: int, seed: int) -> np.ndarray:
    """One fixed binarisation: ``b ~ Bernoulli(levels / max_level)`` drawn with ``torch.Generator().manual_seed(seed)``.

    ``levels: (N, C, H, W) uint8`` -> ``(N, C, H, W) bool``. The same ``seed`` gives the same bits on every
    call and every machine (the sampling runs on the CPU).
    """
    generator = torch.Generator().manual_seed(seed)
    probs = torch.from_numpy(levels).to(torch.float32).div_(max_level)
    return torch.bernoulli(probs, generator=generator).to(torch.bool).numpy()
