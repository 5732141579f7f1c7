"""The search loop: it improves with offline mutations alone, never evaluates a program twice,
survives hostile proposals, and resumes after kill -9 with nothing evaluated lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from garagelab.core.runs import RunStore
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.engine import Engine, EngineConfig
from garagelab.evolve.islands import Member
from garagelab.evolve.live import summarize
from garagelab.evolve.pool import LocalPool
from garagelab.evolve.proposers import Proposal
from garagelab.evolve.search import SearchConfig, execute
from garagelab.evolve.tasks.fit_points import FIT_POINTS
from garagelab.llm.records import CallRecord
from tests.evolve.test_sandbox import HOSTILE


def test_mutation_alone_improves_the_toy_task(tmp_path: Path) -> None:
    config = SearchConfig(engine=EngineConfig(budget=80, islands=2, workers=2, seed=3))
    best = execute(config, tmp_path / "programs.sqlite", progress=False)
    db = ProgramDB(tmp_path / "programs.sqlite")
    summary = summarize(db)
    template_score = summary.curve[0][1]
    assert summary.evaluated == 80
    assert best is not None and best.score > template_score + 0.3  # mse falls by a good margin
    assert [row["proposer"] for row in summary.proposers] == ["template", "mutation"]
    hashes = [p.ast_hash for p in db.programs()]
    assert len(hashes) == len(set(hashes)), "a program was stored (and evaluated) twice"


@dataclass
class Scripted:
    """A test double proposer: hands out the given sources in turn."""

    sources: list[str]
    name: str = "scripted"
    index: int = 0

    def propose(self, parents: list[Member], rng: np.random.Generator) -> Proposal:
        source = self.sources[self.index % len(self.sources)]
        self.index += 1
        return Proposal(source, tuple(p.program_id for p in parents), self.name)


_POOLS: list[LocalPool] = []  # the pools `_engine` made, shut down after each test


@pytest.fixture(autouse=True)
def _shut_pools():
    yield
    while _POOLS:
        _POOLS.pop().shutdown()


def _engine(tmp_path: Path, proposer: Scripted, budget: int, **config) -> Engine:
    db = ProgramDB(tmp_path / "programs.sqlite")
    db.start_run("test", FIT_POINTS.name, {})
    engine_config = EngineConfig(budget=budget, islands=2, workers=2, **config)
    _POOLS.append(LocalPool(2))
    return Engine(FIT_POINTS, db, engine_config, {proposer.name: proposer}, _POOLS[-1], progress=False)


def test_duplicates_are_not_evaluated(tmp_path: Path) -> None:
    same_ast = FIT_POINTS.template.replace("return 0.5 * x", "return 0.5 * x  # again").replace("(x)", "(z)")
    same_ast = same_ast.replace("0.5 * x", "0.5 * z")
    same_outputs = FIT_POINTS.template.replace("return 0.5 * x", "return x * 0.5")
    engine = _engine(tmp_path, Scripted([same_ast, same_outputs]), budget=5, max_failed_proposals=10)
    engine.run()
    programs = engine.db.programs()
    assert [p.proposer for p in programs] == ["template", "scripted"]  # the renamed copy never stored
    assert programs[1].failure == "duplicate"  # same outputs: stopped at the evaluator's probe
    assert engine.stats.duplicates >= 5


def test_hostile_proposals_cost_one_evaluation_each(tmp_path: Path) -> None:
    sources = [source for _, source, *_ in HOSTILE if "while True" not in source and "sleep" not in source]
    sources.append(FIT_POINTS.template.replace("0.5 * x", "np.sin(x) * x + 0.5 * x"))
    # the unparsable ones are refused when proposed (the search goes on); every other one costs one evaluation
    unparsable = sum(kind == "syntax" for _, _, kind, *_ in HOSTILE)
    engine = _engine(tmp_path, Scripted(sources), budget=len(sources), max_failed_proposals=5)
    best = engine.run()
    failures = engine.db.failure_counts()
    assert engine.evaluated() == len(sources) + 1 - unparsable  # the template is evaluated too
    assert failures.pop("ok") == 2
    assert sum(failures.values()) == len(sources) - 1 - unparsable
    assert {"lint", "memory", "output_limit", "exception", "invalid"} <= set(failures)
    assert best is not None and best.score == 0.0


class Breaking(Scripted):
    """A proposer that raises what CPython raised on a pathological program in a fly search."""

    def propose(self, parents: list[Member], rng: np.random.Generator) -> Proposal:
        self.index += 1
        if self.index % 2:
            raise SystemError("AST constructor recursion depth mismatch (before=50, after=52)")
        return super().propose(parents, rng)


class FailingPool(LocalPool):
    """A pool whose every other evaluation raises instead of returning an outcome."""

    calls = 0

    def submit(self, task, source, fingerprints):
        FailingPool.calls += 1
        if FailingPool.calls % 2 == 0:
            return self._executor.submit(_crash)
        return super().submit(task, source, fingerprints)


def _crash():
    raise SystemError("AST constructor recursion depth mismatch")


def test_one_bad_program_fails_itself_not_the_search(tmp_path: Path) -> None:
    sources = [FIT_POINTS.template.replace("0.5 * x", f"{c} * x") for c in (0.6, 0.7, 0.8, 0.9, 1.1)]
    db = ProgramDB(tmp_path / "programs.sqlite")
    config = EngineConfig(budget=5, islands=1, workers=1, max_failed_proposals=50)
    engine = Engine(FIT_POINTS, db, config, {"breaking": Breaking(sources, "breaking")}, FailingPool(1), progress=False)
    engine.run()
    outcomes = engine.db.failure_counts()
    assert engine.evaluated() == 5
    assert outcomes.get("task_error", 0) >= 1 and outcomes.get("ok", 0) >= 2


def _garagelab(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "garagelab", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _evaluations(db_path: Path) -> dict[int, tuple]:
    if not db_path.exists():
        return {}
    with sqlite3.connect(db_path, timeout=30) as con:
        try:
            rows = con.execute("SELECT program_id, score, failure, created FROM evaluations").fetchall()
        except sqlite3.OperationalError:  # the file exists a moment before its tables do
            return {}
        return {row[0]: row[1:] for row in rows}


def test_kill_9_and_resume_loses_nothing(runs_dir: Path) -> None:
    env = {**os.environ, "GARAGELAB_RUNS": str(runs_dir)}
    process = _garagelab("evolve", "run", "--budget", "70", "--islands", "2", "--seed", "5", env=env)
    db_path = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list(runs_dir.glob("evolve/*/programs.sqlite"))
        if found and len(_evaluations(found[0])) >= 25:
            db_path = found[0]
            break
        time.sleep(0.05)
    assert db_path is not None, "the search did not get going"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = _evaluations(db_path)
    assert 25 <= len(before) < 70
    record = RunStore(runs_dir).list("evolve")[0]
    assert record.status == "interrupted"

    resumed = _garagelab("evolve", "resume", str(record.id), env=env)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    after = _evaluations(db_path)
    assert len(after) == 70
    assert all(after[pid] == row for pid, row in before.items()), "an evaluation was lost or redone"
    assert RunStore(runs_dir).list("evolve")[0].status == "done"
    config = json.loads((db_path.parent / "config.json").read_text())
    assert config["engine"]["budget"] == 70


def test_the_progress_line_shows_the_template_beside_the_best(tmp_path: Path) -> None:
    better = FIT_POINTS.template.replace("return 0.5 * x", "return 0.9 * x")
    engine = _engine(tmp_path, Scripted([better]), budget=2)
    assert engine._progress_note() == ""  # nothing scored yet
    engine.run()
    template, best = (p.score for p in engine.db.programs())
    assert engine._progress_note() == f"best {max(best, template):.4g}, template {template:.4g}"
    resumed = _engine(tmp_path, Scripted([better]), budget=2)
    resumed.run()  # the template's score is read back from the database
    assert resumed._progress_note() == engine._progress_note()


@dataclass
class Remote(Scripted):
    """A test double for a remote model: each answer comes after `pause` seconds and costs
    `tokens`; it notes the most proposals it was asked for at once."""

    pause: float = 0.3
    tokens: int = 0
    asked: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def propose(self, parents: list[Member], rng: np.random.Generator) -> Proposal:
        with self.lock:
            self.asked += 1
            self.peak = max(self.peak, self.asked)
            source = self.sources[self.index % len(self.sources)]
            self.index += 1
        time.sleep(self.pause)
        with self.lock:
            self.asked -= 1
        call = CallRecord("chat", {"messages": [source]}, source, self.tokens, 0, self.pause, "remote")
        return Proposal(source, tuple(p.program_id for p in parents), self.name, call if self.tokens else None)


def _distinct(count: int) -> list[str]:
    return [FIT_POINTS.template.replace("0.5 * x", f"{0.6 + 0.01 * i:.2f} * x") for i in range(count)]


def test_samplers_ask_for_several_proposals_at_once_within_the_budget(tmp_path: Path) -> None:
    remote = Remote(_distinct(20))
    engine = _engine(tmp_path, remote, budget=13, samplers=4)
    engine.run()
    assert remote.peak == 4  # four model calls in flight, not one after another
    programs = engine.db.programs()
    assert engine.evaluated() == 13 and len(programs) == 13  # nothing asked for past the budget
    assert all(p.evaluated for p in programs)
    serial = Remote(_distinct(20))
    (tmp_path / "serial").mkdir()
    _engine(tmp_path / "serial", serial, budget=5).run()
    assert serial.peak == 1


def test_a_spent_budget_keeps_every_answer_already_asked_for(tmp_path: Path) -> None:
    """Several calls are in flight when the answers spend the token budget: all are paid for,
    so all are stored and evaluated, and nothing more is asked."""
    remote = Remote(_distinct(20), tokens=100)
    engine = _engine(tmp_path, remote, budget=30, samplers=4, max_model_tokens=150)
    engine.run()
    assert engine.stopped.startswith("model token budget spent")
    stored = [p for p in engine.db.programs() if p.proposer == "scripted"]
    assert engine.spend.calls == len(stored) >= 4  # the four asked at once, and one asked before the 2nd answer
    assert all(p.evaluated for p in stored) and engine.evaluated() == len(stored) + 1
