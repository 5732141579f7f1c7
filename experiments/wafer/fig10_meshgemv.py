"""Fig. 10: MeshGEMV (K-tree) against the pipeline-allreduce GEMV, latency and communication
share against mesh size; plus the mesh heat-map of one K-tree GEMV (timestamp model)."""

from _common import RESULTS

from garagelab.core import plots
from garagelab.wafer.calibrate import refit_devices
from garagelab.wafer.device import WSE2
from garagelab.wafer.kernels import gemv
from garagelab.wafer.plots import fig10_figure, mesh_heatmap_figure
from garagelab.wafer.tables import fig10, write_table

if __name__ == "__main__":
    rows = fig10()
    print(write_table(rows, RESULTS, "fig10", "Fig. 10: GEMV latency, MeshGEMV vs pipeline allreduce"))
    plots.save(fig10_figure(rows, [fig10(device) for device in refit_devices()]), RESULTS / "fig10.png")
    program = gemv("ktree", 4096, 4096, (60, 60), broadcast=False).program
    plots.save(mesh_heatmap_figure(program, WSE2, "K-tree GEMV 4K on 60x60"), RESULTS / "ktree_heatmap.png")
