"""The closed loop: propose a kernel, verify it, turn the verdict into the next prompt, until a
wall-clock budget runs out (NVIDIA ran theirs 15 minutes per problem).

Strategies: `refine` (NVIDIA's and Kevin's: each request shows the last attempt and its verdict;
after a correct kernel, the best one so far), `best-of-n` (every request is the opening one,
independent samples), `evolve` (the evolve engine's selection, as in METR's and Sakana's tree
searches: correct kernels live on islands, clustered by speed-up; each request refines a parent
sampled from one island, by turns, favouring faster kernels at a temperature that decays; the
weaker half of the islands is reseeded from the stronger periodically).

Proposers: a model through any OpenAI-compatible endpoint, or, with no model, `TuneProposer`,
which tunes the numeric knobs a seed kernel marks `# tune: a, b, c` (tile sizes, unroll
factors, vector lanes) against the verifier, one knob at a time, and stops when no neighbour of
its best setting is left to try. Every attempt, verdict and model call is kept in an evolve
program database (SQLite), so a run can be inspected with the evolve verbs and nothing is lost
if it stops.

The best of many noisy measurements is biased upwards (the tuner once reported the maximum of
89 re-measurements of one kernel), so a search ends by re-measuring its top kernels, and the
tuner's seed, with twice the verifier's rounds (`remeasure`): the winner is the fastest
re-measured kernel, named over the seed only if its interval's lower end clears the seed's
upper end (beyond the noise of both), and said to beat eager PyTorch only if its lower end
is above 1. The re-measurements are programs of their own in the database (proposer
`remeasure`, parent the attempt), which `kernels report` reads.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple, Protocol

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
REMEASURE = "remeasure"  # the proposer name of the final re-measurements
_TUNE = re.compile(r"^([ \t]*)([A-Za-z_]\w*)[ \t]*=[ \t]*(\d+)[ \t]*#[ \t]*tune:[ \t]*([\d, \t]+)$", re.M)


@dataclass(frozen=True)
class LoopConfig:
    budget_s: float = 900.0
    max_attempts: int = 100
    strategy: str = "refine"
    size: str = "cpu"
    seed: int = 0
    remeasure: int = 3  # the top kernels re-measured at the end (0: none)


@dataclass
class Attempt:
    number: int
    source: str
    outcome: Outcome
    seconds: float  # since the loop started
    program_id: int = 0
    proposer: str = ""  # who proposed it (the name in the database)

    @property
    def interval(self) -> tuple[float, float]:
        """The 90 % interval of its speed-up (its score, twice, where it was not timed)."""
        low, high = self.outcome.metrics.get("speedup_interval", (self.outcome.score, self.outcome.score))
        return float(low), float(high)


@dataclass(frozen=True)
class Final:
    """A search's verdict after re-measuring: the winner, and what it beats beyond noise."""

    winner: Attempt
    seed: Attempt | None  # the tuner's seed, re-measured beside it
    beats_seed: bool
    beats_eager: bool


class Proposal(NamedTuple):
    """A kernel to verify, the model call that wrote it (None: no model), and who proposed it
    (the name the database keeps with it)."""

    source: str
    call: CallRecord | None
    proposer: str


class KernelProposer(Protocol):
    name: str

    seed_source: str | None  # a seed kernel, re-measured beside the winner

    def propose(self, problem: Problem, last: Attempt | None, best: Attempt | None) -> Proposal | None:
        """The next kernel; None: the proposer has converged."""

    def observe(self, attempt: Attempt) -> None:
        """Every verified attempt, in order (on resume, the stored ones first)."""


