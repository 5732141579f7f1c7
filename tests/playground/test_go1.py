"""The Go1-class joystick task on the CPU engine: it stands, senses its feet, follows the config."""

from __future__ import annotations

import numpy as np
import pytest

from garagelab.playground import Randomization, load, make_task
from garagelab.playground.cpu_engine import CpuEngine
from garagelab.playground.tasks.biped import swing_height


def test_zero_action_stands_with_four_feet_down() -> None:
    task = make_task("Go1JoystickFlatTerrain")
    env = CpuEngine(task, 4)
    state = env.reset(0)
    assert state.obs.shape == (4, 48)
    # from home (random starts bend the joints by up to 50%, and about one in eight of those
    # topples when the servos snap back to home: measured 8 of 64)
    env.batch.qpos[...] = task.default_qpos
    env.batch.qvel[...] = 0.0
    env.batch.forward()
    state = state.replace(data=env.batch.state.copy())
    for _ in range(50):
        state = env.step(state, np.zeros((4, 12)))
    assert not state.done.any()
    assert (env.view.qpos[:, 2] > 0.2).all()  # trunk height
    np.testing.assert_array_equal(state.info["last_contact"], 1.0)
    assert (state.metrics["reward/pose"] > 0.5).all()
    gravity = state.obs[:, 6:9]
    np.testing.assert_allclose(gravity[:, 2], -1.0, atol=0.05)  # upright: gravity points down the body z


def test_random_actions_make_feet_leave_the_ground_and_score_terms() -> None:
    env = load("Go1JoystickFlatTerrain", num_envs=8, nthread=1)
    state = env.reset(1)
    rng = np.random.default_rng(0)
    air = []
    for _ in range(60):
        state = env.step(state, rng.uniform(-1, 1, (8, 12)))
        air.append(state.info["feet_air_time"].max())
    assert max(air) > 0
    assert np.isfinite(state.reward).all() and (state.reward >= 0).all()  # clipped at 0, as Playground
    assert len([k for k in state.metrics if k.startswith("reward/")]) == 16


def test_commands_resample_on_schedule_and_config_overrides() -> None:
    task = make_task("Go1JoystickFlatTerrain", {"command_resample_steps": 3, "reward.tracking_lin_vel": 2.0})
    assert task.config.reward["tracking_lin_vel"] == 2.0 and task.config.reward["pose"] == 0.5
    env = CpuEngine(task, 2)
    state = env.reset(0)
    first = state.info["command"].copy()
    for _ in range(3):
        state = env.step(state, np.zeros((2, 12)))
    assert not np.array_equal(first, state.info["command"])
    assert (state.info["command_steps"] == 0).all()


def test_domain_randomisation_gives_each_env_its_own_model() -> None:
    spec = Randomization(mass_scale=(0.5, 1.5))
    env = load("Go1JoystickFlatTerrain", num_envs=3, randomization=spec, auto_reset=False)
    engine = env.env
    masses = engine.batch.expanded("body_mass")
    assert masses.shape == (3, engine.task.mj_model.nbody)
    assert len({round(m, 6) for m in masses.sum(axis=1)}) == 3
    state = env.reset(0)
    # the same start and actions, different models: the envs drift apart
    fields = engine.physics(state)
    same = {k: np.repeat(v[:1], 3, axis=0) for k, v in fields.items()}
    engine.batch.qpos[...] = same["qpos"]
    engine.batch.qvel[...] = same["qvel"]
    engine.batch.forward()
    state = state.replace(data=engine.batch.state.copy())
    for _ in range(20):
        state = env.step(state, np.full((3, 12), 0.3))
    assert np.ptp(state.obs[:, 0]) > 1e-4


def test_biped_shares_the_joystick_task_and_ends_when_it_falls() -> None:
    env = load("BipedJoystickFlatTerrain", num_envs=4, auto_reset=False)
    state = env.reset(0)
    assert state.obs.shape == (4, 46) and env.action_size == 10  # 42 + the gait clock
    assert state.info["feet_air_time"].shape == (4, 2)
    fell_at = np.full(4, -1)
    for step in range(150):
        state = env.step(state, np.zeros((4, 10)))
        fell_at[(fell_at < 0) & (state.done > 0)] = step
    assert (fell_at > 5).all()  # it stands a moment: no policy balances it
    assert (state.metrics["reward/termination"] == 1.0).all()
    assert (state.reward < 0).all()  # not clipped at zero: a fall costs 100 x dt


