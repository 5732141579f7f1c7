"""The fitting objective of App. F for both laws: summed Huber loss on log residuals.

Written once against an array namespace `xp` (numpy, or jax.numpy for the jitted fast path)
and evaluated for a whole batch of parameter vectors at once. Each law gives its log
predictions and their derivatives by every coefficient, derived by hand so that numpy needs no
autodiff; the search's gradient is built from them (`huber_objective`), and so is the Jacobian
that the float64 polish and the fit's health check use (`LawSpec.jacobian`). Shapes: `theta`
(S, P) for S starts, each data column (1, M) for M runs, `weights` (1, M) or (S, M)
(bootstrap resamples are integer weights).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from garagelab.core.errors import UserError
from garagelab.distill.laws import DistillationLaw, SupervisedLaw

HUBER_DELTA = 1e-4
RESIDUAL_SCALES = ("log", "raw")


@dataclass(frozen=True)
class Loss:
    """How a residual is scored: Huber with `delta`, on log losses (the paper's and Epoch's
    convention) or on raw losses (nats)."""

    delta: float = HUBER_DELTA
    residuals: str = "log"

    def __post_init__(self) -> None:
        if not (self.delta > 0 and np.isfinite(self.delta)):
            raise UserError(f"the Huber delta must be a positive number, not {self.delta}")
        if self.residuals not in RESIDUAL_SCALES:
            raise UserError(f"residuals must be one of {', '.join(RESIDUAL_SCALES)}, not {self.residuals!r}")

    def label(self) -> str:
        return f"summed Huber (delta {self.delta:g}) on {self.residuals} residuals"


LOG_HUBER = Loss()

Objective = Callable[[Any, Any, Sequence[Any], Any, Loss], tuple[Any, Any]]


def _lse_sigmoid(xp: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """log(e^x + e^y) and sigmoid(x - y), sharing one exponential."""
    e = xp.exp(-xp.abs(x - y))
    inv = 1.0 / (1.0 + e)
    return xp.maximum(x, y) + xp.log1p(e), xp.where(x >= y, inv, e * inv)


def _huber(xp: Any, out: Any, log_y: Any, weights: Any, loss: Loss) -> tuple[Any, Any]:
    """Summed weighted Huber loss per start, and its derivative per log prediction `out`."""
    if loss.residuals == "log":
        r, scale = out - log_y, 1.0
    else:
        prediction = xp.exp(out)
        r, scale = prediction - xp.exp(log_y), prediction
    delta = loss.delta
    a = xp.abs(r)
    value = xp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return (weights * value).sum(axis=1), weights * xp.clip(r, -delta, delta) * scale


def _power_term(xp: Any, log_a: Any, log_b: Any, alpha: Any, beta: Any, log_n: Any, log_d: Any) -> tuple[Any, Any]:
    """log(A / N^alpha + B / D^beta) and the share of its first term, for both laws."""
    return _lse_sigmoid(xp, log_a - alpha * log_n, log_b - beta * log_d)


def _power_derivatives(q: Any, gamma: Any, share: Any, power: Any, log_n: Any, log_d: Any) -> list[Any]:
    """Per run, d/d(log A, log B, alpha, beta, gamma) of a log prediction whose derivative by
    gamma * power is q."""
    k1, k2 = q * gamma * share, q * gamma * (1.0 - share)
    return [k1, k2, -k1 * log_n, -k2 * log_d, q * power]


def supervised_predictions(xp: Any, theta: Any, arguments: Sequence[Any]) -> tuple[Any, list[Any]]:
    """Log losses of Eq. 1 (S, M) and their derivatives by each coefficient, one (S, M) array
    each. theta = (log A, log B, log E, alpha, beta, gamma); arguments = (log N, log D)."""
    log_n, log_d = arguments
    log_a, log_b, log_e, alpha, beta, gamma = (theta[:, k : k + 1] for k in range(6))
    power, share = _power_term(xp, log_a, log_b, alpha, beta, log_n, log_d)
    out, q = _lse_sigmoid(xp, gamma * power, log_e)
    d_log_a, d_log_b, d_alpha, d_beta, d_gamma = _power_derivatives(q, gamma, share, power, log_n, log_d)
    return out, [d_log_a, d_log_b, 1.0 - q, d_alpha, d_beta, d_gamma]


def distillation_predictions(xp: Any, theta: Any, arguments: Sequence[Any]) -> tuple[Any, list[Any]]:
    """Log losses of Eq. 8 and their derivatives, as `supervised_predictions`.
    theta = (log A', log B', alpha', beta', gamma', c0, c1, f1, log d1);
    arguments = (log N_S, log D_S, log L_T, log Lt_S)."""
    log_n, log_d, log_t, log_s = arguments
    log_a, log_b, alpha, beta, gamma, c0, c1, f1, log_d1 = (theta[:, k : k + 1] for k in range(9))
    power, share = _power_term(xp, log_a, log_b, alpha, beta, log_n, log_d)
    z = (log_t - log_s - log_d1) / f1
    gap, sz = _lse_sigmoid(xp, z, 0.0)
    inner = -c0 * log_t - c1 * f1 * gap + gamma * power
    out, q = _lse_sigmoid(xp, inner, log_t)
    return out, [
        *_power_derivatives(q, gamma, share, power, log_n, log_d),
        -q * log_t,
        -q * f1 * gap,
        -q * c1 * (gap - sz * z),
        q * c1 * sz,
    ]


Predictions = Callable[[Any, Any, Sequence[Any]], tuple[Any, list[Any]]]


def huber_objective(
    predictions: Predictions, xp: Any, theta: Any, data: Sequence[Any], weights: Any, loss: Loss
) -> tuple[Any, Any]:
    """The summed Huber loss of a law's log predictions per start (S,), and its gradient (S, P):
    each coefficient's derivative weighted by the loss's derivative and summed over runs.
    `data` is the law's arguments, then the observed log losses."""
    out, derivatives = predictions(xp, theta, data[:-1])
    f, dr = _huber(xp, out, data[-1], weights, loss)
    return f, xp.stack([(dr * d).sum(axis=1) for d in derivatives], axis=1)


@dataclass(frozen=True)
class LawSpec:
    """Everything the fitter needs to know about one law."""

    name: str
    params: tuple[str, ...]
    columns: tuple[str, ...]
    predictions: Predictions
    grid: tuple[tuple[float, ...], ...]
    to_law: Callable[[np.ndarray], Any]
    # "physical" bounds: exponents and gap coefficients non-negative, gamma and f1 off zero
    physical: dict[str, tuple[float, float]]

    def box(
        self, bounds: str | dict[str, tuple[float, float]] | None, fixed: dict[str, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) arrays from None (unbounded), "physical", or {param: (lo, hi)}, with
        the coefficients in `fixed` ({natural name: value}) pinned (lower = upper)."""
        lower, upper = self._bounds(bounds)
        for name, value in (fixed or {}).items():
            index, theta_value = self.parameter(name, value)
            if not lower[index] <= theta_value <= upper[index]:
                raise UserError(f"{self.name} law: {name} is fixed at {value:g}, outside its bounds; change --bounds")
            lower[index] = upper[index] = theta_value
        return lower, upper

    def parameter(self, name: str, value: float) -> tuple[int, float]:
        """The index in theta of coefficient `name` (natural units, e.g. "A" or "gamma"), and
        `value` in theta's units (log for A, B, E and d1)."""
        if name in self.params:
            return self.params.index(name), value
        if f"log_{name}" in self.params:
            if not value > 0:
                raise UserError(f"{self.name} law: {name} must be positive to be fixed, not {value:g}")
            return self.params.index(f"log_{name}"), float(np.log(value))
        known = ", ".join(p.removeprefix("log_") for p in self.params)
        raise UserError(f"the {self.name} law has no coefficient {name!r}; known: {known}")

    def _bounds(self, bounds: str | dict[str, tuple[float, float]] | None) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = np.full(len(self.params), -np.inf), np.full(len(self.params), np.inf)
        if bounds is None or bounds == "none":
            return lower, upper
        if bounds == "physical":
            bounds = self.physical
        if not isinstance(bounds, dict):
            raise UserError(f"bounds must be 'none', 'physical' or a dict of (low, high), not {bounds!r}")
        for name, (lo, hi) in bounds.items():
            if name not in self.params:
                raise UserError(f"bound on unknown {self.name} parameter {name!r}; known: {', '.join(self.params)}")
            index = self.params.index(name)
            lower[index], upper[index] = lo, hi
        return lower, upper

    def log_predictions(self, theta: np.ndarray, columns: Sequence[np.ndarray]) -> np.ndarray:
        """The law's log losses for the runs: data columns end with the observed log loss, and
        the ones before it are the law's arguments."""
        return self.to_law(theta).log_loss(*columns[:-1])

    @property
    def objective(self) -> Objective:
        """(xp, theta, data, weights, loss) -> (objective per start, gradient): what the search evaluates."""
        return partial(huber_objective, self.predictions)

    def jacobian(self, theta: np.ndarray, columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The runs' log predictions (M,) and their derivatives by theta (M, P), float64, in one
        pass: the polish's Jacobian and the health check's, the same derivatives the search's
        gradient is made of."""
        arguments = [np.asarray(column, dtype=float)[None, :] for column in columns[: len(self.columns) - 1]]
        with np.errstate(all="ignore"):
            out, derivatives = self.predictions(np, np.asarray(theta, dtype=float)[None, :], arguments)
        return out[0], np.stack([d[0] for d in derivatives], axis=1)

    def paper_grid(self) -> np.ndarray:
        """Every starting point of the paper's grid, as an (S, P) array."""
        return np.array(list(itertools.product(*self.grid)), dtype=float)


_LOG_AB = (0.0, 5.0, 10.0, 15.0, 20.0)

SUPERVISED = LawSpec(
    name="supervised",
    params=("log_A", "log_B", "log_E", "alpha", "beta", "gamma"),
    columns=("log_n", "log_d", "log_loss"),
    predictions=supervised_predictions,
    # 5 * 5 * 6 * 4^3 = 9,600 starts (App. F)
    grid=(_LOG_AB, _LOG_AB, (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5), *[(0.0, 0.5, 1.0, 1.5)] * 3),
    physical={"alpha": (0.0, np.inf), "beta": (0.0, np.inf), "gamma": (0.01, np.inf)},
    to_law=lambda t: SupervisedLaw(
        E=float(np.exp(t[2])),
        A=float(np.exp(t[0])),
        B=float(np.exp(t[1])),
        alpha=float(t[3]),
        beta=float(t[4]),
        gamma=float(t[5]),
    ),
)

DISTILLATION = LawSpec(
    name="distillation",
    params=("log_A", "log_B", "alpha", "beta", "gamma", "c0", "c1", "f1", "log_d1"),
    columns=("log_n", "log_d", "log_teacher", "log_supervised", "log_loss"),
    predictions=distillation_predictions,
    # 5 * 5 * 3^3 * 4^3 = 43,200 starts, as the paper counts them. Its listed log d1 values
    # would make the grid five times larger, so log d1 starts at 0 (d1 = 1, the middle of
    # that list, where the gap term switches for a teacher as good as the student).
    grid=(_LOG_AB, _LOG_AB, *[(0.0, 0.5, 1.0)] * 3, *[(0.0, 0.5, 1.0, 1.5)] * 3, (0.0,)),
    physical={
        "alpha": (0.0, np.inf),
        "beta": (0.0, np.inf),
        "gamma": (0.01, np.inf),
        "c0": (0.0, np.inf),
        "c1": (0.0, np.inf),
        "f1": (0.01, np.inf),
    },
    to_law=lambda t: DistillationLaw(
        A=float(np.exp(t[0])),
        B=float(np.exp(t[1])),
        alpha=float(t[2]),
        beta=float(t[3]),
        gamma=float(t[4]),
        c0=float(t[5]),
        c1=float(t[6]),
        f1=float(t[7]),
        d1=float(np.exp(t[8])),
    ),
)


def law_to_theta(law: SupervisedLaw | DistillationLaw) -> np.ndarray:
    """The fitting parameter vector of a law (inverse of `LawSpec.to_law`)."""
    if isinstance(law, SupervisedLaw):
        return np.array([np.log(law.A), np.log(law.B), np.log(law.E), law.alpha, law.beta, law.gamma])
    return np.array(
        [
            np.log(law.A),
            np.log(law.B),
            law.alpha,
            law.beta,
            law.gamma,
            law.c0,
            law.c1,
            law.f1,
            np.log(law.d1),
        ]
    )
