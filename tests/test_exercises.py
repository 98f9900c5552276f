"""The exercise generator (course_tools.grading.exercises) and the real exercise sets in solutions/.

Part 1 builds small solutions files in a temporary folder and checks each rule of the format.
Part 2 checks every solutions/NN_topic.py: it validates, exercises/ is up to date, the student
version has stubs and no hidden tests, the full solution runs without an error in quick mode, and
no graded test passes on the unanswered stubs (a test that does would give free points).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from course_tools.grading import exercises as ex

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS_DIR = REPO / "solutions"
EXERCISES_DIR = REPO / "exercises"


def meta(grade_id: str, *, grade=False, solution=False, locked=None, points=None, **extra) -> str:
    """A `nbgrader={...}` cell header fragment (schema 3)."""
    import json

    fields = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": (not solution) if locked is None else locked,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        fields["points"] = points
    fields.update(extra)
    return "nbgrader=" + json.dumps(fields)


GOOD = f'''\
# %% [markdown] {meta("intro")}
# # Exercises

# %% {meta("setup")}
import math

# %% {meta("q1_answer", solution=True)}
class Model:
    def entropy(self, p):
        total = 0.0
        for q in p:
            ### BEGIN SOLUTION
            if q > 0:
                total -= q * math.log(q)
            ### END SOLUTION
        return total

def helper():
    ### BEGIN SOLUTION
    return 42
    ### END SOLUTION

# %% {meta("q1_test", grade=True, points=2)}
# Hint: a fair coin has entropy log 2 nats.
#   Remember that 0 log 0 = 0.
assert abs(Model().entropy([0.5, 0.5]) - math.log(2)) < 1e-9, "a fair coin has entropy log 2"
### BEGIN HIDDEN TESTS
assert Model().entropy([1.0, 0.0]) == 0.0
### END HIDDEN TESTS
assert helper() == 42

# %% [markdown] {meta("q2_answer", grade=True, solution=True, points=1)}
# The uniform distribution has the largest entropy.

# %% [markdown] {meta("q3_answer", grade=True, solution=True, points=1.5)}
# Explain in one sentence:
#
# ### BEGIN SOLUTION
# Because of Jensen's inequality.
# ### END SOLUTION
'''


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path) -> Path:
    return write(tmp_path / "solutions", "01_demo.py", GOOD)


def cell(nb, grade_id):
    matches = [c for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == grade_id]
    assert len(matches) == 1, f"expected one cell {grade_id!r}"
    return matches[0]


# ---------------------------------------------------------------------------------------------
# part 1: the generator on small files


def test_stub_replaces_each_solution_region_at_its_indentation(good):
    student = ex.make_exercise(ex.read_solution(good))
    source = cell(student, "q1_answer").source
    assert source == textwrap.dedent(
        """\
        class Model:
            def entropy(self, p):
                total = 0.0
                for q in p:
                    # YOUR CODE HERE
                    raise NotImplementedError()
                return total

        def helper():
            # YOUR CODE HERE
            raise NotImplementedError()"""
    )
    assert "math.log(q)" not in source and "42" not in source


def test_hidden_tests_are_removed_and_visible_tests_kept(good):
    student = ex.make_exercise(ex.read_solution(good))
    test = cell(student, "q1_test").source
    assert "HIDDEN" not in test and "entropy([1.0, 0.0])" not in test
    assert "entropy([0.5, 0.5])" in test, "visible asserts before the hidden region must stay"
    assert test.rstrip().endswith("assert helper() == 42"), "visible asserts after the hidden region must stay"
    # the solution notebook keeps everything, markers included
    full = ex.solution_notebook(good)
    assert "### BEGIN HIDDEN TESTS" in cell(full, "q1_test").source
    assert "### BEGIN SOLUTION" in cell(full, "q1_answer").source
    assert "math.log(q)" in cell(full, "q1_answer").source


def test_markdown_answers_become_your_answer_here(good):
    student = ex.make_exercise(ex.read_solution(good))
    assert cell(student, "q2_answer").source == "YOUR ANSWER HERE"
    q3 = cell(student, "q3_answer").source
    assert q3.startswith("Explain in one sentence:") and q3.endswith("YOUR ANSWER HERE")
    assert "Jensen" not in q3


def test_student_notebook_metadata_outputs_and_checksums(good):
    full = ex.solution_notebook(good)
    # give the solution notebook outputs, as if it had been run, and check none survive
    for c in full.cells:
        if c.cell_type == "code":
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
            c.execution_count = 7
    student = ex.make_exercise(full)
    assert student.metadata["kernelspec"]["name"] == "python3"
    assert student.nbformat == 4
    nbformat.validate(student)
    for c in student.cells:
        nbg = c.metadata["nbgrader"]
        assert c.id == nbg["grade_id"], "cell ids are the grade_ids, so regeneration is deterministic"
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None
        assert len(nbg["checksum"]) == 32 and nbg["cell_type"] == c.cell_type
        assert nbg["checksum"] == ex.compute_checksum(c)
        assert set(c.metadata) <= {"nbgrader", "deletable", "editable", "tags"}, "no jupytext metadata leaks in"
    assert cell(student, "q1_test").metadata["editable"] is False
    assert "editable" not in cell(student, "q1_answer").metadata
    # a tampered test cell no longer matches its checksum
    tampered = cell(student, "q1_test").copy()
    tampered.source = "pass"
    assert ex.compute_checksum(tampered) != cell(student, "q1_test").metadata["nbgrader"]["checksum"]


def test_matches_nbgrader_itself(good):
    """nbgrader is the reference: same checksums, valid metadata, same stubs and hidden-test removal."""
    pytest.importorskip("nbgrader")
    from nbgrader.nbgraderformat import MetadataValidator
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
    from nbgrader.utils import compute_checksum

    student = ex.make_exercise(ex.read_solution(good))
    full = ex.solution_notebook(good)
    MetadataValidator().validate_nb(student)
    MetadataValidator().validate_nb(full)
    for c in student.cells:
        assert c.metadata["nbgrader"]["checksum"] == compute_checksum(c)
    reference, resources = ClearSolutions().preprocess(full.copy(), {})
    reference, _ = ClearHiddenTests().preprocess(reference, resources)
    assert [c.source.rstrip() for c in reference.cells] == [c.source.rstrip() for c in student.cells]


def test_inventory_lists_graded_cells_with_points_and_hints(good):
    assert ex.grade_inventory(good) == [
        ex.GradeCell("q1_test", 2.0, "a fair coin has entropy log 2 nats. Remember that 0 log 0 = 0."),
    ]
    assert [(c.grade_id, c.points) for c in ex.manually_graded(good)] == [("q2_answer", 1.0), ("q3_answer", 1.5)]
    assert ex.total_points(good) == 2.0
    # the inventory of the student notebook is the same (hints are visible)
    assert ex.grade_inventory(ex.make_exercise(ex.read_solution(good))) == ex.grade_inventory(good)


def test_write_is_deterministic_and_check_reports_stale_missing_extra(tmp_path, good):
    solutions, exercises = good.parent, tmp_path / "exercises"
    assert [item.problem for item in ex.check_exercises_up_to_date(solutions, exercises)] == ["missing"]
    written = ex.write_exercises(solutions, exercises)
    assert written == [exercises / "01_demo.ipynb"]
    first = written[0].read_bytes()
    assert first.endswith(b"\n") and b'"execution_count": null' in first
    assert ex.check_exercises_up_to_date(solutions, exercises) == []
    mtime = written[0].stat().st_mtime_ns
    assert ex.write_exercises(solutions, exercises) == written
    assert written[0].read_bytes() == first, "regenerating must give identical bytes"
    assert written[0].stat().st_mtime_ns == mtime, "an up-to-date file is not rewritten"

    written[0].write_bytes(first.replace(b"YOUR ANSWER HERE", b"my answer"))
    (exercises / "99_orphan.ipynb").write_text("{}", encoding="utf-8")
    problems = ex.check_exercises_up_to_date(solutions, exercises)
    assert sorted((p.path.name, p.problem) for p in problems) == [("01_demo.ipynb", "stale"), ("99_orphan.ipynb", "extra")]
    assert "01_demo.ipynb" in str(problems[0])
    ex.write_exercises(solutions, exercises)
    assert written[0].read_bytes() == first
    assert not (exercises / "99_orphan.ipynb").exists(), "exercises without a solutions file are pruned"


def test_bad_file_names_are_refused_with_the_fix(tmp_path):
    write(tmp_path / "solutions", "demo.py", GOOD)
    with pytest.raises(ValueError, match=r"NN_topic\.py naming.*rename"):
        ex.solution_files(tmp_path / "solutions")


BROKEN = {
    "no metadata": (
        "# %%\nx = 1\n",
        ["cell 0", "has no nbgrader metadata", '"locked": true'],
    ),
    "duplicate id": (
        f"# %% {meta('a')}\nx = 1\n\n# %% {meta('a')}\ny = 2\n",
        ["cell 1", "grade_id 'a'", "also used by cell 0", "unique"],
    ),
    "empty id": (
        f"# %% {meta('')}\nx = 1\n",
        ["cell 0", '"grade_id" is missing or empty'],
    ),
    "bad id characters": (
        f"# %% {meta('q 1')}\nx = 1\n",
        ['"grade_id" \'q 1\'', "letters, digits"],
    ),
    "zero points": (
        f"# %% {meta('t', grade=True, points=0)}\nassert True\n",
        ["grade_id 't'", '"points" must be a number > 0, got 0'],
    ),
    "missing points": (
        f"# %% {meta('t', grade=True)}\nassert True\n",
        ["grade_id 't'", 'needs "points"'],
    ),
    "unclosed solution": (
        f"# %% {meta('s', solution=True)}\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n",
        ["grade_id 's'", "'### BEGIN SOLUTION' on line 3 is never closed", "add '### END SOLUTION'"],
    ),
    "end without begin": (
        f"# %% {meta('s', solution=True)}\nx = 1\n### END SOLUTION\n",
        ["'### END SOLUTION' without a '### BEGIN SOLUTION'"],
    ),
    "nested solution": (
        f"# %% {meta('s', solution=True)}\n### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n",
        ["opens '### BEGIN SOLUTION' again"],
    ),
    "misspelt marker": (
        f"# %% {meta('s', solution=True)}\n## begin solution\nx = 1\n### END SOLUTION\n",
        ["reads '## begin solution'", "exactly as '### BEGIN SOLUTION'"],
    ),
    "code solution without markers": (
        f"# %% {meta('s', solution=True)}\nx = 1\n",
        ["needs a '### BEGIN SOLUTION' ... '### END SOLUTION' region"],
    ),
    "solution marker outside a solution cell": (
        f"# %% {meta('c')}\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n",
        ["grade_id 'c'", "not a solution cell"],
    ),
    "hidden tests outside a grade cell": (
        f"# %% {meta('s', solution=True)}\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n### BEGIN HIDDEN TESTS\nassert x\n### END HIDDEN TESTS\n",
        ["grade_id 's'", "only in graded test cells"],
    ),
    "unclosed hidden tests": (
        f"# %% {meta('t', grade=True, points=1)}\nassert True\n### BEGIN HIDDEN TESTS\nassert 1\n",
        ["'### BEGIN HIDDEN TESTS' on line 3 is never closed"],
    ),
    "locked solution": (
        f"# %% {meta('s', solution=True, locked=True)}\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n",
        ['a solution cell must be "locked": false'],
    ),
    "unlocked prompt": (
        f"# %% [markdown] {meta('p', locked=False)}\n# text\n",
        ['must be "locked": true'],
    ),
    "markdown solution not graded": (
        f"# %% [markdown] {meta('w', solution=True)}\n# answer\n",
        ['markdown cell with a written answer must be both "grade": true and "solution": true'],
    ),
    "graded code solution": (
        f"# %% {meta('g', grade=True, solution=True, points=1)}\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n",
        ["graded by hand", "split it"],
    ),
    "wrong schema": (
        f"# %% {meta('a', schema_version=2)}\nx = 1\n",
        ['"schema_version" must be 3'],
    ),
    "unknown key": (
        f"# %% {meta('a', pts=3)}\nx = 1\n",
        ["unknown nbgrader key(s) ['pts']"],
    ),
    "hand-written checksum": (
        f"# %% {meta('a', checksum='0' * 32)}\nx = 1\n",
        ["remove ['checksum']", "course exercises"],
    ),
    "task cell": (
        f"# %% [markdown] {meta('a', task=True)}\n# do it\n",
        ['"task": true'],
    ),
    "stub breaks the syntax": (
        f"# %% {meta('s', solution=True)}\nx = (\n    ### BEGIN SOLUTION\n    1\n    ### END SOLUTION\n)\n",
        ["student version", "not valid Python", "whole statements"],
    ),
    "solution not valid python": (
        f"# %% {meta('s', solution=True)}\n### BEGIN SOLUTION\nx = = 1\n### END SOLUTION\n",
        ["the solution of this cell is not valid Python", "line 3"],
    ),
    "no graded cell": (
        f"# %% {meta('a')}\nx = 1\n",
        ["no graded test cell"],
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_format_errors_name_the_file_the_cell_and_the_fix(tmp_path, case):
    text, fragments = BROKEN[case]
    # a graded cell keeps the "no graded test cell" rule out of the other cases
    if case != "no graded cell" and "grade=True" not in text and '"grade": true' not in text:
        text += f"\n# %% {meta('extra_test', grade=True, points=1)}\nassert True\n"
    path = write(tmp_path / "solutions", "05_broken.py", text)
    with pytest.raises(ex.ExerciseFormatError) as info:
        ex.make_exercise(ex.read_solution(path))
    message = str(info.value)
    assert "05_broken.py" in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"
    with pytest.raises(ex.ExerciseFormatError):
        ex.solution_notebook(path)


def test_error_lists_every_problem_with_line_numbers(tmp_path):
    text = (
        f"# %% {meta('a')}\nx = 1\n\n"  # cell 0, line 1
        f"# %% {meta('a')}\ny = 2\n\n"  # cell 1, line 4: duplicate
        f"# %% {meta('t', grade=True, points=-1)}\nassert True\n"  # cell 2, line 7: bad points
    )
    path = write(tmp_path / "solutions", "05_broken.py", text)
    with pytest.raises(ex.ExerciseFormatError) as info:
        ex.validate(ex.read_solution(path))
    assert len(info.value.problems) == 2
    assert info.value.problems[0].startswith("cell 1 (line 4, grade_id 'a')")
    assert info.value.problems[1].startswith("cell 2 (line 7, grade_id 't')")
    assert "2 problems" in str(info.value)


def test_write_exercises_validates_everything_before_writing(tmp_path, good):
    write(good.parent, "02_broken.py", f"# %% {meta('a')}\nx = 1\n")
    with pytest.raises(ex.ExerciseFormatError, match="02_broken.py"):
        ex.write_exercises(good.parent, tmp_path / "exercises")
    assert not (tmp_path / "exercises" / "01_demo.ipynb").exists(), "nothing is written while a file is invalid"


# ---------------------------------------------------------------------------------------------
# part 2: the real exercise sets

SOLUTION_FILES = sorted(SOLUTIONS_DIR.glob("*.py"))
SOLUTION_PARAMS = [pytest.param(path, id=path.stem) for path in SOLUTION_FILES] or [
    pytest.param(None, id="none", marks=pytest.mark.skip(reason="solutions/ has no NN_topic.py files yet"))
]


@pytest.mark.parametrize("solution", SOLUTION_PARAMS)
def test_solution_file_validates(solution):
    nb = ex.solution_notebook(solution)
    assert ex.grade_inventory(solution), f"{solution.name} has no graded test cell"
    assert all(cell.points > 0 for cell in ex.grade_inventory(solution))
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_exercises_are_up_to_date():
    if not SOLUTION_FILES:
        pytest.skip("solutions/ has no NN_topic.py files yet")
    stale = ex.check_exercises_up_to_date(SOLUTIONS_DIR, EXERCISES_DIR)
    assert stale == [], "exercises/ is out of date; run `course exercises`:\n" + "\n".join(map(str, stale))


@pytest.mark.parametrize("solution", SOLUTION_PARAMS)
def test_generated_exercise_has_stubs_and_no_hidden_tests(solution):
    path = ex.exercise_path(solution, EXERCISES_DIR)
    assert path.is_file(), f"{path} is missing; run `course exercises`"
    text = path.read_text(encoding="utf-8")
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text
    student = nbformat.read(path, as_version=4)
    solution_cells = [c for c in student.cells if c.metadata["nbgrader"]["solution"]]
    assert solution_cells, f"{path.name} has no cell for the student to answer"
    for c in solution_cells:
        stub = "raise NotImplementedError()" if c.cell_type == "code" else "YOUR ANSWER HERE"
        assert stub in c.source, f"{path.name}: cell {c.metadata['nbgrader']['grade_id']!r} has no stub"
    for c in student.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None


def _run(nb, tmp_path, monkeypatch, allow_errors=False):
    from course_tools.execute import execute_notebook

    monkeypatch.setenv("COURSE_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return execute_notebook(nb, cwd=tmp_path, timeout=120, quick=True, kernel_name="python3", allow_errors=allow_errors)


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTION_PARAMS)
def test_solution_runs_in_quick_mode(solution, tmp_path, monkeypatch):
    result = _run(ex.solution_notebook(solution), tmp_path, monkeypatch)
    assert result.failure is None, f"{solution.name}: {result.failure}"
    assert result.seconds < 120, f"{solution.name} took {result.seconds:.0f} s in quick mode; exercises should take seconds"


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTION_PARAMS)
def test_no_graded_test_passes_on_the_unanswered_stubs(solution, tmp_path, monkeypatch):
    student = nbformat.read(ex.exercise_path(solution, EXERCISES_DIR), as_version=4)
    result = _run(student, tmp_path, monkeypatch, allow_errors=True)
    free = [
        c.metadata["nbgrader"]["grade_id"]
        for c in result.notebook.cells
        if c.cell_type == "code"
        and c.metadata["nbgrader"]["grade"]
        and not any(output.output_type == "error" for output in c.outputs)
    ]
    assert free == [], f"{solution.name}: these test cells pass without an answer (free points): {free}"

