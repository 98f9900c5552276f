"""Pictures for the course: image grids, training curves, 2-D densities, vector fields, animations.

Every function takes ``torch.Tensor`` (or NumPy) inputs straight from a model, on any device (they
are detached and copied to the CPU here), checks them, and draws with matplotlib:

- :func:`image_grid` - images ``(B, C, H, W)`` / ``(B, H, W)`` / one image -> ``np.ndarray`` in [0, 1]
- :func:`show_images` - the same, plus optional per-image ``labels`` -> ``Figure``
- :func:`plot_history` - a ``History`` (``.steps``, ``.values``) or ``{name: list}`` -> ``Figure``
- :func:`plot_density_2d` - ``log_prob_fn: (N, 2) -> (N,)`` -> ``Figure``
- :func:`scatter_2d` - points ``(N, 2)``, optional labels ``(N,)`` -> ``Figure``
- :func:`plot_vector_field` - ``fn: (N, 2) -> (N, 2)`` -> ``Figure``
- :func:`plot_trajectory_2d` - paths ``(T, N, 2)`` -> ``Figure``
- :func:`animate_points` - frames ``(T, N, 2)`` -> ``IPython.display.HTML``
- :func:`animate_images` - frames ``(T, B, C, H, W)`` -> ``IPython.display.HTML``

Images carry a named value range (see :mod:`course_lib.data.ranges`): ``"unit"`` [0, 1],
``"symmetric"`` [-1, 1], ``"binary"`` {0, 1} or ``"counts"`` (integer levels ``0..L-1``, which needs
``levels=L``). ``value_range="auto"`` guesses it from the values; anything that fits no range - most
often 0..255 pixels or a diffusion model's noisy ``x_t`` - is an error that names the fix, never a
silent rescaling (``clip=True`` clips explicitly, e.g. for ``x_t``).

In a notebook, the plotting functions return the matplotlib ``Figure`` (draw on an existing ``ax=``
to compose panels). As with any matplotlib call, end the line with ``;`` or assign the result when it
is the last line of a cell, so the figure is not shown twice. The animations render to self-contained
JavaScript (``FuncAnimation.to_jshtml``), close their figure (so no stray still image appears), and are
subsampled to at most ``max_frames`` frames so notebooks stay small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from course_lib.data.ranges import VALUE_RANGES, check_range, guess_range

__all__ = [
    "image_grid",
    "show_images",
    "plot_history",
    "plot_density_2d",
    "scatter_2d",
    "plot_vector_field",
    "plot_trajectory_2d",
    "animate_points",
    "animate_images",
]

_IMAGE_SHAPES = "(B, C, H, W) with C in {1, 3}, (B, H, W), or a single image (C, H, W) / (H, W)"
_ANIMATION_DPI = 80


# ============================================================================ input helpers
def _as_tensor(x: Any, name: str) -> torch.Tensor:
    """A detached CPU tensor from a tensor or a NumPy array (dtype unchanged); anything else is an error."""
    if torch.is_tensor(x):
        return x.detach().cpu()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or a NumPy array, got {type(x).__name__}")


def _check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_lim(lim: Any, name: str) -> tuple[float, float]:
    if (
        not isinstance(lim, (tuple, list))
        or len(lim) != 2
        or not all(isinstance(v, Real) and not isinstance(v, bool) for v in lim)
    ):
        raise ValueError(f"{name} must be a pair of numbers (low, high), e.g. (-4, 4); got {lim!r}")
    lo, hi = float(lim[0]), float(lim[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} = {lim!r} must satisfy low < high with finite values")
    return lo, hi


def _resolve_lim(lim: Any) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """``None``, ``a`` (both axes (-a, a)), ``(lo, hi)`` (both axes) or ``((xlo, xhi), (ylo, yhi))``."""
    if lim is None:
        return None
    if isinstance(lim, Real) and not isinstance(lim, bool):
        if not (math.isfinite(lim) and lim > 0):
            raise ValueError(f"lim = {lim!r}: a single number means (-lim, lim) and must be positive")
        return (-float(lim), float(lim)), (-float(lim), float(lim))
    if isinstance(lim, (tuple, list)) and len(lim) == 2 and all(isinstance(v, (tuple, list)) for v in lim):
        return _check_lim(lim[0], "lim[0] (x limits)"), _check_lim(lim[1], "lim[1] (y limits)")
    both = _check_lim(lim, "lim")
    return both, both


def _as_points(points: Any, name: str) -> np.ndarray:
    """``(N, 2)`` float64 array of finite points."""
    t = _as_tensor(points, name)
    if t.dim() != 2 or t.shape[1] != 2:
        hint = " (for a (T, N, 2) sequence use animate_points or plot_trajectory_2d)" if t.dim() == 3 else ""
        raise ValueError(f"{name} must have shape (N, 2), got {tuple(t.shape)}{hint}")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    arr = t.double().numpy()
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise ValueError(f"{name} has {bad} point(s) with NaN or inf coordinates; did the model or sampler diverge?")
    return arr


def _as_point_frames(frames: Any, name: str) -> list[np.ndarray]:
    """A list of ``(N_t, 2)`` arrays from a ``(T, N, 2)`` tensor/array or a list of ``(N, 2)``."""
    if torch.is_tensor(frames) or isinstance(frames, np.ndarray):
        t = _as_tensor(frames, name)
        if t.dim() != 3 or t.shape[2] != 2:
            raise ValueError(f"{name} must have shape (T, N, 2) or be a list of (N, 2) tensors, got {tuple(t.shape)}")
        frames = list(t)
    if not isinstance(frames, Sequence) or isinstance(frames, (str, bytes)):
        raise TypeError(f"{name} must be a (T, N, 2) tensor or a list of (N, 2) tensors, got {type(frames).__name__}")
    if len(frames) == 0:
        raise ValueError(f"{name} is empty: there is nothing to draw")
    return [_as_points(f, f"{name}[{i}]") for i, f in enumerate(frames)]


def _new_axes(ax: Axes | None, figsize: tuple[float, float] | None) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), got {type(ax).__name__}")
    return ax.figure, ax


def _apply_lim(ax: Axes, lim: Any) -> None:
    limits = _resolve_lim(lim)
    if limits is not None:
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])


def _subsample_indices(num_frames: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` evenly spaced frame indices, always including the first and the last."""
    max_frames = _check_positive_int(max_frames, "max_frames", minimum=2)
    if num_frames <= max_frames:
        return np.arange(num_frames)
    return np.unique(np.linspace(0, num_frames - 1, max_frames).round().astype(int))


