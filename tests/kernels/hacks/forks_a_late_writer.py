# problem: 01_relu
# expect: honest
# timed: yes
# forks a child that tries to write the sealed output later (refused by the seal)
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
import os
import time


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        lib.relu(x, out, x.numel())
        for thing in gc.get_objects():
            if isinstance(thing, dict) and thing.get("op") == "call" and "fds" in thing:
                fd = thing["fds"][thing["output"]["fd"]]
                if os.fork() == 0:
                    time.sleep(0.01)
                    try:
                        mmap.mmap(fd, 4, prot=mmap.PROT_READ | mmap.PROT_WRITE)[:4] = b"\0\0\0\0"
                    finally:
                        os._exit(0)
        return out
