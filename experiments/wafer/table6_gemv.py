"""Table 6: GEMV [1,n] x [n,n] on WSE-2 (MeshGEMV, best grid) and on 1/8/16 A100s, with the
energy ratios; paper vs ours vs ratio. Writes experiments/wafer/results/table6.{csv,md}."""

from _common import RESULTS

from garagelab.wafer.tables import table6, write_table

if __name__ == "__main__":
    print(write_table(table6(), RESULTS, "table6", "Table 6: GEMV, microseconds (paper vs ours)"))
