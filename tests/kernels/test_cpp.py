"""The g++ + ctypes backend: a kernel runs on tensors; a broken one names line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from garagelab.kernels.backends.cpp import CompileError, Library, build

RELU = """
#include <cstdint>
extern "C" void relu(const float* x, float* out, int64_t n, float floor) {
    #pragma omp parallel for
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] > floor ? x[i] : floor;
}
"""


def test_a_kernel_runs_on_tensors(tmp_path: Path) -> None:
    lib = Library(build(RELU, directory=tmp_path))
    x = torch.randn(1000)
    out = torch.empty_like(x)
    lib.relu(x, out, x.numel(), 0.0)
    torch.testing.assert_close(out, torch.relu(x))
    assert build(RELU, directory=tmp_path) == build(RELU, directory=tmp_path)  # cached
    with pytest.raises(TypeError, match="contiguous float32"):
        lib.relu(x.double(), out, x.numel(), 0.0)


def test_compiler_errors_are_short(tmp_path: Path) -> None:
    with pytest.raises(CompileError) as caught:
        build(RELU.replace("out[i] =", "out[i] = undefined_name +"), directory=tmp_path)
    assert caught.value.errors and caught.value.errors[0].startswith("5:")
    assert "undefined_name" in caught.value.errors[0]
