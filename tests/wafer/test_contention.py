"""Link contention: per-link loads, the word-by-word simulation, and the timestamp model."""

from __future__ import annotations

import numpy as np
import pytest

from garagelab.wafer.collectives import ktree_phases, multicast_from
from garagelab.wafer.cost import closed_form, congested_steps, timestamps
from garagelab.wafer.device import WSE2
from garagelab.wafer.kernels import GEMM_ALGORITHMS, GEMV_METHODS, gemm, gemm_t, gemv
from garagelab.wafer.links import receive_loads, step_load
from garagelab.wafer.meshsim import simulate_step
from garagelab.wafer.program import MeshProgram, Multicast, Placement, Reduce, Shift

WORDS = 24


def one_step(n: int, make, interleaved: bool = False, rows: int | None = None) -> tuple[MeshProgram, object]:
    program = MeshProgram.on("pattern", (rows or n, n), interleaved=interleaved)
    program.buffer("v", (2 * WORDS,))
    step = make(program, n)
    program.add(step)
    return program, step


def test_loads_count_the_streams_on_each_link() -> None:
    program, step = one_step(12, lambda p, n: Shift("v", 1, offsets=np.array([3])))
    loads = receive_loads(step, program)[0]
    # core i receives from i + 3: three streams cross every leftward link; the wrap-around
    # streams (from 0, 1, 2 to 9, 10, 11) run rightward and overlap each other only
    assert loads[:9].max() == 3 and loads[9:].max() == 3
    program, step = one_step(12, lambda p, n: multicast_from(p, "v", 1, 5))
    assert step_load(step, program) == 1  # a tree is one stream per direction
    program, step = one_step(12, lambda p, n: Shift("v", 1, source=np.full((1, n), 5)))
    assert step_load(step, program) == 6  # without a tree, one stream per receiver


def test_an_uncontended_message_costs_what_the_model_charges() -> None:
    program = MeshProgram("two cores", (1, 2), (Placement(np.zeros(1, dtype=int)), Placement(np.array([0, 7]))))
    program.buffer("v", (2 * WORDS,))
    step = Shift("v", 1, offsets=np.array([1]))
    program.add(step)
    expected = WSE2.beta + 7 * WSE2.alpha + WORDS / WSE2.link_words_per_cycle
    assert simulate_step(step, program, WSE2) == pytest.approx(expected)
    assert timestamps(program, WSE2)[0].cycles == pytest.approx(expected)


FREE = {
    "neighbour shift": (False, lambda p, n: Shift("v", 1, offsets=np.array([1]))),
    "interleaved ring shift": (True, lambda p, n: Shift("v", 1, offsets=np.array([1]))),
    "multicast tree": (False, lambda p, n: multicast_from(p, "v", 1, 3)),
    "relayed multicast": (False, lambda p, n: Multicast("v", 1, np.full((1, n), 3), relay=True)),
    "k-tree phase": (False, lambda p, n: Reduce("v", 1, ktree_phases(n, 2)[0])),
}
CONGESTED = {
    "shift by n/2": (False, lambda p, n: Shift("v", 1, offsets=np.array([n // 2]))),
    "per-row skew": (False, lambda p, n: Shift("v", 1, offsets=np.arange(n))),
    "one to all without a tree": (False, lambda p, n: Shift("v", 1, source=np.zeros((1, n), dtype=int))),
    "overlapping chains": (False, lambda p, n: Reduce("v", 1, (tuple(range(0, n, 2)), tuple(range(1, n, 2))))),
}


@pytest.mark.parametrize("name", [*FREE, *CONGESTED])
def test_the_timestamp_model_matches_the_cycle_level_simulation(name: str) -> None:
    interleaved, make = {**FREE, **CONGESTED}[name]
    program, step = one_step(16, make, interleaved)
    simulated = simulate_step(step, program, WSE2)
    modelled = timestamps(program, WSE2)[0].cycles
    assert modelled == pytest.approx(simulated, rel=0.05)
    uncontended = timestamps(program, WSE2, contention=False)[0].cycles
    if name in CONGESTED:
        load = step_load(step, program)
        assert load > 1
        # each extra stream on the busiest link costs its words again, simulated and modelled
        assert simulated >= uncontended + 0.9 * (load - 1) * WORDS / WSE2.link_words_per_cycle
        assert closed_form(program, WSE2).cycles == pytest.approx(uncontended)  # the closed form ignores it
        assert congested_steps(program)
    else:
        assert step_load(step, program) <= 1 and not congested_steps(program)
        assert uncontended == pytest.approx(modelled)


def test_no_kernel_here_congests_a_link() -> None:
    """So the closed form, which ignores contention, prices every kernel exactly."""
    programs = [gemm(a, 64, 64, 64, (8, 8)).program for a in GEMM_ALGORITHMS]
    programs += [gemv(m, 64, 64, (8, 8)).program for m in GEMV_METHODS]
    programs.append(gemm_t(64, 64, 64, (8, 8)).program)
    for program in programs:
        assert congested_steps(program) == [], program.name
