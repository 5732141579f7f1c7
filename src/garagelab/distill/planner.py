"""Compute planning: distil or pretrain, with which teacher, on how many tokens.

Given a student size and a budget (FLOPs, or student tokens), the planner compares the best
supervised run with the best distillation the scenario allows (Table 2) and says which wins
by how much. The compute constraint of Eq. 9 is met exactly by construction: with teacher
pretraining the search runs over (N_T, share of compute for the teacher), otherwise over
(N_T, D_T); a dense grid finds the basin and Nelder-Mead refines it (the paper used SLSQP;
the reparameterisation avoids its constraint handling). Sizes and tokens stay in 1M..100P,
the paper's bounds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import brentq, minimize, minimize_scalar

from garagelab.core.errors import UserError
from garagelab.distill.flops import (
    PAPER_FLOPS,
    ComputeSplit,
    FlopModel,
    Scenario,
    distillation_compute,
    get_scenario,
)
from garagelab.distill.laws import CoefficientSet
from garagelab.distill.predict import optimal_teacher_loss

BOUNDS = (1e6, 1e17)  # sizes and tokens, as the paper bounds its planner
NAN = float("nan")


@dataclass(frozen=True)
class Teacher:
    """An existing teacher: its loss, or its size and tokens (loss from the supervised law)."""

    loss: float = NAN
    n: float = NAN
    d: float = NAN
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> Teacher:
        """From `L_T=2.3,N_T=7.75e9` or `N_T=7.75e9,D_T=1.55e11` (optionally `name=...`)."""
        keys = {"L_T": "loss", "N_T": "n", "D_T": "d", "name": "name"}
        values: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            if not sep or key.strip() not in keys:
                raise UserError(f"teacher {text!r}: expected key=value pairs with keys {', '.join(keys)}")
            field_name = keys[key.strip()]
            if field_name == "name":
                values[field_name] = raw.strip()
                continue
            try:
                number = float(raw)
            except ValueError:
                raise UserError(f"teacher {text!r}: {key}={raw!r} is not a number") from None
            if not number > 0 or math.isinf(number):
                raise UserError(f"teacher {text!r}: {key} must be a positive number")
            values[field_name] = number
        teacher = cls(**values)  # type: ignore[arg-type]
        if math.isnan(teacher.loss) and (math.isnan(teacher.n) or math.isnan(teacher.d)):
            raise UserError(f"teacher {text!r}: give L_T, or both N_T and D_T")
        return teacher

    def resolved_loss(self, coefficients: CoefficientSet) -> float:
        """The teacher's loss: given, or the supervised law's at its size. A given loss at or
        below the law's irreducible loss E is refused: no model of this data reaches it, and the
        distillation law fed one prints confident nonsense (L_T = 0.5 under E = 1.69 gave a
        student loss of 13.7)."""
        if math.isnan(self.loss):
            return float(coefficients.supervised_loss(self.n, self.d))
        floor = coefficients.supervised.E
        if self.loss <= floor:
            raise UserError(
                f"teacher {self.label()}: L_T={self.loss:.4g} is at or below the irreducible loss E={floor:.4g} of "
                "these coefficients, which no model of this data reaches; is it measured on the same data and "
                "tokenizer? (or give N_T and D_T)"
            )
        return self.loss

    def label(self) -> str:
        parts = [f"L_T={self.loss:.4g}"] if not math.isnan(self.loss) else []
        parts += [f"N_T={self.n:.3g}"] if not math.isnan(self.n) else []
        parts += [f"D_T={self.d:.3g}"] if not math.isnan(self.d) else []
        return self.name or ", ".join(parts)


@dataclass(frozen=True)
class Option:
    """One way to spend the budget, and the loss the laws predict for it."""

    method: str
    loss: float
    student_tokens: float
    compute: ComputeSplit
    teacher: str = ""
    teacher_loss: float = NAN
    teacher_size: float = NAN
    teacher_tokens: float = NAN
    # the teacher is pinned by its loss (given, or the best-case optimum), not by (N_T, D_T)
    teacher_by_loss: bool = False


@dataclass(frozen=True)
class Plan:
    """The planner's answer for one student and budget."""

    coefficients: str
    scenario: str
    student_size: float
    students: float
    budget_flops: float
    budget_tokens: float
    supervised: Option
    distillation: Option
    margin_interval: tuple[float, float] | None = None
    p_distill_better: float | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def margin(self) -> float:
        """Supervised loss minus distilled loss: positive when distillation wins."""
        return self.supervised.loss - self.distillation.loss

    @property
    def verdict(self) -> str:
        return "distill" if self.margin > 0 else "pretrain"

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("supervised", "distillation"):
            data[key]["compute"] = {
                **data[key]["compute"],
                "total": getattr(self, key).compute.total,
            }
        data.update(verdict=self.verdict, margin=self.margin)
        return data


