"""The search's evaluator, run in the sandbox: fit a candidate program to the search subjects
and score it by within-subject cross-validated likelihood.

`make_evaluator(data=..., ...)` is called once in the sandbox's zygote (it loads the data and
JAX there, and traces the seed's fit step so that children start with JAX's tracing caches
filled); the function it returns is called in a fresh child per candidate. One compiled
optimiser step serves everything (`fit.counted`): a probe at a fixed point of the parameters
counts the ones the program uses and checks its choice probabilities are finite (else
`invalid`); its per-subject losses are the behavioural fingerprint (a program that behaves like
one already scored is a `duplicate`, not fitted); then the fit and the held-out score.
"""

from __future__ import annotations

import hashlib
import time
import types

import numpy as np

from garagelab.cogsearch.data import load_npz
from garagelab.cogsearch.fit import FitConfig, counted, warm_tracing
from garagelab.cogsearch.programs import program_of
from garagelab.core.errors import UserError


def make_evaluator(data: str, restarts: int = 2, max_steps: int = 1000, seed: int = 0):
    dataset = load_npz(data)
    config = FitConfig(restarts=restarts, max_steps=max_steps, seed=seed)
    warm_tracing(dataset, config)

    def evaluate(module: types.ModuleType, fingerprints: set[str]) -> dict:
        try:
            program = program_of(module, name="candidate")
        except UserError as exc:
            return {"failure": "invalid", "message": str(exc)}
        start = time.perf_counter()
        likelihood, probe, used = counted(program, dataset, config)
        if not np.all(np.isfinite(probe)):
            return {"failure": "invalid", "message": "non-finite choice probabilities at a test point"}
        fingerprint = hashlib.sha256(np.round(probe, 3).tobytes()).hexdigest()[:16]
        if fingerprint in fingerprints:
            return {"failure": "duplicate", "message": "behaves like a scored program", "fingerprint": fingerprint}
        result = likelihood.fit()
        if not np.isfinite(result.normalized_likelihood):
            return {"failure": "invalid", "message": "non-finite likelihood after fitting", "fingerprint": fingerprint}
        return {
            "score": result.normalized_likelihood,
            "fingerprint": fingerprint,
            "metrics": {
                "num_params": int(used.size),
                "fit_seconds": round(time.perf_counter() - start, 3),
                "steps": result.steps,
                "converged": round(result.converged, 3),
                "params_median": np.median(result.params[..., used], axis=(0, 1)).round(4).tolist(),
            },
        }

    return evaluate
