"""The `course` command (course_tools.cli): doctor, run, exercises, grade; and finding notebooks (course_tools.repo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib import device
from course_tools import cli, repo

REPO = Path(__file__).resolve().parents[1]


def tiny_notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# ---------------------------------------------------------------------------------------------
# doctor


def test_doctor_prints_versions_device_and_mode(capsys):
    status = cli.main(["doctor"])
    out, err = capsys.readouterr()
    assert device.describe(device.get_device()) in out
    for label in ("python", "torch", "numpy", "jupyterlab", "mode", "cache", "full MNIST"):
        assert f"  {label}" in out, f"doctor should report {label!r}:\n{out}"
    # shipped checkpoints are listed one per row ("ckpt NAME ok ..."), or "checkpoints none shipped yet"
    assert "  ckpt " in out or "  checkpoints" in out, f"doctor should report the checkpoints:\n{out}"
    assert "quick" in out, "the suite runs with COURSE_QUICK=1, which doctor should report"
    assert status == 0, f"doctor found problems in the test environment:\n{out}\n{err}"
    assert "All essential checks passed" in out


def test_doctor_short_is_one_line(capsys):
    assert cli.main(["doctor", "--short"]) == 0
    out, _ = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("course doctor: Python ")
    assert device.describe(device.get_device()) in lines[0]


def test_doctor_fails_and_names_the_fix_when_the_device_is_broken(capsys, monkeypatch):
    def broken(prefer=None):
        raise RuntimeError("device 'cuda' was requested but PyTorch sees no CUDA GPU here")

    monkeypatch.setattr(device, "get_device", broken)
    assert cli.main(["doctor"]) == 1
    out, err = capsys.readouterr()
    assert "PROBLEM" in out and "no CUDA GPU" in out and "COURSE_DEVICE=cpu" in out
    assert "1 problem(s)" in err


def test_doctor_reports_a_bad_quick_mode_setting(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_QUICK", "maybe")
    assert cli.main(["doctor", "--short"]) == 1
    out, _ = capsys.readouterr()
    assert "PROBLEM mode" in out and "COURSE_QUICK" in out


def test_doctor_download_mnist_reports_success_and_failure(capsys, monkeypatch, tmp_path):
    data = pytest.importorskip("course_lib.data")
    calls = []
    monkeypatch.setattr(data, "download_full_mnist", lambda *a, **k: calls.append(1) or tmp_path)
    assert cli.main(["doctor", "--download-mnist"]) == 0
    assert calls == [1] and f"full MNIST is in {tmp_path}" in capsys.readouterr().out

    def offline(*args, **kwargs):
        raise data.MNISTDownloadError("could not download full MNIST (is this machine offline?)")

    monkeypatch.setattr(data, "download_full_mnist", offline)
    assert cli.main(["doctor", "--download-mnist"]) == 1
    assert "PROBLEM: MNISTDownloadError: could not download full MNIST" in capsys.readouterr().out


def test_console_entry_point_passes_the_exit_status():
    done = subprocess.run(
        [sys.executable, "-m", "course_tools.cli", "doctor", "--short"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("course doctor:")
    done = subprocess.run([sys.executable, "-m", "course_tools.cli", "nonsense"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice" in done.stderr


# ---------------------------------------------------------------------------------------------
# run


def test_find_notebook_by_number_prefix_or_path(tmp_path):
    folder = tmp_path / "notebooks"
    tiny_notebook(folder / "03_autoregressive_models.ipynb", "x = 1")
    (folder / "03_autoregressive_models.py").write_text("# %%\nx = 1\n", encoding="utf-8")
    (folder / "04_vae.py").write_text("# %%\nx = 1\n", encoding="utf-8")
    assert repo.find_notebook("3", folder).name == "03_autoregressive_models.ipynb", "the .ipynb is preferred"
    assert repo.find_notebook("03", folder).name == "03_autoregressive_models.ipynb"
    assert repo.find_notebook("autoreg", folder).name == "03_autoregressive_models.ipynb"
    assert repo.find_notebook("04", folder).name == "04_vae.py", "a .py alone is run through jupytext"
    assert repo.find_notebook(str(folder / "04_vae.py"), tmp_path) == folder / "04_vae.py"
    with pytest.raises(FileNotFoundError, match="there are: 03_autoregressive_models, 04_vae"):
        repo.find_notebook("07", folder)
    tiny_notebook(folder / "04_vqvae.ipynb", "x = 1")
    with pytest.raises(ValueError, match="matches several notebooks"):
        repo.find_notebook("04_v", folder)


@pytest.mark.slow
def test_run_executes_in_the_notebooks_folder_and_writes_notebook_and_html(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    tiny_notebook(
        folder / "07_tiny.ipynb",
        "from course_lib import config\nprint('mode is', config.mode())",
        "from pathlib import Path\nPath('ran_here.txt').write_text('yes')\n6 * 7",
    )
    out = tmp_path / "out"
    status = cli.main(["run", "7", "--quick", "--notebooks-dir", str(folder), "--out", str(out), "--timeout", "120"])
    stdout, stderr = capsys.readouterr()
    assert status == 0, stderr
    assert (folder / "ran_here.txt").read_text() == "yes", "the notebook's folder is the working directory"
    executed = nbformat.read(out / "07_tiny.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "mode is quick\n"
    assert executed.cells[1].outputs[0]["data"]["text/plain"] == "42"
    html = (out / "07_tiny.html").read_text(encoding="utf-8")
    assert "<html" in html and "mode is quick" in html
    assert "quick mode" in stdout and "07_tiny" in stdout
    source = nbformat.read(folder / "07_tiny.ipynb", as_version=4)
    assert source.cells[0].outputs == [], "the source notebook is never modified"


@pytest.mark.slow
def test_run_full_mode_and_a_failing_cell(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    tiny_notebook(
        folder / "08_broken.ipynb",
        "from course_lib import config\nassert config.mode() == 'full'",
        "x = 1\nraise ValueError('values look like 0..255; divide by 255')",
        "print('never reached')",
    )
    out = tmp_path / "out"
    status = cli.main(["run", "08", "--full", "--notebooks-dir", str(folder), "--out", str(out)])
    _, stderr = capsys.readouterr()
    assert status == 1
    assert "cell 1 (`x = 1`) failed: ValueError: values look like 0..255" in stderr
    partial = nbformat.read(out / "08_broken.ipynb", as_version=4)
    assert partial.cells[0].outputs == [] and partial.cells[1].outputs[0]["output_type"] == "error"
    assert partial.cells[2].outputs == [], "execution stops at the failing cell"


def test_run_unknown_notebook_lists_what_there_is(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    tiny_notebook(folder / "01_probability_basics.ipynb", "x = 1")
    assert cli.main(["run", "12", "--notebooks-dir", str(folder)]) == 2
    assert "there are: 01_probability_basics" in capsys.readouterr().err


def test_run_refuses_to_overwrite_its_source(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    tiny_notebook(folder / "01_x.ipynb", "x = 1")
    assert cli.main(["run", "1", "--notebooks-dir", str(folder), "--out", str(folder)]) == 2
    assert "overwrite" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# exercises


SOLUTION = """\
# %% nbgrader={"grade": false, "grade_id": "q1_answer", "locked": false, "schema_version": 3, "solution": true, "task": false}
def double(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "q1_test", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
assert double(2) == 4
"""


def test_exercises_writes_then_check_passes_and_catches_edits(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    (solutions / "01_demo.py").write_text(SOLUTION, encoding="utf-8")
    args = ["--solutions", str(solutions), "--exercises", str(exercises)]

    assert cli.main(["exercises", "--check", *args]) == 1
    assert "01_demo.ipynb is not generated yet" in capsys.readouterr().err
    assert cli.main(["exercises", *args]) == 0
    assert "new" in capsys.readouterr().out
    assert cli.main(["exercises", "--check", *args]) == 0
    capsys.readouterr()

    generated = exercises / "01_demo.ipynb"
    nb = json.loads(generated.read_text(encoding="utf-8"))
    assert "raise NotImplementedError()" in "".join(nb["cells"][0]["source"])
    generated.write_text(generated.read_text(encoding="utf-8").replace("NotImplementedError", "Oops"), encoding="utf-8")
    assert cli.main(["exercises", "--check", *args]) == 1
    err = capsys.readouterr().err
    assert "01_demo.ipynb differs" in err and "run `course exercises`" in err

    (solutions / "02_bad.py").write_text("# %%\nx = 1\n", encoding="utf-8")
    assert cli.main(["exercises", *args]) == 1
    assert "02_bad.py" in capsys.readouterr().err


def test_repository_exercises_are_up_to_date(capsys):
    if not list((REPO / "solutions").glob("*.py")):
        pytest.skip("solutions/ has no NN_topic.py files yet")
    status = cli.main(["exercises", "--check", "--solutions", str(REPO / "solutions"), "--exercises", str(REPO / "exercises")])
    assert status == 0, capsys.readouterr().err


def test_every_command_is_registered():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == {"doctor", "run", "exercises", "grade"}
