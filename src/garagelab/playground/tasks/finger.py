"""Finger (DM Control): spin the hinged body, or turn its tip onto a target."""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model, random_joints, sensor

_SPIN_VELOCITY = 15.0


class Finger(Task):
    """`turn_radius` None: spin (reward while the hinge turns faster than 15 rad/s); else turn."""

    config_class = config(0.02, 0.005)  # Playground's physics step: stable with implicitfast
    fields = ("sensordata",)

    def __init__(self, config: Any = None, turn_radius: float | None = None) -> None:
        self.turn_radius = turn_radius
        super().__init__(config)

    def build_model(self) -> mujoco.MjModel:
        model = dmc_model("finger")
        if self.turn_radius is None:
            model.dof_damping[model.joint("hinge").dofadr[0]] = 0.03
            model.site_rgba[[model.site("target").id, model.site("tip").id], 3] = 0
        else:
            model.site_size[model.site("target").id, 0] = self.turn_radius
        return model

    def setup(self) -> None:
        model = self.mj_model
        self.s = {name: sensor(model, name) for name in model.names.decode().split("\x00") if _is_sensor(model, name)}
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        self.hinge_xz = data.xanchor[model.joint("hinge").id][[0, 2]].copy()
        self.radius = float(model.geom("cap1").size.sum())
        self.target_y = float(model.body("target").pos[1])

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp = ops.xp
        fields = {"qpos": random_joints(ops, self.mj_model), "qvel": ops.full((3,), 0.0)}
        if self.turn_radius is not None:
            angle = ops.uniform((), -math.pi, math.pi)
            x = self.hinge_xz[0] + self.radius * xp.sin(angle)
            z = self.hinge_xz[1] + self.radius * xp.cos(angle)
            fields["mocap_pos"] = xp.stack([x, 0 * x + self.target_y, z], axis=-1)[..., None, :]
        return fields, {}

    def _xz(self, d: Any, name: str) -> Any:
        return d.sensordata[..., self.s[name]][..., np.array([0, 2])]

    def _to_target(self, ops: Any, d: Any) -> tuple[Any, Any]:
        target = self._xz(d, "target") - self._xz(d, "spinner")
        tip = self._xz(d, "tip") - self._xz(d, "spinner")
        distance = ops.xp.sqrt(ops.xp.sum((target - tip) ** 2, axis=-1)) - self.turn_radius
        return target, distance

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        sd = d.sensordata
        tip = self._xz(d, "tip") - self._xz(d, "spinner")
        parts = [
            sd[..., self.s["proximal"]],
            sd[..., self.s["distal"]],
            tip,
            sd[..., self.s["proximal_velocity"]],
            sd[..., self.s["distal_velocity"]],
            sd[..., self.s["hinge_velocity"]],
            xp.log1p(sd[..., self.s["touchtop"]]),
            xp.log1p(sd[..., self.s["touchbottom"]]),
        ]
        if self.turn_radius is not None:
            target, distance = self._to_target(ops, d)
            parts += [target, distance[..., None]]
        return xp.concatenate(parts, axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        if self.turn_radius is None:
            spinning = d.sensordata[..., self.s["hinge_velocity"].start] <= -_SPIN_VELOCITY
            return {"spin": spinning.astype(d.sensordata.dtype)}
        _, distance = self._to_target(ops, d)
        return {"turned": (distance <= 0).astype(d.sensordata.dtype)}


def _is_sensor(model: mujoco.MjModel, name: str) -> bool:
    return bool(name) and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SENSOR, name) >= 0
