"""Training, evaluation and teacher-logit caching for the tiny language models.

A student never sees a token twice: it trains on the first D tokens of its stream, shuffled,
one pass. Supervised runs use cross-entropy on the next token; distilled runs use pure
distillation (lambda = 1, temperature 1, forward KL), i.e. cross-entropy against the teacher's
cached distribution. Loss is always reported as cross-entropy against the true next tokens
of a held-out stream, in nats.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from garagelab.distill.experiment.models import Model, Params, gather_windows, window_starts


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings shared by every run of a sweep."""

    batch_tokens: int = 512
    learning_rate: float = 1e-2  # at width 32; scaled by (32 / width) ** width_exponent
    width_exponent: float = 0.5
    warmup: float = 0.05
    min_learning_rate: float = 0.1  # fraction of the peak at the end of the cosine
    weight_decay: float = 1e-4
    eval_tokens: int = 65536


def examples_for(model: Model, tokens: float) -> int:
    return max(1, math.ceil(tokens / model.predictions))


def _log_probs(model: Model, params: Params, windows: jax.Array) -> jax.Array:
    return jax.nn.log_softmax(model.logits(params, windows), axis=-1)


def _cross_entropy(model: Model, params: Params, windows: jax.Array) -> jax.Array:
    log_p = _log_probs(model, params, windows)
    return -jnp.take_along_axis(log_p, model.targets(windows)[..., None], axis=-1).mean()


def _distillation_loss(model: Model, params: Params, windows: jax.Array, teacher: jax.Array) -> jax.Array:
    log_p = _log_probs(model, params, windows)
    return -(jnp.exp(teacher.astype(jnp.float32)) * log_p).sum(axis=-1).mean()


def train(
    model: Model,
    stream: np.ndarray,
    tokens: float,
    config: TrainConfig,
    seed: int,
    teacher_cache: np.ndarray | None = None,
) -> Params:
    """Train from scratch on the first `tokens` tokens of `stream` (distilling if a cache is given)."""
    count = examples_for(model, tokens)
    starts = window_starts(model, stream, count)
    batch = max(1, config.batch_tokens // model.predictions)
    steps = math.ceil(count / batch)
    # wider models want smaller steps (measured on the synthetic source: 1e-2 best at width
    # 26, 2e-3 at width 440)
    peak = config.learning_rate * (32 / model.width) ** config.width_exponent
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, peak, max(1, int(config.warmup * steps)), max(steps, 2), peak * config.min_learning_rate
    )
    optimizer = optax.adamw(schedule, weight_decay=config.weight_decay)
    key = jax.random.PRNGKey(seed)
    params = model.init(key)
    state = optimizer.init(params)

    def update(params: Params, state: optax.OptState, windows: jax.Array, teacher: jax.Array | None):
        if teacher is None:
            loss, grads = jax.value_and_grad(lambda p: _cross_entropy(model, p, windows))(params)
        else:
            loss, grads = jax.value_and_grad(lambda p: _distillation_loss(model, p, windows, teacher))(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    step = jax.jit(update)
    order = np.random.default_rng(seed).permutation(count)
    for lo in range(0, count, batch):
        chosen = np.sort(order[lo : lo + batch])
        windows = jnp.asarray(gather_windows(model, stream, starts[chosen]))
        teacher = None if teacher_cache is None else jnp.asarray(teacher_cache[chosen])
        params, state, _ = step(params, state, windows, teacher)
    return params


def evaluate(model: Model, params: Params, stream: np.ndarray, tokens: int) -> float:
    """Mean cross-entropy (nats per token) on the first `tokens` tokens of a held-out stream."""
    count = examples_for(model, tokens)
    windows = gather_windows(model, stream, window_starts(model, stream, count))
    batch = max(1, 16384 // model.predictions)
    loss_fn = jax.jit(lambda p, w: _cross_entropy(model, p, w) * w.shape[0])
    total = sum(float(loss_fn(params, jnp.asarray(windows[i : i + batch]))) for i in range(0, count, batch))
    return total / count


def write_teacher_cache(model: Model, params: Params, stream: np.ndarray, tokens: float, path: Path) -> np.ndarray:
    """The teacher's log-probabilities (float16) for the first `tokens` tokens of the student stream.

    Written to a temporary file and renamed when complete, so a killed run never leaves a
    truncated cache behind. Returned as a read-only memory map.
    """
    count = examples_for(model, tokens)
    shape = (count, model.predictions, model.vocab)
    if path.exists():
        cached = np.load(path, mmap_mode="r")
        if cached.shape[0] >= count and cached.shape[1:] == shape[1:]:
            return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16, shape=shape)
    starts = window_starts(model, stream, count)
    batch = max(1, 16384 // model.predictions)
    forward = jax.jit(lambda p, w: _log_probs(model, p, w).astype(jnp.float16))
    for lo in range(0, count, batch):
        out[lo : lo + batch] = np.asarray(
            forward(params, jnp.asarray(gather_windows(model, stream, starts[lo : lo + batch])))
        )
    out.flush()
    del out
    os.replace(temporary, path)
    return np.load(path, mmap_mode="r")


def save_params(params: Params, path: Path) -> None:
    leaves, _ = jax.tree_util.tree_flatten(params)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, *[np.asarray(leaf) for leaf in leaves])
    os.replace(temporary, path)


def load_params(model: Model, path: Path) -> Params:
    template = model.init(jax.random.PRNGKey(0))
    _, tree = jax.tree_util.tree_flatten(template)
    with np.load(path) as data:
        leaves = [jnp.asarray(data[f"arr_{i}"]) for i in range(len(data.files))]
    return jax.tree_util.tree_unflatten(tree, leaves)
