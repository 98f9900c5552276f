"""``course grade``: grade a class's notebooks against ``solutions/NN_topic.py``, safely.

::

    course grade ASSIGNMENT SUBMISSIONS --out DIR [--jobs N] [--cell-timeout S] [--timeout S]
                 [--memory MB] [--file-size MB] [--disk MB] [--student ID ...] [--quiet]

``ASSIGNMENT`` is a solutions file (``solutions/02_maximum_likelihood.py``) or its number or name
(``02``, ``maximum_likelihood``). ``SUBMISSIONS`` is a folder holding one notebook per student:
``NAME.ipynb`` files, ``NAME/`` folders, or nbgrader's ``submitted/NAME/ASSIGNMENT/`` layout.

For each submission, before anything runs (:func:`build_plan`): cells are matched to the source
by nbgrader ``grade_id``; locked cells and test cells come from the source (hidden tests put back),
deleted ones are re-inserted, duplicated ids are resolved, answer cells and the student's own
extra cells keep their place; an unreadable notebook gets zero and a note. Every such repair is a
*flag*. The plan then runs in its own sealed process (:mod:`course_lib.grading.sandbox`); each
graded test cell scores from the grader's own record of how that cell ended: an error gives 0, a
clean run the cell's points, or a fraction of them when the cell's last expression is a number in
[0, 1]. Nothing the notebook prints is read.

Outputs in ``--out``: ``gradebook.csv`` (one row per student, one column per test, total,
maximum, flags), ``feedback/NAME.html`` and ``feedback/NAME.json`` (per test: points, what failed,
the hint from the solution source), ``summary.csv``/``summary.md``/``summary.json`` (per question:
mean and distribution), ``grading.json`` (the run: limits, isolation, timings, every flag) and
``logs/NAME.log`` (what each notebook printed, for the instructor).

The Python API is :func:`grade`; the pieces (:func:`load_assignment`, :func:`discover_submissions`,
:func:`read_submission`, :func:`build_plan`, :func:`review_code`) are usable on their own.
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime as _dt
import html
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from course_lib.grading import exercises as ex
from course_lib.grading.sandbox import CellOutcome, Limits, SandboxError, Session, Zygote

__all__ = [
    "Assignment",
    "SourceCell",
    "Submission",
    "PlanCell",
    "Flag",
    "TestResult",
    "StudentResult",
    "GradingRun",
    "find_assignment",
    "load_assignment",
    "discover_submissions",
    "read_submission",
    "build_plan",
    "review_code",
    "grade",
    "add_parser",
    "main",
]

MAX_NOTEBOOK_BYTES = 100 << 20
BEGIN_HIDDEN, END_HIDDEN = ex.BEGIN_HIDDEN_TESTS, ex.END_HIDDEN_TESTS
# modules the course's own code imports lazily; importing them in the zygote saves every submission the time
_LAZY_IMPORTS = {"course_lib.data": ["sklearn.datasets", "mlxtend.data"], "course_lib.viz": ["matplotlib.pyplot"]}
_COMMON_IMPORTS = ["math", "random", "statistics", "itertools", "functools", "collections", "torch.nn.functional"]


# ------------------------------------------------------------------------------------------------
# the assignment


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
        from course_lib.cli import find_repo_root

        candidates.append(Path.cwd() / "solutions")
        root = find_repo_root()
        if root is not None:
            candidates.append(root / "solutions")
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise FileNotFoundError(
            f"no solutions folder found (looked in {', '.join(map(str, candidates))}); pass the path of "
            "the solutions file or --solutions DIR"
        )
    files = ex.solution_files(folder)
    key = str(spec).strip().lower()
    if key.isdigit():
        matches = [f for f in files if f.stem.startswith(f"{int(key):02d}_")]
    else:
        key = key[:-3] if key.endswith(".py") else key
        matches = [f for f in files if f.stem.startswith(key)] or [f for f in files if f.stem[3:].startswith(key)]
    if not matches:
        known = ", ".join(f.stem for f in files) or "none"
        raise FileNotFoundError(f"no solutions file matches {spec!r} in {folder}; there are: {known}")
    if len(matches) > 1:
        raise ValueError(f"{spec!r} matches several solutions files ({', '.join(f.stem for f in matches)}); give more of the name")
    return matches[0]


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


def _python(source: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``) turned into Python, as the runner will see it."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def _imports(source: str) -> list[str]:
    """Absolute imports of a cell: ``import a.b`` -> a.b; ``from a import b`` -> a and ?a.b."""
    try:
        tree = ast.parse(_python(source))
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
            python=_python(full.source) if role in ("test", "locked") and full.cell_type == "code" else "",
        ))
        if role in ("test", "locked") and full.cell_type == "code":
            preimport += _imports(full.source)
    for module, extra in _LAZY_IMPORTS.items():
        if any(name.lstrip("?") == module or name.lstrip("?").startswith(module + ".") for name in preimport):
            preimport += [f"?{name}" for name in extra]
    preimport += [f"?{name}" for name in _COMMON_IMPORTS]
    unique = list(dict.fromkeys(preimport))
    return Assignment(path=path, name=path.stem, cells=cells, preimport=unique)


# ------------------------------------------------------------------------------------------------
# submissions


@dataclass(frozen=True)
class Flag:
    """Something the grader had to repair, refuse or report. ``code`` is stable (for scripts),
    ``cell`` the grade_id or cell it concerns, ``message`` says it in words."""

    code: str
    message: str
    cell: str | None = None

    def short(self) -> str:
        return f"{self.code}:{self.cell}" if self.cell else self.code

    def __str__(self) -> str:
        return f"{self.short()} - {self.message}"


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


def _cell_source(cell) -> str | None:
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


# ------------------------------------------------------------------------------------------------
# the plan: what runs, in which order


@dataclass(frozen=True)
class PlanCell:
    """A cell to execute: ``kind`` ``"student"`` (the student's code), ``"locked"`` or ``"test"``
    (from the source). ``label`` is the grade_id or "your cell N"."""

    kind: str
    label: str
    source: str


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def build_plan(assignment: Assignment, nb) -> tuple[list[PlanCell], list[Flag]]:
    """Merge a student's notebook into the assignment's cell order; see the module docstring."""
    known = assignment.by_id
    position = {cell.grade_id: i for i, cell in enumerate(assignment.cells)}
    flags: list[Flag] = []
    primary: dict[str, tuple[str, str]] = {}  # grade_id -> (cell_type, source) of the student's cell
    extras: dict[int, list[PlanCell]] = {}
    anchor = -1
    malformed = 0
    for number, cell in enumerate(nb.get("cells", []), start=1):
        cell_type = cell.get("cell_type")
        source = _cell_source(cell)
        if source is None:
            malformed += 1
            continue
        meta = cell.get("metadata", {}) if isinstance(cell.get("metadata"), dict) else {}
        nbgrader = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
        grade_id = nbgrader.get("grade_id") if isinstance(nbgrader.get("grade_id"), str) else None
        if grade_id in known and grade_id not in primary:
            primary[grade_id] = (cell_type, source)
            anchor = position[grade_id]
            continue
        if grade_id in known:
            role = known[grade_id].role
            what = "kept in place as your own code" if role == "answer" and cell_type == "code" else "the copy was ignored"
            flags.append(Flag("duplicate-id", f"cell {number} repeats the id {grade_id!r} ({what})", grade_id))
            if role != "answer":
                continue
        elif grade_id is not None and cell_type == "code":
            flags.append(Flag("unknown-id", f"cell {number} has an id ({grade_id!r}) this assignment does not have; run as your own code", grade_id))
        if cell_type == "code" and source.strip():
            extras.setdefault(anchor, []).append(PlanCell("student", f"your cell {number}", source))
    if malformed:
        flags.append(Flag("malformed-cell", f"{malformed} cell(s) without readable source were skipped"))
    plan = list(extras.get(-1, []))
    for pos, cell in enumerate(assignment.cells):
        mine = primary.get(cell.grade_id)
        if cell.role in ("test", "locked") and cell.cell_type == "code":
            plan.append(PlanCell(cell.role, cell.grade_id, cell.python or cell.source))
            what = "test" if cell.role == "test" else "locked"
            if mine is None:
                flags.append(Flag(f"{what}-deleted", f"the {what} cell {cell.grade_id!r} was missing; the original was put back", cell.grade_id))
            elif mine[0] != "code" or _normalise(mine[1]) not in (_normalise(cell.exercise_source), _normalise(cell.source)):
                flags.append(Flag(f"{what}-edited", f"the {what} cell {cell.grade_id!r} was changed; the original was used", cell.grade_id))
        elif cell.role == "answer":
            if mine is None:
                flags.append(Flag("answer-missing", f"the answer cell {cell.grade_id!r} was deleted; nothing ran in its place", cell.grade_id))
            elif mine[0] != "code":
                flags.append(Flag("answer-not-code", f"the answer cell {cell.grade_id!r} is no longer a code cell; it was not run", cell.grade_id))
            elif mine[1].strip():
                plan.append(PlanCell("student", cell.grade_id, mine[1]))
        plan.extend(extras.get(pos, []))
    return plan, flags


# ------------------------------------------------------------------------------------------------
# a static look at the student's code, for the instructor


_SUSPICIOUS_ATTRS = {
    "f_back": "walks the interpreter's frames", "f_globals": "reads another frame's globals",
    "f_locals": "reads another frame's variables", "f_builtins": "reads another frame's builtins",
    "tb_frame": "walks the interpreter's frames", "gi_frame": "walks the interpreter's frames",
    "cr_frame": "walks the interpreter's frames", "__globals__": "reaches into a function's globals",
    "__closure__": "reaches into a function's closure", "__code__": "rewrites or inspects code objects",
    "__builtins__": "changes the builtins", "__subclasses__": "walks the class hierarchy",
    "_getframe": "walks the interpreter's frames", "currentframe": "walks the interpreter's frames",
    "settrace": "installs a tracer", "setprofile": "installs a profiler", "addaudithook": "installs an audit hook",
    "meta_path": "changes the import system", "input_transformers_cleanup": "rewrites cells before they run",
    "input_transformers_post": "rewrites cells before they run", "ast_transformers": "rewrites cells before they run",
    "setitimer": "sets a timer signal", "alarm": "sets a timer signal", "_exit": "ends the process",
}
_SUSPICIOUS_MODULES = {"ctypes", "gc", "builtins", "__builtin__", "_thread", "signal", "subprocess", "socket", "multiprocessing", "pty", "importlib"}
_MAGIC_DUNDERS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__float__", "__int__",
                  "__index__", "__abs__", "__torch_function__", "__array_ufunc__", "__array_function__",
                  "__instancecheck__", "__subclasscheck__"}
_SUSPICIOUS_STRINGS = ("f_back", "__globals__", "__builtins__", "_getframe", "tb_frame", "ctypes")


def review_code(label: str, source: str, protected: set[str] = frozenset()) -> list[str]:
    """Constructs in a student cell an instructor may want to look at (never used for scoring):
    frame walking, tracers, import hooks, low-level modules, assigning attributes of imported
    modules (monkeypatching), classes that redefine comparisons or conversions."""
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return []
    found: list[str] = []
    modules: set[str] = set(protected)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        what = None
        if isinstance(node, ast.Attribute) and node.attr in _SUSPICIOUS_ATTRS:
            what = f"{_SUSPICIOUS_ATTRS[node.attr]} (.{node.attr})"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            bad = [n for n in names if n.split(".")[0] in _SUSPICIOUS_MODULES]
            if bad:
                what = f"imports {', '.join(bad)}"
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                base = target
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                if isinstance(target, ast.Attribute) and isinstance(base, ast.Name) and base.id in modules:
                    what = f"changes {ast.unparse(target)} (monkeypatching a module the tests may use)"
                elif isinstance(target, ast.Subscript) and isinstance(base, ast.Name) and base.id in ("sys", "globals"):
                    what = f"changes {ast.unparse(target)}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("setattr", "delattr") and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in modules:
                what = f"{node.func.id}() on the module {node.args[0].id} (monkeypatching)"
            elif node.func.id in ("globals", "vars") and not node.args and node.func.id == "globals":
                what = "uses globals()"
            elif node.func.id in ("exec", "eval", "compile", "__import__"):
                what = f"calls {node.func.id}()"
        elif isinstance(node, ast.ClassDef):
            dunders = sorted({n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in _MAGIC_DUNDERS})
            if dunders:
                what = f"class {node.name} redefines {', '.join(dunders)} (objects that fool comparisons?)"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            hits = [s for s in _SUSPICIOUS_STRINGS if s in node.value]
            if hits:
                what = f"a string naming {hits[0]!r}"
        if what:
            found.append(f"{label} line {line}: {what}")
    return list(dict.fromkeys(found))


# ------------------------------------------------------------------------------------------------
# results


@dataclass
class TestResult:
    grade_id: str
    points: float
    max_points: float
    status: str  # passed | partial | failed | error | timeout | not run
    message: str = ""
    hint: str = ""
    seconds: float = 0.0


@dataclass
class StudentResult:
    student: str
    submission: str | None
    tests: list[TestResult] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    maximum: float = 0.0
    seconds: float = 0.0
    sandbox: dict = field(default_factory=dict)

    @property
    def total(self) -> float:
        return round(sum(test.points for test in self.tests), 4)

    def score(self, grade_id: str) -> float:
        return next(test.points for test in self.tests if test.grade_id == grade_id)

    def to_json(self, assignment: str, *, instructor: bool = False) -> dict:
        out = {
            "student": self.student,
            "assignment": assignment,
            "submission": self.submission if instructor or not self.submission else Path(self.submission).name,
            "score": self.total,
            "max_score": self.maximum,
            "tests": [asdict(test) for test in self.tests],
            "flags": [{"code": f.code, "cell": f.cell, "message": f.message} for f in self.flags],
            "notes": self.notes,
        }
        if instructor:
            out["seconds"] = round(self.seconds, 3)
            out["sandbox"] = self.sandbox
        return out


@dataclass
class GradingRun:
    assignment: Assignment
    results: list[StudentResult]
    out: Path
    seconds: float
    jobs: int
    limits: Limits
    isolation: dict

    def result(self, student: str) -> StudentResult:
        return next(r for r in self.results if r.student == student)


def _fmt(points: float) -> str:
    return f"{points:.4f}".rstrip("0").rstrip(".") if points != int(points) else str(int(points))


# ------------------------------------------------------------------------------------------------
# grading one submission


class _Context:
    def __init__(self, assignment: Assignment, limits: Limits, out: Path, workroot: Path, hide: list[str], keep: list[str]):
        self.assignment = assignment
        self.limits = limits
        self.out = out
        self.workroot = workroot
        self.hide = hide
        self.keep = keep
        self.zygote: Zygote | None = None
        self.lock = threading.Lock()
        self.generation = 0
        self.isolation: dict = {}
        self.sessions: set[Session] = set()

    def start_zygote(self) -> None:
        with self.lock:
            self._start()

    def _start(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
        namespaces = os.environ.get("COURSE_GRADE_NAMESPACES", "1").strip() != "0"
        self.zygote = Zygote(preimport=self.assignment.preimport, keep=self.keep, workroot=self.workroot, namespaces=namespaces)
        self.zygote.start()
        self.generation += 1

    def restart_if_dead(self, generation: int) -> None:
        with self.lock:
            if self.generation == generation and (self.zygote is None or not self.zygote.alive):
                self._start()

    def close(self) -> None:
        for session in list(self.sessions):
            session.close()
        if self.zygote is not None:
            self.zygote.close()


def _safe_name(student: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"
    return name[:100]


def _open_session(ctx: _Context, submission: Submission, safe: str, text: str | None) -> Session:
    for attempt in range(2):
        generation = ctx.generation
        session = Session(
            ctx.zygote, limits=ctx.limits, log_path=ctx.out / "logs" / f"{safe}.log", hide=ctx.hide,
            notebook_name=submission.path.name if submission.path else "submission.ipynb",
            notebook_text=text if text is not None and len(text) < (32 << 20) else None,
            fallback_workdir=ctx.workroot / "work" / safe,
        )
        try:
            session.open()
            return session
        except SandboxError:
            if attempt:
                raise
            ctx.restart_if_dead(generation)
    raise AssertionError("unreachable")


def _line_of(source: str, number: int | None) -> str:
    if not number:
        return ""
    lines = source.split("\n")
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def _error_message(cell: SourceCell, reply: dict) -> str:
    ename, evalue = reply.get("ename", "Error"), reply.get("evalue", "")
    text = f"{ename}: {evalue}" if evalue else ename
    line = reply.get("line")
    if line and line in cell.hidden_lines:
        where = "a hidden check failed"
    elif line:
        where = f"failed at: {_line_of(cell.source, line)}"
    else:
        where = ""
    student = reply.get("student")
    if isinstance(student, dict) and student.get("cell"):
        where += ("; " if where else "") + f"the error was raised in your cell {student['cell']} (line {student.get('line')})"
    return f"{text} ({where})" if where else text


def _score_test(cell: SourceCell, outcome: CellOutcome, flags: list[Flag]) -> TestResult:
    result = TestResult(cell.grade_id, 0.0, cell.points, "error", hint=cell.hint, seconds=round(outcome.seconds, 3))
    reply = outcome.reply
    tampered = reply.get("tampered")
    if tampered:
        flags.append(Flag("tampering", f"while {cell.grade_id} ran, the notebook's code changed {', '.join(tampered[:5])}; the test scores 0", cell.grade_id))
    if outcome.status == "timeout":
        result.status, result.message = "timeout", f"the test did not finish in time ({outcome.detail})"
        return result
    if outcome.status == "died":
        result.message = f"the notebook's process ended while this test ran: {outcome.detail}"
        return result
    if outcome.status == "channel":
        result.message = "the notebook wrote on the grader's channel while this test ran"
        return result
    if outcome.status == "error":
        result.message = _error_message(cell, reply)
        return result
    if tampered:
        result.status, result.message = "failed", "your code changed what the test relies on while it ran (" + ", ".join(tampered[:5]) + ")"
        return result
    fraction = 1.0
    if "value" in reply:
        value = reply["value"]
        if isinstance(value, bool):  # a test ending with a comparison: True is full credit, False none
            value = float(value)
        if isinstance(value, (int, float)) and 0.0 <= value <= 1.0:
            fraction = float(value)
        else:
            flags.append(Flag("partial-invalid", f"{cell.grade_id} ended with {value!r}, not a fraction in [0, 1]; scored 0", cell.grade_id))
            fraction = 0.0
            result.message = f"the test's result {value!r} is not a fraction in [0, 1]"
    result.points = round(cell.points * fraction, 4)
    if fraction >= 1.0:
        result.status = "passed"
    elif fraction > 0:
        result.status, result.message = "partial", f"partial credit: {fraction:.0%} of the checks passed"
    else:
        result.status = "failed"
        result.message = result.message or "the test's checks returned 0"
    return result


def _grade_one(ctx: _Context, submission: Submission) -> StudentResult:
    started = time.monotonic()
    assignment = ctx.assignment
    result = StudentResult(submission.student, str(submission.path) if submission.path else None, maximum=assignment.total)
    result.flags.extend(submission.flags)
    safe = _safe_name(submission.student)
    scored: dict[str, TestResult] = {}
    why_not_run = "the notebook could not be graded"
    try:
        nb = text = None
        if submission.path is not None:
            nb, text, read_flags = read_submission(submission.path)
            result.flags.extend(read_flags)
            if nb is None:
                why_not_run = "the notebook could not be read"
        if nb is not None:
            plan, plan_flags = build_plan(assignment, nb)
            result.flags.extend(plan_flags)
            protected = {name for c in assignment.cells if c.role == "locked" for name in _imported_names(c.source)}
            review = [item for cell in plan if cell.kind == "student" for item in review_code(cell.label, cell.source, protected)]
            if review:
                shown = review[:4] + ([f"... and {len(review) - 4} more"] if len(review) > 4 else [])
                result.flags.append(Flag("review", "worth a look: " + "; ".join(shown)))
            why_not_run = _run_plan(ctx, submission, safe, text, plan, result, scored)
    except Exception as error:  # never let one submission stop the class
        result.flags.append(Flag("grader-error", f"the grader failed on this submission ({type(error).__name__}: {error}); regrade it"))
        try:
            with open(ctx.out / "logs" / f"{safe}.grader-error.txt", "w") as f:
                traceback.print_exc(file=f)
        except OSError:
            pass
    for cell in assignment.tests:
        if cell.grade_id in scored:
            result.tests.append(scored[cell.grade_id])
        else:
            result.tests.append(TestResult(cell.grade_id, 0.0, cell.points, "not run", f"not run: {why_not_run}", cell.hint))
    result.seconds = time.monotonic() - started
    return result


def _imported_names(source: str) -> set[str]:
    names = set()
    try:
        tree = ast.parse(_python(source))
    except SyntaxError:
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def _run_plan(ctx: _Context, submission: Submission, safe: str, text: str | None, plan: list[PlanCell],
              result: StudentResult, scored: dict[str, TestResult]) -> str:
    """Execute the plan in a sandbox; fills ``scored``; returns why later tests did not run (if so)."""
    tests = {cell.grade_id: cell for cell in ctx.assignment.tests}
    try:
        session = _open_session(ctx, submission, safe, text)
    except SandboxError as error:
        result.flags.append(Flag("sandbox-error", f"the sandbox did not start ({error}); regrade this submission"))
        return "the sandbox did not start"
    ctx.sessions.add(session)
    result.sandbox = session.report
    restored: list[str] = []
    refused: list[str] = []
    stopped = ""
    try:
        for cell in plan:
            outcome = session.run(cell.kind, cell.label, cell.source)
            reply = outcome.reply
            for item in reply.get("restored", []):
                if item not in restored:
                    restored.append(item)
            for event in reply.get("events", []):
                if event not in refused:
                    refused.append(event)
            if cell.kind == "test":
                scored[cell.label] = _score_test(tests[cell.label], outcome, result.flags)
            elif outcome.status == "error" and reply.get("ename") != "KeyboardInterrupt":
                who = f"your cell {cell.label}" if not cell.label.startswith("your cell") else cell.label
                if cell.kind == "locked":
                    who = f"the course's cell {cell.label}"
                where = f" (line {reply['line']})" if reply.get("line") else ""
                student = reply.get("student")
                if cell.kind == "student" and isinstance(student, dict) and student.get("line"):
                    where = f" (line {student['line']})"
                evalue = f": {reply['evalue']}" if reply.get("evalue") else ""
                result.notes.append(f"{who} raised {reply.get('ename')}{evalue}{where}")
            if outcome.status == "timeout":
                action = "interrupted; grading went on" if outcome.interrupted else outcome.detail + "; later tests were not run"
                result.flags.append(Flag("timeout", f"{cell.label} ran past the time limit ({action})", cell.label))
            elif outcome.status == "died":
                result.flags.append(Flag("died", f"{outcome.detail} in {cell.label}; later tests were not run", cell.label))
            elif outcome.status == "channel":
                result.flags.append(Flag("channel", f"{cell.label} wrote on the grader's channel (tampering); later tests were not run", cell.label))
            if not outcome.alive:
                stopped = f"{outcome.detail or outcome.status} in {cell.label}"
                break
    finally:
        session.close()
        ctx.sessions.discard(session)
    if restored:
        result.flags.append(Flag("monkeypatch", f"your code changed {', '.join(restored[:6])}{' ...' if len(restored) > 6 else ''}; undone before the course's cells ran"))
    if refused:
        result.flags.append(Flag("refused", "the sandbox refused: " + "; ".join(refused[:5])))
    return stopped or "the notebook stopped earlier"


# ------------------------------------------------------------------------------------------------
# outputs


def _write_gradebook(run: GradingRun) -> Path:
    tests = run.assignment.tests
    path = run.out / "gradebook.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *[t.grade_id for t in tests], "total", "maximum", "flags"])
        for r in run.results:
            writer.writerow([r.student, *[_fmt(r.score(t.grade_id)) for t in tests], _fmt(r.total), _fmt(r.maximum),
                             "; ".join(f.short() for f in r.flags)])
    return path


_BINS = [("0", lambda x: x <= 0), ("(0-25%]", lambda x: 0 < x <= 0.25), ("(25-50%]", lambda x: 0.25 < x <= 0.5),
         ("(50-75%]", lambda x: 0.5 < x <= 0.75), ("(75-100%)", lambda x: 0.75 < x < 1), ("full", lambda x: x >= 1)]


def _summary(run: GradingRun) -> list[dict]:
    rows = []
    n = len(run.results)
    columns = [(t.grade_id, t.points, [r.score(t.grade_id) for r in run.results]) for t in run.assignment.tests]
    columns.append(("total", run.assignment.total, [r.total for r in run.results]))
    for name, points, values in columns:
        fractions = [v / points if points else 0.0 for v in values]
        ordered = sorted(values)
        median = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2 if n else 0.0
        rows.append({
            "question": name,
            "points": points,
            "students": n,
            "mean": round(sum(values) / n, 4) if n else 0.0,
            "mean_percent": round(100 * sum(fractions) / n, 1) if n else 0.0,
            "median": round(median, 4),
            "distribution": {label: sum(1 for x in fractions if test(x)) for label, test in _BINS},
        })
    return rows


def _write_summary(run: GradingRun) -> list[Path]:
    rows = _summary(run)
    out = []
    path = run.out / "summary.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "points", "students", "mean", "mean_percent", "median", *[label for label, _ in _BINS]])
        for row in rows:
            writer.writerow([row["question"], _fmt(row["points"]), row["students"], _fmt(row["mean"]), row["mean_percent"],
                             _fmt(row["median"]), *row["distribution"].values()])
    out.append(path)
    lines = [f"# {run.assignment.name}: {len(run.results)} submissions", "",
             "| question | points | mean | mean % | " + " | ".join(label for label, _ in _BINS) + " |",
             "|:---|---:|---:|---:|" + "---:|" * len(_BINS)]
    for row in rows:
        lines.append(f"| {row['question']} | {_fmt(row['points'])} | {_fmt(row['mean'])} | {row['mean_percent']} | "
                     + " | ".join(str(v) for v in row["distribution"].values()) + " |")
    lines += ["", "Distribution of the share of points (each block is one student, at most 60 shown):", "", "```"]
    for row in rows:
        lines.append(f"{row['question']}")
        for label, count in row["distribution"].items():
            lines.append(f"  {label:>10} {count:4d} {'#' * min(count, 60)}")
    lines += ["```", ""]
    flagged = [r for r in run.results if r.flags]
    if flagged:
        lines += [f"{len(flagged)} submission(s) have flags; see gradebook.csv and grading.json.", ""]
    path = run.out / "summary.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    out.append(path)
    path = run.out / "summary.json"
    path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    out.append(path)
    return out


_STATUS_COLOUR = {"passed": "#1a7f37", "partial": "#9a6700", "failed": "#cf222e", "error": "#cf222e",
                  "timeout": "#cf222e", "not run": "#6e7781"}


def _feedback_html(result: StudentResult, assignment: Assignment) -> str:
    e = html.escape
    rows = []
    for t in result.tests:
        colour = _STATUS_COLOUR.get(t.status, "#000")
        hint = f"<div class='hint'>Hint: {e(t.hint)}</div>" if t.hint and t.status != "passed" else ""
        rows.append(
            f"<tr><td><code>{e(t.grade_id)}</code></td><td class='num'>{e(_fmt(t.points))} / {e(_fmt(t.max_points))}</td>"
            f"<td style='color:{colour}'><b>{e(t.status)}</b></td><td>{e(t.message)}{hint}</td></tr>"
        )
    flags = "".join(f"<li><code>{e(f.short())}</code> {e(f.message)}</li>" for f in result.flags)
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(assignment.name)}: feedback for {e(result.student)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #d0d7de; padding: .4rem .6rem; vertical-align: top; text-align: left; }}
.num {{ text-align: right; white-space: nowrap; }} .hint {{ color: #57606a; margin-top: .3rem; }} .total {{ font-size: 1.3rem; }}
</style></head><body>
<h1>{e(assignment.name)}</h1>
<p>Feedback for <b>{e(result.student)}</b>. <span class="total">Score: <b>{e(_fmt(result.total))} / {e(_fmt(result.maximum))}</b></span></p>
<table><tr><th>test</th><th class="num">points</th><th>result</th><th>details</th></tr>
{''.join(rows)}
</table>
{f'<h2>What the grader noticed</h2><ul>{flags}</ul>' if flags else ''}
{f'<h2>Errors in your cells</h2><ul>{notes}</ul>' if notes else ''}
<p style="color:#57606a">Graded in quick mode in a sandbox, each test cell taken from the course's source (hidden checks included).
A test scores its points when it runs without an error; some tests give partial credit.</p>
</body></html>
"""


def _write_feedback(run: GradingRun, result: StudentResult, names: dict[str, str]) -> None:
    folder = run.out / "feedback"
    name = names[result.student]
    (folder / f"{name}.json").write_text(json.dumps(result.to_json(run.assignment.name), indent=1), encoding="utf-8")
    (folder / f"{name}.html").write_text(_feedback_html(result, run.assignment), encoding="utf-8")


def _file_names(students: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    used: set[str] = set()
    for student in students:
        base = _safe_name(student)
        name, k = base, 2
        while name.lower() in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name.lower())
        names[student] = name
    return names


# ------------------------------------------------------------------------------------------------
# the whole class


def _hidden_paths(submissions: Path, out: Path, assignment: Assignment, workroot: Path, keep: list[str]) -> list[str]:
    home = Path.home()
    candidates = [submissions, out, assignment.path.parent, assignment.path, workroot]
    root = assignment.path.resolve().parent.parent
    candidates += [root / ".git"]
    candidates += [home / name for name in (".ssh", ".gnupg", ".aws", ".azure", ".netrc", ".git-credentials", ".pypirc",
                                            ".docker", ".kube", ".config/gcloud", ".jupyter", ".local/share/jupyter",
                                            ".bash_history", ".python_history", ".ipython")]
    candidates += [Path(p) for p in ("/etc/shadow", "/etc/gshadow", "/etc/ssh", "/root")]
    out_paths = []
    for path in candidates:
        try:
            path = path.resolve()
        except OSError:
            continue
        contains_environment = any(k == str(path) or k.startswith(str(path) + os.sep) for k in keep)
        if path.exists() and str(path) not in out_paths and not contains_environment:
            out_paths.append(str(path))
    return out_paths


def _keep_paths() -> list[str]:
    import course_lib

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(course_lib.__file__).resolve().parent)}
    paths |= {p for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)}
    return sorted(str(Path(p).resolve()) for p in paths)


