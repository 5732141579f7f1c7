"""A problem as an evolve task: what a candidate may import, the static rules, the verifier
bound to the problem, and the sandbox limits (PyTorch in every evaluation, g++ in some)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from garagelab.core.errors import UserError
from garagelab.evolve.sandbox import Limits
from garagelab.evolve.task import Task
from garagelab.kernels.problems import load_problem

BACKENDS = ("garagelab.kernels.backends.cpp", "garagelab.kernels.backends.cuda", "triton", "triton.language")
IMPORTS = ("torch", "torch.nn", "torch.nn.functional", "torch.utils.cpp_extension", "math", *BACKENDS)
# address space: importing torch and triton peaks at 0.8 GB; a candidate that allocates more than 6 GB
# fails with its own error instead of taking the machine's memory (on a GPU, CUDA maps far more: no limit)
# one CPU: eager PyTorch is timed on one thread, so the candidate gets one core, not one OpenMP thread
LIMITS = Limits(wall_s=180.0, cpu_s=300.0, memory_mb=6144, file_mb=64, processes=512, cpus=1)
# the CUDA driver fails in a private PID namespace, opens many files, and needs the host's
# /dev, /proc and /sys (untested in a filesystem view of our own: no GPU here to check it on)
GPU_LIMITS = replace(LIMITS, pid_namespace=False, filesystem=False, open_files=4096, memory_mb=0, cpus=0)


def default_device(size: str) -> str:
    """Where a size runs: `cpu` sizes on the CPU, `gpu` and `full` on the GPU."""
    return "cpu" if size == "cpu" else "cuda"


def gpu_available() -> bool:
    """Asked in a separate interpreter, so this process never initialises CUDA (the sandbox
    forks from it) nor loads the driver's libraries."""
    import subprocess
    import sys

    check = "import torch; print(torch.cuda.is_available())"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    return done.stdout.strip().endswith("True")


def build_task(
    problem: Path | str,
    size: str = "cpu",
    timing: bool = True,
    template: str = "",
    device: str | None = None,
    compile_baseline: bool | None = None,
    seeds: int = 3,
    rounds: int = 15,
) -> Task:
    """`device` defaults to the size's (`default_device`); `compile_baseline` (time
    `torch.compile` of the reference too) defaults to on for the GPU only: inductor takes about
    80 s per problem on 2 CPU cores."""
    spec = load_problem(problem)
    device = device or default_device(size)
    if device not in ("cpu", "cuda"):
        raise UserError(f"device {device!r}: choose cpu or cuda")
    if device == "cuda" and not gpu_available():
        raise UserError(f"{spec.name}: size {size} runs on a CUDA GPU and this machine has none; use --size cpu")
    compile_baseline = device == "cuda" if compile_baseline is None else compile_baseline
    return Task(
        name=f"kernels:{spec.name}",
        description=f"Write ModelNew, a faster kernel implementation of this PyTorch model:\n\n{spec.source}",
        template=template,
        function="ModelNew",
        serve="garagelab.kernels.serve:serve",
        judge="garagelab.kernels.verify:make_judge",
        allowed_imports=IMPORTS,
        limits=GPU_LIMITS if device == "cuda" else LIMITS,
        context={
            "problem": str(Path(problem).resolve()),
            "size": size,
            "timing": timing,
            "device": device,
            "compile_baseline": compile_baseline,
            "seeds": seeds,
            "rounds": rounds,
        },
        checks="garagelab.kernels.static:check",
        environment={
            # ninja (for load_inline) lives beside the interpreter, in the view as read-only
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            # no GPU: Triton kernels run in its interpreter (numpy, one program instance at a time)
            **({"TRITON_INTERPRET": "1"} if device == "cpu" else {}),
        },
    )
