"""PPO on the CPU engine: its GAE against a plain loop, learning CartpoleBalance, checkpoints that
resume exactly, deterministic evaluation, and the ONNX export against JAX."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from garagelab.core.errors import UserError
from garagelab.core.runs import RunStore, iter_metrics
from garagelab.playground import export, ppo, train


def gae_loop(rewards, values, next_values, terminated, truncated, gamma, lam):
    advantages, carry = np.zeros_like(rewards), np.zeros(rewards.shape[1])
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * (1 - terminated[t]) * next_values[t] - values[t]
        carry = np.where(truncated[t] > 0, 0.0, delta + gamma * lam * (1 - terminated[t]) * carry)
        advantages[t] = carry
    return advantages


def test_gae_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(0)
    shape = (16, 5)
    arrays = [rng.normal(size=shape) for _ in range(3)]
    terminated, truncated = (rng.random(shape) < 0.1).astype(float), (rng.random(shape) < 0.1).astype(float)
    terminated *= 1 - truncated
    ours = ppo.gae(*map(jnp.asarray, (*arrays, terminated, truncated)), 0.99, 0.95)
    np.testing.assert_allclose(np.asarray(ours), gae_loop(*arrays, terminated, truncated, 0.99, 0.95), atol=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """CartpoleBalance for 800k steps (about 20 s here)."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    config = train.tuned_config("CartpoleBalance", total_steps=800_000)
    with store.start("playground", "cartpole", {}) as run:
        learner = train.train("CartpoleBalance", config, run.path, checkpoint_every=25, progress=False, log=run.log)
    return learner, run.path, config


@pytest.mark.slow
def test_ppo_learns_cartpole_balance(trained) -> None:
    learner, path, config = trained
    returns = [r["episode_return"] for r in learner.history if np.isfinite(r["episode_return"])]
    assert returns[-1] > returns[0], returns  # the exploring policy's episodes (entropy bonus: noisy)
    untrained = ppo.new_learner(config, 5, 5, 1)
    before = train.evaluate("CartpoleBalance", untrained, episodes=3).mean_return  # ~640: the pole starts up
    evaluation = train.evaluate("CartpoleBalance", learner, episodes=3)
    assert evaluation.lengths == [1000] * 3 and evaluation.mean_return > max(800, before + 150), (before, evaluation)
    assert (path / "metrics.csv").read_text().count("\n") == len(learner.history) + 1


def test_staggered_starts_spread_the_episode_ends() -> None:
    from garagelab.playground.registry import load

    env = load("CartpoleBalance", "cpu", 64, None, nthread=1)
    state = train.stagger_starts(env, env.reset(0), seed=3)
    clocks = np.asarray(state.info["steps"])
    assert clocks.min() >= 0 and clocks.max() < env.length and len(set(clocks.tolist())) > 40
    ends = []
    for step in range(env.length):
        state = env.step(state, np.zeros((64, 1)))
        ends += [step] * int(state.done.sum())
    assert len(ends) == 64 and len(set(ends)) > 40  # in step, all 64 ended at the last step


def test_an_episode_begun_part_way_is_not_logged_as_a_whole_one() -> None:
    tracker = ppo.EpisodeTracker(2, staggered=True)
    tracker.add(np.ones(2), np.array([1.0, 0.0]))  # env 0's staggered first episode ends
    assert tracker.drain()[2] == 0
    tracker.add(np.ones(2), np.ones(2))  # env 0's first whole episode, env 1's staggered one
    assert tracker.drain() == (1.0, 1.0, 1)
    tracker.add(np.full(2, 3.0), np.ones(2))
    assert tracker.drain() == (3.0, 1.0, 2)


@pytest.mark.slow
def test_sparse_balance_learns_with_staggered_starts(tmp_path: Path) -> None:
    """In step, PPO ended below a zero action here (return 30-40 against 129 after 3M steps)."""
    config = train.tuned_config("CartpoleBalanceSparse", total_steps=800_000)
    assert config.stagger_starts
    learner = train.train("CartpoleBalanceSparse", config, tmp_path, progress=False)
    assert train.evaluate("CartpoleBalanceSparse", learner, episodes=4).mean_return > 600


