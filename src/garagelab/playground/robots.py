"""Robot profiles: what the tasks need to know about a model beyond its XML.

A profile says where the model comes from (ours in the package, a Menagerie folder's scene, or
both) and which keyframe the task starts from. A legged robot's profile (`Robot`) adds the
free-floating root body and the feet; an arm's (`Arm`) the gripper site, the cube and the
gripper's actuator. Menagerie's robots do not name things alike:
Go1's feet are named sphere geoms, Spot's are unnamed spheres in the lower-leg bodies, H1's and
G1's are unnamed capsules or spheres in the ankle bodies. So a foot is given either as a geom
name or as a body name, the foot being that body's lowest primitive collision geom at the
keyframe. H1 and G1 drive their joints with torque `<motor>`s; their profile's `Servos` turn
them into position servos so the same PD task runs on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np

from garagelab.core.errors import UserError

_PRIMITIVES = {
    int(t)
    for t in (
        mujoco.mjtGeom.mjGEOM_SPHERE,
        mujoco.mjtGeom.mjGEOM_CAPSULE,
        mujoco.mjtGeom.mjGEOM_BOX,
        mujoco.mjtGeom.mjGEOM_CYLINDER,
    )
}


@dataclasses.dataclass(frozen=True)
class Servos:
    """Position servos replacing a model's actuators, one per hinge joint in joint order.

    `kp` pairs a joint-name fragment with a stiffness (first match wins; "" matches all);
    `kv` or `dampratio` set the damping as MuJoCo's `position` actuator does (-1: unset). The
    old actuator's control range becomes the servo's force limit, the joint range its control
    range."""

    kp: tuple[tuple[str, float], ...]
    kv: float = -1.0
    dampratio: float = -1.0

    def stiffness(self, joint: str) -> float:
        for fragment, kp in self.kp:
            if fragment in joint:
                return kp
        raise UserError(f"joint {joint!r} has no servo gain; fragments: {', '.join(f for f, _ in self.kp)}")

    def apply(self, spec: mujoco.MjSpec) -> None:
        """Replace every actuator of `spec` by a position servo on its joint, in joint order
        (the task indexes actions, joint angles and torques alike)."""
        limits = {a.target: np.array(a.ctrlrange) for a in spec.actuators}
        for actuator in list(spec.actuators):
            spec.delete(actuator)
        for joint in spec.joints:
            if joint.type not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE):
                continue
            servo = spec.add_actuator(name=joint.name, target=joint.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
            servo.set_to_position(kp=self.stiffness(joint.name), kv=self.kv, dampratio=self.dampratio)
            servo.ctrlrange, servo.ctrllimited = joint.range, mujoco.mjtLimited.mjLIMITED_TRUE
            if joint.name in limits and limits[joint.name][0] < limits[joint.name][1]:
                servo.forcerange, servo.forcelimited = limits[joint.name], mujoco.mjtLimited.mjLIMITED_TRUE


@dataclasses.dataclass(frozen=True, kw_only=True)
class Profile:
    """Where a robot's model comes from: `ours` is a path under `models/`, `menagerie` a
    Menagerie folder holding `scene`; either may be missing, not both."""

    ours: str | None = None
    menagerie: str | None = None
    scene: str = "scene.xml"
    keyframe: str = "home"

    def sources(self) -> tuple[str, ...]:
        """The valid values of a task's `model` config for this robot."""
        if self.ours and self.menagerie:
            return ("auto", "menagerie", "ours")
        return ("ours",) if self.ours else ("menagerie",)

    def menagerie_edit(self) -> Callable[[mujoco.MjSpec], None] | None:
        """What Menagerie's model needs changed before the task can drive it (nothing by default)."""
        return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Robot(Profile):
    """A legged robot: its free-floating root body and its feet."""

    root: str
    feet: tuple[str, ...]  # geom names, or body names whose lowest primitive collision geom is the foot
    servos: Servos | None = None  # applied to Menagerie's model only

    def menagerie_edit(self) -> Callable[[mujoco.MjSpec], None] | None:
        return self.servos.apply if self.servos else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Arm(Profile):
    """An arm with a parallel gripper and a cube to pick: the site the task calls the gripper's
    position, the cube's body (it needs a free joint), and the actuator that opens and closes the
    fingers. Every other actuator drives one arm joint; actions map to actuators in model order."""

    gripper_site: str = "gripper"
    box: str = "box"
    gripper_actuator: str = "gripper"


