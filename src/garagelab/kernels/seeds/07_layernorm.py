"""Layer norm in two passes over a row held in L1 (shifted sum and sum of squares, then normalise
with weight and bias fused): ACC independent vector accumulators keep the adds pipelined, and
the shift by the row's first element keeps the one-pass variance accurate."""

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

extern "C" void layernorm(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                          float* __restrict__ out, int64_t rows, int64_t cols, float eps) {
    const int64_t step = W * ACC, body = cols - cols % step;
    for (int64_t row = 0; row < rows; ++row) {
        const float* in = x + row * cols;
        float* o = out + row * cols;
        const float shift = in[0];
        vec sums[ACC] = {}, squares[ACC] = {};
        for (int64_t c = 0; c < body; c += step)
            for (int a = 0; a < ACC; ++a) {
                const vec d = load(in + c + a * W) - shift;
                sums[a] += d;
                squares[a] += d * d;
            }
        float sum = 0.0f, square = 0.0f;
        for (int a = 0; a < ACC; ++a) {
            sum += hsum(sums[a]);
            square += hsum(squares[a]);
        }
        for (int64_t c = body; c < cols; ++c) {
            sum += in[c] - shift;
            square += (in[c] - shift) * (in[c] - shift);
        }
        const float centre = sum / cols, mean = shift + centre;
        const float var = square / cols - centre * centre;
        const float rstd = 1.0f / std::sqrt((var > 0.0f ? var : 0.0f) + eps);
        for (int64_t c = 0; c < cols; ++c) o[c] = (in[c] - mean) * rstd * w[c] + b[c];
    }
}
"""
SOURCE = TEMPLATE.replace("ACC", str(ACC)).replace("VEC_BITS", str(VEC_BITS))
lib = load(SOURCE)


class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim))
        self.bias = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        lib.layernorm(x, self.weight, self.bias, out, x.numel() // x.shape[-1], x.shape[-1], 1e-5)
        return out
