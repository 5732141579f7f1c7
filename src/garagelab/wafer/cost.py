"""Two cost models of a mesh program on a device, built from the same per-message latencies.

- `closed_form`: each step costs its slowest core (compute, or the slowest message, or the
  longest reduction chain); steps add up; `Parallel` steps overlap (max). Exact for regular
  programs; a program compiles once to a `Form` that prices any device in microseconds.
- `timestamps`: a clock per logical core, advanced step by step (vectorised): a message
  arrives at max(receiver free, sender ready + latency), a reduction chain stage starts when
  both the running sum and the local tile are ready. Captures skew between cores, and link
  contention: streams that share a link share its bandwidth (`links`).

A message of w words over h hops costs beta + h * alpha + w / bandwidth cycles (the routing
stage, the hops, the words), or h * (alpha + beta) + w / bandwidth when relayed by every core
on the way; a reduction chain is pipelined, so each stage costs beta + h * alpha and the
words are paid once. With contention the words cost w * load / bandwidth, load being the
number of streams on the busiest link of the message's route; `meshsim` checks this word by
word (docs/wafer/README.md, Link contention).

The closed form ignores contention: it prices every message as if it had its links to itself.
That is exact for every kernel here, whose steps never put two streams on one link
(MeshGEMM's interleaved shifts, Cannon's alignment by unit shifts, K-tree reductions,
fixed-tree multicasts; tested), and an underestimate for congested patterns such as a long
shift or one core sending to many without a tree; `congested_steps` lists a program's steps
where the two differ. On programs without congestion the two models agree
(tested).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from garagelab.wafer.device import DeviceModel
from garagelab.wafer.links import chain_loads, receive_loads, step_load
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
    """Per-core message latencies of one program on one device (for the timestamp model)."""

    def __init__(self, program: MeshProgram, device: DeviceModel, contention: bool = True) -> None:
        self.program = program
        self.device = device
        self.contention = contention
        self._ring: dict[tuple[int, float, int], np.ndarray] = {}
        # per step object (a loop runs the same one many times; the program keeps it alive)
        self._sources: dict[int, np.ndarray] = {}
        self._moves: dict[int, np.ndarray] = {}
        self._chains: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | int]] = {}

    def compute(self, step: Compute) -> float:
        """A physical core works through the tiles of every logical core it hosts."""
        return self.program.hosted * step.macs / self.device.macs_per_cycle + self.device.op_overhead

    def words(self, step: Shift | Multicast | Reduce) -> float:
        return self.program.link_words(step.buffer, step.axis)

    def _message(
        self, hops: np.ndarray, moved: np.ndarray, words: float, load: np.ndarray, relay: bool = False
    ) -> np.ndarray:
        share = np.maximum(load, 1) if self.contention else 1
        transfer = words * share / self.device.link_words_per_cycle
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
            load = receive_loads(Shift("", axis, offsets=np.array([offset])), self.program)[0]
            self._ring[key] = self._message(hops, source != np.arange(n), words, load)
        return self._ring[key]

    def sent(self, step: Shift | Multicast, clock: np.ndarray) -> np.ndarray:
        """Each logical core's clock as seen by its receiver (the sender's clock)."""
        if isinstance(step, Shift) and step.offsets is not None:  # ring shifts: roll each line
            offsets = np.asarray(step.offsets).reshape(-1)
            if offsets.size == 1:
                return np.roll(clock, -int(offsets[0]), axis=step.axis)
            lines = np.moveaxis(clock, step.axis, 1)  # (lines, n) view
            out = np.empty_like(lines)
            for value in np.unique(offsets):
                pick = offsets == value
                out[pick] = np.roll(lines[pick], -int(value), axis=1)
            return np.moveaxis(out, 1, step.axis)
        key = id(step)
        if key not in self._sources:
            self._sources[key] = step.source_map(self.program.grid[step.axis])
        return _gather_along(clock, step.axis, self._sources[key])

    def move(self, step: Shift | Multicast) -> np.ndarray:
        """Cycles until each logical core (lines or 1, n along the axis) holds its new tile."""
        key = id(step)
        if key not in self._moves:
            self._moves[key] = self._move(step)
        return self._moves[key]

    def _move(self, step: Shift | Multicast) -> np.ndarray:
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
        relay = isinstance(step, Multicast) and step.relay
        return self._message(hops, source != np.arange(n), words, receive_loads(step, self.program), relay)

    def chain_stages(self, step: Reduce) -> tuple[np.ndarray, np.ndarray, np.ndarray | int]:
        """Chains padded at the front with -1, the cost of the stage into each position, and
        each chain's share of its busiest link (1 without contention)."""
        key = id(step)
        if key not in self._chains:
            share = np.maximum(chain_loads(step, self.program), 1) if self.contention else 1
            self._chains[key] = (*self._chain_stages(step), share)
        return self._chains[key]

    def _chain_stages(self, step: Reduce) -> tuple[np.ndarray, np.ndarray]:
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