def _check_frame_labels(frame_labels: Sequence[Any] | None, num_frames: int) -> list[str] | None:
    if frame_labels is None:
        return None
    if isinstance(frame_labels, (str, bytes)) or len(frame_labels) != num_frames:
        raise ValueError(
            f"frame_labels needs one label per frame ({num_frames}), got "
            f"{len(frame_labels) if not isinstance(frame_labels, (str, bytes)) else 'a string'}"
        )
    return [_format_label(v) for v in frame_labels]


def _format_label(value: Any) -> str:
    if torch.is_tensor(value) or isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _to_html(fig: Figure, update: Callable[[int], Any], num_frames: int, interval: int):
    """Render an animation to JavaScript HTML and close its figure (so it is not drawn a second time)."""
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    interval = _check_positive_int(interval, "interval (milliseconds between frames)")
    try:
        anim = FuncAnimation(fig, update, frames=num_frames, interval=interval, blit=False)
        html = anim.to_jshtml()
    finally:
        plt.close(fig)
    return HTML(html)


# ============================================================================ images
def _image_batch(x: Any, name: str = "x") -> torch.Tensor:
    """Reshape an image input to ``(B, C, H, W)`` on the CPU without touching its values.

    A 3-D tensor is one image ``(C, H, W)`` when its first size is 1 or 3 (as in
    ``torchvision.utils.make_grid``) and a batch of grayscale images ``(B, H, W)`` otherwise; to show
    three grayscale images pass ``x.unsqueeze(1)``.
    """
    t = _as_tensor(x, name)
    if t.dim() == 2:
        t = t[None, None]
    elif t.dim() == 3:
        t = t[None] if t.shape[0] in (1, 3) else t[:, None]
    elif t.dim() == 4:
        if t.shape[1] not in (1, 3):
            hint = ""
            if t.shape[-1] in (1, 3):
                hint = f"; it looks channels-last (B, H, W, C): use {name}.permute(0, 3, 1, 2)"
            raise ValueError(f"{name} has shape {tuple(t.shape)} with {t.shape[1]} channels; expected {_IMAGE_SHAPES}{hint}")
    else:
        raise ValueError(f"{name} has shape {tuple(t.shape)}; expected {_IMAGE_SHAPES}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} holds no images (batch size 0)")
    if t.shape[2] == 0 or t.shape[3] == 0:
        raise ValueError(f"{name} has empty images of size {tuple(t.shape[2:])}")
    return t


def _resolve_value_range(x: torch.Tensor, value_range: str, levels: int | None, clip: bool, name: str) -> str:
    if levels is not None:
        _check_positive_int(levels, "levels", minimum=2)
    if value_range == "auto":
        if clip:
            raise ValueError(
                "clip=True needs an explicit value_range (e.g. value_range='symmetric' for a diffusion model's "
                "x_t), since there is no range to clip to when it is guessed"
            )
        if levels is not None:
            return "counts"
        try:
            guessed = guess_range(x)
        except ValueError as err:
            raise ValueError(
                f"{name}: {err}. For a diffusion model's noisy x_t pass value_range='symmetric', clip=True"
            ) from None
        if guessed == "counts":
            hi = float(x.max())
            fix = "divide by 255 (x / 255)" if hi <= 255 else "rescale it to [0, 1]"
            raise ValueError(
                f"{name} holds integer values up to {hi:g}. If they are 0..255 pixel values, {fix}; if they "
                f"are discrete levels 0..L-1, pass value_range='counts', levels=L (e.g. levels=17 for the 8x8 digits)"
            )
        return guessed
    if value_range not in VALUE_RANGES:
        raise ValueError(f"unknown value_range {value_range!r}; use 'auto' or one of {sorted(VALUE_RANGES)}")
    if value_range == "counts" and levels is None:
        raise ValueError(
            "value_range='counts' needs levels=L, the number of levels (e.g. 17 for the 8x8 digits), "
            "so that level L-1 is drawn white"
        )
    if levels is not None and value_range != "counts":
        raise ValueError(f"levels={levels} only applies to value_range='counts', not {value_range!r}")
    return value_range


