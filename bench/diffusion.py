r"""DDPM on MNIST: sample quality versus sampler and number of steps, for the shipped checkpoint and the live CPU recipe.

    .venv/bin/python bench/diffusion.py --threads 1                                   # everything (slow on a CPU)
    .venv/bin/python bench/diffusion.py --live-run /tmp/ddpm_runs/live --n 500 --n-ddpm 250

For each model (the shipped ``ddpm_mnist`` checkpoint; the ``"live"`` recipe of notebook 08, i.e. a snapshot of
``scripts/train_diffusion_mnist.py --recipe live --snapshot-every ...``) and each sampler (DDPM with all 1,000
ancestral steps; DDIM with eta = 0 at 10/20/50/100 steps), draw N samples and measure against the 1,000
held-out test digits (never used for training):

* classifier-FID (:func:`course_lib.metrics.evaluate`), and its ratio to the real-vs-real floor at the same
  effective sample size (:func:`course_lib.metrics.floor`; a ratio of 1 = as close as another real sample);
* precision and recall (k = 3, in the same classifier's feature space);
* wall and CPU seconds per 1,000 images of the sampling call.

On a GPU it also measures training throughput (images per second) of the recipe's U-Net with and without
mixed precision (``fit(amp=True)``). Results go to the section "Diffusion on MNIST" of ``bench/RESULTS.md``;
per-configuration results are cached in ``--cache`` (JSON) so that an interrupted run resumes.

Targets (issue of notebooks 08-09): shipped checkpoint FID <= 3x the floor; DDIM-50 within 1.5x of DDPM-1000's
FID; live recipe <= 10x the floor. ``bench/diffusion_baseline.py`` compares the live recipe with a plain one.
The helpers :func:`sample`, :func:`score`, :class:`Cache` are shared with it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "bench", ROOT / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from _results import markdown_table, record  # noqa: E402

from course_lib import checkpoints, data, metrics  # noqa: E402
from course_lib import device as _device  # noqa: E402
from course_lib.models import ddpm_mnist  # noqa: E402
from course_lib.models import diffusion as dm  # noqa: E402
from course_lib.nn.unet import UNet, unet_config  # noqa: E402

SECTION = "Diffusion on MNIST: samplers, steps and time (notebooks 08-09)"
SCHEDULE = (ddpm_mnist.SCHEDULE_NAME, ddpm_mnist.T)  # the live and shipped recipes' schedule


# --------------------------------------------------------------------------------------------------
# helpers shared with bench/diffusion_baseline.py
# --------------------------------------------------------------------------------------------------


def load_unet(preset: str, *, state_path: Path | None = None, checkpoint: str | None = None) -> UNet:
    """A U-Net of ``preset`` with weights from a snapshot file or a shipped checkpoint name; eval mode."""
    model = UNet(1, **unet_config(preset))
    if checkpoint is not None:
        checkpoints.load_into(model, checkpoint)
    else:
        model.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
    return model.eval()


def sample(model, schedule: dm.NoiseSchedule, n: int, sampler: str, steps: int | None = None, *, seed: int = 0,
           batch: int = 250, device="cpu") -> tuple[torch.Tensor, float, float]:
    """``n`` samples in [0, 1]: ``sampler="ddpm"`` (all T ancestral steps), ``"ddim"`` (eta = 0, ``steps``) or
    ``"ddim-eta1"`` (eta = 1: DDPM's stochastic update on a subsequence of ``steps`` steps).

    Returns ``(samples: (n, 1, 28, 28), wall seconds, process CPU seconds)``.
    """
    g = torch.Generator().manual_seed(seed)
    model = model.to(device)
    out = []
    w0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, n, batch):
        shape = (min(batch, n - start), 1, 28, 28)
        if sampler == "ddpm":
            x = dm.ddpm_sample(model, schedule, shape, clip_x0=True, generator=g, device=device)
        elif sampler in ("ddim", "ddim-eta1"):
            x = dm.ddim_sample(model, schedule, shape, steps=steps, eta=1.0 if sampler == "ddim-eta1" else 0.0,
                               clip_x0=True, generator=g, device=device)
        else:
            raise ValueError(f"unknown sampler {sampler!r}")
        out.append(((x.cpu() + 1) / 2).clamp(0, 1))
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return torch.cat(out), time.perf_counter() - w0, time.process_time() - c0


def score(fake: torch.Tensor) -> dict:
    """FID, its ratio to the real-vs-real floor at the effective N, precision and recall vs the 1,000 test digits."""
    real = data.mnist("test", value_range="unit").x
    report = metrics.evaluate(real, fake)
    return {"n": len(fake), "fid": report.fid, "fid_ratio": report.fid_ratio,
            "precision": report.precision_recall.precision, "recall": report.precision_recall.recall,
            "notes": list(report.notes)}


class Cache:
    """Results keyed by a string in a JSON file, so that re-running a benchmark only computes what is new."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str):
        return self.data.get(key)

    def put(self, key: str, value) -> None:
        self.data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True))


