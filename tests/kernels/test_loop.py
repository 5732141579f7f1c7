"""The closed loop end to end: the offline tuner on a seed kernel, the CLI, and the local model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from garagelab.cli import main
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.sandbox import Outcome
from garagelab.kernels.loop import REMEASURE, Attempt, LoopConfig, ModelProposer, TuneProposer, _remeasure, run_loop
from garagelab.kernels.metrics import read_search
from garagelab.llm.records import CallRecord
from garagelab.llm.server import available

SRC = Path(__file__).resolve().parents[2] / "src" / "garagelab" / "kernels"
MATMUL = SRC / "suite" / "13_matmul.py"
RELU = SRC / "suite" / "01_relu.py"

UNTIMED = 86_400.0  # a loop budget (seconds) no test reaches: max_attempts ends these searches, not the clock


@pytest.mark.slow
def test_the_tuner_explores_knobs_and_remeasures_its_best(tmp_path: Path) -> None:
    proposer = TuneProposer((SRC / "seeds" / "13_matmul.py").read_text(), seed=1)
    config = LoopConfig(budget_s=UNTIMED, max_attempts=4, remeasure=1)
    final = run_loop(MATMUL, proposer, tmp_path / "p.sqlite", config, progress=False)
    assert final is not None and final.winner.outcome.ok and final.winner.outcome.score > 0
    programs = ProgramDB(tmp_path / "p.sqlite").programs()
    attempts = [p for p in programs if p.proposer == "tune"]
    assert len(attempts) == 4 and len({p.source for p in attempts}) == 4  # four different knob settings
    again = [p for p in programs if p.proposer == REMEASURE]
    assert 1 <= len(again) <= 2 and all(p.metrics["rounds"] >= 30 for p in again)  # the best and the seed
    (winner,) = [p for p in again if p.metrics.get("winner")]
    assert winner.score == final.winner.outcome.score and winner.source == final.winner.source
    assert final.seed is not None and (final.winner is final.seed) != final.beats_seed


def _attempt(number: int, source: str, score: float, interval: tuple[float, float]) -> Attempt:
    return Attempt(number, source, Outcome(score, {"timed": True, "speedup_interval": list(interval)}), 0.0, number)


KNOBS = "A = 1  # tune: 1, 2\nB = 1  # tune: 1, 2, 3\n"


def test_the_tuner_moves_only_beyond_noise_and_stops_when_converged() -> None:
    tuner = TuneProposer(KNOBS)
    assert tuner.propose(None, None, None) == (KNOBS, None, "tune")
    last = _attempt(1, KNOBS, 1.0, (0.9, 1.1))
    tuner.observe(last)
    proposed = []
    while (next_one := tuner.propose(None, last, None)) is not None:
        proposed.append(next_one[0])
        last = _attempt(len(proposed) + 1, next_one[0], 1.08, (0.97, 1.2))  # faster by noise alone
        tuner.observe(last)
    assert sorted(proposed) == sorted(KNOBS.replace(a, b) for a, b in
                                      [("A = 1", "A = 2"), ("B = 1", "B = 2"), ("B = 1", "B = 3")])  # fmt: skip
    assert tuner.base.source == KNOBS  # the seed's neighbours, all tried: converged where it started
    tuner = TuneProposer(KNOBS, seed=2)
    tuner.observe(_attempt(1, KNOBS, 1.0, (0.9, 1.1)))
    faster = KNOBS.replace("B = 1", "B = 3")
    tuner.observe(_attempt(2, faster, 1.6, (1.4, 1.8)))  # its lower end clears the seed's median
    assert tuner.base.source == faster
    around = []  # the new base's neighbours, the seed excluded (tried)
    while (next_one := tuner.propose(None, tuner.base, None)) is not None:
        around.append(next_one[0])
        tuner.observe(_attempt(len(around) + 2, next_one[0], 1.5, (1.3, 1.7)))
    assert sorted(around) == sorted([faster.replace("A = 1", "A = 2"), faster.replace("B = 3", "B = 2")])


def test_a_winner_is_named_over_the_seed_only_beyond_noise(tmp_path: Path) -> None:
    """The final re-measurement, with a test double for the verifier (given speed-ups)."""
    faster = KNOBS.replace("A = 1", "A = 2")
    for fast, named, beats in [((1.2, 1.05, 1.35), KNOBS, False), ((1.5, 1.4, 1.6), faster, True)]:
        measured = {KNOBS: (1.0, 0.9, 1.1), faster: fast}
        db = ProgramDB(tmp_path / f"{beats}.sqlite")
        attempts = [_attempt(1, KNOBS, 1.0, (0.8, 1.2)), _attempt(2, faster, 1.4, (1.1, 1.7))]
        for attempt in attempts:
            attempt.program_id = db.add_program(attempt.source, (), 0, "tune", f"h{attempt.number}", 1)
            db.add_evaluation(attempt.program_id, attempt.outcome)

        def verify(source: str, measured=measured) -> Outcome:
            score, low, high = measured[source]
            return Outcome(score, {"timed": True, "speedup_interval": [low, high]})

        final = _remeasure(attempts, KNOBS, 1, verify, db, lambda _: None)
        db.close()
        assert final.winner.source == named and final.beats_seed == beats and final.beats_eager == beats
        result = read_search(tmp_path / f"{beats}.sqlite")
        assert len(result.failures) == 2 and result.best == measured[named][0] and result.beats_eager == beats


def test_the_seed_is_remeasured_even_when_a_copy_of_it_ranks_higher(tmp_path: Path) -> None:
    """A model's answer that is the seed with a comment added is the same kernel: the seed itself
    is re-measured, so the winner is still judged against it."""
    copy = "# the seed again\n" + KNOBS
    db = ProgramDB(tmp_path / "p.sqlite")
    attempts = [_attempt(1, KNOBS, 1.0, (0.8, 1.2)), _attempt(2, copy, 1.3, (1.0, 1.6))]
    for attempt in attempts:
        attempt.program_id = db.add_program(attempt.source, (), 0, "llm", f"h{attempt.number}", 1)
        db.add_evaluation(attempt.program_id, attempt.outcome)
    verified = []

    def verify(source: str) -> Outcome:
        verified.append(source)
        return Outcome(1.0, {"timed": True, "speedup_interval": [0.9, 1.1]})

    final = _remeasure(attempts, KNOBS, 3, verify, db, lambda _: None)
    db.close()
    assert verified == [KNOBS] and final.seed is not None and final.winner is final.seed and not final.beats_seed


def test_cli_search_writes_the_best_kernel(tmp_path: Path, runs_dir: Path, capsys) -> None:
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
        str(UNTIMED),
        "--remeasure",
        "1",
    ]
    assert main(args) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    assert "class ModelNew" in (run / "best.py").read_text()
    assert "eager PyTorch (90 % interval" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["proposer"] == "tune"
    mine = tmp_path / "13_matmul.py"  # our problem's name, not our problem: no seed of ours
    mine.write_text(MATMUL.read_text())
    assert main(["kernels", "search", "--problem", "matmul", "--proposer", "tune", "--remeasure", "-1"]) == 2
    assert "must be at least 0" in capsys.readouterr().err
    assert main(["kernels", "search", "--problem", str(mine), "--proposer", "tune"]) == 2
    assert "no seed kernel" in capsys.readouterr().out


@pytest.mark.slow
def test_a_search_verifies_on_ray_workers(runs_dir: Path) -> None:
    """`--pool ray`: each verification is a Ray task running the same judge, sandbox and walls
    (a local Ray here, as the evolve tests do)."""
    pytest.importorskip("ray")
    args = ["kernels", "search", "--problem", "matmul", "--proposer", "tune", "--max-attempts", "2", "--pool", "ray",
            "--remeasure", "0"]  # fmt: skip
    assert main([*args, "--budget-s", str(UNTIMED)]) == 0
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
        config = LoopConfig(budget_s=UNTIMED, max_attempts=2)
        run_loop(RELU, ModelProposer(client), tmp_path / "p.sqlite", config, False)
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
    args = ["kernels", "search", "--problem", "matmul", "--proposer", "tune", "--max-attempts", "2", "--remeasure", "0"]
    assert main(args) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    other = runs_dir / "kernels" / "not-a-search"
    other.mkdir()
    capsys.readouterr()
    assert main(["kernels", "report", str(run), str(other)]) == 0  # a folder that is no search: a note
    out = capsys.readouterr().out
    assert "fast_0" in out and f"skipped {other}: not a kernels search" in out
    assert main(["kernels", "report", str(other)]) == 2


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
    config = LoopConfig(budget_s=UNTIMED, max_attempts=4, strategy="evolve", remeasure=1)
    final = run_loop(RELU, ModelProposer(model, "evolve", seed=0), tmp_path / "p.sqlite", config, progress=False)
    assert final is not None and final.winner.number == 2 and final.seed is None  # a model has no seed
    assert "did not compile" in model.requests[1]  # nothing correct yet: the last attempt's verdict
    for request in model.requests[2:]:  # then a parent from the islands, not the last (broken) attempt
        assert "It is correct" in request and "undefined" not in request
    programs = ProgramDB(tmp_path / "p.sqlite").programs()
    assert [p.failure for p in programs] == ["compile", "", "compile", "wrong", ""]  # the last: re-measured
    assert programs[-1].proposer == REMEASURE and programs[-1].parents == (programs[1].id,)


def test_a_stopped_search_resumes_from_its_database(runs_dir: Path) -> None:
    args = ["kernels", "search", "--problem", "matmul", "--proposer", "tune", "--max-attempts", "2", "--seed", "3",
            "--remeasure", "0"]  # fmt: skip
    assert main(args) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    before = [p.source for p in ProgramDB(run / "programs.sqlite").programs()]
    assert main(["kernels", "resume", run.name, "--max-attempts", "4"]) == 0
    after = ProgramDB(run / "programs.sqlite").programs()
    assert [p.source for p in after[:2]] == before and len(after) == 4
    assert len({p.source for p in after}) == 4  # the tuner knew what the first part had tried
    assert main(["kernels", "resume", "nonexistent"]) == 2
    # a total at or below what was spent would rewrite the run's config.json to less than it spent
    assert main(["kernels", "resume", run.name, "--max-attempts", "3"]) == 2
    assert main(["kernels", "resume", run.name, "--budget-s", "0.001"]) == 2
    assert json.loads((run / "config.json").read_text())["max_attempts"] == 4


@pytest.mark.slow
def test_search_runs_every_problem_of_a_folder(tmp_path: Path, runs_dir: Path, capsys) -> None:
    folder = tmp_path / "level"
    folder.mkdir()
    for name in ("13_matmul.py", "14_matmul_transposed_b.py"):
        (folder / name).write_text((SRC / "suite" / name).read_text())
    seed = SRC / "seeds" / "13_matmul.py"
    args = ["kernels", "search", "--problem", str(folder), "--proposer", "tune", "--seed-kernel", str(seed),
            "--remeasure", "0"]  # fmt: skip
    assert main([*args, "--max-attempts", "1"]) == 0
    assert len(list((runs_dir / "kernels").iterdir())) == 2
    assert "fast_0" in capsys.readouterr().out  # the report over both
