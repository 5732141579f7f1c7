"""Tiny language models in plain JAX: an MLP n-gram LM and a small causal transformer.

Both read examples cut from a token stream and produce logits for `predictions` tokens per
example: one for the MLP (the next token after a fixed window), `context` for the
transformer (every position of a chunk). N, as in the paper, counts non-embedding
parameters: the token (and position) embeddings and the output projection are excluded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from garagelab.core.errors import UserError

Params = dict[str, Any]


def _dense(key: jax.Array, fan_in: int, fan_out: int) -> jax.Array:
    return jax.random.normal(key, (fan_in, fan_out), jnp.float32) / math.sqrt(fan_in)


@dataclass(frozen=True)
class MLPLM:
    """Embed the last `context` tokens, two ReLU layers of `width`, predict the next token."""

    vocab: int
    width: int
    context: int = 8
    embed: int = 16

    kind = "mlp"

    @property
    def predictions(self) -> int:
        return 1

    @property
    def window(self) -> int:
        """Tokens an example spans (inputs and targets)."""
        return self.context + 1

    @property
    def stride(self) -> int:
        return 1

    def non_embedding_params(self) -> int:
        h = self.width
        return self.context * self.embed * h + h + h * h + h

    def forward_flops(self) -> float:
        """Matmul FLOPs per predicted token, the unembedding included."""
        return 2.0 * (self.non_embedding_params() + self.width * self.vocab)

    def init(self, key: jax.Array) -> Params:
        k = jax.random.split(key, 4)
        return {
            "embed": jax.random.normal(k[0], (self.vocab, self.embed), jnp.float32),
            "w1": _dense(k[1], self.context * self.embed, self.width),
            "b1": jnp.zeros(self.width),
            "w2": _dense(k[2], self.width, self.width),
            "b2": jnp.zeros(self.width),
            "out": _dense(k[3], self.width, self.vocab) * 0.5,
            "bout": jnp.zeros(self.vocab),
        }

    def logits(self, params: Params, windows: jax.Array) -> jax.Array:
        """(B, window) token windows -> (B, 1, vocab) logits for the last token."""
        x = params["embed"][windows[:, :-1]].reshape(windows.shape[0], -1)
        x = jax.nn.relu(x @ params["w1"] + params["b1"])
        x = jax.nn.relu(x @ params["w2"] + params["b2"])
        return (x @ params["out"] + params["bout"])[:, None, :]

    @staticmethod
    def targets(windows: jax.Array) -> jax.Array:
        return windows[:, -1:]


@dataclass(frozen=True)
class TransformerLM:
    """Pre-norm causal transformer (RMSNorm, GELU MLP of 4x width) over chunks of `context`."""

    vocab: int
    width: int
    layers: int
    heads: int = 4
    context: int = 64

    kind = "transformer"

    @property
    def predictions(self) -> int:
        return self.context

    @property
    def window(self) -> int:
        return self.context + 1

    @property
    def stride(self) -> int:
        return self.context

    def non_embedding_params(self) -> int:
        d = self.width
        return self.layers * (12 * d * d + 2 * d) + d

    def forward_flops(self) -> float:
        attention = 2.0 * self.layers * self.context * self.width  # scores and mixing, per token
        return 2.0 * (self.non_embedding_params() + self.width * self.vocab) + attention

    def init(self, key: jax.Array) -> Params:
        d = self.width
        keys = iter(jax.random.split(key, 3 + 4 * self.layers))
        blocks = [
            {
                "norm1": jnp.ones(d),
                "qkv": _dense(next(keys), d, 3 * d),
                "proj": _dense(next(keys), d, d) / math.sqrt(2 * self.layers),
                "norm2": jnp.ones(d),
                "up": _dense(next(keys), d, 4 * d),
                "down": _dense(next(keys), 4 * d, d) / math.sqrt(2 * self.layers),
            }
            for _ in range(self.layers)
        ]
        return {
            "embed": jax.random.normal(next(keys), (self.vocab, d), jnp.float32) * 0.5,
            "position": jax.random.normal(next(keys), (self.context, d), jnp.float32) * 0.1,
            "blocks": blocks,
            "norm": jnp.ones(d),
            "out": _dense(next(keys), d, self.vocab),
        }

    def logits(self, params: Params, windows: jax.Array) -> jax.Array:
        """(B, context + 1) windows -> (B, context, vocab) logits for tokens 1..context."""
        tokens = windows[:, :-1]
        batch, length = tokens.shape
        d, h = self.width, self.heads
        x = params["embed"][tokens] + params["position"][:length]
        mask = jnp.tril(jnp.ones((length, length), bool))
        for block in params["blocks"]:
            q, k, v = jnp.split(_rms(x, block["norm1"]) @ block["qkv"], 3, axis=-1)
            q, k, v = (t.reshape(batch, length, h, d // h) for t in (q, k, v))
            scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d // h)
            weights = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
            mixed = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, length, d)
            x = x + mixed @ block["proj"]
            x = x + jax.nn.gelu(_rms(x, block["norm2"]) @ block["up"]) @ block["down"]
        return _rms(x, params["norm"]) @ params["out"]

    @staticmethod
    def targets(windows: jax.Array) -> jax.Array:
        return windows[:, 1:]


def _rms(x: jax.Array, scale: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt((x * x).mean(axis=-1, keepdims=True) + 1e-6) * scale


Model = MLPLM | TransformerLM
MODEL_KINDS = ("mlp", "transformer")


def model_for_params(kind: str, target: float, vocab: int) -> Model:
    """The model of this kind whose non-embedding size is closest to `target`."""
    if kind == "mlp":
        base = MLPLM(vocab, 1)
        per_width = base.context * base.embed + 2
        # solve width^2 + per_width * width = target
        width = max(2, round((-per_width + math.sqrt(per_width**2 + 4 * target)) / 2))
        return MLPLM(vocab, width)
    if kind == "transformer":
        # fixed aspect ratio width / layers = 32, width a multiple of the 4 heads
        layers = max(1, round((target / (12 * 32**2)) ** (1 / 3)))
        width = max(8, 4 * round(math.sqrt(target / (12 * layers)) / 4))
        return TransformerLM(vocab, width, layers)
    raise UserError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def window_starts(model: Model, stream: np.ndarray, count: int) -> np.ndarray:
    """(row, column) starts of the first `count` examples of a (rows, length) stream, row-major."""
    rows, length = stream.shape
    per_row = (length - model.window) // model.stride + 1
    if per_row < 1 or rows * per_row < count:
        raise UserError(f"stream of {rows}x{length} tokens holds fewer than {count} examples")
    index = np.arange(count)
    return np.stack([index // per_row, (index % per_row) * model.stride], axis=1)


def gather_windows(model: Model, stream: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The token windows at the given (row, column) starts, as a (count, window) array."""
    offsets = np.arange(model.window)
    return stream[starts[:, :1], starts[:, 1:] + offsets[None, :]]
