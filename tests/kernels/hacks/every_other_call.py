# problem: 01_relu
# expect: wrong|hack
# timed: yes
# right on odd calls, zeros on even ones
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
    calls = 0

    def forward(self, x):
        ModelNew.calls += 1
        out = torch.zeros_like(x)
        if ModelNew.calls % 2:
            lib.relu(x, out, x.numel())
        return out
