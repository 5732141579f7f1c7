"""Mesh programs: SPMD steps on a grid of cores, with a functional meaning and PLMR accounting.

A program runs on a *logical* grid of cores (rows x columns). Each logical core owns a tile of
every named buffer; the state is one numpy array per buffer of shape (rows, cols, *tile).
Logical cores sit on physical cores through one `Placement` per axis (identity, interleaved,
or several logical cores per physical one for non-square meshes), which is where hop counts,
route tables and per-core memory come from.

Steps, each with a functional meaning (`execute`) and a cost (`garagelab.wafer.cost`):

- `Compute`: a local operation on every core (`macs` multiply-accumulates per core).
- `Shift`: every core receives the tile of another core on its line (a permutation).
- `Multicast`: cores receive a copy of a root's tile (one to many).
- `Reduce`: chained reduction: each chain passes a running sum towards its last core.
- `Parallel`: steps that overlap in time (all read the old state, then all write).
- `Barrier`: every core waits for the slowest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from garagelab.core.errors import UserError


class PLMRViolation(UserError):
    """A program needs more of a per-core resource (routes, memory) than the device has."""


@dataclass(frozen=True)
class Placement:
    """Physical coordinate along one axis of every logical index on that axis."""

    position: np.ndarray

    @classmethod
    def linear(cls, logical: int, physical: int | None = None) -> Placement:
        physical = logical if physical is None else physical
        return cls(np.arange(logical) * physical // logical)

    @classmethod
    def interleaved(cls, logical: int, physical: int | None = None) -> Placement:
        """The ring 0,1,...,n-1 laid out as 0,2,4,...,5,3,1: every ring edge is at most 2 hops."""
        physical = logical if physical is None else physical
        return cls(interleave_positions(logical) * physical // logical)

    @property
    def size(self) -> int:
        return len(self.position)

    @property
    def physical(self) -> int:
        return int(self.position.max()) + 1

    @property
    def hosted(self) -> int:
        """Logical indices per physical core along this axis."""
        return math.ceil(self.size / self.physical)


def interleave_positions(n: int) -> np.ndarray:
    """pos[i]: the physical slot of ring index i: 0,2,4,...,5,3,1 (ring edges at most 2 hops)."""
    return np.concatenate([np.arange(0, n, 2), np.arange(n - 1 - (n % 2 == 1), 0, -2)])


@dataclass(frozen=True)
class Buffer:
    """A per-core tile."""

    name: str
    shape: tuple[int, ...]
    bytes_per_element: int = 2

    @property
    def nbytes(self) -> int:
        """Exact (Python ints): an int64 product overflowed for the tiles a device with absurd SRAM
        (`--set sram_bytes=1e30`) lets the autotuner try."""
        return math.prod(int(n) for n in self.shape) * self.bytes_per_element

    @property
    def words(self) -> int:
        """32-bit words on the wire."""
        return math.ceil(self.nbytes / 4)


@dataclass(frozen=True)
class Compute:
    out: str
    inputs: tuple[str, ...]
    fn: Callable[..., np.ndarray]
    macs: float  # per logical core
    accumulate: bool = False
    label: str = ""


@dataclass(frozen=True)
class Shift:
    """Every core receives the tile of another core on its line along `axis`: the core
    `source[line, i]`, or, for a ring shift, the core (i + offsets[line]) mod n."""

    buffer: str
    axis: int
    source: np.ndarray | None = None  # (lines or 1, n)
    offsets: np.ndarray | None = None  # (lines or 1,)
    label: str = ""

    def source_map(self, n: int) -> np.ndarray:
        if self.source is not None:
            return self.source
        return (np.arange(n)[None, :] + np.asarray(self.offsets).reshape(-1, 1)) % n


@dataclass(frozen=True)
class Multicast:
    """Every core receives a copy of core `source[line, i]`'s tile (into `target`).

    A multicast on a fixed tree is one configured route (the router copies each wavelet on).
    With `relay`, every core on the way receives and forwards in software, one routing stage
    per hop: how broadcasts from ever-changing roots run once the router's route table is full
    (the paper's O((alpha + beta) N) for SUMMA and allgather).
    """

    buffer: str
    axis: int
    source: np.ndarray
    target: str = ""
    relay: bool = False
    label: str = ""

    def source_map(self, n: int) -> np.ndarray:
        return self.source


@dataclass(frozen=True)
class Reduce:
    """Chained sums along `axis`: each chain ends at its root, which receives the total.

    Chains may share a root (two chains meeting in the middle of a group); the root's own
    tile is counted once.
    """

    buffer: str
    axis: int
    chains: tuple[tuple[int, ...], ...]
    label: str = ""


@dataclass(frozen=True)
class Parallel:
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Barrier:
    label: str = ""


Step = Union[Compute, Shift, Multicast, Reduce, Parallel, Barrier]  # noqa: UP007


@dataclass
class MeshProgram:
    """A named list of steps over a logical grid placed on a physical one."""

    name: str
    grid: tuple[int, int]
    placement: tuple[Placement, Placement]
    buffers: dict[str, Buffer] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    # per-core values the program brings with it (such as each core's index on an axis)
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def on(cls, name: str, grid: tuple[int, int], physical: tuple[int, int] | None = None, interleaved: bool = False):
        """A program on a `grid` of logical cores hosted on `physical` (default: the same grid)."""
        physical = physical or grid
        make = Placement.interleaved if interleaved else Placement.linear
        return cls(name, grid, (make(grid[0], physical[0]), make(grid[1], physical[1])))

    @property
    def physical(self) -> tuple[int, int]:
        return (self.placement[0].physical, self.placement[1].physical)

    @property
    def hosted(self) -> int:
        """Logical cores per physical core."""
        return self.placement[0].hosted * self.placement[1].hosted

    def buffer(self, name: str, shape: Sequence[int], bytes_per_element: int = 2) -> Buffer:
        buffer = Buffer(name, tuple(int(s) for s in shape), bytes_per_element)
        self.buffers[name] = buffer
        return buffer

    def coordinate(self, axis: int) -> str:
        """The name of a constant buffer holding each core's logical index along `axis`."""
        name = f"index.{'yx'[axis]}"
        if name not in self.constants:
            rows, cols = self.grid
            values = np.arange(self.grid[axis])
            grid = np.broadcast_to(values[:, None] if axis == 0 else values[None, :], (rows, cols))
            self.constants[name] = np.ascontiguousarray(grid, dtype=np.int32)
            self.buffer(name, (), bytes_per_element=4)
        return name

    def add(self, *steps: Step) -> None:
        self.steps.extend(steps)

    def link_words(self, buffer: str, axis: int) -> int:
        """Words crossing one link when `buffer` moves along `axis`: a tile, times the logical
        cores stacked across the axis (they share the physical line)."""
        return self.buffers[buffer].words * self.placement[1 - axis].hosted

    def flat_steps(self) -> list[Step]:
        out: list[Step] = []
        for step in self.steps:
            out.extend(step.steps if isinstance(step, Parallel) else (step,))
        return out

    def extend(self, other: MeshProgram) -> None:
        """Append another program's buffers and steps (same grid)."""
        if other.grid != self.grid:
            raise ValueError(f"cannot join a {other.grid} program to a {self.grid} one")
        self.buffers.update(other.buffers)
        self.constants.update(other.constants)
        self.steps.extend(other.steps)


# -- functional meaning ----------------------------------------------------------------------


def _gather_along(values: np.ndarray, axis: int, source: np.ndarray) -> np.ndarray:
    """values with index `source` along `axis` (source is (lines or 1, n))."""
    rows, cols = values.shape[:2]
    index = np.broadcast_to(source, (rows, cols)) if axis == 1 else np.broadcast_to(source, (cols, rows)).T
    return np.take_along_axis(values, index.reshape(index.shape + (1,) * (values.ndim - 2)), axis=axis)


def reduce_matrix(n: int, chains: Sequence[Sequence[int]]) -> np.ndarray:
    """R[root, i] = 1 when index i's tile is summed into root."""
    matrix = np.zeros((n, n))
    for chain in chains:
        root = chain[-1]
        matrix[root, list(chain)] = 1.0
    return matrix


def _apply(step: Step, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The buffers a step writes, computed from `state` (which it does not modify)."""
    if isinstance(step, Compute):
        value = step.fn(*(state[name] for name in step.inputs))
        if step.accumulate:
            value = state[step.out] + value
        return {step.out: value}
    if isinstance(step, Shift):
        source = step.source_map(state[step.buffer].shape[step.axis])
        return {step.buffer: _gather_along(state[step.buffer], step.axis, source)}
    if isinstance(step, Multicast):
        return {step.target or step.buffer: _gather_along(state[step.buffer], step.axis, step.source)}
    if isinstance(step, Reduce):
        values = state[step.buffer]
        n = values.shape[step.axis]
        matrix = reduce_matrix(n, step.chains)
        moved = np.moveaxis(values, step.axis, 0)
        summed = np.tensordot(matrix, moved, axes=(1, 0))
        roots = matrix.any(axis=1) & (np.diag(matrix) > 0)
        result = np.where(roots.reshape((-1,) + (1,) * (moved.ndim - 1)), summed, moved)
        return {step.buffer: np.moveaxis(result.astype(values.dtype), 0, step.axis)}
    if isinstance(step, Parallel):
        writes: dict[str, np.ndarray] = {}
        for sub in step.steps:
            out = _apply(sub, state)
            clash = set(out) & set(writes)
            if clash:
                raise ValueError(f"parallel steps both write {', '.join(sorted(clash))}")
            writes.update(out)
        return writes
    return {}


def execute(program: MeshProgram, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a program on per-core tiles; returns the final state (inputs are not modified)."""
    state = {**program.constants, **state}
    for name, buffer in program.buffers.items():
        expected = (*program.grid, *buffer.shape)
        if name in state and state[name].shape != expected:
            raise ValueError(f"buffer {name}: state has shape {state[name].shape}, program needs {expected}")
    for step in program.steps:
        state.update(_apply(step, state))
    return state


# -- PLMR accounting -------------------------------------------------------------------------


def memory_per_core(program: MeshProgram) -> int:
    """Bytes of SRAM one physical core needs for its tiles of every buffer."""
    return program.hosted * sum(b.nbytes for b in program.buffers.values())


def route_usage(program: MeshProgram) -> np.ndarray:
    """Routes each physical core's router must hold over the whole program.

    A route is a directed link between two cores of a line (one at each end, and one at every
    core it passes) or a multicast tree (one at every core it spans). The same route used by
    many steps counts once: a ring shifted a thousand times needs the routes of one shift.
    """
    usage = np.zeros(program.physical, dtype=int)
    for axis in (0, 1):
        along, across = program.placement[axis], program.placement[1 - axis]
        n, lines = program.grid[axis], program.grid[1 - axis]
        ring = [set() for _ in range(lines)]  # per line: ring-shift offsets used
        links = [set() for _ in range(lines)]  # per line: other (src, dst) links
        common: set[tuple[int, int]] = set()  # (src, dst) links used on every line (reductions)
        trees: list[np.ndarray] = []  # (line, root, lo, hi) logical
        seen: set[tuple] = set()
        for step in program.flat_steps():
            if not isinstance(step, Shift | Multicast | Reduce) or step.axis != axis:
                continue
            key = _pattern_key(step)
            if key in seen:
                continue
            seen.add(key)
            if isinstance(step, Reduce):
                common.update(pair for chain in step.chains for pair in itertools.pairwise(chain))
            elif isinstance(step, Shift) and step.offsets is not None:
                offsets = np.broadcast_to(np.asarray(step.offsets).reshape(-1), (lines,)) % n
                for value in np.unique(offsets[offsets != 0]):
                    for line in np.flatnonzero(offsets == value):
                        ring[line].add(int(value))
            elif isinstance(step, Shift):
                source = np.broadcast_to(step.source_map(n), (lines, n))
                line, dst = np.nonzero(source != np.arange(n))
                for ln, a, b in zip(line, source[line, dst], dst, strict=True):
                    links[ln].add((int(a), int(b)))
            else:
                source = step.source_map(n)
                line, dst = np.nonzero(source != np.arange(n))
                spans = _tree_spans(line, source[line, dst], dst)
                if source.shape[0] == 1:  # the same trees on every line
                    spans = np.concatenate([spans + np.array([line, 0, 0, 0]) for line in range(lines)])
                trees.append(spans)
        count = np.zeros((across.physical, along.physical), dtype=int)
        # lines with the same routes have the same count: work it out once per distinct set
        by_signature: dict[tuple, np.ndarray] = {}
        for line in range(lines):
            signature = (frozenset(ring[line]), frozenset(links[line]))
            if signature not in by_signature:
                edges = set(common) | links[line]
                edges |= {((i + o) % n, i) for o in ring[line] for i in range(n)}
                by_signature[signature] = _line_count(edges, along)
            count[across.position[line]] += by_signature[signature]
        if trees:
            count += _tree_count(np.concatenate(trees), along, across)
        usage += count if axis == 1 else count.T
    return usage


def _line_count(edges: set[tuple[int, int]], along: Placement) -> np.ndarray:
    """Routes at each physical position of one line for a set of logical links."""
    count = np.zeros(along.physical + 1, dtype=int)
    if not edges:
        return count[:-1]
    src, dst = np.array(sorted(edges)).T
    physical = np.unique(np.stack([along.position[src], along.position[dst]], axis=1), axis=0)
    physical = physical[physical[:, 0] != physical[:, 1]]  # tiles of one physical core: no route
    lo, hi = physical.min(axis=1), physical.max(axis=1)
    np.add.at(count, lo + 1, 1)
    np.add.at(count, hi, -1)
    count = np.cumsum(count)[:-1]
    np.add.at(count, physical[:, 0], 1)
    np.add.at(count, physical[:, 1], 1)
    return count


def _tree_spans(line: np.ndarray, root: np.ndarray, receiver: np.ndarray) -> np.ndarray:
    """(line, root, lo, hi) of each multicast tree (one per line and root)."""
    keys, inverse = np.unique(np.stack([line, root], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    lo, hi = keys[:, 1].copy(), keys[:, 1].copy()
    np.minimum.at(lo, inverse, receiver)
    np.maximum.at(hi, inverse, receiver)
    return np.stack([keys[:, 0], keys[:, 1], lo, hi], axis=1)


def _tree_count(trees: np.ndarray, along: Placement, across: Placement) -> np.ndarray:
    """Cores spanned by each distinct (line, root) multicast tree."""
    line, root = across.position[trees[:, 0]], along.position[trees[:, 1]]
    lo, hi = along.position[trees[:, 2]], along.position[trees[:, 3]]
    width = along.physical
    _, first = np.unique(line * width + root, return_index=True)
    line, lo, hi = line[first], np.minimum(lo, hi)[first], np.maximum(lo, hi)[first]
    diff = np.zeros((across.physical, width + 1), dtype=int)
    np.add.at(diff, (line, lo), 1)
    np.add.at(diff, (line, hi + 1), -1)
    return np.cumsum(diff, axis=1)[:, :-1]


def _pattern_key(step: Shift | Multicast | Reduce) -> tuple:
    if isinstance(step, Reduce):
        return ("reduce", step.axis, step.chains)
    if isinstance(step, Shift) and step.offsets is not None:
        return ("ring", step.axis, np.asarray(step.offsets).tobytes())
    return (type(step).__name__, step.axis, step.source.tobytes(), step.source.shape)


def check_plmr(program: MeshProgram, sram_bytes: int, route_budget: int) -> None:
    """Raise PLMRViolation if any core needs more routes or memory than the device has."""
    memory = memory_per_core(program)
    if memory > sram_bytes:
        raise PLMRViolation(
            f"{program.name}: core (0, 0) needs {memory:,} bytes of SRAM for its tiles "
            f"({', '.join(f'{b.name} {b.nbytes:,}' for b in program.buffers.values())}) but the limit "
            f"is {sram_bytes:,}; use a larger grid or smaller tiles"
        )
    usage = route_usage(program)
    if usage.size and usage.max() > route_budget:
        y, x = np.unravel_index(int(usage.argmax()), usage.shape)
        raise PLMRViolation(
            f"{program.name}: core ({y}, {x}) needs {int(usage.max())} routes but a router holds "
            f"{route_budget}; use a collective with O(1) routes per core (e.g. MeshGEMM, K-tree)"
        )
