"""A small GRU as the flexible upper bound: no cognitive assumptions, fitted to a population.

Input per trial: the one-hot choice just made and its reward; the hidden state resets at each
session's start; logits of the next choice are a linear read-out. It is scored like the
programs on held-out subjects, with the same two folds of their trials: the network trains on
every search subject plus one fold of each held-out subject, and predicts the other fold (one
set of weights for everyone, where a program gets parameters per subject).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from garagelab.cogsearch.data import BehaviourDataset


@dataclass(frozen=True)
class GRUConfig:
    hidden: int = 16
    steps: int = 400
    learning_rate: float = 1e-2
    seed: int = 0


@dataclass(frozen=True)
class GRUResult:
    normalized_likelihood: float
    heldout_loglik: np.ndarray  # [subjects]
    heldout_choices: np.ndarray  # [subjects]
    num_params: int

    @property
    def per_subject(self) -> np.ndarray:
        return np.exp(self.heldout_loglik / np.maximum(self.heldout_choices, 1))


def _init(key: jax.Array, n_actions: int, hidden: int) -> dict:
    inputs = n_actions + 1
    k1, k2, k3 = jax.random.split(key, 3)
    scale = 1.0 / math.sqrt(hidden)
    return {
        "w": jax.random.normal(k1, (inputs, 3 * hidden)) * scale,
        "u": jax.random.normal(k2, (hidden, 3 * hidden)) * scale,
        "b": jnp.zeros(3 * hidden),
        "out": jax.random.normal(k3, (hidden, n_actions)) * scale,
        "out_b": jnp.zeros(n_actions),
    }


def _log_probs(weights: dict, choices, rewards, new_session, n_actions: int) -> jax.Array:
    """[trials] log-probability of each choice (0 where there is none)."""
    hidden = weights["u"].shape[0]

    def step(h, inputs):
        choice, reward, new = inputs
        h = jnp.where(new, 0.0, h)
        logp = jax.nn.log_softmax(h @ weights["out"] + weights["out_b"])[jnp.maximum(choice, 0)]
        x = jnp.concatenate([jax.nn.one_hot(choice, n_actions), reward[None]])
        gates = x @ weights["w"] + weights["b"]
        recurrent = h @ weights["u"]
        z = jax.nn.sigmoid(gates[:hidden] + recurrent[:hidden])
        r = jax.nn.sigmoid(gates[hidden : 2 * hidden] + recurrent[hidden : 2 * hidden])
        candidate = jnp.tanh(gates[2 * hidden :] + r * recurrent[2 * hidden :])
        updated = (1.0 - z) * h + z * candidate
        return jnp.where(choice >= 0, updated, h), jnp.where(choice >= 0, logp, 0.0)

    _, logp = jax.lax.scan(step, jnp.zeros(hidden), (choices, rewards, new_session))
    return logp


def _stack(*datasets: BehaviourDataset) -> tuple[np.ndarray, ...]:
    """Subjects of several data sets in one padded batch."""
    width = max(d.n_trials for d in datasets)

    def pad(name: str, fill) -> np.ndarray:
        rows = [np.pad(getattr(d, name), ((0, 0), (0, width - d.n_trials)), constant_values=fill) for d in datasets]
        return np.concatenate(rows)

    return pad("choices", -1), pad("rewards", 0.0), pad("new_session", False), pad("scored", False)


def fit_gru(search: BehaviourDataset, heldout: BehaviourDataset, config: GRUConfig = GRUConfig()) -> GRUResult:
    """Train on the search subjects and one fold of the held-out ones; score the other fold."""
    n_actions = heldout.n_actions
    choices, rewards, new_session, scored = _stack(search, heldout)
    first = search.n_subjects
    folds = heldout.folds()
    batch = jax.vmap(lambda w, c, r, n: _log_probs(w, c, r, n, n_actions), in_axes=(None, 0, 0, 0))
    arrays = tuple(jnp.asarray(a) for a in (choices, rewards, new_session))

    @jax.jit
    def loss(weights, mask):
        return -(batch(weights, *arrays) * mask).sum() / mask.sum()

    optimizer = optax.adam(config.learning_rate)

    @jax.jit
    def train_step(weights, state, mask):
        value, grads = jax.value_and_grad(loss)(weights, mask)
        updates, state = optimizer.update(grads, state, weights)
        return optax.apply_updates(weights, updates), state, value

    heldout_ll = np.zeros(heldout.n_subjects)
    weights = None
    for fold in range(2):
        train = scored.copy()
        train[first:] = np.pad(folds[fold], ((0, 0), (0, scored.shape[1] - heldout.n_trials)))
        weights = _init(jax.random.PRNGKey(config.seed + fold), n_actions, config.hidden)
        state = optimizer.init(weights)
        mask = jnp.asarray(train, dtype=jnp.float32)
        for _ in range(config.steps):
            weights, state, _ = train_step(weights, state, mask)
        logp = np.asarray(batch(weights, *arrays))[first:, : heldout.n_trials]
        heldout_ll += (logp * folds[1 - fold]).sum(axis=1)
    counted = (folds & (heldout.choices >= 0)[None]).sum(axis=(0, 2))
    value = math.exp(heldout_ll.sum() / counted.sum())
    size = sum(int(np.prod(w.shape)) for w in jax.tree.leaves(weights))
    return GRUResult(value, heldout_ll, counted, size)
