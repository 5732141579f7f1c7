"""Every registered env on the CPU engine, and the engine's batch semantics."""

from __future__ import annotations

import numpy as np
import pytest

from garagelab.playground import Task, load, make_task, names, requirement
from garagelab.playground.cpu_engine import CpuEngine

# Menagerie's robots run here only with MENAGERIE_ROOT; test_menagerie.py runs them on stand-ins
EVERY_ENV = [pytest.param(n, marks=pytest.mark.skipif(bool(requirement(n)), reason=requirement(n))) for n in names()]


@pytest.mark.parametrize("name", EVERY_ENV)
def test_every_env_resets_and_steps_100_batched_steps_without_nan(name: str) -> None:
    env = load(name, num_envs=4, nthread=1)
    state = env.reset(0)
    assert state.obs.shape == (4, env.observation_size)
    rng = np.random.default_rng(0)
    rewards = []
    terminates = type(env.task).terminated is not Task.terminated
    for _ in range(100):
        state = env.step(state, rng.uniform(-1, 1, (4, env.action_size)))
        assert np.isfinite(state.obs).all() and np.isfinite(state.reward).all()
        # no early termination: MuJoCo did not have to reset a blown-up simulation
        assert terminates or not state.done.any(), f"{name}: unstable under random actions"
        rewards.append(state.reward)
    assert state.reward.shape == (4,) and state.done.shape == (4,)
    assert all(k.startswith("reward/") for k in state.metrics)
    assert np.ptp(np.stack([s for s in rewards])) >= 0  # rewards are numbers, per env


def test_stepping_an_older_state_replays_it_exactly() -> None:
    env = CpuEngine(make_task("CartpoleSwingup"), 3)
    start = env.reset(0)
    action = np.full((3, 1), 0.7)
    first = env.step(env.step(start, action), action)
    again = env.step(env.step(start, action), action)  # the batch has moved on; start is reloaded
    np.testing.assert_array_equal(first.obs, again.obs)
    assert not np.array_equal(start.obs, first.obs)


def test_threads_do_not_change_results() -> None:
    task = make_task("ReacherEasy")
    one, two = CpuEngine(task, 8, nthread=1), CpuEngine(task, 8, nthread=2)
    a, b = one.reset(3), two.reset(3)
    actions = np.random.default_rng(1).uniform(-1, 1, (8, 2))
    for _ in range(20):
        a, b = one.step(a, actions), two.step(b, actions)
    np.testing.assert_array_equal(a.obs, b.obs)


def test_episode_limit_truncates_and_auto_reset_restarts() -> None:
    env = load("CartpoleBalance", num_envs=2, config_overrides={"episode_length": 5})
    state = env.reset(0)
    for step in range(1, 6):
        state = env.step(state, np.zeros((2, 1)))
        assert state.done.tolist() == ([1.0, 1.0] if step == 5 else [0.0, 0.0])
    np.testing.assert_array_equal(state.info["truncation"], [1.0, 1.0])
    np.testing.assert_array_equal(state.info["steps"], [0.0, 0.0])  # reset inside the step
    assert abs(state.obs[:, 0]).max() <= 0.1  # a fresh cart position from the reset range


def test_reset_where_only_touches_masked_envs() -> None:
    env = CpuEngine(make_task("PointMass"), 4)
    state = env.step(env.reset(0), np.ones((4, 2)))
    fresh = env.reset_where(state, np.array([0, 1, 0, 0]))
    np.testing.assert_array_equal(fresh.obs[[0, 2, 3]], state.obs[[0, 2, 3]])
    assert not np.array_equal(fresh.obs[1], state.obs[1])
    np.testing.assert_array_equal(fresh.obs[1, 2:], [0.0, 0.0])  # zero velocity at reset


def test_cached_reset_returns_finished_envs_to_their_first_state() -> None:
    env = load("CartpoleSwingup", num_envs=3, config_overrides={"episode_length": 4}, reset_mode="cached")
    first = env.reset(5)
    state = first
    for _ in range(4):
        state = env.step(state, np.ones((3, 1)))
    assert state.done.tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(state.obs, first.obs)
    again = env.step(state, np.ones((3, 1)))
    np.testing.assert_array_equal(again.obs, env.step(first, np.ones((3, 1))).obs)
