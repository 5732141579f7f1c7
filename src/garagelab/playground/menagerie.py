"""Robot models: ours in the package, or MuJoCo Menagerie's when `MENAGERIE_ROOT` points at a checkout.

Nothing is downloaded, ever (Playground 0.2.0 git-cloned Menagerie at import). With
`MENAGERIE_ROOT=<dir>`, `<dir>/<robot>/<scene>` is used if it exists; otherwise the model
written here is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import mujoco

from garagelab.core.errors import UserError
from garagelab.playground.task import MODELS, load_model


def menagerie_path(robot: str, scene: str = "scene.xml") -> Path | None:
    """The Menagerie scene for `robot`, if `MENAGERIE_ROOT` is set and holds it."""
    root = os.environ.get("MENAGERIE_ROOT")
    if not root:
        return None
    if not Path(root).is_dir():
        raise UserError(f"MENAGERIE_ROOT={root} is not a directory; unset it to use the built-in models")
    path = Path(root) / robot / scene
    return path if path.is_file() else None


def robot_model(
    robot: str, ours: str, source: str = "auto", edit: Callable[[mujoco.MjSpec], None] | None = None
) -> tuple[mujoco.MjModel, str]:
    """The model and where it came from: `source` is auto (Menagerie if found), menagerie or ours;
    `edit` changes either's spec before it compiles."""
    if source not in ("auto", "menagerie", "ours"):
        raise UserError(f"model source {source!r}: valid are auto, menagerie, ours")
    found = menagerie_path(robot) if source != "ours" else None
    if found is not None:
        return load_model(found, edit), str(found)
    if source == "menagerie":
        raise UserError(f"model source menagerie: set MENAGERIE_ROOT to a checkout with {robot}/scene.xml")
    return load_model(MODELS / ours, edit), f"garagelab:{ours}"
