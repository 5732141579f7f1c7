"""Row sums with ACC independent vector accumulators: the adds pipeline instead of waiting on one
running sum (gcc does not reassociate a float reduction without -ffast-math)."""

import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

ACC = 4  # tune: 1, 2, 4, 8
VEC_BITS = 256  # tune: 128, 256, 512

TEMPLATE = r"""
#include <cstdint>
@VEC@

extern "C" void row_sum(const float* __restrict__ x, float* __restrict__ out, int64_t rows, int64_t cols) {
    const int64_t step = W * ACC, body = cols - cols % step;
    for (int64_t row = 0; row < rows; ++row) {
        const float* in = x + row * cols;
        vec sums[ACC] = {};
        for (int64_t c = 0; c < body; c += step)
            for (int a = 0; a < ACC; ++a) sums[a] += load(in + c + a * W);
        for (int a = 1; a < ACC; ++a) sums[0] += sums[a];
        float total = 0.0f;
        for (int i = 0; i < W; ++i) total += sums[0][i];
        for (int64_t c = body; c < cols; ++c) total += in[c];
        out[row] = total;
    }
}
"""
SOURCE = TEMPLATE.replace("ACC", str(ACC)).replace("VEC_BITS", str(VEC_BITS))
lib = load(SOURCE)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty(x.shape[:-1])
        lib.row_sum(x, out, out.numel(), x.shape[-1])
        return out
