"""The grader's contract (``course grade``: course_tools.grading and its sandbox).

Part 1 (no sandbox, fast): finding assignments and submissions, reading notebooks, the plan that
restores locked/test cells, the static review, scoring rules.
Part 2: every real solutions/NN_topic.py: its solution notebook scores full marks and its generated
exercise scores zero, both without flags.
Part 3: a battery of bad submissions against a tiny assignment written here, graded in one run
with --jobs 2: each gets exactly the credit it earned, the grader finishes, nothing escapes, and
the good students' results are the same as when they are graded alone.
Part 4: nbgrader (the instructor extra) accepts the solutions' metadata and generates the same
student notebooks.
"""

from __future__ import annotations

import csv
import json
import socket
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from course_tools.grading import exercises as ex
from course_tools.grading import grade as gr
from course_tools.grading.assignment import find_assignment, load_assignment
from course_tools.grading.plan import build_plan
from course_tools.grading.review import review_code
from course_tools.grading.sandbox import CellOutcome, Limits
from course_tools.grading.scoring import score_test
from course_tools.grading.submissions import discover_submissions, read_submission

REPO = Path(__file__).resolve().parents[1]
SOLUTION_FILES = sorted((REPO / "solutions").glob("[0-9][0-9]_*.py"))

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grading sandbox is tested on Linux")


def meta(grade_id: str, *, grade=False, solution=False, points=None) -> str:
    fields = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
              "solution": solution, "task": False}
    if points is not None:
        fields["points"] = points
    return "nbgrader=" + json.dumps(fields)


# A tiny assignment: q1 (2 points, hidden tests), q2 (2 points, partial credit), q3 (1 point).
TINY = f'''\
# %% [markdown] {meta("intro")}
# # A tiny assignment for the grader's tests

# %% {meta("setup")}
import math
import torch

def check_close(actual, expected, tol=1e-9):
    assert type(actual) is float, f"expected a float, got {{type(actual).__name__}}"
    assert abs(actual - expected) < tol, f"{{actual}} != {{expected}}"

# %% {meta("q1_answer", solution=True)}
def square(x):
    ### BEGIN SOLUTION
    return float(x * x)
    ### END SOLUTION

# %% {meta("q1_test", grade=True, points=2)}
# Hint: multiply x by itself.
check_close(square(3.0), 9.0)
### BEGIN HIDDEN TESTS
check_close(square(-2.0), 4.0)
assert torch.allclose(torch.tensor(square(1.5)), torch.tensor(2.25))
assert math.isclose(square(0.5), 0.25)
### END HIDDEN TESTS

# %% {meta("q2_answer", solution=True)}
def mean(values):
    ### BEGIN SOLUTION
    return float(sum(values) / len(values))
    ### END SOLUTION

# %% {meta("q2_test", grade=True, points=2)}
# Hint: the sum divided by the count; each case is worth a quarter.
cases = [([1.0, 2.0, 3.0], 2.0), ([5.0], 5.0), ([-1.0, 1.0], 0.0), ([0.5, 0.25, 0.25, 1.0], 0.5)]
passed = 0
for values, expected in cases:
    try:
        check_close(mean(values), expected)
        passed += 1
    except Exception:
        pass
passed / len(cases)

# %% {meta("q3_answer", solution=True)}
def cube(x):
    ### BEGIN SOLUTION
    return float(x ** 3)
    ### END SOLUTION

# %% {meta("q3_test", grade=True, points=1)}
check_close(cube(2.0), 8.0)
### BEGIN HIDDEN TESTS
check_close(cube(-1.0), -1.0)
### END HIDDEN TESTS
'''

