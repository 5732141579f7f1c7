"""Batch evaluators of a law's objective: plain numpy (float64), or JAX-jitted (float32).

The JAX path fuses the whole objective and gradient into one compiled loop and runs fixed
bucket sizes (padding the last chunk) so it compiles at most a few times per fit. float32 is
enough for the search over starts: the objective is O(1e-4) and scipy's ftol test is absolute
below 1, so its stopping rule is still met; the best points are polished in float64 after.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import partial

import numpy as np

from garagelab.core.errors import UserError
from garagelab.distill.lbfgs import Evaluator
from garagelab.distill.objective import HUBER_DELTA, LawSpec

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


def _rows(data: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(column, dtype=float).reshape(1, -1) for column in data)


def _weights(weights: np.ndarray | None, n_runs: int) -> np.ndarray:
    if weights is None:
        return np.ones((1, n_runs))
    weights = np.asarray(weights, dtype=float)
    return weights.reshape(1, -1) if weights.ndim == 1 else weights


def numpy_evaluator(
    spec: LawSpec,
    data: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    delta: float = HUBER_DELTA,
) -> Evaluator:
    """Float64 numpy evaluation, in chunks of starts to bound memory."""
    columns = _rows(data)
    w_all = _weights(weights, columns[0].shape[1])

    def evaluate(theta: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        fs, gs = [], []
        with np.errstate(all="ignore"):
            for lo in range(0, theta.shape[0], _NUMPY_CHUNK):
                part = slice(lo, lo + _NUMPY_CHUNK)
                w = w_all if w_all.shape[0] == 1 else w_all[index[part]]
                f, g = spec.objective(np, theta[part], columns, w, delta)
                fs.append(f)
                gs.append(g)
        return np.concatenate(fs), np.concatenate(gs)

    return evaluate


def jax_evaluator(
    spec: LawSpec,
    data: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    delta: float = HUBER_DELTA,
) -> Evaluator:
    """Float32 JAX evaluation, jitted once per bucket size."""
    import jax
    import jax.numpy as jnp

    columns = tuple(jnp.asarray(c, jnp.float32) for c in _rows(data))
    w_host = _weights(weights, columns[0].shape[1]).astype(np.float32)
    shared = w_host.shape[0] == 1
    w_shared = jnp.asarray(w_host) if shared else None
    kernel = jax.jit(partial(spec.objective, jnp, delta=delta))
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
            w = w_shared if shared else jnp.asarray(w_host[idx])
            outs.append((kernel(jnp.asarray(chunk, jnp.float32), columns, w), size - pad))
        fs = [np.asarray(f, dtype=float)[:n] for (f, _), n in outs]
        gs = [np.asarray(g, dtype=float)[:n] for (_, g), n in outs]
        return np.concatenate(fs), np.concatenate(gs)

    return run


def make_evaluator(
    spec: LawSpec,
    data: Sequence[np.ndarray],
    weights: np.ndarray | None = None,
    backend: str = "auto",
    delta: float = HUBER_DELTA,
) -> Evaluator:
    if resolve_backend(backend) == "jax":
        return jax_evaluator(spec, data, weights, delta)
    return numpy_evaluator(spec, data, weights, delta)