def _to_unit(x: torch.Tensor, value_range: str, levels: int | None, clip: bool, name: str) -> torch.Tensor:
    """Check ``x`` against its (resolved) named range and map it linearly onto [0, 1]."""
    if not x.is_floating_point():
        raise TypeError(
            f"{name} has dtype {x.dtype}; images in the course are float tensors: "
            f"use {name}.float() / 255 for 0..255 pixels (or {name}.float() for levels)"
        )
    value_range = _resolve_value_range(x, value_range, levels, clip, name)
    x = x.float()
    if clip:
        top = float(levels - 1) if value_range == "counts" else VALUE_RANGES[value_range][1]
        x = x.clamp(VALUE_RANGES[value_range][0], top)
        if value_range == "counts":
            x = x.round()
    check_range(x, value_range, name=name, levels=levels if value_range == "counts" else None)
    if value_range == "symmetric":
        x = (x + 1) / 2
    elif value_range == "counts":
        x = x / (levels - 1)
    # check_range allows values 1e-4 outside the range (float round-off): clamp those for imshow.
    return x.clamp(0.0, 1.0)


def _grid_shape(batch: int, nrow: int | None) -> tuple[int, int]:
    """``(rows, cols)``: ``nrow`` images per row (torchvision's meaning), default a near-square grid."""
    cols = math.ceil(math.sqrt(batch)) if nrow is None else min(_check_positive_int(nrow, "nrow"), batch)
    return math.ceil(batch / cols), cols


