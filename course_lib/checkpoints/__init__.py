"""Shipped model weights, verified by sha256, and weights trained on demand and cached.

Some models cannot reach good quality on a laptop CPU within a lab session (a 28x28 DDPM). For
those the repository ships a small checkpoint made by a script in the repo, and a notebook trains
live for a few minutes to show the dynamics, then loads the shipped weights::

    model, source = checkpoints.load_or_train("ddpm_mnist", model, train_fn)
    print(f"weights: {source}")       # "shipped", "cache" or "trained"

Files live beside ``manifest.json`` in this folder. The manifest maps each name to::

    {"file": "ddpm_mnist.pt", "sha256": "...", "bytes": 1234567,
     "script": "scripts/train_ddpm_mnist.py", "data": "mnist (embedded, 4,000 train digits)",
     "steps": 20000, "notes": "EMA weights, decay 0.999"}

Rules: a checkpoint is a plain ``state_dict`` (a dict ``str -> Tensor``), saved on the CPU, loaded
with ``torch.load(..., weights_only=True)`` (no arbitrary Python objects are ever unpickled) and
only after its sha256 matches the manifest.

Weights trained on demand by :func:`load_or_train` are cached in
``config.cache_dir() / "checkpoints" / <mode> / <name>.pt``, separately for quick and full mode, so
that the test suite's quick-mode models never stand in for a learner's full-mode ones.

``DIRECTORY`` (this package's folder) is read at every call; tests point it at a temporary folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from course_lib._hashing import sha256_file
import torch
from torch import nn

from course_lib import config

__all__ = [
    "DIRECTORY",
    "MANIFEST",
    "ChecksumError",
    "path",
    "names",
    "manifest",
    "cache_path",
    "load_state_dict",
    "load_into",
    "load_or_train",
    "save_for_shipping",
    "verify_all",
]

#: Folder holding ``manifest.json`` and the shipped ``.pt`` files (read afresh at every call).
DIRECTORY: Path = Path(__file__).resolve().parent
#: File name of the manifest inside :data:`DIRECTORY`.
MANIFEST = "manifest.json"

_FIELDS = ("file", "sha256", "bytes", "script", "data", "steps", "notes")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ChecksumError(ValueError):
    """A shipped checkpoint's size or sha256 differs from the manifest: the file is corrupt or was modified."""


# --------------------------------------------------------------------------------------------------
# manifest
# --------------------------------------------------------------------------------------------------


def _dir(directory: str | os.PathLike | None = None) -> Path:
    return Path(directory) if directory is not None else Path(DIRECTORY)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".pt"):
        raise ValueError(
            f"checkpoint name {name!r} is not valid: use letters, digits, '_', '-' and '.', starting with a letter "
            "or digit, without the '.pt' suffix (e.g. 'ddpm_mnist')"
        )
    return name


