"""The shipped digit classifiers: verified weights, held-out accuracy, features, and refusal of wrong inputs."""

from __future__ import annotations

import pytest
import torch

from course_lib import checkpoints, data
from course_lib import metrics as M
from course_lib.models.classifiers import CLASSIFIER_SPECS, build_classifier

TARGETS = {"mnist": 0.975, "digits8x8": 0.97}


def _held_out(name):
    return data.mnist("test", source="embedded") if name == "mnist" else data.digits8x8("test")


@pytest.mark.parametrize("name", list(CLASSIFIER_SPECS))
def test_shipped_weights_verify_and_load_with_weights_only(name):
    ckpt = CLASSIFIER_SPECS[name]["checkpoint"]
    assert checkpoints.verify_all()[ckpt] == "ok"  # sha256 + size + weights_only load
    entry = checkpoints.manifest()[ckpt]
    assert entry["script"] == "scripts/train_classifiers.py"
    assert entry["bytes"] < 1_000_000  # small enough to ship
    state = torch.load(checkpoints.path(ckpt), map_location="cpu", weights_only=True)
    build_classifier(name).load_state_dict(state, strict=True)


@pytest.mark.parametrize("name", list(CLASSIFIER_SPECS))
def test_accuracy_on_the_held_out_split(name):
    clf = M.digit_classifier(name, device="cpu")
    test = _held_out(name)
    accuracy = float((M.extract_logits(test.x, clf, device="cpu").argmax(1) == test.y).double().mean())
    assert accuracy >= TARGETS[name], f"{name}: {accuracy:.4f} < {TARGETS[name]}"
    entry = checkpoints.manifest()[CLASSIFIER_SPECS[name]["checkpoint"]]
    if name == "digits8x8" or "embedded" in entry["data"]:  # trained on full MNIST, notes give the full test split
        assert f"{100 * accuracy:.2f}%" in entry["notes"], "the manifest's notes should state the measured accuracy"


@pytest.mark.parametrize("name", list(CLASSIFIER_SPECS))
def test_features_are_low_dimensional_and_standardised(name):
    clf = M.digit_classifier(name, device="cpu")
    x = (data.mnist("train", source="embedded") if name == "mnist" else data.digits8x8("train")).x[:1000]
    f, logits = clf.features(x), clf.logits(x)
    d = CLASSIFIER_SPECS[name]["feature_dim"]
    assert f.shape == (1000, d) and logits.shape == (1000, 10) and d < 500
    assert f.mean(0).abs().max() < 0.5 and (f.var(0) - 1).abs().median() < 0.5
    assert not any(p.requires_grad for p in clf.parameters()) and not clf.training
    torch.testing.assert_close(clf(x[:5]), logits[:5])


def test_wrong_input_ranges_and_shapes_are_refused_with_the_fix():
    mnist = M.digit_classifier("mnist", device="cpu")
    x = data.mnist("test", source="embedded").x[:8]
    with pytest.raises(ValueError, match=r"\[-1, 1\] range.*\(x \+ 1\) / 2"):
        mnist.features(x * 2 - 1)
    with pytest.raises(ValueError, match="0..255.*divide by 255"):
        mnist.logits(x * 255)
    with pytest.raises(TypeError, match="float"):
        mnist.logits((x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="unsqueeze"):
        mnist.features(x[:, 0])
    with pytest.raises(ValueError, match="view"):
        mnist.features(x.view(8, -1))
    with pytest.raises(ValueError, match="'digits8x8' for 8x8"):
        mnist.features(data.digits8x8("test").x[:8])
    small = M.digit_classifier("digits8x8", device="cpu")
    counts = data.digits8x8("test", value_range="counts").x[:8]
    with pytest.raises(ValueError, match="divide by 16"):
        small.logits(counts)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        small.logits(data.digits8x8("test", value_range="symmetric").x[:8])
    with pytest.raises(ValueError, match="unknown digit classifier"):
        M.digit_classifier("cifar")
