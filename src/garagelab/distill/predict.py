"""Predictions from a coefficient set: losses, the best teacher, and where supervised catches up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from garagelab.distill.laws import CoefficientSet

TOKEN_RANGE = (1e6, 1e17)  # the paper's planner bounds: 1M to 100P


@dataclass(frozen=True)
class TeacherChoice:
    """The teacher loss that minimises a student's loss, and that student loss."""

    teacher_loss: float
    student_loss: float


def optimal_teacher_loss(
    coefficients: CoefficientSet, n_s: float, d_s: float, floor: float | None = None
) -> TeacherChoice:
    """argmin over L_T of L_S(N_S, D_S, L_T): the bottom of the capacity-gap U.

    Teachers can be no better than `floor` (default: the irreducible loss E), so L_T ranges over
    (floor, 10 floor]. A dense grid finds the basin (the law switches sharply near
    L_T = d1 Lt_S), then a bounded scalar search refines it.
    """
    floor = coefficients.supervised.E if floor is None else floor
    grid = np.exp(np.linspace(np.log(floor * (1 + 1e-6)), np.log(10 * floor), 2001))
    losses = coefficients.student_loss(n_s, d_s, grid)
    i = int(np.argmin(losses))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    result = minimize_scalar(
        lambda lt: float(coefficients.student_loss(n_s, d_s, lt)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-10},
    )
    if result.fun <= losses[i]:
        return TeacherChoice(float(result.x), float(result.fun))
    return TeacherChoice(float(grid[i]), float(losses[i]))


def distillation_advantage(coefficients: CoefficientSet, n_s: float, d_s: float, teacher_loss: float) -> float:
    """L_S - Lt_S: negative where distillation beats supervised training on the same tokens."""
    return float(coefficients.student_loss(n_s, d_s, teacher_loss) - coefficients.supervised_loss(n_s, d_s))


def crossover_tokens(coefficients: CoefficientSet, n_s: float, teacher_loss: float) -> float:
    """Student tokens beyond which supervised training beats distilling from this teacher.

    Returns NaN when the sign does not change inside 1M..100P tokens (supervised wins
    everywhere, or distillation wins everywhere in that range).
    """
    lo, hi = np.log(TOKEN_RANGE[0]), np.log(TOKEN_RANGE[1])
    grid = np.linspace(lo, hi, 400)
    gap = coefficients.student_loss(n_s, np.exp(grid), teacher_loss) - coefficients.supervised_loss(n_s, np.exp(grid))
    change = np.flatnonzero((gap[:-1] < 0) & (gap[1:] >= 0))
    if not change.size:
        return float("nan")
    i = int(change[0])
    root = brentq(
        lambda log_d: distillation_advantage(coefficients, n_s, float(np.exp(log_d)), teacher_loss),
        grid[i],
        grid[i + 1],
        xtol=1e-12,
    )
    return float(np.exp(root))
