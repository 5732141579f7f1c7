"""Design-space sweeps beyond the paper: where decode and prefill speed move with SRAM per
core, region size, routing costs and batch, and how many routes each GEMM needs."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from garagelab.core import plots
from garagelab.core.errors import UserError
from garagelab.wafer import gpu as gpus
from garagelab.wafer.device import DeviceModel, GPUModel
from garagelab.wafer.kernels import gemm
from garagelab.wafer.llm import phase_seconds, phase_work, plan, simulate
from garagelab.wafer.models import LLMConfig
from garagelab.wafer.program import route_usage

KB = 1024


def phase_tpr(
    model: LLMConfig, device: DeviceModel, phase: str, side: int, context: int, chips: int | None = 1
) -> float:
    """Tokens per second per request for one phase on side x side regions, on at most `chips`
    chips (None: as many as it needs; their links counted); NaN if it does not fit."""
    try:
        wafer = plan(model, device, phase, side, context, chips=chips)
    except UserError:
        return math.nan
    seconds = phase_seconds(model, wafer, phase_work(model, wafer, context), context, device)
    return 1 / seconds if phase == "decode" else context / seconds


def sram_by_side(model: LLMConfig, device: DeviceModel, phase: str, context: int, srams_kb, sides) -> np.ndarray:
    """TPR over (SRAM per core, region side)."""
    return np.array(
        [
            [phase_tpr(model, device.with_overrides(sram_bytes=s * KB), phase, side, context) for side in sides]
            for s in srams_kb
        ]
    )


def alpha_by_beta(model: LLMConfig, device: DeviceModel, side: int, context: int, alphas, betas) -> np.ndarray:
    """Decode TPR over (alpha, beta) at one region size."""
    return np.array(
        [
            [phase_tpr(model, device.with_overrides(alpha=a, beta=b), "decode", side, context) for b in betas]
            for a in alphas
        ]
    )


def routes_needed(sides, algorithms=("summa", "allgather", "cannon", "meshgemm")) -> dict[str, list[int]]:
    """Routes per core each GEMM algorithm needs on side x side meshes."""
    return {
        alg: [int(route_usage(gemm(alg, 512, 512, 512, (s, s)).program).max()) for s in sides] for alg in algorithms
    }


def batch_curves(model: LLMConfig, device: DeviceModel, gpu: GPUModel, batches, context: int, gpu_counts=(1, 8, 16)):
    """Per-request TPR and total throughput against batch, wafer and GPUs."""
    wafer = []
    for batch in batches:
        try:
            result = simulate(model, device, context, 1, batch=batch)
            wafer.append((result.decode_tpr, result.throughput))
        except UserError:
            wafer.append((math.nan, math.nan))
    curves = {f"{device.name}": wafer}
    for count in gpu_counts:
        if gpus.tensor_parallel_refusal(model, count):
            continue  # no such cluster: no curve
        points = []
        for batch in batches:  # a batch whose weights and KV cache the GPUs cannot hold is a gap, as on the wafer
            if gpus.memory_shortfall(model, gpu, count, context, batch):
                points.append((math.nan, math.nan))
                continue
            seconds = gpus.decode_seconds(model, gpu, count, context, batch)
            points.append((1 / seconds, batch / seconds))
        curves[f"{count} x {gpu.name}"] = points
    return curves


def heatmap(values: np.ndarray, rows, cols, row_label: str, col_label: str, title: str) -> Figure:
    fig, (ax,) = plots.figure(width=6.5, height=4.5)
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, origin="lower", aspect="auto", cmap=matplotlib.colormaps["viridis"])
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7, color="w")
    ax.grid(False)
    ax.set(xlabel=col_label, ylabel=row_label, title=title)
    fig.colorbar(image, ax=ax, label="tokens/s per request")
    return fig
