"""Do Menagerie's Spot, H1 and G1 load through our joystick tasks and stand on their servos?

    MENAGERIE_ROOT=<checkout> python experiments/playground/menagerie_check.py [--no-meshes]

For each robot whose `<robot>/scene.xml` is under MENAGERIE_ROOT: build the task's model (the
profile's feet, keyframe and, for H1 and G1, motors turned into position servos), start at the
keyframe, hold zero actions (servo targets at the keyframe's pose) for `--seconds`, and print a
Markdown row: sizes, the feet found, the root's height at the start and end, its uprightness
(the body z axis' vertical component), when it first tilts past 25 degrees, how many feet
touch the floor at the end, NaNs.

`--no-meshes` is for a checkout without its mesh files: every mesh geom becomes a 1 cm sphere
at its place that collides with nothing, and the mesh assets are dropped. The dynamics do not
change only if every body has an explicit `<inertial>` (otherwise MuJoCo computes inertia from
the geoms): the `inertials` column says whether all do. Meshes that collide (Spot's body and
legs, G1's links) are gone, so only the primitive geoms, the feet among them, touch the floor.
"""

from __future__ import annotations

import argparse

import mujoco
import numpy as np

from garagelab.playground import requirement
from garagelab.playground.tasks.biped import G1Joystick, H1Joystick
from garagelab.playground.tasks.go1 import Joystick
from garagelab.playground.tasks.spot import SpotJoystick

ROBOTS: dict[str, type[Joystick]] = {
    "SpotJoystickFlatTerrain": SpotJoystick,
    "H1JoystickFlatTerrain": H1Joystick,
    "G1JoystickFlatTerrain": G1Joystick,
}


def without_meshes(spec: mujoco.MjSpec) -> None:
    """Mesh geoms become small non-colliding spheres; mesh assets go (their files may be absent)."""
    for geom in spec.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH:
            geom.type, geom.meshname, geom.size = mujoco.mjtGeom.mjGEOM_SPHERE, "", [0.01, 0.0, 0.0]
            geom.contype = geom.conaffinity = 0
    for mesh in list(spec.meshes):
        spec.delete(mesh)


def explicit_inertials(task: Joystick) -> bool:
    """Whether every body of the source XML sets its own inertia (so placeholder geoms change nothing)."""
    spec = mujoco.MjSpec.from_file(task.model_source)
    return all(body.explicitinertial for body in spec.bodies[1:])


def check(name: str, task_class: type[Joystick], no_meshes: bool, seconds: float) -> str:
    if no_meshes:
        task_class = type(task_class.__name__, (task_class,), {"edit": staticmethod(without_meshes)})
    task = task_class()
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
        f"| {'all' if explicit_inertials(task) else 'NOT all'} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-meshes", action="store_true", help="replace mesh geoms by placeholders")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    print("| env | nq | nu | feet (in bodies) | root z start | root z end | upright end | tilts 25° | feet down | NaN |"
          " inertials |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, task_class in ROBOTS.items():
        needs = requirement(name)
        print(f"| {name} | {needs} |" if needs else check(name, task_class, args.no_meshes, args.seconds))


if __name__ == "__main__":
    main()