def cheapest_teacher(
    coefficients: CoefficientSet,
    target_loss: float,
    flops: FlopModel = PAPER_FLOPS,
    bounds: tuple[float, float] = BOUNDS,
) -> tuple[float, float]:
    """The (N_T, D_T) that reaches `target_loss` with the least pretraining compute."""
    law = coefficients.supervised
    gap = target_loss - law.E
    if gap <= 0:
        raise UserError(f"teacher loss {target_loss:.4g} is below the irreducible loss E={law.E:.4g}")
    need = gap ** (1.0 / law.gamma)

    def tokens(log_n: float) -> float:
        rest = need - law.A * math.exp(-law.alpha * log_n)
        return (law.B / rest) ** (1.0 / law.beta) if rest > 0 else math.inf

    log_n_min = math.log(law.A / need) / law.alpha + 1e-9
    lo = max(log_n_min, math.log(bounds[0]))
    if lo >= math.log(bounds[1]):
        raise UserError(f"no teacher within {bounds[1]:.3g} parameters reaches a loss of {target_loss:.4g}")
    result = minimize_scalar(
        lambda log_n: math.log(float(flops.train(math.exp(log_n), tokens(log_n)))) if tokens(log_n) < math.inf else 1e9,
        bounds=(lo, math.log(bounds[1])),
        method="bounded",
    )
    n = math.exp(result.x)
    return n, tokens(result.x)


def _free_teacher_search(
    coefficients: CoefficientSet,
    n_s: float,
    budget: float,
    scenario: Scenario,
    students: float,
    flops: FlopModel,
    bounds: tuple[float, float],
) -> tuple[float, float, float]:
    """(N_T, D_T, D_S) minimising L_S for a teacher trained (or chosen) within the budget."""
    f_s = float(flops.forward(n_s))
    log_lo, log_hi = math.log(bounds[0]), math.log(bounds[1])
    pretrain = scenario.delta_pretrain > 0

    def config(log_nt: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # an absurd input (1e300 students, a context of 1e300) overflows to inf tokens: out of
        # range below, and the refusal says so, without numpy's warning on the way
        with np.errstate(over="ignore"):
            nt = np.exp(log_nt)
            f_t = flops.forward(nt)
            if pretrain:
                share = 1.0 / (1.0 + np.exp(-v))
                dt = share * budget * students / (3.0 * f_t * scenario.delta_pretrain)
                ds = (1.0 - share) * budget / (3.0 * f_s + scenario.delta_logits * f_t)
            else:
                dt = np.exp(v)
                ds = budget / (3.0 * f_s + scenario.delta_logits * f_t) * np.ones_like(nt)
        return nt, dt, ds

    def loss(log_nt: np.ndarray, v: np.ndarray) -> np.ndarray:
        nt, dt, ds = config(log_nt, v)
        inside = (dt >= bounds[0]) & (dt <= bounds[1]) & (ds >= bounds[0]) & (ds <= bounds[1])
        with np.errstate(all="ignore"):
            value = coefficients.student_loss(n_s, ds, coefficients.supervised_loss(nt, dt))
        return np.where(inside & np.isfinite(value), value, np.inf)

    v_range = (-25.0, 25.0) if pretrain else (log_lo, log_hi)
    grid_nt, grid_v = np.meshgrid(np.linspace(log_lo, log_hi, 241), np.linspace(*v_range, 241))
    values = loss(grid_nt.ravel(), grid_v.ravel())
    if not np.isfinite(values).any():
        raise UserError(_no_split(budget, n_s, *config(grid_nt.ravel(), grid_v.ravel())[1:], bounds))
    best = int(np.argmin(values))
    start = np.array([grid_nt.ravel()[best], grid_v.ravel()[best]])

    def objective(p: np.ndarray) -> float:
        log_nt = float(np.clip(p[0], log_lo, log_hi))
        return float(loss(np.array([log_nt]), np.array([p[1]]))[0])

    result = minimize(
        objective,
        start,
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-12, "maxiter": 4000},
    )
    p = result.x if result.fun <= values[best] else start
    nt, dt, ds = config(np.array([np.clip(p[0], log_lo, log_hi)]), np.array([p[1]]))
    return float(nt[0]), float(dt[0]), float(ds[0])


