r"""Train a DDPM noise predictor on MNIST and (optionally) ship it as ``course_lib/checkpoints/ddpm_mnist.pt``.

    .venv/bin/python scripts/train_diffusion_mnist.py --ship                  # the shipped checkpoint
    .venv/bin/python scripts/train_diffusion_mnist.py --recipe live --steps 500 --snapshot-every 100 --out /tmp/run
    .venv/bin/python scripts/train_diffusion_mnist.py --recipe plain --steps 4000 --snapshot-every 500 --out /tmp/plain

Recipes (:data:`RECIPES`): ``"live"`` is what notebook 08 trains on the CPU in a few minutes; ``"shipped"`` is
the same model and objective trained longer (on a GPU, if there is one, with mixed precision); ``"plain"`` is
the textbook baseline of ``bench/diffusion_baseline.py`` (linear schedule, no EMA, uniform loss weights, a
plain two-level U-Net). Every recipe is a noise schedule, a :class:`~course_lib.nn.unet.UNet` preset and the
arguments of :func:`course_lib.models.diffusion.diffusion_loss` and :func:`course_lib.train.fit`.

Snapshots (``--snapshot-every``) let the benchmarks draw quality-versus-time curves: training runs in
chunks, each resumed from :func:`~course_lib.train.fit`'s checkpoint (so the chunks add up to one
uninterrupted run), and after each chunk ``snapshot_<step>.pt`` holds the weights the sampler uses (the EMA
when there is one) and ``log.json`` the cumulative wall and CPU seconds.

Data: the training split of :func:`course_lib.data.mnist` (4,000 embedded digits, or 60,000 when full MNIST
is cached) in [-1, 1]; the 1,000 test digits are never used here. ``--threads 1`` is recommended on a busy
CPU (and is what the recorded timings used).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from course_lib import checkpoints, config, data  # noqa: E402
from course_lib import device as _device  # noqa: E402
from course_lib.models import ddpm_mnist, diffusion  # noqa: E402
from course_lib.nn.unet import UNet, unet_config  # noqa: E402
from course_lib.train import fit  # noqa: E402

SCRIPT = "scripts/train_diffusion_mnist.py"
CHECKPOINT_NAME = ddpm_mnist.CHECKPOINT

#: Each recipe: schedule name and T, U-Net preset, loss options, fit options, default steps.
#: ``anneal_steps``: the learning rate falls linearly to 0 over the last ``anneal_steps`` steps (0: constant).
#: ``"live"`` and ``"shipped"`` share the shipped model's schedule, U-Net and loss (course_lib.models.ddpm_mnist).
_COURSE_MODEL = dict(schedule=ddpm_mnist.SCHEDULE_NAME, T=ddpm_mnist.T, unet=ddpm_mnist.UNET_PRESET,
                     prediction=ddpm_mnist.PREDICTION, weighting=ddpm_mnist.WEIGHTING)
RECIPES: dict[str, dict] = {
    "live": dict(_COURSE_MODEL, batch_size=64, lr=2e-3, ema_decay=0.999, clip_grad_norm=1.0, anneal_steps=0,
                 steps=2000),
    "shipped": dict(_COURSE_MODEL, batch_size=64, lr=2e-3, ema_decay=0.999, clip_grad_norm=1.0, anneal_steps=1500,
                    steps=4500),
    "plain": dict(schedule="linear", T=1000, unet="plain-two-level", prediction="eps", weighting="none",
                  batch_size=128, lr=2e-3, ema_decay=None, clip_grad_norm=None, anneal_steps=0, steps=4000),
}
#: Recipe entries that may differ when ``--resume`` continues a run with another recipe (e.g. live -> shipped).
RESUMABLE_DIFFERENCES = {"steps", "anneal_steps"}


def build_model(recipe: dict) -> UNet:
    """The recipe's U-Net (a fresh initialisation: seed first for reproducibility)."""
    return UNet(1, **unet_config(recipe["unet"]))


def build_schedule(recipe: dict) -> diffusion.NoiseSchedule:
    return diffusion.NoiseSchedule.from_name(recipe["schedule"], recipe["T"])


def make_loss(recipe: dict, schedule: diffusion.NoiseSchedule):
    """``loss_fn(model, batch)`` for :func:`course_lib.train.fit`: the recipe's denoising loss on ``batch = (x0, y)``."""

    def loss_fn(model, batch):
        x0 = batch[0]
        return diffusion.diffusion_loss(model, x0, schedule, prediction=recipe["prediction"],
                                        weighting=recipe["weighting"])

    return loss_fn


