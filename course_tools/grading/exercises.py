"""Exercise notebooks from their single source, ``solutions/NN_topic.py``.

A solutions file is a jupytext percent script whose cells carry nbgrader schema-3 metadata
(see "Exercise format" in docs/ARCHITECTURE.md)::

    # %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
    def entropy(p):
        ### BEGIN SOLUTION
        return -(p * p.log()).sum()
        ### END SOLUTION

    # %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
    # Hint: the entropy of a fair coin is log 2 nats.
    assert abs(entropy(torch.tensor([0.5, 0.5])) - math.log(2)) < 1e-6
    ### BEGIN HIDDEN TESTS
    assert abs(entropy(torch.tensor([1.0, 0.0]))) < 1e-6
    ### END HIDDEN TESTS

From it this module makes two notebooks:

- :func:`solution_notebook` - the full solution (markers kept), which the test suite executes to
  prove that every exercise is solvable and every test passes on the reference answer;
- :func:`make_exercise` - the student version: each ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
  region becomes ``# YOUR CODE HERE`` + ``raise NotImplementedError()`` at the marker's indentation
  (``YOUR ANSWER HERE`` in markdown), hidden tests are removed, outputs cleared, and every graded,
  solution and locked cell gets nbgrader's checksum, so nbgrader (and ``course grade``) can tell
  an untouched stub or a tampered test cell.

:func:`write_exercises` writes ``exercises/NN_topic.ipynb`` for every solutions file, byte for byte
reproducibly; :func:`check_exercises_up_to_date` lists what is stale, missing or left over (CI fails
on a non-empty list). :func:`grade_inventory` lists the graded test cells with their points and
``# Hint:`` lines, for the grader's feedback.

Rules the validator enforces (every violation is reported with the file, the cell number, the line
in the ``.py`` and the ``grade_id``, and says how to fix it):

- every cell has nbgrader metadata with ``schema_version: 3``, boolean ``grade``/``locked``/``solution``
  and a ``grade_id`` that is non-empty, unique, made of letters, digits, ``_`` and ``-`` (<= 64 chars);
- cells that are not solution cells are ``locked`` (prompts, set-up and tests cannot be edited);
- graded test cells are code cells with ``points > 0``; written answers are markdown cells that are
  both ``grade`` and ``solution`` (nbgrader's rule; they are graded by hand);
- code solution cells contain at least one balanced ``### BEGIN SOLUTION`` / ``### END SOLUTION``
  region (markdown solution cells may omit the markers: the whole answer is replaced), and the
  student version of a code cell must still be valid Python;
- ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` appear balanced and only in graded test cells;
- ``task`` cells, code cells that are both graded and solution (manually graded code), and a
  ``checksum``/``cell_type`` written by hand are rejected: the course grades automatically.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable
from numbers import Real
from pathlib import Path
from typing import NamedTuple

import nbformat
from nbformat import NotebookNode

__all__ = [
    "BEGIN_SOLUTION",
    "END_SOLUTION",
    "BEGIN_HIDDEN_TESTS",
    "END_HIDDEN_TESTS",
    "CODE_STUB",
    "TEXT_STUB",
    "KERNELSPEC",
    "ExerciseFormatError",
    "GradeCell",
    "StaleExercise",
    "read_solution",
    "validate",
    "solution_notebook",
    "make_exercise",
    "exercise_path",
    "render_exercise",
    "write_exercises",
    "check_exercises_up_to_date",
    "grade_inventory",
    "manually_graded",
    "total_points",
    "compute_checksum",
    "solution_files",
]

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "### END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEXT_STUB = ("YOUR ANSWER HERE",)

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
SOLUTION_NAME = re.compile(r"^(\d\d)_([a-z0-9]+(?:_[a-z0-9]+)*)\.py$")
GRADE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# The keys nbgrader's schema 3 allows in a cell's ``nbgrader`` metadata.
_SCHEMA_KEYS = {"schema_version", "grade", "locked", "solution", "task", "grade_id", "points", "checksum", "cell_type"}
_GENERATED_KEYS = {"checksum", "cell_type"}
_EXAMPLE = (
    'e.g. for a prompt or set-up cell `# %% nbgrader={"grade": false, "grade_id": "q1_prompt", '
    '"locked": true, "schema_version": 3, "solution": false, "task": false}`'
)
# Substrings that identify a marker line (written slightly wrong, it would otherwise be left in).
_MARKER_WORDS = {
    "BEGIN SOLUTION": BEGIN_SOLUTION,
    "END SOLUTION": END_SOLUTION,
    "BEGIN HIDDEN TESTS": BEGIN_HIDDEN_TESTS,
    "END HIDDEN TESTS": END_HIDDEN_TESTS,
}
_HINT = re.compile(r"^\s*#\s*Hint:\s?(.*)$", re.IGNORECASE)
_HINT_CONTINUATION = re.compile(r"^\s*#\s{2,}(\S.*)$")


class ExerciseFormatError(ValueError):
    """A solutions file breaks the exercise format; ``problems`` lists every violation found."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"{source}: {count} problem{'s' if count != 1 else ''} with the exercise format "
            f"(see 'Exercise format' in docs/ARCHITECTURE.md):\n{listing}"
        )


