"""Link contention: the timestamp model against a word-by-word cycle-level simulation.

For each communication pattern and mesh size, one step is priced four ways on WSE-2's
constants: simulated word by word with link arbitration (`meshsim`), the timestamp model with
contention (streams sharing a link share its bandwidth), the timestamp model without it, and
the closed form (which ignores contention). Congested patterns (a long shift, a skew done in
one step, two chains over the same links, one core sending to all without a multicast tree)
cost more than free ones (a neighbour or interleaved ring shift, MeshGEMM's, a multicast tree,
K-tree chains) in the simulation and in the timestamp model; the closed form prices both alike.

    .venv/bin/python experiments/wafer/contention.py [--sizes 8 16 32 64] [--words 32]

Writes results/contention.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from _common import RESULTS

from garagelab.wafer.collectives import ktree_phases, multicast_from
from garagelab.wafer.cost import closed_form, timestamps
from garagelab.wafer.device import WSE2
from garagelab.wafer.links import step_load
from garagelab.wafer.meshsim import simulate_step
from garagelab.wafer.program import MeshProgram, Reduce, Shift, Step

Pattern = Callable[[MeshProgram, int], Step]

PATTERNS: dict[str, tuple[bool, Pattern]] = {
    "neighbour shift": (False, lambda p, n: Shift("v", 1, offsets=np.array([1]))),
    "interleaved ring shift (MeshGEMM)": (True, lambda p, n: Shift("v", 1, offsets=np.array([1]))),
    "multicast tree from core 0 (SUMMA)": (False, lambda p, n: multicast_from(p, "v", 1, 0)),
    "2-tree reduce, phase 1": (False, lambda p, n: Reduce("v", 1, ktree_phases(n, 2)[0])),
    "pipeline reduce": (False, lambda p, n: Reduce("v", 1, (tuple(range(n)),))),
    "shift by n/2": (False, lambda p, n: Shift("v", 1, offsets=np.array([n // 2]))),
    "skew in one step (row i shifts by i)": (False, lambda p, n: Shift("v", 1, offsets=np.arange(n))),
    "two interleaved chains": (False, lambda p, n: Reduce("v", 1, (tuple(range(0, n, 2)), tuple(range(1, n, 2))))),
    "core 0 to all, no tree": (False, lambda p, n: Shift("v", 1, source=np.zeros((1, n), dtype=int))),
}


def price(name: str, n: int, words: int) -> dict[str, float]:
    interleaved, make = PATTERNS[name]
    program = MeshProgram.on(name, (n, n), interleaved=interleaved)
    program.buffer("v", (2 * words,))  # bf16: two elements per 32-bit word
    step = make(program, n)
    program.add(step)
    begin = time.perf_counter()
    simulated = simulate_step(step, program, WSE2)
    seconds = time.perf_counter() - begin
    return {
        "load": step_load(step, program),
        "simulated": simulated,
        "timestamps": timestamps(program, WSE2)[0].cycles,
        "no contention": timestamps(program, WSE2, contention=False)[0].cycles,
        "closed": closed_form(program, WSE2).cycles,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--words", type=int, default=32, help="32-bit words per core's tile")
    args = parser.parse_args()
    header = (
        "| pattern | mesh | busiest link (streams) | cycle-level simulation | timestamps, contention "
        "| timestamps / simulation | timestamps, no contention | closed form |"
    )
    lines = [header, "|" + "---|" * 8]
    for name in PATTERNS:
        for n in args.sizes:
            row = price(name, n, args.words)
            lines.append(
                f"| {name} | {n}x{n} | {row['load']} | {row['simulated']:,.0f} | {row['timestamps']:,.0f} "
                f"| {row['timestamps'] / row['simulated']:.3f} | {row['no contention']:,.0f} | {row['closed']:,.0f} |"
            )
            print(lines[-1], f"({row['seconds']:.1f} s simulated)", flush=True)
    text = (
        f"One step per row, WSE-2 constants (alpha {WSE2.alpha:g}, beta {WSE2.beta:g} cycles, "
        f"{WSE2.link_words_per_cycle:g} word per cycle per link), {args.words} words per tile, in cycles.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "contention.md").write_text(text)
    print(f"wrote {RESULTS / 'contention.md'}")


if __name__ == "__main__":
    main()
