r"""Digit classifiers: the feature extractors behind the course's sample-quality metrics.

FID, KID, the Inception Score and precision/recall all compare images *in the feature space of a
classifier*. The original metrics use Inception-v3, trained on ImageNet at 299x299; for handwritten
digits the course uses two small classifiers trained on the course's own data (script:
``scripts/train_classifiers.py``; weights shipped in ``course_lib/checkpoints``):

==================  ============  ==============  ============  =====================================
name                input          feature dim D   classes       trained on
==================  ============  ==============  ============  =====================================
``"mnist"``         (B, 1, 28, 28) 64              10            ``data.mnist("train")``
``"digits8x8"``     (B, 1, 8, 8)   32              10            ``data.digits8x8("train")``
==================  ============  ==============  ============  =====================================

Both take images in the **unit range [0, 1]** (``value_range="unit"``, the data default) and refuse
anything else with an error that names the fix: ``[-1, 1]`` images (GAN/diffusion outputs) must be
mapped with ``(x + 1) / 2``, 0..255 pixels divided by 255, raw 8x8 counts divided by 16.

Each classifier has two heads on one body:

.. math::

    h = \operatorname{BN}\big(W_1\, \operatorname{CNN}(x) + b_1\big) \in \mathbb{R}^D
    \qquad \text{(features, the penultimate layer)}

    \ell = W_2\, \operatorname{dropout}(\operatorname{ReLU}(h)) + b_2 \in \mathbb{R}^{10}
    \qquad \text{(logits; } p(y \mid x) = \operatorname{softmax}(\ell)\text{)}

The batch normalisation of the feature layer has no learned scale or shift, so on the training
digits every feature has mean about 0 and variance about 1: distances, covariances and the KID kernel
then live on a known scale. The feature dimension is deliberately small (64 and 32, against
Inception's 2048): the Frechet distance needs a full-rank covariance estimate, i.e. more samples
than dimensions, and its small-sample bias grows with :math:`D / N`. With :math:`D = 64` the course's
sample sizes of 500-2,000 digits give well-conditioned estimates.

References: LeCun et al. (1998), *Gradient-based learning applied to document recognition*;
Heusel et al. (2017), *GANs trained by a two time-scale update rule converge to a local Nash
equilibrium* (FID, which uses a classifier's penultimate layer in exactly this way).
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.data.ranges import check_range

__all__ = [
    "CLASSIFIER_SPECS",
    "DigitClassifier",
    "MNISTClassifier",
    "Digits8x8Classifier",
    "build_classifier",
    "check_classifier_input",
]

#: name -> (input shape (C, H, W), feature dim D, checkpoint name in the manifest)
CLASSIFIER_SPECS: dict[str, dict] = {
    "mnist": {"input_shape": (1, 28, 28), "feature_dim": 64, "checkpoint": "classifier_mnist"},
    "digits8x8": {"input_shape": (1, 8, 8), "feature_dim": 32, "checkpoint": "classifier_digits8x8"},
}


def check_classifier_input(x: torch.Tensor, input_shape: tuple[int, int, int], *, name: str = "x") -> None:
    """Raise a ``TypeError``/``ValueError`` naming the fix unless ``x`` is ``(B, *input_shape)`` in [0, 1].

    Besides :func:`course_lib.data.check_range`'s messages, this recognises the raw 0..16 levels of
    the 8x8 digits and samples that overshoot [0, 1] slightly (a decoder without a sigmoid, a
    diffusion sample before clamping).
    """
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor of images (B, {', '.join(map(str, input_shape))}), "
                        f"got {type(x).__name__}")
    c, h, w = input_shape
    if x.dim() == 3 and tuple(x.shape[1:]) == (h, w):
        raise ValueError(f"{name} has shape {tuple(x.shape)}; add the channel dimension: {name}.unsqueeze(1)")
    if x.dim() == 2 and x.shape[1] == c * h * w:
        raise ValueError(f"{name} has shape {tuple(x.shape)} (flattened images); reshape it: "
                         f"{name}.view(-1, {c}, {h}, {w})")
    if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)} but this classifier takes images of shape (B, {c}, {h}, {w}); "
            + ("use the 'mnist' classifier for 28x28 digits and 'digits8x8' for 8x8 digits"
               if x.dim() == 4 else "pass a batch of images")
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} has dtype {x.dtype}; pass float images in [0, 1], e.g. {name}.float() / 255")
    if x.numel() == 0:
        raise ValueError(f"{name} is an empty batch")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values; check the generator's output before evaluating it")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0 and 1.5 < hi <= 16 + 1e-4 and torch.equal(x, x.round()) and (h, w) == (8, 8):
        raise ValueError(
            f"{name} holds values in [{lo:.3g}, {hi:.3g}], which look like the raw 0..16 levels of the 8x8 digits "
            f"(value_range='counts'), but the classifier expects [0, 1]: divide by 16, or load the data with "
            "value_range='unit'"
        )
    if -0.1 <= lo and hi <= 1.1 and (lo < -1e-4 or hi > 1 + 1e-4):
        raise ValueError(
            f"{name} has values in [{lo:.3g}, {hi:.3g}], slightly outside [0, 1]: clamp the samples first, "
            f"{name} = {name}.clamp(0, 1)"
        )
    check_range(x, "unit", name=name)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution (same padding) -> BatchNorm -> ReLU; spatial size kept."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class DigitClassifier(nn.Module):
    r"""Base class: a convolutional body, a ``D``-dim feature layer, a 10-way linear head.

    Subclasses set ``self.body`` (images -> flat vectors of size ``body_dim``) and call
    :meth:`_build_heads`. Attributes: ``input_shape = (C, H, W)``, ``input_range = "unit"``,
    ``feature_dim = D``, ``num_classes = 10``.

    ``forward(x)`` is :meth:`logits`. Call ``model.eval()`` before extracting features: in training mode
    batch normalisation and dropout make a sample's features depend on its batch.
    """

    input_shape: tuple[int, int, int]
    input_range = "unit"
    num_classes = 10

    def __init__(self, feature_dim: int):
        super().__init__()
        self.feature_dim = int(feature_dim)

    def _build_heads(self, body_dim: int, dropout: float) -> None:
        self.to_features = nn.Linear(body_dim, self.feature_dim)
        # no learned scale/shift: on training data every feature has mean ~0, variance ~1
        self.feature_norm = nn.BatchNorm1d(self.feature_dim, affine=False)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(self.feature_dim, self.num_classes))

    def check_input(self, x: torch.Tensor, *, name: str = "x") -> None:
        """Raise an error naming the fix unless ``x: (B, C, H, W)`` is float in [0, 1]."""
        check_classifier_input(x, self.input_shape, name=name)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        r"""The penultimate layer :math:`h(x)`: ``x: (B, C, H, W)`` in [0, 1] -> ``(B, D)``."""
        self.check_input(x)
        return self._features(x)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_norm(self.to_features(self.body(x)))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        r"""Class logits :math:`\ell(x)`: ``x: (B, C, H, W)`` in [0, 1] -> ``(B, 10)``."""
        self.check_input(x)
        return self.head(self._features(x))

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both heads from one pass: ``((B, D), (B, 10))``."""
        self.check_input(x)
        h = self._features(x)
        return h, self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class labels ``(B,)`` int64 (argmax of the logits)."""
        return self.logits(x).argmax(dim=1)


class MNISTClassifier(DigitClassifier):
    r"""Small CNN for 28x28 digits, about 121k parameters (~0.5 MB).

    Shapes: ``(B, 1, 28, 28)`` -conv 5x5 stride 2-> ``(B, 32, 14, 14)`` -conv stride 2, BN-> ``(B, 64, 7, 7)``
    -conv, BN, max-pool-> ``(B, 64, 4, 4)`` -flatten-> ``(B, 1024)`` -linear, BN-> features ``(B, 64)``
    -ReLU, dropout, linear-> logits ``(B, 10)``.

    Strided convolutions instead of full-resolution ones plus pooling keep the activations small,
    which is what costs time on a laptop CPU.
    """

    input_shape = (1, 28, 28)

    def __init__(self, feature_dim: int = 64, dropout: float = 0.3):
        super().__init__(feature_dim)
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.ReLU(),                     # 28 -> 14
            nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),  # 14 -> 7
            _conv_block(64, 64), nn.MaxPool2d(2, ceil_mode=True),                     # 7 -> 4
            nn.Flatten(),
        )
        self._build_heads(64 * 4 * 4, dropout)


class Digits8x8Classifier(DigitClassifier):
    r"""Small CNN for scikit-learn's 8x8 digits, about 65k parameters.

    Shapes: ``(B, 1, 8, 8)`` -conv32-> ``(B, 32, 8, 8)`` -conv64, pool-> ``(B, 64, 4, 4)``
    -conv64, pool-> ``(B, 64, 2, 2)`` -flatten-> ``(B, 256)`` -linear, BN-> features ``(B, 32)``
    -ReLU, dropout, linear-> logits ``(B, 10)``.
    """

    input_shape = (1, 8, 8)

    def __init__(self, feature_dim: int = 32, dropout: float = 0.3):
        super().__init__(feature_dim)
        self.body = nn.Sequential(
            _conv_block(1, 32),
            _conv_block(32, 64), nn.MaxPool2d(2),     # 8 -> 4
            _conv_block(64, 64), nn.MaxPool2d(2),     # 4 -> 2
            nn.Flatten(),
        )
        self._build_heads(64 * 2 * 2, dropout)


def build_classifier(name: str) -> DigitClassifier:
    """A fresh, untrained classifier of the architecture shipped under ``name`` (``"mnist"``, ``"digits8x8"``).

    To get the trained weights use :func:`course_lib.metrics.digit_classifier`.
    """
    if name not in CLASSIFIER_SPECS:
        raise ValueError(f"unknown digit classifier {name!r}; use one of {list(CLASSIFIER_SPECS)}")
    spec = CLASSIFIER_SPECS[name]
    cls = MNISTClassifier if name == "mnist" else Digits8x8Classifier
    return cls(feature_dim=spec["feature_dim"])