GOOD = {
    "q1_answer": "def square(x):\n    return float(x * x)",
    "q2_answer": "def mean(values):\n    return float(sum(values) / len(values))",
    "q3_answer": "def cube(x):\n    return float(x ** 3)",
}
WRONG = {
    "q1_answer": "def square(x):\n    return 1.0",
    "q2_answer": "def mean(values):\n    return -7.0",
    "q3_answer": "def cube(x):\n    return 0.0",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("solutions")
    path = folder / "90_tiny_grading.py"
    path.write_text(TINY, encoding="utf-8")
    return path


def submission(tiny: Path, answers: dict[str, str] | None = None, *, replace=None, drop=(), after=None,
               duplicate=None) -> nbformat.NotebookNode:
    """The exercise notebook with ``answers`` (grade_id -> source) filled in; ``replace`` edits
    any cell by id, ``drop`` deletes cells, ``after`` (grade_id -> [source]) adds the student's own
    cells, ``duplicate`` (grade_id -> source) adds a copy of a cell (same metadata) after it."""
    nb = ex.make_exercise(tiny)
    cells = []
    for cell in nb.cells:
        gid = cell.metadata["nbgrader"]["grade_id"]
        if gid in drop:
            continue
        if answers and gid in answers:
            cell.source = answers[gid]
        if replace and gid in replace:
            cell.source = replace[gid]
        cells.append(cell)
        if duplicate and gid in duplicate:
            copy = nbformat.from_dict(json.loads(json.dumps(cell)))
            copy.source = duplicate[gid]
            copy["id"] = gid + "-copy"
            cells.append(copy)
        for source in (after or {}).get(gid, []):
            cells.append(nbformat.v4.new_code_cell(source))
    nb.cells = cells
    return nb


def write(folder: Path, name: str, nb) -> Path:
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


# ================================================================================================
# Part 1: the pieces, without a sandbox


def test_find_assignment_by_path_number_and_name(tiny, tmp_path):
    assert find_assignment(tiny) == tiny
    assert find_assignment("90", solutions_dir=tiny.parent) == tiny
    assert find_assignment("tiny", solutions_dir=tiny.parent) == tiny
    assert find_assignment("90_tiny", solutions_dir=tiny.parent) == tiny
    with pytest.raises(FileNotFoundError, match="there are: 90_tiny_grading"):
        find_assignment("07", solutions_dir=tiny.parent)
    with pytest.raises(ValueError, match="not a notebook"):
        find_assignment(tmp_path / "x.ipynb")


def test_load_assignment_roles_points_hints_hidden_lines(tiny):
    a = load_assignment(tiny)
    assert a.name == "90_tiny_grading" and a.total == 5.0
    assert [(c.grade_id, c.points) for c in a.tests] == [("q1_test", 2.0), ("q2_test", 2.0), ("q3_test", 1.0)]
    roles = {c.grade_id: c.role for c in a.cells}
    assert roles == {"intro": "locked", "setup": "locked", "q1_answer": "answer", "q1_test": "test",
                     "q2_answer": "answer", "q2_test": "test", "q3_answer": "answer", "q3_test": "test"}
    q1 = a.by_id["q1_test"]
    assert q1.hint == "multiply x by itself."
    hidden = [line for n, line in enumerate(q1.source.split("\n"), 1) if n in q1.hidden_lines]
    assert hidden[0] == "### BEGIN HIDDEN TESTS" and hidden[-1] == "### END HIDDEN TESTS" and len(hidden) == 5
    assert "BEGIN HIDDEN" not in q1.exercise_source
    assert "torch" in a.preimport and "math" in a.preimport


def test_discover_files_folders_and_nbgrader_layout(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("bob.ipynb", "alice_90_tiny.ipynb", "notes.txt", ".hidden.ipynb"):
        (flat / name).write_text("{}")
    found = discover_submissions(flat, "90_tiny")
    assert [(s.student, s.path.name) for s in found] == [("alice", "alice_90_tiny.ipynb"), ("bob", "bob.ipynb")]

    nbg = tmp_path / "course"
    for student in ("carol", "dave"):
        folder = nbg / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        (folder / "90_tiny.ipynb").write_text("{}")
        (folder / ".ipynb_checkpoints").mkdir()
        (folder / ".ipynb_checkpoints" / "90_tiny-checkpoint.ipynb").write_text("{}")
    (nbg / "submitted" / "dave" / "ps1" / "scratch.ipynb").write_text("{}")  # the one named like the assignment wins
    (nbg / "submitted" / "erin").mkdir()
    frank = nbg / "submitted" / "frank" / "ps1"
    frank.mkdir(parents=True)
    for name in ("b.ipynb", "a.ipynb"):
        (frank / name).write_text("{}")
    found = discover_submissions(nbg, "90_tiny")
    assert [s.student for s in found] == ["carol", "dave", "erin", "frank"]
    assert found[0].path.name == "90_tiny.ipynb" and not found[0].flags
    assert found[1].path.name == "90_tiny.ipynb" and not found[1].flags
    assert found[2].path is None and [f.code for f in found[2].flags] == ["no-notebook"]
    assert found[3].path.name == "a.ipynb" and [f.code for f in found[3].flags] == ["several-notebooks"]
    with pytest.raises(FileNotFoundError):
        discover_submissions(tmp_path / "nowhere", "x")


def test_unreadable_notebooks_are_flagged_not_raised(tmp_path):
    cases = {"garbage": b"{not json", "binary": b"\xff\xfe\x00", "no_cells": b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
             "bad_cell": b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [3]}'}
    for name, data in cases.items():
        path = tmp_path / f"{name}.ipynb"
        path.write_bytes(data)
        nb, _text, flags = read_submission(path)
        assert nb is None and [f.code for f in flags] == ["unreadable"], name


def plan_of(tiny, nb):
    return build_plan(load_assignment(tiny), nb)


def test_plan_of_the_exercise_and_the_solution_has_no_flags(tiny):
    plan, flags = plan_of(tiny, ex.make_exercise(tiny))
    assert flags == []
    assert [(c.kind, c.label) for c in plan] == [
        ("locked", "setup"), ("student", "q1_answer"), ("test", "q1_test"), ("student", "q2_answer"),
        ("test", "q2_test"), ("student", "q3_answer"), ("test", "q3_test")]
    assert "BEGIN HIDDEN TESTS" in plan[2].source, "hidden tests are put back"
    plan, flags = plan_of(tiny, ex.solution_notebook(tiny))
    assert flags == []


def test_plan_restores_deleted_and_edited_cells_and_keeps_the_students_own(tiny):
    nb = submission(tiny, GOOD, replace={"q1_test": "pass", "setup": "check_close = print"}, drop={"q2_test", "q3_answer"},
                    after={"q1_answer": ["helper = 1"]}, duplicate={"q2_answer": "mean = None"})
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"grade_id": "bogus"}}))
    plan, flags = plan_of(tiny, nb)
    codes = sorted(f.short() for f in flags)
    assert codes == sorted(["locked-edited:setup", "test-edited:q1_test", "test-deleted:q2_test", "answer-missing:q3_answer",
                            "duplicate-id:q2_answer", "unknown-id:bogus"])
    labels = [c.label for c in plan]
    assert labels[:4] == ["setup", "q1_answer", "your cell 4", "q1_test"]
    assert [c.source for c in plan if c.label == "q1_test"][0].strip() == load_assignment(tiny).by_id["q1_test"].source.strip()
    assert [c.source for c in plan if c.label == "setup"][0].startswith("import math")
    assert labels.index("q2_test") < labels.index("q3_test")
    assert "q3_answer" not in labels and labels[-1] == "your cell 9"


