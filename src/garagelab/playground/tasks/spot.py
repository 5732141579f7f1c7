"""Spot joystick (Playground's `SpotJoystickFlatTerrain`): the Go1 task on Menagerie's Spot.

Needs `MENAGERIE_ROOT` (no Spot is written here). Playground's numbers: Kp 300, Kd 1, action
scale 0.3, commands up to 1 m/s forward, 0.8 m/s sideways, 1 rad/s turning, feet lifted 12 cm.
Spot's feet are unnamed spheres in its lower-leg bodies (see `robots.py`).
"""

from __future__ import annotations

import dataclasses

from garagelab.playground.robots import SPOT
from garagelab.playground.tasks.go1 import Joystick, JoystickConfig


@dataclasses.dataclass(frozen=True)
class SpotConfig(JoystickConfig):
    model: str = "menagerie"
    kp: float = 300.0
    kd: float = 1.0
    action_scale: float = 0.3
    max_foot_height: float = 0.12
    lin_vel_x: tuple[float, float] = (-1.0, 1.0)
    lin_vel_y: tuple[float, float] = (-0.8, 0.8)
    ang_vel_yaw: tuple[float, float] = (-1.0, 1.0)


class SpotJoystick(Joystick):
    config_class = SpotConfig
    robot = SPOT
