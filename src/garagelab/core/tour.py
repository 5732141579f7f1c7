"""`garagelab tour`: every system's quick default, gathered into one HTML report.

A system joins the tour by providing `garagelab/<system>/tour.py` with a `TITLE` and a
`run(ctx: TourContext) -> dict` that adds its section to `ctx.report` and returns headline
numbers. A failing step is shown in the report and fails the tour, but the others still run.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from garagelab import SHARED, SYSTEMS
from garagelab.core.report import Report
from garagelab.core.runs import Run, RunStore


@dataclass
class TourContext:
    """What a tour step gets: the shared report, its run, and whether to be quick."""

    report: Report
    run: Run
    quick: bool


@dataclass(frozen=True)
class TourResult:
    report: Path
    failures: tuple[str, ...]


def discover_steps() -> list[tuple[str, ModuleType]]:
    """The systems (then shared parts) that ship a tour step, in the order of `SYSTEMS`."""
    steps = []
    for system in [*SYSTEMS, *SHARED]:
        name = f"garagelab.{system}.tour"
        if importlib.util.find_spec(f"garagelab.{system}") and importlib.util.find_spec(name):
            steps.append((system, importlib.import_module(name)))
    return steps


def run_tour(store: RunStore, quick: bool = False) -> TourResult:
    steps = discover_steps()
    config = {"quick": quick, "systems": [system for system, _ in steps]}
    run = store.start("tour", "", config)
    report = Report(run.path, "garagelab tour")
    report.text(
        "Each section below is one system's quick default, run on this machine just now. "
        "Numbers come from the run itself; nothing is pre-computed."
    )
    summary, failures = [], []
    for system, module in steps:
        report.section(f"{system}: {module.TITLE}")
        start = time.monotonic()
        try:
            headline = module.run(TourContext(report, run, quick)) or {}
            status = "ok"
        except Exception as exc:  # a broken step must not hide the others
            headline, status = {}, "failed"
            failures.append(system)
            report.text(f"This step failed: {type(exc).__name__}: {exc}", css_class="error")
            report.code(traceback.format_exc())
        seconds = time.monotonic() - start
        row = {"system": system, "status": status, "seconds": round(seconds, 1), **headline}
        summary.append(row)
        run.log(system=system, status=status, seconds=round(seconds, 2))
    report.section("Summary")
    if summary:
        report.table(summary, columns=["system", "status", "seconds"])
    else:
        report.text("No system registers a tour step yet.")
    path = report.write()
    run.set_headline(steps=len(steps), failed=len(failures))
    run.finish("failed" if failures else "done")
    return TourResult(path, tuple(failures))
