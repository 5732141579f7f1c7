"""Named env variants (Playground's registry): `load(name, ...)`, `names()`, `default_config(name)`.

A variant is a task class plus the keyword arguments that make it, as Playground's
`functools.partial` entries are. Unknown names, engines and config keys are one-line errors
that list what is valid.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

from garagelab.core.errors import UserError
from garagelab.playground import config as configs
from garagelab.playground.config import ENGINES
from garagelab.playground.task import Task

RESET_MODES = ("full", "cached")

# name -> (module, class, kwargs); modules are imported on use, so listing stays cheap
_VARIANTS: dict[str, tuple[type[Task] | str, str, dict[str, Any]]] = {
    "CartpoleBalance": ("cartpole", "Cartpole", {"swing_up": False, "sparse": False}),
    "CartpoleBalanceSparse": ("cartpole", "Cartpole", {"swing_up": False, "sparse": True}),
    "CartpoleSwingup": ("cartpole", "Cartpole", {"swing_up": True, "sparse": False}),
    "CartpoleSwingupSparse": ("cartpole", "Cartpole", {"swing_up": True, "sparse": True}),
    "PendulumSwingup": ("pendulum", "PendulumSwingup", {}),
    "PointMass": ("point_mass", "PointMass", {}),
    "ReacherEasy": ("reacher", "Reacher", {"target_size": 0.05}),
    "ReacherHard": ("reacher", "Reacher", {"target_size": 0.015}),
    "AcrobotSwingup": ("acrobot", "Acrobot", {"sparse": False}),
    "AcrobotSwingupSparse": ("acrobot", "Acrobot", {"sparse": True}),
    "BallInCup": ("ball_in_cup", "BallInCup", {}),
    "CheetahRun": ("cheetah", "CheetahRun", {}),
    "FingerSpin": ("finger", "Finger", {}),
    "FingerTurnEasy": ("finger", "Finger", {"turn_radius": 0.07}),
    "FingerTurnHard": ("finger", "Finger", {"turn_radius": 0.03}),
    "FishSwim": ("fish", "FishSwim", {}),
    "HopperHop": ("hopper", "Hopper", {"hopping": True}),
    "HopperStand": ("hopper", "Hopper", {"hopping": False}),
    "HumanoidStand": ("humanoid", "Humanoid", {"move_speed": 0.0}),
    "HumanoidWalk": ("humanoid", "Humanoid", {"move_speed": 1.0}),
    "HumanoidRun": ("humanoid", "Humanoid", {"move_speed": 10.0}),
    "SwimmerSwimmer6": ("swimmer", "Swimmer", {}),
    "WalkerStand": ("walker", "Walker", {"move_speed": 0.0}),
    "WalkerWalk": ("walker", "Walker", {"move_speed": 1.0}),
    "WalkerRun": ("walker", "Walker", {"move_speed": 8.0}),
    "Go1JoystickFlatTerrain": ("go1", "Joystick", {}),
    "Go1JoystickForward": ("go1", "ForwardJoystick", {}),
    "Go1JoystickRoughTerrain": ("go1", "RoughJoystick", {}),
    "Go1Getup": ("go1_posture", "Getup", {}),
    "Go1Handstand": ("go1_posture", "Handstand", {}),
    "Go1Footstand": ("go1_posture", "Footstand", {}),
    "BipedJoystickFlatTerrain": ("biped", "BipedJoystick", {}),
    "SpotJoystickFlatTerrain": ("spot", "SpotJoystick", {}),  # these three need MENAGERIE_ROOT
    "H1JoystickFlatTerrain": ("biped", "H1Joystick", {}),
    "G1JoystickFlatTerrain": ("biped", "G1Joystick", {}),
    "ArmReach": ("arm", "ArmReach", {}),
    "HandCubeReorient": ("hand", "CubeReorient", {}),
    "ArmPickCube": ("arm", "ArmPickCube", {}),
    "PandaReach": ("panda", "PandaReach", {}),  # these two need MENAGERIE_ROOT
    "PandaPickCube": ("panda", "PandaPickCube", {}),
}


def register(name: str, task: type[Task] | str, cls: str = "", **kwargs: Any) -> None:
    """Add a variant: a Task subclass, or a module path and class name (imported on first use)."""
    _VARIANTS[name] = (task, cls, kwargs)


def names() -> list[str]:
    return list(_VARIANTS)


def _entry(name: str) -> tuple[Callable[..., Task], dict[str, Any]]:
    import importlib
    import importlib.util

    if name not in _VARIANTS:
        close = difflib.get_close_matches(name, _VARIANTS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown env {name!r}{hint}; valid: {', '.join(_VARIANTS)}")
    module, cls, kwargs = _VARIANTS[name]
    if not isinstance(module, str):
        return module, kwargs
    ours = f"garagelab.playground.tasks.{module}"
    path = ours if importlib.util.find_spec(ours) else module
    return getattr(importlib.import_module(path), cls), kwargs


def requirement(name: str) -> str:
    """What a variant lacks to load now ('' when nothing): Menagerie's robots need MENAGERIE_ROOT."""
    from garagelab.playground.menagerie import missing

    task_class, _ = _entry(name)
    robot = getattr(task_class, "robot", None)
    return missing(robot) if robot is not None else ""