def _assemble(images: np.ndarray, nrow: int | None, padding: int, pad_value: float) -> np.ndarray:
    """Tile ``(B, C, H, W)`` values in [0, 1] into ``(H', W')`` (C = 1) or ``(H', W', 3)`` (C = 3)."""
    b, c, h, w = images.shape
    rows, cols = _grid_shape(b, nrow)
    p = padding
    grid = np.full((c, rows * (h + p) + p, cols * (w + p) + p), pad_value, dtype=np.float32)
    for i in range(b):
        r, col = divmod(i, cols)
        top, left = p + r * (h + p), p + col * (w + p)
        grid[:, top : top + h, left : left + w] = images[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def _check_padding(padding: Any, pad_value: Any) -> tuple[int, float]:
    padding = _check_positive_int(padding, "padding", minimum=0)
    if isinstance(pad_value, bool) or not isinstance(pad_value, Real) or not 0.0 <= pad_value <= 1.0:
        raise ValueError(f"pad_value is a grey level in [0, 1] (0 black, 1 white), got {pad_value!r}")
    return padding, float(pad_value)


def image_grid(
    x: torch.Tensor,
    nrow: int | None = None,
    padding: int = 1,
    value_range: str = "auto",
    pad_value: float = 0.5,
    *,
    levels: int | None = None,
    clip: bool = False,
) -> np.ndarray:
    """Tile a batch of images into one picture with values in [0, 1], ready for ``plt.imshow``.

    Each named range is mapped linearly onto [0, 1]: ``"unit"`` and ``"binary"`` as they are,
    ``"symmetric"`` by ``(x + 1) / 2``, ``"counts"`` by ``x / (levels - 1)``.

    Args:
        x: ``(B, C, H, W)`` with ``C`` in {1, 3}, ``(B, H, W)`` grayscale, or one image ``(C, H, W)`` /
            ``(H, W)``; a float tensor (any device) or NumPy array. A 3-D input whose first size is 1 or
            3 is read as one image ``(C, H, W)``; pass ``x.unsqueeze(1)`` for 3 grayscale images.
        nrow: images per row (as in ``torchvision.utils.make_grid``); default ``ceil(sqrt(B))``.
        padding: pixels of border between and around the images.
        value_range: ``"auto"`` (guessed with :func:`~course_lib.data.ranges.guess_range`), ``"unit"``,
            ``"symmetric"``, ``"binary"`` or ``"counts"``. Values outside the range raise a
            ``ValueError`` naming the fix (0..255 pixels: divide by 255).
        pad_value: grey level of the border, in [0, 1] (mid-grey separates black and white digits alike).
        levels: the number of levels ``L`` for ``value_range="counts"`` (17 for the 8x8 digits);
            giving it with ``"auto"`` means ``"counts"``.
        clip: clip ``x`` to the named range first (needs an explicit ``value_range``), e.g. to look at
            a diffusion model's noisy ``x_t`` with ``value_range="symmetric"``.

    Returns:
        float32 array ``(H', W')`` for one channel or ``(H', W', 3)`` for three, with
        ``H' = rows (H + padding) + padding`` and ``W' = cols (W + padding) + padding``.
    """
    padding, pad_value = _check_padding(padding, pad_value)
    batch = _image_batch(x)
    unit = _to_unit(batch, value_range, levels, clip, "x")
    return _assemble(unit.numpy(), nrow, padding, pad_value)


def _check_labels(labels: Any, batch: int) -> list[str]:
    if torch.is_tensor(labels) or isinstance(labels, np.ndarray):
        labels = _as_tensor(labels, "labels")
        if labels.dim() != 1:
            raise ValueError(f"labels must be one-dimensional (one per image), got shape {tuple(labels.shape)}")
        labels = labels.tolist()
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a list (or 1-D tensor) with one caption per image, got {type(labels).__name__}")
    if len(labels) != batch:
        raise ValueError(f"labels has {len(labels)} entries but there are {batch} images; give one caption per image")
    return [_format_label(v) for v in labels]


def _default_figsize(rows: int, cols: int, h: int, w: int, padding: int, extra_height: float = 0.0) -> tuple[float, float]:
    """About 0.75 inch per image, the long side between 2 and 8 inches, aspect kept."""
    height_px, width_px = rows * (h + padding) + padding, cols * (w + padding) + padding
    side = min(8.0, max(2.0, 0.75 * max(rows, cols)))
    if width_px >= height_px:
        size = (side, side * height_px / width_px)
    else:
        size = (side * width_px / height_px, side)
    return size[0], size[1] + extra_height


def show_images(
    x: torch.Tensor,
    nrow: int | None = None,
    value_range: str = "auto",
    title: str | None = None,
    ax: Axes | None = None,
    labels: Sequence[Any] | torch.Tensor | None = None,
    figsize: tuple[float, float] | None = None,
    cmap: str = "gray",
    *,
    levels: int | None = None,
    clip: bool = False,
    padding: int = 1,
    pad_value: float = 0.5,
) -> Figure:
    """Draw a batch of images as a grid, optionally with a small caption above each image.

    Args:
        x: images as for :func:`image_grid`: ``(B, C, H, W)`` with C in {1, 3}, ``(B, H, W)``, or one image.
        nrow: images per row; default a near-square grid.
        value_range, levels, clip, padding, pad_value: as for :func:`image_grid`.
        title: title above the grid.
        ax: draw into this Axes (e.g. one panel of ``plt.subplots(1, 2)``); default a new figure.
        labels: one caption per image (a list of str/numbers or a ``(B,)`` tensor, e.g. class labels or
            per-sample log-likelihoods); each image is then drawn in its own small panel with the caption above.
        figsize: inches; default about 0.75 inch per image (only used when ``ax`` is None).
        cmap: colour map for one-channel images (``"gray"``: 0 black, 1 white); RGB images ignore it.

    Returns:
        the matplotlib ``Figure``.
    """
    padding, pad_value = _check_padding(padding, pad_value)
    batch = _image_batch(x)
    unit = _to_unit(batch, value_range, levels, clip, "x")
    b, c, h, w = unit.shape
    rows, cols = _grid_shape(b, nrow)
    captions = _check_labels(labels, b) if labels is not None else None
    if ax is None and figsize is None:
        extra = (0.25 * rows if captions else 0.0) + (0.35 if title else 0.0)
        figsize = _default_figsize(rows, cols, h, w, padding, extra)
    fig, ax = _new_axes(ax, figsize)
    imshow_kwargs = dict(vmin=0.0, vmax=1.0, interpolation="nearest")
    if c == 1:
        imshow_kwargs["cmap"] = cmap
    ax.set_axis_off()
    if captions is None:
        ax.imshow(_assemble(unit.numpy(), nrow, padding, pad_value), **imshow_kwargs)
    else:
        images = unit.numpy()
        gap_x, gap_y = 0.04 / cols, 0.04 / rows
        caption_room = 0.22 / rows
        fontsize = 8 if cols <= 10 else 6
        for i in range(b):
            r, col = divmod(i, cols)
            bounds = [col / cols + gap_x, 1 - (r + 1) / rows + gap_y, 1 / cols - 2 * gap_x, 1 / rows - gap_y - caption_room]
            panel = ax.inset_axes(bounds)
            image = images[i, 0] if c == 1 else images[i].transpose(1, 2, 0)
            panel.imshow(image, **imshow_kwargs)
            panel.set_axis_off()
            panel.set_title(captions[i], fontsize=fontsize, pad=2)
    if title:
        ax.set_title(title)
    return fig


# ============================================================================ training curves
def _history_series(history: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``({name: steps}, {name: values})`` from a History-like object or a ``{name: list}`` dict."""
    if hasattr(history, "steps") and hasattr(history, "values") and isinstance(getattr(history, "values"), Mapping):
        steps = np.asarray(list(history.steps), dtype=float)
        xs, ys = {}, {}
        for key, vals in history.values.items():
            arr = _series_values(vals, key)
            if len(arr) != len(steps):
                raise ValueError(
                    f"history.values[{key!r}] has {len(arr)} entries but history.steps has {len(steps)}; "
                    "the History is inconsistent"
                )
            xs[key], ys[key] = steps, arr
        return xs, ys
    if isinstance(history, Mapping):
        xs, ys = {}, {}
        for key, vals in history.items():
            arr = _series_values(vals, key)
            xs[key], ys[key] = np.arange(len(arr), dtype=float), arr
        return xs, ys
    hint = " (for a TrainResult pass result.history)" if hasattr(history, "history") else ""
    raise TypeError(
        "history must be a course_lib.train.History (attributes .steps and .values) or a dict "
        f"{{name: list of numbers}}, got {type(history).__name__}{hint}"
    )


def _series_values(vals: Any, key: str) -> np.ndarray:
    if torch.is_tensor(vals):
        vals = vals.detach().cpu()
        if vals.dim() != 1:
            raise ValueError(f"history[{key!r}] must be one-dimensional, got shape {tuple(vals.shape)}")
        return vals.double().numpy()
    try:
        arr = np.asarray([float(v) for v in vals], dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"history[{key!r}] must be a list of numbers") from None
    return arr


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` finite values (fewer at the start); NaNs are skipped."""
    finite = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(finite)])
    end = np.arange(1, len(values) + 1)
    start = np.maximum(0, end - window)
    count = ccount[end] - ccount[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (csum[end] - csum[start]) / np.maximum(count, 1), np.nan)


