"""Static checks of a candidate before it runs: what a kernel must not do to pass.

The evolve lint already refuses imports outside the allow-list and eval/exec/open and dunder
tricks. These rules are about kernels (KernelBench's static checker and the hacks reported
against it); whether `forward` computes with PyTorch instead of its kernel is decided at run
time, from what it dispatches (verify.py), not from names here:

- `ModelNew` must exist and a kernel must be built: `load(...)` of C++ source (ours or
  `torch.utils.cpp_extension.load_inline`), or a `@triton.jit` function;
- no try/except (a fallback to the reference when the kernel fails);
- no assignment to an attribute of torch, triton or time (a patched op or clock: harmless to the
  verifier, which runs elsewhere, but never a kernel);
- no CUDA streams or events of its own (timing tricks).
"""

from __future__ import annotations

import ast

PATCHABLE = {"torch", "triton", "time", "tl"}


def check(source: str) -> list[str]:
    """The rules the candidate breaks, each as `line N: what` (empty: it may run)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: syntax error: {exc.msg}"]
    problems: list[str] = []
    if not any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in tree.body):
        problems.append("line 1: no class ModelNew")
    if not _builds_kernel(tree):
        problems.append("line 1: no kernel: build C++ with load(SOURCE) or write a @triton.jit function")
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', 1)}"
        if isinstance(node, ast.Try):
            problems.append(f"{where}: try/except (a fallback when the kernel fails is not allowed)")
        elif isinstance(node, ast.Assign | ast.AugAssign) and any(_patches(t) for t in _targets(node)):
            problems.append(f"{where}: assigns to an attribute of torch, triton or time")
        elif isinstance(node, ast.Attribute) and _dotted(node).startswith(
            ("torch.cuda.Stream", "torch.cuda.stream", "torch.cuda.Event")
        ):
            problems.append(f"{where}: {_dotted(node)} (streams and events of its own are timing tricks)")
    return problems


def _builds_kernel(tree: ast.Module) -> bool:
    return any(_is_load(n) or _is_triton_kernel(n) for n in ast.walk(tree))


def _is_load(node: ast.AST) -> bool:
    """A call of a C++ build (`load(...)`, `cpp.load(...)`, `load_inline(...)`)."""
    return isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] in ("load", "load_inline")


def _is_triton_kernel(node: ast.AST) -> bool:
    return isinstance(node, ast.FunctionDef) and any(_dotted(d).startswith("triton.") for d in node.decorator_list)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _targets(node: ast.Assign | ast.AugAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def _patches(target: ast.expr) -> bool:
    return isinstance(target, ast.Attribute) and _dotted(target).split(".")[0] in PATCHABLE
