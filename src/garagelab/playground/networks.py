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


# the Nature DQN encoder's kernels and strides (Mnih et al. 2015), its channels set by the config
CONV_KERNELS = ((8, 4), (4, 2), (3, 1))


def conv_output_size(shape: tuple[int, int, int], channels: tuple[int, ...]) -> int:
    """Features out of the encoder for (H, W, C) frames: 1024 for 64x64 and channels (32, 64, 64)."""
    height, width = shape[0], shape[1]
    for kernel, stride in CONV_KERNELS[: len(channels)]:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    if height < 1 or width < 1:
        raise ValueError(f"frames of {shape[0]}x{shape[1]} are too small for the encoder (at least 36x36)")
    return height * width * channels[-1]


def init_encoder(key: jax.Array, shape: tuple[int, int, int], channels: tuple[int, ...]) -> list[dict]:
    """Convolutions (HWIO weights, orthogonal with gain sqrt 2, as CleanRL's Atari PPO) for (H, W, C) frames."""
    layers, fan_in = [], shape[2]
    for k, (kernel, _), out in zip(jax.random.split(key, len(channels)), CONV_KERNELS, channels, strict=False):
        flat = jax.nn.initializers.orthogonal(math.sqrt(2))(k, (kernel * kernel * fan_in, out), jnp.float32)
        layers.append({"w": flat.reshape(kernel, kernel, fan_in, out), "b": jnp.zeros(out, jnp.float32)})
        fan_in = out
    return layers


def encode(layers: list[dict], frames: jax.Array) -> jax.Array:
    """(N, H, W, C) frames (uint8 0-255, or depth in metres) to (N, features): ReLU convolutions, flattened."""
    x = frames.astype(jnp.float32)
    if frames.dtype == jnp.uint8:
        x = x / 255.0
    for layer, (_, stride) in zip(layers, CONV_KERNELS, strict=False):
        x = jax.lax.conv_general_dilated(
            x, layer["w"], (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        x = jax.nn.relu(x + layer["b"])
    return x.reshape(x.shape[0], -1)


def random_shift(frames: jax.Array, key: jax.Array, pad: int) -> jax.Array:
    """Each frame shifted by up to `pad` pixels each way, edges repeated (DrQ's augmentation):
    an actor that must act the same on shifted views learns from far fewer frames."""
    n, height, width, channels = frames.shape
    padded = jnp.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)

    def crop(frame: jax.Array, at: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(frame, (at[0], at[1], 0), (height, width, channels))

    return jax.vmap(crop)(padded, offsets)


def init_actor_critic(
    key: jax.Array,
    obs_shape: tuple[int, ...],
    critic_obs_size: int,
    action_size: int,
    hidden: tuple[int, ...],
    init_log_std: float = -0.5,
    cnn_channels: tuple[int, ...] = (32, 64, 64),
) -> dict:
    """Actor and critic MLPs; for (H, W, C) pixel observations the actor reads them through a CNN encoder
    (the critic reads `critic_obs_size` numbers: the state, in an asymmetric actor-critic)."""
    actor, critic, encoder = jax.random.split(key, 3)
    params: dict = {}
    actor_input = obs_shape[0]
    if len(obs_shape) == 3:
        params["encoder"] = init_encoder(encoder, obs_shape, cnn_channels)  # type: ignore[arg-type]
        actor_input = conv_output_size(obs_shape, cnn_channels)  # type: ignore[arg-type]
    return params | {
        "actor": init_mlp(actor, (actor_input, *hidden, action_size), last_scale=0.01),
        "log_std": jnp.full(action_size, init_log_std, jnp.float32),
        "critic": init_mlp(critic, (critic_obs_size, *hidden, 1), last_scale=1.0),
    }


def actor_mean(params: dict, obs: jax.Array, stats: tuple[jax.Array, jax.Array]) -> jax.Array:
    """The policy's mean action before clipping: normalised state, or pixels through the encoder."""
    features = encode(params["encoder"], obs) if "encoder" in params else normalize(obs, stats)
    return mlp(params["actor"], features)


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
