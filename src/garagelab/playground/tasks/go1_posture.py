"""Go1 posture tasks (Playground's Go1Getup, Go1Handstand, Go1Footstand) on our Go1.

These tasks touch the floor with more than the feet, so the model gets collision capsules for
the trunk, hips, thighs and calves (Playground's "full collisions" XML); they collide with the
floor only, like the feet. Capsules and spheres, not boxes: MJX's box-plane contacts do not
match MuJoCo's (the biped's feet showed it). Contacts are measured as the joystick task measures
its feet: a collision geom's lowest point within 5 mm of the floor, the same on every engine.

Reward terms and scales are Playground's; each task's docstring says where ours differs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import mujoco
import numpy as np

from garagelab.playground.config import EnvConfig
from garagelab.playground.menagerie import robot_model
from garagelab.playground.robots import GO1, keyframe
from garagelab.playground.task import DeltaTargets, Info, Task
from garagelab.playground.tasks.go1 import limit_violation, scaled_reward, scattered_start, set_pd_gains, soft_limits

LEGS = ("FR", "FL", "RR", "RL")  # the actuator order: three joints per leg
CONTACT_MARGIN = 0.005  # metres: a geom this close to the floor touches it


def add_collision_capsules(spec: mujoco.MjSpec) -> None:
    """Floor-only collision geoms for the trunk and every leg's hip, thigh and calf (named
    `<body>_collision`), sized to our Go1's visual boxes, cylinders and capsules."""

    def add(body: str, kind: mujoco.mjtGeom, size: float, fromto: list[float] | None = None) -> None:
        geom = spec.body(body).add_geom(name=f"{body}_collision", type=kind, size=[size, 0, 0], mass=0)
        geom.contype, geom.conaffinity, geom.condim, geom.group = 1, 0, 3, 3
        if fromto is not None:
            geom.fromto = fromto

    capsule, sphere = mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_SPHERE
    add("trunk", capsule, 0.055, [-0.135, 0, 0, 0.135, 0, 0])
    for leg in LEGS:
        add(f"{leg}_hip", sphere, 0.046)
        add(f"{leg}_thigh", capsule, 0.025, [0, 0, -0.02, 0, 0, -0.19])
        add(f"{leg}_calf", capsule, 0.015, [0, 0, -0.02, 0, 0, -0.18])


@dataclasses.dataclass(frozen=True)
class PostureConfig(EnvConfig):
    ctrl_dt: float = 0.02
    sim_dt: float = 0.004
    kp: float = 35.0
    kd: float = 0.5
    soft_joint_limit: float = 0.95


class Go1Posture(Task):
    """What the posture tasks share: the full-collision Go1, its PD servos, soft joint limits,
    the IMU frame, contacts, and the asymmetric critic's extra inputs."""

    config_class = PostureConfig
    fields = ("xmat", "site_xpos", "site_xmat", "geom_xpos", "geom_xmat", "actuator_force", "qacc")

    def build_model(self) -> mujoco.MjModel:
        model, self.model_source = robot_model(GO1, "ours", add_collision_capsules)
        set_pd_gains(model, self.config.kp, self.config.kd)
        return model

    def setup(self) -> None:
        model = self.mj_model
        self.trunk = model.body("trunk").id
        self.imu = model.site("imu").id
        self.default_qpos = keyframe(model, "home").qpos.copy()
        self.default_pose = self.default_qpos[7:]
        self.low, self.high = model.jnt_range[1:].T.copy()
        self.soft_low, self.soft_high = soft_limits(model, self.config.soft_joint_limit)

    def geoms(self, names: list[str]) -> np.ndarray:
        return np.array([self.mj_model.geom(name).id for name in names])

    def touching(self, ops: Any, d: Any, geoms: np.ndarray) -> Any:
        """Whether each of `geoms` (spheres and capsules) is within CONTACT_MARGIN of the floor (..., n)."""
        xp, model = ops.xp, self.mj_model
        capsule = model.geom_type[geoms] == mujoco.mjtGeom.mjGEOM_CAPSULE
        radius, half = model.geom_size[geoms, 0], model.geom_size[geoms, 1] * capsule
        axis_z = d.geom_xmat[..., geoms, 2, 2]  # world z of each geom's long axis
        lowest = d.geom_xpos[..., geoms, 2] - xp.abs(axis_z) * half - radius
        return lowest < CONTACT_MARGIN

    def gravity(self, d: Any) -> Any:
        """World -z in the trunk's frame: (0, 0, -1) when upright."""
        return -d.xmat[..., self.trunk, 2, :]

    def height(self, d: Any) -> Any:
        return d.site_xpos[..., self.imu, 2]

    def privileged(self, ops: Any, d: Any, obs: Any, info: Info) -> Any:
        """The observation plus the simulator's truth: trunk height, world velocity, torques."""
        xp = ops.xp
        return xp.concatenate([obs, self.height(d)[..., None], d.qvel[..., :6], d.actuator_force], axis=-1)

    def reward(self, ops: Any, terms: dict[str, Any], info: Info) -> Any:
        return scaled_reward(ops, terms, self.config.reward, self.dt)


