"""The sandboxed side of ``course grade``: a warm "zygote" process and the per-submission runner.

This file is run as a script by :mod:`course_tools.grading.sandbox` (``python -I _runner.py zygote``),
never imported by the grader, and uses only the standard library until the zygote imports what the
notebooks need. The design, from the outside in:

* **Zygote.** One process per grading run imports IPython, torch, numpy, matplotlib and every
  module the assignment's locked and test cells import, warms them up, and takes a *pristine
  snapshot* of the interpreter (module attributes, classes, builtins, signal handlers). It never
  runs notebook code. For each submission it forks.
* **Forked child A** (still trusted) leaves the zygote's control channel, makes its own process
  group, and enters new mount, network, PID and IPC namespaces (through a user namespace when not
  root) where the kernel allows it, then forks **B**, PID 1 of the new namespace, and waits for it.
* **Runner B** receives the submission's configuration, then seals itself: private ``/tmp`` (the
  working directory, size-limited), a minimal ``/dev``, fresh ``/proc``, every other mount
  read-only, the submissions/output/solutions folders and known secret files hidden,
  ``setrlimit`` limits (address space, file size, CPU, open files, no core dumps, process count
  when not root), all capabilities dropped, ``no_new_privs`` and a seccomp filter that refuses
  ``fork``/``clone``/``exec``/``ptrace``/``socket``/``connect``. An audit hook (PEP 578) refuses
  tracing, ``gc`` introspection, raw-memory ``ctypes`` and process creation while a cell runs.
* **Cells** arrive one at a time over a socket; hidden tests are never in the process before their
  cell runs. Student cells run in IPython's namespace. Locked cells and test cells run through a
  separate path: their own namespace (a copy of the student's with every name a locked cell bound
  restored, and no student global shadowing a builtin), a private copy of the builtins, and, before
  each of them, every module attribute, class attribute, ``sys.modules`` entry, import hook,
  signal handler and tracer changed since the snapshot restored. After a test cell the same
  comparison tells whether something changed *while the test ran* (student code called by the
  test): that is reported as tampering and the grader gives the test no credit.
* **Replies** carry only a status (ok/error), an exception summary, the line that failed and, for
  partial credit, the test cell's final value when it is a real number. The grader decides the
  score from these replies, which must echo the request's random nonce.

The limits of what an in-process defence can do are documented in docs/grading.md.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import errno
import functools
import gc
import itertools
import json
import linecache
import math
import operator
import os
import platform
import resource
import signal
import socket
import struct
import sys
import time
import types
import warnings

MAX_MESSAGE = 64 << 20
MISSING = object()

# ------------------------------------------------------------------------------------------------
# pristine references, taken when this file starts (before any notebook code exists)

# The runner's own functions look builtins up in this private copy, not in the ``builtins`` module
# a notebook may change; the snapshot checks the copy too.
RUNNER_BUILTINS = dict(builtins.__dict__)
globals()["__builtins__"] = RUNNER_BUILTINS
THIS_MODULE = sys.modules[__name__]

_exec = builtins.exec
_eval = builtins.eval
_compile = builtins.compile
_type = builtins.type
_isinstance = builtins.isinstance
_callable = builtins.callable
_float = builtins.float
_len = builtins.len
_str = builtins.str
_repr = builtins.repr
_id = builtins.id
_getattr = builtins.getattr
_setattr = builtins.setattr
_delattr = builtins.delattr
_iter = builtins.iter
_tuple = builtins.tuple
_all = builtins.all
_map = builtins.map
_dict_values = dict.values
_chain = itertools.chain.from_iterable
_is_finite = math.isfinite
_ast_parse = ast.parse
_ast_Module = ast.Module
_ast_Expression = ast.Expression
_ast_Expr = ast.Expr
_gc_enable, _gc_disable, _gc_collect = gc.enable, gc.disable, gc.collect
_settrace, _setprofile, _gettrace, _getprofile = sys.settrace, sys.setprofile, sys.gettrace, sys.getprofile
_signal, _getsignal, _setitimer = signal.signal, signal.getsignal, signal.setitimer
_sigmask, _sigpending, _sigwait = signal.pthread_sigmask, signal.sigpending, signal.sigwait
_linecache = linecache.cache
_chdir = os.chdir
_exit = os._exit
_perf_counter = time.perf_counter
_json_dumps, _json_loads = json.dumps, json.loads
_pack, _unpack = struct.pack, struct.unpack
_ModuleType = types.ModuleType
_is = operator.is_
_SIGINT = {signal.SIGINT}
_FunctionType, _MethodType, _partial = types.FunctionType, types.MethodType, functools.partial
_isabs = os.path.isabs

# ------------------------------------------------------------------------------------------------
# messages: 4-byte big-endian length + UTF-8 JSON


def send(sock: socket.socket, obj: dict) -> None:
    data = _json_dumps(obj, default=_str, ensure_ascii=False).encode("utf-8", "replace")
    sock.sendall(_pack(">I", _len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("channel closed")
        chunks.append(chunk)
        got += _len(chunk)
    return b"".join(chunks)


def recv(sock: socket.socket) -> dict:
    (size,) = _unpack(">I", _recv_exact(sock, 4))
    if size > MAX_MESSAGE:
        raise EOFError(f"message of {size} bytes is too large")
    return _json_loads(_recv_exact(sock, size).decode("utf-8"))


def _short(text: object, limit: int = 500) -> str:
    try:
        text = _str(text)
    except BaseException:  # a student's __str__ may raise anything
        return "<unprintable>"
    return text if _len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------------
# Linux primitives (ctypes on libc); every one is optional and reported


class Linux:
    CLONE_NEWNS = 0x00020000
    CLONE_NEWIPC = 0x08000000
    CLONE_NEWUSER = 0x10000000
    CLONE_NEWPID = 0x20000000
    CLONE_NEWNET = 0x40000000
    MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
    MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE = 32, 1024, 2048, 4096, 8192
    MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 0x4000, 1 << 18, 1 << 21, 1 << 24
    PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 22, 24, 38
    PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
    SECCOMP_MODE_FILTER = 2

    # syscalls refused by the seccomp filter, per architecture
    SECCOMP_ARCH = {
        # AUDIT_ARCH_X86_64; clone, fork, vfork, execve, execveat, clone3, ptrace, socket, connect,
        # process_vm_readv, process_vm_writev, kexec_load, bpf, userfaultfd
        "x86_64": (0xC000003E, (56, 57, 58, 59, 322, 435, 101, 41, 42, 310, 311, 246, 321, 323)),
        # AUDIT_ARCH_AARCH64; clone, execve, execveat, clone3, ptrace, socket, connect,
        # process_vm_readv, process_vm_writev, kexec_load, bpf, userfaultfd
        "aarch64": (0xC00000B7, (220, 221, 281, 435, 117, 198, 203, 270, 271, 104, 280, 282)),
    }

    def __init__(self) -> None:
        self.libc = None
        if sys.platform.startswith("linux"):
            try:
                self.libc = ctypes.CDLL(None, use_errno=True)
            except OSError:
                self.libc = None

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"{what}: {os.strerror(code)}")

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0) -> None:
        if self.libc is None:
            raise OSError(errno.ENOSYS, "prctl: not Linux")
        self._check(
            self.libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0)),
            f"prctl({option})",
        )

    def unshare(self, flags: int) -> None:
        if self.libc is None:
            raise OSError(errno.ENOSYS, "unshare: not Linux")
        self._check(self.libc.unshare(ctypes.c_int(flags)), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
        if self.libc is None:
            raise OSError(errno.ENOSYS, "mount: not Linux")
        enc = lambda s: None if s is None else s.encode()  # noqa: E731
        self._check(
            self.libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
            f"mount {target}",
        )

    def drop_capabilities(self) -> None:
        """Empty the bounding, ambient, effective, permitted and inheritable capability sets."""
        try:
            last = int(open("/proc/sys/kernel/cap_last_cap").read().strip())
        except (OSError, ValueError):
            last = 40
        for cap in range(last + 1):
            try:
                self.prctl(self.PR_CAPBSET_DROP, cap)
            except OSError:
                pass
        try:
            self.prctl(self.PR_CAP_AMBIENT, self.PR_CAP_AMBIENT_CLEAR_ALL)
        except OSError:
            pass

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

        header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (Data * 2)()
        self._check(self.libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")

    def install_seccomp(self) -> str:
        """Refuse process creation, exec, ptrace and new sockets; returns what was installed."""
        machine = platform.machine().lower()
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
        if machine not in self.SECCOMP_ARCH:
            raise OSError(errno.ENOSYS, f"no seccomp filter for {machine}")
        arch, denied = self.SECCOMP_ARCH[machine]

        class Filter(ctypes.Structure):
            _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

        class Program(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

        LD_ABS, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06
        ALLOW, EPERM = 0x7FFF0000, 0x00050000 | errno.EPERM
        prog = [(LD_ABS, 0, 0, 4), (JEQ, 1, 0, arch), (RET, 0, 0, EPERM), (LD_ABS, 0, 0, 0)]
        if machine == "x86_64":  # the x32 ABI numbers syscalls from 0x40000000
            prog += [(JGE, 0, 1, 0x40000000), (RET, 0, 0, EPERM)]
        for nr in denied:
            prog += [(JEQ, 0, 1, nr), (RET, 0, 0, EPERM)]
        prog.append((RET, 0, 0, ALLOW))
        filters = (Filter * _len(prog))(*[Filter(*p) for p in prog])
        program = Program(_len(prog), filters)
        self.prctl(self.PR_SET_NO_NEW_PRIVS, 1)
        self._check(
            self.libc.prctl(ctypes.c_int(self.PR_SET_SECCOMP), ctypes.c_ulong(self.SECCOMP_MODE_FILTER), ctypes.byref(program), ctypes.c_ulong(0), ctypes.c_ulong(0)),
            "seccomp",
        )
        return f"seccomp ({machine}): no fork/clone/exec/ptrace/socket/connect"


LINUX = Linux()

# ------------------------------------------------------------------------------------------------
# the audit hook: refuses what no notebook cell needs while a cell runs


class SandboxDenied(PermissionError):
    """Raised (to the notebook's code) for an operation the grading sandbox does not allow."""


_DENIED_IN_CELLS = {
    "sys.settrace": "tracing",
    "sys.setprofile": "profiling",
    "sys._current_frames": "inspecting other frames",
    "sys._current_exceptions": "inspecting other frames",
    "gc.get_referrers": "walking the garbage collector",
    "gc.get_referents": "walking the garbage collector",
    "gc.get_objects": "walking the garbage collector",
    "ctypes.cdata": "raw memory access",
    "ctypes.cdata/buffer": "raw memory access",
    "ctypes.string_at": "raw memory access",
    "ctypes.wstring_at": "raw memory access",
    "ctypes.dlopen": "loading native libraries",
    "ctypes.dlsym": "loading native libraries",
    "ctypes.dlsym/handle": "loading native libraries",
    "os.fork": "starting processes",
    "os.forkpty": "starting processes",
    "os.system": "starting processes",
    "os.exec": "starting programs",
    "os.posix_spawn": "starting programs",
    "os.spawn": "starting programs",
    "subprocess.Popen": "starting programs",
    "pty.spawn": "starting programs",
    "socket.connect": "network access",
    "socket.bind": "network access",
    "socket.sendto": "network access",
    "socket.sendmsg": "network access",
    "socket.getaddrinfo": "network access",
    "socket.gethostbyname": "network access",
    "socket.gethostbyaddr": "network access",
    "webbrowser.open": "opening a browser",
}


class AuditState:
    """What the hook enforces: ``in_cell`` while notebook code runs; ``sealed`` once set up."""

    def __init__(self) -> None:
        self.sealed = False
        self.in_cell = False
        self.events: list[str] = []


def install_audit_hook(state: AuditState) -> None:
    denied = dict(_DENIED_IN_CELLS)
    add_event = state.events.append

    def hook(event, args, _denied=denied, _state=state, _add=add_event, _len=_len):
        if not _state.sealed:
            return
        if event == "sys.addaudithook":
            raise RuntimeError("the grading sandbox does not allow audit hooks")  # silently refused
        if not _state.in_cell:
            return
        what = _denied.get(event)
        if what is None and event == "object.__setattr__" and _len(args) > 1 and args[1] in ("__code__", "__defaults__", "__kwdefaults__"):
            # libraries set the defaults of functions they create (namedtuple); nothing but a
            # notebook's own functions may have their code replaced, and the grader's are untouchable
            try:
                filename = args[0].__code__.co_filename
            except BaseException:
                filename = ""
            grader = filename.startswith("<grader ") or filename == __file__
            if grader or (args[1] == "__code__" and not filename.startswith("<ipython-input-")):
                what = "rewriting a function's code or defaults"
        elif what is None and event == "sys._getframe" and args:
            filename = args[0].f_code.co_filename
            if filename.startswith("<grader ") or filename == __file__:
                what = "inspecting the grader's frames"
        elif what is None and event == "open" and args and _isinstance(args[0], str):
            path = args[0]
            if path.startswith("/proc/") and path.rstrip("/").rsplit("/", 1)[-1] in ("mem", "environ", "pagemap"):
                what = "reading process memory"
        if what is not None:
            if _len(state.events) < 50:
                _add(f"{event} ({what}) refused")
            raise SandboxDenied(f"the grading sandbox does not allow {what} ({event})")

    sys.addaudithook(hook)


# ------------------------------------------------------------------------------------------------
# the pristine snapshot of the interpreter


_DUNDERS_WATCHED = {
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__float__", "__int__",
    "__index__", "__abs__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
    "__truediv__", "__rtruediv__", "__neg__", "__len__", "__getitem__", "__iter__", "__contains__",
    "__hash__", "__call__", "__getattr__", "__getattribute__", "__instancecheck__", "__subclasscheck__",
    "__torch_function__", "__array_ufunc__", "__array_function__", "__repr__", "__str__", "__format__",
}
_NUMERIC_MODULES = {"math", "cmath", "numpy", "torch", "builtins"}
_UNWATCHED_MODULES = ("__main__", "sys", "__mp_main__")
# Packages whose attributes the snapshot watches (plus the top-level packages the assignment's
# locked and test cells import). Watching every loaded module (pandas, scipy, jupyter, ...) would
# make each check several times slower for code no test calls.
WATCHED_PACKAGES = {
    "builtins", "math", "cmath", "operator", "functools", "itertools", "collections", "numbers", "random",
    "statistics", "copy", "types", "fractions", "decimal", "numpy", "torch", "course_lib", "inspect",
    # what the runner itself uses between cells
    "json", "struct", "socket", "os", "posixpath", "time", "signal", "ast", "linecache", "warnings", "traceback",
    "io", "abc", "enum", "re", "codecs", "encodings",
}
_UNWATCHED_PREFIXES = tuple(f"torch.{name}" for name in (
    "cuda.", "sparse", "fx", "ao", "_higher_order_ops", "distributed", "jit", "_subclasses", "_dynamo", "_inductor",
    "onnx", "export", "_export", "testing._internal", "package", "profiler", "mps", "xpu", "mtia", "_functorch",
    "_prims", "_refs", "_decomp", "_library", "_logging", "_guards", "utils._sympy", "utils.benchmark",
    "_strobelight", "_lazy", "quantization", "nested", "masked", "signal", "compiler", "_export",
))


def _watched_module(name: str, packages: set[str]) -> bool:
    return name.split(".", 1)[0] in packages and not name.startswith(_UNWATCHED_PREFIXES)


def _watched_value(module_name: str, key: str, value: object) -> bool:
    """Module attributes the snapshot restores: functions, classes and submodules, plus public
    numeric constants of the core numeric modules (``math.pi``)."""
    if _isinstance(value, (_ModuleType, type)):
        return True
    try:
        if _callable(value):
            return True
    except BaseException:
        return False
    if module_name in _NUMERIC_MODULES and not key.startswith("_"):
        return _type(value) in (int, float, complex)
    return False


# Where any rebinding (other than a library wrapping the original) counts as tampering: the
# functions and classes test cells compare with.
_CORE_MODULES = {"builtins", "math", "cmath", "operator", "numpy", "numpy.testing", "torch", "torch.testing",
                 "torch.nn.functional", "torch.linalg", "torch.special", "torch._tensor", "torch.functional"}


def _made_by_notebook(value: object, depth: int = 0) -> bool:
    """Whether ``value`` is a function, method, class or instance created by notebook code (a
    cell, ``exec``/``eval``) rather than loaded from a library file. Reads no attribute through a
    notebook-defined ``__getattr__``."""
    t = _type(value)
    if depth > 4:
        return False
    if t is _FunctionType:
        return not _isabs(value.__code__.co_filename)
    if t is _MethodType:
        return _made_by_notebook(value.__func__, depth + 1)
    if t is _partial:
        return _made_by_notebook(value.func, depth + 1)
    cls = value if _isinstance(value, type) else t
    try:
        module = type.__dict__["__dict__"].__get__(cls).get("__module__")
    except BaseException:
        return False
    return module == "__main__"


def _wraps(new: object, old: object) -> bool:
    """``new`` is a library's wrapper of ``old`` (functools.wraps, functools.partial)."""
    for _ in range(4):
        if _type(new) is _partial:
            new = new.func
        elif _type(new) is _FunctionType:
            new = new.__dict__.get("__wrapped__", MISSING)
        else:
            return False
        if new is old:
            return True
    return False


def _suspicious(module: str, old: object, new: object) -> bool:
    """A change the grader treats as tampering (else: a library's own lazy change, undone quietly)."""
    if new is MISSING or _made_by_notebook(new):
        return True
    if module in _CORE_MODULES or module.startswith("course_lib") or module == "course_tools.grading._runner":
        return not _wraps(new, old)
    return False


class Snapshot:
    """Module dictionaries, class dictionaries, builtins, ``sys`` hooks and signal handlers.

    :meth:`differences` lists what changed, each entry prefixed with ``~`` when it looks like a
    library's own lazy change (a wrapper, or code loaded from a library file, outside the core
    modules) rather than the notebook's doing; both kinds are restored."""

    def __init__(self, packages: set[str] | None = None) -> None:
        self.packages = set(WATCHED_PACKAGES) | set(packages or ())
        self.modules: list[tuple[types.ModuleType, str, tuple, dict]] = []
        self.classes: list[tuple[type, tuple, dict]] = []
        self.sys_modules: dict[str, object] = {}
        self.builtins_master = types.MappingProxyType(dict(builtins.__dict__))
        self.builtins_copy = dict(builtins.__dict__)  # what locked and test cells see
        self.meta_path: list = []
        self.path_hooks: list = []
        self.path: list = []
        self.signals: dict[int, object] = {}
        self.recursion_limit = sys.getrecursionlimit()
        self.streams = (sys.stdout, sys.stderr, sys.stdin)
        self.warning_filters: list = []
        self.seen_modules: set[int] = set()
        self.seen_classes: set[int] = set()
        # the fast path: every watched dictionary's values, flattened, as last verified
        self.dicts: list[dict] = []
        self.flat: tuple = ()

    def _flatten(self) -> tuple:
        return _tuple(_chain(_map(_dict_values, self.dicts)))

    def take(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.add_modules([("course_tools.grading._runner", THIS_MODULE)], force=True)
            self.add_modules(list(sys.modules.items()))
        self.sys_modules = {name: module for name, module in sys.modules.items() if _watched_module(name, self.packages)}
        self.meta_path, self.path_hooks, self.path = list(sys.meta_path), list(sys.path_hooks), list(sys.path)
        self.warning_filters = list(warnings.filters)
        self.recursion_limit = sys.getrecursionlimit()
        self.streams = (sys.stdout, sys.stderr, sys.stdin)
        self.signals = {}
        for sig in signal.valid_signals():
            try:
                self.signals[sig] = _getsignal(sig)
            except (ValueError, OSError):
                pass

    def add_modules(self, items: list[tuple[str, object]], force: bool = False) -> None:
        for name, module in items:
            if not _isinstance(module, _ModuleType) or _id(module) in self.seen_modules:
                continue
            if not force and (name in _UNWATCHED_MODULES or not _watched_module(name, self.packages)):
                continue
            self.seen_modules.add(_id(module))
            try:
                namespace = module.__dict__
                watched = {key: value for key, value in namespace.items() if _watched_value(name, key, value)}
            except BaseException:
                continue
            self.modules.append((module, name, tuple(namespace.values()), watched))
            self.dicts.append(namespace)
            for value in watched.values():
                if _isinstance(value, type) and _id(value) not in self.seen_classes and _getattr(value, "__module__", None) == name:
                    self.seen_classes.add(_id(value))
                    try:
                        contents = dict(value.__dict__)
                        real = [d for d in gc.get_referents(value.__dict__) if _type(d) is dict]
                    except BaseException:
                        continue
                    self.classes.append((value, tuple(contents.values()), contents))
                    if _len(real) == 1:
                        self.dicts.append(real[0])
        self.flat = self._flatten()

    def add_new_modules(self) -> None:
        """Snapshot modules that appeared since (imported by a locked or test cell)."""
        new = [(name, m) for name, m in list(sys.modules.items()) if _isinstance(m, _ModuleType) and _id(m) not in self.seen_modules]
        if new:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.add_modules(new)
            for name, module in new:
                if _watched_module(name, self.packages):
                    self.sys_modules[name] = module

    def differences(self, restore: bool) -> list[str]:
        """What changed since the snapshot (and, with ``restore``, put it back)."""
        changed: list[str] = []
        note = changed.append
        # builtins: the module (library code) and the private copy (locked and test cells)
        master = self.builtins_master
        for namespace, label in ((builtins.__dict__, "builtins"), (self.builtins_copy, "builtins (grader copy)"),
                                 (RUNNER_BUILTINS, "builtins (runner copy)")):
            if _len(namespace) != _len(master) or any(namespace.get(k, MISSING) is not v for k, v in master.items()):
                for key, value in master.items():
                    if namespace.get(key, MISSING) is not value:
                        note(f"{label}.{key}")
                        if restore:
                            namespace[key] = value
                if label != "builtins":
                    for key in [k for k in namespace if k not in master]:
                        note(f"{label}.{key}")
                        if restore:
                            del namespace[key]
        now = self._flatten()
        if _len(now) == _len(self.flat) and _all(_map(_is, now, self.flat)):
            return self._rest(changed, restore)
        found_before = _len(changed)
        for module, name, values, watched in self.modules:
            namespace = module.__dict__
            current = _tuple(namespace.values())
            if _len(current) == _len(values) and _all(_map(_is, current, values)):
                continue
            for key, value in watched.items():
                if namespace.get(key, MISSING) is not value:
                    if name == "builtins":
                        continue  # reported above
                    note(("" if _suspicious(name, value, namespace.get(key, MISSING)) else "~") + f"{name}.{key}")
                    if restore:
                        namespace[key] = value
        for cls, values, contents in self.classes:
            try:
                namespace = cls.__dict__
                current = _tuple(namespace.values())
            except BaseException:
                continue
            if _len(current) == _len(values) and _all(_map(_is, current, values)):
                continue
            for key, value in contents.items():
                now = namespace.get(key, MISSING)
                if now is not value and (not key.startswith("_") or key in _DUNDERS_WATCHED or _callable_safe(value)):
                    mark = "" if _suspicious(_module_of(cls), value, now) else "~"
                    note(f"{mark}{cls.__module__}.{cls.__qualname__}.{key}")
                    if restore:
                        try:
                            _setattr(cls, key, value)
                        except BaseException:
                            pass
            for key in [k for k in namespace if k not in contents and k in _DUNDERS_WATCHED]:
                mark = "" if _suspicious(_module_of(cls), MISSING, namespace.get(key)) else "~"
                note(f"{mark}{cls.__module__}.{cls.__qualname__}.{key}")
                if restore:
                    try:
                        _delattr(cls, key)
                    except BaseException:
                        pass
        if restore or _len(changed) == found_before:  # the watched values are pristine again
            self.flat = self._flatten()
        return self._rest(changed, restore)

    def _rest(self, changed: list[str], restore: bool) -> list[str]:
        note = changed.append
        modules = sys.modules
        for name, module in self.sys_modules.items():
            now = modules.get(name, MISSING)
            if now is not module:
                fake = now is MISSING or _made_by_notebook(now) or (
                    _isinstance(now, _ModuleType) and now.__dict__.get("__spec__") is None)
                note(("" if fake else "~") + f"sys.modules[{name!r}]")
                if restore:
                    modules[name] = module
        for label, now, saved in (("sys.meta_path", sys.meta_path, self.meta_path), ("sys.path_hooks", sys.path_hooks, self.path_hooks)):
            if _len(now) != _len(saved) or not _all(_map(_is, now, saved)):
                added = [hook for hook in now if not any(hook is old for old in saved)]
                note(("" if not added or any(_made_by_notebook(h) for h in added) else "~") + label)
                if restore:
                    now[:] = saved
        if sys.path != self.path:
            if restore:
                sys.path[:] = self.path
        if _gettrace() is not None or _getprofile() is not None:
            note("sys.settrace/sys.setprofile")
            if restore:
                _settrace(None)
                _setprofile(None)
        for sig, handler in self.signals.items():
            try:
                now = _getsignal(sig)
                if now is not handler:
                    note(("" if _made_by_notebook(now) else "~") + f"signal handler {signal.Signals(sig).name}")
                    if restore:
                        _signal(sig, handler)
            except (ValueError, OSError, TypeError):
                pass
        if restore:
            for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
                try:
                    _setitimer(timer, 0)
                except OSError:
                    pass
            if sys.getrecursionlimit() != self.recursion_limit:
                sys.setrecursionlimit(self.recursion_limit)
            sys.stdout, sys.stderr, sys.stdin = self.streams
            warnings.filters[:] = self.warning_filters
            try:
                warnings._filters_mutated()
            except AttributeError:
                pass
        return changed


def _module_of(cls: type) -> str:
    try:
        module = type.__dict__["__dict__"].__get__(cls).get("__module__")
    except BaseException:
        return ""
    return module if _isinstance(module, str) else ""


def _callable_safe(value: object) -> bool:
    try:
        return _callable(value)
    except BaseException:
        return False


# ------------------------------------------------------------------------------------------------
# names bound at the top level of a cell


def bound_names(tree: ast.AST) -> set[str]:
    """Names a cell's top-level code binds (assignments, imports, def/class, for/with targets)."""
    names: set[str] = set()

    def targets(node: ast.AST) -> None:
        if _isinstance(node, ast.Name):
            names.add(node.id)
        elif _isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)
        elif _isinstance(node, ast.Starred):
            targets(node.value)

    def visit(node: ast.AST) -> None:
        if _isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if _isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if _isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    names.add(alias.asname or alias.name.split(".")[0])
            return
        if _isinstance(node, ast.Assign):
            for target in node.targets:
                targets(target)
        elif _isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets(node.target)
        elif _isinstance(node, (ast.For, ast.AsyncFor)):
            targets(node.target)
        elif _isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    targets(item.optional_vars)
        elif _isinstance(node, ast.NamedExpr):
            targets(node.target)
        elif _isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif _isinstance(node, ast.Delete):
            for target in node.targets:
                targets(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for statement in getattr(tree, "body", []):
        visit(statement)
    return names


# ------------------------------------------------------------------------------------------------
# the execution engine (inside the sealed runner)


def make_check(snapshot: Snapshot):
    """The housekeeping entry point: ``check(restore) -> changes``.

    It first heals the runner itself (its module namespace, its private builtins, its classes),
    then compares the rest of the interpreter with the snapshot. Everything it uses is bound as a
    keyword default when the runner starts, so patching the runner's module or classes from a
    notebook cannot switch it off (rewriting a runner function's code or defaults is refused by the
    audit hook)."""
    classes = [(cls, dict(cls.__dict__)) for cls in (Engine, Snapshot, AuditState, Linux, Prepared, SandboxDenied)]

    def check(restore, *, _ns=THIS_MODULE.__dict__, _saved=dict(THIS_MODULE.__dict__), _rb=RUNNER_BUILTINS,
              _rb_saved=dict(RUNNER_BUILTINS), _classes=tuple(classes), _snapshot=snapshot,
              _differences=Snapshot.differences, _items=dict.items, _list=list, _tsetattr=type.__setattr__,
              _tdelattr=type.__delattr__, _missing=MISSING):
        changed = []
        for ns, saved, label in ((_ns, _saved, "grader"), (_rb, _rb_saved, "grader builtins")):
            for key, value in _items(saved):
                if ns.get(key, _missing) is not value:
                    changed.append(f"{label}.{key}")
                    ns[key] = value
            for key in _list(ns):
                if key not in saved and key != "__warningregistry__":  # the warnings module adds that one
                    changed.append(f"{label}.{key}")
                    del ns[key]
        for cls, saved in _classes:
            namespace = cls.__dict__
            for key, value in _items(saved):
                if namespace.get(key, _missing) is not value:
                    changed.append(f"grader.{cls.__name__}.{key}")
                    _tsetattr(cls, key, value)
            for key in _list(namespace):
                if key not in saved:
                    changed.append(f"grader.{cls.__name__}.{key}")
                    _tdelattr(cls, key)
        return changed + _differences(_snapshot, restore)

    return check


class Engine:
    """Runs cells. Each cell has two phases: the *cell* phase, where notebook code may run (the
    audit hook's restrictions apply and SIGINT interrupts), and the *housekeeping* phase, which
    first puts the watched interpreter state back and only then builds the reply."""

    def __init__(self, shell, snapshot: Snapshot, audit: AuditState, workdir: str) -> None:
        self.shell = shell
        self.user_ns = shell.user_ns
        self.snapshot = snapshot
        self.audit = audit
        self.workdir = workdir
        self.trusted_ns: dict = {}
        self.trusted_bindings: dict[str, object] = {}
        self.student_files: dict[str, str] = {}  # code filename prefix -> cell label
        self.run_cell = _type(shell).run_cell
        self.counter = 0
        self.numeric_types = self._numeric_types()
        # bound now, before any notebook code: later class patches cannot redirect these
        self._check = make_check(snapshot)
        self._summary = self._exception_summary
        self._enter = self._enter_cell
        self._leave = self._leave_cell

    @staticmethod
    def _numeric_types():
        out = {bool: "bool", int: "int", float: "float"}
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            for name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool_"):
                t = _getattr(numpy, name, None)
                if _isinstance(t, type):
                    out[t] = "numpy"
        torch = sys.modules.get("torch")
        if torch is not None:
            out[torch.Tensor] = "tensor"
        return out

    # -- the two phases

    def _enter_cell(self) -> None:
        _chdir(self.workdir)
        self._drain_interrupts()
        self.audit.in_cell = True
        _sigmask(signal.SIG_UNBLOCK, _SIGINT)

    def _leave_cell(self) -> None:
        _sigmask(signal.SIG_BLOCK, _SIGINT)
        self.audit.in_cell = False
        self._drain_interrupts()

    @staticmethod
    def _drain_interrupts() -> None:
        """A time-limit SIGINT that arrived after its cell ended must not hit the next one."""
        try:
            while signal.SIGINT in _sigpending():
                _sigwait(_SIGINT)
        except (OSError, ValueError):
            pass

    def _exception_summary(self, error: BaseException, code_file: str | None) -> dict:
        """Runs in the cell phase: a notebook's exception may run its own ``__str__``."""
        name = _type(error).__name__
        try:
            if _type(error).__module__ not in ("builtins", "__main__", None):
                name = f"{_type(error).__module__}.{_type(error).__qualname__}"
        except BaseException:
            pass
        out = {"status": "error", "ename": _short(name, 200), "evalue": _short(error, 600)}
        test_line = student = None
        try:
            tb = error.__traceback__
            while tb is not None:
                filename = tb.tb_frame.f_code.co_filename
                if code_file is not None and filename == code_file:
                    test_line = tb.tb_lineno
                else:
                    for prefix, label in self.student_files.items():
                        if filename.startswith(prefix):
                            student = {"cell": label, "line": tb.tb_lineno}
                            break
                tb = tb.tb_next
        except BaseException:
            pass
        if test_line is not None:
            out["line"] = test_line
        if student is not None:
            out["student"] = student
        return out

    def _refresh_trusted_ns(self) -> None:
        """The namespace of a locked/test cell: the student's names (minus globals that shadow a
        builtin), with every name a locked cell bound restored, and private builtins."""
        ns = self.trusted_ns
        ns.clear()
        builtin_names = self.snapshot.builtins_master
        trusted = self.trusted_bindings
        for key, value in list(self.user_ns.items()):
            if key in builtin_names and key not in trusted:
                continue
            ns[key] = value
        ns.update(trusted)
        ns["__builtins__"] = self.snapshot.builtins_copy
        ns["__name__"] = "__main__"

    # -- cells

    def student(self, label: str, source: str) -> dict:
        count = self.shell.execution_count
        self.student_files[f"<ipython-input-{count}-"] = label
        reply = {"status": "error", "ename": "KeyboardInterrupt", "evalue": "time limit"}
        summary, leave = self._summary, self._leave
        try:
            try:
                self._enter()
                result = self.run_cell(self.shell, source, store_history=True, silent=False)
                error = result.error_before_exec or result.error_in_exec
                reply = {"status": "ok"} if error is None else summary(error, None)
            except BaseException as error:  # the time limit, or something escaping IPython
                reply = summary(error, None)
            _gc_collect()  # finalisers of the notebook's objects run now, inside the cell phase
        except BaseException:  # interrupted while summarising: the reply above stands
            pass
        finally:
            leave()
        changed = [c for c in self._check(True) if not c.startswith("~")]
        if changed:
            reply["restored"] = changed[:40]
        return reply

    def trusted(self, label: str, source: str, *, test: bool) -> dict:
        """A locked or test cell (already plain Python: the grader transforms %magics)."""
        self.counter += 1
        filename = f"<grader {'test' if test else 'cell'} {self.counter} {label}>"
        reply: dict = {"status": "ok"}
        try:
            tree = _ast_parse(source, filename=filename, mode="exec")
        except SyntaxError as error:  # a broken course cell (the validator should have caught it)
            reply.update({"status": "error", "ename": "SyntaxError", "evalue": _short(error)})
            return reply
        _linecache[filename] = (_len(source), None, source.splitlines(True), filename)
        own = bound_names(tree)
        last = None
        if test and tree.body and _isinstance(tree.body[-1], _ast_Expr):
            last = _ast_Expression(tree.body.pop().value)
        body = _compile(_ast_Module(body=tree.body, type_ignores=[]), filename, "exec")
        final = _compile(last, filename, "eval") if last is not None else None
        self._refresh_trusted_ns()
        ns = self.trusted_ns
        before = dict(ns)
        value = MISSING
        summary, leave, check = self._summary, self._leave, self._check
        _gc_disable()
        try:
            try:
                self._enter()
                _exec(body, ns)
                if final is not None:
                    value = _eval(final, ns)
            except BaseException as error:
                reply.update({"status": "error", "ename": "KeyboardInterrupt", "evalue": "time limit"})
                reply.update(summary(error, filename))
        except BaseException:  # interrupted while summarising: the reply above stands
            pass
        finally:
            leave()
            _gc_enable()
        # housekeeping: first the grader and the interpreter state, then the names
        tampered = [c for c in check(True) if not c.startswith("~")]
        for key, old in before.items():
            if key in own or key in ("__builtins__", "__name__"):
                continue
            if key in self.trusted_bindings and ns.get(key, MISSING) is not old:
                tampered.append(f"name {key!r}")
        if ns.get("__builtins__") is not self.snapshot.builtins_copy:
            tampered.append("__builtins__")
        self.snapshot.add_new_modules()
        for key in own:
            if key in ns:
                self.trusted_bindings[key] = ns[key]
                self.user_ns[key] = ns[key]
            else:
                self.trusted_bindings.pop(key, None)
                self.user_ns.pop(key, None)
        if tampered:
            reply["tampered" if test else "restored"] = tampered[:40]
        if value is not MISSING and reply["status"] == "ok":
            reply.update(self._value(value))
        return reply

    def _value(self, value: object) -> dict:
        """A test cell's final value: a number (partial credit) or just its type. Only exact
        builtin/numpy/torch types are read, so no notebook code runs here."""
        kind = self.numeric_types.get(_type(value))
        if value is None:
            return {}
        if kind is None:
            return {"value_type": _short(_type(value).__name__, 100)}
        try:
            if kind == "tensor":
                if value.numel() != 1 or value.is_complex():
                    return {"value_type": "tensor"}
                number = _float(value.detach().cpu().reshape(()).item())
            else:
                number = _float(value)
        except BaseException:
            return {"value_type": kind}
        return {"value": number if _is_finite(number) else _str(number), "value_type": kind}

    def run(self, message: dict) -> dict:
        kind = message.get("kind")
        label = _str(message.get("label", "?"))
        source = message.get("source", "")
        if not _isinstance(source, str):
            return {"status": "error", "ename": "GraderError", "evalue": "cell source is not text"}
        del self.audit.events[:]
        start = _perf_counter()
        if kind == "student":
            reply = self.student(label, source)
        elif kind in ("locked", "test"):
            reply = self.trusted(label, source, test=(kind == "test"))
        else:
            reply = {"status": "error", "ename": "GraderError", "evalue": f"unknown cell kind {kind!r}"}
        reply["seconds"] = round(_perf_counter() - start, 4)
        if self.audit.events:
            reply["events"] = list(self.audit.events[:20])
        return reply


# ------------------------------------------------------------------------------------------------
# the zygote


class Prepared:
    """What the zygote builds once and every forked runner inherits."""

    def __init__(self) -> None:
        self.shell = None
        self.snapshot = None
        self.namespaces = True
        self.audit = None
        self.import_errors: list[str] = []


def _prepare(config: dict) -> Prepared:
    prepared = Prepared()
    prepared.namespaces = bool(config.get("namespaces", True))
    for path in reversed(config.get("sys_path", [])):
        if path not in sys.path:
            sys.path.insert(0, path)
    threads = int(config.get("threads", 1))
    from traitlets.config import Config
    from IPython.core.interactiveshell import InteractiveShell

    ipython_config = Config()
    ipython_config.HistoryManager.enabled = False
    ipython_config.InteractiveShell.colors = "NoColor"
    ipython_config.InteractiveShell.xmode = "Plain"
    prepared.shell = InteractiveShell.instance(config=ipython_config)
    if hasattr(prepared.shell, "_orig_sys_modules_main_mod"):
        prepared.shell._orig_sys_modules_main_mod = None  # IPython's reference to this script's module
    for name in ["numpy", "torch", "matplotlib", *config.get("preimport", [])]:
        optional = name.startswith("?")  # "?a.b": a guess (``from a import b``), silently skipped
        name = name.lstrip("?")
        try:
            __import__(name)
        except BaseException as error:  # a missing module is the notebook's problem, reported
            if not optional:
                prepared.import_errors.append(f"{name}: {type(error).__name__}: {_short(error, 200)}")
    # warm up lazily initialised state so that it is part of the pristine snapshot
    try:
        import torch

        torch.set_num_threads(threads)
        x = torch.randn(16, 16, requires_grad=True)
        (x @ x).sum().backward()
        # first uses that make torch import (and patch) more of itself: do them before the snapshot
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
        for optimizer in (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), torch.optim.Adam(model.parameters()),
                          torch.optim.AdamW(model.parameters()), torch.optim.RMSprop(model.parameters())):
            model(torch.randn(8, 4)).pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad()
        torch.distributions.Normal(torch.zeros(2), torch.ones(2)).log_prob(torch.zeros(2))
        torch.distributions.MultivariateNormal(torch.zeros(2), torch.eye(2)).log_prob(torch.zeros(2))
        import torch._dynamo  # noqa: F401  (imported lazily by torch; it wraps torch.manual_seed)
    except BaseException as error:
        prepared.import_errors.append(f"torch warm-up: {_short(error, 200)}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        plt.figure()
        plt.close("all")
    except BaseException as error:
        prepared.import_errors.append(f"matplotlib warm-up: {_short(error, 200)}")
    try:
        prepared.shell.run_cell("pass", store_history=False, silent=True)
    except BaseException:
        pass
    prepared.audit = AuditState()
    install_audit_hook(prepared.audit)
    RUNNER_BUILTINS.clear()
    RUNNER_BUILTINS.update(builtins.__dict__)  # IPython added get_ipython, display, ...
    prepared.snapshot = Snapshot({name.lstrip("?").split(".")[0] for name in config.get("preimport", []) if not name.startswith("?")})
    prepared.snapshot.take()
    gc.collect()
    gc.freeze()  # what the zygote built is never collected again: fast collections in every runner
    sys.stdout.flush()
    sys.stderr.flush()
    return prepared


def zygote(control_fd: int) -> None:
    """Serve ``spawn`` requests on the control channel (a SOCK_SEQPACKET socket: one JSON object
    per message; a spawn request carries two file descriptors, the submission's channel and its log)."""
    control = socket.socket(fileno=control_fd)
    config = json.loads(control.recv(1 << 20).decode())
    started = time.perf_counter()
    prepared = _prepare(config)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked children are reaped automatically
    control.sendall(json.dumps({
        "op": "ready",
        "pid": os.getpid(),
        "import_errors": prepared.import_errors,
        "seconds": round(time.perf_counter() - started, 3),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }).encode())
    me = os.getpid()
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 1 << 16, 4)
        except (OSError, EOFError):
            break
        if not message:
            break
        try:
            request = json.loads(message.decode())
        except ValueError:
            request = {}
        if request.get("op") == "exit":
            break
        if request.get("op") != "spawn" or _len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as error:
            for fd in fds:
                os.close(fd)
            control.sendall(json.dumps({"op": "spawned", "error": str(error)}).encode())
            continue
        if pid == 0:
            try:
                _child_a(control, fds, prepared, me)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)
        try:
            control.sendall(json.dumps({"op": "spawned", "pid": pid}).encode())
        except OSError:
            break
    os._exit(0)


