"""Distributed kernels as mesh programs: GEMM (allgather, SUMMA, Cannon, MeshGEMM), GEMM-T,
GEMV (pipeline, ring, K-tree allreduce).

Each builder returns a `Kernel`: the program, plus `scatter` (global matrices -> per-core
tiles) and `gather` (tiles -> the global result), so `kernel.run(A, B)` equals `A @ B`.
Shapes need not divide the grid (they are zero-padded), grids need not be square, and
M, K, N are independent.

GEMMs run on a square logical grid of L x L cores. On a square mesh L is its side; on a
non-square Py x Px mesh L = lcm(Py, Px) logical cores are hosted (L/Py x L/Px per core), as
the paper does, unless that is more than 4x the longer side, in which case the square
min(Py, Px) sub-mesh is used and the rest idles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from garagelab.core.errors import UserError
from garagelab.wafer.collectives import ALLREDUCE_METHODS, allreduce, multicast_from
from garagelab.wafer.program import Compute, MeshProgram, Parallel, Shift, execute

GEMM_ALGORITHMS = ("allgather", "summa", "cannon", "meshgemm")
GEMV_METHODS = ALLREDUCE_METHODS


@dataclass
class Kernel:
    """A program with the maps between global operands and per-core tiles."""

    program: MeshProgram
    scatter: Callable[..., dict[str, np.ndarray]]
    gather: Callable[[dict[str, np.ndarray]], np.ndarray]

    def run(self, *operands: np.ndarray) -> np.ndarray:
        return self.gather(execute(self.program, self.scatter(*operands)))


# -- tiling ----------------------------------------------------------------------------------


def _blocks(size: int, parts: int) -> int:
    return max(1, math.ceil(size / parts))


def tile(matrix: np.ndarray, rows: int, cols: int, block: tuple[int, int]) -> np.ndarray:
    """Zero-pad to (rows*block[0], cols*block[1]) and cut into a (rows, cols, *block) array."""
    padded = np.zeros((rows * block[0], cols * block[1]), dtype=matrix.dtype)
    padded[: matrix.shape[0], : matrix.shape[1]] = matrix
    return padded.reshape(rows, block[0], cols, block[1]).transpose(0, 2, 1, 3)


def untile(tiles: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols, br, bc = tiles.shape
    return tiles.transpose(0, 2, 1, 3).reshape(rows * br, cols * bc)[: shape[0], : shape[1]]


def logical_square(grid: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """(L, physical grid actually used) for a square logical grid on `grid`."""
    py, px = grid
    if py < 1 or px < 1:
        raise UserError(f"grid {grid} must have at least one core per side")
    if py == px:
        return py, grid
    lcm = math.lcm(py, px)
    if lcm <= 4 * max(py, px):
        return lcm, grid
    side = min(py, px)
    return side, (side, side)


def rotate(program: MeshProgram, buffer: str, axis: int, amounts: np.ndarray) -> list[Shift]:
    """Shift each line by its own amount (core i receives from i + amount) using only +-1 ring
    steps, at most L/2 of them, so the alignment reuses the ring's routes."""
    n = program.grid[axis]
    amounts = np.asarray(amounts) % n
    direction = np.where(amounts <= n // 2, 1, -1)
    count = np.where(direction > 0, amounts, n - amounts)
    return [
        Shift(buffer, axis, offsets=np.where(count > t, direction, 0), label=f"align {buffer}")
        for t in range(int(count.max(initial=0)))
    ]


def _in_parallel(*streams: list) -> list:
    """Zip step lists into Parallel steps (lists may differ in length)."""
    steps = []
    for t in range(max((len(s) for s in streams), default=0)):
        now = [s[t] for s in streams if t < len(s)]
        steps.append(now[0] if len(now) == 1 else Parallel(tuple(now)))
    return steps


# -- GEMM ------------------------------------------------------------------------------------


def gemm(algorithm: str, m: int, k: int, n: int, grid: tuple[int, int]) -> Kernel:
    """C = A @ B with A (m x k) and B (k x n) on a mesh of `grid` cores."""
    if algorithm not in GEMM_ALGORITHMS:
        raise UserError(f"unknown GEMM algorithm {algorithm!r}; choose one of {', '.join(GEMM_ALGORITHMS)}")
    for name, value in (("M", m), ("K", k), ("N", n)):
        if value < 1:
            raise UserError(f"GEMM {name} must be at least 1, got {value}")
    size, physical = logical_square(grid)
    bm, bk, bn = _blocks(m, size), _blocks(k, size), _blocks(n, size)
    program = MeshProgram.on(f"{algorithm} {m}x{k}x{n}", (size, size), physical, interleaved=algorithm == "meshgemm")
    program.buffer("A", (bm, bk))
    program.buffer("B", (bk, bn))
    program.buffer("C", (bm, bn))
    multiply = Compute("C", ("A", "B"), lambda a, b: a @ b, macs=bm * bk * bn, accumulate=True, label="C += A B")
    if algorithm in ("cannon", "meshgemm"):
        program.buffer("A.next", (bm, bk))  # double buffering: the tile in flight
        program.buffer("B.next", (bk, bn))
        lines = np.arange(size)
        program.add(*_in_parallel(rotate(program, "A", 1, lines), rotate(program, "B", 0, lines)))
        shift_a = Shift("A", 1, offsets=np.array([1]), label="shift A")
        shift_b = Shift("B", 0, offsets=np.array([1]), label="shift B")
        overlapped = Parallel((multiply, shift_a, shift_b))  # one object: the cost model prices it once
        program.add(*[overlapped] * (size - 1), multiply)
    elif algorithm == "summa":
        program.buffer("A.bcast", (bm, bk))
        program.buffer("B.bcast", (bk, bn))

        def broadcasts(step: int) -> list:
            return [
                multicast_from(program, "A", 1, step, target="A.bcast", relay=True),
                multicast_from(program, "B", 0, step, target="B.bcast", relay=True),
            ]

        product = Compute("C", ("A.bcast", "B.bcast"), lambda a, b: a @ b, macs=bm * bk * bn, accumulate=True)
        program.add(Parallel(tuple(broadcasts(0))))
        for step in range(size):
            nxt = broadcasts(step + 1) if step + 1 < size else []
            program.add(Parallel((product, *nxt)) if nxt else product)
    else:  # allgather: every core collects its whole row strip of A and column strip of B
        for j in range(size):
            program.buffer(f"A.{j}", (bm, bk))
            program.buffer(f"B.{j}", (bk, bn))
            program.add(
                Parallel(
                    (
                        multicast_from(program, "A", 1, j, target=f"A.{j}", relay=True),
                        multicast_from(program, "B", 0, j, target=f"B.{j}", relay=True),
                    )
                )
            )
        names = [f"A.{j}" for j in range(size)] + [f"B.{j}" for j in range(size)]
        program.add(
            Compute(
                "C",
                tuple(names),
                lambda *t: sum(a @ b for a, b in zip(t[:size], t[size:], strict=True)),
                macs=size * bm * bk * bn,
                label="C = A_row B_col",
            )
        )

    def scatter(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        _check_operands(a, b, m, k, n)
        state = {
            "A": tile(a, size, size, (bm, bk)),
            "B": tile(b, size, size, (bk, bn)),
            "C": np.zeros((size, size, bm, bn), dtype=np.result_type(a, b)),
        }
        return state

    return Kernel(program, scatter, lambda state: untile(state["C"], (m, n)))


def _check_operands(a: np.ndarray, b: np.ndarray, m: int, k: int, n: int) -> None:
    if a.shape != (m, k) or b.shape != (k, n):
        raise UserError(f"operands {a.shape} and {b.shape} do not match the kernel's {m}x{k}x{n}")


def gemm_t(m: int, k: int, n: int, grid: tuple[int, int]) -> Kernel:
    """C = A @ B.T with A (m x k) and B (n x k), without transposing B (for Q K^T).

    B rotates along y and the partial C blocks rotate along x on the interleaved rings, so
    every step is a two-hop shift of both: core (i, j) always holds the B block and the
    running sum that match (C block (i, i + j + s) at step s), so no per-step ReduceAdd is
    needed; the next B block travels while the current one is multiplied.
    """
    size, physical = logical_square(grid)
    bm, bk, bn = _blocks(m, size), _blocks(k, size), _blocks(n, size)
    program = MeshProgram.on(f"gemm-t {m}x{k}x{n}", (size, size), physical, interleaved=True)
    program.buffer("A", (bm, bk))
    program.buffer("B", (bn, bk))
    program.buffer("C", (bm, bn))
    program.buffer("P", (bm, bn))
    program.buffer("B.next", (bn, bk))
    lines = np.arange(size)
    program.add(*rotate(program, "B", 0, lines))  # B block (i + j, j) to core (i, j)
    product = Compute("P", ("A", "B"), lambda a, b: a @ b.swapaxes(-1, -2), macs=bm * bk * bn, label="P = A B^T")
    add = Compute("C", ("P",), lambda p: p, macs=bm * bn, accumulate=True, label="C += P")
    shift_b = Shift("B", 0, offsets=np.array([1]), label="shift B")
    shift_c = Shift("C", 1, offsets=np.array([1]), label="shift C")
    # the next B block travels while this one is used; the updated sum then moves on
    overlapped = Parallel((product, shift_b))
    for _ in range(size - 1):
        program.add(overlapped, add, shift_c)
    program.add(product, add)
    # after the last multiply core (i, j) holds C block (i, i + j + size - 1): rotate row i home
    program.add(*rotate(program, "C", 1, -(lines + size - 1)))

    def scatter(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        if a.shape != (m, k) or b.shape != (n, k):
            raise UserError(f"operands {a.shape} and {b.shape} do not match the kernel's A {m}x{k}, B {n}x{k}")
        return {
            "A": tile(a, size, size, (bm, bk)),
            "B": tile(b, size, size, (bn, bk)),
            "C": np.zeros((size, size, bm, bn), dtype=np.result_type(a, b)),
        }

    return Kernel(program, scatter, lambda state: untile(state["C"], (m, n)))


# -- GEMV ------------------------------------------------------------------------------------


def gemv(
    method: str, k: int, n: int, grid: tuple[int, int], tree_k: int = 2, k_axis: int = 0, broadcast: bool = True
) -> Kernel:
    """y = x @ W with x (k) and W (k x n): W 2-D tiled, x split along `k_axis` and replicated
    across it; a local GEMV, then a reduction of the partial outputs along `k_axis`.

    With `broadcast` (an allreduce) the result ends split across the other axis and replicated
    along `k_axis`, the input layout of a GEMV with the axes swapped, so consecutive GEMVs need
    no transpose. Without it, the result stays on the reduction's root line.
    """
    if method not in GEMV_METHODS:
        raise UserError(f"unknown GEMV method {method!r}; choose one of {', '.join(GEMV_METHODS)}")
    py, px = grid
    parts_k = grid[k_axis]
    parts_n = grid[1 - k_axis]
    bk, bn = _blocks(k, parts_k), _blocks(n, parts_n)
    program = MeshProgram.on(f"gemv-{method} {k}x{n}", grid, interleaved=method == "ring")
    program.buffer("W", (bk, bn))
    program.buffer("x", (bk,))
    program.buffer("y", (bn,))
    program.add(Compute("y", ("x", "W"), lambda x, w: (x[..., None, :] @ w)[..., 0, :], macs=bk * bn, label="y = x W"))
    root = allreduce(program, "y", k_axis, method=method, k=tree_k, broadcast=broadcast)

    def scatter(x: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
        if x.shape != (k,) or w.shape != (k, n):
            raise UserError(f"operands {x.shape} and {w.shape} do not match the kernel's {k} and {k}x{n}")
        tiles = tile(w, parts_k, parts_n, (bk, bn))
        chunks = np.zeros(parts_k * bk, dtype=x.dtype)
        chunks[:k] = x
        chunks = chunks.reshape(parts_k, bk)
        if k_axis == 0:
            return {
                "W": tiles,
                "x": np.broadcast_to(chunks[:, None, :], (py, px, bk)).copy(),
                "y": np.zeros((py, px, bn)),
            }
        return {
            "W": tiles.transpose(1, 0, 2, 3),
            "x": np.broadcast_to(chunks[None, :, :], (py, px, bk)).copy(),
            "y": np.zeros((py, px, bn)),
        }

    def gather(state: dict[str, np.ndarray]) -> np.ndarray:
        y = state["y"]
        line = y[root] if k_axis == 0 else y[:, root]  # the root line (every line, if broadcast)
        return line.reshape(-1)[:n]

    return Kernel(program, scatter, gather)
