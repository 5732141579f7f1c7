"""In-hand cube reorientation (Playground's LeapCubeReorient) on the 16-DoF hand written here.

The hand (`models/hand/hand.xml`) lies palm up with a 6 cm cube on its palm; the goal is an
orientation of the cube, kept in the task's info (the goal is not a body in the scene). When
the cube is within `success_threshold` radians of the goal, the task pays `success_reward` and
draws the next goal: the last one turned about a random axis by U(goal_turn) radians, so goals
follow one another as Playground's drifting goal does, in one jump instead of a glide. The
first goal is drawn uniformly, as Playground's is (a turn of 2.3 rad at the median), or, with
`first_goal_turn`, as a turn of the cube's start orientation like the later ones.

Observation (57, Playground's layout without its noise and history): joint angles, joint angles
minus servo targets, palm centre minus cube position, the last two rows of the rotation from
goal to cube, the last action. Action: servo targets move by 0.5 x action per control step
(50 ms), clipped to their ranges. Reward: Playground's terms and scales (orientation 5 x a
linear tolerance of the angle to the goal, position 0.5 x a linear tolerance of the cube's
distance from the palm centre, dropping -100, hand pose -0.5, action rate -0.001, energy -1e-3),
summed times dt, plus the success reward. The episode ends when the cube falls below the palm.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import mujoco
import numpy as np

from garagelab.playground.config import EnvConfig
from garagelab.playground.robots import keyframe
from garagelab.playground.task import MODELS, DeltaTargets, Info, Task, load_model
from garagelab.playground.tolerance import tolerance

FINGERTIPS = ("index_tip", "middle_tip", "ring_tip", "thumb_tip")


def quat_multiply(xp: Any, a: Any, b: Any) -> Any:
    """Hamilton product of (..., 4) quaternions, w first (MuJoCo's order)."""
    aw, ax, ay, az = (a[..., i] for i in range(4))
    bw, bx, by, bz = (b[..., i] for i in range(4))
    return xp.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conjugate(xp: Any, q: Any) -> Any:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_angle(xp: Any, q: Any) -> Any:
    """The rotation angle of unit quaternions (..., 4), in [0, pi]."""
    vector = xp.sqrt((q[..., 1:] ** 2).sum(axis=-1))
    return 2 * xp.arctan2(vector, xp.abs(q[..., 0]))


def quat_matrix_rows(xp: Any, q: Any) -> Any:
    """Rows 1 and 2 of the rotation matrix of unit quaternions (..., 4), flattened (..., 6)."""
    w, x, y, z = (q[..., i] for i in range(4))
    return xp.stack(
        [
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )


def random_quat(ops: Any) -> Any:
    """Uniformly distributed unit quaternions (a normalised 4-D Gaussian)."""
    q = ops.normal((4,))
    return q / ops.xp.sqrt((q**2).sum(axis=-1, keepdims=True))


def turned(ops: Any, q: Any, low: float, high: float) -> Any:
    """`q` turned about a random axis by an angle drawn from U(low, high)."""
    xp = ops.xp
    axis = ops.normal((3,))
    axis = axis / xp.sqrt((axis**2).sum(axis=-1, keepdims=True))
    half = ops.uniform((), low, high)[..., None] / 2
    turn = xp.concatenate([xp.cos(half), xp.sin(half) * axis], axis=-1)
    return quat_multiply(xp, turn, q)


def _scales() -> dict[str, float]:
    return {
        "orientation": 5.0,
        "position": 0.5,
        "termination": -100.0,
        "hand_pose": -0.5,
        "action_rate": -0.001,
        "joint_vel": 0.0,
        "energy": -1e-3,
    }


@dataclasses.dataclass(frozen=True)
class HandConfig(EnvConfig):
    ctrl_dt: float = 0.05
    sim_dt: float = 0.01
    episode_length: int = 1000
    action_scale: float = 0.5
    success_threshold: float = 0.1  # radians to the goal
    success_reward: float = 100.0
    goal_turn: tuple[float, float] = (0.5, 1.5)  # radians from one goal to the next
    # the first goal: None draws it uniformly (Playground); (low, high) turns the cube's start
    # orientation by U(low, high) radians, so every goal of an episode is as far as the next ones
    first_goal_turn: tuple[float, float] | None = None
    drop_height: float = -0.05  # metres: the cube's centre below this has fallen off the palm
    reward: dict[str, float] = dataclasses.field(default_factory=_scales)


class CubeReorient(DeltaTargets, Task):
    """Turn the cube in the hand to a goal orientation, then to the next one."""

    config_class = HandConfig
    fields = ("site_xpos", "actuator_force")

    def build_model(self) -> mujoco.MjModel:
        return load_model(MODELS / "hand" / "hand.xml")

    def setup(self) -> None:
        model = self.mj_model
        home = keyframe(model, "home")
        self.home_qpos = home.qpos.copy()
        self.nu = model.nu
        self.default_pose = self.home_qpos[: self.nu]
        self.ctrl_low, self.ctrl_high = model.actuator_ctrlrange.T.copy()
        self.palm = model.site("palm_centre").id
        self.tips = np.array([model.site(name).id for name in FINGERTIPS])
        cube = model.joint("cube")
        self.cube_qpos, self.cube_qvel = int(cube.qposadr[0]), int(cube.dofadr[0])

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp, nu = ops.xp, self.nu
        hand = xp.clip(self.default_pose + 0.1 * ops.normal((nu,)), self.ctrl_low, self.ctrl_high)
        position = self.home_qpos[self.cube_qpos : self.cube_qpos + 3] + ops.uniform((3,), -0.01, 0.01)
        position = position + np.array([0.0, 0.0, 0.01])  # the cube drops a centimetre onto the palm
        start = random_quat(ops)
        cube = xp.concatenate([position, start], axis=-1)
        qpos = xp.concatenate([hand, cube], axis=-1)
        qvel = 0.0 * ops.normal((self.mj_model.nv,))
        zero = ops.full((nu,), 0.0)
        info = {
            "goal": random_quat(ops)
            if self.config.first_goal_turn is None
            else turned(ops, start, *self.config.first_goal_turn),
            "targets": hand,
            "last_act": zero,
            "last_last_act": zero,
            "successes": ops.full((), 0.0),
        }
        return {"qpos": qpos, "qvel": qvel}, info

    # --- control and observation ------------------------------------------------------
    def _cube(self, d: Any) -> tuple[Any, Any]:
        start = self.cube_qpos
        return d.qpos[..., start : start + 3], d.qpos[..., start + 3 : start + 7]

    def _error(self, ops: Any, d: Any, goal: Any) -> Any:
        """The rotation from goal to cube (unit quaternion, ...x4)."""
        xp = ops.xp
        _, quat = self._cube(d)
        quat = quat / xp.sqrt((quat**2).sum(axis=-1, keepdims=True))
        return quat_multiply(xp, quat, quat_conjugate(xp, goal))

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        joints = d.qpos[..., : self.nu]
        position, _ = self._cube(d)
        return xp.concatenate(
            [
                joints,
                joints - info["targets"],
                d.site_xpos[..., self.palm, :] - position,
                quat_matrix_rows(xp, self._error(ops, d, info["goal"])),
                info["last_act"],
            ],
            axis=-1,
        )

    def privileged(self, ops: Any, d: Any, obs: Any, info: Info) -> Any:
        """The observation plus joint velocities, fingertip positions and the cube's velocity."""
        xp = ops.xp
        tips = d.site_xpos[..., self.tips, :]
        tips = xp.reshape(tips, (*tips.shape[:-2], 3 * len(FINGERTIPS)))
        cube_velocity = d.qvel[..., self.cube_qvel : self.cube_qvel + 6]
        return xp.concatenate([obs, d.qvel[..., : self.nu], tips, cube_velocity], axis=-1)

    # --- reward -----------------------------------------------------------------------
    def angle_to_goal(self, ops: Any, d: Any, info: Info) -> Any:
        return quat_angle(ops.xp, self._error(ops, d, info["goal"]))

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        angle = self.angle_to_goal(ops, d, info)
        position, _ = self._cube(d)
        distance = xp.sqrt(((d.site_xpos[..., self.palm, :] - position) ** 2).sum(axis=-1))
        joints, velocity = d.qpos[..., : self.nu], d.qvel[..., : self.nu]
        last, before = info["last_act"], info["last_last_act"]
        return {
            "orientation": tolerance(xp, angle, (0.0, 0.2), margin=np.pi, sigmoid="linear"),
            "position": tolerance(xp, distance, (0.0, 0.02), margin=0.05, sigmoid="linear"),
            "termination": self.terminated(ops, d, info).astype(angle.dtype),
            "hand_pose": ((joints - self.default_pose) ** 2).sum(axis=-1),
            "action_rate": ((action - last) ** 2).sum(axis=-1) + ((action - 2 * last + before) ** 2).sum(axis=-1),
            "joint_vel": ((velocity / 4.0) ** 2).sum(axis=-1),
            "energy": (xp.abs(velocity) * xp.abs(d.actuator_force)).sum(axis=-1),
            "success": (angle < self.config.success_threshold).astype(angle.dtype),
        }

    def reward(self, ops: Any, terms: dict[str, Any], info: Info) -> Any:
        shaped = sum(terms[k] * self.config.reward[k] for k in terms if k != "success")
        return shaped * self.dt + self.config.success_reward * terms["success"]

    def terminated(self, ops: Any, d: Any, info: Info) -> Any:
        position, _ = self._cube(d)
        return position[..., 2] < self.config.drop_height

    def update_info(self, ops: Any, d: Any, action: Any, info: Info) -> Info:
        xp = ops.xp
        success = self.angle_to_goal(ops, d, info) < self.config.success_threshold
        goal = xp.where(success[..., None], turned(ops, info["goal"], *self.config.goal_turn), info["goal"])
        return {
            **info,
            "goal": goal,
            "targets": self.next_targets(ops, action, info),
            "last_act": action,
            "last_last_act": info["last_act"],
            "successes": info["successes"] + success,
        }