def _macs(program: MeshProgram) -> float:
    return program.hosted * sum(s.macs for s in program.flat_steps() if isinstance(s, Compute))


# The closed form is linear in the device constants within each step, and a step costs the
# max of its terms: a program compiles once to (terms x constants) coefficients and is then
# priced for any device with one matrix-vector product.
CONSTANTS = ("1/macs_per_cycle", "op_overhead", "beta", "alpha", "1/link_words_per_cycle")


def constants_of(device: DeviceModel) -> np.ndarray:
    return np.array(
        [1.0 / device.macs_per_cycle, device.op_overhead, device.beta, device.alpha, 1.0 / device.link_words_per_cycle]
    )


@dataclass(frozen=True)
class Form:
    """A program's closed form: step cost = max over its terms of coef . constants."""

    coef: np.ndarray  # (terms, 5)
    group: np.ndarray  # (terms,) the step each term belongs to
    compute: np.ndarray  # (terms,) whether the term is computation
    weight: np.ndarray  # (steps,) how many times each step runs
    macs: float

    def evaluate(self, device: DeviceModel) -> Cost:
        value = self.coef @ constants_of(device)
        steps = np.zeros(len(self.weight))
        np.maximum.at(steps, self.group, value)
        work = np.zeros(len(self.weight))
        np.maximum.at(work, self.group[self.compute], value[self.compute])
        return Cost(float(self.weight @ steps), float(self.weight @ work), self.macs)

    def __add__(self, other: Form) -> Form:
        return Form(
            np.concatenate([self.coef, other.coef]),
            np.concatenate([self.group, other.group + len(self.weight)]),
            np.concatenate([self.compute, other.compute]),
            np.concatenate([self.weight, other.weight]),
            self.macs + other.macs,
        )

    def scaled(self, factor: float) -> Form:
        return Form(self.coef, self.group, self.compute, self.weight * factor, self.macs * factor)


EMPTY_FORM = Form(np.zeros((0, 5)), np.zeros(0, dtype=int), np.zeros(0, dtype=bool), np.zeros(0), 0.0)


def _terms(step: Step, program: MeshProgram) -> list[tuple[tuple[float, ...], bool]]:
    """(coefficients, is compute) of each term of one step."""
    if isinstance(step, Compute):
        return [((program.hosted * step.macs, 1.0, 0.0, 0.0, 0.0), True)]
    if isinstance(step, Shift | Multicast):
        n = program.grid[step.axis]
        words = program.link_words(step.buffer, step.axis)
        position = program.placement[step.axis].position
        if isinstance(step, Shift) and step.offsets is not None:
            # a ring shift: the distinct offsets are the distinct rows of the move map
            offsets = np.unique(np.asarray(step.offsets) % n)
            source = (np.arange(n)[None, :] + offsets[:, None]) % n
        else:
            source = step.source_map(n)
        moved = source != np.arange(n)
        if not moved.any():
            return []
        hops = np.abs(position[source] - position[np.arange(n)])[moved]
        far = float(hops.max())
        relay = isinstance(step, Multicast) and step.relay
        terms = [((0.0, 0.0, far if relay else 1.0, far, words), False)] if far > 0 else []
        if (hops == 0).any():
            terms.append(((0.0, 0.0, 0.0, 0.0, words), False))
        return terms
    if isinstance(step, Reduce):
        words = program.link_words(step.buffer, step.axis)
        position = program.placement[step.axis].position
        chains = set()
        for chain in step.chains:
            hops = np.abs(np.diff(position[list(chain)]))
            chains.add((float((hops > 0).sum()), float(hops.sum())))
        return [((0.0, 0.0, stages, hops, words), False) for stages, hops in chains]
    if isinstance(step, Parallel):
        return [term for sub in step.steps for term in _terms(sub, program)]
    return []


