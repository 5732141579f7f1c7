"""Shared pieces of the DM Control Suite ports: model loading and joint randomisation."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import mujoco
import numpy as np

from garagelab.playground.config import EnvConfig
from garagelab.playground.task import MODELS, load_model


@dataclasses.dataclass(frozen=True)
class DmcConfig(EnvConfig):
    """DM Control's defaults: 1000 control steps, the XML's own timestep."""

    ctrl_dt: float = 0.01
    sim_dt: float = 0.01


@dataclasses.dataclass(frozen=True)
class DmcConfig20(DmcConfig):
    """The suite's domains whose XML timestep is 0.02 s."""

    ctrl_dt: float = 0.02
    sim_dt: float = 0.02


def dmc_model(name: str) -> mujoco.MjModel:
    return load_model(MODELS / "dm_control" / f"{name}.xml")


def random_joints(ops: Any, model: mujoco.MjModel) -> Any:
    """dm_control's `randomize_limited_and_rotational_joints` for hinge/slide models.

    Limited joints are drawn uniformly in their range, unlimited hinges in [-pi, pi); other
    joints keep `qpos0`.
    """
    low = model.qpos0.copy()
    high = model.qpos0.copy()
    hinge, slide = int(mujoco.mjtJoint.mjJNT_HINGE.value), int(mujoco.mjtJoint.mjJNT_SLIDE.value)
    for j in range(model.njnt):
        adr = model.jnt_qposadr[j]
        kind = int(model.jnt_type[j])
        if kind not in (hinge, slide):
            continue
        if model.jnt_limited[j]:
            low[adr], high[adr] = model.jnt_range[j]
        elif kind == hinge:
            low[adr], high[adr] = -math.pi, math.pi
    return ops.uniform((model.nq,), np.asarray(low), np.asarray(high))


def small_control(ops: Any, ctrl: Any) -> Any:
    """dm_control's control cost factor: (4 + mean quadratic tolerance of ctrl) / 5."""
    from garagelab.playground.tolerance import tolerance

    cost = tolerance(ops.xp, ctrl, margin=1, value_at_margin=0, sigmoid="quadratic")
    return (4 + ops.xp.mean(cost, axis=-1)) / 5


def sensor(model: mujoco.MjModel, name: str) -> slice:
    """Where a named sensor's values sit in `sensordata`."""
    s = model.sensor(name)
    return slice(int(s.adr[0]), int(s.adr[0]) + int(s.dim[0]))


def config(ctrl_dt: float, sim_dt: float) -> type:
    """A DmcConfig subclass with dm_control's control and physics timesteps for one domain."""
    return dataclasses.make_dataclass(
        f"DmcConfig_{ctrl_dt:g}_{sim_dt:g}".replace(".", "_"),
        [("ctrl_dt", float, ctrl_dt), ("sim_dt", float, sim_dt)],
        bases=(DmcConfig,),
        frozen=True,
    )
