"""Stable-Baselines3 and RSL-RL train CartpoleBalance through our adapters, with their own PPO."""

from __future__ import annotations

import numpy as np
import pytest

from garagelab.playground.gym import GymEnv

STATED_RETURN = 800  # of 1000; an untrained policy scores about 200-450


def _deterministic_returns(act, episodes: int = 3) -> list[float]:
    returns = []
    for seed in range(episodes):
        env = GymEnv("CartpoleBalance")
        obs, _ = env.reset(seed=100 + seed)
        total, ended = 0.0, False
        while not ended:
            obs, reward, terminated, truncated, _ = env.step(np.clip(act(obs), -1, 1))
            total, ended = total + reward, terminated or truncated
        returns.append(total)
    return returns


@pytest.mark.slow
def test_stable_baselines3_ppo_trains_cartpole_balance() -> None:
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from garagelab.playground.bridge_sb3 import SB3VecEnv

    env = VecMonitor(SB3VecEnv("CartpoleBalance", num_envs=8))
    model = PPO("MlpPolicy", env, n_steps=256, batch_size=256, learning_rate=1e-3, seed=0,
                policy_kwargs={"net_arch": [64, 64]})  # fmt: skip
    before = _deterministic_returns(lambda obs: model.predict(obs, deterministic=True)[0])
    model.learn(160_000)  # 80k reached 999.7 until a fresh install (2026-12-05) left seed 0 at 488-655
    after = _deterministic_returns(lambda obs: model.predict(obs, deterministic=True)[0])
    assert min(after) >= STATED_RETURN > max(before), (before, after)
    assert len(model.ep_info_buffer) > 0  # VecMonitor saw whole episodes end


@pytest.mark.slow
def test_rsl_rl_runner_trains_cartpole_balance(tmp_path) -> None:
    pytest.importorskip("rsl_rl")
    import torch
    from rsl_rl.runners import OnPolicyRunner
    from tensordict import TensorDict

    from garagelab.playground.bridge_rsl_rl import RslRlVecEnv, runner_config

    torch.manual_seed(0)
    env = RslRlVecEnv("CartpoleBalance", num_envs=64)
    assert env.max_episode_length == 1000 and env.get_observations()["policy"].shape == (64, 5)
    runner = OnPolicyRunner(env, runner_config(), str(tmp_path), device="cpu")

    def act(obs: np.ndarray) -> np.ndarray:
        tensor = torch.as_tensor(obs[None])
        return policy(TensorDict({"policy": tensor, "critic": tensor}, batch_size=[1])).detach().numpy()[0]

    policy = runner.get_inference_policy()
    before = _deterministic_returns(act)
    runner.learn(200, init_at_random_ep_len=True)
    policy = runner.get_inference_policy()
    after = _deterministic_returns(act)
    assert min(after) >= STATED_RETURN > max(before), (before, after)


def test_rsl_rl_episode_counter_is_the_envs_and_bad_actions_are_refused() -> None:
    pytest.importorskip("rsl_rl")
    import torch

    from garagelab.playground.bridge_rsl_rl import RslRlVecEnv

    env = RslRlVecEnv("PointMass", num_envs=2, config_overrides={"episode_length": 10})
    env.episode_length_buf[0] = 8  # as the runner's init_at_random_ep_len does
    zeros = torch.zeros(2, 2)
    _, _, dones, extras = env.step(zeros)
    assert not dones.any() and env.episode_length_buf.tolist() == [9, 1]
    _, _, dones, extras = env.step(zeros)
    assert dones.tolist() == [1.0, 0.0] and extras["time_outs"].tolist() == [1.0, 0.0]
    assert env.episode_length_buf.tolist() == [0, 2] and "/reward/near_target" in extras["log"]
    with pytest.raises(ValueError, match=r"NaN or infinite for env\(s\) \[0\]"):
        env.step(torch.tensor([[float("nan"), 0.0], [0.0, 0.0]]))
