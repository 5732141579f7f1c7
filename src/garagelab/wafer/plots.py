"""Figures for the wafer simulator: latency against mesh size, and the mesh as a heat-map."""

from __future__ import annotations

from matplotlib.figure import Figure

from garagelab.core import plots
from garagelab.wafer import gpu as gpus
from garagelab.wafer.cost import timestamps
from garagelab.wafer.device import DeviceModel, GPUModel
from garagelab.wafer.explore import phase_tpr
from garagelab.wafer.models import LLMConfig
from garagelab.wafer.program import MeshProgram


def decode_vs_grid_figure(
    model: LLMConfig, device: DeviceModel, gpu: GPUModel, sides, context: int, gpu_counts=(1, 8, 16)
) -> Figure:
    """Decode TPR on the wafer against region size, with the GPU baselines as lines."""
    fig, (ax,) = plots.figure()
    tpr = [phase_tpr(model, device, "decode", side, context) for side in sides]
    ax.plot(sides, tpr, "o-", label=f"{device.name} (simulated)")
    for count in gpu_counts:
        value = 1 / gpus.decode_seconds(model, gpu, count, context)
        ax.axhline(value, ls="--", color="gray", lw=0.8)
        ax.text(sides[0], value * 1.08, f"{count} x {gpu.name}: {value:.0f}", fontsize=7)
    ax.set(
        yscale="log",
        xlabel="decode region side (cores)",
        ylabel="tokens/s per request",
        title=f"{model.name} decode, {context}-token context",
    )
    ax.legend(fontsize=8)
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


def fig9_figure(rows: list[dict]) -> Figure:
    """GEMM compute efficiency against mesh size, per algorithm and size."""
    fig, axes = plots.figure(ncols=len({r["GEMM"] for r in rows}), width=4.0)
    for ax, size in zip(axes, sorted({r["GEMM"] for r in rows}, key=lambda s: int(s[:-1])), strict=True):
        chosen = [r for r in rows if r["GEMM"] == size]
        sides = [int(r["mesh"].split("x")[0]) for r in chosen]
        for algorithm in ("meshgemm", "summa", "cannon"):
            ax.plot(sides, [r[f"{algorithm} efficiency"] for r in chosen], "o-", label=algorithm)
        ax.set(xlabel="mesh side", ylabel="compute efficiency", title=f"{size} GEMM", ylim=(0, 1.05))
        ax.legend(fontsize=7)
    return fig


def fig10_figure(rows: list[dict]) -> Figure:
    """GEMV latency against mesh size: MeshGEMV (K-tree) against the pipeline allreduce."""
    fig, (ax,) = plots.figure()
    for size in sorted({r["GEMV"] for r in rows}, key=lambda s: int(s[:-1])):
        chosen = [r for r in rows if r["GEMV"] == size]
        sides = [int(r["mesh"].split("x")[0]) for r in chosen]
        line = ax.plot(sides, [r["MeshGEMV us"] for r in chosen], "o-", label=f"MeshGEMV {size}")[0]
        ax.plot(sides, [r["pipeline us"] for r in chosen], "s--", color=line.get_color(), label=f"pipeline {size}")
    ax.set(yscale="log", xlabel="mesh side", ylabel="microseconds", title="GEMV latency")
    ax.legend(fontsize=7)
    return fig
