"""Ball in cup (DM Control): swing the ball on its string into the cup."""

from __future__ import annotations

from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model


class BallInCup(Task):
    """Reward 1 while the ball is inside the cup's target box (dm_control's `catch`)."""

    config_class = config(0.02, 0.002)
    fields = ("xpos", "site_xpos")

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("ball_in_cup")

    def setup(self) -> None:
        model = self.mj_model
        self.target, self.ball = model.site("target").id, model.body("ball").id
        ball_size = float(model.geom("ball").size[0])
        self.inner = model.site_size[self.target, [0, 2]] - ball_size

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        # dm_control redraws until nothing penetrates; from this box the ball starts clear of the cup
        xp = ops.xp
        zeros = ops.full((2,), 0.0)
        ball = xp.stack([ops.uniform((), -0.2, 0.2), ops.uniform((), 0.2, 0.5)], axis=-1)
        return {"qpos": xp.concatenate([zeros, ball], axis=-1), "qvel": ops.full((4,), 0.0)}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        return ops.xp.concatenate([d.qpos, d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        offset = d.site_xpos[..., self.target, :] - d.xpos[..., self.ball, :]
        inside = xp.all(xp.abs(offset[..., [0, 2]]) < self.inner, axis=-1)
        return {"in_cup": inside.astype(offset.dtype)}
