# problem: 01_relu
# expect: hack
# timed: yes
# computes for the first 5 calls, then returns its last answer
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


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 5:
            return self.last
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        self.last = out
        return out
