"""A killed `distill fit` resumes in its directory: the stages it had finished are read back
(not recomputed), and it ends with exactly what an uninterrupted fit prints and stores."""

from __future__ import annotations

from pathlib import Path

import pytest

import garagelab.distill.fit as fit_module
import garagelab.distill.profile as profile_module
from garagelab.cli import main
from garagelab.core.runs import RunStore
from garagelab.distill.data import write_runs
from garagelab.distill.fit import FitResult
from garagelab.distill.laws import BUSBRIDGE2025 as C
from garagelab.distill.simulate import simulate_supervised

SETTINGS = ["--law", "supervised", "--starts", "200", "--bootstrap", "24", "--profile", "20",
            "--profile-coefficients", "beta"]  # fmt: skip


def _forbidden(*args, **kwargs):
    raise AssertionError("a finished stage was computed again")


@pytest.mark.slow
def test_a_killed_fit_resumes_from_its_finished_stages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_runs(tmp_path / "runs.csv", simulate_supervised(C, noise=0.01, seed=1), None)
    assert main(["distill", "fit", str(csv), *SETTINGS, "--name", "whole"]) == 0
    threshold_at = profile_module.threshold_at
    simulated: list[float] = []  # the values whose thresholds the scan simulated (--profile-threshold ends)

    def killed_at_the_second(*args, **kwargs):
        if simulated:
            raise KeyboardInterrupt
        simulated.append(float(args[2][0][args[4]]))
        return threshold_at(*args, **kwargs)

    # killed in the last stage, beta's scan, after the threshold at one of its ends was simulated
    monkeypatch.setattr(profile_module, "threshold_at", killed_at_the_second)
    assert main(["distill", "fit", str(csv), *SETTINGS, "--name", "killed"]) == 130
    whole, killed = RunStore().list("distill")
    assert killed.status == "interrupted" and not (killed.path / "fit.json").exists()
    finished = sorted(path.stem for path in (killed.path / "stages").glob("*.json"))
    assert finished == ["supervised.bootstrap", "supervised.fit", "supervised.profile.beta.threshold",
                        f"supervised.profile.beta.threshold_at.{simulated[0]:.17g}",
                        "supervised.profile.nulls"]  # fmt: skip

    # the resume computes the rest of beta's scan only: the fit, bootstrap, nulls, the threshold
    # at the estimate and the one simulated at an end are read back
    for name in ("fit_law", "bootstrap_fit"):
        monkeypatch.setattr(fit_module, name, _forbidden)
    calls = {"threshold_at": [], "_free_fits": 0, "_threshold": 0}
    free_fits, threshold = profile_module._free_fits, profile_module._threshold

    def counted(name, function):
        def call(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return call

    def recorded(*args, **kwargs):
        calls["threshold_at"].append(float(args[2][0][args[4]]))
        return threshold_at(*args, **kwargs)

    monkeypatch.setattr(profile_module, "threshold_at", recorded)
    monkeypatch.setattr(profile_module, "_free_fits", counted("_free_fits", free_fits))
    monkeypatch.setattr(profile_module, "_threshold", counted("_threshold", threshold))
    capsys.readouterr()
    assert main(["distill", "fit", "--resume", killed.label]) == 0
    assert "5 finished stages read back" in capsys.readouterr().out
    assert simulated[0] not in calls["threshold_at"]
    assert calls["_free_fits"] == calls["_threshold"] == len(calls["threshold_at"])  # only the new ends'
    first, resumed = (FitResult.load(record.path / "fit.json").supervised for record in (whole, killed))
    assert resumed.coefficients == first.coefficients and resumed.objective == first.objective
    assert resumed.bootstrap == first.bootstrap and resumed.intervals == first.intervals
    assert resumed.profile == first.profile and set(resumed.profile) == {"beta"}
    assert RunStore().get(killed.label).status == "done"


def test_resume_refuses_what_it_cannot_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_runs(tmp_path / "runs.csv", simulate_supervised(C, noise=0.01, seed=1), None)
    assert main(["distill", "fit", str(csv), "--law", "supervised", "--starts", "50"]) == 0
    (record,) = RunStore().list("distill")
    capsys.readouterr()
    for argv, message in (
        (["--resume", record.label], "has finished"),
        ([str(csv), "--resume", record.label], "not both"),
        ([], "give the runs CSV"),
        (["--resume", "nonexistent"], "no run 'nonexistent'"),
    ):
        assert main(["distill", "fit", *argv]) == 2
        assert message in capsys.readouterr().err


def test_resume_refuses_a_runs_file_changed_since_the_run_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_runs(tmp_path / "runs.csv", simulate_supervised(C, noise=0.01, seed=1), None)
    fit_law = fit_module.fit_law

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "fit_law", killed)
    assert main(["distill", "fit", str(csv), "--law", "supervised", "--starts", "50"]) == 130
    monkeypatch.setattr(fit_module, "fit_law", fit_law)
    (record,) = RunStore().list("distill")
    write_runs(csv, simulate_supervised(C, noise=0.01, seed=2), None)  # other runs under the same name
    capsys.readouterr()
    assert main(["distill", "fit", "--resume", record.label]) == 2
    assert "has changed since run" in capsys.readouterr().err
    csv.unlink()  # gone: refused as a new fit's missing CSV is, not as a changed one
    assert main(["distill", "fit", "--resume", record.label]) == 2
    err = capsys.readouterr().err
    assert f"{csv}: no such file" in err and "has changed" not in err
