"""Manipulation: reach a point, or pick up the cube and lift it, with the table-top arm written
here or (tasks/panda.py) Menagerie's Franka Panda; the arm's profile (`robots.Arm`) names the
gripper site, the cube and the gripper's actuator.

Playground's Panda tasks in shape: the action moves the servo targets by at most 4 cm (or rad)
per control step, the observation is joint state, gripper, cube and target positions; pick-and-
lift scores approaching the cube, then (once reached) carrying it to the target, with a small
pull towards the home pose and a penalty for driving the gripper into the floor.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import mujoco
import numpy as np

from garagelab.core.errors import UserError
from garagelab.playground.config import EnvConfig
from garagelab.playground.menagerie import robot_model
from garagelab.playground.robots import ARM, Arm, keyframe, named
from garagelab.playground.task import DeltaTargets, Info, Task


def _pick_scales() -> dict[str, float]:
    return {"gripper_box": 4.0, "box_target": 8.0, "no_floor_collision": 0.25, "robot_target_qpos": 0.3}


@dataclasses.dataclass(frozen=True)
class ArmConfig(EnvConfig):
    model: str = "ours"  # the profile's sources: ours (this arm) or menagerie (the Panda)
    ctrl_dt: float = 0.02
    sim_dt: float = 0.005
    episode_length: int = 150
    action_scale: float = 0.04
    reward: dict[str, float] = dataclasses.field(default_factory=_pick_scales)
    # pick: the cube starts up to box_spread (in x and y) from its keyframe place, the target up to
    # target_spread from the cube, at a height in target_height
    box_spread: float = 0.1
    target_spread: float = 0.1
    target_height: tuple[float, float] = (0.15, 0.3)


class _Arm(DeltaTargets, Task):
    config_class = ArmConfig
    targets_key = "ctrl"
    fields = ("site_xpos", "xpos")
    robot: ClassVar[Arm] = ARM
    edit = None  # a change to the model's spec before it compiles (placeholder meshes, say)

    def build_model(self) -> mujoco.MjModel:
        model, self.model_source = robot_model(self.robot, self.config.model, self.edit)
        return model

    def setup(self) -> None:
        model, robot = self.mj_model, self.robot
        home = keyframe(model, robot.keyframe)
        self.home_qpos, self.home_ctrl = home.qpos.copy(), home.ctrl.copy()
        self.gripper = named(model, mujoco.mjtObj.mjOBJ_SITE, robot.gripper_site)
        self.box = named(model, mujoco.mjtObj.mjOBJ_BODY, robot.box)
        joint = model.body_jntadr[self.box]
        if joint < 0 or model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE:
            raise UserError(f"the cube body {robot.box!r} needs a free joint")
        self.box_qpos = model.jnt_qposadr[joint]
        if model.nmocap != 1:
            raise UserError(f"the model needs one mocap body, the target; it has {model.nmocap}")
        arm = np.delete(np.arange(model.nu), named(model, mujoco.mjtObj.mjOBJ_ACTUATOR, robot.gripper_actuator))
        if (model.actuator_trntype[arm] != mujoco.mjtTrn.mjTRN_JOINT).any():
            raise UserError("every actuator but the gripper's must drive a joint (the pose reward reads them)")
        joints = model.actuator_trnid[arm, 0]
        self.arm_joints, self.arm_dofs = model.jnt_qposadr[joints], model.jnt_dofadr[joints]

    def update_info(self, ops: Any, d: Any, action: Any, info: Info) -> Info:
        return {**info, "ctrl": self.next_targets(ops, action, info)}

    def _start(self, ops: Any, target: Any, box_xy: Any | None = None) -> tuple[dict[str, Any], Info]:
        xp = ops.xp
        qpos = ops.full((self.mj_model.nq,), self.home_qpos)
        if box_xy is not None:
            a = self.box_qpos
            qpos = xp.concatenate([qpos[..., :a], box_xy, qpos[..., a + 2 :]], axis=-1)
        fields = {"qpos": qpos, "qvel": ops.full((self.mj_model.nv,), 0.0), "mocap_pos": target[..., None, :]}
        return fields, {"ctrl": ops.full((self.mj_model.nu,), self.home_ctrl), "target": target}


class ArmReach(_Arm):
    """Bring the gripper to a random point in the workspace; reward 1 - tanh(5 * distance)."""

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp = ops.xp
        target = xp.stack(
            [ops.uniform((), 0.25, 0.5), ops.uniform((), -0.25, 0.25), ops.uniform((), 0.1, 0.4)], axis=-1
        )
        return self._start(ops, target)

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        gripper = d.site_xpos[..., self.gripper, :]
        return ops.xp.concatenate(
            [d.qpos[..., self.arm_joints], d.qvel[..., self.arm_dofs], gripper, info["target"] - gripper], axis=-1
        )

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        distance = xp.sqrt(xp.sum((info["target"] - d.site_xpos[..., self.gripper, :]) ** 2, axis=-1))
        return {"reach": 1 - xp.tanh(5 * distance)}


class ArmPickCube(_Arm):
    """Pick the cube up and hold it at the target above the table."""

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp, c = ops.xp, self.config
        box_xy = self.home_qpos[self.box_qpos : self.box_qpos + 2] + ops.uniform((2,), -c.box_spread, c.box_spread)
        spread = ops.uniform((2,), -c.target_spread, c.target_spread)
        target = xp.concatenate([box_xy + spread, ops.uniform((1,), *c.target_height)], axis=-1)
        fields, info = self._start(ops, target, box_xy)
        return fields, {**info, "reached_box": ops.full((), 0.0)}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        gripper = d.site_xpos[..., self.gripper, :]
        box = d.xpos[..., self.box, :]
        return ops.xp.concatenate([d.qpos, d.qvel, gripper, box - gripper, info["target"] - box, info["ctrl"]], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        gripper = d.site_xpos[..., self.gripper, :]
        box = d.xpos[..., self.box, :]
        to_box = xp.sqrt(xp.sum((box - gripper) ** 2, axis=-1))
        to_target = xp.sqrt(xp.sum((info["target"] - box) ** 2, axis=-1))
        reached = xp.maximum(info["reached_box"], (to_box < 0.012).astype(to_box.dtype))
        pose = xp.sqrt(xp.sum((d.qpos[..., self.arm_joints] - self.home_qpos[self.arm_joints]) ** 2, axis=-1))
        return {
            "gripper_box": 1 - xp.tanh(5 * to_box),
            "box_target": (1 - xp.tanh(5 * to_target)) * reached,
            "no_floor_collision": (gripper[..., 2] > 0.005).astype(to_box.dtype),
            "robot_target_qpos": 1 - xp.tanh(pose),
        }

    def reward(self, ops: Any, terms: dict[str, Any], info: Info) -> Any:
        scales = self.config.reward
        return ops.xp.clip(sum(terms[k] * scales[k] for k in terms), -1e4, 1e4)

    def terminated(self, ops: Any, d: Any, info: Info) -> Any:
        box = d.xpos[..., self.box, :]
        return (ops.xp.max(ops.xp.abs(box), axis=-1) > 1.0) | (box[..., 2] < 0.0)

    def update_info(self, ops: Any, d: Any, action: Any, info: Info) -> Info:
        xp = ops.xp
        to_box = xp.sqrt(xp.sum((d.xpos[..., self.box, :] - d.site_xpos[..., self.gripper, :]) ** 2, axis=-1))
        reached = xp.maximum(info["reached_box"], (to_box < 0.012).astype(to_box.dtype))
        return {**super().update_info(ops, d, action, info), "reached_box": reached}
