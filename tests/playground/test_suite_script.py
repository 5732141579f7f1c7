"""experiments/playground/suite.py: a killed suite resumes (finished cells are skipped, a cell
in progress continues from its checkpoint), a finished cell is never reused for another budget,
every task has its reference, and the table says which learner is better only when the seeds
separate them."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "experiments" / "playground" / "suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("suite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_better_needs_a_gap_beyond_the_seed_spread(suite) -> None:
    assert suite._better({"ppo": 500.0, "sac": 400.0}, {"ppo": [490, 510], "sac": [390, 410]}) == "ppo"
    assert suite._better({"ppo": 500.0, "sac": 480.0}, {"ppo": [400, 600], "sac": [470, 490]}) == ""
    assert suite._better({"ppo": 0.0, "sac": 0.0}, {"ppo": [0, 0], "sac": [0, 0]}) == ""
    assert suite._better({"ppo": 10.0}, {"ppo": [10, 10]}) == ""


def test_every_task_has_a_reference_and_no_other_has_one(suite) -> None:
    assert set(suite.REFERENCE_RETURNS) == set(suite.dm_control_tasks())


def test_a_finished_cell_is_not_reused_for_other_settings(suite, tmp_path: Path) -> None:
    """With only task, learner and seed in its name, a run at 8M steps (or after the tuned settings
    changed) used to skip the finished cells and print their returns as the new run's."""
    settings = suite.cell_settings(suite.cell_config("CartpoleBalance", "ppo", 0, 1_000_000))
    record = tmp_path / "CartpoleBalance-ppo-0.json"
    record.write_text(json.dumps({"task": "CartpoleBalance", "settings": settings, "steps": 999_424}))
    suite.check_settings(record, settings)
    longer = suite.cell_settings(suite.cell_config("CartpoleBalance", "ppo", 0, 8_000_000))
    with pytest.raises(SystemExit, match="other settings \\(total_steps 1000000 -> 8000000\\): give these"):
        suite.check_settings(record, longer)
    record.write_text(json.dumps({"task": "CartpoleBalance", "steps": 999_424}))  # before cells kept settings
    with pytest.raises(SystemExit, match="other settings"):
        suite.check_settings(record, settings)


@pytest.mark.slow
def test_the_suite_trains_cells_once_and_tabulates_them(suite, tmp_path: Path, monkeypatch, capsys) -> None:
    args = ["suite.py", "--tasks", "CartpoleBalance", "--seeds", "2", "--steps", "4096", "--episodes", "1"]
    monkeypatch.setattr(sys, "argv", [*args, "--out", str(tmp_path)])
    assert suite.main() == 0
    cells = sorted((tmp_path / "cells").glob("*.json"))
    assert [c.name for c in cells] == ["CartpoleBalance-ppo-0.json", "CartpoleBalance-ppo-1.json"]
    first = [json.loads(c.read_text()) for c in cells]
    assert all(c["steps"] == 4096 and c["settings"]["stagger_starts"] and len(c["returns"]) == 1 for c in first)
    table = (tmp_path / "suite.md").read_text()
    assert "| CartpoleBalance | ppo | 4,096 | 2 |" in table and "Not run yet: CartpoleBalanceSparse" in table
    capsys.readouterr()
    assert suite.main() == 0  # everything finished: nothing is trained again
    assert "seed" not in capsys.readouterr().out.replace("suite cells", "")
    assert [json.loads(c.read_text()) for c in cells] == first
    monkeypatch.setattr(sys, "argv", [*args[:-4], "--steps", "8192", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="total_steps 4096 -> 8192"):
        suite.main()  # refused before anything trains
    assert [json.loads(c.read_text()) for c in cells] == first