class GradeCell(NamedTuple):
    """One graded test cell: its ``grade_id``, its ``points`` and the hint shown in feedback."""

    grade_id: str
    points: float
    hint: str


class StaleExercise(NamedTuple):
    """A file under ``exercises/`` that does not match ``solutions/``: ``problem`` is
    ``"stale"``, ``"missing"`` or ``"extra"``."""

    path: Path
    problem: str

    def __str__(self) -> str:
        fix = {
            "stale": "differs from what its solutions file generates",
            "missing": "is not generated yet",
            "extra": "has no solutions file (it would be deleted)",
        }[self.problem]
        return f"{self.path} {fix}"


# --------------------------------------------------------------------------------------------
# reading and validating


def read_solution(path: str | Path) -> NotebookNode:
    """Read ``solutions/NN_topic.py`` (jupytext percent) into a notebook, unvalidated.

    ``metadata["course"]`` records ``source`` (``solutions/NN_topic.py``, stored in the generated
    notebooks) and ``path`` (as given, used to label errors); the line of each cell's ``# %%``
    marker is kept in ``cell.metadata["course_line"]`` for error messages (not copied into the
    generated notebooks).
    """
    import jupytext  # imported here: jupytext is slow to import and only needed for .py sources

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no solutions file at {path}")
    if path.suffix != ".py":
        raise ValueError(f"{path}: solutions are jupytext percent scripts (.py), not {path.suffix or 'extension-less'} files")
    text = path.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata["course"] = {"source": f"{path.parent.name}/{path.name}", "path": _display_path(path)}
    for cell, line in zip(nb.cells, _cell_lines(text, len(nb.cells))):
        if line is not None:
            cell.metadata["course_line"] = line
    return nb


def _display_path(path: Path) -> str:
    """``solutions/NN_topic.py`` relative to the working directory when possible (stable in messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _cell_lines(text: str, n_cells: int) -> list[int | None]:
    """1-based line of each cell's ``# %%`` marker (None where it cannot be told)."""
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if re.match(r"^#\s?%%(\s|$)", line)]
    if len(lines) == n_cells:
        return lines
    if len(lines) == n_cells - 1:  # a first cell without a marker
        return [None, *lines]
    return [None] * n_cells


def _source_label(nb: NotebookNode, source: str | None) -> str:
    course = nb.get("metadata", {}).get("course", {})
    return source or course.get("path") or course.get("source") or "<notebook>"


def _cell_label(index: int, cell: NotebookNode) -> str:
    parts = [f"cell {index}"]
    line = cell.get("metadata", {}).get("course_line")
    if line is not None:
        parts.append(f"line {line}")
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    if isinstance(grade_id, str) and grade_id:
        parts.append(f"grade_id {grade_id!r}")
    return f"{parts[0]} ({', '.join(parts[1:])})" if len(parts) > 1 else parts[0]