def test_review_flags_monkeypatching_and_frame_walking_but_not_plain_code():
    assert review_code("q1", "import torch\ndef f(x):\n    return torch.relu(x).sum()\nclass M(torch.nn.Module):\n    def forward(self, x): return x") == []
    found = review_code("q1", "import torch, builtins\ntorch.allclose = lambda *a: True\nimport sys\nf = sys._getframe(1).f_back")
    text = " ".join(found)
    assert "torch.allclose" in text and "builtins" in text and "f_back" in text
    assert review_code("q1", "class X:\n    def __eq__(self, o): return True")
    assert review_code("q1", "def (:") == []  # syntax errors are the execution's business


def test_scoring_rules(tiny):
    a = load_assignment(tiny)
    q2 = a.by_id["q2_test"]
    flags: list = []
    score = lambda outcome: score_test(q2, outcome, flags)  # noqa: E731
    assert score(CellOutcome("ok", {"status": "ok"})).points == 2
    assert score(CellOutcome("ok", {"status": "ok", "value": 0.25})).points == 0.5
    assert score(CellOutcome("ok", {"status": "ok", "value": True, "value_type": "bool"})).points == 2
    assert score(CellOutcome("ok", {"status": "ok", "value_type": "Figure"})).points == 2  # not a number: nbgrader's rule
    assert flags == []
    for bad in (1.5, -0.1, "nan", "inf"):
        assert score(CellOutcome("ok", {"status": "ok", "value": bad})).points == 0
    assert [f.code for f in flags] == ["partial-invalid"] * 4
    flags.clear()
    r = score(CellOutcome("ok", {"status": "ok", "tampered": ["math.isclose"]}))
    assert r.points == 0 and [f.code for f in flags] == ["tampering"]
    r = score(CellOutcome("error", {"status": "error", "ename": "AssertionError", "evalue": "boom", "line": 2}))
    assert r.points == 0 and "failed at: cases = " in r.message
    q1 = a.by_id["q1_test"]
    r = score_test(q1, CellOutcome("error", {"status": "error", "ename": "AssertionError", "evalue": "", "line": 5}), flags)
    assert "a hidden check failed" in r.message and "check_close(square(-2.0)" not in r.message
    for status in ("timeout", "died", "channel"):
        assert score(CellOutcome(status)).points == 0


