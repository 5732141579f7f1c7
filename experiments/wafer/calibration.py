"""Fit the unpublished WSE-2 constants (both clock assumptions) and the A100 baseline to the
paper's tables; writes experiments/wafer/results/calibration.md."""

from _common import RESULTS

from garagelab.wafer.calibrate import WSE_FITTED, error_by_table, fit_gpu, fit_wse, wse_targets
from garagelab.wafer.tables import write_table

if __name__ == "__main__":
    targets = wse_targets()
    rows = []
    for clock in (1.1e9, 0.85e9):
        for free_alpha in (False, True):
            device, comparisons = fit_wse(clock_hz=clock, free_alpha=free_alpha, targets=targets)
            row = {"clock GHz": clock / 1e9, "alpha free": free_alpha}
            row.update({name: getattr(device, name) for name in (*WSE_FITTED, "alpha")})
            row.update({f"error {k}": v for k, v in error_by_table(comparisons).items()})
            rows.append(row)
    gpu, gpu_comparisons = fit_gpu()
    text = write_table(rows, RESULTS, "calibration", "Calibration: fitted constants and mean error per table")
    text += write_table(
        [{"target": c.label, "paper": c.paper, "ours": c.ours, "ratio": c.ratio} for c in gpu_comparisons],
        RESULTS,
        "calibration_a100",
        "A100 baseline fitted to the paper's SGLang rows",
    )
    print(text)
