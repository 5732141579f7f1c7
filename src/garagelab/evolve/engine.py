"""The search loop: propose, deduplicate, evaluate in parallel, store, select. One writer.

Proposals are asked by up to `samplers` threads at once (a model endpoint answers in seconds
while a core waits; the client bounds the calls per endpoint and per minute) while up to
`workers` evaluations run; the main thread alone chooses parents, writes the database and
updates islands and bandit. Proposing stops running ahead of the evaluations: proposals and
evaluations in flight stay within workers + samplers - 1 (with one sampler, today's limit of
`workers`). Every proposal is written to the database before it is evaluated and every
evaluation the moment it ends, so a run killed at any point resumes with nothing evaluated lost
(programs proposed but not evaluated are evaluated on resume; a model call still in flight at
a kill never answered, and is asked again). Programs with a known normalised AST are never
evaluated again; programs whose outputs match an evaluated one stop at the evaluator's cheap
probe ("duplicate").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from garagelab.core.errors import UserError
from garagelab.core.progress import ProgressBar
from garagelab.evolve.code import normalized_hash, program_size
from garagelab.evolve.database import Program, ProgramDB
from garagelab.evolve.islands import Islands, MapElites, Member
from garagelab.evolve.pool import Pool
from garagelab.evolve.proposers import Bandit, Proposal, Proposer
from garagelab.evolve.sandbox import Outcome
from garagelab.evolve.task import Task
from garagelab.llm.records import CallRecord


@dataclass(frozen=True)
class EngineConfig:
    budget: int = 200  # evaluations, the template's included
    islands: int = 4
    workers: int = 2
    samplers: int = 1  # proposals asked at once (model calls in flight)
    parents: int = 2  # programs shown to a proposer
    temperature: float = 0.1
    temperature_period: int = 100
    reset_every: int = 100  # evaluations between resets of the weakest islands (0: never)
    map_elites: str = ""  # a metric name: select parents from a MAP-Elites grid instead
    max_size: int = 400
    max_failed_proposals: int = 200  # give up when proposers keep failing in a row
    seed: int = 0
    # budgets besides evaluations (0: none); the search stops proposing once one is spent,
    # finishes the evaluations in flight, and can be resumed with a larger one
    max_model_tokens: int = 0  # prompt + completion tokens of every model call, resumed runs included
    max_cost: float = 0.0  # money, at price_per_mtok
    price_per_mtok: tuple[float, float] = (0.0, 0.0)  # (prompt, completion) per million tokens
    # per model asked (a call's request "model"): its own price, over price_per_mtok
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    max_minutes: float = 0.0  # wall-clock of this session of the search
    bandit_cost: str = "proposal"  # what a proposer's yield is counted per: proposal, second or money

    @property
    def priced(self) -> bool:
        """Whether model calls have a price (a cost to count and show)."""
        return any(self.price_per_mtok) or bool(self.prices)


def model_of(call: CallRecord) -> str:
    """The model a call asked for (what prices are keyed by), else the one that answered."""
    return str(call.request.get("model") or call.model)


@dataclass
class Spend:
    """What the search's model calls cost so far, per model asked (replayed calls count what
    they cost when made)."""

    by_model: dict[str, list[int]] = field(default_factory=dict)  # model: [calls, prompt, completion tokens]

    def add(self, call: CallRecord) -> None:
        row = self.by_model.setdefault(model_of(call), [0, 0, 0])
        row[0] += 1
        row[1] += call.prompt_tokens
        row[2] += call.completion_tokens

    @property
    def calls(self) -> int:
        return sum(row[0] for row in self.by_model.values())

    @property
    def tokens(self) -> int:
        return sum(row[1] + row[2] for row in self.by_model.values())

    def cost(self, config: EngineConfig) -> float:
        return sum(
            _money(model, prompt, completion, config) for model, (_, prompt, completion) in self.by_model.items()
        )


def call_cost(call: CallRecord, config: EngineConfig) -> float:
    """One call's money at its model's price."""
    return _money(model_of(call), call.prompt_tokens, call.completion_tokens, config)


def _money(model: str, prompt: int, completion: int, config: EngineConfig) -> float:
    price = config.prices.get(model, config.price_per_mtok)
    return (prompt * price[0] + completion * price[1]) / 1e6


@dataclass
class EngineStats:
    proposed: int = 0
    duplicates: int = 0
    failed_proposals: int = 0
    started: float = 0.0


class Engine:
    def __init__(
        self,
        task: Task,
        db: ProgramDB,
        config: EngineConfig,
        proposers: dict[str, Proposer],
        pool: Pool,
        on_evaluation: Callable[[Engine, Program, Outcome], None] | None = None,
        progress: bool = True,
    ) -> None:
        self.task = task
        self.db = db
        self.config = config
        self.proposers = proposers
        self.pool = pool
        self.on_evaluation = on_evaluation  # called after each stored evaluation (live view, metrics)
        self.progress = progress
        self.rng = np.random.default_rng(config.seed)
        self.islands = Islands(config.islands, config.temperature, config.temperature_period)
        self.elites = MapElites(config.map_elites) if config.map_elites else None
        self.bandit = Bandit(list(proposers), cost=config.bandit_cost)
        self.stats = EngineStats(started=time.time())
        self.hashes: set[str] = set()
        self.fingerprints: set[str] = set()
        self.history: list[tuple[int, float]] = []  # (evaluation number, best score so far)
        self.template_score: float | None = None
        self.spend = Spend()
        self.asked: dict[int, CallRecord] = {}  # the model call behind each program in flight
        self.stopped = ""  # the budget that stopped the search before its evaluations, if one did

    # -- state -------------------------------------------------------------------------------
    def _admit(self, program: Program, score: float, metrics: dict | None) -> bool:
        member = Member(program.id, score, program.size, program.source)
        improved = self.islands.add(program.island, member)
        if self.elites is not None:
            self.elites.add(member, metrics or {})
        return improved

    def _restore(self) -> list[Program]:
        """Rebuild islands, hashes and history from the database; returns unevaluated programs."""
        pending = []
        best = -np.inf
        for program in self.db.programs():
            self.hashes.add(program.ast_hash)
            if not program.evaluated:
                pending.append(program)
                continue
            if program.score is not None and not program.failure:
                best = max(best, program.score)
                if program.proposer == "template":
                    self.template_score = program.score
                for island in range(self.config.islands) if program.proposer == "template" else [program.island]:
                    self._admit(Program(**{**program.__dict__, "island": island}), program.score, program.metrics)
            self.history.append((len(self.history) + 1, best))
        self.fingerprints = self.db.fingerprints()
        self.spend = Spend(
            {model: [calls, prompt, completion] for model, calls, prompt, completion, _ in self.db.calls_by_model()}
        )
        return pending

    def evaluated(self) -> int:
        return len(self.history)

    def best(self) -> Member | None:
        return self.islands.best()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> Member | None:
        pending = self._restore()
        if not self.db.programs():
            source = self.task.template
            pid = self.db.add_program(source, (), 0, "template", normalized_hash(source), program_size(source))
            self.hashes.add(normalized_hash(source))
            pending = [self.db.program(pid)]
        in_flight: dict[Future, Program] = {}  # evaluations
        asking: dict[Future, tuple[str, int]] = {}  # proposals: (proposer, island)
        for program in pending:
            in_flight[self._evaluate(program)] = program
        samplers = ThreadPoolExecutor(self.config.samplers, thread_name_prefix="sampler")
        try:
            self._loop(in_flight, asking, samplers)
        finally:  # on an error or Ctrl-C, do not wait for model calls still in flight
            samplers.shutdown(wait=False, cancel_futures=True)
        for future in in_flight:
            future.cancel()  # programs stay in the database and are evaluated on resume
        return self.best()

    def _loop(
        self, in_flight: dict[Future, Program], asking: dict[Future, tuple[str, int]], samplers: ThreadPoolExecutor
    ) -> None:
        budget, ahead = self.config.budget, self.config.workers + self.config.samplers - 1
        with ProgressBar(budget, f"evolve {self.task.name}", unit="evals", enabled=self.progress) as bar:
            bar.update_to(self.evaluated())
            island_cursor = 0
            while self.evaluated() < budget:
                while (
                    len(asking) < self.config.samplers
                    and len(in_flight) + len(asking) < ahead
                    and self.evaluated() + len(in_flight) + len(asking) < budget
                ):
                    if self.islands.best() is None or self.stats.failed_proposals >= self.config.max_failed_proposals:
                        break  # nothing to build on until the template is scored, or proposers are stuck
                    self.stopped = self.stopped or self._spent()
                    if self.stopped:
                        break
                    island = island_cursor % self.config.islands
                    island_cursor += 1
                    if (job := self._ask(island, samplers)) is not None:
                        asking[job[0]] = job[1]
                if not in_flight and not asking:  # a spent budget stops here: every answer asked for is in
                    if self.stats.failed_proposals >= self.config.max_failed_proposals or self.stopped:
                        break  # the proposers keep failing or repeating themselves, or a budget is spent
                    continue
                done, _ = wait([*in_flight, *asking], return_when=FIRST_COMPLETED)
                for future in done:
                    if future in asking:
                        program = self._take(future, *asking.pop(future))
                        if program is not None:
                            in_flight[self._evaluate(program)] = program
                        continue
                    program, outcome = in_flight.pop(future), _result(future)
                    self._finish(program, outcome)
                    bar.update_to(self.evaluated(), postfix=self._progress_note())
                    if self.on_evaluation is not None:
                        self.on_evaluation(self, program, outcome)

    def _spent(self) -> str:
        """Which budget is spent, said with its numbers ("" while none is)."""
        config, spend = self.config, self.spend
        if config.max_model_tokens and spend.tokens >= config.max_model_tokens:
            return f"model token budget spent ({spend.tokens:,} of {config.max_model_tokens:,} tokens)"
        cost = spend.cost(config)
        if config.max_cost and cost >= config.max_cost:
            return f"cost budget spent ({cost:.4g} of {config.max_cost:g})"
        minutes = (time.time() - self.stats.started) / 60
        if config.max_minutes and minutes >= config.max_minutes:
            return f"time budget spent ({minutes:.1f} of {config.max_minutes:g} minutes)"
        return ""

    def _progress_note(self) -> str:
        """The best score beside the template's, so a number on the terminal has something to
        compare with, and the model calls' spend once there is any."""
        best = self.best()
        if best is None:
            return ""
        reference = f", {self.task.template_label} {self.template_score:.4g}" if self.template_score is not None else ""
        spend = ""
        if self.spend.calls:
            limit = f"/{self.config.max_model_tokens:,}" if self.config.max_model_tokens else ""
            spend = f", {self.spend.tokens:,}{limit} model tokens"
            if self.config.priced:
                spend += f", cost {self.spend.cost(self.config):.4g}"
        return f"best {best.score:.4g}{reference}{spend}"

    def _evaluate(self, program: Program) -> Future:
        return self.pool.submit(self.task, program.source, frozenset(self.fingerprints))

    def _ask(self, island: int, samplers: ThreadPoolExecutor) -> tuple[Future, tuple[str, int]] | None:
        """Choose parents and a proposer here (the main thread owns islands, bandit and the
        engine's generator) and ask for a proposal on a sampler thread, with its own generator."""
        temperature = self.islands.temperature_at(self.evaluated())
        if self.elites is not None:
            parents = self.elites.sample(self.config.parents, self.rng)
        else:
            parents = self.islands.islands[island].sample(self.config.parents, temperature, self.rng)
        if not parents:
            return None
        arm = self.bandit.choose()
        self.stats.proposed += 1
        rng = np.random.default_rng(self.rng.integers(2**63))
        return samplers.submit(self.proposers[arm].propose, parents, rng), (arm, island)

    def _take(self, future: Future, arm: str, island: int) -> Program | None:
        """A sampler's answer: stored as a program to evaluate, or counted as a failed proposal."""
        try:
            proposal: Proposal = future.result()
            ast_hash = normalized_hash(proposal.source)
            size = program_size(proposal.source)
        # an unusable answer, an unreachable model, a program Python's parser chokes on (seen:
        # SystemError "AST constructor recursion depth mismatch"): that proposal fails, not the run
        except Exception as exc:
            self.stats.failed_proposals += 1
            call = getattr(exc, "call", None)
            self.bandit.update(arm, 0.0, self._pull_cost(call, 0.0))
            if call is not None:
                self._record(call)
            return None
        if ast_hash in self.hashes:  # the same program again: never evaluated twice
            self.stats.duplicates += 1
            self.stats.failed_proposals += 1
            self.bandit.update(arm, 0.0, self._pull_cost(proposal.call, 0.0))
            if proposal.call is not None:
                self._record(proposal.call)
            return None
        self.hashes.add(ast_hash)
        pid = self.db.add_program(proposal.source, proposal.parents, island, proposal.proposer, ast_hash, size)
        if proposal.call is not None:
            self._record(proposal.call, pid)
            self.asked[pid] = proposal.call
        self.stats.failed_proposals = 0
        return Program(pid, proposal.source, proposal.parents, island, proposal.proposer, ast_hash, size)

    def _pull_cost(self, call: CallRecord | None, evaluation_s: float) -> float:
        """What one proposal cost, in the unit the bandit counts yield per: 1 (a proposal),
        seconds (its model call and its evaluation) or money (its model call)."""
        if self.config.bandit_cost == "second":
            return (call.latency_s if call else 0.0) + evaluation_s
        if self.config.bandit_cost == "money":
            return call_cost(call, self.config) if call else 0.0
        return 1.0

    def _record(self, call: CallRecord, program_id: int | None = None) -> None:
        self.db.add_call(call, program_id)
        self.spend.add(call)

    def _finish(self, program: Program, outcome: Outcome) -> None:
        self.db.add_evaluation(program.id, outcome)
        if program.proposer == "template" and not outcome.ok:
            raise UserError(
                f"task {self.task.name}: its template fails ({outcome.failure}: {outcome.message[:300]}); fix the task"
            )
        improved = False
        if outcome.ok:
            if program.proposer == "template":
                self.template_score = outcome.score
                if self.elites is not None:
                    self.elites.require(outcome.metrics or {}, self.task.name)
            if outcome.fingerprint:
                self.fingerprints.add(outcome.fingerprint)
            islands = range(self.config.islands) if program.proposer == "template" else [program.island]
            for island in islands:
                improved |= self._admit(
                    Program(**{**program.__dict__, "island": island}), outcome.score, outcome.metrics
                )
        if program.proposer in self.bandit.pulls:
            cost = self._pull_cost(self.asked.pop(program.id, None), outcome.seconds)
            self.bandit.update(program.proposer, 1.0 if improved else 0.0, cost)
        best = self.best()
        self.history.append((self.evaluated() + 1, best.score if best else -np.inf))
        if self.config.reset_every and self.evaluated() % self.config.reset_every == 0:
            self.islands.reset_weakest(self.rng)


def _result(future: Future) -> Outcome:
    """An evaluation's outcome; an error while handling it fails that program, not the search
    (seen: CPython's "AST constructor recursion depth mismatch" on a pathological program)."""
    try:
        return future.result()
    except Exception as exc:
        message = f"error while evaluating: {type(exc).__name__}: {exc}"
        return Outcome(None, failure="task_error", message=message[:1000])