@pytest.mark.slow
def test_a_checkpoint_restores_the_learner_exactly(trained, tmp_path: Path) -> None:
    learner, path, config = trained
    restored = train.load_checkpoint(path / train.CHECKPOINT, ppo.new_learner(config, 5, 5, 1))
    assert restored.iteration == learner.iteration and restored.steps == learner.steps
    for a, b in zip(train._leaves(restored), train._leaves(learner), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(restored.obs_norm.mean, learner.obs_norm.mean)
    with pytest.raises(UserError, match="not a checkpoint"):
        (tmp_path / "bad.npz").write_bytes(b"junk")
        train.load_checkpoint(tmp_path / "bad.npz", learner)


def test_a_stopped_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    """The last iteration is always saved; a longer run goes on from there."""
    small = train.tuned_config("CartpoleBalance", num_envs=8, unroll_length=8, total_steps=8 * 8 * 3)
    first = train.train("CartpoleBalance", small, tmp_path / "run", checkpoint_every=2, progress=False)
    saved = train.load_checkpoint(tmp_path / "run" / train.CHECKPOINT, first)
    assert saved.iteration == 3  # the last iteration is always saved
    longer = train.tuned_config("CartpoleBalance", num_envs=8, unroll_length=8, total_steps=8 * 8 * 5)
    resumed = train.train("CartpoleBalance", longer, tmp_path / "run", checkpoint_every=2, progress=False)
    assert resumed.iteration == 5 and [r["iteration"] for r in resumed.history] == [1, 2, 3, 4, 5]


def test_a_new_run_starts_from_another_runs_networks(tmp_path: Path) -> None:
    """`init_from`: the trained networks and normalisers with a fresh optimiser and counters; the
    exploration noise kept or reset; networks of another shape refused, not loaded out of place."""
    small = train.tuned_config("CartpoleBalance", num_envs=8, unroll_length=8, total_steps=8 * 8 * 3)
    source = train.train("CartpoleBalance", small, tmp_path / "source", progress=False)
    checkpoint = tmp_path / "source" / train.CHECKPOINT
    sizes = (source.obs_norm.mean.shape[0], source.critic_norm.mean.shape[0], source.params["log_std"].shape[0])
    fresh = ppo.new_learner(replace(small, init_log_std=0.3, seed=1), *sizes)
    started = train.warm_start(checkpoint, fresh)
    for ours, theirs in zip(jax.tree.leaves(started.params), jax.tree.leaves(source.params), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    for ours, new in zip(jax.tree.leaves(started.opt_state), jax.tree.leaves(fresh.opt_state), strict=True):
        np.testing.assert_array_equal(ours, new)
    assert (started.iteration, started.steps, started.history) == (0, 0, [])
    np.testing.assert_array_equal(started.obs_norm.mean, source.obs_norm.mean)
    np.testing.assert_array_equal(started.critic_norm.var, source.critic_norm.var)
    noisier = train.warm_start(checkpoint, fresh, keep_log_std=False)
    np.testing.assert_array_equal(noisier.params["log_std"], np.full(sizes[2], 0.3, np.float32))
    np.testing.assert_array_equal(noisier.params["actor"][0]["w"], source.params["actor"][0]["w"])
    trained = train.train("CartpoleBalance", small, tmp_path / "next", progress=False, init_from=checkpoint)
    assert trained.iteration == 3 and [r["iteration"] for r in trained.history] == [1, 2, 3]
    with pytest.raises(UserError, match="observation or action size, the hidden layers"):
        train.warm_start(checkpoint, ppo.new_learner(replace(small, hidden=(32, 32)), *sizes))
    with pytest.raises(UserError, match=r"array 1 is shape \(5, 64\), this configuration's is \(7, 64\)"):
        train.warm_start(checkpoint, ppo.new_learner(small, sizes[0] + 2, sizes[1], sizes[2]))


def test_value_normalisation_tracks_the_returns_and_is_checkpointed(tmp_path: Path) -> None:
    config = train.tuned_config(
        "CartpoleBalance", num_envs=8, unroll_length=32, total_steps=8 * 32 * 4, normalize_value=True
    )
    learner = train.train("CartpoleBalance", config, tmp_path, progress=False)
    norm = learner.value_norm  # rewards lie in [0, 1]
    assert norm.count == pytest.approx(4 * config.batch_size) and 0 < norm.mean[0] < 1 / (1 - config.gamma)
    assert all(np.isfinite(row["value_loss"]) for row in learner.history)
    restored = train.load_checkpoint(tmp_path / train.CHECKPOINT, learner)
    np.testing.assert_array_equal(restored.value_norm.var, norm.var)
    plain = train.train("CartpoleBalance", replace(config, normalize_value=False), tmp_path / "plain", progress=False)
    assert plain.value_norm.count < 1  # untouched without normalisation


def test_the_adaptive_learning_rate_follows_the_kl_and_is_checkpointed(tmp_path: Path) -> None:
    """RSL-RL's rule: / 1.5 when an update's KL is above twice the target, x 1.5 below half
    of it, within ADAPTIVE_LR_RANGE; the rate is optimiser state, so a resumed run goes on from it."""
    config = train.tuned_config(
        "CartpoleBalance", num_envs=8, unroll_length=32, total_steps=8 * 32 * 3, desired_kl=0.01
    )
    state = ppo.optimizer(config).init(ppo.new_learner(config, 5, 5, 1).params)
    assert ppo.learning_rate(state, config) == pytest.approx(config.learning_rate)
    moved = [ppo.learning_rate(ppo.adapt_learning_rate(state, kl, config), config) for kl in (0.03, 0.01, 0.001)]
    assert moved == pytest.approx([config.learning_rate / 1.5, config.learning_rate, config.learning_rate * 1.5])
    low, high = ppo.ADAPTIVE_LR_RANGE
    for kl, bound in ((1.0, low), (0.0, high)):
        for _ in range(60):
            state = ppo.adapt_learning_rate(state, kl, config)
        assert ppo.learning_rate(state, config) == pytest.approx(bound)

    learner = train.train("CartpoleBalance", config, tmp_path, progress=False)
    rates = [config.learning_rate] + [row["learning_rate"] for row in learner.history]
    for before, after, row in zip(rates, rates[1:], learner.history, strict=False):  # one move per update
        state = ppo.adapt_learning_rate(
            ppo.optimizer(replace(config, learning_rate=before)).init(learner.params), row["approx_kl"], config
        )
        assert after == pytest.approx(ppo.learning_rate(state, config), rel=1e-5)
    assert rates[-1] == pytest.approx(ppo.learning_rate(learner.opt_state, config))
    restored = train.load_checkpoint(tmp_path / train.CHECKPOINT, ppo.new_learner(config, 5, 5, 1))
    assert ppo.learning_rate(restored.opt_state, config) == pytest.approx(rates[-1])
    assert ppo.learning_rate(learner.opt_state, replace(config, desired_kl=0.0)) == config.learning_rate


def test_onnx_export_matches_jax(tmp_path: Path) -> None:
    config = train.tuned_config("CartpoleBalance", num_envs=8, unroll_length=8, total_steps=64)
    learner = train.train("CartpoleBalance", config, tmp_path / "run", progress=False)
    path = export.to_onnx(learner, tmp_path / "policy.onnx")
    observations = np.random.default_rng(1).normal(0, 3, (64, 5)).astype(np.float32)
    assert export.parity(learner, path, observations) < 1e-5


def test_tuned_settings_follow_playground_for_the_dm_control_set() -> None:
    assert train.tuned_config("CartpoleBalance").total_steps == 1_000_000  # its own entry
    walker, cup, hopper = (train.tuned_config(n) for n in ("WalkerRun", "BallInCup", "HopperHop"))
    assert walker.total_steps == 2 * hopper.total_steps and cup.gamma == 0.95 and hopper.gamma == 0.995
    assert train.tuned_settings("Go1JoystickForward")["init_log_std"] == -1.0
    assert train.tuned_settings("Go1JoystickRoughTerrain") == {}  # not DM Control, no entry: PPO's defaults


def test_bad_settings_are_named() -> None:
    with pytest.raises(UserError, match=r"unknown PPO setting.*lerning_rate"):
        train.tuned_config("CartpoleBalance", lerning_rate=1e-3)
    # --set's literal syntax makes `64` a number and `false` a string: each is typed as its field
    assert train.tuned_config("CartpoleBalance", hidden=64, anneal_lr="false", num_envs=1e2).hidden == (64,)
    assert not train.tuned_config("CartpoleBalance", anneal_lr="false").anneal_lr  # the string was truthy
    assert train.tuned_config("CartpoleBalance", num_envs=1e2).num_envs == 100


def test_action_latency_delays_each_action() -> None:
    from garagelab.playground.registry import load

    late = load("CartpoleBalance", num_envs=2, action_latency=2, nthread=1)
    prompt = load("CartpoleBalance", num_envs=2, nthread=1)
    actions = [np.full((2, 1), a) for a in (0.9, -0.7, 0.5, 0.1)]
    s_late, s_prompt = late.reset(3), prompt.reset(3)
    s_late = late.step(late.step(s_late, actions[0]), actions[1])  # two steps of zeros reach the cart
    s_prompt = prompt.step(prompt.step(s_prompt, np.zeros((2, 1))), np.zeros((2, 1)))
    for index in (2, 3):
        s_late, s_prompt = late.step(s_late, actions[index]), prompt.step(s_prompt, actions[index - 2])
    np.testing.assert_allclose(s_late.obs, s_prompt.obs, atol=1e-6)


def test_cli_train_eval_export_video_resume(runs_dir: Path, capsys) -> None:
    from garagelab.cli import main

    assert main(["playground", "train", "CartpoleBalance", "--steps", "2048", "--set", "ppo.num_envs=16",
                 "--set", "ppo.unroll_length=16", "--latency", "1", "--video-steps", "3"]) == 0  # fmt: skip
    (run,) = (runs_dir / "playground").iterdir()
    assert {"checkpoint.npz", "metrics.csv", "eval.json", "policy.mp4", "tensorboard"} <= {
        p.name for p in run.iterdir()
    }
    evaluations = json.loads((run / "eval.json").read_text())  # trained with latency: scored with it and without
    assert evaluations["train"]["conditions"] == {"action_latency": 1} and evaluations["nominal"]["conditions"] == {}
    capsys.readouterr()
    assert main(["playground", "eval", run.name, "--episodes", "1"]) == 0
    out, err = capsys.readouterr()
    assert "from seed 1's starts (nominal: the nominal env)" in out and "(train: action_latency=1)" in out
    assert "eval CartpoleBalance (1 side by side): " in err  # the progress line, one per condition
    assert main(["playground", "eval", run.name, "--episodes", "1", "--conditions", "train"]) == 0
    assert "nominal" not in capsys.readouterr().out
    assert main(["playground", "eval", run.name, "--episodes", "1", "--seed", "5", "--conditions", "nominal"]) == 0
    other = capsys.readouterr().out
    assert "from seed 5's starts" in other
    assert other.splitlines()[1] != out.splitlines()[1]  # the nominal returns, from other starts
    assert main(["playground", "export", run.name]) == 0 and (run / "policy.onnx").is_file()
    assert main(["playground", "video", run.name, "--steps", "5", "--seed", "3", "--out", str(run / "clip.gif")]) == 0
    assert main(["playground", "train", "--resume", run.name, "--steps", "4096", "--video-steps", "0"]) == 0
    assert "4,096 steps" in capsys.readouterr().out
    # a smaller total would rewrite the run's config to say less than it trained
    assert main(["playground", "train", "--resume", run.name, "--steps", "64"]) == 2
    assert "has trained 4,096 steps; --steps is the new total, so give more" in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["ppo"]["total_steps"] == 4096
    assert main(["playground", "train", "CartpoleBalance", "--set", "ppo.lr=1"]) == 2
    assert main(["playground", "train", "CartpoleBalance", "--set", "lr=1"]) == 2
    assert main(["playground", "train", "CartpoleBalance", "--set", "env.episode_length=-5"]) == 2
    assert "episode_length must be at least 1" in capsys.readouterr().err
    for setting, message in [
        ("ppo.desired_kl=-0.01", "must not be negative"),
        ("ppo.num_minibatches=7", "must divide the batch"),
        ("ppo.learning_rate=0", "learning_rate must be above 0"),
        ("ppo.gamma=1.0", "gamma must lie in [0, 1)"),
        # --set's literal syntax leaves nan a string and makes 1e9 a float: each failed deep inside
        ("ppo.learning_rate=nan", "ppo.learning_rate=nan: not a valid float (not a finite number)"),
        ("ppo.entropy_coef=1e999", "ppo.entropy_coef must be a finite number (got inf)"),  # inf by literal syntax
        ("ppo.num_envs=2.5", "ppo.num_envs must be a whole number (got 2.5)"),
        ("ppo.num_envs=1e9", "ppo.num_envs 1,000,000,000 is more than 1,048,576"),
        ("ppo.hidden=32,0", "ppo.hidden must be layer sizes"),  # ppo.hidden=64 was an internal error
    ]:
        assert main(["playground", "train", "CartpoleBalance", "--set", setting]) == 2
        assert message in capsys.readouterr().err, setting
    assert len(list((runs_dir / "playground").iterdir())) == 1  # refused settings leave no failed run behind


def test_cli_init_from_starts_a_new_run_from_another(runs_dir: Path, capsys) -> None:
    from garagelab.cli import main

    small = ["--set", "ppo.num_envs=8", "--set", "ppo.unroll_length=8", "--video-steps", "0"]
    assert main(["playground", "train", "CartpoleBalance", "--steps", "128", *small]) == 0
    (source,) = (runs_dir / "playground").iterdir()
    assert main(["playground", "train", "CartpoleBalance", "--steps", "128", "--init-from", source.name, *small,
                 "--set", "ppo.init_log_std=0.2"]) == 0  # fmt: skip
    (started,) = set((runs_dir / "playground").iterdir()) - {source}
    settings = json.loads((started / "config.json").read_text())
    assert settings["init_from"] == {"checkpoint": str(source / train.CHECKPOINT), "keep_log_std": False}
    capsys.readouterr()
    assert main(["playground", "train", "--resume", started.name, "--init-from", source.name]) == 2
    assert "give one" in capsys.readouterr().err
    assert main(["playground", "train", "Go1Getup", "--init-from", source.name, *small]) == 2
    assert "not a checkpoint of this configuration" in capsys.readouterr().err
    assert len(list((runs_dir / "playground").iterdir())) == 2  # the refusals left no failed run behind


def test_kill_9_loses_at_most_one_checkpoint_interval(runs_dir: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "garagelab", "playground", "train", "CartpoleBalance", "--steps", "100000000",
               "--set", "ppo.num_envs=8", "--set", "ppo.unroll_length=8", "--checkpoint-every", "3"]  # fmt: skip
    process = subprocess.Popen(command, env={**os.environ, "GARAGELAB_RUNS": str(runs_dir)}, stderr=subprocess.DEVNULL)
    try:
        checkpoint = None
        for _ in range(600):  # until the second checkpoint (or the process ends for another reason)
            found = list(runs_dir.glob("playground/*/metrics.csv"))
            if found and found[0].read_text().count("\n") >= 8 and (found[0].parent / train.CHECKPOINT).is_file():
                checkpoint = found[0].parent / train.CHECKPOINT
                break
            assert process.poll() is None
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert checkpoint is not None
    logged = checkpoint.parent.joinpath("metrics.csv").read_text().count("\n") - 1
    saved = json.loads(str(np.load(checkpoint)["meta"]))["iteration"]
    assert saved % 3 == 0 and logged - saved < 3 + 1  # at most one interval (and the row being written) lost
    from garagelab.cli import main

    total = (saved + 2) * 64
    assert (
        main(["playground", "train", "--resume", checkpoint.parent.name, "--steps", str(total), "--video-steps", "0"])
        == 0
    )
    assert json.loads(str(np.load(checkpoint)["meta"]))["iteration"] == saved + 2
    rows = list(iter_metrics(checkpoint.parent))  # the rows logged after the checkpoint were redone, not repeated
    assert [int(row["iteration"]) for row in rows] == list(range(1, saved + 3))


def test_rows_without_a_finished_episode_carry_the_latest_return() -> None:
    config = train.tuned_config("CartpoleBalance", num_envs=4, unroll_length=4)
    learner = ppo.new_learner(config, 5, 5, 1)
    rows = []
    for episodes in ((np.nan, np.nan, 0), (812.5, 1000.0, 4), (np.nan, np.nan, 0)):
        rows.append(ppo.finish_iteration(learner, config, episodes, 0.1, 0.2, {}, {}))
        learner.history.append(rows[-1])
    assert np.isnan(rows[0]["episode_return"])  # nothing has ended yet
    assert [r["episode_return"] for r in rows[1:]] == [812.5, 812.5] and [r["episodes"] for r in rows] == [0, 4, 0]
