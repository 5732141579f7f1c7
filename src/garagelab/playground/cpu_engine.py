"""The CPU engine: N envs of a task on `mujoco.batch.Batch`, task logic in numpy.

`mujoco.batch` (new in MuJoCo 4) steps many simulations of one model on a thread pool, bit
for bit as a loop of `mj_step` would, with live (N, ...) views of state and derived fields
and per-simulation model fields for domain randomisation. Python runs once per control step
for the whole batch, so the per-env cost is MuJoCo's C, not the interpreter's.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import mujoco
import mujoco.batch
import numpy as np

from garagelab.playground.env import BatchedEnv
from garagelab.playground.ops import NumpyOps
from garagelab.playground.state import State
from garagelab.playground.task import Task

_MATRICES = ("xmat", "ximat", "geom_xmat", "site_xmat", "cam_xmat")
_ALWAYS = ("qpos", "qvel", "ctrl", "time")


def _view(batch: mujoco.batch.Batch, names: tuple[str, ...]) -> SimpleNamespace:
    """Live arrays named as MjData's; 3x3 frames reshaped to MJX's (..., 3, 3)."""
    fields = {}
    for name in dict.fromkeys((*_ALWAYS, *names)):
        array = batch.bind(name)
        fields[name] = array.reshape(batch.nsim, -1, 3, 3) if name in _MATRICES else array
    return SimpleNamespace(**fields)


def _rows(view: SimpleNamespace, ids: np.ndarray) -> SimpleNamespace:
    return SimpleNamespace(**{name: value[ids] for name, value in vars(view).items()})


class CpuEngine(BatchedEnv):
    """N envs stepped together: `reset(seed) -> State`, `step(state, actions (N, nu)) -> State`."""

    xp = np

    def __init__(
        self,
        task: Task,
        num_envs: int,
        nthread: int = 0,
        randomization: dict[str, np.ndarray] | None = None,
        reset_mode: str = "full",
    ) -> None:
        self.task = task
        self.num_envs = num_envs
        self.reset_mode = reset_mode
        self.batch = mujoco.batch.Batch(task.mj_model, num_envs, nthread)
        self.view = _view(self.batch, task.fields)
        self.rng = np.random.default_rng(0)
        self._rows: np.ndarray | None = None  # the rows the batch holds now, as last handed out
        for name, values in (randomization or {}).items():
            self.batch.expand(name)[...] = values

    def _restore(self, state: State) -> None:
        # stepping from an older State (a branch, a replay) loads its rows first
        if state.data is not self._rows:
            self.batch.state[...] = state.data

    def _save(self) -> np.ndarray:
        self._rows = self.batch.state.copy()
        return self._rows

    def _initial(self, ops: NumpyOps, ids: np.ndarray | None) -> tuple[dict[str, Any], Any]:
        fields, info = self.task.reset(ops)
        self.batch.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        for name, value in fields.items():
            array = self.batch.bind(name)
            if ids is None:
                array[...] = value
            else:
                array[ids] = value
        self.batch.forward(ids)
        return fields, info

    def reset(self, seed: int | np.random.Generator | None = 0) -> State:
        """All N envs from the task's initial-state distribution."""
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        ops = NumpyOps(self.rng, self.num_envs)
        _, info = self._initial(ops, None)
        info = self.task.after_reset(ops, self.view, info)
        obs, info = self.task.observe_all(ops, self.view, info)
        zero = np.zeros((self.num_envs, self.task.action_size))
        terms = self.task.rewards(ops, self.view, zero, info)
        metrics = {f"reward/{k}": np.zeros(self.num_envs, np.float32) for k in terms}
        nil = np.zeros(self.num_envs, np.float32)
        obs = np.asarray(obs, np.float32)
        rows = self._save()
        if self.reset_mode == "cached":
            info = {**info, "first_state": {"rows": rows.copy(), "obs": obs.copy(), "info": dict(info)}}
        return State(rows, obs, nil, nil.copy(), metrics, info)

    def step(self, state: State, action: Any) -> State:
        """One control step (n_substeps physics steps) of every env."""
        self._restore(state)
        action = np.asarray(action, dtype=np.float64).reshape(self.num_envs, self.task.action_size)
        ops = NumpyOps(self.rng, self.num_envs)
        self.view.ctrl[...] = self.task.control(ops, action, state.info)
        push = self.task.push(ops, state.info)
        if push is not None:
            self.batch.bind("xfrc_applied")[...] = push
        before = self.view.time.copy()
        self.batch.step(nstep=self.task.n_substeps)
        obs, reward, done, metrics, info = self.task.transition(ops, self.view, action, state.info)
        # MuJoCo resets a simulation whose accelerations blow up (its clock restarts); MJX would
        # carry NaNs into `done` instead, so the episode ends here too
        done = done | (self.view.time < before + 0.5 * self.task.dt)
        metrics = {k: np.asarray(v, np.float32) for k, v in metrics.items()}
        return State(
            self._save(),
            np.asarray(obs, np.float32),
            np.asarray(reward, np.float32),
            np.asarray(done, np.float32),
            metrics,
            info,
        )

    def physics(self, state: State) -> dict[str, np.ndarray]:
        """The state's physics as (N, ...) arrays: qpos, qvel, mocap_pos (for `MjxEngine.load_state`)."""
        self._restore(state)
        fields = {"qpos": self.batch.qpos.copy(), "qvel": self.batch.qvel.copy()}
        if self.task.mj_model.nmocap:
            fields["mocap_pos"] = self.batch.mocap_pos.copy()
        return fields

    def reset_where(self, state: State, mask: Any) -> State:
        """`state` with the envs where `mask` is set started afresh (auto-reset)."""
        ids = np.flatnonzero(np.asarray(mask))
        if ids.size == 0:
            return state
        self._restore(state)
        obs = np.array(state.obs, copy=True)
        info = dict(state.info)
        if self.reset_mode == "cached":  # back to each env's first state: a copy, no forward
            first = info["first_state"]
            self.batch.state[ids] = first["rows"][ids]
            obs[ids] = first["obs"][ids]
            fresh = {k: np.asarray(v)[ids] for k, v in first["info"].items()}
        else:
            ops = NumpyOps(self.rng, ids.size)
            _, fresh = self._initial(ops, ids)
            rows = _rows(self.view, ids)
            fresh = self.task.after_reset(ops, rows, fresh)
            obs[ids], fresh = self.task.observe_all(ops, rows, fresh)
        for key, value in fresh.items():
            merged = np.array(info[key], copy=True)
            merged[ids] = value
            info[key] = merged
        return state.replace(data=self._save(), obs=obs, info=info)

    def normal(self, state: State, shape: tuple[int, ...]) -> tuple[State, np.ndarray]:
        """Standard normal draws per env (for wrappers), from the engine's Generator."""
        return state, self.rng.standard_normal((self.num_envs, *shape))