def validate(nb: NotebookNode, *, source: str | None = None) -> None:
    """Check ``nb``'s nbgrader metadata and markers; raise :class:`ExerciseFormatError` listing
    every problem (cells are numbered from 0, in the order of the ``# %%`` markers)."""
    problems: list[str] = []
    seen_ids: dict[str, int] = {}
    n_graded = 0
    for index, cell in enumerate(nb.cells):
        where = _cell_label(index, cell)
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            problems.append(f"{where}: has no nbgrader metadata; every cell needs it, {_EXAMPLE}")
            continue
        if not isinstance(meta, dict):
            problems.append(f"{where}: nbgrader metadata must be a JSON object, got {meta!r}")
            continue
        cell_problems = _check_metadata(cell, meta)
        grade_id = meta.get("grade_id")
        if isinstance(grade_id, str) and grade_id:
            if grade_id in seen_ids:
                cell_problems.append(
                    f"grade_id {grade_id!r} is also used by cell {seen_ids[grade_id]}; grade_ids must be unique"
                )
            else:
                seen_ids[grade_id] = index
        if isinstance(meta.get("grade"), bool) and isinstance(meta.get("solution"), bool):
            marker_problems = _check_markers(cell, meta)
            cell_problems += marker_problems
            if not marker_problems and cell.cell_type == "code":
                cell_problems += _check_python(cell, meta)
        problems.extend(f"{where}: {problem}" for problem in cell_problems)
        if meta.get("grade") is True and cell.cell_type == "code":
            n_graded += 1
    if not nb.cells:
        problems.append("the file has no cells; start each cell with a `# %% nbgrader={...}` line")
    elif n_graded == 0 and not problems:
        problems.append(
            'no graded test cell: add at least one code cell with "grade": true, "points": N and asserts'
        )
    if problems:
        raise ExerciseFormatError(_source_label(nb, source), problems)


def _check_metadata(cell: NotebookNode, meta: dict) -> list[str]:
    problems = []
    unknown = sorted(set(meta) - _SCHEMA_KEYS)
    if unknown:
        problems.append(
            f"unknown nbgrader key(s) {unknown}; schema 3 allows {sorted(_SCHEMA_KEYS - _GENERATED_KEYS)}"
        )
    generated = sorted(set(meta) & _GENERATED_KEYS)
    if generated:
        problems.append(f"remove {generated}: `course exercises` computes them for the student version")
    if meta.get("schema_version") != 3:
        problems.append(f'"schema_version" must be 3 (nbgrader schema 3), got {meta.get("schema_version")!r}')
    for key in ("grade", "locked", "solution"):
        if key not in meta:
            problems.append(f'"{key}" is missing; write "{key}": true or false')
        elif not isinstance(meta[key], bool):
            problems.append(f'"{key}" must be true or false, got {meta[key]!r}')
    if "task" in meta and not isinstance(meta["task"], bool):
        problems.append(f'"task" must be true or false, got {meta["task"]!r}')
    grade_id = meta.get("grade_id")
    if grade_id is None or grade_id == "":
        problems.append('"grade_id" is missing or empty; give every cell a unique id such as "q1_test"')
    elif not isinstance(grade_id, str) or not GRADE_ID.match(grade_id):
        problems.append(
            f'"grade_id" {grade_id!r} must be 1-64 letters, digits, "_" or "-" (nbgrader and cell ids allow no others)'
        )
    if problems:
        return problems

    grade, solution, locked = meta["grade"], meta["solution"], meta["locked"]
    if meta.get("task", False):
        problems.append('"task": true marks a manually graded task; the course grades automatically, use "task": false')
    points = meta.get("points")
    if grade:
        if points is None:
            problems.append('a graded cell needs "points", e.g. "points": 2')
        elif isinstance(points, bool) or not isinstance(points, Real) or not points > 0:
            problems.append(f'"points" must be a number > 0, got {points!r}')
    elif points is not None:
        problems.append('"points" only belongs on graded cells ("grade": true); remove it or set "grade": true')
    if cell.cell_type == "code":
        if grade and solution:
            problems.append(
                'a code cell that is both "grade" and "solution" would be graded by hand; split it into a '
                'solution cell ("solution": true) and a test cell ("grade": true, "points": N)'
            )
    elif cell.cell_type == "markdown":
        if grade != solution:
            problems.append(
                'a markdown cell with a written answer must be both "grade": true and "solution": true '
                '(with "points"), as nbgrader requires; prompts are "grade": false, "solution": false'
            )
    elif grade or solution:
        problems.append(f"a {cell.cell_type} cell cannot be graded or hold a solution; make it a code or markdown cell")
    if solution and locked:
        problems.append('a solution cell must be "locked": false, or the student cannot answer')
    if not solution and not locked:
        problems.append(
            'cells that are not solution cells must be "locked": true (prompts, set-up and tests are not edited)'
        )
    return problems


