"""Cycle-level simulation of one communication step, word by word, to check the timestamp
model's link contention (`links`) against explicit link arbitration.

Every stream (a shifted tile, a multicast tree's branch, a reduction chain) is a sequence of
words on a route of directed links between neighbouring cores. A link starts one word every
1 / bandwidth cycles, first come first served (ties in stream order), and the word reaches the
next core `alpha` cycles after it starts; buffers are unbounded (virtual cut-through). Words
leave their source from `beta` on, one per 1 / bandwidth cycles. A relayed multicast and a
reduction chain also spend `beta` at every core they pass through (receive, add, forward) and
a fixed-tree multicast copies words on in the router. A receiver holds its tile one word time
after its last word arrives. Uncontended, a stream of w words over h hops therefore takes
beta + h * alpha + w / bandwidth, the latency `cost` charges per message, and the question
this simulation answers is how contention changes it.

Routing is dimension-ordered and a step moves data along one axis, so each line of the mesh
is simulated on its own (identical lines once) and the step costs its slowest receiver.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

import numpy as np

from garagelab.wafer.device import DeviceModel
from garagelab.wafer.program import MeshProgram, Multicast, Reduce, Shift


@dataclass(frozen=True)
class Stream:
    """Words along a path of physical positions; `delays[j]`: cycles at position j before a
    word moves on; `receivers`: indices into the path of the positions that keep the words."""

    path: tuple[int, ...]
    delays: tuple[float, ...]
    receivers: tuple[int, ...]


def simulate_line(streams: list[Stream], words: float, device: DeviceModel) -> float:
    """Cycles until every receiver of every stream on one line holds all its words."""
    per_word = 1.0 / device.link_words_per_cycle
    count = max(1, round(words))
    done = 0.0
    free: dict[tuple[int, int], float] = {}
    events: list[tuple[float, int, int, int]] = []
    for s, stream in enumerate(streams):
        if len(stream.path) == 1:  # a local copy
            done = max(done, count * per_word)
            continue
        for k in range(count):
            events.append((stream.delays[0] + k * per_word, s, k, 0))
    heapq.heapify(events)
    while events:
        ready, s, k, hop = heapq.heappop(events)
        stream = streams[s]
        here, there = stream.path[hop], stream.path[hop + 1]
        link = (here, there)
        start = max(ready, free.get(link, 0.0))
        free[link] = start + per_word
        arrive = start + device.alpha
        if hop + 1 in stream.receivers and k == count - 1:
            done = max(done, arrive + per_word)
        if hop + 1 < len(stream.path) - 1:
            heapq.heappush(events, (arrive + stream.delays[hop + 1], s, k, hop + 1))
    return done


def _path(a: int, b: int) -> tuple[int, ...]:
    step = 1 if b >= a else -1
    return tuple(range(a, b + step, step))


def step_streams(step: Shift | Multicast | Reduce, program: MeshProgram, device: DeviceModel) -> list[list[Stream]]:
    """The streams of each distinct line of a communication step."""
    placement = program.placement[step.axis]
    position = placement.position
    beta = device.beta
    if isinstance(step, Reduce):
        line = []
        for chain in step.chains:
            path: list[int] = [int(position[chain[0]])]
            stops = [0]
            for a, b in itertools.pairwise(chain):
                path += list(_path(int(position[a]), int(position[b])))[1:]
                stops.append(len(path) - 1)
            delays = tuple(beta if j in stops[:-1] else 0.0 for j in range(len(path)))
            line.append(Stream(tuple(path), delays, (len(path) - 1,)))
        return [line]
    n = program.grid[step.axis]
    rows = np.unique(np.atleast_2d(step.source_map(n)), axis=0)
    lines = []
    for row in rows:
        src, dst = position[row], position[np.arange(n)]
        moved = row != np.arange(n)
        line: list[Stream] = []
        if isinstance(step, Multicast):
            relay = step.relay
            for root in np.unique(src[moved]):
                for side in (dst[moved & (src == root) & (dst > root)], dst[moved & (src == root) & (dst < root)]):
                    if not len(side):
                        continue
                    far = int(side.max() if side[0] > root else side.min())
                    path = _path(int(root), far)
                    delays = tuple(beta if (j == 0 or relay) else 0.0 for j in range(len(path)))
                    receivers = set(side.tolist())
                    keep = tuple(j for j, p in enumerate(path) if p in receivers)
                    line.append(Stream(path, delays, keep))
                if (moved & (src == root) & (dst == root)).any():
                    line.append(Stream((int(root),), (0.0,), (0,)))
        else:
            for a, b in zip(src[moved], dst[moved], strict=True):
                path = _path(int(a), int(b))
                line.append(Stream(path, (beta,) + (0.0,) * (len(path) - 1), (len(path) - 1,)))
        lines.append(line)
    return lines


def simulate_step(step: Shift | Multicast | Reduce, program: MeshProgram, device: DeviceModel) -> float:
    """Cycles one communication step takes, simulated word by word on every distinct line."""
    words = program.link_words(step.buffer, step.axis)
    return max((simulate_line(line, words, device) for line in step_streams(step, program, device)), default=0.0)
