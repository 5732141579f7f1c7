"""The verifier in the real sandbox: correct kernels pass, every hostile one is refused for
the reason it cheats (tests/kernels/hacks/: one file per trick, its expected verdict inside)."""

from __future__ import annotations

from pathlib import Path

import pytest

from garagelab.kernels.candidates import Reference, header, references
from garagelab.kernels.static import check
from garagelab.kernels.task import build_task

HERE = Path(__file__).resolve().parent
SUITE = HERE.parents[1] / "src" / "garagelab" / "kernels" / "suite"
CANDIDATES = SUITE.parent / "candidates"


def verify(path: Path, timing: bool = False):
    task = build_task(SUITE / f"{header(path, 'problem')}.py", timing=timing)
    return task.evaluate(path.read_text())


@pytest.mark.parametrize("reference", references(), ids=lambda r: r.name)
def test_correct_kernels_are_accepted(reference: Reference) -> None:
    """C++ kernels run natively, Triton ones in its interpreter (no GPU here)."""
    outcome = build_task(reference.problem, timing=False).evaluate(reference.path.read_text())
    assert outcome.ok, outcome.message
    assert outcome.metrics["relative_error"] < 1e-5 and not outcome.metrics["degenerate"]


def test_interpreted_triton_is_verified_but_not_timed() -> None:
    outcome = verify(CANDIDATES / "relu_triton.py", timing=True)
    assert outcome.ok and outcome.score == 0.0, outcome.message
    assert outcome.metrics["interpreted"] and not outcome.metrics["timed"]


@pytest.mark.parametrize("path", sorted((HERE / "hacks").glob("*.py")), ids=lambda p: p.stem)
def test_every_hack_is_refused_for_its_reason(path: Path) -> None:
    outcome = verify(path)
    assert outcome.failure == header(path, "expect"), outcome.message


def test_a_timed_kernel_reports_its_speed() -> None:
    outcome = verify(CANDIDATES / "relu_cpp.py", timing=True)
    assert outcome.ok, outcome.message
    metrics = outcome.metrics
    assert metrics["candidate_ms"] > metrics["floor_ms"] > 0 and metrics["speedup"] == outcome.score


def test_static_rules_name_the_line() -> None:
    problems = check("import torch\n\nclass ModelNew:\n    def forward(self, a, b):\n        return a @ b\n")
    assert "line 5: the @ operator computes with PyTorch" in problems
    assert any("no kernel" in p for p in problems)
    # a loaded library's functions may be called anything, even relu
    ok = "from garagelab.kernels.backends.cpp import load\nlib = load('')\nclass ModelNew:\n    x = lib.relu(1)\n"
    assert check(ok) == []


def test_cli_verify_and_problems(capsys) -> None:
    from garagelab.cli import main

    assert main(["kernels", "verify", str(CANDIDATES / "relu_cpp.py"), "--problem", "relu", "--no-timing"]) == 0
    assert "kernels:01_relu: correct" in capsys.readouterr().out
    assert main(["kernels", "verify", str(HERE / "hacks" / "in_place.py"), "--problem", "01_relu"]) == 1
    assert "changed its inputs" in capsys.readouterr().out
    assert main(["kernels", "verify", "x.py", "--problem", "max"]) == 2
    assert main(["kernels", "problems"]) == 0
    assert "07_document_mask" in capsys.readouterr().out