def _no_split(budget: float, n_s: float, dt: np.ndarray, ds: np.ndarray, bounds: tuple[float, float]) -> str:
    """Why no teacher the search tries prices a plan: the token counts the budget leaves, against
    the range both must be in (a budget too large is as out of range as one too small)."""
    within = f"both must be within {bounds[0]:.3g}..{bounds[1]:.3g} tokens, the range the paper bounds its planner to"
    if (ds < bounds[0]).all():
        return f"a budget of {budget:.3g} FLOPs leaves a student of {n_s:.3g} at most {ds.max():.3g} tokens: {within}"
    if (ds > bounds[1]).all():
        return f"a budget of {budget:.3g} FLOPs gives a student of {n_s:.3g} at least {ds.min():.3g} tokens: {within}"
    student_in = (ds >= bounds[0]) & (ds <= bounds[1])
    teacher = dt[student_in]
    if ((teacher < bounds[0]) | (teacher > bounds[1])).all():
        return (
            f"a budget of {budget:.3g} FLOPs has no split for a student of {n_s:.3g}: where the student's tokens "
            f"are in range, the teacher's are {teacher.min():.3g}..{teacher.max():.3g}; {within}"
        )
    return f"the law gives no finite student loss for a student of {n_s:.3g} at any split of {budget:.3g} FLOPs"


def _student_tokens(
    budget: float,
    n_s: float,
    teacher: Teacher,
    scenario: Scenario,
    students: float,
    flops: FlopModel,
) -> float:
    """D_S that an existing teacher leaves within the budget (Eq. 9 solved for D_S)."""
    f_t = 0.0 if math.isnan(teacher.n) else float(flops.forward(teacher.n))
    if scenario.delta_logits and math.isnan(teacher.n):
        raise UserError(f"teacher {teacher.label()}: scenario {scenario.name} pays for logits and needs N_T")
    if scenario.delta_pretrain and (math.isnan(teacher.n) or math.isnan(teacher.d)):
        raise UserError(
            f"teacher {teacher.label()}: scenario {scenario.name} pays for pretraining and needs N_T and D_T"
        )
    pretrain = 0.0 if not scenario.delta_pretrain else float(flops.train(teacher.n, teacher.d)) / students
    return (budget - scenario.delta_pretrain * pretrain) / (
        3.0 * float(flops.forward(n_s)) + scenario.delta_logits * f_t
    )


def _option(
    coefficients: CoefficientSet,
    n_s: float,
    d_s: float,
    teacher_loss: float,
    n_t: float,
    d_t: float,
    scenario: Scenario,
    students: float,
    flops: FlopModel,
    label: str,
    by_loss: bool,
) -> Option:
    compute = distillation_compute(
        n_s,
        d_s,
        0.0 if math.isnan(n_t) else n_t,
        0.0 if math.isnan(d_t) else d_t,
        scenario,
        students,
        flops,
    )
    return Option(
        method="distillation",
        loss=float(coefficients.student_loss(n_s, d_s, teacher_loss)),
        student_tokens=d_s,
        compute=compute,
        teacher=label,
        teacher_loss=teacher_loss,
        teacher_size=n_t,
        teacher_tokens=d_t,
        teacher_by_loss=by_loss,
    )


