"""scikit-learn's 8x8 handwritten digits (1,797 images, 17 grey levels): fast to fit on any CPU.

``sklearn.datasets.load_digits`` ships with scikit-learn (no download). Each image is an 8x8 grid of
counts 0..16 (the number of "on" pixels in a 4x4 block of the original 32x32 bitmap). The split is
the fixed one of Tomczak's *Deep Generative Modeling* code, so results can be compared with it:
the first 1,000 images are ``"train"``, the next 350 ``"val"``, the last 447 ``"test"``.

Value ranges: ``"unit"`` ``x = c / 16``; ``"symmetric"`` ``x = c / 8 - 1``; ``"counts"`` the raw levels
``c`` as float32 (``DIGITS8X8_LEVELS = 17`` levels, for discrete likelihoods and bits/dim);
``"binary"`` ``x ~ Bernoulli(c / 16)`` drawn once per split with ``torch.Generator().manual_seed(BINARIZE_SEEDS[split])``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from course_lib.data.imageset import ImageSet, bernoulli_binarize, check_choice, levels_to_range

#: Number of grey levels of a pixel of the 8x8 digits (0..16).
DIGITS8X8_LEVELS = 17
DIGITS8X8_SPLITS = {"train": slice(0, 1000), "val": slice(1000, 1350), "test": slice(1350, 1797)}
DIGITS8X8_RANGES = ("unit", "symmetric", "binary", "counts")
BINARIZE_SEEDS = {"train": 0, "val": 1, "test": 2}


@functools.lru_cache(maxsize=1)
def _table() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as ``(1797, 1, 8, 8) uint8`` counts 0..16 and ``(1797,) int64`` labels, in file order."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, labels = bunch.images, bunch.target
    if images.shape != (1797, 8, 8) or images.min() < 0 or images.max() > 16:
        raise RuntimeError(f"sklearn's digits have an unexpected shape {images.shape}; reinstall scikit-learn")
    return images.astype(np.uint8)[:, None], labels.astype(np.int64)


@functools.lru_cache(maxsize=3)
def _binary(split: str) -> np.ndarray:
    levels = _table()[0][DIGITS8X8_SPLITS[split]]
    return bernoulli_binarize(levels, DIGITS8X8_LEVELS - 1, BINARIZE_SEEDS[split])


def digits8x8(split: str = "train", *, value_range: str = "unit") -> ImageSet:
    """The 8x8 digits: ``x: (N, 1, 8, 8) float32`` in ``value_range``, ``y: (N,) int64`` in 0..9.

    ``split``: ``"train"`` (N = 1,000), ``"val"`` (350) or ``"test"`` (447), as in Tomczak's code.
    ``value_range``: ``"unit"``, ``"symmetric"``, ``"binary"`` (fixed Bernoulli sample) or ``"counts"`` (0..16).
    """
    check_choice(split, tuple(DIGITS8X8_SPLITS), "split")
    check_choice(value_range, DIGITS8X8_RANGES, "value_range")
    levels, labels = _table()
    rows = DIGITS8X8_SPLITS[split]
    binary = _binary(split) if value_range == "binary" else None
    x = levels_to_range(levels[rows], DIGITS8X8_LEVELS - 1, value_range, binary)
    return ImageSet(x, torch.from_numpy(labels[rows].copy()), "digits8x8", value_range, "sklearn")