def plot_history(
    history: Any,
    keys: str | Sequence[str] | None = None,
    smooth: int | None = None,
    logy: bool = False,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    figsize: tuple[float, float] | None = (6, 3.5),
) -> Figure:
    r"""Plot training curves: the raw values faintly, and a moving average on top.

    NaN entries (a ``History`` holds ``nan`` where a quantity was not logged) are left out, so a
    quantity logged every 10th row is still drawn as a connected line.

    The moving average over a window of :math:`w` logged values is
    :math:`\bar v_t = \frac{1}{w} \sum_{s=t-w+1}^{t} v_s` (fewer terms at the start), which shows the
    trend of a noisy minibatch loss without hiding where the raw values are.

    Args:
        history: a :class:`course_lib.train.History` (``.steps: list[int]``,
            ``.values: dict[str, list[float]]``, e.g. ``result.history``) or a plain dict
            ``{name: list of numbers}`` (x-axis: the index).
        keys: which curves to draw (a name or a list of names); default all of them, on one axes.
        smooth: moving-average window in logged points; ``None`` picks ``max(1, n // 20)``, ``1`` draws
            the raw values only.
        logy: logarithmic y-axis (needs positive values).
        ax: draw into this Axes; default a new figure of ``figsize``.
        title: axes title.

    Returns:
        the matplotlib ``Figure``.
    """
    xs, ys = _history_series(history)
    if keys is None:
        keys = list(ys)
    elif isinstance(keys, str):
        keys = [keys]
    else:
        keys = list(keys)
    if not keys:
        raise ValueError("there is nothing to plot: the history has no values")
    missing = [k for k in keys if k not in ys]
    if missing:
        raise ValueError(f"history has no key(s) {missing}; available: {sorted(ys)}")
    if smooth is not None:
        smooth = _check_positive_int(smooth, "smooth (moving-average window)")
    if logy:
        for key in keys:
            vals = ys[key][np.isfinite(ys[key])]
            if vals.size and vals.min() <= 0:
                raise ValueError(
                    f"logy=True needs positive values but {key!r} reaches {vals.min():.3g}; use logy=False"
                )
    fig, ax = _new_axes(ax, figsize)
    for i, key in enumerate(keys):
        # A History holds nan where a quantity was not logged (e.g. a validation loss every 10th row):
        # plot the logged points only, so sparse curves are connected lines rather than invisible dots.
        logged = np.isfinite(ys[key])
        x, v = xs[key][logged], ys[key][logged]
        color = f"C{i % 10}"
        window = smooth if smooth is not None else max(1, len(v) // 20)
        if window > 1 and len(v) > 1:
            ax.plot(x, v, color=color, alpha=0.25, linewidth=0.8)
            ax.plot(x, _moving_average(v, window), color=color, linewidth=1.8, label=f"{key} (avg of {window})")
        else:
            ax.plot(x, v, color=color, linewidth=1.5, marker="o" if len(v) == 1 else None, label=key)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(keys[0] if len(keys) == 1 else "value")
    ax.grid(True, alpha=0.3)
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    return fig


# ============================================================================ 2-D densities and fields
def _grid_points(xlim, ylim, grid: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X, Y)`` meshes ``(grid, grid)`` (x along columns) and the points ``(grid * grid, 2)`` float32."""
    xs = torch.linspace(xlim[0], xlim[1], grid)
    ys = torch.linspace(ylim[0], ylim[1], grid)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return gx, gy, torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _evaluate(fn: Callable, points: torch.Tensor, out_shape: tuple[int, ...], device, batch_size: int, what: str) -> np.ndarray:
    """Apply ``fn`` to ``points`` in chunks without gradients; check every output's shape and finiteness."""
    if not callable(fn):
        raise TypeError(f"{what} must be callable (a function or a model), got {type(fn).__name__}")
    batch_size = _check_positive_int(batch_size, "batch_size")
    outs = []
    with torch.no_grad():
        for start in range(0, len(points), batch_size):
            chunk = points[start : start + batch_size]
            if device is not None:
                chunk = chunk.to(device)
            out = fn(chunk)
            if not torch.is_tensor(out):
                raise TypeError(f"{what} must return a torch.Tensor, got {type(out).__name__}")
            expected = (len(chunk), *out_shape)
            if tuple(out.shape) != expected:
                shapes = "(N, 2) -> (N,)" if not out_shape else "(N, 2) -> (N, 2)"
                fix = " (drop the last dimension with .squeeze(-1))" if tuple(out.shape) == (*expected, 1) else ""
                raise ValueError(f"{what} must map {shapes}; for input {tuple(chunk.shape)} it returned {tuple(out.shape)}{fix}")
            outs.append(out.detach().cpu().double())
    return torch.cat(outs).numpy()


def plot_density_2d(
    log_prob_fn: Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float] = (-4, 4),
    ylim: tuple[float, float] = (-4, 4),
    grid: int = 200,
    samples: Any = None,
    ax: Axes | None = None,
    title: str | None = None,
    cmap: str = "viridis",
    *,
    device: torch.device | str | None = None,
    figsize: tuple[float, float] | None = (4, 4),
    batch_size: int = 16384,
) -> Figure:
    r"""Draw a 2-D density :math:`p(x) = \exp(\log p(x))` on a grid, optionally with samples on top.

    Args:
        log_prob_fn: batched log-density, ``(N, 2) float32 -> (N,)`` in nats, e.g. ``dist.log_prob`` of a
            ``torch.distributions`` object or a model's ``log_prob``. It is called under ``torch.no_grad()``
            in chunks of ``batch_size`` points. ``-inf`` (zero density) is allowed; NaN or ``+inf`` is an error.
        xlim, ylim: the plotted square ``[x0, x1] x [y0, y1]``.
        grid: points per axis (``grid**2`` evaluations).
        samples: optional ``(M, 2)`` points drawn as small white dots (e.g. data or model samples).
        ax: draw into this Axes; default a new figure.
        title: axes title.
        cmap: colour map of the density.
        device: where to create the grid points (the model's device); default the CPU.

    Returns:
        the matplotlib ``Figure``.
    """
    xlim, ylim = _check_lim(xlim, "xlim"), _check_lim(ylim, "ylim")
    grid = _check_positive_int(grid, "grid", minimum=2)
    sample_points = _as_points(samples, "samples") if samples is not None else None
    _, _, points = _grid_points(xlim, ylim, grid)
    log_p = _evaluate(log_prob_fn, points, (), device, batch_size, "log_prob_fn")
    if np.isnan(log_p).any() or np.isposinf(log_p).any():
        raise ValueError("log_prob_fn returned NaN or +inf on the grid; check the model (or narrow xlim/ylim)")
    density = np.exp(log_p).reshape(grid, grid)
    fig, ax = _new_axes(ax, figsize)
    ax.imshow(density, origin="lower", extent=(*xlim, *ylim), cmap=cmap, interpolation="bilinear", aspect="equal")
    if sample_points is not None:
        ax.scatter(sample_points[:, 0], sample_points[:, 1], s=2, c="white", alpha=0.6, linewidths=0)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    return fig


