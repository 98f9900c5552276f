r"""Train the MNIST GANs that notebooks 06 and 07 load, evaluate them, and ship them as checkpoints.

    .venv/bin/python scripts/train_gans.py                         # every GAN in MNIST_GANS, then ship
    .venv/bin/python scripts/train_gans.py --only dcgan_mnist --minutes 5 --dry-run   # train + evaluate only

For each name in :data:`course_lib.models.gan.MNIST_GANS` (``dcgan_mnist``: DCGAN with the non-saturating
loss; ``cgan_mnist``: the same networks conditioned on the digit, with a projection discriminator):

1. trains with :func:`course_lib.models.gan.train_gan` on the **training split only** (the 4,000 embedded
   digits, in [-1, 1]) for ``--steps`` discriminator steps or ``--minutes`` of wall time, whichever comes
   first (the manifest records the steps actually done), keeping an EMA of the generator (decay 0.999);
2. evaluates the EMA generator against the held-out test split with the metrics of ``course_lib.metrics``:
   classifier-FID of 1,000 samples vs the 1,000 test digits as a ratio to the real-vs-real floor at N = 1,000,
   precision/recall, and the class histogram of 10,000 samples; for the conditional GAN also the share of
   samples the MNIST classifier reads as the requested digit;
3. ships ``{generator (EMA weights), discriminator}`` with :func:`course_lib.checkpoints.save_for_shipping`,
   the numbers in the manifest's notes.

Seeded; each model trains with one thread so that two can run side by side on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_lib import checkpoints, config, data, metrics  # noqa: E402
from course_lib.models.gan import MNIST_GANS, build_mnist_gan, train_gan  # noqa: E402

SCRIPT = "scripts/train_gans.py"


def evaluate(name: str, gan, n_fid: int = 1000, n_classes: int = 10_000, seed: int = 1) -> dict:
    """Quality numbers of a trained MNIST GAN (samples mapped from [-1, 1] to [0, 1] for the metrics)."""
    g = torch.Generator().manual_seed(seed)
    test = data.mnist("test", value_range="unit")
    conditional = gan.num_classes is not None
    labels = torch.arange(n_classes) % 10 if conditional else None
    fake = (gan.sample(n_classes, labels=labels, generator=g).cpu() + 1) / 2
    fake = fake.clamp(0, 1)
    n_fid = min(n_fid, len(test.x))
    fid = metrics.fid(test.x[:n_fid], fake[:n_fid])
    pr = metrics.precision_recall(test.x[:n_fid], fake[:n_fid])
    hist = metrics.class_histogram(fake)
    out = {
        "fid": fid,
        "fid_ratio": metrics.ratio_to_floor(fid, "fid", n_fid),
        "n_fid": n_fid,
        "precision": pr.precision,
        "recall": pr.recall,
        "class_min": float(hist.fractions.min()),
        "class_max": float(hist.fractions.max()),
        "classes_covered": int(hist.num_covered),
    }
    if conditional:
        predicted = metrics.extract_logits(fake).argmax(1)
        out["label_agreement"] = float((predicted == labels).float().mean())
    return out


def _report(step: int, gan, history) -> None:
    if step % 500 == 0:
        row = ", ".join(f"{k} {v[-1]:.3g}" for k, v in history.values.items())
        print(f"  step {step}: {row}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(MNIST_GANS), action="append")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-time budget per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dry-run", action="store_true", help="train and evaluate, ship nothing")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = data.mnist("train", value_range="symmetric")
    for name in args.only or list(MNIST_GANS):
        spec = MNIST_GANS[name]
        generator = config.seed_everything(0)
        gan = build_mnist_gan(name)
        loader = data.InMemoryLoader(train.x, train.y, batch_size=spec["batch_size"], device="cpu", seed=0)
        started = time.perf_counter()
        result = train_gan(gan, loader, steps=args.steps, loss=spec["loss"], lr_g=spec["lr_g"], lr_d=spec["lr_d"],
                           betas=spec["betas"], n_critic=spec["n_critic"], ema_decay=spec["ema_decay"], device="cpu",
                           log_every=100, generator=generator, desc=name, time_limit=60 * args.minutes,
                           progress=sys.stderr.isatty(), callback=_report)
        result.ema.copy_to(gan.generator)
        scores = evaluate(name, gan)
        minutes = (time.perf_counter() - started) / 60
        print(name, f"{result.steps} steps, {minutes:.1f} min:", json.dumps(scores, indent=1), flush=True)
        if args.dry_run:
            continue
        notes = (f"{spec['loss']} loss, DCGAN width {spec['width']}, latent {spec['latent_dim']}, "
                 f"{'conditional (projection D), ' if spec['num_classes'] else ''}batch {spec['batch_size']}, "
                 f"Adam lr {spec['lr_g']} betas {spec['betas']}, generator = EMA {spec['ema_decay']}; "
                 f"{result.steps} D steps in {minutes:.0f} min on 1 CPU thread. Eval (EMA G): "
                 + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))
        entry = checkpoints.save_for_shipping(name, gan.state_dict(), script=SCRIPT,
                                              data="embedded MNIST train split (4,000 digits), [-1, 1]",
                                              steps=int(result.steps), notes=notes)
        print("shipped", name, entry["sha256"][:12], entry["bytes"], "bytes", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
