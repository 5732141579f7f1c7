"""ReLU in float16 (KernelBench's problems come in half precision too)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x)


N = 65536


def get_inputs():
    return [torch.randn(N, dtype=torch.float16)]


def get_init_inputs():
    return []