def fmt(x, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


# --------------------------------------------------------------------------------------------------
# GPU throughput
# --------------------------------------------------------------------------------------------------


def training_throughput(preset: str, *, amp: bool, batch_size: int = 128, steps: int = 60, device=None) -> float:
    """Training images per second of the recipe's loss on ``preset`` (after a warm-up), on ``device``."""
    from course_lib.train import fit

    dev = _device.get_device(device)
    schedule = dm.NoiseSchedule.from_name(*SCHEDULE)
    model = UNet(1, **unet_config(preset))
    x = data.mnist("train", value_range="symmetric").x
    loader = data.InMemoryLoader(x, batch_size=batch_size, device=dev)

    def loss_fn(m, b):
        return dm.diffusion_loss(m, b[0], schedule, weighting="min_snr")

    fit(model, loss_fn, loader, steps=10, device=dev, amp=amp, progress=False)  # warm-up (kernels, allocator)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fit(model, loss_fn, loader, steps=steps, device=dev, amp=amp, progress=False)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def target_verdicts(results: dict, labels: list[str]) -> list[str]:
    """The issue's targets, checked on ``results[(model label, sampler, steps)]``: one sentence per target."""
    out = []
    shipped = next((lab for lab in labels if lab.startswith("shipped")), None)
    live = next((lab for lab in labels if lab.startswith("live")), None)
    ddpm = results.get((shipped, "ddpm", 1000))
    ddim50 = results.get((shipped, "ddim", 50))
    if ddpm is not None and ddpm["fid_ratio"] is not None:
        ok = "met" if ddpm["fid_ratio"] <= 3 else "NOT met"
        out.append(f"**Targets.** Shipped checkpoint, DDPM-1000: {ddpm['fid_ratio']:.1f}x the floor (target <= 3x: {ok}).")
    if ddpm is not None and ddim50 is not None:
        ratio = ddim50["fid"] / ddpm["fid"]
        ok = "met" if ratio <= 1.5 else "NOT met"
        out.append(f"DDIM-50 FID / DDPM-1000 FID = {ratio:.2f} (target <= 1.5: {ok}).")
    for sampler, name in (("ddim", "DDIM-50"), ("ddim-eta1", "DDIM-50 with eta = 1 (notebook 08's sampler)")):
        live50 = results.get((live, sampler, 50))
        if live50 is not None and live50["fid_ratio"] is not None:
            ok = "met" if live50["fid_ratio"] <= 10 else "NOT met"
            out.append(f"Live recipe, {name}: {live50['fid_ratio']:.1f}x the floor (target <= 10x: {ok}).")
    return out


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live-run", type=Path, default=None,
                        help="folder of a `train_diffusion_mnist.py --recipe live` run (its snapshots and log.json)")
    parser.add_argument("--live-step", type=int, default=None,
                        help="which snapshot stands for the notebook's live training (default: the last)")
    parser.add_argument("--n", type=int, default=1000, help="samples per DDIM configuration")
    parser.add_argument("--n-ddpm", type=int, default=500, help="samples for DDPM-1000 (costly on a CPU)")
    parser.add_argument("--ddim-steps", type=int, nargs="+", default=[10, 20, 50, 100],
                        help="DDIM (eta = 0) step counts; DDIM-50 with eta = 1 is always measured too")
    parser.add_argument("--skip-ddpm", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="results cache (default: in the course cache dir)")
    parser.add_argument("--no-record", action="store_true", help="print the table, do not write RESULTS.md")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = _device.get_device()
    schedule = dm.NoiseSchedule.from_name(*SCHEDULE)
    from course_lib import config

    cache = Cache(args.cache or config.cache_dir() / "bench" / "diffusion.json")

    models: list[tuple[str, str, callable]] = []
    notes: list[str] = []
    if "ddpm_mnist" in checkpoints.names():
        entry = checkpoints.manifest()["ddpm_mnist"]
        models.append(("shipped `ddpm_mnist`", f"shipped-{entry['sha256'][:12]}",
                       lambda: load_unet(ddpm_mnist.UNET_PRESET, checkpoint=ddpm_mnist.CHECKPOINT)))
        notes.append(f"Shipped checkpoint: {entry['steps']:,} steps; {entry['notes']}")
    else:
        notes.append("No shipped `ddpm_mnist` checkpoint: run `scripts/train_diffusion_mnist.py --ship` first.")
    if args.live_run is not None:
        log = json.loads((args.live_run / "log.json").read_text())
        snaps = {s["step"]: s for s in log["snapshots"]}
        step = args.live_step or max(snaps)
        snap = snaps[step]
        models.append((f"live recipe, {step:,} steps", f"live-{step}-{snap['cpu_seconds']}",
                       lambda: load_unet(log["config"]["unet"], state_path=args.live_run / snap["file"])))
        notes.append(f"Live recipe: `{log['recipe']}` recipe of scripts/train_diffusion_mnist.py, snapshot at step "
                     f"{step:,}, reached after {snap['cpu_seconds']:.0f} s of 1-thread CPU time "
                     f"({snap['wall_seconds']:.0f} s wall on a shared machine).")

    configs = ([] if args.skip_ddpm else [("DDPM", "ddpm", 1000, args.n_ddpm)]) + \
              [("DDIM", "ddim", s, args.n) for s in args.ddim_steps] + [("DDIM eta=1", "ddim-eta1", 50, args.n)]
    rows, results = [], {}
    for label, key, load in models:
        model = None
        for name, sampler, steps, n in configs:
            ckey = f"{key}|{sampler}|{steps}|{n}|{dev.type}"
            result = cache.get(ckey)
            if result is None:
                model = model or load()
                fake, wall, cpu = sample(model, schedule, n, sampler, steps, device=dev)
                result = dict(score(fake), wall=wall, cpu=cpu)
                cache.put(ckey, result)
                print(f"{label} {name}-{steps}: {result}", flush=True)
            results[(label, sampler, steps)] = result
            rows.append([label, f"{name} {steps}", f"{n:,}", fmt(result["fid"]), fmt(result["fid_ratio"], 1),
                         fmt(result["precision"]), fmt(result["recall"]),
                         fmt(1000 * result["wall"] / n, 0), fmt(1000 * result["cpu"] / n, 0)])
    notes.insert(0, " ".join(target_verdicts(results, [label for label, _, _ in models])))
    header = ["model", "sampler, steps", "N", "FID", "FID / floor", "precision", "recall",
              "wall s / 1k images", "CPU s / 1k images"]
    table = markdown_table(header, rows)

    if dev.type == "cuda":
        tp_rows = []
        for preset in ("mnist-small", "gpu"):
            fp32 = training_throughput(preset, amp=False)
            mixed = training_throughput(preset, amp=True)
            tp_rows.append([preset, f"{fp32:,.0f}", f"{mixed:,.0f}", f"{mixed / fp32:.2f}x"])
        table += "\n\nTraining throughput (batch 128, images/s):\n\n" + markdown_table(
            ["U-Net preset", "fp32", "mixed precision", "speed-up"], tp_rows)
    else:
        notes.append("No GPU in this run: training throughput with and without mixed precision was not measured "
                     "(the script measures it when CUDA is available).")
    notes.append("FID: classifier-FID in the 64-d feature space of the shipped MNIST classifier, against the 1,000 "
                 "held-out test digits; 'FID / floor' divides by the real-vs-real FID at the same effective sample "
                 "size (bench/metrics_floor.py). Timings are of the sampling call only, on the machine above, which "
                 "was shared with other jobs: wall times are inflated, CPU seconds are the steadier measure. "
                 "Produced by `bench/diffusion.py`.")
    print(table)
    if not args.no_record:
        record(SECTION, table, "\n\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
