"""Do Menagerie's Spot, H1, G1 and Panda load through our tasks, stand on their servos, and grip?

    MENAGERIE_ROOT=<checkout> python experiments/playground/menagerie_check.py [--no-meshes]

For each legged robot whose `<robot>/scene.xml` is under MENAGERIE_ROOT: build the task's model (the
profile's feet, keyframe and, for H1 and G1, motors turned into position servos), start at the
keyframe, hold zero actions (servo targets at the keyframe's pose) for `--seconds`, and print a
Markdown row: sizes, the feet found, the root's height at the start and end, its uprightness
(the body z axis' vertical component), when it first tilts past 25 degrees, how many feet
touch the floor at the end, NaNs.

For the Panda (`franka_emika_panda/mjx_single_cube.xml`, through PandaPickCube's profile), a
second table: hold the "home" keyframe under zero actions for `--seconds` (the arm's largest
joint drift, how far the gripper site and the cube moved), close the gripper for 1 s and open it
for 1 s (finger positions), then from Menagerie's "pickup" keyframe (fingers open around the
cube) close for 0.5 s (where the fingers stop: the cube is 4 cm wide) and move the arm's servo
targets to "home" over 1 s, held 0.5 s (the cube's height: lifted or not), and 100 random
actions through the task on the CPU engine (NaNs).

`--no-meshes` is for a checkout without its mesh files: every mesh geom becomes a 1 cm sphere
at its place that collides with nothing, and the mesh assets are dropped. The dynamics do not
change only if every body with a mesh geom has an explicit `<inertial>` (otherwise MuJoCo
computes inertia from the geoms): the `inertials` column says whether all do. Meshes that collide (Spot's body and
legs, G1's links) are gone, so only the primitive geoms, the feet among them, touch the floor.
The Panda's collision meshes collide with nothing in Menagerie's MJX model anyway (its finger
pads are boxes, its hand a capsule), so there the placeholders change no contact.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np

from garagelab.playground import Task, requirement
from garagelab.playground.cpu_engine import CpuEngine
from garagelab.playground.robots import keyframe, named
from garagelab.playground.tasks.arm import ArmPickCube
from garagelab.playground.tasks.biped import G1Joystick, H1Joystick
from garagelab.playground.tasks.go1 import Joystick
from garagelab.playground.tasks.panda import PandaPickCube
from garagelab.playground.tasks.spot import SpotJoystick

ROBOTS: dict[str, type[Joystick]] = {
    "SpotJoystickFlatTerrain": SpotJoystick,
    "H1JoystickFlatTerrain": H1Joystick,
    "G1JoystickFlatTerrain": G1Joystick,
}
ARMS: dict[str, type[ArmPickCube]] = {"PandaPickCube": PandaPickCube}


def without_meshes(spec: mujoco.MjSpec) -> None:
    """Mesh geoms become small non-colliding spheres; mesh assets go (their files may be absent)."""
    for geom in spec.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH:
            geom.type, geom.meshname, geom.size = mujoco.mjtGeom.mjGEOM_SPHERE, "", [0.01, 0.0, 0.0]
            geom.contype = geom.conaffinity = 0
    for mesh in list(spec.meshes):
        spec.delete(mesh)


def explicit_inertials(path: str) -> str:
    """Whether every body of the source XML with a mesh geom sets its own inertia (so placeholder
    geoms change no mass; the Panda scene's cube and target are boxes, their inertia from the geom)."""
    spec = mujoco.MjSpec.from_file(path)
    meshed = [body for body in spec.bodies[1:] if any(g.type == mujoco.mjtGeom.mjGEOM_MESH for g in body.geoms)]
    return "all" if all(body.explicitinertial for body in meshed) else "NOT all"


def build(task_class: type[Task], no_meshes: bool) -> Any:
    """The task on Menagerie's model, its mesh geoms replaced by placeholders if asked."""
    if no_meshes:
        task_class = type(task_class.__name__, (task_class,), {"edit": staticmethod(without_meshes)})
    return task_class()


def check(name: str, task_class: type[Joystick], no_meshes: bool, seconds: float) -> str:
    task = build(task_class, no_meshes)
    model = task.mj_model
    data = mujoco.MjData(model)
    data.qpos[:] = task.default_qpos
    data.ctrl[:] = task.default_pose  # zero actions
    mujoco.mj_forward(model, data)
    start, tilted = data.qpos[2], None
    for step in range(round(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)
        if tilted is None and data.xmat[task.trunk][8] < 0.9:  # 25 degrees
            tilted = (step + 1) * model.opt.timestep
    feet = [model.body(model.geom_bodyid[g]).name for g in task.feet]
    tilt = "never" if tilted is None else f"{tilted:.2f} s"
    down = int((data.geom_xpos[task.feet, 2] < task.foot_radius + 0.005).sum())
    finite = np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all()
    return (
        f"| {name} | {model.nq} | {model.nu} | {len(feet)}: {', '.join(feet)} | {start:.3f} | {data.qpos[2]:.3f} "
        f"| {data.xmat[task.trunk][8]:.3f} | {tilt} | {down}/{len(feet)} | {'no' if finite else 'YES'} "
        f"| {explicit_inertials(task.model_source)} |"
    )


def _run(model: mujoco.MjModel, data: mujoco.MjData, seconds: float) -> None:
    for _ in range(round(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)


def check_arm(name: str, task_class: type[ArmPickCube], no_meshes: bool, seconds: float) -> str:
    task = build(task_class, no_meshes)
    model, arm = task.mj_model, task.arm_joints
    gripper = named(model, mujoco.mjtObj.mjOBJ_ACTUATOR, task.robot.gripper_actuator)
    fingers = model.jnt_qposadr[model.eq_obj1id[0]], model.jnt_qposadr[model.eq_obj2id[0]]  # coupled by the equality
    data = mujoco.MjData(model)
    data.qpos[:], data.ctrl[:] = task.home_qpos, task.home_ctrl  # zero actions
    mujoco.mj_forward(model, data)
    site, cube, drift = data.site_xpos[task.gripper].copy(), data.xpos[task.box].copy(), 0.0
    for _ in range(round(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)
        drift = max(drift, float(np.abs(data.qpos[arm] - task.home_qpos[arm]).max()))
    moved = (
        1000 * np.linalg.norm(data.site_xpos[task.gripper] - site),
        1000 * np.linalg.norm(data.xpos[task.box] - cube),
    )
    ends = []
    for ctrl in (task.ctrl_low[gripper], task.ctrl_high[gripper]):
        data.ctrl[gripper] = ctrl
        _run(model, data, 1.0)
        ends.append("/".join(f"{data.qpos[f]:.3f}" for f in fingers))
    pickup = keyframe(model, "pickup")
    data.qpos[:], data.qvel[:], data.ctrl[:] = pickup.qpos, 0.0, pickup.ctrl
    data.ctrl[gripper] = task.ctrl_low[gripper]
    _run(model, data, 0.5)
    grip = "/".join(f"{data.qpos[f]:.3f}" for f in fingers)
    for i in range(1, 101):  # servo targets from the pickup pose to home's in 1 s
        data.ctrl[arm] = pickup.ctrl[arm] + i / 100 * (task.home_ctrl[arm] - pickup.ctrl[arm])
        _run(model, data, 0.01)
    _run(model, data, 0.5)
    lifted = data.xpos[task.box, 2]
    env = CpuEngine(task, 4, nthread=1)
    state, rng = env.reset(0), np.random.default_rng(0)
    for _ in range(100):
        state = env.step(state, rng.uniform(-1, 1, (4, env.action_size)))
    finite = np.isfinite(data.qpos).all() and np.isfinite(state.obs).all()
    return (
        f"| {name} | {model.nq} | {model.nu} | {len(arm)} | {drift:.3f} | {moved[0]:.1f} | {moved[1]:.1f} "
        f"| {ends[0]} | {ends[1]} | {grip} | {lifted:.3f} | {'no' if finite else 'YES'} "
        f"| {explicit_inertials(task.model_source)} |"
    )


LEGGED = ("| env | nq | nu | feet (in bodies) | root z start | root z end | upright end | tilts 25° | feet down"
          " | NaN | inertials |")  # fmt: skip
ARMED = ("| env | nq | nu | arm joints | hold: arm drift (rad) | gripper moved (mm) | cube moved (mm) | closed"
         " | opened | closed on cube | cube z after lift | NaN | inertials |")  # fmt: skip


def table(header: str, envs: dict[str, Any], check_env: Callable[..., str], args: argparse.Namespace) -> None:
    """A Markdown table: a row per env, or what the env needs to load."""
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, task_class in envs.items():
        needs = requirement(name)
        print(f"| {name} | {needs} |" if needs else check_env(name, task_class, args.no_meshes, args.seconds))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-meshes", action="store_true", help="replace mesh geoms by placeholders")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    table(LEGGED, ROBOTS, check, args)
    print()
    table(ARMED, ARMS, check_arm, args)


if __name__ == "__main__":
    main()
