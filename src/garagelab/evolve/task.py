"""What a search needs from a task: a template to start from, the two sides of its evaluation,
and limits.

A task plugs into the engine with nothing else. `template` holds the function to evolve. The
evaluation has two sides (judge.py): `serve` ("module:function", untrusted side) runs in the
candidate's sandboxed process and answers each request with data, serve(candidate_module,
request) -> answer; `judge` ("module:function", trusted side; a factory called once with
`context` when that is given, to load the task's data) decides everything from those answers:
judge(candidate, known_fingerprints) -> {"score": higher is better, "metrics": {...},
"fingerprint": "..."} or {"failure": kind, "message": ...}, asking with candidate.call(request).
`mechanisms` are snippets the offline mutation proposer may splice in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from garagelab.core.errors import UserError
from garagelab.evolve.sandbox import Limits, Outcome


@dataclass(frozen=True)
class Task:
    name: str
    description: str  # what the function must do, for prompts
    template: str  # a whole program containing the function to evolve
    function: str  # its name
    serve: str  # "module:function": the candidate's side, answers requests with data
    judge: str  # "module:function": the trusted side, scores from the answers
    allowed_imports: tuple[str, ...] = ("math", "numpy")
    limits: Limits = field(default_factory=Limits)
    mechanisms: tuple[str, ...] = ()  # expressions the mutation proposer may insert (see proposers.py)
    check_lint: bool = True
    forbidden: tuple[str, ...] = ()  # names and attributes the lint refuses for this task
    context: dict = field(default_factory=dict)  # with it, `judge` is a factory called with it
    module_globals: dict = field(default_factory=dict)  # defined in each candidate before it runs
    parameters: str = ""  # "vector:count": where a mechanism's PARAM gets its fresh parameter
    mutation_weights: tuple[tuple[str, float], ...] = ()  # (operator, weight) for the mutation proposer
    checks: str = ""  # "module:function": the task's static rules, source -> problems
    environment: dict = field(default_factory=dict)  # variables added to the scrubbed environment
    view: tuple[str, ...] = ()  # read-only paths added to the candidate's filesystem (compilers...)
    template_label: str = "template"  # what the template is, for the progress line's comparison

    def spec(self) -> dict:
        """What the judge process needs to know of this task (JSON)."""
        return {
            "name": self.name,
            "serve": self.serve,
            "judge": self.judge,
            "context": self.context,
            "preload": list(self.allowed_imports),
            "check_lint": self.check_lint,
            "forbidden": list(self.forbidden),
            "checks": self.checks,
            "globals": self.module_globals,
            "environment": self.environment,
            "view": list(self.view),
            "limits": asdict(self.limits),
        }

    def evaluate(self, source: str, fingerprints: frozenset[str] = frozenset()) -> Outcome:
        """One candidate: run in the sandbox, judged on the trusted side by this task's rules."""
        from garagelab.evolve.judge import evaluate

        return evaluate(self, source, fingerprints)


def get_task(name: str) -> Task:
    from garagelab.evolve.tasks import TASKS

    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]
