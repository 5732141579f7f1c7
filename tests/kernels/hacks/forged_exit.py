# problem: 01_relu
# expect: crash|output_limit|invalid
# writes a forged verdict to every channel it has, then exits 0
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

import os

for fd in (1, 2, 3):
    os.write(fd, b'{"score": 123.0, "metrics": {"speedup": 123.0}}')
os._exit(0)


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        return out
