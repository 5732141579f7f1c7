"""A Stable-Baselines3 `VecEnv` over one batched env, so SB3's learners train on any variant.

SB3 steps in its own vector-env API (`step_async`/`step_wait`, same-step auto-reset with the
ended episode's last observation in `info["terminal_observation"]` and
`info["TimeLimit.truncated"]` for bootstrapping): this adapter speaks it over
`gym.GymVectorEnv` in SAME_STEP mode. SB3's `Monitor` statistics come from wrapping it in
`stable_baselines3.common.vec_env.VecMonitor`.

Threads: PyTorch's intra-op threads spin while MuJoCo's batch threads step the envs, and on a
small machine the two contend (stepping measured about 15x slower with PyTorch's default
threads on 2 cores); for the small MLPs SB3 trains here one PyTorch thread is also the fastest,
so the adapter sets `torch.set_num_threads(torch_threads)` (1 by default; None leaves it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from garagelab.playground.gym import GymVectorEnv


class SB3VecEnv(VecEnv):
    """`SB3VecEnv("CartpoleBalance", num_envs=8)`: hand it to `PPO("MlpPolicy", env)` as it is."""

    def __init__(
        self,
        name: str,
        num_envs: int = 8,
        engine: str = "cpu",
        torch_threads: int | None = 1,
        **load_kwargs: Any,
    ) -> None:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self.gym = GymVectorEnv(name, num_envs, engine, autoreset_mode="same_step", **load_kwargs)
        super().__init__(num_envs, self.gym.single_observation_space, self.gym.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        # SB3 seeds each env (seed + index); the batch shares one generator, so the first is the seed
        obs, _ = self.gym.reset(seed=self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        obs, reward, terminated, truncated, info = self.gym.step(self._actions)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(terminated | truncated):
            infos[i] = {"terminal_observation": info["final_obs"][i], "TimeLimit.truncated": bool(truncated[i])}
        return obs, reward, terminated | truncated, infos

    def close(self) -> None:
        self.gym.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute (of the Gymnasium adapter, else the batched env), once per env asked for."""
        value = getattr(self.gym if hasattr(self.gym, attr_name) else self.gym.env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.gym.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list:
        result = getattr(self.gym.env, method_name)(*method_args, **kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> Sequence[bool]:
        return [False for _ in self._get_indices(indices)]  # no gymnasium.Wrapper sits inside
