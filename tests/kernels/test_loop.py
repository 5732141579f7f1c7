"""The closed loop end to end: the offline tuner on a seed kernel, the CLI, and the local model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garagelab.cli import main
from garagelab.evolve.database import ProgramDB
from garagelab.kernels.loop import LoopConfig, ModelProposer, TuneProposer, run_loop
from garagelab.llm.records import CallRecord
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


def test_a_search_verifies_on_ray_workers(runs_dir: Path) -> None:
    """`--pool ray`: each verification is a Ray task running the same judge, sandbox and walls
    (a local Ray here, as the evolve tests do)."""
    pytest.importorskip("ray")
    args = ["kernels", "search", "--problem", "matmul", "--proposer", "tune", "--max-attempts", "2", "--pool", "ray"]
    assert main([*args, "--budget-s", "300"]) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    programs = ProgramDB(run / "programs.sqlite").programs()
    assert len(programs) == 2 and all(p.evaluated for p in programs) and any(p.score for p in programs)


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
    assert "fast_1 vs torch.compile" not in summary  # nothing timed against it
    on_gpu = [ProblemResult("a", ("x", ""), (1.5, 2.5), (0.7, 1.3), (3.0, 9.0)), ProblemResult("b", ("",), (0.0,))]
    summary = summarize(on_gpu)  # b: correct in the interpreter, not timed
    assert summary["fast_0"] == 1 and summary["geomean speed-up"] == 2.5
    assert summary["fast_1 vs torch.compile"] == 0.5 and summary["fast_2 vs torch.compile"] == 0
    assert summary["seconds to first correct (median)"] == 9.0
    assert main(["kernels", "search", "--problem", "matmul", "--proposer", "tune", "--max-attempts", "2"]) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    capsys.readouterr()
    assert main(["kernels", "report", str(run)]) == 0
    assert "fast_0" in capsys.readouterr().out


class ScriptedModel:
    """Test double for a model: answers with the given files in turn and keeps every request."""

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.requests = list(answers), []

    def chat(self, messages: list[dict], **settings) -> CallRecord:
        self.requests.append(messages[-1]["content"])
        text = f"Here it is:\n```python\n{self.answers[len(self.requests) - 1]}```"
        return CallRecord("chat", {"messages": messages}, text, 0, 0, 0.0, "scripted")


def test_the_evolve_strategy_refines_parents_from_its_islands(tmp_path: Path) -> None:
    good = (SRC / "candidates" / "relu_cpp.py").read_text()
    broken = good.replace("out[i] =", "out[i] = undefined +")
    model = ScriptedModel([broken, good, broken, good.replace("0.f ? x[i]", "0.f ? -x[i]")])
    config = LoopConfig(budget_s=600, max_attempts=4, strategy="evolve")
    best = run_loop(RELU, ModelProposer(model, "evolve", seed=0), tmp_path / "p.sqlite", config, progress=False)
    assert best is not None and best.number == 2
    assert "did not compile" in model.requests[1]  # nothing correct yet: the last attempt's verdict
    for request in model.requests[2:]:  # then a parent from the islands, not the last (broken) attempt
        assert "It is correct" in request and "undefined" not in request
    assert [p.failure for p in ProgramDB(tmp_path / "p.sqlite").programs()] == ["compile", "", "compile", "wrong"]


def test_a_stopped_search_resumes_from_its_database(runs_dir: Path) -> None:
    args = ["kernels", "search", "--problem", "matmul", "--proposer", "tune", "--max-attempts", "2", "--seed", "3"]
    assert main(args) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    before = [p.source for p in ProgramDB(run / "programs.sqlite").programs()]
    assert main(["kernels", "resume", run.name, "--max-attempts", "4"]) == 0
    after = ProgramDB(run / "programs.sqlite").programs()
    assert [p.source for p in after[:2]] == before and len(after) == 4
    assert len({p.source for p in after}) == 4  # the tuner knew what the first part had tried
    assert main(["kernels", "resume", "nonexistent"]) == 2


def test_search_runs_every_problem_of_a_folder(tmp_path: Path, runs_dir: Path, capsys) -> None:
    folder = tmp_path / "level"
    folder.mkdir()
    for name in ("13_matmul.py", "14_matmul_transposed_b.py"):
        (folder / name).write_text((SRC / "suite" / name).read_text())
    seed = SRC / "seeds" / "13_matmul.py"
    args = ["kernels", "search", "--problem", str(folder), "--proposer", "tune", "--seed-kernel", str(seed)]
    assert main([*args, "--max-attempts", "1"]) == 0
    assert len(list((runs_dir / "kernels").iterdir())) == 2
    assert "fast_0" in capsys.readouterr().out  # the report over both
