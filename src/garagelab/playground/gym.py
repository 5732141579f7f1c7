"""A Gymnasium `VectorEnv` over a batched env of either engine, for learners written for Gymnasium.

Gymnasium's vector API is stateful (`step(actions)` with no state argument), so the adapter
holds the current State. Finished envs reset inside the step (Gymnasium's SAME_STEP autoreset
mode): the returned observation is the new episode's first; `terminations` and `truncations`
split `done` by the episode limit's flag. Each reward term comes back in `info`.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode

from garagelab.playground.registry import load


class GymVectorEnv(gymnasium.vector.VectorEnv):
    """`load(name, engine, num_envs, ...)` behind Gymnasium's vector-env interface, numpy in and out."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(self, name: str, num_envs: int = 1, engine: str = "cpu", **load_kwargs: Any) -> None:
        self.env = load(name, engine=engine, num_envs=num_envs, **load_kwargs)
        self.num_envs = num_envs
        obs, act = self.env.observation_size, self.env.action_size
        self.single_observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (obs,), np.float32)
        self.single_action_space = gymnasium.spaces.Box(-1.0, 1.0, (act,), np.float32)
        self.observation_space = gymnasium.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space, num_envs)
        self._state: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        self._state = self.env.reset(0 if seed is None else seed)
        return np.asarray(self._state.obs), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self._state is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        self._state = state = self.env.step(self._state, np.asarray(actions, np.float32))
        done = np.asarray(state.done) > 0
        truncated = np.asarray(state.info["truncation"]) > 0
        info = {k: np.asarray(v) for k, v in state.metrics.items()}
        return np.asarray(state.obs), np.asarray(state.reward), done & ~truncated, truncated, info
