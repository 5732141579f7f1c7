"""Table 2 (predicted; the paper's values are held back for independent checking): end-to-end
TPR with autotuned grids, against the best A100 cluster of the calibrated GPU model."""

from _common import RESULTS

from garagelab.wafer.tables import table2, write_table

if __name__ == "__main__":
    print(write_table(table2(), RESULTS, "table2", "Table 2 (predicted): end-to-end TPR"))
