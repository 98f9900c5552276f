"""The model-selection rule of scripts/train_gans.py and a dry run of scripts/train_cyclegan.py (the real runs take
10-40 minutes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load_script(name: str = "train_gans"):
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_snapshot_selection_prefers_balanced_classes_then_the_lower_fid():
    script = _load_script()
    selector = script.SnapshotSelector(None, torch.zeros(4, 1, 28, 28), every=1000, start_seconds=0.0)
    for step, fid, balanced, expected in [(1000, 2.0, False, 1000),  # nothing better yet: kept although unbalanced
                                          (2000, 1.5, False, 2000),  # among unbalanced ones, the lower FID wins
                                          (3000, 3.0, True, 3000),   # a balanced snapshot beats any unbalanced one
                                          (4000, 1.0, False, 3000),
                                          (5000, 2.5, True, 5000)]:
        selector.consider(script.Snapshot(step, fid, balanced, {"w": step}))
        assert selector.best.step == expected, (step, selector.best)
    assert selector.best.state == {"w": 5000} and selector.best.balanced
    assert [s.step for s in selector.scored] == [1000, 2000, 3000, 4000, 5000]
    assert script.CLASS_SHARE == (0.07, 0.13)


def test_snapshot_selection_with_nothing_scored_ships_the_last_weights():
    script = _load_script()
    selector = script.SnapshotSelector(None, torch.zeros(4, 1, 28, 28), every=1000, start_seconds=1e9)
    selector(1000, None, type("H", (), {"values": {}})())  # before start_seconds: nothing is scored
    assert selector.scored == [] and "none was scored" in selector.finish(None, 1234)


def test_cyclegan_script_dry_run_trains_the_named_recipe_and_ships_nothing(capsys, monkeypatch):
    from course_lib import checkpoints

    script = _load_script("train_cyclegan")
    shipped = []
    monkeypatch.setattr(checkpoints, "save_for_shipping", lambda *a, **k: shipped.append(a))
    assert script.main(["--name", "cyclegan_digits_resnet", "--steps", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "cyclegan_digits_resnet: 2 steps" in out and "class preserved: A->B" in out
    assert shipped == []
    assert "9x9 convolutional receptive field" in script.describe({**script.cyclegan_lib.CYCLEGAN_RECIPES["cyclegan_digits"]})
