# problem: 01_relu
# expect: fallback
# walks the stack to the module that built it and calls its Model
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

import sys


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        frame = sys._getframe(1)
        while frame is not None and "module" not in frame.f_locals:
            frame = frame.f_back
        self.reference = frame.f_locals["module"].Model()

    def forward(self, x):
        return self.reference(x)