def plan(
    coefficients: CoefficientSet,
    student_size: float,
    *,
    compute: float | None = None,
    tokens: float | None = None,
    scenario: str = "teacher-pretraining-inference",
    teachers: Sequence[Teacher] = (),
    students: float = 1.0,
    samples: Sequence[CoefficientSet] = (),
    flops: FlopModel | None = None,
    bounds: tuple[float, float] = BOUNDS,
) -> Plan:
    """Distil or pretrain? The best of each for one student under a FLOP or token budget.

    `flops` defaults to the coefficient set's FLOP model (the paper's, or the one a fit stored).
    """
    flops = flops or coefficients.flops
    if (compute is None) == (tokens is None):
        raise UserError("give exactly one budget: compute (FLOPs) or tokens (student tokens)")
    for name, value in (
        ("student size", student_size),
        ("compute", compute),
        ("tokens", tokens),
        ("students", students),
    ):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise UserError(f"{name} must be a positive number, not {value}")
    chosen = get_scenario(scenario)
    n_s = float(student_size)
    f_s = float(flops.forward(n_s))
    d_sup = float(tokens) if tokens is not None else float(compute) / (3.0 * f_s)
    supervised = Option(
        method="supervised",
        loss=float(coefficients.supervised_loss(n_s, d_sup)),
        student_tokens=d_sup,
        compute=ComputeSplit(student=3.0 * f_s * d_sup, logits=0.0, teacher=0.0),
    )

    candidates: list[Option] = []
    for i, teacher in enumerate(teachers):
        lt = teacher.resolved_loss(coefficients)
        d_s = d_sup if tokens is not None else _student_tokens(float(compute), n_s, teacher, chosen, students, flops)
        if d_s < bounds[0]:
            continue  # this teacher's own costs leave no budget for the student
        label = teacher.label() if teacher.name else f"existing #{i + 1} ({teacher.label()})"
        by_loss = not math.isnan(teacher.loss)
        candidates.append(
            _option(
                coefficients,
                n_s,
                d_s,
                lt,
                teacher.n,
                teacher.d,
                chosen,
                students,
                flops,
                label,
                by_loss,
            )
        )
    if teachers and not candidates:
        raise UserError(f"no given teacher leaves the student {bounds[0]:.3g} tokens within the budget")

    if not teachers:
        if tokens is not None or (chosen.delta_logits == 0 and chosen.delta_pretrain == 0):
            # no compute trade-off for the teacher: take the best teacher loss, cheapest teacher
            d_s = d_sup
            # the best teacher that fits the bounds: at most 100P parameters on 100P tokens
            reachable = float(coefficients.supervised_loss(bounds[1], bounds[1]))
            best = optimal_teacher_loss(coefficients, n_s, d_s, floor=reachable)
            n_t, d_t = cheapest_teacher(coefficients, best.teacher_loss, flops, bounds)
            label = f"any teacher with L_T={best.teacher_loss:.4g} (cheapest: N_T={n_t:.3g}, D_T={d_t:.3g})"
            candidates.append(
                _option(
                    coefficients,
                    n_s,
                    d_s,
                    best.teacher_loss,
                    n_t,
                    d_t,
                    chosen,
                    students,
                    flops,
                    label,
                    True,
                )
            )
        else:
            n_t, d_t, d_s = _free_teacher_search(coefficients, n_s, float(compute), chosen, students, flops, bounds)
            lt = float(coefficients.supervised_loss(n_t, d_t))
            label = (
                f"train N_T={n_t:.3g} on D_T={d_t:.3g}" if chosen.delta_pretrain else f"N_T={n_t:.3g} on D_T={d_t:.3g}"
            )
            candidates.append(_option(coefficients, n_s, d_s, lt, n_t, d_t, chosen, students, flops, label, False))
    distillation = min(candidates, key=lambda o: o.loss)

    warnings = list(coefficients.caveats)
    warnings += coefficients.domain.warnings(n_s, d_sup, what="supervised student")
    warnings += coefficients.domain.warnings(
        n_s, distillation.student_tokens, distillation.teacher_loss, what="distilled student"
    )
    if not math.isnan(distillation.teacher_size) and not math.isnan(distillation.teacher_tokens):
        warnings += coefficients.domain.warnings(distillation.teacher_size, distillation.teacher_tokens, what="teacher")
    interval, p_better = _margin_spread(samples, n_s, supervised, distillation)
    if interval is not None and interval[0] < 0 < interval[1]:
        warnings.append("the margin's interval contains 0: the verdict is within the coefficients' uncertainty")
    return Plan(
        coefficients=coefficients.name,
        scenario=chosen.name,
        student_size=n_s,
        students=students,
        budget_flops=float(compute) if compute is not None else NAN,
        budget_tokens=float(tokens) if tokens is not None else NAN,
        supervised=supervised,
        distillation=distillation,
        margin_interval=interval,
        p_distill_better=p_better,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _margin_spread(
    samples: Sequence[CoefficientSet], n_s: float, supervised: Option, distillation: Option
) -> tuple[tuple[float, float] | None, float | None]:
    """90% interval of the margin, and how often distillation wins, across coefficient samples."""
    if not samples:
        return None, None
    margins = []
    for sample in samples:
        lt = (
            distillation.teacher_loss
            if distillation.teacher_by_loss
            else float(sample.supervised_loss(distillation.teacher_size, distillation.teacher_tokens))
        )
        sup = float(sample.supervised_loss(n_s, supervised.student_tokens))
        dist = float(sample.student_loss(n_s, distillation.student_tokens, lt))
        margins.append(sup - dist)
    margins_array = np.array(margins)
    return (float(np.percentile(margins_array, 5)), float(np.percentile(margins_array, 95))), float(
        (margins_array > 0).mean()
    )


def catch_up_compute(
    coefficients: CoefficientSet,
    student_size: float,
    scenario: str,
    budgets: tuple[float, float] = (1e17, 1e27),
    students: float = 1.0,
    flops: FlopModel | None = None,
) -> float:
    """The compute beyond which supervised training matches compute-optimal distillation (Fig. 8).

    NaN when distillation never wins in the range (or still wins at its top).
    """

    def margin(log_c: float) -> float:
        return plan(
            coefficients, student_size, compute=math.exp(log_c), scenario=scenario, students=students, flops=flops
        ).margin

    grid = np.linspace(math.log(budgets[0]), math.log(budgets[1]), 41)
    values = np.array([margin(c) for c in grid])
    change = np.flatnonzero((values[:-1] > 0) & (values[1:] <= 0))
    if not change.size:
        return NAN
    i = int(change[0])
    return math.exp(brentq(margin, grid[i], grid[i + 1], xtol=1e-6))
