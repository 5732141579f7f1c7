from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from garagelab.cli import main
from garagelab.core.cliargs import (
    check_new_total,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    whole_number_up_to,
)
from garagelab.core.errors import UserError


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "garagelab", *args], capture_output=True, text=True, check=False)


def test_help_lists_systems_and_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "tour" in result.stdout and "runs" in result.stdout
    assert "distill" in result.stdout


def test_unknown_system_is_one_line_exit_2() -> None:
    result = run_cli("nosuchsystem")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and "nosuchsystem" in lines[0]


def test_user_error_is_one_line_without_traceback() -> None:
    result = run_cli("runs", "show", "424242")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: no run '424242'")
    assert "Traceback" not in result.stderr


def test_an_output_path_that_cannot_be_written_is_one_line_exit_2(tmp_path, capsys) -> None:
    """A file the user names under a folder that does not exist was an "internal error"."""
    missing = tmp_path / "no" / "such" / "table.csv"
    assert main(["wafer", "table", "3", "--csv", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {missing}: No such file or directory; check the path and its permissions\n"


def test_whole_number_up_to_refuses_more_with_the_reason() -> None:
    count = whole_number_up_to(10, "ten is plenty")
    assert count("0") == 0 and count("10") == 10
    with pytest.raises(argparse.ArgumentTypeError, match="11 is more than 10: ten is plenty"):
        count("11")
    with pytest.raises(argparse.ArgumentTypeError, match="must be at least 0"):
        count("-1")


def test_a_resumes_new_total_must_exceed_what_was_done() -> None:
    check_new_total("--steps", None, 4096, "unused")  # not given: the stored total stands
    check_new_total("--steps", 4097, 4096, "unused")
    for given in (4096, 100):  # the same total would stop at once; a smaller one rewrites config.json below it
        with pytest.raises(UserError, match=r"^run 3 has trained 4,096 steps; --steps is the new total, so give more$"):
            check_new_total("--steps", given, 4096, "run 3 has trained 4,096 steps")


def test_debug_adds_traceback() -> None:
    result = run_cli("--debug", "runs", "show", "424242")
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_bad_flag_value_is_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "list", "--nosuchflag"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unrecognized arguments: --nosuchflag")


def test_missing_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: garagelab" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        (positive_float, "1e9", 1e9),
        (positive_float, "0", "must be a positive number"),
        (positive_float, "inf", "must be a positive number"),
        (positive_float, "nan", "must be a positive number"),
        (positive_float, "x", "'x' is not a number"),
        (non_negative_float, "0", 0.0),
        (non_negative_float, "-1", "must be a number of at least 0"),
        (non_negative_float, "inf", "must be a number of at least 0"),
        (non_negative_int, "0", 0),
        (non_negative_int, "-1", "must be at least 0"),
        (positive_int, "0", "must be at least 1"),
        (positive_int, "1.5", "is not a whole number"),
    ],
)
def test_checked_number_types(parse, text: str, expected: object) -> None:
    if isinstance(expected, str):
        with pytest.raises(argparse.ArgumentTypeError, match=expected):
            parse(text)
    else:
        assert parse(text) == expected