def test_limits_are_validated():
    with pytest.raises(ValueError, match="memory"):
        Limits(memory_mb=100)
    with pytest.raises(ValueError, match="cell time"):
        Limits(cell_timeout=0)


def test_grade_refuses_folders_that_contain_the_environment(tiny, tmp_path):
    with pytest.raises(ValueError, match="contains the course's Python environment"):
        gr.grade(tiny, REPO, tmp_path / "out")


# ================================================================================================
# Part 2: the real exercise sets


SOLUTION_PARAMS = [pytest.param(path, id=path.stem) for path in SOLUTION_FILES] or [
    pytest.param(None, id="none", marks=pytest.mark.skip(reason="solutions/ has no NN_topic.py files yet"))
]


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTION_PARAMS)
def test_solution_scores_full_marks_and_exercise_scores_zero(solution, tmp_path):
    subs = tmp_path / "submissions"
    subs.mkdir()
    write(subs, "solution", ex.solution_notebook(solution))
    exercise = ex.exercise_path(solution, REPO / "exercises")
    write(subs, "exercise", nbformat.read(exercise, as_version=4) if exercise.is_file() else ex.make_exercise(solution))
    run = gr.grade(solution, subs, tmp_path / "out", jobs=2)
    good, stub = run.result("solution"), run.result("exercise")
    assert good.total == good.maximum == run.assignment.total > 0, [(t.grade_id, t.message) for t in good.tests]
    assert good.flags == [], [str(f) for f in good.flags]
    assert stub.total == 0, [(t.grade_id, t.points) for t in stub.tests]
    assert stub.flags == [], [str(f) for f in stub.flags]
    assert all(t.status in ("error", "failed") for t in stub.tests)
    # the outputs
    rows = list(csv.reader(open(tmp_path / "out" / "gradebook.csv")))
    assert rows[0] == ["student", *[t.grade_id for t in run.assignment.tests], "total", "maximum", "flags"]
    assert [r[0] for r in rows[1:]] == ["exercise", "solution"]
    for name in ("exercise", "solution"):
        feedback = json.loads((tmp_path / "out" / "feedback" / f"{name}.json").read_text())
        assert feedback["max_score"] == run.assignment.total and len(feedback["tests"]) == len(run.assignment.tests)
        assert (tmp_path / "out" / "feedback" / f"{name}.html").read_text().startswith("<!doctype html>")
    assert (tmp_path / "out" / "summary.md").is_file() and (tmp_path / "out" / "grading.json").is_file()


# ================================================================================================
# Part 3: the battery