def test_swing_height_lifts_and_sets_down_each_foot_once_a_cycle() -> None:
    phase = np.linspace(-np.pi, np.pi, 2001)
    height = swing_height(phase, 0.12, np)
    assert height[0] == pytest.approx(0.0) and height[-1] == pytest.approx(0.0)
    assert height[1000] == pytest.approx(0.12) and height.max() == pytest.approx(0.12)
    assert (np.diff(height[:1000]) >= 0).all() and (np.diff(height[1000:]) <= 0).all()
    slope = np.gradient(height, phase)
    assert abs(slope[0]) < 1e-3 and abs(slope[1000]) < 1e-3  # eased: no step in velocity


def test_biped_gait_clock_advances_the_legs_half_a_cycle_apart() -> None:
    env = load("BipedJoystickFlatTerrain", num_envs=3, auto_reset=False)
    state = env.reset(1)
    phase, step = np.asarray(state.info["phase"]), np.asarray(state.info["phase_step"])
    np.testing.assert_allclose(phase, [[0.0, np.pi]] * 3)
    frequency = step / (2 * np.pi * env.dt)
    assert ((frequency >= 1.25) & (frequency <= 1.5)).all() and np.ptp(frequency) > 0  # drawn per episode
    np.testing.assert_allclose(state.obs[:, -4:], np.concatenate([np.cos(phase), np.sin(phase)], axis=1), atol=1e-6)
    for _ in range(40):
        state = env.step(state, np.zeros((3, 10)))
    after = np.asarray(state.info["phase"])
    expected = np.mod(phase + 40 * step[:, None] + np.pi, 2 * np.pi) - np.pi
    np.testing.assert_allclose(np.cos(after), np.cos(expected), atol=1e-5)
    assert ((after >= -np.pi) & (after < np.pi)).all()
    np.testing.assert_allclose(np.cos(after[:, 0] - after[:, 1]), -1.0, atol=1e-5)  # still opposite


def test_biped_feet_phase_reward_only_counts_when_moving_or_told_to() -> None:
    rewards = {}
    for name, forward in (("still", 0.0), ("told to walk", 0.5)):
        zero = {"lin_vel_x": (forward, forward), "lin_vel_y": (0.0, 0.0), "ang_vel_yaw": (0.0, 0.0)}
        task = make_task("BipedJoystickFlatTerrain", zero)
        env = CpuEngine(task, 2)
        state = env.reset(0)
        env.batch.qpos[...] = task.default_qpos  # at rest at home: only the command can switch it on
        env.batch.qvel[...] = 0.0
        env.batch.forward()
        state = env.step(state.replace(data=env.batch.state.copy()), np.zeros((2, 10)))
        rewards[name] = state.metrics["reward/feet_phase"]
    assert (rewards["still"] == 0).all() and (rewards["told to walk"] > 0).all()


def test_privileged_obs_for_an_asymmetric_critic_extends_the_obs_and_survives_auto_reset() -> None:
    env = load("Go1JoystickFlatTerrain", num_envs=4, config_overrides={"episode_length": 3})
    state = env.reset(0)
    for _ in range(4):  # through an auto-reset
        state = env.step(state, np.zeros((4, 12)))
        critic = state.info["privileged_obs"]
        assert critic.shape == (4, 48 + 1 + 3 + 12 + 4 + 4 + 4)
        np.testing.assert_allclose(critic[:, :48], state.obs, atol=1e-5)


PUSH_SOON = {"pushes": True, "push_interval": (0.02, 0.02), "push_duration": (0.1, 0.1), "push_velocity": (1.0, 1.0)}


