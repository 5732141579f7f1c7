"""Synthetic choice data with a known generating model: a bandit environment and an agent.

Any program in the template generates data: each subject's agent plays `sessions` sessions of
`trials` trials of a k-armed bandit whose reward probabilities drift (a Gaussian random walk,
reflected into [0, 1], as in Miller et al.'s rat task), choosing from the softmax of its logits.
Subjects are vmapped and trials scanned, so generating thousands of choices takes a second.

`GENERATORS` are the ground-truth agents of the recovery experiments, with population means of
their parameters in natural units; `AFP` (asymmetric learning + forgetting + perseveration) is
none of the baselines, so a search has to discover it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from garagelab.cogsearch.data import BehaviourDataset
from garagelab.cogsearch.programs import BASELINES, Program, load_program


@dataclass(frozen=True)
class Bandit:
    """A drifting k-armed bandit."""

    n_actions: int = 2
    drift: float = 0.15  # standard deviation of each arm's step per trial
    start_low: float = 0.2
    start_high: float = 0.8


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _softplus_inverse(y: float) -> float:
    return math.log(math.expm1(y))


AFP = '''import jax
import jax.numpy as jnp

num_params = 5


def agent(params, choice, reward, agent_state):
    """Asymmetric learning rates (gains and losses), forgetting of unchosen values, perseveration."""
    p = jnp.clip(params, -5.0, 5.0)
    beta = jax.nn.softplus(p[0]) * 3.0
    alpha_gain, alpha_loss = jax.nn.sigmoid(p[1]), jax.nn.sigmoid(p[2])
    forget = jax.nn.sigmoid(p[3])
    persev = p[4]
    if agent_state is None:
        q = jnp.full(N_ACTIONS, 0.5)
        return beta * q, q
    chosen = jax.nn.one_hot(choice, N_ACTIONS)
    delta = reward - agent_state
    alpha = jnp.where(delta > 0, alpha_gain, alpha_loss)
    q = agent_state + alpha * chosen * delta + forget * (1.0 - chosen) * (0.5 - agent_state)
    return beta * q + persev * chosen, q
'''

# name: (source, mean parameters in the program's unconstrained units)
GENERATORS: dict[str, tuple[str, tuple[float, ...]]] = {
    "afp": (AFP, (_softplus_inverse(5.0 / 3.0), _logit(0.6), _logit(0.08), _logit(0.25), 1.0)),
    "q-learning": (BASELINES["q-learning"], (_softplus_inverse(5.0 / 3.0), _logit(0.3))),
    "forgetting-perseveration": (
        BASELINES["forgetting-perseveration"],
        (_softplus_inverse(5.0 / 3.0), _logit(0.3), _logit(0.2), 0.8),
    ),
    "miller-rat": (BASELINES["miller-rat"], (_logit(0.6), _logit(0.2), _logit(0.05), 3.0, 1.5, -1.0, 0.1)),
}


def simulate(
    program: Program,
    params: np.ndarray,
    sessions: int = 2,
    trials: int = 250,
    bandit: Bandit = Bandit(),
    seed: int = 0,
    name: str = "synthetic",
) -> BehaviourDataset:
    """Data from `program` with one parameter row per subject (params: [subjects, num_params])."""
    params = jnp.asarray(np.atleast_2d(params), dtype=jnp.float32)
    n_subjects, k = params.shape[0], bandit.n_actions
    agent = program.agent

    def one_session(theta, key):
        start_key, walk_key, choice_key, reward_key = jax.random.split(key, 4)
        probabilities = jax.random.uniform(start_key, (k,), minval=bandit.start_low, maxval=bandit.start_high)
        logits, state = agent(theta, 0, 0.0, None)

        def step(carry, keys):
            logits, state, probabilities = carry
            choose, reward_draw, walk = keys
            choice = jax.random.categorical(choose, logits)
            reward = (jax.random.uniform(reward_draw) < probabilities[choice]).astype(jnp.float32)
            logits, state = agent(theta, choice, reward, state)
            probabilities = probabilities + bandit.drift * jax.random.normal(walk, (k,))
            probabilities = jnp.abs(probabilities)  # reflect into [0, 1]
            probabilities = 1.0 - jnp.abs(1.0 - probabilities)
            return (logits, state, probabilities), (choice, reward)

        keys = (
            jax.random.split(choice_key, trials),
            jax.random.split(reward_key, trials),
            jax.random.split(walk_key, trials),
        )
        _, (choices, rewards) = jax.lax.scan(step, (logits, state, probabilities), keys)
        return choices, rewards

    def one_subject(theta, key):
        return jax.vmap(one_session, in_axes=(None, 0))(theta, jax.random.split(key, sessions))

    keys = jax.random.split(jax.random.PRNGKey(seed), n_subjects)
    choices, rewards = jax.jit(jax.vmap(one_subject))(params, keys)  # [S, sessions, trials]
    choices = np.asarray(choices, dtype=np.int64).reshape(n_subjects, sessions * trials)
    rewards = np.asarray(rewards, dtype=np.float64).reshape(n_subjects, sessions * trials)
    new_session = np.zeros_like(choices, dtype=bool)
    new_session[:, ::trials] = True
    return BehaviourDataset(
        choices,
        rewards,
        new_session,
        np.ones_like(choices, dtype=bool),
        tuple(f"s{i:03d}" for i in range(n_subjects)),
        k,
        name,
        {"generator": program.name, "params": np.asarray(params).tolist(), "bandit": vars(bandit)},
    )


def generate(
    generator: str = "afp",
    subjects: int = 40,
    sessions: int = 2,
    trials: int = 250,
    spread: float = 0.3,
    n_actions: int = 2,
    seed: int = 0,
) -> BehaviourDataset:
    """A synthetic population: each subject's parameters are the generator's means plus
    Gaussian noise of `spread` (unconstrained units)."""
    source, means = GENERATORS[generator]
    program = load_program(source, n_actions, generator)
    rng = np.random.default_rng(seed)
    params = np.asarray(means) + spread * rng.normal(size=(subjects, len(means)))
    return simulate(program, params, sessions, trials, Bandit(n_actions), seed, f"synthetic-{generator}")
