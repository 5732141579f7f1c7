"""The GPU engines (MJX, MuJoCo Warp) against the CPU engine: same task, same start, same
actions, same numbers.

Slow (XLA compiles MJX, and Warp its kernels, for several seconds on CPU), so marked `slow`
(`make test-slow`), except Warp's cartpole and Go1 parity, which `make test` keeps (a few
seconds each). Warp runs here on its CPU backend.
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
from garagelab.playground.warp_engine import WarpEngine

ENGINES = {"mjx": MjxEngine, "warp": WarpEngine}
both = pytest.mark.parametrize("engine", list(ENGINES))
mjx_slow = pytest.mark.parametrize("engine", [pytest.param("mjx", marks=pytest.mark.slow), "warp"])


def parity(
    name: str,
    steps: int,
    engine: str = "mjx",
    num_envs: int = 3,
    randomization: dict | None = None,
    atol: float = 2e-3,
    overrides: dict | None = None,
    iterations: int | None = None,
) -> None:
    """`iterations` replaces the model's solver iteration count on both engines."""
    # on a GPU, float32 matmuls default to TF32; parity wants full float32
    with jax.default_matmul_precision("highest"):
        _parity(name, steps, ENGINES[engine], num_envs, randomization, atol, overrides, iterations)


def _parity(
    name: str,
    steps: int,
    engine: type,
    num_envs: int,
    randomization: dict | None,
    atol: float,
    overrides: dict | None,
    iterations: int | None,
) -> None:
    task = make_task(name, overrides)
    if iterations is not None:
        task.mj_model.opt.iterations = iterations
    cpu = CpuEngine(task, num_envs, randomization=randomization)
    gpu = engine(task, num_envs, randomization=randomization)
    cpu_state = cpu.reset(1)
    gpu_state = gpu.load_state(cpu.physics(cpu_state), cpu_state.info)
    np.testing.assert_allclose(np.asarray(gpu_state.obs), cpu_state.obs, atol=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        action = rng.uniform(-1, 1, (num_envs, task.action_size))
        cpu_state, gpu_state = cpu.step(cpu_state, action), gpu.step(gpu_state, action)
        # float32 (MJX, Warp) against float64 (MuJoCo): agreement to a few 1e-4 over short horizons
        np.testing.assert_allclose(np.asarray(gpu_state.obs), cpu_state.obs, atol=atol, rtol=atol)
        np.testing.assert_allclose(np.asarray(gpu_state.reward), cpu_state.reward, atol=atol)
        np.testing.assert_array_equal(np.asarray(gpu_state.done), cpu_state.done)
        if "privileged_obs" in cpu_state.info:
            gpu_critic, cpu_critic = np.asarray(gpu_state.info["privileged_obs"]), cpu_state.info["privileged_obs"]
            np.testing.assert_allclose(gpu_critic, cpu_critic, atol=atol, rtol=atol)


@mjx_slow
def test_cartpole_parity(engine: str) -> None:
    parity("CartpoleSwingup", steps=20, engine=engine)


@pytest.mark.slow
def test_go1_parity_with_contacts() -> None:
    # contacts amplify float32 rounding; over 5 control steps (25 physics steps) it stays small
    parity("Go1JoystickFlatTerrain", steps=5, num_envs=2, atol=3e-2)


@pytest.mark.slow
def test_biped_parity() -> None:
    # caught box feet: MJX's box-plane contacts differ from MuJoCo's, so the biped has capsule feet
    parity("BipedJoystickFlatTerrain", steps=5, num_envs=2, atol=2e-2)


def test_go1_parity_with_contacts_on_warp() -> None:
    # Warp's Newton solver takes another path to the solution than MuJoCo's: at the Go1's one
    # iteration (Playground's setting) joint velocities differ by several rad/s after one control
    # step, so parity is checked with the solver run to convergence on both engines
    parity("Go1JoystickFlatTerrain", steps=3, engine="warp", num_envs=2, atol=3e-2, iterations=50)


@pytest.mark.slow
@both
def test_domain_randomised_models_match_across_engines(engine: str) -> None:
    spec = Randomization(mass_scale=(0.5, 1.5), damping_scale=(0.5, 2.0), com_offset=0.1)
    task = make_task("CartpoleSwingup")
    fields = sample(task.mj_model, 3, spec, seed=4)
    parity("CartpoleSwingup", steps=10, engine=engine, randomization=fields)


@pytest.mark.slow
@both
@pytest.mark.parametrize("reset_mode", ["full", "cached"])
def test_gpu_stack_resets_steps_and_auto_resets(engine: str, reset_mode: str) -> None:
    overrides = {"episode_length": 3}
    env = load("CartpoleBalance", engine=engine, num_envs=2, config_overrides=overrides, reset_mode=reset_mode)
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
@both
def test_go1_pushes_match_across_engines(engine: str) -> None:
    """Pushes (xfrc_applied on the trunk) under both engines, from the same state and push plan."""
    overrides = {"pushes": True, "push_interval": (0.02, 0.02), "push_duration": (0.1, 0.1)}
    if engine == "mjx":
        parity("Go1JoystickFlatTerrain", steps=5, num_envs=2, atol=3e-2, overrides=overrides)
        return
    # converged (see test_go1_parity_with_contacts_on_warp), Warp and MJX agree with each other to
    # 1e-6 and both differ from MuJoCo by 0.038 rad/s in one joint velocity as the push starts
    parity("Go1JoystickFlatTerrain", steps=5, engine="warp", num_envs=2, atol=5e-2, overrides=overrides, iterations=50)


@both
def test_heightfield_terrain_is_refused_on_the_gpu_engines(engine: str) -> None:
    from garagelab.core.errors import UserError

    with pytest.raises(UserError, match="CPU engine only"):
        load("Go1JoystickRoughTerrain", engine=engine, num_envs=1)
