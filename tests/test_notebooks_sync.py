"""Committed notebooks are in sync with their sources and carry no outputs.

- every notebooks/NN_topic.py and solutions/NN_topic.py (the reviewed sources, jupytext percent) has a
  paired NN_topic.ipynb with the same cells; fix: `.venv/bin/jupytext --sync notebooks/NN_topic.py`
  (the solutions' .ipynb is the instructor's runnable copy; exercises/ is generated from the .py);
- every notebooks/*.ipynb and solutions/*.ipynb has its .py source;
- no .ipynb under notebooks/, solutions/ or exercises/ has outputs or execution counts (learners get clean
  notebooks, diffs stay readable); fix: `jupyter nbconvert --clear-output --inplace FILE`.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SOLUTIONS = REPO / "solutions"
SOURCES = sorted(NOTEBOOKS.glob("*.py")) + sorted(SOLUTIONS.glob("*.py"))
PAIRED_IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb")) + sorted(SOLUTIONS.glob("*.ipynb"))
IPYNBS = PAIRED_IPYNBS + sorted((REPO / "exercises").glob("*.ipynb"))


def params(paths, what):
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in paths] or [
        pytest.param(None, id="none", marks=pytest.mark.skip(reason=f"no {what} yet"))
    ]


def cells(nb):
    return [(cell.cell_type, cell.source) for cell in nb.cells]


@pytest.mark.parametrize("source", params(SOURCES, "notebooks/*.py or solutions/*.py"))
def test_py_source_has_a_paired_ipynb_with_the_same_cells(source):
    import jupytext

    paired = source.with_suffix(".ipynb")
    fix = f"run `.venv/bin/jupytext --sync {source.relative_to(REPO)}`"
    if source.parent == SOLUTIONS and not paired.is_file():
        fix = f"run `.venv/bin/jupytext --set-formats ipynb,py:percent {source.relative_to(REPO)}`"
    assert paired.is_file(), f"{paired.relative_to(REPO)} is missing; {fix}"
    from_py = jupytext.read(source)
    formats = from_py.metadata.get("jupytext", {}).get("formats", "")
    assert "ipynb" in formats and "py:percent" in formats, (
        f"{source.name} should declare `formats: ipynb,py:percent` in its jupytext header; {fix} after adding it"
    )
    ipynb = nbformat.read(paired, as_version=4)
    expected, actual = cells(from_py), cells(ipynb)
    if expected != actual:
        first = next(
            (i for i, (a, b) in enumerate(zip(expected, actual)) if a != b), min(len(expected), len(actual))
        )
        pytest.fail(
            f"{paired.name} is out of sync with {source.name} from cell {first} on "
            f"({len(expected)} cells in the .py, {len(actual)} in the .ipynb); {fix}"
        )


@pytest.mark.parametrize("notebook", params(PAIRED_IPYNBS, "notebooks/*.ipynb or solutions/*.ipynb"))
def test_every_ipynb_has_its_py_source(notebook):
    assert notebook.with_suffix(".py").is_file(), (
        f"{notebook.name} has no {notebook.stem}.py; the .py is the reviewed source: "
        f"run `.venv/bin/jupytext --set-formats ipynb,py:percent {notebook.relative_to(REPO)}`"
    )


@pytest.mark.parametrize("notebook", params(IPYNBS, "committed .ipynb files"))
def test_committed_notebook_has_no_outputs(notebook):
    nb = nbformat.read(notebook, as_version=4)
    dirty = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{notebook.relative_to(REPO)} has outputs or execution counts in cells {dirty}; clear them with "
        f"`.venv/bin/jupyter nbconvert --clear-output --inplace {notebook.relative_to(REPO)}`"
        + (" (or regenerate with `course exercises`)" if notebook.parent.name == "exercises" else "")
    )