def _getup_scales() -> dict[str, float]:
    return {
        "orientation": 1.0,
        "torso_height": 1.0,
        "posture": 1.0,
        "stand_still": 1.0,
        "action_rate": -0.001,
        "dof_pos_limits": -0.1,
        "torques": -1e-5,
        "dof_acc": -2.5e-7,
        "dof_vel": -0.1,
    }


@dataclasses.dataclass(frozen=True)
class GetupConfig(PostureConfig):
    episode_length: int = 300
    action_scale: float = 0.5
    drop_probability: float = 0.6  # of starting as dropped from 0.5 m, tumbled; else from home
    settle_time: float = 0.5  # seconds each start falls and settles before the episode
    start_bank: int = 1024  # settled starts drawn at setup; each reset picks one
    start_seed: int = 0
    # metres, the IMU's height when standing: Playground's 0.275 is Menagerie's Go1; ours, held
    # at home by its Kp 35 servos, sags to 0.250 (measured), so its gate is set just below
    target_height: float = 0.245
    reward: dict[str, float] = dataclasses.field(default_factory=_getup_scales)


class Getup(Go1Posture):
    """Get up from a fall and stand still in the home pose (Playground's Go1Getup).

    Observation (42): angular velocity and gravity in the trunk frame, joint angles relative to
    home, joint velocities, the last action. Action: joint targets = current joint angles + 0.5 *
    action. Reward: upright (exp(-2 |g - (0,0,-1)|^2)), height (exp(min(h, 0.245)) - 1), the
    home pose once upright, zero actions once upright at height, and small costs.

    Where ours differs: Playground drops each robot and simulates 0.5 s of settling inside
    every reset; here `start_bank` starts are dropped and settled once at setup (MuJoCo, on the
    CPU) and a reset draws one of them, which keeps resets engine-free and cheap.
    """

    config_class = GetupConfig

    def setup(self) -> None:
        super().setup()
        self.starts = self._settled_starts()

    def _settled_starts(self) -> np.ndarray:
        """(start_bank, nq + nv) states after `settle_time` of falling with the joints held."""
        import mujoco.batch

        c, model = self.config, self.mj_model
        n = c.start_bank
        rng = np.random.default_rng(c.start_seed)
        qpos = np.repeat(self.default_qpos[None], n, axis=0)
        dropped = rng.uniform(size=n) < c.drop_probability
        quat = rng.standard_normal((n, 4))
        qpos[dropped, 2] = 0.5
        qpos[dropped, 3:7] = quat[dropped] / np.linalg.norm(quat[dropped], axis=1, keepdims=True)
        qpos[dropped, 7:] = rng.uniform(self.low, self.high, (int(dropped.sum()), model.nu))
        qvel = np.zeros((n, model.nv))
        qvel[:, :6] = rng.uniform(-0.5, 0.5, (n, 6))
        batch = mujoco.batch.Batch(model, n, 0)
        batch.qpos[...], batch.qvel[...], batch.ctrl[...] = qpos, qvel, qpos[:, 7:]
        batch.forward()
        batch.step(nstep=round(c.settle_time / c.sim_dt))
        return np.concatenate([batch.qpos, batch.qvel], axis=1).copy()

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp, nq, nu = ops.xp, self.mj_model.nq, self.mj_model.nu
        pick = xp.clip(xp.floor(ops.uniform((), 0.0, len(self.starts))), 0, len(self.starts) - 1).astype("int32")
        state = xp.asarray(self.starts)[pick]
        zero = ops.full((nu,), 0.0)
        return {"qpos": state[..., :nq], "qvel": state[..., nq:]}, {
            "joints": state[..., 7:nq],
            "last_act": zero,
            "last_last_act": zero,
        }

    def control(self, ops: Any, action: Any, info: Info) -> Any:
        return info["joints"] + self.config.action_scale * action

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        parts = [d.qvel[..., 3:6], self.gravity(d), d.qpos[..., 7:] - self.default_pose, d.qvel[..., 6:]]
        return xp.concatenate([*parts, info["last_act"]], axis=-1)

    def upright_gates(self, ops: Any, d: Any) -> tuple[Any, Any]:
        """(upright, upright and at the target height) as 0/1 floats."""
        error = ((self.gravity(d) - np.array([0.0, 0.0, -1.0])) ** 2).sum(axis=-1)
        upright = error < 0.01
        tall = self.config.target_height - ops.xp.minimum(self.height(d), self.config.target_height) < 0.005
        return upright.astype(error.dtype), (upright & tall).astype(error.dtype)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        joints, torques = d.qpos[..., 7:], d.actuator_force
        upright, gate = self.upright_gates(ops, d)
        tilt = ((self.gravity(d) - np.array([0.0, 0.0, -1.0])) ** 2).sum(axis=-1)
        last, before = info["last_act"], info["last_last_act"]
        overspeed = xp.maximum(xp.abs(d.qvel[..., 6:]) - 2 * math.pi, 0.0)
        return {
            "orientation": xp.exp(-2.0 * tilt),
            "torso_height": xp.exp(xp.minimum(self.height(d), self.config.target_height)) - 1.0,
            "posture": upright * xp.exp(-0.5 * ((joints - self.default_pose) ** 2).sum(axis=-1)),
            "stand_still": gate * xp.exp(-0.5 * (action**2).sum(axis=-1)),
            "action_rate": ((action - last) ** 2).sum(axis=-1) + ((action - 2 * last + before) ** 2).sum(axis=-1),
            "torques": xp.sqrt((torques**2).sum(axis=-1)) + xp.abs(torques).sum(axis=-1),
            "dof_pos_limits": limit_violation(xp, joints, self.soft_low, self.soft_high),
            "dof_acc": (d.qacc[..., 6:] ** 2).sum(axis=-1),
            "dof_vel": (overspeed**2).sum(axis=-1),
        }

    def update_info(self, ops: Any, d: Any, action: Any, info: Info) -> Info:
        return {**info, "joints": d.qpos[..., 7:], "last_act": action, "last_last_act": info["last_act"]}


