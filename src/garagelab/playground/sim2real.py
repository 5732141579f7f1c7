"""Sim-to-real wrappers beyond Playground's noise and randomisation: action latency.

A real robot acts on a command a control step or more after the sensors were read (bus, policy
inference, motor driver). `ActionLatency(env, steps)` applies each action `steps` control steps
late (zeros until then; a reset env starts with an empty queue), written with the env's array
namespace so it serves both engines.
"""

from __future__ import annotations

from typing import Any

from garagelab.playground.state import State
from garagelab.playground.wrappers import Wrapper


class ActionLatency(Wrapper):
    def __init__(self, env: Any, steps: int) -> None:
        super().__init__(env)
        self.steps = steps

    def reset(self, seed: Any = 0) -> State:
        state = self.env.reset(seed)
        queue = self.xp.zeros((self.num_envs, self.steps, self.action_size), self.xp.float32)
        return state.replace(info={**state.info, "action_queue": queue})

    def step(self, state: State, action: Any) -> State:
        xp = self.xp
        queue = state.info["action_queue"]
        action = xp.asarray(action, xp.float32).reshape(self.num_envs, 1, self.action_size)
        queue = xp.concatenate([queue, action], axis=1)
        state = self.env.step(state, queue[:, 0])
        return state.replace(info={**state.info, "action_queue": queue[:, 1:]})

    def reset_where(self, state: State, mask: Any) -> State:
        state = self.env.reset_where(state, mask)
        queue = self.xp.where(self.xp.asarray(mask)[:, None, None] > 0, 0.0, state.info["action_queue"])
        return state.replace(info={**state.info, "action_queue": queue.astype(self.xp.float32)})
