"""config: quick mode, budgets, seeding, cache directory, the notebook clock."""

import random

import numpy as np
import pytest
import torch

from course_lib import config


def test_quick_mode_follows_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert config.is_quick() and config.mode() == "quick"
    monkeypatch.setenv("COURSE_QUICK", "0")
    assert not config.is_quick() and config.mode() == "full"
    monkeypatch.delenv("COURSE_QUICK")
    assert not config.is_quick()


def test_unknown_quick_value_is_an_error(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "maybe")
    with pytest.raises(ValueError, match="COURSE_QUICK=1"):
        config.is_quick()


def test_budget_picks_by_mode(monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert config.budget(full=3000, quick=30) == 30
    monkeypatch.setenv("COURSE_QUICK", "")
    assert config.budget(full=3000, quick=30) == 3000
    assert config.budget(full=2.5, quick=0.5) == 2.5


@pytest.mark.parametrize(
    "full, quick, error, message",
    [
        (10, 0, ValueError, "positive"),
        (-5, 1, ValueError, "positive"),
        (10, 20, ValueError, "must not exceed"),
        (10, 1.0, TypeError, "mixes int and float"),
        ("10", 1, TypeError, "must be a number"),
        (True, 1, TypeError, "must be a number"),
    ],
)
def test_invalid_budgets_name_the_problem(full, quick, error, message):
    with pytest.raises(error, match=message):
        config.budget(full=full, quick=quick)


def test_seed_everything_makes_every_generator_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    g1 = config.seed_everything(123)
    a = draw() + (torch.rand(2, generator=g1),)
    g2 = config.seed_everything(123)
    b = draw() + (torch.rand(2, generator=g2),)
    assert a[0] == b[0] and a[1] == b[1]
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    config.seed_everything(124)
    assert not torch.equal(torch.rand(3), b[2])


def test_seed_must_be_a_non_negative_int():
    with pytest.raises(ValueError):
        config.seed_everything(-1)
    with pytest.raises(ValueError):
        config.seed_everything(1.5)


def test_cache_dir_respects_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    path = config.cache_dir()
    assert path == tmp_path / "cache" and path.is_dir()
    monkeypatch.delenv("COURSE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert config.cache_dir() == tmp_path / "xdg" / "generative-course"


def test_notebook_clock_reports_against_the_mode_budget(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_QUICK", "1")
    clock = config.NotebookClock("99 test", quick_seconds=60)
    seconds = clock.report()
    out = capsys.readouterr().out
    assert 0 <= seconds < 60
    assert "99 test" in out and "quick mode" in out and "within the budget of 60 s" in out
    clock.start -= 120  # pretend two minutes passed
    clock.report()
    assert "OVER" in capsys.readouterr().out
