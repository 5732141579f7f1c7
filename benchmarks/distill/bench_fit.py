"""The full 43,200-start distillation fit: garagelab vs a plain scipy loop, same data, same run.

The data set is 697 runs simulated from the paper's law (Table 6) with 0.3% log-normal noise,
shaped like the paper's protocols, fitted with the CLI's default (physical) bounds on both
sides; starts that end non-finite are counted (ours: in `outcomes`). The anchor is what the
reference fitting code does: a loop of `scipy.optimize.minimize(method="L-BFGS-B")` over the
grid of starts, one start at a time (given the same analytic gradient, to be fair). A full loop
takes over ten minutes here, so by default it runs on a random sample of the starts and its
time is scaled to the whole grid; `--baseline-starts all` runs all of them. A bootstrap of
`--resamples` (default 1,000) resamples, refitted as `distill fit --bootstrap` does, is timed too,
and `--polishes` float64 polishes with the analytic Jacobian against scipy's finite differences.

    .venv/bin/python benchmarks/distill/bench_fit.py [--baseline-starts 500|all] [--backend auto|jax|numpy]
        [--resamples 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize

from garagelab.distill.bootstrap import bootstrap_fit
from garagelab.distill.evaluate import numpy_evaluator
from garagelab.distill.fit import ANCHORS, distillation_columns, fit_law, start_points
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.objective import DISTILLATION, LOG_HUBER, law_to_theta
from garagelab.distill.polish import polish
from garagelab.distill.simulate import simulate_distillation

BOUNDS = "physical"  # the CLI's default (`distill fit --bounds`), on both sides


def scipy_loop(columns: tuple[np.ndarray, ...], starts: np.ndarray) -> tuple[float, float, int]:
    """(best objective, seconds, starts that ended non-finite) of one scipy L-BFGS-B run per start."""
    evaluate = numpy_evaluator(DISTILLATION, columns)
    lower, upper = DISTILLATION.box(BOUNDS)
    finite = [v if np.isfinite(v) else None for v in (*lower, *upper)]
    box = list(zip(finite[: len(lower)], finite[len(lower) :], strict=True))

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = evaluate(x[None, :], np.zeros(1, dtype=int))
        return float(f[0]), g[0]

    best, failed = np.inf, 0
    begin = time.perf_counter()
    with np.errstate(all="ignore"):
        for x0 in starts:
            result = minimize(fun, np.clip(x0, lower, upper), jac=True, method="L-BFGS-B", bounds=box)
            if np.isfinite(result.fun):
                best = min(best, float(result.fun))
            else:
                failed += 1
    return best, time.perf_counter() - begin, failed


def time_polishes(columns: tuple[np.ndarray, ...], count: int, finite_differences: bool) -> tuple[float, np.ndarray]:
    """(seconds, objectives) of `count` float64 polishes in this process, from the true
    coefficients moved by N(0, 0.05) (seed 0): the analytic Jacobian, or scipy's finite differences."""
    starts = law_to_theta(BUSBRIDGE2025.distillation) + np.random.default_rng(0).normal(0, 0.05, (count, 9))
    box = DISTILLATION.box(BOUNDS)
    begin = time.perf_counter()
    found = [polish(DISTILLATION, columns, x0, box, LOG_HUBER, finite_differences=finite_differences) for x0 in starts]
    return time.perf_counter() - begin, np.array([f for _, f in found])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline-starts", default="500", help="starts for the scipy loop, or 'all'")
    parser.add_argument("--backend", default="auto", choices=("auto", "jax", "numpy"))
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples to time after the fit")
    parser.add_argument("--polishes", type=int, default=16, help="polishes timed with each Jacobian")
    args = parser.parse_args()

    runs = simulate_distillation(BUSBRIDGE2025, runs=697, noise=0.003, seed=0)
    columns = distillation_columns(runs, BUSBRIDGE2025.supervised)
    grid = start_points(DISTILLATION, "paper")

    begin = time.perf_counter()
    _, ours_best, stats = fit_law(DISTILLATION, columns, "paper", backend=args.backend, progress=True, bounds=BOUNDS)
    ours_seconds = time.perf_counter() - begin

    boot = bootstrap_fit(
        DISTILLATION, columns, stats["minima"][:ANCHORS], args.resamples, DISTILLATION.box(BOUNDS), backend=args.backend
    )

    sample = grid if args.baseline_starts == "all" else start_points(DISTILLATION, int(args.baseline_starts), seed=1)
    base_best, base_seconds, base_failed = scipy_loop(columns, sample)
    base_full = base_seconds * len(grid) / len(sample)
    analytic_seconds, analytic = time_polishes(columns, args.polishes, finite_differences=False)
    differenced_seconds, differenced = time_polishes(columns, args.polishes, finite_differences=True)

    print(f"data: {len(runs)} simulated runs; starts: {len(grid)} (the paper's grid); bounds: {BOUNDS} (the CLI's)")
    print(
        f"garagelab ({stats['backend']}): {ours_seconds:.1f} s for all {len(grid)} starts "
        f"+ float64 polish ({stats['evaluations']:,} start-evaluations); best objective {ours_best:.6g}; "
        f"outcomes {stats['status']}"
    )
    scaled = "" if len(sample) == len(grid) else f", scaled to {len(grid)} starts: {base_full:.0f} s"
    print(
        f"scipy loop: {base_seconds:.1f} s for {len(sample)} starts ({1e3 * base_seconds / len(sample):.1f} ms/start)"
        f"{scaled}; best objective over its starts {base_best:.6g}; non-finite starts {base_failed}"
    )
    print(
        f"bootstrap: {boot.resamples} resamples x {boot.starts_per_resample} starts + float64 polish in "
        f"{boot.seconds:.1f} s ({len(boot.samples)} finite)  (goal: 1,000 resamples within 10 min on 2 cores)"
    )
    lower = int((analytic < differenced * (1 - 1e-9)).sum())
    higher = int((analytic > differenced * (1 + 1e-9)).sum())
    print(
        f"polish, {args.polishes} starts, one process: analytic Jacobian {analytic_seconds:.2f} s, scipy's finite "
        f"differences {differenced_seconds:.2f} s: {differenced_seconds / analytic_seconds:.2f}x; analytic ended "
        f"lower in {lower}, higher in {higher} (max ratio {np.max(analytic / differenced):.6f})"
    )
    print(f"speed-up, full protocol: {base_full / ours_seconds:.1f}x  (goal: full protocol <= 60 s on 2 cores)")
    print(f"objective ratio ours / scipy-sample: {ours_best / base_best:.4f}  (<= 1: ours at least as good)")


if __name__ == "__main__":
    main()
