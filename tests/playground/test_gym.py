"""The Gymnasium vector-env adapter on the CPU engine."""

from __future__ import annotations

import pytest

pytest.importorskip("gymnasium")

from garagelab.playground.gym import GymVectorEnv


def test_gymnasium_vector_api_with_time_limit_truncation() -> None:
    env = GymVectorEnv("PointMass", num_envs=3, config_overrides={"episode_length": 4})
    assert env.observation_space.shape == (3, 4) and env.action_space.shape == (3, 2)
    obs, _ = env.reset(seed=1)
    assert env.single_observation_space.contains(obs[0])
    for step in range(1, 5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.shape == (3, 4) and reward.shape == (3,) and "reward/near_target" in info
        assert not terminated.any()
        assert truncated.all() == (step == 4)
    env.close()