def _marker_lines(source: str) -> list[tuple[int, str, str]]:
    """(0-based line, canonical marker, the line as written) for every line that names a marker,
    however it is spelled, so that ``## begin solution`` is reported rather than left in."""
    found = []
    for number, line in enumerate(source.split("\n")):
        upper = line.upper()
        for words, marker in _MARKER_WORDS.items():
            if words in upper:
                found.append((number, marker, line.strip()))
                break
    return found


def _check_markers(cell: NotebookNode, meta: dict) -> list[str]:
    problems = []
    base = cell.get("metadata", {}).get("course_line")

    def at(number: int) -> str:  # a file line where known (the cell starts below its marker)
        return f"line {base + number + 1}" if base is not None else f"line {number + 1} of the cell"

    markers = _marker_lines(cell.source)
    for number, marker, written in markers:
        if written != marker:
            problems.append(f"{at(number)} reads {written!r}; write the marker exactly as {marker!r}")
    if problems:
        return problems
    solution_markers = [(n, m) for n, m, _w in markers if m in (BEGIN_SOLUTION, END_SOLUTION)]
    hidden_markers = [(n, m) for n, m, _w in markers if m in (BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)]
    if solution_markers and not meta["solution"]:
        problems.append(
            f'has {BEGIN_SOLUTION!r} markers but is not a solution cell; set "solution": true, "locked": false'
        )
    if hidden_markers and not (meta["grade"] and cell.cell_type == "code"):
        problems.append(f'{BEGIN_HIDDEN_TESTS!r} belongs only in graded test cells ("grade": true, "points": N)')
    problems += _check_balanced(solution_markers, BEGIN_SOLUTION, END_SOLUTION, at)
    problems += _check_balanced(hidden_markers, BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS, at)
    if meta["solution"] and cell.cell_type == "code" and not solution_markers and not problems:
        problems.append(
            f"a code solution cell needs a {BEGIN_SOLUTION!r} ... {END_SOLUTION!r} region around the answer "
            "(the student gets a stub in its place)"
        )
    return problems


def _check_balanced(markers: list[tuple[int, str]], begin: str, end: str, at) -> list[str]:
    problems = []
    open_line = None
    for number, marker in markers:
        if marker == begin:
            if open_line is not None:
                problems.append(
                    f"{at(number)} opens {begin!r} again before the one on {at(open_line)} is closed; add {end!r}"
                )
            open_line = number
        else:
            if open_line is None:
                problems.append(f"{at(number)} has {end!r} without a {begin!r} before it")
            open_line = None
    if open_line is not None:
        problems.append(f"{begin!r} on {at(open_line)} is never closed; add {end!r}")
    return problems


