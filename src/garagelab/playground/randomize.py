"""Domain randomisation: per-env model fields drawn once, applied the same way on both engines.

The draws are made here in numpy from a seed, so the CPU engine (`Batch.expand`) and the MJX
engine (a model batched along the fields' first axis) simulate the very same N models.
Ranges default to Playground's Go1 ones.
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np


@dataclasses.dataclass(frozen=True)
class Randomization:
    """Ranges per env: scales multiply the model's value, offsets add to it."""

    friction: tuple[float, float] = (0.4, 1.0)  # sliding friction of every geom, absolute
    mass_scale: tuple[float, float] = (0.9, 1.1)  # every body
    damping_scale: tuple[float, float] = (0.9, 1.1)  # every dof
    armature_scale: tuple[float, float] = (1.0, 1.05)
    frictionloss_scale: tuple[float, float] = (0.9, 1.1)
    com_offset: float = 0.05  # metres, on the first body below the world (torso, cart, ...)


def sample(model: mujoco.MjModel, num_envs: int, spec: Randomization, seed: int = 0) -> dict[str, np.ndarray]:
    """Model fields with a leading env axis, ready for `Batch.expand` or an MJX batched model."""
    rng = np.random.default_rng(seed)

    def scale(field: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        factors = rng.uniform(*bounds, (num_envs, *field.shape))
        return field[None] * factors

    friction = np.repeat(model.geom_friction[None], num_envs, axis=0)
    friction[:, :, 0] = rng.uniform(*spec.friction, (num_envs, model.ngeom))
    ipos = np.repeat(model.body_ipos[None], num_envs, axis=0)
    if model.nbody > 1:
        ipos[:, 1] += rng.uniform(-spec.com_offset, spec.com_offset, (num_envs, 3))
    return {
        "geom_friction": friction,
        "body_mass": scale(model.body_mass, spec.mass_scale),
        "dof_damping": scale(model.dof_damping, spec.damping_scale),
        "dof_armature": scale(model.dof_armature, spec.armature_scale),
        "dof_frictionloss": scale(model.dof_frictionloss, spec.frictionloss_scale),
        "body_ipos": ipos,
    }
