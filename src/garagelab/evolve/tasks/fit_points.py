"""A toy task: evolve f(x) to fit samples of a hidden function (score: minus the mean
squared error). Small enough for tests and the tour, rich enough that mutations help."""

from __future__ import annotations

import hashlib
import types

import numpy as np

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


def evaluate(program: types.ModuleType, fingerprints: set[str]) -> dict:
    function = getattr(program, "f", None)
    if not callable(function):
        return {"failure": "invalid", "message": "the program defines no function f"}
    probe = np.asarray(function(PROBE.copy()), dtype=float)
    if probe.shape != PROBE.shape:
        return {"failure": "invalid", "message": f"f returned shape {probe.shape}, expected {PROBE.shape}"}
    fingerprint = hashlib.sha256(np.round(probe, 9).tobytes()).hexdigest()[:16]
    if fingerprint in fingerprints:
        return {"failure": "duplicate", "message": "same outputs as an evaluated program", "fingerprint": fingerprint}
    y = np.asarray(function(X.copy()), dtype=float)
    if y.shape != X.shape or not np.all(np.isfinite(y)):
        return {"failure": "invalid", "message": "f returned non-finite values or the wrong shape"}
    mse = float(np.mean((y - Y) ** 2))
    return {"score": -mse, "metrics": {"mse": mse}, "fingerprint": fingerprint}


FIT_POINTS = Task(
    name="fit-points",
    description="f(x) takes a numpy array x in [-3, 3] and returns an array of the same shape approximating a "
    "smooth hidden function. Lower mean squared error on the hidden samples is better. Use numpy only.",
    template=TEMPLATE,
    function="f",
    evaluator="garagelab.evolve.tasks.fit_points:evaluate",
    allowed_imports=("math", "numpy"),
    limits=Limits(wall_s=10.0, cpu_s=10.0, memory_mb=1024),
    mechanisms=("np.sin(x)", "np.cos(x)", "x * x", "np.abs(x)", "np.tanh(x)", "np.exp(-x * x)", "x"),
)
