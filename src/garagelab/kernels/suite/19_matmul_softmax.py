"""Matrix product followed by a row softmax."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.softmax(a @ b, dim=-1)


M = 512
K = 512
N = 512


def get_inputs():
    return [torch.randn(M, K), torch.randn(K, N) / K**0.5]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"M": 64, "K": 128, "N": 256}, "gpu": {"M": 4096, "K": 1024, "N": 4096}}
