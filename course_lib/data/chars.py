r"""Characters as integers: the vocabulary and the tensors that character-level models train on.

A name such as ``"emma"`` is modelled as a sequence of characters followed by an end marker. The
course (like karpathy/makemore) uses **one** special token, ``"."`` with id 0, both to *start* a
sequence (the model's first input) and to *end* it (the last thing the model must predict)::

    inputs   x:  .  e  m  m  a          (what the model sees)
    targets  y:  e  m  m  a  .          (what it must predict at each position)

so a name of ``n`` letters gives ``n + 1`` predictions, and the probability of the whole name is
the product of those ``n + 1`` conditionals (the chain rule). Shorter names in a batch are padded:
``x`` with the boundary token, ``y`` with :data:`IGNORE_INDEX` (``-1``), which
``F.cross_entropy(..., ignore_index=-1)`` skips. This is exactly makemore's ``CharDataset`` layout,
so the two can be compared on the same data (:func:`write_names_file` writes a split as the
one-name-per-line text file makemore reads).

>>> vocab = CharVocab()                       # "." + a..z: 27 tokens
>>> vocab.encode("emma")
[5, 13, 13, 1]
>>> x, y = names_to_tensors(["emma", "bo"], vocab)
>>> x.tolist(), y.tolist()
([[0, 5, 13, 13, 1], [0, 2, 15, 0, 0]], [[5, 13, 13, 1, 0], [2, 15, 0, -1, -1]])
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

__all__ = [
    "BOUNDARY",
    "IGNORE_INDEX",
    "CharVocab",
    "names_to_tensors",
    "context_windows",
    "write_names_file",
]

#: The start/end-of-name token (id 0 in every :class:`CharVocab`).
BOUNDARY = "."
#: Target value of padded positions; pass it as ``ignore_index`` to ``F.cross_entropy``.
IGNORE_INDEX = -1


class CharVocab:
    """A character vocabulary: id 0 is the boundary token ``"."``, ids 1.. the characters in sorted order.

    ``CharVocab()`` is ``"." + "abcdefghijklmnopqrstuvwxyz"`` (``size == 27``), which covers every
    census name; ``CharVocab.from_words(words)`` uses the characters that occur in ``words``.

    ``stoi: dict[str, int]``, ``itos: list[str]``, ``size: int`` (also ``len(vocab)``).
    """

    def __init__(self, chars: Iterable[str] = string.ascii_lowercase):
        chars = sorted(set(chars))
        for ch in chars:
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(f"CharVocab needs single characters, got {ch!r}")
        if BOUNDARY in chars:
            raise ValueError(
                f"{BOUNDARY!r} is the boundary token of the vocabulary and cannot also be a character; "
                "remove it from the words (or map it to another character) first"
            )
        if not chars:
            raise ValueError("CharVocab needs at least one character")
        self.itos: list[str] = [BOUNDARY, *chars]
        self.stoi: dict[str, int] = {ch: i for i, ch in enumerate(self.itos)}

    @classmethod
    def from_words(cls, words: Iterable[str]) -> CharVocab:
        """The vocabulary of the characters occurring in ``words`` (plus the boundary token)."""
        words = _check_words(words)
        return cls("".join(words))

    @property
    def size(self) -> int:
        """Number of tokens ``V``, the boundary token included."""
        return len(self.itos)

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and self.itos == other.itos

    def __hash__(self) -> int:
        return hash(tuple(self.itos))

    def __repr__(self) -> str:
        return f"CharVocab({''.join(self.itos[1:])!r}, size={self.size})"

    def encode(self, word: str) -> list[int]:
        """The ids of ``word``'s characters (no boundary tokens added)."""
        try:
            return [self.stoi[ch] for ch in word]
        except KeyError as error:
            raise ValueError(
                f"character {error.args[0]!r} of {word!r} is not in the vocabulary {''.join(self.itos[1:])!r}; "
                "lowercase the text or build the vocabulary with CharVocab.from_words(all_words)"
            ) from None

    def decode(self, ids: Iterable[int] | torch.Tensor, *, stop_at_boundary: bool = True) -> str:
        """Characters of ``ids``; with ``stop_at_boundary`` it ends at the first boundary token (id 0)."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode expects one sequence (T,), got shape {tuple(ids.shape)}; decode rows one by one")
            ids = ids.tolist()
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.size:
                raise ValueError(f"id {i} is outside the vocabulary (0..{self.size - 1})")
            if i == 0 and stop_at_boundary:
                break
            out.append(self.itos[i])
        return "".join(out)


def _check_words(words: Iterable[str]) -> list[str]:
    if isinstance(words, str):
        raise TypeError(f"expected a list of words, got the single string {words!r}; wrap it in a list: [{words!r}]")
    words = list(words)
    if not words:
        raise ValueError("the list of words is empty")
    for w in words:
        if not isinstance(w, str) or not w:
            raise ValueError(f"every word must be a non-empty string, got {w!r}")
    return words


def names_to_tensors(
    words: Sequence[str], vocab: CharVocab, *, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-character targets of whole names, padded to a common length.

    Row ``i`` for a word ``c_1 .. c_n``: ``x[i] = (., c_1, ..., c_n, ., ., ...)`` and
    ``y[i] = (c_1, ..., c_n, ., -1, -1, ...)``: ``y[i, t]`` is the character that follows ``x[i, :t+1]``.

    Args:
        words: ``N`` non-empty strings.
        vocab: the :class:`CharVocab`.
        length: ``T``, the padded length (default: longest word + 1); must be at least longest + 1.

    Returns:
        ``x: (N, T) int64`` and ``y: (N, T) int64`` with :data:`IGNORE_INDEX` at padded positions.
    """
    words = _check_words(words)
    longest = max(len(w) for w in words)
    if length is None:
        length = longest + 1
    if length < longest + 1:
        raise ValueError(
            f"length={length} is too short: the longest word has {longest} characters and needs {longest + 1} "
            f"positions (its characters and the end token); use length >= {longest + 1}"
        )
    x = torch.zeros(len(words), length, dtype=torch.long)
    y = torch.full((len(words), length), IGNORE_INDEX, dtype=torch.long)
    for i, w in enumerate(words):
        ids = torch.tensor(vocab.encode(w), dtype=torch.long)
        x[i, 1 : len(w) + 1] = ids
        y[i, : len(w)] = ids
        y[i, len(w)] = 0
    return x, y