def scatter_2d(
    points: Any,
    labels: Any = None,
    ax: Axes | None = None,
    s: float = 4,
    alpha: float = 0.5,
    lim: Any = None,
    title: str | None = None,
    *,
    figsize: tuple[float, float] | None = (4, 4),
    color: str | None = None,
    cmap: str = "viridis",
) -> Figure:
    """Scatter plot of 2-D points, coloured by class or by a continuous value.

    Args:
        points: ``(N, 2)`` tensor or array.
        labels: optional ``(N,)``: integer or string classes get one colour each and a legend (up to 20
            classes); non-integer floats (e.g. a time or a log-density) a colour map and a colour bar.
        ax: draw into this Axes; default a new figure.
        s, alpha: marker size and opacity.
        lim: axis limits: ``a`` for (-a, a) on both axes, ``(lo, hi)`` for both, or
            ``((xlo, xhi), (ylo, yhi))``; default matplotlib's.
        title: axes title.
        color: colour of all points when there are no labels.

    Returns:
        the matplotlib ``Figure``.
    """
    pts = _as_points(points, "points")
    fig, ax = _new_axes(ax, figsize)
    scatter_kwargs = dict(s=s, alpha=alpha, linewidths=0)
    if labels is None:
        ax.scatter(pts[:, 0], pts[:, 1], color=color or "C0", **scatter_kwargs)
    else:
        if torch.is_tensor(labels) or isinstance(labels, np.ndarray):
            lab = _as_tensor(labels, "labels")
            if lab.dim() != 1:
                raise ValueError(f"labels must have shape (N,), got {tuple(lab.shape)}")
            continuous = lab.is_floating_point() and not torch.equal(lab, lab.round())
            lab = lab.double().numpy() if continuous else np.asarray(lab.tolist())
        else:
            lab = np.asarray(list(labels))
            continuous = False
        if len(lab) != len(pts):
            raise ValueError(f"labels has {len(lab)} entries but there are {len(pts)} points")
        if continuous:
            mappable = ax.scatter(pts[:, 0], pts[:, 1], c=lab, cmap=cmap, **scatter_kwargs)
            fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04)
        else:
            classes = list(dict.fromkeys(lab.tolist()))
            try:
                classes = sorted(classes)
            except TypeError:
                pass
            palette = "tab10" if len(classes) <= 10 else "tab20"
            colors = plt.get_cmap(palette).colors
            for i, cls in enumerate(classes):
                mask = lab == cls
                ax.scatter(pts[mask, 0], pts[mask, 1], color=colors[i % len(colors)], label=_format_label(cls), **scatter_kwargs)
            if len(classes) <= 20:
                legend = ax.legend(frameon=False, markerscale=max(1.0, (36 / max(s, 1e-3)) ** 0.5), fontsize=8)
                for handle in legend.legend_handles:
                    handle.set_alpha(1.0)
    ax.set_aspect("equal", adjustable="datalim" if lim is None else "box")
    _apply_lim(ax, lim)
    if title:
        ax.set_title(title)
    return fig


