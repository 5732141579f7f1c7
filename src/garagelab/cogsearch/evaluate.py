"""The search's judge (trusted side): fit a candidate program to the search subjects and score
it by within-subject cross-validated likelihood, from the computation its sandbox handed over.

`make_judge(data=..., ...)` is called once in the judge process (it loads the data and JAX
there); the function it returns judges one candidate. The candidate's process only traces its
`agent` (exported.serve) at the params widths asked for; everything else happens here, on the
rebuilt computation: a probe at a fixed point of the parameters counts the ones the program
uses and checks its choice probabilities are finite (else `invalid`); its per-subject losses
are the behavioural fingerprint (a program that behaves like one already scored is a
`duplicate`, not fitted); then the fit and the held-out score.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from garagelab.cogsearch.data import load_npz
from garagelab.cogsearch.exported import params_median, traced
from garagelab.cogsearch.fit import FitConfig, counted


def make_judge(data: str, restarts: int = 2, max_steps: int = 1000, seed: int = 0):
    dataset = load_npz(data)
    config = FitConfig(restarts=restarts, max_steps=max_steps, seed=seed)

    def judge(candidate, fingerprints: set[str]) -> dict:
        start = time.perf_counter()
        likelihood, probe, used = counted(*traced(candidate, dataset.n_actions), dataset, config)
        candidate.stop()  # everything it has to give is in hand: free its CPU for the fit
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
                "params_median": params_median(result.params, used),
            },
        }

    return judge
