"""The seed kernels against eager PyTorch without the verifier's protocol: what the kernels
themselves are worth, beside what the verifier measures end to end (docs/kernels/README.md).

Each of our problems at its `cpu` size, in this one process, on one thread: the seed's ModelNew
and the problem's Model on the same inputs, called alternately, each timed as the fastest of
`--calls` calls (the least disturbed by the machine) and as the median. The seeds are our own
code, so running them here is safe; a model-written kernel is only ever run in the sandbox.
The verifier's figure differs by the protocol's cost (about 0.5 ms per call on both sides),
which this leaves out.

    .venv/bin/python benchmarks/kernels/bench_seeds.py [--calls 300] [--problem attention]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from garagelab.kernels.cli import problem_paths
from garagelab.kernels.problems import load_module, load_problem
from garagelab.kernels.seeds import seed_for


def timings(model, inputs: list, calls: int) -> list[float]:
    with torch.no_grad():
        model(*inputs)  # warm: first-call allocations, lazy initialisation
        seconds = []
        for _ in range(calls):
            start = time.perf_counter()
            model(*inputs)
            seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--problem", default="", help="only problems whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'problem':32s} {'seed us':>9s} {'eager us':>9s} {'fastest':>8s} {'median':>8s}  (eager / seed)")
    for path in problem_paths(["suite"]):
        name = f"{path.parent.name}/{path.stem}" if path.parent.name == "attention" else path.stem
        if args.problem not in name:
            continue
        spec = load_problem(path)
        constants = spec.constants("cpu")
        problem = load_module(spec.source, spec.name, constants)
        seed = load_module(seed_for(path), f"seed_{spec.name}")
        torch.manual_seed(0)
        eager = problem.Model(*problem.get_init_inputs())
        torch.manual_seed(0)
        ours = seed.ModelNew(*problem.get_init_inputs())
        inputs = problem.get_inputs()
        with torch.no_grad():
            torch.testing.assert_close(ours(*inputs), eager(*inputs), atol=1e-4, rtol=1e-4)
        mine, theirs = [], []
        for _ in range(5):  # alternating blocks: a change in the machine's load falls on both
            mine += timings(ours, inputs, args.calls // 5)
            theirs += timings(eager, inputs, args.calls // 5)
        fastest = min(theirs) / min(mine)
        median = statistics.median(theirs) / statistics.median(mine)
        print(f"{name:32s} {1e6 * min(mine):9.1f} {1e6 * min(theirs):9.1f} {fastest:7.2f}x {median:7.2f}x")


if __name__ == "__main__":
    main()
