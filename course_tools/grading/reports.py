"""The outputs of a grading run in ``--out``: ``gradebook.csv``, per-question ``summary.csv`` /
``summary.md`` / ``summary.json``, per-student ``feedback/NAME.html`` and ``feedback/NAME.json``
(with the hints from the solution source) and ``grading.json`` (the run record).
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import re
from pathlib import Path

from course_tools.grading.assignment import Assignment
from course_tools.grading.results import GradingRun, StudentResult, format_points

__all__ = ["write_gradebook", "question_summary", "write_summary", "feedback_html", "write_feedback",
           "feedback_file_names", "safe_file_name", "isolation_warnings", "write_run_record"]


def safe_file_name(student: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"
    return name[:100]


def write_gradebook(run: GradingRun) -> Path:
    tests = run.assignment.tests
    path = run.out / "gradebook.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *[t.grade_id for t in tests], "total", "maximum", "flags"])
        for r in run.results:
            writer.writerow([r.student, *[format_points(r.score(t.grade_id)) for t in tests], format_points(r.total), format_points(r.maximum),
                             "; ".join(f.short() for f in r.flags)])
    return path


_BINS = [("0", lambda x: x <= 0), ("(0-25%]", lambda x: 0 < x <= 0.25), ("(25-50%]", lambda x: 0.25 < x <= 0.5),
         ("(50-75%]", lambda x: 0.5 < x <= 0.75), ("(75-100%)", lambda x: 0.75 < x < 1), ("full", lambda x: x >= 1)]


def question_summary(run: GradingRun) -> list[dict]:
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


def write_summary(run: GradingRun) -> list[Path]:
    rows = question_summary(run)
    out = []
    path = run.out / "summary.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "points", "students", "mean", "mean_percent", "median", *[label for label, _ in _BINS]])
        for row in rows:
            writer.writerow([row["question"], format_points(row["points"]), row["students"], format_points(row["mean"]), row["mean_percent"],
                             format_points(row["median"]), *row["distribution"].values()])
    out.append(path)
    lines = [f"# {run.assignment.name}: {len(run.results)} submissions", "",
             "| question | points | mean | mean % | " + " | ".join(label for label, _ in _BINS) + " |",
             "|:---|---:|---:|---:|" + "---:|" * len(_BINS)]
    for row in rows:
        lines.append(f"| {row['question']} | {format_points(row['points'])} | {format_points(row['mean'])} | {row['mean_percent']} | "
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


def feedback_html(result: StudentResult, assignment: Assignment) -> str:
    e = html.escape
    rows = []
    for t in result.tests:
        colour = _STATUS_COLOUR.get(t.status, "#000")
        hint = f"<div class='hint'>Hint: {e(t.hint)}</div>" if t.hint and t.status != "passed" else ""
        rows.append(
            f"<tr><td><code>{e(t.grade_id)}</code></td><td class='num'>{e(format_points(t.points))} / {e(format_points(t.max_points))}</td>"
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
<p>Feedback for <b>{e(result.student)}</b>. <span class="total">Score: <b>{e(format_points(result.total))} / {e(format_points(result.maximum))}</b></span></p>
<table><tr><th>test</th><th class="num">points</th><th>result</th><th>details</th></tr>
{''.join(rows)}
</table>
{f'<h2>What the grader noticed</h2><ul>{flags}</ul>' if flags else ''}
{f'<h2>Errors in your cells</h2><ul>{notes}</ul>' if notes else ''}
<p style="color:#57606a">Graded in quick mode in a sandbox, each test cell taken from the course's source (hidden checks included).
A test scores its points when it runs without an error; some tests give partial credit.</p>
</body></html>
"""


def write_feedback(run: GradingRun, result: StudentResult, names: dict[str, str]) -> None:
    folder = run.out / "feedback"
    name = names[result.student]
    (folder / f"{name}.json").write_text(json.dumps(result.to_json(run.assignment.name), indent=1), encoding="utf-8")
    (folder / f"{name}.html").write_text(feedback_html(result, run.assignment), encoding="utf-8")


def feedback_file_names(students: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    used: set[str] = set()
    for student in students:
        base = safe_file_name(student)
        name, k = base, 2
        while name.lower() in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name.lower())
        names[student] = name
    return names



def isolation_warnings(report: dict) -> list[str]:
    """What the sandbox could not set up on this machine, in words an instructor can act on."""
    if not report:
        return []
    out = list(report.get("problems", []))
    if not report.get("namespaces"):
        out.append("no Linux namespaces: submissions could read the grader user's files and use the network "
                   "(run as root or enable unprivileged user namespaces for full isolation)")
    if not report.get("seccomp"):
        out.append("no seccomp filter: submissions may start processes (RLIMIT_NPROC is the only limit)")
    return out


def write_run_record(run: GradingRun, *, sandbox_imports: dict, hidden: list[str]) -> None:
    """``grading.json``: the run's limits, isolation, timings and every student's result and flags."""
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
        "isolation_warnings": isolation_warnings(run.isolation),
        "sandbox_imports": sandbox_imports,
        "hidden_from_submissions": hidden,
        "students": [r.to_json(run.assignment.name, instructor=True) for r in run.results],
    }
    (run.out / "grading.json").write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
