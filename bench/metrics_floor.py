r"""Real-vs-real floors of the sample-quality metrics at the sample sizes the course uses.

    .venv/bin/python bench/metrics_floor.py                 # both classifiers, default sizes, 50 repeats
    .venv/bin/python bench/metrics_floor.py --classifier mnist --sizes 500 1000 --repeats 20

For each shipped digit classifier and each sample size N, draw two *disjoint* random sets of N real
digits from the whole pool of real digits (MNIST: the 5,000 embedded digits, train + test; 8x8 digits:
all 1,797), and compute FID, KID, precision and recall between them; repeat with fresh draws. Both sets
come from the same distribution, so whatever the metrics report is the floor set by finite samples:

* FID's mean is its small-sample bias (roughly c / N); a model cannot be expected to beat it;
* KID's mean is ~0 (the estimator is unbiased), its spread is the noise level at that N;
* precision and recall of real vs real are the ceilings of those metrics at that N and k = 3.

Writes ``course_lib/metrics/floors.json`` (read by ``course_lib.metrics.floor`` and ``ratio_to_floor``,
tagged with the sha256 of the classifier checkpoint used) and the section "Metric floors" of
``bench/RESULTS.md``. Then, for scale, every metric on real MNIST digits degraded in known ways (noise,
blur, dropped classes, collapse, memorised copies) at N = 1,000, as the section "Metric sensitivity".
About a minute on a 2-core CPU. Rerun after retraining the classifiers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from _results import markdown_table, record  # noqa: E402

from course_lib import checkpoints, data  # noqa: E402
from course_lib import metrics as M  # noqa: E402
from course_lib.metrics.floors import FLOORS_FILE  # noqa: E402
from course_lib.models.classifiers import CLASSIFIER_SPECS  # noqa: E402

DEFAULT_SIZES = {"mnist": (250, 500, 1000, 2000), "digits8x8": (100, 200, 400, 800)}
SECTION = "Metric floors: real vs real (notebook 11)"
SENSITIVITY_SECTION = "Metric sensitivity: degraded MNIST digits vs the floor (notebook 11)"


def real_pool(name: str) -> tuple[torch.Tensor, str]:
    """All real digits available offline for ``name``, in [0, 1], and a description."""
    if name == "mnist":
        x = torch.cat([data.mnist(split, source="embedded").x for split in ("train", "test")])
        return x, "MNIST, the 5,000 embedded digits (train + test splits)"
    x = torch.cat([data.digits8x8(split).x for split in ("train", "val", "test")])
    return x, "8x8 digits, all 1,797 (train + val + test splits)"


def measure(name: str, sizes, repeats: int, seed: int) -> dict:
    x, pool = real_pool(name)
    feats = M.extract_features(x, name)  # once; every draw below indexes into it
    rows = {}
    for n in sizes:
        if 2 * n > len(feats):
            raise SystemExit(f"N={n}: two disjoint sets need {2 * n} digits, the {name} pool has {len(feats)}")
        values = {"fid": [], "kid": [], "kid_se": [], "precision": [], "recall": []}
        for r in range(repeats):
            g = torch.Generator().manual_seed(seed + 1000 * r + n)
            perm = torch.randperm(len(feats), generator=g)
            a, b = feats[perm[:n]], feats[perm[n:2 * n]]
            values["fid"].append(M.fid(a, b))
            k = M.kid(a, b)
            values["kid"].append(k.value)
            values["kid_se"].append(k.std_error)
            pr = M.precision_recall(a, b)
            values["precision"].append(pr.precision)
            values["recall"].append(pr.recall)
        rows[n] = values
    return {"pool": pool, "pool_size": len(feats), "rows": rows}


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, 1, H, W) images, standard deviation ``sigma`` pixels."""
    t = torch.arange(-3, 4, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (3, 3, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 0, 3, 3), mode="replicate"), k.view(1, 1, -1, 1))


