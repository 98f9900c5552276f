"""``InMemoryLoader``: minibatches from tensors that fit in memory, without ``torch.utils.data`` overhead.

Every dataset of the course fits in memory (even full MNIST: 60,000 x 784 floats = 188 MB), so the
fastest loader simply moves the tensors to the device once and slices them::

    ds = data.mnist("train")
    loader = data.InMemoryLoader(ds.x, ds.y, batch_size=128)     # or InMemoryLoader(*ds, ...)
    for x, y in loader:          # one epoch; x: (128, 1, 28, 28) on the loader's device
        ...
    len(loader)                  # batches per epoch: 4000 // 128 = 31 (drop_last=True)

Each ``iter(loader)`` is one epoch. With ``shuffle=True`` every epoch uses a new permutation drawn from
the loader's own ``torch.Generator`` (seeded with ``seed``), so a run is reproducible and the global
random state is never touched. Batches are **always tuples**, one entry per tensor given, even for a
single tensor: ``for (x,) in InMemoryLoader(points, batch_size=256)``. That keeps ``loss_fn(model, batch)``
uniform across the course.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch


class InMemoryLoader:
    """Iterate over minibatches ``(t1[idx], t2[idx], ...)`` of equally long tensors kept on one device.

    Args:
        *tensors: one or more tensors with the same first dimension ``N`` (e.g. ``x: (N, 1, 28, 28)``, ``y: (N,)``).
        batch_size: samples per batch (``B``).
        shuffle: draw a new random order each epoch (from the loader's own generator); otherwise keep the order.
        drop_last: skip the last batch when it would be smaller than ``batch_size`` (keeps every batch ``B`` long).
        device: where the tensors are kept and batches are yielded; ``None`` means
            ``course_lib.device.get_device()`` (the GPU when there is one). The tensors are copied there once.
        seed: seeds the shuffling generator.

    ``len(loader)`` is the number of batches per epoch: ``N // B`` with ``drop_last``, else ``ceil(N / B)``.
    Every sample appears at most once per epoch, and exactly once without ``drop_last``.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = True,
        device: torch.device | str | None = None,
        seed: int = 0,
    ):
        if not tensors:
            raise ValueError("InMemoryLoader needs at least one tensor, e.g. InMemoryLoader(x, y, batch_size=128)")
        for i, t in enumerate(tensors):
            if not torch.is_tensor(t):
                raise TypeError(
                    f"argument {i} is a {type(t).__name__}, not a torch.Tensor; convert it with torch.as_tensor(...)"
                    + (" (to pass an ImageSet, write InMemoryLoader(*ds, ...) or InMemoryLoader(ds.x, ds.y, ...))"
                       if isinstance(t, tuple) else "")
                )
            if t.dim() == 0:
                raise ValueError(f"argument {i} is a 0-d tensor (a scalar); the loader needs tensors of shape (N, ...)")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"all tensors must have the same first dimension (the number of samples); got shapes {shapes}")
        n = sizes[0]
        if n == 0:
            raise ValueError("the tensors are empty (first dimension 0): nothing to load")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if drop_last and batch_size > n:
            raise ValueError(
                f"batch_size={batch_size} is larger than the {n} samples, so with drop_last=True an epoch would have "
                f"no batch at all; use batch_size <= {n} or drop_last=False"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if device is None:
            from course_lib.device import get_device

            device = get_device()
        self.device = torch.device(device)
        self.tensors = tuple(t.to(self.device) for t in tensors)
        self.num_samples = n
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.epochs = 0  # epochs started so far
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        # The permutation is drawn here, when the epoch starts, not lazily at the first batch.
        order = torch.randperm(self.num_samples, generator=self._generator) if self.shuffle else None
        if order is not None:
            order = order.to(self.device)
        self.epochs += 1
        return self._epoch(order)

    def _epoch(self, order: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, ...]]:
        for b in range(len(self)):
            start = b * self.batch_size
            stop = min(start + self.batch_size, self.num_samples)
            if order is None:
                yield tuple(t[start:stop] for t in self.tensors)
            else:
                index = order[start:stop]
                yield tuple(t.index_select(0, index) for t in self.tensors)

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(t.shape)) for t in self.tensors)
        return (
            f"InMemoryLoader({shapes}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, device={self.device}, batches/epoch={len(self)})"
        )
