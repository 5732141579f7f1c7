"""Correct reference kernels for some of our problems: C++ ones run on the CPU, CUDA ones on a
GPU, Triton ones on both (in its interpreter when there is no GPU). Each file names its problem
(`# problem: 05_softmax`, a path under suite/) and where it runs (`# device: cpu|cuda|any`)."""

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
    device: str  # where it runs: "cpu", "cuda" or "any"

    @property
    def name(self) -> str:
        return self.path.stem


def header(path: Path, key: str, default: str = "") -> str:
    """The value of a `# key: value` line of a candidate file."""
    found = re.search(rf"^# {key}: (\S+)", path.read_text(), re.M)
    return found.group(1) if found else default


def references(device: str = "cpu") -> list[Reference]:
    """The reference kernels that run on `device` ("cpu" or "cuda")."""
    found = [
        Reference(path, SUITE / f"{header(path, 'problem')}.py", header(path, "device", "any"))
        for path in sorted(HERE.glob("[!_]*.py"))
    ]
    return [r for r in found if r.device in (device, "any")]
