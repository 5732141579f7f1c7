"""What every batched env offers besides reset/step: sizes, timesteps, the task it runs."""

from __future__ import annotations

import functools
from typing import Any

from garagelab.core.errors import UserError
from garagelab.playground.task import Task


def refuse_heightfields(task: Task, simulator: str) -> None:
    """A one-line error for terrain a GPU simulator collides differently from MuJoCo (each
    engine's comment says what was measured)."""
    if task.mj_model.nhfield:
        raise UserError(
            f"{type(task).__name__}: heightfield terrain runs on the CPU engine only "
            f"({simulator}'s heightfield contacts do not match MuJoCo's); use engine='cpu'"
        )


class BatchedEnv:
    """Base of both engines: N envs of one task, everything with a leading env axis."""

    task: Task
    num_envs: int
    xp: Any

    @property
    def action_size(self) -> int:
        return self.task.action_size

    @functools.cached_property
    def observation_size(self) -> int:
        from garagelab.playground.cpu_engine import CpuEngine

        # a one-env numpy reset: cheap, and it needs no compile on the MJX engine
        return int(CpuEngine(self.task, 1, nthread=1).reset(0).obs.shape[-1])

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """One env's observation: (size,) for a state vector, (H, W, C) for pixels."""
        return (self.observation_size,)

    @property
    def dt(self) -> float:
        return self.task.dt

    @property
    def n_substeps(self) -> int:
        return self.task.n_substeps

    @property
    def mj_model(self) -> Any:
        return self.task.mj_model
