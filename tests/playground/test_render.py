"""Offscreen rendering to GIF and MP4: real frames from a real rollout."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from garagelab.core.errors import UserError
from garagelab.playground.render import frames_from_states, render, rollout, save


def _frames_or_skip(task, states):
    try:
        return frames_from_states(task.mj_model, states, width=64, height=48)
    except UserError as exc:  # a machine without EGL or OSMesa
        pytest.skip(str(exc))


def test_frames_change_as_the_robot_moves() -> None:
    task, states, _ = rollout("Go1JoystickFlatTerrain", steps=10, seed=0)
    assert len(states) == 11 and states[0]["qpos"].shape == (19,)
    frames = _frames_or_skip(task, states[::5])
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert frames[0].std() > 1  # not a blank image
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.1


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_render_writes_a_video(tmp_path, suffix: str) -> None:
    try:
        path, total = render("ReacherEasy", tmp_path / f"clip{suffix}", steps=8, width=64, height=48)
    except UserError as exc:
        if "OpenGL" not in str(exc):
            raise
        pytest.skip(str(exc))
    assert path.stat().st_size > 100 and np.isfinite(total)


def test_an_mp4_written_after_jax_started_its_threads_warns_of_no_fork(tmp_path) -> None:
    """ffmpeg's launch ran JAX's at-fork hook, and every training run ended with its deadlock warning."""
    jnp.ones(3).block_until_ready()  # JAX's threads are up, as after training
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = save([np.zeros((16, 16, 3), np.uint8)] * 3, tmp_path / "clip.mp4", fps=10)
    assert path.stat().st_size > 0
    assert not [w for w in caught if "fork" in str(w.message)]


def test_bad_suffix_and_camera_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(UserError, match=r"\.mp4 or \.gif"):
        render("ReacherEasy", tmp_path / "clip.avi", steps=2)
    task, states, _ = rollout("CartpoleBalance", steps=1)
    with pytest.raises(UserError, match="valid: fixed, lookatcart"):
        frames_from_states(task.mj_model, states, width=32, height=32, camera="nope")
