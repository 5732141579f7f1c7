"""Swimmer6 (DM Control): a six-link planar swimmer in viscous fluid reaches a target."""

from __future__ import annotations

from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model, random_joints
from garagelab.playground.tolerance import tolerance


class Swimmer(Task):
    """The target is near (within 0.3 m) a fifth of the time, else within 2 m."""

    config_class = config(0.03, 0.002)
    fields = ("xmat", "geom_xpos", "sensordata")

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("swimmer6")

    def setup(self) -> None:
        model = self.mj_model
        self.head, self.nose, self.target = model.body("head").id, model.geom("nose").id, model.geom("target").id
        self.target_size = float(model.geom_size[self.target, 0])
        self.target_z = float(model.body("target").pos[2])

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp = ops.xp
        box = xp.where(ops.uniform(()) < 0.2, 0.3, 2.0)
        xy = ops.uniform((2,), -1.0, 1.0) * box[..., None]
        target = xp.concatenate([xy, 0 * xy[..., :1] + self.target_z], axis=-1)
        fields = {"qpos": random_joints(ops, self.mj_model), "qvel": ops.full((self.mj_model.nv,), 0.0)}
        return {**fields, "mocap_pos": target[..., None, :]}, {}

    def _nose_to_target(self, ops: Any, d: Any) -> Any:
        offset = d.geom_xpos[..., self.target, :] - d.geom_xpos[..., self.nose, :]
        return ops.xp.einsum("...j,...jk->...k", offset, d.xmat[..., self.head, :, :])[..., :2]

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        velocities = d.sensordata[..., 12:]
        local = xp.reshape(velocities, (*velocities.shape[:-1], -1, 6))[..., [0, 1, 5]]
        flat = xp.reshape(local, (*local.shape[:-2], -1))
        return xp.concatenate([d.qpos[..., 3:], self._nose_to_target(ops, d), flat], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        distance = xp.sqrt(xp.sum(self._nose_to_target(ops, d) ** 2, axis=-1))
        reach = tolerance(xp, distance, (0, self.target_size), 5 * self.target_size, "long_tail")
        return {"reach": reach}
