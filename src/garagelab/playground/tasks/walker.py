"""Walker (DM Control): a planar biped stands, walks at 1 m/s or runs at 8 m/s."""

from __future__ import annotations

from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model, random_joints, sensor
from garagelab.playground.tolerance import tolerance

_STAND_HEIGHT = 1.2


class Walker(Task):
    """Stand reward (3 * height + upright) / 4, times a move term when `move_speed` > 0."""

    config_class = config(0.025, 0.0025)
    fields = ("xpos", "xmat", "sensordata")

    def __init__(self, config: Any = None, move_speed: float = 0.0) -> None:
        self.move_speed = move_speed
        super().__init__(config)

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("walker")

    def setup(self) -> None:
        self.torso = self.mj_model.body("torso").id
        self.speed = sensor(self.mj_model, "torso_subtreelinvel").start

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        return {"qpos": random_joints(ops, self.mj_model), "qvel": ops.full((self.mj_model.nv,), 0.0)}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        frames = d.xmat[..., 1:, :, :]
        orientations = xp.stack([frames[..., 0, 0], frames[..., 0, 2]], axis=-1)
        flat = xp.reshape(orientations, (*orientations.shape[:-2], -1))
        return xp.concatenate([flat, d.xpos[..., self.torso, 2:3], d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        standing = tolerance(xp, d.xpos[..., self.torso, 2], (_STAND_HEIGHT, float("inf")), _STAND_HEIGHT / 2)
        upright = (1 + d.xmat[..., self.torso, 2, 2]) / 2
        stand = (3 * standing + upright) / 4
        if self.move_speed == 0:
            return {"stand": stand}
        speed = d.sensordata[..., self.speed]
        move = tolerance(xp, speed, (self.move_speed, float("inf")), self.move_speed / 2, "linear", 0.5)
        return {"move": stand * (5 * move + 1) / 6}
