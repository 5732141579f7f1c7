"""Cartpole (DM Control): balance the pole, or swing it up, with a dense or sparse reward."""

from __future__ import annotations

import math
from typing import Any

import mujoco

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import DmcConfig, dmc_model, small_control
from garagelab.playground.tolerance import tolerance


class Cartpole(Task):
    """The cart slides on a rail; the pole must end upright with the cart near the centre."""

    config_class = DmcConfig
    fields = ("xmat",)

    def __init__(self, config: Any = None, swing_up: bool = False, sparse: bool = False) -> None:
        self.swing_up = swing_up
        self.sparse = sparse
        super().__init__(config)

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("cartpole")

    def setup(self) -> None:
        self.pole = self.mj_model.body("pole_1").id

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp = ops.xp
        if self.swing_up:
            qpos = xp.stack([0.01 * ops.normal(), math.pi + 0.01 * ops.normal()], axis=-1)
        else:
            qpos = xp.stack([ops.uniform((), -0.1, 0.1), ops.uniform((), -0.034, 0.034)], axis=-1)
        return {"qpos": qpos, "qvel": 0.01 * ops.normal((2,))}, {}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        frame = d.xmat[..., self.pole, :, :]
        return xp.concatenate([d.qpos[..., :1], frame[..., 2, 2:3], frame[..., 0, 2:3], d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        cart = d.qpos[..., 0]
        cosine = d.xmat[..., self.pole, 2, 2]
        if self.sparse:
            return {"balanced": tolerance(xp, cart, (-0.25, 0.25)) * tolerance(xp, cosine, (0.995, 1))}
        upright = (cosine + 1) / 2
        centered = (1 + tolerance(xp, cart, margin=2)) / 2
        small_velocity = (1 + tolerance(xp, d.qvel[..., 1], margin=5)) / 2
        return {"upright": upright * centered * small_control(ops, d.ctrl) * small_velocity}
