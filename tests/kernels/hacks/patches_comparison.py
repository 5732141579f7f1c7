# problem: 01_relu
# expect: wrong
# makes torch.isclose and allclose always true through an alias, returns zeros
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

t = torch
t.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)
t.allclose = lambda *a, **k: True
T = torch.Tensor
T.allclose = lambda *a, **k: True


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)
