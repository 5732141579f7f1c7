"""Figures for the wafer simulator: latency against mesh size, and the mesh as a heat-map.

A prediction plotted from the calibrated constants carries a band when it is given `spread`
(`calibrate.refit_devices`: the constants refitted without each paper table in turn): the
range of the same prediction over those refits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from garagelab.core import plots
from garagelab.wafer import gpu as gpus
from garagelab.wafer.cost import timestamps
from garagelab.wafer.device import DeviceModel, GPUModel
from garagelab.wafer.explore import phase_tpr
from garagelab.wafer.models import LLMConfig
from garagelab.wafer.program import MeshProgram

BAND_LABEL = "range over the constants refitted without each paper table"


def _band(ax: Axes, x: Sequence[float], curves: list[list[float]], color: str, label: str | None = None) -> None:
    """Shade between the lowest and highest of several curves (one per refitted device)."""
    if curves:
        values = np.array(curves, dtype=float)
        ax.fill_between(
            x, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=color, alpha=0.2, lw=0, label=label
        )


def decode_vs_grid_figure(
    model: LLMConfig,
    device: DeviceModel,
    gpu: GPUModel,
    sides,
    context: int,
    gpu_counts=(1, 8, 16),
    spread: Sequence[DeviceModel] = (),
    gpu_spread: Sequence[GPUModel] = (),
) -> Figure:
    """Decode TPR on the wafer against region size, with the GPU baselines as lines; bands
    over `spread` and `gpu_spread` (the refitted devices and GPUs)."""
    fig, (ax,) = plots.figure()

    def tpr(d: DeviceModel) -> list[float]:  # on as many chips as each grid needs
        return [phase_tpr(model, d, "decode", side, context, chips=None) for side in sides]

    shipped = tpr(device)
    line = ax.plot(sides, shipped, "-", label=f"{device.name} (simulated)")[0]
    one_chip = [phase_tpr(model, device, "decode", side, context) for side in sides]
    ax.plot(sides, one_chip, "o", color=line.get_color(), label="fits one chip")
    several = [np.nan if np.isfinite(one) else many for one, many in zip(one_chip, shipped, strict=True)]
    ax.plot(sides, several, "o", mfc="white", color=line.get_color(), label="needs several chips (links counted)")
    _band(ax, sides, [tpr(d) for d in spread], line.get_color(), BAND_LABEL)
    for i, count in enumerate(c for c in gpu_counts if not gpus.cannot_run(model, gpu, c, context)):
        value = 1 / gpus.decode_seconds(model, gpu, count, context)
        ax.axhline(value, ls="--", color="gray", lw=0.8)
        if gpu_spread:  # an error bar at the right edge: spans across the plot would overlap
            refits = [1 / gpus.decode_seconds(model, g, count, context) for g in gpu_spread]
            error = [[value - min(refits)], [max(refits) - value]]
            x = sides[-1] - 0.03 * i * (sides[-1] - sides[0])  # staggered, so bars do not hide each other
            ax.errorbar([x], [value], yerr=error, color="gray", capsize=3, lw=0.8)
        ax.text(sides[0], value * 1.08, f"{count} x {gpu.name}: {value:.0f}", fontsize=7)
    ax.set(
        yscale="log",
        xlabel="decode region side (cores)",
        ylabel="tokens/s per request",
        title=f"{model.name} decode, {context}-token context",
    )
    ax.legend(fontsize=8, loc="center")
    return fig


def mesh_heatmap_figure(program: MeshProgram, device: DeviceModel, title: str) -> Figure:
    """When each core finishes the program (timestamp model): the collective's shape on the mesh."""
    cost, clock = timestamps(program, device)
    fig, (ax,) = plots.figure(width=5.5, height=4.5)
    image = ax.imshow(clock, origin="lower", cmap="magma")
    ax.grid(False)
    ax.set(xlabel="x (core)", ylabel="y (core)", title=f"{title}: {cost.cycles:.0f} cycles")
    fig.colorbar(image, ax=ax, label="finish time (cycles)")
    return fig


def fig9_figure(rows: list[dict], spread: Sequence[list[dict]] = ()) -> Figure:
    """GEMM compute efficiency against mesh size, per algorithm and size; `spread`: the same
    rows computed on each refitted device."""
    fig, axes = plots.figure(ncols=len({r["GEMM"] for r in rows}), width=4.0)
    for ax, size in zip(axes, sorted({r["GEMM"] for r in rows}, key=lambda s: int(s[:-1])), strict=True):
        chosen = [r for r in rows if r["GEMM"] == size]
        sides = [int(r["mesh"].split("x")[0]) for r in chosen]
        for algorithm in ("meshgemm", "summa", "cannon"):
            key = f"{algorithm} efficiency"
            line = ax.plot(sides, [r[key] for r in chosen], "o-", label=algorithm)[0]
            _band(ax, sides, [[r[key] for r in other if r["GEMM"] == size] for other in spread], line.get_color())
        ax.set(xlabel="mesh side", ylabel="compute efficiency", title=f"{size} GEMM", ylim=(0, 1.05))
        ax.legend(fontsize=7)
    return fig


def fig10_figure(rows: list[dict], spread: Sequence[list[dict]] = ()) -> Figure:
    """GEMV latency against mesh size: MeshGEMV (K-tree) against the pipeline allreduce;
    `spread`: the same rows computed on each refitted device."""
    fig, (ax,) = plots.figure()
    for size in sorted({r["GEMV"] for r in rows}, key=lambda s: int(s[:-1])):
        chosen = [r for r in rows if r["GEMV"] == size]
        sides = [int(r["mesh"].split("x")[0]) for r in chosen]
        line = ax.plot(sides, [r["MeshGEMV us"] for r in chosen], "o-", label=f"MeshGEMV {size}")[0]
        ax.plot(sides, [r["pipeline us"] for r in chosen], "s--", color=line.get_color(), label=f"pipeline {size}")
        for key in ("MeshGEMV us", "pipeline us"):
            _band(ax, sides, [[r[key] for r in other if r["GEMV"] == size] for other in spread], line.get_color())
    ax.set(yscale="log", xlabel="mesh side", ylabel="microseconds", title="GEMV latency")
    ax.legend(fontsize=7)
    return fig