def _check_python(cell: NotebookNode, meta: dict) -> list[str]:
    """The solution and the student version of a code cell must both parse as Python."""
    problems = []
    versions = [("the solution", cell.source)]
    student = _student_source(cell, meta)
    if student != cell.source:
        versions.append(("the student version (with the stub)", student))
    base = cell.get("metadata", {}).get("course_line")
    for what, source in versions:
        error = _syntax_error(source, base if source is cell.source else None)
        if error:
            hint = ""
            if what.startswith("the student"):
                hint = "; put the solution markers around whole statements, not inside an expression"
            problems.append(f"{what} of this cell is not valid Python ({error}){hint}")
    return problems


def _syntax_error(source: str, base: int | None = None) -> str | None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)  # %magics and !shell lines
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        pass
    try:
        ast.parse(source)
    except SyntaxError as error:
        where = f"line {base + error.lineno}" if base is not None and error.lineno else f"line {error.lineno} of the cell"
        return f"{error.msg}, {where}"
    return None


# --------------------------------------------------------------------------------------------
# the two notebooks


def _replace_regions(source: str, begin: str, end: str, stub: Iterable[str] | None) -> str:
    """Replace each ``begin``...``end`` region (markers included) by ``stub`` at the marker's
    indentation, or drop it when ``stub`` is None."""
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == begin:
            inside = True
            if stub is not None:
                indent = line[: len(line) - len(line.lstrip())]
                out.extend(indent + stub_line for stub_line in stub)
        elif stripped == end:
            inside = False
        elif not inside:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return "\n".join(out)


def _student_source(cell: NotebookNode, meta: dict) -> str:
    source = cell.source
    if meta.get("solution"):
        stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
        if any(line.strip() == BEGIN_SOLUTION for line in source.split("\n")):
            source = _replace_regions(source, BEGIN_SOLUTION, END_SOLUTION, stub)
        else:  # a markdown answer without markers: the whole cell is the answer
            source = "\n".join(stub)
    if meta.get("grade"):
        source = _replace_regions(source, BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS, None)
    return source


def _is_locked(meta: dict) -> bool:
    """nbgrader's notion: solution cells are never locked, graded cells always are."""
    if meta.get("solution"):
        return False
    if meta.get("grade"):
        return True
    return bool(meta.get("locked"))


def compute_checksum(cell: NotebookNode) -> str:
    """nbgrader's checksum of a cell (``nbgrader.utils.compute_checksum``, reproduced so that the
    course does not need nbgrader installed): md5 over source, cell type, grade/solution/locked
    flags, grade_id and, for graded cells, the points as a float."""
    meta = cell.metadata["nbgrader"]
    digest = hashlib.md5()
    for part in (
        cell.source,
        cell.cell_type,
        str(bool(meta.get("grade", False))),
        str(bool(meta.get("solution", False))),
        str(_is_locked(meta)),
        meta["grade_id"],
    ):
        digest.update(part.encode("utf-8"))
    if meta.get("grade", False):
        digest.update(str(float(meta["points"])).encode("utf-8"))
    return digest.hexdigest()


def _clean_metadata(meta: dict) -> dict:
    clean = {key: meta[key] for key in ("grade", "grade_id", "locked", "schema_version", "solution") if key in meta}
    clean["task"] = bool(meta.get("task", False))
    if meta.get("grade"):
        clean["points"] = meta["points"]
    return clean


def _new_cell(cell_type: str, source: str, metadata: dict, cell_id: str) -> NotebookNode:
    if cell_type == "code":
        new = nbformat.v4.new_code_cell(source=source, metadata=metadata)
    elif cell_type == "markdown":
        new = nbformat.v4.new_markdown_cell(source=source, metadata=metadata)
    else:
        new = nbformat.v4.new_raw_cell(source=source, metadata=metadata)
    new["id"] = cell_id  # deterministic (nbformat would draw a random one)
    return new


def _new_notebook(cells: list[NotebookNode], source: str | None, kind: str) -> NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "course": {"kind": kind, "generated_by": "course exercises"},
    }
    if source:
        nb.metadata["course"]["source"] = Path(source).as_posix()
    return nb


