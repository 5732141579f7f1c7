"""Do the profile intervals with a simulated threshold hold the distillation law's c0, f1 and d1?

The README's calibration section says the bootstrap's intervals for c0 and f1 undercover above
0.5% noise because the estimate is biased at the truth, and that a profile interval held to the
chi-square(1) threshold did no better. `distill.profile` sets the threshold by simulating data
from the fit instead. For each simulated data set (the paper's design, the supervised law
known, as `bench_coverage.py --law distillation`) this fits the law as `distill fit` does,
builds the profile intervals exactly as `distill fit --profile` does, and counts the ones that
hold the truth. Prints each data set's intervals and thresholds, the share held, and the time.
As a check on the scan, it also holds each coefficient at its true value with a full fit
(`--starts` starts, the best 16 end points polished) and prints that statistic (T): the test at
the truth accepts when T is at most the threshold, which the interval should agree with.

    .venv/bin/python benchmarks/distill/bench_profile_coverage.py [--sets 20] [--noise 0.02]
        [--nulls 100] [--starts 500] [--out profile_coverage.jsonl]

A data set takes minutes (8 at 50 nulls on 2 cores), so each one's outcome is appended to
`--out` as it finishes, and a rerun with the same file skips the data sets already there (same
noise, nulls and starts) and reports the rates over all of them: a killed run loses at most one
data set, and the count can be raised across sessions. `--rescan OLD.jsonl` redoes only the
scans of OLD's data sets with their stored thresholds (and statistics at the truth), for a
change to the scan: the nulls, which take most of the time, do not depend on it.

`--at-ends` builds the intervals as `distill fit --profile-threshold ends` does (with `--rescan`,
reusing the thresholds at the estimate), and `--coefficients`/`--seeds` narrow a run.
`--at-truth` measures what a full test inversion would hold instead: per data set and
coefficient, the threshold simulated from the fit held at the true value (`profile.threshold_at`)
rather than from the estimate, and the statistic at the truth against it. An inverted test
holds the truth exactly when that test accepts, so the share accepted is its coverage.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from garagelab.distill.coverage import DISTILLATION_COEFFICIENTS, Coverage
from garagelab.distill.fit import distillation_columns, fit_law
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.objective import DISTILLATION
from garagelab.distill.profile import NULLS, profile_intervals, rise_statistic, threshold_at
from garagelab.distill.simulate import simulate_distillation

TRUTH = BUSBRIDGE2025
TRUE_VALUES = TRUTH.distillation.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--nulls", type=int, default=NULLS)
    parser.add_argument("--starts", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("profile_coverage.jsonl"), help="outcomes, one per line")
    parser.add_argument("--rescan", type=Path, help="outcomes of an earlier run whose thresholds to reuse")
    parser.add_argument("--at-truth", action="store_true", help="thresholds simulated at the truth (a full inversion)")
    parser.add_argument("--at-ends", action="store_true", help="intervals with thresholds simulated at their ends")
    parser.add_argument("--coefficients", default=",".join(DISTILLATION_COEFFICIENTS), help="comma-separated")
    parser.add_argument("--seeds", help="comma-separated data sets to run instead of the first --sets")
    args = parser.parse_args()
    base = {"noise": args.noise, "nulls": args.nulls, "starts": args.starts}
    names = tuple(args.coefficients.split(","))
    setting = dict(base)
    if args.at_truth:
        setting.update(test="at truth", coefficients=list(names))
    elif args.at_ends or names != DISTILLATION_COEFFICIENTS:
        setting.update(at_ends=args.at_ends, coefficients=list(names))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = {record["seed"]: record for record in _records(args.out) if record["setting"] == setting}
    earlier = {r["seed"]: r for r in _records(args.rescan) if r["setting"] == base} if args.rescan else None
    if args.seeds:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    else:
        seeds = range(args.sets) if earlier is None else sorted(earlier)[: args.sets]
    for seed in seeds:
        if seed in done:
            continue
        if args.at_truth:
            outcome = _test_at_truth(seed, args.noise, args.nulls, args.starts, names)
        else:
            before = None if earlier is None else earlier[seed]["coefficients"]
            outcome = _one_data_set(seed, args.noise, args.nulls, args.starts, before, names, args.at_ends)
        record = {"setting": setting, "seed": seed, **outcome}
        with args.out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        done[seed] = record
        print((_truth_line if args.at_truth else _line)(record), flush=True)
    (_truth_summary if args.at_truth else _summary)([done[seed] for seed in seeds], setting)


def _test_at_truth(seed: int, noise: float, nulls: int, starts: int, names: tuple[str, ...]) -> dict:
    """Per coefficient: the statistic at the truth (full free and held fits, as `_one_data_set`)
    and the threshold simulated from the held fit (`profile.threshold_at`)."""
    t0 = time.perf_counter()
    columns, _, objective, free = _fitted_data_set(seed, noise, starts)
    box = DISTILLATION.box("physical")
    coefficients = {}
    for position, name in enumerate(names):
        statistic, held = _held_at_truth(columns, starts, seed, name, objective)
        index, _ = DISTILLATION.parameter(name, TRUE_VALUES[name])
        threshold, finite = threshold_at(
            DISTILLATION, columns, np.vstack([held["minima"], free["minima"]]), box,
            index, nulls=nulls, rng=np.random.default_rng([seed, 3, position]),
        )  # fmt: skip
        coefficients[name] = {
            "truth": TRUE_VALUES[name],
            "statistic_at_truth": statistic,
            "threshold_at_truth": threshold,
            "nulls": finite,
        }
    return {"coefficients": coefficients, "seconds": time.perf_counter() - t0}


def _fitted_data_set(seed: int, noise: float, starts: int) -> tuple[tuple[np.ndarray, ...], np.ndarray, float, dict]:
    """A data set simulated from the truth, and its fit as `distill fit` does it: (columns,
    theta, objective, the fit's statistics)."""
    data = simulate_distillation(TRUTH, runs=200, noise=noise, seed=seed)
    columns = distillation_columns(data, TRUTH.supervised)
    theta, objective, stats = fit_law(DISTILLATION, columns, starts, seed=seed, progress=False, bounds="physical")
    return columns, theta, objective, stats


def _held_at_truth(
    columns: tuple[np.ndarray, ...], starts: int, seed: int, name: str, objective: float
) -> tuple[float, dict]:
    """The statistic with `name` held at its true value by a full fit, and that fit's statistics."""
    _, held, stats = fit_law(DISTILLATION, columns, starts, seed=seed, progress=False, bounds="physical",
                             fixed={name: TRUE_VALUES[name]})  # fmt: skip
    return float(rise_statistic(held, min(held, objective), len(columns[0]))), stats


def _one_data_set(
    seed: int, noise: float, nulls: int, starts: int, before: dict | None, names: tuple[str, ...], at_ends: bool
) -> dict:
    """Fit, profile, and a full held fit at each true value: what the interval and the test say
    (`before`: an earlier outcome whose thresholds at the estimate and statistics at the truth
    are reused)."""
    columns, theta, objective, stats = _fitted_data_set(seed, noise, starts)
    estimate = DISTILLATION.to_law(theta).to_dict()
    box = DISTILLATION.box("physical")
    result = profile_intervals(
        DISTILLATION, columns, stats["minima"], objective, box, names, seed=seed, nulls=nulls, progress=False,
        thresholds=before and {name: (c["threshold"], c["nulls"]) for name, c in before.items()}, at_ends=at_ends,
    )  # fmt: skip
    coefficients = {}
    for name, interval in result.intervals.items():
        if before is None:
            at_truth, _ = _held_at_truth(columns, starts, seed, name, objective)
        else:
            at_truth = before[name]["statistic_at_truth"]
        coefficients[name] = {
            "estimate": estimate[name],
            "truth": TRUE_VALUES[name],
            "statistic_at_truth": at_truth,
            **interval.to_dict(),
        }
    return {"coefficients": coefficients, "seconds": result.seconds}


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _line(record: dict) -> str:
    cells = []
    for name, c in record["coefficients"].items():
        below, above = "<" if c["open_low"] else "", ">" if c["open_high"] else ""
        ends = f" ends {c['end_thresholds'][0]:.2f}/{c['end_thresholds'][1]:.2f}" if c.get("end_thresholds") else ""
        cells.append(
            f"{name} {c['estimate']:.3g} [{below}{c['low']:.3g}..{c['high']:.3g}{above}] (truth {c['truth']:.3g}, "
            f"T90 {c['threshold']:.2f}{ends}, T {c['statistic_at_truth']:.2f})"
        )
    return f"data set {record['seed']}: " + "; ".join(cells) + f"  {record['seconds']:.0f} s"


def _truth_line(record: dict) -> str:
    cells = [
        f"{name} T {c['statistic_at_truth']:.2f} against {c['threshold_at_truth']:.2f}"
        for name, c in record["coefficients"].items()
    ]
    return f"data set {record['seed']}: " + "; ".join(cells) + f"  {record['seconds']:.0f} s"


def _truth_summary(records: list[dict], setting: dict) -> None:
    names = setting["coefficients"]
    accepted = {
        name: sum(r["coefficients"][name]["statistic_at_truth"] <= r["coefficients"][name]["threshold_at_truth"]
                  for r in records)
        for name in names
    }  # fmt: skip
    tests = ", ".join(f"{name} {100 * count / len(records):.0f}%" for name, count in accepted.items())
    seconds = sum(record["seconds"] for record in records) / len(records)
    print(
        f"noise {100 * setting['noise']:g}%, {len(records)} data sets, {setting['nulls']} nulls: the test at the "
        f"truth, its threshold simulated there, accepted {tests} ({seconds:.0f} s per data set)"
    )


def _summary(records: list[dict], setting: dict) -> None:
    coverage = Coverage("distillation", setting["noise"], data_sets=len(records))
    accepted = dict.fromkeys(records[0]["coefficients"], 0)
    for record in records:
        for name, c in record["coefficients"].items():
            coverage.add(name, (c["low"], c["high"]), c["truth"])
            accepted[name] += c["statistic_at_truth"] <= c["threshold"]
    shares = ", ".join(f"{name} {100 * rate:.0f}%" for name, rate in coverage.rates().items())
    tests = ", ".join(f"{name} {100 * count / len(records):.0f}%" for name, count in accepted.items())
    seconds = sum(record["seconds"] for record in records) / len(records)
    print(
        f"noise {100 * setting['noise']:g}%, {len(records)} data sets, {setting['nulls']} nulls: profile intervals "
        f"held {shares}; the test at the truth accepted {tests} ({seconds:.0f} s of profiling per data set)"
    )


if __name__ == "__main__":
    main()
