"""Offscreen rendering of any env and policy to MP4 or GIF (MuJoCo's renderer on EGL or OSMesa).

MuJoCo picks its GL platform when it is first imported, so `garagelab.playground` sets
`MUJOCO_GL=egl` before importing it on a machine without a display (unless the variable is
already set). Frames come from the CPU engine with one env; an MJX rollout renders the same way
from its qpos (`frames_from_states`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from garagelab.core.errors import UserError

Policy = Callable[[np.ndarray], np.ndarray]


def _renderer(model: mujoco.MjModel, width: int, height: int) -> mujoco.Renderer:
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    try:
        return mujoco.Renderer(model, height, width)
    except Exception as exc:
        raise UserError(
            f"no OpenGL context for offscreen rendering ({' '.join(str(exc).split())[:160]}); set MUJOCO_GL=egl "
            "or MUJOCO_GL=osmesa before Python starts (EGL needs libEGL, OSMesa needs libosmesa6)"
        ) from None


def _camera(model: mujoco.MjModel, camera: str | int | None) -> str | int:
    if camera is None:
        # a camera following the body's centre of mass if the model has one, else its first camera
        for i in range(model.ncam):
            if model.cam_mode[i] == mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM.value:
                return i
        return 0 if model.ncam else -1
    if isinstance(camera, str) and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
        names = [model.camera(i).name for i in range(model.ncam)]
        raise UserError(f"camera {camera!r} is not in the model; valid: {', '.join(names) or '(none: use -1)'}")
    return camera


class Camera:
    """One model's offscreen view, reused frame after frame: `frame(state)` draws one physics state.

    A state is a dict of `qpos`, and `mocap_pos` where the model has mocap bodies.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        width: int = 320,
        height: int = 240,
        camera: str | int | None = None,
        minimal: bool = False,
        depth: bool = False,
    ) -> None:
        """`minimal` turns off shadows, reflections and the skybox (what pixel observations use:
        several times faster on a software rasteriser); `depth` gives metres instead of RGB."""
        self.model = model
        self.renderer = _renderer(model, width, height)
        self.camera = _camera(model, camera)
        self.data = mujoco.MjData(model)
        if minimal:
            for flag in (
                mujoco.mjtRndFlag.mjRND_SHADOW,
                mujoco.mjtRndFlag.mjRND_REFLECTION,
                mujoco.mjtRndFlag.mjRND_SKYBOX,
            ):
                self.renderer.scene.flags[flag] = 0
        if depth:
            self.renderer.enable_depth_rendering()

    def frame(self, state: dict[str, np.ndarray]) -> np.ndarray:
        self.data.qpos[:] = state["qpos"]
        if "mocap_pos" in state:
            self.data.mocap_pos[:] = state["mocap_pos"]
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera=self.camera)
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()


def frames_from_states(
    model: mujoco.MjModel,
    states: Iterable[dict[str, np.ndarray]],
    width: int = 320,
    height: int = 240,
    camera: str | int | None = None,
) -> list[np.ndarray]:
    """One RGB frame per state (`qpos`, and `mocap_pos` where the model has mocap bodies)."""
    view = Camera(model, width, height, camera)
    frames = [view.frame(state) for state in states]
    view.close()
    return frames


def rollout(
    name: str,
    policy: Policy | None = None,
    steps: int = 200,
    seed: int = 0,
    config_overrides: dict[str, Any] | None = None,
    interface: dict[str, Any] | None = None,
) -> tuple[Any, list[dict[str, np.ndarray]], float]:
    """Run one env on the CPU engine; return its task, the physics of every policy step, and the return.

    `policy` maps a (1, obs) array to a (1, act) array; None draws uniform random actions.
    `interface` is what the policy was trained with (`pixels`, `action_repeat`: `train.policy_interface`).
    """
    from garagelab.playground.registry import load
    from garagelab.playground.wrappers import bottom

    env = load(name, num_envs=1, config_overrides=config_overrides, auto_reset=False, nthread=1, **(interface or {}))
    rng = np.random.default_rng(seed)
    state = env.reset(seed)
    engine = bottom(env)
    states, total = [engine.physics(state)], 0.0
    for _ in range(steps):
        action = policy(state.obs) if policy else rng.uniform(-1, 1, (1, env.action_size))
        state = env.step(state, action)
        states.append({k: v[0] for k, v in engine.physics(state).items()})
        total += float(state.reward[0])  # a clip runs on past a fall: it is for looking at
    states[0] = {k: v[0] for k, v in states[0].items()}
    return env.task, states, total


def save(frames: list[np.ndarray], path: Path | str, fps: float) -> Path:
    """Write frames as MP4 (imageio-ffmpeg) or GIF (Pillow), chosen by the file's suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    elif path.suffix.lower() == ".mp4":
        try:
            import imageio.v2 as imageio
        except ImportError:
            raise UserError(
                "MP4 needs imageio and imageio-ffmpeg (pip install 'garagelab[playground]'); or write a .gif"
            ) from None
        # imageio-ffmpeg starts ffmpeg with a preexec_fn (os.setpgrp), so the fork runs JAX's
        # at-fork hook, which warns of deadlocks after every training run; the child only calls
        # setpgrp and execs ffmpeg, touching no JAX thread, so that one warning is silenced here
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=8, quality=7) as writer:
                for frame in frames:
                    writer.append_data(frame)
    else:
        raise UserError(f"video file {path}: the suffix must be .mp4 or .gif")
    return path


def render(
    name: str,
    path: Path | str,
    policy: Policy | None = None,
    steps: int = 200,
    width: int = 320,
    height: int = 240,
    camera: str | int | None = None,
    seed: int = 0,
    interface: dict[str, Any] | None = None,
) -> tuple[Path, float]:
    """Render a rollout of `name` under `policy` (random if None) to `path`; returns it and the return.

    `interface` (pixels, action repeat) is what the policy was trained with; the clip is rendered apart,
    one frame per policy step, played in real time.
    """
    if Path(path).suffix.lower() not in (".mp4", ".gif"):
        raise UserError(f"video file {path}: the suffix must be .mp4 or .gif")
    task, states, total = rollout(name, policy, steps, seed, interface=interface)
    frames = frames_from_states(task.mj_model, states, width, height, camera)
    return save(frames, path, fps=1 / (task.dt * (interface or {}).get("action_repeat", 1))), total