def compile_form(program: MeshProgram) -> Form:
    """The closed form of a program, independent of the device (see `Form.evaluate`)."""
    coef, group, compute, weight = [], [], [], []
    index: dict[int, int] = {}
    for step in program.steps:
        key = id(step)
        if key in index:  # the same step object again (a loop): count it, do not re-derive it
            weight[index[key]] += 1
            continue
        terms = _terms(step, program)
        if not terms:
            continue
        index[key] = len(weight)
        weight.append(1.0)
        for values, is_compute in terms:
            coef.append(values)
            group.append(index[key])
            compute.append(is_compute)
    if not weight:
        return Form(EMPTY_FORM.coef, EMPTY_FORM.group, EMPTY_FORM.compute, EMPTY_FORM.weight, _macs(program))
    return Form(np.array(coef), np.array(group), np.array(compute), np.array(weight), _macs(program))


def closed_form(program: MeshProgram, device: DeviceModel) -> Cost:
    """Sum over steps of each step's slowest core."""
    return compile_form(program).evaluate(device)


def _advance(step: Step, clock: np.ndarray, pricing: _Pricing) -> np.ndarray:
    """Per-core clocks after a step."""
    if isinstance(step, Compute):
        return clock + pricing.compute(step)
    if isinstance(step, Shift | Multicast):
        latency = pricing.move(step)
        if step.axis == 0:
            latency = latency.T
        return np.maximum(clock, pricing.sent(step, clock) + latency)
    if isinstance(step, Reduce):
        index, stage, share = pricing.chain_stages(step)
        along = np.moveaxis(clock, step.axis, -1).copy()  # (lines, n)
        start = np.full((along.shape[0], index.shape[0]), -np.inf)
        for k in range(index.shape[1]):
            valid = index[:, k] >= 0
            here = along[:, np.maximum(index[:, k], 0)]
            start = np.where(valid, np.maximum(here, start + stage[:, k]), start)
            np.maximum.at(along, (slice(None), index[valid, k]), start[:, valid])
        done = start + pricing.words(step) * share / pricing.device.link_words_per_cycle
        np.maximum.at(along, (slice(None), index[:, -1]), done)
        return np.moveaxis(along, -1, step.axis)
    if isinstance(step, Parallel):
        return functools.reduce(np.maximum, (_advance(s, clock, pricing) for s in step.steps))
    if isinstance(step, Barrier):
        return np.full_like(clock, clock.max())
    raise TypeError(f"unknown step {step!r}")


def timestamps(
    program: MeshProgram, device: DeviceModel, clock: np.ndarray | None = None, contention: bool = True
) -> tuple[Cost, np.ndarray]:
    """Critical path from per-core clocks, and the final clock of every logical core; with
    `contention`, streams sharing a link share its bandwidth."""
    pricing = _Pricing(program, device, contention)
    clock = np.zeros(program.grid) if clock is None else clock
    start = float(clock.max())
    for step in program.steps:
        clock = _advance(step, clock, pricing)
    compute = compile_form(program).evaluate(device).compute_cycles  # the critical path's computation
    return Cost(float(clock.max()) - start, compute, _macs(program)), clock


def congested_steps(program: MeshProgram) -> list[tuple[str, int]]:
    """(label, streams on the busiest link) of every distinct communication step that puts
    more than one stream on a link: where the closed form is an underestimate."""
    found, seen = [], set()
    for step in program.flat_steps():
        if not isinstance(step, Shift | Multicast | Reduce) or id(step) in seen:
            continue
        seen.add(id(step))
        load = step_load(step, program)
        if load > 1:
            found.append((step.label or f"{type(step).__name__.lower()} {step.buffer}", load))
    return found


COST_MODELS = ("closed", "timestamps")


def cost(program: MeshProgram, device: DeviceModel, model: str = "closed") -> Cost:
    """The program's cost under `model` ('closed' or 'timestamps')."""
    if model == "closed":
        return closed_form(program, device)
    if model == "timestamps":
        return timestamps(program, device)[0]
    raise ValueError(f"unknown cost model {model!r}; choose one of {', '.join(COST_MODELS)}")
