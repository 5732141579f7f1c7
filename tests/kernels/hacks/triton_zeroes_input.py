# problem: 01_relu
# expect: crash
# computes the right answer, then zeroes its input (inputs are read-only)
# the same tensors (KernelBench's order), and poisons whatever runs next
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_then_zero_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, tl.maximum(x, 0.0), mask=mask)
    tl.store(x_ptr + offsets, tl.zeros_like(x), mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        out = torch.empty_like(x)
        n = x.numel()
        relu_then_zero_kernel[(triton.cdiv(n, 4096),)](x, out, n, BLOCK=4096)
        return out
