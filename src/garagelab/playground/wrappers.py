"""Wrappers over a batched env: episode limit, auto-reset, action repeat, observation noise.

Each is written with the env's array namespace (`env.xp`: numpy or jax.numpy), so the same
wrapper serves both engines; on MJX `Jit` compiles the whole stack into one reset and one
step function.
"""

from __future__ import annotations

from typing import Any

from garagelab.playground.state import State


class Wrapper:
    """Delegates everything it does not change to the env it wraps."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def reset(self, seed: Any = 0) -> State:
        return self.env.reset(seed)

    def step(self, state: State, action: Any) -> State:
        return self.env.step(state, action)

    def reset_where(self, state: State, mask: Any) -> State:
        return self.env.reset_where(state, mask)


def bottom(env: Any) -> Any:
    """The engine under a stack of wrappers (the object that holds the physics)."""
    while isinstance(env, Wrapper):
        env = env.env
    return env


class EpisodeLimit(Wrapper):
    """Ends an episode after `length` steps; `info["truncation"]` marks time-outs (for bootstrapping)."""

    def __init__(self, env: Any, length: int) -> None:
        super().__init__(env)
        self.length = length

    def reset(self, seed: Any = 0) -> State:
        state = self.env.reset(seed)
        zeros = self.xp.zeros(self.num_envs, self.xp.float32)
        return state.replace(info={**state.info, "steps": zeros, "truncation": zeros})

    def step(self, state: State, action: Any) -> State:
        xp = self.xp
        state = self.env.step(state, action)
        steps = state.info["steps"] + 1
        out_of_time = steps >= self.length
        truncation = xp.where(out_of_time & (state.done == 0), 1.0, 0.0).astype(xp.float32)
        done = xp.maximum(state.done, out_of_time.astype(xp.float32))
        return state.replace(done=done, info={**state.info, "steps": steps, "truncation": truncation})

    def reset_where(self, state: State, mask: Any) -> State:
        state = self.env.reset_where(state, mask)
        steps = self.xp.where(mask > 0, 0.0, state.info["steps"]).astype(self.xp.float32)
        return state.replace(info={**state.info, "steps": steps})


class AutoReset(Wrapper):
    """Starts finished envs afresh inside `step`: obs is the new episode's, reward/done the old one's."""

    def step(self, state: State, action: Any) -> State:
        state = self.env.step(state, action)
        return self.env.reset_where(state, state.done)


class ActionRepeat(Wrapper):
    """Applies each action `repeat` times; rewards add up and done is set if any step ended."""

    def __init__(self, env: Any, repeat: int) -> None:
        super().__init__(env)
        self.repeat = repeat

    @property
    def dt(self) -> float:
        return self.env.dt * self.repeat

    def step(self, state: State, action: Any) -> State:
        xp = self.xp
        total, done = state.reward * 0, state.done * 0
        for _ in range(self.repeat):
            state = self.env.step(state, action)
            total, done = total + state.reward, xp.maximum(done, state.done)
        return state.replace(reward=total, done=done)


class ObservationNoise(Wrapper):
    """Adds Gaussian noise of standard deviation `scale` to every observation."""

    def __init__(self, env: Any, scale: float) -> None:
        super().__init__(env)
        self.scale = scale

    def _noisy(self, state: State) -> State:
        state, noise = self.env.normal(state, state.obs.shape[1:])
        return state.replace(obs=(state.obs + self.scale * noise).astype(self.xp.float32))

    def reset(self, seed: Any = 0) -> State:
        return self._noisy(self.env.reset(seed))

    def step(self, state: State, action: Any) -> State:
        return self._noisy(self.env.step(state, action))

    def reset_where(self, state: State, mask: Any) -> State:
        fresh = self._noisy(self.env.reset_where(state, mask))
        mask = self.xp.reshape(mask > 0, (-1, 1))  # the other envs' obs already carry noise
        return fresh.replace(obs=self.xp.where(mask, fresh.obs, state.obs))


class Jit(Wrapper):
    """Compiles a wrapped MJX env's reset, step and reset_where (one XLA program each)."""

    def __init__(self, env: Any) -> None:
        import jax

        super().__init__(env)
        self._jax = jax
        self._reset = jax.jit(env.reset)
        self._step = jax.jit(env.step)
        self._reset_where = jax.jit(env.reset_where)

    def reset(self, seed: Any = 0) -> State:
        key = self._jax.random.PRNGKey(seed) if isinstance(seed, int) else seed
        return self._reset(key)

    def step(self, state: State, action: Any) -> State:
        return self._step(state, action)

    def reset_where(self, state: State, mask: Any) -> State:
        return self._reset_where(state, mask)
