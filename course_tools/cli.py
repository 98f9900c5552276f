"""The ``course`` command: check a set-up, run a notebook headless, build the exercises, grade a class.

::

    course doctor [--short] [--download-mnist]   versions, device, mode, datasets, checkpoints
    course run NN [--quick|--full] [--out DIR]   execute notebooks/NN_*.ipynb, save it and an HTML copy
    course exercises [--check]                   exercises/ from solutions/ (--check: fail if stale)
    course grade ASSIGNMENT SUBMISSIONS --out DIR   grade a class's notebooks in a sandbox

Each command is a small function here over a module that does the work: :mod:`course_tools.doctor`,
:mod:`course_tools.execute`, :mod:`course_tools.grading.exercises` and :mod:`course_tools.grading.grade`
(which adds its own sub-command). Every command returns an exit status (0 = fine) from :func:`main`,
which the console script passes to the shell, and prints problems together with the command or
setting that fixes them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from course_tools import doctor, repo
from course_tools.execute import execute_notebook, export_html, first_line
from course_tools.grading import grade

__all__ = ["main", "build_parser"]


# ----------------------------------------------------------------------------------------------
# course run


def _cmd_run(args: argparse.Namespace) -> int:
    import nbformat

    root = repo.find_repo_root()
    notebooks_dir = Path(args.notebooks_dir) if args.notebooks_dir else (root / "notebooks" if root else Path("notebooks"))
    try:
        path = repo.find_notebook(args.notebook, notebooks_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"course run: {error}", file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else (root / "runs" if root else Path("runs"))
    out_nb = out_dir / f"{path.stem}.ipynb"
    out_html = out_dir / f"{path.stem}.html"
    if out_nb.resolve() == path.resolve():
        print(f"course run: --out {out_dir} would overwrite the notebook itself; choose another folder", file=sys.stderr)
        return 2
    quick = True if args.quick else False if args.full else None
    env = dict(os.environ)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures go into the saved notebook
    if quick is not None:
        env["COURSE_QUICK"] = "1" if quick else "0"
    mode = _mode_name(env.get("COURSE_QUICK", ""))
    if mode is None:
        print(f"course run: COURSE_QUICK={env.get('COURSE_QUICK')!r} is not understood; use --quick or --full", file=sys.stderr)
        return 2

    nb = repo.read_notebook(path)
    n_code = sum(cell.cell_type == "code" for cell in nb.cells)
    print(f"course run: {_rel(path)} in {mode} mode ({n_code} code cells, working directory {_rel(path.parent)})", flush=True)

    def report(index: int, cell, seconds: float) -> None:
        if args.verbose or seconds >= 1.0:
            print(f"  cell {index:>3} {seconds:7.1f} s  {first_line(cell.source)}", flush=True)

    result = execute_notebook(
        nb, cwd=path.parent.resolve(), timeout=args.timeout, quick=quick, env=env, on_cell_done=report
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(result.notebook, out_nb)
    html_note = ""
    try:
        export_html(result.notebook, out_html)
    except Exception as error:  # the executed notebook is the main product; say why HTML is missing
        html_note = f" (HTML export failed: {type(error).__name__}: {error})"
        out_html = None
    written = ", ".join(_rel(p) for p in (out_nb, out_html) if p is not None)
    if result.failure is not None:
        print(f"FAILED after {result.seconds:.1f} s in {mode} mode: {result.failure}", file=sys.stderr)
        print(f"  the partly executed notebook is in {written}{html_note}", file=sys.stderr)
        return 1
    print(f"ran {path.name} in {result.seconds:.1f} s ({result.seconds / 60:.1f} min) in {mode} mode -> {written}{html_note}")
    return 0


def _rel(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _mode_name(raw: str) -> str | None:
    raw = raw.strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return "quick"
    if raw in {"", "0", "false", "no", "off"}:
        return "full"
    return None


# ----------------------------------------------------------------------------------------------
# course exercises


def _cmd_exercises(args: argparse.Namespace) -> int:
    from course_tools.grading import exercises as ex

    root = repo.find_repo_root()
    base = root if root is not None else Path.cwd()
    solutions_dir = Path(args.solutions) if args.solutions else base / "solutions"
    exercises_dir = Path(args.exercises) if args.exercises else base / "exercises"
    try:
        stale = ex.check_exercises_up_to_date(solutions_dir, exercises_dir)
        if args.check:
            if stale:
                print(f"course exercises --check: {len(stale)} file(s) out of date with {_rel(solutions_dir)}:", file=sys.stderr)
                for item in stale:
                    print(f"  {item}", file=sys.stderr)
                print("run `course exercises` and commit exercises/ (never edit exercises/ by hand)", file=sys.stderr)
                return 1
            print(f"course exercises --check: {_rel(exercises_dir)} is up to date with {_rel(solutions_dir)}")
            return 0
        changed = {item.path: item.problem for item in stale}
        written = ex.write_exercises(solutions_dir, exercises_dir)
    except ex.ExerciseFormatError as error:
        print(f"course exercises: {error}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as error:
        print(f"course exercises: {error}", file=sys.stderr)
        return 2
    if not written:
        print(f"course exercises: {solutions_dir} has no NN_topic.py files; nothing to do")
    for path in written:
        source = solutions_dir / (path.stem + ".py")
        cells = ex.grade_inventory(source)
        status = {"missing": "new", "stale": "updated"}.get(changed.get(path, ""), "unchanged")
        points = sum(cell.points for cell in cells)
        print(f"  {_rel(path)}  {status:9}  {len(cells)} graded cells, {points:g} points")
    for path, problem in changed.items():
        if problem == "extra":
            print(f"  {_rel(path)}  removed (no solutions file)")
    return 0


# ----------------------------------------------------------------------------------------------
# course doctor


def _cmd_doctor(args: argparse.Namespace) -> int:
    doc = doctor.run_checks(short=args.short, download_mnist=args.download_mnist)
    if args.short:
        parts = [f"Python {doc.summary.get('python', '?')}", f"torch {doc.summary.get('torch', '?')}"]
        parts += [doc.summary[key] for key in ("device", "mode", "datasets", "checkpoints") if key in doc.summary]
        print("course doctor: " + ", ".join(parts))
        for problem in doc.problems:
            print(f"  PROBLEM {problem}")
    else:
        print("course doctor")
        width = max(len(label) for label, _ in doc.rows)
        for label, value in doc.rows:
            print(f"  {label:<{width}}  {value}")
        print()
    if doc.problems:
        print(
            f"{len(doc.problems)} problem(s) found; fix the lines marked PROBLEM above"
            + (" (run `course doctor` for details)" if args.short else ""),
            file=sys.stderr,
        )
        return 1
    if not args.short:
        extra = f" ({len(doc.warnings)} warning(s))" if doc.warnings else ""
        print(f"All essential checks passed{extra}. Open the course with ./course.sh lab")
    return 0


# ----------------------------------------------------------------------------------------------
# the parser


def build_parser() -> argparse.ArgumentParser:
    from course_lib import __version__

    parser = argparse.ArgumentParser(
        prog="course",
        description="Companion command of the course 'Generative Models, from probability to diffusion'.",
    )
    parser.add_argument("--version", action="version", version=f"course_lib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    doctor = sub.add_parser("doctor", help="check the setup: versions, device, mode, datasets, checkpoints")
    doctor.add_argument("--short", action="store_true", help="one summary line (plus any problems)")
    doctor.add_argument(
        "--download-mnist", action="store_true", help="download full MNIST (about 11 MB, checksummed) into the cache"
    )
    doctor.set_defaults(func=_cmd_doctor)

    run = sub.add_parser(
        "run",
        help="execute a notebook headless; save it and an HTML copy",
        description="Execute notebooks/NN_topic.ipynb top to bottom (its folder as working directory) and write "
        "the executed notebook and an HTML export. Exit status 1 names the cell that failed.",
    )
    run.add_argument("notebook", help="number (3 or 03), name prefix (03_auto, autoregressive) or a path")
    modes = run.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="quick mode (COURSE_QUICK=1): tiny budgets")
    modes.add_argument("--full", action="store_true", help="full mode even if COURSE_QUICK is set")
    run.add_argument("--out", metavar="DIR", help="where to write the results (default: runs/ in the repository)")
    run.add_argument(
        "--timeout", type=float, default=900, metavar="S", help="seconds allowed per cell (default 900)"
    )
    run.add_argument("--notebooks-dir", metavar="DIR", help="where to look for NN_*.ipynb (default: notebooks/)")
    run.add_argument("-v", "--verbose", action="store_true", help="print the time of every code cell")
    run.set_defaults(func=_cmd_run)

    exercises = sub.add_parser(
        "exercises",
        help="regenerate exercises/ from solutions/ (--check: fail if out of date)",
        description="Write exercises/NN_topic.ipynb for every solutions/NN_topic.py: solutions replaced by "
        "stubs, hidden tests removed, no outputs. Deterministic: unchanged sources give identical files.",
    )
    exercises.add_argument("--check", action="store_true", help="write nothing; exit 1 listing stale files")
    exercises.add_argument("--solutions", metavar="DIR", help="default: solutions/ in the repository")
    exercises.add_argument("--exercises", metavar="DIR", help="default: exercises/ in the repository")
    exercises.set_defaults(func=_cmd_exercises)

    grade.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``course`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("course: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
