"""The decode KV cache on a mesh: appended by concatenation, or kept balanced by shifting.

Layout: the KV width is split over one axis of the mesh, tokens over the other (here: the
width along y (rows), tokens along x (columns); the LLM placement in `llm` holds them the other
way round, tokens along y, and counts the token axis as "lines").
- concat: every new token goes to the last column; when that column's cores are full the
  cache is full, however empty the rest of the mesh is.
- shift: the new token goes to the last column, and a neighbour shift (O(1) routes, one hop)
  moves columns' oldest tokens to their left neighbours whenever the columns' counts drift
  more than one apart (or the last column is full). Tokens keep their order, every core holds
  about tokens/columns of them, and the whole mesh fills up: capacity is `columns` times that
  of concatenation.
"""

from __future__ import annotations

import math

import numpy as np

from garagelab.core.errors import UserError
from garagelab.wafer.program import PLMRViolation

KV_METHODS = ("shift", "concat")


def slots_per_core(free_bytes: float, kv_dim: int, width_parts: int, layers: int, bytes_per_element: int = 2) -> int:
    """Tokens one core can hold: its free SRAM over K and V chunks (the KV width split over
    `width_parts` cores) of every layer it serves."""
    per_token = 2 * layers * math.ceil(kv_dim / width_parts) * bytes_per_element
    return max(0, int(free_bytes // per_token))


def capacity(method: str, lines: int, slots: int) -> int:
    """Most tokens the cache holds, spread over `lines` lines of cores along the token axis:
    one line's worth (concat) or every line's (shift)."""
    if method not in KV_METHODS:
        raise UserError(f"unknown KV cache method {method!r}; choose one of {', '.join(KV_METHODS)}")
    return slots * (lines if method == "shift" else 1)


def tokens_per_core(method: str, lines: int, tokens: int) -> int:
    """Tokens on the busiest core, which sets the attention time."""
    return math.ceil(tokens / lines) + 1 if method == "shift" else tokens


class KVCache:
    """A functional KV cache on a (rows, cols) grid with `slots` token slots per core."""

    def __init__(self, method: str, grid: tuple[int, int], kv_dim: int, slots: int) -> None:
        capacity(method, grid[1], slots)  # validates the method
        self.method = method
        self.rows, self.cols = grid
        self.chunk = math.ceil(kv_dim / self.rows)
        self.kv_dim = kv_dim
        self.slots = slots
        self.keys = np.zeros((self.rows, self.cols, slots, self.chunk))
        self.values = np.zeros_like(self.keys)
        self.count = np.zeros(self.cols, dtype=int)  # tokens per column (the same on every row)
        self.shifts = 0  # neighbour shifts performed

    def __len__(self) -> int:
        return int(self.count.sum())

    def _split(self, vector: np.ndarray) -> np.ndarray:
        padded = np.zeros(self.rows * self.chunk)
        padded[: self.kv_dim] = vector
        return padded.reshape(self.rows, self.chunk)

    def append(self, key: np.ndarray, value: np.ndarray) -> None:
        tail = self.cols - 1
        if self.count[tail] == self.slots and self.method == "shift":
            self._shift_left(room=lambda c: self.count[c - 1] < self.slots)
        if self.count[tail] == self.slots:
            where = "every core" if self.method == "shift" else f"core (0, {tail})"
            advice = "a larger grid or a shorter context" if self.method == "shift" else "the shift method"
            raise PLMRViolation(
                f"KV cache ({self.method}) is full after {len(self)} tokens: {where} holds its "
                f"{self.slots} slots; use {advice}"
            )
        slot = self.count[tail]
        self.keys[:, tail, slot] = self._split(key)
        self.values[:, tail, slot] = self._split(value)
        self.count[tail] += 1
        if self.method == "shift" and self.count.max() - self.count.min() > 1:
            self._shift_left(room=lambda c: self.count[c - 1] < self.count[c])

    def _shift_left(self, room) -> None:
        """One neighbour shift: each column passes its oldest token to its left neighbour if
        `room(column)` or the neighbour passes one on itself (all at once, order kept)."""
        passes = np.zeros(self.cols, dtype=bool)
        for column in range(1, self.cols):
            passes[column] = self.count[column] > 0 and (room(column) or passes[column - 1])
        if not passes.any():
            return
        moving = np.flatnonzero(passes)
        moving_k = {c: self.keys[:, c, 0].copy() for c in moving}
        moving_v = {c: self.values[:, c, 0].copy() for c in moving}
        for column in moving:  # drop the oldest: the rest move down one slot
            n = self.count[column]
            self.keys[:, column, : n - 1] = self.keys[:, column, 1:n]
            self.values[:, column, : n - 1] = self.values[:, column, 1:n]
            self.count[column] -= 1
        for column in moving:  # the oldest becomes the left neighbour's newest
            slot = self.count[column - 1]
            self.keys[:, column - 1, slot] = moving_k[column]
            self.values[:, column - 1, slot] = moving_v[column]
            self.count[column - 1] += 1
        self.shifts += 1

    def tokens(self) -> tuple[np.ndarray, np.ndarray]:
        """All cached (K, V) rows, oldest first (columns left to right, slots in order)."""
        keys, values = [], []
        for column in range(self.cols):
            n = self.count[column]
            keys.append(
                self.keys[:, column, :n].transpose(1, 0, 2).reshape(n, self.rows * self.chunk)[:, : self.kv_dim]
            )
            values.append(
                self.values[:, column, :n].transpose(1, 0, 2).reshape(n, self.rows * self.chunk)[:, : self.kv_dim]
            )
        return np.concatenate(keys), np.concatenate(values)

    def attention(self, query: np.ndarray) -> np.ndarray:
        """softmax(K q / sqrt(d)) V over every cached token (one head of width kv_dim)."""
        keys, values = self.tokens()
        scores = keys @ query / math.sqrt(self.kv_dim)
        weights = np.exp(scores - scores.max())
        return (weights / weights.sum()) @ values
