"""An RSL-RL `VecEnv` over one batched env: RSL-RL's `OnPolicyRunner` trains on any variant.

RSL-RL (the learner of Playground 1.0, Isaac Lab and mjlab) expects a vectorised env that
resets finished envs inside `step`, returns observation groups as a `TensorDict` (here
"policy", and "critic": the task's privileged observation where it has one, else the same),
and marks time-outs in `extras["time_outs"]` for bootstrapping. `episode_length_buf` is the
env's own episode counter, so the runner's `init_at_random_ep_len` spreads episode ends as it
does in Isaac Lab. `runner_config()` is a working PPO configuration for the runner.

Threads: PyTorch's intra-op threads contend with MuJoCo's batch threads on a small machine;
the adapter sets `torch.set_num_threads(torch_threads)` (1 by default; None leaves it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from garagelab.playground.gym import checked_actions
from garagelab.playground.ppo import critic_input
from garagelab.playground.registry import load


def runner_config(**changes: Any) -> dict[str, Any]:
    """A `train_cfg` for `rsl_rl.runners.OnPolicyRunner`: PPO with Gaussian actions, normalised inputs.

    The settings are RSL-RL's usual locomotion ones at a CPU-sized network; `changes` replace
    top-level keys (`num_steps_per_env=64`, `algorithm={...}`).
    """
    mlp = {"class_name": "MLPModel", "hidden_dims": [64, 64], "activation": "elu", "obs_normalization": True}
    config = {
        "num_steps_per_env": 32,
        "save_interval": 50,
        "obs_groups": {"actor": ["policy"], "critic": ["critic"]},
        "actor": {**mlp, "distribution_cfg": {"class_name": "GaussianDistribution", "init_std": 1.0}},
        "critic": dict(mlp),
        "algorithm": {
            "class_name": "PPO",
            "num_learning_epochs": 5,
            "num_mini_batches": 4,
            "clip_param": 0.2,
            "gamma": 0.99,
            "lam": 0.95,
            "value_loss_coef": 1.0,
            "entropy_coef": 0.005,
            "learning_rate": 1e-3,
            "max_grad_norm": 1.0,
            "schedule": "adaptive",
            "desired_kl": 0.01,
        },
        "logger": "tensorboard",
    }
    return {**config, **changes}


class RslRlVecEnv(VecEnv):
    """`RslRlVecEnv("CartpoleBalance", num_envs=64)`; then `OnPolicyRunner(env, runner_config(), log_dir)`."""

    def __init__(
        self,
        name: str,
        num_envs: int = 64,
        engine: str = "cpu",
        seed: int = 0,
        torch_threads: int | None = 1,
        **load_kwargs: Any,
    ) -> None:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self.env = load(name, engine=engine, num_envs=num_envs, seed=seed, **load_kwargs)
        self.name = name
        self.num_envs = num_envs
        self.num_actions = self.env.action_size
        self.max_episode_length = int(self.env.length)  # the EpisodeLimit wrapper's
        self.device = "cpu"
        self.cfg = {"env": name, "engine": engine, "num_envs": num_envs, **load_kwargs}
        self._state = self.env.reset(seed)
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long)

    def _observations(self) -> TensorDict:
        obs = torch.as_tensor(np.asarray(self._state.obs), dtype=torch.float32)
        critic = torch.as_tensor(np.asarray(critic_input(self._state)), dtype=torch.float32)
        return TensorDict({"policy": obs, "critic": critic}, batch_size=[self.num_envs])

    def get_observations(self) -> TensorDict:
        return self._observations()

    def step(self, actions: torch.Tensor) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict]:
        actions = checked_actions(
            actions.detach().cpu().numpy(), (self.num_envs, self.num_actions), f"{self.name} x{self.num_envs}.step"
        )
        xp = self.env.xp
        steps = xp.asarray(self.episode_length_buf.numpy().astype(np.float32))  # the runner may have set them
        state = self._state.replace(info={**self._state.info, "steps": steps})
        self._state = state = self.env.step(state, np.clip(actions, -1.0, 1.0))
        self.episode_length_buf = torch.as_tensor(np.asarray(state.info["steps"]), dtype=torch.long)
        dones = torch.as_tensor(np.asarray(state.done), dtype=torch.float32)
        extras = {
            "time_outs": torch.as_tensor(np.asarray(state.info["truncation"]), dtype=torch.float32),
            "log": {f"/{k}": float(np.mean(v)) for k, v in state.metrics.items()},
        }
        return self._observations(), torch.as_tensor(np.asarray(state.reward)), dones, extras
