"""Batched L-BFGS: thousands of independent starts minimised together, one array op at a time.

Every start follows its own L-BFGS path (own history, own line search, own stopping rule);
only the function evaluations are batched. Starts that stop leave the active set, so the
cost of each iteration falls as starts converge. The stopping rules are scipy's L-BFGS-B
defaults, so the result of each start is what `scipy.optimize.minimize(method="L-BFGS-B")`
without bounds would reach up to line-search details:

* `ftol`: (f_k - f_{k+1}) <= ftol * max(|f_k|, |f_{k+1}|, 1); the 1 is `ftol_floor`, which the
  law fits set to 0 (a relative test) because their objectives are ~1e-4
* `gtol`: max |grad| <= gtol
* at most `max_iter` iterations and `max_ls` backtracking steps per line search.

Optional box bounds are handled by projection: trial points are clipped into the box, the
direction is zeroed along bounds it would cross, and the gradient tests use the projected
gradient (a simple cousin of L-BFGS-B's active-set step).

Why hand-written: `benchmarks/distill/bench_optimizers.py` ran the maintained alternative,
optax.lbfgs under `jax.vmap` (each start's zoom line search in a `while_loop`), on the paper's
unbounded distillation protocol (697 runs, 2 cores, 2026-12-05): 116 s for 256 starts, about
19,600 s scaled to the 43,200-start grid, against 98 s for the whole grid here (200x), and its
best end point was 0.12% worse than ours. Under vmap every start waits for the slowest one's
line search, and optax has no box bounds; this loop drops finished starts and keeps bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# `ftol_floor` for the law fits' searches (the main fit's and every bootstrap resample's): a
# relative ftol test. scipy's floor of 1 makes it absolute for these objectives (~1e-4), and
# starts stopped in narrow valleys far from their minimum: with the floor the 43,200-start
# fit ended 0.05% above what 500 scipy starts reached, without it 0.09% below, in twice the
# time (docs/distill/README.md, Speed)
SEARCH_FTOL_FLOOR = 0.0

# status codes of each start
CONVERGED_F, CONVERGED_G, MAX_ITER, LINE_SEARCH_FAILED, NONFINITE = 0, 1, 2, 3, 4
STATUS_NAMES = ("ftol", "gtol", "max_iter", "line_search", "nonfinite")

# (theta (k, P), start indices (k,)) -> (f (k,), grad (k, P))
Evaluator = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class BatchResult:
    """Final point, value, iteration count, evaluation count and status of every start."""

    x: np.ndarray
    f: np.ndarray
    iterations: np.ndarray
    evaluations: np.ndarray
    status: np.ndarray

    def status_counts(self) -> dict[str, int]:
        return {name: int((self.status == code).sum()) for code, name in enumerate(STATUS_NAMES)}


def minimize_batch(
    evaluate: Evaluator,
    x0: np.ndarray,
    *,
    memory: int = 10,
    ftol: float = 2.220446049250313e-09,
    ftol_floor: float = 1.0,
    gtol: float = 1e-5,
    max_iter: int = 1000,
    max_ls: int = 20,
    armijo: float = 1e-4,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Minimise from every row of `x0`; `on_progress(finished, total)` is called per iteration.

    The history is a ring of `memory` slots shared by all starts (slot = iteration mod memory);
    a start whose update fails the curvature test writes an empty pair (rho = 0), which the
    two-loop recursion skips. Shared slots keep every history access a contiguous slice.
    """
    n_params = np.shape(x0)[1]
    lower = np.full(n_params, -np.inf) if lower is None else np.asarray(lower, dtype=float)
    upper = np.full(n_params, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x_all = np.clip(np.array(x0, dtype=float), lower, upper)
    n_starts = x_all.shape[0]
    f_all, g_all = (np.asarray(a, dtype=float) for a in evaluate(x_all, np.arange(n_starts)))
    evaluations = np.ones(n_starts, dtype=np.int64)
    iterations = np.zeros(n_starts, dtype=np.int64)
    status = np.full(n_starts, -1, dtype=np.int64)
    bad = ~(np.isfinite(f_all) & np.isfinite(g_all).all(axis=1))
    status[bad] = NONFINITE
    status[~bad & (np.abs(_projected(g_all, x_all, lower, upper)).max(axis=1) <= gtol)] = CONVERGED_G

    # the work set: starts still running, plus some finished ones until the next compaction
    work = np.flatnonzero(status < 0)
    x, f, g = x_all[work], f_all[work], g_all[work]
    s_hist = np.zeros((memory, work.size, n_params))
    y_hist = np.zeros((memory, work.size, n_params))
    rho = np.zeros((memory, work.size))
    scale = np.ones(work.size)
    running = np.ones(work.size, dtype=bool)
    if on_progress:
        on_progress(n_starts - work.size, n_starts)
    iteration = 0
    while running.any():
        direction = _free(-_two_loop(g, s_hist, y_hist, rho, scale, iteration), x, lower, upper)
        slope = (direction * g).sum(axis=1)
        # not a descent direction (a broken history): restart from steepest descent
        reset = running & ~(slope < 0)
        if reset.any():
            direction[reset] = -_projected(g[reset], x[reset], lower, upper)
            slope[reset] = (direction[reset] * g[reset]).sum(axis=1)
            rho[:, reset] = 0.0
            scale[reset] = 1.0
        fresh = ~rho.any(axis=0)
        step = np.where(fresh, np.minimum(1.0 / np.maximum(np.linalg.norm(g, axis=1), 1e-12), 1.0), 1.0)

        rows = np.flatnonzero(running)
        new_x, new_f, new_g, ok = _line_search(
            evaluate,
            work[rows],
            x[rows],
            f[rows],
            g[rows],
            direction[rows],
            slope[rows],
            step[rows],
            (lower, upper),
            max_ls,
            armijo,
            evaluations,
        )
        iterations[work[rows]] += 1
        slot = iteration % memory
        s_hist[slot], y_hist[slot], rho[slot] = 0.0, 0.0, 0.0

        moved = rows[ok]
        s = new_x[ok] - x[moved]
        y = new_g[ok] - g[moved]
        old_f = f[moved]
        x[moved], f[moved], g[moved] = new_x[ok], new_f[ok], new_g[ok]
        sy = (s * y).sum(axis=1)
        yy = (y * y).sum(axis=1)
        keep = sy > 1e-10 * np.sqrt((s * s).sum(axis=1) * yy)
        upd = moved[keep]
        s_hist[slot, upd], y_hist[slot, upd], rho[slot, upd] = s[keep], y[keep], 1.0 / sy[keep]
        scale[upd] = sy[keep] / yy[keep]

        code = np.full(rows.size, -1)
        code[~ok] = LINE_SEARCH_FAILED
        f_scale = np.maximum(np.maximum(np.abs(old_f), np.abs(f[moved])), ftol_floor)
        f_small = (old_f - f[moved]) <= ftol * f_scale
        g_small = np.abs(_projected(g[moved], x[moved], lower, upper)).max(axis=1) <= gtol
        code[ok] = np.where(g_small, CONVERGED_G, np.where(f_small, CONVERGED_F, -1))
        code[(code < 0) & (iterations[work[rows]] >= max_iter)] = MAX_ITER
        done = rows[code >= 0]
        status[work[done]] = code[code >= 0]
        x_all[work[done]], f_all[work[done]] = x[done], f[done]
        running[done] = False
        iteration += 1

        if running.sum() < 0.75 * running.size:  # compact: drop finished starts
            keep_rows = np.flatnonzero(running)
            work, x, f, g = work[keep_rows], x[keep_rows], f[keep_rows], g[keep_rows]
            s_hist, y_hist, rho = s_hist[:, keep_rows], y_hist[:, keep_rows], rho[:, keep_rows]
            scale, running = scale[keep_rows], running[keep_rows]
        if on_progress:
            on_progress(n_starts - int(running.sum()), n_starts)
    return BatchResult(x_all, f_all, iterations, evaluations, status)


def _projected(g: np.ndarray, x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The gradient without the components that push against an active bound."""
    return np.where(((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0)), 0.0, g)


def _free(direction: np.ndarray, x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The direction without the components that would leave the box at an active bound."""
    return np.where(((x <= lower) & (direction < 0)) | ((x >= upper) & (direction > 0)), 0.0, direction)


def _two_loop(
    g: np.ndarray,
    s_hist: np.ndarray,
    y_hist: np.ndarray,
    rho: np.ndarray,
    scale: np.ndarray,
    iteration: int,
) -> np.ndarray:
    """H g by the L-BFGS two-loop recursion over the shared ring of history slots."""
    memory = s_hist.shape[0]
    order = [(iteration - 1 - j) % memory for j in range(min(iteration, memory))]  # newest first
    q = g.copy()
    alphas = {}
    for slot in order:
        alphas[slot] = rho[slot] * (s_hist[slot] * q).sum(axis=1)
        q -= alphas[slot][:, None] * y_hist[slot]
    r = q * scale[:, None]
    for slot in reversed(order):
        beta = rho[slot] * (y_hist[slot] * r).sum(axis=1)
        r += s_hist[slot] * (alphas[slot] - beta)[:, None]
    return r


def _line_search(
    evaluate: Evaluator,
    index: np.ndarray,
    x: np.ndarray,
    f: np.ndarray,
    g: np.ndarray,
    direction: np.ndarray,
    slope: np.ndarray,
    step: np.ndarray,
    box: tuple[np.ndarray, np.ndarray],
    max_ls: int,
    armijo: float,
    evaluations: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backtracking (Armijo on the projected step) with quadratic interpolation.

    Only unsatisfied rows are evaluated again.
    """
    new_x = np.empty_like(x)
    new_f = np.full(f.shape, np.inf)
    new_g = np.zeros_like(x)
    ok = np.zeros(f.shape, dtype=bool)
    todo = np.arange(x.shape[0])
    step = step.copy()
    for _ in range(max_ls):
        trial = np.clip(x[todo] + step[todo, None] * direction[todo], *box)
        tf, tg = evaluate(trial, index[todo])
        tf, tg = np.asarray(tf, dtype=float), np.asarray(tg, dtype=float)
        evaluations[index[todo]] += 1
        finite = np.isfinite(tf) & np.isfinite(tg).all(axis=1)
        decrease = (g[todo] * (trial - x[todo])).sum(axis=1)
        accept = finite & (tf <= f[todo] + armijo * decrease) & (decrease < 0)
        done = todo[accept]
        new_x[done], new_f[done], new_g[done], ok[done] = (
            trial[accept],
            tf[accept],
            tg[accept],
            True,
        )
        rest = ~accept
        todo, tf, t = todo[rest], tf[rest], step[todo[rest]]
        if not todo.size:
            break
        # minimiser of the quadratic through f(0), f'(0) and f(t), kept within [0.1t, 0.5t]
        denom = 2.0 * (tf - f[todo] - slope[todo] * t)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_quad = -slope[todo] * t * t / denom
        t_quad = np.where(np.isfinite(t_quad), t_quad, 0.5 * t)
        step[todo] = np.clip(t_quad, 0.1 * t, 0.5 * t)
    return new_x, new_f, new_g, ok
