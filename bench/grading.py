"""Grading at class scale: N submissions of one assignment graded by ``course grade`` with --jobs J.

Usage (from the repository root)::

    .venv/bin/python bench/grading.py                      # 200 submissions of 00, --jobs 2, recorded
    .venv/bin/python bench/grading.py --assignment 02 --n 200 --jobs 2
    .venv/bin/python bench/grading.py --no-record          # print only

The submissions are generated from the assignment itself, with a fixed seed: correct solutions,
untouched exercises, partially answered notebooks (each answer kept or left as the stub), broken
ones (an exception or a syntax error in an answer), tampered ones (test cells edited or deleted),
a few unreadable files and two infinite loops (with --cell-timeout 10 s these cost 10 s each).
The script checks that no solution loses a point, no untouched exercise gains one and no
submission hits a grader error, then records the wall time in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from course_tools.grading import exercises as ex  # noqa: E402
from course_tools.grading import grade as gr  # noqa: E402
from course_tools.grading.assignment import find_assignment  # noqa: E402
from course_tools.grading.sandbox import Limits  # noqa: E402

MIX = [("solution", 0.35), ("exercise", 0.15), ("partial", 0.30), ("broken", 0.10), ("tampered", 0.07), ("unreadable", 0.02)]


def _copy(nb):
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def make_submissions(solution_path: Path, folder: Path, n: int, seed: int = 0) -> dict[str, str]:
    """Write ``n`` notebooks to ``folder``; returns student -> kind."""
    rng = random.Random(seed)
    solution = ex.solution_notebook(solution_path)
    exercise = ex.make_exercise(solution_path)
    answer_ids = [c.metadata.nbgrader["grade_id"] for c in exercise.cells if c.metadata.nbgrader["solution"] and c.cell_type == "code"]
    test_ids = [c.metadata.nbgrader["grade_id"] for c in exercise.cells if c.metadata.nbgrader["grade"]]
    full = {c.metadata.nbgrader["grade_id"]: c.source for c in solution.cells}
    kinds: dict[str, str] = {}
    counts = [max(1, round(share * n)) for _, share in MIX]
    counts[0] += n - sum(counts)
    plan = [kind for (kind, _), count in zip(MIX, counts) for _ in range(count)]
    rng.shuffle(plan)
    loops = 2
    for number, kind in enumerate(plan):
        student = f"student{number:03d}"
        nb = _copy(exercise)
        cells = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells}
        if kind == "solution":
            for gid in answer_ids:
                cells[gid].source = full[gid]
        elif kind == "partial":
            for gid in answer_ids:
                if rng.random() < 0.5:
                    cells[gid].source = full[gid]
        elif kind == "broken":
            gid = rng.choice(answer_ids)
            for other in answer_ids:
                cells[other].source = full[other]
            if loops:
                cells[gid].source = "while True:\n    pass\n" + full[gid]
                loops -= 1
                kind = "broken (infinite loop)"
            elif rng.random() < 0.5:
                cells[gid].source = full[gid] + "\nraise ValueError('a bug')"
            else:
                cells[gid].source = "def (:\n" + full[gid]
        elif kind == "tampered":
            for gid in answer_ids:
                if rng.random() < 0.5:
                    cells[gid].source = full[gid]
            victim = rng.choice(test_ids)
            if rng.random() < 0.5:
                cells[victim].source = "pass"
            else:
                nb.cells = [c for c in nb.cells if c.metadata.nbgrader["grade_id"] != victim]
        if kind == "unreadable":
            (folder / f"{student}.ipynb").write_text('{"cells": [ broken')
        else:
            nbformat.write(nb, folder / f"{student}.ipynb")
        kinds[student] = kind
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="00", help="solutions file number or name (default 00)")
    parser.add_argument("--n", type=int, default=200, help="number of submissions (default 200)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs for course grade (default 2)")
    parser.add_argument("--cell-timeout", type=float, default=10.0, help="seconds per cell (default 10)")
    parser.add_argument("--no-record", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)

    solution_path = find_assignment(args.assignment, REPO / "solutions")
    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        submissions, out = work / "submissions", work / "out"
        submissions.mkdir()
        kinds = make_submissions(solution_path, submissions, args.n)
        print(f"{args.n} submissions of {solution_path.stem}: "
              + ", ".join(f"{k} {list(kinds.values()).count(k)}" for k in sorted(set(kinds.values()))))
        limits = Limits(cell_timeout=args.cell_timeout)
        started = time.perf_counter()
        run = gr.grade(solution_path, submissions, out, jobs=args.jobs, limits=limits, progress=None)
        wall = time.perf_counter() - started
        run_record = json.loads((out / "grading.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)

    maximum = run.assignment.total
    lost = [r.student for r in run.results if kinds[r.student] == "solution" and r.total != maximum]
    gained = [r.student for r in run.results if kinds[r.student] == "exercise" and r.total != 0]
    errors = [r.student for r in run.results if any(f.code in ("grader-error", "sandbox-error") for f in r.flags)]
    notebook_seconds = [r.seconds for r in run.results]
    mean_notebook = sum(notebook_seconds) / len(notebook_seconds)
    fast = sorted(s for r, s in zip(run.results, notebook_seconds) if "loop" not in kinds[r.student])
    median = fast[len(fast) // 2]
    print(f"graded in {wall:.1f} s with --jobs {args.jobs}: {wall / args.n:.2f} s per submission (wall), "
          f"{mean_notebook:.2f} s mean per notebook, {median:.2f} s median without the infinite loops")
    print(f"solutions below full marks: {len(lost)}; exercises above zero: {len(gained)}; grader errors: {len(errors)}")
    ok = not (lost or gained or errors)
    if not args.no_record:
        from _results import markdown_table, record

        table = markdown_table(
            ["assignment", "submissions", "jobs", "wall time", "per submission", "mean per notebook",
             "median per notebook", "solutions < full", "stubs > 0", "grader errors"],
            [[solution_path.stem, args.n, args.jobs, f"{wall:.0f} s", f"{wall / args.n:.2f} s", f"{mean_notebook:.2f} s",
              f"{median:.2f} s", len(lost), len(gained), len(errors)]],
        )
        isolation = run_record.get("isolation", {})
        try:
            load = "load average {:.1f} / {:.1f} / {:.1f} (1/5/15 min) when it finished".format(*__import__("os").getloadavg())
        except OSError:
            load = "load average unknown"
        notes = (
            f"`course grade` on {args.n} generated submissions ({', '.join(f'{k}: {list(kinds.values()).count(k)}' for k in sorted(set(kinds.values())))}), "
            f"cell limit {args.cell_timeout:g} s (the two infinite loops cost that much each), other limits at their defaults. "
            "The wall time includes starting the sandbox's zygote (importing torch once) and writing every output. "
            f"Isolation in force: namespaces {isolation.get('namespaces')}, seccomp {bool(isolation.get('seccomp'))}, "
            f"network: {isolation.get('network', '?')}. Machine {load}; other jobs on a shared machine slow it down. "
            "Goal: under 10 minutes for 200 quick-mode submissions with --jobs 2 on 2 cores. "
            "Run `.venv/bin/python bench/grading.py --assignment NN` to measure another assignment."
        )
        record(f"Grading {solution_path.stem} at class scale", table, notes=notes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
