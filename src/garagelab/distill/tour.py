"""Tour step: plan a distillation with the paper's coefficients and draw the capacity gap."""

from __future__ import annotations

from garagelab.core.tour import TourContext

TITLE = "Distillation Scaling Laws (Busbridge et al. 2025)"


def run(ctx: TourContext) -> dict[str, float]:
    from garagelab.distill.flops import SCENARIOS
    from garagelab.distill.laws import BUSBRIDGE2025
    from garagelab.distill.planner import plan
    from garagelab.distill.plots import capacity_gap_figure, optimal_vs_compute_figure
    from garagelab.distill.reports import plan_summary
    from garagelab.distill.sources import coefficient_samples

    report = ctx.report
    student, budget = 1e9, 1e21
    report.text(
        f"Should a {student:.0e}-parameter student be distilled or pretrained with {budget:.0e} FLOPs? "
        "The planner answers for each of the paper's four scenarios from its Table 6 coefficients "
        "(intervals from the published 90% bounds)."
    )
    samples = coefficient_samples(BUSBRIDGE2025.name, 64 if ctx.quick else 256)
    rows = []
    for name in SCENARIOS:
        result = plan(BUSBRIDGE2025, student, compute=budget, scenario=name, samples=samples)
        lo, hi = result.margin_interval
        rows.append(
            {
                "scenario": name,
                "verdict": result.verdict,
                "supervised loss": result.supervised.loss,
                "distilled loss": result.distillation.loss,
                "margin": result.margin,
                "margin 90%": f"{lo:+.4f} .. {hi:+.4f}",
                "teacher": result.distillation.teacher,
            }
        )
    report.table(rows)
    report.text(plan_summary(plan(BUSBRIDGE2025, student, compute=budget, scenario="teacher-inference")))
    report.figure(
        capacity_gap_figure(BUSBRIDGE2025, (1.43e8, 5.46e8, 1.82e9, 7.75e9)),
        "distill-capacity-gap",
        "Student loss against teacher loss at 20 tokens per parameter (the capacity gap).",
    )
    if not ctx.quick:
        budgets = [10 ** (19 + k / 4) for k in range(21)]
        report.figure(
            optimal_vs_compute_figure(BUSBRIDGE2025, student, budgets),
            "distill-optimal",
            "Compute-optimal distillation of a 1B student per scenario against supervised training.",
        )
    best = min(rows, key=lambda r: r["distilled loss"])
    return {"best_scenario_loss": best["distilled loss"]}
