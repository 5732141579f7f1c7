"""The closed loop: propose a kernel, verify it, turn the verdict into the next prompt, until a
wall-clock budget runs out (NVIDIA ran theirs 15 minutes per problem).

Strategies: `refine` (NVIDIA's and Kevin's: each request shows the last attempt and its verdict;
after a correct kernel, the best one so far), `best-of-n` (every request is the opening one,
independent samples), `evolve` (the evolve engine's selection, as in METR's and Sakana's tree
searches: correct kernels live on islands, clustered by speed-up; each request refines a parent
sampled from one island, by turns, favouring faster kernels at a temperature that decays; the
weaker half of the islands is reseeded from the stronger periodically).

Proposers: a model through any OpenAI-compatible endpoint, or, with no model, `TuneProposer`,
which tunes the numeric knobs a seed kernel marks `# tune: a, b, c`
(tile sizes, unroll factors, thread counts) against the verifier. Every attempt, verdict and
model call is kept in an evolve program database (SQLite), so a run can be inspected with the
evolve verbs and nothing is lost if it stops.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from garagelab.core.progress import ProgressBar
from garagelab.evolve.code import CodeError, normalized_hash, program_size
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.islands import Islands, Member
from garagelab.evolve.pool import Pool
from garagelab.evolve.sandbox import Outcome
from garagelab.kernels.feedback import extract_code, first_prompt, refine_prompt
from garagelab.kernels.problems import Problem, load_problem
from garagelab.kernels.task import build_task
from garagelab.llm.client import LLMClient, LLMError
from garagelab.llm.records import CallRecord

STRATEGIES = ("refine", "best-of-n", "evolve")
_TUNE = re.compile(r"^(\s*)([A-Za-z_]\w*)\s*=\s*(\d+)\s*#\s*tune:\s*([\d,\s]+)$", re.M)


@dataclass(frozen=True)
class LoopConfig:
    budget_s: float = 900.0
    max_attempts: int = 100
    strategy: str = "refine"
    size: str = "cpu"
    seed: int = 0


@dataclass
class Attempt:
    number: int
    source: str
    outcome: Outcome
    seconds: float  # since the loop started


class KernelProposer(Protocol):
    name: str

    def propose(
        self, problem: Problem, last: Attempt | None, best: Attempt | None
    ) -> tuple[str, CallRecord | None]: ...

    def observe(self, attempt: Attempt) -> None:
        """Every verified attempt, in order (on resume, the stored ones first)."""


class ModelProposer:
    """Asks a model; the prompt follows the strategy."""

    name = "llm"

    def __init__(
        self,
        client: LLMClient,
        strategy: str = "refine",
        device: str = "cpu",
        islands: int = 3,
        seed: int = 0,
        **settings,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
        self.client = client
        self.strategy = strategy
        self.device = device
        self.settings = settings
        # attempt n refines a parent from island n % count, and lives there if it is correct
        self.population = Islands(islands, temperature=0.1, period=12)
        self.rng = np.random.default_rng(seed)
        self.attempts: dict[int, Attempt] = {}
        self.seen = 0

    def observe(self, attempt: Attempt) -> None:
        self.seen = attempt.number
        if attempt.outcome.ok:
            self.attempts[attempt.number] = attempt
            member = Member(attempt.number, attempt.outcome.score, len(attempt.source), attempt.source)
            self.population.add(attempt.number % self.population.count, member)
        if attempt.number % self.population.period == 0:
            self.population.reset_weakest(self.rng)

    def propose(self, problem, last, best):
        if self.strategy == "evolve":
            shown = self._parent(last)
        else:
            shown = best if best is not None and best.outcome.ok else last
        if self.strategy == "best-of-n" or shown is None:
            messages = first_prompt(problem, self.device)
        else:
            messages = refine_prompt(problem, shown.source, shown.outcome, self.device)
        call = self.client.chat(messages, **self.settings)
        return extract_code(call.text), call

    def _parent(self, last: Attempt | None) -> Attempt | None:
        """The attempt to refine next: a correct kernel sampled from the next attempt's island;
        before any is correct, the last attempt (whose verdict says what to fix)."""
        number = self.seen + 1
        temperature = self.population.temperature_at(number)
        sampled = self.population.islands[number % self.population.count].sample(1, temperature, self.rng)
        if not sampled and self.population.best() is not None:  # an empty island starts from the best
            sampled = [self.population.best()]
        return self.attempts[sampled[0].program_id] if sampled else last


class TuneProposer:
    """No model: new values for the knobs a seed kernel marks `NAME = 32  # tune: 8, 16, 32, 64`,
    each attempt changing one knob of the best kernel so far (a coordinate search)."""

    name = "tune"

    def __init__(self, seed_source: str, seed: int = 0) -> None:
        if not _TUNE.search(seed_source):
            raise ValueError("the seed kernel marks no knob (`NAME = 32  # tune: 8, 16, 32, 64`)")
        self.seed_source = seed_source
        self.rng = np.random.default_rng(seed)
        self.tried: set[str] = set()

    def observe(self, attempt: Attempt) -> None:
        self.tried.add(_identity(attempt.source)[0])

    def propose(self, problem, last, best):
        base = best.source if best is not None and best.outcome.ok else self.seed_source
        if last is None:
            return self.seed_source, None
        knobs = list(_TUNE.finditer(base))
        for _ in range(50):
            knob = knobs[int(self.rng.integers(len(knobs)))]
            options = [int(v) for v in knob.group(4).replace(" ", "").split(",") if v]
            value = int(self.rng.choice(options))
            line = f"{knob.group(1)}{knob.group(2)} = {value}  # tune: {knob.group(4).strip()}"
            source = base[: knob.start()] + line + base[knob.end() :]
            key = _identity(source)[0]
            if key not in self.tried:
                self.tried.add(key)
                return source, None
        return base, None  # every neighbour tried: the search has converged


def run_loop(
    problem_path: Path | str,
    proposer: KernelProposer,
    db_path: Path,
    config: LoopConfig = LoopConfig(),
    progress: bool = True,
    pool: Pool | None = None,
) -> Attempt | None:
    """Propose, verify, feed back until the budget; returns the fastest correct attempt. On a
    database that already holds attempts (a stopped run), the loop resumes: the stored attempts
    and verdicts are its history, and the time they took (evaluations and model calls) counts
    against the budget. With a `pool` (Ray's) each verification runs on one of its workers."""
    problem = load_problem(problem_path)
    task = build_task(problem_path, config.size, timing=True)
    db = ProgramDB(db_path)
    db.start_run(problem.name, task.name, {"strategy": config.strategy, "proposer": proposer.name,
                                            "budget_s": config.budget_s, "size": config.size})  # fmt: skip
    history, spent = _history(db)
    start = time.monotonic() - spent
    last: Attempt | None = None
    best: Attempt | None = None
    for attempt in history:
        proposer.observe(attempt)
        last, best = attempt, _better(attempt, best)
    try:
        with ProgressBar(config.budget_s, f"kernels {problem.name}", unit="s", enabled=progress) as bar:
            for number in range(len(history) + 1, config.max_attempts + 1):
                if time.monotonic() - start >= config.budget_s:
                    break
                try:
                    source, call = proposer.propose(problem, last, best)
                except LLMError:
                    break  # the model is gone: keep what was verified
                outcome = pool.submit(task, source, frozenset()).result() if pool else task.evaluate(source)
                seconds = time.monotonic() - start  # the loop's clock, kept with the verdict
                outcome = replace(outcome, metrics={**outcome.metrics, "loop_s": seconds})
                pid = db.add_program(source, (), 0, proposer.name, *_identity(source))
                db.add_evaluation(pid, outcome)
                if call is not None:
                    db.add_call(call, pid)
                last = Attempt(number, source, outcome, seconds)
                proposer.observe(last)
                best = _better(last, best)
                summary = f"best {best.outcome.score:.3g}x" if best else f"last: {outcome.failure or 'ok'}"
                bar.update_to(min(time.monotonic() - start, config.budget_s), postfix=f"{number} attempts, {summary}")
    finally:
        db.close()
    return best


def _better(attempt: Attempt, best: Attempt | None) -> Attempt | None:
    return attempt if attempt.outcome.ok and (best is None or attempt.outcome.score > best.outcome.score) else best


def _history(db: ProgramDB) -> tuple[list[Attempt], float]:
    """The attempts a database already holds, and the seconds they took."""
    outcomes = db.outcomes()
    spent = sum(o.seconds for o in outcomes.values()) + sum(c.latency_s for c in db.calls())
    attempts = [
        Attempt(number, program.source, outcomes[program.id], outcomes[program.id].metrics.get("loop_s", 0.0))
        for number, program in enumerate((p for p in db.programs() if p.id in outcomes), start=1)
    ]
    return attempts, spent


def _identity(source: str) -> tuple[str, int]:
    """(hash, size) of an attempt; a model's answer that is not Python still gets stored."""
    try:
        return normalized_hash(source), program_size(source)
    except CodeError:
        return hashlib.sha256(source.encode()).hexdigest()[:32], 0
