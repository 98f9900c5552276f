r"""Inception-style score: confident *and* diverse class predictions (Salimans et al., 2016).

With a classifier's :math:`p(y \mid x)` and the marginal over the generated samples
:math:`p(y) = \mathbb E_x\, p(y \mid x)`,

.. math::  \operatorname{IS} = \exp\Big( \mathbb E_x\, \operatorname{KL}\big(p(y \mid x)\,\Vert\, p(y)\big) \Big)
           = \exp\big( H[p(y)] - \mathbb E_x H[p(y \mid x)] \big).

It is high when each sample is classified confidently (low conditional entropy) *and* the classes are
used evenly (high marginal entropy); it lies in :math:`[1, K]` for :math:`K` classes. Real MNIST
digits through a 98%-accurate classifier score close to :math:`K = 10`. Here the "Inception" network is
the course's digit classifier, so the numbers are comparable only with each other.

What it misses: it never looks at real data (a model that outputs one perfect, confidently classified
digit per class scores ~10), and it cannot see within-class diversity or memorisation.

The marginal :math:`p(y)` is estimated from the same samples. With ``splits > 1`` the samples are cut
into equal parts, the score computed on each, and the mean and standard deviation across parts
reported (the protocol of Salimans et al., with 10 splits); smaller parts estimate :math:`p(y)` worse
and bias the score down, so compare scores computed with the same ``splits`` and sample size.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from course_lib.metrics._checks import check_features, check_positive_int
from course_lib.metrics.features import extract_logits

__all__ = ["InceptionScore", "inception_score", "inception_score_from_logits"]


class InceptionScore(NamedTuple):
    """``mean``: the score (over splits); ``std``: its standard deviation across splits (``None`` for 1 split)."""

    mean: float
    std: float | None
    splits: int

    def __str__(self) -> str:
        spread = f" +- {self.std:.3f} over {self.splits} splits" if self.std is not None else ""
        return f"IS = {self.mean:.3f}{spread}"


def _score(log_p: torch.Tensor) -> float:
    """``log_p: (N, K)`` log p(y|x) -> exp(mean KL(p(y|x) || p(y)))."""
    log_marginal = torch.logsumexp(log_p, dim=0) - math.log(log_p.shape[0])  # log mean_x p(y|x)
    kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1)
    return float(kl.mean().exp())


def inception_score_from_logits(logits, *, splits: int = 1) -> InceptionScore:
    r"""IS from classifier logits ``(N, K)``; probabilities via ``log_softmax`` in float64.

    ``splits``: number of equal parts (``N // splits`` samples each, the remainder dropped).
    """
    logits = check_features(logits, name="logits")
    splits = check_positive_int(splits, name="splits")
    n = logits.shape[0]
    if n < 2 * splits:
        raise ValueError(f"{n} samples are too few for {splits} split(s): each needs at least 2 samples")
    log_p = torch.log_softmax(logits, dim=1)
    size = n // splits
    scores = torch.tensor([_score(log_p[i * size:(i + 1) * size]) for i in range(splits)], dtype=torch.float64)
    return InceptionScore(float(scores.mean()), float(scores.std()) if splits > 1 else None, splits)


def inception_score(fake: torch.Tensor, *, classifier=None, splits: int = 1, batch_size: int = 500,
                    device: torch.device | str | None = None) -> InceptionScore:
    r"""IS of images ``fake: (N, C, H, W)`` in [0, 1] under the digit classifier (higher is better, at most 10).

    ``classifier``: ``"mnist"``, ``"digits8x8"``, a module with ``logits(x)``, or ``None`` (from the image size).
    """
    if not torch.is_tensor(fake) or fake.dim() != 4:
        raise ValueError(
            "inception_score takes images (N, C, H, W); for precomputed logits use inception_score_from_logits"
        )
    logits = extract_logits(fake, classifier, batch_size=batch_size, device=device, name="fake")
    return inception_score_from_logits(logits, splits=splits)
