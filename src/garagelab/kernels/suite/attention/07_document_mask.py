"""Document masking: packed sequences of DOC_LEN tokens attend within their own document.

Defined FlexAttention-style: scores = q @ k^T / sqrt(D), then `score_mod(score, b, h, q_idx,
kv_idx)`, then `mask_mod(b, h, q_idx, kv_idx)` (False: the key is not attended), softmax, @ v.
"""

import math

import torch
import torch.nn as nn

DOC_LEN = 48
BATCH = 4
HEADS = 8
LENGTH = 1024
DIM = 64


def score_mod(score, b, h, q_idx, kv_idx):
    return score


def mask_mod(b, h, q_idx, kv_idx):
    return (q_idx // DOC_LEN) == (kv_idx // DOC_LEN)


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q, k, v):
        batch, heads, length, dim = q.shape
        scores = q @ k.transpose(-1, -2) / math.sqrt(dim)
        b = torch.arange(batch, device=q.device).view(-1, 1, 1, 1)
        h = torch.arange(heads, device=q.device).view(1, -1, 1, 1)
        q_idx = torch.arange(length, device=q.device).view(1, 1, -1, 1)
        kv_idx = torch.arange(length, device=q.device).view(1, 1, 1, -1)
        scores = score_mod(scores, b, h, q_idx, kv_idx)
        scores = scores.masked_fill(~mask_mod(b, h, q_idx, kv_idx), float("-inf"))
        return torch.softmax(scores, dim=-1) @ v


def get_inputs():
    shape = (BATCH, HEADS, LENGTH, DIM)
    return [torch.randn(shape), torch.randn(shape), torch.randn(shape)]


def get_init_inputs():
    return []


PRESETS = {
    "cpu": {"BATCH": 1, "HEADS": 2, "LENGTH": 128, "DIM": 64},
    "gpu": {"BATCH": 8, "HEADS": 16, "LENGTH": 2048, "DIM": 64},
}
