"""RMS normalisation over the last dimension with a weight."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


BATCH = 64
DIM = 4096


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM]


PRESETS = {"cpu": {"BATCH": 32, "DIM": 1024}, "gpu": {"BATCH": 4096, "DIM": 4096}}
