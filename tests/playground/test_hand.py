"""The dexterous hand and its cube reorientation task: quaternion helpers against MuJoCo's,
the cube at rest in the hand, success and the next goal, dropping."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from garagelab.playground import load, make_task
from garagelab.playground.cpu_engine import CpuEngine
from garagelab.playground.ops import NumpyOps
from garagelab.playground.tasks.hand import quat_angle, quat_conjugate, quat_matrix_rows, quat_multiply, turned


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.standard_normal((n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_quaternion_helpers_match_mujoco() -> None:
    rng = np.random.default_rng(0)
    a, b = _unit(rng, 20), _unit(rng, 20)
    product, matrix, inverse = np.zeros(4), np.zeros(9), np.zeros(4)
    for i in range(20):
        mujoco.mju_mulQuat(product, a[i], b[i])
        np.testing.assert_allclose(quat_multiply(np, a[i], b[i]), product, atol=1e-12)
        mujoco.mju_quat2Mat(matrix, a[i])
        np.testing.assert_allclose(quat_matrix_rows(np, a[i]), matrix[3:], atol=1e-12)
        mujoco.mju_negQuat(inverse, a[i])
        np.testing.assert_allclose(quat_conjugate(np, a[i]), inverse, atol=1e-12)
    half = 0.4  # a rotation by 0.8 rad, either sign of the quaternion
    q = np.array([math.cos(half), math.sin(half), 0.0, 0.0])
    assert quat_angle(np, q) == pytest.approx(0.8) and quat_angle(np, -q) == pytest.approx(0.8)


def test_next_goals_turn_by_the_configured_angles() -> None:
    ops = NumpyOps(np.random.default_rng(1), 500)
    start = _unit(np.random.default_rng(2), 500)
    nxt = turned(ops, start, 0.5, 1.5)
    angles = quat_angle(np, quat_multiply(np, nxt, quat_conjugate(np, start)))
    assert angles.min() >= 0.5 - 1e-9 and angles.max() <= 1.5 + 1e-9 and angles.std() > 0.2


@pytest.mark.parametrize("first_goal_turn", [None, (0.5, 1.5)])
def test_the_first_goal_is_uniform_or_a_configured_turn_from_the_start(first_goal_turn) -> None:
    task = make_task("HandCubeReorient", {"first_goal_turn": first_goal_turn})
    engine = CpuEngine(task, 64)
    state = engine.reset(3)
    start = engine.batch.qpos[:, task.cube_qpos + 3 : task.cube_qpos + 7]
    angles = quat_angle(np, quat_multiply(np, np.asarray(state.info["goal"]), quat_conjugate(np, start)))
    if first_goal_turn is None:  # uniform: the angle's median is about 2.3 rad, and many exceed 1.5
        assert np.median(angles) > 1.8 and (angles > 1.5).mean() > 0.5
    else:
        assert angles.min() >= 0.5 - 1e-9 and angles.max() <= 1.5 + 1e-9


def test_the_cube_rests_in_the_still_hand_and_scores_its_position() -> None:
    env = load("HandCubeReorient", num_envs=8)
    state = env.reset(0)
    for _ in range(60):  # 3 s of holding the servo targets
        state = env.step(state, np.zeros((8, 16)))
    assert not np.asarray(state.done).any()
    offset = state.obs[:, 32:35]  # palm centre minus cube: the cube stays in the palm, within 3 cm
    assert (np.linalg.norm(offset, axis=1) < 0.03).all() and (state.metrics["reward/position"] > 0.8).all()
    assert state.obs.shape == (8, 57) and state.info["privileged_obs"].shape == (8, 91)


def test_reaching_the_goal_pays_and_draws_the_next_goal() -> None:
    task = make_task("HandCubeReorient")
    engine = CpuEngine(task, 2)
    state = engine.reset(0)
    cube = engine.batch.qpos[:, task.cube_qpos + 3 : task.cube_qpos + 7].copy()
    goals = np.asarray(state.info["goal"]).copy()
    goals[0] = cube[0]  # env 0's goal is where its cube already is
    state = state.replace(info={**state.info, "goal": goals})
    state = engine.step(state, np.zeros((2, 16)))
    assert state.metrics["reward/success"].tolist() == [1.0, 0.0]
    assert state.reward[0] > task.config.success_reward - 10 and state.reward[1] < 10
    assert state.info["successes"].tolist() == [1.0, 0.0]
    moved = quat_angle(np, quat_multiply(np, state.info["goal"][0], quat_conjugate(np, goals[0])))
    assert 0.5 <= moved <= 1.5  # the next goal, a configured turn away
    np.testing.assert_array_equal(state.info["goal"][1], goals[1])


def test_a_cube_below_the_palm_ends_the_episode() -> None:
    task = make_task("HandCubeReorient")
    engine = CpuEngine(task, 1)
    state = engine.reset(0)
    engine.batch.qpos[:, task.cube_qpos : task.cube_qpos + 3] = [0.2, 0.0, -0.1]  # off the hand
    engine.batch.forward()
    state = engine.step(state.replace(data=engine.batch.state.copy()), np.zeros((1, 16)))
    assert state.done[0] == 1.0 and state.metrics["reward/termination"][0] == 1.0
    assert state.reward[0] < 0
