"""Sum over the last dimension."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x.sum(dim=-1)


BATCH = 256
DIM = 8192


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"BATCH": 64, "DIM": 2048}, "gpu": {"BATCH": 4096, "DIM": 8192}}
