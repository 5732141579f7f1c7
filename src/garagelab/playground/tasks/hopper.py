"""Hopper (DM Control): a one-legged planar body stands tall, or hops forward."""

from __future__ import annotations

from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model, random_joints, sensor, small_control
from garagelab.playground.tolerance import tolerance

_STAND_HEIGHT = 0.6
_HOP_SPEED = 2.0


class Hopper(Task):
    """Stand: height times small control; hop: height times forward speed above 2 m/s."""

    config_class = config(0.02, 0.005)
    fields = ("xipos", "sensordata")

    def __init__(self, config: Any = None, hopping: bool = False) -> None:
        self.hopping = hopping
        super().__init__(config)

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("hopper")

    def setup(self) -> None:
        model = self.mj_model
        self.torso, self.foot = model.body("torso").id, model.body("foot").id
        self.speed = sensor(model, "torso_subtreelinvel").start
        self.touch = [sensor(model, "touch_toe").start, sensor(model, "touch_heel").start]

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        return {"qpos": random_joints(ops, self.mj_model), "qvel": ops.full((self.mj_model.nv,), 0.0)}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        return xp.concatenate([d.qpos[..., 1:], d.qvel, xp.log1p(d.sensordata[..., self.touch])], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        height = d.xipos[..., self.torso, 2] - d.xipos[..., self.foot, 2]
        standing = tolerance(xp, height, (_STAND_HEIGHT, 2))
        if not self.hopping:
            return {"stand": standing * small_control(ops, d.ctrl)}
        speed = d.sensordata[..., self.speed]
        hopping = tolerance(xp, speed, (_HOP_SPEED, float("inf")), _HOP_SPEED / 2, "linear", value_at_margin=0.5)
        return {"hop": standing * hopping}
