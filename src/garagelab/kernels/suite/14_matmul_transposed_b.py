"""a @ b.T, the layout of a linear layer's weight."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return a @ b.T


M = 1024
K = 1024
N = 1024


def get_inputs():
    return [torch.randn(M, K), torch.randn(N, K)]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"M": 128, "K": 256, "N": 128}, "gpu": {"M": 4096, "K": 4096, "N": 4096}}
