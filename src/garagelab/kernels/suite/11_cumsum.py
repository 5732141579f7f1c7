"""Cumulative sum along the last dimension."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.cumsum(x, dim=-1)


BATCH = 128
DIM = 4096


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"BATCH": 32, "DIM": 512}, "gpu": {"BATCH": 1024, "DIM": 4096}}
