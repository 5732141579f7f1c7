"""The prefill -> decode switch: every layer's weights and the prompt's KV cache move from the
prefill placement to the decode placement, over the fabric, all at once.

Prefill tiles every weight matrix K x N over a P x P region (K along y) and holds K and V with
the tokens along y and the KV width along x (layout B L_y E_x); decode tiles over R x C regions
(rectangles allowed), with the O and down projections' K along x (its GEMVs alternate their
split axis) and K and V as prefill holds them, tokens along y, re-blocked for R x C. Layers sit
in regions in order (`WaferPlan.layers_per_region` each), and regions are laid out in a snake
on each chip (`DeviceModel.region_corner`), as `plan` counts them.

Each element travels from its prefill core to its decode core by dimension-ordered routing (along
its row, then along the destination column). The elements of a matrix that share a source and a
destination core travel together, and the step functions that map an index to its core make
those groups products of index intervals, so the flows are exact without listing elements. The
time is the busiest link's bytes at the link's bandwidth (all flows run at once and share
links; see `links` for the same rule on one step), plus the longest route's hops and one
routing stage; a layer whose decode region is on another chip crosses the chip link instead,
one layer after another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from garagelab.wafer.device import DeviceModel
from garagelab.wafer.models import LLMConfig

if TYPE_CHECKING:  # llm prices the switch with this module
    from garagelab.wafer.llm import WaferPlan


@dataclass(frozen=True)
class Relayout:
    """What the switch moves and how long it takes."""

    seconds: float
    bytes_moved: float
    busiest_link_bytes: float
    longest_route_hops: int
    chip_link_bytes: float


def _intervals(n: int, source_parts: int, target_parts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices 0..n-1 in blocks of ceil(n / parts) on each side: (source block, target block,
    count) of each run of indices that share both."""
    size_s, size_t = math.ceil(n / source_parts), math.ceil(n / target_parts)
    cuts = np.union1d(np.arange(0, n, size_s), np.arange(0, n, size_t))
    ends = np.append(cuts[1:], n)
    return cuts // size_s, cuts // size_t, ends - cuts


