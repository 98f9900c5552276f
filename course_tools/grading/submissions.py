"""Finding the class's notebooks and reading each one safely.

:func:`discover_submissions` accepts ``NAME.ipynb`` files, ``NAME/`` folders and nbgrader's
``submitted/NAME/ASSIGNMENT/`` layout; :func:`read_submission` reads one notebook with a size
limit and never raises on a broken file (it returns an ``unreadable`` flag instead).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from course_tools.grading.results import Flag

__all__ = ["Submission", "discover_submissions", "read_submission", "cell_source", "MAX_NOTEBOOK_BYTES"]

MAX_NOTEBOOK_BYTES = 100 << 20


@dataclass
class Submission:
    student: str
    path: Path | None
    flags: list[Flag] = field(default_factory=list)


def _strip_assignment(stem: str, assignment: str) -> str:
    for sep in ("_", "-", ".", " "):
        for candidate in (f"{sep}{assignment}", f"{assignment}{sep}"):
            if stem.endswith(candidate) and len(stem) > len(candidate):
                return stem[: -len(candidate)]
            if stem.startswith(candidate) and len(stem) > len(candidate):
                return stem[len(candidate):]
    return stem


def _notebooks_in(folder: Path, depth: int = 3) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        parts = path.relative_to(folder).parts
        if len(parts) > depth or any(part.startswith(".") for part in parts):
            continue  # .ipynb_checkpoints and hidden folders
        if path.is_file():
            found.append(path)
    return found


def discover_submissions(root: str | Path, assignment: str, *, exclude: Iterable[str | Path] = ()) -> list[Submission]:
    """One :class:`Submission` per student in ``root``, sorted by student id.

    Accepted layouts: ``root/NAME.ipynb`` (the file name is the student id; a prefix or suffix equal
    to the assignment name is dropped), ``root/NAME/...ipynb`` (the folder name is the id), and
    nbgrader's ``root/submitted/NAME/ASSIGNMENT/NOTEBOOK.ipynb``. In a folder with several
    notebooks the one named like the assignment is graded (else the first, with a flag).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no submissions folder at {root}")
    if (root / "submitted").is_dir():
        root = root / "submitted"
    excluded = {Path(p).resolve() for p in exclude}
    out: list[Submission] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.resolve() in excluded:
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            out.append(Submission(_strip_assignment(entry.stem, assignment), entry))
        elif entry.is_dir():
            notebooks = _notebooks_in(entry)
            if not notebooks:
                out.append(Submission(entry.name, None, [Flag("no-notebook", f"no .ipynb file in {entry.name}/")]))
                continue
            named = [p for p in notebooks if p.stem == assignment]
            if len(named) == 1 or len(notebooks) == 1:
                out.append(Submission(entry.name, (named or notebooks)[0]))
            else:
                chosen = (named or notebooks)[0]
                others = ", ".join(str(p.relative_to(entry)) for p in notebooks if p != chosen)
                out.append(Submission(entry.name, chosen, [Flag(
                    "several-notebooks", f"graded {chosen.relative_to(entry)}; also found {others}")]))
    seen: dict[str, int] = {}
    for submission in out:
        count = seen.get(submission.student, 0)
        seen[submission.student] = count + 1
        if count:
            submission.flags.append(Flag("duplicate-student", f"another submission is also named {submission.student!r}"))
            submission.student = f"{submission.student}~{count + 1}"
    return sorted(out, key=lambda s: s.student)


def cell_source(cell) -> str | None:
    source = cell.get("source", "")
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(part, str) for part in source):
        return "".join(source)
    return None


def read_submission(path: Path) -> tuple[object | None, str | None, list[Flag]]:
    """``(notebook, text, flags)``; the notebook is None (with an ``unreadable`` flag) when the
    file cannot be read as a Jupyter notebook."""
    import nbformat

    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return None, None, [Flag("unreadable", f"the notebook is {size / 2**20:.0f} MiB; the limit is {MAX_NOTEBOOK_BYTES >> 20} MiB")]
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None, None, [Flag("unreadable", "the file is not UTF-8 text; it is not a Jupyter notebook")]
    except OSError as error:
        return None, None, [Flag("unreadable", f"could not read the file ({error.strerror})")]
    logger = logging.getLogger("nbformat")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
        cells = nb.get("cells")
        if not isinstance(cells, list):
            raise ValueError("it has no list of cells")
        for cell in cells:
            if not isinstance(cell, dict):
                raise ValueError("a cell is not a JSON object")
    except Exception as error:  # nbformat raises many kinds: JSON, schema, version
        reason = str(error).split("\n")[0][:200] or type(error).__name__
        return None, text, [Flag("unreadable", f"not a readable Jupyter notebook ({reason}); scored 0")]
    finally:
        logger.setLevel(level)
    return nb, text, []
