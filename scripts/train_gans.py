r"""Train the MNIST GANs that notebooks 06 and 07 load, evaluate them, and ship them as checkpoints.

    .venv/bin/python scripts/train_gans.py                         # every GAN in MNIST_GANS, then ship
    .venv/bin/python scripts/train_gans.py --only dcgan_mnist --minutes 5 --dry-run   # train + evaluate only

For each name in :data:`course_lib.models.gan.MNIST_GANS` (``dcgan_mnist``: DCGAN with the non-saturating
loss; ``cgan_mnist``: the same networks conditioned on the digit, with a projection discriminator):

1. trains with :func:`course_lib.models.gan.train_gan` on the **training split only** (the 4,000 embedded
   digits, in [-1, 1]) for ``--steps`` discriminator steps or ``--minutes`` of wall time, whichever comes
   first (the manifest records the steps actually done), keeping an EMA of the generator (decay 0.999);
2. selects the snapshot to ship: over the second half of the time budget, every ``--select-every`` steps,
   2,000 samples of the EMA generator (a seed of their own) are scored: their classifier-FID against the
   **training** digits, and whether every class holds 7%-13% of them. The snapshot kept is the lowest-FID one
   among those that pass the class check (among all, if none does). GAN samples drift between snapshots, e.g.
   in their class mix, so this is early stopping on a validation score; the test split and the evaluation
   samples of step 3 take no part in it, and the manifest's notes say what was chosen;
3. evaluates the EMA generator against the held-out test split with the metrics of ``course_lib.metrics``:
   classifier-FID of 1,000 samples vs the 1,000 test digits as a ratio to the real-vs-real floor at N = 1,000,
   precision/recall, and the class histogram of 10,000 samples; for the conditional GAN also the share of
   samples the MNIST classifier reads as the requested digit;
4. ships ``{generator (EMA weights), discriminator}`` with :func:`course_lib.checkpoints.save_for_shipping`,
   the numbers in the manifest's notes.

Seeded; each model trains with one thread so that two can run side by side on a 2-core machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from course_lib import checkpoints, config, data, metrics  # noqa: E402
from course_lib.models.gan import MNIST_GANS, build_mnist_gan, train_gan  # noqa: E402
from course_lib.train import EMA  # noqa: E402

SCRIPT = "scripts/train_gans.py"
CLASS_SHARE = (0.07, 0.13)  # the bounds on each class's share of an unconditional GAN's samples


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


@dataclass
class Snapshot:
    """One scored snapshot: training ``step``, training-split ``fid``, whether its classes were ``balanced``
    (all within :data:`CLASS_SHARE`), and its ``state`` (the GAN's state_dict with the EMA generator's weights)."""

    step: int
    fid: float
    balanced: bool
    state: dict


class SnapshotSelector:
    """Callback for :func:`train_gan`: after ``start_seconds``, every ``every`` steps, score the EMA generator and
    keep the best snapshot.

    The score of a snapshot: classifier-FID of ``n`` samples against ``n`` training digits (in [0, 1]), and whether
    the classifier reads every class in 7%-13% of the same samples. Snapshots that pass the class check come
    first, then the lower FID. The samples use their own seed; the test split takes no part.
    """

    def __init__(self, ema: EMA, train_x: torch.Tensor, *, every: int, start_seconds: float, n: int = 2000,
                 seed: int = 100):
        self.ema, self.real, self.every, self.start, self.n, self.seed = ema, train_x[:n], every, start_seconds, n, seed
        self.started = time.perf_counter()
        self.best: Snapshot | None = None
        self.scored: list[Snapshot] = []

    def score(self, gan) -> tuple[float, bool, str]:
        """``(fid, balanced, summary)``: training-split FID of the EMA generator's samples, whether every class
        holds 7%-13% of them (read by the MNIST classifier), and a printable line."""
        labels = torch.arange(self.n) % 10 if gan.num_classes is not None else None
        g = torch.Generator().manual_seed(self.seed)
        z = torch.randn(self.n, gan.generator.latent_dim, generator=g)
        with torch.no_grad():
            fake = ((self.ema.module(z, labels).cpu() + 1) / 2).clamp(0, 1)
        fid = metrics.fid(self.real, fake)
        shares = metrics.class_histogram(fake).fractions
        balanced = bool(shares.min() >= CLASS_SHARE[0] and shares.max() <= CLASS_SHARE[1])
        return fid, balanced, f"training-split FID {fid:.3f}, class shares {shares.min():.1%}-{shares.max():.1%}"

    def consider(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` if it beats the best so far: balanced snapshots first, then the lower FID."""
        self.scored.append(snapshot)
        if self.best is None or (not snapshot.balanced, snapshot.fid) < (not self.best.balanced, self.best.fid):
            self.best = snapshot

    def _snapshot(self, step: int, gan, label: str) -> None:
        fid, balanced, summary = self.score(gan)
        print(f"  {label} {step}: {summary}", flush=True)
        state = copy.deepcopy(gan.state_dict())
        state.update({f"generator.{k}": v.detach().clone() for k, v in self.ema.module.state_dict().items()})
        self.consider(Snapshot(step, fid, balanced, state))

    def __call__(self, step: int, gan, history) -> None:
        _report(step, gan, history)
        if step % self.every == 0 and time.perf_counter() - self.started >= self.start:
            self._snapshot(step, gan, "snapshot at step")

    def finish(self, gan, step: int) -> str:
        """Score the final weights too (unless just scored), load the best snapshot into ``gan``, say what was chosen."""
        if not self.scored:
            return f"the last snapshot (step {step}; none was scored)"
        if self.scored[-1].step != step:
            self._snapshot(step, gan, "final weights, step")
        gan.load_state_dict(self.best.state)
        n_balanced = sum(s.balanced for s in self.scored)
        return (f"the snapshot at step {self.best.step} of {step}: of {len(self.scored)} snapshots scored on "
                f"{self.n:,} samples of a selection seed, {n_balanced} had every class within 7%-13%, and this is the "
                f"one of {'those' if self.best.balanced else 'all'} with the lowest training-split FID "
                f"({self.best.fid:.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(MNIST_GANS), action="append")
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-time budget per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--select-every", type=int, default=1000,
                        help="steps between scored snapshots in the second half of the budget (0: ship the last)")
    parser.add_argument("--dry-run", action="store_true", help="train and evaluate, ship nothing")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="write the checkpoint and a manifest there instead of into course_lib/checkpoints")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train = data.mnist("train", value_range="symmetric")
    for name in args.only or list(MNIST_GANS):
        spec = MNIST_GANS[name]
        generator = config.seed_everything(0)
        gan = build_mnist_gan(name)
        loader = data.InMemoryLoader(train.x, train.y, batch_size=spec["batch_size"], device="cpu", seed=0)
        started = time.perf_counter()
        ema = EMA(gan.generator, spec["ema_decay"], warmup=True)
        selector = (SnapshotSelector(ema, (train.x + 1) / 2, every=args.select_every, start_seconds=30 * args.minutes)
                    if args.select_every else None)
        result = train_gan(gan, loader, steps=args.steps, loss=spec["loss"], lr_g=spec["lr_g"], lr_d=spec["lr_d"],
                           betas=spec["betas"], n_critic=spec["n_critic"], ema=ema, device="cpu",
                           log_every=100, generator=generator, desc=name, time_limit=60 * args.minutes,
                           progress=sys.stderr.isatty(), callback=selector or _report)
        result.ema.copy_to(gan.generator)
        chosen, shipped_step = f"the last snapshot (step {result.steps})", result.steps
        if selector is not None:
            chosen = selector.finish(gan, result.steps)
            shipped_step = selector.best.step if selector.best is not None else result.steps
        print(name, "ships", chosen, flush=True)
        scores = evaluate(name, gan)
        minutes = (time.perf_counter() - started) / 60
        print(name, f"{result.steps} steps, {minutes:.1f} min, shipping step {shipped_step}:", json.dumps(scores, indent=1), flush=True)
        if args.dry_run:
            continue
        notes = (f"{spec['loss']} loss, DCGAN width {spec['width']}, latent {spec['latent_dim']}, "
                 f"{'conditional (projection D), ' if spec['num_classes'] else ''}batch {spec['batch_size']}, "
                 f"Adam lr {spec['lr_g']} betas {spec['betas']}, generator = EMA {spec['ema_decay']}; "
                 f"{result.steps} D steps in {minutes:.0f} min on 1 CPU thread; ships {chosen}. Eval (EMA G): "
                 + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))
        entry = checkpoints.save_for_shipping(name, gan.state_dict(), script=SCRIPT,
                                              data="embedded MNIST train split (4,000 digits), [-1, 1]",
                                              steps=int(shipped_step), notes=notes, directory=args.checkpoint_dir)
        print("shipped", name, entry["sha256"][:12], entry["bytes"], "bytes", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
