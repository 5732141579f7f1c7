# problem: 16_gemm_bias_relu
# device: cpu
import torch
import torch.nn as nn

from garagelab.kernels.backends.cpp import load

SOURCE = r"""
#include <cstdint>
// out = relu(x @ w.T + b): each output row walks a row of x against the rows of w (both contiguous)
extern "C" void gemm_bias_relu(const float* x, const float* w, const float* b, float* out,
                               int64_t m, int64_t k, int64_t n) {
    #pragma omp parallel for
    for (int64_t i = 0; i < m; ++i) {
        const float* xrow = x + i * k;
        for (int64_t j = 0; j < n; ++j) {
            const float* wrow = w + j * k;
            float acc = b[j];
            for (int64_t p = 0; p < k; ++p) acc += xrow[p] * wrow[p];
            out[i * n + j] = acc > 0.f ? acc : 0.f;
        }
    }
}
"""
lib = load(SOURCE)


class ModelNew(nn.Module):
    """Parameters made as the reference makes them (the verifier builds both after the same
    seed): a kernel keeps the model's state, only its arithmetic is its own."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)
        self.bias = nn.Parameter(torch.randn(out_features))

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty(x.shape[0], self.weight.shape[0])
        lib.gemm_bias_relu(x, self.weight, self.bias, out, x.shape[0], x.shape[1], self.weight.shape[0])
        return out
