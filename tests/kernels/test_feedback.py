"""The prompts the loop sends: built from real verdicts of the verifier."""

from __future__ import annotations

from pathlib import Path

from garagelab.evolve.sandbox import Outcome
from garagelab.kernels.feedback import extract_code, first_prompt, refine_prompt, verdict
from garagelab.kernels.problems import load_problem
from garagelab.kernels.task import build_task

HERE = Path(__file__).resolve().parent
RELU = HERE.parents[1] / "src" / "garagelab" / "kernels" / "suite" / "01_relu.py"
GOOD = (RELU.parents[1] / "candidates" / "relu_cpp.py").read_text()


def judge(source: str, timing: bool = False) -> Outcome:
    return build_task(RELU, timing=timing).evaluate(source)


def test_compile_errors_come_back_with_their_lines() -> None:
    outcome = judge(GOOD.replace("out[i] =", "out[i] = undefined_name +"))
    assert outcome.failure == "compile"
    text = verdict(outcome)
    assert text.startswith("It did not compile") and "undefined_name" in text and "\n4:46: " in text


def test_wrong_and_hack_verdicts_say_where() -> None:
    wrong = verdict(judge((HERE / "hacks" / "zeros.py").read_text()))
    assert "wrong answer" in wrong and "first at index" in wrong
    hack = verdict(judge((HERE / "hacks" / "hard_coded_shape.py").read_text()))
    assert "shortcut" in hack and "second size" in hack
    fallback = verdict(judge((HERE / "hacks" / "fallback_arithmetic.py").read_text()))
    assert "computes with PyTorch" in fallback and "aten::mul" in fallback


def test_a_correct_kernel_is_told_its_speed() -> None:
    text = verdict(judge(GOOD, timing=True))
    assert "correct and runs in" in text and "x eager PyTorch" in text


def test_prompts_carry_the_problem_the_attempt_and_the_verdict() -> None:
    problem = load_problem(RELU)
    opening = first_prompt(problem)[1]["content"]
    assert "class Model" in opening and 'extern "C"' in opening
    outcome = Outcome(None, failure="wrong", message="3 of 10 elements wrong")
    follow = refine_prompt(problem, GOOD, outcome)[1]["content"]
    assert "lib.relu" in follow and "3 of 10 elements wrong" in follow
    assert extract_code("Sure:\n```python\nx = 1\n```\nand\n```python\ny = 2\n```") == "y = 2\n"
    assert extract_code("x = 3") == "x = 3\n"


def test_prompts_follow_the_device() -> None:
    problem = load_problem(RELU)
    cpu, gpu = first_prompt(problem)[1]["content"], first_prompt(problem, "cuda")[1]["content"]
    assert "backends.cpp import load" in cpu and "@triton.jit" not in cpu
    assert "@triton.jit" in gpu and "backends.cuda import load" in gpu and "input_precision" in gpu
    timed = Outcome(1.2, {"timed": True, "candidate_ms": 1.0, "eager_ms": 1.2, "floor_ms": 0.1, "speedup": 1.2,
                          "speedup_interval": [1.1, 1.3], "compile_ms": 0.9, "speedup_compile": 0.9})  # fmt: skip
    assert "0.9x torch.compile" in verdict(timed)
