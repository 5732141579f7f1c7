"""The compute model of the paper (Eq. 9, App. H.1): forward FLOPs per token and scenario costs.

The paper does not use F = 2N: with a fixed aspect ratio, attention over the context and the
unembedding add terms that are 7-40% of 2N at the sizes studied,

    F(N) = 2N (1 + sigma1 n_ctx / N^(1/3) + sigma2 n_vocab / N^(2/3)),
    sigma1 = (rho omega^2)^(-1/3),  sigma2 = (rho / omega)^(1/3),

and training costs 3F(N) per token (backward = 2x forward). Distillation costs

    FLOPs = 3F(N_S) D_S + F(N_T) (delta_logits D_S + delta_pretrain 3 D_T).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from garagelab.core.errors import UserError


@dataclass(frozen=True)
class FlopModel:
    """F(N) for fixed-aspect-ratio transformers (defaults: the paper's App. H.1 setting)."""

    n_ctx: float = 4096
    n_vocab: float = 32168
    aspect_ratio: float = 128.0  # rho = d_model / n_layers
    omega: float = 12.0  # 2 + 2/g + n_ffn rho_ffn for MHA and SwiGLU (n_ffn=3, rho_ffn=8/3)

    @property
    def sigma1(self) -> float:
        return (self.aspect_ratio * self.omega**2) ** (-1.0 / 3.0)

    @property
    def sigma2(self) -> float:
        return (self.aspect_ratio / self.omega) ** (1.0 / 3.0)

    def forward(self, n: ArrayLike) -> np.ndarray:
        """Forward FLOPs per token of a model with `n` non-embedding parameters."""
        n = np.asarray(n, dtype=float)
        return 2.0 * n * (1.0 + self.sigma1 * self.n_ctx / np.cbrt(n) + self.sigma2 * self.n_vocab / np.cbrt(n) ** 2)

    def train(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        """FLOPs to train `n` parameters on `d` tokens: 3 F(N) D."""
        return 3.0 * self.forward(n) * np.asarray(d, dtype=float)

    def tokens(self, n: ArrayLike, flops: ArrayLike) -> np.ndarray:
        """Tokens that `flops` buys for a model of `n` parameters."""
        return np.asarray(flops, dtype=float) / (3.0 * self.forward(n))


PAPER_FLOPS = FlopModel()


@dataclass(frozen=True)
class Scenario:
    """Which teacher costs count (Table 2): logits (inference) and/or pretraining."""

    name: str
    delta_logits: float
    delta_pretrain: float
    meaning: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("best-case", 0, 0, "teacher fully amortised; its loss can be chosen freely"),
        Scenario("teacher-inference", 1, 0, "teacher exists; pay for its logits"),
        Scenario("teacher-pretraining", 0, 1, "train the teacher; logits stored and reused"),
        Scenario("teacher-pretraining-inference", 1, 1, "train the teacher and pay for its logits"),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UserError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}") from None


@dataclass(frozen=True)
class ComputeSplit:
    """Where the FLOPs of one distillation go."""

    student: float
    logits: float
    teacher: float

    @property
    def total(self) -> float:
        return self.student + self.logits + self.teacher

    def fractions(self) -> dict[str, float]:
        total = self.total
        return {
            k: v / total
            for k, v in (
                ("student", self.student),
                ("logits", self.logits),
                ("teacher", self.teacher),
            )
        }


def distillation_compute(
    n_s: float,
    d_s: float,
    n_t: float,
    d_t: float,
    scenario: Scenario,
    students: float = 1.0,
    flops: FlopModel = PAPER_FLOPS,
) -> ComputeSplit:
    """Eq. 9, with the teacher's pretraining shared by `students` students."""
    return ComputeSplit(
        student=float(flops.train(n_s, d_s)),
        logits=float(scenario.delta_logits * flops.forward(n_t) * d_s),
        teacher=float(scenario.delta_pretrain * flops.train(n_t, d_t) / students),
    )
