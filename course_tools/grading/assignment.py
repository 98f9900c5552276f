"""An exercise set as the grader reads it: the cells of ``solutions/NN_topic.py`` with their roles,
points, hints and hidden lines, and the modules its locked and test cells import (which the
sandbox imports once, before any submission runs).

``load_assignment(spec)`` is the entry point; ``spec`` is a path, a number (``02``) or a name
(``maximum_likelihood``), resolved by :func:`find_assignment`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from course_tools import repo
from course_tools.grading import exercises as ex

__all__ = ["SourceCell", "Assignment", "find_assignment", "load_assignment", "as_python", "imported_names"]

BEGIN_HIDDEN, END_HIDDEN = ex.BEGIN_HIDDEN_TESTS, ex.END_HIDDEN_TESTS
# modules the course's own code imports lazily; importing them in the zygote saves every submission the time
_LAZY_IMPORTS = {"course_lib.data": ["sklearn.datasets", "mlxtend.data"], "course_lib.viz": ["matplotlib.pyplot"]}
_COMMON_IMPORTS = ["math", "random", "statistics", "itertools", "functools", "collections", "torch.nn.functional"]


@dataclass(frozen=True)
class SourceCell:
    """One cell of the solutions file. ``role``: ``"test"`` (graded test cell), ``"answer"``
    (code the student writes), ``"written"`` (a markdown answer, graded by hand) or ``"locked"``."""

    index: int
    grade_id: str
    cell_type: str
    role: str
    source: str
    exercise_source: str
    points: float = 0.0
    hint: str = ""
    hidden_lines: frozenset = frozenset()
    python: str = ""  # what the sandbox runs for a locked/test cell: ``source`` with %magics made Python


@dataclass
class Assignment:
    """An exercise set as the grader needs it (see :func:`load_assignment`)."""

    path: Path
    name: str
    cells: list[SourceCell]
    preimport: list[str]

    @property
    def tests(self) -> list[SourceCell]:
        return [cell for cell in self.cells if cell.role == "test"]

    @property
    def total(self) -> float:
        return float(sum(cell.points for cell in self.tests))

    @property
    def by_id(self) -> dict[str, SourceCell]:
        return {cell.grade_id: cell for cell in self.cells}


def find_assignment(spec: str | Path, solutions_dir: str | Path | None = None) -> Path:
    """Resolve ``spec`` to ``solutions/NN_topic.py``: a path, a number (``2``, ``02``) or a name
    (``02_max``, ``maximum_likelihood``). Looks in ``solutions_dir``, else ``./solutions``, else
    the course repository's ``solutions/``."""
    path = Path(spec)
    if path.suffix == ".py" and path.is_file():
        return path
    if path.suffix == ".ipynb":
        raise ValueError(
            f"{spec}: give the solutions file (solutions/NN_topic.py), not a notebook; the grader "
            "restores tests and hidden tests from it"
        )
    if path.suffix == ".py":
        raise FileNotFoundError(f"no solutions file at {spec}")
    candidates = [Path(solutions_dir)] if solutions_dir else []
    if not candidates:
        candidates.append(Path.cwd() / "solutions")
        root = repo.find_repo_root()
        if root is not None:
            candidates.append(root / "solutions")
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise FileNotFoundError(
            f"no solutions folder found (looked in {', '.join(map(str, candidates))}); pass the path of "
            "the solutions file or --solutions DIR"
        )
    return repo.match_numbered(spec, ex.solution_files(folder), what="solutions file", where=folder)


def _hidden_lines(source: str) -> frozenset:
    lines, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped == BEGIN_HIDDEN:
            inside = True
        if inside:
            lines.add(number)
        if stripped == END_HIDDEN:
            inside = False
    return frozenset(lines)


def as_python(source: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``) turned into Python, as the runner will see it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def _imports(source: str) -> list[str]:
    """Absolute imports of a cell: ``import a.b`` -> a.b; ``from a import b`` -> a and ?a.b."""
    try:
        tree = ast.parse(as_python(source))
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
            out += [f"?{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return out


def load_assignment(spec: str | Path, solutions_dir: str | Path | None = None) -> Assignment:
    """Read and validate a solutions file; raises ``ExerciseFormatError`` naming any problem."""
    path = find_assignment(spec, solutions_dir)
    solution = ex.solution_notebook(path)
    exercise = ex.make_exercise(solution, source=str(path))
    hints = {cell.grade_id: cell.hint for cell in ex.grade_inventory(solution)}
    cells = []
    preimport: list[str] = []
    for index, (full, student) in enumerate(zip(solution.cells, exercise.cells)):
        meta = full.metadata["nbgrader"]
        grade_id = meta["grade_id"]
        if meta.get("grade") and full.cell_type == "code":
            role = "test"
        elif meta.get("solution"):
            role = "answer" if full.cell_type == "code" else "written"
        else:
            role = "locked"
        cells.append(SourceCell(
            index=index, grade_id=grade_id, cell_type=full.cell_type, role=role, source=full.source,
            exercise_source=student.source, points=float(meta.get("points", 0) or 0) if role == "test" else 0.0,
            hint=hints.get(grade_id, ""), hidden_lines=_hidden_lines(full.source) if role == "test" else frozenset(),
            python=as_python(full.source) if role in ("test", "locked") and full.cell_type == "code" else "",
        ))
        if role in ("test", "locked") and full.cell_type == "code":
            preimport += _imports(full.source)
    for module, extra in _LAZY_IMPORTS.items():
        if any(name.lstrip("?") == module or name.lstrip("?").startswith(module + ".") for name in preimport):
            preimport += [f"?{name}" for name in extra]
    preimport += [f"?{name}" for name in _COMMON_IMPORTS]
    unique = list(dict.fromkeys(preimport))
    return Assignment(path=path, name=path.stem, cells=cells, preimport=unique)


def imported_names(source: str) -> set[str]:
    """The names a cell binds by importing (``import a.b`` -> a, ``from a import b as c`` -> c)."""
    names = set()
    try:
        tree = ast.parse(as_python(source))
    except SyntaxError:
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names}
    return names
