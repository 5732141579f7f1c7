"""Names, configs and the one-line errors for what a user can get wrong."""

from __future__ import annotations

import pytest

from garagelab.core.errors import UserError
from garagelab.playground import default_config, load, make_task, names
from garagelab.playground.task import load_model


def test_unknown_env_lists_valid_names_and_a_suggestion() -> None:
    with pytest.raises(UserError, match="did you mean CartpoleBalance") as caught:
        load("CartpoleBalanse")
    assert "PendulumSwingup" in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_engine_and_config_key() -> None:
    with pytest.raises(UserError, match="valid: cpu, mjx, warp"):
        load("CartpoleBalance", engine="gpu")
    with pytest.raises(UserError, match="valid keys: ctrl_dt, sim_dt, episode_length"):
        make_task("CartpoleBalance", {"ctrl_dtt": 0.02})


def test_overrides_apply_and_are_checked() -> None:
    task = make_task("CartpoleBalance", {"ctrl_dt": "0.02", "episode_length": 50})
    assert task.n_substeps == 2 and task.config.episode_length == 50
    assert default_config("CartpoleBalance").ctrl_dt == 0.01  # the default is untouched
    with pytest.raises(UserError, match="whole multiple"):
        make_task("CartpoleBalance", {"ctrl_dt": 0.015})
    with pytest.raises(UserError, match="not a valid float"):
        make_task("CartpoleBalance", {"sim_dt": "fast"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reward.pose": "nan"}, r"reward.pose=nan: not a valid float \(not a finite number\)"),  # trained on
        ({"kp": float("inf")}, r"kp must be a finite number \(got inf\)"),
        ({"lin_vel_x": "1"}, r"'lin_vel_x' wants 2 values like \(0.3, 1.0\)"),  # nan failed inside numpy
        ({"lin_vel_x": (-1.0, 0.0, 1.0)}, "'lin_vel_x' wants 2 values"),
        ({"episode_length": 1e400}, "episode_length must be a finite number"),
        ({"episode_length": 100.5}, r"episode_length must be a whole number \(got 100.5\)"),  # was let through
        ({"lin_vel_x": (0.1, float("nan"))}, "lin_vel_x must be a finite number"),
    ],
)
def test_an_override_that_is_not_a_finite_number_or_a_range_is_refused(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        make_task("Go1JoystickForward", overrides)


def test_a_range_read_back_from_json_is_a_range() -> None:
    """A resumed run's env overrides come from config.json, where a (low, high) pair is a list."""
    task = make_task("Go1JoystickForward", {"lin_vel_x": [0.2, 0.8]})
    assert task.config.lin_vel_x == (0.2, 0.8)


def test_bad_model_path_is_one_line(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_model(tmp_path / "missing.xml")
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><geom type='nonsense'/></worldbody></mujoco>")
    with pytest.raises(UserError, match="does not load") as caught:
        load_model(broken)
    assert "\n" not in str(caught.value)


def test_names_are_unique_and_include_the_first_suite() -> None:
    assert len(names()) == len(set(names()))
    assert {"CartpoleBalance", "CartpoleSwingup", "PendulumSwingup", "PointMass", "ReacherEasy"} <= set(names())


def test_a_task_written_outside_the_package_registers_and_runs_on_the_cpu_engine(monkeypatch) -> None:
    import numpy as np

    from garagelab.playground import registry

    monkeypatch.setattr(registry, "_VARIANTS", dict(registry._VARIANTS))  # the task stays this test's

    from garagelab.playground import Task, register
    from garagelab.playground.task import MODELS, load_model
    from garagelab.playground.tasks.dmc import DmcConfig
    from garagelab.playground.tolerance import tolerance

    class Upright(Task):  # the example in docs/playground/README.md
        config_class = DmcConfig
        fields = ("xmat",)

        def build_model(self):
            return load_model(MODELS / "dm_control" / "pendulum.xml")

        def reset(self, ops):
            return {"qpos": ops.uniform((1,), -3.14, 3.14), "qvel": ops.full((1,), 0.0)}, {}

        def observe(self, ops, d, info):
            return ops.xp.concatenate([d.xmat[..., 1, 2, 2:3], d.qvel], axis=-1)

        def rewards(self, ops, d, action, info):
            return {"upright": tolerance(ops.xp, d.xmat[..., 1, 2, 2], (0.9, 1.0), margin=1.0)}

    register("TestUpright", Upright)
    env = load("TestUpright", num_envs=3)
    state = env.step(env.reset(0), np.zeros((3, 1)))
    assert state.obs.shape == (3, 2) and ((state.reward >= 0) & (state.reward <= 1)).all()
    assert "TestUpright" in names()