def _cumulative(positions: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """C[i] = the weight at positions <= i, for i < n."""
    return np.cumsum(np.bincount(positions, weights, n))


def _steps(lines: np.ndarray, edges: np.ndarray, weights: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """S[line, i] = the weight of entries on `line` with edge <= i (a step up at each edge)."""
    diff = np.zeros((shape[0], shape[1] + 1))
    np.add.at(diff, (lines, edges), weights)
    return np.cumsum(diff, axis=1)[:, : shape[1]]


class _Loads:
    """Bytes on every directed link of the fabric: along rows (first leg of every route) and
    along columns (second leg), each direction apart; element groups are added a matrix at a
    time, in closed form over the index intervals (see the module docstring)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        rows, cols = shape
        self.shape = shape
        self.right, self.left = np.zeros((rows, cols)), np.zeros((rows, cols))
        self.down, self.up = np.zeros((cols, rows)), np.zeros((cols, rows))
        self.hops = 0
        self.bytes = 0.0

    def add(
        self, rows: int, cols: int, source: tuple[int, ...], target: tuple[int, ...], transposed: bool, scale: float
    ) -> None:
        """A rows x cols matrix (rows along y on the source region, which is a square) to the
        target region, rows along y again or, `transposed`, along x; `scale` bytes per element.
        Regions are (chip, corner row, corner column, rows, cols)."""
        (_, py, px, p, _), (_, qy, qx, q_rows, q_cols) = source, target
        height, width = self.shape
        # the target's parts along the matrix's rows and columns
        q_a, q_b = (q_cols, q_rows) if transposed else (q_rows, q_cols)
        a_src, a_dst, a_n = _intervals(rows, p, q_a)
        b_src, b_dst, b_n = _intervals(cols, p, q_b)
        a_n, b_n = a_n * scale, b_n.astype(float)  # the bytes per element counted once, on the rows
        self.bytes += float(a_n.sum() * b_n.sum())
        start_x, start_y = px + b_src, py + a_src
        if not transposed:  # each leg separates: a line's weight times a profile along it
            end_x, end_y = qx + b_dst, qy + a_dst
            for ahead, behind, first, start, end, weight, profile, n in (
                (self.right, self.left, py, start_x, end_x, np.bincount(a_src, a_n, p), b_n, width),
                (self.down, self.up, qx, start_y, end_y, np.bincount(b_dst, b_n, q_b), a_n, height),
            ):
                on, back = start < end, start > end
                forward = _cumulative(start[on], profile[on], n) - _cumulative(end[on], profile[on], n)
                backward = _cumulative(end[back], profile[back], n) - _cumulative(start[back], profile[back], n)
                ahead[first : first + len(weight)] += np.outer(weight, forward)
                behind[first : first + len(weight)] += np.outer(weight, backward)
            self.hops = max(self.hops, int(np.abs(end_x - start_x).max() + np.abs(end_y - start_y).max()))
            return
        # transposed: a row's groups end at their own column (a), start at the columns' (b)
        end_x, end_y = qx + a_dst, qy + b_dst
        started = _cumulative(start_x, b_n, width)  # columns' groups starting at or left of x
        ended = _cumulative(end_y, b_n, height)  # columns' groups ending at or above y
        before = _steps(a_src, np.zeros_like(end_x), a_n, (p, width)) - _steps(a_src, end_x, a_n, (p, width))
        after = _steps(a_src, end_x, a_n, (p, width))
        self.right[py : py + p] += before * started
        self.left[py : py + p] += after * (b_n.sum() - started)
        below = _steps(a_dst, start_y, a_n, (q_a, height))
        above = _steps(a_dst, np.zeros_like(start_y), a_n, (q_a, height)) - below
        self.down[qx : qx + q_a] += below * (b_n.sum() - ended)
        self.up[qx : qx + q_a] += above * ended
        hops = np.abs(end_x[:, None] - start_x[None, :]) + np.abs(end_y[None, :] - start_y[:, None])
        self.hops = max(self.hops, int(hops.max()))

    def busiest(self) -> float:
        return float(max(a.max(initial=0.0) for a in (self.right, self.left, self.down, self.up)))


def relayout(model: LLMConfig, prefill: WaferPlan, decode: WaferPlan, tokens: int, device: DeviceModel) -> Relayout:
    """The cost of moving weights and the KV cache of `tokens` prompt tokens (every request's
    of a batch) from `prefill`'s placement to `decode`'s."""
    e, q_dim, kv, f = model.hidden, model.q_dim, model.kv_dim, model.ffn
    # (rows, cols, transposed in decode): QKV, O, up+gate, down, then K and V (tokens x width)
    matrices = [(e, q_dim + 2 * kv, False), (q_dim, e, True), (e, 2 * f, False), (f, e, True)]
    matrices += [(tokens, kv, False)] * 2
    groups: dict[tuple[int, int], int] = {}
    for layer in range(model.layers):
        key = (layer // prefill.layers_per_region, layer // decode.layers_per_region)
        groups[key] = groups.get(key, 0) + 1
    loads = _Loads(device.usable)
    chip_bytes = 0.0
    crossings = 0
    for (source_region, target_region), layers in groups.items():
        source = (*device.region_corner(source_region, prefill.region), *prefill.region)
        target = (*device.region_corner(target_region, decode.region), *decode.region)
        if source[0] != target[0]:  # another chip: over the chip link
            chip_bytes += layers * device.bytes_per_element * sum(r * c for r, c, _ in matrices)
            crossings += layers
            continue
        for rows, cols, transposed in matrices:
            loads.add(rows, cols, source, target, transposed, layers * device.bytes_per_element)
    busiest = loads.busiest()
    link_bytes_per_cycle = device.link_words_per_cycle * 4
    cycles = busiest / link_bytes_per_cycle + loads.hops * device.alpha + device.beta
    chip_seconds = crossings * device.chip_link_latency_s + chip_bytes / device.chip_link_bytes_per_s
    return Relayout(
        seconds=device.seconds(cycles) + chip_seconds,
        bytes_moved=loads.bytes + chip_bytes,
        busiest_link_bytes=busiest,
        longest_route_hops=loads.hops,
        chip_link_bytes=chip_bytes,
    )
