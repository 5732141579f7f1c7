"""The supervised (Eq. 1) and distillation (Eq. 8) scaling laws of Busbridge et al. (2025).

Both are evaluated in log-sum-exp form, which stays finite where the plain formula overflows
(tiny exponents, huge A or B during fitting):

    log L   = LSE(log E, gamma * LSE(log A - alpha log N, log B - beta log D))
    log L_S = LSE(log L_T, -c0 log L_T - c1 f1 LSE(0, (log L_T - log Lt_S - log d1) / f1)
                           + gamma' LSE(log A' - alpha' log N_S, log B' - beta' log D_S))

where Lt_S = L(N_S, D_S) is the student's supervised loss. N counts non-embedding parameters,
D tokens, losses are cross-entropies in nats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from garagelab.distill.flops import PAPER_FLOPS, FlopModel


class _PowerTerm:
    """What both laws share: the term (A / N^alpha + B / D^beta)^gamma, in log form."""

    A: float
    B: float
    alpha: float
    beta: float
    gamma: float

    def log_power(self, log_n: ArrayLike, log_d: ArrayLike) -> np.ndarray:
        """log(A / N^alpha + B / D^beta), by log-sum-exp (A or B of 0, as a bootstrap refit far
        out on a ridge can give, drops its term)."""
        with np.errstate(divide="ignore"):
            log_a, log_b = np.log(self.A), np.log(self.B)
        return np.logaddexp(log_a - self.alpha * np.asarray(log_n), log_b - self.beta * np.asarray(log_d))

    @property
    def a(self) -> float:
        """Exponent of the compute-optimal N* ~ C^a: beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of the compute-optimal D* ~ C^b: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class SupervisedLaw(_PowerTerm):
    """L(N, D) = E + (A / N^alpha + B / D^beta)^gamma."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    gamma: float

    def log_loss(self, log_n: ArrayLike, log_d: ArrayLike) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_e = np.log(self.E)
        return np.logaddexp(log_e, self.gamma * self.log_power(log_n, log_d))

    def loss(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        """Cross-entropy of a model with `n` parameters trained on `d` tokens (vectorised)."""
        return np.exp(self.log_loss(np.log(n), np.log(d)))


@dataclass(frozen=True)
class DistillationLaw(_PowerTerm):
    """Eq. 8: the student's loss given its size, its tokens and its teacher's loss."""

    A: float
    B: float
    alpha: float
    beta: float
    gamma: float
    c0: float
    c1: float
    f1: float
    d1: float

    def log_loss(
        self,
        log_n: ArrayLike,
        log_d: ArrayLike,
        log_teacher: ArrayLike,
        log_supervised: ArrayLike,
    ) -> np.ndarray:
        log_t, log_s = np.asarray(log_teacher), np.asarray(log_supervised)
        gap = np.logaddexp(0.0, (log_t - log_s - np.log(self.d1)) / self.f1)
        inner = -self.c0 * log_t - self.c1 * self.f1 * gap + self.gamma * self.log_power(log_n, log_d)
        return np.logaddexp(log_t, inner)


@dataclass(frozen=True)
class Domain:
    """The region the coefficients were fitted on; answers outside it are extrapolations."""

    n_min: float
    n_max: float
    tokens_per_param_min: float
    tokens_per_param_max: float
    teacher_loss_min: float
    teacher_loss_max: float

    def warnings(self, n: float, d: float, teacher_loss: float | None = None, what: str = "student") -> list[str]:
        """Human-readable notes for every way (n, d, L_T) leaves the fitted region."""
        notes = []
        if not self.n_min <= n <= self.n_max:
            notes.append(f"{what} size {n:.3g} is outside the fitted {self.n_min:.3g}..{self.n_max:.3g}")
        ratio = d / n
        if not self.tokens_per_param_min <= ratio <= self.tokens_per_param_max:
            notes.append(
                f"{what} tokens per parameter {ratio:.3g} is outside the fitted "
                f"{self.tokens_per_param_min:.3g}..{self.tokens_per_param_max:.3g}"
            )
        if teacher_loss is not None and not self.teacher_loss_min <= teacher_loss <= self.teacher_loss_max:
            notes.append(
                f"teacher loss {teacher_loss:.4g} is outside the fitted "
                f"{self.teacher_loss_min:.4g}..{self.teacher_loss_max:.4g}"
            )
        return notes

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class CoefficientSet:
    """A supervised law, a distillation law, where they hold, and the FLOP model that turns a
    compute budget into tokens for them: what predict and plan use."""

    name: str
    supervised: SupervisedLaw
    distillation: DistillationLaw
    domain: Domain
    source: str = ""
    flops: FlopModel = PAPER_FLOPS
    # what the fit's health checks found, for every answer to repeat (empty: nothing, or built in)
    caveats: tuple[str, ...] = ()

    def supervised_loss(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        return self.supervised.loss(n, d)

    def student_loss(self, n_s: ArrayLike, d_s: ArrayLike, teacher_loss: ArrayLike) -> np.ndarray:
        """L_S(N_S, D_S, L_T), with Lt_S from this set's supervised law."""
        log_n, log_d = np.log(n_s), np.log(d_s)
        log_s = self.supervised.log_loss(log_n, log_d)
        return np.exp(self.distillation.log_loss(log_n, log_d, np.log(teacher_loss), log_s))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "supervised": self.supervised.to_dict(),
            "distillation": self.distillation.to_dict(),
            "domain": self.domain.to_dict(),
            "flops": asdict(self.flops),
            "caveats": list(self.caveats),
        }

    @classmethod
    def from_dict(cls, data: dict) -> CoefficientSet:
        return cls(
            name=data["name"],
            source=data.get("source", ""),
            supervised=SupervisedLaw(**data["supervised"]),
            distillation=DistillationLaw(**data["distillation"]),
            domain=Domain(**data["domain"]),
            flops=FlopModel(**data.get("flops", {})),
            caveats=tuple(data.get("caveats", ())),
        )


BUSBRIDGE2025 = CoefficientSet(
    name="busbridge2025",
    source="Busbridge et al. 2025, Distillation Scaling Laws, Table 6 (arXiv 2502.08606)",
    supervised=SupervisedLaw(E=1.220, A=3355.0, B=18186.0, alpha=0.408, beta=0.431, gamma=0.452),
    distillation=DistillationLaw(
        A=2243.0,
        B=24181.0,
        alpha=0.321,
        beta=0.637,
        gamma=0.764,
        c0=2.549,
        c1=522.6,
        f1=0.090,
        d1=1.315,
    ),
    # Approximate: models of 143M..12.6B parameters on a few billion to 512B tokens (Sec. 4),
    # teachers from about L(198M, 20 tok/param) = 2.79 down to L(7.75B, 512B) = 1.93 nats.
    domain=Domain(
        n_min=1.43e8,
        n_max=1.26e10,
        tokens_per_param_min=1.0,
        tokens_per_param_max=1000.0,
        teacher_loss_min=1.9,
        teacher_loss_max=3.3,
    ),
)

# The paper's 90% bootstrap intervals (Table 6) for the coefficients that have one. Used to
# sample plausible coefficient sets when no bootstrap samples of our own exist.
BUSBRIDGE2025_INTERVALS: dict[str, dict[str, tuple[float, float]]] = {
    "supervised": {"A": (3346.0, 3360.0), "B": (18157.0, 18236.0), "E": (1.190, 1.247)},
    "distillation": {"A": (2227.0, 2255.0), "B": (24084.0, 24266.0), "c0": (2.425, 2.615)},
}

BUILTIN = {BUSBRIDGE2025.name: BUSBRIDGE2025}
