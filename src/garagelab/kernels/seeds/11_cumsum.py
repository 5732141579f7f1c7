"""Cumulative sums of ROWS rows at once: a prefix sum is one dependent chain per row, so running
ROWS independent chains side by side hides the add latency; the running sums are doubles, as in
PyTorch, so long rows do not drift."""

import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

ROWS = 8  # tune: 1, 2, 4, 8, 16

TEMPLATE = r"""
#include <cstdint>
template <int R>
static void scan(const float* __restrict__ x, float* __restrict__ out, int64_t cols) {
    double acc[R] = {};
    for (int64_t c = 0; c < cols; ++c)
        for (int r = 0; r < R; ++r) {
            acc[r] += x[r * cols + c];
            out[r * cols + c] = (float)acc[r];
        }
}

extern "C" void cumsum(const float* x, float* out, int64_t rows, int64_t cols) {
    int64_t row = 0;
    for (; row + ROWS <= rows; row += ROWS) scan<ROWS>(x + row * cols, out + row * cols, cols);
    for (; row < rows; ++row) scan<1>(x + row * cols, out + row * cols, cols);
}
"""
SOURCE = TEMPLATE.replace("ROWS", str(ROWS))
lib = load(SOURCE)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        lib.cumsum(x, out, x.numel() // x.shape[-1], x.shape[-1])
        return out
