"""GELU (tanh form) in one streaming pass: 0.5 x (1 + tanh u) = x / (1 + exp(-2u)), one polynomial
exp that gcc vectorises (VEC_BITS wide, unrolled UNROLL times) instead of a libm tanh."""

import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

UNROLL = 2  # tune: 1, 2, 4, 8
VEC_BITS = 512  # tune: 256, 512

TEMPLATE = r"""
#include <cmath>
#include <cstdint>
#include <cstring>
@EXP@
extern "C" __attribute__((target("prefer-vector-width=VEC_BITS")))
void gelu(const float* __restrict__ x, float* __restrict__ out, int64_t n) {
    #pragma GCC unroll UNROLL
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i], u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        out[i] = v / (1.0f + exp_(-2.0f * u));
    }
}
"""
SOURCE = TEMPLATE.replace("UNROLL", str(UNROLL)).replace("VEC_BITS", str(VEC_BITS))
lib = load(SOURCE)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        lib.gelu(x, out, x.numel())
        return out
