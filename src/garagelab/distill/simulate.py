"""Synthetic runs drawn from known laws, shaped like the paper's experimental protocols.

Used by tests (recover known coefficients), by the benchmark (the 697-run data set) and by
anyone who wants to see how much data a fit needs before spending compute on real runs.
"""

from __future__ import annotations

import numpy as np

from garagelab.distill.data import DistillationRuns, SupervisedRuns
from garagelab.distill.flops import PAPER_FLOPS, FlopModel
from garagelab.distill.laws import CoefficientSet

# model sizes of the paper's runs (non-embedding parameters)
PAPER_SIZES = (143e6, 198e6, 266e6, 340e6, 546e6, 975e6, 1.82e9, 2.72e9, 4.82e9, 7.75e9, 12.6e9)
STUDENT_BUDGETS = (3e19, 1e20, 3e20, 1e21)
TOKENS_PER_PARAM = (20.0, 40.0, 80.0, 160.0, 320.0)


def simulate_supervised(
    coefficients: CoefficientSet,
    sizes: tuple[float, ...] = PAPER_SIZES,
    budgets: tuple[float, ...] = (1e19, 3e19, 1e20, 3e20, 1e21, 3e21),
    noise: float = 0.003,
    seed: int = 0,
    flops: FlopModel = PAPER_FLOPS,
) -> SupervisedRuns:
    """IsoFLOP profiles: every size at every budget that gives 1..1000 tokens per parameter."""
    n, c = np.meshgrid(np.asarray(sizes), np.asarray(budgets))
    n, d = n.ravel(), flops.tokens(n.ravel(), c.ravel())
    keep = (d / n >= 1.0) & (d / n <= 1000.0)
    n, d = n[keep], d[keep]
    rng = np.random.default_rng(seed)
    loss = coefficients.supervised_loss(n, d) * np.exp(rng.normal(0.0, noise, n.shape))
    return SupervisedRuns(n, d, loss)


def simulate_distillation(
    coefficients: CoefficientSet,
    runs: int = 697,
    teacher_sizes: tuple[float, ...] = PAPER_SIZES[1:10],
    student_sizes: tuple[float, ...] = PAPER_SIZES[:9],
    noise: float = 0.003,
    seed: int = 0,
    flops: FlopModel = PAPER_FLOPS,
) -> DistillationRuns:
    """Students of the paper's three protocols, `runs` of them drawn at random.

    Protocols (Sec. 4): fixed-M teachers (20 tokens/param) with IsoFLOP students; IsoFLOP
    teachers with fixed-M students; teachers of 20..320 tokens/param with fixed-M students.
    """
    rng = np.random.default_rng(seed)
    teachers = [(nt, 20.0 * nt) for nt in teacher_sizes]
    teachers += [(nt, flops.tokens(nt, c)) for nt in teacher_sizes[::2] for c in (1e20, 1e21)]
    teachers += [(nt, m * nt) for nt in teacher_sizes[1::3] for m in TOKENS_PER_PARAM[1:]]
    pool = []
    for nt, dt in teachers:
        for ns in student_sizes:
            students = [float(flops.tokens(ns, c)) for c in STUDENT_BUDGETS] + [m * ns for m in TOKENS_PER_PARAM]
            pool += [(ns, ds, nt, dt) for ds in students if 1.0 <= ds / ns <= 1000.0]
    pool_array = np.array(pool)
    pick = rng.choice(len(pool_array), size=runs, replace=runs > len(pool_array))
    ns, ds, nt, dt = pool_array[pick].T
    teacher_loss = coefficients.supervised_loss(nt, dt)
    loss = coefficients.student_loss(ns, ds, teacher_loss) * np.exp(rng.normal(0.0, noise, runs))
    return DistillationRuns(ns, ds, teacher_loss, loss, nt, dt)
