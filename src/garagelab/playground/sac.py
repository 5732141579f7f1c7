"""SAC (Haarnoja et al. 2018, with the learned temperature of the 2019 version) in one file,
beside `ppo.py` and sharing its pieces: the MLPs and running normalisers of `networks.py`, the
`Learner` that checkpoints save and restore, the episode tracker and the iteration interface
(`make_iterate(env, config)(learner, state) -> (state, row)`) that `train.train` drives.

An iteration steps every env `unroll_length` times with the squashed Gaussian policy (uniform
random actions until `learning_starts` transitions are stored), adds the transitions to a
replay buffer in host memory, then runs `updates_per_iteration` gradient steps in one jitted
`lax.scan` over minibatches drawn here (the buffer never crosses to the device whole): twin
critics against Polyak-averaged targets, the actor through the reparameterised sample, the
temperature towards an entropy of -|A| (brax's and CleanRL's defaults). A transition cut by the
time limit is not stored: the env reset before its next state could be seen, and a terminal
would teach the critic that time ends the task.

The actor's mean and log-std are two MLPs of the shared kind (tanh hidden layers), so the mean
network is the same `params["actor"]` PPO's export and evaluation read; a SAC policy acts with
tanh of it (`deterministic`), and its critics (`q1`, `q2`) tell it apart.

From pixels (`train --pixels --algo sac`) the actor reads the frames through PPO's CNN encoder
(`params["encoder"]`, trained by the actor's loss) while the critics read the state: an
asymmetric actor-critic, as PPO's pixel learner. Every gradient step sees the frames shifted
by up to `augment_shift` pixels (DrQ's random shift). The buffer keeps frames as uint8, and
the steps run one jitted call each from Python with their minibatch drawn per step: inside a
`lax.scan` XLA's CPU convolutions run many times slower (see `ppo.make_update`), and a scan's
stacked minibatches of frames would take hundreds of MB per iteration. The replay buffer is
not checkpointed: a resumed run continues the learner exactly and refills the buffer with the
current policy (brax's SAC does the same).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from garagelab.core.errors import UserError
from garagelab.playground import networks as nets
from garagelab.playground.ppo import (
    Batching,
    EpisodeTracker,
    Learner,
    as_observation,
    check_batching,
    critic_input,
    finish_iteration,
)

LOG_STD_RANGE = (-5.0, 2.0)  # CleanRL's bounds, reached through a tanh


@dataclass(frozen=True)
class SACConfig(Batching):
    total_steps: int = 200_000
    num_envs: int = 16
    unroll_length: int = 16  # steps of every env per iteration
    updates_per_iteration: int = 256  # gradient steps per iteration: one per transition, as CleanRL's
    batch: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 5_000  # transitions of uniform random actions before the first update
    learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005  # Polyak averaging of the target critics
    init_alpha: float = 1.0
    reward_scale: float = 1.0
    hidden: tuple[int, ...] = (256, 256)
    cnn_channels: tuple[int, ...] = (16, 32, 32)  # the actor's pixel encoder (pixels only)
    augment_shift: int = 4  # pixels each frame may shift by in a gradient step (pixels only; 0: none)
    normalize_obs: bool = True
    seed: int = 0


def config_dict(config: SACConfig) -> dict:
    return {**asdict(config), "hidden": list(config.hidden), "cnn_channels": list(config.cnn_channels)}


def is_sac(params: dict) -> bool:
    """A SAC learner's parameters hold its twin critics."""
    return "q1" in params


def new_learner(config: SACConfig, obs_shape: int | tuple[int, ...], critic_obs_size: int, action_size: int) -> Learner:
    """A fresh learner; `obs_shape` is a state size (or (size,)) or (H, W, C) pixels (a CNN actor)."""
    shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)
    key, actor, log_std, q1, q2, encoder = jax.random.split(jax.random.PRNGKey(config.seed), 6)
    params: dict = {}
    features = shape[0]
    if len(shape) == 3:
        params["encoder"] = nets.init_encoder(encoder, shape, config.cnn_channels)  # type: ignore[arg-type]
        features = nets.conv_output_size(shape, config.cnn_channels)  # type: ignore[arg-type]
    critic_sizes = (critic_obs_size + action_size, *config.hidden, 1)
    params |= {
        "actor": nets.init_mlp(actor, (features, *config.hidden, action_size), last_scale=0.01),
        "actor_log_std": nets.init_mlp(log_std, (features, *config.hidden, action_size), last_scale=0.01),
        "q1": nets.init_mlp(q1, critic_sizes),
        "q2": nets.init_mlp(q2, critic_sizes),
        "log_alpha": jnp.array(math.log(config.init_alpha), jnp.float32),
    }
    params |= {"q1_target": params["q1"], "q2_target": params["q2"]}
    opt_state = tuple(tx.init(part) for tx, part in zip(_optimizers(config), _parts(params), strict=True))
    obs_norm = nets.RunningNorm.of_size(shape[0] if len(shape) == 1 else 1)  # pixels are scaled by 1/255 instead
    return Learner(params, opt_state, obs_norm, nets.RunningNorm.of_size(critic_obs_size), key)