def plot_vector_field(
    fn: Callable[[torch.Tensor], torch.Tensor],
    xlim: tuple[float, float] = (-4, 4),
    ylim: tuple[float, float] = (-4, 4),
    grid: int = 20,
    ax: Axes | None = None,
    normalize: bool = False,
    *,
    title: str | None = None,
    device: torch.device | str | None = None,
    figsize: tuple[float, float] | None = (4, 4),
    cmap: str = "viridis",
) -> Figure:
    r"""Quiver plot of a vector field :math:`v: \mathbb R^2 \to \mathbb R^2` (a score, a velocity, a drift).

    Arrows are coloured by their length :math:`\lVert v(x) \rVert`.

    Args:
        fn: batched field, ``(N, 2) float32 -> (N, 2)``, called under ``torch.no_grad()`` (compute a score
            with autograd inside ``fn`` using ``torch.enable_grad()``).
        xlim, ylim: the plotted rectangle.
        grid: arrows per axis.
        ax: draw into this Axes; default a new figure.
        normalize: draw every arrow with the same length (0.8 grid spacings), showing only directions; the
            colour still shows the length. Useful for scores, which are huge far from the data.
        title: axes title.
        device: where to create the grid points (the model's device); default the CPU.

    Returns:
        the matplotlib ``Figure``.
    """
    xlim, ylim = _check_lim(xlim, "xlim"), _check_lim(ylim, "ylim")
    grid = _check_positive_int(grid, "grid", minimum=2)
    gx, gy, points = _grid_points(xlim, ylim, grid)
    v = _evaluate(fn, points, (2,), device, 65536, "fn")
    if not np.isfinite(v).all():
        raise ValueError("fn returned NaN or inf vectors on the grid; check the model (or narrow xlim/ylim)")
    u_, v_ = v[:, 0].reshape(grid, grid), v[:, 1].reshape(grid, grid)
    length = np.hypot(u_, v_)
    fig, ax = _new_axes(ax, figsize)
    if normalize:
        safe = np.where(length > 0, length, 1.0)
        spacing = min((xlim[1] - xlim[0]), (ylim[1] - ylim[0])) / (grid - 1)
        ax.quiver(gx.numpy(), gy.numpy(), u_ / safe, v_ / safe, length, cmap=cmap, angles="xy",
                  scale_units="xy", scale=1.0 / (0.8 * spacing), pivot="mid")
    else:
        ax.quiver(gx.numpy(), gy.numpy(), u_, v_, length, cmap=cmap, angles="xy", pivot="mid")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return fig


