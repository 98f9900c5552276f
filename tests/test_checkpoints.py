"""checkpoints: shipped weights verified by sha256, weights_only loading, load_or_train's three sources."""

import hashlib
import json

import pytest
import torch
from torch import nn

from course_lib import checkpoints

SHIP = dict(script="scripts/train_tiny.py", data="toy2d moons (2,000 points)", steps=100, notes="test weights")


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Shipped files in tmp/ship, the cache in tmp/cache: nothing touches the package or ~/.cache."""
    ship = tmp_path / "ship"
    ship.mkdir()
    monkeypatch.setattr(checkpoints, "DIRECTORY", ship)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    return ship


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---------------------------------------------------------------- the package's own manifest


def test_the_package_manifest_is_valid_and_every_shipped_file_verifies():
    assert json.loads((checkpoints.DIRECTORY / "manifest.json").read_text()) is not None
    problems = {name: msg for name, msg in checkpoints.verify_all().items() if msg != "ok"}
    assert problems == {}


# ---------------------------------------------------------------- shipping


def test_save_for_shipping_writes_file_and_deterministic_manifest(dirs):
    model = make_model()
    entry = checkpoints.save_for_shipping("tiny", model.state_dict(), **SHIP)
    file = dirs / "tiny.pt"
    data = file.read_bytes()
    assert entry == {"file": "tiny.pt", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), **SHIP}
    manifest_text = (dirs / "manifest.json").read_text()
    assert json.loads(manifest_text) == {"tiny": entry}

    checkpoints.save_for_shipping("another", make_model(1).state_dict(), **SHIP)
    checkpoints.save_for_shipping("tiny", model.state_dict(), **SHIP)  # same weights again
    assert file.read_bytes() == data, "the same weights give the same bytes"
    text = (dirs / "manifest.json").read_text()
    assert list(json.loads(text)) == ["another", "tiny"], "keys are sorted"
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert checkpoints.names() == ["another", "tiny"]
    assert checkpoints.path("tiny") == file
    assert sorted(p.name for p in dirs.iterdir()) == ["another.pt", "manifest.json", "tiny.pt"]


def test_save_for_shipping_rejects_bad_input(dirs):
    with pytest.raises(ValueError, match="without the '.pt' suffix"):
        checkpoints.save_for_shipping("tiny.pt", make_model().state_dict(), **SHIP)
    with pytest.raises(ValueError, match="not valid"):
        checkpoints.save_for_shipping("../escape", make_model().state_dict(), **SHIP)
    with pytest.raises(TypeError, match="model.state_dict()"):
        checkpoints.save_for_shipping("tiny", make_model(), **SHIP)
    with pytest.raises(TypeError, match="weights_only"):
        checkpoints.save_for_shipping("tiny", {"w": torch.zeros(1), "meta": "a string"}, **SHIP)
    with pytest.raises(ValueError, match="script"):
        checkpoints.save_for_shipping("tiny", make_model().state_dict(), **{**SHIP, "script": ""})
    assert list(dirs.iterdir()) == []


# ---------------------------------------------------------------- loading and verification


def test_round_trip_through_a_shipped_checkpoint(dirs):
    source = make_model(0)
    checkpoints.save_for_shipping("tiny", source.state_dict(), **SHIP)
    state = checkpoints.load_state_dict("tiny")
    assert all(t.device.type == "cpu" for t in state.values())
    target = make_model(1)
    assert not same_weights(source, target)
    assert checkpoints.load_into(target, "tiny") is target
    assert same_weights(source, target)
    assert checkpoints.verify_all() == {"tiny": "ok"}


def test_a_modified_file_is_detected_and_names_its_script(dirs):
    checkpoints.save_for_shipping("tiny", make_model().state_dict(), **SHIP)
    file = dirs / "tiny.pt"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    file.write_bytes(bytes(data))
    with pytest.raises(checkpoints.ChecksumError, match="corrupt or was modified.*sha256.*train_tiny.py"):
        checkpoints.load_state_dict("tiny")
    file.write_bytes(bytes(data[:-10]))
    with pytest.raises(checkpoints.ChecksumError, match="bytes"):
        checkpoints.load_into(make_model(), "tiny")
    assert "corrupt" in checkpoints.verify_all()["tiny"]
    file.unlink()
    with pytest.raises(FileNotFoundError, match="missing.*train_tiny.py"):
        checkpoints.load_state_dict("tiny")


def test_unknown_names_list_the_known_ones(dirs):
    checkpoints.save_for_shipping("tiny", make_model().state_dict(), **SHIP)
    with pytest.raises(ValueError, match="no shipped checkpoint named 'huge'.*tiny"):
        checkpoints.load_state_dict("huge")
    with pytest.raises(ValueError, match="known checkpoints: tiny"):
        checkpoints.path("huge")


def test_a_shape_mismatch_is_explained(dirs):
    checkpoints.save_for_shipping("tiny", make_model().state_dict(), **SHIP)
    wider = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.Linear(16, 2))
    with pytest.raises(ValueError, match=r"shape mismatch: 0\.weight: checkpoint \(8, 2\) vs model \(16, 2\)"):
        checkpoints.load_into(wider, "tiny")
    with pytest.raises(ValueError, match="missing from the checkpoint"):
        checkpoints.load_into(nn.Sequential(*make_model(), nn.Linear(2, 2)), "tiny")


class Payload:
    """Stands in for an arbitrary pickled object (which could run code when unpickled)."""

    def __init__(self):
        self.weight = torch.zeros(2)


def test_weights_only_loading_rejects_a_pickled_object_even_with_a_matching_hash(dirs):
    checkpoints.save_for_shipping("tiny", make_model().state_dict(), **SHIP)
    file = dirs / "tiny.pt"
    torch.save({"0.weight": Payload()}, file)  # an attacker can also update the manifest's hash
    manifest = json.loads((dirs / "manifest.json").read_text())
    data = file.read_bytes()
    manifest["tiny"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (dirs / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="weights_only=True"):
        checkpoints.load_state_dict("tiny")
    assert "weights_only" in checkpoints.verify_all()["tiny"]


def test_verify_all_reports_files_missing_from_the_manifest(dirs):
    checkpoints.save_for_shipping("tiny", make_model().state_dict(), **SHIP)
    torch.save(make_model().state_dict(), dirs / "stray.pt")
    report = checkpoints.verify_all()
    assert report["tiny"] == "ok" and "not listed" in report["stray.pt"]


# ---------------------------------------------------------------- load_or_train


def test_load_or_train_trains_then_caches_then_uses_shipped_weights(dirs, monkeypatch):
    calls = []

    def train_fn(model):
        calls.append(model)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)

    trained, source = checkpoints.load_or_train("tiny", make_model(0), train_fn)
    assert source == "trained" and len(calls) == 1 and not trained.training
    cached = checkpoints.cache_path("tiny")
    assert cached.exists() and cached.parent.name == "quick", "quick-mode weights are cached apart from full mode"

    again, source = checkpoints.load_or_train("tiny", make_model(7), train_fn)
    assert source == "cache" and len(calls) == 1
    assert same_weights(again, trained)

    monkeypatch.setenv("COURSE_QUICK", "0")  # full mode does not pick up quick-mode weights
    _, source = checkpoints.load_or_train("tiny", make_model(7), train_fn)
    assert source == "trained" and len(calls) == 2
    monkeypatch.setenv("COURSE_QUICK", "1")

    shipped_weights = make_model(3)
    checkpoints.save_for_shipping("tiny", shipped_weights.state_dict(), **SHIP)
    model, source = checkpoints.load_or_train("tiny", make_model(7), train_fn)
    assert source == "shipped" and len(calls) == 2
    assert same_weights(model, shipped_weights)


def test_load_or_train_without_cache_and_with_a_train_result(dirs):
    from course_lib.train import fit

    def train_fn(model):
        return fit(model, lambda m, b: m(b).pow(2).mean(), [torch.randn(16, 2)], steps=3, progress=False,
                   device="cpu")

    model, source = checkpoints.load_or_train("tiny", make_model(), train_fn, cache=False)
    assert source == "trained" and isinstance(model, nn.Module)
    assert not checkpoints.cache_path("tiny").exists()
    with pytest.raises(TypeError, match="must return None, the trained model or a TrainResult"):
        checkpoints.load_or_train("tiny", make_model(), lambda m: 42, cache=False)


def test_load_or_train_skips_a_corrupt_shipped_file_or_a_stale_cache_loudly(dirs):
    checkpoints.save_for_shipping("tiny", make_model().state_dict(), **SHIP)
    (dirs / "tiny.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt or was modified"):
        _, source = checkpoints.load_or_train("tiny", make_model(), lambda m: None)
    assert source == "trained"

    # the architecture changed since the cache was written: retrain rather than fail or load wrongly
    wider = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.Linear(16, 2))
    with pytest.warns(UserWarning) as record:
        _, source = checkpoints.load_or_train("tiny", wider, lambda m: None)
    assert source == "trained"
    assert any("does not fit this model" in str(w.message) for w in record)
