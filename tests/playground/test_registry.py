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
    with pytest.raises(UserError, match="valid: cpu, mjx"):
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
