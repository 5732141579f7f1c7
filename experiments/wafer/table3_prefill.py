"""Table 3: prefill TPR (4K input) on WSE-2 grids 480/600/720 and 1/8/16 A100s, paper vs ours."""

from _common import RESULTS

from garagelab.wafer.tables import table3, write_table

if __name__ == "__main__":
    print(write_table(table3(), RESULTS, "table3", "Table 3: prefill TPR (paper vs ours)"))
