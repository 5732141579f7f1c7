"""Profile intervals: the threshold is simulated, and the ends are where the objective
held at a value rises past it (checked against independent held fits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from garagelab.cli import main
from garagelab.core.errors import UserError
from garagelab.core.runs import RunStore
from garagelab.distill.data import write_runs
from garagelab.distill.fit import FitResult, fit_law
from garagelab.distill.health import robust_centre_scale
from garagelab.distill.laws import BUSBRIDGE2025 as C
from garagelab.distill.objective import SUPERVISED, law_to_theta
from garagelab.distill.profile import profile_intervals, rise_statistic, simulated_losses, threshold_at
from garagelab.distill.simulate import simulate_supervised

BUDGETS = tuple(np.geomspace(1e18, 1e23, 11))


def test_simulated_losses_carry_the_fits_noise() -> None:
    runs = simulate_supervised(C, noise=0.01, seed=2, budgets=BUDGETS)
    columns = runs.log_columns()
    theta = law_to_theta(C.supervised)
    fitted = SUPERVISED.log_predictions(theta, columns)
    _, scale = robust_centre_scale(columns[-1] - fitted)
    rows = simulated_losses(SUPERVISED, theta, columns, 400, 6, np.random.default_rng(0))
    noise = rows - fitted
    runs_count = len(fitted)
    assert rows.shape == (400, runs_count)
    assert abs(noise.mean()) < 0.001
    assert noise.std() == pytest.approx(scale * np.sqrt(runs_count / (runs_count - 6)), rel=0.03)
    assert 0.007 < scale < 0.013  # the robust scale reads the 1% noise


@pytest.mark.slow
@pytest.mark.parametrize("at_ends", [False, True])
def test_profile_ends_are_where_held_fits_cross_the_threshold(at_ends: bool) -> None:
    runs = simulate_supervised(C, noise=0.01, seed=4, budgets=BUDGETS)
    columns = runs.log_columns()
    box = SUPERVISED.box("physical")
    theta, objective, stats = fit_law(SUPERVISED, columns, 300, progress=False, bounds="physical")
    result = profile_intervals(
        SUPERVISED, columns, stats["minima"], objective, box, ["alpha"], nulls=20, progress=False, at_ends=at_ends
    )
    interval = result.intervals["alpha"]
    assert interval.nulls == 20 and interval.threshold > 0 and interval.values >= 6
    assert interval.low < theta[3] < interval.high
    assert not interval.open_low and not interval.open_high
    width = interval.high - interval.low
    # with thresholds simulated at the ends, the one in force between them is interpolated
    thresholds = (interval.threshold, *(interval.end_thresholds or ()))
    assert len(thresholds) == (3 if at_ends else 1) and min(thresholds) > 0

    def statistic(value: float) -> float:
        held = fit_law(SUPERVISED, columns, 300, progress=False, bounds="physical", fixed={"alpha": value})[1]
        return float(rise_statistic(held, min(held, objective), len(columns[0])))

    for end, outward in ((interval.low, -1.0), (interval.high, 1.0)):
        assert statistic(end - outward * 0.2 * width) <= max(thresholds)
        assert statistic(end + outward * 0.2 * width) > min(thresholds)


@pytest.mark.slow
def test_threshold_at_a_value_measures_the_noise_there_not_the_datas_distance() -> None:
    # a test inversion's threshold at a value v comes from data simulated at the fit held at v,
    # so it is of the same size far from the estimate as at it, while the statistic there is not
    runs = simulate_supervised(C, noise=0.01, seed=4, budgets=BUDGETS)
    columns = runs.log_columns()
    box = SUPERVISED.box("physical")
    theta, objective, stats = fit_law(SUPERVISED, columns, 300, progress=False, bounds="physical")
    index, far = SUPERVISED.parameter("alpha", 1.0)
    assert theta[index] < 0.5  # alpha's profile is flat near the estimate: 1.0 is far on it
    _, held, held_stats = fit_law(SUPERVISED, columns, 300, progress=False, bounds="physical", fixed={"alpha": 1.0})
    assert held_stats["minima"][0][index] == far
    statistic_far = float(rise_statistic(held, objective, len(columns[0])))
    thresholds = [
        threshold_at(SUPERVISED, columns, minima, box, index, nulls=20, rng=np.random.default_rng(1))
        for minima in (stats["minima"], np.vstack([held_stats["minima"], stats["minima"]]))
    ]
    for threshold, finite in thresholds:
        assert finite == 20 and 0 < threshold < statistic_far / 5
    with pytest.raises(UserError, match="at least 20 simulated"):
        threshold_at(SUPERVISED, columns, stats["minima"], box, index, nulls=5, rng=np.random.default_rng(1))


def test_profile_refuses_what_it_cannot_do() -> None:
    runs = simulate_supervised(C, noise=0.01, seed=4, budgets=BUDGETS)
    columns = runs.log_columns()
    box = SUPERVISED.box("physical", {"gamma": 1.0})
    _, objective, stats = fit_law(SUPERVISED, columns, 50, progress=False, bounds="physical", fixed={"gamma": 1.0})
    with pytest.raises(UserError, match="gamma is fixed"):
        profile_intervals(SUPERVISED, columns, stats["minima"], objective, box, ["gamma"], nulls=24, progress=False)
    with pytest.raises(UserError, match="at least 20 simulated"):
        profile_intervals(SUPERVISED, columns, stats["minima"], objective, box, ["alpha"], nulls=5, progress=False)
    exact = (*columns[:-1], SUPERVISED.log_predictions(stats["minima"][0], columns))
    with pytest.raises(UserError, match="no residual spread"):
        profile_intervals(SUPERVISED, exact, stats["minima"], objective, box, ["alpha"], nulls=24, progress=False)


@pytest.mark.slow
def test_fit_cli_prints_and_stores_profile_intervals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_runs(tmp_path / "runs.csv", simulate_supervised(C, noise=0.01, seed=1), None)
    argv = ["distill", "fit", str(csv), "--law", "supervised", "--starts", "200", "--profile", "20"]
    assert main([*argv, "--profile-coefficients", "beta"]) == 0
    out = capsys.readouterr().out
    assert "beta = " in out and out.count("profile ") == 1
    (record,) = RunStore().list("distill")
    profile = FitResult.load(record.path / "fit.json").supervised.profile
    assert set(profile) == {"beta"} and profile["beta"]["low"] < profile["beta"]["high"]
    assert len(profile["beta"]["end_thresholds"]) == 2  # the default: thresholds simulated at the ends too
    assert main([*argv, "--profile-coefficients", "zeta"]) == 2
    assert "unknown coefficient 'zeta'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--profile", "5"], "at least 20 simulated data sets"),
        (["--profile-coefficients", "beta"], "--profile-coefficients needs --profile NULLS"),
        (["--profile", "20", "--profile-coefficients", "c0"], "c0: the distillation law is not fitted"),
        (["--profile", "20", "--fix", "gamma=1", "--profile-coefficients", "gamma"], "held fixed by --fix"),
    ],
)
def test_fit_cli_refuses_a_profile_it_cannot_run_before_fitting(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_runs(tmp_path / "runs.csv", simulate_supervised(C, noise=0.01, seed=1), None)
    assert main(["distill", "fit", str(csv), "--law", "supervised", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not RunStore().list("distill")  # refused before a run started
