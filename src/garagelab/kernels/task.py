"""A problem as an evolve task: what a candidate may import, the static rules, the verifier
bound to the problem, and the sandbox limits (PyTorch in every evaluation, g++ in some)."""

from __future__ import annotations

from pathlib import Path

from garagelab.evolve.sandbox import Limits
from garagelab.evolve.task import Task
from garagelab.kernels.problems import load_problem

IMPORTS = ("torch", "math", "garagelab.kernels.backends.cpp")  # triton joins with its backend
LIMITS = Limits(wall_s=180.0, cpu_s=300.0, memory_mb=0, file_mb=64, processes=512)  # torch maps GBs it never uses


def build_task(problem: Path | str, size: str = "cpu", timing: bool = True, template: str = "") -> Task:
    spec = load_problem(problem)
    return Task(
        name=f"kernels:{spec.name}",
        description=f"Write ModelNew, a faster kernel implementation of this PyTorch model:\n\n{spec.source}",
        template=template,
        function="ModelNew",
        evaluator="garagelab.kernels.verify:make_verifier",
        allowed_imports=IMPORTS,
        limits=LIMITS,
        context={"problem": str(Path(problem).resolve()), "size": size, "timing": timing},
        checks="garagelab.kernels.static:check",
    )
