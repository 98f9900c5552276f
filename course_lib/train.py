r"""The one training loop of the course.

Every model family (autoregressive models, VAEs, VQ-VAEs, GANs' pieces, diffusion and score models)
is trained with :func:`fit`. A model family contributes only its *loss*::

    def loss_fn(model, batch):                    # batch: whatever the loader yields, on the device
        (x,) = batch                              # x: (B, 1, 28, 28) in [0, 1]
        loss, stats = model.negative_elbo(x)      # a 0-dim tensor and a dict of floats
        return loss, {"kl": stats["kl"], "recon": stats["recon"]}

    result = fit(model, loss_fn, loader, steps=config.budget(full=3000, quick=30), lr=2e-3)
    plot_history(result.history)

One optimisation step, for the parameters :math:`\theta` and a batch :math:`b_t`, is

.. math::

    g_t = \nabla_\theta L(\theta_{t-1}; b_t), \qquad
    g_t \leftarrow g_t \cdot \min\!\Big(1, \frac{c}{\lVert g_t \rVert_2}\Big)
        \ \text{(clipping, if } c \text{ is set)}, \qquad
    \theta_t = \mathrm{AdamW}(\theta_{t-1}, g_t),

followed, when ``ema_decay`` is set, by the exponential moving average of the weights

.. math::

    \bar\theta_t = \beta\, \bar\theta_{t-1} + (1 - \beta)\, \theta_t .

What the loop does for you, so that no notebook has to:

- moves the model and every batch to the course's device (:func:`course_lib.device.get_device`);
- cycles the loader over as many epochs as ``steps`` needs;
- shows a ``tqdm`` progress bar with the running loss;
- records a :class:`History` of the loss, the extra numbers ``loss_fn`` reports and (with clipping)
  the gradient norm, averaged over every ``log_every`` steps;
- stops at the first NaN/inf loss with a :class:`NonFiniteLossError` that says what to try, leaving
  the model as it was before the bad step;
- keeps an :class:`EMA` copy of the weights;
- uses mixed precision on GPUs when ``amp=True`` (a no-op on the CPU);
- saves checkpoints atomically and resumes from them (``weights_only=True`` loading).
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Real
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib import device as _device

__all__ = ["fit", "TrainResult", "History", "EMA", "NonFiniteLossError", "CHECKPOINT_FORMAT"]

#: Version of the dictionary :func:`fit` writes to ``checkpoint_path``.
CHECKPOINT_FORMAT = 1

_DEFAULT_LR = 1e-3
_DEFAULT_WEIGHT_DECAY = 0.0


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class NonFiniteLossError(FloatingPointError):
    """The loss (or, with clipping, the gradient norm) became NaN or infinite during :func:`fit`.

    Attributes: ``step`` (1-based index of the step that failed), ``value`` (the offending float),
    ``quantity`` (``"loss"`` or ``"gradient norm"``). When :func:`fit` raises it, the model, its
    buffers, the optimizer and the EMA are exactly as they were after step ``step - 1``.
    """

    def __init__(self, step: int, value: float, *, quantity: str = "loss", lr: float | None = None):
        self.step = int(step)
        self.value = float(value)
        self.quantity = quantity
        lr_hint = f" (it is {lr:g} now; try {lr / 10:g})" if lr is not None else ""
        message = (
            f"the {quantity} is {self.value} at step {self.step}; training stopped and the model was left as it "
            f"was before this step. Things to try: a lower learning rate{lr_hint}; gradient clipping "
            f"(clip_grad_norm=1.0); checking the inputs' range (e.g. images in [0, 1] or [-1, 1], not 0..255); "
            f"looking for log(0) or a division by zero in the loss (add a small eps, or use log_softmax / "
            f"logsumexp / F.binary_cross_entropy_with_logits instead of taking the log of a probability)."
        )
        super().__init__(message)


# --------------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------------


class History:
    """Logged training curves: one row per logging step.

    ``steps: list[int]`` are the (1-based) optimisation steps at which a row was logged, strictly
    increasing; ``values: dict[str, list[float]]`` maps each quantity (``"loss"``, ``"grad_norm"``,
    whatever ``loss_fn`` reports) to a list **of the same length as** ``steps``. A quantity that was not
    reported in some row holds ``nan`` there, so every column lines up with ``steps``.

    >>> h = History()
    >>> h.log(10, {"loss": 2.5}); h.log(20, {"loss": 2.0, "kl": 0.3})
    >>> h.steps, h.values["kl"]
    ([10, 20], [nan, 0.3])
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {}

    # -- recording ---------------------------------------------------------------------------------
    def log(self, step: int, values: Mapping[str, float]) -> None:
        """Append one row: ``step`` (int, larger than the last one) and a mapping name -> float."""
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"History.log: step must be an int, got {type(step).__name__} {step!r}")
        if self.steps and step <= self.steps[-1]:
            raise ValueError(f"History.log: step {step} is not after the last logged step {self.steps[-1]}")
        if not isinstance(values, Mapping):
            raise TypeError(f"History.log: values must be a mapping name -> float, got {type(values).__name__}")
        row: dict[str, float] = {}
        for name, value in values.items():
            if not isinstance(name, str):
                raise TypeError(f"History.log: names must be strings, got {name!r}")
            row[name] = _as_float(value, what=f"History.log value {name!r}")
        n_before = len(self.steps)
        self.steps.append(step)
        for name, column in self.values.items():
            column.append(row.pop(name, math.nan))
        for name, value in row.items():  # quantities seen for the first time
            self.values[name] = [math.nan] * n_before + [value]

    # -- reading -----------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The logged quantities, in the order they first appeared."""
        return list(self.values)

    def _column(self, name: str) -> list[float]:
        if name not in self.values:
            known = ", ".join(repr(n) for n in self.values) or "nothing has been logged yet"
            raise KeyError(f"History has no quantity {name!r}; it has: {known}")
        return self.values[name]

    def last(self, name: str = "loss") -> float:
        """The most recent logged value of ``name`` that is not ``nan``."""
        for value in reversed(self._column(name)):
            if not math.isnan(value):
                return value
        raise ValueError(f"History: {name!r} has no logged value yet")

    def smoothed(self, name: str = "loss", window: int = 10) -> list[float]:
        r"""Trailing moving average of ``name``: entry i is the mean of the last ``window`` values up to i.

        .. math:: s_i = \frac{1}{|W_i|} \sum_{j \in W_i} v_j, \quad W_i = \{\max(0, i - w + 1), \dots, i\}

        ``nan`` entries are left out of the means; the result has the same length as ``steps``.
        """
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"History.smoothed: window must be a positive int, got {window!r}")
        column = self._column(name)
        out: list[float] = []
        for i in range(len(column)):
            chunk = [v for v in column[max(0, i - window + 1) : i + 1] if not math.isnan(v)]
            out.append(sum(chunk) / len(chunk) if chunk else math.nan)
        return out

    def __len__(self) -> int:
        return len(self.steps)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def __repr__(self) -> str:
        if not self.steps:
            return "History(empty)"
        last = ", ".join(f"{n}={self.values[n][-1]:.4g}" for n in self.values)
        return f"History({len(self.steps)} rows, steps {self.steps[0]}..{self.steps[-1]}, last: {last})"

    # -- (de)serialisation: plain ints and floats, loadable with weights_only=True ----------------
    def as_dict(self) -> dict[str, Any]:
        """``{"steps": [int, ...], "values": {name: [float, ...]}}`` with plain Python numbers."""
        values = {name: [float(v) for v in column] for name, column in self.values.items()}
        return {"steps": [int(s) for s in self.steps], "values": values}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Inverse of :meth:`as_dict`; checks that every column has one value per step."""
        if not isinstance(data, Mapping) or set(data) != {"steps", "values"}:
            raise ValueError("History.from_dict expects {'steps': [...], 'values': {...}} as made by History.as_dict()")
        history = cls()
        history.steps = [int(s) for s in data["steps"]]
        history.values = {str(n): [float(v) for v in c] for n, c in data["values"].items()}
        for name, column in history.values.items():
            if len(column) != len(history.steps):
                raise ValueError(
                    f"History.from_dict: {name!r} has {len(column)} values for {len(history.steps)} steps"
                )
        return history


def _as_float(value: Any, *, what: str) -> float:
    """A Python float from a number or a one-element tensor; anything else is an error."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{what} must be a number or a one-element tensor, got a tensor of shape {tuple(value.shape)}"
            )
        return float(value.detach().float().item())
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what} must be a number or a one-element tensor, got {type(value).__name__} {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------------
# Exponential moving average of the weights
# --------------------------------------------------------------------------------------------------


class EMA:
    r"""Exponential moving average of a model's weights (Polyak averaging), as used by DDPM and GANs.

    After every optimiser step, each floating-point parameter of the shadow copy is updated by

    .. math:: \bar\theta \leftarrow \beta_n \bar\theta + (1 - \beta_n)\, \theta, \qquad
              \beta_n = \beta \ \text{or, with warm-up,}\ \min\!\Big(\beta, \frac{1 + n}{10 + n}\Big)

    where :math:`n` is the number of updates so far (1 for the first). Warm-up lets the average
    forget the random initialisation quickly in short runs (with :math:`\beta = 0.999` and no warm-up,
    30 steps leave the average 97% initialisation). Buffers (BatchNorm running statistics, fixed
    constants, integer counters) are *copied* from the model, not averaged.

    ``EMA(model, decay)`` makes the shadow copy (``.module``: a deep copy in eval mode whose
    parameters do not require grad) on the model's device. Sample from ``ema.module``, or copy the
    averaged weights into a model with ``ema.copy_to(model)``.
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = False):
        if not isinstance(model, nn.Module):
            raise TypeError(f"EMA(model, decay): model must be an nn.Module, got {type(model).__name__}")
        self.decay = _check_decay(decay)
        if not isinstance(warmup, bool):
            raise TypeError(f"EMA: warmup must be True or False, got {warmup!r}")
        self.warmup = warmup
        self.num_updates = 0
        try:
            self.module = copy.deepcopy(model)
        except Exception as error:  # pragma: no cover - depends on exotic models
            raise TypeError(
                f"EMA could not copy the model ({error}); models holding open files, generators or "
                "lambdas cannot be deep-copied: keep such objects outside the nn.Module"
            ) from error
        self.module.eval()
        self.module.requires_grad_(False)

    def current_decay(self) -> float:
        r"""The decay :math:`\beta_n` the *next* update will use."""
        if not self.warmup:
            return self.decay
        n = self.num_updates + 1
        return min(self.decay, (1 + n) / (10 + n))

    def _pairs(self, model: nn.Module):
        ema_params = dict(self.module.named_parameters())
        model_params = dict(model.named_parameters())
        if ema_params.keys() != model_params.keys():
            missing = sorted(set(ema_params) ^ set(model_params))[:5]
            raise ValueError(f"EMA.update: the model's parameters differ from the averaged copy's (e.g. {missing}); "
                             "was the EMA made for another model?")
        ema_buffers = dict(self.module.named_buffers())
        model_buffers = dict(model.named_buffers())
        if ema_buffers.keys() != model_buffers.keys():
            raise ValueError(
                "EMA.update: the model's buffers differ from the averaged copy's; was the EMA made for another model?"
            )
        return ema_params, model_params, ema_buffers, model_buffers

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One averaging step towards ``model``'s current weights (call after ``optimizer.step()``)."""
        ema_params, model_params, ema_buffers, model_buffers = self._pairs(model)
        decay = self.current_decay()
        for name, shadow in ema_params.items():
            param = model_params[name].detach()
            if shadow.shape != param.shape:
                raise ValueError(
                    f"EMA.update: {name} has shape {tuple(param.shape)}, the average {tuple(shadow.shape)}"
                )
            if shadow.is_floating_point():
                # lerp: shadow + (1 - decay) * (param - shadow) = decay * shadow + (1 - decay) * param
                shadow.lerp_(param.to(shadow.dtype), 1.0 - decay)
            else:
                shadow.copy_(param)
        for name, shadow in ema_buffers.items():
            shadow.copy_(model_buffers[name])
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> nn.Module:
        """Overwrite ``model``'s parameters and buffers with the averaged ones (strict); returns ``model``."""
        self._pairs(model)
        model.load_state_dict(self.module.state_dict(), strict=True)
        return model

    def to(self, device: torch.device | str) -> EMA:
        """Move the averaged copy to ``device`` (e.g. after moving the model); returns ``self``."""
        self.module.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """``{"decay", "warmup", "num_updates", "module"}``: plain numbers and the copy's state_dict."""
        return {
            "decay": float(self.decay),
            "warmup": bool(self.warmup),
            "num_updates": int(self.num_updates),
            "module": self.module.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (strict about the module's keys and shapes)."""
        expected = {"decay", "warmup", "num_updates", "module"}
        if not isinstance(state, Mapping) or set(state) != expected:
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"EMA.load_state_dict expects keys {sorted(expected)} (from EMA.state_dict()), got {got}")
        self.decay = _check_decay(state["decay"])
        self.warmup = bool(state["warmup"])
        self.num_updates = int(state["num_updates"])
        self.module.load_state_dict(state["module"], strict=True)

    def __repr__(self) -> str:
        return f"EMA(decay={self.decay}, warmup={self.warmup}, updates={self.num_updates})"


def _check_decay(decay: Any) -> float:
    if isinstance(decay, bool) or not isinstance(decay, Real) or not 0.0 < float(decay) < 1.0:
        raise ValueError(f"EMA decay must be a number strictly between 0 and 1 (e.g. 0.999), got {decay!r}")
    return float(decay)


# --------------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    ``model``: the trained model (the same object that was passed in, in eval mode);
    ``history``: the :class:`History`; ``ema``: the :class:`EMA` or ``None``;
    ``steps``: the total number of optimisation steps the model has had (including resumed ones);
    ``seconds``: wall time of this call.
    """

    model: nn.Module
    history: History
    ema: EMA | None
    steps: int
    seconds: float

    def __repr__(self) -> str:
        loss = f", loss {self.history.last('loss'):.4g}" if "loss" in self.history else ""
        return f"TrainResult({self.steps} steps in {self.seconds:.1f} s{loss}, ema={'yes' if self.ema else 'no'})"


class _Window:
    """Running sums between two logging steps (per quantity, since extras may come and go)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, value: float) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + value
        self.counts[name] = self.counts.get(name, 0) + 1

    def __bool__(self) -> bool:
        return bool(self.counts)

    def means(self) -> dict[str, float]:
        return {name: self.sums[name] / self.counts[name] for name in self.sums}

    def clear(self) -> None:
        self.sums.clear()
        self.counts.clear()

    def state(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load(self, state: Mapping[str, Any]) -> None:
        self.sums = {str(k): float(v) for k, v in state["sums"].items()}
        self.counts = {str(k): int(v) for k, v in state["counts"].items()}


def _check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"fit: {name} must be a positive int, got {value!r}")


def _split_output(output: Any, step: int) -> tuple[torch.Tensor, Mapping[str, Any]]:
    if isinstance(output, tuple):
        if len(output) != 2 or not isinstance(output[1], Mapping):
            raise TypeError(
                f"loss_fn must return a loss tensor or a pair (loss, {{'name': value, ...}}); at step {step} it "
                f"returned a tuple of {len(output)} items"
            )
        loss, logs = output
    else:
        loss, logs = output, {}
    if not isinstance(loss, torch.Tensor):
        raise TypeError(
            f"loss_fn must return a torch.Tensor loss (or (loss, dict)); got {type(loss).__name__}. "
            "Do not call .item() on the loss: fit needs the tensor to backpropagate."
        )
    if loss.dim() != 0:
        raise ValueError(
            f"loss_fn must return a scalar (0-dim) loss, got shape {tuple(loss.shape)}; "
            "reduce it, e.g. loss.mean() over the batch (or .squeeze() a one-element tensor)"
        )
    if not loss.is_floating_point():
        raise TypeError(f"the loss must be a floating-point tensor, got {loss.dtype}")
    for key in logs:
        if not isinstance(key, str):
            raise TypeError(f"loss_fn's log dict must have string keys, got {key!r}")
        if key in {"loss", "grad_norm"}:
            raise ValueError(
                f"loss_fn's log dict uses the reserved name {key!r} (fit records it itself); rename it, e.g. "
                f"{key + '_term'!r}"
            )
    return loss, logs


def _atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:
        raise RuntimeError(
            f"could not load the training checkpoint {path} with weights_only=True ({type(error).__name__}: "
            f"{error}). It may be truncated, from another program, or contain arbitrary Python objects; "
            "delete it (or pass resume=False) to start afresh."
        ) from error
    needed = {"format", "model", "optimizer", "optimizer_class", "ema", "step", "history", "log_window", "scaler",
              "rng"}
    if not isinstance(state, dict) or not needed <= set(state):
        raise ValueError(f"{path} is not a checkpoint written by course_lib.train.fit; delete it or pass resume=False")
    if state["format"] != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {state['format']}, this version reads {CHECKPOINT_FORMAT}")
    return state


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Any],
    loader: Iterable[Any],
    *,
    steps: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = _DEFAULT_LR,
    weight_decay: float = _DEFAULT_WEIGHT_DECAY,
    clip_grad_norm: float | None = None,
    ema_decay: float | None = None,
    device: torch.device | str | None = None,
    amp: bool = False,
    log_every: int = 10,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str = "training",
    callback: Callable[[int, nn.Module, History], Any] | None = None,
) -> TrainResult:
    r"""Train ``model`` for ``steps`` optimisation steps on batches from ``loader``; return a :class:`TrainResult`.

    Arguments:
        model: an ``nn.Module``; moved to ``device`` and trained in place (train mode during the loop,
            eval mode when ``fit`` returns).
        loss_fn: ``loss_fn(model, batch) -> loss`` or ``-> (loss, {"name": float_or_tensor, ...})``;
            ``loss`` is a 0-dim floating tensor attached to the graph, ``batch`` is what the loader yields,
            moved to the device (tensors, or tuples/lists/dicts of tensors). The names ``"loss"`` and
            ``"grad_norm"`` are reserved.
        loader: a re-iterable of batches (``InMemoryLoader``, ``DataLoader``, a list of batches);
            ``fit`` starts a new epoch whenever one ends. A one-shot iterator (a generator) also works
            while it lasts.
        steps: the *total* number of optimisation steps (with ``resume``, including those already done).
        optimizer: used as given; by default ``AdamW(params, lr, weight_decay)`` over the parameters
            that require grad. Passing both ``optimizer`` and ``lr``/``weight_decay`` is an error.
        clip_grad_norm: ``c``: rescale the gradient so that its global L2 norm
            :math:`\lVert g \rVert_2 = (\sum_p \lVert g_p \rVert_2^2)^{1/2}` is at most ``c``; the
            norm *before* clipping is logged as ``"grad_norm"``.
        ema_decay: ``beta`` in (0, 1): keep an :class:`EMA` of the weights (with warm-up, so that short
            runs are not dominated by the initialisation), updated after every optimiser step.
        device: default :func:`course_lib.device.get_device`.
        amp: mixed precision via :func:`course_lib.device.autocast`, with a ``GradScaler`` where
            :func:`course_lib.device.needs_grad_scaler` says so; a no-op on the CPU.
        log_every: every ``log_every`` steps (and at the last step), append to the history the
            averages of the loss and the logged quantities over the steps since the previous row,
            update the progress bar and call ``callback``.
        checkpoint_path, checkpoint_every: save ``{model, optimizer, ema, step, history, scaler, rng}``
            every ``checkpoint_every`` steps and at the end (atomically: a temporary file, then a rename).
        resume: if ``checkpoint_path`` exists, load it (``weights_only=True``) and continue from its step
            up to ``steps``; if it does not exist, start from scratch. To continue on the *same* data,
            the loader is replayed: ``fit`` draws and discards as many batches as steps already done
            (cheap for in-memory loaders), and the global torch RNG is restored. So with a freshly made
            loader whose order is deterministic, 50 + 50 resumed steps give the same weights as 100.
        progress: show a ``tqdm`` progress bar labelled ``desc``.
        callback: ``callback(step, model, history)`` after each history row (e.g. to draw samples);
            the model is put back into train mode afterwards.

    Raises:
        NonFiniteLossError: the loss (or, with clipping, the gradient norm) is NaN/inf; the model,
            optimizer and EMA are left as they were before that step.
        ValueError / TypeError: inconsistent arguments, with the fix in the message.
    """
    # ---- arguments --------------------------------------------------------------------------------
    if not isinstance(model, nn.Module):
        raise TypeError(f"fit: model must be an nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError("fit: loss_fn must be a function loss_fn(model, batch) -> loss or (loss, dict)")
    if isinstance(loader, torch.Tensor):
        raise TypeError(
            "fit: loader is a tensor, which would be iterated row by row; wrap it in a loader, e.g. "
            "course_lib.data.InMemoryLoader(x, batch_size=128)"
        )
    if not isinstance(loader, Iterable):
        raise TypeError(
            "fit: loader must be an iterable of batches (InMemoryLoader, DataLoader, list), "
            f"got {type(loader).__name__}"
        )
    _check_positive_int(steps, "steps")
    _check_positive_int(log_every, "log_every")
    _check_positive_int(checkpoint_every, "checkpoint_every", allow_none=True)
    if clip_grad_norm is not None and (
        isinstance(clip_grad_norm, bool) or not isinstance(clip_grad_norm, Real) or not clip_grad_norm > 0
    ):
        raise ValueError(f"fit: clip_grad_norm must be a positive number (e.g. 1.0) or None, got {clip_grad_norm!r}")
    if ema_decay is not None:
        _check_decay(ema_decay)
    if not isinstance(amp, bool):
        raise TypeError(f"fit: amp must be True or False, got {amp!r}")
    if checkpoint_every is not None and checkpoint_path is None:
        raise ValueError("fit: checkpoint_every needs checkpoint_path (where to save)")
    if resume and checkpoint_path is None:
        raise ValueError("fit: resume=True needs checkpoint_path (the checkpoint to resume from)")
    if callback is not None and not callable(callback):
        raise TypeError("fit: callback must be a function callback(step, model, history)")
    ckpt_path = Path(checkpoint_path) if checkpoint_path is not None else None

    dev = _device.get_device(device)
    model.to(dev)

    if optimizer is None:
        for name, value in (("lr", lr), ("weight_decay", weight_decay)):
            if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
                raise ValueError(f"fit: {name} must be a finite number, got {value!r}")
        if not lr > 0:
            raise ValueError(f"fit: lr must be positive, got {lr!r}")
        if weight_decay < 0:
            raise ValueError(f"fit: weight_decay must be >= 0, got {weight_decay!r}")
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("fit: the model has no parameters that require grad; nothing to train "
                             "(did you freeze everything with requires_grad_(False)?)")
        optimizer = torch.optim.AdamW(params, lr=float(lr), weight_decay=float(weight_decay))
    else:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"fit: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if lr != _DEFAULT_LR or weight_decay != _DEFAULT_WEIGHT_DECAY:
            raise ValueError(
                "fit: lr/weight_decay are only used for the default optimizer; you passed an optimizer as well, "
                "so set them on it, e.g. torch.optim.AdamW(model.parameters(), lr=..., weight_decay=...)"
            )
        model_ids = {id(p) for p in model.parameters()}
        foreign = sum(1 for g in optimizer.param_groups for p in g["params"] if id(p) not in model_ids)
        if foreign:
            raise ValueError(
                f"fit: the optimizer holds {foreign} tensor(s) that are not parameters of the model; was it "
                "made for another model (e.g. before the model was re-created)? Make it from model.parameters()."
            )
    opt_params = [p for g in optimizer.param_groups for p in g["params"]]

    scaler = torch.amp.GradScaler(dev.type) if amp and _device.needs_grad_scaler(dev) else None
    ema = EMA(model, ema_decay, warmup=True) if ema_decay is not None else None
    history = History()
    window = _Window()
    start = 0

    # ---- resume -----------------------------------------------------------------------------------
    rng_state = None
    if resume and ckpt_path is not None and ckpt_path.exists():
        state = _load_checkpoint(ckpt_path, dev)
        start = int(state["step"])
        if start > steps:
            raise ValueError(
                f"fit: the checkpoint {ckpt_path} is at step {start}, beyond steps={steps}; ask for steps >= {start} "
                "or pass resume=False to start afresh"
            )
        if state["optimizer_class"] != type(optimizer).__name__:
            raise ValueError(
                f"fit: the checkpoint was made with {state['optimizer_class']}, "
                f"this run uses {type(optimizer).__name__}; "
                "resume with the same optimizer or pass resume=False"
            )
        try:
            model.load_state_dict(state["model"], strict=True)
        except RuntimeError as error:
            raise ValueError(
                f"fit: the checkpoint {ckpt_path} does not fit this model ({error}); it was made for a different "
                "architecture: delete it or pass resume=False"
            ) from error
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None:
            if state["ema"] is None:
                warnings.warn("fit: the checkpoint has no EMA; the average starts afresh from the resumed weights")
                ema = EMA(model, ema_decay, warmup=True)
            else:
                ema.load_state_dict(state["ema"])
                if ema.decay != float(ema_decay):
                    raise ValueError(
                        f"fit: the checkpoint's EMA used decay {ema.decay}, this call asks for {ema_decay}; "
                        "resume with the same ema_decay or pass resume=False"
                    )
        elif state["ema"] is not None:
            warnings.warn("fit: the checkpoint has an EMA but ema_decay=None; the EMA is dropped")
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        history = History.from_dict(state["history"])
        window.load(state["log_window"])
        rng_state = state["rng"]

    # ---- batches ----------------------------------------------------------------------------------
    iterator = iter(loader)
    one_shot = iterator is loader  # a generator: it cannot be restarted for a new epoch
    served = 0

    def next_batch() -> Any:
        nonlocal iterator, served
        try:
            batch = next(iterator)
        except StopIteration:
            if one_shot:
                raise ValueError(
                    f"fit: the loader is a one-shot iterator (e.g. a generator) and ran out after {served} batches; "
                    "pass a re-iterable loader (InMemoryLoader, DataLoader or a list of batches)"
                ) from None
            iterator = iter(loader)
            try:
                batch = next(iterator)
            except StopIteration:
                raise ValueError(
                    "fit: the loader yielded no batches; is the dataset empty, or is batch_size larger than the "
                    "dataset with drop_last=True?"
                ) from None
        served += 1
        return batch

    for _ in range(start):  # replay the data already seen, so a resumed run continues on the same batches
        next_batch()
    if rng_state is not None:
        torch.set_rng_state(rng_state["torch"].cpu())
        cuda_states = rng_state.get("cuda") or []
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])

    def save_checkpoint(step: int) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "optimizer_class": type(optimizer).__name__,
            "ema": ema.state_dict() if ema is not None else None,
            "step": int(step),
            "history": history.as_dict(),
            "log_window": window.state(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        }
        _atomic_torch_save(state, ckpt_path)

    # ---- the loop ---------------------------------------------------------------------------------
    from tqdm.auto import tqdm

    started = time.perf_counter()
    buffers = list(model.buffers())

    def restore_and_raise(step: int, saved_buffers: list[torch.Tensor], value: float, quantity: str) -> None:
        with torch.no_grad():
            for buffer, saved in zip(buffers, saved_buffers):
                buffer.copy_(saved)
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLossError(step, value, quantity=quantity, lr=optimizer.param_groups[0].get("lr"))

    bar = tqdm(total=steps, initial=start, desc=desc, disable=not progress, dynamic_ncols=True)
    try:
        model.train()
        for step in range(start + 1, steps + 1):
            batch = _device.to_device(next_batch(), dev)
            saved_buffers = [b.detach().clone() for b in buffers]  # forward passes may update them (BatchNorm)

            with _device.autocast(dev, enabled=amp):
                output = loss_fn(model, batch)
            loss, logs = _split_output(output, step)
            loss_value = float(loss.detach().float().item())
            if not math.isfinite(loss_value):
                restore_and_raise(step, saved_buffers, loss_value, "loss")
            if not loss.requires_grad:
                raise ValueError(
                    "fit: the loss does not depend on any parameter that requires grad; was it computed under "
                    "torch.no_grad(), detached, or rebuilt from .item()?"
                )

            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
            else:
                loss.backward()
            grad_norm = None
            if clip_grad_norm is not None:
                if scaler is not None:
                    scaler.unscale_(optimizer)
                grad_norm = float(torch.nn.utils.clip_grad_norm_(opt_params, float(clip_grad_norm)))
                if not math.isfinite(grad_norm) and scaler is None:
                    restore_and_raise(step, saved_buffers, grad_norm, "gradient norm")
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            if ema is not None:
                ema.update(model)

            window.add("loss", loss_value)
            for name, value in logs.items():
                window.add(name, _as_float(value, what=f"loss_fn's logged value {name!r}"))
            if grad_norm is not None and math.isfinite(grad_norm):
                window.add("grad_norm", grad_norm)
            bar.update(1)

            if step % log_every == 0 or step == steps:
                means = window.means()
                history.log(step, means)
                window.clear()
                shown = {name: f"{value:.4g}" for name, value in list(means.items())[:4]}
                bar.set_postfix(shown, refresh=False)
                if callback is not None:
                    callback(step, model, history)
                    model.train()
            if ckpt_path is not None and (
                step == steps or (checkpoint_every is not None and step % checkpoint_every == 0)
            ):
                save_checkpoint(step)
    finally:
        bar.close()
    model.eval()
    return TrainResult(model=model, history=history, ema=ema, steps=steps, seconds=time.perf_counter() - started)
