"""The playground verbs through the real entry point, and their one-line errors."""

from __future__ import annotations

import pytest

from garagelab.cli import main


def test_list_shows_every_env(capsys) -> None:
    assert main(["playground", "list"]) == 0
    out = capsys.readouterr().out
    assert "Go1JoystickFlatTerrain" in out and "HumanoidRun" in out


def test_info_applies_overrides(capsys) -> None:
    assert main(["playground", "info", "Go1JoystickFlatTerrain", "--set", "kp=40"]) == 0
    out = capsys.readouterr().out
    assert "observation 48, action 12" in out and "kp = 40.0" in out


def test_bench_prints_rates(capsys) -> None:
    assert main(["playground", "bench", "CartpoleBalance", "--num-envs", "2,4", "--steps", "10"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("CartpoleBalance")]
    assert len(lines) == 2 and all(float(line.split()[4].replace(",", "")) > 0 for line in lines)


def test_user_errors_are_one_line(capsys) -> None:
    assert main(["playground", "info", "Cartpol"]) == 2
    assert main(["playground", "info", "CartpoleBalance", "--set", "nope=1"]) == 2
    assert main(["playground", "bench", "CartpoleBalance", "--num-envs", "0"]) == 2
    assert main(["playground", "render", "CartpoleBalance", "--out", "x.avi"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("error: ") for line in errors)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "CartpoleBalance", "--num-envs", "10000000"], "at most 1,048,576 envs"),  # ran out of memory
        (["bench", "CartpoleBalance", "--threads", "-4"], "--threads: -4 must be at least 0"),
        (["train", "CartpoleBalance", "--video-steps", "-5"], "--video-steps: -5 must be at least 0"),
        (["render", "CartpoleBalance", "--seed", "-1"], "--seed: -1 must be at least 0"),
        (["render", "CartpoleBalance", "--steps", "20000"], "20000 is more than 10,000: a clip's frames are held"),
        (["train", "CartpoleBalance", "--video-steps", "99999"], "99999 is more than 10,000"),  # 1e8 ran out of memory
        (["eval", "12", "--episodes", "100000"], "100000 is more than 10,000: the episodes run side by side"),
    ],
)
def test_counts_and_seeds_out_of_range_are_refused(argv: list[str], message: str, capsys) -> None:
    assert main(["playground", *argv]) == 2
    assert message in capsys.readouterr().err
