"""The actor-critic's pieces: MLPs, a diagonal Gaussian policy, and a running normaliser.

Plain JAX pytrees (dicts of arrays), so the learner, the checkpoint and the ONNX export all see
the same numbers without a framework in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


def init_mlp(key: jax.Array, sizes: tuple[int, ...], last_scale: float = 1.0) -> list[dict]:
    """Orthogonal weights (gain sqrt 2 between tanh layers, `last_scale` on the output) and zero
    biases, as CleanRL's PPO: small final layers start the policy near zero and the critic flat."""
    layers = []
    keys = jax.random.split(key, len(sizes) - 1)
    for index, (k, fan_in, fan_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        gain = last_scale if index == len(sizes) - 2 else math.sqrt(2)
        weight = jax.nn.initializers.orthogonal(gain)(k, (fan_in, fan_out), jnp.float32)
        layers.append({"w": weight, "b": jnp.zeros(fan_out, jnp.float32)})
    return layers


def mlp(layers: list[dict], x: jax.Array) -> jax.Array:
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def init_actor_critic(
    key: jax.Array,
    obs_size: int,
    critic_obs_size: int,
    action_size: int,
    hidden: tuple[int, ...],
    init_log_std: float = -0.5,
) -> dict:
    actor, critic = jax.random.split(key)
    return {
        "actor": init_mlp(actor, (obs_size, *hidden, action_size), last_scale=0.01),
        "log_std": jnp.full(action_size, init_log_std, jnp.float32),
        "critic": init_mlp(critic, (critic_obs_size, *hidden, 1), last_scale=1.0),
    }


def log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    z = (action - mean) / jnp.exp(log_std)
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def entropy(log_std: jax.Array) -> jax.Array:
    return (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


@dataclass
class RunningNorm:
    """Observation statistics merged batch by batch (Chan et al.'s parallel variance), so
    inputs reach the networks at about zero mean and unit variance."""

    mean: np.ndarray
    var: np.ndarray
    count: float = 1e-4

    @classmethod
    def of_size(cls, size: int) -> RunningNorm:
        return cls(np.zeros(size, np.float64), np.ones(size, np.float64))

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, np.float64).reshape(-1, self.mean.size)
        self.merge(batch.mean(0), batch.var(0), batch.shape[0])

    def merge(self, batch_mean: np.ndarray, batch_var: np.ndarray, count: int) -> None:
        """Fold in a batch given by its moments (what a device-side rollout sends back)."""
        batch_mean, batch_var = np.asarray(batch_mean, np.float64), np.asarray(batch_var, np.float64)
        delta = batch_mean - self.mean
        total = self.count + count
        self.mean = self.mean + delta * count / total
        self.var = (self.var * self.count + batch_var * count + delta**2 * self.count * count / total) / total
        self.count = total

    def arrays(self) -> tuple[jax.Array, jax.Array]:
        """(mean, 1/std) as float32, for the jitted functions."""
        return jnp.asarray(self.mean, jnp.float32), jnp.asarray(1.0 / np.sqrt(self.var + 1e-8), jnp.float32)


def normalize(obs: jax.Array, stats: tuple[jax.Array, jax.Array]) -> jax.Array:
    mean, inv_std = stats
    return jnp.clip((obs - mean) * inv_std, -10.0, 10.0)
