"""What a task sees of its engine: the array namespace and a random source with batch shape.

A task is written once with `[..., i]` indexing and `axis=-1` reductions, so its code runs on
a whole batch of numpy arrays (CPU engine: leading axis = envs) and on one env's jax arrays
under `vmap` (MJX engine). Random draws go through `Ops` so the same call gives `(n, *shape)`
from a numpy Generator or `shape` from a split jax key.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


class NumpyOps:
    """numpy for a batch of `n` envs, drawing from one Generator."""

    xp: ModuleType = np

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng = rng
        self.n = n

    def uniform(self, shape: tuple[int, ...] = (), low: Any = 0.0, high: Any = 1.0) -> np.ndarray:
        return self.rng.uniform(low, high, (self.n, *shape))

    def normal(self, shape: tuple[int, ...] = ()) -> np.ndarray:
        return self.rng.standard_normal((self.n, *shape))

    def full(self, shape: tuple[int, ...], value: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=float), (self.n, *shape)).copy()

    def set(self, x: np.ndarray, index: Any, value: Any) -> np.ndarray:
        """`x` with `x[..., index] = value`, leaving the caller's array alone (as jax must)."""
        out = np.array(x, copy=True)
        out[..., index] = value
        return out


class JaxOps:
    """jax.numpy for one env (under vmap), splitting `key` for each draw."""

    def __init__(self, key: Any) -> None:
        import jax
        import jax.numpy as jnp

        self.xp = jnp
        self._jax = jax
        self.key = key

    def _next(self) -> Any:
        self.key, sub = self._jax.random.split(self.key)
        return sub

    def uniform(self, shape: tuple[int, ...] = (), low: Any = 0.0, high: Any = 1.0) -> Any:
        return self._jax.random.uniform(self._next(), shape, minval=low, maxval=high)

    def normal(self, shape: tuple[int, ...] = ()) -> Any:
        return self._jax.random.normal(self._next(), shape)

    def full(self, shape: tuple[int, ...], value: Any) -> Any:
        return self.xp.broadcast_to(self.xp.asarray(value, dtype=float), shape)

    def set(self, x: Any, index: Any, value: Any) -> Any:
        return x.at[..., index].set(value)
