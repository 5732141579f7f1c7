"""Biped joystick: the Go1 task's observation, commands and reward terms on a biped.

Playground's H1 and G1 joystick tasks share the quadruped's design (body-frame velocity
tracking, pose, feet air time and slip, action rate, energy); this is that task on the biped
written here (`models/biped/biped.xml`, H1-class), with command ranges for a human-sized robot
and a termination when the pelvis drops below `min_height` or tilts past 60 degrees. The same
task runs Menagerie's H1 and G1 (`MENAGERIE_ROOT` required), their torque motors turned into
position servos with Playground's gains (see `robots.py`), with Playground's action scale,
command ranges and foot height for each.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import mujoco

from garagelab.playground.menagerie import robot_model
from garagelab.playground.robots import BIPED, G1, H1
from garagelab.playground.task import Info
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
    """Walk at commanded velocities on two legs; the servo gains are the model's own (ours) or
    the profile's (Menagerie's), never the config's single Kp and Kd."""

    config_class = BipedConfig
    robot = BIPED
    leg_pose_weights = (1.0, 1.0, 0.1, 0.1, 0.1)  # hip yaw and roll held tight, pitch joints free

    def build_model(self) -> mujoco.MjModel:
        model, self.model_source = robot_model(self.robot, self.config.model, self.edit)
        return model

    def terminated(self, ops: Any, d: Any, info: Info) -> Any:
        upright = self._frame(d)[..., 2, 2]
        return (d.qpos[..., 2] < self.config.min_height) | (upright < 0.5)


@dataclasses.dataclass(frozen=True)
class H1Config(BipedConfig):
    """Playground's H1 joystick numbers (h1/joystick.py)."""

    model: str = "menagerie"
    action_scale: float = 0.5
    max_foot_height: float = 0.13
    lin_vel_x: tuple[float, float] = (-0.6, 1.5)
    lin_vel_y: tuple[float, float] = (-0.8, 0.8)
    ang_vel_yaw: tuple[float, float] = (-0.7, 0.7)


class H1Joystick(BipedJoystick):
    config_class = H1Config
    robot = H1


@dataclasses.dataclass(frozen=True)
class G1Config(BipedConfig):
    """Playground's G1 joystick numbers (g1/joystick.py, 2 ms physics); G1's pelvis stands at
    0.75 m, so a fall is below 0.45 m."""

    model: str = "menagerie"
    sim_dt: float = 0.002
    action_scale: float = 0.5
    max_foot_height: float = 0.15
    min_height: float = 0.45


class G1Joystick(BipedJoystick):
    config_class = G1Config
    robot = G1
