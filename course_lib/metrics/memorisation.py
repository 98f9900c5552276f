r"""Memorisation: does the model produce new digits, or copies of its training images?

A model that returns its training set verbatim has a perfect FID, but it has generated nothing. The
check here compares every generated sample :math:`g` with the training set :math:`T` *and* with a
held-out set :math:`H` of real images from the same distribution that the model never saw:

.. math::  d_T(g) = \min_{t \in T} \lVert g - t \rVert_{\mathrm{rms}}, \qquad
           d_H(g) = \min_{h \in H} \lVert g - h \rVert_{\mathrm{rms}}, \qquad
           \lVert v \rVert_{\mathrm{rms}} = \sqrt{\tfrac1D \textstyle\sum_i v_i^2},

distances in pixel space by default (the root-mean-square pixel difference: 0 for identical images,
about 0.1 when a typical pixel is off by 0.1 on the [0, 1] scale), or in classifier-feature space.

* A sample much closer to a training image than to any held-out image, :math:`d_T \ll d_H`, is
  evidence of copying (the ratio :math:`d_T / d_H` is returned per sample).
* A **near-copy** is a sample closer to its nearest training image than almost any genuinely new digit
  gets: the threshold is the ``quantile`` (default 1%) of :math:`d_T(h)` over the held-out digits
  :math:`h \in H`, which are new digits by construction. A model that samples the data distribution
  itself therefore produces about ``quantile`` near-copies (returned as ``expected_share``); a share
  well above that, or samples at distance ~0, mean memorisation. Exact copies are always flagged.

The check is only as good as its distance: it catches copies that are pixel-close (or feature-close
with ``space="features"``), not shifted, recoloured or stitched-together ones (Carlini et al., 2023,
*Extracting training data from diffusion models*; Meehan et al., 2020, *A non-parametric test to
detect data-copying in generative models*).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from course_lib.metrics._checks import check_features, check_image_pair, check_same_dim
from course_lib.metrics._distances import nearest
from course_lib.metrics.features import as_features
from course_lib.models.classifiers import check_classifier_input

__all__ = ["Memorisation", "memorisation"]


class Memorisation(NamedTuple):
    """Per-sample nearest-neighbour distances and the share of near-copies.

    Fields: ``d_train (N,)``, ``d_heldout (N,)`` (RMS distances), ``nearest_train (N,)`` (index into the
    training set), ``ratio (N,)`` = ``d_train / d_heldout``, ``near_copy (N,)`` bool, ``threshold`` (the
    distance below which a sample counts as a near-copy), ``share_near_copies``, ``expected_share`` (the
    share a model that samples the data distribution would have), ``space``.
    """

    d_train: torch.Tensor
    d_heldout: torch.Tensor
    nearest_train: torch.Tensor
    ratio: torch.Tensor
    near_copy: torch.Tensor
    threshold: float
    share_near_copies: float
    expected_share: float
    space: str

    def __str__(self) -> str:
        return (
            f"near-copies of training images: {100 * self.share_near_copies:.1f}% of {len(self.d_train)} samples "
            f"(a model sampling the data would have ~{100 * self.expected_share:.0f}%); median d_train / d_heldout = "
            f"{float(self.ratio.median()):.2f} ({'pixel' if self.space == 'pixels' else 'feature'} space)"
        )


def _as_flat(x: torch.Tensor, name: str, reference_shape) -> torch.Tensor:
    check_classifier_input(x, reference_shape, name=name)
    return x.detach().reshape(x.shape[0], -1).to(device="cpu", dtype=torch.float64)


def memorisation(fake: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor, *, space: str = "pixels",
                 quantile: float = 0.01, threshold: float | None = None, classifier=None, batch_size: int = 500,
                 device: torch.device | str | None = None) -> Memorisation:
    r"""Nearest-training vs nearest-held-out distances of each generated sample, and the share of near-copies.

    ``fake``: generated images ``(N, C, H, W)`` in [0, 1]; ``train``: the images the model was trained on;
    ``heldout``: real images it never saw (e.g. the test split). All three must have the same image shape.
    ``space``: ``"pixels"`` (RMS pixel distance) or ``"features"`` (RMS distance of classifier features;
    ``classifier`` as in :func:`course_lib.metrics.fid`). ``threshold``: the near-copy distance; by default
    the ``quantile`` of the held-out images' own nearest-training distances (see the module docstring).
    """
    if space not in ("pixels", "features"):
        raise ValueError(f"space must be 'pixels' or 'features', got {space!r}")
    if not (isinstance(quantile, float) and 0.0 < quantile < 1.0):
        raise ValueError(f"quantile must be a float in (0, 1), e.g. 0.01, got {quantile!r}")
    for x, name in ((fake, "fake"), (train, "train"), (heldout, "heldout")):
        if not torch.is_tensor(x) or x.dim() != 4:
            raise ValueError(f"{name} must be a batch of images (N, C, H, W), got "
                             f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    check_image_pair(train, fake, names=("train", "fake"))
    check_image_pair(train, heldout, names=("train", "heldout"))
    shape = tuple(train.shape[1:])
    if space == "pixels":
        g, t, h = (_as_flat(x, n, shape) for x, n in ((fake, "fake"), (train, "train"), (heldout, "heldout")))
    else:
        kw = {"batch_size": batch_size, "device": device}
        g = as_features(fake, classifier, name="fake", **kw)
        t = as_features(train, classifier, name="train", **kw)
        h = as_features(heldout, classifier, name="heldout", **kw)
        check_same_dim(t, g, names=("train", "fake"))
    g, t, h = (check_features(a, name=n) for a, n in ((g, "fake"), (t, "train"), (h, "heldout")))
    if len(h) < 2:
        raise ValueError("heldout needs at least 2 images")
    scale = g.shape[1] ** -0.5  # Euclidean -> root-mean-square distance
    d_train, nearest_train = nearest(g, t)
    d_train = d_train * scale
    d_heldout = nearest(g, h)[0] * scale
    reference = nearest(h, t)[0] * scale  # how close genuinely new digits come to the training set
    if float((reference <= 1e-6).double().mean()) > 0.5:
        raise ValueError(
            "most heldout images also appear in train: heldout must be real images the model was NOT trained on "
            "(e.g. data.mnist('test').x when the model was trained on data.mnist('train'))"
        )
    if threshold is None:
        threshold = float(torch.quantile(reference, quantile))
        expected = quantile
    else:
        threshold = float(threshold)
        if not threshold >= 0:
            raise ValueError(f"threshold must be a non-negative distance, got {threshold!r}")
        expected = float((reference < threshold).double().mean())
    near_copy = d_train < threshold
    # d_heldout = 0 happens only if a held-out image was generated exactly: report the ratio as inf then
    ratio = torch.where(d_heldout > 0, d_train / d_heldout.clamp(min=1e-300),
                        torch.where(d_train > 0, torch.tensor(float("inf"), dtype=torch.float64),
                                    torch.tensor(1.0, dtype=torch.float64)))
    return Memorisation(
        d_train=d_train, d_heldout=d_heldout, nearest_train=nearest_train, ratio=ratio, near_copy=near_copy,
        threshold=threshold, share_near_copies=float(near_copy.double().mean()), expected_share=expected,
        space=space,
    )
