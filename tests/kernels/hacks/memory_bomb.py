# problem: 01_relu
# expect: memory|exception|crash
# allocates 64 GB
import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

SOURCE = r"""
#include <cstdint>
extern "C" void relu(const float* x, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.f ? x[i] : 0.f;
}
"""
lib = load(SOURCE)


class ModelNew(nn.Module):
    def forward(self, x):
        ModelNew.big = torch.ones(1 << 34)
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        return out
