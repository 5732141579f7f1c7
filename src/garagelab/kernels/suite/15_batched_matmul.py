"""Batched matrix product."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return torch.bmm(a, b)


B = 16
M = 256
K = 256
N = 256


def get_inputs():
    return [torch.randn(B, M, K), torch.randn(B, K, N)]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"B": 4, "M": 64, "K": 64, "N": 64}, "gpu": {"B": 128, "M": 512, "K": 512, "N": 512}}
