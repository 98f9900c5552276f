r"""Mode coverage: which digits does the model draw, and how often? (a class histogram from the classifier)

Mode collapse is the classic GAN failure: the generator finds a few outputs that fool the discriminator
and stops producing the rest. For digits the modes are the ten classes, so the simplest diagnostic is
to classify the samples and count:

.. math::  \hat p_c = \frac{1}{N} \sum_{n=1}^N \mathbb 1\big[\arg\max_y p(y \mid x_n) = c\big], \qquad c = 0..K-1.

Summaries returned with the histogram:

* ``num_covered``: classes with at least ``min_share`` of the samples (default: a quarter of the fair
  share, :math:`0.25 / K`, so that a few misclassified strays do not count as covering a mode);
* ``effective_classes`` :math:`= \exp H(\hat p)`, from 1 (one class only) to :math:`K` (all equally often);
* ``total_variation`` :math:`= \tfrac12 \sum_c |\hat p_c - r_c|` to the reference class distribution
  :math:`r` (uniform by default, or the class frequencies of real labels you pass);
* ``low_confidence_share``: samples whose top class probability is below ``confidence`` (default 0.5),
  i.e. that the classifier cannot read as any digit: argmax labels of those are not meaningful.

What it misses: everything within a class (a model that draws one single "3" for all its threes covers
every mode), and it is only as good as the classifier on the model's images.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from course_lib.metrics._checks import as_float64, check_features
from course_lib.metrics.features import extract_logits

__all__ = ["ClassHistogram", "class_histogram", "class_histogram_from_logits"]


class ClassHistogram(NamedTuple):
    """``counts (K,)`` int64, ``fractions (K,)`` float64 and the summaries described in the module docstring."""

    counts: torch.Tensor
    fractions: torch.Tensor
    num_covered: int
    covered: torch.Tensor
    effective_classes: float
    total_variation: float
    low_confidence_share: float

    def __str__(self) -> str:
        shares = " ".join(f"{c}:{100 * float(f):.0f}%" for c, f in enumerate(self.fractions))
        return (
            f"classes covered: {self.num_covered}/{len(self.counts)}, effective classes {self.effective_classes:.2f}, "
            f"TV to reference {self.total_variation:.3f}, unreadable {100 * self.low_confidence_share:.1f}% | {shares}"
        )


def _reference(reference, k: int) -> torch.Tensor:
    if reference is None:
        return torch.full((k,), 1.0 / k, dtype=torch.float64)
    if torch.is_tensor(reference) and not reference.is_floating_point():  # labels
        if reference.dim() != 1 or reference.numel() == 0 or int(reference.min()) < 0 or int(reference.max()) >= k:
            raise ValueError(f"reference labels must be a non-empty (N,) integer tensor with values in 0..{k - 1}")
        return torch.bincount(reference.cpu(), minlength=k).double() / reference.numel()
    r = as_float64(reference, name="reference")
    if r.shape != (k,) or (r < 0).any() or abs(float(r.sum()) - 1) > 1e-6:
        raise ValueError(
            f"reference must be class probabilities of shape ({k},) summing to 1, or integer labels (N,); "
            f"got shape {tuple(r.shape)}"
        )
    return r


def class_histogram_from_logits(logits, *, reference=None, min_share: float | None = None,
                                confidence: float = 0.5) -> ClassHistogram:
    """Class histogram from classifier logits ``(N, K)``; arguments as in :func:`class_histogram`."""
    logits = check_features(logits, name="logits")
    n, k = logits.shape
    probs = torch.softmax(logits, dim=1)
    labels = probs.argmax(dim=1)
    counts = torch.bincount(labels, minlength=k)
    fractions = counts.double() / n
    min_share = 0.25 / k if min_share is None else float(min_share)
    if not 0 <= min_share <= 1:
        raise ValueError(f"min_share must be in [0, 1], got {min_share!r}")
    if not 0 <= confidence <= 1:
        raise ValueError(f"confidence must be in [0, 1], got {confidence!r}")
    covered = (fractions >= min_share) & (counts > 0)
    nonzero = fractions[fractions > 0]
    entropy = float(-(nonzero * nonzero.log()).sum())
    tv = 0.5 * float((fractions - _reference(reference, k)).abs().sum())
    return ClassHistogram(
        counts=counts, fractions=fractions, num_covered=int(covered.sum()), covered=covered,
        effective_classes=math.exp(entropy), total_variation=tv,
        low_confidence_share=float((probs.max(dim=1).values < confidence).double().mean()),
    )


def class_histogram(fake: torch.Tensor, *, classifier=None, reference=None, min_share: float | None = None,
                    confidence: float = 0.5, batch_size: int = 500,
                    device: torch.device | str | None = None) -> ClassHistogram:
    r"""Classify generated images ``fake: (N, C, H, W)`` in [0, 1] and summarise how the classes are used.

    ``reference``: the class distribution to compare with: ``None`` (uniform), probabilities ``(K,)``,
    or integer labels ``(N_real,)`` (e.g. ``data.mnist("test").y``). ``classifier`` as in
    :func:`course_lib.metrics.fid`.
    """
    if not torch.is_tensor(fake) or fake.dim() != 4:
        raise ValueError("class_histogram takes images (N, C, H, W); for logits use class_histogram_from_logits")
    logits = extract_logits(fake, classifier, batch_size=batch_size, device=device, name="fake")
    return class_histogram_from_logits(logits, reference=reference, min_share=min_share, confidence=confidence)
