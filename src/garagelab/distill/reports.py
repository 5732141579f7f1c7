"""HTML report sections for distill: the figure set, fits, plans. Shared by the CLI and the tour."""

from __future__ import annotations

import numpy as np

from garagelab.core.report import Report
from garagelab.distill.data import RunTable
from garagelab.distill.fit import Extrapolation, FitResult, LawFit, distillation_columns
from garagelab.distill.flops import FlopModel
from garagelab.distill.laws import CoefficientSet
from garagelab.distill.planner import BOUNDS, Plan
from garagelab.distill.plots import (
    advantage_heatmap,
    capacity_gap_figure,
    fit_quality_figure,
    isoflop_figure,
    optimal_vs_compute_figure,
)


def add_law_figures(
    report: Report,
    coefficients: CoefficientSet,
    student_size: float,
    prefix: str = "distill",
    runs: RunTable | None = None,
    points: int = 24,
    flops: FlopModel | None = None,
) -> None:
    """IsoFLOP curves, the capacity gap, the advantage heat map, optimal loss against compute."""
    flops = flops or coefficients.flops
    domain = coefficients.domain
    sizes = (domain.n_min / 3, domain.n_max * 3)
    # budgets that train the smallest to the largest fitted size at 20 tokens per parameter
    budgets = np.geomspace(
        float(flops.train(domain.n_min, 20 * domain.n_min)),
        float(flops.train(domain.n_max, 20 * domain.n_max)),
        6,
    )
    report.figure(
        isoflop_figure(
            coefficients,
            budgets,
            sizes,
            runs.supervised if runs else None,
            flops,
        ),
        f"{prefix}-isoflop",
        "Supervised IsoFLOP profiles; dots mark each budget's compute-optimal size.",
    )
    students = np.geomspace(domain.n_min, domain.n_max, 4)
    report.figure(
        capacity_gap_figure(coefficients, students, runs=runs.distillation if runs else None),
        f"{prefix}-capacity-gap",
        "Student loss against teacher loss at 20 tokens per parameter: past the bottom of each U "
        "a stronger teacher makes a worse student.",
    )
    teacher_loss = float(coefficients.supervised_loss(domain.n_max / 1.6, 20 * domain.n_max / 1.6))
    report.figure(
        advantage_heatmap(coefficients, teacher_loss, sizes, (sizes[0], sizes[1] * 1e4)),
        f"{prefix}-advantage",
        "Distilled minus supervised loss on the same tokens; the black line is where supervised training catches up.",
    )
    c_student = float(flops.train(student_size, 20 * student_size))
    report.figure(
        optimal_vs_compute_figure(
            coefficients,
            student_size,
            np.geomspace(c_student / 3, c_student * 3e3, points),
            flops,
            # the paper's 1M-token floor is far above what tiny models train on
            (min(BOUNDS[0], domain.n_min / 100), BOUNDS[1]),
        ),
        f"{prefix}-optimal",
        f"Compute-optimal distillation of a {student_size:.3g}-parameter student per scenario, "
        "against supervised training of the same student.",
    )


def law_fit_rows(fit: LawFit) -> list[dict[str, object]]:
    """One row per coefficient: its value and its bootstrap interval, or "fixed", and its
    profile interval where one was computed ("<" / ">": open beyond the scan)."""
    fixed = fit.conventions.get("fixed", {})
    rows = []
    for key, value in fit.coefficients.items():
        row: dict[str, object] = {
            "coefficient": key,
            "value": value,
            "90% interval": (
                "fixed"
                if key in fixed
                else f"{fit.intervals[key][0]:.4g} .. {fit.intervals[key][1]:.4g}"
                if key in fit.intervals
                else ""
            ),
        }
        if fit.profile:
            row["90% profile interval"] = _profile_cell(fit.profile.get(key))
        rows.append(row)
    return rows


def _profile_cell(interval: dict | None) -> str:
    if interval is None:
        return ""
    below = "<" if interval["open_low"] else ""
    above = ">" if interval["open_high"] else ""
    return f"{below}{interval['low']:.4g} .. {interval['high']:.4g}{above}"


def add_fit_section(report: Report, fit: FitResult, table: RunTable, extrapolations: list[Extrapolation]) -> None:
    for law_fit in (fit.supervised, fit.distillation):
        if law_fit is None:
            continue
        report.heading(f"{law_fit.law} law: {law_fit.runs} runs, {law_fit.starts} starts")
        report.text(
            f"Objective ({law_fit.loss.label()}) {law_fit.objective:.4g}; backend {law_fit.backend}; "
            f"{law_fit.seconds:.1f} s; start outcomes: "
            + ", ".join(f"{k} {v}" for k, v in law_fit.status.items())
            + (f"; {len(law_fit.bootstrap)} bootstrap refits." if law_fit.bootstrap else ".")
        )
        report.table(law_fit_rows(law_fit))
        checks = law_fit.checks
        if checks is not None:
            scale = "" if np.isnan(checks.residual_scale) else f"; residual scale {100 * checks.residual_scale:.2g}%"
            report.text(checks.line("Health") + f"; {checks.runs_per_parameter:.1f} runs per free coefficient{scale}.")
            if checks.outliers:
                report.table([dict(row) for row in checks.outliers])
        observed, predicted = _observed_predicted(fit, law_fit, table)
        report.figure(
            fit_quality_figure(observed, predicted, f"{law_fit.law} fit"),
            f"fit-{law_fit.law}",
            f"{law_fit.law}: predicted against observed loss.",
        )
    for extrapolation in extrapolations:
        report.heading(f"Extrapolation: {extrapolation.law}")
        report.table([extrapolation.summary()])


def _observed_predicted(fit: FitResult, law_fit: LawFit, table: RunTable) -> tuple[np.ndarray, np.ndarray]:
    if law_fit.law == "supervised":
        runs = table.supervised
        return runs.loss, law_fit.to_law().loss(runs.n, runs.d)
    supervised = fit.supervised.to_law() if fit.supervised else None
    runs = table.distillation
    log_n, log_d, log_t, log_s, _ = distillation_columns(runs, supervised)
    return runs.loss, np.exp(law_fit.to_law().log_loss(log_n, log_d, log_t, log_s))


def plan_rows(plan: Plan) -> list[dict[str, object]]:
    """One row per option (supervised, distillation) with its loss, tokens and compute split."""
    rows = []
    for option in (plan.supervised, plan.distillation):
        fractions = option.compute.fractions()
        rows.append(
            {
                "option": option.method,
                "loss": option.loss,
                "student tokens": option.student_tokens,
                "teacher": option.teacher or "-",
                "compute": option.compute.total,
                "student %": 100 * fractions["student"],
                "logits %": 100 * fractions["logits"],
                "teacher %": 100 * fractions["teacher"],
            }
        )
    return rows


def plan_summary(plan: Plan) -> str:
    budget = (
        f"{plan.budget_flops:.3g} FLOPs"
        if plan.budget_flops == plan.budget_flops
        else f"{plan.budget_tokens:.3g} tokens"
    )
    spread = ""
    if plan.margin_interval is not None:
        lo, hi = plan.margin_interval
        share = 100 * plan.p_distill_better
        spread = f" (90% interval {lo:+.4f} .. {hi:+.4f}; distillation better in {share:.0f}% of samples)"
    return (
        f"{plan.verdict.upper()}: student {plan.student_size:.3g} params, {budget}, scenario {plan.scenario}, "
        f"coefficients {plan.coefficients}. Supervised loss {plan.supervised.loss:.4f}, distilled "
        f"{plan.distillation.loss:.4f}, margin {plan.margin:+.4f} nats{spread}."
    )
