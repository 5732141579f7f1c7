"""How much a fit can be believed: the checks a statistician would make before using it.

A fit always returns numbers; these checks say whether they mean anything. Runs per free
parameter; coefficients at a bound (the optimum wanted to leave the allowed region); the
conditioning of the fit, from the Jacobian of the predicted log losses (scale-free: the
correlation form of J^T J) with the direction the data do not constrain named; bootstrap
intervals spanning orders of magnitude; residual outliers (robust z-score above 5); rows the
law cannot represent (a student better than its teacher, a loss below the fitted E); and, for
the distillation law, runs noisier than the level at which its coefficient intervals were
measured calibrated (on noisy data its c0, f1 and d1 estimates are biased and their bootstrap
intervals too narrow; the predicted losses' intervals still hold).

The verdict: `unidentifiable` (a direction no data constrain, or under two runs per free
parameter: the coefficients are arbitrary along it), `weak` (they are determined, loosely), or
`ok`. Predictions inside the fitted region can still be good on a ridge; their own bootstrap
intervals say so, and `plan` repeats the verdict in its warnings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from garagelab.distill.objective import LawSpec

SINGULAR = 1e12  # condition number beyond which a direction is not determined at all
ILL = 1e7  # beyond which coefficients trade off strongly along a ridge
RUNS_PER_PARAMETER = (2.0, 5.0)  # below the first: unidentifiable; below the second: weak
DECADES = 2.0  # a bootstrap interval spanning more than this many decades is weak
OUTLIER_Z = 5.0
# The distillation law's coefficient intervals, measured by benchmarks/distill/bench_coverage.py
# on the paper's design (docs/distill/README.md, Calibration): share of simulated data sets
# whose 90% interval held the truth, per log-normal noise level
DISTILLATION_COVERAGE = {
    0.005: {"c0": 0.88, "f1": 0.80, "d1": 0.92},
    0.01: {"c0": 0.80, "f1": 0.57, "d1": 0.87},
    0.02: {"c0": 0.65, "f1": 0.50, "d1": 0.80},
}
# The same for the profile intervals (`fit --profile`, profile.py): the share of data sets whose
# test at the truth accepted it (benchmarks/distill/bench_profile_coverage.py), by (where the
# threshold was simulated, noise, data sets, nulls). At the truth is what `--profile-threshold
# ends` approximates; at 1% noise c0 fell short even there. See docs/distill/README.md
PROFILE_COVERAGE = {
    ("threshold at the estimate", 0.01, 14, 50): {"c0": 0.71, "f1": 0.86, "d1": 0.93},
    ("threshold at the estimate", 0.02, 9, 50): {"c0": 0.56, "f1": 0.67, "d1": 1.0},
    ("threshold at the truth", 0.01, 14, 50): {"c0": 0.79, "f1": 0.93},
    ("threshold at the truth", 0.02, 9, 50): {"c0": 0.89, "f1": 0.89},
}
# the highest noise level at which all of them held 80-97%; a fit's residual scale above it
# (with slack for the scale's own sampling error) flags those intervals
CALIBRATED_NOISE = 0.005
NOISE_SLACK = 1.25


@dataclass(frozen=True)
class FitHealth:
    """The checks' findings and the verdict, as stored in fit.json."""

    verdict: str
    reasons: tuple[str, ...]
    runs_per_parameter: float
    condition_number: float
    at_bounds: tuple[str, ...] = ()
    outliers: tuple[dict[str, float], ...] = ()
    violations: dict[str, int] = field(default_factory=dict)
    # robust standard deviation of the log residuals (fits saved before it was kept: NaN)
    residual_scale: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists, and None for an infinite condition number), so it loads back equal."""
        data = asdict(self)
        for key in ("condition_number", "residual_scale"):
            data[key] = None if not np.isfinite(data[key]) else data[key]
        for key in ("reasons", "at_bounds", "outliers"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitHealth:
        data = dict(data)
        data["condition_number"] = np.inf if data["condition_number"] is None else data["condition_number"]
        data["residual_scale"] = np.nan if data.get("residual_scale") is None else data["residual_scale"]
        data["reasons"] = tuple(data["reasons"])
        data["at_bounds"] = tuple(data["at_bounds"])
        data["outliers"] = tuple(data["outliers"])
        return cls(**data)

    def line(self, law: str) -> str:
        why = "; ".join(self.reasons) if self.reasons else "no problem found"
        return f"{law} fit: {self.verdict.upper()} ({why})"


def check_fit(
    spec: LawSpec,
    theta: np.ndarray,
    columns: tuple[np.ndarray, ...],
    box: tuple[np.ndarray, np.ndarray],
    samples: np.ndarray,
) -> FitHealth:
    """Every check on one fitted law; `columns` are its data (the last one: log loss)."""
    free = np.flatnonzero(box[0] < box[1])
    names = [_natural(spec.params[k]) for k in free]
    runs = len(columns[0])
    unidentifiable: list[str] = []
    weak: list[str] = []

    per_parameter = runs / max(len(free), 1)
    if per_parameter < RUNS_PER_PARAMETER[0]:
        unidentifiable.append(f"{runs} runs for {len(free)} free coefficients")
    elif per_parameter < RUNS_PER_PARAMETER[1]:
        weak.append(f"only {per_parameter:.1f} runs per free coefficient")

    condition, note = _conditioning(spec, theta, columns, free, names)
    if condition > SINGULAR:
        unidentifiable.append(note)
    elif condition > ILL:
        weak.append(note)

    at_bounds = tuple(
        name for k, name in zip(free, names, strict=True) if _near(theta[k], box[0][k]) or _near(theta[k], box[1][k])
    )
    if at_bounds:
        weak.append(f"at a bound: {', '.join(at_bounds)} (the best fit wants to leave the allowed region)")
    weak += _wide_intervals(spec, samples, free, names)

    residuals = columns[-1] - spec.log_predictions(theta, columns)
    centre, scale = robust_centre_scale(residuals)
    outliers = _outliers(residuals, centre, scale, columns)
    if len(outliers) > 0.05 * runs:
        weak.append(f"{len(outliers)} residual outliers (robust z > {OUTLIER_Z:g})")
    if spec.name == "distillation" and scale > NOISE_SLACK * CALIBRATED_NOISE:
        weak.append(_noisy_note(scale))
    violations = _violations(spec, theta, columns)
    reasons = tuple(unidentifiable + weak + [f"{count} {what}" for what, count in violations.items() if count])
    verdict = "unidentifiable" if unidentifiable else "weak" if weak else "ok"
    return FitHealth(verdict, reasons, per_parameter, condition, at_bounds, outliers, violations, scale)


def _noisy_note(scale: float) -> str:
    """Why a noisy distillation fit's coefficient intervals are not to be trusted."""
    measured = "; ".join(
        f"at {100 * noise:g}% noise {_rates(rates)}"
        for noise, rates in DISTILLATION_COVERAGE.items()
        if noise > CALIBRATED_NOISE
    )
    profile = "; ".join(
        f"{where} {_rates(rates)} of {sets} data sets at {100 * noise:g}% noise"
        for (where, noise, sets, _), rates in PROFILE_COVERAGE.items()
    )
    return (
        f"residual scale {100 * scale:.2g}% of the loss, above the {100 * CALIBRATED_NOISE:g}% at which its "
        f"coefficient intervals were measured calibrated (share of simulated data sets whose 90% interval held "
        f"the truth: {measured}; profile intervals, `fit --profile`: {profile}): treat those as too narrow; "
        "the predicted losses' intervals held"
    )


