"""Two cost models of a mesh program on a device, built from the same per-message latencies.

- `closed_form`: each step costs its slowest core (compute, or the slowest message, or the
  longest reduction chain); steps add up; `Parallel` steps overlap (max). Exact for regular
  programs, and fast: ring shifts are priced per distinct offset, repeated steps once.
- `timestamps`: a clock per logical core, advanced step by step (vectorised): a message
  arrives at max(receiver free, sender ready + latency), a reduction chain stage starts when
  both the running sum and the local tile are ready. Captures skew between cores.

A message of w words over h hops costs beta + h * alpha + w / bandwidth cycles (the routing
stage, the hops, the words), or h * (alpha + beta) + w / bandwidth when relayed by every core
on the way; a reduction chain is pipelined, so each stage costs beta + h * alpha and the
words are paid once. On regular programs the two models agree (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from garagelab.wafer.device import DeviceModel
from garagelab.wafer.program import (
    Barrier,
    Compute,
    MeshProgram,
    Multicast,
    Parallel,
    Reduce,
    Shift,
    Step,
    _gather_along,
)


@dataclass(frozen=True)
class Cost:
    """Critical-path cycles of a program, and how much of it is exposed communication."""

    cycles: float
    compute_cycles: float
    macs_per_core: float

    @property
    def communication_cycles(self) -> float:
        return self.cycles - self.compute_cycles

    @property
    def communication_share(self) -> float:
        return self.communication_cycles / self.cycles if self.cycles else 0.0

    def seconds(self, device: DeviceModel) -> float:
        return device.seconds(self.cycles)

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.cycles + other.cycles,
            self.compute_cycles + other.compute_cycles,
            self.macs_per_core + other.macs_per_core,
        )

    def scaled(self, factor: float) -> Cost:
        return Cost(self.cycles * factor, self.compute_cycles * factor, self.macs_per_core * factor)


ZERO = Cost(0.0, 0.0, 0.0)


class _Pricing:
    """Per-step latencies of one program on one device, cached across repeated steps."""

    def __init__(self, program: MeshProgram, device: DeviceModel) -> None:
        self.program = program
        self.device = device
        self._ring: dict[tuple[int, float, int], np.ndarray] = {}
        self._steps: dict[int, tuple[float, float]] = {}

    def compute(self, step: Compute) -> float:
        """A physical core works through the tiles of every logical core it hosts."""
        return self.program.hosted * step.macs / self.device.macs_per_cycle + self.device.op_overhead

    def words(self, step: Shift | Multicast | Reduce) -> float:
        """Words crossing one link: a tile, times the logical cores stacked across the axis."""
        return self.program.buffers[step.buffer].words * self.program.placement[1 - step.axis].hosted

    def _message(self, hops: np.ndarray, moved: np.ndarray, words: float, relay: bool = False) -> np.ndarray:
        transfer = words / self.device.link_words_per_cycle
        device = self.device
        routed = hops * (device.alpha + device.beta) if relay else device.beta + hops * device.alpha
        return np.where(moved, np.where(hops > 0, routed + transfer, transfer), 0.0)

    def _ring_latency(self, axis: int, words: float, offset: int) -> np.ndarray:
        key = (axis, words, offset)
        if key not in self._ring:
            n = self.program.grid[axis]
            position = self.program.placement[axis].position
            source = (np.arange(n) + offset) % n
            hops = np.abs(position[source] - position)
            self._ring[key] = self._message(hops, source != np.arange(n), words)
        return self._ring[key]

    def move(self, step: Shift | Multicast) -> np.ndarray:
        """Cycles until each logical core (lines or 1, n along the axis) holds its new tile."""
        n = self.program.grid[step.axis]
        words = self.words(step)
        if isinstance(step, Shift) and step.offsets is not None:
            offsets = np.asarray(step.offsets).reshape(-1)
            values, inverse = np.unique(offsets, return_inverse=True)
            table = np.stack([self._ring_latency(step.axis, words, int(v)) for v in values])
            return table[inverse.reshape(-1)]
        source = step.source_map(n)
        position = self.program.placement[step.axis].position
        hops = np.abs(position[source] - position[np.arange(n)])
        return self._message(hops, source != np.arange(n), words, relay=isinstance(step, Multicast) and step.relay)

    def move_max(self, step: Shift | Multicast) -> float:
        if isinstance(step, Shift) and step.offsets is not None:
            words = self.words(step)
            return max(float(self._ring_latency(step.axis, words, int(v)).max()) for v in np.unique(step.offsets))
        return float(self.move(step).max(initial=0.0))

    def chain_stages(self, step: Reduce) -> tuple[np.ndarray, np.ndarray]:
        """Chains padded at the front with -1, and the cost of the stage into each position."""
        length = max(len(c) for c in step.chains)
        index = np.full((len(step.chains), length), -1)
        for row, chain in enumerate(step.chains):
            index[row, length - len(chain) :] = chain
        position = self.program.placement[step.axis].position
        previous = np.concatenate([np.full((len(step.chains), 1), -1), index[:, :-1]], axis=1)
        both = (index >= 0) & (previous >= 0)
        hops = np.where(both, np.abs(position[np.maximum(index, 0)] - position[np.maximum(previous, 0)]), 0)
        stage = np.where(hops > 0, self.device.beta + hops * self.device.alpha, 0.0)
        return index, stage

    def step(self, step: Step) -> tuple[float, float]:
        """(cycles, of which compute) for one step on every core at once."""
        key = id(step)
        if key not in self._steps:
            self._steps[key] = self._price(step)
        return self._steps[key]

    def _price(self, step: Step) -> tuple[float, float]:
        if isinstance(step, Compute):
            cycles = self.compute(step)
            return cycles, cycles
        if isinstance(step, Shift | Multicast):
            return self.move_max(step), 0.0
        if isinstance(step, Reduce):
            _, stage = self.chain_stages(step)
            return float(stage.sum(axis=1).max()) + self.words(step) / self.device.link_words_per_cycle, 0.0
        if isinstance(step, Parallel):
            parts = [self.step(s) for s in step.steps]
            return max(p[0] for p in parts), max(p[1] for p in parts)
        return 0.0, 0.0


def _macs(program: MeshProgram) -> float:
    return program.hosted * sum(s.macs for s in program.flat_steps() if isinstance(s, Compute))


def closed_form(program: MeshProgram, device: DeviceModel) -> Cost:
    """Sum over steps of each step's slowest core."""
    pricing = _Pricing(program, device)
    total = compute = 0.0
    for step in program.steps:
        cycles, work = pricing.step(step)
        total += cycles
        compute += work
    return Cost(total, compute, _macs(program))