class ModelProposer:
    """Asks a model; the prompt follows the strategy. Given a seed kernel, the first attempt is
    the seed, which the model then refines (otherwise it starts from the problem alone)."""

    name = "llm"

    def __init__(
        self,
        client: LLMClient,
        strategy: str = "refine",
        device: str = "cpu",
        islands: int = 3,
        seed: int = 0,
        seed_source: str | None = None,
        **settings,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
        self.client = client
        self.seed_source = seed_source
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
        if last is None and self.seed_source is not None:
            return Proposal(self.seed_source, None, self.name)
        if self.strategy == "evolve":
            shown = self._parent(last)
        else:
            shown = best if best is not None and best.outcome.ok else last
        if self.strategy == "best-of-n" or shown is None:
            messages = first_prompt(problem, self.device)
        else:
            messages = refine_prompt(problem, shown.source, shown.outcome, self.device)
        call = self.client.chat(messages, **self.settings)
        return Proposal(extract_code(call.text), call, self.name)

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
    each attempt changing one knob of its base (a coordinate search). A neighbour becomes the
    base only if the lower end of its speed-up interval clears the base's median: a setting
    that is faster by noise alone does not move the search. When every neighbour of the base
    has been tried, the search has converged and `propose` says so (None)."""

    name = "tune"

    def __init__(self, seed_source: str, seed: int = 0) -> None:
        if not _TUNE.search(seed_source):
            raise ValueError("the seed kernel marks no knob (`NAME = 32  # tune: 8, 16, 32, 64`)")
        self.seed_source = seed_source
        self.rng = np.random.default_rng(seed)
        self.tried: set[str] = set()
        self.base: Attempt | None = None

    def observe(self, attempt: Attempt) -> None:
        self.tried.add(_identity(attempt.source)[0])
        if not attempt.outcome.ok:
            return
        seeded = self.base is None and attempt.source == self.seed_source
        if seeded or (self.base is not None and beats_beyond_noise(attempt, self.base)):
            self.base = attempt

    def propose(self, problem, last, best):
        if last is None:
            return Proposal(self.seed_source, None, self.name)
        if self.base is None:
            return None  # the seed itself failed: nothing to tune
        untried = [s for s in _neighbours(self.base.source) if _identity(s)[0] not in self.tried]
        if not untried:
            return None
        return Proposal(untried[int(self.rng.integers(len(untried)))], None, self.name)


def _neighbours(source: str) -> list[str]:
    """`source` with one knob set to another of its options, for every knob and option."""
    found = []
    for knob in _TUNE.finditer(source):
        options = [int(v) for v in knob.group(4).replace(" ", "").split(",") if v]
        for value in options:
            if value != int(knob.group(3)):
                found.append(source[: knob.start()] + knob_line(knob, value) + source[knob.end() :])
    return found


def knob_line(knob: re.Match, value: int) -> str:
    """A knob's line (a match of `_TUNE`) set to `value`, its options kept."""
    return f"{knob.group(1)}{knob.group(2)} = {value}  # tune: {knob.group(4).strip()}"


def run_loop(
    problem_path: Path | str,
    proposer: KernelProposer,
    db_path: Path,
    config: LoopConfig = LoopConfig(),
    progress: bool = True,
    pool: Pool | None = None,
) -> Final | None:
    """Propose, verify, feed back until the budget (or until the proposer has converged), then
    re-measure the top kernels (`remeasure`); None if no kernel was correct. On a database that
    already holds attempts (a stopped run), the loop resumes: the stored attempts and verdicts
    are its history, and the time they took (evaluations and model calls) counts against the
    budget. With a `pool` (Ray's) each verification runs on one of its workers."""
    problem = load_problem(problem_path)
    task = build_task(problem_path, config.size, timing=True)
    db = ProgramDB(db_path)
    db.start_run(problem.name, task.name, {"strategy": config.strategy, "proposer": proposer.name,
                                            "budget_s": config.budget_s, "size": config.size})  # fmt: skip
    history, spent = _history(db)
    start = time.monotonic() - spent
    last: Attempt | None = None
    best: Attempt | None = None
    attempts = list(history)
    for attempt in history:
        proposer.observe(attempt)
        last, best = attempt, better(attempt, best)

    def verify(source: str, on=task) -> Outcome:
        return pool.submit(on, source, frozenset()).result() if pool else on.evaluate(source)

    try:
        with ProgressBar(config.budget_s, f"kernels {problem.name}", unit="s", enabled=progress) as bar:
            for number in range(len(history) + 1, config.max_attempts + 1):
                if time.monotonic() - start >= config.budget_s:
                    break
                try:
                    proposed = proposer.propose(problem, last, best)
                except LLMError:
                    break  # the model is gone: keep what was verified
                if proposed is None:
                    break  # converged
                source, call, author = proposed
                outcome = verify(source)
                seconds = time.monotonic() - start  # the loop's clock, kept with the verdict
                outcome = replace(outcome, metrics={**outcome.metrics, "loop_s": seconds})
                pid = db.add_program(source, (), 0, author, *_identity(source))
                db.add_evaluation(pid, outcome)
                if call is not None:
                    db.add_call(call, pid)
                last = Attempt(number, source, outcome, seconds, pid, author)
                attempts.append(last)
                proposer.observe(last)
                best = better(last, best)
                summary = f"best {best.outcome.score:.3g}x" if best else f"last: {outcome.failure or 'ok'}"
                elapsed = int(min(time.monotonic() - start, config.budget_s))
                bar.update_to(elapsed, postfix=f"{number} attempts, {summary}")
        if best is None:
            return None
        longer = replace(task, context={**task.context, "rounds": 2 * task.context["rounds"]})  # a judge of its own
        say = print if progress else lambda _: None
        return _remeasure(attempts, proposer.seed_source, config.remeasure, lambda src: verify(src, longer), db, say)
    finally:
        db.close()


def _remeasure(attempts: list[Attempt], seed_source: str | None, top: int, verify, db: ProgramDB, say) -> Final | None:
    """The top `top` correct kernels (by their search median) and the seed, verified again with
    more rounds; see the module docstring for how the winner is named."""
    correct = sorted((a for a in attempts if a.outcome.ok), key=lambda a: -a.outcome.score)
    seed = next((a for a in correct if a.source == seed_source), None)
    if not top or not any(a.outcome.metrics.get("timed") for a in correct[:top]):
        return Final(correct[0], seed, False, correct[0].interval[0] > 1)  # as measured in the search
    chosen = {_identity(a.source)[0]: a for a in correct[:top]}
    if seed is not None:  # the seed itself, even where a top attempt is a copy of it (the same kernel)
        chosen[_identity(seed.source)[0]] = seed
    again: list[Attempt] = []
    for number, attempt in enumerate(chosen.values(), start=1):
        say(f"re-measuring {number}/{len(chosen)}: attempt {attempt.number} ({attempt.outcome.score:.3g}x in search)")
        outcome = verify(attempt.source)
        pid = db.add_program(attempt.source, (attempt.program_id,), 0, REMEASURE, *_identity(attempt.source))
        db.add_evaluation(pid, outcome)
        if not outcome.ok:
            say(f"  attempt {attempt.number} failed when verified again: {outcome.failure}: {outcome.message[:160]}")
        again.append(Attempt(attempt.number, attempt.source, outcome, attempt.seconds, pid))
    measured = [a for a in again if a.outcome.ok]
    if not measured:  # every kernel failed its second verification: none is named
        say("no kernel held up when verified again; their verdicts are in the database")
        return None
    winner = max(measured, key=lambda a: a.outcome.score)
    seed_again = next((a for a in measured if a.source == seed_source), None)
    beats_seed = seed_again is not None and winner is not seed_again and winner.interval[0] > seed_again.interval[1]
    if seed_again is not None and not beats_seed:
        winner = seed_again  # faster than the seed by noise alone is not a winner
    final = Final(winner, seed_again, beats_seed, winner.interval[0] > 1)
    verdict = {"winner": True, "beats_seed": beats_seed, "beats_eager": final.beats_eager}
    if seed_again is not None:
        verdict["seed"] = {"speedup": seed_again.outcome.score, "speedup_interval": list(seed_again.interval)}
    db.add_evaluation(winner.program_id, replace(winner.outcome, metrics={**winner.outcome.metrics, **verdict}))
    return final


def beats_beyond_noise(attempt: Attempt, than: Attempt | None) -> bool:
    """Correct, and the lower end of its speed-up interval clears `than`'s median (None: nothing
    to beat): the rule the tuner moves its base by and the mixed search rewards by."""
    return attempt.outcome.ok and (than is None or attempt.interval[0] > than.outcome.score)


def better(attempt: Attempt, best: Attempt | None) -> Attempt | None:
    """The faster correct attempt of the two by the search's median (`best` when `attempt` failed)."""
    return attempt if attempt.outcome.ok and (best is None or attempt.outcome.score > best.outcome.score) else best


def spent(db_path: Path) -> tuple[int, float]:
    """(attempts, seconds) a stopped search has spent: what a new total budget must exceed."""
    if not Path(db_path).is_file():
        return 0, 0.0
    db = ProgramDB(db_path)
    try:
        attempts, seconds = _history(db)
    finally:
        db.close()
    return len(attempts), seconds


def _history(db: ProgramDB) -> tuple[list[Attempt], float]:
    """The attempts a database already holds (not the re-measurements), and the seconds they took."""
    outcomes = db.outcomes()
    programs = [p for p in db.programs() if p.id in outcomes and p.proposer != REMEASURE]
    spent = sum(outcomes[p.id].seconds for p in programs) + sum(c.latency_s for c in db.calls())
    attempts = []
    for number, program in enumerate(programs, start=1):
        outcome = outcomes[program.id]
        seconds = outcome.metrics.get("loop_s", 0.0)
        attempts.append(Attempt(number, program.source, outcome, seconds, program.id, program.proposer))
    return attempts, spent


def _identity(source: str) -> tuple[str, int]:
    """(hash, size) of an attempt; a model's answer that is not Python still gets stored."""
    try:
        return normalized_hash(source), program_size(source)
    except CodeError:
        return hashlib.sha256(source.encode()).hexdigest()[:32], 0
