"""Action repeat and observation noise on the CPU engine (the episode limit and auto-reset are in test_cpu_engine)."""

from __future__ import annotations

import numpy as np

from garagelab.playground import load


def test_action_repeat_adds_up_rewards_over_the_repeats() -> None:
    once = load("PointMass", num_envs=3, auto_reset=False)
    twice = load("PointMass", num_envs=3, auto_reset=False, action_repeat=2)
    assert twice.dt == 2 * once.dt
    action = np.full((3, 2), 0.5)
    a, b = once.reset(0), twice.reset(0)
    a1 = once.step(a, action)
    a2 = once.step(a1, action)
    b1 = twice.step(b, action)
    np.testing.assert_allclose(b1.obs, a2.obs)
    np.testing.assert_allclose(b1.reward, a1.reward + a2.reward)


def test_observation_noise_has_the_asked_scale_and_leaves_running_envs_alone_on_reset() -> None:
    clean = load("PointMass", num_envs=64, auto_reset=False)
    noisy = load("PointMass", num_envs=64, auto_reset=False, obs_noise=0.1)
    difference = noisy.reset(0).obs - clean.reset(0).obs
    assert 0.08 < difference.std() < 0.12
    state = noisy.step(noisy.reset(0), np.zeros((64, 2)))
    mask = np.zeros(64)
    mask[:4] = 1
    after = noisy.reset_where(state, mask)
    np.testing.assert_array_equal(after.obs[4:], state.obs[4:])
    assert not np.array_equal(after.obs[:4], state.obs[:4])
