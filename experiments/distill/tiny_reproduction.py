"""The paper's qualitative findings at tiny scale, on this machine (about 20-45 min on 2 cores).

Runs the `tiny` sweep (MLP n-gram LMs on the synthetic Markov source: supervised IsoFLOP runs,
six fixed-M teachers, their students, and students of equal-loss teachers), fits both laws
with the paper's full grids, and checks:

1. extrapolation: both laws fitted on the weaker runs predict the stronger ones;
2. students of teachers with equal loss but different size and tokens agree;
3. the capacity gap: for small students, a stronger teacher eventually makes a worse student;
4. the crossover: distillation wins at small student budgets, supervised at large ones;
5. the planner on the tiny fit: distillation with an existing teacher wins at low compute, a
   teacher trained for one student does not.

Results (markdown and PNGs) go to experiments/distill/results/tiny/.

    .venv/bin/python experiments/distill/tiny_reproduction.py            # new sweep
    .venv/bin/python experiments/distill/tiny_reproduction.py --resume ID  # continue a killed one
    .venv/bin/python experiments/distill/tiny_reproduction.py --csv runs.csv  # analyse finished runs
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from dataclasses import asdict
from pathlib import Path

import matplotlib
import numpy as np

from garagelab.core import plots
from garagelab.core.runs import RunStore
from garagelab.distill.data import read_runs
from garagelab.distill.experiment.report import TINY_FLOPS
from garagelab.distill.experiment.sweep import PRESETS, Sweep, SweepConfig, entropy_floor
from garagelab.distill.fit import (
    FitResult,
    extrapolate_distillation,
    extrapolate_supervised,
    fit_distillation,
    fit_supervised,
    fitted_domain,
    supervised_bounds,
)
from garagelab.distill.flops import SCENARIOS
from garagelab.distill.planner import plan


def sweep_csv(args: argparse.Namespace) -> tuple[Path, SweepConfig]:
    if args.csv:
        return args.csv, PRESETS[args.preset]
    store = RunStore(args.runs_dir)
    if args.resume:
        run = store.reopen(args.resume)
        config = SweepConfig.from_dict(store.read_config(store.get(args.resume))["sweep"])
    else:
        config = PRESETS[args.preset]
        run = store.start("distill", f"tiny-reproduction-{args.preset}", {"sweep": asdict(config)})
    with run:
        return Sweep(config, run).execute(), config


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def markdown(rows: list[dict]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return "-" if math.isnan(v) else (f"{v:.4g}" if 1e-3 <= abs(v) < 1e5 or v == 0 else f"{v:.3e}")
        return str(v)

    head = list(rows[0])
    return "\n".join(
        ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        + ["| " + " | ".join(fmt(r[k]) for k in head) + " |" for r in rows]
    )


def equal_loss_check(rows: list[dict[str, str]]) -> list[dict]:
    """Students of equal-loss teachers (the eq- runs), pairwise."""
    eq = [r for r in rows if r["key"].startswith("eq-")]
    out = []
    for a, b in zip(eq[::2], eq[1::2], strict=False):
        out.append(
            {
                "teacher A (N_T, D_T)": f"{float(a['N_T']):.3g}, {float(a['D_T']):.3g}",
                "teacher B (N_T, D_T)": f"{float(b['N_T']):.3g}, {float(b['D_T']):.3g}",
                "|dL_T|": abs(float(a["L_T"]) - float(b["L_T"])),
                "L_S (A)": float(a["loss"]),
                "L_S (B)": float(b["loss"]),
                "|dL_S|": abs(float(a["loss"]) - float(b["loss"])),
            }
        )
    return out


def capacity_gap(rows: list[dict[str, str]]) -> tuple[list[dict], dict]:
    """Per student configuration: student loss against teacher loss, and whether it has a U."""
    groups: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        if r["key"].startswith("dist-"):
            groups.setdefault(r["key"].split("-T[")[0], []).append(r)
    table, curves = [], {}
    for config, members in sorted(groups.items(), key=lambda kv: (float(kv[1][0]["N"]), float(kv[1][0]["D"]))):
        members.sort(key=lambda r: -float(r["L_T"]))  # weakest teacher first
        lt = np.array([float(r["L_T"]) for r in members])
        ls = np.array([float(r["loss"]) for r in members])
        best = int(np.argmin(ls))
        curves[config] = (float(members[0]["N"]), float(members[0]["D"]), lt, ls)
        table.append(
            {
                "student": config.removeprefix("dist-"),
                "N_S": float(members[0]["N"]),
                "D_S": float(members[0]["D"]),
                "best teacher L_T": lt[best],
                "strongest teacher L_T": lt[-1],
                "L_S best": ls[best],
                "L_S strongest": ls[-1],
                "interior minimum": "yes" if best < len(ls) - 1 and ls[-1] - ls[best] > 0.002 else "no",
            }
        )
    return table, curves


def crossover(rows: list[dict[str, str]]) -> tuple[list[dict], dict]:
    """L_S minus the measured supervised loss at the same (N, D), per teacher and student size."""
    supervised = {r["key"].removeprefix("sup-"): float(r["loss"]) for r in rows if r["kind"] == "supervised"}
    series: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for r in rows:
        if not r["key"].startswith("dist-"):
            continue
        config, teacher = r["key"].removeprefix("dist-").split("-T[")
        if config in supervised:
            series.setdefault((teacher.rstrip("]"), float(r["N"])), []).append(
                (float(r["D"]), float(r["loss"]) - supervised[config])
            )
    table = []

    def teacher_size(item: tuple[tuple[str, float], list]) -> tuple[float, float]:
        (teacher, n), _ = item
        return float(teacher.split("-N")[1].split("-")[0]), n

    for (teacher, n), points in sorted(series.items(), key=teacher_size):
        points.sort()
        d, gap = np.array(points).T
        change = np.flatnonzero((gap[:-1] < 0) & (gap[1:] >= 0))
        cross = float("nan")
        if change.size:
            i = int(change[0])
            w = gap[i] / (gap[i] - gap[i + 1])
            cross = float(np.exp(np.log(d[i]) + w * (np.log(d[i + 1]) - np.log(d[i]))))
        table.append(
            {
                "teacher": teacher,
                "N_S": n,
                "L_S - Lt_S at smallest D_S": gap[0],
                "at largest D_S": gap[-1],
                "crossover D_S": cross,
            }
        )
    return table, series


def planner_check(coefficients, student: float, budgets: np.ndarray) -> tuple[list[dict], dict]:
    bounds = (1.0, 1e17)
    table, curves = [], {name: [] for name in SCENARIOS}
    for budget in budgets:
        row: dict = {"compute": float(budget)}
        for name in SCENARIOS:
            result = plan(coefficients, student, compute=float(budget), scenario=name, flops=TINY_FLOPS, bounds=bounds)
            row[name] = f"{result.verdict} ({result.margin:+.3f})"
            curves[name].append((result.distillation.loss, result.distillation.teacher_size, result.supervised.loss))
        table.append(row)
    return table, curves


def figures(
    out: Path, result: FitResult, curves: dict, series: dict, strongest: str, planner_curves: dict, budgets, student
) -> list[str]:
    coefficients = result.coefficient_set()
    names = []
    fig, (ax,) = plots.figure(width=7)
    colors = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(curves)))
    for (config, (n_s, d_s, lt, ls)), color in zip(curves.items(), colors, strict=True):
        if not config.endswith(("C1e+10", "C1e+11")):
            continue
        ax.plot(lt, ls, "o", color=color, ms=4, label=config.removeprefix("dist-"))
        grid = np.linspace(lt.min() * 0.98, lt.max() * 1.02, 100)
        ax.plot(grid, coefficients.student_loss(n_s, d_s, grid), "-", color=color, lw=1)
    ax.set(xlabel="teacher loss L_T", ylabel="student loss L_S", title="Capacity gap: measured (dots) and fitted law")
    ax.legend(fontsize=6)
    plots.save(fig, out / "capacity_gap.png")
    names.append("capacity_gap.png")

    fig, (ax,) = plots.figure(width=7)
    for (teacher, n), points in sorted(series.items()):
        if teacher != strongest:
            continue
        d, gap = np.array(sorted(points)).T
        ax.plot(d, gap, "o-", ms=4, label=f"N_S={n:.3g}, teacher {teacher}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="student tokens D_S",
        ylabel="L_S - Lt_S (measured)",
        title=f"Crossover, teacher {strongest}",
    )
    ax.legend(fontsize=6)
    plots.save(fig, out / "crossover.png")
    names.append("crossover.png")

    fig, (ax_loss, ax_teacher) = plots.figure(ncols=2)
    for name, values in planner_curves.items():
        loss, teacher, sup = np.array(values).T
        ax_loss.plot(budgets, loss, label=name)
        ax_teacher.plot(budgets, teacher, label=name)
    ax_loss.plot(budgets, sup, "k-", lw=2, label="supervised")
    ax_loss.set(xscale="log", xlabel="compute (6ND FLOPs)", ylabel="student loss", title=f"Tiny fit: N_S={student:.3g}")
    ax_teacher.set(xscale="log", yscale="log", xlabel="compute", ylabel="N_T*", title="Optimal teacher size")
    ax_loss.legend(fontsize=6)
    plots.save(fig, out / "planner.png")
    names.append("planner.png")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--resume", help="continue this sweep run (id or directory name)")
    parser.add_argument("--csv", type=Path, help="analyse an existing runs.csv instead of running")
    parser.add_argument("--runs-dir", type=Path, default=None, help="run store (default ./runs)")
    parser.add_argument("--starts", default="paper", help="fit starts: 'paper' or a number")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tiny")
    args = parser.parse_args()
    starts = args.starts if args.starts == "paper" else int(args.starts)
    begin = time.perf_counter()
    path, config = sweep_csv(args)
    sweep_seconds = time.perf_counter() - begin
    rows = read_rows(path)
    table = read_runs(path)
    args.out.mkdir(parents=True, exist_ok=True)

    begin = time.perf_counter()
    floor = entropy_floor(config)
    # physical bounds, and no model can beat the source's entropy rate: E >= floor
    sup_options = {"starts": starts, "bounds": supervised_bounds("physical", floor)}
    sup = fit_supervised(table.supervised, **sup_options)
    dist = fit_distillation(table.distillation, sup.to_law(), starts=starts)
    result = FitResult("tiny", sup, dist, fitted_domain(table.supervised, table.distillation))
    result.save(args.out / "fit.json")
    sup_threshold = float(np.quantile(table.supervised.loss, 0.3))
    dist_threshold = float(np.quantile(table.distillation.loss, 0.3))
    extrapolations = [
        extrapolate_supervised(table.supervised, sup_threshold, **sup_options),
        extrapolate_distillation(table.distillation, sup.to_law(), dist_threshold, starts=starts),
    ]
    fit_seconds = time.perf_counter() - begin

    equal = equal_loss_check(rows)
    gap_table, curves = capacity_gap(rows)
    cross_table, series = crossover(rows)
    student = float(np.median(table.distillation.n))
    budgets = np.geomspace(1e9, 1e13, 9)
    plan_table, plan_curves = planner_check(result.coefficient_set(), student, budgets)
    strongest = f"sup-N{max(config.teacher_sizes):g}-M{config.teacher_tokens_per_param:g}"
    images = figures(args.out, result, curves, series, strongest, plan_curves, budgets, student)

    coefficient_tables = [[{**f.coefficients, "objective": f.objective}] for f in (sup, dist)]
    sections = [
        (
            "Runs",
            f"{len(table.supervised)} supervised and {len(table.distillation)} distilled runs "
            f"({config.model}, {config.corpus}); sweep {sweep_seconds / 60:.1f} min, fits {fit_seconds / 60:.1f} min "
            "on this machine."
            + (f" Entropy rate of the source (the loss floor): {floor:.4f} nats." if floor is not None else ""),
            None,
        ),
        (
            "Fitted supervised law (9,600 starts, physical bounds, E >= entropy rate)",
            "",
            coefficient_tables[0],
        ),
        ("Fitted distillation law (43,200 starts, physical bounds)", "", coefficient_tables[1]),
        (
            "1. Extrapolation (fit on the weaker 70%, predict the strongest 30%)",
            "Paper: about 1% relative error.",
            [e.summary() for e in extrapolations],
        ),
        ("2. Students of equal-loss teachers", "Paper: students agree when teachers' losses agree.", equal),
        ("3. Capacity gap", "Interior minimum: a weaker teacher than the strongest gives a better student.", gap_table),
        ("4. Crossover (measured supervised loss at the same N, D)", "Negative: distillation wins.", cross_table),
        (
            "5. Planner on the tiny fit (verdict and margin in nats, F = 2N)",
            f"Student of {student:.3g} parameters; paper: existing teachers win at low compute, "
            "a teacher trained for one student does not.",
            plan_table,
        ),
    ]
    text = ["# Tiny-scale reproduction of Distillation Scaling Laws\n"]
    for title, note, rows_ in sections:
        text.append(f"## {title}\n")
        if note:
            text.append(note + "\n")
        if rows_:
            text.append(markdown(rows_) + "\n")
    text += [f"![{name}]({name})\n" for name in images]
    (args.out / "results.md").write_text("\n".join(text))
    print("\n".join(text))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
