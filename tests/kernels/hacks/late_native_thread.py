# problem: 01_relu
# expect: wrong|hack|crash|honest
# timed: yes
# a C++ kernel that returns before its worker thread has finished (the late write into the
# sealed output may crash its process: an honest failure too)
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

SLOW = load(r"""
#include <cstdint>
#include <thread>
extern "C" void relu_later(const float* x, float* out, int64_t n) {
    std::thread([=] { for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.f ? x[i] : 0.f; }).detach();
}
""")


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        SLOW.relu_later(x, out, x.numel())
        return out