def sensitivity(seed: int = 0) -> tuple[list, str]:
    """Every metric on real MNIST digits degraded in known ways, N = 1,000: what a ratio to the floor looks like."""
    train = data.mnist("train", source="embedded")
    real = data.mnist("test", source="embedded").x  # held out: the reference set
    seen = train.x[:2000]  # plays the model's training set (for the memorisation check)
    pool_x, pool_y = train.x[2000:], train.y[2000:]  # new digits the "model" never saw
    g = torch.Generator().manual_seed(seed)
    fresh = pool_x[torch.randperm(len(pool_x), generator=g)[:1000]]
    low = torch.nonzero(pool_y < 5).squeeze(1)
    ten = torch.stack([pool_x[torch.nonzero(pool_y == c)[0, 0]] for c in range(10)])  # one digit of each class
    noise = torch.randn(fresh.shape, generator=g)
    cases = [
        ("new real digits (reference)", fresh),
        ("+ Gaussian noise, sigma 0.1", (fresh + 0.1 * noise).clamp(0, 1)),
        ("+ Gaussian noise, sigma 0.2", (fresh + 0.2 * noise).clamp(0, 1)),
        ("+ Gaussian noise, sigma 0.35", (fresh + 0.35 * noise).clamp(0, 1)),
        ("Gaussian blur, sigma 1 px", _blur(fresh, 1.0)),
        ("Gaussian blur, sigma 1.5 px", _blur(fresh, 1.5)),
        ("only digits 0-4 (5 modes dropped)", pool_x[low[torch.randperm(len(low), generator=g)[:1000]]]),
        ("one digit per class, each repeated 100x", ten.repeat_interleave(100, dim=0)),
        ("copies of training digits (memorised)", seen[torch.randperm(len(seen), generator=g)[:1000]]),
    ]
    rows = []
    for label, fake in cases:
        r = M.evaluate(real, fake, train=seen)
        rows.append([
            label, f"{r.fid:.2f}", f"{r.fid_ratio:.1f}", f"{r.kid_ratio:.1f}", f"{r.inception_score.mean:.2f}",
            f"{r.precision_recall.precision:.3f}", f"{r.precision_recall.recall:.3f}", f"{r.classes.num_covered}",
            f"{100 * r.memorisation.share_near_copies:.1f}%",
        ])
    notes = (
        "1,000 'samples' made from real MNIST digits in known ways, each compared with the 1,000 held-out test digits "
        "by `course_lib.metrics.evaluate` (mnist classifier). The memorisation check treats the first 2,000 training "
        "digits as the model's training set; the other samples come from the remaining 2,000, which it never saw. "
        "Ratios are to the real-vs-real floor at N = 1,000 above. Note what each metric misses: the collapsed "
        "set (one digit per class, repeated) keeps a high Inception score, precision and all 10 classes, and only FID/KID and recall "
        "expose it; memorised copies score like real digits on every metric except the near-copy share."
    )
    return rows, notes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classifier", choices=list(CLASSIFIER_SPECS), action="append")
    parser.add_argument("--sizes", type=int, nargs="+", help="sample sizes N (default per classifier)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the spread needs two draws)")

    start = time.perf_counter()
    names = args.classifier or list(CLASSIFIER_SPECS)
    existing = json.loads(FLOORS_FILE.read_text()) if FLOORS_FILE.exists() else {}
    out = {
        "about": "Real-vs-real floors of FID, KID, precision and recall: mean and std over repeats of two disjoint "
                 "random real sets of N digits each. Written by bench/metrics_floor.py; read by "
                 "course_lib.metrics.floor / ratio_to_floor.",
        "script": "bench/metrics_floor.py",
        "classifiers": dict(existing.get("classifiers", {})),
    }
    table_rows = []
    for name in names:
        sizes = tuple(args.sizes) if args.sizes else DEFAULT_SIZES[name]
        checkpoint = CLASSIFIER_SPECS[name]["checkpoint"]
        result = measure(name, sizes, args.repeats, args.seed)
        floors = {metric: {} for metric in ("fid", "kid", "precision", "recall")}
        for n, values in result["rows"].items():
            for metric in floors:
                v = np.asarray(values[metric])
                floors[metric][str(n)] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)), "repeats": len(v)}
            f, k = np.asarray(values["fid"]), np.asarray(values["kid"])
            p, r = np.asarray(values["precision"]), np.asarray(values["recall"])
            table_rows.append([
                name, CLASSIFIER_SPECS[name]["feature_dim"], n, f"{f.mean():.3f} ± {f.std(ddof=1):.3f}",
                f"{1000 * k.mean():+.3f} ± {1000 * k.std(ddof=1):.3f}", f"{1000 * np.mean(values['kid_se']):.3f}",
                f"{1000 * np.hypot(k.mean(), k.std(ddof=1)):.3f}",
                f"{p.mean():.3f} ± {p.std(ddof=1):.3f}", f"{r.mean():.3f} ± {r.std(ddof=1):.3f}",
            ])
        out["classifiers"][name] = {
            "checkpoint": checkpoint,
            "checkpoint_sha256": checkpoints.manifest()[checkpoint]["sha256"],
            "feature_dim": CLASSIFIER_SPECS[name]["feature_dim"],
            "pool": result["pool"],
            "sampling": "two disjoint uniformly random subsets of the pool per repeat (not stratified by class)",
            "floors": floors,
        }
    FLOORS_FILE.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    seconds = time.perf_counter() - start

    header = ["classifier", "D", "N per set", "FID", "KID x 1000", "KID s.e. x 1000 (jackknife, mean)",
              "KID level x 1000", "precision (k=3)", "recall (k=3)"]
    table = markdown_table(header, table_rows, align=["l"] + ["r"] * 8)
    notes = (
        f"Mean ± standard deviation over {args.repeats} repeats; each repeat draws two disjoint random sets of N real "
        "digits from the pool (MNIST: the 5,000 embedded digits, train + test; 8x8: all 1,797 digits) and compares "
        "them in the feature space of the shipped classifier (D = feature dimension). Nothing differs between the "
        "two sets but the sampling, so these are the floors: FID's mean is its small-sample bias (it shrinks roughly "
        "like 1/N, which is why FIDs are only comparable at equal N); KID's mean is ~0 because the estimator is "
        "unbiased, and its spread is the noise level. The 'KID level' sqrt(mean² + std²) is what "
        "`course_lib.metrics.ratio_to_floor` divides KID by; for FID it divides by the mean. Every quality target of "
        "the course is stated as such a ratio at the same N. The jackknife standard error of a single KID "
        "is conservative here (above the empirical spread): real vs real is the degenerate case of the U-statistic. "
        "Precision and recall of real vs real are the ceilings of those metrics at that N. "
        f"Floors are stored in `course_lib/metrics/floors.json` with the classifier's sha256. Took {seconds:.0f} s. "
        "Produced by `bench/metrics_floor.py`."
    )
    print(table)
    print(f"\nwrote {FLOORS_FILE.relative_to(ROOT)} ({seconds:.0f} s)")
    record(SECTION, table, notes)
    print(f"recorded section {SECTION!r} in bench/RESULTS.md")
    if "mnist" in names and not args.sizes:
        rows, notes = sensitivity(args.seed)
        header = ["samples (N = 1,000)", "FID", "FID / floor", "KID / floor", "IS", "precision", "recall",
                  "classes covered", "near-copies"]
        table = markdown_table(header, rows)
        print("\n" + table)
        record(SENSITIVITY_SECTION, table, notes)
        print(f"recorded section {SENSITIVITY_SECTION!r} in bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
