"""A static look at the student's code, for the instructor (never used for scoring).

:func:`review_code` lists constructs worth a look: frame walking, tracers, import hooks,
low-level modules, monkeypatching of imported modules, classes that redefine comparisons or
conversions. It reads the source only; what the sandbox actually refused or undid is reported
separately, from the runner's own record.
"""

from __future__ import annotations

import ast

from course_tools.grading.assignment import as_python

__all__ = ["review_code"]


_SUSPICIOUS_ATTRS = {
    "f_back": "walks the interpreter's frames", "f_globals": "reads another frame's globals",
    "f_locals": "reads another frame's variables", "f_builtins": "reads another frame's builtins",
    "tb_frame": "walks the interpreter's frames", "gi_frame": "walks the interpreter's frames",
    "cr_frame": "walks the interpreter's frames", "__globals__": "reaches into a function's globals",
    "__closure__": "reaches into a function's closure", "__code__": "rewrites or inspects code objects",
    "__builtins__": "changes the builtins", "__subclasses__": "walks the class hierarchy",
    "_getframe": "walks the interpreter's frames", "currentframe": "walks the interpreter's frames",
    "settrace": "installs a tracer", "setprofile": "installs a profiler", "addaudithook": "installs an audit hook",
    "meta_path": "changes the import system", "input_transformers_cleanup": "rewrites cells before they run",
    "input_transformers_post": "rewrites cells before they run", "ast_transformers": "rewrites cells before they run",
    "setitimer": "sets a timer signal", "alarm": "sets a timer signal", "_exit": "ends the process",
}
_SUSPICIOUS_MODULES = {"ctypes", "gc", "builtins", "__builtin__", "_thread", "signal", "subprocess", "socket", "multiprocessing", "pty", "importlib"}
_MAGIC_DUNDERS = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__float__", "__int__",
                  "__index__", "__abs__", "__torch_function__", "__array_ufunc__", "__array_function__",
                  "__instancecheck__", "__subclasscheck__"}
_SUSPICIOUS_STRINGS = ("f_back", "__globals__", "__builtins__", "_getframe", "tb_frame", "ctypes")


def review_code(label: str, source: str, protected: set[str] = frozenset()) -> list[str]:
    """Constructs in a student cell an instructor may want to look at (never used for scoring):
    frame walking, tracers, import hooks, low-level modules, assigning attributes of imported
    modules (monkeypatching), classes that redefine comparisons or conversions."""
    try:
        tree = ast.parse(as_python(source))
    except SyntaxError:
        return []
    found: list[str] = []
    modules: set[str] = set(protected)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        what = None
        if isinstance(node, ast.Attribute) and node.attr in _SUSPICIOUS_ATTRS:
            what = f"{_SUSPICIOUS_ATTRS[node.attr]} (.{node.attr})"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            bad = [n for n in names if n.split(".")[0] in _SUSPICIOUS_MODULES]
            if bad:
                what = f"imports {', '.join(bad)}"
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                base = target
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                if isinstance(target, ast.Attribute) and isinstance(base, ast.Name) and base.id in modules:
                    what = f"changes {ast.unparse(target)} (monkeypatching a module the tests may use)"
                elif isinstance(target, ast.Subscript) and isinstance(base, ast.Name) and base.id in ("sys", "globals"):
                    what = f"changes {ast.unparse(target)}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("setattr", "delattr") and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in modules:
                what = f"{node.func.id}() on the module {node.args[0].id} (monkeypatching)"
            elif node.func.id in ("globals", "vars") and not node.args and node.func.id == "globals":
                what = "uses globals()"
            elif node.func.id in ("exec", "eval", "compile", "__import__"):
                what = f"calls {node.func.id}()"
        elif isinstance(node, ast.ClassDef):
            dunders = sorted({n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name in _MAGIC_DUNDERS})
            if dunders:
                what = f"class {node.name} redefines {', '.join(dunders)} (objects that fool comparisons?)"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            hits = [s for s in _SUSPICIOUS_STRINGS if s in node.value]
            if hits:
                what = f"a string naming {hits[0]!r}"
        if what:
            found.append(f"{label} line {line}: {what}")
    return list(dict.fromkeys(found))
