"""Fish swim (DM Control): a 3D swimmer brings its mouth to a randomly placed target."""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from garagelab.playground.task import Info, Task
from garagelab.playground.tasks.dmc import config, dmc_model
from garagelab.playground.tolerance import tolerance

_JOINTS = ("tail1", "tail_twist", "tail2", "finright_roll", "finright_pitch", "finleft_roll", "finleft_pitch")


class FishSwim(Task):
    """Reward (7 * mouth-in-target + uprightness) / 8."""

    config_class = config(0.04, 0.004)
    fields = ("xmat", "geom_xpos", "geom_xmat", "sensordata")

    def build_model(self) -> mujoco.MjModel:
        return dmc_model("fish")

    def setup(self) -> None:
        model = self.mj_model
        self.joints = np.array([model.joint(name).qposadr[0] for name in _JOINTS])
        self.joint_dofs = np.array([model.joint(name).dofadr[0] for name in _JOINTS])
        self.torso = model.body("torso").id
        self.mouth, self.target = model.geom("mouth").id, model.geom("target").id
        self.radii = float(model.geom_size[self.mouth, 0] + model.geom_size[self.target, 0])

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp = ops.xp
        quat = ops.normal((4,))
        quat = quat / xp.sqrt(xp.sum(quat**2, axis=-1, keepdims=True))
        qpos = ops.full((self.mj_model.nq,), self.mj_model.qpos0)
        qpos = xp.concatenate([qpos[..., :3], quat, qpos[..., 7:]], axis=-1)
        qpos = ops.set(qpos, self.joints, ops.uniform((len(_JOINTS),), -0.2, 0.2))
        target = xp.stack([ops.uniform((), -0.4, 0.4), ops.uniform((), -0.4, 0.4), ops.uniform((), 0.1, 0.3)], axis=-1)
        return {"qpos": qpos, "qvel": ops.full((self.mj_model.nv,), 0.0), "mocap_pos": target[..., None, :]}, {}

    def _mouth_to_target(self, ops: Any, d: Any) -> Any:
        offset = d.geom_xpos[..., self.target, :] - d.geom_xpos[..., self.mouth, :]
        return ops.xp.einsum("...j,...jk->...k", offset, d.geom_xmat[..., self.mouth, :, :])

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        upright = d.xmat[..., self.torso, 2, 2:3]
        return ops.xp.concatenate([d.qpos[..., self.joints], upright, self._mouth_to_target(ops, d), d.qvel], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        distance = xp.sqrt(xp.sum(self._mouth_to_target(ops, d) ** 2, axis=-1))
        in_target = tolerance(xp, distance, (0, self.radii), margin=2 * self.radii)
        upright = 0.5 * (d.xmat[..., self.torso, 2, 2] + 1)
        return {"swim": (7 * in_target + upright) / 8}