def default_config(name: str) -> Any:
    task_class, _ = _entry(name)
    return task_class.default_config()


def make_task(name: str, config_overrides: Mapping[str, Any] | None = None) -> Task:
    """The task behind a registered name, with dotted-key overrides of its config."""
    task_class, kwargs = _entry(name)
    config = configs.override(task_class.default_config(), config_overrides)
    return task_class(config, **kwargs)


def load(
    name: str,
    engine: str = "cpu",
    num_envs: int = 1,
    config_overrides: Mapping[str, Any] | None = None,
    *,
    episode_length: int | None = None,
    auto_reset: bool = True,
    action_repeat: int = 1,
    obs_noise: float = 0.0,
    action_latency: int = 0,
    randomization: Any = None,
    seed: int = 0,
    nthread: int = 0,
    reset_mode: str = "full",
    pixels: Any = None,
) -> Any:
    """A batched env ready for a learner: `reset(seed) -> State`, `step(state, actions) -> State`.

    By default the env ends episodes at the task's `episode_length` (divided by `action_repeat`:
    an episode lasts the same time, so returns stay comparable) and resets finished envs inside
    `step`. `action_latency` applies each action that many control steps late.
    `randomization` (a `randomize.Randomization`, or True for the defaults) gives each env its
    own frictions, masses, damping, armature and COM. `nthread` is the
    CPU engine's thread count (0: all cores). `reset_mode` "full" draws a new initial state for
    each finished env; "cached" returns it to its first state (Playground's default: on MJX it
    saves a forward pass of every env at every step). `pixels` (a `pixels.PixelSpec`, or True
    for 64x64 grey frames, three stacked) makes rendered frames the observation (CPU engine).
    """
    from garagelab.playground import randomize, wrappers

    if reset_mode not in RESET_MODES:
        raise UserError(f"unknown reset mode {reset_mode!r}; valid: {', '.join(RESET_MODES)}")
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if num_envs < 1:
        raise UserError(f"num_envs must be at least 1, got {num_envs}")
    task = make_task(name, config_overrides)
    fields = None
    if randomization:
        spec = randomization if isinstance(randomization, randomize.Randomization) else randomize.Randomization()
        fields = randomize.sample(task.mj_model, num_envs, spec, seed)
    if engine == "cpu":
        from garagelab.playground.cpu_engine import CpuEngine

        env: Any = CpuEngine(task, num_envs, nthread=nthread, randomization=fields, reset_mode=reset_mode)
    elif engine == "mjx":
        from garagelab.playground.mjx_engine import MjxEngine

        env = MjxEngine(task, num_envs, randomization=fields, reset_mode=reset_mode)
    else:
        from garagelab.playground.warp_engine import WarpEngine

        env = WarpEngine(task, num_envs, randomization=fields, reset_mode=reset_mode)
    if action_repeat > 1:
        env = wrappers.ActionRepeat(env, action_repeat)
    if pixels:
        from garagelab.playground.pixels import Pixels, pixel_spec

        env = Pixels(env, pixel_spec(pixels, engine, obs_noise))
    if obs_noise > 0:
        env = wrappers.ObservationNoise(env, obs_noise)
    if action_latency > 0:
        from garagelab.playground.sim2real import ActionLatency

        env = ActionLatency(env, action_latency)
    # with action repeat an episode still lasts the task's time: its length is in policy steps
    env = wrappers.EpisodeLimit(env, episode_length or math.ceil(task.config.episode_length / max(action_repeat, 1)))
    if auto_reset:
        env = wrappers.AutoReset(env)
    if engine == "mjx":
        env = wrappers.Jit(env)
    return env
