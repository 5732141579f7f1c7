"""Pendulum swing-up (DM Control): a torque-limited pole must reach and hold the top."""

from __future__ import annotations

import math
from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import DmcConfig20, dmc_model
from garagelab.playground.tolerance import tolerance

_COSINE_BOUND = math.cos(math.radians(30))


class PendulumSwingup(Task):
    """Reward 1 while the pole is within 30 degrees of upright, else 0."""

    config_class = DmcConfig20
    fields = ("xmat",)

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("pendulum")

    def setup(self) -> None:
        self.pole = self.mj_model.body("pole").id

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        return {"qpos": ops.uniform((1,), -math.pi, math.pi), "qvel": ops.full((1,), 0.0)}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        frame = d.xmat[..., self.pole, :, :]
        return ops.xp.concatenate([frame[..., 2, 2:3], frame[..., 0, 2:3], d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        return {"upright": tolerance(ops.xp, d.xmat[..., self.pole, 2, 2], (_COSINE_BOUND, 1))}
