from __future__ import annotations

import json

import pytest

from garagelab.cli import main
from garagelab.core.runs import RunStore
from tests.core.test_report import check_html


def test_simulate_prints_wafer_and_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wafer", "simulate", "--model", "llama3-8b", "--input", "256", "--output", "16", "--gpus", "1,8"]) == 0
    out = capsys.readouterr().out
    assert "decode on" in out and "1xA100" in out and "8xA100" in out
    assert "this placement holds up to" in out
    assert main(["wafer", "simulate", "--input", "64", "--output", "4", "--gpus", "1,12"]) == 0
    assert "12xA100: cannot run it (tensor parallelism splits the 32 attention heads evenly" in capsys.readouterr().out
    # the ratios read as written: the wafer's speed and energy over the GPUs' (the energy ratio was
    # once GPU over wafer under the words "x the energy", so a costlier wafer read as a cheaper one)
    assert main(["wafer", "simulate", "--input", "256", "--output", "16", "--gpus", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    gpu = summary["gpus"]["1xA100"]
    assert main(["wafer", "simulate", "--input", "256", "--output", "16", "--gpus", "1"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "1xA100" in line]
    speed = summary["decode_tpr"] / gpu["decode_tpr"]
    energy = summary["energy_per_token_j"] / gpu["energy_per_token_j"]
    assert f"decodes at {speed:.3g}x its speed per request and spends {energy:.3g}x its energy per token" in line


def test_simulate_takes_a_rectangular_decode_region(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["wafer", "simulate", "--input", "256", "--output", "16", "--decode-grid", "375x497", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["decode_grid"] == [375, 497] and summary["decode_regions"] <= 4  # 2 x 2 on the fabric


def test_simulate_refuses_what_does_not_fit_and_runs_it_on_the_chips_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["wafer", "simulate", "--model", "qwen2-72b", "--input", "64", "--output", "4", "--gpus", "1,8"]
    argv += ["--decode-grid", "540", "--prefill-grid", "540"]
    assert main(argv) == 2  # one chip by default: refused with the reason and the way out
    assert "needs 14 regions (6 layers each) and a WSE-2 holds 1 (1x1); allow 14 chips" in capsys.readouterr().err
    assert main([*argv, "--chips", "13"]) == 2
    capsys.readouterr()
    assert main([*argv, "--chips", "14"]) == 0
    out = capsys.readouterr().out
    assert "1xA100: cannot run it (needs 145 GB" in out and "8xA100: TTFT" in out
    assert "decode: 14 chips, layers pipelined across them over the chip link" in out
    assert main([*argv, "--chips", "14", "--json"]) == 0
    linked = json.loads(capsys.readouterr().out)
    assert main([*argv, "--chips", "14", "--json", "--set", "chip_link_latency_s=0"]) == 0
    free = json.loads(capsys.readouterr().out)
    assert linked["chips"] == {"prefill": 14, "decode": 14}
    # 13 chip boundaries per token, each the link's 10 us latency (plus 16 KB at 150 GB/s)
    assert linked["tpot_s"] - free["tpot_s"] == pytest.approx(13 * 10e-6)


def test_simulate_json_with_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["wafer", "simulate", "--input", "128", "--output", "8", "--decode-grid", "360", "--json"]
    assert main(argv) == 0
    base = json.loads(capsys.readouterr().out)
    assert main([*argv, "--set", "beta=40"]) == 0
    slower = json.loads(capsys.readouterr().out)
    assert slower["decode_grid"] == base["decode_grid"] == [360, 360]
    assert slower["tpot_s"] > base["tpot_s"]
    assert base["kv_capacity_tokens"] >= 136  # the context this placement holds, at least the request's
    # vast SRAM lets the autotuner try tiles whose element count overflowed int64 (an internal error)
    assert main(["wafer", "simulate", "--input", "128", "--output", "8", "--json", "--set", "sram_bytes=1e30"]) == 0
    assert json.loads(capsys.readouterr().out)["tpot_s"] > 0


def test_table_prints_paper_vs_ours(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    assert main(["wafer", "table", "6", "--csv", str(tmp_path / "t6.csv")]) == 0
    out = capsys.readouterr().out
    assert "WSE-2" in out and "mean error" in out
    assert "in-sample: the device constants were fitted to this table" in out and "--holdout table6" in out
    assert (tmp_path / "t6.csv").read_text().startswith("system,n,paper,ours,ratio")


@pytest.mark.parametrize("name", ["3", "4", "5", "7", "8", "fig9", "fig10"])
def test_every_quick_table_command_runs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Table 2 (a minute) is covered in test_llm.py on the rows that used to crash."""
    assert main(["wafer", "table", name]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) > 4 and "Traceback" not in out


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("alpha=-1", "alpha must be finite and non-negative"),
        ("clock_hz=0", "clock_hz must be finite and positive"),
        ("usable=750x994", "--set usable=750x994: expected int values separated by commas, like usable=750,994"),
        ("fabric=3", "fabric is (rows, columns), two numbers, got (3,); e.g. fabric=757,996"),
    ],
)
def test_invalid_device_settings_are_one_line_errors(
    setting: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["wafer", "simulate", "--set", setting]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_calibrate_holdout_prints_fitted_and_predicted_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wafer", "calibrate", "--clock", "1.1e9", "--holdout", "table4"]) == 0
    out = capsys.readouterr().out
    assert "WSE-2 table4: 2.7% fitted with it (in-sample), 2.8% predicted without it (held out)" in out
    assert "A100 table4:" in out and "predicted without it" in out


@pytest.mark.slow
def test_explore_quick_writes_report() -> None:
    assert main(["wafer", "explore", "--quick", "--context", "1024"]) == 0
    (record,) = RunStore().list("wafer")
    parser = check_html(record.path / "index.html")
    assert len(parser.images) == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["wafer", "simulate", "--model", "nosuch"], "not a built-in"),
        (["wafer", "simulate", "--input", "0"], "must be at least 1"),
        (["wafer", "simulate", "--set", "gamma=3"], "expected KEY=VALUE with KEY one of"),
        (["wafer", "simulate", "--set", "beta=abc"], "not a valid float"),
        (["wafer", "simulate", "--device", "WSE-9"], "unknown device"),
        (["wafer", "simulate", "--decode-grid", "2000"], "does not fit"),
        (["wafer", "simulate", "--decode-grid", "400x1200"], "does not fit the 750x994 usable mesh"),
        (["wafer", "simulate", "--decode-grid", "3x4x5"], "rows x cols (375x497)"),
    ],
)
def test_user_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
