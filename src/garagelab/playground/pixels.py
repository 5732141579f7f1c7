"""Pixel observations: each env's camera image, frame-stacked, as the policy's input.

`Pixels` wraps a CPU-engine env (under the episode limit and auto-reset, above action repeat,
so a repeated action costs one render): after every reset and step it renders each env's
current physics with MuJoCo's offscreen renderer (shadows, reflections and the skybox off: on
Mesa's software rasteriser that is several times faster, and a policy needs none of them),
converts to grey, RGB or depth (metres, clipped at `max_depth`), and keeps the last `stack`
frames along the channel axis (Playground's vision Cartpole: three grey 64x64 frames). `state.obs` becomes the frames
(uint8; depth as float32 metres); the state vector moves to `info["privileged_obs"]`, so an
asymmetric critic still reads it (a task's own privileged observation is kept instead).

Frames come from the task's model, not the per-env randomised copies: randomised frictions,
masses and damping do not change what a camera sees. MJX batch rendering (Madrona, MJWarp's
renderer) is not in the installed versions, so pixels are refused on the MJX engine.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from garagelab.core.errors import UserError
from garagelab.playground.state import State
from garagelab.playground.wrappers import Wrapper, bottom

MODES = ("grey", "rgb", "depth")
CHANNELS = {"grey": 1, "rgb": 3, "depth": 1}
# ITU-R BT.601 luma, what OpenCV's and Pillow's grey conversions use
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class PixelSpec:
    """What a pixel observation is: size, channels, frames stacked, camera."""

    width: int = 64
    height: int = 64
    mode: str = "grey"
    stack: int = 3
    camera: str | int | None = None
    max_depth: float = 10.0  # depth frames are clipped here: the far plane (200 m and more) would swamp them
    workers: int = 0  # render in this many processes (0: in this one); not part of what the policy sees

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"pixel mode {self.mode!r} is not one of {', '.join(MODES)}")
        for key in ("width", "height"):
            if not 8 <= getattr(self, key) <= 1024:
                raise UserError(f"pixel {key} must be 8-1024, got {getattr(self, key)}")
        if not 1 <= self.stack <= 16:
            raise UserError(f"frames stacked must be 1-16, got {self.stack}")
        if not 0 <= self.workers <= 64:
            raise UserError(f"render workers must be 0-64, got {self.workers}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, CHANNELS[self.mode] * self.stack)


def pixel_spec(pixels: PixelSpec | dict | bool | None, engine: str, obs_noise: float) -> PixelSpec | None:
    """The pixel observation asked for (a spec, its fields as a dict, or True for the defaults),
    or None; refused with the reason where it cannot run (MJX, observation noise)."""
    if not pixels:
        return None
    if engine != "cpu":
        raise UserError(f"pixel observations need the CPU engine: engine {engine!r} has no batch renderer here")
    if obs_noise > 0:
        raise UserError("observation noise is Gaussian noise on a state vector; it does not apply to pixels")
    return pixels if isinstance(pixels, PixelSpec) else PixelSpec(**(pixels if isinstance(pixels, dict) else {}))


def _engine(env: Any) -> Any:
    """The CPU engine at the bottom of a wrapper stack (the one that holds the physics)."""
    from garagelab.playground.cpu_engine import CpuEngine

    engine = bottom(env)
    if not isinstance(engine, CpuEngine):
        raise UserError("pixel observations need the CPU engine (the GPU engines have no batch renderer here)")
    return engine


class FrameRenderer:
    """One env's physics to one observation frame (grey, RGB or clipped depth), in this process."""

    def __init__(self, model: Any, spec: PixelSpec) -> None:
        from garagelab.playground.render import Camera

        self.spec = spec
        self.camera = Camera(model, spec.width, spec.height, spec.camera, minimal=True, depth=spec.mode == "depth")

    def frames(self, physics: dict[str, np.ndarray]) -> np.ndarray:
        """(envs, H, W, channels) for the (envs, ...) physics arrays (`qpos`, `mocap_pos`)."""
        frames = []
        for i in range(len(physics["qpos"])):
            frame = self.camera.frame({k: v[i] for k, v in physics.items()})
            if self.spec.mode == "grey":
                frame = (frame.astype(np.float32) @ LUMA).round().astype(np.uint8)[..., None]
            elif self.spec.mode == "depth":
                frame = np.minimum(frame, self.spec.max_depth).astype(np.float32)[..., None]
            frames.append(frame)
        return np.stack(frames)


