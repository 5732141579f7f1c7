"""Humanoid (DM Control): a 21-joint body stands, walks at 1 m/s or runs at 10 m/s."""

from __future__ import annotations

from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model, random_joints, sensor, small_control
from garagelab.playground.tolerance import tolerance

_STAND_HEIGHT = 1.4


class Humanoid(Task):
    """dm_control redraws joints until nothing penetrates; here the first draw is kept."""

    config_class = config(0.025, 0.005)
    fields = ("xpos", "xmat", "sensordata")

    def __init__(self, config: Any = None, move_speed: float = 0.0) -> None:
        self.move_speed = move_speed
        super().__init__(config)

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("humanoid")

    def setup(self) -> None:
        model = self.mj_model
        self.torso, self.head = model.body("torso").id, model.body("head").id
        self.limbs = [model.body(f"{side}_{limb}").id for side in ("left", "right") for limb in ("hand", "foot")]
        self.com_velocity = sensor(model, "torso_subtreelinvel")

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        return {"qpos": random_joints(ops, self.mj_model), "qvel": ops.full((self.mj_model.nv,), 0.0)}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        frame = d.xmat[..., self.torso, :, :]
        to_limbs = d.xpos[..., self.limbs, :] - d.xpos[..., self.torso, None, :]
        extremities = xp.einsum("...lj,...jk->...lk", to_limbs, frame)
        shape = (*extremities.shape[:-2], 12)
        return xp.concatenate(
            [
                d.qpos[..., 7:],
                d.xpos[..., self.head, 2:3],
                xp.reshape(extremities, shape),
                frame[..., 2, :],
                d.sensordata[..., self.com_velocity],
                d.qvel,
            ],
            axis=-1,
        )

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        standing = tolerance(xp, d.xpos[..., self.head, 2], (_STAND_HEIGHT, float("inf")), _STAND_HEIGHT / 4)
        upright = tolerance(xp, d.xmat[..., self.torso, 2, 2], (0.9, float("inf")), 1.9, "linear", 0)
        stand = standing * upright * small_control(ops, d.ctrl)
        horizontal = d.sensordata[..., self.com_velocity][..., :2]
        if self.move_speed == 0:
            return {"stand": stand * xp.mean(tolerance(xp, horizontal, margin=2), axis=-1)}
        speed = xp.sqrt(xp.sum(horizontal**2, axis=-1))
        move = tolerance(xp, speed, (self.move_speed, float("inf")), self.move_speed, "linear", 0)
        return {"move": stand * (5 * move + 1) / 6}
