r"""Improved precision and recall of generative models (Kynkaanniemi et al., 2019).

FID mixes two different failures into one number: samples that look wrong (low *fidelity*) and real
digits the model never produces (low *diversity*, mode dropping). Precision and recall separate them.

Estimate each distribution's support (its "manifold") from samples: around every feature vector
:math:`\phi` put a ball whose radius is the distance to its :math:`k`-th nearest neighbour in the same
set, :math:`\operatorname{NN}_k(\phi, \Phi)`, and take the union,

.. math::  \operatorname{manifold}(\Phi) = \bigcup_{\phi \in \Phi} B\big(\phi, \lVert \phi - \operatorname{NN}_k(\phi, \Phi) \rVert\big).

Then, with :math:`\Phi_r` the real and :math:`\Phi_g` the generated features,

.. math::  \text{precision} = \frac{1}{|\Phi_g|} \sum_{\phi_g \in \Phi_g} \mathbb 1\big[\phi_g \in \operatorname{manifold}(\Phi_r)\big],
           \qquad
           \text{recall} = \frac{1}{|\Phi_r|} \sum_{\phi_r \in \Phi_r} \mathbb 1\big[\phi_r \in \operatorname{manifold}(\Phi_g)\big].

Precision: the share of generated samples that fall where real digits live. Recall: the share of
real digits that the model's samples cover. A model that drops classes keeps its precision but loses
recall; a model that adds noise to every sample loses precision.

Both depend on :math:`k` (the paper uses :math:`k = 3`) and on the sample sizes: the balls shrink as
:math:`N` grows, so compare values at the same :math:`N`. Even two sets of real digits score below 1
(the floor table of ``bench/RESULTS.md`` lists them). Outliers inflate the manifold of the set they
belong to (a single far-away sample gets a large ball), the main weakness noted by Naeem et al. (2020,
*density and coverage*).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from course_lib.metrics._checks import check_features, check_image_pair, check_positive_int, check_same_dim
from course_lib.metrics._distances import inside_any_ball, kth_neighbour_distance
from course_lib.metrics.features import as_features

__all__ = ["PrecisionRecall", "precision_recall", "precision_recall_from_features", "knn_radii"]


class PrecisionRecall(NamedTuple):
    """``precision``, ``recall`` in [0, 1], the ``k`` used and the sample sizes."""

    precision: float
    recall: float
    k: int
    n_real: int
    n_fake: int

    def __str__(self) -> str:
        return f"precision = {self.precision:.3f}, recall = {self.recall:.3f} (k={self.k}, N_real={self.n_real}, N_fake={self.n_fake})"


def knn_radii(features, k: int = 3) -> torch.Tensor:
    """``features: (N, D)`` -> ``(N,)`` float64: distance of each point to its ``k``-th nearest other point."""
    f = check_features(features, name="features")
    k = check_positive_int(k, name="k")
    return kth_neighbour_distance(f, k)


def precision_recall_from_features(real, fake, *, k: int = 3) -> PrecisionRecall:
    """Precision and recall from feature matrices ``real: (N_r, D)``, ``fake: (N_g, D)``; both need more than ``k`` rows."""
    real = check_features(real, name="real")
    fake = check_features(fake, name="fake")
    check_same_dim(real, fake)
    k = check_positive_int(k, name="k")
    for f, name in ((real, "real"), (fake, "fake")):
        if f.shape[0] <= k:
            raise ValueError(f"{name} has {f.shape[0]} samples; k-nearest-neighbour manifolds need more than k = {k}")
    precision = inside_any_ball(fake, real, kth_neighbour_distance(real, k)).double().mean()
    recall = inside_any_ball(real, fake, kth_neighbour_distance(fake, k)).double().mean()
    return PrecisionRecall(float(precision), float(recall), k, real.shape[0], fake.shape[0])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3, classifier=None, batch_size: int = 500,
                     device: torch.device | str | None = None) -> PrecisionRecall:
    r"""Precision (fidelity) and recall (diversity) of ``fake`` against ``real`` in classifier-feature space.

    ``real``, ``fake``: images ``(N, C, H, W)`` in [0, 1] or feature matrices ``(N, D)``; ``classifier`` as
    in :func:`course_lib.metrics.fid`. Use the same number of real and generated samples when you can:
    the manifold radii shrink with :math:`N`.
    """
    check_image_pair(real, fake)
    f_real = as_features(real, classifier, batch_size=batch_size, device=device, name="real")
    f_fake = as_features(fake, classifier, batch_size=batch_size, device=device, name="fake")
    return precision_recall_from_features(f_real, f_fake, k=k)
