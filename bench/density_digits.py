r"""Classical density models on the 8x8 digits: test NLL in nats per image and bits per dimension.

Data: ``course_lib.data.digits8x8`` with the fixed split (1,000 train / 350 val / 447 test), 64 pixels
with 17 grey levels. The models are densities over continuous ``y``, so the discrete digits are
uniformly dequantised, ``y = (x + u) / 17`` with ``u ~ U[0, 1)^64``, and the reported number is the
upper bound on the discrete NLL (``course_lib.metrics.likelihood``)

    -log P(x) <= E_u[-log p(y)] + 64 log 17   nats per image,  bits/dim = nats / (64 ln 2),

averaged over ``--draws`` dequantisation draws of the val and test images. Each model is fitted on one
dequantised draw of the training images; its hyper-parameters (regularisation, number of components,
covariance type, bandwidth) are chosen on the validation split, never on the test split.

Models: the uniform baseline (log2 17 = 4.09 bits/dim), one Gaussian (MLE + reg * I), Gaussian mixtures
fitted by EM (full and diagonal covariances, several K and reg_covar), and a Gaussian KDE.

    .venv/bin/python bench/density_digits.py            # full grid, writes bench/RESULTS.md
    .venv/bin/python bench/density_digits.py --quick    # a small grid, prints only
    .venv/bin/python bench/density_digits.py --threads 1   # steadier timings on a shared machine
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import markdown_table, record  # noqa: E402

from course_lib import data  # noqa: E402
from course_lib.metrics.likelihood import dequantize, discrete_nll_from_density, nats_to_bits_per_dim  # noqa: E402
from course_lib.models.density import GaussianDensity, GaussianMixture, KernelDensity  # noqa: E402

SECTION = "Density models on the 8x8 digits (notebook 02)"
LEVELS = data.DIGITS8X8_LEVELS
D = 64


def load(split: str) -> torch.Tensor:
    """The split as ``(N, 64) float64`` integer levels 0..16."""
    return data.digits8x8(split, value_range="counts").x.flatten(1).double()


def discrete_nll(model, draws: list[torch.Tensor]) -> tuple[float, float]:
    """Mean discrete NLL bound in nats per image over the draws, and its std across draws."""
    per_draw = torch.tensor(
        [float(discrete_nll_from_density(-model.log_prob(y).mean(), D, LEVELS)) for y in draws], dtype=torch.float64
    )
    std = float(per_draw.std()) if len(per_draw) > 1 else 0.0
    return float(per_draw.mean()), std


def bpd(nats: float) -> float:
    return float(nats_to_bits_per_dim(nats, D))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5, help="dequantisation draws of val and test (default 5)")
    parser.add_argument("--quick", action="store_true", help="a small grid, for a smoke test; does not record")
    parser.add_argument("--no-record", action="store_true", help="print only, leave RESULTS.md alone")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 gives steadier timings on a busy machine)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    x_train, x_val, x_test = load("train"), load("val"), load("test")
    y_train = dequantize(x_train, LEVELS, gen)  # the models are fitted on one dequantised draw
    val_draws = [dequantize(x_val, LEVELS, gen) for _ in range(args.draws)]
    test_draws = [dequantize(x_test, LEVELS, gen) for _ in range(args.draws)]
    train_draws = [y_train]
    print(f"8x8 digits: train {tuple(x_train.shape)}, val {tuple(x_val.shape)}, test {tuple(x_test.shape)}, "
          f"{LEVELS} levels, {args.draws} dequantisation draws; torch {torch.__version__}, {torch.get_num_threads()} threads")

    if args.quick:
        gauss_regs = [1e-4, 1e-3]
        gmm_grid = {"full": ([2, 5], [1e-3]), "diag": ([5, 20], [1e-4])}
        bandwidths = torch.logspace(-1.3, -0.5, 5).tolist()
    else:
        gauss_regs = [0.0, 1e-5, 1e-4, 1e-3, 1e-2]
        gmm_grid = {
            "full": ([1, 2, 3, 5, 10, 20, 40], [3e-4, 1e-3, 3e-3, 1e-2]),
            "diag": ([1, 5, 10, 20, 40, 80, 160], [1e-5, 1e-4, 1e-3]),
        }
        bandwidths = torch.logspace(-1.5, -0.5, 21).tolist()

    runs = []  # one dict per fitted configuration

    def run(family: str, setting: str, make, num_params=None):
        t0 = time.perf_counter()
        model = make()
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        val, _ = discrete_nll(model, val_draws)
        test, test_std = discrete_nll(model, test_draws)
        train, _ = discrete_nll(model, train_draws)
        eval_s = time.perf_counter() - t1
        params = num_params if num_params is not None else model.num_parameters
        entry = dict(family=family, setting=setting, params=params, train=train, val=val, test=test,
                     test_std=test_std, fit_s=fit_s, eval_s=eval_s, model=model)
        runs.append(entry)
        print(f"  {family:<10} {setting:<28} train {bpd(train):.3f}  val {bpd(val):.3f}  test {bpd(test):.3f} bits/dim"
              f"   fit {fit_s:6.2f} s, eval {eval_s:5.2f} s", flush=True)
        return entry

    uniform_nats = D * math.log(LEVELS)
    print(f"uniform: {uniform_nats:.2f} nats = {bpd(uniform_nats):.4f} bits/dim (log2 17 = {math.log2(LEVELS):.4f})")

    print("Gaussian (MLE + reg * I):")
    for reg in gauss_regs:
        run("Gaussian", f"reg_covar={reg:g}", lambda reg=reg: GaussianDensity(reg_covar=reg).fit(y_train))

    for cov in ("full", "diag"):
        print(f"Gaussian mixture, {cov} covariances (EM, k-means++ init, 3 starts):")
        ks, regs = gmm_grid[cov]
        for reg in regs:
            for k in ks:
                run(
                    f"GMM {cov}",
                    f"K={k}, reg_covar={reg:g}",
                    lambda k=k, reg=reg, cov=cov: GaussianMixture(
                        k, covariance_type=cov, reg_covar=reg, max_iter=200, tol=1e-4, n_init=3, seed=0
                    ).fit(y_train),
                )

    print("KDE (Gaussian kernel):")
    for h in bandwidths:
        run("KDE", f"bandwidth={h:.4f}", lambda h=h: KernelDensity(h).fit(y_train), num_params=0)

    # ---------------------------------------------------------------- choose on val, report test
    best = {}
    for entry in runs:
        if entry["family"] not in best or entry["val"] < best[entry["family"]]["val"]:
            best[entry["family"]] = entry
    header = ["model", "chosen on val", "parameters", "train bits/dim", "val bits/dim", "test NLL (nats/image)",
              "test bits/dim", "fit time (s)"]
    rows = [["uniform baseline", "-", "0", f"{bpd(uniform_nats):.3f}", f"{bpd(uniform_nats):.3f}",
             f"{uniform_nats:.1f}", f"{bpd(uniform_nats):.3f}", "0"]]
    for family in ("Gaussian", "GMM full", "GMM diag", "KDE"):
        e = best[family]
        params = "1,000 x 64 stored" if family == "KDE" else f"{e['params']:,}"
        rows.append([family if family != "Gaussian" else "Gaussian (MLE)", e["setting"], params,
                     f"{bpd(e['train']):.3f}", f"{bpd(e['val']):.3f}", f"{e['test']:.1f} ± {e['test_std']:.2f}",
                     f"{bpd(e['test']):.3f}", f"{e['fit_s']:.2f}"])
    summary = markdown_table(header, rows, align=["l", "l"] + ["r"] * 6)

    detail_rows = [[e["family"], e["setting"], f"{e['params']:,}", f"{bpd(e['train']):.3f}", f"{bpd(e['val']):.3f}",
                    f"{bpd(e['test']):.3f}", f"{e['fit_s']:.2f}"] for e in runs if e["family"] != "KDE"]
    kde_runs = [e for e in runs if e["family"] == "KDE"]
    detail = markdown_table(["model", "setting", "parameters", "train bits/dim", "val bits/dim", "test bits/dim",
                             "fit time (s)"], detail_rows, align=["l", "l"] + ["r"] * 5)
    kde_line = ", ".join(f"{float(e['setting'].split('=')[1]):.3g}: {bpd(e['val']):.2f}" for e in kde_runs)

    print()
    print(summary)
    print()
    print(detail)
    total = sum(e["fit_s"] + e["eval_s"] for e in runs)
    print(f"\nKDE val bits/dim by bandwidth: {kde_line}\ntotal model time {total:.0f} s")

    notes = f"""Test NLL is the dequantisation bound E_u[-log p((x+u)/17)] + 64 log 17 in nats per image
(mean ± std over {args.draws} dequantisation draws of the 447 test images); bits/dim = nats / (64 ln 2).
Every model is fitted on one dequantised draw of the 1,000 training images; hyper-parameters are chosen
by the val bits/dim ({args.draws} draws of the 350 val images). "train bits/dim" is measured on the very draw
the model was fitted on, so the gap to val shows over-fitting. GMMs: EM with k-means++ initialisation, 3 starts,
tol 1e-4, at most 200 iterations. Fit times are wall-clock seconds on the machine above, which was shared with
other jobs, so they are indicative only. Produced by `bench/density_digits.py`.

All configurations (Gaussian and GMM):

{detail}

KDE, val bits/dim by bandwidth: {kde_line}."""
    if not args.quick and not args.no_record:
        record(SECTION, summary, notes)
        print(f"recorded in {Path(__file__).resolve().parent / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
