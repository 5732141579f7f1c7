"""The prefill -> decode re-layout against element-by-element routing on a small fabric."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import pytest

from garagelab.wafer.device import WSE2, as_region
from garagelab.wafer.llm import WaferPlan
from garagelab.wafer.models import LLMConfig
from garagelab.wafer.relayout import relayout

MODEL = LLMConfig("tiny", hidden=24, layers=5, heads=2, kv_heads=1, head_dim=12, ffn=36, vocab=50)
DEVICE = replace(WSE2, fabric=(20, 30), usable=(20, 30))
PROMPT = 7


def placement(phase: str, region: int | tuple[int, int], layers_per_region: int) -> WaferPlan:
    regions = math.ceil(MODEL.layers / layers_per_region)
    return WaferPlan(phase, as_region(region), layers_per_region, regions, 0, 0, "shift", 0, 0)


def routed_link_bytes(prefill: WaferPlan, decode: WaferPlan) -> tuple[Counter, int, int]:
    """Every element's XY route, one by one: bytes per directed link, the longest route, and
    the bytes moved."""
    e, q, kv, f = MODEL.hidden, MODEL.q_dim, MODEL.kv_dim, MODEL.ffn
    matrices = [
        (e, q + 2 * kv, False),
        (q, e, True),
        (e, 2 * f, False),
        (f, e, True),
        (PROMPT, kv, False),  # K and V: tokens along y in both phases
        (PROMPT, kv, False),
    ]

    def corner(index: int, region: tuple[int, int]) -> tuple[int, int]:
        """A snake: even rows of regions left to right, odd ones right to left."""
        across = DEVICE.usable[1] // region[1]
        line, step = divmod(index, across)
        return line * region[0], (step if line % 2 == 0 else across - 1 - step) * region[1]

    links: Counter = Counter()
    longest = moved = 0
    for layer in range(MODEL.layers):
        py, px = corner(layer // prefill.layers_per_region, prefill.region)
        qy, qx = corner(layer // decode.layers_per_region, decode.region)
        p, (d_rows, d_cols) = prefill.region[0], decode.region
        for rows, cols, transposed in matrices:
            for r in range(rows):
                for c in range(cols):
                    y0, x0 = py + r // math.ceil(rows / p), px + c // math.ceil(cols / p)
                    if transposed:
                        y1, x1 = qy + c // math.ceil(cols / d_rows), qx + r // math.ceil(rows / d_cols)
                    else:
                        y1, x1 = qy + r // math.ceil(rows / d_rows), qx + c // math.ceil(cols / d_cols)
                    longest = max(longest, abs(x1 - x0) + abs(y1 - y0))
                    moved += 2
                    step = 1 if x1 > x0 else -1
                    for x in range(x0, x1, step):
                        links[("row", y0, x, step)] += 2
                    step = 1 if y1 > y0 else -1
                    for y in range(y0, y1, step):
                        links[("col", x1, y, step)] += 2
    return links, longest, moved


@pytest.mark.parametrize(
    ("prefill_side", "decode_region", "per_region"),
    [(10, 6, (3, 2)), (9, 9, (2, 2)), (6, 10, (1, 3)), (10, (6, 8), (3, 2)), (6, (10, 5), (1, 2))],
)
def test_relayout_matches_routing_every_element(
    prefill_side: int, decode_region: int | tuple[int, int], per_region: tuple[int, int]
) -> None:
    prefill = placement("prefill", prefill_side, per_region[0])
    decode = placement("decode", decode_region, per_region[1])
    found = relayout(MODEL, prefill, decode, PROMPT, DEVICE)
    links, longest, moved = routed_link_bytes(prefill, decode)
    assert found.busiest_link_bytes == max(links.values())
    assert found.longest_route_hops == longest
    cycles = max(links.values()) / 4 + longest * DEVICE.alpha + DEVICE.beta
    assert found.seconds == pytest.approx(cycles / DEVICE.clock_hz)
    assert found.chip_link_bytes == 0 and found.bytes_moved == moved


def test_layers_on_another_chip_cross_the_chip_link() -> None:
    one_chip = placement("prefill", 10, 1)  # 5 regions: 6 fit a 20x30 chip
    small = placement("decode", 15, 1)  # 5 regions of 15x15: 2 per chip, so 3 chips
    found = relayout(MODEL, one_chip, small, PROMPT, DEVICE)
    assert found.chip_link_bytes > 0
    assert found.seconds > found.chip_link_bytes / DEVICE.chip_link_bytes_per_s
