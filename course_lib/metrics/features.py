r"""Classifier features: the space in which FID, KID, precision/recall and the class histogram look at images.

Sample-quality metrics never compare raw pixels: two digits shifted by one pixel are far apart in pixel
space but mean the same thing. Instead each image :math:`x` is mapped by a trained classifier to its
penultimate-layer features :math:`h(x) \in \mathbb{R}^D` and class probabilities
:math:`p(y \mid x) = \operatorname{softmax}(\ell(x))`, and the metrics compare *those*.

The course ships two classifiers (see :mod:`course_lib.models.classifiers`):

>>> clf = digit_classifier("mnist")            # (B, 1, 28, 28) in [0, 1] -> 64 features, 10 logits
>>> f = extract_features(data.mnist("test").x) # (1000, 64), classifier chosen from the image size

Extraction is batched (``batch_size`` images at a time, under ``torch.no_grad()``) and runs on
``device`` (default :func:`course_lib.device.get_device`: the GPU when there is one); the result comes
back on the CPU as ``float32``, ready for the float64 statistics of the metrics.

Every metric accepts either images ``(N, C, H, W)`` (features are extracted here) or a precomputed
feature matrix ``(N, D)``. Precomputing pays when one real set is compared with many generated ones.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from course_lib import device as _device
from course_lib.metrics._checks import check_features, check_positive_int
from course_lib.models.classifiers import CLASSIFIER_SPECS, DigitClassifier, build_classifier

__all__ = [
    "CLASSIFIERS",
    "digit_classifier",
    "classifier_name_for",
    "resolve_classifier",
    "extract_features",
    "extract_logits",
    "extract_features_and_logits",
    "as_features",
]

#: Names of the shipped digit classifiers.
CLASSIFIERS = tuple(CLASSIFIER_SPECS)


@functools.lru_cache(maxsize=None)
def _shipped_state(name: str) -> dict[str, torch.Tensor]:
    from course_lib import checkpoints

    checkpoint = CLASSIFIER_SPECS[name]["checkpoint"]
    if checkpoint not in checkpoints.manifest():
        raise FileNotFoundError(
            f"the digit classifier {name!r} has not been shipped yet (no {checkpoint!r} in "
            "course_lib/checkpoints/manifest.json); train it with `python scripts/train_classifiers.py`"
        )
    return checkpoints.load_state_dict(checkpoint)  # sha256-verified, weights_only=True


def digit_classifier(name: str = "mnist", *, device: torch.device | str | None = None) -> DigitClassifier:
    """The shipped, trained digit classifier ``name`` (``"mnist"`` or ``"digits8x8"``), in eval mode.

    Weights are verified against their sha256 in the manifest and loaded with ``weights_only=True``
    (once per process; each call returns a fresh module). Parameters do not require gradients.
    ``device``: default :func:`course_lib.device.get_device`.
    """
    if name not in CLASSIFIER_SPECS:
        raise ValueError(f"unknown digit classifier {name!r}; use one of {list(CLASSIFIER_SPECS)}")
    model = build_classifier(name)
    model.load_state_dict(_shipped_state(name), strict=True)
    model.requires_grad_(False)
    return model.eval().to(device if device is not None else _device.get_device())


def classifier_name_for(x: torch.Tensor) -> str:
    """``"mnist"`` for ``(N, 1, 28, 28)`` images, ``"digits8x8"`` for ``(N, 1, 8, 8)``; otherwise an error."""
    shape = tuple(x.shape[1:]) if torch.is_tensor(x) and x.dim() == 4 else None
    for name, spec in CLASSIFIER_SPECS.items():
        if shape == spec["input_shape"]:
            return name
    raise ValueError(
        f"no shipped classifier takes images of shape {tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}; "
        "the course's classifiers take (N, 1, 28, 28) MNIST or (N, 1, 8, 8) digits, or pass classifier=<your model>"
    )


def resolve_classifier(classifier, x: torch.Tensor | None = None, *, device=None):
    """``classifier`` as a module: a name -> :func:`digit_classifier`, ``None`` -> chosen from ``x``'s shape,
    a module -> itself. A custom module must have ``features(x)`` and ``logits(x)`` methods; the extraction
    functions move it to ``device`` and put it in eval mode."""
    if classifier is None:
        if x is None:
            raise ValueError("pass classifier='mnist' or 'digits8x8' (or images from which to choose it)")
        classifier = classifier_name_for(x)
    if isinstance(classifier, str):
        return digit_classifier(classifier, device=device)
    if not (hasattr(classifier, "features") and hasattr(classifier, "logits")):
        raise TypeError(
            f"classifier must be 'mnist', 'digits8x8' or a module with features(x) and logits(x) methods, "
            f"got {type(classifier).__name__}"
        )
    return classifier


@torch.no_grad()
def _extract(x: torch.Tensor, classifier, heads: str, *, batch_size: int, device, name: str):
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor of images (N, C, H, W), got {type(x).__name__}")
    batch_size = check_positive_int(batch_size, name="batch_size")
    device = torch.device(device) if device is not None else _device.get_device()
    model = resolve_classifier(classifier, x, device=device)
    if isinstance(model, nn.Module):
        model.to(device).eval()
        if hasattr(model, "check_input"):  # check the whole set once: the error then names the argument
            model.check_input(x, name=name)
    feats, logits = [], []
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size].to(device, non_blocking=True)
        if heads == "both":
            h, ell = (model.features_and_logits(batch) if hasattr(model, "features_and_logits")
                      else (model.features(batch), model.logits(batch)))
            feats.append(h.float().cpu())
            logits.append(ell.float().cpu())
        elif heads == "features":
            feats.append(model.features(batch).float().cpu())
        else:
            logits.append(model.logits(batch).float().cpu())
    if len(x) == 0:
        raise ValueError(f"{name} is an empty batch of images")
    out = []
    if feats:
        out.append(torch.cat(feats))
    if logits:
        out.append(torch.cat(logits))
    for t, what in zip(out, ("features", "logits") if heads != "logits" else ("logits",)):
        if not torch.isfinite(t).all():
            raise ValueError(f"the classifier's {what} of {name} contain NaN or inf; check the images")
    return out


def extract_features(x: torch.Tensor, classifier=None, *, batch_size: int = 500,
                     device: torch.device | str | None = None, name: str = "x") -> torch.Tensor:
    r"""Penultimate-layer features :math:`h(x)`: ``x: (N, C, H, W)`` in [0, 1] -> ``(N, D)`` float32 on the CPU.

    ``classifier``: ``"mnist"``, ``"digits8x8"``, a module with ``features``/``logits``, or ``None`` to
    choose the shipped classifier from the image size. ``name`` is used in error messages.
    """
    return _extract(x, classifier, "features", batch_size=batch_size, device=device, name=name)[0]


def extract_logits(x: torch.Tensor, classifier=None, *, batch_size: int = 500,
                   device: torch.device | str | None = None, name: str = "x") -> torch.Tensor:
    r"""Class logits :math:`\ell(x)`: ``x: (N, C, H, W)`` in [0, 1] -> ``(N, K)`` float32 on the CPU."""
    return _extract(x, classifier, "logits", batch_size=batch_size, device=device, name=name)[0]


def extract_features_and_logits(x: torch.Tensor, classifier=None, *, batch_size: int = 500,
                                device: torch.device | str | None = None,
                                name: str = "x") -> tuple[torch.Tensor, torch.Tensor]:
    """Both heads from one pass over ``x``: ``((N, D), (N, K))`` float32 on the CPU."""
    feats, logits = _extract(x, classifier, "both", batch_size=batch_size, device=device, name=name)
    return feats, logits


def as_features(x, classifier=None, *, batch_size: int = 500, device=None, name: str = "x") -> torch.Tensor:
    """Images ``(N, C, H, W)`` -> their features; a feature matrix ``(N, D)`` -> itself. CPU float64 ``(N, D)``.

    This is how every metric reads its inputs. A 2-D input is taken to be features already extracted
    with the classifier (a 1-D or 3-D input is an error that says how to fix it).
    """
    if torch.is_tensor(x) and x.dim() == 4:
        x = extract_features(x, classifier, batch_size=batch_size, device=device, name=name)
    elif torch.is_tensor(x) and x.dim() == 3:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}: pass images as (N, C, H, W) (add the channel dimension with "
            f"{name}.unsqueeze(1)) or features as (N, D)"
        )
    return check_features(x, name=name)
