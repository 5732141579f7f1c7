# problem: 01_relu
# expect: fallback
# finds the problem's Model through gc and calls it
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

import gc


class ModelNew(nn.Module):
    def forward(self, x):
        for thing in gc.get_objects():
            if isinstance(thing, type) and thing.__name__ == "Model" and issubclass(thing, nn.Module):
                return thing()(x)
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        return out
