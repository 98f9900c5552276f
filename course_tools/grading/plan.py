"""The plan: which cells run, in which order, for one submission.

The student's notebook is merged into the assignment's cell order by nbgrader ``grade_id``: locked
cells and test cells come from the source (hidden tests put back), deleted ones are re-inserted,
duplicated ids are resolved, answer cells and the student's own extra cells keep their place.
Every repair is a :class:`~course_tools.grading.results.Flag`.
"""

from __future__ import annotations

from dataclasses import dataclass

from course_tools.grading.assignment import Assignment
from course_tools.grading.results import Flag
from course_tools.grading.submissions import cell_source

__all__ = ["PlanCell", "build_plan"]


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
        source = cell_source(cell)
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
