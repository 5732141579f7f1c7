"""Robot models: ours in the package, or MuJoCo Menagerie's when `MENAGERIE_ROOT` points at a checkout.

Nothing is downloaded, ever (Playground 0.2.0 git-cloned Menagerie at import). With
`MENAGERIE_ROOT=<dir>`, `<dir>/<robot>/<scene>` (the profile's scene, `scene.xml` for most) is
used if it exists; otherwise the model written here is, and a robot with no model of ours (Spot,
H1, G1, the Panda) is a one-line error.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import mujoco

from garagelab.core.errors import UserError
from garagelab.playground.robots import Profile
from garagelab.playground.task import MODELS, load_model

Edit = Callable[[mujoco.MjSpec], None]


def menagerie_path(robot: str, scene: str) -> Path | None:
    """The Menagerie scene for `robot`, if `MENAGERIE_ROOT` is set and holds it."""
    root = os.environ.get("MENAGERIE_ROOT")
    if not root:
        return None
    if not Path(root).is_dir():
        raise UserError(f"MENAGERIE_ROOT={root} is not a directory; unset it to use the built-in models")
    path = Path(root) / robot / scene
    return path if path.is_file() else None


def _needs(robot: Profile) -> str:
    return f"set MENAGERIE_ROOT to a checkout with {robot.menagerie}/{robot.scene}"


def missing(robot: Profile) -> str:
    """Why `robot` cannot load now ('' when it can): only a robot without a model of ours needs Menagerie."""
    if robot.ours or menagerie_path(str(robot.menagerie), robot.scene) is not None:
        return ""
    return f"needs Menagerie: {_needs(robot)}"


def _chain(*edits: Edit | None) -> Edit | None:
    active = [edit for edit in edits if edit is not None]
    if not active:
        return None

    def run(spec: mujoco.MjSpec) -> None:
        for edit in active:
            edit(spec)

    return run


def robot_model(robot: Profile, source: str = "auto", edit: Edit | None = None) -> tuple[mujoco.MjModel, str]:
    """The model and where it came from: `source` is auto (Menagerie if found), menagerie or ours,
    as far as the robot has them; `edit` changes either's spec before it compiles (after the
    profile's own edit (H1's and G1's servos), on Menagerie's)."""
    valid = robot.sources()
    if source not in valid:
        raise UserError(f"model source {source!r}: valid are {', '.join(valid)}")
    found = menagerie_path(robot.menagerie, robot.scene) if robot.menagerie and source != "ours" else None
    if found is not None:
        return load_model(found, _chain(robot.menagerie_edit(), edit)), str(found)
    if source == "menagerie":
        raise UserError(f"model source menagerie: {_needs(robot)}")
    return load_model(MODELS / str(robot.ours), edit), f"garagelab:{robot.ours}"
