"""Static checks of a candidate before it runs: what a kernel must not do to pass.

The evolve sandbox's lint already refuses imports outside the allow-list (so no threads, no
subprocesses, no files, no network), eval/exec/open and dunder tricks. These rules are about
kernels (KernelBench's static checker and the hacks reported against it):

- `ModelNew` must exist and a kernel must be built: `load(...)` of C++ source, or a
  `@triton.jit` function;
- no PyTorch compute in the candidate's own code (a `torch.matmul` "kernel" is a fallback):
  only allocation, shape and layout calls, and no `@`;
- no try/except (a fallback to the reference when the kernel fails);
- no assignment to an attribute of torch, triton or time (a patched timer or op);
- no CUDA streams or events of its own (timing tricks).
"""

from __future__ import annotations

import ast

# torch calls a kernel wrapper may make: allocation, shapes, layout, dtypes and devices
TORCH_ALLOWED = {
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like",
    "nn", "cuda", "arange", "tensor", "as_tensor", "float32", "float16", "bfloat16", "int32", "int64", "device", "Size",
    "Tensor", "no_grad", "inference_mode", "manual_seed", "is_tensor", "cdiv", "finfo", "iinfo",
}  # fmt: skip
TENSOR_METHODS_ALLOWED = {
    "contiguous", "view", "reshape", "size", "numel", "stride", "dim", "data_ptr", "is_contiguous", "to", "cuda",
    "cpu", "float", "half", "element_size", "unsqueeze", "squeeze", "flatten", "expand", "permute", "transpose",
    "new_empty", "new_zeros", "t", "shape", "dtype", "device", "fill_", "zero_", "copy_", "item", "tolist",
    "parameters", "named_parameters", "register_buffer", "register_parameter",
}  # fmt: skip
COMPUTE_METHODS = {
    "sum", "mean", "max", "min", "amax", "amin", "softmax", "log_softmax", "exp", "log", "relu", "sigmoid", "tanh",
    "matmul", "mm", "bmm", "addmm", "baddbmm", "einsum", "norm", "pow", "sqrt", "rsqrt", "cumsum", "prod",
    "clamp", "clamp_min", "clamp_max", "abs", "mul", "add", "sub", "div", "masked_fill", "where", "var", "std",
    "topk", "sort", "argmax", "argmin", "layer_norm", "gelu", "silu", "scaled_dot_product_attention", "conv1d",
    "conv2d", "linear", "dot", "outer", "square", "neg", "reciprocal",
}  # fmt: skip
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
    kernel_bodies = {id(n) for f in ast.walk(tree) if _is_triton_kernel(f) for n in ast.walk(f)}
    libraries = _libraries(tree)
    for node in ast.walk(tree):
        if id(node) in kernel_bodies:
            continue  # tl.* inside a Triton kernel is the kernel
        where = f"line {getattr(node, 'lineno', 1)}"
        if isinstance(node, ast.Try):
            problems.append(f"{where}: try/except (a fallback when the kernel fails is not allowed)")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            problems.append(f"{where}: the @ operator computes with PyTorch")
        elif isinstance(node, ast.Assign | ast.AugAssign) and any(_patches(t) for t in _targets(node)):
            problems.append(f"{where}: assigns to an attribute of torch, triton or time")
        elif isinstance(node, ast.Attribute) and _dotted(node.value) not in libraries:
            problems += _attribute_problems(node, where)
    return problems


def _builds_kernel(tree: ast.Module) -> bool:
    return any(_is_load(n) or _is_triton_kernel(n) for n in ast.walk(tree))


def _is_load(node: ast.AST) -> bool:
    """A call of the C++ backend's `load` (`load(...)` or `cpp.load(...)`)."""
    return isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] == "load"


def _libraries(tree: ast.Module) -> set[str]:
    """Names bound to a loaded C++ build (`lib = load(...)`, `self.lib = load(...)`): their
    functions are the kernels, whatever they are called."""
    return {
        _dotted(target)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and _is_load(node.value)
        for target in node.targets
    }


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


def _attribute_problems(node: ast.Attribute, where: str) -> list[str]:
    name = _dotted(node)
    root = name.split(".")[0]
    if name.startswith(("torch.cuda.Stream", "torch.cuda.stream", "torch.cuda.Event")):
        return [f"{where}: {name} (streams and events of its own are timing tricks)"]
    if name.startswith(("torch.nn.functional.", "F.")) or (root == "torch" and name.count(".") == 1
                                                             and node.attr not in TORCH_ALLOWED):  # fmt: skip
        return [f"{where}: {name} computes with PyTorch, not with the kernel"]
    if root not in ("torch", "triton", "tl", "math", "nn") and node.attr in COMPUTE_METHODS:
        return [f"{where}: .{node.attr}() computes with PyTorch, not with the kernel"]
    if root == "nn" and node.attr not in ("Module", "Parameter"):
        return [f"{where}: nn.{node.attr} is a PyTorch layer, not a kernel"]
    return []
