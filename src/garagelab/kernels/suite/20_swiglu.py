"""SwiGLU: silu(x @ W1.T) * (x @ W2.T)."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_features, hidden):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(hidden, in_features) / in_features**0.5)
        self.w2 = nn.Parameter(torch.randn(hidden, in_features) / in_features**0.5)

    def forward(self, x):
        return torch.nn.functional.silu(x @ self.w1.T) * (x @ self.w2.T)


BATCH = 256
IN = 1024
HIDDEN = 2048


def get_inputs():
    return [torch.randn(BATCH, IN)]


def get_init_inputs():
    return [IN, HIDDEN]


PRESETS = {"cpu": {"BATCH": 32, "IN": 256, "HIDDEN": 256}, "gpu": {"BATCH": 4096, "IN": 4096, "HIDDEN": 11008}}