def _auto_limits(frames: list[np.ndarray]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Limits covering the 0.5-99.5 % range of all points (robust to a few outliers), plus a margin."""
    allpts = np.concatenate(frames)
    lo = np.percentile(allpts, 0.5, axis=0)
    hi = np.percentile(allpts, 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def plot_trajectory_2d(
    traj: Any,
    ax: Axes | None = None,
    *,
    lim: Any = None,
    title: str | None = None,
    max_paths: int | None = 500,
    alpha: float = 0.3,
    figsize: tuple[float, float] | None = (4, 4),
) -> Figure:
    """Draw the paths of ``N`` points through ``T`` steps (a sampler, an ODE/SDE solve, Langevin dynamics).

    Each path is a thin grey line; the first positions are marked in blue ("start") and the last in
    orange ("end").

    Args:
        traj: ``(T, N, 2)`` tensor/array, or a list of ``T`` tensors ``(N, 2)``, with ``traj[t, i]`` the
            position of point ``i`` at step ``t``.
        ax: draw into this Axes; default a new figure.
        lim: axis limits as for :func:`scatter_2d`; default fitted to the paths.
        title: axes title.
        max_paths: draw only the first ``max_paths`` paths (a few hundred stay readable); ``None`` for all.
        alpha: opacity of the path lines.

    Returns:
        the matplotlib ``Figure``.
    """
    frames = _as_point_frames(traj, "traj")
    sizes = {len(f) for f in frames}
    if len(sizes) != 1:
        raise ValueError(f"every step of traj must hold the same points (N, 2); got sizes {sorted(sizes)}")
    paths = np.stack(frames, axis=1)  # (N, T, 2)
    if max_paths is not None:
        paths = paths[: _check_positive_int(max_paths, "max_paths")]
    fig, ax = _new_axes(ax, figsize)
    ax.add_collection(LineCollection(list(paths), colors="0.35", linewidths=0.6, alpha=alpha))
    ax.scatter(paths[:, 0, 0], paths[:, 0, 1], s=6, color="C0", label="start", zorder=3, linewidths=0)
    ax.scatter(paths[:, -1, 0], paths[:, -1, 1], s=6, color="C1", label="end", zorder=3, linewidths=0)
    if lim is None:
        xl, yl = _auto_limits([paths.reshape(-1, 2)])
        ax.set_xlim(*xl)
        ax.set_ylim(*yl)
    else:
        _apply_lim(ax, lim)
    ax.set_aspect("equal")
    ax.legend(frameon=False, fontsize=8, markerscale=2)
    if title:
        ax.set_title(title)
    return fig


# ============================================================================ animations
def animate_points(
    frames: Any,
    interval: int = 100,
    lim: Any = None,
    title: str | None = None,
    *,
    max_frames: int = 60,
    frame_labels: Sequence[Any] | None = None,
    s: float = 4,
    alpha: float = 0.6,
    color: str = "C0",
    figsize: tuple[float, float] = (4, 4),
):
    """Animate a cloud of 2-D points, e.g. samples moving from noise to data.

    Args:
        frames: ``(T, N, 2)`` tensor/array or a list of ``T`` point sets ``(N_t, 2)``.
        interval: milliseconds between frames.
        lim: axis limits as for :func:`scatter_2d`; default the 0.5-99.5 % range of all frames.
        title: shown above the plot together with the frame's label.
        max_frames: at most this many evenly spaced frames are kept (first and last included), so the
            embedded animation stays small.
        frame_labels: one label per input frame (e.g. the diffusion time ``t``); default ``"frame k/T"``.
        s, alpha, color: marker size, opacity and colour.
        figsize: inches.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player; the figure used to render it is closed.
    """
    point_frames = _as_point_frames(frames, "frames")
    num = len(point_frames)
    captions = _check_frame_labels(frame_labels, num)
    keep = _subsample_indices(num, max_frames)
    limits = _resolve_lim(lim) if lim is not None else _auto_limits([point_frames[i] for i in keep])
    fig, ax = plt.subplots(figsize=figsize, dpi=_ANIMATION_DPI)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    ax.set_aspect("equal")
    scat = ax.scatter(point_frames[keep[0]][:, 0], point_frames[keep[0]][:, 1], s=s, alpha=alpha, color=color, linewidths=0)
    heading = ax.set_title("")

    def update(j: int):
        i = keep[j]
        scat.set_offsets(point_frames[i])
        label = captions[i] if captions is not None else f"frame {i + 1}/{num}"
        heading.set_text(f"{title}  ({label})" if title else label)
        return (scat, heading)

    update(0)
    return _to_html(fig, update, len(keep), interval)


def animate_images(
    frames: Any,
    nrow: int | None = None,
    interval: int = 100,
    value_range: str = "auto",
    *,
    levels: int | None = None,
    clip: bool = False,
    max_frames: int = 60,
    title: str | None = None,
    frame_labels: Sequence[Any] | None = None,
    cmap: str = "gray",
    figsize: tuple[float, float] | None = None,
    padding: int = 1,
    pad_value: float = 0.5,
):
    """Animate a batch of images changing over time, e.g. a diffusion model denoising ``x_T -> x_0``.

    The value range is resolved once for all frames (so the brightness scale does not jump between
    frames). Noisy diffusion states ``x_t`` leave ``[-1, 1]``: pass ``value_range="symmetric", clip=True``.

    Args:
        frames: ``(T, B, C, H, W)`` tensor/array, or a list of ``T`` batches each accepted by
            :func:`image_grid` (``(B, C, H, W)``, ``(B, H, W)``, ...), all of the same shape.
        nrow: images per row of each frame's grid.
        interval: milliseconds between frames.
        value_range, levels, clip, padding, pad_value: as for :func:`image_grid`.
        max_frames: at most this many evenly spaced frames are kept (first and last included).
        title: shown above the grid together with the frame's label.
        frame_labels: one label per input frame (e.g. ``t``); default ``"frame k/T"``.
        cmap: colour map for one-channel images.
        figsize: inches; default about 0.75 inch per image.

    Returns:
        ``IPython.display.HTML`` with a JavaScript player; the figure used to render it is closed.
    """
    padding, pad_value = _check_padding(padding, pad_value)
    if torch.is_tensor(frames) or isinstance(frames, np.ndarray):
        t = _as_tensor(frames, "frames")
        if t.dim() != 5:
            raise ValueError(
                f"frames must be a (T, B, C, H, W) tensor or a list of (B, C, H, W) batches, got shape "
                f"{tuple(t.shape)}; for a sequence of single images (T, C, H, W) use frames.unsqueeze(1)"
            )
        frames = list(t)
    if not isinstance(frames, Sequence) or isinstance(frames, (str, bytes)):
        raise TypeError(f"frames must be a (T, B, C, H, W) tensor or a list of image batches, got {type(frames).__name__}")
    if len(frames) == 0:
        raise ValueError("frames is empty: there is nothing to animate")
    num = len(frames)
    captions = _check_frame_labels(frame_labels, num)
    keep = _subsample_indices(num, max_frames)
    batches = [_image_batch(frames[i], f"frames[{i}]") for i in keep]
    shapes = {tuple(b.shape) for b in batches}
    if len(shapes) != 1:
        raise ValueError(f"all frames must have the same shape, got {sorted(shapes)}")
    stacked = torch.stack(batches)  # (T', B, C, H, W)
    kept, b, c, h, w = stacked.shape
    unit = _to_unit(stacked.reshape(kept * b, c, h, w), value_range, levels, clip, "frames").numpy()
    unit = unit.reshape(kept, b, c, h, w)
    grids = [_assemble(unit[j], nrow, padding, pad_value) for j in range(kept)]
    rows, cols = _grid_shape(b, nrow)
    if figsize is None:
        figsize = _default_figsize(rows, cols, h, w, padding, extra_height=0.35)
    fig, ax = plt.subplots(figsize=figsize, dpi=_ANIMATION_DPI)
    ax.set_axis_off()
    imshow_kwargs = dict(vmin=0.0, vmax=1.0, interpolation="nearest")
    if c == 1:
        imshow_kwargs["cmap"] = cmap
    image = ax.imshow(grids[0], **imshow_kwargs)
    heading = ax.set_title("")

    def update(j: int):
        i = keep[j]
        image.set_data(grids[j])
        label = captions[i] if captions is not None else f"frame {i + 1}/{num}"
        heading.set_text(f"{title}  ({label})" if title else label)
        return (image, heading)

    update(0)
    return _to_html(fig, update, kept, interval)
