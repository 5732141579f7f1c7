"""PPO on the MJX engine with the whole iteration on the device (PureJaxRL's layout).

The CPU engine's loop (ppo.iterate) steps numpy envs from Python, one policy call per step.
Here the rollout is one jitted `lax.scan` of policy + MJX step over `unroll_length` steps,
and the learning step is ppo.make_update's jitted function, fed the rollout where it lies:
two XLA programs per iteration, and only scalars and the observation moments come back to
the host (the running normalisers and metrics stay exact float64 numpy, as on the CPU path,
so checkpoints, evaluation and export are shared).

Episode returns are tracked in the scan (per env, reset where an episode ends).

Several local devices (GPUs, or CPU devices under `--xla_force_host_platform_device_count`)
train data-parallel with the same code: the env batch is split across them along its first
axis (`shard_envs`, a one-axis mesh), the parameters are replicated, and XLA's SPMD partitioner
turns the jitted rollout and update into per-device programs with the gradient all-reduce
where the minibatch mean needs it. On one device the placement is a no-op.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from garagelab.playground import ppo


def _moments(batch: jax.Array) -> tuple[jax.Array, jax.Array]:
    flat = batch.reshape(-1, batch.shape[-1])
    return flat.mean(0), flat.var(0)


def make_collect(env, config: ppo.PPOConfig):
    """The jitted rollout: (params, stats, env state, key, running returns/lengths/whole) ->
    (env state, key, returns/lengths/whole, rollout arrays, episode sums, metric means, moments).
    `whole` is 0 for an env whose episode began part way (`stagger_starts`): not counted."""

    def step(carry, _):
        params, stats, state, key, returns, lengths, whole = carry
        key, sample = jax.random.split(key)
        obs, critic = state.obs, ppo.critic_input(state).astype(jnp.float32)
        action, logp = ppo.act(params, obs, stats, sample)
        state = env.step(state, jnp.clip(action, -1.0, 1.0))
        truncation = state.info["truncation"].astype(jnp.float32)
        done = state.done
        returns, lengths = returns + state.reward, lengths + 1
        counted = done * whole
        finished = (jnp.sum(returns * counted), jnp.sum(lengths * counted), jnp.sum(counted))
        out = (
            obs,
            critic,
            ppo.critic_input(state).astype(jnp.float32),  # after an auto-reset: the new episode's (cut by done)
            action,
            logp,
            state.reward * config.reward_scale,
            done * (1.0 - truncation),
            truncation,
        )
        metrics = {k: jnp.mean(v) for k, v in state.metrics.items()}
        carry = (params, stats, state, key, returns * (1 - done), lengths * (1 - done), jnp.maximum(whole, done))
        return carry, (out, finished, metrics)

    @jax.jit
    def collect(params, stats, state, key, returns, lengths, whole):
        carry = (params, stats, state, key, returns, lengths, whole)
        (_, _, state, key, returns, lengths, whole), (rollout, finished, metrics) = jax.lax.scan(
            step, carry, None, length=config.unroll_length
        )
        sums = jax.tree.map(jnp.sum, finished)
        moments = (_moments(rollout[0]), _moments(rollout[1]))
        return state, key, returns, lengths, whole, rollout, sums, jax.tree.map(jnp.mean, metrics), moments

    return collect


def shard_envs(tree: Any, num_envs: int, devices: list | None = None) -> Any:
    """`tree` (an env state, per-env arrays) split across `devices` (default: every local one)
    along the env axis; arrays without that leading axis are replicated."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = devices or jax.local_devices()
    if len(devices) == 1:
        return tree
    if num_envs % len(devices):
        from garagelab.core.errors import UserError

        raise UserError(f"{num_envs} envs do not split evenly over {len(devices)} devices; set ppo.num_envs to a "
                        f"multiple of {len(devices)}")  # fmt: skip
    mesh = Mesh(np.array(devices), ("envs",))
    split, whole = NamedSharding(mesh, PartitionSpec("envs")), NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: jax.device_put(x, split if x.ndim and x.shape[0] == num_envs else whole), tree)


def make_iterate(env, config: ppo.PPOConfig):
    """`iterate(learner, state) -> (state, row)` for an MJX env (`registry.load(..., "mjx")`)."""
    collect, update = make_collect(env, config), ppo.make_update(config)
    zeros = jnp.zeros(config.num_envs)
    whole = jnp.full(config.num_envs, 0.0 if config.stagger_starts else 1.0)
    running = shard_envs({"returns": zeros, "lengths": zeros, "whole": whole}, config.num_envs)

    def iterate(learner: ppo.Learner, state: Any) -> tuple[Any, dict]:
        start = time.perf_counter()
        state = shard_envs(state, config.num_envs)  # placed once: later states come back split
        stats = learner.obs_norm.arrays()
        state, learner.key, *episode, rollout, sums, metrics, moments = collect(
            learner.params, stats, state, learner.key, running["returns"], running["lengths"], running["whole"]
        )
        running.update(zip(("returns", "lengths", "whole"), episode, strict=True))
        (obs_mean, obs_var), (critic_mean, critic_var) = jax.device_get(moments)  # waits for the rollout
        rollout_s = time.perf_counter() - start
        if config.normalize_obs:
            learner.obs_norm.merge(obs_mean, obs_var, config.batch_size)
            learner.critic_norm.merge(critic_mean, critic_var, config.batch_size)
        learner.key, key = jax.random.split(learner.key)
        learner.params, learner.opt_state, losses = ppo.learn(learner, config, update, rollout, stats, key)
        losses, (return_sum, length_sum, count), metrics = jax.device_get((losses, sums, metrics))
        episodes = (float(return_sum / count), float(length_sum / count), int(count)) if count else (np.nan, np.nan, 0)
        return state, ppo.finish_iteration(
            learner, config, episodes, rollout_s, time.perf_counter() - start, losses, metrics
        )

    return iterate
