"""The model-selection rule of scripts/train_gans.py (the script itself runs for half an hour)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_gans.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("train_gans_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_snapshot_selection_prefers_balanced_classes_then_the_lower_fid():
    script = _load_script()
    selector = script.SnapshotSelector(None, torch.zeros(4, 1, 28, 28), every=1000, start_seconds=0.0)
    selector.consider(1000, 2.0, False, {"w": 1})
    assert selector.best[1] == 1000, "with nothing better, an unbalanced snapshot is kept"
    selector.consider(2000, 1.5, False, {"w": 2})
    assert selector.best[1] == 2000, "among unbalanced snapshots, the lower FID wins"
    selector.consider(3000, 3.0, True, {"w": 3})
    assert selector.best[1] == 3000, "a balanced snapshot beats any unbalanced one"
    selector.consider(4000, 1.0, False, {"w": 4})
    assert selector.best[1] == 3000
    selector.consider(5000, 2.5, True, {"w": 5})
    assert selector.best[1] == 5000 and selector.best[2] == {"w": 5} and selector.best[3] is True
    assert [s for s, _, _ in selector.scores] == [1000, 2000, 3000, 4000, 5000]
    assert script.CLASS_SHARE == (0.07, 0.13)
