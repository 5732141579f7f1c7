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
from garagelab.evolve.sandbox import Limits


@dataclass(frozen=True)
class Task:
    name: str
    description: str  # what the function must do, for prompts
    template: str  # a whole program containing the function to evolve
    function: str  # its name
    evaluator: str  # "module:function"
    allowed_imports: tuple[str, ...] = ("math", "numpy")
    limits: Limits = field(default_factory=Limits)
    mechanisms: tuple[str, ...] = ()  # expressions the mutation proposer may insert
    check_lint: bool = True


def get_task(name: str) -> Task:
    from garagelab.evolve.tasks import TASKS

    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]