def _rates(rates: dict[str, float]) -> str:
    return ", ".join(f"{name} {100 * rate:.0f}%" for name, rate in rates.items())


def _natural(param: str) -> str:
    return param.removeprefix("log_")


def _near(value: float, bound: float) -> bool:
    return bool(np.isfinite(bound) and abs(value - bound) <= 1e-6 * (1.0 + abs(bound)))


def _conditioning(
    spec: LawSpec, theta: np.ndarray, columns: tuple[np.ndarray, ...], free: np.ndarray, names: list[str]
) -> tuple[float, str]:
    """Condition number of the scale-free J^T J, and which coefficients its weakest direction moves."""
    if not free.size:
        return 1.0, ""
    jacobian = spec.jacobian(theta, columns)[1][:, free]
    scale = np.linalg.norm(jacobian, axis=0)
    dead = [name for name, s in zip(names, scale, strict=True) if not (s > 1e-9 and np.isfinite(s))]
    if dead:
        return np.inf, f"{', '.join(dead)} change no prediction (a coefficient the data cannot see)"
    normalised = jacobian / scale
    values, vectors = np.linalg.eigh(normalised.T @ normalised)
    condition = float(values[-1] / max(values[0], 1e-300))
    weakest = vectors[:, 0]
    moved = [names[i] for i in np.argsort(-np.abs(weakest)) if abs(weakest[i]) > 0.3]
    return condition, f"condition number {condition:.2g}: a ridge along {', '.join(moved)}"


def _wide_intervals(spec: LawSpec, samples: np.ndarray, free: np.ndarray, names: list[str]) -> list[str]:
    """Coefficients fitted in log space (A, B, E, d1) whose 90% interval spans many decades."""
    if len(samples) < 10:
        return []
    wide = []
    for k, name in zip(free, names, strict=True):
        if spec.params[k].startswith("log_"):
            lo, hi = np.percentile(samples[:, k], [5, 95])
            decades = (hi - lo) / np.log(10)
            if decades > DECADES:
                wide.append(f"{name}'s 90% interval spans {decades:.0f} decades")
    return wide


def robust_centre_scale(residuals: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation (1.4826 MAD; equals sigma for normal noise)."""
    centre = float(np.median(residuals))
    return centre, float(1.4826 * np.median(np.abs(residuals - centre)))


def _outliers(
    residuals: np.ndarray, centre: float, spread: float, columns: tuple[np.ndarray, ...]
) -> tuple[dict[str, float], ...]:
    """Runs whose residual is more than OUTLIER_Z robust standard deviations from the median."""
    if not spread > 0:
        return ()
    z = (residuals - centre) / spread
    rows = np.flatnonzero(np.abs(z) > OUTLIER_Z)
    return tuple(
        {
            "N": float(np.exp(columns[0][i])),
            "D": float(np.exp(columns[1][i])),
            "loss": float(np.exp(columns[-1][i])),
            "z": float(z[i]),
        }
        for i in rows[np.argsort(-np.abs(z[rows]))][:10]
    )


def _violations(spec: LawSpec, theta: np.ndarray, columns: tuple[np.ndarray, ...]) -> dict[str, int]:
    """Rows the law cannot represent: it has L >= E, and a student no better than its teacher."""
    if spec.name == "supervised":
        e = spec.to_law(theta).E
        return {"runs with a loss below the fitted E": int((columns[-1] < np.log(e)).sum())}
    return {
        "students better than their teacher (L_S < L_T; Eq. 8 has L_S > L_T)": int((columns[-1] < columns[2]).sum())
    }
