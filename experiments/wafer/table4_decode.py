"""Table 4: decode TPR on WSE-2 grids 420/540/660 and 1/8/16 A100s, paper vs ours, with the
plot of decode speed against region size."""

from _common import RESULTS

from garagelab.core import plots
from garagelab.wafer.calibrate import refit_devices, refit_gpus
from garagelab.wafer.device import A100, WSE2
from garagelab.wafer.models import MODELS
from garagelab.wafer.plots import decode_vs_grid_figure
from garagelab.wafer.tables import table4, write_table

if __name__ == "__main__":
    print(write_table(table4(), RESULTS, "table4", "Table 4: decode TPR (paper vs ours)"))
    sides = list(range(240, 751, 60))
    figure = decode_vs_grid_figure(
        MODELS["llama3-8b"], WSE2, A100, sides, 4096, spread=refit_devices(), gpu_spread=refit_gpus()
    )
    plots.save(figure, RESULTS / "decode_vs_grid.png")
