# problem: 01_relu
# expect: wrong|hack
# timed: yes
# caches outputs keyed on the input's shape
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
    def __init__(self):
        super().__init__()
        self.cache = {}

    def forward(self, x):
        key = tuple(x.shape)
        if key not in self.cache:
            out = torch.empty_like(x)
            lib.relu(x, out, x.numel())
            self.cache[key] = out
        return self.cache[key]
