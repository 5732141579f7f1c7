"""Where coefficient sets come from: the built-ins or a fit file, with samples for uncertainty."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from garagelab.core.errors import UserError
from garagelab.distill.fit import FitResult
from garagelab.distill.laws import BUILTIN, BUSBRIDGE2025, BUSBRIDGE2025_INTERVALS, CoefficientSet

# 90% two-sided normal quantile: turns a published 90% interval into a standard deviation
_Z90 = 1.6448536269514722


def load_coefficients(source: str) -> CoefficientSet:
    """A built-in name (e.g. `busbridge2025`) or the path of a `distill fit` JSON file."""
    if source in BUILTIN:
        return BUILTIN[source]
    if not Path(source).exists():
        raise UserError(f"coefficients {source!r}: not a built-in ({', '.join(BUILTIN)}) and no such file")
    return FitResult.load(source).coefficient_set()


def coefficient_samples(source: str, count: int = 256, seed: int = 0) -> list[CoefficientSet]:
    """Plausible alternative coefficient sets, for uncertainty on predictions and plans.

    A fit file supplies its bootstrap refits (paired supervised/distillation resamples). For
    busbridge2025 only the paper's 90% intervals exist (Table 6, for A, B, E, A', B', c0), so
    those coefficients are drawn independently from normals matching the intervals: this
    ignores correlations between coefficients and is a rough guide, not a posterior.
    """
    if source == BUSBRIDGE2025.name:
        return _samples_from_intervals(BUSBRIDGE2025, count, seed)
    if source in BUILTIN:
        return []
    return fit_samples(FitResult.load(source), count)


def fit_samples(fit: FitResult, count: int = 256) -> list[CoefficientSet]:
    """A fit's bootstrap refits as coefficient sets (supervised and distillation resample i
    paired, as the fit drew them)."""
    base = fit.coefficient_set()
    sup = fit.supervised.bootstrap_laws() if fit.supervised else []
    dist = fit.distillation.bootstrap_laws() if fit.distillation else []
    pairs = min(len(sup), len(dist), count)
    return [replace(base, supervised=sup[i], distillation=dist[i]) for i in range(pairs)]


def samples_note(source: str, samples: list[CoefficientSet]) -> str:
    """Where the intervals printed next to a prediction come from, in one line."""
    if not samples:
        if source in BUILTIN and source != BUSBRIDGE2025.name:
            return f"no intervals: {source} has no uncertainty to sample"
        return "no intervals: this fit has no bootstrap refits (refit with `distill fit --bootstrap 1000`)"
    if source == BUSBRIDGE2025.name:
        return (
            f"90% intervals from {len(samples)} draws of the paper's published 90% intervals (Table 6: A, B, E, "
            "A', B', c0 only, drawn independently): a rough guide, not a posterior"
        )
    return (
        f"90% intervals from {len(samples)} paired bootstrap refits of the fit (in simulation on the paper's "
        "design they held the true losses in 86-96% of data sets; docs/distill/README.md, Calibration)"
    )


def _samples_from_intervals(base: CoefficientSet, count: int, seed: int) -> list[CoefficientSet]:
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        laws = {}
        for part, intervals in BUSBRIDGE2025_INTERVALS.items():
            law = getattr(base, part)
            draws = {
                key: float(rng.normal((lo + hi) / 2, (hi - lo) / (2 * _Z90))) for key, (lo, hi) in intervals.items()
            }
            laws[part] = replace(law, **draws)
        samples.append(replace(base, **laws))
    return samples
