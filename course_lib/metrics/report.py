r"""All sample-quality metrics at once, with FID and KID stated as ratios to the real-vs-real floor.

>>> real = data.mnist("test").x                      # (1000, 1, 28, 28) in [0, 1], never trained on
>>> report = evaluate(real, samples, train=data.mnist("train").x)
>>> print(report)                                    # a small table
>>> report.fid_ratio                                 # FID / real-vs-real FID at the same N

Features and logits are extracted once per set (batched, on the course's device), then every metric
is computed from them: FID, KID (+- standard error), the Inception-style score, precision and recall,
the class histogram and, when ``train`` is given, the memorisation check (``real`` then serves as the
held-out set, so it must not contain training images).

Each metric sees something different and misses something (``docs/metrics.md``); read them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from course_lib.metrics._checks import check_image_pair
from course_lib.metrics.coverage import ClassHistogram, class_histogram_from_logits
from course_lib.metrics.features import classifier_name_for, extract_features_and_logits, resolve_classifier
from course_lib.metrics.fid import fid_from_features
from course_lib.metrics.floors import Floor, effective_n, floor
from course_lib.metrics.inception_score import InceptionScore, inception_score_from_logits
from course_lib.metrics.kid import KIDResult, mmd2_unbiased
from course_lib.metrics.memorisation import Memorisation, memorisation
from course_lib.metrics.precision_recall import PrecisionRecall, precision_recall_from_features

__all__ = ["QualityReport", "evaluate"]


@dataclass(frozen=True)
class QualityReport:
    """Every metric of one comparison; ``fid_ratio``/``kid_ratio`` are ``None`` when no floor applies (see ``notes``)."""

    classifier: str | None
    n_real: int
    n_fake: int
    fid: float
    kid: KIDResult
    inception_score: InceptionScore
    precision_recall: PrecisionRecall
    classes: ClassHistogram
    memorisation: Memorisation | None = None
    fid_floor: Floor | None = None
    kid_floor: Floor | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fid_ratio(self) -> float | None:
        """FID divided by the real-vs-real FID floor at the same (effective) N."""
        return None if self.fid_floor is None else self.fid / self.fid_floor.level

    @property
    def kid_ratio(self) -> float | None:
        """KID divided by the real-vs-real KID level at the same (effective) N."""
        return None if self.kid_floor is None else self.kid.value / self.kid_floor.level

    def as_dict(self) -> dict[str, float | int | None]:
        """The headline numbers as a flat dict (for tables and ``bench`` records)."""
        out = {
            "n_real": self.n_real, "n_fake": self.n_fake, "fid": self.fid, "fid_ratio": self.fid_ratio,
            "kid": self.kid.value, "kid_std_error": self.kid.std_error, "kid_ratio": self.kid_ratio,
            "inception_score": self.inception_score.mean, "precision": self.precision_recall.precision,
            "recall": self.precision_recall.recall, "classes_covered": self.classes.num_covered,
            "effective_classes": self.classes.effective_classes,
        }
        if self.memorisation is not None:
            out["near_copy_share"] = self.memorisation.share_near_copies
        return out

    def __str__(self) -> str:
        def ratio(r):
            return f"  ({r:.2f}x the real-vs-real floor)" if r is not None else ""

        lines = [
            f"sample quality ({self.classifier or 'custom'} classifier, {self.n_fake} generated vs {self.n_real} real)",
            f"  FID                 {self.fid:10.4f}{ratio(self.fid_ratio)}",
            f"  KID                 {self.kid.value:10.5f} +- {self.kid.std_error:.5f}{ratio(self.kid_ratio)}",
            f"  Inception score     {self.inception_score.mean:10.3f}   (at most {len(self.classes.counts)})",
            f"  precision / recall  {self.precision_recall.precision:10.3f} / {self.precision_recall.recall:.3f}",
            f"  {self.classes}",
        ]
        if self.memorisation is not None:
            lines.append(f"  {self.memorisation}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def evaluate(real: torch.Tensor, fake: torch.Tensor, *, train: torch.Tensor | None = None, classifier=None,
             k: int = 3, batch_size: int = 500, device: torch.device | str | None = None) -> QualityReport:
    r"""Compare generated images ``fake`` with real images ``real`` (both ``(N, C, H, W)`` in [0, 1]) on every metric.

    ``train``: the model's training images; if given, the memorisation check runs with ``real`` as the
    held-out set. ``classifier``: ``"mnist"``, ``"digits8x8"``, a module, or ``None`` (from the image size);
    floors (and hence ratios) exist only for the shipped classifiers and the recorded sample sizes.
    """
    for x, name in ((real, "real"), (fake, "fake")):
        if not torch.is_tensor(x) or x.dim() != 4:
            raise ValueError(f"evaluate takes images (N, C, H, W) for {name}; for features use fid/kid/... directly")
    check_image_pair(real, fake)
    model = resolve_classifier(classifier, real, device=device)
    name = classifier if isinstance(classifier, str) else (classifier_name_for(real) if classifier is None else None)
    kw = {"batch_size": batch_size, "device": device}
    f_real, l_real = extract_features_and_logits(real, model, name="real", **kw)
    f_fake, l_fake = extract_features_and_logits(fake, model, name="fake", **kw)
    n_real, n_fake = len(f_real), len(f_fake)
    notes: list[str] = []
    floors: dict[str, Floor | None] = {"fid": None, "kid": None}
    if name is None:
        notes.append("no floors for a custom classifier: FID/KID ratios not available")
    else:
        n_eff = effective_n(n_real, n_fake)
        for metric in floors:
            try:
                floors[metric] = floor(metric, n_eff, classifier=name)
            except (ValueError, FileNotFoundError) as err:
                notes.append(f"no {metric} floor: {err}")
    mem = None
    if train is not None:
        mem = memorisation(fake, train, real, **kw)
    return QualityReport(
        classifier=name, n_real=n_real, n_fake=n_fake,
        fid=fid_from_features(f_real, f_fake),
        kid=mmd2_unbiased(f_real, f_fake),
        inception_score=inception_score_from_logits(l_fake),
        precision_recall=precision_recall_from_features(f_real, f_fake, k=k),
        classes=class_histogram_from_logits(l_fake, reference=l_real.argmax(1)),
        memorisation=mem, fid_floor=floors["fid"], kid_floor=floors["kid"], notes=tuple(notes),
    )
