"""How often the bootstrap's nominal 90% intervals hold the truth, on data from a known law.

Each data set is drawn from a known coefficient set with log-normal noise on the paper's
design (`simulate`), fitted and bootstrapped exactly as `distill fit` does, and every interval
is checked against the true value: the supervised coefficients and a far extrapolation (a
70B model on 1.4T tokens), or, for the distillation law, its teacher coefficients and the
student loss of held-out configurations. Calibrated intervals cover about 90% of data sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from garagelab.core.progress import ProgressBar
from garagelab.distill.bootstrap import percentile_interval
from garagelab.distill.fit import distillation_columns, fit_distillation, fit_supervised
from garagelab.distill.laws import CoefficientSet
from garagelab.distill.simulate import simulate_distillation, simulate_supervised

# a far extrapolation of the supervised law, and held-out students of the distillation law
EXTRAPOLATION = (70e9, 1.4e12)
DISTILLATION_COEFFICIENTS = ("c0", "f1", "d1")
# an interval misses only when the truth is outside it by more than this fraction of the truth.
# Losses are printed to 4 significant digits (0.04% at 2.5 nats); where the law pins a
# prediction (a student as good as its teacher: L_S = L_T + 1e-5) every resample agrees to
# 1e-7, the interval has zero width, and a miss by 1e-5 nats would be counted against it
RESOLUTION = 1e-4


@dataclass
class Coverage:
    """How many data sets' intervals held the truth, per quantity."""

    law: str
    noise: float
    data_sets: int = 0
    covered: dict[str, int] = field(default_factory=dict)

    def add(self, quantity: str, interval: tuple[float, float], truth: float) -> None:
        slack = RESOLUTION * abs(truth)
        held = interval[0] - slack <= truth <= interval[1] + slack
        self.covered[quantity] = self.covered.get(quantity, 0) + int(held)

    def rates(self) -> dict[str, float]:
        return {k: v / self.data_sets for k, v in self.covered.items()}


def measure_coverage(
    truth: CoefficientSet,
    law: str = "supervised",
    noise: float = 0.005,
    data_sets: int = 50,
    resamples: int = 200,
    starts: int | str = 500,
    seed: int = 0,
    distillation_runs: int = 200,
    kind: str = "cases",
    progress: bool = True,
) -> Coverage:
    """Fit and bootstrap `data_sets` simulated data sets; count the intervals that hold the truth."""
    result = Coverage(law, noise)
    options = {"starts": starts, "bootstrap": resamples, "bootstrap_kind": kind, "progress": False}
    with ProgressBar(data_sets, f"coverage {law} noise {noise:g}", unit="data sets", enabled=progress) as bar:
        for k in range(data_sets):
            data_seed = seed + k
            if law == "supervised":
                _supervised_case(result, truth, noise, data_seed, options)
            else:
                _distillation_case(result, truth, noise, data_seed, distillation_runs, options)
            result.data_sets += 1
            bar.advance()
    return result


def _supervised_case(result: Coverage, truth: CoefficientSet, noise: float, seed: int, options: dict) -> None:
    runs = simulate_supervised(truth, noise=noise, seed=seed)
    fit = fit_supervised(runs, seed=seed, **options)
    laws = fit.bootstrap_laws()
    for key, value in truth.supervised.to_dict().items():
        result.add(key, fit.intervals[key], value)
    with np.errstate(divide="ignore"):
        predicted = [float(law.loss(*EXTRAPOLATION)) for law in laws]
    result.add("loss(70B, 1.4T)", percentile_interval(predicted), float(truth.supervised.loss(*EXTRAPOLATION)))


def _distillation_case(
    result: Coverage, truth: CoefficientSet, noise: float, seed: int, runs: int, options: dict
) -> None:
    # the supervised law is known here, so the distillation law's own intervals are measured
    data = simulate_distillation(truth, runs=runs, noise=noise, seed=seed)
    fit = fit_distillation(data, truth.supervised, seed=seed, **options)
    for key in DISTILLATION_COEFFICIENTS:
        result.add(key, fit.intervals[key], truth.distillation.to_dict()[key])
    held_out = simulate_distillation(truth, runs=3, noise=0.0, seed=10_000 + seed)
    columns = distillation_columns(held_out, truth.supervised)
    predictions = np.array([np.exp(law.log_loss(*columns[:4])) for law in fit.bootstrap_laws()])
    for i, actual in enumerate(held_out.loss):
        result.add(f"student loss #{i + 1}", percentile_interval(predictions[:, i]), float(actual))
