"""Problems in KernelBench's format, from any folder, with size presets.

A problem is a Python file defining `class Model(nn.Module)`, `get_inputs()` and
`get_init_inputs()`, with its sizes as module-level constants (KernelBench's layout, so a user's
KernelBench checkout works as is). A candidate defines `class ModelNew` with the same interface.

Sizes: KernelBench's shipped sizes need GBs (a median Level 1 footprint of 4.3 GB), so each
problem may carry presets that override its constants before `get_inputs` runs: a module-level
`PRESETS = {"cpu": {"N": 256}, "gpu": {...}}` (our problems) or a sidecar `<stem>.json` with the
same mapping (for unchanged KernelBench files). Without a preset for the requested size, the
`cpu` size is found by halving the largest size constant until inputs, parameters and output
hold at most 2^20 elements. A preset may also set `atol` and `rtol`.
"""

from __future__ import annotations

import ast
import json
import types
from dataclasses import dataclass, field
from pathlib import Path

from garagelab.core.errors import UserError
from garagelab.core.textfiles import read_user_text

CPU_ELEMENTS = 1 << 20
SIZES = ("cpu", "gpu", "full")  # full: the file's own constants
TOLERANCE = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 1e-2}


@dataclass(frozen=True)
class Problem:
    name: str
    source: str
    path: Path
    presets: dict = field(default_factory=dict)  # size -> {constant: value, "atol": .., "rtol": ..}

    def constants(self, size: str) -> dict:
        """The module-level constants a size overrides (tolerances left out); `cpu` without a
        preset is found by shrinking the file's own sizes."""
        if size not in SIZES:
            raise UserError(f"size {size!r}: choose {', '.join(SIZES)}")
        if size == "full":
            return {}
        if size not in self.presets:
            return shrink(self) if size == "cpu" else {}
        return {k: v for k, v in self.presets[size].items() if k not in ("atol", "rtol")}

    def tolerance(self, size: str, dtype: str = "float32") -> tuple[float, float]:
        preset = self.presets.get(size, {})
        default = TOLERANCE.get(dtype, 1e-4)
        return float(preset.get("atol", default)), float(preset.get("rtol", default))


def load_module(source: str, name: str, overrides: dict | None = None) -> types.ModuleType:
    """Execute a problem (or candidate) file as a module, with its constants overridden in the
    source before it runs, so that constants derived from them (`bias_shape = (OUT,)`) follow."""
    module = types.ModuleType(name)
    module.__file__ = f"<{name}>"
    exec(compile(with_constants(source, name, overrides or {}), f"<{name}>", "exec"), module.__dict__)
    return module


def _pieces(node: ast.Assign, source: str) -> list[tuple[str | None, str]] | None:
    """A top-level assignment as single ones, (name, value's source) in order: `a = b = 128`
    and `a, b = 16, 32` both assign two names (None for a target that is not a plain name).
    None where the values cannot be told apart (`a, b = sizes`)."""
    pieces = []
    value = ast.get_source_segment(source, node.value)
    for target in node.targets:
        if isinstance(target, ast.Tuple):
            if not isinstance(node.value, ast.Tuple) or len(node.value.elts) != len(target.elts):
                return None
            for element, part in zip(target.elts, node.value.elts, strict=True):
                name = element.id if isinstance(element, ast.Name) else None
                pieces.append((name, ast.get_source_segment(source, part)))
        else:
            pieces.append((target.id if isinstance(target, ast.Name) else None, value))
    return pieces


def with_constants(source: str, name: str, overrides: dict) -> str:
    """`source` with each top-level assignment of an overridden constant replaced by its new
    value; a statement that assigns several names (`height = width = 128`, `depth, height,
    width = 16, 32, 32`, `a = 1; b = 2`) is rewritten as one assignment per name on its line."""
    if not overrides:
        return source
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    edits, found = [], set()
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign):
            continue
        pieces = _pieces(node, source)
        names = {target.id for target in ast.walk(ast.Module(node.targets, [])) if isinstance(target, ast.Name)}
        if not names & set(overrides):
            continue
        if pieces is None or any(n is None for n, _ in pieces):
            statement = ast.get_source_segment(source, node)[:80]
            raise UserError(f"{name} line {node.lineno}: cannot set {sorted(names & set(overrides))[0]} in "
                            f"`{statement}`; give the sizes one assignment each")  # fmt: skip
        text = "; ".join(f"{n} = {overrides[n]!r}" if n in overrides else f"{n} = {v}" for n, v in pieces)
        span = (starts[node.lineno - 1] + _offset(lines[node.lineno - 1], node.col_offset),
                starts[node.end_lineno - 1] + _offset(lines[node.end_lineno - 1], node.end_col_offset))  # fmt: skip
        edits.append((span, text))
        found |= names & set(overrides)
    missing = sorted(set(overrides) - found)
    if missing:
        raise UserError(f"{name}: the preset sets {missing[0]}, which the problem does not define")
    for (start, end), text in reversed(edits):
        source = source[:start] + text + source[end:]
    return source


