"""Residual add and layer norm fused: x + residual is written once into the output, with its
shifted sum and sum of squares taken on the way (ACC vector accumulators), then normalised in
place while the row is in L1; the shift by the row's first element keeps the variance accurate."""

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

extern "C" void residual_layernorm(const float* __restrict__ x, const float* __restrict__ res,
                                   const float* __restrict__ w, const float* __restrict__ b,
                                   float* __restrict__ out, int64_t rows, int64_t cols, float eps) {
    const int64_t step = W * ACC, body = cols - cols % step;
    for (int64_t row = 0; row < rows; ++row) {
        const float* xr = x + row * cols;
        const float* rr = res + row * cols;
        float* o = out + row * cols;
        const float shift = xr[0] + rr[0];
        vec sums[ACC] = {}, squares[ACC] = {};
        for (int64_t c = 0; c < body; c += step)
            for (int a = 0; a < ACC; ++a) {
                const vec h = load(xr + c + a * W) + load(rr + c + a * W);
                store(o + c + a * W, h);
                const vec d = h - shift;
                sums[a] += d;
                squares[a] += d * d;
            }
        float sum = 0.0f, square = 0.0f;
        for (int a = 0; a < ACC; ++a) {
            sum += hsum(sums[a]);
            square += hsum(squares[a]);
        }
        for (int64_t c = body; c < cols; ++c) {
            o[c] = xr[c] + rr[c];
            sum += o[c] - shift;
            square += (o[c] - shift) * (o[c] - shift);
        }
        const float centre = sum / cols, mean = shift + centre;
        const float var = square / cols - centre * centre;
        const float rstd = 1.0f / std::sqrt((var > 0.0f ? var : 0.0f) + eps);
        for (int64_t c = 0; c < cols; ++c) o[c] = (o[c] - mean) * rstd * w[c] + b[c];
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

    def forward(self, x, residual):
        x, residual = x.contiguous(), residual.contiguous()
        out = torch.empty_like(x)
        cols = x.shape[-1]
        lib.residual_layernorm(x, residual, self.weight, self.bias, out, x.numel() // cols, cols, 1e-5)
        return out
