"""PPO with the rollout on the device (ppo_mjx): the scanned rollout against a plain Python loop
over the same MJX env and keys, and training through `train.train` with checkpoints and resume.

Slow (XLA compiles the MJX step and the scan for tens of seconds on a CPU), so marked `slow`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mujoco.mjx")

import jax
import jax.numpy as jnp

from garagelab.playground import ppo, ppo_mjx, train
from garagelab.playground.registry import load


@pytest.mark.slow
def test_the_scanned_rollout_matches_a_python_loop() -> None:
    """Same keys, same env: the same observations, rewards, ends and finished-episode sums,
    with episodes of 5 steps ending inside the 8-step rollout."""
    config = train.tuned_config("CartpoleBalance", num_envs=3, unroll_length=8)
    env = load("CartpoleBalance", "mjx", 3, {"episode_length": 5}, seed=0)
    start = env.reset(2)
    learner = ppo.new_learner(config, env.observation_size, env.observation_size, env.action_size)
    stats = learner.obs_norm.arrays()
    zeros, ones = jnp.zeros(3), jnp.ones(3)
    collect = ppo_mjx.make_collect(env, config)
    _, _, _, _, _, rollout, sums, _, _ = collect(learner.params, stats, start, learner.key, zeros, zeros, ones)
    obs, _, _, action, _, reward, terminated, truncated = (np.asarray(a) for a in rollout)

    state, key, returns, finished = start, learner.key, np.zeros(3), 0.0
    for t in range(config.unroll_length):
        key, sample = jax.random.split(key)
        np.testing.assert_allclose(obs[t], np.asarray(state.obs), atol=1e-6)
        expected, _ = ppo.act(learner.params, state.obs, stats, sample)
        np.testing.assert_allclose(action[t], np.asarray(expected), atol=1e-6)
        state = env.step(state, jnp.clip(expected, -1.0, 1.0))
        np.testing.assert_allclose(reward[t], np.asarray(state.reward), atol=1e-6)
        np.testing.assert_array_equal(truncated[t], np.asarray(state.info["truncation"]))
        np.testing.assert_array_equal(terminated[t] + truncated[t], np.asarray(state.done))
        returns += np.asarray(state.reward)
        finished += float(np.sum(returns * np.asarray(state.done)))
        returns *= 1 - np.asarray(state.done)
    assert truncated.sum() == 3  # every env hit the 5-step limit once
    np.testing.assert_allclose(float(sums[0]), finished, rtol=1e-5)
    assert float(sums[2]) == 3
    # Marked as begun part way (staggered starts), those first episodes are left out of the sums.
    *_, partial, _, _ = collect(learner.params, stats, start, learner.key, zeros, zeros, zeros)
    assert float(partial[0]) == 0.0 and float(partial[2]) == 0.0


@pytest.mark.slow
def test_training_on_mjx_checkpoints_and_resumes(tmp_path: Path) -> None:
    small = {"num_envs": 8, "unroll_length": 16, "num_minibatches": 2, "update_epochs": 2}
    config = train.tuned_config("CartpoleBalance", total_steps=8 * 16 * 3, **small)
    options = {"engine": "mjx"}
    first = train.train("CartpoleBalance", config, tmp_path, checkpoint_every=2, progress=False, env_options=options)
    assert first.iteration == 3 and first.steps == 384
    assert all(np.isfinite(row["value_loss"]) and "env/reward/upright" in row for row in first.history)
    assert first.obs_norm.count > 384  # the device rollout's moments reached the normaliser
    longer = train.tuned_config("CartpoleBalance", total_steps=8 * 16 * 5, **small)
    resumed = train.train("CartpoleBalance", longer, tmp_path, checkpoint_every=2, progress=False, env_options=options)
    assert [row["iteration"] for row in resumed.history] == [1, 2, 3, 4, 5]
    assert train.evaluate("CartpoleBalance", resumed, episodes=1).lengths == [1000]  # runs on the CPU engine


SHARDED_RUN = """
import os, sys
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=" + sys.argv[1]
import jax
import numpy as np
from garagelab.core.errors import UserError
from garagelab.playground import ppo, ppo_mjx, train
from garagelab.playground.registry import load

config = train.tuned_config("CartpoleBalance", num_envs=8, unroll_length=16, num_minibatches=2, update_epochs=2)
env = load("CartpoleBalance", "mjx", 8, seed=0)
state = env.reset(0)
learner = ppo.learner_for(config, env, state)
iterate = ppo_mjx.make_iterate(env, config)
for _ in range(2):
    state, row = iterate(learner, state)
leaves = {f"p{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(learner.params))}
np.savez(sys.argv[2], devices=len(state.obs.sharding.device_set), obs=np.asarray(state.obs), **leaves)
try:
    ppo_mjx.shard_envs(state, 3)
except UserError as exc:
    print(exc)
"""


@pytest.mark.slow
def test_training_splits_the_envs_over_several_devices(tmp_path: Path) -> None:
    """Two CPU devices (XLA's host-platform device count, in a process of its own): the env batch
    lives half on each, and two iterations give the parameters and env states of one device."""
    import subprocess
    import sys

    script = tmp_path / "sharded.py"
    script.write_text(SHARDED_RUN)
    results = {}
    for count in (1, 2):
        out = subprocess.run([sys.executable, str(script), str(count), str(tmp_path / f"{count}.npz")],
                             capture_output=True, text=True, timeout=900)  # fmt: skip
        assert out.returncode == 0, out.stderr[-2000:]
        results[count] = (np.load(tmp_path / f"{count}.npz"), out.stdout)
    (one, one_out), (two, two_out) = results[1], results[2]
    assert int(one["devices"]) == 1 and int(two["devices"]) == 2
    np.testing.assert_allclose(two["obs"], one["obs"], atol=1e-4)
    for name in (k for k in one.files if k.startswith("p")):
        np.testing.assert_allclose(two[name], one[name], atol=1e-4, err_msg=name)
    assert "do not split evenly over 2 devices" in two_out and "do not split" not in one_out
