"""Verify time per candidate on the CPU: our whole verification against KernelBench's way of
building a C++ kernel, measured in one run.

- ours: `garagelab kernels verify` of a C++ candidate, the whole path (wall clock): sandbox fork,
  static rules, a cold g++ build (a comment unique to each repeat defeats the build cache),
  correctness over 3 seeds x 3 distributions on fresh sealed inputs, the fallback record, a second
  size, and 15 interleaved timing rounds against eager PyTorch in a clean process;
- load_inline: the same kernel built the way KernelBench's candidates build theirs,
  `torch.utils.cpp_extension.load_inline` (torch/extension.h and pybind11 compiled with it) in a
  fresh build directory, then one call, no checks at all.

    .venv/bin/python benchmarks/kernels/bench_verify.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from garagelab.kernels.candidates import references
from garagelab.kernels.task import build_task

RELU_EXTENSION = r"""
#include <torch/extension.h>
torch::Tensor relu(torch::Tensor x) {
    auto out = torch::empty_like(x);
    const float* in = x.data_ptr<float>();
    float* o = out.data_ptr<float>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) o[i] = in[i] > 0.f ? in[i] : 0.f;
    return out;
}
"""


def ours(repeats: int) -> tuple[float, str]:
    relu = next(r for r in references("cpu") if r.name == "relu_cpp")
    task = build_task(relu.problem, "cpu")
    task.evaluate(relu.path.read_text())  # the judge's and sandboxes' start (torch imported once per run)
    times, verdict = [], ""
    for repeat in range(repeats):
        unique = f"#include <cstdint>\n// repeat {time.time()} {repeat}"
        source = relu.path.read_text().replace("#include <cstdint>", unique)
        start = time.perf_counter()
        outcome = task.evaluate(source)
        times.append(time.perf_counter() - start)
        verdict = "correct" if outcome.ok else outcome.failure
    return statistics.median(times), verdict


def load_inline_once() -> tuple[float, bool]:
    from torch.utils.cpp_extension import load_inline

    with tempfile.TemporaryDirectory() as build:
        start = time.perf_counter()
        module = load_inline(
            "relu_bench",
            cpp_sources=RELU_EXTENSION,
            functions=["relu"],
            build_directory=build,
            extra_cflags=["-O3"],
            verbose=False,
        )
        x = torch.randn(1 << 16)
        correct = torch.equal(module.relu(x), torch.relu(x))
        return time.perf_counter() - start, correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ours_s, verdict = ours(args.repeats)
    print(f"ours: whole verification of relu_cpp {ours_s:.2f} s (median of {args.repeats}; verdict {verdict})")
    inline_s, correct = load_inline_once()
    print(f"load_inline: build + one call {inline_s:.1f} s (output {'correct' if correct else 'WRONG'})")
    print(f"ratio: load_inline / ours = {inline_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
