"""The paper's qualitative findings at tiny scale, on this machine (about 15 min per seed on one core).

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

    .venv/bin/python experiments/distill/tiny_reproduction.py            # new sweep, 3 seeds
    .venv/bin/python experiments/distill/tiny_reproduction.py --resume ID  # continue a killed one
    .venv/bin/python experiments/distill/tiny_reproduction.py --csv runs.csv  # analyse finished runs
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import matplotlib
import numpy as np

from garagelab.core import plots
from garagelab.core.runs import RunStore
from garagelab.distill.data import read_runs
from garagelab.distill.experiment.report import TINY_FLOPS
from garagelab.distill.experiment.sweep import PRESETS, Sweep, SweepConfig, configuration, entropy_floor
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
        config = replace(PRESETS[args.preset], seeds=args.seeds)
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


# an effect is reported only when it exceeds this many standard errors of its seed mean
NOISE_MULTIPLE = 2.0


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean over seeds and its standard error (nan with one seed: no noise estimate)."""
    v = np.asarray(values, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def beyond_noise(effect: float, se: float) -> bool | None:
    """True/False when the effect is/is not beyond NOISE_MULTIPLE s.e.; None without an s.e."""
    return None if math.isnan(se) else abs(effect) > NOISE_MULTIPLE * se


def losses_by_seed(rows: list[dict[str, str]], column: str = "loss") -> dict[str, dict[int, float]]:
    """A loss column per configuration (replica suffixes removed) and training seed."""
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        out.setdefault(configuration(r["key"]), {})[int(r["seed"])] = float(r[column])
    return out


def shapes(rows: list[dict[str, str]]) -> dict[str, tuple[float, float]]:
    """(N, D) of every configuration."""
    return {configuration(r["key"]): (float(r["N"]), float(r["D"])) for r in rows}


def paired(a: dict[int, float], b: dict[int, float]) -> list[float]:
    """a - b for every seed both configurations ran with."""
    return [a[s] - b[s] for s in sorted(a.keys() & b.keys())]


def student_seed_sd(rows: list[dict[str, str]]) -> float:
    """Pooled standard deviation of one distilled run over seeds (nan with one seed)."""
    groups = [list(v.values()) for k, v in losses_by_seed(rows).items() if k.startswith("dist-") and len(v) > 1]
    if not groups:
        return float("nan")
    within = sum(float(np.var(g, ddof=1)) * (len(g) - 1) for g in groups)
    return math.sqrt(within / sum(len(g) - 1 for g in groups))


def equal_loss_check(rows: list[dict[str, str]]) -> list[dict]:
    """Students of equal-loss teachers (the eq- runs, seed 0), pairwise, against seed noise."""
    eq = [r for r in rows if r["key"].startswith("eq-")]
    noise = math.sqrt(2.0) * student_seed_sd(rows)  # s.d. of a difference of two runs
    out = []
    for a, b in zip(eq[::2], eq[1::2], strict=False):
        d_ls = abs(float(a["loss"]) - float(b["loss"]))
        differ = beyond_noise(d_ls, noise)
        out.append(
            {
                "teacher A (N_T, D_T)": f"{float(a['N_T']):.3g}, {float(a['D_T']):.3g}",
                "teacher B (N_T, D_T)": f"{float(b['N_T']):.3g}, {float(b['D_T']):.3g}",
                "|dL_T|": abs(float(a["L_T"]) - float(b["L_T"])),
                "L_S (A)": float(a["loss"]),
                "L_S (B)": float(b["loss"]),
                "|dL_S|": d_ls,
                "seed s.d. of dL_S": noise,
                "students agree": "no seed noise (1 seed)" if differ is None else ("no" if differ else "yes"),
            }
        )
    return out


def capacity_gap(rows: list[dict[str, str]]) -> tuple[list[dict], dict]:
    """Per student configuration: student loss against teacher loss, and whether it has a U.

    The gap is L_S(strongest teacher) - L_S(best teacher), paired by seed. On seed s the best
    teacher is chosen on the other seeds, so picking the luckiest run cannot make a gap.
    """
    by_seed = losses_by_seed(rows)
    teacher_loss = losses_by_seed([r for r in rows if r["kind"] == "distillation"], "L_T")
    groups: dict[str, list[str]] = {}
    for config in by_seed:
        if config.startswith("dist-"):
            groups.setdefault(config.split("-T[")[0], []).append(config)
    shape = shapes(rows)
    table, curves = [], {}
    for student, members in sorted(groups.items(), key=lambda kv: shape[kv[1][0]]):
        lt = np.array([np.mean(list(teacher_loss[m].values())) for m in members])
        order = np.argsort(-lt)  # weakest teacher first
        members = [members[i] for i in order]
        lt = lt[order]
        stats = [mean_se(list(by_seed[m].values())) for m in members]
        ls, ls_se = np.array(stats).T
        strongest = members[-1]
        gaps = []
        for seed in by_seed[strongest]:
            others = [float(np.mean([v for s, v in by_seed[m].items() if s != seed] or [np.nan])) for m in members]
            if all(math.isnan(o) for o in others):  # one seed: choose on the same seed
                others = [by_seed[m].get(seed, np.nan) for m in members]
            best = members[int(np.nanargmin(others))]
            if seed in by_seed[best]:
                gaps.append(by_seed[strongest][seed] - by_seed[best][seed])
        gap, gap_se = mean_se(gaps)
        best = int(np.argmin(ls))
        curves[student] = (*shape[strongest], lt, ls, ls_se)
        beyond = beyond_noise(gap, gap_se)
        if beyond is None:
            verdict = "no seed noise (1 seed)"
        else:
            verdict = "no" if gap <= 0 else ("yes" if beyond else "within noise")
        table.append(
            {
                "student": student.removeprefix("dist-"),
                "N_S": shape[strongest][0],
                "D_S": shape[strongest][1],
                "best teacher L_T": lt[best],
                "strongest teacher L_T": lt[-1],
                "L_S best": ls[best],
                "L_S strongest": ls[-1],
                "gap (strongest - best)": gap,
                "s.e.": gap_se,
                "interior minimum": verdict,
            }
        )
    return table, curves


def crossover(rows: list[dict[str, str]]) -> tuple[list[dict], dict]:
    """L_S minus the measured supervised loss at the same (N, D), paired by seed."""
    by_seed = losses_by_seed(rows)
    shape = shapes(rows)
    series: dict[tuple[str, float], list[tuple[float, float, float]]] = {}
    for config, losses in by_seed.items():
        if not config.startswith("dist-"):
            continue
        student, teacher = config.removeprefix("dist-").split("-T[")
        supervised = by_seed.get(f"sup-{student}")
        if supervised:
            gap, gap_se = mean_se(paired(losses, supervised))
            series.setdefault((teacher.rstrip("]"), shape[config][0]), []).append((shape[config][1], gap, gap_se))

    def teacher_size(item: tuple[tuple[str, float], list]) -> tuple[float, float]:
        (teacher, n), _ = item
        return float(teacher.split("-N")[1].split("-")[0]), n

    def sign(gap: float, se: float) -> str:
        beyond = beyond_noise(gap, se)
        return "?" if beyond is None else ("0" if not beyond else ("-" if gap < 0 else "+"))

    table = []
    for (teacher, n), points in sorted(series.items(), key=teacher_size):
        points.sort()
        d, gap, gap_se = np.array(points).T
        change = np.flatnonzero((gap[:-1] < 0) & (gap[1:] >= 0))
        cross = float("nan")
        if change.size:
            i = int(change[0])
            w = gap[i] / (gap[i] - gap[i + 1])
            cross = float(np.exp(np.log(d[i]) + w * (np.log(d[i + 1]) - np.log(d[i]))))
        signs = "".join(sign(g, e) for g, e in zip(gap, gap_se, strict=True))
        if "?" in signs:
            verdict = "no seed noise (1 seed)"
        elif signs[0] == "-" and signs[-1] == "+":
            verdict = "crossover"
        elif set(signs) <= {"-", "0"} and "-" in signs:
            verdict = "distillation wins or ties"
        elif set(signs) <= {"+", "0"} and "+" in signs:
            verdict = "supervised wins or ties"
        else:
            verdict = "within noise"
        table.append(
            {
                "teacher": teacher,
                "N_S": n,
                "L_S - Lt_S at smallest D_S": gap[0],
                "s.e. (smallest)": gap_se[0],
                "at largest D_S": gap[-1],
                "s.e. (largest)": gap_se[-1],
                "sign per D_S (beyond 2 s.e.)": signs,
                "crossover D_S": cross if verdict == "crossover" else float("nan"),
                "verdict": verdict,
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
    for (config, (n_s, d_s, lt, ls, ls_se)), color in zip(curves.items(), colors, strict=True):
        if not config.endswith(("C1e+10", "C1e+11")):
            continue
        ax.errorbar(lt, ls, yerr=np.nan_to_num(ls_se), fmt="o", color=color, ms=4, label=config.removeprefix("dist-"))
        grid = np.linspace(lt.min() * 0.98, lt.max() * 1.02, 100)
        ax.plot(grid, coefficients.student_loss(n_s, d_s, grid), "-", color=color, lw=1)
    ax.set(
        xlabel="teacher loss L_T",
        ylabel="student loss L_S",
        title="Capacity gap: measured (mean ± s.e. over seeds) and fitted law",
    )
    ax.legend(fontsize=6)
    plots.save(fig, out / "capacity_gap.png")
    names.append("capacity_gap.png")

    fig, (ax,) = plots.figure(width=7)
    for (teacher, n), points in sorted(series.items()):
        if teacher != strongest:
            continue
        d, gap, gap_se = np.array(sorted(points)).T
        ax.errorbar(d, gap, yerr=np.nan_to_num(gap_se), fmt="o-", ms=4, label=f"N_S={n:.3g}, teacher {teacher}")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="student tokens D_S",
        ylabel="L_S - Lt_S (measured, mean ± s.e.)",
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
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per configuration (new sweeps)")
    parser.add_argument("--resume", help="continue this sweep run (id or directory name)")
    parser.add_argument("--csv", type=Path, help="analyse an existing runs.csv instead of running")
    parser.add_argument("--runs-dir", type=Path, default=None, help="run store (default ./runs)")
    parser.add_argument("--starts", default="paper", help="fit starts: 'paper' or a number")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "tiny")
    args = parser.parse_args()
    starts = args.starts if args.starts == "paper" else int(args.starts)
    path, config = sweep_csv(args)
    rows = read_rows(path)
    training_seconds = sum(float(r["seconds"]) for r in rows)
    table = read_runs(path)
    seeds = len({r["seed"] for r in rows})
    args.out.mkdir(parents=True, exist_ok=True)
    if path.resolve() != (args.out / "runs.csv").resolve():
        shutil.copyfile(path, args.out / "runs.csv")

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
            f"({config.model}, {config.corpus}, {seeds} training seed(s) per configuration; "
            f"raw results in runs.csv); training {training_seconds / 60:.1f} min, fits {fit_seconds / 60:.1f} min "
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
        (
            "3. Capacity gap",
            "Interior minimum: a weaker teacher than the strongest gives a better student, by more than "
            f"{NOISE_MULTIPLE:g} standard errors of the seed-paired gap (on each seed the best teacher is "
            "chosen on the other seeds, so picking the luckiest run cannot make a gap).",
            gap_table,
        ),
        (
            "4. Crossover (measured supervised loss at the same N, D)",
            "Negative: distillation wins. Sign per student budget, smallest D_S first: - distillation "
            f"better, + supervised better, 0 within {NOISE_MULTIPLE:g} s.e. of the seed-paired difference; "
            "a crossover is reported only from a significant - to a significant +.",
            cross_table,
        ),
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