def manifest(directory: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The parsed manifest: name -> ``{file, sha256, bytes, script, data, steps, notes}`` (``{}`` if absent)."""
    file = _dir(directory) / MANIFEST
    if not file.exists():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not valid JSON ({error}); restore it from the repository") from error
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(
            f"{file} must map names to objects {{file, sha256, bytes, ...}}; restore it from the repository"
        )
    return data


def names() -> list[str]:
    """The names of the shipped checkpoints, sorted."""
    return sorted(manifest())


def _entry(name: str) -> dict[str, Any]:
    _check_name(name)
    entries = manifest()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none (the manifest is empty)"
        raise ValueError(f"no shipped checkpoint named {name!r}; known checkpoints: {known}")
    entry = entries[name]
    missing = [field for field in _FIELDS if field not in entry]
    if missing:
        raise ValueError(f"the manifest entry for {name!r} lacks {missing}; regenerate it with save_for_shipping")
    file = entry["file"]
    if not isinstance(file, str) or Path(file).name != file or not file.endswith(".pt"):
        raise ValueError(f"the manifest entry for {name!r} names the file {file!r}; it must be a bare 'name.pt'")
    return entry


def path(name: str) -> Path:
    """Where the shipped file of ``name`` lives (an unknown name is an error listing the known ones)."""
    return _dir() / _entry(name)["file"]


_sha256 = sha256_file


def _regenerate_hint(entry: Mapping[str, Any]) -> str:
    return (
        f"regenerate it with `python {entry['script']}` (trained on {entry['data']} for {entry['steps']} steps), "
        "or restore the original from the course repository"
    )


def _verify(name: str) -> tuple[Path, dict[str, Any]]:
    """Check presence, size and sha256 of a shipped file; return (path, entry) or raise."""
    entry = _entry(name)
    file = _dir() / entry["file"]
    if not file.exists():
        raise FileNotFoundError(
            f"the shipped checkpoint {name!r} is listed in {MANIFEST} but {file} is missing; {_regenerate_hint(entry)}"
        )
    size = file.stat().st_size
    if size != entry["bytes"]:
        raise ChecksumError(
            f"the checkpoint file {file} is corrupt or was modified: it has {size} bytes, the manifest expects "
            f"{entry['bytes']}; {_regenerate_hint(entry)}"
        )
    digest = _sha256(file)
    if digest != entry["sha256"]:
        raise ChecksumError(
            f"the checkpoint file {file} is corrupt or was modified: its sha256 is {digest}, the manifest expects "
            f"{entry['sha256']}; {_regenerate_hint(entry)}"
        )
    return file, entry


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------


def _torch_load_state_dict(file: Path, map_location: Any, what: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as error:
        raise ValueError(
            f"{what} ({file}) could not be loaded with weights_only=True: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}. Checkpoints must be plain state_dicts of tensors; "
            "the course never unpickles arbitrary Python objects, which could run code."
        ) from error
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{what} ({file}) is not a state_dict (a dict of name -> tensor)")
    return state


def load_state_dict(name: str, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The shipped ``state_dict`` of ``name``, after checking its size and sha256 against the manifest.

    Raises ``ValueError`` for an unknown name (listing the known ones), ``FileNotFoundError`` if the
    file is missing and :class:`ChecksumError` if it is corrupt or modified; each says which script
    regenerates the file. Loading uses ``weights_only=True``.
    """
    file, _ = _verify(name)
    return _torch_load_state_dict(file, map_location, f"the shipped checkpoint {name!r}")


def _load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> nn.Module:
    """``model.load_state_dict(state, strict=True)`` with an error that lists what differs."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module to load {what} into, got {type(model).__name__}")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [
        f"{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(own[key].shape)}"
        for key in own
        if key in state and tuple(state[key].shape) != tuple(own[key].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append("shape mismatch: " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))
        if missing:
            parts.append(f"missing from the checkpoint: {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"not in the model: {unexpected[:5]}" + (" ..." if len(unexpected) > 5 else ""))
        raise ValueError(
            f"{what} does not fit this model ({'; '.join(parts)}). Build the model with the same architecture "
            "and sizes as the checkpoint (see its notes in the manifest)."
        )
    model.load_state_dict(state, strict=True)
    return model


def load_into(model: nn.Module, name: str) -> nn.Module:
    """Load the verified shipped weights of ``name`` into ``model`` (strict: same keys and shapes); return it."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_into(model, name): model must be an nn.Module, got {type(model).__name__}")
    return _load_strict(model, load_state_dict(name), f"the shipped checkpoint {name!r}")


def cache_path(name: str) -> Path:
    """Where :func:`load_or_train` caches weights trained on demand, per mode:
    ``config.cache_dir() / "checkpoints" / config.mode() / f"{name}.pt"``."""
    return config.cache_dir() / "checkpoints" / config.mode() / f"{_check_name(name)}.pt"


