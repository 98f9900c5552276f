r"""Benchmark of the shipped MNIST GANs: sample quality against the real-vs-real floor, coverage, and time.

    .venv/bin/python bench/gan.py            # evaluates every shipped GAN, writes its section of bench/RESULTS.md
    .venv/bin/python bench/gan.py --only cyclegan   # only the CycleGAN section

For each checkpoint of :data:`course_lib.models.gan.MNIST_GANS` that is shipped (made by ``scripts/train_gans.py``):

* classifier-FID between N = 1,000 generated digits and the 1,000 held-out test digits, and its ratio to the
  real-vs-real floor at the same N (:func:`course_lib.metrics.ratio_to_floor`); target <= 5;
* precision / recall (k = 3) at the same N;
* the class histogram of 10,000 samples (target: every class between 7% and 13%), and for the conditional
  GAN the share of samples the classifier reads as the requested digit (target >= 95%);
* wall time: training (steps and minutes, from the manifest) and sampling 10,000 digits here;
* for each shipped CycleGAN of :data:`course_lib.models.cyclegan.CYCLEGAN_RECIPES` (made by
  ``scripts/train_cyclegan.py``): the share of held-out digits whose class survives translation in each direction,
  read by the target domain's classifier (target >= 90%), next to the same classifiers reading the untranslated
  inputs, and the per-class shares; and how much the translations look like the target domain (classifier-FID
  in that domain's classifier features, with the real-vs-real floor).

Timings depend on the machine and on what else runs on it; the section names the machine.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _results import markdown_table, record  # noqa: E402

from course_lib import checkpoints, data, metrics  # noqa: E402
from course_lib.models import cyclegan as cyclegan_lib  # noqa: E402
from course_lib.models.gan import MNIST_GANS, build_mnist_gan  # noqa: E402

N_FID = 1000
N_CLASSES = 10_000


def evaluate(name: str) -> list[str]:
    gan = checkpoints.load_into(build_mnist_gan(name), name)
    entry = checkpoints.manifest()[name]
    test = data.mnist("test", value_range="unit")
    conditional = gan.num_classes is not None
    labels = torch.arange(N_CLASSES) % 10 if conditional else None
    started = time.perf_counter()
    fake = ((gan.sample(N_CLASSES, labels=labels, generator=torch.Generator().manual_seed(1)) + 1) / 2).clamp(0, 1)
    sample_seconds = time.perf_counter() - started
    fid = metrics.fid(test.x[:N_FID], fake[:N_FID])
    ratio = metrics.ratio_to_floor(fid, "fid", N_FID)
    pr = metrics.precision_recall(test.x[:N_FID], fake[:N_FID])
    hist = metrics.class_histogram(fake)
    agreement = "-"
    if conditional:
        predicted = metrics.extract_logits(fake).argmax(1)
        agreement = f"{(predicted == labels).float().mean().item():.1%}"
    run = re.search(r"(\d+) D steps in (\d+) min", entry["notes"])
    if run and int(run.group(1)) != entry["steps"]:  # a snapshot chosen during a longer run
        training = f"snapshot at step {entry['steps']:,} of a {int(run.group(1)):,}-step, {run.group(2)}-min run"
    else:
        training = f"{entry['steps']:,} steps / {run.group(2) if run else '?'} min"
    return [
        name, f"{fid:.2f}", f"{ratio:.1f}x", f"{pr.precision:.2f}", f"{pr.recall:.2f}",
        f"{hist.num_covered}/10", f"{hist.fractions.min():.1%} .. {hist.fractions.max():.1%}", agreement,
        training, f"{sample_seconds:.1f} s",
    ]


def cyclegan_section() -> None:
    """Record class preservation and likeness to the target domain of the shipped CycleGANs, against doing nothing."""
    shipped = [name for name in cyclegan_lib.CYCLEGAN_RECIPES if name in checkpoints.names()]
    if not shipped:
        print("no shipped CycleGAN; run scripts/train_cyclegan.py first")
        return
    train, test = cyclegan_lib.digit_domains("train"), cyclegan_lib.digit_domains("test")

    def per_class(shares: torch.Tensor) -> str:
        return " ".join(f"{x:.0%}" for x in shares.tolist())

    rows = []
    models = [("no translation (identity)", cyclegan_lib.no_translation(), None)]
    models += [(name, checkpoints.load_into(cyclegan_lib.build_cyclegan(name), name), name) for name in shipped]
    for what, net, name in models:
        started = time.perf_counter()
        net.translate(test.a, "AB")
        net.translate(test.b, "BA")
        seconds = time.perf_counter() - started
        rate = cyclegan_lib.class_preservation(net, test.a, test.y_a, test.b, test.y_b)
        likeness = cyclegan_lib.translation_fid(net, test.a, test.b, test.a, test.b)
        trained, translating = "-", "-"
        if name is not None:
            entry = checkpoints.manifest()[name]
            minutes = re.search(r"in (\d+) min", entry["notes"])
            generator = cyclegan_lib.CYCLEGAN_RECIPES[name]["generator"]
            trained = f"{generator} generators, {entry['steps']:,} steps / {minutes.group(1) if minutes else '?'} min"
            translating = f"{seconds:.1f} s"
        rows.append([what, f"{rate.a_to_b:.1%}", f"{rate.b_to_a:.1%}", f"{likeness.a_to_b:.2f}",
                     f"{likeness.b_to_a:.2f}", per_class(rate.per_class_a_to_b), per_class(rate.per_class_b_to_a),
                     trained, translating])
    floor = cyclegan_lib.real_vs_real_fid(train, test, len(test.a), len(test.b))
    header = ["model", f"A->B preserved ({len(test.a):,})", f"B->A preserved ({len(test.b)})", "A->B FID to B",
              "B->A FID to A", "A->B by digit 0-9", "B->A by digit 0-9", "training", "translating both test sets"]
    notes = ("A = MNIST test digits, B = scikit-learn 8x8 test digits at 28x28. A translation counts as preserved when "
             "the target domain's shipped classifier (8x8 classifier after bringing A->B back to 8x8; MNIST classifier "
             "for B->A) reads the input's true label. Target: >= 90% each way. 'No translation' reads the untouched "
             "inputs with the same classifiers. 'FID to B' is the classifier-FID between the translated MNIST test "
             "digits and the 8x8 test digits, in the 8x8 classifier's features; 'FID to A' between the translated 8x8 "
             "test digits and the MNIST test digits, in the MNIST classifier's (cyclegan.domain_fid; lower = looks "
             f"more like the target domain). Real-vs-real floors at the same sizes: {floor.a_to_b:.2f} in B "
             f"({len(test.a):,} training vs {len(test.b)} test digits), {floor.b_to_a:.2f} in A ({len(test.b)} training "
             f"vs {len(test.a):,} test digits). Training ran on one CPU thread of a 2-core machine shared with other jobs.")
    print(record("CycleGAN class preservation (notebook 07)", markdown_table(header, rows), notes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the shipped GANs and CycleGANs; record bench/RESULTS.md.")
    parser.add_argument("--only", choices=["gans", "cyclegan"], help="record one of the two sections")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.only != "gans":
        cyclegan_section()
    if args.only == "cyclegan":
        return 0
    shipped = [name for name in MNIST_GANS if name in checkpoints.names()]
    if not shipped:
        print("no shipped GAN checkpoints; run scripts/train_gans.py first")
        return 1
    rows = [evaluate(name) for name in shipped]
    header = ["model", f"FID (N={N_FID})", "FID / floor", "precision", "recall", "classes",
              f"class share ({N_CLASSES:,})", "label agreement", "training", f"sampling {N_CLASSES:,}"]
    floor = metrics.floor("fid", N_FID)
    notes = (f"Classifier-FID uses the shipped MNIST classifier's 64-d features; the real-vs-real floor at N = {N_FID} "
             f"is {floor.mean:.2f} +- {floor.std:.2f}. Targets: FID <= 5x floor and every class 7%-13% (DCGAN), label "
             "agreement >= 95% (conditional GAN). Samples are the EMA generator's (sampling seed 1, the test split as "
             "the real set). scripts/train_gans.py ships the lowest training-split-FID snapshot among those whose "
             "classes all fell within 7%-13% on 2,000 samples of a separate selection seed (early stopping on a "
             "validation score); the evaluation here uses neither those samples nor the training split. Training "
             "ran on one CPU thread of a 2-core machine shared with other jobs, so its minutes are inflated.")
    print(record("GANs on MNIST (notebooks 06-07)", markdown_table(header, rows), notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
