r"""Real-vs-real floors: what FID and KID say when *nothing* is wrong, at each sample size.

Two disjoint sets of real digits are samples of the same distribution, yet their FID is not 0: the
Gaussian fitted to :math:`N` samples is off by estimation noise, which the Frechet distance turns into
a positive bias of roughly :math:`c / N`. KID is unbiased, so real-vs-real KID averages 0, but any single
value scatters around it by an amount that shrinks with :math:`N`. A model's score only means
something next to this floor at the **same** :math:`N`; the course therefore states every quality
target as a ratio

.. math::  \text{ratio} = \frac{\text{metric(model samples, real)}}{\text{floor}(N)}

where the floor's *level* is the mean real-vs-real FID, and for KID (mean :math:`\approx 0`) the
root-mean-square real-vs-real value :math:`\sqrt{\bar m^2 + s^2}`, i.e. its typical size from noise
alone. A ratio near 1 means "as close to the data as another sample of real digits"; 10 means ten
times the noise level.

The floors are measured by ``bench/metrics_floor.py`` (disjoint random real sets, several repeats) and
stored in ``floors.json`` beside this module, together with the sha256 of the classifier checkpoint
they were measured with: floors belong to those exact weights, and asking for them after the
classifier was retrained is an error until the bench is rerun.

Sample sizes between the recorded ones are interpolated linearly in :math:`1/N` (the bias model of
Chong & Forsyth, 2020); outside the recorded range it is an error. When the real and generated sets
differ in size, the estimation noise adds up as :math:`1/N_r + 1/N_g`, so use the harmonic-mean size
:func:`effective_n` (:math:`2 / (1/N_r + 1/N_g)`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

__all__ = ["FLOORS_FILE", "Floor", "recorded_floors", "floor", "ratio_to_floor", "effective_n", "RATIO_METRICS"]

#: Where ``bench/metrics_floor.py`` writes the floors.
FLOORS_FILE = Path(__file__).resolve().parent / "floors.json"
#: Metrics with a real-vs-real floor that scores can be divided by.
RATIO_METRICS = ("fid", "kid")


class Floor(NamedTuple):
    """Real-vs-real statistics of ``metric`` at sample size ``n`` (each set) for ``classifier``.

    ``mean``, ``std``: over ``repeats`` pairs of disjoint real sets; ``level``: what ratios divide by
    (FID: ``mean``; KID: ``sqrt(mean^2 + std^2)``); ``interpolated``: ``n`` lies between recorded sizes.
    """

    metric: str
    classifier: str
    n: float
    mean: float
    std: float
    repeats: int
    level: float
    interpolated: bool

    def __str__(self) -> str:
        how = "interpolated" if self.interpolated else f"{self.repeats} repeats"
        return f"{self.metric} floor at N={self.n:g} ({self.classifier}): {self.mean:.4g} +- {self.std:.2g} ({how})"


def recorded_floors(path: str | Path | None = None) -> dict:
    """The parsed ``floors.json`` (see ``bench/metrics_floor.py`` for its layout)."""
    file = Path(path) if path is not None else FLOORS_FILE
    if not file.exists():
        raise FileNotFoundError(
            f"no recorded metric floors at {file}; measure them with `python bench/metrics_floor.py`"
        )
    return json.loads(file.read_text(encoding="utf-8"))


def _check_fresh(name: str, entry: dict) -> None:
    """Refuse floors measured with a classifier checkpoint other than the shipped one."""
    from course_lib import checkpoints

    shipped = checkpoints.manifest().get(entry.get("checkpoint", ""), {}).get("sha256")
    if shipped is not None and shipped != entry.get("checkpoint_sha256"):
        raise ValueError(
            f"the recorded floors for {name!r} were measured with a different classifier checkpoint "
            f"(sha256 {str(entry.get('checkpoint_sha256'))[:12]}..., shipped {shipped[:12]}...); "
            "rerun `python bench/metrics_floor.py` after retraining the classifiers"
        )


def _level(metric: str, mean: float, std: float) -> float:
    return math.hypot(mean, std) if metric == "kid" else mean


def floor(metric: str, n: float, *, classifier: str = "mnist", path: str | Path | None = None) -> Floor:
    """The real-vs-real floor of ``metric`` (``"fid"``, ``"kid"``; also ``"precision"``, ``"recall"``) at ``n`` samples per set."""
    data = recorded_floors(path)
    entries = data.get("classifiers", {})
    if classifier not in entries:
        raise ValueError(f"no floors recorded for classifier {classifier!r}; recorded: {sorted(entries)}")
    entry = entries[classifier]
    _check_fresh(classifier, entry)
    table = entry.get("floors", {})
    if metric not in table:
        raise ValueError(f"no floors recorded for metric {metric!r}; recorded: {sorted(table)}")
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not n > 0 or not math.isfinite(n):
        raise ValueError(f"n must be a positive sample size, got {n!r}")
    rows = sorted((int(size), row) for size, row in table[metric].items())
    sizes = [size for size, _ in rows]
    for size, row in rows:
        if abs(size - n) < 1e-9:
            return Floor(metric, classifier, float(n), row["mean"], row["std"], row["repeats"],
                         _level(metric, row["mean"], row["std"]), False)
    if not sizes[0] < n < sizes[-1]:
        raise ValueError(
            f"floors of {metric!r} for {classifier!r} were recorded for N in {sizes}; N={n:g} is outside that range. "
            f"Evaluate with N between {sizes[0]} and {sizes[-1]} samples, or add N to `bench/metrics_floor.py --sizes`"
        )
    (lo, row_lo), (hi, row_hi) = next(((a, b) for a, b in zip(rows, rows[1:]) if a[0] < n < b[0]))
    w = (1 / n - 1 / lo) / (1 / hi - 1 / lo)  # linear in 1/N
    mean = (1 - w) * row_lo["mean"] + w * row_hi["mean"]
    std = (1 - w) * row_lo["std"] + w * row_hi["std"]
    return Floor(metric, classifier, float(n), mean, std, min(row_lo["repeats"], row_hi["repeats"]),
                 _level(metric, mean, std), True)


def effective_n(n_real: int, n_fake: int) -> float:
    r"""Harmonic-mean sample size :math:`2 / (1/N_r + 1/N_g)`: the equal-size N with the same estimation noise."""
    if n_real <= 0 or n_fake <= 0:
        raise ValueError(f"sample sizes must be positive, got {n_real} and {n_fake}")
    return 2.0 / (1.0 / n_real + 1.0 / n_fake)


def ratio_to_floor(value: float, metric: str, n: float, *, classifier: str = "mnist",
                   path: str | Path | None = None) -> float:
    """``value / floor(metric, n).level``: how many times the real-vs-real level at the same ``n`` a score is.

    ``metric``: ``"fid"`` or ``"kid"``; ``n``: samples per set (for unequal sets, :func:`effective_n`).
    ``value`` may be a float or a result with a ``.value`` (e.g. a :class:`~course_lib.metrics.KIDResult`).
    """
    if metric not in RATIO_METRICS:
        raise ValueError(f"ratios to the floor are defined for {list(RATIO_METRICS)}, not {metric!r}")
    value = float(getattr(value, "value", value))
    if not math.isfinite(value):
        raise ValueError(f"the {metric} value is {value}; a ratio of a non-finite score means nothing")
    return value / floor(metric, n, classifier=classifier, path=path).level