class Listener:
    """A TCP server on localhost that would hand out the answer; records whether anyone came."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.server.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            conn.sendall(b"9.0")
            conn.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.server.close()


FAKE_FRAME = '''
import json, os, struct
msg = json.dumps({"op": "result", "status": "ok", "nonce": None, "value": 1.0}).encode()
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack(">I", len(msg)) + msg)
    except OSError:
        pass
'''


# Reaches the grader's own module (by walking frames from inside a function the test calls, which the
# grader cannot prevent) and patches its classes, its module globals and the json module its replies
# use: the grader heals itself before it replies, flags the test as tampered, and later tests run as usual.
PATCH_GRADER = '''
def square(x):
    import sys, json
    frame, runner = sys._getframe(0), None
    while frame is not None:
        if "make_check" in frame.f_globals and "Engine" in frame.f_globals:
            runner = frame.f_globals
            break
        frame = frame.f_back
    assert runner is not None, "the grader's module was not found"
    runner["Engine"].trusted = lambda self, label, source, test=True: {"status": "ok"}
    runner["Snapshot"].differences = lambda self, restore: []
    runner["_all"] = lambda iterable: True
    runner["_is"] = lambda a, b: True
    json.dumps = lambda obj, **kwargs: '{"op": "result", "status": "ok"}'
    return 1.0
'''


def battery(tiny: Path, folder: Path, listener: Listener, escape: Path) -> dict[str, tuple]:
    """Write the bad submissions; returns student -> (expected q1, q2, q3, flags that must appear)."""
    good = write(folder, "good", submission(tiny, GOOD))
    solutions_file = tiny
    cases: dict[str, tuple] = {}

    def add(name, nb, expected, flags=()):
        write(folder, name, nb)
        cases[name] = (*expected, set(flags))

    add("good", submission(tiny, GOOD), (2, 2, 1))
    add("stub", submission(tiny), (0, 0, 0))
    add("partial", submission(tiny, {**GOOD, "q2_answer": "def mean(values):\n    return float(values[0])",
                                     "q3_answer": "def cube(x):\n    return float(x ** 2)"}), (2, 1, 0))
    add("syntax_error", submission(tiny, {**GOOD, "q1_answer": "def square(x)\n    return x * x"}), (0, 2, 1))
    add("infinite_loop", submission(tiny, {**GOOD, "q1_answer": "while True:\n    pass\n" + GOOD["q1_answer"]}), (0, 2, 1), {"timeout"})
    add("sleep_forever", submission(tiny, {**GOOD, "q1_answer": "import time\ndef square(x):\n    time.sleep(10**6)"}), (0, 2, 1), {"timeout"})
    add("ignores_interrupts", submission(tiny, {**GOOD, "q2_answer": "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(10**6)"}),
        (2, 0, 0), {"timeout"})
    add("sys_exit", submission(tiny, {**GOOD, "q1_answer": GOOD["q1_answer"] + "\nimport sys\nsys.exit(1)",
                                      "q2_answer": "import sys\ndef mean(values):\n    sys.exit(0)"}), (2, 0, 1))
    add("os_exit", submission(tiny, {**GOOD, "q2_answer": GOOD["q2_answer"] + "\nimport os\nos._exit(0)"}), (2, 0, 0), {"died"})
    add("memory_bomb", submission(tiny, {**GOOD, "q1_answer": "import torch\ndef square(x):\n    big = torch.ones(2**31)\n    return float(x * x)"},
                                  after={"q3_answer": ["import torch\nhog = []\nwhile True:\n    hog.append(torch.empty(2**27))"]}), (0, 2, 1))
    add("fork_bomb", submission(tiny, GOOD, after={"q1_answer": [
        "import os\nwhile True:\n    os.fork()",
        "import subprocess\nsubprocess.Popen(['sh', '-c', ':(){ :|:& };:'])",
        "import threading\nthreads = [threading.Thread(target=lambda: None) for _ in range(1000)]\nfor t in threads:\n    t.start()",
        "import multiprocessing\nmultiprocessing.Process(target=print).start()"]}), (2, 2, 1), {"refused"})
    add("huge_file", submission(tiny, GOOD, after={"q1_answer": [
        "with open('big.bin', 'wb') as f:\n    for _ in range(64):\n        f.write(b'0' * 2**20)",
        f"open({str(escape)!r}, 'w').write('escaped')",
        f"open({str(REPO / 'README.md')!r}, 'a').write('vandalised')"]}), (2, 2, 1))
    add("deletes_tests", submission(tiny, GOOD, drop={"q1_test", "q2_test", "q3_test"}), (2, 2, 1),
        {"test-deleted"})
    add("edits_tests", submission(tiny, WRONG, replace={"q1_test": "pass", "q2_test": "1.0", "q3_test": "assert True"}), (0, 0, 0),
        {"test-edited"})
    add("edits_locked", submission(tiny, WRONG, replace={"setup": "import math, torch\ndef check_close(*args, **kwargs):\n    pass"}),
        (0, 0, 0), {"locked-edited"})
    add("redefines_helper", submission(tiny, WRONG, after={"q1_answer": ["def check_close(*args, **kwargs):\n    pass\nabs = lambda x: 0.0\ntype = lambda x: float"]}),
        (0, 0, 0))
    add("patches_builtins", submission(tiny, WRONG, after={"setup": [
        "import builtins\nbuiltins.abs = lambda x: 0.0\nbuiltins.type = lambda x: float\nbuiltins.isinstance = lambda *a: True"]}),
        (0, 0, 0), {"monkeypatch"})
    add("patches_libraries", submission(tiny, WRONG, after={"setup": [
        "import math, torch\ntorch.allclose = lambda *a, **k: True\nmath.isclose = lambda *a, **k: True\n"
        "torch.Tensor.__eq__ = lambda *a: True\nimport sys\nsys.modules['math'] = type(sys)('math')"]}), (0, 0, 0), {"monkeypatch"})
    add("patches_while_tested", submission(tiny, {
        "q1_answer": "def square(x):\n    import math, builtins, torch\n    math.isclose = lambda *a, **k: True\n"
                     "    torch.allclose = lambda *a, **k: True\n    builtins.abs = lambda v: 0.0\n"
                     "    check_close.__globals__['check_close'] = lambda *a, **k: None\n"
                     "    check_close.__builtins__['abs'] = lambda v: 0.0\n    return 1.0",
        "q2_answer": "def mean(values):\n    global check_close\n    check_close = lambda *a, **k: None\n    return -7.0",
        "q3_answer": WRONG["q3_answer"]}), (0, 0, 0), {"tampering"})
    add("ipython_hooks", submission(tiny, WRONG, after={"setup": [
        "ip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n"
        "ip.run_cell = lambda *a, **k: None\nimport sys\nsys.excepthook = lambda *a: None"]}), (0, 0, 0))
    add("tracer_and_signals", submission(tiny, WRONG, after={"setup": [
        "import sys\ndef tracer(frame, event, arg):\n    return tracer\nsys.settrace(tracer)",
        "import signal\ndef handler(*args):\n    globals()['check_close'] = lambda *a, **k: None\n    import math; math.isclose = lambda *a, **k: True\n"
        "signal.signal(signal.SIGALRM, handler)\nsignal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)",
        "import sys\nsys.addaudithook(lambda event, args: None)"]}), (0, 0, 0), {"refused"})
    add("prints_fake_results", submission(tiny, WRONG, after={"q1_answer": [
        "print('q1_test passed: 2 / 2 points')\nprint('{\"op\": \"result\", \"status\": \"ok\", \"value\": 1.0}')\n"
        "import sys\nsys.stderr.write('Score: 5/5\\n')"]}), (0, 0, 0))
    add("fakes_the_channel", submission(tiny, WRONG, after={"setup": [FAKE_FRAME]}), (0, 0, 0), {"channel"})
    add("patches_the_grader", submission(tiny, {**WRONG, "q1_answer": PATCH_GRADER}), (0, 0, 0), {"tampering", "review"})
    read_others = (
        "def square(x):\n"
        "    import os, re\n"
        f"    for path in [{str(good)!r}, {str(solutions_file)!r}, {str(folder / 'out' / 'gradebook.csv')!r}]:\n"
        "        try:\n"
        "            text = open(path).read()\n"
        "        except OSError:\n"
        "            continue\n"
        "        code = re.search(r'def square.*?return [^\\\\n\"]*', text, re.S)\n"
        "        if code:\n"
        "            scope = {}\n"
        "            exec(code.group(0).replace('\\\\n', '\\n'), scope)\n"
        "            return scope['square'](x)\n"
        f"    os.listdir({str(folder)!r})\n"
    )
    add("reads_other_students", submission(tiny, {**GOOD, "q1_answer": read_others}), (0, 2, 1), {"review"})
    add("network", submission(tiny, {**GOOD, "q1_answer":
        f"import socket\ndef square(x):\n    return float(socket.create_connection(('127.0.0.1', {listener.port}), timeout=2).recv(10))"}),
        (0, 2, 1), {"refused"})
    add("duplicate_answer", submission(tiny, {**GOOD, "q1_answer": WRONG["q1_answer"]}, duplicate={"q1_answer": GOOD["q1_answer"]}),
        (2, 2, 1), {"duplicate-id"})
    add("magic_objects", submission(tiny, {
        "q1_answer": "class Liar(float):\n    def __eq__(self, other): return True\n    def __sub__(self, other): return 0.0\n"
                     "    __rsub__ = __sub__\n    def __abs__(self): return 0.0\n    def __lt__(self, other): return True\n"
                     "class Fake:\n    __class__ = property(lambda self: float)\n    def __sub__(self, other): return 0.0\n"
                     "    def __torch_function__(self, *a, **k): return True\n"
                     "def square(x):\n    return Liar(0.0) if x > 0 else Fake()",
        "q2_answer": "class Liar(float):\n    def __sub__(self, other): return 0.0\ndef mean(values):\n    return Liar(123.0)",
        "q3_answer": WRONG["q3_answer"]}), (0, 0, 0), {"review"})
    (folder / "unreadable.ipynb").write_text("{ this is not a notebook")
    cases["unreadable"] = (0, 0, 0, {"unreadable"})
    return cases


@pytest.fixture(scope="module")
def battery_run(tiny, tmp_path_factory):
    folder = tmp_path_factory.mktemp("battery")
    subs = folder / "submissions"
    subs.mkdir()
    listener = Listener()
    escape = Path("/tmp") / f"course-grade-escape-{folder.name}.txt"
    readme = (REPO / "README.md").read_bytes()
    try:
        cases = battery(tiny, subs, listener, escape)
        limits = Limits(cell_timeout=6, notebook_timeout=60, memory_mb=2048, file_size_mb=8, disk_mb=64, interrupt_grace=2)
        run = gr.grade(tiny, subs, folder / "out", jobs=2, limits=limits)
        alone = gr.grade(tiny, subs, folder / "out-alone", jobs=2, limits=limits, students=["good", "partial"])
    finally:
        listener.close()
    yield {"run": run, "alone": alone, "cases": cases, "listener": listener, "escape": escape, "subs": subs,
           "readme": readme}
    escape.unlink(missing_ok=True)


BATTERY_NAMES = [
    "good", "stub", "partial", "syntax_error", "infinite_loop", "sleep_forever", "ignores_interrupts", "sys_exit", "os_exit",
    "memory_bomb", "fork_bomb", "huge_file", "deletes_tests", "edits_tests", "edits_locked", "redefines_helper",
    "patches_builtins", "patches_libraries", "patches_while_tested", "ipython_hooks", "tracer_and_signals",
    "prints_fake_results", "fakes_the_channel", "patches_the_grader", "reads_other_students", "network", "duplicate_answer", "magic_objects",
    "unreadable",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", BATTERY_NAMES)
def test_battery_each_submission_gets_exactly_what_it_earned(battery_run, name):
    run, cases = battery_run["run"], battery_run["cases"]
    assert set(cases) == set(BATTERY_NAMES)
    *expected, must_flag = cases[name]
    result = run.result(name)
    got = [result.score(t) for t in ("q1_test", "q2_test", "q3_test")]
    if name == "reads_other_students" and not run.isolation.get("namespaces"):
        pytest.xfail("this machine allows no mount namespace: a submission can read files the grader's user can read")
    details = [(t.grade_id, t.status, t.message) for t in result.tests] + [str(f) for f in result.flags]
    assert got == expected, details
    codes = {f.code for f in result.flags}
    assert must_flag <= codes, details
    assert not codes & {"grader-error", "sandbox-error"}, details
    if name in ("good", "stub", "partial"):
        assert result.flags == [], details


@pytest.mark.slow
def test_battery_other_students_are_unaffected_and_nothing_escaped(battery_run):
    run, alone = battery_run["run"], battery_run["alone"]
    for student in ("good", "partial"):
        assert [(t.grade_id, t.points, t.status) for t in run.result(student).tests] == \
               [(t.grade_id, t.points, t.status) for t in alone.result(student).tests]
    assert len(run.results) == len(BATTERY_NAMES)
    assert battery_run["listener"].connections == 0, "a submission reached the network"
    assert not battery_run["escape"].exists(), "a submission wrote outside its sandbox"
    assert (REPO / "README.md").read_bytes() == battery_run["readme"], "a submission changed the repository"
    assert (battery_run["subs"] / "good.ipynb").is_file()
    if run.isolation.get("namespaces"):
        assert run.isolation.get("seccomp") and "new network namespace" in run.isolation.get("network", "")


@pytest.mark.slow
def test_battery_outputs_gradebook_feedback_and_summary(battery_run):
    run = battery_run["run"]
    out = run.out
    rows = list(csv.DictReader(open(out / "gradebook.csv")))
    assert [r["student"] for r in rows] == sorted(BATTERY_NAMES)
    good = next(r for r in rows if r["student"] == "good")
    assert (good["q1_test"], good["q2_test"], good["q3_test"], good["total"], good["maximum"], good["flags"]) == ("2", "2", "1", "5", "5", "")
    partial = next(r for r in rows if r["student"] == "partial")
    assert partial["q2_test"] == "1" and partial["total"] == "3"
    assert "test-edited:q1_test" in next(r for r in rows if r["student"] == "edits_tests")["flags"]
    feedback = json.loads((out / "feedback" / "partial.json").read_text())
    q3 = next(t for t in feedback["tests"] if t["grade_id"] == "q3_test")
    assert q3["status"] == "error" and "AssertionError" in q3["message"] and "4.0 != 8.0" in q3["message"]
    q2 = next(t for t in feedback["tests"] if t["grade_id"] == "q2_test")
    assert q2["status"] == "partial" and q2["points"] == 1 and "quarter" in q2["hint"]
    q1 = json.loads((out / "feedback" / "stub.json").read_text())["tests"][0]
    assert "NotImplementedError" in q1["message"] and q1["hint"] == "multiply x by itself."
    page = (out / "feedback" / "magic_objects.html").read_text()
    assert "<script" not in page and "Score:" in page
    summary = {row["question"]: row for row in json.loads((out / "summary.json").read_text())}
    assert set(summary) == {"q1_test", "q2_test", "q3_test", "total"}
    assert sum(summary["q1_test"]["distribution"].values()) == len(BATTERY_NAMES)
    assert summary["q2_test"]["distribution"]["(25-50%]"] >= 1  # the partial student
    record = json.loads((out / "grading.json").read_text())
    assert record["submissions"] == len(BATTERY_NAMES) and record["jobs"] == 2


@pytest.mark.slow
def test_without_namespaces_the_grader_still_isolates_processes_and_network(tiny, tmp_path, monkeypatch):
    """The degraded mode (no Linux namespaces, as on macOS or in a locked-down container) still
    grades correctly, refuses processes and sockets, and says what is missing."""
    monkeypatch.setenv("COURSE_GRADE_NAMESPACES", "0")
    listener = Listener()
    subs = tmp_path / "subs"
    subs.mkdir()
    try:
        write(subs, "good", submission(tiny, GOOD))
        write(subs, "network", submission(tiny, {**GOOD, "q1_answer":
              f"import socket\ndef square(x):\n    return float(socket.create_connection(('127.0.0.1', {listener.port}), timeout=2).recv(10))"}))
        write(subs, "fork", submission(tiny, GOOD, after={"q1_answer": ["import os\nos.fork()", "import threading\nthreading.Thread(target=print).start()"]}))
        messages = []
        run = gr.grade(tiny, subs, tmp_path / "out", jobs=2, limits=Limits(cell_timeout=20), progress=messages.append)
    finally:
        listener.close()
    assert [r.total for r in run.results] == [5, 5, 3]
    assert listener.connections == 0
    assert run.isolation["namespaces"] is False and run.isolation["seccomp"]
    assert any("no Linux namespaces" in m for m in messages)
    assert "refused" in {f.code for f in run.result("fork").flags}


def test_cli_grade_runs_and_reports(tiny, tmp_path, capsys):
    from course_tools.cli import main

    subs = tmp_path / "subs"
    subs.mkdir()
    write(subs, "ann", submission(tiny, GOOD))
    assert main(["grade", str(tiny), str(subs), "--out", str(tmp_path / "out"), "--jobs", "1", "--cell-timeout", "20"]) == 0
    out = capsys.readouterr().out
    assert "1 graded, mean 5.00 / 5" in out and "ann" in out
    assert main(["grade", "nope", str(subs), "--out", str(tmp_path / "out"), "--solutions", str(tiny.parent)]) == 2
    assert "no solutions file matches 'nope'" in capsys.readouterr().err


# ================================================================================================
# Part 4: nbgrader itself


@pytest.mark.parametrize("solution", SOLUTION_PARAMS)
def test_nbgrader_generates_the_same_student_notebook(solution, tmp_path, monkeypatch):
    """nbgrader's own generate_assignment (instructor extra) accepts the solution notebook's
    schema-3 metadata and produces the student notebook ``course exercises`` writes; its notion of
    graded cells and points is the grader's."""
    pytest.importorskip("nbgrader")
    from nbgrader.apps import NbGraderAPI
    from nbgrader.utils import is_grade
    from traitlets.config import Config

    import os

    # nbgrader runs `alembic` (installed beside this Python) to set up its gradebook database
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    name = solution.stem
    source = tmp_path / "source" / "ps1"
    source.mkdir(parents=True)
    nbformat.write(ex.solution_notebook(solution), source / f"{name}.ipynb")
    config = Config()
    config.CourseDirectory.root = str(tmp_path)
    config.CourseDirectory.db_url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    config.GenerateAssignment.create_assignment = True
    api = NbGraderAPI(config=config)
    result = api.generate_assignment("ps1", force=True)
    assert result["success"], result.get("log") or result.get("error")
    released = nbformat.read(tmp_path / "release" / "ps1" / f"{name}.ipynb", as_version=4)
    ours = ex.make_exercise(solution)
    assert [c.source.rstrip() for c in released.cells] == [c.source.rstrip() for c in ours.cells]
    graded = [(c.metadata.nbgrader["grade_id"], float(c.metadata.nbgrader["points"])) for c in released.cells if is_grade(c)]
    assignment = load_assignment(solution)
    assert graded == [(t.grade_id, t.points) for t in assignment.tests]
