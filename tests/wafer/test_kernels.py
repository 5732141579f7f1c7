from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from garagelab.wafer.cost import closed_form, timestamps
from garagelab.wafer.device import WSE2
from garagelab.wafer.kernels import GEMM_ALGORITHMS, GEMV_METHODS, gemm, gemm_t, gemv
from garagelab.wafer.program import PLMRViolation, check_plmr, interleave_positions, memory_per_core, route_usage

SHAPES = [
    ((4, 4), (13, 7, 9)),
    ((3, 3), (4, 4, 128)),
    ((2, 3), (5, 11, 6)),
    ((5, 5), (17, 19, 23)),
    ((1, 1), (3, 2, 4)),
]


@pytest.mark.parametrize("algorithm", GEMM_ALGORITHMS)
@pytest.mark.parametrize(("grid", "shape"), SHAPES)
def test_gemm_equals_matmul(algorithm: str, grid: tuple[int, int], shape: tuple[int, int, int]) -> None:
    m, k, n = shape
    rng = np.random.default_rng(sum(shape))
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    np.testing.assert_allclose(gemm(algorithm, m, k, n, grid).run(a, b), a @ b, atol=1e-12)


@pytest.mark.parametrize(("grid", "shape"), SHAPES)
def test_gemm_t_equals_matmul_with_transpose(grid: tuple[int, int], shape: tuple[int, int, int]) -> None:
    m, k, n = shape
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(m, k)), rng.normal(size=(n, k))
    np.testing.assert_allclose(gemm_t(m, k, n, grid).run(a, b), a @ b.T, atol=1e-12)


@pytest.mark.parametrize("method", GEMV_METHODS)
@pytest.mark.parametrize(
    ("grid", "shape", "k_axis"),
    [((4, 4), (13, 9), 0), ((3, 5), (16, 17), 1), ((9, 4), (20, 10), 0), ((7, 7), (50, 3), 1)],
)
def test_gemv_equals_matvec(method: str, grid, shape, k_axis: int) -> None:
    k, n = shape
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=k), rng.normal(size=(k, n))
    np.testing.assert_allclose(gemv(method, k, n, grid, k_axis=k_axis).run(x, w), x @ w, atol=1e-12)


@pytest.mark.parametrize("tree_k", [1, 2, 3, 4])
def test_ktree_any_k(tree_k: int) -> None:
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=40), rng.normal(size=(40, 6))
    np.testing.assert_allclose(gemv("ktree", 40, 6, (27, 2), tree_k=tree_k).run(x, w), x @ w, atol=1e-12)


def test_interleave_keeps_ring_edges_within_two_hops() -> None:
    for n in range(3, 40):
        position = interleave_positions(n)
        assert sorted(position) == list(range(n))
        assert max(abs(position[(i + 1) % n] - position[i]) for i in range(n)) == 2


def test_route_budget_separates_summa_from_meshgemm() -> None:
    for side in (8, 30):
        assert route_usage(gemm("summa", 64, 64, 64, (side, side)).program).max() >= 2 * side
        assert route_usage(gemm("allgather", 64, 64, 64, (side, side)).program).max() >= 2 * side
        assert route_usage(gemm("meshgemm", 64, 64, 64, (side, side)).program).max() <= 12
        assert route_usage(gemm("cannon", 64, 64, 64, (side, side)).program).max() <= 12
    assert route_usage(gemv("ktree", 64, 64, (30, 30)).program).max() <= 6
    with pytest.raises(PLMRViolation, match=r"core \(\d+, \d+\) needs 60 routes but a router holds 24"):
        check_plmr(gemm("summa", 64, 64, 64, (30, 30)).program, WSE2.sram_usable, WSE2.route_budget)
    check_plmr(gemm("meshgemm", 64, 64, 64, (30, 30)).program, WSE2.sram_usable, WSE2.route_budget)


def test_memory_limit_names_core_limit_and_need() -> None:
    program = gemm("meshgemm", 4096, 4096, 4096, (8, 8)).program
    need = memory_per_core(program)
    assert need == 5 * 512 * 512 * 2  # A, B, C and two tiles in flight
    with pytest.raises(
        PLMRViolation, match=rf"core \(0, 0\) needs {need:,} bytes of SRAM .* limit is {WSE2.sram_usable:,}"
    ):
        check_plmr(program, WSE2.sram_usable, WSE2.route_budget)


@pytest.mark.parametrize(
    "program",
    [
        gemm("meshgemm", 300, 300, 300, (12, 12)).program,
        gemm("cannon", 300, 300, 300, (12, 12)).program,
        gemm_t(300, 300, 300, (12, 12)).program,
        gemv("ktree", 4096, 4096, (40, 40)).program,
        gemv("pipeline", 4096, 4096, (40, 40)).program,
        gemv("ring", 1024, 1024, (16, 16)).program,
    ],
    ids=["meshgemm", "cannon", "gemm-t", "ktree", "pipeline", "ring"],
)
def test_cost_models_agree_on_regular_programs(program) -> None:
    closed = closed_form(program, WSE2)
    stamped, _ = timestamps(program, WSE2)
    assert stamped.cycles == pytest.approx(closed.cycles, rel=0.02)
    assert stamped.cycles <= closed.cycles + 1e-6  # the closed form prices every step at its slowest core


def test_cost_moves_the_expected_ways() -> None:
    base = closed_form(gemv("ktree", 16384, 16384, (360, 360)).program, WSE2).cycles
    slower_hops = closed_form(gemv("ktree", 16384, 16384, (360, 360)).program, WSE2.with_overrides(alpha=2.0)).cycles
    slower_routing = closed_form(gemv("ktree", 16384, 16384, (360, 360)).program, WSE2.with_overrides(beta=40.0)).cycles
    faster_math = closed_form(
        gemv("ktree", 16384, 16384, (360, 360)).program, WSE2.with_overrides(macs_per_cycle=8)
    ).cycles
    assert slower_hops > base and slower_routing > base and faster_math < base
    # MeshGEMM's two-hop shifts beat Cannon's wrap-around and SUMMA's broadcasts on big meshes
    mesh = closed_form(gemm("meshgemm", 2048, 2048, 2048, (240, 240)).program, WSE2).cycles
    cannon = closed_form(gemm("cannon", 2048, 2048, 2048, (240, 240)).program, WSE2).cycles
    summa = closed_form(gemm("summa", 2048, 2048, 2048, (240, 240)).program, WSE2).cycles
    assert mesh < cannon and mesh < summa

    # K-tree beats the pipeline allreduce, by more on larger meshes
    def speedup(side: int) -> float:
        pipeline = closed_form(gemv("pipeline", 8192, 8192, (side, side)).program, WSE2).cycles
        return pipeline / closed_form(gemv("ktree", 8192, 8192, (side, side)).program, WSE2).cycles

    assert 1.5 < speedup(240) < speedup(480) < speedup(720)


@pytest.mark.slow
def test_jax_shard_map_backend_agrees() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the module sets the device count
    cases = [
        ("meshgemm", "4x4", "30x20x25"),
        ("gemm-t", "4x4", "9x13x7"),
        ("gemv-ktree", "2x8", "40x33"),
        ("gemv-ring", "4x4", "17x21"),
        ("summa", "2x3", "10x9x8"),
        ("cannon", "16x16", "64x48x40"),
    ]
    for kernel, grid, shape in cases:
        result = subprocess.run(
            [sys.executable, "-m", "garagelab.wafer.jax_backend", kernel, "--grid", grid, "--shape", shape],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr[-2000:]
        assert "max relative error" in result.stdout
