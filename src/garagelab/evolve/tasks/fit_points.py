"""A toy task: evolve f(x) to fit samples of a hidden function (score: minus the mean
squared error). Small enough for tests and the tour, rich enough that mutations help.

The candidate's process only computes f on the points the judge sends (`serve`); the judge
holds the hidden function, checks the answers and computes the error (`judge`)."""

from __future__ import annotations

import hashlib
import types

import numpy as np

from garagelab.evolve.judge import Invalid, expect_array
from garagelab.evolve.sandbox import Limits
from garagelab.evolve.task import Task

X = np.linspace(-3.0, 3.0, 61)
Y = np.sin(X) * X + 0.5 * X
PROBE = np.array([-2.5, -1.0, 0.3, 1.7, 2.9])

TEMPLATE = '''import numpy as np


def f(x):
    """Approximate a hidden function of x (a numpy array) elementwise."""
    return 0.5 * x
'''


def serve(program: types.ModuleType, request: dict) -> np.ndarray:
    """Untrusted side: f at the points asked for."""
    function = program.f
    return np.asarray(function(np.array(request["x"], dtype=float)), dtype=float)


def judge(candidate, fingerprints: set[str]) -> dict:
    """Trusted side: a probe (the behavioural fingerprint), then the error on the hidden samples."""
    probe = expect_array(candidate.call({"x": PROBE}), "f(probe)", PROBE.shape, "f")
    fingerprint = hashlib.sha256(np.round(probe.astype(float), 9).tobytes()).hexdigest()[:16]
    if fingerprint in fingerprints:
        return {"failure": "duplicate", "message": "same outputs as an evaluated program", "fingerprint": fingerprint}
    y = expect_array(candidate.call({"x": X}), "f(x)", X.shape, "f").astype(float)
    if not np.all(np.isfinite(y)):
        raise Invalid("f returned non-finite values")
    mse = float(np.mean((y - Y) ** 2))
    return {"score": -mse, "metrics": {"mse": mse}, "fingerprint": fingerprint}


FIT_POINTS = Task(
    name="fit-points",
    description="f(x) takes a numpy array x in [-3, 3] and returns an array of the same shape approximating a "
    "smooth hidden function. Lower mean squared error on the hidden samples is better. Use numpy only.",
    template=TEMPLATE,
    function="f",
    serve="garagelab.evolve.tasks.fit_points:serve",
    judge="garagelab.evolve.tasks.fit_points:judge",
    allowed_imports=("math", "numpy"),
    limits=Limits(wall_s=10.0, cpu_s=10.0, memory_mb=1024, judge_s=10.0),
    mechanisms=("np.sin(x)", "np.cos(x)", "x * x", "np.abs(x)", "np.tanh(x)", "np.exp(-x * x)", "x"),
)
