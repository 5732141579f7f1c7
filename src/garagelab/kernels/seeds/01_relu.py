"""ReLU in one streaming pass with restrict pointers, so gcc emits a plain vector max loop
(VEC_BITS wide, unrolled UNROLL times)."""

import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

UNROLL = 2  # tune: 1, 2, 4, 8
VEC_BITS = 512  # tune: 256, 512

TEMPLATE = r"""
#include <cstdint>
extern "C" __attribute__((target("prefer-vector-width=VEC_BITS")))
void relu(const float* __restrict__ x, float* __restrict__ out, int64_t n) {
    #pragma GCC unroll UNROLL
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
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
        lib.relu(x, out, x.numel())
        return out