def _advance(step: Step, clock: np.ndarray, pricing: _Pricing) -> np.ndarray:
    """Per-core clocks after a step."""
    program = pricing.program
    if isinstance(step, Compute):
        return clock + pricing.compute(step)
    if isinstance(step, Shift | Multicast):
        latency = pricing.move(step)
        if step.axis == 0:
            latency = latency.T
        arrival = _gather_along(clock, step.axis, step.source_map(program.grid[step.axis])) + latency
        return np.maximum(clock, arrival)
    if isinstance(step, Reduce):
        index, stage = pricing.chain_stages(step)
        along = np.moveaxis(clock, step.axis, -1).copy()  # (lines, n)
        start = np.full((along.shape[0], index.shape[0]), -np.inf)
        for k in range(index.shape[1]):
            valid = index[:, k] >= 0
            here = along[:, np.maximum(index[:, k], 0)]
            start = np.where(valid, np.maximum(here, start + stage[:, k]), start)
            np.maximum.at(along, (slice(None), index[valid, k]), start[:, valid])
        done = start + pricing.words(step) / pricing.device.link_words_per_cycle
        np.maximum.at(along, (slice(None), index[:, -1]), done)
        return np.moveaxis(along, -1, step.axis)
    if isinstance(step, Parallel):
        return np.max([_advance(s, clock, pricing) for s in step.steps], axis=0)
    if isinstance(step, Barrier):
        return np.full_like(clock, clock.max())
    raise TypeError(f"unknown step {step!r}")


def timestamps(program: MeshProgram, device: DeviceModel, clock: np.ndarray | None = None) -> tuple[Cost, np.ndarray]:
    """Critical path from per-core clocks, and the final clock of every logical core."""
    pricing = _Pricing(program, device)
    clock = np.zeros(program.grid) if clock is None else clock
    start = float(clock.max())
    compute = 0.0
    for step in program.steps:
        clock = _advance(step, clock, pricing)
        compute += pricing.step(step)[1]
    return Cost(float(clock.max()) - start, compute, _macs(program)), clock


COST_MODELS = ("closed", "timestamps")


def cost(program: MeshProgram, device: DeviceModel, model: str = "closed") -> Cost:
    """The program's cost under `model` ('closed' or 'timestamps')."""
    if model == "closed":
        return closed_form(program, device)
    if model == "timestamps":
        return timestamps(program, device)[0]
    raise ValueError(f"unknown cost model {model!r}; choose one of {', '.join(COST_MODELS)}")
