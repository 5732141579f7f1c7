"""Table 5 (predicted; held back in the paper): the longest decode the KV cache holds, shift
against concatenation, per model and decode grid."""

from _common import RESULTS

from garagelab.wafer.tables import table5, write_table

if __name__ == "__main__":
    print(write_table(table5(), RESULTS, "table5", "Table 5 (predicted): maximum decode length in tokens"))
