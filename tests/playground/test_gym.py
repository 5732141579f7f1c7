"""The Gymnasium interfaces: registration, the single env, both vector autoreset modes, input checks."""

from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from garagelab.playground import gym as garagelab_gym  # noqa: E402
from garagelab.playground.registry import names  # noqa: E402

SHORT = {"config_overrides": {"episode_length": 3}}


def test_every_variant_is_registered_and_the_single_env_passes_gymnasiums_checker() -> None:
    registered = set(gymnasium.registry)
    assert {garagelab_gym.env_id(name) for name in names()} <= registered
    env = gymnasium.make("garagelab/CartpoleBalance-v0", render_mode="rgb_array", render_width=64, render_height=48)
    check_env(env.unwrapped, skip_render_check=False)
    env.reset(seed=3)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 0
    env.close()


def test_single_env_seeds_vary_unless_given_and_an_ended_episode_needs_a_reset() -> None:
    env = garagelab_gym.GymEnv("PointMass", **SHORT)
    first, _ = env.reset(seed=5)
    again, _ = env.reset(seed=5)
    unseeded = [env.reset()[0] for _ in range(2)]
    assert np.array_equal(first, again) and not np.array_equal(*unseeded)
    for step in range(3):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert isinstance(reward, float) and not terminated and truncated == (step == 2)
        assert "reward/near_target" in info
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(env.action_space.sample())


def test_next_step_autoreset_restarts_the_step_after_an_episode_ends() -> None:
    env = gymnasium.make_vec("garagelab/PointMass-v0", num_envs=3, vectorization_mode="vector_entry_point", **SHORT)
    assert env.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.NEXT_STEP
    normalized = gymnasium.wrappers.vector.NormalizeObservation(env)  # refuses any other autoreset mode
    normalized.reset(seed=1)
    truncations = []
    for _ in range(8):
        obs, reward, terminated, truncated, _ = normalized.step(normalized.action_space.sample())
        assert obs.shape == (3, 4) and not terminated.any()
        truncations.append(bool(truncated.all()))
        if truncations[-1]:
            last = len(truncations)
    # steps 3 and 7 end episodes; step 4 is the restart (reward 0, nothing ended), then 3 more steps
    assert truncations == [False, False, True, False, False, False, True, False] and last == 7
    env.reset(seed=1)
    for _ in range(3):
        env.step(env.action_space.sample())
    _, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert not reward.any() and not terminated.any() and not truncated.any() and not info["reward/near_target"].any()


def test_same_step_autoreset_returns_the_final_observation_and_info() -> None:
    env = garagelab_gym.GymVectorEnv("PointMass", num_envs=2, autoreset_mode="same_step", **SHORT)
    env.reset(seed=0)
    for _ in range(2):
        _, _, _, truncated, info = env.step(env.action_space.sample())
        assert "final_obs" not in info and not truncated.any()
    obs, _, _, truncated, info = env.step(env.action_space.sample())
    assert truncated.all() and info["_final_obs"].all() and info["final_info"]["_reward/near_target"].all()
    for i in range(2):  # the new episode's first observation is returned, the old one's last kept
        assert info["final_obs"][i].shape == (4,) and not np.array_equal(info["final_obs"][i], obs[i])
    with pytest.raises(ValueError, match="autoreset_mode 'disabled'"):
        garagelab_gym.GymVectorEnv("PointMass", autoreset_mode="disabled")


def test_wrong_shapes_non_finite_actions_and_per_env_seeds_get_clear_errors() -> None:
    env = garagelab_gym.GymVectorEnv("PointMass", num_envs=3)
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(np.zeros((3, 2)))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*got \(2, 3\)"):
        env.step(np.zeros((2, 3)))
    actions = np.zeros((3, 2))
    actions[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite for env\(s\) \[1\]"):
        env.step(actions)
    with pytest.raises(ValueError, match="one int for the whole batch"):
        env.reset(seed=[1, 2, 3])
    single = garagelab_gym.GymEnv("PointMass")
    single.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        single.step(np.zeros(3))


def test_pixel_observations_are_a_dict_of_frames_and_state() -> None:
    env = gymnasium.make("garagelab/CartpoleBalance-v0", pixels=True)
    check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (64, 64, 3) and obs["pixels"].dtype == np.uint8 and obs["state"].shape == (5,)
    vector = garagelab_gym.GymVectorEnv("PointMass", 2, autoreset_mode="same_step", pixels={"stack": 2}, **SHORT)
    vector.reset(seed=0)
    for _ in range(3):
        obs, _, _, truncated, info = vector.step(vector.action_space.sample())
    assert truncated.all() and obs["pixels"].shape == (2, 64, 64, 2)
    assert set(info["final_obs"][0]) == {"pixels", "state"}
