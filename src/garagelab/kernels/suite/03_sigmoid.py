"""Elementwise sigmoid."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.sigmoid(x)


BATCH = 16
DIM = 16384


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"BATCH": 16, "DIM": 4096}, "gpu": {"BATCH": 64, "DIM": 65536}}
