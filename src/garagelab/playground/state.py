"""The immutable state a batched env hands back from `reset` and `step`."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class State:
    """One step of N envs: physics, and what a learner reads (all with a leading env axis).

    `data` is engine-owned: the CPU engine's (N, nstate) rows of MuJoCo's integration state,
    the MJX engine's batched `mjx.Data`. `done` is float (0/1), as in Playground.
    """

    data: Any
    obs: Any
    reward: Any
    done: Any
    metrics: dict[str, Any]
    info: dict[str, Any]

    def replace(self, **changes: Any) -> State:
        return dataclasses.replace(self, **changes)


_registered = False


def register_pytree() -> None:
    """Let jax see through State (jit/vmap/where over it); done once, when MJX is used."""
    global _registered
    if not _registered:
        import jax

        fields = [f.name for f in dataclasses.fields(State)]
        jax.tree_util.register_dataclass(State, data_fields=fields, meta_fields=[])
        _registered = True