def _as_notebook(nb_or_path: NotebookNode | str | Path) -> NotebookNode:
    if isinstance(nb_or_path, (str, Path)):
        path = Path(nb_or_path)
        if path.suffix == ".ipynb":
            return nbformat.read(path, as_version=4)
        return read_solution(path)
    return nb_or_path


def solution_notebook(path: str | Path | NotebookNode) -> NotebookNode:
    """The full solution (markers and hidden tests kept) as a validated nbformat v4 notebook with
    kernel ``python3``, ready to execute. Raises :class:`ExerciseFormatError` on a bad file."""
    nb = _as_notebook(path)
    validate(nb)
    cells = []
    for cell in nb.cells:
        meta = _clean_metadata(cell.metadata["nbgrader"])
        metadata = {"nbgrader": meta}
        if "tags" in cell.metadata:
            metadata["tags"] = list(cell.metadata["tags"])
        cells.append(_new_cell(cell.cell_type, cell.source, metadata, meta["grade_id"]))
    return _new_notebook(cells, nb.metadata.get("course", {}).get("source"), "solution")


def make_exercise(nb: NotebookNode | str | Path, *, source: str | None = None) -> NotebookNode:
    """The student version of a solutions notebook (``nb`` is not modified).

    Solution regions become ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the
    marker's indentation (``YOUR ANSWER HERE`` in markdown), hidden tests are removed, outputs and
    execution counts are empty, graded/solution/locked cells carry nbgrader's ``checksum`` and
    ``cell_type``, locked cells are marked non-editable and non-deletable for JupyterLab, and the
    kernel is ``python3``. ``source`` names the file in error messages.
    """
    nb = _as_notebook(nb)
    validate(nb, source=source)
    cells = []
    for cell in nb.cells:
        original = cell.metadata["nbgrader"]
        meta = _clean_metadata(original)
        metadata: dict = {"nbgrader": meta}
        if "tags" in cell.metadata:
            metadata["tags"] = list(cell.metadata["tags"])
        new = _new_cell(cell.cell_type, _student_source(cell, original), metadata, meta["grade_id"])
        if meta["grade"] or meta["solution"] or _is_locked(meta):
            new.metadata.nbgrader["checksum"] = compute_checksum(new)
            new.metadata.nbgrader["cell_type"] = new.cell_type
        # what nbgrader's LockCells does: tests and prompts cannot be edited or deleted by accident
        if meta["solution"]:
            new.metadata["deletable"] = False
        elif _is_locked(meta):
            new.metadata["deletable"] = False
            new.metadata["editable"] = False
        cells.append(new)
    return _new_notebook(cells, nb.metadata.get("course", {}).get("source"), "exercise")


# --------------------------------------------------------------------------------------------
# the files


def solution_files(solutions_dir: str | Path = "solutions") -> list[Path]:
    """Every ``NN_topic.py`` in ``solutions_dir``, sorted; other ``.py`` names are an error."""
    solutions_dir = Path(solutions_dir)
    if not solutions_dir.is_dir():
        raise FileNotFoundError(f"no solutions directory at {solutions_dir} (run from the course repository's root)")
    files = sorted(solutions_dir.glob("*.py"))
    bad = [path.name for path in files if not SOLUTION_NAME.match(path.name)]
    if bad:
        raise ValueError(
            f"{solutions_dir}: {bad} do not follow the NN_topic.py naming (two digits, underscore, "
            "lowercase words joined by underscores, e.g. 03_autoregressive_models.py); rename them"
        )
    return files


def exercise_path(solution: str | Path, exercises_dir: str | Path = "exercises") -> Path:
    """``solutions/NN_topic.py`` -> ``exercises/NN_topic.ipynb``."""
    return Path(exercises_dir) / (Path(solution).stem + ".ipynb")