def load_or_train(
    name: str,
    model: nn.Module,
    train_fn: Callable[[nn.Module], Any],
    *,
    cache: bool = True,
) -> tuple[nn.Module, str]:
    """Give ``model`` trained weights, the cheapest way available; return ``(model, source)``.

    1. ``"shipped"``: ``name`` is in the manifest and its file passes the sha256 check.
    2. ``"cache"``: weights trained earlier in this mode are in :func:`cache_path` (and ``cache=True``).
    3. ``"trained"``: ``train_fn(model)`` is called now; it trains ``model`` in place and returns
       ``None``, the model, or a ``TrainResult`` (whose ``.model`` is then used). With ``cache=True``
       the weights are saved to the cache for next time.

    A shipped file that is missing or fails its check, or a cache file that does not load or does not
    fit the model, is reported with a warning and skipped (never silently). The model is returned in
    eval mode, whichever the source.
    """
    _check_name(name)
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_or_train: model must be an nn.Module, got {type(model).__name__}")
    if not callable(train_fn):
        raise TypeError("load_or_train: train_fn must be a function train_fn(model) that trains the model")

    if name in manifest():
        try:
            load_into(model, name)
            return model.eval(), "shipped"
        except (FileNotFoundError, ChecksumError) as error:
            warnings.warn(f"{error}. Falling back to cached or freshly trained weights.", stacklevel=2)

    cached = cache_path(name)
    if cache and cached.exists():
        try:
            state = _torch_load_state_dict(cached, "cpu", f"the cached weights of {name!r}")
            _load_strict(model, state, f"the cached weights of {name!r}")
            return model.eval(), "cache"
        except ValueError as error:
            warnings.warn(f"{error}. Training afresh and replacing the cache file.", stacklevel=2)

    result = train_fn(model)
    if result is not None:
        trained = getattr(result, "model", result)
        if not isinstance(trained, nn.Module):
            raise TypeError(
                "load_or_train: train_fn(model) must return None, the trained model or a TrainResult, "
                f"got {type(result).__name__}"
            )
        model = trained
    if cache:
        _atomic_write(cached, _serialise(_cpu_state_dict(model.state_dict())))
    return model.eval(), "trained"


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------


def _cpu_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    if not isinstance(state, Mapping):
        raise TypeError(f"expected a state_dict (a dict of name -> tensor), got {type(state).__name__}; "
                        "pass model.state_dict() (or ema.module.state_dict())")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise TypeError(
                f"a state_dict maps names to tensors; {key!r} -> {type(value).__name__} is not allowed "
                "(checkpoints hold weights only, loadable with weights_only=True)"
            )
        # clone: a view would otherwise drag its whole storage into the file
        out[key] = value.detach().to("cpu").contiguous().clone()
    return out


def _serialise(obj: Any) -> bytes:
    buffer = io.BytesIO()  # in memory: the archive's internal name is then fixed, so the bytes are reproducible
    torch.save(obj, buffer)
    return buffer.getvalue()


def _atomic_write(file: Path, data: bytes) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, file)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_for_shipping(
    name: str,
    state_dict: Mapping[str, torch.Tensor],
    *,
    script: str,
    data: str,
    steps: int,
    notes: str,
    directory: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write ``<name>.pt`` (CPU tensors, reproducible bytes) and its manifest entry; return the entry.

    ``script`` is the repo-relative script that made the weights (``scripts/train_ddpm_mnist.py``),
    ``data`` what it was trained on, ``steps`` how long, ``notes`` anything a reader needs (EMA or not,
    the model's sizes). ``directory`` defaults to :data:`DIRECTORY`. The manifest is rewritten with
    sorted keys and two-space indentation, so regenerating identical weights gives an identical repo.
    """
    _check_name(name)
    for field, value in (("script", script), ("data", data)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"save_for_shipping: {field} must be a non-empty string, got {value!r}")
    if not isinstance(notes, str):
        raise TypeError(f"save_for_shipping: notes must be a string, got {type(notes).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"save_for_shipping: steps must be a non-negative int, got {steps!r}")
    folder = _dir(directory)
    payload = _serialise(_cpu_state_dict(state_dict))
    entry = {
        "file": f"{name}.pt",
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
        "script": script,
        "data": data,
        "steps": steps,
        "notes": notes,
    }
    _atomic_write(folder / entry["file"], payload)
    entries = manifest(folder)
    entries[name] = entry
    text = json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _atomic_write(folder / MANIFEST, text.encode("utf-8"))
    return entry


def verify_all() -> dict[str, str]:
    """Check every manifest entry (presence, size, sha256, loadable as a state_dict with weights_only=True).

    Returns name -> ``"ok"`` or a description of the problem. ``.pt`` files in the folder that the
    manifest does not list are reported too (under their file name).
    """
    report: dict[str, str] = {}
    entries = manifest()
    for name in sorted(entries):
        try:
            file, _ = _verify(name)
            _torch_load_state_dict(file, "cpu", f"the shipped checkpoint {name!r}")
            report[name] = "ok"
        except (ValueError, FileNotFoundError) as error:
            report[name] = str(error)
    listed = {entry.get("file") for entry in entries.values()}
    for file in sorted(_dir().glob("*.pt")):
        if file.name not in listed:
            report[file.name] = f"{file} is not listed in {MANIFEST}; add it with save_for_shipping or delete it"
    return report
