r"""The course's DDPM recipe against a plain textbook recipe: how much sooner does it reach the same sample quality?

    .venv/bin/python bench/diffusion_baseline.py --threads 1          # trains both (hours of CPU), then compares
    .venv/bin/python bench/diffusion_baseline.py --plain-run /tmp/ddpm_runs/plain --course-run /tmp/ddpm_runs/live

**The plain recipe (the baseline).** What a first DDPM implementation typically looks like: the linear schedule
with T = 1000, noise prediction with uniform weights (Ho et al.'s :math:`L_\text{simple}`), a 0.3M-parameter
two-level U-Net (``"plain-two-level"``: 22 channels at 28x28, 44 at 14x14, no attention), AdamW at
:math:`2\cdot10^{-3}`, batches of 128, no EMA: ``scripts/train_diffusion_mnist.py --recipe plain`` (4,000 steps).

**The course's recipe** (notebook 08's live training, ``--recipe live``): the cosine schedule, Min-SNR-5 loss
weights, the ``"mnist-small"`` U-Net (widths 16/32/64 at 28/14/7, attention at 7x7: cheap at full resolution),
batches of 64, gradient clipping at 1, and sampling from an EMA of the weights (decay 0.999, with warm-up).

Both runs write snapshots (the weights a sampler uses: the EMA for the course recipe, the raw weights for the
plain one) with the cumulative **CPU time of the training process** (``--threads 1``: on a machine shared with
other jobs the CPU time is a far steadier clock than the wall clock; with one thread it is the compute cost).
Each snapshot is scored with the same sampler (DDIM, eta = 0, ``--steps`` steps, ``--n`` samples, the same
seed) by the classifier-FID against the 1,000 held-out test digits, as a ratio to the real-vs-real floor.

**The comparison.** The plain recipe's best FID over its run is the bar (for the final plain snapshot DDPM-1000
is also tried, in case the ancestral sampler suits the un-averaged weights better); the course recipe's time to
reach it is interpolated (log-linearly in FID between its snapshots). The speed-up is the ratio of the CPU
times. Results: section "Diffusion: course recipe vs plain recipe" of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "bench", ROOT / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from _results import markdown_table, record  # noqa: E402
from diffusion import Cache, fmt, load_unet, sample, score  # noqa: E402  (bench/diffusion.py)

from course_lib import config  # noqa: E402
from course_lib.models import diffusion as dm  # noqa: E402

SECTION = "Diffusion: course recipe vs plain recipe (notebook 08)"


def ensure_run(recipe: str, run: Path | None, steps: int, every: int, *, train: bool = True) -> Path:
    """The run folder of ``recipe``; trains it (resumably) with scripts/train_diffusion_mnist.py if incomplete."""
    import train_diffusion_mnist as script

    run = run or config.cache_dir() / "runs" / f"ddpm_{recipe}"
    log_file = run / "log.json"
    done = json.loads(log_file.read_text())["snapshots"][-1]["step"] if log_file.exists() else 0
    if done < steps and train:
        print(f"training the {recipe!r} recipe in {run} ({done} -> {steps} steps; this takes a while on a CPU)")
        script.train(recipe, steps=steps, out=run, snapshot_every=every, resume=True, progress=False)
    return run


def curve(run: Path, *, n: int, steps: int, cache: Cache, max_step: int | None = None) -> list[dict]:
    """Score every snapshot of ``run``: ``[{step, cpu, wall, fid, fid_ratio, precision, recall}, ...]``."""
    log = json.loads((run / "log.json").read_text())
    schedule = dm.NoiseSchedule.from_name(log["config"]["schedule"], log["config"]["T"])
    points = []
    for snap in log["snapshots"]:
        if max_step is not None and snap["step"] > max_step:
            continue
        key = f"{run.resolve()}|{snap['step']}|{snap['cpu_seconds']}|ddim{steps}|{n}"
        result = cache.get(key)
        if result is None:
            model = load_unet(log["config"]["unet"], state_path=run / snap["file"])
            fake, _, _ = sample(model, schedule, n, "ddim", steps)
            result = score(fake)
            cache.put(key, result)
            print(f"{log['recipe']} step {snap['step']}: FID {result['fid']:.2f} (ratio {fmt(result['fid_ratio'], 1)})",
                  flush=True)
        points.append(dict(result, step=snap["step"], cpu=snap["cpu_seconds"], wall=snap["wall_seconds"]))
    return points


def time_to_reach(points: list[dict], fid: float) -> float | None:
    """CPU seconds at which the FID curve first gets down to ``fid`` (log-linear interpolation between snapshots)."""
    previous = None
    for p in points:
        if p["fid"] <= fid:
            if previous is None:
                return p["cpu"]
            f0, f1 = math.log(previous["fid"]), math.log(p["fid"])
            w = (f0 - math.log(fid)) / (f0 - f1) if f0 != f1 else 1.0
            return previous["cpu"] + w * (p["cpu"] - previous["cpu"])
        previous = p
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plain-run", type=Path, default=None)
    parser.add_argument("--course-run", type=Path, default=None)
    parser.add_argument("--plain-steps", type=int, default=4000)
    parser.add_argument("--course-steps", type=int, default=3000)
    parser.add_argument("--snapshot-every", type=int, default=250)
    parser.add_argument("--n", type=int, default=250, help="samples per snapshot (the floor is recorded for >= 250)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps used to score every snapshot")
    parser.add_argument("--n-ddpm", type=int, default=250, help="samples for DDPM-1000 on the final plain snapshot")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--no-train", action="store_true", help="only score the snapshots that exist")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cache = Cache(args.cache or config.cache_dir() / "bench" / "diffusion_baseline.json")

    plain_run = ensure_run("plain", args.plain_run, args.plain_steps, max(args.snapshot_every, 500),
                           train=not args.no_train)
    course_run = ensure_run("live", args.course_run, args.course_steps, args.snapshot_every, train=not args.no_train)
    plain = curve(plain_run, n=args.n, steps=args.steps, cache=cache, max_step=args.plain_steps)
    course = curve(course_run, n=args.n, steps=args.steps, cache=cache, max_step=args.course_steps)

    # the bar: the plain recipe's best FID, also trying DDPM-1000 on its last snapshot
    plain_log = json.loads((plain_run / "log.json").read_text())
    last = plain_log["snapshots"][-1]
    key = f"plain-ddpm|{plain_run.resolve()}|{last['step']}|{last['cpu_seconds']}|{args.n_ddpm}"
    ddpm_result = cache.get(key)
    if ddpm_result is None and args.n_ddpm > 0:
        model = load_unet(plain_log["config"]["unet"], state_path=plain_run / last["file"])
        schedule = dm.NoiseSchedule.from_name(plain_log["config"]["schedule"], plain_log["config"]["T"])
        fake, _, _ = sample(model, schedule, args.n_ddpm, "ddpm")
        ddpm_result = score(fake)
        cache.put(key, ddpm_result)
    bar_point = min(plain, key=lambda p: p["fid"])
    bar, bar_how = bar_point["fid"], f"DDIM-{args.steps} at step {bar_point['step']:,}"
    if ddpm_result is not None and ddpm_result["fid"] < bar:
        bar, bar_how = ddpm_result["fid"], f"DDPM-1000 at step {last['step']:,}"
    plain_time = time_to_reach(plain, bar) if "DDIM" in bar_how else last["cpu_seconds"]
    course_time = time_to_reach(course, bar)

    rows = []
    for name, points in (("plain", plain), ("course (live)", course)):
        for p in points:
            rows.append([name, f"{p['step']:,}", f"{p['cpu']:.0f}", fmt(p["fid"]), fmt(p["fid_ratio"], 1),
                         fmt(p["precision"]), fmt(p["recall"])])
    table = markdown_table(["recipe", "step", "CPU s (1 thread)", f"FID (DDIM-{args.steps}, N={args.n})",
                            "FID / floor", "precision", "recall"], rows)
    if ddpm_result is not None:
        table += (f"\n\nPlain recipe, final snapshot, DDPM-1000 (N={args.n_ddpm}): FID {ddpm_result['fid']:.2f} "
                  f"({fmt(ddpm_result['fid_ratio'], 1)} x floor), precision {ddpm_result['precision']:.2f}, "
                  f"recall {ddpm_result['recall']:.2f}.")
    if course_time is not None:
        verdict = (f"**The course recipe reaches the plain recipe's best FID ({bar:.2f}, {bar_how}; plain needed "
                   f"{plain_time:.0f} CPU s) after {course_time:.0f} CPU s: {plain_time / course_time:.1f}x sooner** "
                   f"(target: >= 4x).")
    else:
        verdict = (f"The course recipe did not reach the plain recipe's best FID ({bar:.2f}, {bar_how}) within its "
                   f"{course[-1]['step']:,} steps.")
    plain_cfg, course_cfg = plain_log["config"], json.loads((course_run / "log.json").read_text())["config"]
    notes = (f"{verdict}\n\nPlain recipe: {json.dumps(plain_cfg)}. Course recipe: {json.dumps(course_cfg)}. "
             "Times are the CPU seconds of the single-threaded training process up to each snapshot (sampling and "
             "scoring excluded); the machine was shared with other jobs, so wall-clock times were several times "
             "longer and are not used. FID is the classifier-FID against the 1,000 held-out test digits; with "
             f"N = {args.n} per snapshot its noise is a few tenths. Produced by `bench/diffusion_baseline.py`.")
    print(table)
    print(verdict)
    if not args.no_record:
        record(SECTION, table, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
