"""The closed loop: propose a kernel, verify it, turn the verdict into the next prompt, until a
wall-clock budget runs out (NVIDIA ran theirs 15 minutes per problem).

Strategies: `refine` (NVIDIA's and Kevin's: each request shows the last attempt and its verdict;
after a correct kernel, the best one so far), `best-of-n` (every request is the opening one,
independent samples). Proposers: a model through any OpenAI-compatible endpoint, or, with no
model, `TuneProposer`, which tunes the numeric knobs a seed kernel marks `# tune: a, b, c`
(tile sizes, unroll factors, thread counts) against the verifier. Every attempt, verdict and
model call is kept in an evolve program database (SQLite), so a run can be inspected with the
evolve verbs and nothing is lost if it stops.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from garagelab.core.progress import ProgressBar
from garagelab.evolve.code import CodeError, normalized_hash, program_size
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.sandbox import Outcome
from garagelab.kernels.feedback import extract_code, first_prompt, refine_prompt
from garagelab.kernels.problems import Problem, load_problem
from garagelab.kernels.task import build_task
from garagelab.llm.client import LLMClient, LLMError
from garagelab.llm.records import CallRecord

STRATEGIES = ("refine", "best-of-n")
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


class ModelProposer:
    """Asks a model; the prompt follows the strategy."""

    name = "llm"

    def __init__(self, client: LLMClient, strategy: str = "refine", **settings) -> None:
        self.client = client
        self.strategy = strategy
        self.settings = settings

    def propose(self, problem, last, best):
        shown = best if best is not None and best.outcome.ok else last
        if self.strategy == "best-of-n" or shown is None:
            messages = first_prompt(problem)
        else:
            messages = refine_prompt(problem, shown.source, shown.outcome)
        call = self.client.chat(messages, **self.settings)
        return extract_code(call.text), call


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

    def propose(self, problem, last, best):
        base = best.source if best is not None and best.outcome.ok else self.seed_source
        if last is None:
            self.tried.add(_identity(self.seed_source)[0])
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
) -> Attempt | None:
    """Propose, verify, feed back until the budget; returns the fastest correct attempt."""
    problem = load_problem(problem_path)
    task = build_task(problem_path, config.size, timing=True)
    db = ProgramDB(db_path)
    db.start_run(problem.name, task.name, {"strategy": config.strategy, "proposer": proposer.name,
                                            "budget_s": config.budget_s, "size": config.size})  # fmt: skip
    start = time.monotonic()
    last: Attempt | None = None
    best: Attempt | None = None
    try:
        with ProgressBar(config.budget_s, f"kernels {problem.name}", unit="s", enabled=progress) as bar:
            for number in range(1, config.max_attempts + 1):
                if time.monotonic() - start >= config.budget_s:
                    break
                try:
                    source, call = proposer.propose(problem, last, best)
                except LLMError:
                    break  # the model is gone: keep what was verified
                outcome = task.evaluate(source)
                pid = db.add_program(source, (), 0, proposer.name, *_identity(source))
                db.add_evaluation(pid, outcome)
                if call is not None:
                    db.add_call(call, pid)
                last = Attempt(number, source, outcome, time.monotonic() - start)
                if outcome.ok and (best is None or outcome.score > best.outcome.score):
                    best = last
                summary = f"best {best.outcome.score:.3g}x" if best else f"last: {outcome.failure or 'ok'}"
                bar.update_to(min(time.monotonic() - start, config.budget_s), postfix=f"{number} attempts, {summary}")
    finally:
        db.close()
    return best


def _identity(source: str) -> tuple[str, int]:
    """(hash, size) of an attempt; a model's answer that is not Python still gets stored."""
    try:
        return normalized_hash(source), program_size(source)
    except CodeError:
        return hashlib.sha256(source.encode()).hexdigest()[:32], 0
