"""The tuner and a model in one search (`--proposer both`), and a model search replayed from its
recording (`--replay`), with a scripted test double in place of the model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from garagelab.cli import main
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.sandbox import Outcome
from garagelab.kernels.loop import Attempt, LoopConfig, ModelProposer, Proposal, TuneProposer, run_loop
from garagelab.kernels.mixed import SEED, MixedProposer, proposer_for
from garagelab.kernels.seeds import seed_for
from tests.kernels.test_loop import UNTIMED, ScriptedModel

SRC = Path(__file__).resolve().parents[2] / "src" / "garagelab" / "kernels"
RELU = SRC / "suite" / "01_relu.py"
ROW_SUM = SRC / "suite" / "09_row_sum.py"
ROW_SUM_SEED = SRC / "seeds" / "09_row_sum.py"  # with a marker for the C++ the seeds share
PLAIN = (SRC / "candidates" / "relu_cpp.py").read_text()  # correct, no knobs


class Fixed:
    """A proposer test double: the given sources in turn, then converged."""

    seed_source = None

    def __init__(self, name: str, sources: list[str]) -> None:
        self.name, self.sources, self.seen = name, list(sources), []

    def observe(self, attempt: Attempt) -> None:
        self.seen.append(attempt.number)

    def propose(self, problem, last, best):
        return Proposal(self.sources.pop(0), None, self.name) if self.sources else None


def _attempt(number: int, proposer: str, score: float, interval: tuple[float, float], seconds: float) -> Attempt:
    outcome = Outcome(score, {"timed": True, "speedup_interval": list(interval)})
    return Attempt(number, f"k{number}", outcome, seconds, number, proposer)


def test_proposer_for_builds_each_kind_and_starts_a_model_only_when_one_is_used() -> None:
    seed = seed_for(ROW_SUM)
    calls = []

    def client() -> ScriptedModel:
        calls.append(1)
        return ScriptedModel([])

    tuner = proposer_for("tune", seed, client, seed=3)
    assert isinstance(tuner, TuneProposer) and not calls  # no model asked for, none started
    model = proposer_for("llm", seed, client, seed=3, strategy="refine")
    assert isinstance(model, ModelProposer) and model.seed_source == seed and len(calls) == 1
    both = proposer_for("both", seed, client, seed=3)
    assert isinstance(both, MixedProposer) and both.seed_source == seed and len(calls) == 2
    assert isinstance(both.proposers["tune"], TuneProposer) and both.proposers["llm"].seed_source is None
    for kind, source, message in (("fast", seed, "choose one of tune, llm, both"), ("tune", PLAIN, "marks no knob")):
        try:
            proposer_for(kind, source, client)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"{kind} with that seed was accepted")
    assert len(calls) == 2


def test_the_bandit_rewards_improvements_beyond_noise_per_second() -> None:
    a, b = Fixed("a", ["a1", "a2"]), Fixed("b", ["b1", "b2"])
    mixed = MixedProposer({"a": a, "b": b}, seed_source="seed")
    assert mixed.propose(None, None, None) == Proposal("seed", None, SEED)
    mixed.observe(_attempt(1, SEED, 1.0, (0.9, 1.1), 2.0))
    assert mixed.propose(None, mixed.best, mixed.best).proposer == "a"  # every arm once first, in order
    mixed.observe(_attempt(2, "a", 1.05, (0.95, 1.15), 3.0))  # faster by noise alone: no reward
    assert mixed.propose(None, mixed.best, mixed.best).proposer == "b"
    mixed.observe(_attempt(3, "b", 1.5, (1.3, 1.7), 13.0))  # beyond noise, after 10 s
    assert mixed.bandit.rewards == {"a": 0.0, "b": 1.0} and mixed.bandit.spent == {"a": 1.0, "b": 10.0}
    assert a.seen == b.seen == [1, 2, 3]  # every attempt is shown to every proposer
    assert mixed.best.number == 3
    assert mixed.propose(None, mixed.best, mixed.best).source == "b2"  # b's yield per second leads
    assert mixed.propose(None, mixed.best, mixed.best).source == "a2"  # b has converged: it retires
    assert mixed.bandit.arms == ["a"]
    assert mixed.propose(None, mixed.best, mixed.best) is None  # both converged


def test_a_mixed_search_starts_from_the_seed_and_shows_every_attempt_to_both(tmp_path: Path) -> None:
    seed = seed_for(RELU)
    model = ScriptedModel([PLAIN, PLAIN.replace("out[i] =", "out[i] = undefined +"), PLAIN, PLAIN])
    mixed = MixedProposer({"tune": TuneProposer(seed), "llm": ModelProposer(model)}, seed)
    config = LoopConfig(budget_s=UNTIMED, max_attempts=5, remeasure=0)
    final = run_loop(RELU, mixed, tmp_path / "p.sqlite", config, progress=False)
    programs = ProgramDB(tmp_path / "p.sqlite").programs()
    assert programs[0].source == seed and programs[0].proposer == SEED
    assert [p.proposer for p in programs[1:3]] == ["tune", "llm"]  # each arm once before the bandit weighs them
    assert {p.proposer for p in programs[3:]} <= {"tune", "llm"} and len(programs) == 5
    assert (
        "Your last attempt" in model.requests[0] and "# tune:" in model.requests[0]
    )  # refines the best: a knob kernel
    assert final is not None and final.seed is not None  # the seed, re-measured beside the winner


def test_a_model_search_replays_from_its_recording_through_the_cli(tmp_path: Path, runs_dir: Path) -> None:
    """A recorded model search (here: a scripted model's calls) replayed with `--replay`: the same
    kernels in the same order, verified again, with no model. The seed is given as our file, whose
    marker for the shared C++ is written in as the tuner's own seed has it."""
    seed = seed_for(ROW_SUM)
    model = ScriptedModel([seed.replace("ACC = 4", "ACC = 2"), seed.replace("out[row] = total", "out[row] = -total")])
    config = LoopConfig(budget_s=UNTIMED, max_attempts=3, remeasure=0)
    run_loop(ROW_SUM, ModelProposer(model, seed_source=seed), tmp_path / "p.sqlite", config, progress=False)
    db = ProgramDB(tmp_path / "p.sqlite")
    recorded, calls = db.programs(), db.calls()
    (tmp_path / "calls.jsonl").write_text("".join(json.dumps(asdict(c)) + "\n" for c in calls))
    args = ["kernels", "search", "--problem", "row_sum", "--proposer", "llm", "--seed-kernel", str(ROW_SUM_SEED),
            "--replay", str(tmp_path / "calls.jsonl"), "--max-attempts", "3", "--remeasure", "0",
            "--budget-s", str(UNTIMED)]  # fmt: skip
    assert main(args) == 0
    (run,) = (runs_dir / "kernels").iterdir()
    again = ProgramDB(run / "programs.sqlite").programs()
    assert [p.source for p in again] == [p.source for p in recorded]
    assert [p.failure for p in again] == [p.failure for p in recorded] == ["", "", "wrong"]
    assert json.loads((run / "config.json").read_text())["replay"] == str(tmp_path / "calls.jsonl")


def test_a_mixed_search_needs_a_seed_and_a_real_seed_file(tmp_path: Path, runs_dir: Path, capsys) -> None:
    mine = tmp_path / "01_relu.py"  # our problem's name, not our problem: no seed of ours
    mine.write_text(RELU.read_text())
    assert main(["kernels", "search", "--problem", str(mine), "--proposer", "both"]) == 2
    assert "no seed kernel" in capsys.readouterr().out
    args = ["kernels", "search", "--problem", "relu", "--proposer", "both", "--seed-kernel", str(tmp_path / "none.py")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--seed-kernel" in err and "no such file" in err
    binary = tmp_path / "kernel.so"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\x00")
    assert main([*args[:-1], str(binary)]) == 2  # was an internal UnicodeDecodeError
    assert "kernel.so: not UTF-8 text (byte 0xd0 at offset 8)" in capsys.readouterr().err
    assert main(["kernels", "search", "--problem", "relu", "--budget-s", "nan"]) == 2  # ran, then crashed
    assert "--budget-s: nan must be a positive number" in capsys.readouterr().err
