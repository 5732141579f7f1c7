"""Fit the constants nobody publishes to the numbers the paper does.

Wafer: cycles per MAC, the routing-stage cost beta and the per-step overhead (alpha stays at
the repository's one cycle per hop unless freed) are fitted, in log space, to Table 6 (GEMV
time), Table 4 (decode TPR) and Table 3 (prefill TPR), each table weighted equally. The clock
is an assumption, not a fit: the paper's code converts cycles at 1.1 GHz, Cerebras' examples
at 0.85 GHz; both are fitted and reported.

GPU: roofline efficiencies and per-layer / all-reduce latencies fitted to the A100 (SGLang)
rows of the same tables.

Every program involved compiles once to a closed form, so each trial costs microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares

from garagelab.wafer import gpu as gpu_model
from garagelab.wafer import paper
from garagelab.wafer.cost import Form, compile_form
from garagelab.wafer.device import A100, WSE2, DeviceModel, GPUModel
from garagelab.wafer.kernels import gemm, gemv
from garagelab.wafer.llm import compile_work, decode_token_work, plan, prefill_work
from garagelab.wafer.models import PAPER_MODELS

WSE_FITTED = ("macs_per_cycle", "beta", "op_overhead")
# beta >= 1 = alpha: the paper's PLMR model has a routing stage cost more than a hop
WSE_BOUNDS = {"macs_per_cycle": (0.125, 16.0), "beta": (1.0, 500.0), "op_overhead": (1.0, 5000.0), "alpha": (0.25, 8.0)}
GPU_FITTED = (
    "flops_efficiency",
    "bandwidth_efficiency",
    "layer_overhead_s",
    "allreduce_latency_s",
    "network_latency_s",
    "decode_tp_exponent",
    "prefill_tp_exponent",
    "distributed_call_s",
)
GPU_BOUNDS = {
    "decode_tp_exponent": (0.05, 1.0),
    "prefill_tp_exponent": (0.01, 1.0),
    "distributed_call_s": (1e-7, 1e-3),
    "flops_efficiency": (0.05, 1.0),
    "bandwidth_efficiency": (0.05, 1.0),
    "layer_overhead_s": (1e-7, 1e-3),
    "allreduce_latency_s": (1e-7, 1e-3),
    "network_latency_s": (1e-7, 5e-3),
}
GEMV_SIDES = tuple(range(240, 751, 30))


@dataclass(frozen=True)
class Comparison:
    table: str
    label: str
    paper: float
    ours: float

    @property
    def ratio(self) -> float:
        return self.ours / self.paper


@dataclass(frozen=True)
class Target:
    """A published number and how to predict it from a device."""

    table: str
    label: str
    paper: float
    predict: Callable[[DeviceModel], float]


def _fastest(forms: list[Form], device: DeviceModel) -> float:
    """Cycles on the best of several grids (the paper autotunes grids offline)."""
    return min(form.evaluate(device).cycles for form in forms)


def _efficiency(form: Form, device: DeviceModel) -> float:
    cost = form.evaluate(device)
    return cost.macs_per_core / device.macs_per_cycle / cost.cycles


def wse_targets(base: DeviceModel = WSE2) -> list[Target]:
    """The paper's WSE-2 numbers with the compiled programs that predict them."""
    targets = []
    for n in paper.GEMV_SIZES:
        forms = [compile_form(gemv("ktree", n, n, (s, s), broadcast=False).program) for s in GEMV_SIDES]
        targets.append(
            Target(
                "table6",
                f"GEMV {n // 1024}K (us)",
                paper.GEMV_WSE_US[n],
                lambda d, f=forms: _fastest(f, d) / d.clock_hz * 1e6,
            )
        )
    # priced per layer as the paper's numbers are (see tables._phase_seconds), on as many chips
    # as a model needs at each grid
    for name, model in PAPER_MODELS.items():
        for side, value in zip(paper.DECODE_GRIDS, paper.DECODE_TPR[name]["wse"], strict=True):
            wafer = plan(model, base, "decode", side, paper.DECODE_CONTEXT, chips=None)
            form = compile_work(decode_token_work(model, wafer, paper.DECODE_CONTEXT))
            targets.append(
                Target(
                    "table4", f"{name} decode {side}x{side}", value, lambda d, f=form: d.clock_hz / f.evaluate(d).cycles
                )
            )
        for side, value in zip(paper.PREFILL_GRIDS, paper.PREFILL_TPR[name]["wse"], strict=True):
            wafer = plan(model, base, "prefill", side, paper.PREFILL_INPUT, chips=None)
            form = compile_work(prefill_work(model, wafer, paper.PREFILL_INPUT))
            throughput = lambda d, f=form: paper.PREFILL_INPUT * d.clock_hz / f.evaluate(d).cycles  # noqa: E731
            targets.append(Target("table3", f"{name} prefill {side}x{side}", value, throughput))
    # Fig. 9: compute efficiency of an 8K GEMM on 720x720, as the text states it
    for algorithm, value in paper.FIG9_EFFICIENCY_720.items():
        form = compile_form(gemm(algorithm, 8192, 8192, 8192, (720, 720)).program)
        targets.append(
            Target("fig9", f"{algorithm} 8K GEMM efficiency at 720x720", value, lambda d, f=form: _efficiency(f, d))
        )
    # Fig. 10: MeshGEMV over the pipeline-allreduce GEMV, geometric mean over sizes and grids
    pairs = [
        (
            compile_form(gemv("pipeline", n, n, (s, s), broadcast=False).program),
            compile_form(gemv("ktree", n, n, (s, s), broadcast=False).program),
        )
        for n in paper.FIG10_SIZES
        for s in paper.FIG10_GRIDS
    ]
    targets.append(
        Target(
            "fig10",
            "MeshGEMV speed-up over pipeline GEMV",
            paper.FIG10_SPEEDUP,
            lambda d, p=pairs: float(
                np.exp(np.mean([np.log(a.evaluate(d).cycles / b.evaluate(d).cycles) for a, b in p]))
            ),
        )
    )
    return targets


