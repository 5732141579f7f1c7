"""The search's evaluator, run in the sandbox: fit a candidate program to the search subjects
and score it by within-subject cross-validated likelihood.

`make_evaluator(data=..., ...)` is called once in the sandbox's zygote (it loads the data and
JAX there); the function it returns is called in a fresh child per candidate. A cheap probe
comes first, with the compiled likelihood the fit reuses: every choice probability with all
parameters at zero must be finite (else `invalid`), and their hash is the program's behavioural
fingerprint (a program that behaves like one already scored is a `duplicate`, not fitted).
"""

from __future__ import annotations

import hashlib
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

from garagelab.cogsearch.data import load_npz
from garagelab.cogsearch.fit import FitConfig, Likelihood
from garagelab.cogsearch.programs import MAX_PARAMS, Program


def make_evaluator(data: str, restarts: int = 2, max_steps: int = 1000, seed: int = 0):
    dataset = load_npz(data)
    config = FitConfig(restarts=restarts, max_steps=max_steps, seed=seed)

    def evaluate(module: types.ModuleType, fingerprints: set[str]) -> dict:
        agent, count = getattr(module, "agent", None), getattr(module, "num_params", None)
        if not callable(agent):
            return {"failure": "invalid", "message": "the program defines no function `agent`"}
        if not isinstance(count, int) or not 0 <= count <= MAX_PARAMS:
            return {"failure": "invalid", "message": f"num_params must be 0..{MAX_PARAMS}, not {count!r}"}
        start = time.perf_counter()
        used = used_parameters(agent, dataset.n_actions)
        count = max(count, int(used.max()) + 1 if used.size else 0)
        likelihood = Likelihood(Program("candidate", "", agent, count), dataset, config)
        probe = likelihood.probe()
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
                "num_params": int(used.size) or count,
                "fit_seconds": round(time.perf_counter() - start, 3),
                "steps": result.steps,
                "converged": round(result.converged, 3),
                "params_median": np.median(result.params, axis=(0, 1)).round(4).tolist(),
            },
        }

    return evaluate


def used_parameters(agent, n_actions: int) -> np.ndarray:
    """The indices of `params` the agent's outputs depend on (none if it uses the whole vector:
    then the declared `num_params` is all there is to go on).

    A model may edit the function and forget the module's `num_params`; JAX indexing past the
    end of a vector clamps silently, so the evaluator counts for itself: the gradient of a few
    steps' logits and state with respect to a long parameter vector is non-zero exactly where
    a parameter is used."""
    probe = jnp.asarray(np.random.default_rng(0).normal(0.0, 0.5, MAX_PARAMS), dtype=jnp.float32)
    weights = np.random.default_rng(1).normal(size=64)

    def outputs(params):
        total, state = 0.0, None
        for step, (choice, reward) in enumerate([(0, 0.0), (0, 1.0), (1, 1.0), (1, 0.0), (0, 0.0)]):
            logits, state = agent(params, choice % n_actions, reward, state)
            total = (
                total
                + weights[step] * jnp.sum(jnp.asarray(logits))
                + weights[10 + step] * sum(jnp.sum(jnp.asarray(leaf)) for leaf in jax.tree.leaves(state))
            )
        return total

    used = np.flatnonzero(np.asarray(jax.grad(outputs)(probe)) != 0)
    return used if MAX_PARAMS - 1 not in used else np.arange(0)  # the vector used whole: trust num_params
