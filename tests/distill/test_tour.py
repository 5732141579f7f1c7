"""The distill tour step plans from a fitted, bootstrapped law (the calibrated path)."""

from __future__ import annotations

import pytest

from garagelab.core.report import Report
from garagelab.core.runs import RunStore
from garagelab.core.tour import TourContext
from garagelab.distill import tour
from garagelab.distill.flops import SCENARIOS


@pytest.mark.slow
def test_tour_margins_come_from_bootstrap_refits_and_hold_the_true_margin(tmp_path) -> None:
    with RunStore(tmp_path).start("distill", "tour", {}) as run:
        report = Report(run.path, "tour")
        tour.run(TourContext(report, run, quick=True))
        report.write()
    text = (run.path / "index.html").read_text()
    assert "paired bootstrap refits" in text
    rows = [[c.split("</td>")[0] for c in row.split("<td>")[1:]] for row in text.split("<tr>")[1:]]
    plans = [cells for cells in rows if cells and cells[0] in SCENARIOS]
    assert len(plans) == len(SCENARIOS)
    for cells in plans:
        lo, hi = (float(v) for v in cells[5].split(" .. "))
        assert lo <= float(cells[6]) <= hi, cells  # the true law's margin is inside the interval