def render_exercise(solution: str | Path) -> str:
    """The exact text of the exercise notebook generated from ``solution`` (what is written to disk)."""
    nb = make_exercise(read_solution(solution))
    return nbformat.writes(nb, version=4) + "\n"  # sorted keys, indent 1, trailing newline


def _expected(solutions_dir: Path, exercises_dir: Path) -> dict[Path, str]:
    expected: dict[Path, str] = {}
    errors: list[ExerciseFormatError] = []
    for path in solution_files(solutions_dir):
        try:
            expected[exercise_path(path, exercises_dir)] = render_exercise(path)
        except ExerciseFormatError as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        problems = [f"{error.source}: {problem}" for error in errors for problem in error.problems]
        raise ExerciseFormatError(f"{len(errors)} files in {solutions_dir}", problems)
    return expected


def _extras(exercises_dir: Path, expected: dict[Path, str]) -> list[Path]:
    if not exercises_dir.is_dir():
        return []
    return sorted(path for path in exercises_dir.glob("*.ipynb") if path not in expected)


def write_exercises(
    solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises", *, prune: bool = True
) -> list[Path]:
    """(Re)generate ``exercises/NN_topic.ipynb`` for every ``solutions/NN_topic.py``; return their paths.

    Output is deterministic: regenerating gives identical bytes, and files that are already up to
    date are not touched. With ``prune`` (default) exercise notebooks without a solutions file are
    deleted. Every solutions file is validated before anything is written.
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    expected = _expected(solutions_dir, exercises_dir)
    exercises_dir.mkdir(parents=True, exist_ok=True)
    for path, text in expected.items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8", newline="\n")
    if prune:
        for path in _extras(exercises_dir, expected):
            path.unlink()
    return sorted(expected)


def check_exercises_up_to_date(
    solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises"
) -> list[StaleExercise]:
    """What ``course exercises`` would change: stale, missing and extra exercise notebooks.

    An empty list means ``exercises/`` is up to date. Raises :class:`ExerciseFormatError` if a
    solutions file is invalid.
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    expected = _expected(solutions_dir, exercises_dir)
    out = []
    for path, text in sorted(expected.items()):
        if not path.is_file():
            out.append(StaleExercise(path, "missing"))
        elif path.read_text(encoding="utf-8") != text:
            out.append(StaleExercise(path, "stale"))
    out += [StaleExercise(path, "extra") for path in _extras(exercises_dir, expected)]
    return out


# --------------------------------------------------------------------------------------------
# inventory for the grader


def _hint(source: str) -> str:
    """The ``# Hint:`` lines of a test cell (a hint line may continue on comment lines indented by
    two or more spaces after the ``#``), joined by spaces."""
    parts: list[str] = []
    in_hint = False
    for line in source.split("\n"):
        match = _HINT.match(line)
        if match:
            parts.append(match.group(1).strip())
            in_hint = True
            continue
        continuation = _HINT_CONTINUATION.match(line) if in_hint else None
        if continuation:
            parts.append(continuation.group(1).strip())
        else:
            in_hint = False
    return " ".join(part for part in parts if part)


def grade_inventory(nb: NotebookNode | str | Path) -> list[GradeCell]:
    """The automatically graded test cells of a solutions file or notebook, in order:
    ``GradeCell(grade_id, points, hint)`` with ``hint`` the text of its ``# Hint:`` lines ("" if none)."""
    nb = _as_notebook(nb)
    out = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            out.append(GradeCell(meta["grade_id"], float(meta["points"]), _hint(cell.source)))
    return out


def manually_graded(nb: NotebookNode | str | Path) -> list[GradeCell]:
    """Written answers (markdown cells that are graded and solution), which need a human grader."""
    nb = _as_notebook(nb)
    out = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and meta.get("solution") and cell.cell_type == "markdown":
            out.append(GradeCell(meta["grade_id"], float(meta["points"]), ""))
    return out


def total_points(nb: NotebookNode | str | Path) -> float:
    """Points of the automatically graded test cells."""
    return sum(cell.points for cell in grade_inventory(nb))

