"""The arm tasks on the CPU engine: a scripted grasp really lifts the cube and earns the lift reward."""

from __future__ import annotations

import numpy as np

from garagelab.playground import State, Task, load, make_task
from garagelab.playground.cpu_engine import CpuEngine


def _ik(x: float, y: float, z: float) -> np.ndarray:
    """Servo targets putting the gripper (pointing down) at (x, y, z): Newton on the planar 2-link arm."""
    r, h = np.hypot(x, y), z + 0.09 - 0.18
    q = np.array([0.6, 0.1])
    for _ in range(50):
        s1, c1, s12, c12 = np.sin(q[0]), np.cos(q[0]), np.sin(q.sum()), np.cos(q.sum())
        err = np.array([0.3 * s1 + 0.3 * c12 - r, 0.3 * c1 - 0.3 * s12 - h])
        jac = np.array([[0.3 * c1 - 0.3 * s12, -0.3 * s12], [-0.3 * s1 - 0.3 * c12, -0.3 * c12]])
        q = q - np.linalg.solve(jac, err)
    return np.array([np.arctan2(y, x), q[0], q[1], -q.sum()])


def scripted_grasp(task: Task, seed: int = 2) -> tuple[CpuEngine, State]:
    """Open above the cube, close on it, carry it to the target: our arm's geometry (also the
    Panda stand-in's in test_menagerie.py, whose extra wrist roll stays at its home angle)."""
    env = CpuEngine(task, 1)
    state = env.reset(seed)
    box = env.view.xpos[0, task.box].copy()
    target = state.info["target"][0]
    gripper = task.mj_model.actuator(task.robot.gripper_actuator).id
    arm = np.delete(np.arange(task.mj_model.nu), gripper)[:4]  # yaw, shoulder, elbow, wrist
    plan = [(box, 0.04, 40), (box, 0.0, 25), (target, 0.0, 80)]
    for goal, grip, steps in plan:
        wanted = task.home_ctrl.copy()
        wanted[arm], wanted[gripper] = _ik(goal[0], goal[1], goal[2] - 0.005), grip
        for _ in range(steps):
            action = np.clip((wanted - state.info["ctrl"][0]) / env.task.config.action_scale, -1, 1)
            state = env.step(state, action[None])
    return env, state


def test_scripted_grasp_lifts_the_cube() -> None:
    env, state = scripted_grasp(make_task("ArmPickCube"))
    lifted = env.view.xpos[0, env.task.box]
    assert lifted[2] > 0.1, lifted
    assert state.metrics["reward/box_target"][0] > 0.5
    assert state.info["reached_box"][0] == 1.0


def test_reach_rewards_closeness() -> None:
    env = load("ArmReach", num_envs=2, auto_reset=False)
    state = env.reset(0)
    assert state.obs.shape == (2, 14)
    near = state.obs[:, 11:14]  # target - gripper
    assert (np.linalg.norm(near, axis=1) > 0).all()
