"""Several proposers in one kernel search: the tuner and a model taking turns as a bandit decides.

Each proposer does what it does alone (the tuner tries knob settings around its base, the model
refines the best kernel so far), and every attempt, whoever proposed it, is shown to all of them:
a model's kernel that keeps the seed's `# tune:` knobs and beats the tuner's base beyond noise
becomes the tuner's new base, and the tuner's best is what the model refines next.

Who proposes next is evolve's UCB bandit (`Bandit`). A pull is rewarded when its kernel beats
the best so far beyond noise (the lower end of its speed-up interval clears the best's median,
the tuner's own rule for moving), and it costs the loop-clock seconds it took (the model call
and the verification), so a proposer is chosen for improvements per second, the currency of a
wall-clock budget. A proposer that has converged (the tuner with no neighbour left) retires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from garagelab.evolve.proposers import Bandit
from garagelab.kernels.loop import (
    Attempt,
    KernelProposer,
    ModelProposer,
    Proposal,
    TuneProposer,
    beats_beyond_noise,
    better,
)
from garagelab.kernels.problems import Problem

SEED = "seed"  # the proposer name of the seed kernel, the first attempt
KINDS = ("tune", "llm", "both")  # `kernels search --proposer`


def proposer_for(
    kind: str, seed_source: str | None, client: Callable[[], Any], seed: int = 0, **model_settings: Any
) -> KernelProposer:
    """The search's proposer of `kind`: "tune" (the knob tuner around `seed_source`), "llm" (a
    model, refining `seed_source` when given) or "both" (the two as a bandit chooses, the seed
    kernel first). `client` is called only when a model is needed, so a tuner-only search starts
    no server; `model_settings` go to `ModelProposer` (strategy, device). A seed kernel without
    knobs raises the tuner's ValueError."""
    if kind not in KINDS:
        raise ValueError(f"proposer {kind!r}: choose one of {', '.join(KINDS)}")
    tuner = None if kind == "llm" else TuneProposer(seed_source, seed=seed)
    if kind == "tune":
        return tuner
    alone = kind == "llm"
    model = ModelProposer(client(), seed=seed, seed_source=seed_source if alone else None, **model_settings)
    return model if alone else MixedProposer({"tune": tuner, "llm": model}, seed_source)


class MixedProposer:
    """`proposers` by name (each given no seed of its own); `seed_source`, when given, is the
    first attempt, as it is for each of them alone."""

    name = "mixed"

    def __init__(self, proposers: dict[str, KernelProposer], seed_source: str | None = None) -> None:
        if not proposers:
            raise ValueError("a mixed search needs at least one proposer")
        self.proposers = proposers
        self.seed_source = seed_source
        self.bandit = Bandit(list(proposers), cost="second")
        self.best: Attempt | None = None
        self.clock = 0.0  # the loop clock at the last attempt: an attempt's cost is the time since

    def observe(self, attempt: Attempt) -> None:
        for proposer in self.proposers.values():
            proposer.observe(attempt)
        if attempt.proposer in self.bandit.pulls:
            reward = float(beats_beyond_noise(attempt, self.best))
            self.bandit.update(attempt.proposer, reward, max(attempt.seconds - self.clock, 1e-3))
        self.clock = max(self.clock, attempt.seconds)
        self.best = better(attempt, self.best)

    def propose(self, problem: Problem, last: Attempt | None, best: Attempt | None) -> Proposal | None:
        if last is None and self.seed_source is not None:
            return Proposal(self.seed_source, None, SEED)
        while self.bandit.arms:
            arm = self.bandit.choose()
            proposal = self.proposers[arm].propose(problem, last, best)
            if proposal is not None:
                return proposal
            self.bandit.retire(arm)  # converged: the others go on
        return None
