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
*flag*. The plan then runs in its own sealed process (:mod:`course_tools.grading.sandbox`); each
graded test cell scores from the grader's own record of how that cell ended: an error gives 0, a
clean run the cell's points, or a fraction of them when the cell's last expression is a number in
[0, 1]. Nothing the notebook prints is read.

Outputs in ``--out``: ``gradebook.csv`` (one row per student, one column per test, total,
maximum, flags), ``feedback/NAME.html`` and ``feedback/NAME.json`` (per test: points, what failed,
the hint from the solution source), ``summary.csv``/``summary.md``/``summary.json`` (per question:
mean and distribution), ``grading.json`` (the run: limits, isolation, timings, every flag) and
``logs/NAME.log`` (what each notebook printed, for the instructor).

The Python API is :func:`grade`. The pieces live in rooms of their own and are usable alone:
:mod:`~course_tools.grading.assignment` (``load_assignment``), :mod:`~course_tools.grading.submissions`
(``discover_submissions``, ``read_submission``), :mod:`~course_tools.grading.plan` (``build_plan``),
:mod:`~course_tools.grading.review` (``review_code``), :mod:`~course_tools.grading.scoring` (``score_test``)
and :mod:`~course_tools.grading.reports`; this module runs them for a whole class.
"""


from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable

from course_tools.grading.assignment import Assignment, imported_names, load_assignment
from course_tools.grading.plan import PlanCell, build_plan
from course_tools.grading.reports import (
    feedback_file_names,
    isolation_warnings,
    safe_file_name,
    write_feedback,
    write_gradebook,
    write_run_record,
    write_summary,
)
from course_tools.grading.results import Flag, GradingRun, StudentResult, TestResult, format_points
from course_tools.grading.review import review_code
from course_tools.grading.sandbox import Limits, SandboxError, Session, Zygote
from course_tools.grading.scoring import score_test
from course_tools.grading.submissions import Submission, discover_submissions, read_submission

__all__ = ["grade", "add_parser", "main"]


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


def _grade_one(ctx: _Context, submission: Submission) -> StudentResult:
    started = time.monotonic()
    assignment = ctx.assignment
    result = StudentResult(submission.student, str(submission.path) if submission.path else None, maximum=assignment.total)
    result.flags.extend(submission.flags)
    safe = safe_file_name(submission.student)
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
            protected = {name for c in assignment.cells if c.role == "locked" for name in imported_names(c.source)}
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
                scored[cell.label] = score_test(tests[cell.label], outcome, result.flags)
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
    import course_tools

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    paths |= {str(Path(package.__file__).resolve().parent) for package in (course_lib, course_tools)}
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
    :class:`~course_tools.grading.sandbox.SandboxError` when no sandbox can be started at all."""
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
        say(f"grading {len(found)} submission(s) of {assignment.name} ({format_points(assignment.total)} points, "
            f"{len(assignment.tests)} tests) with {jobs} job(s); starting the sandbox ...")
        ctx.start_zygote()
        if ctx.zygote.info.get("import_errors"):
            say("warning: the sandbox could not import " + "; ".join(ctx.zygote.info["import_errors"]))
        run = GradingRun(assignment, results, out, 0.0, jobs, limits, {})
        names = feedback_file_names([s.student for s in found])
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
                    write_feedback(run, result, names)
                except OSError as error:
                    result.flags.append(Flag("grader-error", f"could not write the feedback ({error})"))
                flags = f"  [{'; '.join(f.short() for f in result.flags)}]" if result.flags else ""
                say(f"[{done:>{len(str(len(found)))}}/{len(found)}] {result.student:<24} "
                    f"{format_points(result.total):>6} / {format_points(result.maximum):<5} {result.seconds:5.1f} s{flags}")
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
    write_gradebook(run)
    write_summary(run)
    write_run_record(run, sandbox_imports=ctx.zygote.info if ctx.zygote else {}, hidden=ctx.hide)
    say(f"done in {run.seconds:.1f} s ({run.seconds / max(1, len(results)):.2f} s per submission with {jobs} job(s)); "
        f"results in {out}")
    weak = isolation_warnings(run.isolation)
    for warning in weak:
        say(f"warning: {warning}")
    return run



# ------------------------------------------------------------------------------------------------
# command line


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``course grade`` to the ``course`` command (called by :mod:`course_tools.cli`)."""
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
    print(f"{len(run.results)} graded, mean {mean:.2f} / {format_points(run.assignment.total)}, {flagged} with flags; "
          f"gradebook: {run.out / 'gradebook.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m course_tools.grading.grade ...`` (same as ``course grade ...``)."""
    parser = argparse.ArgumentParser(prog="course")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["grade", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
