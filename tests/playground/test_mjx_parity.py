"""The MJX engine against the CPU engine: same task, same start, same actions, same numbers.

Slow (XLA compiles MJX for several seconds on CPU), so marked `slow`.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco.mjx")

import jax

from garagelab.playground import Randomization, load, make_task
from garagelab.playground.cpu_engine import CpuEngine
from garagelab.playground.mjx_engine import MjxEngine
from garagelab.playground.randomize import sample


def parity(
    name: str,
    steps: int,
    num_envs: int = 3,
    randomization: dict | None = None,
    atol: float = 2e-3,
    overrides: dict | None = None,
) -> None:
    # on a GPU, float32 matmuls default to TF32; parity wants full float32
    with jax.default_matmul_precision("highest"):
        _parity(name, steps, num_envs, randomization, atol, overrides)


def _parity(
    name: str, steps: int, num_envs: int, randomization: dict | None, atol: float, overrides: dict | None
) -> None:
    task = make_task(name, overrides)
    cpu = CpuEngine(task, num_envs, randomization=randomization)
    gpu = MjxEngine(task, num_envs, randomization=randomization)
    cpu_state = cpu.reset(1)
    gpu_state = gpu.load_state(cpu.physics(cpu_state), cpu_state.info)
    np.testing.assert_allclose(np.asarray(gpu_state.obs), cpu_state.obs, atol=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        action = rng.uniform(-1, 1, (num_envs, task.action_size))
        cpu_state, gpu_state = cpu.step(cpu_state, action), gpu.step(gpu_state, action)
        # float32 (MJX) against float64 (MuJoCo): agreement to a few 1e-4 over short horizons
        np.testing.assert_allclose(np.asarray(gpu_state.obs), cpu_state.obs, atol=atol, rtol=atol)
        np.testing.assert_allclose(np.asarray(gpu_state.reward), cpu_state.reward, atol=atol)
        np.testing.assert_array_equal(np.asarray(gpu_state.done), cpu_state.done)
        if "privileged_obs" in cpu_state.info:
            gpu_critic, cpu_critic = np.asarray(gpu_state.info["privileged_obs"]), cpu_state.info["privileged_obs"]
            np.testing.assert_allclose(gpu_critic, cpu_critic, atol=atol, rtol=atol)


@pytest.mark.slow
def test_cartpole_parity() -> None:
    parity("CartpoleSwingup", steps=20)


@pytest.mark.slow
def test_go1_parity_with_contacts() -> None:
    # contacts amplify float32 rounding; over 5 control steps (25 physics steps) it stays small
    parity("Go1JoystickFlatTerrain", steps=5, num_envs=2, atol=3e-2)


@pytest.mark.slow
def test_biped_parity() -> None:
    # caught box feet: MJX's box-plane contacts differ from MuJoCo's, so the biped has capsule feet
    parity("BipedJoystickFlatTerrain", steps=5, num_envs=2, atol=2e-2)


@pytest.mark.slow
def test_domain_randomised_models_match_across_engines() -> None:
    spec = Randomization(mass_scale=(0.5, 1.5), damping_scale=(0.5, 2.0), com_offset=0.1)
    task = make_task("CartpoleSwingup")
    fields = sample(task.mj_model, 3, spec, seed=4)
    parity("CartpoleSwingup", steps=10, randomization=fields)


@pytest.mark.slow
@pytest.mark.parametrize("reset_mode", ["full", "cached"])
def test_mjx_stack_resets_steps_and_auto_resets(reset_mode: str) -> None:
    overrides = {"episode_length": 3}
    env = load("CartpoleBalance", engine="mjx", num_envs=2, config_overrides=overrides, reset_mode=reset_mode)
    first = env.reset(0)
    state = first
    for _ in range(3):
        state = env.step(state, np.zeros((2, 1), np.float32))
    assert np.asarray(state.done).tolist() == [1.0, 1.0]
    assert np.asarray(state.info["steps"]).tolist() == [0.0, 0.0]
    assert np.isfinite(np.asarray(state.obs)).all() and state.obs.shape == (2, env.observation_size)
    if reset_mode == "cached":
        np.testing.assert_array_equal(np.asarray(state.obs), np.asarray(first.obs))


@pytest.mark.slow
def test_go1_pushes_match_across_engines() -> None:
    """Pushes (xfrc_applied on the trunk) under both engines, from the same state and push plan."""
    overrides = {"pushes": True, "push_interval": (0.02, 0.02), "push_duration": (0.1, 0.1)}
    parity("Go1JoystickFlatTerrain", steps=5, num_envs=2, atol=3e-2, overrides=overrides)


def test_heightfield_terrain_is_refused_on_mjx() -> None:
    from garagelab.core.errors import UserError

    with pytest.raises(UserError, match="CPU engine only"):
        load("Go1JoystickRoughTerrain", engine="mjx", num_envs=1)
