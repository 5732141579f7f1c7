"""Reacher (DM Control): a two-link planar arm touches a randomly placed target."""

from __future__ import annotations

import math
from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import DmcConfig20, dmc_model, random_joints
from garagelab.playground.tolerance import tolerance


class Reacher(Task):
    """Reward 1 while the fingertip overlaps the target (`easy`: 5 cm, `hard`: 1.5 cm)."""

    config_class = DmcConfig20
    fields = ("geom_xpos",)

    def __init__(self, config: Any = None, target_size: float = 0.05) -> None:
        self.target_size = target_size
        super().__init__(config)

    def build_model(self) -> mujoco.MjModel:
        model = dmc_model("reacher")
        model.geom("target").size[0] = self.target_size
        return model

    def setup(self) -> None:
        self.finger = self.mj_model.geom("finger").id
        self.target = self.mj_model.geom("target").id
        self.radii = self.target_size + float(self.mj_model.geom("finger").size[0])

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp = ops.xp
        angle = ops.uniform((), 0, 2 * math.pi)
        radius = ops.uniform((), 0.05, 0.20)
        target = xp.stack([radius * xp.sin(angle), radius * xp.cos(angle), 0.01 + 0 * radius], axis=-1)
        fields = {"qpos": random_joints(ops, self.mj_model), "qvel": ops.full((2,), 0.0)}
        return {**fields, "mocap_pos": target[..., None, :]}, {}

    def _to_target(self, d: Any) -> Any:
        return d.geom_xpos[..., self.target, :2] - d.geom_xpos[..., self.finger, :2]

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        return ops.xp.concatenate([d.qpos, self._to_target(d), d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        distance = xp.sqrt(xp.sum(self._to_target(d) ** 2, axis=-1))
        return {"reached": tolerance(xp, distance, (0, self.radii))}
