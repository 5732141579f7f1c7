"""RMS norm in two passes over a row held in L1 (sum of squares, then scale by rsqrt and weight),
with no temporaries: ACC independent vector accumulators keep the adds pipelined."""

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

extern "C" void rmsnorm(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ out,
                        int64_t rows, int64_t cols, float eps) {
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
        const float scale = 1.0f / std::sqrt(square / cols + eps);
        for (int64_t c = 0; c < cols; ++c) o[c] = in[c] * scale * w[c];
    }
}
"""
SOURCE = TEMPLATE.replace("ACC", str(ACC)).replace("VEC_BITS", str(VEC_BITS))
lib = load(SOURCE)


class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        lib.rmsnorm(x, self.weight, out, x.numel() // x.shape[-1], x.shape[-1], 1e-6)
        return out
