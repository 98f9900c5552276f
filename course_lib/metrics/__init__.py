r"""Metrics of the course: likelihoods, and the quality of generated samples.

**Likelihoods** (:mod:`~course_lib.metrics.likelihood`): ``log_mean_exp``, ``nats_to_bits_per_dim``,
``bits_per_dim_to_nats``, ``dequantize``, ``discrete_nll_from_density``.

**Sample quality**, all in the feature space of a shipped digit classifier (:func:`digit_classifier`:
``"mnist"`` for 28x28, ``"digits8x8"`` for 8x8 images, chosen from the image size by default). Every
function takes images ``(N, C, H, W)`` in [0, 1] (features are extracted in batches on the course's
device) or precomputed feature matrices ``(N, D)``:

==========================  ===============================================================  =============
function                    what it measures                                                 better
==========================  ===============================================================  =============
:func:`fid`                 Frechet distance of Gaussians fitted to the features             lower
:func:`kid`                 unbiased MMD^2 with a cubic polynomial kernel, +- std. error     lower
:func:`inception_score`     exp E KL(p(y|x) || p(y)): confident and diverse classes           higher (<= 10)
:func:`precision_recall`    k-NN manifolds: fidelity (precision) and diversity (recall)      higher
:func:`class_histogram`     how often each digit is drawn (mode coverage)                    all 10 classes
:func:`memorisation`        nearest training vs held-out distance, share of near-copies      few copies
:func:`evaluate`            all of the above at once, with ratios to the floor               -
==========================  ===============================================================  =============

**Floors.** FID is biased upwards at small N: two sets of *real* digits do not score 0. Quality targets
are stated as ratios to the real-vs-real floor at the same N: :func:`floor`, :func:`ratio_to_floor`
(measured by ``bench/metrics_floor.py``). What each metric sees and misses: ``docs/metrics.md``.
"""

from __future__ import annotations

import importlib

from course_lib.metrics.coverage import ClassHistogram, class_histogram, class_histogram_from_logits
from course_lib.metrics.features import (
    CLASSIFIERS,
    as_features,
    digit_classifier,
    extract_features,
    extract_features_and_logits,
    extract_logits,
)
from course_lib.metrics.fid import fid, fid_from_features, frechet_distance, gaussian_statistics, sqrtm_psd
from course_lib.metrics.floors import Floor, effective_n, floor, ratio_to_floor, recorded_floors
from course_lib.metrics.inception_score import InceptionScore, inception_score, inception_score_from_logits
from course_lib.metrics.kid import KIDResult, kid, kid_from_features, mmd2_unbiased, polynomial_kernel
from course_lib.metrics.memorisation import Memorisation, memorisation
from course_lib.metrics.precision_recall import (
    PrecisionRecall,
    knn_radii,
    precision_recall,
    precision_recall_from_features,
)
from course_lib.metrics.report import QualityReport, evaluate

_LIKELIHOOD = ("log_mean_exp", "nats_to_bits_per_dim", "bits_per_dim_to_nats", "dequantize",
               "discrete_nll_from_density")

__all__ = [
    # likelihoods (imported on first use)
    *_LIKELIHOOD,
    # classifier features
    "CLASSIFIERS", "digit_classifier", "extract_features", "extract_logits", "extract_features_and_logits",
    "as_features",
    # FID
    "fid", "fid_from_features", "frechet_distance", "gaussian_statistics", "sqrtm_psd",
    # KID
    "kid", "kid_from_features", "mmd2_unbiased", "polynomial_kernel", "KIDResult",
    # Inception-style score
    "inception_score", "inception_score_from_logits", "InceptionScore",
    # precision / recall
    "precision_recall", "precision_recall_from_features", "knn_radii", "PrecisionRecall",
    # memorisation, mode coverage
    "memorisation", "Memorisation", "class_histogram", "class_histogram_from_logits", "ClassHistogram",
    # floors and the all-in-one report
    "floor", "ratio_to_floor", "effective_n", "recorded_floors", "Floor", "evaluate", "QualityReport",
]


def __getattr__(name: str):
    if name in _LIKELIHOOD or name == "likelihood":
        module = importlib.import_module("course_lib.metrics.likelihood")
        return module if name == "likelihood" else getattr(module, name)
    raise AttributeError(f"module 'course_lib.metrics' has no attribute {name!r}")
