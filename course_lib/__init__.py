"""course_lib: the tested implementations behind the course 'Generative Models, from probability to diffusion'.

Learners import the pieces they need, e.g. ``from course_lib import config, data, viz``. Submodules
are imported lazily so that ``import course_lib`` (and the ``course`` command) stay fast.

This package holds only what notebooks import; the ``course`` command and the grader live beside
it in ``course_tools`` (the instructor's workshop), which imports from here but never the other way.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "checkpoints",
    "config",
    "data",
    "device",
    "metrics",
    "models",
    "nn",
    "probability",
    "train",
    "viz",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course_lib' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
