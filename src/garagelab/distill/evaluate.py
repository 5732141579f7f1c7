"""Batch evaluators of a law's objective: plain numpy (float64), or JAX-jitted (float32).

The JAX path fuses the whole objective and gradient into one compiled loop and runs fixed
bucket sizes (padding the last chunk) so it compiles at most a few times per fit. float32 is
enough for the search over starts: the objective is O(1e-4) and scipy's ftol test is absolute
below 1, so its stopping rule is still met; the best points are polished in float64 after.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from garagelab.core.errors import UserError
from garagelab.distill.lbfgs import Evaluator
from garagelab.distill.objective import LOG_HUBER, LawSpec, Loss

BACKENDS = ("auto", "jax", "numpy")
# On a CPU, chunks of 512 starts keep the intermediates in cache (4x faster than 4096 here);
# an accelerator wants the whole batch in one launch.
_JAX_BUCKETS = {"cpu": (64, 512), "accelerator": (1024, 65536)}
_NUMPY_CHUNK = 2048


def have_jax() -> bool:
    return importlib.util.find_spec("jax") is not None


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "jax" if have_jax() else "numpy"
    if backend == "jax" and not have_jax():
        raise UserError("backend 'jax' needs JAX: pip install 'garagelab[distill]'")
    return backend


def _rows(data: Sequence[np.ndarray], weights: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """The data columns, then the weights, each (1, M) when shared by every start or (R, M)
    with one row per resample (bootstrap weights; the distillation law's Lt_S column when each
    resample has its own supervised law)."""
    columns = [np.atleast_2d(np.asarray(column, dtype=float)) for column in data]
    n_runs = columns[0].shape[1]
    columns.append(np.ones((1, n_runs)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float)))
    return tuple(columns)


def _pick(rows: tuple[Any, ...], index: np.ndarray, convert: Callable[[np.ndarray], Any]) -> tuple[Any, ...]:
    """Every per-resample array at the rows of `index`; shared ones as they are."""
    return tuple(r if r.shape[0] == 1 else convert(r[index]) for r in rows)


def numpy_evaluator(
    spec: LawSpec,
    data: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    loss: Loss = LOG_HUBER,
) -> Evaluator:
    """Float64 numpy evaluation, in chunks of starts to bound memory."""
    rows = _rows(data, weights)

    def evaluate(theta: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fs, gs = [], []
        with np.errstate(all="ignore"):
            for lo in range(0, theta.shape[0], _NUMPY_CHUNK):
                part = slice(lo, lo + _NUMPY_CHUNK)
                *columns, w = _pick(rows, index[part], np.asarray)
                f, g = spec.objective(np, theta[part], columns, w, loss)
                fs.append(f)
                gs.append(g)
        return np.concatenate(fs), np.concatenate(gs)

    return evaluate


def jax_evaluator(
    spec: LawSpec,
    data: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    loss: Loss = LOG_HUBER,
) -> Evaluator:
    """Float32 JAX evaluation, jitted once per bucket size."""
    import jax
    import jax.numpy as jnp

    host = tuple(r.astype(np.float32) for r in _rows(data, weights))
    # shared arrays go to the device once; per-resample ones are gathered per chunk
    rows = tuple(jnp.asarray(r) if r.shape[0] == 1 else r for r in host)
    kernel = jax.jit(partial(spec.objective, jnp, loss=loss))
    buckets = _JAX_BUCKETS["cpu" if jax.default_backend() == "cpu" else "accelerator"]

    def run(theta: np.ndarray, index: np.ndarray):
        size = next((b for b in buckets if b >= theta.shape[0]), buckets[-1])
        outs = []
        for lo in range(0, theta.shape[0], size):
            chunk = theta[lo : lo + size]
            idx = index[lo : lo + size]
            pad = size - chunk.shape[0]
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
                idx = np.concatenate([idx, np.repeat(idx[:1], pad)])
            *columns, w = _pick(rows, idx, jnp.asarray)
            outs.append((kernel(jnp.asarray(chunk, jnp.float32), tuple(columns), w), size - pad))
        fs = [np.asarray(f, dtype=float)[:n] for (f, _), n in outs]
        gs = [np.asarray(g, dtype=float)[:n] for (_, g), n in outs]
        return np.concatenate(fs), np.concatenate(gs)

    return run


def make_evaluator(
    spec: LawSpec,
    data: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    backend: str = "auto",
    loss: Loss = LOG_HUBER,
) -> Evaluator:
    if resolve_backend(backend) == "jax":
        return jax_evaluator(spec, data, weights, loss)
    return numpy_evaluator(spec, data, weights, loss)
