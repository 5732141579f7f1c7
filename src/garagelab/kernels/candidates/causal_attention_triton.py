# problem: attention/02_causal
# device: any
import math

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def causal_attention_kernel(q_ptr, k_ptr, v_ptr, out_ptr, length, scale, DIM: tl.constexpr,
                            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):  # fmt: skip
    """Flash attention forward: one block of queries per program, keys streamed in blocks up
    to the diagonal with an online softmax (running max and sum), never the full score matrix."""
    head = tl.program_id(1)  # batch x heads flattened
    queries = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    dims = tl.arange(0, DIM)
    base = head * length * DIM
    q = tl.load(q_ptr + base + queries[:, None] * DIM + dims[None, :], mask=queries[:, None] < length, other=0.0)
    top = tl.full((BLOCK_M,), -float("inf"), dtype=tl.float32)
    total = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, DIM), dtype=tl.float32)
    end = tl.minimum((tl.program_id(0) + 1) * BLOCK_M, length)  # causal: nothing past the last query
    for start in range(0, end, BLOCK_N):
        keys = start + tl.arange(0, BLOCK_N)
        k = tl.load(k_ptr + base + keys[:, None] * DIM + dims[None, :], mask=keys[:, None] < length, other=0.0)
        v = tl.load(v_ptr + base + keys[:, None] * DIM + dims[None, :], mask=keys[:, None] < length, other=0.0)
        scores = tl.dot(q, tl.trans(k), input_precision="ieee") * scale
        allowed = (keys[None, :] <= queries[:, None]) & (keys[None, :] < length)
        scores = tl.where(allowed, scores, -float("inf"))
        new_top = tl.maximum(top, tl.max(scores, axis=1))
        weights = tl.exp(scores - new_top[:, None])
        correction = tl.exp(top - new_top)
        total = total * correction + tl.sum(weights, axis=1)
        acc = acc * correction[:, None] + tl.dot(weights, v, input_precision="ieee")
        top = new_top
    tl.store(out_ptr + base + queries[:, None] * DIM + dims[None, :], acc / total[:, None],
             mask=queries[:, None] < length)  # fmt: skip


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, q, k, v):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        batch, heads, length, dim = q.shape
        out = torch.empty_like(q)
        block = 64
        grid = (triton.cdiv(length, block), batch * heads)
        causal_attention_kernel[grid](q, k, v, out, length, 1.0 / math.sqrt(dim), DIM=dim, BLOCK_M=block, BLOCK_N=block)
        return out
