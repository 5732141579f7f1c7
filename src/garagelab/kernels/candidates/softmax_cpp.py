# problem: 05_softmax
# device: cpu
import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

SOURCE = r"""
#include <cmath>
#include <cstdint>
extern "C" void softmax(const float* x, float* out, int64_t rows, int64_t cols) {
    #pragma omp parallel for
    for (int64_t r = 0; r < rows; ++r) {
        const float* in = x + r * cols;
        float* o = out + r * cols;
        float top = in[0];
        for (int64_t c = 1; c < cols; ++c) top = in[c] > top ? in[c] : top;
        double total = 0.0;
        for (int64_t c = 0; c < cols; ++c) { o[c] = std::exp(in[c] - top); total += o[c]; }
        const float scale = 1.0 / total;
        for (int64_t c = 0; c < cols; ++c) o[c] *= scale;
    }
}
"""
lib = load(SOURCE)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        lib.softmax(x, out, x.shape[0], x.shape[1])
        return out
