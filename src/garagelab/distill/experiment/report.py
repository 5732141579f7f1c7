"""The report of a sweep: what was measured, and (optionally) both laws fitted to it."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from garagelab.core import plots
from garagelab.core.report import Report
from garagelab.distill.data import RunTable, read_runs
from garagelab.distill.experiment.sweep import SweepConfig, configuration, entropy_floor
from garagelab.distill.flops import FlopModel

# tiny models have no long context or big vocabulary: F(N) = 2N
TINY_FLOPS = FlopModel(n_ctx=0, n_vocab=0)


def replicate_rows(csv_path: Path) -> list[dict[str, object]]:
    """Mean loss and its standard error over seeds, per configuration run more than once."""
    groups: dict[str, list[float]] = {}
    with csv_path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            groups.setdefault(configuration(row["key"]), []).append(float(row["loss"]))
    return [
        {
            "configuration": key,
            "seeds": len(losses),
            "mean loss": float(np.mean(losses)),
            "standard error": float(np.std(losses, ddof=1) / np.sqrt(len(losses))),
        }
        for key, losses in groups.items()
        if len(losses) > 1
    ]


def measured_figures(report: Report, table: RunTable, floor: float | None) -> None:
    """Supervised loss against tokens per size, and student against teacher loss."""
    sup, dist = table.supervised, table.distillation
    fig, (ax_sup, ax_dist) = plots.figure(ncols=2)
    for n in np.unique(sup.n):
        mask = sup.n == n
        order = np.argsort(sup.d[mask])
        ax_sup.plot(sup.d[mask][order], sup.loss[mask][order], "o-", ms=3, label=f"N={n:.3g}")
    if floor is not None:
        ax_sup.axhline(floor, color="k", ls=":", label="entropy rate")
    ax_sup.set(xscale="log", xlabel="tokens D", ylabel="held-out loss", title="Supervised runs")
    ax_sup.legend(fontsize=6)
    if len(dist):
        points = ax_dist.scatter(dist.teacher_loss, dist.loss, c=np.log10(dist.n), s=12, cmap="viridis")
        plots_lo = float(min(dist.teacher_loss.min(), dist.loss.min()))
        plots_hi = float(max(dist.teacher_loss.max(), dist.loss.max()))
        ax_dist.plot([plots_lo, plots_hi], [plots_lo, plots_hi], "k--", lw=0.8)
        fig.colorbar(points, ax=ax_dist, label="log10 N_S")
    ax_dist.set(xlabel="teacher loss L_T", ylabel="student loss L_S", title="Distilled runs")
    report.figure(fig, "sweep-measured", "Measured held-out losses of every run in the sweep.")


def add_sweep_section(report: Report, config: SweepConfig, csv_path: Path, fit: bool, starts: str) -> dict:
    """Figures of the runs and, with `fit`, both laws fitted to them. Returns headline numbers."""
    from garagelab.distill.fit import FitResult, fit_distillation, fit_supervised, fitted_domain, supervised_bounds
    from garagelab.distill.reports import add_fit_section, add_law_figures

    table = read_runs(csv_path)
    floor = entropy_floor(config)
    report.section("Runs")
    report.text(
        f"{len(table.supervised)} supervised and {len(table.distillation)} distilled runs of {config.model} "
        f"models on the {config.corpus} corpus"
        + (f" (entropy rate {floor:.4f} nats/token, the loss floor)." if floor is not None else ".")
        + f" Data: {csv_path.name} beside this page."
    )
    measured_figures(report, table, floor)
    replicates = replicate_rows(csv_path)
    if replicates:
        report.heading("Seeds: mean ± standard error per configuration")
        report.table(replicates)
    headline: dict[str, float] = {
        "supervised_runs": len(table.supervised),
        "distilled_runs": len(table.distillation),
    }
    if not fit:
        return headline
    options = {"starts": starts if starts == "paper" else int(starts)}
    # no model beats the source's entropy rate: where it is known, it bounds E from below
    sup_fit = fit_supervised(table.supervised, bounds=supervised_bounds("physical", floor), **options)
    dist_fit = fit_distillation(table.distillation, sup_fit.to_law(), **options)
    result = FitResult(
        "sweep", sup_fit, dist_fit, fitted_domain(table.supervised, table.distillation), flops=TINY_FLOPS
    )
    result.save(report.directory / "fit.json")
    report.section("Fitted laws")
    add_fit_section(report, result, table, [])
    coefficients = result.coefficient_set()
    student = (
        float(np.median(table.distillation.n)) if len(table.distillation) else float(np.median(table.supervised.n))
    )
    add_law_figures(report, coefficients, student, prefix="sweep-law", runs=table)
    headline.update(E=sup_fit.coefficients["E"], supervised_objective=sup_fit.objective)
    return headline
