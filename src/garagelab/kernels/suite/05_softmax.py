"""Softmax over the last dimension of each row."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.softmax(x, dim=-1)


BATCH = 64
DIM = 8192


def get_inputs():
    return [torch.randn(BATCH, DIM) * 4]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"BATCH": 32, "DIM": 1024}, "gpu": {"BATCH": 4096, "DIM": 8192}}
