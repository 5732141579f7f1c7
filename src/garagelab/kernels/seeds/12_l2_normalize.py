"""Rows scaled to unit norm in two passes over a row held in L1 (sum of squares, then multiply by
the reciprocal norm): ACC independent vector accumulators keep the adds pipelined."""

import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

ACC = 4  # tune: 1, 2, 4, 8
VEC_BITS = 256  # tune: 128, 256, 512

TEMPLATE = r"""
#include <cmath>
#include <cstdint>
@VEC@
@HSUM@

extern "C" void l2_normalize(const float* __restrict__ x, float* __restrict__ out, int64_t rows, int64_t cols) {
    const int64_t step = W * ACC, body = cols - cols % step;
    for (int64_t row = 0; row < rows; ++row) {
        const float* in = x + row * cols;
        float* o = out + row * cols;
        vec squares[ACC] = {};
        for (int64_t c = 0; c < body; c += step)
            for (int a = 0; a < ACC; ++a) {
                const vec v = load(in + c + a * W);
                squares[a] += v * v;
            }
        float square = 0.0f;
        for (int a = 0; a < ACC; ++a) square += hsum(squares[a]);
        for (int64_t c = body; c < cols; ++c) square += in[c] * in[c];
        const float norm = std::sqrt(square);
        const float scale = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
        for (int64_t c = 0; c < cols; ++c) o[c] = in[c] * scale;
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
        out = torch.empty_like(x)
        lib.l2_normalize(x, out, x.numel() // x.shape[-1], x.shape[-1])
        return out
