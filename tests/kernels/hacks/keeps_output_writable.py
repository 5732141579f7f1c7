# problem: 01_relu
# expect: exception|forbidden|hack
# maps the output it is given, to write into it after the answer
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
import mmap


class ModelNew(nn.Module):
    def forward(self, x):
        for thing in gc.get_objects():
            if isinstance(thing, dict) and thing.get("op") == "call" and "fds" in thing:
                fd = thing["fds"][thing["output"]["fd"]]
                ModelNew.kept = mmap.mmap(fd, 4, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        return out
