"""Matrix product of an M x K and a K x N matrix."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return a @ b


M = 1024
K = 1024
N = 1024


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N)]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"M": 128, "K": 256, "N": 128}, "gpu": {"M": 4096, "K": 4096, "N": 4096}}
