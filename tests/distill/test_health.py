from __future__ import annotations

from dataclasses import replace

import numpy as np

from garagelab.distill.data import SupervisedRuns
from garagelab.distill.fit import FitResult, distillation_columns, fit_distillation, fit_supervised, fitted_domain
from garagelab.distill.health import FitHealth, check_fit
from garagelab.distill.laws import BUSBRIDGE2025 as C
from garagelab.distill.objective import DISTILLATION, SUPERVISED, law_to_theta
from garagelab.distill.planner import plan
from garagelab.distill.simulate import simulate_distillation, simulate_supervised


def test_a_paper_shaped_supervised_fit_is_ok() -> None:
    fit = fit_supervised(simulate_supervised(C, noise=0.003, seed=1), starts=300, progress=False)
    health = fit.checks
    assert health is not None and health.verdict == "ok", health.reasons
    assert health.runs_per_parameter > 5 and health.condition_number < 1e7


def test_runs_at_one_tokens_per_parameter_ratio_are_unidentifiable() -> None:
    """All runs at 20 tokens per parameter: N and D move together, and the fit's E went to
    6.8e-14 with a zero-width interval before these checks."""
    n = np.geomspace(1e8, 2e10, 8)
    runs = SupervisedRuns(n, 20 * n, C.supervised.loss(n, 20 * n) * np.exp(np.random.default_rng(0).normal(0, 5e-3, 8)))
    health = fit_supervised(runs, starts=300, progress=False).checks
    assert health.verdict == "unidentifiable"
    assert any("8 runs for 6 free coefficients" in r for r in health.reasons)
    assert any("condition number" in r or "change no prediction" in r for r in health.reasons), health.reasons


def test_too_few_distillation_runs_are_unidentifiable_and_plan_says_so() -> None:
    sup_runs = simulate_supervised(C, noise=0.003, seed=2)
    dist_runs = simulate_distillation(C, runs=10, noise=0.003, seed=2)
    sup = fit_supervised(sup_runs, starts=200, progress=False)
    dist = fit_distillation(dist_runs, sup.to_law(), starts=200, progress=False)
    assert dist.checks.verdict == "unidentifiable"
    assert "10 runs for 9 free coefficients" in dist.checks.reasons[0]
    coefficients = FitResult("t", sup, dist, fitted_domain(sup_runs, dist_runs)).coefficient_set()
    warnings = plan(coefficients, 5e8, compute=1e20).warnings
    assert any(w.startswith("distillation fit: UNIDENTIFIABLE") for w in warnings)


def test_a_coefficient_at_its_bound_an_outlier_and_impossible_rows_are_reported() -> None:
    runs = simulate_supervised(C, noise=0.003, seed=3)
    loss = runs.loss.copy()
    loss[5] *= 1.3  # one broken run
    runs = replace(runs, loss=loss)
    fit = fit_supervised(runs, starts=300, progress=False, bounds={"log_E": (-np.inf, np.log(1.0))})
    health = fit.checks
    assert health.verdict == "weak" and health.at_bounds == ("E",)
    assert [round(o["loss"], 6) for o in health.outliers] == [round(loss[5], 6)]

    dist = simulate_distillation(C, runs=60, noise=0.003, seed=3)
    columns = distillation_columns(dist, C.supervised)
    better = int((dist.loss < dist.teacher_loss).sum())
    box = DISTILLATION.box("physical")
    found = check_fit(DISTILLATION, law_to_theta(C.distillation), columns, box, np.empty((0, 9)))
    assert found.violations == {"students better than their teacher (L_S < L_T; Eq. 8 has L_S > L_T)": better}
    assert FitHealth.from_dict(found.to_dict()) == found


def test_wide_bootstrap_intervals_are_weak() -> None:
    runs = simulate_supervised(C, noise=0.003, seed=4)
    theta = law_to_theta(C.supervised)
    samples = np.repeat(theta[None], 20, axis=0)
    samples[:, 0] += np.linspace(-4, 4, 20)  # log A over 3.5 decades
    health = check_fit(SUPERVISED, theta, runs.log_columns(), SUPERVISED.box("physical"), samples)
    assert health.verdict == "weak" and any("A's 90% interval spans" in r for r in health.reasons)


def test_noisy_distillation_runs_flag_the_coefficient_intervals() -> None:
    """At 2% noise the c0/f1/d1 intervals held the truth in 50-80% of simulated data sets
    (bench_coverage.py), so a fit whose residuals are that noisy says so; at 0.3% it does not."""
    theta, box = law_to_theta(C.distillation), DISTILLATION.box("physical")
    scales = {}
    for noise in (0.003, 0.02):
        columns = distillation_columns(simulate_distillation(C, runs=200, noise=noise, seed=5), C.supervised)
        found = check_fit(DISTILLATION, theta, columns, box, np.empty((0, 9)))
        flagged = [r for r in found.reasons if r.startswith("residual scale")]
        scales[noise] = (found.residual_scale, found.verdict, flagged)
    assert abs(scales[0.003][0] - 0.003) < 0.001 and not scales[0.003][2]
    assert abs(scales[0.02][0] - 0.02) < 0.005 and scales[0.02][1] == "weak"
    note = scales[0.02][2][0]
    assert "treat those as too narrow" in note and "at 2% noise c0 65%, f1 50%" in note
    assert (
        "profile intervals, `fit --profile`: threshold at the estimate c0 71%, f1 86%, d1 93% of 14 data sets "
        "at 1% noise; threshold at the estimate c0 56%, f1 67%, d1 100% of 9 data sets at 2% noise; "
        "threshold at the truth c0 79%, f1 93% of 14 data sets at 1% noise; threshold at the truth c0 89%, "
        "f1 89% of 9 data sets at 2% noise)" in note
    )


def test_health_saved_before_the_residual_scale_loads() -> None:
    runs = simulate_supervised(C, noise=0.003, seed=6)
    found = check_fit(
        SUPERVISED, law_to_theta(C.supervised), runs.log_columns(), SUPERVISED.box("physical"), np.empty((0, 6))
    )
    assert FitHealth.from_dict(found.to_dict()) == found
    old = found.to_dict()
    del old["residual_scale"]
    assert np.isnan(FitHealth.from_dict(old).residual_scale)
