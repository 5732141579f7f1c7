"""How fast the simulator is, and its functional executor against numpy, in one run.

1. Full LLaMA3-8B decode of one token (32 layers, LM head, region hops) on WSE-2 (750x994),
   at the autotuned decode grid, with each cost model from a cold start (programs built and
   priced): goal <= 1 s each. Each distinct operation is simulated once and reused by the
   identical layers, exactly, since operations are separated by data dependences. Then a whole
   request (2048 tokens in, 128 out: prefill and decode) at the grids the closed form's
   autotuning picks: goal <= 1 s closed form, <= 60 s timestamps (with link contention).
2. Functional spot check of one decode layer: its four GEMVs executed core by core by the
   numpy executor on that grid, against x @ W: goal <= 60 s.
3. MeshGEMM executed core by core on 600x600 against numpy's A @ B (the ratio is the
   simulator's overhead over computing the answer directly).

    .venv/bin/python benchmarks/wafer/bench_simulate.py [--gemm 2400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from garagelab.wafer.device import WSE2
from garagelab.wafer.kernels import gemm, gemv
from garagelab.wafer.llm import (
    allreduce_op,
    best_placement,
    decode_token_work,
    gemm_op,
    gemv_op,
    local_op,
    price,
    region_hop_op,
    simulate,
)
from garagelab.wafer.models import MODELS


def clear_caches() -> None:
    for cached in (gemv_op, gemm_op, local_op, allreduce_op, region_hop_op):
        cached.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gemm", type=int, default=2400, help="M = K = N of the 600x600 MeshGEMM")
    args = parser.parse_args()
    model, context = MODELS["llama3-8b"], 4096
    wafer = best_placement(model, WSE2, "decode", context, "shift", "closed")
    print(
        f"LLaMA3-8B decode on {WSE2.name} {WSE2.usable[0]}x{WSE2.usable[1]}: {wafer.label} regions, "
        f"{wafer.regions} regions, context {context}"
    )
    for model_name in ("closed", "timestamps"):
        clear_caches()
        start = time.perf_counter()
        cost = price(decode_token_work(model, wafer, context), WSE2, model_name)
        seconds = time.perf_counter() - start
        print(
            f"  {model_name:10s}: {seconds:6.3f} s to simulate one token ({WSE2.seconds(cost.cycles) * 1e6:.1f} us "
            f"simulated) - {seconds:.2f}x the 1 s goal"
        )
    tuned = simulate(model, WSE2, 2048, 128)
    for model_name, goal in (("closed", 1.0), ("timestamps", 60.0)):
        clear_caches()
        start = time.perf_counter()
        request = simulate(model, WSE2, 2048, 128, tuned.prefill.region[0], tuned.decode.region, cost_model=model_name)
        seconds = time.perf_counter() - start
        print(
            f"  {model_name:10s}: {seconds:6.3f} s to simulate a request, 2048 in 128 out on "
            f"{tuned.prefill.label}/{tuned.decode.label} regions (TTFT {request.ttft_s * 1e3:.2f} ms, "
            f"TPOT {request.tpot_s * 1e6:.1f} us) - {seconds / goal:.2f}x the {goal:g} s goal"
        )
    start = time.perf_counter()
    for _ in range(1000):
        price(decode_token_work(model, wafer, context), WSE2, "closed")
    print(f"  closed form, warm (programs compiled): {(time.perf_counter() - start) * 1e3:.3f} us per token")

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    worst = 0.0
    shapes = [
        (model.hidden, model.q_dim + 2 * model.kv_dim, 0),
        (model.q_dim, model.hidden, 1),
        (model.hidden, 2 * model.ffn, 0),
        (model.ffn, model.hidden, 1),
    ]
    for k, n, k_axis in shapes:
        x = rng.normal(size=k).astype(np.float32)
        w = rng.normal(size=(k, n)).astype(np.float32)
        y = gemv("ktree", k, n, wafer.region, k_axis=k_axis).run(x, w)
        worst = max(worst, float(np.abs(y - x @ w).max() / np.abs(x @ w).max()))
    seconds = time.perf_counter() - start
    print(
        f"functional decode layer (4 GEMVs, {wafer.label} cores): {seconds:.1f} s, max relative error {worst:.1e} "
        f"- {seconds / 60:.2f}x the 60 s goal"
    )

    n = args.gemm
    a = rng.normal(size=(n, n)).astype(np.float32)
    b = rng.normal(size=(n, n)).astype(np.float32)
    kernel = gemm("meshgemm", n, n, n, (600, 600))
    start = time.perf_counter()
    c = kernel.run(a, b)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    reference = a @ b
    direct = time.perf_counter() - start
    error = float(np.abs(c - reference).max() / np.abs(reference).max())
    print(
        f"MeshGEMM {n}^3 on 600x600, executed core by core: {ours:.1f} s; numpy A @ B: {direct * 1e3:.1f} ms; "
        f"ratio {ours / direct:,.0f}x; max relative error {error:.1e}"
    )


if __name__ == "__main__":
    main()
