# problem: 01_relu
# device: cuda
import torch
import torch.nn as nn

from garagelab.kernels.backends.cuda import load

SOURCE = r"""
#include <cstdint>
__global__ void relu_kernel(const float4* x, float4* out, int64_t n4) {
    int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (i < n4) {
        float4 v = x[i];
        out[i] = make_float4(fmaxf(v.x, 0.f), fmaxf(v.y, 0.f), fmaxf(v.z, 0.f), fmaxf(v.w, 0.f));
    }
}
__global__ void relu_tail(const float* x, float* out, int64_t start, int64_t n) {
    int64_t i = start + threadIdx.x;
    if (i < n) out[i] = fmaxf(x[i], 0.f);
}
extern "C" void relu(const float* x, float* out, int64_t n) {
    int64_t n4 = n / 4;  // torch's allocations are 16-byte aligned: whole float4s, then the rest
    if (n4 > 0) relu_kernel<<<(n4 + 255) / 256, 256>>>((const float4*)x, (float4*)out, n4);
    if (n % 4) relu_tail<<<1, 4>>>(x, out, n4 * 4, n);
}
"""
lib = load(SOURCE)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        return out
