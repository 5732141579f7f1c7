"""The closed loop end to end: the offline tuner on a seed kernel, the CLI, and the local model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garagelab.cli import main
from garagelab.evolve.database import ProgramDB
from garagelab.kernels.loop import LoopConfig, ModelProposer, TuneProposer, run_loop
from garagelab.llm.server import available

SRC = Path(__file__).resolve().parents[2] / "src" / "garagelab" / "kernels"
MATMUL = SRC / "suite" / "13_matmul.py"
RELU = SRC / "suite" / "01_relu.py"


def test_the_tuner_explores_knobs_and_keeps_the_fastest(tmp_path: Path) -> None:
    proposer = TuneProposer((SRC / "seeds" / "13_matmul.py").read_text(), seed=1)
    best = run_loop(MATMUL, proposer, tmp_path / "p.sqlite", LoopConfig(budget_s=300, max_attempts=4), progress=False)
    assert best is not None and best.outcome.ok and best.outcome.score > 0
    programs = ProgramDB(tmp_path / "p.sqlite").programs()
    assert len(programs) == 4 and len({p.source for p in programs}) == 4  # four different knob settings
    assert all(p.evaluated and p.proposer == "tune" for p in programs)
    assert max(p.score for p in programs if p.score is not None) == best.outcome.score


def test_cli_search_writes_the_best_kernel(runs_dir: Path, capsys) -> None:
    args = [
        "kernels",
        "search",
        "--problem",
        "matmul",
        "--proposer",
        "tune",
        "--max-attempts",
        "2",
        "--budget-s",
        "300",
    ]
    assert main(args) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    assert "class ModelNew" in (run / "best.py").read_text()
    assert json.loads((run / "config.json").read_text())["proposer"] == "tune"
    assert main(["kernels", "search", "--problem", "relu", "--proposer", "tune"]) == 2  # no seed for relu
    assert "no seed kernel" in capsys.readouterr().err


def test_the_loop_with_the_local_model(tmp_path: Path) -> None:
    """SmolLM2-135M writes no working kernel, but every step of the loop runs for real: the
    request, the sandboxed verdict, and the verdict in the next request."""
    if not available():
        pytest.fail("the local model stack is missing: run `python -m garagelab.llm.install` (make test does)")
    from garagelab.llm.server import LocalServer

    with LocalServer(slots=1) as server:
        from garagelab.llm.client import LLMClient

        client = LLMClient(server.client_config(max_tokens=200, temperature=0.8))
        run_loop(RELU, ModelProposer(client), tmp_path / "p.sqlite", LoopConfig(budget_s=600, max_attempts=2), False)
    db = ProgramDB(tmp_path / "p.sqlite")
    calls, programs = db.calls(), db.programs()
    assert len(calls) == len(programs) == 2 and all(p.evaluated for p in programs)
    assert "class Model" in calls[0].request["messages"][1]["content"]
    assert "Your last attempt" in calls[1].request["messages"][1]["content"]


def test_metrics_over_searches(runs_dir: Path, capsys) -> None:
    from garagelab.kernels.metrics import ProblemResult, summarize

    results = [
        ProblemResult("a", ("compile", "wrong", ""), (None, None, 1.5)),
        ProblemResult("b", ("hack", "", ""), (None, 0.5, 0.8)),
        ProblemResult("c", ("syntax", "static"), (None, None)),
    ]
    summary = summarize(results)
    assert summary["compile rate"] == 5 / 8 and summary["fast_0"] == 2 / 3
    assert summary["fast_1"] == 1 / 3 and summary["fast_2"] == 0
    assert abs(summary["geomean speed-up"] - (1.5 * 0.8) ** 0.5) < 1e-12 and summary["hacks caught"] == 1
    assert main(["kernels", "search", "--problem", "matmul", "--proposer", "tune", "--max-attempts", "2"]) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    capsys.readouterr()
    assert main(["kernels", "report", str(run)]) == 0
    assert "fast_0" in capsys.readouterr().out
