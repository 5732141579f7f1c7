"""Layer normalisation over the last dimension with weight and bias."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim))
        self.bias = nn.Parameter(torch.randn(dim))

    def forward(self, x):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.weight, self.bias, 1e-5)


BATCH = 64
DIM = 4096


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return [DIM]


PRESETS = {"cpu": {"BATCH": 32, "DIM": 1024}, "gpu": {"BATCH": 4096, "DIM": 4096}}
