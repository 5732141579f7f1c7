"""MENAGERIE_ROOT: the Go1 task loads `<root>/unitree_go1/scene.xml` when it is there, and says so."""

from __future__ import annotations

import shutil

import pytest

from garagelab.core.errors import UserError
from garagelab.playground import make_task
from garagelab.playground.task import MODELS


def test_menagerie_root_supplies_the_model(tmp_path, monkeypatch) -> None:
    robot = tmp_path / "unitree_go1"
    robot.mkdir()
    shutil.copy(MODELS / "quadruped" / "go1.xml", robot / "scene.xml")  # same names as Menagerie's Go1
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path))
    task = make_task("Go1JoystickFlatTerrain")
    assert task.model_source == str(robot / "scene.xml")
    assert make_task("Go1JoystickFlatTerrain", {"model": "ours"}).model_source.startswith("garagelab:")


def test_missing_menagerie_is_a_one_line_error(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("MENAGERIE_ROOT", raising=False)
    assert make_task("Go1JoystickFlatTerrain").model_source.startswith("garagelab:")
    with pytest.raises(UserError, match="set MENAGERIE_ROOT"):
        make_task("Go1JoystickFlatTerrain", {"model": "menagerie"})
    monkeypatch.setenv("MENAGERIE_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="is not a directory"):
        make_task("Go1JoystickFlatTerrain")
    with pytest.raises(UserError, match="valid are auto, menagerie, ours"):
        make_task("Go1JoystickFlatTerrain", {"model": "mine"})
