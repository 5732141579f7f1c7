"""Our batched L-BFGS (`distill/lbfgs.py`) against a maintained one, optax.lbfgs under vmap.

Same data (697 runs simulated from the paper's law, 0.3% noise), same objective (the fused
float32 JAX objective of `evaluate.py`: optax differentiates its value), the paper's
43,200-start grid, no bounds (optax.lbfgs has none), at most 1000 iterations per start.
optax runs each start's L-BFGS with its zoom line search inside one jitted
`vmap(while_loop)` per chunk of starts; ours keeps the L-BFGS bookkeeping in numpy and
batches only the objective. Ours runs the whole protocol as `distill fit` does (search, then
the float64 polish of the 16 best end points); optax runs `--starts` random starts of the
grid and its time is scaled to the whole grid (all of it would take hours here). Printed:
wall time after compiling, best objective, and for optax how many starts end within 1e-3
(relative) of the best and how many end non-finite.

    .venv/bin/python benchmarks/distill/bench_optimizers.py [--starts 4096] [--chunk 1024]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from garagelab.distill.fit import distillation_columns, fit_law, start_points
from garagelab.distill.laws import BUSBRIDGE2025
from garagelab.distill.objective import DISTILLATION, LOG_HUBER
from garagelab.distill.simulate import simulate_distillation

MAX_ITER = 1000  # as ours
GTOL = 1e-5  # as ours (scipy's default)


def optax_fits(columns: tuple[np.ndarray, ...], x0: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
    """(final objective per start, seconds) of vmapped optax.lbfgs, compile time excluded."""
    import jax
    import jax.numpy as jnp
    import optax
    import optax.tree_utils as otu

    data = tuple(jnp.asarray(np.reshape(c, (1, -1)), jnp.float32) for c in columns)
    weights = jnp.ones_like(data[0])

    def value(theta):
        f, _ = DISTILLATION.objective(jnp, theta[None, :], data, weights, LOG_HUBER)
        return f[0]

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(value)

    def one(theta0):
        def step(carry):
            theta, state = carry
            f, g = value_and_grad(theta, state=state)
            updates, state = solver.update(g, state, theta, value=f, grad=g, value_fn=value)
            return optax.apply_updates(theta, updates), state

        def running(carry):
            _, state = carry
            count = otu.tree_get(state, "count")
            grad = otu.tree_get(state, "grad")
            return (count == 0) | ((count < MAX_ITER) & (jnp.max(jnp.abs(grad)) >= GTOL))

        theta, _ = jax.lax.while_loop(running, step, (theta0, solver.init(theta0)))
        return value(theta)

    batched = jax.jit(jax.vmap(one))
    batched(jnp.asarray(x0[:chunk], jnp.float32)).block_until_ready()  # compile
    begin = time.perf_counter()
    values = [
        np.asarray(batched(jnp.asarray(_pad(x0[i : i + chunk], chunk), jnp.float32)))[: len(x0[i : i + chunk])]
        for i in range(0, len(x0), chunk)
    ]
    return np.concatenate(values).astype(float), time.perf_counter() - begin


def _pad(x: np.ndarray, size: int) -> np.ndarray:
    return x if len(x) == size else np.concatenate([x, np.repeat(x[:1], size - len(x), axis=0)])


def ours(columns: tuple[np.ndarray, ...]) -> tuple[float, float, dict]:
    """(best objective after the float64 polish, seconds, search statistics) of the full fit."""
    fit_law(DISTILLATION, columns, 64, backend="jax", progress=False)  # compile the buckets
    begin = time.perf_counter()
    _, best, stats = fit_law(DISTILLATION, columns, "paper", backend="jax", progress=False)
    return best, time.perf_counter() - begin, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=4096)
    parser.add_argument("--chunk", type=int, default=1024)
    args = parser.parse_args()

    runs = simulate_distillation(BUSBRIDGE2025, runs=697, noise=0.003, seed=0)
    columns = distillation_columns(runs, BUSBRIDGE2025.supervised)
    total = len(DISTILLATION.paper_grid())
    scale = total / args.starts

    ours_best, ours_s, stats = ours(columns)
    x0 = start_points(DISTILLATION, args.starts, seed=0)
    optax_f, optax_s = optax_fits(columns, x0, args.chunk)
    finite = np.isfinite(optax_f)
    best = min(ours_best, float(optax_f[finite].min()))
    near = int((optax_f[finite] <= best * (1 + 1e-3)).sum())
    print(f"697 runs, float32 JAX objective, unbounded; the paper grid has {total} starts")
    print(
        f"   garagelab: {ours_s:7.1f} s for all {total} starts, search + float64 polish of the 16 best; "
        f"best {ours_best:.6g}; outcomes {stats['status']}"
    )
    print(
        f" optax.lbfgs: {optax_s:7.1f} s for {args.starts} random starts, {optax_s * scale:.0f} s scaled to {total}; "
        f"best {optax_f[finite].min():.6g}; within 1e-3 of the best: {near}; non-finite: {int((~finite).sum())}"
    )
    ratio = optax_f[finite].min() / ours_best
    print(f"time, full protocol, optax / garagelab: {optax_s * scale / ours_s:.0f}x; best-objective ratio {ratio:.5f}")


if __name__ == "__main__":
    main()
