"""Prompts: the first one from the problem, the next ones from the verifier's verdict.

NVIDIA's loop feeds the verifier's analysis back to the model; theirs was not published, so
ours says what a kernel engineer would want to know: the compiler's first errors, the rules
broken, where the output is wrong (how many elements, the largest error, the first index), the
shortcut the honesty checks caught, the PyTorch operations it fell back on, or, when it is
correct, how fast it is against eager PyTorch, with its interval.
"""

from __future__ import annotations

import re

from garagelab.evolve.sandbox import Outcome
from garagelab.kernels.problems import Problem

SYSTEM = (
    "You are an expert performance engineer who writes fast, correct compute kernels. Reply with one "
    "```python code block holding the complete file, nothing else."
)

CPP_RULES = """Write a Python file that defines class ModelNew(nn.Module), with the same __init__ and forward
arguments as Model, computing the same output with a C++ kernel:
- put `extern "C"` functions over float pointers and int64_t sizes in a string SOURCE;
- build it with `from garagelab.kernels.backends.cpp import load` and `lib = load(SOURCE)`;
- in forward, allocate outputs with torch.empty / torch.empty_like and call `lib.your_function(tensor, ..., n)`
  (tensors are passed as pointers and must be contiguous float32; ints become int64_t, floats float);
- PyTorch may only allocate and reshape: no torch compute ops, no tensor math methods, no @, no try/except;
- the kernel is built with g++ -O3 -march=native -fopenmp: vectorise and parallelise it (#pragma omp).
Imports allowed: torch, torch.nn, math and the C++ backend."""

GPU_RULES = """Write a Python file that defines class ModelNew(nn.Module), with the same __init__ and forward
arguments as Model, computing the same output on the GPU (inputs are float32 CUDA tensors) with either
- Triton: `import triton, triton.language as tl`, a `@triton.jit` kernel, launched as `kernel[grid](...)`; or
- CUDA C++: `__global__` kernels plus `extern "C"` launchers over float pointers and int64_t sizes in a string
  SOURCE, built with `from garagelab.kernels.backends.cuda import load` and `lib = load(SOURCE)`, called as
  `lib.your_launcher(tensor, ..., n)` (tensors pass as device pointers; launch on the default stream);
- allocate outputs with torch.empty(..., device=x.device) / torch.empty_like; PyTorch may only allocate and
  reshape: no torch compute ops, no tensor math methods, no @, no try/except, no streams or events.
Products in float32 must keep float32 accuracy (tl.dot(..., input_precision="ieee"), no TF32).
Imports allowed: torch, torch.nn, math, triton, triton.language and the CUDA backend."""


def rules(device: str) -> str:
    """How to write a kernel for the device: C++ on the CPU (the only backend timed there),
    Triton or CUDA on a GPU."""
    return GPU_RULES if device == "cuda" else CPP_RULES


def first_prompt(problem: Problem, device: str = "cpu") -> list[dict]:
    """The opening request: the reference model and the rules of the backend."""
    text = f"Here is a PyTorch model:\n\n```python\n{problem.source.strip()}\n```\n\n{rules(device)}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def verdict(outcome: Outcome) -> str:
    """What the verifier found, in words for the model."""
    kind, message, metrics = outcome.failure, outcome.message.strip(), outcome.metrics
    if outcome.ok:
        if not metrics.get("timed"):
            return "It is correct (not timed)."
        low, high = metrics["speedup_interval"]
        compiled = ""
        if "compile_ms" in metrics:
            compiled = f" and {metrics['speedup_compile']:.3g}x torch.compile ({metrics['compile_ms']:.4g} ms)"
        return (
            f"It is correct and runs in {metrics['candidate_ms']:.4g} ms, {metrics['speedup']:.3g}x eager PyTorch "
            f"({metrics['eager_ms']:.4g} ms; 90 % interval {low:.3g}-{high:.3g}x){compiled}; the verifier's own "
            f"protocol takes {metrics['floor_ms']:.3g} ms of each call. Make it faster while keeping it correct."
        )
    advice = {
        "compile": "It did not compile. The compiler's first errors (line:column: message):",
        "static": "It breaks the rules of the task:",
        "lint": "It uses something the sandbox does not allow:",
        "syntax": "It is not valid Python:",
        "wrong": "It computes the wrong answer. Check indexing, strides, boundaries and reductions:",
        "fallback": "It computes with PyTorch instead of its kernel (besides the kernel, forward may only allocate, "
        "copy and reshape):",
        "hack": "The verifier caught a shortcut; compute the real answer from the inputs on every call:",
        "timeout": "It ran too long:",
        "memory": "It used too much memory:",
        "crash": "It crashed (an out-of-bounds access in the kernel is the usual cause):",
        "exception": "It raised an exception:",
        "invalid": "It is not a usable candidate:",
    }.get(kind, f"It failed ({kind}):")
    return f"{advice}\n{_trim(message)}"


def refine_prompt(problem: Problem, source: str, outcome: Outcome, device: str = "cpu") -> list[dict]:
    """The next request: the reference, the attempt refined (the last one, or a parent), and
    what the verifier said of it."""
    text = (
        f"Here is a PyTorch model:\n\n```python\n{problem.source.strip()}\n```\n\n{rules(device)}\n\n"
        f"Your last attempt:\n\n```python\n{source.strip()}\n```\n\n{verdict(outcome)}\n\n"
        "Write the complete improved file."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


def extract_code(text: str) -> str:
    """The last fenced Python block of an answer (the whole answer if it has none)."""
    blocks = re.findall(r"```(?:python|py)?\s*\n(.*?)```", text, re.S)
    return (blocks[-1] if blocks else text).strip() + "\n"


def _trim(message: str, lines: int = 12, width: int = 2000) -> str:
    kept = [line for line in message.splitlines() if line.strip()][:lines]
    return "\n".join(kept)[:width]
