"""The paper's figures, drawn from any coefficient set (and, where given, measured runs)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from garagelab.core import plots
from garagelab.distill.data import DistillationRuns, SupervisedRuns
from garagelab.distill.flops import SCENARIOS, FlopModel
from garagelab.distill.laws import CoefficientSet
from garagelab.distill.planner import BOUNDS, plan


def isoflop_figure(
    coefficients: CoefficientSet,
    budgets: Sequence[float],
    sizes: tuple[float, float],
    runs: SupervisedRuns | None = None,
    flops: FlopModel | None = None,
) -> Figure:
    """Supervised loss against model size at fixed compute, with each curve's minimum."""
    flops = flops or coefficients.flops
    fig, (ax,) = plots.figure()
    n = np.geomspace(*sizes, 200)
    colors = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(budgets)))
    for budget, color in zip(budgets, colors, strict=True):
        loss = coefficients.supervised_loss(n, flops.tokens(n, budget))
        ax.plot(n, loss, color=color, label=f"C={budget:.0e}")
        i = int(np.argmin(loss))
        ax.plot(n[i], loss[i], "o", color=color)
    if runs is not None and len(runs):
        ax.scatter(runs.n, runs.loss, s=10, c="k", alpha=0.5, label="runs", zorder=3)
    ax.set(
        xscale="log",
        xlabel="parameters N",
        ylabel="loss L(N, D)",
        title="IsoFLOP profiles (supervised)",
    )
    ax.legend(fontsize=7)
    return fig


def capacity_gap_figure(
    coefficients: CoefficientSet,
    student_sizes: Sequence[float],
    tokens_per_param: float = 20.0,
    runs: DistillationRuns | None = None,
) -> Figure:
    """Student loss against teacher loss: the capacity-gap U, one curve per student size."""
    fig, (ax,) = plots.figure()
    floor = coefficients.supervised.E
    teacher = np.geomspace(floor * 1.001, floor * 3.0, 400)
    colors = matplotlib.colormaps["plasma"](np.linspace(0, 0.85, len(student_sizes)))
    for n_s, color in zip(student_sizes, colors, strict=True):
        d_s = tokens_per_param * n_s
        ax.plot(
            teacher,
            coefficients.student_loss(n_s, d_s, teacher),
            color=color,
            label=f"N_S={n_s:.3g}",
        )
        ax.axhline(float(coefficients.supervised_loss(n_s, d_s)), color=color, ls=":", lw=0.8)
    ax.plot(teacher, teacher, "k--", lw=0.8, label="L_S = L_T")
    if runs is not None and len(runs):
        ax.scatter(runs.teacher_loss, runs.loss, s=8, c="k", alpha=0.4, label="runs", zorder=3)
    ax.set(
        xlabel="teacher loss L_T",
        ylabel="student loss L_S",
        title=f"Capacity gap ({tokens_per_param:g} tokens/param; dotted: supervised)",
    )
    ax.legend(fontsize=7)
    return fig


def advantage_heatmap(
    coefficients: CoefficientSet,
    teacher_loss: float,
    sizes: tuple[float, float],
    tokens: tuple[float, float],
) -> Figure:
    """L_S - Lt_S over (D_S, N_S) for one teacher; blue where distillation wins (Fig. 6)."""
    fig, (ax,) = plots.figure(width=6.5)
    n = np.geomspace(*sizes, 120)
    d = np.geomspace(*tokens, 160)
    nn, dd = np.meshgrid(n, d, indexing="ij")
    delta = coefficients.student_loss(nn, dd, teacher_loss) - coefficients.supervised_loss(nn, dd)
    bound = float(np.nanmax(np.abs(delta))) or 1.0
    mesh = ax.pcolormesh(d, n, delta, cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -bound, bound), shading="auto")
    ax.contour(d, n, delta, levels=[0.0], colors="k", linewidths=1.2)
    fig.colorbar(mesh, ax=ax, label="L_S - Lt_S (nats)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="student tokens D_S",
        ylabel="student parameters N_S",
        title=f"Distilled minus supervised, teacher L_T={teacher_loss:.3g}",
    )
    return fig


def optimal_vs_compute_figure(
    coefficients: CoefficientSet,
    student_size: float,
    budgets: Sequence[float],
    flops: FlopModel | None = None,
    bounds: tuple[float, float] = BOUNDS,
) -> Figure:
    """Compute-optimal student loss and teacher size against compute, per scenario."""
    flops = flops or coefficients.flops
    fig, (ax_loss, ax_teacher) = plots.figure(ncols=2)
    budgets = np.asarray(budgets, dtype=float)
    supervised = coefficients.supervised_loss(student_size, flops.tokens(student_size, budgets))
    ax_loss.plot(budgets, supervised, "k-", lw=2, label="supervised")
    for name in SCENARIOS:
        plans = [
            plan(coefficients, student_size, compute=c, scenario=name, flops=flops, bounds=bounds) for c in budgets
        ]
        ax_loss.plot(budgets, [p.distillation.loss for p in plans], label=name)
        ax_teacher.plot(budgets, [p.distillation.teacher_size for p in plans], label=name)
    ax_loss.set(
        xscale="log",
        xlabel="compute (FLOPs)",
        ylabel="student loss",
        title=f"Optimal loss, N_S={student_size:.3g}",
    )
    ax_teacher.set(
        xscale="log",
        yscale="log",
        xlabel="compute (FLOPs)",
        ylabel="teacher parameters N_T*",
        title="Optimal (or cheapest) teacher size",
    )
    ax_loss.legend(fontsize=7)
    return fig


def fit_quality_figure(observed: np.ndarray, predicted: np.ndarray, title: str) -> Figure:
    """Predicted against observed loss, with the relative error of each run."""
    fig, (ax, ax_err) = plots.figure(ncols=2, width=4.5)
    lo, hi = (
        float(min(observed.min(), predicted.min())),
        float(max(observed.max(), predicted.max())),
    )
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.scatter(observed, predicted, s=8, alpha=0.6)
    ax.set(xlabel="observed loss", ylabel="predicted loss", title=title)
    ax_err.scatter(observed, 100 * (predicted - observed) / observed, s=8, alpha=0.6)
    ax_err.axhline(0, color="k", lw=0.8)
    ax_err.set(xlabel="observed loss", ylabel="relative error (%)", title="residuals")
    return fig
