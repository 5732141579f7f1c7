"""What a search needs from a task: a template to start from, an evaluator, and limits.

A task plugs into the engine with nothing else: `template` holds the function to evolve,
`evaluator` names "module:function" called in the sandbox as f(candidate_module,
known_fingerprints) -> {"score": higher is better, "metrics": {...}, "fingerprint": "..."}
(or {"failure": kind, "message": ...}), and `mechanisms` are snippets the offline mutation
proposer may splice in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from garagelab.core.errors import UserError
from garagelab.evolve.sandbox import Limits, Outcome, evaluate


@dataclass(frozen=True)
class Task:
    name: str
    description: str  # what the function must do, for prompts
    template: str  # a whole program containing the function to evolve
    function: str  # its name
    evaluator: str  # "module:function"
    allowed_imports: tuple[str, ...] = ("math", "numpy")
    limits: Limits = field(default_factory=Limits)
    mechanisms: tuple[str, ...] = ()  # expressions the mutation proposer may insert (see proposers.py)
    check_lint: bool = True
    forbidden: tuple[str, ...] = ()  # names and attributes the lint refuses for this task
    context: dict = field(default_factory=dict)  # with it, `evaluator` is a factory called with it
    module_globals: dict = field(default_factory=dict)  # defined in each candidate before it runs
    parameters: str = ""  # "vector:count": where a mechanism's PARAM gets its fresh parameter
    mutation_weights: tuple[tuple[str, float], ...] = ()  # (operator, weight) for the mutation proposer
    checks: str = ""  # "module:function": the task's static rules, source -> problems (sandbox.evaluate)
    environment: dict = field(default_factory=dict)  # variables added to the candidate's scrubbed environment

    def sandbox(self) -> dict:
        """The keyword arguments of `sandbox.evaluate` for this task."""
        return {
            "evaluator": self.evaluator,
            "limits": self.limits,
            "allowed_imports": self.allowed_imports,
            "check_lint": self.check_lint,
            "forbidden": self.forbidden,
            "context": self.context,
            "module_globals": self.module_globals,
            "checks": self.checks,
            "environment": self.environment,
        }

    def evaluate(self, source: str, fingerprints: frozenset[str] = frozenset()) -> Outcome:
        """One candidate judged in the sandbox by this task's evaluator, limits and rules."""
        return evaluate(source, fingerprints=fingerprints, **self.sandbox())


def get_task(name: str) -> Task:
    from garagelab.evolve.tasks import TASKS

    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]
