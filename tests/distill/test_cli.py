from __future__ import annotations

import json
from pathlib import Path

import pytest

from garagelab.cli import main
from garagelab.core.runs import RunStore
from garagelab.distill.data import write_runs
from garagelab.distill.fit import FitResult
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.simulate import simulate_distillation, simulate_supervised
from tests.core.test_report import check_html


@pytest.fixture
def runs_csv(tmp_path: Path) -> Path:
    sup = simulate_supervised(BUSBRIDGE2025, noise=0.002, seed=1)
    dist = simulate_distillation(BUSBRIDGE2025, runs=120, noise=0.002, seed=1)
    return write_runs(tmp_path / "runs.csv", sup, dist)


@pytest.mark.slow
def test_fit_writes_json_report_and_index(runs_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["distill", "fit", str(runs_csv), "--starts", "300", "--bootstrap", "16", "--extrapolate-supervised", "2.3"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "supervised law" in out and "distillation law" in out and "extrapolation (supervised" in out
    (record,) = RunStore().list("distill")
    assert record.status == "done" and "supervised_objective" in record.headline
    fit = FitResult.load(record.path / "fit.json")
    assert fit.coefficient_set().supervised.E > 1.0
    check_html(record.path / "index.html")
    # the fit drives predict and plan
    assert (
        main(["distill", "predict", "--coefficients", str(record.path / "fit.json"), "--N", "1e9", "--D", "2e10"]) == 0
    )
    assert (
        main(
            [
                "distill",
                "plan",
                "--coefficients",
                str(record.path / "fit.json"),
                "--student",
                "1e9",
                "--compute",
                "1e21",
                "--samples",
                "8",
            ]
        )
        == 0
    )


def test_predict_prints_teacher_and_crossover(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distill", "predict", "--N", "546e6", "--D", "1.09e10", "--teacher", "N_T=7.75e9,D_T=1.55e11"]) == 0
    out = capsys.readouterr().out
    assert "supervised loss" in out and "best teacher loss" in out and "overtakes this teacher beyond" in out
    # every number has an interval, and the output says where the intervals come from
    assert out.count("(90%: ") == 5 and "the paper's published 90% intervals" in out


def test_predict_checks_the_teacher_before_answering(capsys: pytest.CaptureFixture[str]) -> None:
    """A teacher outside what the coefficients were fitted on is named as an extrapolation (its loss,
    its size); one whose distilled student never beats supervised training is said to lose at
    every token count, not to "not overtake"; a bad teacher prints nothing but the error."""
    argv = ["distill", "predict", "--N", "1e9", "--D", "1e10", "--samples", "16"]
    assert main([*argv, "--teacher", "L_T=9,N_T=1e13,D_T=1e10"]) == 0
    out = capsys.readouterr().out
    assert "supervised training beats this teacher at every student token count" in out
    lo, hi = BUSBRIDGE2025.domain.teacher_loss_min, BUSBRIDGE2025.domain.teacher_loss_max
    assert f"teacher loss 9 is outside the fitted {lo:.4g}..{hi:.4g}" in out
    assert "teacher size 1e+13 is outside" in out
    assert main([*argv, "--teacher", "L_T=2.3"]) == 0
    assert "outside" not in capsys.readouterr().out  # a student and teacher inside the paper's domain
    assert main([*argv, "--teacher", "L_T=1e300"]) == 0  # printed to 4 digits, not 300
    out = capsys.readouterr().out
    assert "(L_T=1e+300): student loss 1e+300" in out and "teacher loss 1e+300 is outside" in out
    assert main([*argv, "--teacher", "L_T=0.1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "irreducible loss" in captured.err


def test_a_sample_count_that_would_run_for_days_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in (["predict", "--N", "1e9", "--D", "1e10"], ["plan", "--student", "1e9", "--compute", "1e21"]):
        assert main(["distill", *verb, "--samples", "100000000"]) == 2
        assert "100000000 is more than 100,000" in capsys.readouterr().err
    assert main(["distill", "fit", "runs.csv", "--bootstrap", "100000000"]) == 2  # was a MemoryError
    assert "--bootstrap: 100000000 is more than 100,000" in capsys.readouterr().err
    assert main(["distill", "fit", "runs.csv", "--profile", "100000000"]) == 2
    assert "--profile: 100000000 is more than 10,000" in capsys.readouterr().err


def test_fit_options_that_would_do_nothing_or_emptied_the_runs_say_so(
    runs_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["distill", "fit", str(runs_csv), "--law", "supervised", "--starts", "20"]
    assert main([*argv, "--profile", "20"]) == 2  # the default profiled coefficients are the distillation law's
    assert "--profile: its default coefficients (c0, f1, d1) are the distillation law's" in (capsys.readouterr().err)
    assert main([*argv, "--min-tokens-per-param", "1e9"]) == 2
    assert "has no supervised rows (rows without a teacher) left by --min-tokens-per-param 1e+09" in (
        capsys.readouterr().err
    )


def test_fit_conventions_are_stored_and_honoured(runs_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["distill", "fit", str(runs_csv), "--law", "supervised", "--starts", "100", "--bootstrap", "8"]
    assert (
        main([*argv, "--fix", "gamma=1", "--huber-delta", "1e-3", "--flops", "6ND", "--bootstrap-kind", "residuals"])
        == 0
    )
    assert "gamma = 1  fixed" in capsys.readouterr().out
    (record,) = RunStore().list("distill")
    data = json.loads((record.path / "fit.json").read_text())
    stored = {"huber_delta": 1e-3, "residuals": "log", "fixed": {"gamma": 1.0}, "bootstrap": "residuals"}
    assert data["supervised"]["conventions"] == stored
    assert data["flops"]["n_vocab"] == 0 and data["flops"]["n_ctx"] == 0
    assert main(["distill", "fit", str(runs_csv), "--fix", "zeta=1"]) == 2
    assert "unknown coefficient 'zeta'" in capsys.readouterr().err
    assert main([*argv, "--fix", "c0=2"]) == 2  # a distillation coefficient, but only the supervised law is fitted
    assert "the distillation law is not fitted with --law supervised" in capsys.readouterr().err


def test_plan_prices_compute_with_the_chosen_flop_model(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["distill", "plan", "--student", "1e9", "--compute", "1e21", "--samples", "0", "--json"]
    tokens = {}
    for flops in ("6ND", "paper"):
        assert main([*argv, "--flops", flops]) == 0
        tokens[flops] = json.loads(capsys.readouterr().out)["supervised"]["student_tokens"]
    assert tokens["6ND"] == pytest.approx(1e21 / 6e9)
    assert tokens["paper"] < 0.9 * tokens["6ND"]  # context and vocabulary terms cost FLOPs
    assert main([*argv, "--n-vocab", "0", "--n-ctx", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["supervised"]["student_tokens"] == pytest.approx(tokens["6ND"])


def test_predict_csv(runs_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "pred.csv"
    assert main(["distill", "predict", "--input", str(runs_csv), "--output", str(out_path)]) == 0
    lines = out_path.read_text().splitlines()
    assert lines[0] == "N,D,loss,L_T,predicted,relative_error" and len(lines) > 100
    assert "mean |relative error| 0." in capsys.readouterr().out  # simulated from the same law


def test_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "distill",
                "plan",
                "--student",
                "1e9",
                "--compute",
                "1e20",
                "--scenario",
                "teacher-inference",
                "--samples",
                "16",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "distill" and data["margin"] > 0
    assert data["distillation"]["compute"]["total"] == pytest.approx(1e20, rel=1e-6)


def test_plot_writes_figures() -> None:
    assert main(["distill", "plot"]) == 0
    (record,) = RunStore().list("distill")
    parser = check_html(record.path / "index.html")
    assert len(parser.images) == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["distill", "plan", "--student", "-1", "--compute", "1e21"], "must be a positive number"),
        (["distill", "plan", "--student", "1e9"], "one of the arguments --compute --tokens is required"),
        (["distill", "predict", "--N", "1e9"], "give --N and --D"),
        (["distill", "fit", "missing.csv"], "no such file"),
        (["distill", "plan", "--student", "1e9", "--compute", "1e21", "--teacher", "L_T=x"], "not a number"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_bad_csv_through_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("N,D,loss\n1e9,2e10,2.5\n1e9,x,2.5\n")
    assert main(["distill", "fit", str(path)]) == 2
    assert "line 3, column D: 'x' is not a number" in capsys.readouterr().err
