"""On a GPU: our verifier next to KernelBench's own evaluation, on the same stored candidates.

For every stored Triton candidate (our reference kernels and the Triton hacks of
tests/kernels/hacks/) at its problem's `gpu` size:
- ours: the sandboxed verifier (5 seeds x 3 distributions, honesty checks, CUDA events after an
  L2 flush, median of 20 timed calls, eager PyTorch timed the same way);
- KernelBench's `eval_kernel_against_ref` (5 correctness trials, 100 timed trials with CUDA
  events and its own L2 flush, mean), on the problem file with the same sizes written in.
Printed side by side: the verdicts, the candidate's and eager PyTorch's times (ours / theirs),
and each harness's wall time per candidate. KernelBench is not on PyPI: point PYTHONPATH at a
checkout's `src/` (its eval needs pydantic and requests).

    PYTHONPATH=src:~/KernelBench/src python benchmarks/kernels/gpu_vs_kernelbench.py --out results.json
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from garagelab.kernels.candidates import SUITE, header, references
from garagelab.kernels.problems import load_problem, sized_source
from garagelab.kernels.task import build_task

HACKS = Path(__file__).resolve().parents[2] / "tests" / "kernels" / "hacks"


def stored_candidates() -> list[tuple[str, Path, Path, str]]:
    """(name, candidate, problem, expected verdict) for every Triton candidate we keep."""
    found = [(r.name, r.path, r.problem, "correct") for r in references("cuda") if r.name.endswith("_triton")]
    for path in sorted(HACKS.glob("triton_*.py")):
        found.append((path.stem, path, SUITE / f"{header(path, 'problem')}.py", header(path, "expect")))
    return found


def ours(candidate: Path, problem: Path) -> dict:
    start = time.perf_counter()
    outcome = build_task(problem, "gpu", compile_baseline=False).evaluate(candidate.read_text())
    return {
        "verdict": "correct" if outcome.ok else outcome.failure,
        "message": outcome.message[-600:],
        "candidate_ms": outcome.metrics.get("candidate_ms"),
        "eager_ms": outcome.metrics.get("eager_ms"),
        "wall_s": time.perf_counter() - start,
    }


def kernelbench(candidate: Path, problem: Path) -> dict:
    import torch
    from kernelbench.eval import eval_kernel_against_ref

    start = time.perf_counter()
    try:
        result = eval_kernel_against_ref(
            original_model_src=sized_source(load_problem(problem), "gpu"),
            custom_model_src=candidate.read_text(),
            seed_num=42,
            num_correct_trials=5,
            num_perf_trials=100,
            measure_performance=True,
            timing_method="cuda_event",
            device=0,
            backend="triton",
            precision=torch.float32,
        )
    except Exception as exc:  # their harness's own failure, reported as such
        message = f"{type(exc).__name__}: {str(exc)[-600:]}"
        return {"verdict": f"error: {type(exc).__name__}", "message": message, "wall_s": time.perf_counter() - start}
    if result is None:
        return {"verdict": "none", "wall_s": time.perf_counter() - start}
    verdict = "correct" if result.correctness else ("wrong" if result.compiled else "compile")
    return {
        "verdict": verdict,
        "candidate_ms": result.runtime if result.runtime > 0 else None,
        "eager_ms": result.ref_runtime if result.ref_runtime > 0 else None,
        "excessive_speedup": bool(result.metadata.get("excessive_speedup", False)),
        "wall_s": time.perf_counter() - start,
    }


def _ratio(a, b) -> str:
    return f"{a / b:.3f}" if a and b else "-"


def _ms(value) -> str:
    return f"{value:.4g}" if value else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write every number as JSON here")
    parser.add_argument("--only", default="", help="a regular expression on candidate names")
    args = parser.parse_args()
    rows = []
    for name, candidate, problem, expected in stored_candidates():
        if args.only and not re.search(args.only, name):
            continue
        row = {"candidate": name, "problem": problem.stem, "expected": expected}
        row["ours"] = ours(candidate, problem)
        row["kernelbench"] = kernelbench(candidate, problem)
        rows.append(row)
        print(json.dumps(row), flush=True)
    import torch

    print(f"\n{torch.cuda.get_device_name(0)}, torch {torch.__version__}\n")
    print("| candidate | expected | ours | KernelBench | candidate ms ours / KB (ratio) | eager ms ours / KB (ratio) "
          "| wall s ours / KB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        o, k = row["ours"], row["kernelbench"]
        times = [
            f"{_ms(o[key])} / {_ms(k.get(key))} ({_ratio(o[key], k.get(key))})" for key in ("candidate_ms", "eager_ms")
        ]
        print(
            f"| {row['candidate']} | {row['expected']} | {o['verdict']} | {k['verdict']} | {times[0]} | {times[1]} "
            f"| {o['wall_s']:.1f} / {k['wall_s']:.1f} |"
        )
    if args.out:
        args.out.write_text(json.dumps({"device": torch.cuda.get_device_name(0), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
