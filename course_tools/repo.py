"""Finding the course: the repository root, and its numbered files by number or name.

Notebooks (``notebooks/NN_topic.ipynb``) and exercise sets (``solutions/NN_topic.py``) are both
named ``NN_topic``; :func:`match_numbered` resolves what a person types (``3``, ``03``,
``03_auto``, ``autoregressive``) to one of them, for ``course run``, ``course grade`` and the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["find_repo_root", "match_numbered", "find_notebook", "read_notebook"]


def find_repo_root(start: str | Path | None = None) -> Path | None:
    """The course repository containing ``start`` (default: the working directory), else the
    checkout this package was installed from in editable mode, else ``None``.

    A course repository is a folder with a ``pyproject.toml`` naming ``course_lib`` and a
    ``course_lib/`` package.
    """
    here = Path(start or Path.cwd()).resolve()
    candidates = [here, *here.parents, Path(__file__).resolve().parents[1]]
    for folder in candidates:
        pyproject = folder / "pyproject.toml"
        if (folder / "course_lib").is_dir() and pyproject.is_file():
            try:
                if re.search(r'^name\s*=\s*"course_lib"', pyproject.read_text(encoding="utf-8"), re.M):
                    return folder
            except OSError:
                continue
    return None


def match_numbered(spec: str | Path, files: Iterable[Path], *, what: str, where: str | Path) -> Path:
    """The one of ``files`` (named ``NN_topic.*``) that ``spec`` names: a number (``2``, ``02``), a
    prefix of the stem (``02_max``) or of the topic (``maximum``); a trailing ``.py``/``.ipynb`` is ignored.

    Raises ``FileNotFoundError`` listing the files there are, or ``ValueError`` when ``spec`` is
    ambiguous. ``what`` and ``where`` only word the messages (``"notebook"``, the folder).
    """
    files = list(files)
    key = str(spec).strip().lower()
    if key.isdigit():
        matches = [f for f in files if f.stem.startswith(f"{int(key):02d}_")]
    else:
        for suffix in (".ipynb", ".py"):
            key = key[: -len(suffix)] if key.endswith(suffix) else key
        matches = [f for f in files if f.stem.startswith(key)] or [f for f in files if f.stem[3:].startswith(key)]
    if not matches:
        known = ", ".join(f.stem for f in files) or f"none: {where} has no NN_topic files"
        raise FileNotFoundError(f"no {what} matches {str(spec)!r} in {where}; there are: {known}")
    if len(matches) > 1:
        names = ", ".join(f.stem for f in matches)
        raise ValueError(f"{str(spec)!r} matches several {what}s ({names}); give more of the name")
    return matches[0]


def find_notebook(spec: str, notebooks_dir: str | Path) -> Path:
    """Resolve ``spec`` to a notebook file: an existing path, a number (``3``, ``03``) or a name
    prefix (``03_auto``, ``autoregressive``). Prefers ``NN_topic.ipynb`` over its paired ``.py``.

    Raises ``FileNotFoundError`` (listing the notebooks there are) or ``ValueError`` (ambiguous).
    """
    path = Path(spec)
    if path.suffix in {".ipynb", ".py"} and path.is_file():
        return path
    notebooks_dir = Path(notebooks_dir)
    by_stem: dict[str, list[Path]] = {}
    for candidate in sorted(notebooks_dir.glob("[0-9][0-9]_*")):
        if candidate.suffix in {".ipynb", ".py"} and candidate.is_file():
            by_stem.setdefault(candidate.stem, []).append(candidate)
    stems = [Path(stem) for stem in by_stem]
    chosen = match_numbered(spec, stems, what="notebook", where=notebooks_dir)
    files = by_stem[chosen.name]
    return next((f for f in files if f.suffix == ".ipynb"), files[0])


def read_notebook(path: Path):
    """A notebook node from an ``.ipynb`` file or its jupytext ``.py`` twin."""
    import nbformat

    if path.suffix == ".py":
        import jupytext

        return jupytext.read(path)
    return nbformat.read(path, as_version=4)
