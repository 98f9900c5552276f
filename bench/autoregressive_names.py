r"""Character-level autoregressive models on the census first names: held-out NLL per character.

Data: ``course_lib.data.names(split, kind="first")``, the fixed split of 5,163 distinct US-census
first names into 4,130 train / 516 val / 517 test. Every model is trained on ``train``, its settings
were chosen on ``val``, and the numbers reported are on ``test``:

    nats/char = sum_i -log p(name_i) / sum_i (len(name_i) + 1),    bits/char = nats/char / ln 2,

where the "+ 1" is the end-of-name token, a prediction the model must make (the same unit as
makemore's loss: its mean cross-entropy per token includes that token); perplexity = exp(nats/char).

Models (the settings of notebook 03's full mode):

- the count bigram with add-alpha smoothing (alpha chosen on val) and the same bigram trained by
  gradient descent (they agree);
- the MLP of Bengio et al. (2003) over the last few characters;
- the course's GPT (``course_lib.models.autoregressive.GPT``).

**makemore comparison** (``--makemore PATH``): karpathy/makemore's ``makemore.py`` is *not* part of
this repository. Copy it somewhere outside the repo and pass its path; this script imports its
``GPT``, ``CharDataset`` and ``evaluate`` and reproduces its ``__main__`` training loop step for step
(default settings: 4 layers, 4 heads, 64 channels, batch 32, AdamW lr 5e-4, betas (0.9, 0.99), weight
decay 0.01, gradient clipping at 1.0, seed 3407) on exactly our training names, read from a
one-name-per-line file, for the same wall time our GPT took, on the same CPU with the same number of
threads. Its own ``create_datasets`` would re-split that file at random, so the datasets are built
from our split instead (``CharDataset(words, chars, max_word_length)``, as ``create_datasets`` does). Both models are then scored by the same function on the same test names.
Two makemore numbers are reported: its weights at the end of the time budget, and the checkpoint its
script would keep (it saves whenever the loss on 10 batches of held-out data improves, every 500 steps;
we use our *val* split for that choice, never test, and stop the clock while it evaluates).

    .venv/bin/python bench/autoregressive_names.py                       # our models, writes bench/RESULTS.md
    cp makemore.py /tmp/ && .venv/bin/python bench/autoregressive_names.py --makemore /tmp/makemore.py
    .venv/bin/python bench/autoregressive_names.py --quick --no-record   # a smoke test
    .venv/bin/python bench/autoregressive_names.py --write-split /tmp/names   # train/val/test .txt, one name per line
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import markdown_table, record  # noqa: E402

from course_lib import data, train  # noqa: E402
from course_lib.data.chars import CharVocab, context_windows, names_to_tensors, write_names_file  # noqa: E402
from course_lib.models import autoregressive as ar  # noqa: E402

SECTION = "Autoregressive models on the census first names (notebook 03)"

# the settings of notebook 03 (full mode); keep them in sync with notebooks/03_autoregressive.py
ALPHAS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
MLP = dict(context=4, embed_dim=16, hidden=256, dropout=0.1)
MLP_TRAIN = dict(steps=6000, lr=3e-3)
GPT = dict(n_layer=4, n_head=4, n_embd=64, dropout=0.1)
GPT_TRAIN = dict(steps=5000, lr=1e-3)
COMMON = dict(batch_size=64, weight_decay=0.1, clip_grad_norm=1.0, ema_decay=0.998)


def train_sequence_model(model, x, y, *, steps, lr, batch_size, weight_decay, clip_grad_norm, ema_decay):
    """``train.fit`` on the next-character cross-entropy, as in the notebook; returns the TrainResult."""
    loader = data.InMemoryLoader(x, y, batch_size=batch_size, device="cpu", seed=0)
    return train.fit(model, ar.next_token_loss, loader, steps=steps, lr=lr, weight_decay=weight_decay,
                     clip_grad_norm=clip_grad_norm, ema_decay=ema_decay, device="cpu", progress=False)


def load_makemore(path: Path) -> types.ModuleType:
    """Import makemore.py from ``path`` (outside this repo); tensorboard is stubbed if it is not installed."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except Exception:  # makemore imports SummaryWriter at module level but we never write logs
        stub = types.ModuleType("torch.utils.tensorboard")
        stub.SummaryWriter = object
        sys.modules["torch.utils.tensorboard"] = stub
    spec = importlib.util.spec_from_file_location("makemore_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("GPT", "GPTConfig", "TrainConfig", "CharDataset", "evaluate"):
        if not hasattr(module, name):
            raise SystemExit(f"{path} has no {name}; is it karpathy/makemore's makemore.py?")
    return module


class MakemoreAdapter(torch.nn.Module):
    """makemore's ``GPT.forward(idx) -> (logits, loss)`` as the course's ``forward(idx) -> logits``."""

    def __init__(self, gpt, block_size):
        super().__init__()
        self.gpt, self.block_size, self.context_size = gpt, block_size, block_size

    def forward(self, idx):
        return self.gpt(idx)[0]


def read_words(path: Path) -> list[str]:
    """Words of a one-name-per-line file, cleaned exactly as makemore's ``create_datasets`` does."""
    words = [w.strip() for w in path.read_text().splitlines()]
    return [w for w in words if w]


def run_makemore(path, train_file, val_words, test_words, vocab, seconds, seed=3407, batch_size=32):
    """makemore's training loop on the names in ``train_file`` for ``seconds`` of wall time; returns a dict."""
    mm = load_makemore(path)
    mm.args = argparse.Namespace(device="cpu")  # its evaluate() reads the global args.device
    train_words = read_words(train_file)
    words = train_words + val_words + test_words
    chars = sorted(set("".join(train_words)))
    if chars != vocab.itos[1:]:
        raise SystemExit("makemore's vocabulary would differ from the course's; the ids would not line up")
    max_len = max(len(w) for w in words)
    train_ds, val_ds, test_ds = (mm.CharDataset(w, chars, max_len) for w in (train_words, val_words, test_words))
    torch.manual_seed(seed)
    config = mm.GPTConfig(vocab_size=train_ds.get_vocab_size(), block_size=train_ds.get_output_length(),
                          n_layer=4, n_head=4, n_embd=64)
    model = mm.GPT(config)
    optimizer = model.configure_optimizers(mm.TrainConfig(learning_rate=5e-4, weight_decay=0.01))
    sampler = torch.utils.data.RandomSampler(train_ds, replacement=True, num_samples=int(1e10))
    loader = torch.utils.data.DataLoader(train_ds, batch_size=batch_size, num_workers=0, sampler=sampler)
    batches = iter(loader)
    best_loss, best_state, best_step, step, trained, cpu = None, None, 0, 0, 0.0, 0.0
    while trained < seconds:
        t0, c0 = time.perf_counter(), time.process_time()
        x, y = next(batches)
        _, loss = model(x, y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        trained += time.perf_counter() - t0
        cpu += time.process_time() - c0
        if step > 0 and step % 500 == 0:  # makemore's checkpoint rule, judged on val (clock stopped)
            held_out = mm.evaluate(model, val_ds, batch_size=100, max_batches=10)
            if best_loss is None or held_out < best_loss:
                best_loss, best_step = held_out, step
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
        step += 1
    model.eval()
    final = ar.evaluate(MakemoreAdapter(model, config.block_size), test_words, vocab)
    own_loss = mm.evaluate(model, test_ds, batch_size=100)  # makemore's own number: mean of batch means
    result = {"steps": step, "seconds": trained, "cpu": cpu, "final": final, "own_loss": own_loss,
              "params": sum(p.numel() for p in model.parameters())}
    if best_state is not None:
        model.load_state_dict(best_state)
        result["best"] = ar.evaluate(MakemoreAdapter(model, config.block_size), test_words, vocab)
        result["best_step"] = best_step
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--makemore", type=Path, default=None, help="path to a copy of karpathy/makemore's makemore.py")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for every model (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny budgets, for a smoke test; does not record")
    parser.add_argument("--no-record", action="store_true", help="print only, leave RESULTS.md alone")
    parser.add_argument("--write-split", type=Path, default=None,
                        help="write train.txt / val.txt / test.txt (one name per line) to this folder and exit")
    args = parser.parse_args(argv)
    if args.write_split is not None:
        for split in ("train", "val", "test"):
            print(write_names_file(data.names(split, kind="first"), args.write_split / f"{split}.txt"))
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    scale = 50 if args.quick else 1
    torch.manual_seed(0)

    vocab = CharVocab()
    train_words, val_words, test_words = (data.names(s, kind="first") for s in ("train", "val", "test"))
    block_size = max(len(w) for w in train_words + val_words + test_words) + 1
    x, y = names_to_tensors(train_words, vocab, length=block_size)
    print(f"census first names: {len(train_words)} train / {len(val_words)} val / {len(test_words)} test, "
          f"block size {block_size}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows, results = [], {}

    def add(name, model, seconds, steps, notes="", params=None):
        r = ar.evaluate(model, test_words, vocab)
        results[name] = r
        params = f"{ar.count_parameters(model):,}" if params is None else params
        rows.append([name, f"{r.nats_per_char:.4f}", f"{r.bits_per_char:.4f}", f"{r.perplexity:.2f}",
                     f"{r.nats_per_name:.2f}", params, steps, f"{seconds:.1f}", notes])
        print(f"{name:28s} test {r}  [{seconds:.1f} s]", flush=True)

    add("uniform (27 tokens)", ar.NeuralBigram(vocab.size), 0.0, "-", params="0")

    # bigram by counting; alpha chosen on val
    t0 = time.perf_counter()
    val_nll = {a: ar.evaluate(ar.CountBigram(vocab.size, a).fit_names(train_words, vocab), val_words, vocab).nats_per_char
               for a in ALPHAS}
    alpha = min(val_nll, key=val_nll.get)
    counts = ar.CountBigram(vocab.size, alpha).fit_names(train_words, vocab)
    add("bigram, counts", counts, time.perf_counter() - t0, "-", f"alpha = {alpha} (val); 729 counts", params="0")

    # the same bigram by gradient descent
    ctx, nxt = context_windows(train_words, vocab, 1)
    neural = ar.NeuralBigram(vocab.size)
    fit = train.fit(neural, lambda m, b: ar.bigram_loss(m, b, alpha=alpha), [(ctx[:, 0], nxt)],
                    steps=max(4, 200 // scale), lr=0.5, device="cpu", progress=False)
    add("bigram, gradient descent", neural, fit.seconds, fit.steps, "full batch")

    torch.manual_seed(0)
    mlp = ar.MLPLanguageModel(vocab.size, **MLP)
    fit = train_sequence_model(mlp, x, y, **COMMON, **{**MLP_TRAIN, "steps": MLP_TRAIN["steps"] // scale})
    add(f"MLP, context {MLP['context']} (EMA weights)", fit.ema.module, fit.seconds, fit.steps)

    torch.manual_seed(0)
    gpt = ar.GPT(vocab.size, block_size, **GPT)
    cpu0 = time.process_time()
    fit = train_sequence_model(gpt, x, y, **COMMON, **{**GPT_TRAIN, "steps": GPT_TRAIN["steps"] // scale})
    gpt_seconds, gpt_cpu = fit.seconds, time.process_time() - cpu0
    add(f"GPT {GPT['n_layer']} layers x {GPT['n_embd']} (EMA weights)", fit.ema.module, fit.seconds, fit.steps)
    print(f"GPT: {gpt_cpu:.0f} s of CPU time for {gpt_seconds:.0f} s of wall time")

    notes = [
        f"Test split: {len(test_words)} names, {results['bigram, counts'].n_chars} characters counting the end token. "
        "nats/char = total -log p(name) / total (letters + 1); bits/char = nats/char / ln 2; "
        "ppl = exp(nats/char); nats/name = mean -log p(name). Hyper-parameters were chosen on the val split. "
        "Wall times on a shared machine include waiting for the CPU.",
        f"Training (as notebook 03, full mode): `train.fit` with AdamW at a constant learning rate, batches of "
        f"{COMMON['batch_size']} whole names, weight decay {COMMON['weight_decay']}, gradient clipping at "
        f"{COMMON['clip_grad_norm']}, evaluated with the EMA of the weights (decay {COMMON['ema_decay']}); "
        f"MLP {MLP}, {MLP_TRAIN}; GPT {GPT}, {GPT_TRAIN}.",
    ]
    if args.makemore is not None:
        print(f"makemore: training for {gpt_seconds:.1f} s of wall time (as long as our GPT) ...", flush=True)
        import tempfile

        with tempfile.TemporaryDirectory() as folder:  # the one-name-per-line file makemore reads
            train_file = write_names_file(train_words, Path(folder) / "train.txt")
            assert read_words(train_file) == train_words
            mm = run_makemore(args.makemore, train_file, val_words, test_words, vocab, gpt_seconds)
        r = mm["final"]
        rows.append(["makemore Transformer (defaults), same wall time", f"{r.nats_per_char:.4f}",
                     f"{r.bits_per_char:.4f}", f"{r.perplexity:.2f}", f"{r.nats_per_name:.2f}",
                     f"{mm['params']:,}", mm["steps"], f"{mm['seconds']:.1f}", "final weights"])
        print(f"makemore final              test {r}  [{mm['steps']} steps, {mm['seconds']:.1f} s, "
              f"its own loss {mm['own_loss']:.4f}]")
        if "best" in mm:
            b = mm["best"]
            rows.append(["makemore, best checkpoint (chosen on val)", f"{b.nats_per_char:.4f}",
                         f"{b.bits_per_char:.4f}", f"{b.perplexity:.2f}", f"{b.nats_per_name:.2f}",
                         f"{mm['params']:,}", mm["best_step"], "", "its save-best rule"])
            print(f"makemore best (step {mm['best_step']})   test {b}")
        notes.append(
            "**makemore comparison.** karpathy/makemore's `makemore.py` (not in this repo) was imported from a copy "
            "outside the repo (its `GPT`, `CharDataset` and `evaluate`) and its `__main__` training loop reproduced "
            "step for step (random batches with replacement) with its default settings (4 layers, 4 heads, 64 "
            "channels, batch 32, AdamW 5e-4, weight decay 0.01, clipping 1.0) on exactly our 4,130 training names, "
            "read from a one-name-per-line file (as `--write-split` writes it), for the same wall time as our GPT "
            f"({gpt_seconds:.0f} s) on the same CPU with the same number of threads ({torch.get_num_threads()}). "
            "Both are scored by the same function on the same 517 test names, in nats per character with the end "
            "token counted, which is exactly the unit of makemore's reported loss (its mean cross-entropy per "
            f"token; its own `evaluate` gives {mm['own_loss']:.4f} here, a mean of per-batch means). "
            "makemore's best checkpoint follows its save-when-held-out-loss-improves rule every 500 steps, "
            "judged on our val split (its evaluation time not counted). makemore was trained for "
            f"{mm['cpu']:.0f} s of CPU time, ours {gpt_cpu:.0f} s. Same architecture size; the difference in quality "
            "comes from regularisation, which matters on a training set this small (about 29,000 characters): "
            "dropout 0.1, weight decay 0.1 and the EMA of the weights. makemore's default Transformer has none of "
            "them and over-fits within a few minutes."
        )
    header = ["model", "test nats/char", "bits/char", "ppl", "nats/name", "params", "steps", "train s", "notes"]
    table = markdown_table(header, rows, align=["l", "r", "r", "r", "r", "r", "r", "r", "l"])
    print(table)
    if not (args.quick or args.no_record):
        record(SECTION, table, "\n\n".join(notes))
        print(f"recorded in {Path(__file__).resolve().parent / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
