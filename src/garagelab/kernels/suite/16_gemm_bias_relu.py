"""Linear layer (x @ W.T + b) followed by ReLU."""

import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)
        self.bias = nn.Parameter(torch.randn(out_features))

    def forward(self, x):
        return torch.relu(x @ self.weight.T + self.bias)


BATCH = 256
IN = 1024
OUT = 1024


def get_inputs():
    return [torch.randn(BATCH, IN)]


def get_init_inputs():
    return [IN, OUT]


PRESETS = {"cpu": {"BATCH": 64, "IN": 256, "OUT": 128}, "gpu": {"BATCH": 4096, "IN": 4096, "OUT": 4096}}
