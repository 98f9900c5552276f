"""Running untrusted notebooks for ``course grade``: one sealed process per submission.

The grader (this module, in the grader's process) starts one warm *zygote*
(:file:`_runner.py`) that has imported torch, IPython and whatever the assignment's locked and
test cells import; each submission gets a process forked from it and sealed before it sees any
student code (namespaces, read-only file system, hidden folders, resource limits, no
capabilities, seccomp; see the docstring of :mod:`course_tools.grading._runner`). The grader sends
the cells one at a time and enforces the wall-clock limits itself:

* a cell that runs past its limit is interrupted (SIGINT → ``KeyboardInterrupt``); if the
  process does not answer within a grace period, or the notebook's total limit is reached, the
  whole process group is killed;
* every reply must echo the random nonce of its request; anything else on the channel (a notebook
  writing to the grader's socket) ends the session as tampering;
* when the process dies, the forked parent reports how (exit status or signal) after the
  submission's code can no longer write anything.

Typical use (what :mod:`course_tools.grading.grade` does)::

    with Zygote(preimport=["course_lib.config"], keep=[...], workroot=tmp) as zygote:
        session = Session(zygote, limits=Limits(), log_path=out / "alice.log",
                          hide=[submissions, out], notebook_name="alice.ipynb", notebook_text=text)
        report = session.open()              # what isolation the kernel allowed
        outcome = session.run("student", "q1_answer", "def f(x): ...")
        outcome = session.run("test", "q1_test", "assert f(2) == 4")
        session.close()

Linux gives the full sandbox; elsewhere (macOS) the grader still runs each submission in its
own process with time and resource limits, and :meth:`Session.open` says what is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Limits", "Zygote", "Session", "CellOutcome", "SandboxError", "sandbox_environment", "RUNNER"]

RUNNER = Path(__file__).resolve().with_name("_runner.py")
MAX_MESSAGE = 64 << 20


class SandboxError(RuntimeError):
    """The sandbox could not be started or answered nonsense (never the submission's fault alone)."""


@dataclass(frozen=True)
class Limits:
    """Per-submission limits. Times are wall-clock seconds; sizes are MiB."""

    cell_timeout: float = 60.0
    notebook_timeout: float = 300.0
    memory_mb: int = 4096
    file_size_mb: int = 64
    disk_mb: int = 256
    open_files: int = 512
    interrupt_grace: float = 3.0

    def __post_init__(self) -> None:
        problems = []
        if not self.cell_timeout > 0:
            problems.append("the cell time limit must be > 0 seconds")
        if not self.notebook_timeout > 0:
            problems.append("the notebook time limit must be > 0 seconds")
        if self.memory_mb < 1024:
            problems.append("the memory limit must be at least 1024 MiB (torch alone maps several hundred)")
        if self.file_size_mb < 1 or self.disk_mb < 8:
            problems.append("the file-size limit must be >= 1 MiB and the disk limit >= 8 MiB")
        if problems:
            raise ValueError("; ".join(problems))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CellOutcome:
    """What happened to one cell, as the grader observed it.

    ``status``: ``"ok"`` / ``"error"`` (the cell finished; ``reply`` has the details),
    ``"timeout"`` (``interrupted`` says whether the session survived), ``"died"`` (the process
    ended; ``detail`` says how) or ``"channel"`` (the notebook wrote on the grader's channel).
    """

    status: str
    reply: dict = field(default_factory=dict)
    seconds: float = 0.0
    detail: str = ""
    interrupted: bool = False

    @property
    def alive(self) -> bool:
        return self.status in ("ok", "error") or (self.status == "timeout" and self.interrupted)


def sandbox_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the zygote and every submission: a small whitelist of the grader's
    variables (no tokens or credentials), quick mode, the CPU, one thread, no progress bars."""
    env = {key: value for key, value in os.environ.items() if key in {
        "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "HOME", "VIRTUAL_ENV", "MPLCONFIGDIR",
    }}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update({
        "COURSE_QUICK": "1",
        "COURSE_DEVICE": "cpu",
        "CUDA_VISIBLE_DEVICES": "",
        "HIP_VISIBLE_DEVICES": "",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "VECLIB_MAXIMUM_THREADS": "1",
        "TQDM_DISABLE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONHASHSEED": "0",
    })
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------------------------
# the zygote


class Zygote:
    """The warm process that forks one sandboxed runner per submission.

    ``preimport``: modules to import before any fork (those of the assignment's locked and test
    cells); ``keep``: paths that must stay visible in the sandbox (the Python environment, the
    course package); ``workroot``: the grader's private scratch folder (hidden from submissions);
    ``namespaces=False`` skips the Linux namespaces (the degraded mode macOS always gets).
    Thread-safe: :meth:`spawn` may be called from several grading threads.
    """

    def __init__(self, *, preimport: list[str], keep: list[str], workroot: str | Path,
                 env: dict[str, str] | None = None, start_timeout: float = 300.0, namespaces: bool = True) -> None:
        self.namespaces = namespaces
        self.preimport = list(preimport)
        self.keep = [str(p) for p in keep]
        self.workroot = Path(workroot)
        self.env = env or sandbox_environment({"IPYTHONDIR": str(Path(workroot) / "ipython")})
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.info: dict = {}
        self._lock = threading.Lock()
        self.log_path = self.workroot / "zygote.log"

    def __enter__(self) -> "Zygote":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> dict:
        self.workroot.mkdir(parents=True, exist_ok=True)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", str(RUNNER), "zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=[theirs.fileno()],
                env=self.env, cwd=str(self.workroot), start_new_session=True,
            )
        finally:
            theirs.close()
            log.close()
        self.control = ours
        here = str(Path(__file__).resolve().parents[2])
        config = {"preimport": self.preimport, "sys_path": [here], "threads": 1, "namespaces": self.namespaces}
        ours.sendall(json.dumps(config).encode())
        ready = self._receive(self.start_timeout, "start")
        if ready.get("op") != "ready":
            self.close()
            raise SandboxError(f"the grading process answered {ready!r} instead of 'ready'")
        self.info = ready
        return ready

    def _receive(self, timeout: float, what: str) -> dict:
        assert self.control is not None
        ready, _, _ = select.select([self.control], [], [], timeout)
        if not ready:
            self.close()
            raise SandboxError(f"the grading process did not {what} within {timeout:.0f} s; see {self.log_path}")
        data = self.control.recv(1 << 20)
        if not data:
            code = self.process.poll() if self.process else None
            tail = _tail(self.log_path)
            self.close()
            raise SandboxError(f"the grading process ended (exit status {code}) during {what}; its log ends with:\n{tail}")
        return json.loads(data.decode())

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and self.control is not None

    def spawn(self, channel_fd: int, log_fd: int) -> int:
        """Fork a runner that talks on ``channel_fd`` and writes its output to ``log_fd``; its pid."""
        with self._lock:
            if not self.alive:
                raise SandboxError("the grading process is not running")
            socket.send_fds(self.control, [json.dumps({"op": "spawn"}).encode()], [channel_fd, log_fd])
            reply = self._receive(60.0, "fork a runner")
        if "pid" not in reply:
            raise SandboxError(f"could not fork a runner: {reply.get('error', reply)}")
        return int(reply["pid"])

    def close(self) -> None:
        if self.control is not None:
            try:
                self.control.sendall(json.dumps({"op": "exit"}).encode())
            except OSError:
                pass
            self.control.close()
            self.control = None
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _kill_group(self.process.pid)
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self.process = None


def _kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    for target in (lambda: os.killpg(pid, sig), lambda: os.kill(pid, sig)):
        try:
            target()
        except (ProcessLookupError, PermissionError, OSError):
            pass


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"


# ------------------------------------------------------------------------------------------------
# one submission


class _Died(Exception):
    pass


class _Timeout(Exception):
    pass


class _Channel(Exception):
    pass


class Session:
    """One sandboxed runner for one submission. Not thread-safe (one grading thread owns it)."""

    def __init__(self, zygote: Zygote, *, limits: Limits, log_path: str | Path, hide: list[str],
                 notebook_name: str = "submission.ipynb", notebook_text: str | None = None,
                 fallback_workdir: str | Path | None = None) -> None:
        self.zygote = zygote
        self.limits = limits
        self.log_path = Path(log_path)
        self.hide = [str(p) for p in hide]
        self.notebook_name = notebook_name
        self.notebook_text = notebook_text
        self.fallback_workdir = Path(fallback_workdir) if fallback_workdir else None
        self.sock: socket.socket | None = None
        self.pid: int | None = None
        self.report: dict = {}
        self.ending: str = ""
        self._buffer = b""
        self.deadline = float("inf")
        self.started = 0.0

    # -- life cycle

    def open(self) -> dict:
        """Fork and seal the runner; returns its report of the isolation in force."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            self.pid = self.zygote.spawn(theirs.fileno(), log_fd)
        finally:
            theirs.close()
            os.close(log_fd)
        self.sock = ours
        if self.fallback_workdir is not None:
            self.fallback_workdir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.fallback_workdir, 0o700)
        self.started = time.monotonic()
        self.deadline = self.started + self.limits.notebook_timeout
        config = {
            "hide": self.hide,
            "keep": self.zygote.keep,
            "notebook_name": self.notebook_name,
            "notebook_text": self.notebook_text,
            "fallback_workdir": str(self.fallback_workdir or self.zygote.workroot),
            "memory_mb": self.limits.memory_mb,
            "file_size_mb": self.limits.file_size_mb,
            "disk_mb": self.limits.disk_mb,
            "open_files": self.limits.open_files,
            "cpu_seconds": int(self.limits.notebook_timeout + 30),
        }
        try:
            self._send(config)
            ready = self._receive(time.monotonic() + 60.0)
        except (_Died, _Timeout, _Channel, OSError) as error:
            self.close()
            raise SandboxError(f"the sandbox did not start: {error or self.ending}; see {self.log_path}") from None
        if ready.get("op") != "ready" or "error" in ready:
            self.close()
            raise SandboxError(ready.get("error") or f"unexpected first message {ready!r}")
        self.report = ready.get("sandbox", {})
        return self.report

    def close(self) -> None:
        """End the runner (politely if it is alive, then for certain)."""
        if self.sock is not None:
            try:
                self._send({"op": "bye"})
            except OSError:
                pass
        if self.pid is not None:
            _kill_group(self.pid)
            self.pid = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> "Session":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    # -- cells

    def run(self, kind: str, label: str, source: str) -> CellOutcome:
        """Run one cell (``kind``: ``"student"``, ``"locked"`` or ``"test"``) within the limits."""
        if self.sock is None:
            return CellOutcome("died", detail=self.ending or "the runner is not running")
        start = time.monotonic()
        nonce = secrets.token_hex(16)
        try:
            self._send({"op": "cell", "kind": kind, "label": label, "source": source, "nonce": nonce})
        except OSError:
            return self._dead(start)
        deadline = min(start + self.limits.cell_timeout, self.deadline)
        try:
            reply = self._result(nonce, deadline)
            return CellOutcome(reply.get("status", "error"), reply, time.monotonic() - start)
        except _Died:
            return self._dead(start)
        except _Channel as error:
            self.close()
            return CellOutcome("channel", seconds=time.monotonic() - start, detail=str(error))
        except _Timeout:
            pass
        # over time: interrupt the cell unless the notebook's own limit is used up
        notebook_limit = time.monotonic() >= self.deadline - 0.01
        if not notebook_limit and self.pid is not None:
            _kill_group(self.pid, signal.SIGINT)
            try:
                reply = self._result(nonce, time.monotonic() + self.limits.interrupt_grace)
                return CellOutcome("timeout", reply, time.monotonic() - start, "interrupted after the cell time limit", True)
            except (_Died, _Timeout, _Channel):
                pass
        what = "the notebook time limit" if notebook_limit else "the cell time limit (it did not stop when interrupted)"
        self.close()
        return CellOutcome("timeout", seconds=time.monotonic() - start, detail=f"killed at {what}")

    def _dead(self, start: float) -> CellOutcome:
        ending = self.ending or "the runner ended"
        self.close()
        return CellOutcome("died", seconds=time.monotonic() - start, detail=ending)

    def _result(self, nonce: str, deadline: float) -> dict:
        message = self._receive(deadline)
        if message.get("op") != "result" or message.get("nonce") != nonce:
            raise _Channel("a message that is not the grader's reply arrived on the grader's channel")
        return message

    # -- framing

    def _send(self, obj: dict) -> None:
        assert self.sock is not None
        data = json.dumps(obj).encode()
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def _receive(self, deadline: float) -> dict:
        while True:
            if len(self._buffer) >= 4:
                (size,) = struct.unpack(">I", self._buffer[:4])
                if size > MAX_MESSAGE:
                    raise _Channel(f"a message of {size} bytes on the grader's channel")
                if len(self._buffer) >= 4 + size:
                    data, self._buffer = self._buffer[4:4 + size], self._buffer[4 + size:]
                    try:
                        message = json.loads(data.decode("utf-8"))
                    except ValueError:
                        raise _Channel("unreadable data on the grader's channel") from None
                    if not isinstance(message, dict):
                        raise _Channel("unreadable data on the grader's channel")
                    if message.get("op") == "exit":
                        self.ending = _describe_exit(message)
                        raise _Died(self.ending)
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout()
            if self.sock is None:
                raise _Died(self.ending)
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                raise _Timeout()
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self.ending = self.ending or "the runner ended without a word"
                raise _Died(self.ending)
            self._buffer += chunk


def _describe_exit(message: dict) -> str:
    if "signal" in message:
        sig = message["signal"]
        why = {
            "SIGKILL": " (killed: out of memory, or a time limit)",
            "SIGXCPU": " (the CPU-time limit)",
            "SIGXFSZ": " (the file-size limit)",
            "SIGSEGV": " (a crash in native code)",
            "SIGSYS": " (a refused system call)",
            "SIGABRT": " (aborted)",
        }.get(sig, "")
        return f"the notebook's process was killed by {sig}{why}"
    return f"the notebook's process exited with status {message.get('code')} (sys.exit/os._exit or a crash)"
