# problem: 01_relu
# expect: lint|honest
# imports time to patch the clock
import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

SOURCE = r"""
#include <cstdint>
extern "C" void relu(const float* x, float* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.f ? x[i] : 0.f;
}
extern "C" void zero(float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = 0.f;
}
"""
lib = load(SOURCE)
import time


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        return out
