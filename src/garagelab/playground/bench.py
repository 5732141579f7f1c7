"""Env throughput: steps per second and time to first step, on any engine.

One measurement = load the env, reset, take the first step (the wall time until it returns is
"time to first step": on MJX it includes XLA compiles, on Warp its kernel compiles), then time
`steps` more steps of uniform random actions with auto-reset on, best of `repeats`. The MJX
engine is timed over a jitted `lax.scan` of its step (as Playground's benchmark does), so
dispatch is not counted; the CPU and Warp engines are stepped from Python.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from garagelab.playground.registry import load


@dataclasses.dataclass(frozen=True)
class BenchResult:
    env: str
    engine: str
    num_envs: int
    first_step_s: float  # load + reset + first step, wall clock
    steps_per_s: float  # env steps (num_envs per batched step) per wall-clock second
    physics_steps_per_s: float


def bench(
    name: str,
    engine: str = "cpu",
    num_envs: int = 64,
    steps: int = 200,
    repeats: int = 3,
    nthread: int = 0,
    reset_mode: str | None = None,
    pixels: object = None,
) -> BenchResult:
    """`reset_mode` None: "cached" on MJX (as Playground's training wrapper), "full" on CPU and Warp;
    `pixels` (a `pixels.PixelSpec`) renders every env's frames at every step (CPU engine)."""
    start = time.perf_counter()
    reset_mode = reset_mode or ("cached" if engine == "mjx" else "full")
    env = load(name, engine=engine, num_envs=num_envs, nthread=nthread, reset_mode=reset_mode, pixels=pixels)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, num_envs, env.action_size)).astype(np.float32)
    state = env.reset(0)
    state = env.step(state, actions[0])
    if engine != "cpu":
        import jax

        jax.block_until_ready(state.obs)
    first = time.perf_counter() - start
    run = _mjx_loop(env, state, actions) if engine == "mjx" else _host_loop(env)
    best = min(_timed(run, state, actions) for _ in range(repeats))
    rate = steps * num_envs / best
    return BenchResult(name, engine, num_envs, first, rate, rate * env.n_substeps)


def _timed(run, state, actions) -> float:
    start = time.perf_counter()
    run(state, actions)
    return time.perf_counter() - start


def _host_loop(env):
    """Steps from Python (CPU engine; Warp engine, whose every step synchronises with Warp)."""

    def run(state, actions):
        for action in actions:
            state = env.step(state, action)
        return state

    return run


def _mjx_loop(env, state, actions):
    import jax
    import jax.numpy as jnp

    @jax.jit
    def rollout(state, actions):
        return jax.lax.scan(lambda s, a: (env.step(s, a), None), state, actions)[0]

    actions = jnp.asarray(actions)
    jax.block_until_ready(rollout(state, actions).obs)  # compile outside the timing

    def run(state, actions_np):
        return jax.block_until_ready(rollout(state, actions).obs)

    return run
