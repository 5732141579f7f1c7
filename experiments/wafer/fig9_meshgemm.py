"""Fig. 9: MeshGEMM against SUMMA and Cannon, compute efficiency against mesh size."""

from _common import RESULTS

from garagelab.core import plots
from garagelab.wafer.calibrate import refit_devices
from garagelab.wafer.plots import fig9_figure
from garagelab.wafer.tables import fig9, write_table

if __name__ == "__main__":
    rows = fig9()
    print(write_table(rows, RESULTS, "fig9", "Fig. 9: GEMM cycles and compute efficiency"))
    plots.save(fig9_figure(rows, [fig9(device) for device in refit_devices()]), RESULTS / "fig9.png")
