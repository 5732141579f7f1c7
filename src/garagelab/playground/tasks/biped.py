"""Biped joystick: the Go1 task's observation, commands and reward terms on a biped, with a gait clock.

Playground's H1 and G1 joystick tasks share the quadruped's design (body-frame velocity
tracking, pose, feet air time and slip, energy) and add what a biped needs to learn within a
budget: a gait clock. Each foot has a phase that advances at a gait frequency drawn per
episode (1.25-1.5 Hz), the legs half a cycle apart; the observation carries the phases'
cosines and sines, and a `feet_phase` reward asks each foot's height to follow a swing
trajectory (`swing_height`: up to `max_foot_height` and back down over one cycle) whenever the
robot moves or is told to. Its reward is not clipped at zero and a fall costs 100 (times the
control step), as in Playground's G1 (`g1/joystick.py`), whose reward scales these are.

This is that task on the biped written here (`models/biped/biped.xml`, H1-class), with
command ranges for a human-sized robot and a termination when the pelvis drops below
`min_height` or tilts past 60 degrees. The same task runs Menagerie's H1 and G1
(`MENAGERIE_ROOT` required), their torque motors turned into position servos with
Playground's gains (see `robots.py`), with Playground's action scale, command ranges and foot
height for each.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import mujoco
import numpy as np

from garagelab.playground.menagerie import robot_model
from garagelab.playground.robots import BIPED, G1, H1
from garagelab.playground.task import Info
from garagelab.playground.tasks.go1 import Joystick, JoystickConfig, scaled_reward


def _biped_scales() -> dict[str, float]:
    """Playground's G1 joystick scales on our terms, its zeros kept as zeros; our pose term is a
    reward (exp of the weighted error)."""
    return {
        "tracking_lin_vel": 1.0,
        "tracking_ang_vel": 0.75,
        "lin_vel_z": 0.0,
        "ang_vel_xy": -0.15,
        "orientation": -2.0,
        "dof_pos_limits": -1.0,
        "pose": 0.5,
        "termination": -100.0,
        "stand_still": -1.0,
        "torques": 0.0,
        "action_rate": -0.01,
        "energy": 0.0,
        "feet_clearance": 0.0,
        "feet_height": 0.0,
        "feet_slip": -0.25,
        "feet_air_time": 2.0,
        "feet_phase": 1.0,
    }


def swing_height(phase: Any, peak: float, xp: Any) -> Any:
    """Where a foot should be on the gait clock (Playground's `gait.get_rz`): lifted from the
    ground to `peak` over the first half of the cycle (phase -pi to 0) and set down over the
    second, each half a cubic Bezier ease (zero slope at both ends)."""
    x = (phase + math.pi) / (2 * math.pi)

    def ease(start: float, end: float, t: Any) -> Any:
        return start + (end - start) * (t**3 + 3 * t**2 * (1 - t))

    return xp.where(x <= 0.5, ease(0.0, peak, 2 * x), ease(peak, 0.0, 2 * x - 1))


@dataclasses.dataclass(frozen=True)
class BipedConfig(JoystickConfig):
    model: str = "ours"
    action_scale: float = 0.3
    max_foot_height: float = 0.12
    lin_vel_x: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y: tuple[float, float] = (-0.5, 0.5)
    ang_vel_yaw: tuple[float, float] = (-1.0, 1.0)
    min_height: float = 0.6
    gait_frequency: tuple[float, float] = (1.25, 1.5)  # Hz, drawn per episode
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

    # --- the gait clock ---------------------------------------------------------------
    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        fields, info = super().reset(ops)
        step = 2 * math.pi * self.dt * ops.uniform((), *self.config.gait_frequency)
        return fields, {**info, "phase": ops.full((2,), np.array([0.0, math.pi])), "phase_step": step}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        phase = info["phase"]
        return xp.concatenate([super().observe(ops, d, info), xp.cos(phase), xp.sin(phase)], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        terms = super().rewards(ops, d, action, info)
        _, height, _, _ = self._feet(ops, d, info)
        wanted = swing_height(info["phase"], self.config.max_foot_height, xp)
        error = ((height - self.foot_radius - wanted) ** 2).sum(axis=-1)
        speed = xp.sqrt((d.qvel[..., :2] ** 2).sum(axis=-1))
        active = (speed > 0.1) | (xp.abs(d.qvel[..., 5]) > 0.1) | (xp.sqrt((info["command"] ** 2).sum(axis=-1)) > 0.01)
        return {**terms, "feet_phase": xp.exp(-error / 0.01) * active}

    def reward(self, ops: Any, terms: dict[str, Any], info: Info) -> Any:
        """Playground's biped reward: the scaled terms times dt, not clipped (a fall must cost)."""
        return scaled_reward(ops, terms, self.config.reward, self.dt, clip=False)

    def update_info(self, ops: Any, d: Any, action: Any, info: Info) -> Info:
        xp = ops.xp
        info = super().update_info(ops, d, action, info)
        advanced = info["phase"] + info["phase_step"][..., None]
        return {**info, "phase": xp.fmod(advanced + math.pi, 2 * math.pi) - math.pi}


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
