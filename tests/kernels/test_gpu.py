"""The verifier on a real GPU (skipped without one): every reference kernel (CUDA and Triton,
compiled for the card) is accepted and timed with CUDA events at the `gpu` sizes, and the Triton
hacks are refused there for the same reasons as in the interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest

from garagelab.kernels.candidates import SUITE, Reference, header, references
from garagelab.kernels.task import build_task, gpu_available

pytestmark = pytest.mark.skipif(not gpu_available(), reason="needs a CUDA GPU")
HACKS = sorted((Path(__file__).resolve().parent / "hacks").glob("triton_*.py"))


@pytest.mark.parametrize("reference", references("cuda"), ids=lambda r: r.name)
def test_reference_kernels_are_accepted_and_timed(reference: Reference) -> None:
    outcome = build_task(reference.problem, "gpu", compile_baseline=False).evaluate(reference.path.read_text())
    assert outcome.ok, outcome.message
    metrics = outcome.metrics
    assert metrics["device"] == "cuda" and metrics["candidate_ms"] > metrics["floor_ms"] > 0
    assert outcome.score == metrics["speedup"] > 0


@pytest.mark.parametrize("path", HACKS, ids=lambda p: p.stem)
def test_triton_hacks_are_refused_on_the_gpu(path: Path) -> None:
    outcome = build_task(SUITE / f"{header(path, 'problem')}.py", "gpu").evaluate(path.read_text())
    assert outcome.failure == header(path, "expect"), outcome.message


def test_the_compiled_reference_is_timed_too() -> None:
    relu = next(r for r in references("cuda") if r.name == "relu_triton")
    outcome = build_task(relu.problem, "gpu", compile_baseline=True).evaluate(relu.path.read_text())
    assert outcome.ok and outcome.metrics["compile_ms"] > 0 and outcome.metrics["speedup_compile"] > 0
