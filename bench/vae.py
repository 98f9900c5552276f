r"""VAEs and a VQ-VAE on the course's digits: honest likelihoods, sample quality, training time.

**Part 1: VAEs (notebook 04).** For each dataset, architecture (MLP, conv) and objective (the ELBO, the
IWAE bound with k = 10), train a VAE with early stopping on validation data and report on the test split
the negative ELBO and the importance-sampled NLL (K = 5,000 on the 8x8 digits, 1,000 on MNIST), in nats per
image, with bits/dim and wall times.

* **8x8 digits** (``data.digits8x8``, Tomczak's split: 1,000 train / 350 val / 447 test), pixels as 17 grey
  levels with a *categorical* decoder, as in Tomczak's *Deep Generative Modeling* code, so the numbers are
  comparable with its VAE (about 100.5 nats). MLP: 64 -> 256 -> 256 -> 2 x 16 and 16 -> 256 -> 256 -> 64 x 17
  (LeakyReLU); conv: two conv layers (8x8 -> 4x4) and back.
* **MNIST**, the embedded 5,000 digits: the 4,000 training digits split into 3,500 for fitting and 500 for
  validation (a fixed permutation, seed 0); the 1,000 held-out test digits binarised with the fixed seed of
  ``data.mnist("test", value_range="binary")``. Training batches are binarised afresh each step (dynamic
  binarisation); validation digits once, with seed 0. Bernoulli decoder; 32 latents. MLP: 784 -> 512 -> 256
  and back; conv: 28 -> 14 -> 7 and back.

Training: AdamW (lr 1e-3, weight decay 0.5; batch 32 on the 8x8 digits, 64 on MNIST) for 2,500 steps on the
8x8 digits, 10,000 (MLP) or 4,000 (conv) on MNIST, the importance-sampled validation log-likelihood (K = 100)
every ``eval_every`` steps, the best weights kept (``V.BestOnValidation``). The same settings for both
objectives: only the loss differs.

**Part 2: VQ-VAE (notebook 05)** on MNIST (4,000 training digits): the notebook's model and prior, with
test reconstruction error, codebook usage and perplexity over training, the prior's NLL of the test codes,
and the classifier-FID (``course_lib.metrics.fid``, MNIST classifier features) of 1,000 prior samples
against the 1,000 test digits, next to the real-vs-real floor at the same N.

    .venv/bin/python bench/vae.py                        # everything, records bench/RESULTS.md
    .venv/bin/python bench/vae.py --only digits8x8       # runs whose name contains the string
    .venv/bin/python bench/vae.py --record-only          # assemble the table from cached runs
    .venv/bin/python bench/vae.py --quick                # a smoke test: tiny budgets, records nothing

Each run's numbers are cached as JSON in ``config.cache_dir() / "bench_vae"``, so runs can be split over
several processes (``--only``) and assembled with ``--record-only``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import markdown_table, record  # noqa: E402

from course_lib import config, data, metrics, train  # noqa: E402
from course_lib.metrics.likelihood import nats_to_bits_per_dim  # noqa: E402
from course_lib.models import vae as V  # noqa: E402
from course_lib.models import vqvae as Q  # noqa: E402

SECTION_VAE = "VAEs: ELBO and importance-sampled NLL (notebook 04)"
SECTION_VQ = "VQ-VAE on MNIST: reconstructions, codebook usage, prior samples (notebook 05)"
LEVELS = data.DIGITS8X8_LEVELS

# Per dataset: steps, batch size, evaluation period, K of the test NLL (steps per architecture for MNIST,
# where a conv decoder costs ~20x an MLP's on a CPU).
SETTINGS = {
    "digits8x8": dict(steps=2500, batch_size=32, eval_every=100, k_test=5000, k_val=100),
    "mnist": dict(steps={"mlp": 10000, "conv": 4000}, batch_size=64, eval_every=250, k_test=1000, k_val=100),
}
QUICK = {
    "digits8x8": dict(steps=40, batch_size=32, eval_every=20, k_test=20, k_val=5),
    "mnist": dict(steps=40, batch_size=32, eval_every=20, k_test=5, k_val=5),
}
LR, WEIGHT_DECAY, IWAE_K = 1e-3, 0.5, 10


def cache_dir() -> Path:
    path = config.cache_dir() / "bench_vae"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ================================================================================================ data
def load_digits():
    split = {s: data.digits8x8(s, value_range="counts").x for s in ("train", "val", "test")}
    return split["train"], split["val"], split["test"]


def load_mnist():
    full = data.mnist("train", value_range="unit", source="embedded").x
    perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(0))
    fit, val = full[perm[:3500]], full[perm[3500:]]
    val_binary = torch.bernoulli(val, generator=torch.Generator().manual_seed(0))
    test = data.mnist("test", value_range="binary", source="embedded").x
    return fit, val_binary, test


# ============================================================================================== models
def build_vae(dataset: str, arch: str) -> V.VAE:
    if dataset == "digits8x8":
        shape, latent, lik, per_pixel, scale = (1, 8, 8), 16, V.CategoricalLikelihood(LEVELS), LEVELS, 1 / 16
        if arch == "mlp":
            enc = V.MLPEncoder(shape, latent, (256, 256), input_scale=scale)
            dec = V.MLPDecoder(latent, shape, per_pixel, (256, 256))
        else:
            enc = V.ConvEncoder(shape, latent, (32, 64), input_scale=scale)
            dec = V.ConvDecoder(latent, shape, per_pixel, (64, 32))
    else:
        shape, latent, lik = (1, 28, 28), 32, V.BernoulliLikelihood()
        if arch == "mlp":
            enc = V.MLPEncoder(shape, latent, (512, 256))
            dec = V.MLPDecoder(latent, shape, 1, (256, 512))
        else:
            enc = V.ConvEncoder(shape, latent, (16, 32, 32))
            dec = V.ConvDecoder(latent, shape, 1, (32, 32, 16))
    return V.VAE(enc, dec, lik)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# =========================================================================================== part 1
def run_vae(dataset: str, arch: str, objective: str, quick: bool) -> dict:
    s = dict((QUICK if quick else SETTINGS)[dataset])
    if isinstance(s["steps"], dict):
        s["steps"] = s["steps"][arch]
    x_train, x_val, x_test = load_digits() if dataset == "digits8x8" else load_mnist()
    torch.manual_seed(0)
    model = build_vae(dataset, arch)
    gen = torch.Generator().manual_seed(1)
    keeper = V.BestOnValidation(lambda m: m.log_likelihood(x_val, k=s["k_val"], generator=gen).mean(),
                                every=s["eval_every"])
    loader = data.InMemoryLoader(x_train, batch_size=s["batch_size"], device="cpu", seed=0)
    k = IWAE_K if objective == "iwae" else 1
    loss = V.loss_fn(objective, k=k, binarize=(dataset == "mnist"))
    t0 = time.perf_counter()
    c0 = time.process_time()
    result = train.fit(model, loss, loader, steps=s["steps"], lr=LR, weight_decay=WEIGHT_DECAY, device="cpu",
                       log_every=s["eval_every"], callback=keeper, progress=False)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    keeper.restore(model)
    t1 = time.perf_counter()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        elbo = model.elbo(x_test, num_samples=10, generator=g).mean().item()
        ll = model.log_likelihood(x_test, k=s["k_test"], generator=g).mean().item()
    eval_s = time.perf_counter() - t1
    dims = x_test[0].numel()
    out = dict(dataset=dataset, arch=arch, objective=objective, k_train=k, params=count_parameters(model),
               steps=result.steps, best_step=keeper.best_step, neg_elbo=-elbo, nll=-ll,
               bpd=float(nats_to_bits_per_dim(-ll, dims)), k_test=s["k_test"], train_s=train_s,
               train_cpu_s=train_cpu, eval_s=eval_s, val_curve=keeper.scores)
    print(f"  {dataset:9} {arch:4} {objective:4}: -ELBO {-elbo:7.2f}  NLL(K={s['k_test']}) {-ll:7.2f}  "
          f"best step {keeper.best_step:5d}/{result.steps}  train {train_s:6.0f} s (cpu {train_cpu:.0f} s), "
          f"eval {eval_s:5.0f} s", flush=True)
    return out


# =========================================================================================== part 2
VQ_CONFIGS = {
    # the model and prior of notebook 05
    "notebook": dict(model=dict(channels=(16, 32, 32), code_dim=16, num_codes=64, num_residual=1, ema=True), steps=1500,
                     prior=dict(n_layer=3, n_head=4, n_embd=48, dropout=0.1), prior_steps=1500),
    # twice the width, a larger prior, more steps: what more CPU time buys
    "larger": dict(model=dict(channels=(32, 64, 64), code_dim=16, num_codes=64, num_residual=1, ema=True), steps=2000,
                   prior=dict(n_layer=4, n_head=4, n_embd=64, dropout=0.1), prior_steps=2000),
}


def run_vqvae(name: str, quick: bool) -> dict:
    cfg = VQ_CONFIGS[name]
    steps, prior_steps, n_samples = (40, 40, 300) if quick else (cfg["steps"], cfg["prior_steps"], 1000)
    x_train = data.mnist("train", value_range="unit", source="embedded").x
    x_test = data.mnist("test", value_range="unit", source="embedded").x
    torch.manual_seed(0)
    model = Q.VQVAE((1, 28, 28), **cfg["model"])
    usage = []

    def track(step, m, history):
        if step % 200 == 0 or step == steps:
            with torch.no_grad():
                codes = m.encode_indices(x_test)
            usage.append((step, Q.codebook_usage(codes, m.num_codes), Q.perplexity(codes, m.num_codes)))

    loader = data.InMemoryLoader(x_train, batch_size=64, device="cpu", seed=0)
    t0, c0 = time.perf_counter(), time.process_time()
    train.fit(model, Q.vqvae_loss_fn, loader, steps=steps, lr=2e-3, device="cpu", log_every=100 if not quick else 20,
              callback=track, progress=False)
    vq_s, vq_cpu = time.perf_counter() - t0, time.process_time() - c0
    with torch.no_grad():
        recon = model.reconstruct(x_test)
        test_codes, train_codes = model.encode_indices(x_test), model.encode_indices(x_train)
    mse = torch.nn.functional.mse_loss(recon, x_test).item()

    torch.manual_seed(0)
    prior = Q.CodePrior(model.num_codes, model.grid_shape, **cfg["prior"])
    prior_loader = data.InMemoryLoader(train_codes, batch_size=64, device="cpu", seed=0)
    t1, c1 = time.perf_counter(), time.process_time()
    train.fit(prior, Q.prior_loss_fn, prior_loader, steps=prior_steps, lr=1e-3, weight_decay=0.1, device="cpu",
              progress=False)
    prior_s, prior_cpu = time.perf_counter() - t1, time.process_time() - c1
    with torch.no_grad():
        prior_nll = -prior.log_prob(test_codes).mean().item()
        t2 = time.perf_counter()
        samples = model.decode_indices(prior.sample(n_samples, generator=torch.Generator().manual_seed(0)))
        sample_s = time.perf_counter() - t2
        uniform = model.decode_indices(torch.randint(0, model.num_codes, (n_samples, *model.grid_shape),
                                                     generator=torch.Generator().manual_seed(0)))
    real = x_test[:n_samples]
    fid_samples, fid_recon, fid_uniform = (metrics.fid(real, s) for s in (samples, recon[:n_samples], uniform))
    fl = metrics.floor("fid", n_samples) if not quick else None
    out = dict(name=name, config={k: list(v) if isinstance(v, tuple) else v for k, v in cfg["model"].items()},
               prior_config=cfg["prior"], steps=steps,
               prior_steps=prior_steps, params=count_parameters(model), prior_params=count_parameters(prior),
               test_mse=mse, usage=usage, final_usage=Q.codebook_usage(test_codes, model.num_codes),
               final_perplexity=Q.perplexity(test_codes, model.num_codes), restarts=int(model.quantizer.restarts),
               prior_nll=prior_nll, prior_bits_per_code=prior_nll / (math.log(2) * test_codes[0].numel()),
               fid_samples=fid_samples, fid_recon=fid_recon, fid_uniform=fid_uniform, n_fid=n_samples,
               floor=fl.mean if fl else None, ratio=fid_samples / fl.level if fl else None,
               vq_s=vq_s, vq_cpu_s=vq_cpu, prior_s=prior_s, prior_cpu_s=prior_cpu, sample_s=sample_s)
    print(json.dumps({k: v for k, v in out.items() if k != "usage"}, indent=1), flush=True)
    return out


# ============================================================================================ report
def vae_table(runs: list[dict]) -> str:
    header = ["data", "model", "objective", "params", "best step", "test -ELBO", "test NLL", "bits/dim",
              "train (s)", "eval (s)"]
    rows = []
    for r in runs:
        rows.append([r["dataset"], r["arch"].upper() if r["arch"] == "mlp" else "conv",
                     "ELBO" if r["objective"] == "elbo" else f"IWAE (k={r['k_train']})", f"{r['params']:,}",
                     f"{r['best_step']} / {r['steps']}", f"{r['neg_elbo']:.2f}", f"{r['nll']:.2f} (K={r['k_test']})",
                     f"{r['bpd']:.3f}", f"{r['train_s']:.0f}", f"{r['eval_s']:.0f}"])
    return markdown_table(header, rows, align=["l", "l", "l"] + ["r"] * 7)


def iwae_gains(runs: list[dict]) -> str:
    lines = []
    by_key = {(r["dataset"], r["arch"], r["objective"]): r for r in runs}
    for (dataset, arch, objective), r in by_key.items():
        if objective == "iwae" and (dataset, arch, "elbo") in by_key:
            gain = by_key[(dataset, arch, "elbo")]["nll"] - r["nll"]
            lines.append(f"{dataset} {arch}: IWAE beats the VAE-trained model by {gain:.2f} nats")
    return "; ".join(lines)


def vq_table(runs: list[dict]) -> str:
    header = ["config", "params (VQ-VAE + prior)", "test MSE / pixel", "codes in use (test)", "perplexity",
              "prior NLL (nats/image)", "FID prior samples", "floor", "ratio", "FID recon.", "FID uniform codes",
              "VQ-VAE train (s)", "prior train (s)", "sampling (s)"]
    rows = []
    for r in runs:
        ch = "x".join(str(c) for c in r["config"]["channels"])
        p = r["prior_config"]
        rows.append([f"{r['name']}: channels {ch}, {r['steps']} steps; prior {p['n_layer']}x{p['n_embd']}, {r['prior_steps']} steps",
                     f"{r['params']:,} + {r['prior_params']:,}", f"{r['test_mse']:.4f}",
                     f"{r['final_usage']:.0%} of {r['config']['num_codes']}", f"{r['final_perplexity']:.1f}",
                     f"{r['prior_nll']:.1f}", f"{r['fid_samples']:.2f}", f"{r['floor']:.2f}", f"{r['ratio']:.1f}",
                     f"{r['fid_recon']:.2f}", f"{r['fid_uniform']:.1f}", f"{r['vq_s']:.0f}", f"{r['prior_s']:.0f}",
                     f"{r['sample_s']:.0f}"])
    return markdown_table(header, rows, align=["l"] + ["r"] * (len(header) - 1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run only the runs whose name contains this string "
                        "(names: digits8x8/mlp/elbo, ..., mnist/conv/iwae, vqvae/notebook, vqvae/larger)")
    parser.add_argument("--quick", action="store_true", help="tiny budgets, a smoke test; records nothing")
    parser.add_argument("--record-only", action="store_true", help="assemble RESULTS.md from cached runs")
    parser.add_argument("--no-record", action="store_true", help="print only, leave RESULTS.md alone")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: steady on a busy machine)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [f"{d}/{a}/{o}" for d in ("digits8x8", "mnist") for a in ("mlp", "conv") for o in ("elbo", "iwae")]
    vq_names = [f"vqvae/{name}" for name in VQ_CONFIGS]
    names += vq_names
    cache = cache_dir()
    if not args.record_only:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); cache {cache}")
        for name in names:
            if args.only and args.only not in name:
                continue
            if name.startswith("vqvae/"):
                result = run_vqvae(name.split("/")[1], args.quick)
            else:
                result = run_vae(*name.split("/"), quick=args.quick)
            if not args.quick:
                (cache / f"{name.replace('/', '_')}.json").write_text(json.dumps(result, indent=1))
    if args.quick or args.no_record:
        return
    runs = [json.loads(p.read_text()) for n in names if not n.startswith("vqvae/")
            if (p := cache / f"{n.replace('/', '_')}.json").exists()]
    if runs:
        table = vae_table(runs)
        print(table)
        notes = f"""NLL: importance-sampled estimate of -log p(x) with K samples from the encoder (`VAE.log_likelihood`),