def _offset(line: str, utf8_offset: int) -> int:
    """ast's column offsets count UTF-8 bytes; the source is indexed by characters."""
    return len(line.encode()[:utf8_offset].decode(errors="ignore"))


def sized_source(problem: Problem, size: str) -> str:
    """The problem file with a size's constants written into it: a plain KernelBench file that
    other harnesses (KernelBench's own evaluation) run at that size."""
    return with_constants(problem.source, problem.name, problem.constants(size))


def _module_presets(source: str) -> dict:
    """The file's own `PRESETS = {...}` (a literal; the file is not run for it)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "PRESETS" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def load_problem(path: Path | str) -> Problem:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such problem file")
    source = read_user_text(path)
    if "class Model" not in source or "def get_inputs" not in source:
        raise UserError(f"{path}: not a KernelBench problem (needs class Model and get_inputs())")
    try:
        presets = _module_presets(source)
    except SyntaxError as exc:
        raise UserError(f"{path} line {exc.lineno}: {exc.msg}") from None
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            presets = {**presets, **json.loads(sidecar.read_text())}
        except json.JSONDecodeError as exc:
            raise UserError(f"{sidecar}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return Problem(path.stem, source, path, presets)


def load_folder(folder: Path | str) -> list[Problem]:
    """Every problem file in a folder (KernelBench's levelN/ or ours), in name order; a file
    that is not a usable problem is skipped (`scan_folder` says why)."""
    problems, skipped = scan_folder(folder)
    if not problems:
        reason = f" ({skipped[0][0].name}: {skipped[0][1]})" if skipped else ""
        raise UserError(f"{folder}: no problem files (*.py with class Model and get_inputs()){reason}")
    return problems


def scan_folder(folder: Path | str) -> tuple[list[Problem], list[tuple[Path, str]]]:
    """(the problems of a folder, the files skipped with their one-line reason)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder of problems")
    problems, skipped = [], []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            problems.append(load_problem(path))
        except UserError as exc:
            skipped.append((path, str(exc).removeprefix(f"{path}: ")))
    return problems, skipped


def footprint(problem: Problem, overrides: dict) -> int:
    """Elements in inputs, parameters and output at the given sizes, on PyTorch's meta device
    (shapes only: nothing is allocated or computed)."""
    import torch

    module = load_module(problem.source, problem.name, overrides)
    with torch.device("meta"):
        model = module.Model(*module.get_init_inputs())
        inputs = module.get_inputs()
        output = model(*inputs)
    tensors = [t for t in (*inputs, *model.parameters(), *_flatten(output)) if isinstance(t, torch.Tensor)]
    return sum(t.numel() for t in tensors)


def _flatten(value) -> list:
    return [x for item in value for x in _flatten(item)] if isinstance(value, list | tuple) else [value]


def _literal_sizes(source: str) -> dict[str, int]:
    """The top-level names assigned an integer literal (>= 2): the sizes. A name assigned
    anything else (`num_channels = embed_dim`, `bias_shape = (out_features,)`) follows them."""
    sizes: dict[str, int] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and (pieces := _pieces(node, source)):
            for name, value in pieces:
                literal = _int_literal(value)
                if name is not None and literal is not None and literal >= 2:
                    sizes[name] = literal
                elif name is not None:
                    sizes.pop(name, None)  # reassigned to something derived
    return sizes


_ARITHMETIC = (ast.Expression, ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)


def _int_literal(text: str | None) -> int | None:
    """The integer a literal or an arithmetic of literals (`2048 * 2`, `1 << 20`) stands for;
    None for anything that names something else."""
    try:
        tree = ast.parse(text or "", mode="eval")
    except SyntaxError:
        return None
    if not all(isinstance(node, _ARITHMETIC) for node in ast.walk(tree)):
        return None
    try:
        value = eval(compile(tree, "<size>", "eval"), {"__builtins__": {}})  # literals and operators only
    except (ArithmeticError, TypeError, ValueError):
        return None
    return value if type(value) is int else None


def shrink(problem: Problem, limit: int = CPU_ELEMENTS) -> dict:
    """Halve the largest integer size (>= 2) until the footprint fits in `limit` elements."""
    sizes = {k: v for k, v in _literal_sizes(problem.source).items() if not k.startswith("_")}
    overrides: dict = {}
    try:
        for _ in range(64):
            if footprint(problem, overrides) <= limit:
                return overrides
            candidates = {k: overrides.get(k, v) for k, v in sizes.items() if overrides.get(k, v) >= 2}
            if not candidates:
                break
            largest = max(candidates, key=candidates.get)
            overrides[largest] = candidates[largest] // 2
    except UserError:
        raise
    except Exception as exc:  # the problem's own code, at sizes it was not written for
        halved = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "its own sizes"
        raise UserError(f"{problem.name}: cannot shrink for the CPU (at {halved}: {type(exc).__name__}: "
                        f"{str(exc)[:120]}); give it a cpu preset") from None  # fmt: skip
    raise UserError(f"{problem.name}: cannot shrink to {limit} elements; give it a cpu preset")
