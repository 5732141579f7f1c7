"""The verifier on the trusted side of the sandbox: the honest kernels pass (parameters made in
__init__ included), the timing reports its interval, the CLI prints the verdict. The hostile
candidates (tests/kernels/hacks/) are the red team's: test_redteam.py."""

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


def test_a_timed_kernel_reports_its_speed() -> None:
    outcome = verify(CANDIDATES / "relu_cpp.py", timing=True)
    assert outcome.ok, outcome.message
    metrics = outcome.metrics
    assert metrics["candidate_ms"] > metrics["floor_ms"] > 0 and metrics["speedup"] == outcome.score
    low, high = metrics["speedup_interval"]
    assert low <= metrics["speedup"] <= high and metrics["rounds"] == 15
    assert metrics["dispatched"] and set(metrics["dispatched"]) <= {"empty", "empty_like", "empty_strided"}


def test_static_rules_name_the_line() -> None:
    problems = check("import torch\n\nclass ModelNew:\n    def forward(self, a, b):\n        return a @ b\n")
    assert any("no kernel" in p for p in problems)  # `@` is for the run-time fallback rule to judge
    ok = "from garagelab.kernels.backends.cpp import load\nlib = load('')\nclass ModelNew:\n    x = lib.relu(1)\n"
    assert check(ok) == []
    inline = "from torch.utils.cpp_extension import load_inline\nclass ModelNew:\n    lib = load_inline('m', '')\n"
    assert check(inline) == []
    assert any("try/except" in p for p in check(ok + "try:\n    pass\nexcept Exception:\n    pass\n"))


def test_cli_verify_and_problems(capsys) -> None:
    from garagelab.cli import main

    assert main(["kernels", "verify", str(CANDIDATES / "relu_cpp.py"), "--problem", "relu", "--no-timing"]) == 0
    assert "kernels:01_relu: correct" in capsys.readouterr().out
    assert main(["kernels", "verify", str(HERE / "hacks" / "zeros.py"), "--problem", "01_relu", "--no-timing"]) == 1
    assert "kernels:01_relu: wrong" in (out := capsys.readouterr().out) and "elements wrong" in out
    assert main(["kernels", "verify", "x.py", "--problem", "max"]) == 2
    assert main(["kernels", "problems"]) == 0
    assert "07_document_mask" in capsys.readouterr().out


@pytest.mark.slow
def test_a_load_inline_candidate_is_built_and_verified() -> None:
    """KernelBench's own way of writing C++ (torch/extension.h, pybind11, ninja): built in the
    sandbox (about 20 s on 2 cores), then verified like any other."""
    outcome = verify(HERE / "kernelbench" / "relu_load_inline.py")
    assert outcome.ok, outcome.message
    assert set(outcome.metrics["dispatched"]) <= {"empty_like", "empty", "contiguous"}


def test_a_half_precision_problem_gets_its_tolerance() -> None:
    """Inputs, outputs and the comparison in float16, at float16's tolerance (1e-2)."""
    problem = HERE / "kernelbench" / "relu_half.py"
    outcome = build_task(problem, timing=False).evaluate((CANDIDATES / "relu_triton.py").read_text())
    assert outcome.ok, outcome.message
    wrong = build_task(problem, timing=False).evaluate((HERE / "hacks" / "zeros.py").read_text())
    assert wrong.failure in ("wrong", "exception"), wrong.message


def test_the_speedup_interval_covers_the_true_median() -> None:
    """Calibration on rounds with a known median ratio (1.0): at 90 % nominal, at least 90 %."""
    import numpy as np

    from garagelab.kernels.verify import _interval

    rng = np.random.default_rng(3)
    for rounds in (6, 15, 30):
        intervals = [_interval(rng.lognormal(0.0, 0.2, rounds)) for _ in range(2000)]
        coverage = np.mean([low <= 1.0 <= high for low, high in intervals])
        assert coverage >= 0.9, (rounds, coverage)
