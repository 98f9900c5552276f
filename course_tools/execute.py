"""Running a notebook headless: every cell in a kernel of this environment, errors caught and
reported by cell, with per-cell timing. Used by ``course run`` and by the tests that execute
notebooks and solution notebooks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["execute_notebook", "ExecutionResult", "CellFailure", "export_html", "first_line"]


class CellFailure(NamedTuple):
    """Where a run stopped: the cell (numbered from 0), the error, the first line of the cell."""

    index: int
    ename: str
    evalue: str
    first_line: str

    def __str__(self) -> str:
        error = f"{self.ename}: {self.evalue}" if self.evalue else self.ename
        return f"cell {self.index} (`{self.first_line}`) failed: {error}"


class ExecutionResult(NamedTuple):
    """The executed notebook, the wall time, and the failure (``None`` when every cell ran)."""

    notebook: Any
    seconds: float
    failure: CellFailure | None


def first_line(source: str) -> str:
    """The first non-blank line of a cell, shortened to 70 characters (for messages)."""
    for line in source.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 70 else line[:67] + "..."
    return ""


def execute_notebook(
    nb,
    *,
    cwd: str | Path,
    timeout: float | None = 600,
    quick: bool | None = None,
    kernel_name: str = "python3",
    env: dict[str, str] | None = None,
    allow_errors: bool = False,
    on_cell_done: Callable[[int, Any, float], None] | None = None,
) -> ExecutionResult:
    """Run every cell of ``nb`` (in place) with nbclient, in the kernel ``kernel_name`` of this
    Python environment, with ``cwd`` as working directory. Errors are caught, not raised.

    ``timeout``: seconds per cell (None: no limit). ``quick``: True sets ``COURSE_QUICK=1`` for the
    kernel, False ``COURSE_QUICK=0``, None keeps the current environment (or ``env``, which
    replaces it). ``allow_errors``: go on after a failing cell (errors stay in the outputs and
    ``failure`` is None). ``on_cell_done(index, cell, seconds)`` is called after each code cell.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    kernel_env = dict(os.environ if env is None else env)
    if quick is not None:
        kernel_env["COURSE_QUICK"] = "1" if quick else "0"
    state = {"index": -1, "start": 0.0}

    def on_cell_start(cell, cell_index, **_):
        state["index"], state["start"] = cell_index, time.perf_counter()

    def on_cell_executed(cell, cell_index, **_):
        if on_cell_done is not None:
            on_cell_done(cell_index, cell, time.perf_counter() - state["start"])

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd)}},
        # the kernel's own log (e.g. ipykernel's notice about TCP transport) is noise here
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        on_cell_start=on_cell_start,
        on_cell_executed=on_cell_executed,
    )
    start = time.perf_counter()
    failure = None
    try:
        client.execute(env=kernel_env)
    except CellExecutionError as error:
        failure = _failure_from_outputs(nb, state["index"], error)
    except CellTimeoutError:
        index = state["index"]
        source = nb.cells[index].source if 0 <= index < len(nb.cells) else ""
        failure = CellFailure(index, "CellTimeoutError", f"still running after {timeout} s (use --timeout)", first_line(source))
    except DeadKernelError as error:
        index = state["index"]
        source = nb.cells[index].source if 0 <= index < len(nb.cells) else ""
        failure = CellFailure(index, "DeadKernelError", f"the kernel died (out of memory?): {error}", first_line(source))
    return ExecutionResult(nb, time.perf_counter() - start, failure)


def _failure_from_outputs(nb, index: int, error: Exception) -> CellFailure:
    if 0 <= index < len(nb.cells):
        cell = nb.cells[index]
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return CellFailure(index, output.get("ename", "Error"), output.get("evalue", ""), first_line(cell.source))
        return CellFailure(index, type(error).__name__, str(error).strip().splitlines()[-1:][0] if str(error).strip() else "", first_line(cell.source))
    return CellFailure(index, type(error).__name__, str(error), "")


def export_html(nb, path: Path) -> None:
    """Write an executed notebook as a stand-alone HTML page (JupyterLab's look)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")
