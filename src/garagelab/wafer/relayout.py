"""The prefill -> decode switch: every layer's weights and the prompt's KV cache move from the
prefill placement to the decode placement, over the fabric, all at once.

Prefill tiles every weight matrix K x N over a P x P region (K along y) and holds K and V with
the tokens along y and the KV width along x (layout B L_y E_x); decode tiles over Q x Q regions,
with the O and down projections' K along x (its GEMVs alternate their split axis) and K and V
transposed (E_y L^x). Layers sit in regions in order (`WaferPlan.layers_per_region` each), and
regions are packed row-major on each chip, as `plan` counts them.

Each element travels from its prefill core to its decode core by dimension-ordered routing (along
its row, then along the destination column). The elements of a matrix that share a source and a
destination core travel together, and the step functions that map an index to its core make
those groups products of index intervals (at most P + Q along each dimension), so the flows are
exact without listing elements. The time is the busiest link's bytes at the link's bandwidth
(all flows run at once and share links; see `links` for the same rule on one step), plus the
longest route's hops and one routing stage; a layer whose decode region is on another chip
crosses the chip link instead, one layer after another.
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


def _origin(region: int, side: int, device: DeviceModel) -> tuple[int, int, int]:
    """(chip, row, column) of a region's corner: regions row-major on each chip."""
    across = device.usable[1] // side
    per_chip = (device.usable[0] // side) * across
    chip, index = divmod(region, per_chip)
    return chip, (index // across) * side, (index % across) * side


@dataclass(frozen=True)
class _Flows:
    """Element groups of one matrix of a group of layers: where from, where to, how many bytes."""

    y0: np.ndarray
    x0: np.ndarray
    y1: np.ndarray
    x1: np.ndarray
    size: np.ndarray


def _matrix_flows(
    rows: int,
    cols: int,
    source: tuple[int, int, int],
    target: tuple[int, int, int],
    transposed: bool,
    layers: int,
    bytes_per_element: int,
) -> _Flows:
    """A rows x cols matrix (rows along y on a P x P source region) to a Q x Q target region,
    with rows along y again or, `transposed`, along x; `layers` such matrices move together."""
    (_, py, px, p), (_, qy, qx, q) = source, target
    a_src, a_dst, a_count = _intervals(rows, p, q)
    b_src, b_dst, b_count = _intervals(cols, p, q)
    a = np.repeat(np.arange(len(a_src)), len(b_src))
    b = np.tile(np.arange(len(b_src)), len(a_src))
    y1, x1 = (qy + b_dst[b], qx + a_dst[a]) if transposed else (qy + a_dst[a], qx + b_dst[b])
    size = (a_count[a] * b_count[b]).astype(float) * layers * bytes_per_element
    return _Flows(py + a_src[a], px + b_src[b], y1, x1, size)


def _busiest(lines: np.ndarray, start: np.ndarray, end: np.ndarray, size: np.ndarray, shape: tuple[int, int]) -> float:
    """Bytes on the busiest directed link when each flow crosses its line from start to end."""
    busiest = 0.0
    for forward in (start < end, start > end):
        lo, hi = np.minimum(start, end)[forward], np.maximum(start, end)[forward]
        width = shape[1] + 1
        cells = shape[0] * width
        line = lines[forward] * width
        diff = np.bincount(line + lo, size[forward], cells) - np.bincount(line + hi, size[forward], cells)
        busiest = max(busiest, float(np.cumsum(diff.reshape(shape[0], width), axis=1).max(initial=0.0)))
    return busiest


def relayout(model: LLMConfig, prefill: WaferPlan, decode: WaferPlan, prompt: int, device: DeviceModel) -> Relayout:
    """The cost of moving weights and the prompt's KV cache from `prefill`'s placement to `decode`'s."""
    e, q_dim, kv, f = model.hidden, model.q_dim, model.kv_dim, model.ffn
    # (rows, cols, transposed in decode): QKV, O, up+gate, down, then K and V (tokens x width)
    matrices = [(e, q_dim + 2 * kv, False), (q_dim, e, True), (e, 2 * f, False), (f, e, True)]
    matrices += [(prompt, kv, True)] * 2
    groups: dict[tuple[int, int], int] = {}
    for layer in range(model.layers):
        key = (layer // prefill.layers_per_region, layer // decode.layers_per_region)
        groups[key] = groups.get(key, 0) + 1
    flows: list[_Flows] = []
    chip_bytes = 0.0
    crossings = 0
    for (source_region, target_region), layers in groups.items():
        source = (*_origin(source_region, prefill.side, device), prefill.side)
        target = (*_origin(target_region, decode.side, device), decode.side)
        moved = [_matrix_flows(r, c, source, target, t, layers, device.bytes_per_element) for r, c, t in matrices]
        if source[0] != target[0]:  # another chip: over the chip link
            chip_bytes += sum(float(m.size.sum()) for m in moved)
            crossings += layers
        else:
            flows += moved
    on_chip = [m for m in flows if len(m.size)]
    shape = device.usable
    y0, x0, y1, x1, size = (np.concatenate([getattr(m, k) for m in on_chip]) for k in ("y0", "x0", "y1", "x1", "size"))
    busiest = max(_busiest(y0, x0, x1, size, shape), _busiest(x1, y0, y1, size, (shape[1], shape[0])))
    hops = int((np.abs(x1 - x0) + np.abs(y1 - y0)).max(initial=0))
    link_bytes_per_cycle = device.link_words_per_cycle * 4
    cycles = busiest / link_bytes_per_cycle + hops * device.alpha + device.beta
    chip_seconds = crossings * device.chip_link_latency_s + chip_bytes / device.chip_link_bytes_per_s
    return Relayout(
        seconds=device.seconds(cycles) + chip_seconds,
        bytes_moved=float(size.sum()) + chip_bytes,
        busiest_link_bytes=busiest,
        longest_route_hops=hops,
        chip_link_bytes=chip_bytes,
    )
