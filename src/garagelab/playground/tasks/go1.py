"""Go1 joystick (Playground's `Go1JoystickFlatTerrain`): follow velocity commands on flat ground.

Observation (48): base linear velocity and angular velocity in the body frame, gravity in the
body frame, joint angles relative to the default pose, joint velocities, the last action and
the command (vx, vy, yaw rate). Action: joint targets = default pose + 0.5 * action, tracked by
position actuators (Kp 35, Kd 0.5). Reward: Playground's terms and scales, summed times dt and
clipped at 0. Feet touch the floor when their centre is within 5 mm of their radius; foot
velocities are finite differences over a control step, which both engines compute alike.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import mujoco
import numpy as np

from garagelab.playground.config import EnvConfig
from garagelab.playground.menagerie import robot_model
from garagelab.playground.robots import GO1, Robot, check_joint_order, find_feet, keyframe
from garagelab.playground.task import Info, Task


def _sum(x: Any) -> Any:
    """Sum over the last axis as a method call: numpy's and jax's arrays both have it, and it skips
    numpy's function-dispatch overhead, which dominates at one env."""
    return x.sum(axis=-1)


def set_pd_gains(model: mujoco.MjModel, kp: float, kd: float) -> None:
    """Playground's PD gains on whichever model: position actuators are Kp (q* - q) - Kd qdot."""
    model.actuator_gainprm[:, 0] = kp
    model.actuator_biasprm[:, 1] = -kp
    model.actuator_biasprm[:, 2] = -kd