def _render_worker(connection: Any, model: Any, spec: PixelSpec) -> None:
    """A render process: physics in, frames out, until it is sent None."""
    renderer = FrameRenderer(model, spec)
    while (physics := connection.recv()) is not None:
        connection.send(renderer.frames(physics))


class RenderPool:
    """Frames rendered in `spec.workers` processes (each with its own GL context), the envs split
    among them: rendering, not physics or learning, sets the pace of a pixel env."""

    def __init__(self, model: Any, spec: PixelSpec) -> None:
        import multiprocessing
        import weakref

        context = multiprocessing.get_context("spawn")  # a fork would copy JAX's threads and GL state
        self.connections, processes = [], []
        for _ in range(spec.workers):
            mine, theirs = context.Pipe()
            process = context.Process(target=_render_worker, args=(theirs, model, spec), daemon=True)
            process.start()
            self.connections.append(mine)
            processes.append(process)
        weakref.finalize(self, _stop, list(self.connections), processes)

    def frames(self, physics: dict[str, np.ndarray]) -> np.ndarray:
        parts = np.array_split(np.arange(len(physics["qpos"])), len(self.connections))
        busy = []
        for connection, part in zip(self.connections, parts, strict=True):
            if part.size:
                connection.send({k: v[part] for k, v in physics.items()})
                busy.append(connection)
        try:
            return np.concatenate([connection.recv() for connection in busy])
        except EOFError:
            raise UserError("a render worker died (no OpenGL context in a child process? try workers=0)") from None


def _stop(connections: list, processes: list) -> None:
    for connection in connections:
        with contextlib.suppress(BrokenPipeError, OSError):  # a worker already gone
            connection.send(None)
    for process in processes:
        process.join(timeout=5)


class Pixels(Wrapper):
    """Rendered, stacked frames as `obs`; the state vector as the critic's `privileged_obs`."""

    def __init__(self, env: Any, spec: PixelSpec) -> None:
        super().__init__(env)
        self.pixel_spec = spec
        self.engine = _engine(env)
        self.renderer = RenderPool(env.mj_model, spec) if spec.workers else FrameRenderer(env.mj_model, spec)
        self._critic_reads_state = True

    @property
    def observation_shape(self) -> tuple[int, int, int]:
        return self.pixel_spec.shape

    @property
    def observation_size(self) -> int:
        return int(np.prod(self.pixel_spec.shape))

    def _frames(self, state: State, ids: np.ndarray) -> np.ndarray:
        """(len(ids), H, W, channels) of the envs `ids` as they are now."""
        return self.renderer.frames({k: v[ids] for k, v in self.engine.physics(state).items()})

    def _with_frames(self, state: State, stacked: np.ndarray) -> State:
        """`state` (as the wrapped env returned it) with the frames as obs; its own obs kept."""
        vector = np.asarray(state.obs, np.float32)
        info = {**state.info, "frames": stacked, "state_obs": vector}
        if self._critic_reads_state:
            info["privileged_obs"] = vector
        return state.replace(obs=stacked, info=info)

    def reset(self, seed: Any = 0) -> State:
        state = self.env.reset(seed)
        self._critic_reads_state = "privileged_obs" not in state.info  # else the task's own critic input
        frames = self._frames(state, np.arange(self.num_envs))
        return self._with_frames(state, np.concatenate([frames] * self.pixel_spec.stack, axis=-1))

    def step(self, state: State, action: Any) -> State:
        previous = state.info["frames"]
        state = self.env.step(self._physical(state), action)
        frames = self._frames(state, np.arange(self.num_envs))
        channels = CHANNELS[self.pixel_spec.mode]
        return self._with_frames(state, np.concatenate([previous[..., channels:], frames], axis=-1))

    def reset_where(self, state: State, mask: Any) -> State:
        ids = np.flatnonzero(np.asarray(mask))
        if ids.size == 0:
            return state
        stacked = np.array(state.info["frames"], copy=True)
        state = self.env.reset_where(self._physical(state), mask)
        stacked[ids] = np.concatenate([self._frames(state, ids)] * self.pixel_spec.stack, axis=-1)
        return self._with_frames(state, stacked)

    @staticmethod
    def _physical(state: State) -> State:
        """The state as the wrapped env knows it: its own observation back in `obs`."""
        return state.replace(obs=state.info["state_obs"])