def _weights(tables: list[str]) -> np.ndarray:
    """Each table counts equally, whatever its number of entries."""
    counts = {t: tables.count(t) for t in set(tables)}
    return np.array([1.0 / math.sqrt(counts[t]) for t in tables])


def fit_wse(
    base: DeviceModel = WSE2,
    clock_hz: float | None = None,
    free_alpha: bool = False,
    targets: list[Target] | None = None,
) -> tuple[DeviceModel, list[Comparison]]:
    """The device with its unpublished constants fitted, and paper-vs-ours for every target."""
    base = replace(base, clock_hz=clock_hz or base.clock_hz)
    targets = targets if targets is not None else wse_targets(base)
    names = (*WSE_FITTED, "alpha") if free_alpha else WSE_FITTED
    weights = _weights([t.table for t in targets])
    paper_log = np.log([t.paper for t in targets])

    def device_for(x: np.ndarray) -> DeviceModel:
        return replace(base, **{name: float(np.exp(v)) for name, v in zip(names, x, strict=True)})

    def residuals(x: np.ndarray) -> np.ndarray:
        device = device_for(x)
        return weights * (np.log([t.predict(device) for t in targets]) - paper_log)

    lower = np.log([WSE_BOUNDS[n][0] for n in names])
    upper = np.log([WSE_BOUNDS[n][1] for n in names])
    start = np.clip(np.log([getattr(base, n) for n in names]), lower + 1e-9, upper - 1e-9)
    fit = least_squares(residuals, start, bounds=(lower, upper), x_scale=1.0)
    device = device_for(fit.x)
    return device, compare(targets, device)


def compare(targets: list[Target], device: DeviceModel) -> list[Comparison]:
    """Paper against ours for every target, on a given device."""
    return [Comparison(t.table, t.label, t.paper, t.predict(device)) for t in targets]


@dataclass(frozen=True)
class Holdout:
    """One table's error with the constants fitted to every table (in-sample) and fitted to
    the others only (held out, i.e. predicted), and the constants of the held-out fit."""

    table: str
    in_sample: float
    held_out: float
    constants: dict[str, float]


def wse_holdouts(
    tables: list[str],
    in_sample: dict[str, float],
    clock_hz: float | None = None,
    free_alpha: bool = False,
    targets: list[Target] | None = None,
) -> list[Holdout]:
    """Leave-one-table-out refits of the wafer constants: how well each table is predicted by
    constants that never saw it, beside `in_sample` (error_by_table of the fit to every table)."""
    targets = targets if targets is not None else wse_targets()
    names = (*WSE_FITTED, "alpha")
    # started from the middle of the bounds, not from the shipped constants: those were fitted
    # with the held-out table, and a constant the other tables do not pin would keep its value
    neutral = replace(WSE2, **_middle(WSE_BOUNDS, names if free_alpha else WSE_FITTED))
    out = []
    for table in tables:
        rest = [t for t in targets if t.table != table]
        device, _ = fit_wse(neutral, clock_hz=clock_hz, free_alpha=free_alpha, targets=rest)
        held = error_by_table([c for c in compare(targets, device) if c.table == table])[table]
        out.append(Holdout(table, in_sample[table], held, {n: getattr(device, n) for n in names}))
    return out