def soft_limits(model: mujoco.MjModel, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """The hinge joints' ranges (all but the free joint) shrunk about their middles to `fraction`
    (Playground's soft joint limits: the cost starts before the hard stop)."""
    low, high = model.jnt_range[1:].T
    middle, half = (low + high) / 2, (high - low) / 2 * fraction
    return middle - half, middle + half


def limit_violation(xp: Any, joints: Any, low: np.ndarray, high: np.ndarray) -> Any:
    """How far the joints are outside [low, high], summed over the joints (the dof_pos_limits cost)."""
    return (xp.clip(low - joints, 0, None) + xp.clip(joints - high, 0, None)).sum(axis=-1)


def scaled_reward(ops: Any, terms: dict[str, Any], scales: dict[str, float], dt: float, clip: bool = True) -> Any:
    """Playground's locomotion reward: the scaled terms summed, times dt, clipped at 0 (the
    quadruped's; its bipeds leave it unclipped, `clip=False`, so a fall costs)."""
    total = sum(terms[k] * scales[k] for k in terms) * dt
    return ops.xp.clip(total, 0.0, 10000.0) if clip else total


def scattered_start(ops: Any, home: np.ndarray) -> tuple[Any, Any]:
    """(qpos, qvel) at home moved up to 0.5 m in x and y, turned to a random heading, with a
    root velocity drawn from U(-0.5, 0.5) in each of its six components (Playground's resets)."""
    xp = ops.xp
    base = ops.full((len(home),), home)
    yaw = ops.uniform((), -math.pi, math.pi)
    quat = xp.stack([xp.cos(yaw / 2), 0 * yaw, 0 * yaw, xp.sin(yaw / 2)], axis=-1)
    qpos = xp.concatenate([base[..., :2] + ops.uniform((2,), -0.5, 0.5), base[..., 2:3], quat, base[..., 7:]], axis=-1)
    root = ops.uniform((6,), -0.5, 0.5)
    return qpos, xp.concatenate([root, 0 * base[..., 7:]], axis=-1)


def _scales() -> dict[str, float]:
    return {
        "tracking_lin_vel": 1.0,
        "tracking_ang_vel": 0.5,
        "lin_vel_z": -0.5,
        "ang_vel_xy": -0.05,
        "orientation": -5.0,
        "dof_pos_limits": -1.0,
        "pose": 0.5,
        "termination": -1.0,
        "stand_still": -1.0,
        "torques": -0.0002,
        "action_rate": -0.01,
        "energy": -0.001,
        "feet_clearance": -2.0,
        "feet_height": -0.2,
        "feet_slip": -0.1,
        "feet_air_time": 0.1,
    }


@dataclasses.dataclass(frozen=True)
class JoystickConfig(EnvConfig):
    ctrl_dt: float = 0.02
    sim_dt: float = 0.004
    episode_length: int = 1000
    model: str = "auto"  # auto (Menagerie's Go1 when MENAGERIE_ROOT has it), menagerie, ours
    kp: float = 35.0
    kd: float = 0.5
    action_scale: float = 0.5
    soft_joint_limit: float = 0.95
    tracking_sigma: float = 0.25
    max_foot_height: float = 0.1
    command_resample_steps: int = 500
    lin_vel_x: tuple[float, float] = (-1.5, 1.5)
    lin_vel_y: tuple[float, float] = (-0.8, 0.8)
    ang_vel_yaw: tuple[float, float] = (-1.2, 1.2)
    reward: dict[str, float] = dataclasses.field(default_factory=_scales)
    # pushes (Playground's `pert_config`): a horizontal half-sine force on the trunk every
    # push_interval seconds, lasting push_duration, worth push_velocity m/s to the free robot
    pushes: bool = False
    push_interval: tuple[float, float] = (1.0, 3.0)
    push_duration: tuple[float, float] = (0.05, 0.2)
    push_velocity: tuple[float, float] = (0.1, 1.0)


class Joystick(Task):
    """A legged robot that walks at commanded body-frame velocities (Go1 here; Spot in spot.py,
    bipeds in biped.py): the robot's profile says where its root, feet and home pose are."""

    config_class = JoystickConfig
    fields = ("xmat", "geom_xpos", "actuator_force")
    robot: ClassVar[Robot] = GO1
    leg_pose_weights: tuple[float, ...] = (1.0, 1.0, 0.1)  # per joint of a leg, repeated over the legs
    edit = None  # a change to the model's spec before it compiles (terrain: see RoughJoystick)

    def build_model(self) -> mujoco.MjModel:
        model, self.model_source = robot_model(self.robot, self.config.model, self.edit)
        set_pd_gains(model, self.config.kp, self.config.kd)
        return model

    def setup(self) -> None:
        model = self.mj_model
        check_joint_order(model)
        self.trunk = model.body(self.robot.root).id
        self.feet = find_feet(model, self.robot)
        foot = self.feet[0]
        box = model.geom_type[foot] == mujoco.mjtGeom.mjGEOM_BOX.value
        self.foot_radius = float(model.geom_size[foot, 2] if box else model.geom_size[foot, 0])  # centre height
        self.default_qpos = keyframe(model, self.robot.keyframe).qpos.copy()
        self.default_pose = self.default_qpos[7:]
        self.soft_low, self.soft_high = soft_limits(model, self.config.soft_joint_limit)
        self.pose_weights = np.resize(self.leg_pose_weights, model.nu)
        c = self.config
        self.command_low, self.command_high = np.array([c.lin_vel_x, c.lin_vel_y, c.ang_vel_yaw]).T
        self.robot_mass = float(model.body_subtreemass[self.trunk])
        self.trunk_row = (np.arange(model.nbody) == self.trunk).astype(float)[:, None]  # (nbody, 1)

    # --- reset ------------------------------------------------------------------------
    def _command(self, ops: Any) -> Any:
        return ops.uniform((3,), self.command_low, self.command_high)

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        xp = ops.xp
        nu, nf = self.mj_model.nu, len(self.feet)
        qpos, qvel = scattered_start(ops, self.default_qpos)
        qpos = xp.concatenate([qpos[..., :7], qpos[..., 7:] * ops.uniform((nu,), 0.5, 1.5)], axis=-1)
        info = {
            "command": self._command(ops),
            "command_steps": ops.full((), 0.0),
            "last_act": ops.full((nu,), 0.0),
            "feet_air_time": ops.full((nf,), 0.0),
            "last_contact": ops.full((nf,), 0.0),
            "swing_peak": ops.full((nf,), 0.0),
            "last_feet_pos": ops.full((nf, 3), 0.0),  # set by after_reset
        }
        if self.config.pushes:
            info |= {"push_clock": ops.full((), 0.0), **self._next_push(ops)}
        return {"qpos": qpos, "qvel": qvel}, info

    # --- pushes ------------------------------------------------------------------------
    def _next_push(self, ops: Any) -> Info:
        """When the next push starts (seconds on `push_clock`), how long it lasts, and its peak force."""
        xp, c = ops.xp, self.config
        duration = ops.uniform((), *c.push_duration)
        angle = ops.uniform((), -math.pi, math.pi)
        # a half-sine pulse of peak F over T gives an impulse of 2 F T / pi = m dv
        peak = math.pi * self.robot_mass * ops.uniform((), *c.push_velocity) / (2 * duration)
        direction = xp.stack([xp.cos(angle), xp.sin(angle), 0 * angle], axis=-1)
        return {
            "push_start": ops.uniform((), *c.push_interval),
            "push_duration": duration,
            "push_force": peak[..., None] * direction,
        }

    def push(self, ops: Any, info: Info) -> Any:
        if not self.config.pushes:
            return None
        xp = ops.xp
        into = info["push_clock"] - info["push_start"]
        on = (into >= 0) & (into < info["push_duration"])
        profile = xp.where(on, xp.sin(math.pi * xp.clip(into / info["push_duration"], 0, 1)), 0.0)
        wrench = xp.concatenate([profile[..., None] * info["push_force"], 0 * info["push_force"]], axis=-1)
        return self.trunk_row * wrench[..., None, :]  # (..., nbody, 6): on the trunk only

    def _advance_pushes(self, ops: Any, info: Info) -> Info:
        xp = ops.xp
        clock = info["push_clock"] + self.dt
        done = clock >= info["push_start"] + info["push_duration"]  # this push is over: plan the next
        fresh = self._next_push(ops)
        planned = {k: xp.where(done[..., None] if v.ndim > done.ndim else done, v, info[k]) for k, v in fresh.items()}
        return {**info, **planned, "push_clock": xp.where(done, 0.0, clock)}

    def after_reset(self, ops: Any, d: Any, info: Info) -> Info:
        return {**info, "last_feet_pos": d.geom_xpos[..., self.feet, :]}

    # --- control and observation ------------------------------------------------------
    def control(self, ops: Any, action: Any, info: Info) -> Any:
        return self.default_pose + self.config.action_scale * action

    def _frame(self, d: Any) -> Any:
        return d.xmat[..., self.trunk, :, :]  # body-to-world rotation

    def _local_linvel(self, ops: Any, d: Any) -> Any:
        return ops.xp.einsum("...ji,...j->...i", self._frame(d), d.qvel[..., :3])

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        xp = ops.xp
        gravity = -self._frame(d)[..., 2, :]  # world -z in the body frame: row 2 of R
        return xp.concatenate(
            [
                self._local_linvel(ops, d),
                d.qvel[..., 3:6],
                gravity,
                d.qpos[..., 7:] - self.default_pose,
                d.qvel[..., 6:],
                info["last_act"],
                info["command"],
            ],
            axis=-1,
        )

    def privileged(self, ops: Any, d: Any, obs: Any, info: Info) -> Any:
        """The observation plus what only a simulator knows: height, world velocity, motor
        torques, foot contacts, air times and heights (an asymmetric critic's input)."""
        return ops.xp.concatenate(
            [
                obs,
                d.qpos[..., 2:3],
                d.qvel[..., :3],
                d.actuator_force,
                info["last_contact"],
                info["feet_air_time"],
                self._feet_height(ops, d.geom_xpos[..., self.feet, :]),
            ],
            axis=-1,
        )

    # --- reward -----------------------------------------------------------------------
    def ground(self, ops: Any, xy: Any) -> Any:
        """The ground's height under points (..., 2): flat here (see RoughJoystick)."""
        return 0.0

    def _feet_height(self, ops: Any, pos: Any) -> Any:
        return pos[..., 2] - self.ground(ops, pos[..., :2])

    def _feet(self, ops: Any, d: Any, info: Info) -> tuple[Any, Any, Any, Any]:
        """Foot positions (..., feet, 3), heights above the ground, contact flags and horizontal
        speeds (..., feet)."""
        xp = ops.xp
        pos = d.geom_xpos[..., self.feet, :]
        height = self._feet_height(ops, pos)
        contact = (height < self.foot_radius + 0.005).astype(pos.dtype)
        velocity = (pos - info["last_feet_pos"]) / self.dt
        speed = xp.sqrt(_sum(velocity[..., :2] ** 2) + 1e-12)
        return pos, height, contact, speed

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        xp, c = ops.xp, self.config
        frame = self._frame(d)
        local_vel = self._local_linvel(ops, d)
        angvel_local = d.qvel[..., 3:6]
        angvel_world = xp.einsum("...ij,...j->...i", frame, angvel_local)
        command = info["command"]
        joints = d.qpos[..., 7:]
        torques = d.actuator_force
        _, height, contact, speed = self._feet(ops, d, info)
        first_contact = contact * (1 - info["last_contact"]) * (info["feet_air_time"] > 0)
        moving = xp.sqrt(_sum(command**2)) > 0.01
        fell = self.terminated(ops, d, info)
        return {
            "tracking_lin_vel": xp.exp(-_sum((command[..., :2] - local_vel[..., :2]) ** 2) / c.tracking_sigma),
            "tracking_ang_vel": xp.exp(-((command[..., 2] - angvel_local[..., 2]) ** 2) / c.tracking_sigma),
            "lin_vel_z": d.qvel[..., 2] ** 2,
            "ang_vel_xy": _sum(angvel_world[..., :2] ** 2),
            "orientation": _sum(frame[..., 2, :2] ** 2),
            "dof_pos_limits": limit_violation(xp, joints, self.soft_low, self.soft_high),
            "pose": xp.exp(-_sum((joints - self.default_pose) ** 2 * self.pose_weights)),
            "termination": fell.astype(local_vel.dtype),
            "stand_still": _sum(xp.abs(joints - self.default_pose)) * (~moving),
            "torques": xp.sqrt(_sum(torques**2)) + _sum(xp.abs(torques)),
            "action_rate": _sum((action - info["last_act"]) ** 2),
            "energy": _sum(xp.abs(d.qvel[..., 6:]) * xp.abs(torques)),
            "feet_clearance": _sum(xp.abs(height - c.max_foot_height) * speed * (1 - contact)),
            "feet_height": _sum((info["swing_peak"] / c.max_foot_height - 1) ** 2 * first_contact),
            "feet_slip": _sum(speed**2 * contact),
            "feet_air_time": _sum((info["feet_air_time"] - 0.1) * first_contact) * moving,
        }

    def reward(self, ops: Any, terms: dict[str, Any], info: Info) -> Any:
        return scaled_reward(ops, terms, self.config.reward, self.dt)

    def terminated(self, ops: Any, d: Any, info: Info) -> Any:
        return self._frame(d)[..., 2, 2] < 0  # upside down

    def update_info(self, ops: Any, d: Any, action: Any, info: Info) -> Info:
        xp = ops.xp
        pos, height, contact, _ = self._feet(ops, d, info)
        landed = contact * (1 - info["last_contact"]) * (info["feet_air_time"] > 0)
        steps = info["command_steps"] + 1
        resample = steps >= self.config.command_resample_steps
        if self.config.pushes:
            info = self._advance_pushes(ops, info)
        return {
            **info,
            "command": xp.where(resample[..., None], self._command(ops), info["command"]),
            "command_steps": xp.where(resample, 0.0, steps),
            "last_act": action,
            "feet_air_time": (info["feet_air_time"] + self.dt) * (1 - contact),
            "swing_peak": xp.maximum(info["swing_peak"], height) * (1 - landed),
            "last_contact": contact,
            "last_feet_pos": pos,
        }


@dataclasses.dataclass(frozen=True)
class ForwardJoystickConfig(JoystickConfig):
    """Forward commands only (0.3 to 1 m/s, no sideways or turning): the quadruped task that a
    2-core CPU learns within an hour. Without slow commands, standing still earns little."""

    lin_vel_x: tuple[float, float] = (0.3, 1.0)
    lin_vel_y: tuple[float, float] = (0.0, 0.0)
    ang_vel_yaw: tuple[float, float] = (0.0, 0.0)


class ForwardJoystick(Joystick):
    config_class = ForwardJoystickConfig


TERRAIN_HALF_SIDE = 10.0  # metres: the heightfield is a 20 m square around the origin


@dataclasses.dataclass(frozen=True)
class RoughConfig(JoystickConfig):
    """Playground's rough-terrain variant: bumps up to `terrain_height` on a 20 x 20 m field."""

    terrain_height: float = 0.05  # metres, the highest bump
    terrain_seed: int = 0
    terrain_cells: int = 128  # height samples per side
    terrain_flat_radius: float = 1.0  # metres of flat ground around the start


class RoughJoystick(Joystick):
    """The joystick task on a heightfield of smooth random bumps (Playground's
    Go1JoystickRoughTerrain loads a fixed PNG; ours is drawn from `terrain_seed`). The plane
    stays under it, so a robot walking off the field's 20 m square lands on flat ground; the
    middle (`terrain_flat_radius`), where robots start, is flat. Foot contacts and heights are
    measured from the terrain under each foot (bilinear in the height samples: within 1 mm of
    MuJoCo's surface)."""

    config_class = RoughConfig

    def setup(self) -> None:
        super().setup()
        cells, top = self.config.terrain_cells, self.config.terrain_height
        self.terrain = self.mj_model.hfield_data.reshape(cells, cells) * top  # metres, as MuJoCo has them

    def ground(self, ops: Any, xy: Any) -> Any:
        xp, last = ops.xp, self.config.terrain_cells - 1
        grid = xp.asarray(self.terrain)
        u = (xy[..., 0] + TERRAIN_HALF_SIDE) / (2 * TERRAIN_HALF_SIDE) * last  # column: x
        v = (xy[..., 1] + TERRAIN_HALF_SIDE) / (2 * TERRAIN_HALF_SIDE) * last  # row: y
        outside = (u < 0) | (u > last) | (v < 0) | (v > last)
        i, j = xp.clip(xp.floor(u), 0, last - 1).astype("int32"), xp.clip(xp.floor(v), 0, last - 1).astype("int32")
        fu, fv = xp.clip(u - i, 0, 1), xp.clip(v - j, 0, 1)
        top = grid[j, i] * (1 - fu) + grid[j, i + 1] * fu
        bottom = grid[j + 1, i] * (1 - fu) + grid[j + 1, i + 1] * fu
        return xp.where(outside, 0.0, top * (1 - fv) + bottom * fv)

    def edit(self, spec: mujoco.MjSpec) -> None:
        c = self.config
        field = spec.add_hfield(name="terrain", nrow=c.terrain_cells, ncol=c.terrain_cells)
        field.size = [TERRAIN_HALF_SIDE, TERRAIN_HALF_SIDE, c.terrain_height, 0.01]
        field.userdata = terrain_heights(c.terrain_cells, c.terrain_seed, c.terrain_flat_radius).ravel().tolist()
        floor = spec.geom("floor")
        floor.pos = [0.0, 0.0, -0.01]  # under the field: a foot on the terrain touches one surface only
        spec.worldbody.add_geom(
            name="terrain",
            type=mujoco.mjtGeom.mjGEOM_HFIELD,
            hfieldname="terrain",
            contype=floor.contype,
            conaffinity=floor.conaffinity,
            condim=floor.condim,
            material=floor.material,
        )


def terrain_heights(cells: int, seed: int, flat_radius: float = 1.0) -> np.ndarray:
    """(cells, cells) heights in [0, 1]: coarse random values smoothly interpolated (bumps of
    about 0.6 m), zero within `flat_radius` of the centre and at full height 1 m further out."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0.0, 1.0, (33, 33))
    axis = np.linspace(0, 32, cells)
    rows = np.array([np.interp(axis, np.arange(33), row) for row in coarse])
    heights = np.array([np.interp(axis, np.arange(33), column) for column in rows.T]).T
    metres = np.linspace(-TERRAIN_HALF_SIDE, TERRAIN_HALF_SIDE, cells)
    radius = np.hypot(*np.meshgrid(metres, metres))
    return heights * np.clip(radius - flat_radius, 0.0, 1.0)
