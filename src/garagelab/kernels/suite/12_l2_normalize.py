"""Rows scaled to unit Euclidean norm."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


BATCH = 256
DIM = 4096


def get_inputs():
    return [torch.randn(BATCH, DIM)]


def get_init_inputs():
    return []


PRESETS = {"cpu": {"BATCH": 64, "DIM": 1024}, "gpu": {"BATCH": 4096, "DIM": 4096}}
