"""Biped joystick: the Go1 task's observation, commands and reward terms on an H1-class biped.

Playground's H1 and G1 joystick tasks share the quadruped's design (body-frame velocity
tracking, pose, feet air time and slip, action rate, energy); this is that task on the biped
written here (`models/biped/biped.xml`), with command ranges for a human-sized robot and a
termination when the pelvis drops below 0.6 m or tilts past 60 degrees. Menagerie's H1 names
its bodies differently, so this task always uses our model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import mujoco

from garagelab.playground.task import MODELS, Info, load_model
from garagelab.playground.tasks.go1 import Joystick, JoystickConfig, _scales


def _biped_scales() -> dict[str, float]:
    return {**_scales(), "orientation": -2.0, "feet_air_time": 0.5, "stand_still": -0.5}


@dataclasses.dataclass(frozen=True)
class BipedConfig(JoystickConfig):
    model: str = "ours"
    action_scale: float = 0.3
    max_foot_height: float = 0.12
    lin_vel_x: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y: tuple[float, float] = (-0.5, 0.5)
    ang_vel_yaw: tuple[float, float] = (-1.0, 1.0)
    min_height: float = 0.6
    reward: dict[str, float] = dataclasses.field(default_factory=_biped_scales)


class BipedJoystick(Joystick):
    """Walk at commanded velocities on two legs; gains per joint class come from the model."""

    config_class = BipedConfig
    root = "pelvis"
    feet_names = ("left_foot", "right_foot")
    leg_pose_weights = (1.0, 1.0, 0.1, 0.1, 0.1)  # hip yaw and roll held tight, pitch joints free

    def build_model(self) -> mujoco.MjModel:
        if self.config.model != "ours":
            from garagelab.core.errors import UserError

            raise UserError(f"model {self.config.model!r}: the biped task has only our model (valid: ours)")
        self.model_source = "garagelab:biped/biped.xml"
        return load_model(MODELS / "biped" / "biped.xml")

    def terminated(self, ops: Any, d: Any, info: Info) -> Any:
        upright = self._frame(d)[..., 2, 2]
        return (d.qpos[..., 2] < self.config.min_height) | (upright < 0.5)
