"""Pixel observations on the CPU engine, and a PPO run that learns from them end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from garagelab.core.errors import UserError
from garagelab.playground.pixels import LUMA, PixelSpec
from garagelab.playground.registry import load

SHORT = {"episode_length": 3}


def test_grey_frames_stack_shift_and_show_the_state_the_critic_reads() -> None:
    grey = load("CartpoleBalance", num_envs=2, pixels=True, nthread=1)
    rgb = load("CartpoleBalance", num_envs=2, pixels=PixelSpec(mode="rgb", stack=1), nthread=1)
    plain = load("CartpoleBalance", num_envs=2, nthread=1)
    states = [env.reset(4) for env in (grey, rgb, plain)]
    assert states[0].obs.shape == (2, 64, 64, 3) and states[0].obs.dtype == np.uint8
    assert (states[0].obs[..., 0] == states[0].obs[..., 2]).all()  # a fresh episode repeats its first frame
    actions = np.array([[1.0], [-1.0]])
    for _ in range(5):
        before = states[0].obs
        states = [env.step(state, actions) for env, state in zip((grey, rgb, plain), states, strict=True)]
        assert (states[0].obs[..., :2] == before[..., 1:]).all()  # the oldest frame drops out
    frame, colour = states[0].obs[..., 2], states[1].obs
    assert np.abs(frame.astype(int) - (colour.astype(np.float32) @ LUMA).round()).max() <= 1
    assert not (states[0].obs[..., 0] == frame).all()  # the cart moved: the frames differ
    np.testing.assert_array_equal(states[0].info["privileged_obs"], states[2].obs)  # the critic's state
    assert grey.observation_shape == (64, 64, 3) and plain.observation_shape == (5,)


def test_a_reset_env_starts_a_fresh_stack_and_the_others_keep_theirs() -> None:
    env = load("PointMass", num_envs=3, pixels=PixelSpec(width=48, height=40), nthread=1, auto_reset=False)
    state = env.reset(0)
    for _ in range(2):
        state = env.step(state, np.ones((3, 2)))
    reset = env.reset_where(state, np.array([0.0, 1.0, 0.0]))
    assert reset.obs.shape == (3, 40, 48, 3)
    assert (reset.obs[1, ..., 0] == reset.obs[1, ..., 2]).all()
    np.testing.assert_array_equal(reset.obs[[0, 2]], state.obs[[0, 2]])


def test_depth_frames_are_metres_and_bad_settings_are_refused() -> None:
    env = load("CartpoleBalance", num_envs=1, pixels=PixelSpec(mode="depth", stack=2), nthread=1)
    obs = env.reset(0).obs
    assert obs.dtype == np.float32 and obs.shape == (1, 64, 64, 2)
    assert 0.5 < obs.min() < 5 and obs.max() == 10.0  # the cart is metres away; the sky is clipped
    with pytest.raises(UserError, match="CPU engine"):
        load("CartpoleBalance", engine="mjx", pixels=True)
    with pytest.raises(UserError, match="does not apply to pixels"):
        load("CartpoleBalance", pixels=True, obs_noise=0.1)
    with pytest.raises(UserError, match="pixel mode 'hsv'"):
        PixelSpec(mode="hsv")
    with pytest.raises(UserError, match="frames stacked must be 1-16"):
        PixelSpec(stack=0)


@pytest.mark.slow
def test_cli_trains_from_pixels_then_evaluates_exports_and_films(runs_dir: Path, capsys) -> None:
    from garagelab.cli import main

    small = ["--set", "ppo.num_envs=8", "--set", "ppo.unroll_length=16", "--set", "ppo.num_minibatches=2"]
    command = ["playground", "train", "CartpoleBalance", "--pixels", "--steps", "256", "--video-steps", "3"]
    assert main([*command, *small]) == 0
    (run,) = (runs_dir / "playground").iterdir()
    settings = json.loads((run / "config.json").read_text())
    assert settings["env_options"]["pixels"] == {"mode": "grey", "width": 64, "height": 64, "stack": 3}
    assert settings["env_options"]["action_repeat"] == 2  # frames 10 ms apart barely differ
    assert settings["ppo"]["update_epochs"] == 10 and settings["ppo"]["num_envs"] == 8  # pixel settings, then --set
    assert main(["playground", "eval", run.name, "--episodes", "1"]) == 0
    capsys.readouterr()
    assert main(["playground", "export", run.name]) == 0
    out = capsys.readouterr().out
    assert "on 256 observations" in out and float(out.rsplit("difference ", 1)[1]) < 1e-5
    assert main(["playground", "video", run.name, "--steps", "4", "--out", str(run / "clip.gif")]) == 0
    assert main(["playground", "train", "CartpoleBalance", "--pixels", "--engine", "mjx"]) == 2


def test_with_action_repeat_an_episode_lasts_the_tasks_time() -> None:
    env = load("PointMass", num_envs=1, action_repeat=4, config_overrides={"episode_length": 10}, nthread=1)
    state = env.reset(0)
    steps = 0
    while not state.done[0]:
        state = env.step(state, np.zeros((1, 2)))
        steps += 1
    assert steps == 3 and env.dt == 4 * load("PointMass", num_envs=1).dt  # ceil(10 / 4) policy steps


def test_render_workers_draw_the_same_frames_as_this_process() -> None:
    here = load("CartpoleBalance", num_envs=3, pixels=PixelSpec(stack=1), nthread=1)
    pooled = load("CartpoleBalance", num_envs=3, pixels=PixelSpec(stack=1, workers=2), nthread=1)
    a, b = here.reset(2), pooled.reset(2)
    for _ in range(3):
        a, b = here.step(a, np.ones((3, 1))), pooled.step(b, np.ones((3, 1)))
    np.testing.assert_array_equal(a.obs, b.obs)
    with pytest.raises(UserError, match="render workers must be 0-64"):
        PixelSpec(workers=-1)