# ------------------------------------------------------------------------------------------------
# forked child A: namespaces, then B


def _count_processes(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as status:
                    for line in status:
                        if line.startswith("Uid:"):
                            count += int(line.split()[1]) == uid
                            break
            except (OSError, ValueError, IndexError):
                pass
    return count


def _enter_namespaces(uid: int, gid: int) -> dict:
    """Try the strongest isolation the kernel allows; report what was made."""
    base = Linux.CLONE_NEWNS | Linux.CLONE_NEWNET | Linux.CLONE_NEWPID | Linux.CLONE_NEWIPC
    attempts = [(base, False), (base | Linux.CLONE_NEWUSER, True)] if uid == 0 else [(base | Linux.CLONE_NEWUSER, True)]
    errors = []
    for flags, user in attempts:
        try:
            LINUX.unshare(flags)
        except OSError as error:
            errors.append(f"unshare{' (user namespace)' if user else ''}: {error.strerror}")
            continue
        if user:
            try:
                with open("/proc/self/setgroups", "w") as f:
                    f.write("deny")
                with open("/proc/self/uid_map", "w") as f:
                    f.write(f"0 {uid} 1")
                with open("/proc/self/gid_map", "w") as f:
                    f.write(f"0 {gid} 1")
            except OSError as error:
                errors.append(f"user namespace map: {error.strerror}")
        return {"namespaces": True, "user_namespace": user, "errors": errors}
    return {"namespaces": False, "user_namespace": False, "errors": errors}


def _child_a(control: socket.socket, fds: list[int], prepared: Prepared, zygote_pid: int) -> None:
    control.close()  # the zygote's channel must never be reachable from a submission
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    try:
        LINUX.prctl(Linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != zygote_pid:
        os._exit(71)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    sock_fd, log_fd = fds
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)
    sock = socket.socket(fileno=sock_fd)
    uid, gid = os.getuid(), os.getgid()
    nproc = _count_processes(uid) if uid != 0 else 0
    if LINUX.libc is None:
        ns = {"namespaces": False, "user_namespace": False, "errors": ["not Linux: no namespaces"]}
    elif not prepared.namespaces:
        ns = {"namespaces": False, "user_namespace": False, "errors": ["namespaces switched off (COURSE_GRADE_NAMESPACES=0)"]}
    else:
        ns = _enter_namespaces(uid, gid)
    ns.update({"outer_uid": uid, "nproc_in_use": nproc})
    if not ns["namespaces"]:
        _runner_b(sock, prepared, ns)
        os._exit(0)
    pid = os.fork()
    if pid == 0:
        _runner_b(sock, prepared, ns)
        os._exit(0)
    # A: wait for B, then say how it ended (B can no longer write anything after this)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            status = 0
            break
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        ending = {"op": "exit", "signal": name}
    else:
        ending = {"op": "exit", "code": os.WEXITSTATUS(status)}
    try:
        send(sock, ending)
    except OSError:
        pass
    os._exit(0)


# ------------------------------------------------------------------------------------------------
# runner B: seal, then serve cells


_MASKED_PROC = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/sysrq-trigger", "/proc/kmsg")
_READONLY_PROC = ("/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq")
_DEVICES = ("null", "zero", "full", "random", "urandom")


def _mountinfo() -> list[tuple[str, set[str]]]:
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if _len(parts) > 5:
                    point = parts[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
                    out.append((point, set(parts[5].split(","))))
    except OSError:
        pass
    return out


def _flags_of(options: set[str]) -> int:
    flags = 0
    for option, flag in (("nosuid", Linux.MS_NOSUID), ("nodev", Linux.MS_NODEV), ("noexec", Linux.MS_NOEXEC),
                         ("noatime", Linux.MS_NOATIME), ("nodiratime", Linux.MS_NODIRATIME), ("relatime", Linux.MS_RELATIME)):
        if option in options:
            flags |= flag
    return flags


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _seal_filesystem(config: dict, report: dict, pid_namespace: bool) -> str:
    """Inside the new mount namespace: fresh /proc, minimal /dev, private /tmp with the working
    directory, hidden paths, everything else read-only. Returns the working directory."""
    L = Linux
    problems = report.setdefault("problems", [])
    LINUX.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    if pid_namespace:
        try:
            LINUX.mount("proc", "/proc", "proc", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC)
            report["proc"] = "private"
        except OSError as error:
            problems.append(f"/proc not remounted ({error.strerror}): other processes stay visible")
    for path in _READONLY_PROC:
        try:
            LINUX.mount(path, path, None, L.MS_BIND | L.MS_REC)
        except OSError:
            pass
    for path in _MASKED_PROC:
        try:
            if os.path.exists(path):
                LINUX.mount("/dev/null", path, None, L.MS_BIND)
        except OSError:
            pass
    mounts = _mountinfo()
    disk_mb = int(config.get("disk_mb", 256))
    keep = [os.path.realpath(p) for p in [*config.get("keep", []), *sys.path, sys.prefix, sys.base_prefix]
            if _isinstance(p, str) and os.path.isabs(p) and os.path.exists(p)]
    # a private scratch file system (normally over /tmp) holds the working directory
    scratch = _choose_scratch(keep)
    LINUX.mount("tmpfs", scratch, "tmpfs", L.MS_NOSUID | L.MS_NODEV, f"size={disk_mb}m,mode=1777")
    report["scratch"] = scratch
    # a minimal /dev, built in the scratch space and moved over /dev
    staging = f"{scratch}/.dev"
    os.mkdir(staging)
    LINUX.mount("tmpfs", staging, "tmpfs", L.MS_NOSUID | L.MS_NOEXEC, "size=1m,mode=755")
    for name in _DEVICES:
        source = f"/dev/{name}"
        if os.path.exists(source):
            open(f"{staging}/{name}", "w").close()
            LINUX.mount(source, f"{staging}/{name}", None, L.MS_BIND)
    os.mkdir(f"{staging}/shm", 0o1777)
    LINUX.mount("tmpfs", f"{staging}/shm", "tmpfs", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC, "size=16m,mode=1777")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{staging}/{name}")
    LINUX.mount(staging, "/dev", None, L.MS_MOVE)
    os.rmdir(staging)
    for path in ("/tmp", "/var/tmp", "/run/shm"):
        if path != scratch and os.path.isdir(path) and not any(_under(k, path) for k in keep):
            try:
                LINUX.mount("tmpfs", path, "tmpfs", L.MS_NOSUID | L.MS_NODEV, "size=1m,mode=1777")
            except OSError:
                pass
    # hide: other students, the gradebook, the solutions, secrets
    hidden = []
    for path in config.get("hide", []):
        if any(_under(k, os.path.realpath(path)) for k in keep):
            problems.append(f"{path} not hidden: the course's Python environment is inside it")
            continue
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                LINUX.mount("tmpfs", path, "tmpfs", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC | L.MS_RDONLY, "size=4k,mode=000")
                hidden.append(path)
            elif os.path.isfile(path):
                LINUX.mount("/dev/null", path, None, L.MS_BIND)
                hidden.append(path)
        except OSError as error:
            problems.append(f"could not hide {path} ({error.strerror})")
    report["hidden"] = hidden
    # everything that was mounted before is read-only from now on
    failed = 0
    for point, options in mounts:
        if _under(point, scratch) or _under(point, "/dev") or (point == "/proc" and pid_namespace):
            continue
        if point.startswith("/proc/") and not any(_under(point, p) for p in _READONLY_PROC):
            continue
        try:
            LINUX.mount(None, point, None, L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY | _flags_of(options))
        except OSError:
            failed += 1
    report["read_only"] = f"{_len(mounts) - failed} of {_len(mounts)} mounts"
    if failed:
        problems.append(f"{failed} mount(s) could not be made read-only")
    workdir = f"{scratch}/work"
    os.mkdir(workdir, 0o700)
    return workdir


def _choose_scratch(keep: list[str]) -> str:
    """Where the private tmpfs goes: /tmp unless the course's Python lives there."""
    for candidate in ("/tmp", "/var/tmp", "/mnt", "/srv", "/media"):
        if os.path.isdir(candidate) and not os.path.islink(candidate) and not any(_under(k, candidate) for k in keep):
            return candidate
    raise OSError(errno.ENOENT, "no directory for the private scratch space (the environment lives in /tmp, /var/tmp, /mnt, /srv and /media)")


def _apply_limits(config: dict, ns: dict, report: dict) -> None:
    limits = {}
    mb = 1 << 20

    def setlimit(name: str, which: int, soft: int, hard: int | None = None) -> None:
        hard = soft if hard is None else hard
        try:
            _cur_soft, cur_hard = resource.getrlimit(which)
            if cur_hard != resource.RLIM_INFINITY:
                hard = min(hard, cur_hard)
                soft = min(soft, hard)
            resource.setrlimit(which, (soft, hard))
            limits[name] = soft
        except (ValueError, OSError) as error:
            report.setdefault("problems", []).append(f"limit {name} not set ({error})")

    memory = int(config.get("memory_mb", 4096)) * mb
    if hasattr(resource, "RLIMIT_AS"):
        setlimit("address_space_bytes", resource.RLIMIT_AS, memory)
    setlimit("file_size_bytes", resource.RLIMIT_FSIZE, int(config.get("file_size_mb", 64)) * mb)
    cpu = int(config.get("cpu_seconds", 600))
    setlimit("cpu_seconds", resource.RLIMIT_CPU, cpu, cpu + 5)
    setlimit("open_files", resource.RLIMIT_NOFILE, int(config.get("open_files", 512)))
    setlimit("core_bytes", resource.RLIMIT_CORE, 0)
    if hasattr(resource, "RLIMIT_NPROC"):
        if ns.get("outer_uid", 0) != 0:
            setlimit("processes", resource.RLIMIT_NPROC, ns.get("nproc_in_use", 0) + int(config.get("extra_processes", 8)))
        else:
            report.setdefault("notes", []).append("RLIMIT_NPROC does not bind root; the seccomp filter limits processes")
    report["limits"] = limits


def _runner_b(sock: socket.socket, prepared: Prepared, ns: dict) -> None:
    try:
        LINUX.prctl(Linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    try:
        config = recv(sock)
    except (EOFError, OSError, ValueError):
        os._exit(72)
    report: dict = {"namespaces": ns.get("namespaces", False), "user_namespace": ns.get("user_namespace", False)}
    problems = report.setdefault("problems", list(ns.get("errors", [])))
    try:
        workdir = None
        if ns.get("namespaces"):
            try:
                workdir = _seal_filesystem(config, report, pid_namespace=True)
                report["network"] = "none (new network namespace)"
            except OSError as error:
                problems.append(f"filesystem isolation failed: {error}")
                workdir = None
        if workdir is None:
            workdir = config["fallback_workdir"]
            report["network"] = "shared with the host (the seccomp filter still refuses sockets)"
            report["filesystem"] = "not isolated: the notebook can read what the grader's user can read"
        os.chdir(workdir)
        name = os.path.basename(config.get("notebook_name") or "submission.ipynb")
        data = config.get("notebook_text")
        if isinstance(data, str):
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
                f.write(data)
        env = {key: value for key, value in os.environ.items()}
        env.update({
            "HOME": workdir,
            "TMPDIR": report.get("scratch", workdir),
            "PWD": workdir,
            "IPYTHONDIR": os.path.join(workdir, ".ipython"),
            "MPLCONFIGDIR": os.path.join(workdir, ".matplotlib"),
            "XDG_CACHE_HOME": os.path.join(workdir, ".cache"),
            "COURSE_CACHE_DIR": os.path.join(workdir, ".cache", "course"),
        })
        env.update({str(k): str(v) for k, v in config.get("env", {}).items()})
        os.environ.clear()
        os.environ.update(env)
        _apply_limits(config, ns, report)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with an error instead
        engine = Engine(prepared.shell, prepared.snapshot, prepared.audit, workdir)
        # the time limit: SIGINT raises KeyboardInterrupt (C handler, nothing to tamper with); it is
        # blocked outside the cells and unblocked while a cell runs
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGINT)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        prepared.snapshot.signals[signal.SIGINT] = signal.default_int_handler
        prepared.snapshot.signals[signal.SIGXFSZ] = signal.SIG_IGN
        if os.geteuid() == 0 or ns.get("user_namespace"):
            try:
                LINUX.drop_capabilities()
                report["capabilities"] = "dropped"
            except OSError as error:
                problems.append(f"capabilities not dropped ({error.strerror})")
        try:
            report["seccomp"] = LINUX.install_seccomp()
        except OSError as error:
            problems.append(f"no seccomp filter ({error.strerror}): the notebook may start processes")
            report["seccomp"] = None
        prepared.audit.sealed = True
        report["workdir"] = workdir
    except BaseException as error:  # setting up must never leave an unsealed runner
        try:
            send(sock, {"op": "ready", "error": f"sandbox set-up failed: {type(error).__name__}: {_short(error, 300)}"})
        finally:
            os._exit(73)
    send(sock, {"op": "ready", "sandbox": report})
    _serve(sock, engine)


def _serve(sock: socket.socket, engine: Engine) -> None:
    run = engine.run  # bound before any notebook code exists
    while True:
        try:
            message = recv(sock)
        except (EOFError, OSError, ValueError):
            _exit(0)
        op = message.get("op")
        if op == "bye":
            _exit(0)
        if op != "cell":
            continue
        try:
            reply = run(message)
        except BaseException as error:  # a bug in the runner: say so rather than go silent
            reply = {"status": "error", "ename": "GraderError", "evalue": f"{_type(error).__name__}: {_short(error)}"}
        reply["op"] = "result"
        reply["nonce"] = message.get("nonce")
        try:
            send(sock, reply)
        except BaseException:
            _exit(75)


def main(argv: list[str]) -> None:
    if _len(argv) == 3 and argv[1] == "zygote":
        zygote(int(argv[2]))
    else:
        print("usage: _runner.py zygote FD  (started by course_tools.grading.sandbox)", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
