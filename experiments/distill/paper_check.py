"""Re-derive the paper's published numbers from the built-in busbridge2025 coefficients.

Writes CSVs and a markdown summary to `experiments/distill/results/` (or --out):
Table 6 derived exponents and Table 13 FLOPs side by side with the paper, and the values
behind Fig. 4 (student loss against teacher size), Fig. 6 (tokens where supervised overtakes
a 7.75B teacher), Fig. 8 (compute where supervised catches up, per scenario) and Fig. 9
(optimal teacher size against compute), for comparison with the paper's figures.

    .venv/bin/python experiments/distill/paper_check.py
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from garagelab.distill.flops import PAPER_FLOPS, SCENARIOS
from garagelab.distill.laws import BUSBRIDGE2025 as C
from garagelab.distill.planner import catch_up_compute, plan
from garagelab.distill.predict import crossover_tokens, optimal_teacher_loss

SIZES = (103e6, 143e6, 198e6, 266e6, 340e6, 546e6, 975e6, 1.82e9, 2.72e9, 4.82e9, 7.75e9, 12.6e9)
PAPER_TABLE6 = {
    "a (supervised)": 0.513,
    "b (supervised)": 0.486,
    "a' (distillation)": 0.664,
    "b' (distillation)": 0.335,
}
PAPER_TABLE13 = {103e6: 0.3400, 7.75e9: 16.99}  # forward GFLOPs per token ("2N + sigma" column)


def table6() -> list[dict]:
    ours = {
        "a (supervised)": C.supervised.a,
        "b (supervised)": C.supervised.b,
        "a' (distillation)": C.distillation.a,
        "b' (distillation)": C.distillation.b,
    }
    return [{"quantity": k, "paper": v, "ours": ours[k], "ratio": ours[k] / v} for k, v in PAPER_TABLE6.items()]


def table13() -> list[dict]:
    rows = []
    for n in SIZES:
        f = float(PAPER_FLOPS.forward(n)) / 1e9
        paper = PAPER_TABLE13.get(n, math.nan)
        rows.append({"N": n, "2N (GFLOP)": 2 * n / 1e9, "F(N) ours": f, "paper": paper, "ratio": f / paper})
    return rows


def figure4() -> list[dict]:
    n_s = 546e6
    d_s = 20 * n_s
    rows = []
    for n_t in SIZES[2:]:
        lt = float(C.supervised_loss(n_t, 20 * n_t))
        rows.append(
            {
                "N_T": n_t,
                "L_T": lt,
                "L_S": float(C.student_loss(n_s, d_s, lt)),
                "Lt_S": float(C.supervised_loss(n_s, d_s)),
            }
        )
    best = optimal_teacher_loss(C, n_s, d_s)
    rows.append({"N_T": "optimal L_T", "L_T": best.teacher_loss, "L_S": best.student_loss, "Lt_S": rows[0]["Lt_S"]})
    return rows


def figure6() -> list[dict]:
    rows = []
    for label, d_t in (("20 tok/param", 20 * 7.75e9), ("512B tokens", 512e9)):
        lt = float(C.supervised_loss(7.75e9, d_t))
        for n_s in (198e6, 266e6, 546e6, 975e6, 1.82e9, 2.72e9, 4.82e9, 7.75e9):
            d = crossover_tokens(C, n_s, lt)
            rows.append(
                {"teacher": f"7.75B, {label}", "L_T": lt, "N_S": n_s, "D_S crossover": d, "tokens/param": d / n_s}
            )
    return rows


def figure8() -> list[dict]:
    rows = []
    for n_s in (300e6, 1e9, 3e9, 10e9):
        row: dict = {"N_S": n_s}
        for name in SCENARIOS:
            row[name] = catch_up_compute(C, n_s, name)
        rows.append(row)
    return rows


def figure9() -> list[dict]:
    rows = []
    for n_s in (300e6, 1e9, 3e9, 10e9):
        for exponent in range(19, 27):
            budget = 10.0**exponent
            for name in SCENARIOS:
                result = plan(C, n_s, compute=budget, scenario=name)
                d = result.distillation
                rows.append(
                    {
                        "N_S": n_s,
                        "compute": budget,
                        "scenario": name,
                        "N_T*": d.teacher_size,
                        "D_T*": d.teacher_tokens,
                        "L_T*": d.teacher_loss,
                        "D_S*": d.student_tokens,
                        "L_S*": d.loss,
                        "supervised L": result.supervised.loss,
                    }
                )
    return rows


def fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def markdown(rows: list[dict]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in head) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "paper_check")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sections = [
        ("table6", "Table 6: derived exponents (paper vs ours)", table6()),
        ("table13", "Table 13: forward FLOPs per token, F(N) in GFLOP (paper where published)", table13()),
        ("figure4", "Fig. 4: 546M student on 20 tokens/param against M=20 teachers", figure4()),
        ("figure6", "Fig. 6: student tokens beyond which supervised overtakes a 7.75B teacher", figure6()),
        ("figure8", "Fig. 8: compute (FLOPs) beyond which supervised catches up ('-': never wins)", figure8()),
        ("figure9", "Fig. 9: compute-optimal teacher against compute, per scenario", figure9()),
    ]
    text = ["# Paper check: busbridge2025 coefficients, re-derived\n"]
    for name, title, rows in sections:
        with (args.out / f"{name}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        text += [f"## {title}\n", markdown(rows), ""]
        print(f"\n{title}\n{markdown(rows)}")
    (args.out / "paper_check.md").write_text("\n".join(text))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
