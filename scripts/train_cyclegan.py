r"""Train the CycleGAN that notebook 07 loads (MNIST <-> 8x8 digits), evaluate it, and ship it as a checkpoint.

    .venv/bin/python scripts/train_cyclegan.py                    # cyclegan_digits (local generators), then ship
    .venv/bin/python scripts/train_cyclegan.py --name cyclegan_digits_resnet   # the paper's ResNet generators
    .venv/bin/python scripts/train_cyclegan.py --steps 200 --dry-run   # a short run, evaluated, nothing shipped

1. trains :func:`course_lib.models.cyclegan.build_cyclegan` with the recipe
   ``CYCLEGAN_RECIPES[name]`` (:mod:`course_lib.models.cyclegan`) on the two **training** splits: the 4,000 MNIST digits
   (domain A) and the 1,000 8x8 digits brought to 28x28 (domain B), drawn by two independently shuffled
   loaders, so no pair is ever formed and no label is used;
2. every ``--eval-every`` steps, and at the end, prints the class-preservation rate on the held-out test splits
   (all 1,000 MNIST test digits A -> B, all 447 8x8 test digits B -> A), read by the shipped classifiers of the
   *target* domain (:func:`course_lib.models.cyclegan.class_preservation`). The printed curve is for the
   reader; the shipped weights are those of the last step, not a chosen snapshot;
3. ships the four networks' state_dict as ``name`` with
   :func:`course_lib.checkpoints.save_for_shipping`, the numbers in the manifest's notes.

Seeded; one thread by default, so that it can run beside another job on a 2-core machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_lib import checkpoints, config, data  # noqa: E402
from course_lib.models import cyclegan as cyclegan_lib  # noqa: E402

SCRIPT = "scripts/train_cyclegan.py"


def describe(spec: dict) -> str:
    """The architecture of a recipe in words, for the manifest's notes."""
    if spec["generator"] == "local":
        generators = (f"local generators (width {spec['width']}, {spec['depth']} 3x3 convolutions, "
                      f"{2 * spec['depth'] + 1}x{2 * spec['depth'] + 1} convolutional receptive field)")
    else:
        generators = f"ResNet generators width {spec['width']} with {spec['blocks']} blocks"
    return (f"CycleGAN, {generators}, PatchGAN discriminators width {spec['discriminator_width']}, LSGAN loss, "
            f"lambda_cycle {spec['lambda_cycle']}, lambda_identity {spec['lambda_identity']}, discriminator inputs "
            f"shifted by up to "
            f"{spec['augment_shift']} px, batch {spec['batch_size']} + {spec['batch_size']}, Adam {spec['lr']} "
            f"then linear decay to 0 over the second half")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", choices=sorted(cyclegan_lib.CYCLEGAN_RECIPES), default="cyclegan_digits",
                        help="which recipe of CYCLEGAN_RECIPES to train and ship under that name")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps (default: the recipe's); the learning rate decays linearly over "
                             "the second half")
    parser.add_argument("--eval-every", type=int, default=500, help="a multiple of 50 (the logging interval)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dry-run", action="store_true", help="train and evaluate, ship nothing")
    args = parser.parse_args(argv)
    spec = cyclegan_lib.CYCLEGAN_RECIPES[args.name]
    steps = args.steps if args.steps is not None else spec["steps"]
    torch.set_num_threads(args.threads)
    config.seed_everything(0)

    train, test = cyclegan_lib.digit_domains("train"), cyclegan_lib.digit_domains("test")
    model = cyclegan_lib.build_cyclegan(args.name)
    loader_a = data.InMemoryLoader(train.a, batch_size=spec["batch_size"], device="cpu", seed=1)
    loader_b = data.InMemoryLoader(train.b, batch_size=spec["batch_size"], device="cpu", seed=2)

    def report(step: int, net, history) -> None:
        if step % args.eval_every == 0 and step < steps:
            rate = cyclegan_lib.class_preservation(net, test.a, test.y_a, test.b, test.y_b)
            net.train()
            print(f"  step {step}: cycle {history.values['cycle'][-1]:.3f}, {rate}", flush=True)

    started = time.perf_counter()
    result = cyclegan_lib.train_cyclegan(model, loader_a, loader_b, steps=steps, lr=spec["lr"],
                                         lr_decay_from=steps * spec["lr_decay_from"] // spec["steps"],
                                         device="cpu", log_every=50, callback=report,
                                         progress=sys.stderr.isatty(), desc=args.name)
    minutes = (time.perf_counter() - started) / 60
    rate = cyclegan_lib.class_preservation(model, test.a, test.y_a, test.b, test.y_b)
    print(f"{args.name}: {result.steps} steps in {minutes:.1f} min; {rate}", flush=True)
    if args.dry_run:
        return 0
    notes = (f"{describe(spec)}; {result.steps} steps in {minutes:.0f} min on {args.threads} CPU thread(s). "
             f"Test splits: class preserved A->B {rate.a_to_b:.3f} of {rate.n_a}, B->A {rate.b_to_a:.3f} of {rate.n_b}")
    entry = checkpoints.save_for_shipping(
        args.name, model.state_dict(), script=SCRIPT, steps=int(result.steps), notes=notes,
        data="embedded MNIST train split (4,000 digits) and scikit-learn 8x8 digits train split (1,000) at 28x28, "
             "unpaired, [-1, 1]")
    print("shipped", args.name, entry["sha256"][:12], entry["bytes"], "bytes", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