def train(recipe_name: str, *, steps: int | None = None, out: Path, snapshot_every: int | None = None,
          seed: int = 0, device=None, amp: bool = False, progress: bool = True, overrides: dict | None = None,
          resume: bool = False):
    """Train ``recipe_name`` for ``steps``; write snapshots and ``log.json`` under ``out``; return (result, log).

    ``resume=True`` continues the run in ``out`` (its ``train_state.pt`` and ``log.json``) up to ``steps``, e.g.
    to turn a ``"live"`` run into the longer ``"shipped"`` one: the recipes must agree on everything but
    ``steps``, and the cumulative times continue.
    """
    recipe = dict(RECIPES[recipe_name], **(overrides or {}))
    steps = recipe["steps"] = steps or recipe["steps"]
    dev = _device.get_device(device)
    out.mkdir(parents=True, exist_ok=True)
    config.seed_everything(seed)
    schedule = build_schedule(recipe)
    model = build_model(recipe)
    x = data.mnist("train", value_range="symmetric")
    loader = data.InMemoryLoader(x.x, x.y, batch_size=recipe["batch_size"], device=dev, seed=seed)
    loss_fn = make_loss(recipe, schedule)
    ckpt = out / "train_state.pt"
    log = {"recipe": recipe_name, "config": recipe, "parameters": model.num_parameters(), "device": str(dev),
           "threads": torch.get_num_threads(), "data": f"mnist train ({len(x.x)} digits, {x.source})",
           "snapshots": []}
    wall = cpu = 0.0
    done = 0
    if resume and ckpt.exists() and (out / "log.json").exists():
        previous = json.loads((out / "log.json").read_text())
        differ = {k for k in recipe if k not in RESUMABLE_DIFFERENCES and previous["config"].get(k) != recipe[k]}
        if differ:
            raise SystemExit(f"cannot resume {out}: its recipe differs in {sorted(differ)}")
        log["snapshots"] = previous["snapshots"]
        log["resumed_from"] = previous["recipe"]
        last = previous["snapshots"][-1]
        done, wall, cpu = last["step"], last["wall_seconds"], last["cpu_seconds"]
    elif ckpt.exists():
        ckpt.unlink()
    chunk = snapshot_every or steps
    result = None
    # fit's default optimizer, made here so that the learning rate can be annealed from the callback
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe["lr"],
                                  weight_decay=0.0)
    anneal = recipe.get("anneal_steps", 0)

    def lr_at(step: int) -> float:
        """Constant, then linear decay to 0 over the last ``anneal`` steps (updated every 50 steps)."""
        if anneal <= 0 or step < steps - anneal:
            return recipe["lr"]
        return recipe["lr"] * max(0.0, (steps - step) / anneal)

    def set_lr(step: int, *_) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)

    while done < steps:
        target = min(steps, done + chunk)
        w0, c0 = time.perf_counter(), time.process_time()
        result = fit(model, loss_fn, loader, steps=target, optimizer=optimizer, ema_decay=recipe["ema_decay"],
                     clip_grad_norm=recipe["clip_grad_norm"], device=dev, amp=amp, log_every=50,
                     checkpoint_path=ckpt, resume=True, progress=progress, desc=f"{recipe_name} DDPM",
                     callback=set_lr if anneal > 0 else None)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        done = target
        weights = (result.ema.module if result.ema is not None else result.model).state_dict()
        snap = out / f"snapshot_{done}.pt"
        torch.save({k: v.detach().cpu() for k, v in weights.items()}, snap)
        log["snapshots"].append({"step": done, "file": snap.name, "wall_seconds": round(wall, 1),
                                 "cpu_seconds": round(cpu, 1), "loss": result.history.last("loss")})
        log["history"] = result.history.as_dict()
        (out / "log.json").write_text(json.dumps(log, indent=1))
        print(f"[{recipe_name}] step {done}/{steps}: wall {wall:.0f} s, cpu {cpu:.0f} s, "
              f"loss {result.history.last('loss'):.4f}", flush=True)
    return result, log


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="shipped", choices=sorted(RECIPES))
    parser.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--out", type=Path, default=None, help="folder for snapshots and log.json")
    parser.add_argument("--snapshot-every", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--amp", action="store_true", help="mixed precision (GPU only; a no-op on the CPU)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--ship", action="store_true", help=f"save the final weights as {CHECKPOINT_NAME}")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out (same recipe but steps)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe entry, e.g. --set prediction=v --set lr=1e-3 (for experiments)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in RECIPES[args.recipe]:
            parser.error(f"--set {item}: unknown key {key!r}; recipe keys: {sorted(RECIPES[args.recipe])}")
        overrides[key] = json.loads(value) if value[:1] in "0123456789-[{tfn" else value
    if args.ship and overrides:
        parser.error("--ship uses the recipe as written; drop --set")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or (config.cache_dir() / "runs" / f"ddpm_{args.recipe}")
    result, log = train(args.recipe, steps=args.steps, out=out, snapshot_every=args.snapshot_every, seed=args.seed,
                        amp=args.amp, progress=not args.no_progress, overrides=overrides, resume=args.resume)
    if args.ship:
        if args.recipe != "shipped":
            parser.error("--ship is for --recipe shipped (the notebook rebuilds that architecture)")
        recipe = log["config"]
        last = log["snapshots"][-1]
        state = torch.load(out / last["file"], map_location="cpu", weights_only=True)
        entry = checkpoints.save_for_shipping(
            CHECKPOINT_NAME, state, script=SCRIPT, data=log["data"], steps=last["step"],
            notes=(f"EMA weights (decay {recipe['ema_decay']}) of UNet preset {recipe['unet']!r} "
                   f"({log['parameters']:,} parameters); {recipe['schedule']} schedule, T={recipe['T']}, "
                   f"{recipe['prediction']}-prediction, {recipe['weighting']} loss weighting; AdamW lr {recipe['lr']} "
                   f"(linear decay to 0 over the last {recipe['anneal_steps']} steps), "
                   f"batch {recipe['batch_size']}, clip {recipe['clip_grad_norm']}, seed {args.seed}; "
                   f"trained on {log['device']} ({log['threads']} threads) in {last['wall_seconds']:.0f} s wall, "
                   f"{last['cpu_seconds']:.0f} s CPU."),
        )
        print(f"shipped {CHECKPOINT_NAME}: {entry['bytes']:,} bytes, sha256 {entry['sha256'][:12]}...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