def _stand_scales() -> dict[str, float]:
    return {
        "height": 1.0,
        "orientation": 1.0,
        "contact": -0.1,
        "action_rate": 0.0,
        "termination": 0.0,
        "dof_pos_limits": -0.5,
        "torques": 0.0,
        "pose": -0.1,
        "stay_still": 0.0,
        "energy": 0.0,
        "dof_acc": 0.0,
    }


@dataclasses.dataclass(frozen=True)
class HandstandConfig(PostureConfig):
    episode_length: int = 500
    action_scale: float = 0.3
    soft_joint_limit: float = 0.9
    target_height: float = 0.55  # metres, the IMU's height in the stand
    reward: dict[str, float] = dataclasses.field(default_factory=_stand_scales)


class Handstand(DeltaTargets, Go1Posture):
    """Stand on the front legs, trunk vertical and head down (Playground's Go1Handstand).

    Observation (45): the trunk's linear and angular velocity and gravity in its frame, joint
    angles relative to home, joint velocities, the last action. Action: joint targets = the
    last targets + 0.3 * action. Reward: height (exp(-(0.55 - min(h, 0.55)))), the trunk's
    forward axis along `forward` (((cos + 1) / 2)^2), costs for the lifted legs' feet touching
    the floor, for their pose leaving home, and for joint limits. An episode ends when the
    trunk turns over (its up axis below -0.25) or a standing leg's hip, thigh or calf touches
    the floor.

    Where ours differs: targets are clipped to the actuators' range as they accumulate
    (Playground adds to `data.ctrl`, which MuJoCo clamps only when applying it, so its targets
    can wander outside the range).
    """

    config_class = HandstandConfig
    standing = ("FR", "FL")  # the legs it stands on
    forward = (0.0, 0.0, -1.0)  # where the trunk's x axis should point

    def setup(self) -> None:
        super().setup()
        lifted = [leg for leg in LEGS if leg not in self.standing]
        self.lifted_feet = self.geoms(lifted)
        self.standing_links = self.geoms(
            [f"{leg}_{part}_collision" for leg in self.standing for part in ("hip", "thigh", "calf")]
        )
        self.lifted_joints = np.array([3 * LEGS.index(leg) + j for leg in lifted for j in range(3)])

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        qpos, qvel = scattered_start(ops, self.default_qpos)
        return {"qpos": qpos, "qvel": qvel}, {"targets": qpos[..., 7:], "last_act": ops.full((self.mj_model.nu,), 0.0)}

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        linvel = xp.einsum("...ji,...j->...i", d.xmat[..., self.trunk, :, :], d.qvel[..., :3])
        parts = [linvel, d.qvel[..., 3:6], self.gravity(d), d.qpos[..., 7:] - self.default_pose, d.qvel[..., 6:]]
        return xp.concatenate([*parts, info["last_act"]], axis=-1)

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp = ops.xp
        joints, torques = d.qpos[..., 7:], d.actuator_force
        target = self.config.target_height
        forward = d.site_xmat[..., self.imu, :, 0]  # the IMU's x axis in the world
        cosine = (forward * np.asarray(self.forward)).sum(axis=-1)
        pose_error = (joints[..., self.lifted_joints] - self.default_pose[self.lifted_joints]) ** 2
        return {
            "height": xp.exp(-(target - xp.minimum(self.height(d), target))),
            "orientation": (0.5 * cosine + 0.5) ** 2,
            "contact": self.touching(ops, d, self.lifted_feet).any(axis=-1).astype(joints.dtype),
            "action_rate": ((action - info["last_act"]) ** 2).sum(axis=-1),
            "termination": self.terminated(ops, d, info).astype(joints.dtype),
            "dof_pos_limits": limit_violation(xp, joints, self.soft_low, self.soft_high),
            "torques": (torques**2).sum(axis=-1),
            "pose": pose_error.sum(axis=-1),
            "stay_still": (d.qvel[..., :2] ** 2).sum(axis=-1) + d.qvel[..., 5] ** 2,
            "energy": (xp.abs(d.qvel[..., 6:]) * xp.abs(torques)).sum(axis=-1),
            "dof_acc": (d.qacc[..., 6:] ** 2).sum(axis=-1),
        }

    def terminated(self, ops: Any, d: Any, info: Info) -> Any:
        turned_over = d.site_xmat[..., self.imu, 2, 2] < -0.25  # the IMU's up axis, world z
        return turned_over | self.touching(ops, d, self.standing_links).any(axis=-1)

    def update_info(self, ops: Any, d: Any, action: Any, info: Info) -> Info:
        return {**info, "targets": self.next_targets(ops, action, info), "last_act": action}


@dataclasses.dataclass(frozen=True)
class FootstandConfig(HandstandConfig):
    target_height: float = 0.53


class Footstand(Handstand):
    """Stand on the hind legs, head up (Playground's Go1Footstand): Handstand with the legs swapped."""

    config_class = FootstandConfig
    standing = ("RR", "RL")
    forward = (0.0, 0.0, 1.0)
