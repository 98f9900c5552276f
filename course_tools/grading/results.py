"""What grading produces: flags (what the grader repaired, refused or reports), each test's result,
each student's result and the whole run. Plain dataclasses; the reports are written by
:mod:`course_tools.grading.reports`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from course_tools.grading.assignment import Assignment
    from course_tools.grading.sandbox import Limits

__all__ = ["Flag", "TestResult", "StudentResult", "GradingRun", "format_points"]


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


def format_points(points: float) -> str:
    """``2`` for 2.0, ``1.25`` for 1.25: points as a gradebook shows them."""
    return f"{points:.4f}".rstrip("0").rstrip(".") if points != int(points) else str(int(points))
