"""SAC beside PPO: its update on a problem with a known answer, its replay buffer's treatment of
time limits, learning CartpoleBalance, and the CLI round trip (train, resume, eval, export)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from garagelab.cli import main
from garagelab.core.errors import UserError
from garagelab.playground import export, ppo, sac, train
from garagelab.playground import networks as nets
from garagelab.playground.registry import load


def test_the_update_learns_a_known_q_and_the_actor_climbs_it() -> None:
    """One-step episodes (every transition terminal) with reward = the action: the critics must
    learn Q(s, a) = a, and the actor must move its mean action towards +1."""
    config = sac.SACConfig(hidden=(32, 32), learning_rate=3e-3, init_alpha=0.01)
    learner = sac.new_learner(config, 2, 2, 1)
    update = sac.make_update(config, 1)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(200, 64, 2)).astype(np.float32)
    action = rng.uniform(-1, 1, (200, 64, 1)).astype(np.float32)
    batches = (obs, obs, action, action[..., 0], obs, obs, np.ones((200, 64), np.float32))
    stats = learner.obs_norm.arrays()
    params, _, info = update(learner.params, learner.opt_state, batches, stats, stats, jax.random.PRNGKey(0))
    probe = jnp.asarray(rng.normal(size=(32, 2)), jnp.float32)
    for a in (-0.8, 0.0, 0.8):
        q = sac._q(params["q1"], probe, jnp.full((32, 1), a), stats)
        assert float(jnp.abs(q - a).mean()) < 0.05, (a, q)
    assert float(sac.deterministic(params, probe, stats).min()) > 0.5  # the actor climbed Q = a
    alpha = float(jnp.exp(params["log_alpha"]))  # rises while the entropy is below -|A| = -1, falls above
    assert (alpha > 0.01) == (float(info["entropy"]) < -1.0) and alpha != 0.01, (alpha, info["entropy"])
    tau_moved = jax.tree.leaves(params["q1_target"])[0] - jax.tree.leaves(learner.params["q1"])[0]
    assert float(jnp.abs(tau_moved).max()) > 0  # the targets follow the critics


def test_time_limit_cuts_are_not_stored_and_terminals_are() -> None:
    """Episodes of 10 steps: the 10th step of each env is cut by the time limit and left out."""
    config = sac.SACConfig(num_envs=3, unroll_length=25, learning_starts=10_000, hidden=(8,), updates_per_iteration=4)
    env = load("CartpoleBalance", "cpu", 3, {"episode_length": 10}, seed=0, nthread=1)
    state = env.reset(0)
    learner = sac.learner_for(config, env, state)
    buffer = sac.ReplayBuffer(1000)
    tracker = ppo.EpisodeTracker(3)
    update = sac.make_update(config, env.action_size)
    state, row = sac.iterate(env, config, learner, state, tracker, buffer, np.random.default_rng(0), update)
    assert buffer.size == 3 * 25 - 3 * 2  # two cuts per env in 25 steps (steps 10 and 20)
    assert not buffer.arrays["terminal"][: buffer.size].any()  # a cart-pole never fails: no terminal
    assert row["episodes"] == 6 and "critic_loss" not in row  # no update before learning_starts


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory):
    """CartpoleBalance for 60k steps (about 4 min here; 40k gave 807-915 depending on the
    thread count, 60k gave 997)."""
    config = train.tuned_config("CartpoleBalance", algo="sac", total_steps=60_000)
    return train.train("CartpoleBalance", config, tmp_path_factory.mktemp("sac"), progress=False), config


@pytest.mark.slow
def test_sac_learns_cartpole_balance(learned) -> None:
    learner, config = learned
    untrained = sac.new_learner(config, 5, 5, 1)
    before = train.evaluate("CartpoleBalance", untrained, episodes=3).mean_return
    evaluation = train.evaluate("CartpoleBalance", learner, episodes=3)
    assert evaluation.lengths == [1000] * 3 and evaluation.mean_return > max(900, before + 150), (before, evaluation)
    assert all(np.isfinite(r["critic_loss"]) for r in learner.history[-10:])


@pytest.mark.slow
def test_the_cli_trains_resumes_evaluates_and_exports_sac(runs_dir: Path, capsys) -> None:
    small = ["--set", "sac.num_envs=4", "--set", "sac.unroll_length=8", "--set", "sac.learning_starts=64",
             "--set", "sac.batch=32", "--set", "sac.hidden=[16,16]", "--video-steps", "0"]  # fmt: skip
    assert main(["playground", "train", "CartpoleBalance", "--algo", "sac", "--steps", "96", *small]) == 0
    (run,) = (runs_dir / "playground").iterdir()
    settings = json.loads((run / "config.json").read_text())
    assert "sac" in settings and "ppo" not in settings and settings["sac"]["hidden"] == [16, 16]
    first = train.load_run(str(run)).learner
    assert first.steps == 96 and sac.is_sac(first.params)
    assert main(["playground", "train", "--resume", str(run), "--steps", "160"]) == 0
    resumed = train.load_run(str(run)).learner
    assert resumed.steps == 160 and [r["iteration"] for r in resumed.history] == [1, 2, 3, 4, 5]
    capsys.readouterr()
    assert main(["playground", "eval", str(run), "--episodes", "2"]) == 0
    assert "deterministic return" in capsys.readouterr().out
    assert main(["playground", "export", str(run)]) == 0  # onnxruntime's tanh policy against JAX's
    observations = np.random.default_rng(0).normal(0, 2, (64, 5)).astype(np.float32)
    assert export.parity(resumed, run / "policy.onnx", observations) < 1e-5


def test_sac_refuses_what_it_does_not_do(runs_dir: Path, capsys) -> None:
    assert main(["playground", "train", "CartpoleBalance", "--algo", "sac", "--set", "ppo.learning_rate=1"]) == 2
    assert "expected sac.<setting>=value" in capsys.readouterr().err
    assert main(["playground", "train", "CartpoleBalance", "--algo", "sac", "--engine", "mjx"]) == 2
    assert "use --engine cpu or warp" in capsys.readouterr().err
    assert main(["playground", "train", "CartpoleBalance", "--algo", "sac", "--set", "sac.augment_shift=-1"]) == 2
    assert "sac.augment_shift must be 0" in capsys.readouterr().err
    assert main(["playground", "train", "CartpoleBalance", "--algo", "sac", "--set", "sac.batsh=3"]) == 2
    assert "unknown SAC setting" in capsys.readouterr().err
    assert main(["playground", "train", "CartpoleBalance", "--algo", "sac", "--set", "sac.buffer_size=8"]) == 2
    assert "sac.batch 256 is larger than sac.buffer_size 8" in capsys.readouterr().err
    assert main(["playground", "train", "CartpoleBalance", "--algo", "sac", "--set", "sac.learning_rate=0"]) == 2
    assert "sac.learning_rate must be above 0" in capsys.readouterr().err
    assert not (runs_dir / "playground").exists()  # refused before a run was recorded
    with pytest.raises(UserError, match="must be at least 1"):
        sac.make_iterate(None, replace(sac.SACConfig(), num_envs=0))


def test_random_shift_moves_each_frame_with_its_edges_repeated() -> None:
    frames = jnp.asarray(np.random.default_rng(0).integers(0, 255, (6, 8, 8, 2)), jnp.uint8)
    key = jax.random.PRNGKey(3)
    np.testing.assert_array_equal(np.asarray(nets.random_shift(frames, key, 0)), np.asarray(frames))
    shifted = np.asarray(nets.random_shift(frames, key, 2))
    padded = np.pad(np.asarray(frames), ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    for frame, view in zip(padded, shifted, strict=True):  # every view is some crop of its padded frame
        crops = [frame[y : y + 8, x : x + 8] for y in range(5) for x in range(5)]
        assert any(np.array_equal(view, crop) for crop in crops)
    assert shifted.dtype == np.uint8 and not np.array_equal(shifted, np.asarray(frames))


@pytest.mark.slow
def test_sac_from_pixels_trains_resumes_and_exports_the_cnn_actor(runs_dir: Path, capsys) -> None:
    """The actor reads shifted uint8 frames through the encoder (which its loss trains), the
    critics the state; the buffer keeps frames as uint8; the export takes the same frames."""
    small = [f"--set=sac.{k}" for k in ("num_envs=2", "unroll_length=8", "updates_per_iteration=4", "batch=8",
                                        "learning_starts=16", "buffer_size=64")]  # fmt: skip
    command = ["playground", "train", "CartpoleBalance", "--algo", "sac", "--pixels", "--action-repeat", "8"]
    assert main([*command, "--steps", "48", "--video-steps", "0", *small]) == 0
    (run,) = (runs_dir / "playground").iterdir()
    learner = train.load_run(str(run)).learner
    assert "encoder" in learner.params and learner.steps == 48 and sac.is_sac(learner.params)
    untrained = sac.new_learner(sac.SACConfig(), (64, 64, 3), 5, 1)
    trained_leaves, initial_leaves = (jax.tree.leaves(p["encoder"]) for p in (learner.params, untrained.params))
    moved = [not np.allclose(a, b) for a, b in zip(trained_leaves, initial_leaves, strict=True)]
    assert any(moved)  # the actor's loss trains the encoder
    assert main(["playground", "train", "--resume", str(run), "--steps", "64"]) == 0
    assert train.load_run(str(run)).learner.steps == 64
    capsys.readouterr()
    assert main(["playground", "eval", str(run), "--episodes", "1"]) == 0
    assert "deterministic return" in capsys.readouterr().out
    assert main(["playground", "export", str(run)]) == 0
    out = capsys.readouterr().out
    assert float(out.rsplit("difference ", 1)[1]) < 1e-5
