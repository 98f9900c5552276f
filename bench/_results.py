"""Shared helpers of the benchmarks: record a result table in bench/RESULTS.md, format tables.

Every benchmark script ends with::

    from _results import record, markdown_table
    record("Density models on the 8x8 digits", markdown_table(header, rows), notes="...")

``record`` replaces the section of that title in ``bench/RESULTS.md`` (or appends it), stamped with the
machine (platform, CPU count, torch version) and the date, so re-running one benchmark never touches
the others' results.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from pathlib import Path
from typing import Iterable, Sequence

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

_HEADER = """# Benchmark results

Quality-versus-time measurements of the course's models, written by the scripts in `bench/`
(each script replaces only its own section; run e.g. `.venv/bin/python bench/density_digits.py`).
These are not timed tests: timings depend on the machine, which each section names.
"""


def machine() -> str:
    """One line describing where the benchmark ran: platform, CPU count, torch version (and GPU if used)."""
    import torch

    cpus = os.cpu_count()
    line = f"{platform.platform()}, {platform.machine() or 'unknown CPU'}, {cpus} CPU core(s) visible"
    line += f", Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    if torch.cuda.is_available():
        line += f", GPU {torch.cuda.get_device_name(0)}"
    return line


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: Sequence[str] | None = None) -> str:
    """A GitHub markdown table; ``align`` per column is ``"l"`` or ``"r"`` (default: first left, rest right)."""
    header = [str(h) for h in header]
    rows = [[str(c) for c in row] for row in rows]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row} has {len(row)} cells but the header has {len(header)}")
    align = list(align) if align is not None else ["l"] + ["r"] * (len(header) - 1)
    rule = [":---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def record(section_title: str, table_markdown: str, notes: str = "", *, path: Path | str = RESULTS) -> str:
    """Write (or replace) the section ``## section_title`` of RESULTS.md; returns the section's text.

    The section holds the machine line, the date, ``table_markdown`` and ``notes`` (free markdown, e.g.
    how models were chosen). Other sections are kept as they are.
    """
    if not section_title or "\n" in section_title:
        raise ValueError("section_title must be one non-empty line")
    path = Path(path)
    date = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = f"## {section_title}\n\n*Machine:* {machine()}.  \n*Date:* {date}.\n\n{table_markdown.strip()}\n"
    if notes.strip():
        body += f"\n{notes.strip()}\n"
    text = path.read_text() if path.exists() else _HEADER
    pattern = re.compile(rf"^## {re.escape(section_title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text.rstrip("\n") + "\n")
    return body