def learner_for(config: SACConfig, env, state) -> Learner:
    """A fresh learner sized for `env`, its critics' input size read off one of its states."""
    return new_learner(config, env.observation_shape, critic_input(state).shape[-1], env.action_size)


def _optimizers(config: SACConfig) -> tuple[optax.GradientTransformation, ...]:
    """Adam for the actor, the critics and the temperature."""
    return tuple(optax.adam(config.learning_rate) for _ in range(3))


def _parts(params: dict) -> tuple[dict, dict, jax.Array]:
    """What each optimiser updates: the actor's networks (and pixel encoder), the twin critics,
    the temperature."""
    actor_names = ("encoder", "actor", "actor_log_std") if "encoder" in params else ("actor", "actor_log_std")
    return (
        {name: params[name] for name in actor_names},
        {"q1": params["q1"], "q2": params["q2"]},
        params["log_alpha"],
    )


def _policy(params: dict, obs: jax.Array, stats: tuple, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A squashed Gaussian sample (reparameterised) and its log-probability."""
    x = nets.encode(params["encoder"], obs) if "encoder" in params else nets.normalize(obs, stats)
    mean = nets.mlp(params["actor"], x)
    low, high = LOG_STD_RANGE
    log_std = low + 0.5 * (high - low) * (jnp.tanh(nets.mlp(params["actor_log_std"], x)) + 1.0)
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    logp = nets.log_prob(mean, log_std, u)
    logp -= (2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))).sum(-1)  # log |d tanh(u) / du|
    return jnp.tanh(u), logp


@jax.jit
def act(params: dict, obs: jax.Array, stats: tuple, key: jax.Array) -> jax.Array:
    return _policy(params, obs, stats, key)[0]


@jax.jit
def deterministic(params: dict, obs: jax.Array, stats: tuple) -> jax.Array:
    """tanh of the mean: what evaluation and export run."""
    return jnp.tanh(nets.actor_mean(params, obs, stats))


def _q(critic: list[dict], obs: jax.Array, action: jax.Array, stats: tuple) -> jax.Array:
    return nets.mlp(critic, jnp.concatenate([nets.normalize(obs, stats), action], -1))[..., 0]


def make_update(config: SACConfig, action_size: int, pixels: bool = False):
    """`update(params, opt_state, batches, stats, critic_stats, key)`: the gradient steps, one per
    minibatch of `batches`. State: stacked arrays (updates, batch, ...), one jitted scan. Pixels:
    an iterable of (batch, ...) minibatches, one jitted step each (see the module docstring)."""
    actor_tx, critic_tx, alpha_tx = _optimizers(config)
    target_entropy = -float(action_size)

    def critic_loss(critics, params, batch, stats, critic_stats, key):
        _, critic_obs, action, reward, next_obs, next_critic_obs, terminal = batch
        next_action, next_logp = _policy(params, next_obs, stats, key)
        next_q = jnp.minimum(
            _q(params["q1_target"], next_critic_obs, next_action, critic_stats),
            _q(params["q2_target"], next_critic_obs, next_action, critic_stats),
        )
        alpha = jnp.exp(params["log_alpha"])
        target = jax.lax.stop_gradient(reward + config.gamma * (1.0 - terminal) * (next_q - alpha * next_logp))
        q1 = _q(critics["q1"], critic_obs, action, critic_stats)
        q2 = _q(critics["q2"], critic_obs, action, critic_stats)
        return 0.5 * (((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean()), q1.mean()

    def actor_loss(actor, params, batch, stats, critic_stats, key):
        obs, critic_obs = batch[0], batch[1]
        action, logp = _policy({**params, **actor}, obs, stats, key)
        q = jnp.minimum(
            _q(params["q1"], critic_obs, action, critic_stats), _q(params["q2"], critic_obs, action, critic_stats)
        )
        return (jnp.exp(params["log_alpha"]) * logp - q).mean(), logp

    def step(carry, batch):
        params, (actor_state, critic_state, alpha_state), stats, critic_stats, key = carry
        key, critic_key, actor_key = jax.random.split(key, 3)
        if pixels and config.augment_shift > 0:  # its own stream: state runs draw exactly as before
            now, later = jax.random.split(jax.random.fold_in(actor_key, 1))
            obs, next_obs = batch[0], batch[4]
            batch = (nets.random_shift(obs, now, config.augment_shift), *batch[1:4],
                     nets.random_shift(next_obs, later, config.augment_shift), *batch[5:])  # fmt: skip
        actor, critics, log_alpha = _parts(params)
        (c_loss, q_mean), grads = jax.value_and_grad(critic_loss, has_aux=True)(
            critics, params, batch, stats, critic_stats, critic_key
        )
        updates, critic_state = critic_tx.update(grads, critic_state, critics)
        params = {**params, **optax.apply_updates(critics, updates)}
        (a_loss, logp), grads = jax.value_and_grad(actor_loss, has_aux=True)(
            actor, params, batch, stats, critic_stats, actor_key
        )
        updates, actor_state = actor_tx.update(grads, actor_state, actor)
        params = {**params, **optax.apply_updates(actor, updates)}
        entropy = -jax.lax.stop_gradient(logp).mean()
        grad = jax.grad(lambda la: -(la * (target_entropy - entropy)))(log_alpha)  # alpha rises below the target
        updates, alpha_state = alpha_tx.update(grad, alpha_state, log_alpha)
        params["log_alpha"] = optax.apply_updates(log_alpha, updates)
        for name in ("q1", "q2"):
            params[f"{name}_target"] = optax.incremental_update(params[name], params[f"{name}_target"], config.tau)
        info = {"critic_loss": c_loss, "actor_loss": a_loss, "q_mean": q_mean, "entropy": entropy,
                "alpha": jnp.exp(params["log_alpha"])}  # fmt: skip
        return (params, (actor_state, critic_state, alpha_state), stats, critic_stats, key), info

    @jax.jit
    def scanned(params, opt_state, batches, stats, critic_stats, key):
        (params, opt_state, *_), infos = jax.lax.scan(step, (params, opt_state, stats, critic_stats, key), batches)
        return params, opt_state, jax.tree.map(jnp.mean, infos)

    one_step = jax.jit(step)

    def stepwise(params, opt_state, batches, stats, critic_stats, key):
        carry, infos = (params, opt_state, stats, critic_stats, key), []
        for batch in batches:
            carry, info = one_step(carry, batch)
            infos.append(info)
        return carry[0], carry[1], jax.tree.map(lambda *x: jnp.mean(jnp.stack(x)), *infos)

    return stepwise if pixels else scanned


class ReplayBuffer:
    """Transitions in host memory, a ring of `capacity`; minibatches drawn uniformly."""

    FIELDS = ("obs", "critic_obs", "action", "reward", "next_obs", "next_critic_obs", "terminal")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.arrays: dict[str, np.ndarray] = {}
        self.size = 0
        self.cursor = 0

    def add(self, **transitions: np.ndarray) -> None:
        """Frames stay uint8 (a float32 copy would take 4x the memory); the rest is float32."""
        count = len(transitions["reward"])
        if not self.arrays:
            self.arrays = {
                k: np.zeros((self.capacity, *np.shape(v)[1:]), np.uint8 if v.dtype == np.uint8 else np.float32)
                for k, v in transitions.items()
            }
        index = (self.cursor + np.arange(count)) % self.capacity
        for name, values in transitions.items():
            self.arrays[name][index] = values
        self.cursor = int((self.cursor + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)

    def sample(self, rng: np.random.Generator, updates: int, batch: int) -> tuple[np.ndarray, ...]:
        """(updates, batch, ...) arrays, one per field, for a scan of gradient steps."""
        index = rng.integers(0, self.size, (updates, batch))
        return tuple(self.arrays[name][index] for name in self.FIELDS)

    def minibatches(self, rng: np.random.Generator, updates: int, batch: int) -> Iterator[tuple[np.ndarray, ...]]:
        """`updates` minibatches of (batch, ...) arrays, each drawn when it is needed."""
        for _ in range(updates):
            index = rng.integers(0, self.size, batch)
            yield tuple(self.arrays[name][index] for name in self.FIELDS)


def iterate(env, config: SACConfig, learner: Learner, state, tracker: EpisodeTracker, buffer: ReplayBuffer,
            rng: np.random.Generator, update) -> tuple[Any, dict]:  # fmt: skip
    """One iteration: `unroll_length` steps of every env into the buffer, then the gradient steps."""
    start = time.perf_counter()
    stats = learner.obs_norm.arrays()
    observed, critic_observed, metric_sums = [], [], {}
    pixels = len(env.observation_shape) == 3
    for _ in range(config.unroll_length):
        obs, critic_obs = as_observation(state.obs), np.asarray(critic_input(state), np.float32)
        if learner.steps < config.learning_starts:  # a fresh run's warm-up (a resumed one acts with its policy)
            action = rng.uniform(-1.0, 1.0, (config.num_envs, env.action_size)).astype(np.float32)
        else:
            learner.key, key = jax.random.split(learner.key)
            action = np.asarray(act(learner.params, obs, stats, key))
        state = env.step(state, action)
        truncated = np.asarray(state.info.get("truncation", np.zeros(config.num_envs)), bool)
        done = np.asarray(state.done, bool)
        kept = ~truncated  # see the module docstring: a time-limit cut has no next state to learn from
        buffer.add(obs=obs[kept], critic_obs=critic_obs[kept], action=action[kept],
                   reward=(np.asarray(state.reward) * config.reward_scale)[kept],
                   next_obs=as_observation(state.obs)[kept],
                   next_critic_obs=np.asarray(critic_input(state), np.float32)[kept],
                   terminal=(done & ~truncated)[kept].astype(np.float32))  # fmt: skip
        tracker.add(state.reward, state.done)
        observed.append(obs)
        critic_observed.append(critic_obs)
        for name, value in state.metrics.items():
            metric_sums[name] = metric_sums.get(name, 0.0) + float(np.mean(value))
    rollout_s = time.perf_counter() - start
    if config.normalize_obs:
        if not pixels:  # frames are scaled by 1/255 in the encoder
            learner.obs_norm.update(np.stack(observed))
        learner.critic_norm.update(np.stack(critic_observed))
    losses: dict = {}
    if buffer.size >= max(config.batch, min(config.learning_starts, config.buffer_size)):
        draw = buffer.minibatches if pixels else buffer.sample
        batches = draw(rng, config.updates_per_iteration, config.batch)
        learner.key, key = jax.random.split(learner.key)
        learner.params, learner.opt_state, losses = update(
            learner.params, learner.opt_state, batches, learner.obs_norm.arrays(), learner.critic_norm.arrays(), key
        )
    metrics = {k: v / config.unroll_length for k, v in metric_sums.items()}
    row = finish_iteration(learner, config, tracker.drain(), rollout_s, time.perf_counter() - start, losses, metrics)
    return state, row


def check(config: SACConfig) -> SACConfig:
    """The config, or a UserError naming the setting that cannot run."""
    check_batching(config, "sac", ("updates_per_iteration", "batch", "buffer_size"))
    for name in ("learning_rate", "reward_scale"):
        if not getattr(config, name) > 0:
            raise UserError(f"sac.{name} must be above 0 (got {getattr(config, name)})")
    if config.batch > config.buffer_size:
        raise UserError(f"sac.batch {config.batch} is larger than sac.buffer_size {config.buffer_size}")
    if not 0 < config.tau <= 1 or not 0 <= config.gamma < 1 or config.init_alpha <= 0:
        raise UserError("sac.tau must lie in (0, 1], sac.gamma in [0, 1) and sac.init_alpha above 0")
    if config.augment_shift < 0:
        raise UserError(f"sac.augment_shift must be 0 (off) or more pixels (got {config.augment_shift})")
    return config


def make_iterate(env, config: SACConfig):
    """`iterate(learner, state) -> (state, row)` for the CPU engine's numpy envs."""
    check(config)
    update = make_update(config, env.action_size, pixels=len(env.observation_shape) == 3)
    tracker, buffer = EpisodeTracker(config.num_envs), ReplayBuffer(config.buffer_size)
    rng = np.random.default_rng(config.seed)
    return lambda learner, state: iterate(env, config, learner, state, tracker, buffer, rng, update)
