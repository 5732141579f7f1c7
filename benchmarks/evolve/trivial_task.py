"""A task whose evaluation does nothing: what is left to time is the engine, the sandbox and the
trust boundary (a candidate's process started, walled in, asked once; the judge's answer)."""

from __future__ import annotations

import types

from garagelab.evolve.task import Task
from garagelab.evolve.tasks.fit_points import TEMPLATE


def serve(program: types.ModuleType, request: dict) -> float:
    return 0.0


def judge(candidate, fingerprints: set[str]) -> dict:
    candidate.call({})
    return {"score": 0.0}


TRIVIAL = Task(
    name="trivial",
    description="Any function f(x).",
    template=TEMPLATE,
    function="f",
    serve="trivial_task:serve",
    judge="trivial_task:judge",
    mechanisms=("x", "x * x"),
)
