"""Cognitive models as programs, in the CogFunSearch template, and the built-in baselines.

A program is Python source defining `num_params` and

    def agent(params, choice, reward, agent_state) -> (choice_logits, new_agent_state)

in JAX. `params` is a flat vector of `num_params` unconstrained numbers (the program maps them
to the ranges it needs); `N_ACTIONS` (the number of options) is defined for it. Convention:
`agent_state is None` marks the start of a session: the program returns the logits of the
first choice and its initial state (`choice` and `reward` are then placeholders). Otherwise it
gets the choice just made and its reward and returns the logits of the next choice. The logits
of a choice are therefore computed before the choice is seen: a program cannot peek.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Callable
from dataclasses import dataclass

from garagelab.core.errors import UserError

MAX_PARAMS = 64
IMPORTS = ("jax", "jax.numpy", "jax.nn", "jax.lax", "jax.scipy.special", "math")
FORBIDDEN = ("random", "seed", "PRNGKey", "key")  # likelihoods must be deterministic


@dataclass(frozen=True)
class Program:
    name: str
    source: str
    agent: Callable
    num_params: int

    @property
    def size(self) -> int:
        return sum(1 for _ in ast.walk(ast.parse(self.source)))


def load_program(source: str, n_actions: int = 2, name: str = "program") -> Program:
    """Execute `source` as a module and take its `agent` and `num_params`."""
    module = types.ModuleType(name)
    module.N_ACTIONS = n_actions
    try:
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    except Exception as exc:
        raise UserError(f"{name}: the program does not run ({type(exc).__name__}: {exc})") from exc
    return program_of(module, source, name)


def program_of(module: types.ModuleType, source: str = "", name: str = "program") -> Program:
    """The program an executed module defines: its `agent` and `num_params`, checked."""
    agent, count = getattr(module, "agent", None), getattr(module, "num_params", None)
    if not callable(agent):
        raise UserError(f"{name}: the program defines no function `agent`")
    if not isinstance(count, int) or not 0 <= count <= MAX_PARAMS:
        raise UserError(f"{name}: `num_params` must be a whole number from 0 to {MAX_PARAMS}, not {count!r}")
    return Program(name, source, agent, count)


SEED = '''import jax
import jax.numpy as jnp

num_params = 2


def agent(params, choice, reward, agent_state):
    """Q-learning: a value per option, moved towards the reward of the chosen one."""
    p = jnp.clip(params, -5.0, 5.0)
    beta = jax.nn.softplus(p[0]) * 3.0
    alpha = jax.nn.sigmoid(p[1])
    if agent_state is None:
        q = jnp.full(N_ACTIONS, 0.5)
        return beta * q, q
    q = agent_state
    chosen = jax.nn.one_hot(choice, N_ACTIONS)
    delta = reward - q
    q = q + alpha * chosen * delta
    logits = beta * q
    return logits, q
'''

BIAS = '''import jax
import jax.numpy as jnp

num_params = N_ACTIONS - 1


def agent(params, choice, reward, agent_state):
    """Bias only: a fixed preference per option, blind to rewards."""
    logits = jnp.concatenate([jnp.zeros(1), jnp.clip(params[: N_ACTIONS - 1], -5.0, 5.0)])
    return logits, jnp.zeros(1)
'''

FORGETTING_PERSEVERATION = '''import jax
import jax.numpy as jnp

num_params = 4


def agent(params, choice, reward, agent_state):
    """Eckstein et al.'s "best RL": Q-learning, unchosen values decay, choice perseveration."""
    p = jnp.clip(params, -5.0, 5.0)
    beta = jax.nn.softplus(p[0]) * 3.0
    alpha = jax.nn.sigmoid(p[1])
    forget = jax.nn.sigmoid(p[2])
    persev = p[3]
    if agent_state is None:
        state = jnp.concatenate([jnp.full(N_ACTIONS, 0.5), jnp.zeros(N_ACTIONS)])
        return beta * state[:N_ACTIONS], state
    q, last = agent_state[:N_ACTIONS], agent_state[N_ACTIONS:]
    chosen = jax.nn.one_hot(choice, N_ACTIONS)
    q = q + alpha * chosen * (reward - q) + forget * (1.0 - chosen) * (0.5 - q)
    logits = beta * q + persev * chosen
    return logits, jnp.concatenate([q, chosen])
'''

MILLER = '''import jax
import jax.numpy as jnp

num_params = 7


def agent(params, choice, reward, agent_state):
    """Miller et al.'s rat model: fast reward-seeking, slower perseveration (habit), and a
    slow reward trace of free sign (the gambler's fallacy when negative), plus a bias."""
    p = jnp.clip(params, -5.0, 5.0)
    alpha_r, alpha_h, alpha_g = jax.nn.sigmoid(p[0]), jax.nn.sigmoid(p[1]), jax.nn.sigmoid(p[2])
    beta_r, beta_h, beta_g = p[3], p[4], p[5]
    bias = jnp.concatenate([jnp.zeros(1), jnp.full(N_ACTIONS - 1, p[6])])
    if agent_state is None:
        state = jnp.zeros(3 * N_ACTIONS)
        return bias, state
    q, h, g = jnp.split(agent_state, 3)
    chosen = jax.nn.one_hot(choice, N_ACTIONS)
    q = q + alpha_r * chosen * (reward - q)
    h = (1.0 - alpha_h) * h + alpha_h * chosen
    g = g + alpha_g * chosen * (reward - g)
    logits = beta_r * q + beta_h * h + beta_g * g + bias
    return logits, jnp.concatenate([q, h, g])
'''

FLY_FQ = '''import jax
import jax.numpy as jnp

num_params = 2


def agent(params, choice, reward, agent_state):
    """Fly FQ (Mohanta & Turner): the chosen value learns, the unchosen one forgets, at the
    same rate."""
    p = jnp.clip(params, -5.0, 5.0)
    beta = jax.nn.softplus(p[0]) * 3.0
    alpha = jax.nn.sigmoid(p[1])
    if agent_state is None:
        q = jnp.zeros(N_ACTIONS)
        return beta * q, q
    chosen = jax.nn.one_hot(choice, N_ACTIONS)
    q = (1.0 - alpha) * agent_state + alpha * chosen * reward
    return beta * q, q
'''

FLY_DFQ = '''import jax
import jax.numpy as jnp

num_params = 3


def agent(params, choice, reward, agent_state):
    """Fly DFQ (Mohanta & Turner): differential forgetting, one rate for the chosen value and
    another for the unchosen ones."""
    p = jnp.clip(params, -5.0, 5.0)
    beta = jax.nn.softplus(p[0]) * 3.0
    alpha = jax.nn.sigmoid(p[1])
    forget = jax.nn.sigmoid(p[2])
    if agent_state is None:
        q = jnp.zeros(N_ACTIONS)
        return beta * q, q
    chosen = jax.nn.one_hot(choice, N_ACTIONS)
    q = chosen * ((1.0 - alpha) * agent_state + alpha * reward) + (1.0 - chosen) * (1.0 - forget) * agent_state
    return beta * q, q
'''

BASELINES = {
    "bias": BIAS,
    "q-learning": SEED,
    "forgetting-perseveration": FORGETTING_PERSEVERATION,
    "miller-rat": MILLER,
    "fly-fq": FLY_FQ,
    "fly-dfq": FLY_DFQ,
}