def _check_layout(submissions: Path, out: Path, keep: list[str]) -> None:
    if out == submissions:
        raise ValueError("--out must be a folder of its own, not the submissions folder (it may be inside it)")
    for label, folder in (("SUBMISSIONS", submissions), ("--out", out)):
        for path in keep:
            if path == str(folder) or path.startswith(str(folder) + os.sep):
                raise ValueError(
                    f"{label} ({folder}) contains the course's Python environment or package ({path}); the grader "
                    "hides that folder from every submission, so put submissions and results in their own folders"
                )


def grade(
    assignment: str | Path | Assignment,
    submissions: str | Path,
    out: str | Path,
    *,
    jobs: int = 1,
    limits: Limits | None = None,
    students: Iterable[str] | None = None,
    solutions_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> GradingRun:
    """Grade every submission in ``submissions`` and write the outputs to ``out``; see the module
    docstring. Never raises because of a submission; raises ``FileNotFoundError``/``ValueError``
    (and ``ExerciseFormatError``) for a missing or invalid assignment or folder, and
    :class:`~course_lib.grading.sandbox.SandboxError` when no sandbox can be started at all."""
    started = time.monotonic()
    if jobs < 1:
        raise ValueError("--jobs must be at least 1")
    if sys.platform == "win32":
        raise OSError("course grade needs Linux (or macOS, with less isolation); on Windows use WSL")
    limits = limits or Limits()
    assignment = assignment if isinstance(assignment, Assignment) else load_assignment(assignment, solutions_dir)
    submissions = Path(submissions).resolve()
    out = Path(out).resolve()
    keep = _keep_paths()
    _check_layout(submissions, out, keep)
    found = discover_submissions(submissions, assignment.name, exclude=[out])
    if students is not None:
        wanted = set(students)
        missing = wanted - {s.student for s in found}
        if missing:
            raise ValueError(f"no submission for {', '.join(sorted(missing))} in {submissions}")
        found = [s for s in found if s.student in wanted]
    if not found:
        raise FileNotFoundError(
            f"no submissions in {submissions}: expected NAME.ipynb files, NAME/ folders or nbgrader's submitted/NAME/ASSIGNMENT/"
        )
    for folder in ("feedback", "logs"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    workroot = Path(tempfile.mkdtemp(prefix="course-grade-"))
    ctx = _Context(assignment, limits, out, workroot, _hidden_paths(submissions, out, assignment, workroot, keep), keep)
    say = progress or (lambda _msg: None)
    results: list[StudentResult] = []
    try:
        say(f"grading {len(found)} submission(s) of {assignment.name} ({_fmt(assignment.total)} points, "
            f"{len(assignment.tests)} tests) with {jobs} job(s); starting the sandbox ...")
        ctx.start_zygote()
        if ctx.zygote.info.get("import_errors"):
            say("warning: the sandbox could not import " + "; ".join(ctx.zygote.info["import_errors"]))
        run = GradingRun(assignment, results, out, 0.0, jobs, limits, {})
        names = _file_names([s.student for s in found])
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
        try:
            futures = {pool.submit(_grade_one, ctx, s): s for s in found}
            for done, future in enumerate(as_completed(futures), start=1):
                submission = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # _grade_one catches everything; belt and braces
                    result = StudentResult(submission.student, None, maximum=assignment.total,
                                           flags=[Flag("grader-error", f"{type(error).__name__}: {error}")])
                    result.tests = [TestResult(t.grade_id, 0.0, t.points, "not run", "not run: grader error", t.hint) for t in assignment.tests]
                results.append(result)
                if not ctx.isolation and result.sandbox:
                    ctx.isolation = result.sandbox
                try:
                    _write_feedback(run, result, names)
                except OSError as error:
                    result.flags.append(Flag("grader-error", f"could not write the feedback ({error})"))
                flags = f"  [{'; '.join(f.short() for f in result.flags)}]" if result.flags else ""
                say(f"[{done:>{len(str(len(found)))}}/{len(found)}] {result.student:<24} "
                    f"{_fmt(result.total):>6} / {_fmt(result.maximum):<5} {result.seconds:5.1f} s{flags}")
        except BaseException:  # Ctrl-C: stop the running notebooks now rather than wait for them
            pool.shutdown(wait=False, cancel_futures=True)
            ctx.close()
            raise
        pool.shutdown(wait=True)
    finally:
        ctx.close()
        if (workroot / "zygote.log").is_file():
            shutil.copyfile(workroot / "zygote.log", out / "logs" / "_sandbox.log")
        shutil.rmtree(workroot, ignore_errors=True)
    results.sort(key=lambda r: r.student)
    run.results = results
    run.seconds = time.monotonic() - started
    run.isolation = ctx.isolation
    _write_gradebook(run)
    _write_summary(run)
    _write_run_record(run, ctx)
    say(f"done in {run.seconds:.1f} s ({run.seconds / max(1, len(results)):.2f} s per submission with {jobs} job(s)); "
        f"results in {out}")
    weak = _isolation_warnings(run.isolation)
    for warning in weak:
        say(f"warning: {warning}")
    return run


def _isolation_warnings(report: dict) -> list[str]:
    if not report:
        return []
    out = list(report.get("problems", []))
    if not report.get("namespaces"):
        out.append("no Linux namespaces: submissions could read the grader user's files and use the network "
                   "(run as root or enable unprivileged user namespaces for full isolation)")
    if not report.get("seccomp"):
        out.append("no seccomp filter: submissions may start processes (RLIMIT_NPROC is the only limit)")
    return out


def _write_run_record(run: GradingRun, ctx: _Context) -> None:
    from course_lib import __version__

    record = {
        "assignment": run.assignment.name,
        "source": str(run.assignment.path),
        "graded_at": _dt.datetime.now().isoformat(timespec="seconds"),
        "course_lib": __version__,
        "submissions": len(run.results),
        "jobs": run.jobs,
        "seconds": round(run.seconds, 2),
        "seconds_per_submission": round(run.seconds / max(1, len(run.results)), 3),
        "limits": run.limits.as_dict(),
        "isolation": run.isolation,
        "isolation_warnings": _isolation_warnings(run.isolation),
        "sandbox_imports": ctx.zygote.info if ctx.zygote else {},
        "hidden_from_submissions": ctx.hide,
        "students": [r.to_json(run.assignment.name, instructor=True) for r in run.results],
    }
    (run.out / "grading.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# command line


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``course grade`` to the ``course`` command (called by :mod:`course_lib.cli`)."""
    defaults = Limits()
    parser = subparsers.add_parser(
        "grade",
        help="grade a class's notebooks in a sandbox: gradebook, feedback, summary",
        description="Grade every notebook in SUBMISSIONS against the solutions file ASSIGNMENT. Each notebook runs "
        "in its own sealed process (time, memory, file-size and process limits, no network, quick mode, CPU); "
        "test cells come from the source. Writes gradebook.csv, feedback/, summary.* and grading.json to --out.",
    )
    parser.add_argument("assignment", help="solutions/NN_topic.py, or its number or name (02, maximum_likelihood)")
    parser.add_argument("submissions", help="folder with NAME.ipynb files, NAME/ folders, or nbgrader's submitted/NAME/ASSIGNMENT/")
    parser.add_argument("--out", required=True, metavar="DIR", help="where to write the gradebook and feedback")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="notebooks graded at once (default 1; use the number of cores)")
    parser.add_argument("--cell-timeout", type=float, default=defaults.cell_timeout, metavar="S",
                        help=f"seconds a cell may run before it is interrupted (default {defaults.cell_timeout:g})")
    parser.add_argument("--timeout", type=float, default=defaults.notebook_timeout, metavar="S",
                        help=f"seconds a whole notebook may run (default {defaults.notebook_timeout:g})")
    parser.add_argument("--memory", type=int, default=defaults.memory_mb, metavar="MB", help=f"address-space limit (default {defaults.memory_mb})")
    parser.add_argument("--file-size", type=int, default=defaults.file_size_mb, metavar="MB", help=f"largest file a notebook may write (default {defaults.file_size_mb})")
    parser.add_argument("--disk", type=int, default=defaults.disk_mb, metavar="MB", help=f"scratch space per notebook (default {defaults.disk_mb})")
    parser.add_argument("--student", action="append", metavar="ID", help="grade only this student (repeat for several)")
    parser.add_argument("--solutions", metavar="DIR", help="folder of the solutions files (default: solutions/ of the course)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the final line")
    parser.set_defaults(func=_cmd_grade)
    return parser


def _cmd_grade(args: argparse.Namespace) -> int:
    try:
        limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.timeout, memory_mb=args.memory,
                        file_size_mb=args.file_size, disk_mb=args.disk)
        run = grade(args.assignment, args.submissions, args.out, jobs=args.jobs, limits=limits, students=args.student,
                    solutions_dir=args.solutions, progress=None if args.quiet else print)
    except (FileNotFoundError, ValueError, SandboxError, OSError) as error:
        print(f"course grade: {error}", file=sys.stderr)
        return 2
    flagged = sum(1 for r in run.results if r.flags)
    mean = sum(r.total for r in run.results) / max(1, len(run.results))
    print(f"{len(run.results)} graded, mean {mean:.2f} / {_fmt(run.assignment.total)}, {flagged} with flags; "
          f"gradebook: {run.out / 'gradebook.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.grading.grade ...`` (same as ``course grade ...``)."""
    parser = argparse.ArgumentParser(prog="course")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["grade", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
