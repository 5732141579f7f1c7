"""PPO (Schulman et al. 2017) in one file, in the style of CleanRL and PureJaxRL.

The CPU engine steps `num_envs` numpy envs; the learner is JAX. Each iteration collects
`unroll_length` steps from every env (the policy is one jitted call per step), then one jitted
function computes GAE (truncated episodes are left out of the advantages and cut the bootstrap,
as brax does) and runs `update_epochs` passes over `num_minibatches` shuffled minibatches of
the clipped objective, with a clipped value loss, an entropy bonus and global gradient clipping.
Observations are normalised by running statistics (with `normalize_value`, the returns the
critic learns too); rewards are multiplied by `reward_scale`. `ppo_mjx` runs the same update
after a rollout scanned on the device.
The critic reads `info["privileged_obs"]` when the task provides it (an asymmetric
actor-critic: the critic may see what the robot's sensors cannot); else the policy's input.

Network sizes and batch shapes default to small ones: on 2 CPU cores a 64x64 MLP updates in a
few milliseconds, so stepping the envs, not the learner, sets the pace (brax's 5x256 critic made
Playground's run learner-bound at 1.5k steps/s here).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from garagelab.core.errors import UserError
from garagelab.playground import networks as nets
from garagelab.playground.config import MAX_ENVS


class Batching:
    """What an on- or off-policy config counts a run in: an iteration steps every one of
    `num_envs` envs `unroll_length` times (`batch_size` env steps), `iterations` of them."""

    total_steps: int
    num_envs: int
    unroll_length: int

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.unroll_length

    @property
    def iterations(self) -> int:
        return max(1, self.total_steps // self.batch_size)


def check_batching(config: Batching, algo: str, counts: tuple[str, ...]) -> None:
    """A UserError for a count below 1 (`counts`, the batch's among them) or more envs than fit."""
    for name in ("total_steps", "num_envs", "unroll_length", *counts):
        if getattr(config, name) < 1:
            raise UserError(f"{algo}.{name} must be at least 1 (got {getattr(config, name)})")
    if config.num_envs > MAX_ENVS:
        raise UserError(f"{algo}.num_envs {config.num_envs:,} is more than {MAX_ENVS:,}: each env holds its own state")


@dataclass(frozen=True)
class PPOConfig(Batching):
    total_steps: int = 1_000_000
    num_envs: int = 64
    unroll_length: int = 64
    num_minibatches: int = 8
    update_epochs: int = 4
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    # > 0: the learning rate adapts after every update to keep the policy's KL from the rollout's
    # near this (RSL-RL's rule: / 1.5 above twice it, x 1.5 below half of it; anneal_lr is then
    # ignored). Judged on the update's mean KL, not per minibatch as RSL-RL does: the first
    # minibatches of an update are always near the rollout's policy, and per minibatch the rate
    # climbed on them and crashed on the last ones within every update (pixel CartpoleBalance:
    # KL 0.02-0.04 logged at the floor rate 1e-5)
    desired_kl: float = 0.0
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    entropy_coef: float = 0.0
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 1.0
    hidden: tuple[int, ...] = (64, 64)
    cnn_channels: tuple[int, ...] = (32, 64, 64)  # the pixel encoder's (Nature DQN's) channels
    init_log_std: float = -0.5  # exploration noise at the start; a legged robot falls at high noise
    normalize_obs: bool = True
    normalize_value: bool = False  # the critic learns returns scaled by their running mean and std
    # each env's first episode starts at a random step of the episode limit, so episodes that
    # only end at the limit (DM Control's) do not end together. In step they do: on
    # CartpoleBalanceSparse only the first few of every 31 iterations (until the pole fell) saw a
    # reward, the rest fed the normalised advantages the critic's noise, and PPO ended below a
    # zero action (return 30-40 against 129 after 3M steps); staggered it returned 1000
    # (`train.stagger_starts`)
    stagger_starts: bool = False
    seed: int = 0


@dataclass
class Learner:
    """Everything a checkpoint must hold to continue training exactly where it stopped."""

    params: dict
    opt_state: Any
    obs_norm: nets.RunningNorm
    critic_norm: nets.RunningNorm
    key: jax.Array
    iteration: int = 0
    steps: int = 0
    history: list[dict] = field(default_factory=list)  # one row of metrics per iteration
    value_norm: nets.RunningNorm = field(default_factory=lambda: nets.RunningNorm.of_size(1))  # of the returns


def check(config: PPOConfig) -> PPOConfig:
    """The config, or a UserError naming the setting that cannot run (a negative desired_kl
    used to mean "off" silently; a minibatch count that does not divide the batch failed in a
    reshape inside the first update)."""
    check_batching(config, "ppo", ("num_minibatches", "update_epochs"))
    if config.batch_size % config.num_minibatches:
        raise UserError(
            f"ppo.num_minibatches {config.num_minibatches} must divide the batch "
            f"(num_envs x unroll_length = {config.batch_size})"
        )
    positive = ("learning_rate", "clip", "max_grad_norm", "reward_scale")
    for name in positive:
        if not getattr(config, name) > 0:
            raise UserError(f"ppo.{name} must be above 0 (got {getattr(config, name)})")
    if config.desired_kl < 0 or config.entropy_coef < 0 or config.value_coef < 0:
        raise UserError("ppo.desired_kl (0: off), ppo.entropy_coef and ppo.value_coef must not be negative")
    if not 0 <= config.gamma < 1 or not 0 <= config.gae_lambda <= 1:
        raise UserError("ppo.gamma must lie in [0, 1) and ppo.gae_lambda in [0, 1]")
    return config


def learner_for(config: PPOConfig, env, state) -> Learner:
    """A fresh learner sized for `env`, its critic's input size read off one of its states."""
    return new_learner(config, env.observation_shape, critic_input(state).shape[-1], env.action_size)


# the range the adaptive learning rate moves in (RSL-RL's)
ADAPTIVE_LR_RANGE = (1e-5, 1e-2)


def optimizer(config: PPOConfig) -> optax.GradientTransformation:
    clip = optax.clip_by_global_norm(config.max_grad_norm)
    if config.desired_kl > 0:  # the rate is state (`adapt_learning_rate` moves it), checkpointed with it
        return optax.chain(clip, optax.inject_hyperparams(optax.adam)(learning_rate=config.learning_rate, eps=1e-5))
    schedule: Any = config.learning_rate
    if config.anneal_lr:
        updates_per_iteration = config.update_epochs * config.num_minibatches
        schedule = optax.linear_schedule(config.learning_rate, 0.0, config.iterations * updates_per_iteration)
    return optax.chain(clip, optax.adam(schedule, eps=1e-5))


def adapt_learning_rate(opt_state: Any, kl: float, config: PPOConfig) -> Any:
    """The optimiser state with its learning rate moved by the last update's mean KL."""
    clip_state, adam_state = opt_state
    rate = float(adam_state.hyperparams["learning_rate"])
    if kl > 2.0 * config.desired_kl:
        rate = max(ADAPTIVE_LR_RANGE[0], rate / 1.5)
    elif kl < 0.5 * config.desired_kl:
        rate = min(ADAPTIVE_LR_RANGE[1], rate * 1.5)
    hyperparams = {**adam_state.hyperparams, "learning_rate": jnp.asarray(rate, dtype=jnp.float32)}
    return clip_state, adam_state._replace(hyperparams=hyperparams)


def learning_rate(opt_state: Any, config: PPOConfig) -> float:
    """The rate the next update uses (adaptive) or started from (fixed or annealed)."""
    return float(opt_state[1].hyperparams["learning_rate"]) if config.desired_kl > 0 else config.learning_rate


def new_learner(config: PPOConfig, obs_shape: int | tuple[int, ...], critic_obs_size: int, action_size: int) -> Learner:
    """A fresh learner; `obs_shape` is a state size (or (size,)) or (H, W, C) pixels (a CNN actor)."""
    shape = (obs_shape,) if isinstance(obs_shape, int) else tuple(obs_shape)
    key, init = jax.random.split(jax.random.PRNGKey(config.seed))
    params = nets.init_actor_critic(
        init, shape, critic_obs_size, action_size, config.hidden, config.init_log_std, config.cnn_channels
    )
    return Learner(
        params,
        optimizer(config).init(params),
        nets.RunningNorm.of_size(shape[0] if len(shape) == 1 else 1),  # pixels are scaled by 1/255 instead
        nets.RunningNorm.of_size(critic_obs_size),
        key,
    )


@jax.jit
def act(params: dict, obs: jax.Array, stats: tuple, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sampled actions (unclipped, as the log-probabilities are of these) and their log-probs."""
    mean = nets.actor_mean(params, obs, stats)
    action = mean + jnp.exp(params["log_std"]) * jax.random.normal(key, mean.shape)
    return action, nets.log_prob(mean, params["log_std"], action)


@jax.jit
def deterministic(params: dict, obs: jax.Array, stats: tuple) -> jax.Array:
    """The policy's mean action, clipped to the actuator range: what evaluation and export run."""
    return jnp.clip(nets.actor_mean(params, obs, stats), -1.0, 1.0)


def _values(params: dict, obs: jax.Array, stats: tuple) -> jax.Array:
    """The critic's output: values in the units of `value_stats` (plain units without value normalisation)."""
    return nets.mlp(params["critic"], nets.normalize(obs, stats))[..., 0]


def gae(rewards, values, next_values, terminated, truncated, gamma: float, lam: float):
    """Advantages over [T, N] arrays: a terminated step has no future, a truncated one (time
    limit) gets no advantage and cuts the recursion, since the env was reset before its next
    state could be seen."""

    def backward(carry, inputs):
        reward, value, next_value, term, trunc = inputs
        delta = reward + gamma * (1.0 - term) * next_value - value
        carry = delta + gamma * lam * (1.0 - term) * (1.0 - trunc) * carry
        carry = carry * (1.0 - trunc)
        return carry, carry

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(values[0]), (rewards, values, next_values, terminated, truncated), reverse=True
    )
    return advantages


def make_update(config: PPOConfig):
    """The learning step over a rollout: GAE (jitted), then epochs x minibatches of jitted PPO steps."""
    tx = optimizer(config)

    def loss_fn(params, batch, stats, critic_stats):
        obs, critic_obs, action, old_logp, advantage, target, old_value = batch
        mean = nets.actor_mean(params, obs, stats)
        logp = nets.log_prob(mean, params["log_std"], action)
        ratio = jnp.exp(logp - old_logp)
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        policy_loss = -jnp.minimum(
            ratio * advantage, jnp.clip(ratio, 1 - config.clip, 1 + config.clip) * advantage
        ).mean()
        value = _values(params, critic_obs, critic_stats)
        clipped = old_value + jnp.clip(value - old_value, -config.clip, config.clip)
        value_loss = 0.5 * jnp.maximum((value - target) ** 2, (clipped - target) ** 2).mean()
        ent = nets.entropy(params["log_std"])
        total = policy_loss + config.value_coef * value_loss - config.entropy_coef * ent
        return total, {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": ent,
            "approx_kl": ((ratio - 1) - jnp.log(ratio)).mean(),
            "clip_fraction": (jnp.abs(ratio - 1) > config.clip).mean(),
        }

    @jax.jit
    def prepare(params, rollout, critic_stats, value_stats, key):
        """GAE and targets over the rollout, flattened to one batch, and each epoch's minibatch order."""
        obs, critic_obs, next_critic_obs, action, logp, reward, terminated, truncated = rollout
        value_mean, value_inv_std = value_stats  # (0, 1) without value normalisation
        scaled = _values(params, critic_obs, critic_stats)
        values = scaled / value_inv_std + value_mean
        next_values = _values(params, next_critic_obs, critic_stats) / value_inv_std + value_mean
        advantage = gae(reward, values, next_values, terminated, truncated, config.gamma, config.gae_lambda)
        returns = advantage + values
        target_moments = (returns.mean(), returns.var())  # for the next iteration's value statistics
        target, values = (returns - value_mean) * value_inv_std, scaled  # the loss works in the critic's units
        flat = jax.tree.map(
            lambda x: x.reshape(-1, *x.shape[2:]), (obs, critic_obs, action, logp, advantage, target, values)
        )
        orders = jax.vmap(lambda k: jax.random.permutation(k, config.batch_size))(
            jax.random.split(key, config.update_epochs)
        )
        return flat, orders.reshape(config.update_epochs, config.num_minibatches, -1), target_moments

    @jax.jit
    def minibatch(params, opt_state, flat, indices, stats, critic_stats):
        batch = jax.tree.map(lambda x: x[indices], flat)
        grads, info = jax.grad(loss_fn, has_aux=True)(params, batch, stats, critic_stats)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, info

    def update(params, opt_state, rollout, stats, critic_stats, value_stats, key):
        """Epochs x minibatches of jitted steps from Python: a `lax.scan` over them runs XLA's CPU
        convolutions 16x slower (a CNN's update measured 13.4 s against 0.85 s), and the 32 calls
        cost an MLP learner about a millisecond."""
        flat, orders, target_moments = prepare(params, rollout, critic_stats, value_stats, key)
        infos = []
        for epoch in np.asarray(orders):
            for indices in epoch:
                params, opt_state, info = minibatch(params, opt_state, flat, indices, stats, critic_stats)
                infos.append(info)
        info = jax.tree.map(lambda *x: jnp.mean(jnp.stack(x)), *infos)
        if config.desired_kl > 0:
            opt_state = adapt_learning_rate(opt_state, float(info["approx_kl"]), config)
        return params, opt_state, info, target_moments

    return update


class EpisodeTracker:
    """Returns and lengths of the episodes that ended during training (numpy, per env). With
    `staggered` (`stagger_starts`) each env's first episode began part way and is not counted:
    its return would read as a whole episode's, low by the part it skipped."""

    def __init__(self, num_envs: int, staggered: bool = False) -> None:
        self.returns = np.zeros(num_envs)
        self.lengths = np.zeros(num_envs, np.int64)
        self.whole = np.full(num_envs, not staggered)
        self.finished: list[tuple[float, int]] = []

    def add(self, reward: Any, done: Any) -> None:
        reward, done = np.asarray(reward), np.asarray(done)  # the Warp engine's are jax arrays
        self.returns += reward
        self.lengths += 1
        ended = done > 0
        for env in np.flatnonzero(ended & self.whole):
            self.finished.append((float(self.returns[env]), int(self.lengths[env])))
        self.returns[ended] = 0.0
        self.lengths[ended] = 0
        self.whole |= ended

    def drain(self) -> tuple[float, float, int]:
        """(mean return, mean length, count) of the episodes finished since the last drain."""
        finished, self.finished = self.finished, []
        if not finished:
            return float("nan"), float("nan"), 0
        returns, lengths = zip(*finished, strict=True)
        return float(np.mean(returns)), float(np.mean(lengths)), len(finished)


def critic_input(state) -> Any:
    """The critic's observation: the privileged one where the task has it (numpy or jax)."""
    return state.info.get("privileged_obs", state.obs)


def as_observation(obs: Any) -> np.ndarray:
    """A policy's input on the host: frames as they are (uint8; the encoder scales them by 1/255),
    state vectors (and depth) as float32."""
    obs = np.asarray(obs)
    return obs if obs.dtype == np.uint8 else obs.astype(np.float32)


def iterate(env, config: PPOConfig, learner: Learner, state, tracker: EpisodeTracker, update) -> tuple[Any, dict]:
    """One iteration: a rollout of `unroll_length` steps of every env, then a learning step."""
    start = time.perf_counter()
    stats = learner.obs_norm.arrays()
    shape = (config.unroll_length, config.num_envs)
    obs_b = np.zeros((*shape, *env.observation_shape), np.asarray(state.obs).dtype)  # pixels stay uint8
    critic_b = np.zeros((*shape, critic_input(state).shape[-1]), np.float32)
    next_critic_b = np.zeros_like(critic_b)
    action_b = np.zeros((*shape, env.action_size), np.float32)
    logp_b, reward_b, term_b, trunc_b = (np.zeros(shape, np.float32) for _ in range(4))
    metric_sums: dict[str, float] = {}
    for t in range(config.unroll_length):
        learner.key, key = jax.random.split(learner.key)
        obs_b[t], critic_b[t] = state.obs, critic_input(state)
        action, logp = act(learner.params, state.obs, stats, key)
        action_b[t], logp_b[t] = np.asarray(action), np.asarray(logp)
        state = env.step(state, np.clip(action_b[t], -1.0, 1.0))
        truncation = np.asarray(state.info.get("truncation", np.zeros(config.num_envs)), np.float32)
        reward_b[t] = state.reward * config.reward_scale
        term_b[t], trunc_b[t] = state.done * (1.0 - truncation), truncation
        next_critic_b[t] = critic_input(state)  # after an auto-reset: the new episode's (cut by done)
        tracker.add(state.reward, state.done)
        for name, value in state.metrics.items():
            metric_sums[name] = metric_sums.get(name, 0.0) + float(np.mean(value))
    rollout_s = time.perf_counter() - start
    if config.normalize_obs:
        if obs_b.ndim == 3:  # a state vector per env (pixels are scaled by 1/255 in the encoder)
            learner.obs_norm.update(obs_b)
        learner.critic_norm.update(critic_b)
    learner.key, key = jax.random.split(learner.key)
    rollout = (obs_b, critic_b, next_critic_b, action_b, logp_b, reward_b, term_b, trunc_b)
    learner.params, learner.opt_state, info = learn(learner, config, update, rollout, stats, key)
    episodes = tracker.drain()
    metrics = {k: v / config.unroll_length for k, v in metric_sums.items()}
    return state, finish_iteration(learner, config, episodes, rollout_s, time.perf_counter() - start, info, metrics)


def learn(learner: Learner, config: PPOConfig, update, rollout, stats: tuple, key: jax.Array):
    """The learning step on a rollout (either engine's), then the returns' statistics updated
    where values are normalised: (params, optimiser state, losses)."""
    value_stats = learner.value_norm.arrays() if config.normalize_value else (jnp.float32(0), jnp.float32(1))
    params, opt_state, losses, (mean, var) = update(
        learner.params, learner.opt_state, rollout, stats, learner.critic_norm.arrays(), value_stats, key
    )
    if config.normalize_value:
        learner.value_norm.merge(np.reshape(mean, 1), np.reshape(var, 1), config.batch_size)
    if config.desired_kl > 0:
        losses = {**losses, "learning_rate": learning_rate(opt_state, config)}
    return params, opt_state, losses


def finish_iteration(
    learner: Learner,
    config: PPOConfig,
    episodes: tuple[float, float, int],
    rollout_s: float,
    total_s: float,
    losses: dict,
    env_metrics: dict,
) -> dict:
    """Count the iteration on `learner` and give its row of metrics (either engine's).

    `episode_return`/`episode_length` are those of the episodes that ended in the latest
    iteration that had any (`episodes` counts this iteration's): with long episodes most
    iterations end none, and a column of NaN between them tells a reader nothing.
    """
    learner.iteration += 1
    learner.steps += config.batch_size
    episode_return, episode_length, count = episodes
    if not count and learner.history:
        episode_return = learner.history[-1].get("episode_return", episode_return)
        episode_length = learner.history[-1].get("episode_length", episode_length)
    return {
        "iteration": learner.iteration,
        "steps": learner.steps,
        "episode_return": episode_return,
        "episode_length": episode_length,
        "episodes": count,
        "rollout_s": round(rollout_s, 4),
        "update_s": round(total_s - rollout_s, 4),
        **{k: float(v) for k, v in losses.items()},
        **{f"env/{k}": round(float(v), 5) for k, v in env_metrics.items()},
    }


def make_iterate(env, config: PPOConfig):
    """`iterate(learner, state) -> (state, row)` for the CPU engine's numpy envs."""
    update, tracker = make_update(config), EpisodeTracker(config.num_envs, config.stagger_starts)
    return lambda learner, state: iterate(env, config, learner, state, tracker, update)


def config_dict(config: PPOConfig) -> dict:
    return {**asdict(config), "hidden": list(config.hidden), "cnn_channels": list(config.cnn_channels)}
