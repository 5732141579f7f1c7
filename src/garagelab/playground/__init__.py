"""Batched MuJoCo robot environments (MuJoCo Playground) on three engines: MuJoCo on CPU, MJX and
MuJoCo Warp on GPU.

    env = load("CartpoleBalance", engine="cpu", num_envs=256)
    state = env.reset(0)
    state = env.step(state, actions)  # actions (256, env.action_size)

Each task is written once against an array namespace (`task.py`); `cpu_engine` runs it with
numpy on `mujoco.batch`, `mjx_engine` with jax.numpy under jit + vmap, `warp_engine` with
jax.numpy around MuJoCo Warp's batched step.
"""

import ctypes.util
import os

# MuJoCo chooses its GL platform at import: offscreen EGL unless the user chose or has a display.
# Only where libEGL exists: with MUJOCO_GL=egl and no libEGL, `import mujoco` itself fails (seen
# on a GPU image without it), and simulation needs no GL at all; rendering then says what to do.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY") and ctypes.util.find_library("EGL"):
    os.environ["MUJOCO_GL"] = "egl"

from garagelab.playground.randomize import Randomization
from garagelab.playground.registry import (
    ENGINES,
    default_config,
    load,
    make_task,
    names,
    register,
    requirement,
)
from garagelab.playground.state import State
from garagelab.playground.task import Task

__all__ = [
    "ENGINES",
    "Randomization",
    "State",
    "Task",
    "default_config",
    "load",
    "make_task",
    "names",
    "register",
    "requirement",
]
