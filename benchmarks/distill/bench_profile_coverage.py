"""Would profile-likelihood intervals cover the distillation law's c0, f1 and d1? (They do not.)

The README's calibration section says the bootstrap's intervals for c0 and f1 undercover above
0.5% noise because the estimate is biased at the truth. A profile-likelihood interval holds a
coefficient at a value and refits the rest, so it does not centre on the estimate; this measures
whether it holds the truth. For each simulated data set (the paper's design, the supervised law
known, as `bench_coverage.py --law distillation`) it fits the law, refits it with the
coefficient held at its true value, and turns the objective's rise into the drop-in-dispersion
statistic of an L1 fit (the paper's Huber delta of 1e-4 makes the objective delta x sum |r|):

    T = 4 f(0) (J_held - J_free) / delta,   f(0) = 1 / (sigma sqrt(2 pi)),

sigma the robust standard deviation of the free fit's log residuals. Asymptotically T ~ chi2(1),
so a 90% profile interval is {value: T <= 2.706}, and it holds the truth when T at the truth is
below 2.706. Prints T per data set and the share held.

    .venv/bin/python benchmarks/distill/bench_profile_coverage.py [--sets 20] [--noise 0.02] [--starts 500]
"""

from __future__ import annotations

import argparse
import math
import time

from garagelab.distill.fit import distillation_columns, fit_law
from garagelab.distill.health import robust_centre_scale
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.objective import DISTILLATION, LOG_HUBER
from garagelab.distill.polish import residuals
from garagelab.distill.simulate import simulate_distillation

COEFFICIENTS = ("c0", "f1", "d1")
CHI2_1_90 = 2.706


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=20)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--starts", type=int, default=500)
    args = parser.parse_args()
    truth = BUSBRIDGE2025
    true_values = truth.distillation.to_dict()
    held = dict.fromkeys(COEFFICIENTS, 0)
    begin = time.perf_counter()
    for seed in range(args.sets):
        data = simulate_distillation(truth, runs=200, noise=args.noise, seed=seed)
        columns = distillation_columns(data, truth.supervised)
        options = {"seed": seed, "progress": False, "bounds": "physical"}
        theta, free, _ = fit_law(DISTILLATION, columns, args.starts, **options)
        _, sigma = robust_centre_scale(residuals(DISTILLATION, theta, columns, LOG_HUBER))
        estimate = DISTILLATION.to_law(theta).to_dict()
        pinned = {
            name: fit_law(DISTILLATION, columns, args.starts, fixed={name: true_values[name]}, **options)[1]
            for name in COEFFICIENTS
        }
        best = min(free, *pinned.values())  # a held fit can find a lower minimum than the free one
        cells = []
        for name in COEFFICIENTS:
            statistic = 4 * (pinned[name] - best) / LOG_HUBER.delta / (sigma * math.sqrt(2 * math.pi))
            held[name] += statistic <= CHI2_1_90
            cells.append(f"{name} {estimate[name]:.3g} (truth {true_values[name]:.3g}) T {statistic:.2f}")
        print(f"data set {seed}: sigma {sigma:.4f}; " + "; ".join(cells), flush=True)
    shares = ", ".join(f"{name} {100 * count / args.sets:.0f}%" for name, count in held.items())
    seconds = time.perf_counter() - begin
    print(f"noise {100 * args.noise:g}%, {args.sets} data sets: profile intervals held {shares} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