# what an error calls each kind of named element, and the model's count of them
_KINDS = {
    mujoco.mjtObj.mjOBJ_SITE: ("site", "nsite"),
    mujoco.mjtObj.mjOBJ_BODY: ("body", "nbody"),
    mujoco.mjtObj.mjOBJ_ACTUATOR: ("actuator", "nu"),
    mujoco.mjtObj.mjOBJ_KEY: ("keyframe", "nkey"),
}


def named(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    """The id of the site, body, actuator or keyframe `name`, or a one-line error listing the
    model's names of that kind."""
    found = mujoco.mj_name2id(model, kind, name)
    if found < 0:
        what, count = _KINDS[kind]
        names = [mujoco.mj_id2name(model, kind, i) or "" for i in range(getattr(model, count))]
        raise UserError(f"the model has no {what} {name!r}; valid: {', '.join(n for n in names if n) or '(none)'}")
    return found


def keyframe(model: mujoco.MjModel, name: str) -> Any:
    """The named keyframe, or a one-line error listing the model's keyframes."""
    return model.keyframe(named(model, mujoco.mjtObj.mjOBJ_KEY, name))


def find_feet(model: mujoco.MjModel, robot: Robot) -> np.ndarray:
    """Foot geom ids: each of `robot.feet` is a geom name, or a body whose lowest primitive
    collision geom (at the robot's keyframe) is taken as the foot."""
    data = mujoco.MjData(model)
    data.qpos[:] = keyframe(model, robot.keyframe).qpos
    mujoco.mj_kinematics(model, data)
    collides = (model.geom_contype | model.geom_conaffinity) > 0
    primitive = np.isin(model.geom_type, list(_PRIMITIVES))
    feet = []
    for name in robot.feet:
        geom = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
        if geom < 0:
            body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
            if body < 0:
                raise UserError(f"foot {name!r} is neither a geom nor a body of the model")
            candidates = np.flatnonzero((model.geom_bodyid == body) & collides & primitive)
            if not len(candidates):
                raise UserError(f"body {name!r} has no sphere, capsule, box or cylinder collision geom to be its foot")
            geom = int(candidates[np.argmin(data.geom_xpos[candidates, 2])])
        feet.append(geom)
    return np.array(feet)


def check_joint_order(model: mujoco.MjModel) -> None:
    """The joystick tasks pair actuator i with the i-th joint after the free joint."""
    joints = model.actuator_trnid[:, 0]
    if model.nu != model.njnt - 1 or not np.array_equal(joints, np.arange(1, model.njnt)):
        raise UserError(
            f"the model's {model.nu} actuators must drive its {model.njnt - 1} joints one each, in joint order"
        )


GO1 = Robot(root="trunk", feet=("FR", "FL", "RR", "RL"), ours="quadruped/go1.xml", menagerie="unitree_go1")
BIPED = Robot(root="pelvis", feet=("left_foot", "right_foot"), ours="biped/biped.xml")
SPOT = Robot(root="body", feet=("fl_lleg", "fr_lleg", "hl_lleg", "hr_lleg"), menagerie="boston_dynamics_spot")
# Playground's h1_mjx.xml: Kp 200 hips, 40 ankles, 300 torso, 100 arms, damping ratio 1; its knees
# are 200 left, 300 right: 300 for both here, as in our biped
H1 = Robot(
    root="pelvis",
    feet=("left_ankle_link", "right_ankle_link"),
    menagerie="unitree_h1",
    servos=Servos(kp=(("ankle", 40.0), ("knee", 300.0), ("hip", 200.0), ("torso", 300.0), ("", 100.0)), dampratio=1.0),
)
# Playground's G1 (g1_mjx.xml): Kp 75, ankles 20, Kd 2; Menagerie's G1 has no "home" keyframe:
# "stand" (straight legs, pelvis at 0.75 m) is the one it has
G1 = Robot(
    root="pelvis",
    feet=("left_ankle_roll_link", "right_ankle_roll_link"),
    menagerie="unitree_g1",
    keyframe="stand",
    servos=Servos(kp=(("ankle", 20.0), ("", 75.0)), kv=2.0),
)

ARM = Arm(ours="arm/arm.xml")
# Menagerie's MJX scene (Playground's PandaPickCube uses its own copy): mjx_panda.xml, whose
# collision meshes collide with nothing (its finger pads and hand capsule are boxes and a
# capsule), a 4 x 4 x 6 cm cube "box", a mocap target and a "home" keyframe, gripper open;
# actuator8 drives the fingers, 0-0.04 m as ours (panda.xml's 0-255 gripper is not used)
PANDA = Arm(menagerie="franka_emika_panda", scene="mjx_single_cube.xml", gripper_actuator="actuator8")