in nats per image on the test split; -ELBO with an exact KL and 10 samples of the reconstruction term; bits/dim =
NLL / (D ln 2) with D = 64 (8x8) or 784 (MNIST). 8x8 digits: 17-level categorical likelihood (Tomczak's setting;
his MLP VAE reports about 100.5 nats); MNIST: the 1,000 held-out digits of the embedded 5,000, binarised with a
fixed seed (small-data numbers, not comparable with the 60,000-image binarised-MNIST literature). Every model is
trained with AdamW (lr {LR:g}, weight decay {WEIGHT_DECAY:g}) for the steps shown, keeping the weights of the step
with the best validation log-likelihood (K = 100); IWAE models maximise the k = {IWAE_K} bound. {iwae_gains(runs)}.
Times are wall-clock seconds with one torch thread on the machine above, which other jobs shared (inflating wall
times by up to several times); train time includes the validation evaluations. Produced by `bench/vae.py`."""
        record(SECTION_VAE, table, notes)
    vq_runs = [json.loads(p.read_text()) for n in vq_names if (p := cache / f"{n.replace('/', '_')}.json").exists()]
    if vq_runs:
        usage = "; ".join(f"{r['name']}: " + ", ".join(f"{s}: {u:.0%}" for s, u, _ in r["usage"]) for r in vq_runs)
        table = vq_table(vq_runs)
        print(table)
        notes = f"""VQ-VAE: conv encoder/decoder with one residual block, 28x28 -> 7x7 grid of codes, 64 codes of dimension 16, EMA
codebook (decay 0.99), commitment weight 0.25, dead-code restarts; batch 64 (AdamW, lr 2e-3) on the 4,000 embedded
training digits. Prior: a causal Transformer (`course_lib.models.autoregressive.GPT`, layers x width as shown,
4 heads, dropout 0.1, weight decay 0.1) over the 49 codes in raster order; its NLL of the test digits' codes is
exact (uniform codes: 49 ln 64 = 203.8 nats). Codebook usage on the 1,000 test digits during training (step: share
of the codes used): {usage}. FIDs use the course's MNIST classifier features, 1,000 images against the 1,000
test digits; floor = the real-vs-real FID at N = 1,000 (`metrics.floor`), ratio = FID / floor. "FID recon.":
reconstructions of the test digits; "uniform codes": grids of independent uniformly random codes, decoded (what
sampling without a prior gives). Wall times with one torch thread on a machine shared with other jobs. Produced
by `bench/vae.py`."""
        record(SECTION_VQ, table, notes)


if __name__ == "__main__":
    main()
