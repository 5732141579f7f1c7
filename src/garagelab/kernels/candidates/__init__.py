"""Correct reference kernels for some of our problems: C++ and Triton ones run here (Triton in
its interpreter when there is no GPU), CUDA ones need a GPU. Each file names its problem
(`# problem: 05_softmax`, a path under suite/) and, when it needs a GPU, `# device: cuda`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = HERE.parent / "suite"


@dataclass(frozen=True)
class Reference:
    path: Path
    problem: Path
    device: str  # what it needs: "cpu" runs anywhere, "cuda" needs a GPU

    @property
    def name(self) -> str:
        return self.path.stem


def header(path: Path, key: str, default: str = "") -> str:
    """The value of a `# key: value` line of a candidate file."""
    found = re.search(rf"^# {key}: (\S+)", path.read_text(), re.M)
    return found.group(1) if found else default


def references(gpu: bool = False) -> list[Reference]:
    """The reference kernels this machine can run (all of them with a GPU)."""
    found = [
        Reference(path, SUITE / f"{header(path, 'problem')}.py", header(path, "device", "cpu"))
        for path in sorted(HERE.glob("[!_]*.py"))
    ]
    return [r for r in found if gpu or r.device == "cpu"]
