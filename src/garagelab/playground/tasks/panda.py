"""Menagerie's Franka Panda (Playground's `PandaPickCube`): the arm tasks on `mjx_single_cube.xml`.

Needs `MENAGERIE_ROOT` (no Panda is written here). Playground's timing, action scale and reward
scales are ArmConfig's already; its cube starts within 0.2 m (x and y) of the keyframe's and its
target 0.2-0.4 m above the cube's start height. Here the target is drawn around the cube, not
around the start, as for our arm. PandaReach is the reach task on the same model (Playground has
none): the cube stays on the floor.
"""

from __future__ import annotations

import dataclasses

from garagelab.playground.robots import PANDA
from garagelab.playground.tasks.arm import ArmConfig, ArmPickCube, ArmReach


@dataclasses.dataclass(frozen=True)
class PandaConfig(ArmConfig):
    model: str = "menagerie"
    box_spread: float = 0.2
    target_spread: float = 0.2
    target_height: tuple[float, float] = (0.23, 0.43)  # the cube's centre starts at 3 cm


class PandaPickCube(ArmPickCube):
    config_class = PandaConfig
    robot = PANDA


class PandaReach(ArmReach):
    config_class = PandaConfig
    robot = PANDA