def refit_devices(clock_hz: float | None = None, targets: list[Target] | None = None) -> list[DeviceModel]:
    """WSE-2 with its constants refitted without each of `paper.HOLDOUT_TABLES` in turn.

    Plots draw the range of a prediction over these devices as its band: how much the
    prediction depends on which tables pinned the constants (the held-out errors in the
    README say how far each refit misses the table it did not see). One refit per table,
    about 0.2 s for all of them once the programs are compiled.
    """
    targets = targets if targets is not None else wse_targets()
    _, comparisons = fit_wse(clock_hz=clock_hz, targets=targets)
    holdouts = wse_holdouts(list(paper.HOLDOUT_TABLES), error_by_table(comparisons), clock_hz, targets=targets)
    base = replace(WSE2, clock_hz=clock_hz or WSE2.clock_hz)
    return [replace(base, **h.constants) for h in holdouts]


def _gpu_predictions(gpu: GPUModel) -> list[tuple[str, str, float, float]]:
    out = []
    for size in paper.GEMV_SIZES:
        for count, value in zip(paper.DECODE_GPUS, paper.GEMV_A100_US[size], strict=True):
            out.append(
                (
                    "table6",
                    f"GEMV {size // 1024}K, {count} A100 (us)",
                    value,
                    gpu_model.gemv_seconds(size, gpu, count) * 1e6,
                )
            )
    for name, model in PAPER_MODELS.items():
        for count, value in zip(paper.DECODE_GPUS, paper.DECODE_TPR[name]["a100"], strict=True):
            if value is not None:
                tpot = gpu_model.decode_seconds(model, gpu, count, paper.DECODE_CONTEXT)
                out.append(("table4", f"{name} decode, {count} A100", value, 1.0 / tpot))
        for count, value in zip(paper.PREFILL_GPUS, paper.PREFILL_TPR[name]["a100"], strict=True):
            if value is not None:
                ttft = gpu_model.prefill_seconds(model, gpu, count, paper.PREFILL_INPUT)
                out.append(("table3", f"{name} prefill, {count} A100", value, paper.PREFILL_INPUT / ttft))
    return out


def fit_gpu(base: GPUModel = A100, holdout: str | None = None) -> tuple[GPUModel, list[Comparison]]:
    """The GPU with efficiencies and latencies fitted to the paper's SGLang rows (all but the
    `holdout` table's), and paper-vs-ours for every row."""
    tables = [row[0] for row in _gpu_predictions(base)]
    fitted = np.array([table != holdout for table in tables])
    weights = _weights([t for t in tables if t != holdout])

    def gpu_for(x: np.ndarray) -> GPUModel:
        return replace(base, **{name: float(np.exp(v)) for name, v in zip(GPU_FITTED, x, strict=True)})

    def residuals(x: np.ndarray) -> np.ndarray:
        rows = _gpu_predictions(gpu_for(x))
        return weights * np.log([row[3] / row[2] for row, keep in zip(rows, fitted, strict=True) if keep])

    lower = np.log([GPU_BOUNDS[n][0] for n in GPU_FITTED])
    upper = np.log([GPU_BOUNDS[n][1] for n in GPU_FITTED])
    start = np.clip(np.log([getattr(base, n) for n in GPU_FITTED]), lower + 1e-9, upper - 1e-9)
    fit = least_squares(residuals, start, bounds=(lower, upper))
    gpu = gpu_for(fit.x)
    return gpu, [Comparison(*row) for row in _gpu_predictions(gpu)]


def gpu_holdouts(tables: list[str], in_sample: dict[str, float]) -> list[Holdout]:
    """Leave-one-table-out refits of the A100 constants, beside `in_sample` (as in wse_holdouts)."""
    neutral = replace(A100, **_middle(GPU_BOUNDS, GPU_FITTED))  # as in wse_holdouts
    out = []
    for table in tables:
        gpu, comparisons = fit_gpu(neutral, holdout=table)
        held = error_by_table([c for c in comparisons if c.table == table])[table]
        out.append(Holdout(table, in_sample[table], held, {n: getattr(gpu, n) for n in GPU_FITTED}))
    return out


GPU_TABLES = ("table3", "table4", "table6")


def refit_gpus() -> list[GPUModel]:
    """The A100 model refitted without each table of its SGLang rows in turn (the GPU side of
    `refit_devices`, for bands on the baselines)."""
    _, comparisons = fit_gpu()
    holdouts = gpu_holdouts(list(GPU_TABLES), error_by_table(comparisons))
    return [replace(A100, **h.constants) for h in holdouts]


def _middle(bounds: dict[str, tuple[float, float]], names: tuple[str, ...]) -> dict[str, float]:
    """The geometric middle of each constant's bounds (the fits work in log space)."""
    return {name: math.sqrt(bounds[name][0] * bounds[name][1]) for name in names}


def error_by_table(comparisons: list[Comparison]) -> dict[str, float]:
    """Mean |log(ours / paper)| per table, as a relative error (exp - 1)."""
    tables: dict[str, list[float]] = {}
    for c in comparisons:
        tables.setdefault(c.table, []).append(abs(math.log(c.ratio)))
    return {table: math.expm1(float(np.mean(values))) for table, values in sorted(tables.items())}
