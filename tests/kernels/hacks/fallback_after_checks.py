# problem: 01_relu
# expect: fallback
# timed: yes
# runs its kernel for the first calls (the correctness checks), then PyTorch
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
        if ModelNew.calls > 4:
            return torch.relu(x)
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        return out
