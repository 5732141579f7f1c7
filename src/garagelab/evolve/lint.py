"""The cheap first filter on a candidate's source, before anything runs.

Imports only from the task's allow-list, by exact module name (`jax.numpy` allows neither
`jax.version` nor `jax._src.api`); attribute chains from an imported module may reach only
that module's own public submodules (`jax.version.os`, `torch.os`, `from torch import sys`,
`np.ctypeslib` are refused: a module that re-exports `os` is not a way out); no `open`,
`exec`, `eval`, `compile`, `__import__`, `getattr`-family, `globals`, `exit`...; no dunder names
or attributes; no `global`/`nonlocal`. A task may refuse more names (`forbidden`).

It is a filter, not the wall: aliasing (`m = jax; m.version.os`) and values returned by calls
are beyond a static check. The wall is the process the candidate runs in (isolation.py) and
the trust boundary (only data leaves it: judge.py).
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import types

FORBIDDEN_CALLS = frozenset(
    {
        "open",
        "exec",
        "eval",
        "compile",
        "__import__",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "help",
        "memoryview",
        "classmethod",
        "staticmethod",
        "type",
    }
)
# submodules of an allowed package that lead to the machine (foreign functions, file and
# process helpers, test and build tooling), refused even though they sit under an allowed name
REFUSED_SUBMODULES = frozenset({"ctypeslib", "f2py", "distutils", "testing", "hub", "multiprocessing", "distributed"})
_DANGEROUS = frozenset(id(getattr(builtins, name)) for name in FORBIDDEN_CALLS if hasattr(builtins, name))


def lint(source: str, allowed_imports: tuple[str, ...], forbidden: tuple[str, ...] = ()) -> list[str]:
    """Why the candidate may not run (empty if it may)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"syntax error at line {exc.lineno}: {exc.msg}"]
    except (ValueError, RecursionError, MemoryError, SystemError) as exc:  # null bytes, absurd nesting
        return [f"syntax error: the program cannot be parsed ({type(exc).__name__})"]
    allowed = tuple(allowed_imports)
    banned = set(forbidden)
    problems: list[str] = []
    imported: dict[str, str] = {}  # a name an import binds -> the dotted path it names

    def note(problem: str) -> None:
        if problem not in problems:
            problems.append(problem)

    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in allowed:
                    note(f"line {line}: import of {alias.name} (allowed: {', '.join(allowed)})")
                elif alias.asname:
                    imported[alias.asname] = alias.name
                else:
                    imported[alias.name.split(".")[0]] = alias.name.split(".")[0]
                if set(alias.name.split(".")) & banned:
                    note(f"line {line}: use of {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "") not in allowed:
                note(f"line {line}: import from {'.' * node.level}{node.module or ''}")
                continue
            for alias in node.names:
                path = f"{node.module}.{alias.name}"
                if alias.name == "*":
                    note(f"line {line}: import * from {node.module}")
                elif alias.name in banned:
                    note(f"line {line}: use of {alias.name}")
                elif why := _unreachable(path, allowed):
                    note(f"line {line}: {path} {why}")
                else:
                    imported[alias.asname or alias.name] = path
        elif isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) in banned:
            note(f"line {line}: use of {getattr(node, 'id', getattr(node, 'attr', ''))}")
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN_CALLS or _dunder(node.id)):
            note(f"line {line}: use of {node.id}")
        elif isinstance(node, ast.Attribute) and _dunder(node.attr):
            note(f"line {line}: attribute {node.attr}")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            note(f"line {line}: {type(node).__name__.lower()} statement")
        path = _dotted(node, imported) if isinstance(node, ast.Attribute) else ""
        if path and (why := _unreachable(path, allowed)):
            note(f"line {line}: {path} {why}")
    return problems


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and name != "__init__"  # super().__init__() is fine


def _dotted(node: ast.Attribute, imported: dict[str, str]) -> str:
    """`a.b.c` as the dotted path it names when `a` is a name an import bound ("" otherwise)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in imported:
        return ""
    return ".".join([imported[node.id], *reversed(parts)])


def _within(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in allowed)


@functools.lru_cache(maxsize=4096)
def _unreachable(path: str, allowed: tuple[str, ...]) -> str:
    """Why the object at dotted `path` (rooted at an imported module) is out of bounds ("" if
    it is not, or if it does not resolve: that is the program's own error at run time)."""
    root, *rest = path.split(".")
    try:
        value = importlib.import_module(root)
    except Exception:
        return ""
    so_far = root
    for part in rest:
        so_far += "." + part
        if part.startswith("_"):
            return f"reaches the private name {part}"
        try:
            value = getattr(value, part)
        except Exception:
            return ""
        if isinstance(value, types.ModuleType):
            name = value.__name__
            if name == so_far and any(a.startswith(so_far + ".") for a in allowed):
                continue  # a package on the way to an allowed module
            if not _within(name, allowed) or set(name.split(".")[1:]) & REFUSED_SUBMODULES:
                return f"reaches the module {name}, which is not allowed"
        elif id(value) in _DANGEROUS:
            return f"reaches the builtin {part}"
    return ""
