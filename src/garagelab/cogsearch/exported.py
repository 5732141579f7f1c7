"""Cognitive-model programs across the trust boundary: traced where they run, rebuilt where
they are scored.

A program's `agent(params, choice, reward, agent_state)` becomes two computations (computation.py):
`init(params, choice, reward) -> (logits, *state)` (the session's start, `agent_state=None`) and
`step(params, choice, reward, *state) -> (logits, *state)`, traced at a params vector of the
width asked for. The trusted side rebuilds both, checks that the logits are `N_ACTIONS` floats,
that the state keeps its shapes from step to step and stays small, and that a step costs a
bounded amount of work, then wraps them as an `agent` with the program's interface: the fit,
the probe, the simulators and the report use it as they would the program itself.

Every program the judge or the report scores goes this way: a discovered (untrusted) program
is traced in its sandbox (`traced`), a built-in one in-process (`trusted_program`), so both are
fitted through the same rebuilt computation.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from garagelab.cogsearch.programs import IMPORTS, MAX_PARAMS, SEED, Program, load_program, program_of
from garagelab.evolve.computation import export, load, work
from garagelab.evolve.judge import Invalid
from garagelab.evolve.sandbox import Candidate, Limits, Sandbox

MAX_STATE = 4096  # numbers an agent may carry from one trial to the next
MAX_STEP_WORK = 200_000  # numbers one step may compute (the built-in models: under 100)
SERVE = "garagelab.cogsearch.exported:serve"
LIMITS = Limits(wall_s=60.0, cpu_s=120.0, memory_mb=4096, judge_s=300.0)


def _inputs(width: int) -> list:
    return [
        jax.ShapeDtypeStruct((width,), jnp.float32),
        jax.ShapeDtypeStruct((), jnp.int32),
        jax.ShapeDtypeStruct((), jnp.float32),
    ]


def trace(program: Program, width: int) -> dict:
    """The program's init and step at a params vector of `width`, as data (the untrusted side)."""
    agent = program.agent
    start = _inputs(width)

    def init(params, choice, reward):
        return jax.tree.leaves(agent(params, choice, reward, None))

    first = jax.eval_shape(lambda p, c, r: agent(p, c, r, None), *start)
    state_tree = jax.tree.structure(first[1]) if isinstance(first, tuple) and len(first) == 2 else None
    if state_tree is None:
        raise TypeError("agent(params, choice, reward, None) must return (logits, state)")

    def step(params, choice, reward, *leaves):
        return jax.tree.leaves(agent(params, choice, reward, jax.tree.unflatten(state_tree, leaves)))

    leaves = jax.tree.leaves(first[1])
    return {"num_params": program.num_params, "init": export(init, *start), "step": export(step, *start, *leaves)}


def serve(module: types.ModuleType, request: dict) -> dict:
    """Untrusted side: the candidate module's agent traced at the width asked for."""
    return trace(program_of(module, name="candidate"), int(request["width"]))


def warm_up() -> None:
    """In the sandbox's fork server: trace the seed once, so children inherit JAX's tracing caches."""
    trace(load_program(SEED), 8)


def rebuild(answer, n_actions: int, width: int, source: str = "", name: str = "program") -> Program:
    """The trusted side: a Program from an answer of `trace`, checked. Invalid if it does not hold."""
    if not isinstance(answer, dict) or set(answer) != {"num_params", "init", "step"}:
        raise Invalid("the answer is not {num_params, init, step}")
    declared = declared_count(answer)
    start = _inputs(width)
    init, first = load(answer["init"], start)
    _logits(first, n_actions, "at a session's start")
    state = [jax.ShapeDtypeStruct(s.shape, s.dtype) for s in first[1:]]
    if sum(math.prod(s.shape) for s in state) > MAX_STATE:
        raise Invalid(f"the agent's state holds more than {MAX_STATE} numbers")
    step, later = load(answer["step"], [*start, *state])
    _logits(later, n_actions, "after a trial")
    if [(s.shape, s.dtype) for s in later[1:]] != [(s.shape, s.dtype) for s in state]:
        raise Invalid(
            f"the agent's state changes from {[s.shape for s in state]} at the start to "
            f"{[s.shape for s in later[1:]]} after a trial"
        )
    cost = work(step, *start, *state)
    if cost > MAX_STEP_WORK:
        raise Invalid(f"one step of the agent computes {cost:,} numbers; at most {MAX_STEP_WORK:,}")
    return Program(name, source, _agent(init, step), declared)


def _logits(outputs: list, n_actions: int, when: str) -> None:
    if not outputs:
        raise Invalid(f"the agent returns nothing {when}")
    logits = outputs[0]
    if logits.shape != (n_actions,) or not jnp.issubdtype(logits.dtype, jnp.floating):
        raise Invalid(f"the agent's logits {when} are {logits.dtype}{list(logits.shape)}, expected {n_actions} floats")


def _agent(init: Callable, step: Callable) -> Callable:
    """The rebuilt computations behind the template's interface."""

    def agent(params, choice, reward, agent_state):
        choice, reward = jnp.asarray(choice, jnp.int32), jnp.asarray(reward, jnp.float32)
        if agent_state is None:
            logits, *leaves = init(params, choice, reward)
        else:
            logits, *leaves = step(params, choice, reward, *agent_state)
        return jnp.asarray(logits, jnp.float32), tuple(leaves)

    return agent


def at_width(source: Callable[[int], dict], n_actions: int, text: str, name: str) -> Callable[[int], Program]:
    """Programs of one source at any params width, from `source(width) -> trace answer`."""
    return lambda width: rebuild(source(width), n_actions, width, text, name)


def trusted_program(source: str, n_actions: int = 2, name: str = "program") -> tuple[Callable[[int], Program], int]:
    """One of our own programs (a baseline, a generator) through the same rebuilt path, traced
    in this process (it is not untrusted code): (program at a width, declared `num_params`)."""
    program = load_program(source, n_actions, name)
    return at_width(lambda width: trace(program, width), n_actions, source, name), program.num_params


def traced(
    candidate: Candidate, n_actions: int, source: str = "", name: str = "candidate"
) -> tuple[Callable[[int], Program], int]:
    """A program traced in its sandbox (its code never runs in this process), each params width
    asked for once, when `fit.counted` first needs it: (program at a width, declared
    `num_params`). Invalid or CandidateFailed if it cannot be traced or does not hold up; the
    candidate must stay up until `counted` has returned."""
    answers: dict[int, dict] = {}

    def answer(width: int) -> dict:
        if width not in answers:
            answers[width] = candidate.call({"width": width})
        return answers[width]

    return at_width(answer, n_actions, source, name), declared_count(answer(MAX_PARAMS))


def declared_count(answer) -> int:
    """The `num_params` a trace answer states, checked."""
    count = answer.get("num_params") if isinstance(answer, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_PARAMS:
        raise Invalid(f"`num_params` must be a whole number from 0 to {MAX_PARAMS}, not {count!r}")
    return count


def new_sandbox(n_actions: int) -> Sandbox:
    """A sandbox that traces cognitive-model programs (for the report and other trusted tools)."""
    return Sandbox(SERVE, IMPORTS, {"N_ACTIONS": n_actions})


def params_median(params: np.ndarray, used: np.ndarray) -> list[float]:
    """Median over folds and subjects of each used parameter (empty for a 0-parameter model)."""
    if used.size == 0:
        return []
    return [round(float(v), 4) for v in np.median(params[..., used], axis=(0, 1))]