def context_windows(words: Sequence[str], vocab: CharVocab, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (previous ``context`` characters, next character) pair of the names, as in Bengio et al. (2003).

    A word of ``n`` letters gives ``n + 1`` rows; the context before the start is filled with the
    boundary token. For ``"emma"`` and ``context=3``: ``... -> e``, ``..e -> m``, ``.em -> m``,
    ``emm -> a``, ``mma -> .``.

    Returns:
        ``contexts: (M, context) int64`` and ``targets: (M,) int64``, ``M = sum(len(w) + 1)``.
    """
    words = _check_words(words)
    if isinstance(context, bool) or not isinstance(context, int) or context < 1:
        raise ValueError(f"context must be a positive int, got {context!r}")
    rows, targets = [], []
    for w in words:
        window = [0] * context
        for ch in [*vocab.encode(w), 0]:
            rows.append(list(window))
            targets.append(ch)
            window = window[1:] + [ch]
    return torch.tensor(rows, dtype=torch.long), torch.tensor(targets, dtype=torch.long)


def write_names_file(words: Iterable[str], path: str | os.PathLike) -> Path:
    """Write ``words`` one per line (``\\n``-terminated, ASCII) to ``path``; returns the path.

    This is the format karpathy/makemore reads (``python makemore.py -i train.txt``), e.g.
    ``write_names_file(data.names("train"), "names_train.txt")``. The words keep their order.
    """
    words = _check_words(words)
    for w in words:
        if "\n" in w or w.strip() != w:
            raise ValueError(f"word {w!r} contains whitespace; one name per line needs words without it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(w + "\n" for w in words), encoding="ascii")
    return path
