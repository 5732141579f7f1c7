"""Tables 7 and 8: prefill and decode energy of 1/8/16 A100s over WSE-2 (LLaMA3-8B, constant
power, the wafer on its fastest grid); paper vs ours vs ratio. Derived from the times of
Tables 3 and 4, which the device constants were fitted to. Writes
experiments/wafer/results/table7.{csv,md} and table8.{csv,md}."""

from _common import RESULTS

from garagelab.wafer.tables import table7, table8, write_table

if __name__ == "__main__":
    print(write_table(table7(), RESULTS, "table7", "Table 7: prefill energy ratio, A100 / WSE-2 (paper vs ours)"))
    print(write_table(table8(), RESULTS, "table8", "Table 8: decode energy ratio, A100 / WSE-2 (paper vs ours)"))
