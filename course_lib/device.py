"""The one place in the course where a device is chosen: cuda > mps > cpu.

Notebooks call ``get_device()`` and never name a device themselves. The
environment variable ``COURSE_DEVICE`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides the
choice, e.g. to force the CPU on a machine with a busy GPU; the grader sets ``COURSE_DEVICE=cpu``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then the CPU.

    ``prefer`` (or ``$COURSE_DEVICE``) names a device explicitly; asking for one that is not
    available is an error that says what is, rather than a silent fall-back.
    """
    requested = prefer if prefer is not None else os.environ.get("COURSE_DEVICE", "").strip() or None
    if requested is not None:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {requested!r} was requested but PyTorch sees no CUDA GPU here; "
                "unset COURSE_DEVICE (or pass prefer=None) to use the CPU"
            )
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"device {requested!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s) found")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {requested!r} was requested but MPS is not available; unset COURSE_DEVICE")
        if device.type not in {"cpu", "cuda", "mps"}:
            raise ValueError(f"unsupported device {requested!r}; use cpu, cuda or mps")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def amp_dtype(device: torch.device | str | None = None) -> torch.dtype | None:
    """The dtype for mixed-precision autocast on ``device``, or ``None`` where it does not pay.

    bfloat16 on GPUs that support it (Ampere and newer: no loss scaling needed), float16 on older
    CUDA GPUs and MPS, and ``None`` on the CPU, where autocast mostly slows small models down.
    """
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


def needs_grad_scaler(device: torch.device | str | None = None) -> bool:
    """True when mixed precision on ``device`` uses float16 and therefore needs a ``GradScaler``."""
    device = torch.device(device) if device is not None else get_device()
    return device.type == "cuda" and amp_dtype(device) == torch.float16


def autocast(device: torch.device | str | None = None, enabled: bool = True):
    """A mixed-precision context for ``device`` (a no-op where :func:`amp_dtype` is ``None``)."""
    device = torch.device(device) if device is not None else get_device()
    dtype = amp_dtype(device)
    if not enabled or dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move a tensor, or a tuple/list/dict of tensors, to ``device`` (other values pass through)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        moved = [to_device(item, device) for item in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


def describe(device: torch.device | str | None = None) -> str:
    """One line naming the device, e.g. ``cuda (NVIDIA H100, bf16 autocast)`` or ``cpu (2 threads)``."""
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        dtype = amp_dtype(device)
        return f"{device} ({name}, {str(dtype).replace('torch.', '')} autocast)"
    if device.type == "mps":
        return "mps (Apple GPU, float16 autocast)"
    return f"cpu ({torch.get_num_threads()} threads)"
