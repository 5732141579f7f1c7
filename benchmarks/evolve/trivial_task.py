"""A task whose evaluator does nothing: what is left to time is the engine and the sandbox."""

from __future__ import annotations

import types

from garagelab.evolve.task import Task
from garagelab.evolve.tasks.fit_points import TEMPLATE


def evaluate(program: types.ModuleType, fingerprints: set[str]) -> dict:
    return {"score": 0.0}


TRIVIAL = Task(
    name="trivial",
    description="Any function f(x).",
    template=TEMPLATE,
    function="f",
    evaluator="trivial_task:evaluate",
    mechanisms=("x", "x * x"),
)
