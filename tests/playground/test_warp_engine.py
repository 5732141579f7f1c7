"""The MuJoCo Warp engine, on Warp's CPU backend: both learners train on it and resume, and its
States are snapshots. Parity with the CPU engine is in test_engine_parity.py.

Slow: Warp compiles its kernels on first use (cached afterwards under ~/.cache/warp).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mujoco_warp")

from garagelab.cli import main
from garagelab.playground import make_task, train
from garagelab.playground.warp_engine import WarpEngine


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_both_learners_train_and_resume_on_warp(algo: str, runs_dir: Path, capsys) -> None:
    small = {
        "ppo": ["--set", "ppo.num_envs=8", "--set", "ppo.unroll_length=8"],
        "sac": ["--set", "sac.num_envs=4", "--set", "sac.unroll_length=8", "--set", "sac.learning_starts=32",
                "--set", "sac.batch=16", "--set", "sac.hidden=[16,16]"],
    }[algo]  # fmt: skip
    args = ["playground", "train", "CartpoleBalance", "--engine", "warp", "--algo", algo, "--video-steps", "0"]
    assert main([*args, "--steps", "128", *small]) == 0
    (run,) = (runs_dir / "playground").iterdir()
    assert json.loads((run / "config.json").read_text())["env_options"]["engine"] == "warp"
    assert main(["playground", "train", "--resume", str(run), "--steps", "256", "--video-steps", "0"]) == 0
    learner = train.load_run(str(run)).learner
    assert learner.steps == 256 and len(learner.history) == learner.iteration
    loss = {"ppo": "value_loss", "sac": "critic_loss"}[algo]
    assert all(np.isfinite(row[loss]) for row in learner.history if row["steps"] > 32)


@pytest.mark.slow
def test_warp_state_steps_again_from_an_older_state() -> None:
    """A State is a snapshot: stepping an older one again (a branch) repeats what it did."""
    env = WarpEngine(make_task("CartpoleSwingup"), 2)
    start = env.reset(3)
    action = np.full((2, 1), 0.7, np.float32)
    first = env.step(env.step(start, action), action)
    env.step(env.reset(9), -action)  # Warp now holds other envs' physics
    again = env.step(env.step(start, action), action)
    np.testing.assert_array_equal(np.asarray(again.obs), np.asarray(first.obs))
    np.testing.assert_array_equal(np.asarray(again.data), np.asarray(first.data))


@pytest.mark.slow
def test_bench_measures_the_warp_engine(capsys) -> None:
    assert main(["playground", "bench", "CartpoleBalance", "--engine", "warp", "--num-envs", "2", "--steps", "3"]) == 0
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("CartpoleBalance")]
    assert row[1:3] == ["warp", "2"] and float(row[-1].replace(",", "")) > 0
