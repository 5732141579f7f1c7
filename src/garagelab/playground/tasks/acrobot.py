"""Acrobot (DM Control): swing a two-link underactuated arm's tip into the target above it."""

from __future__ import annotations

import math
from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model
from garagelab.playground.tolerance import tolerance


class Acrobot(Task):
    """Dense: tolerance of the tip-target distance with a 1 m margin; sparse: inside the target."""

    config_class = config(0.01, 0.01)
    fields = ("xmat", "site_xpos")

    def __init__(self, config: Any = None, sparse: bool = False) -> None:
        self.sparse = sparse
        super().__init__(config)

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("acrobot")

    def setup(self) -> None:
        self.arms = [self.mj_model.body("upper_arm").id, self.mj_model.body("lower_arm").id]
        self.target, self.tip = self.mj_model.site("target").id, self.mj_model.site("tip").id
        self.radius = float(self.mj_model.site_size[self.target, 0])

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        return {"qpos": ops.uniform((2,), -math.pi, math.pi), "qvel": ops.full((2,), 0.0)}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        frames = d.xmat[..., self.arms, :, :]
        return ops.xp.concatenate([frames[..., 0, 2], frames[..., 2, 2], d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        offset = d.site_xpos[..., self.target, :] - d.site_xpos[..., self.tip, :]
        distance = xp.sqrt(xp.sum(offset**2, axis=-1))
        return {"to_target": tolerance(xp, distance, (0, self.radius), margin=0 if self.sparse else 1)}