def test_a_push_delivers_its_planned_impulse_and_moves_the_trunk_that_way() -> None:
    """A 0.1 s half-sine push worth 1 m/s, starting 0.02 s in: 7 control steps hold all of it."""
    from garagelab.playground.ops import NumpyOps

    pushed = load("Go1JoystickFlatTerrain", num_envs=3, config_overrides=PUSH_SOON, auto_reset=False, nthread=1)
    still = load("Go1JoystickFlatTerrain", num_envs=3, auto_reset=False, nthread=1)
    task = pushed.task
    state, reference = pushed.reset(0), still.reset(0)
    impulse = np.zeros((3, 3))
    for _ in range(7):
        wrench = task.push(NumpyOps(np.random.default_rng(0), 3), state.info)
        assert np.count_nonzero(np.abs(wrench).sum(axis=-1), axis=-1).max() <= 1  # the trunk only
        impulse += wrench[:, task.trunk, :3] * task.dt
        state, reference = pushed.step(state, np.zeros((3, 12))), still.step(reference, np.zeros((3, 12)))
    # sampled at control steps, the half sine's integral is 3% short of the continuous one
    np.testing.assert_allclose(np.linalg.norm(impulse, axis=-1) / task.robot_mass, 0.967, rtol=1e-3)
    moved = pushed.physics(state)["qpos"][:, :2] - still.physics(reference)["qpos"][:, :2]
    cosine = (moved * impulse[:, :2]).sum(-1) / np.linalg.norm(moved, axis=-1) / np.linalg.norm(impulse[:, :2], axis=-1)
    assert (cosine > 0.9).all(), cosine
    assert (state.info["push_clock"] < 0.05).all()  # the next push was planned after this one ended


def test_without_pushes_nothing_is_applied() -> None:
    task = make_task("Go1JoystickFlatTerrain")
    assert task.push(None, {}) is None and not task.config.pushes


def test_rough_terrain_heights_match_mujocos_surface_on_both_array_namespaces() -> None:
    import jax.numpy as jnp
    import mujoco

    from garagelab.playground.ops import JaxOps, NumpyOps

    task = make_task("Go1JoystickRoughTerrain")
    model, data = task.mj_model, mujoco.MjData(task.mj_model)
    mujoco.mj_forward(model, data)
    points = np.random.default_rng(0).uniform(-9.5, 9.5, (200, 2))
    surface = []
    for x, y in points:  # straight down onto the terrain from 1 m up
        distance = mujoco.mj_ray(
            model, data, np.array([x, y, 1.0]), np.array([0, 0, -1.0]), None, 1, -1, np.zeros(1, np.int32)
        )
        surface.append(1.0 - distance)
    ours = task.ground(NumpyOps(np.random.default_rng(), 200), points)
    np.testing.assert_allclose(ours, surface, atol=1e-3)  # bilinear vs MuJoCo's triangles
    assert np.ptp(surface) > 0.04  # bumps of up to 5 cm
    on_jax = task.ground(JaxOps(None), jnp.asarray(points, jnp.float32))
    np.testing.assert_allclose(np.asarray(on_jax), ours, atol=1e-5)
    assert task.ground(NumpyOps(np.random.default_rng(), 2), np.array([[0.3, -0.2], [30.0, 0.0]])).tolist() == [0, 0]


def test_go1_stands_on_bumps_with_its_feet_on_the_terrain() -> None:
    from garagelab.playground.ops import NumpyOps

    task = make_task("Go1JoystickRoughTerrain")
    env = CpuEngine(task, 4)
    state = env.reset(0)
    env.view.qpos[...] = task.default_qpos  # the home pose, still, out on the bumps
    env.view.qpos[:, :2] = [[3.0, 2.0], [-4.0, 5.0], [6.0, -6.5], [-2.5, -3.0]]
    env.view.qpos[:, 2] += 0.05
    env.view.qvel[...] = 0.0
    for _ in range(60):
        state = env.step(state, np.zeros((4, 12)))
    assert not state.done.any()
    feet = env.view.geom_xpos[:, task.feet, :]
    under = task.ground(NumpyOps(np.random.default_rng(), 4), feet[..., :2])
    assert (under > 0.0).any()  # some feet stand on raised ground
    np.testing.assert_array_equal(state.info["last_contact"], 1.0)  # each foot touches the terrain under it
