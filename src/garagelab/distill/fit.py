"""Fitting both laws as the paper does (App. F), plus bootstrap intervals and extrapolation.

Protocol: Huber loss (delta 1e-4) summed over log-space residuals, minimised by L-BFGS from
every point of a grid of starts (9,600 supervised, 43,200 distillation); the best end point
wins. All starts run together in `lbfgs.minimize_batch`; the best distinct end points are then
polished in float64 by least squares with scipy's Huber loss (`polish.py`), so the answer does
not depend on the float32 search.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from garagelab.core.errors import UserError
from garagelab.core.progress import ProgressBar
from garagelab.core.textfiles import read_user_text
from garagelab.distill.bootstrap import bootstrap_fit, intervals_from_samples
from garagelab.distill.data import DistillationRuns, SupervisedRuns
from garagelab.distill.evaluate import make_evaluator, resolve_backend
from garagelab.distill.flops import PAPER_FLOPS, FlopModel
from garagelab.distill.health import FitHealth, check_fit
from garagelab.distill.laws import CoefficientSet, DistillationLaw, Domain, SupervisedLaw
from garagelab.distill.lbfgs import SEARCH_FTOL_FLOOR, minimize_batch
from garagelab.distill.objective import DISTILLATION, HUBER_DELTA, LOG_HUBER, SUPERVISED, LawSpec, Loss
from garagelab.distill.polish import first_distinct, polish_many
from garagelab.distill.profile import profile_intervals
from garagelab.distill.stages import NOT_KEPT, Stages

# distinct local minima of the full fit that every bootstrap resample starts from
ANCHORS = 4
# None or "none": unbounded, as the paper's protocol reads; "physical"; or {param: (low, high)}
Bounds = str | dict[str, tuple[float, float]] | None


@dataclass(frozen=True)
class LawFit:
    """One fitted law: coefficients, objective, how the search went, and bootstrap spread."""

    law: str
    coefficients: dict[str, float]
    theta: tuple[float, ...]
    objective: float
    runs: int
    starts: int
    status: dict[str, int]
    backend: str
    seconds: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    bootstrap: tuple[tuple[float, ...], ...] = ()
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    # how it was fitted: Huber delta, log or raw residuals, coefficients held fixed
    conventions: dict[str, Any] = field(default_factory=dict)
    # how far to believe it (health.FitHealth as a dict; empty for fits saved before the checks)
    health: dict[str, Any] = field(default_factory=dict)
    # profile intervals with a simulated threshold (profile.ProfileInterval as dicts), by coefficient
    profile: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def spec(self) -> LawSpec:
        return SUPERVISED if self.law == "supervised" else DISTILLATION

    @property
    def loss(self) -> Loss:
        """The objective it was fitted with (fits saved before conventions were stored: the paper's)."""
        return Loss(self.conventions.get("huber_delta", HUBER_DELTA), self.conventions.get("residuals", "log"))

    @property
    def checks(self) -> FitHealth | None:
        return FitHealth.from_dict(self.health) if self.health else None

    def to_law(self) -> SupervisedLaw | DistillationLaw:
        return self.spec.to_law(np.asarray(self.theta))

    def bootstrap_laws(self) -> list[SupervisedLaw | DistillationLaw]:
        return [self.spec.to_law(np.asarray(t)) for t in self.bootstrap]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LawFit:
        data = dict(data)
        data["theta"] = tuple(data["theta"])
        data["intervals"] = {k: tuple(v) for k, v in data.get("intervals", {}).items()}
        data["bootstrap"] = tuple(tuple(t) for t in data.get("bootstrap", ()))
        data["bounds"] = {k: tuple(v) for k, v in data.get("bounds", {}).items()}
        return cls(**data)


@dataclass(frozen=True)
class FitResult:
    """Both laws (either may be missing), the data range they were fitted on, and the FLOP
    model that `plan` prices compute budgets with for these runs."""

    name: str
    supervised: LawFit | None
    distillation: LawFit | None
    domain: Domain | None
    flops: FlopModel = PAPER_FLOPS

    def coefficient_set(self) -> CoefficientSet:
        if self.supervised is None or self.distillation is None or self.domain is None:
            missing = "supervised" if self.supervised is None else "distillation"
            raise UserError(f"fit {self.name!r} has no {missing} law; predict and plan need both laws")
        return CoefficientSet(
            name=self.name,
            source=f"fitted by garagelab on {self.supervised.runs} + {self.distillation.runs} runs",
            supervised=self.supervised.to_law(),
            distillation=self.distillation.to_law(),
            domain=self.domain,
            flops=self.flops,
            caveats=tuple(
                health.line(fit.law)
                for fit in (self.supervised, self.distillation)
                if (health := fit.checks) is not None and health.verdict != "ok"
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "supervised": asdict(self.supervised) if self.supervised else None,
            "distillation": asdict(self.distillation) if self.distillation else None,
            "domain": asdict(self.domain) if self.domain else None,
            "flops": asdict(self.flops),
        }

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: Path | str) -> FitResult:
        path = Path(path)
        try:
            data = json.loads(read_user_text(path))
            return cls(
                name=data["name"],
                supervised=LawFit.from_dict(data["supervised"]) if data.get("supervised") else None,
                distillation=LawFit.from_dict(data["distillation"]) if data.get("distillation") else None,
                domain=Domain(**data["domain"]) if data.get("domain") else None,
                flops=FlopModel(**data.get("flops", {})),
            )
        except FileNotFoundError:
            raise UserError(f"{path}: no such fit file; create one with `garagelab distill fit`") from None
        except (json.JSONDecodeError, IsADirectoryError, KeyError, TypeError) as exc:
            raise UserError(f"{path} is not a garagelab fit file ({exc}); refit with `garagelab distill fit`") from exc


def start_points(spec: LawSpec, starts: str | int, seed: int = 0) -> np.ndarray:
    """The paper's grid ("paper"), or `starts` points drawn from it at random."""
    grid = spec.paper_grid()
    if starts == "paper":
        return grid
    try:
        count = int(starts)
    except ValueError:
        raise UserError(f"starts must be 'paper' or a number of starts, not {starts!r}") from None
    if count < 1:
        raise UserError(f"starts must be at least 1, not {count}")
    if count >= len(grid):
        return grid
    return grid[np.random.default_rng(seed).choice(len(grid), count, replace=False)]


def fit_law(
    spec: LawSpec,
    columns: tuple[np.ndarray, ...],
    starts: str | int = "paper",
    backend: str = "auto",
    polish: int = 16,
    seed: int = 0,
    progress: bool = True,
    bounds: Bounds = None,
    fixed: dict[str, float] | None = None,
    loss: Loss = LOG_HUBER,
) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Multi-start fit of one law; returns best theta, its objective, and search statistics.

    `fixed` pins coefficients ({natural name: value}, e.g. {"gamma": 1.0}); the grid's starts
    are moved onto the pinned values and the duplicates this makes are dropped.
    """
    backend = resolve_backend(backend)
    box = spec.box(bounds, fixed)
    x0 = np.unique(np.clip(start_points(spec, starts, seed), *box), axis=0)
    evaluate = make_evaluator(spec, columns, backend=backend, loss=loss)
    t0 = time.perf_counter()
    with ProgressBar(len(x0), f"fit {spec.name} law", unit="starts", enabled=progress) as bar:
        result = minimize_batch(
            evaluate,
            x0,
            lower=box[0],
            upper=box[1],
            ftol_floor=SEARCH_FTOL_FLOOR,
            on_progress=lambda d, _: bar.update_to(d),
        )
    finite = np.flatnonzero(np.isfinite(result.f))
    if not finite.size:
        raise UserError(f"every start of the {spec.name} fit gave a non-finite loss; check the data")
    # polish the best distinct end points in float64, best first
    order = finite[np.argsort(result.f[finite])]
    candidates = order[first_distinct(result.x[order])][:polish]
    polished = list(polish_many([(spec, columns, result.x[index], box, loss, None) for index in candidates]))
    polished = sorted((p for p in polished if np.isfinite(p[1])), key=lambda p: p[1])
    if not polished:
        polished = [(result.x[order[0]], float(result.f[order[0]]))]
    points = np.array([theta for theta, _ in polished])
    minima = points[first_distinct(points)]
    stats = {
        "starts": len(x0),
        "status": result.status_counts(),
        "backend": backend,
        "seconds": time.perf_counter() - t0,
        "evaluations": int(result.evaluations.sum()),
        # the distinct polished end points, best first: every bootstrap resample starts from them
        "minima": minima,
    }
    return minima[0], polished[0][1], stats


def _law_fit(
    spec: LawSpec,
    columns: tuple[np.ndarray, ...],
    *,
    starts: str | int = "paper",
    bootstrap: int = 0,
    backend: str = "auto",
    seed: int = 0,
    progress: bool = True,
    bounds: Bounds = "physical",
    fixed: dict[str, float] | None = None,
    loss: Loss = LOG_HUBER,
    bootstrap_kind: str = "cases",
    resample_columns: tuple[np.ndarray, ...] | None = None,
    profile: int = 0,
    profile_coefficients: Sequence[str] = (),
    profile_at_ends: bool = False,
    stages: Stages = NOT_KEPT,
) -> LawFit:
    """Fit, then bootstrap on `resample_columns` if given (columns with a row per resample),
    and with `profile` simulated data sets, profile intervals of `profile_coefficients`
    (`profile_at_ends`: thresholds simulated at their ends too, `profile.profile_intervals`).
    Each of these stages is read back from `stages` where a killed run had finished it."""

    def search() -> dict[str, Any]:
        _, objective, stats = fit_law(
            spec, columns, starts, backend, seed=seed, progress=progress, bounds=bounds, fixed=fixed, loss=loss
        )
        return {**stats, "objective": objective, "minima": stats["minima"].tolist()}

    found = stages.get(f"{spec.name}.fit", search)
    stats = {**found, "minima": np.array(found["minima"])}
    theta, objective = stats["minima"][0], stats["objective"]
    lower, upper = spec.box(bounds, fixed)

    def resamples() -> list[list[float]]:
        refits = bootstrap_fit(
            spec,
            resample_columns or columns,
            stats["minima"][:ANCHORS],
            bootstrap,
            (lower, upper),
            backend=backend,
            seed=seed,
            loss=loss,
            kind=bootstrap_kind,
            progress=progress,
        )
        return refits.samples.tolist()

    samples = (
        np.array(stages.get(f"{spec.name}.bootstrap", resamples)).reshape(-1, len(theta))
        if bootstrap
        else np.empty((0, len(theta)))
    )
    profiled = (
        profile_intervals(
            spec,
            columns,
            stats["minima"],
            objective,
            (lower, upper),
            profile_coefficients,
            nulls=profile,
            at_ends=profile_at_ends,
            backend=backend,
            seed=seed,
            loss=loss,
            progress=progress,
            stages=stages,
        ).intervals
        if profile and profile_coefficients
        else {}
    )
    return LawFit(
        law=spec.name,
        coefficients=spec.to_law(theta).to_dict(),
        theta=tuple(float(v) for v in theta),
        objective=objective,
        runs=len(columns[0]),
        starts=stats["starts"],
        status=stats["status"],
        backend=stats["backend"],
        seconds=stats["seconds"],
        intervals=intervals_from_samples(spec, samples),
        bootstrap=tuple(tuple(float(v) for v in t) for t in samples),
        bounds={
            name: (None if np.isinf(lo) else float(lo), None if np.isinf(hi) else float(hi))
            for name, lo, hi in zip(spec.params, lower, upper, strict=True)
            if np.isfinite(lo) or np.isfinite(hi)
        },
        conventions={
            "huber_delta": loss.delta,
            "residuals": loss.residuals,
            "fixed": dict(fixed or {}),
            "bootstrap": bootstrap_kind,
        },
        health=check_fit(spec, theta, columns, (lower, upper), samples).to_dict(),
        profile={name: interval.to_dict() for name, interval in profiled.items()},
    )


def distillation_columns(runs: DistillationRuns, supervised: SupervisedLaw) -> tuple[np.ndarray, ...]:
    """(log N_S, log D_S, log L_T, log Lt_S, log L_S), with Lt_S from `supervised`."""
    log_n, log_d = np.log(runs.n), np.log(runs.d)
    return (
        log_n,
        log_d,
        np.log(runs.teacher_loss),
        supervised.log_loss(log_n, log_d),
        np.log(runs.loss),
    )


def supervised_bounds(bounds: str, min_e: float | None = None) -> Bounds:
    """`bounds` ("physical" or "none") for the supervised law, with E >= `min_e` if given."""
    if min_e is None:
        return bounds
    box = dict(SUPERVISED.physical) if bounds == "physical" else {}
    box["log_E"] = (float(np.log(min_e)), np.inf)
    return box


def fit_supervised(runs: SupervisedRuns, **options: Any) -> LawFit:
    """Fit Eq. 1 to supervised runs.

    Options: starts ("paper" or a count), bootstrap (resamples), backend, seed, progress,
    bounds ("physical", the default: exponents >= 0; None: unbounded; or {param: (lo, hi)}),
    and profile (simulated data sets) with profile_coefficients (e.g. ["gamma"]) and
    profile_at_ends.
    """
    if len(runs) < len(SUPERVISED.params):
        raise UserError(f"the supervised fit needs at least {len(SUPERVISED.params)} runs, got {len(runs)}")
    return _law_fit(SUPERVISED, runs.log_columns(), **options)


def fit_distillation(
    runs: DistillationRuns,
    supervised: SupervisedLaw,
    supervised_samples: Sequence[SupervisedLaw] = (),
    **options: Any,
) -> LawFit:
    """Fit Eq. 8 to distillation runs, with each student's supervised loss from `supervised`.

    Options as for `fit_supervised`. With `supervised_samples` (the supervised law's bootstrap
    refits), bootstrap resample i takes Lt_S from sample i (cycling), so the intervals carry
    the supervised law's uncertainty, and pairing the two laws' samples stays consistent.
    """
    if len(runs) < len(DISTILLATION.params):
        raise UserError(f"the distillation fit needs at least {len(DISTILLATION.params)} runs, got {len(runs)}")
    columns = distillation_columns(runs, supervised)
    resamples = options.get("bootstrap", 0)
    resample_columns = None
    if resamples and supervised_samples:
        log_s = np.stack(
            [supervised_samples[i % len(supervised_samples)].log_loss(columns[0], columns[1]) for i in range(resamples)]
        )
        resample_columns = (*columns[:3], log_s, columns[4])
    return _law_fit(DISTILLATION, columns, resample_columns=resample_columns, **options)


def fitted_domain(supervised: SupervisedRuns, distillation: DistillationRuns) -> Domain:
    """The region covered by the data, used to flag extrapolation."""
    n = np.concatenate([supervised.n, distillation.n])
    ratio = np.concatenate([supervised.d / supervised.n, distillation.d / distillation.n])
    lt = distillation.teacher_loss if len(distillation) else supervised.loss
    return Domain(
        n_min=float(n.min()),
        n_max=float(n.max()),
        tokens_per_param_min=float(ratio.min()),
        tokens_per_param_max=float(ratio.max()),
        teacher_loss_min=float(lt.min()),
        teacher_loss_max=float(lt.max()),
    )


@dataclass(frozen=True)
class Extrapolation:
    """Fit on the weaker runs (loss >= threshold), predict the stronger ones."""

    law: str
    threshold: float
    fitted_runs: int
    held_out: tuple[dict[str, float], ...]

    @property
    def errors(self) -> np.ndarray:
        return np.array([row["relative_error"] for row in self.held_out])

    def summary(self) -> dict[str, float]:
        errors = np.abs(self.errors)
        return {
            "law": self.law,
            "threshold": self.threshold,
            "fitted_runs": self.fitted_runs,
            "held_out_runs": len(errors),
            "mean_abs_rel_error": float(errors.mean()) if len(errors) else float("nan"),
            "max_abs_rel_error": float(errors.max()) if len(errors) else float("nan"),
        }


def extrapolate_supervised(runs: SupervisedRuns, threshold: float, **fit_options: Any) -> Extrapolation:
    weak = runs.loss >= threshold
    _check_split(weak, "supervised", threshold)
    law = fit_supervised(runs.subset(weak), **fit_options).to_law()
    strong = runs.subset(~weak)
    predicted = law.loss(strong.n, strong.d)
    rows = tuple(
        {"N": n, "D": d, "loss": y, "predicted": p, "relative_error": (p - y) / y}
        for n, d, y, p in zip(strong.n, strong.d, strong.loss, predicted, strict=True)
    )
    return Extrapolation("supervised", threshold, int(weak.sum()), rows)


def extrapolate_distillation(
    runs: DistillationRuns, supervised: SupervisedLaw, threshold: float, **fit_options: Any
) -> Extrapolation:
    weak = runs.loss >= threshold
    _check_split(weak, "distillation", threshold)
    law = fit_distillation(runs.subset(weak), supervised, **fit_options).to_law()
    strong = runs.subset(~weak)
    log_n, log_d, log_t, log_s, _ = distillation_columns(strong, supervised)
    predicted = np.exp(law.log_loss(log_n, log_d, log_t, log_s))
    rows = tuple(
        {"N_S": n, "D_S": d, "L_T": t, "loss": y, "predicted": p, "relative_error": (p - y) / y}
        for n, d, t, y, p in zip(strong.n, strong.d, strong.teacher_loss, strong.loss, predicted, strict=True)
    )
    return Extrapolation("distillation", threshold, int(weak.sum()), rows)


def _check_split(weak: np.ndarray, law: str, threshold: float) -> None:
    if weak.all() or not weak.any():
        side = "above" if weak.all() else "below"
        raise UserError(
            f"every {law} run has loss {side} the extrapolation threshold {threshold}; "
            "pick a threshold inside the range of losses"
        )
