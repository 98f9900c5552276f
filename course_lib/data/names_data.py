"""Real names for character-level models: the US census lists shipped in the ``names`` package.

The ``names`` package (https://pypi.org/project/names/) contains three files from the 1990 US census,
each line ``NAME FREQ CUMFREQ RANK`` where ``FREQ`` is the percentage of the population (of that sex,
for first names) with the name, rounded to 0.001:

- ``dist.female.first``: 4,275 female first names
- ``dist.male.first``:   1,219 male first names
- ``dist.all.last``:     88,799 surnames (69,960 of them rare enough to show a frequency of 0.000)

``kind="first"`` is the union of the female and male lists (5,163 distinct names: 331 appear in both);
its frequency is the average of the two percentages, i.e. the share of the whole population if the
sexes are equally numerous. ``kind="last"`` is the surname list. All names are lowercased; only
names of the letters a-z are kept (in these files, that is all of them).

The split is fixed: the alphabetically sorted names are shuffled with
``numpy.random.default_rng(NAMES_SPLIT_SEED)`` (``NAMES_SPLIT_SEED = 0``), then the first 80 % are
``"train"``, the next 10 % ``"val"``, the rest ``"test"``. Lists come back in that shuffled order.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from course_lib.data.imageset import check_choice

NAMES_KINDS = ("first", "last")
NAMES_SPLITS = ("train", "val", "test")
NAMES_SPLIT_SEED = 0
NAMES_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
_FILES = {"first": ("dist.female.first", "dist.male.first"), "last": ("dist.all.last",)}
_LETTERS = re.compile(r"[a-z]+")


def _package_dir() -> Path:
    try:
        import names as names_package
    except ImportError as error:  # pragma: no cover - a dependency of the course
        raise ImportError("the census name lists come with the `names` package: pip install names==0.3.0") from error
    return Path(names_package.__file__).resolve().parent


def _read_census(path: Path) -> dict[str, float]:
    """``{lowercase name: FREQ}`` from one census file (columns NAME FREQ CUMFREQ RANK)."""
    if not path.is_file():
        raise FileNotFoundError(f"census file {path} is missing; reinstall the names package: pip install names==0.3.0")
    table: dict[str, float] = {}
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4:
            raise ValueError(f"{path}:{number}: expected 4 columns NAME FREQ CUMFREQ RANK, got {line!r}")
        name = fields[0].lower()
        if _LETTERS.fullmatch(name):
            table[name] = float(fields[1])
    return table


@functools.lru_cache(maxsize=2)
def _table(kind: str) -> tuple[tuple[str, float], ...]:
    directory = _package_dir()
    tables = [_read_census(directory / file) for file in _FILES[kind]]
    merged: dict[str, float] = {}
    for table in tables:
        for name, frequency in table.items():
            merged[name] = merged.get(name, 0.0) + frequency / len(tables)
    return tuple(sorted(merged.items(), key=lambda item: (-item[1], item[0])))


@functools.lru_cache(maxsize=2)
def _splits(kind: str) -> dict[str, tuple[str, ...]]:
    everyone = sorted(name for name, _ in _table(kind))
    order = np.random.default_rng(NAMES_SPLIT_SEED).permutation(len(everyone))
    shuffled = [everyone[i] for i in order]
    n_train = int(NAMES_FRACTIONS["train"] * len(shuffled))
    n_val = int(NAMES_FRACTIONS["val"] * len(shuffled))
    return {
        "train": tuple(shuffled[:n_train]),
        "val": tuple(shuffled[n_train : n_train + n_val]),
        "test": tuple(shuffled[n_train + n_val :]),
    }


def names_table(kind: str = "first") -> list[tuple[str, float]]:
    """Every name of ``kind`` with its census frequency (percent of the population), most frequent first.

    ``kind="first"``: 5,163 first names (female and male lists merged, frequencies averaged);
    ``kind="last"``: 88,799 surnames. E.g. ``names_table("last")[0] == ("smith", 1.006)``.
    """
    check_choice(kind, NAMES_KINDS, "kind")
    return list(_table(kind))


def names(split: str = "train", *, kind: str = "first") -> list[str]:
    """Lowercase a-z names of one fixed split (80 / 10 / 10 %, disjoint): a new list on each call.

    First names: 4,130 train / 516 val / 517 test; surnames: 71,039 / 8,879 / 8,881.
    """
    check_choice(split, NAMES_SPLITS, "split")
    check_choice(kind, NAMES_KINDS, "kind")
    return list(_splits(kind)[split])
