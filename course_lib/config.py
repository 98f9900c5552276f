"""Course-wide settings: quick vs full mode, budgets, seeding, the cache directory, the notebook clock.

Quick mode is switched on by the environment variable ``COURSE_QUICK=1`` (the test suite and the
grader set it). Every notebook runs the *same* cells in both modes; only the budgets differ::

    steps = budget(full=3000, quick=30)

Nothing here chooses a device: that is :mod:`course_lib.device`.
"""

from __future__ import annotations

import os
import random
import time
from numbers import Real
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_quick() -> bool:
    """True when ``COURSE_QUICK`` is set to 1/true/yes/on (read afresh on every call).

    Raises ``ValueError`` for a value that is neither true nor false, rather than guessing.
    """
    raw = os.environ.get("COURSE_QUICK", "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(
        f"COURSE_QUICK={raw!r} is not understood; use COURSE_QUICK=1 for quick mode or unset it for full mode."
    )


def mode() -> str:
    """``"quick"`` or ``"full"``."""
    return "quick" if is_quick() else "full"


def budget(*, full: T, quick: T) -> T:
    """Pick the full-mode or quick-mode value of a budget (steps, samples, epochs, seconds).

    Both values must be positive numbers of the same kind (int with int, float with float), and the
    quick budget may not exceed the full one: a mistake here would make CI slow or a notebook useless.

    >>> budget(full=3000, quick=30)   # 3000 normally, 30 under COURSE_QUICK=1
    """
    for name, value in (("full", full), ("quick", quick)):
        if isinstance(value, bool) or not isinstance(value, Real):
            raise TypeError(f"budget({name}=...) must be a number, got {type(value).__name__} {value!r}")
        if not value > 0:
            raise ValueError(f"budget({name}={value!r}) must be positive")
    if isinstance(full, int) != isinstance(quick, int):
        raise TypeError(
            f"budget(full={full!r}, quick={quick!r}) mixes int and float; write both as ints (steps) or both as floats"
        )
    if quick > full:
        raise ValueError(f"budget(full={full!r}, quick={quick!r}): the quick budget must not exceed the full one")
    return quick if is_quick() else full


def seed_everything(seed: int = 0, *, deterministic: bool = False) -> torch.Generator:
    """Seed Python's ``random``, NumPy and PyTorch (CPU and every GPU); return a seeded CPU ``torch.Generator``.

    ``deterministic=True`` also asks PyTorch for deterministic kernels (slower on GPUs).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def cache_dir() -> Path:
    """Where optional downloads (full MNIST) and trained-on-demand weights are kept.

    ``$COURSE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/generative-course``, else
    ``~/.cache/generative-course``. The directory is created if needed.
    """
    env = os.environ.get("COURSE_CACHE_DIR")
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base).expanduser() / "generative-course"
    path.mkdir(parents=True, exist_ok=True)
    return path


class NotebookClock:
    """Measures a notebook's wall time and compares it with the notebook's stated budget.

    >>> clock = NotebookClock("02 maximum likelihood", full_minutes=10)
    >>> ...                       # the notebook
    >>> clock.report()            # prints e.g. "02 maximum likelihood: 3.2 min in full mode (budget 10 min)"
    """

    def __init__(self, name: str, *, full_minutes: float = 10.0, quick_seconds: float = 60.0):
        self.name = name
        self.full_minutes = full_minutes
        self.quick_seconds = quick_seconds
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the clock was made."""
        return time.perf_counter() - self.start

    def report(self) -> float:
        """Print the elapsed time against the budget of the current mode; return the seconds."""
        seconds = self.elapsed()
        if is_quick():
            limit, shown = self.quick_seconds, f"{seconds:.1f} s"
            stated = f"{self.quick_seconds:g} s"
        else:
            limit, shown = self.full_minutes * 60, f"{seconds / 60:.1f} min ({seconds:.0f} s)"
            stated = f"{self.full_minutes:g} min"
        verdict = "within" if seconds <= limit else "OVER"
        print(f"{self.name}: {shown} in {mode()} mode on {_device_name()}, {verdict} the budget of {stated}")
        return seconds


def _device_name() -> str:
    from course_lib.device import get_device

    return str(get_device())
