"""A plain NumPy/SciPy implementation of the Q-learning seed's likelihood and fit: the way such
models are usually fitted (a Python loop over trials, L-BFGS-B per subject). It checks the JAX
path (same numbers) and is the anchor of the fitting benchmark (same fits, how much faster)."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize

from garagelab.cogsearch.data import BehaviourDataset


def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def q_learning_loglik(
    params: np.ndarray,
    choices: np.ndarray,
    rewards: np.ndarray,
    new_session: np.ndarray,
    mask: np.ndarray,
    n_actions: int = 2,
) -> float:
    """log p(masked choices) of one subject under the seed program (programs.SEED)."""
    p = np.clip(params, -5.0, 5.0)
    beta = _softplus(p[0]) * 3.0
    alpha = 1.0 / (1.0 + math.exp(-p[1]))
    q = np.full(n_actions, 0.5)
    total = 0.0
    for t in range(len(choices)):
        if new_session[t]:
            q = np.full(n_actions, 0.5)
        choice = choices[t]
        if choice < 0:
            continue
        logits = beta * q
        if mask[t]:
            top = logits.max()
            total += logits[choice] - top - math.log(np.exp(logits - top).sum())
        q[choice] += alpha * (rewards[t] - q[choice])
    return total


def _negative(params: np.ndarray, *args) -> float:
    return -q_learning_loglik(params, *args)


def fit_q_learning(data: BehaviourDataset, mask: np.ndarray, restarts: int = 2, seed: int = 0) -> np.ndarray:
    """[subjects, 2] maximum-likelihood parameters on the masked trials, L-BFGS-B per subject."""
    rng = np.random.default_rng(seed)
    out = np.zeros((data.n_subjects, 2))
    for s in range(data.n_subjects):
        args = (data.choices[s], data.rewards[s], data.new_session[s], mask[s], data.n_actions)
        best = None
        for restart in range(restarts):
            start = np.zeros(2) if restart == 0 else rng.normal(0.0, 1.0, 2)
            result = minimize(_negative, start, args=args, method="L-BFGS-B", bounds=[(-5.0, 5.0)] * 2)
            if best is None or result.fun < best.fun:
                best = result
        out[s] = best.x
    return out
