"""From the sandbox's record of how a test cell ended to the points it earns.

An error gives 0, a clean run the cell's points, or a fraction of them when the cell's last
expression is a number in [0, 1]; a test during which the notebook's code changed what the test
relies on scores 0. Nothing the notebook prints is read.
"""

from __future__ import annotations

from course_tools.grading.assignment import SourceCell
from course_tools.grading.results import Flag, TestResult
from course_tools.grading.sandbox import CellOutcome

__all__ = ["score_test", "error_message"]


def _line_of(source: str, number: int | None) -> str:
    if not number:
        return ""
    lines = source.split("\n")
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def error_message(cell: SourceCell, reply: dict) -> str:
    """What failed, in words, without revealing a hidden check's source."""
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


def score_test(cell: SourceCell, outcome: CellOutcome, flags: list[Flag]) -> TestResult:
    """The :class:`TestResult` of one test cell; appends any flag it raises to ``flags``."""
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
        result.message = error_message(cell, reply)
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
