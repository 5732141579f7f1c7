"""Point mass (DM Control): push a planar mass onto the target at the origin."""

from __future__ import annotations

from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import DmcConfig20, dmc_model, random_joints, small_control
from garagelab.playground.tolerance import tolerance


class PointMass(Task):
    """The `easy` variant: fixed actuator gains."""

    config_class = DmcConfig20
    fields = ("geom_xpos",)

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("point_mass")

    def setup(self) -> None:
        self.mass = self.mj_model.geom("pointmass").id
        self.target = self.mj_model.geom("target").id
        self.target_size = float(self.mj_model.geom_size[self.target, 0])

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        return {"qpos": random_joints(ops, self.mj_model), "qvel": ops.full((2,), 0.0)}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        return ops.xp.concatenate([d.qpos, d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        offset = d.geom_xpos[..., self.target, :] - d.geom_xpos[..., self.mass, :]
        distance = xp.sqrt(xp.sum(offset**2, axis=-1))
        near = tolerance(xp, distance, (0, self.target_size), margin=self.target_size)
        return {"near_target": near * small_control(ops, d.ctrl)}
