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
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from garagelab.distill.coverage import DISTILLATION_COEFFICIENTS, Coverage
from garagelab.distill.fit import distillation_columns, fit_law
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.objective import DISTILLATION
from garagelab.distill.profile import NULLS, profile_intervals, rise_statistic
from garagelab.distill.simulate import simulate_distillation

TRUTH = BUSBRIDGE2025


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--nulls", type=int, default=NULLS)
    parser.add_argument("--starts", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("profile_coverage.jsonl"), help="outcomes, one per line")
    parser.add_argument("--rescan", type=Path, help="outcomes of an earlier run whose thresholds to reuse")
    args = parser.parse_args()
    setting = {"noise": args.noise, "nulls": args.nulls, "starts": args.starts}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = {record["seed"]: record for record in _records(args.out) if record["setting"] == setting}
    earlier = {r["seed"]: r for r in _records(args.rescan) if r["setting"] == setting} if args.rescan else None
    seeds = range(args.sets) if earlier is None else sorted(earlier)[: args.sets]
    for seed in seeds:
        if seed in done:
            continue
        before = None if earlier is None else earlier[seed]["coefficients"]
        record = {"setting": setting, "seed": seed, **_one_data_set(seed, args.noise, args.nulls, args.starts, before)}
        with args.out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        done[seed] = record
        print(_line(record), flush=True)
    _summary([done[seed] for seed in seeds], setting)


def _one_data_set(seed: int, noise: float, nulls: int, starts: int, before: dict | None) -> dict:
    """Fit, profile, and a full held fit at each true value: what the interval and the test say
    (`before`: an earlier outcome whose thresholds and statistics at the truth are reused)."""
    true_values = TRUTH.distillation.to_dict()
    data = simulate_distillation(TRUTH, runs=200, noise=noise, seed=seed)
    columns = distillation_columns(data, TRUTH.supervised)
    theta, objective, stats = fit_law(DISTILLATION, columns, starts, seed=seed, progress=False, bounds="physical")
    estimate = DISTILLATION.to_law(theta).to_dict()
    box = DISTILLATION.box("physical")
    result = profile_intervals(
        DISTILLATION, columns, stats["minima"], objective, box, DISTILLATION_COEFFICIENTS, seed=seed, nulls=nulls,
        progress=False, thresholds=before and {name: (c["threshold"], c["nulls"]) for name, c in before.items()},
    )  # fmt: skip
    coefficients = {}
    for name, interval in result.intervals.items():
        if before is None:
            held = fit_law(DISTILLATION, columns, starts, seed=seed, progress=False, bounds="physical",
                           fixed={name: true_values[name]})[1]  # fmt: skip
            at_truth = float(rise_statistic(held, min(held, objective), len(columns[0])))
        else:
            at_truth = before[name]["statistic_at_truth"]
        coefficients[name] = {
            "estimate": estimate[name],
            "truth": true_values[name],
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
        cells.append(
            f"{name} {c['estimate']:.3g} [{below}{c['low']:.3g}..{c['high']:.3g}{above}] (truth {c['truth']:.3g}, "
            f"T90 {c['threshold']:.2f}, T {c['statistic_at_truth']:.2f})"
        )
    return f"data set {record['seed']}: " + "; ".join(cells) + f"  {record['seconds']:.0f} s"


def _summary(records: list[dict], setting: dict) -> None:
    coverage = Coverage("distillation", setting["noise"], data_sets=len(records))
    accepted = dict.fromkeys(DISTILLATION_COEFFICIENTS, 0)
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
