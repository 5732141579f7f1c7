"""Cheetah run (DM Control): a planar runner rewarded linearly up to 10 m/s forward."""

from __future__ import annotations

from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model, random_joints, sensor
from garagelab.playground.tolerance import tolerance

_RUN_SPEED = 10.0


class CheetahRun(Task):
    """dm_control also settles the body for 200 steps at reset; here the episode starts at once."""

    config_class = config(0.01, 0.01)
    fields = ("sensordata",)

    def build_model(self) -> mujoco.MjModel:
        model = dmc_model("cheetah")
        mujoco.mj_setTotalmass(model, 14.0)  # the XML's old compiler setting, applied here
        return model

    def setup(self) -> None:
        self.speed = sensor(self.mj_model, "torso_subtreelinvel").start

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        return {"qpos": random_joints(ops, self.mj_model), "qvel": ops.full((self.mj_model.nv,), 0.0)}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        return ops.xp.concatenate([d.qpos[..., 1:], d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        speed = d.sensordata[..., self.speed]
        run = tolerance(ops.xp, speed, (_RUN_SPEED, float("inf")), _RUN_SPEED, "linear", value_at_margin=0)
        return {"run": run}
