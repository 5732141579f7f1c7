"""The MuJoCo Warp engine: N envs of a task on mujoco-warp (`nworld` = N), task logic in jax.numpy.

MuJoCo Warp (`mujoco-warp`, MuJoCo 4's GPU simulator) steps every world in Warp kernels: on an
NVIDIA GPU, or on the CPU through Warp's LLVM backend, which is how the tests here run it. The
physics stays in Warp's arrays between steps. The task's reset, observation and reward code is
the same Task class the other engines run, vmapped over envs in jax.numpy on zero-copy DLPack
views of those arrays.

A State's `data` is each env's integration state as (N, nstate) rows in MuJoCo's
`mjSTATE_INTEGRATION` layout (the CPU engine's layout too), so an older State can be stepped
again: a branch, a replay.

The views alias memory Warp writes, so every jax computation that reads them is finished
(`block_until_ready`) before Warp steps again.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from garagelab.core.errors import UserError
from garagelab.playground.env import BatchedEnv, refuse_heightfields
from garagelab.playground.mjx_engine import keyed_normal, masked_pick
from garagelab.playground.ops import JaxOps
from garagelab.playground.state import State, register_pytree
from garagelab.playground.task import Task

_ALWAYS = ("qpos", "qvel", "ctrl", "time")
_SIGNATURE = int(mujoco.mjtState.mjSTATE_INTEGRATION.value)


def warp_modules() -> tuple[Any, Any]:
    """`warp` and `mujoco_warp`, quiet, or a one-line error saying how to install them."""
    try:
        import warp

        warp.config.log_level = warp.LOG_WARNING  # before mujoco_warp's import initialises Warp
        import mujoco_warp
    except ImportError:
        raise UserError("the warp engine needs mujoco-warp: pip install 'mujoco-warp>=4'") from None
    return warp, mujoco_warp


def default_device() -> str:
    """The first CUDA GPU when Warp sees one, else Warp's CPU backend."""
    warp, _ = warp_modules()
    return "cuda:0" if warp.is_cuda_available() else "cpu"


class WarpEngine(BatchedEnv):
    """N envs on MuJoCo Warp: `reset(seed) -> State`, `step(state, actions (N, nu)) -> State`."""

    xp = jnp

    def __init__(
        self,
        task: Task,
        num_envs: int,
        randomization: dict[str, np.ndarray] | None = None,
        reset_mode: str = "full",
        device: str | None = None,
    ) -> None:
        # measured (2026-12-06, mujoco-warp 4.0 on Warp's CPU backend): the Go1 on rough terrain,
        # solver converged on both engines, differs from MuJoCo by 1.8 (relative) in its
        # observation within 5 control steps, where on flat ground it agrees to 6e-3
        refuse_heightfields(task, "MuJoCo Warp")
        self._wp, self._mjw = warp_modules()
        register_pytree()
        self.task = task
        self.num_envs = num_envs
        self.reset_mode = reset_mode
        self.device = self._wp.get_device(device or default_device())
        randomization = randomization or {}
        with self._wp.ScopedDevice(self.device):
            try:
                self.model = self._mjw.put_model(task.mj_model, batch_sizes=dict.fromkeys(randomization, num_envs))
            except NotImplementedError as exc:
                name = type(task).__name__
                raise UserError(f"{name}: MuJoCo Warp does not support {exc}; use engine='cpu'") from None
            for name, values in randomization.items():
                getattr(self.model, name).assign(np.asarray(values, np.float32))
            # a capped solver is the tasks' choice (Playground's Go1 runs one iteration); Warp
            # still warns when contacts or constraints overflow their buffers, as those drop physics
            limits = self._mjw.OverflowType.ITERATIONS | self._mjw.OverflowType.LS_ITERATIONS
            self.model.opt.warn_overflow &= ~limits
            self.data = self._mjw.make_data(task.mj_model, nworld=num_envs)
            self._rows = self._wp.zeros((num_envs, mujoco.mj_stateSize(task.mj_model, _SIGNATURE)), dtype=float)
            self._everyone = self._wp.ones(num_envs, dtype=bool)
        self._fields = tuple(dict.fromkeys((*_ALWAYS, *task.fields)))
        self._saved: Any = None  # the rows Warp holds now, as last handed out
        self._graph: Any = None  # on a GPU, the n_substeps physics steps captured once as a CUDA graph
        self._draw = jax.jit(jax.vmap(self._draw_one))
        self._look = jax.jit(jax.vmap(self._look_one))
        self._act = jax.jit(jax.vmap(self._act_one))
        self._transition = jax.jit(jax.vmap(self._transition_one))

    # --- one env (vmapped) ------------------------------------------------------------
    def _draw_one(self, key: Any) -> tuple[dict[str, Any], dict[str, Any], Any]:
        ops = JaxOps(key)
        fields, info = self.task.reset(ops)
        return {k: jnp.asarray(v, jnp.float32) for k, v in fields.items()}, info, ops.key

    def _look_one(self, view: dict[str, Any], info: dict[str, Any], key: Any) -> tuple[Any, dict, dict]:
        """What a fresh episode shows: the task's info after reset, first observation, zero metrics."""
        ops, d = JaxOps(key), SimpleNamespace(**view)
        info = self.task.after_reset(ops, d, info)
        obs, info = self.task.observe_all(ops, d, info)
        terms = self.task.rewards(ops, d, jnp.zeros(self.task.action_size), info)
        metrics = {f"reward/{k}": jnp.zeros(()) for k in terms}
        return obs.astype(jnp.float32), metrics, {**info, "rng": ops.key}

    def _act_one(self, info: dict[str, Any], action: Any) -> tuple[Any, Any, dict[str, Any]]:
        info = dict(info)
        ops = JaxOps(info.pop("rng"))
        ctrl = self.task.control(ops, action, info)
        push = self.task.push(ops, info)
        push = jnp.zeros((self.task.mj_model.nbody, 6)) if push is None else push
        return jnp.asarray(ctrl, jnp.float32), jnp.asarray(push, jnp.float32), {**info, "rng": ops.key}

    def _transition_one(self, view: dict[str, Any], action: Any, info: dict[str, Any]) -> tuple[Any, ...]:
        info = dict(info)
        ops = JaxOps(info.pop("rng"))
        obs, reward, done, metrics, info = self.task.transition(ops, SimpleNamespace(**view), action, info)
        info = {**info, "rng": ops.key}
        return obs.astype(jnp.float32), jnp.float32(reward), done.astype(jnp.float32), metrics, info

    # --- Warp's side ------------------------------------------------------------------
    def _view(self) -> dict[str, Any]:
        """Zero-copy jax views of the fields the task reads (3x3 frames as (..., 3, 3))."""
        return {name: self._wp.to_jax(getattr(self.data, name)) for name in self._fields}

    def _put(self, name: str, value: Any, where: Any = None) -> None:
        """Writes a jax (N, ...) array into Warp's field `name`: rows where `where` is set, else all."""
        target = getattr(self.data, name)
        current = self._wp.to_jax(target)
        value = jnp.reshape(jnp.asarray(value, jnp.float32), current.shape)
        if where is not None:
            value = jnp.where(jnp.reshape(where, (-1,) + (1,) * (value.ndim - 1)), value, current)
        self._wp.copy(target, self._wp.from_jax(jax.block_until_ready(value), dtype=target.dtype))

    def _save(self) -> Any:
        with self._wp.ScopedDevice(self.device):
            self._mjw.get_state(self.model, self.data, self._rows, _SIGNATURE)
            self._wp.synchronize_device(self.device)
        self._saved = jnp.array(self._wp.to_jax(self._rows), copy=True)
        return self._saved

    def _restore(self, state: State) -> None:
        # stepping from an older State (a branch, a replay) loads its rows first
        if state.data is not self._saved:
            self._load_rows(state.data, None)

    def _load_rows(self, rows: Any, mask: Any) -> None:
        wp = self._wp
        with wp.ScopedDevice(self.device):
            wp.copy(self._rows, wp.from_jax(jax.block_until_ready(jnp.asarray(rows, jnp.float32))))
            active = self._everyone if mask is None else wp.from_jax(jax.block_until_ready(jnp.asarray(mask, bool)))
            self._mjw.set_state(self.model, self.data, self._rows, _SIGNATURE, active)

    def _physics(self) -> None:
        """`n_substeps` of mjw.step on every world; on a GPU as one CUDA graph, captured on first use."""
        wp, mjw = self._wp, self._mjw
        with wp.ScopedDevice(self.device):
            if not self.device.is_cuda:
                for _ in range(self.task.n_substeps):
                    mjw.step(self.model, self.data)
                return
            if self._graph is None:
                mjw.get_state(self.model, self.data, self._rows, _SIGNATURE)
                mjw.step(self.model, self.data)  # compiles the kernels outside the capture
                with wp.ScopedCapture() as capture:  # records the launches without running them
                    for _ in range(self.task.n_substeps):
                        mjw.step(self.model, self.data)
                self._graph = capture.graph
                mjw.set_state(self.model, self.data, self._rows, _SIGNATURE, self._everyone)  # undo the warm-up
            wp.capture_launch(self._graph)
            wp.synchronize_device(self.device)

    def _start(self, fields: dict[str, Any], mask: Any) -> None:
        """Worlds in `mask` (all when None) cleared to the model's defaults, then set to `fields`."""
        wp, mjw = self._wp, self._mjw
        with wp.ScopedDevice(self.device):
            active = self._everyone if mask is None else wp.from_jax(jax.block_until_ready(jnp.asarray(mask, bool)))
            mjw.reset_data(self.model, self.data, active)
            for name, value in fields.items():
                self._put(name, value, mask)
            # forward runs on every world; for the others it recomputes what their next step recomputes
            mjw.forward(self.model, self.data)
            wp.synchronize_device(self.device)

    # --- the batch ----------------------------------------------------------------------
    def reset(self, seed: int | Any = 0) -> State:
        key = jax.random.PRNGKey(seed) if isinstance(seed, int) else seed
        state = self._started(*self._draw(jax.random.split(key, self.num_envs)))
        if self.reset_mode == "cached":
            task_info = {k: v for k, v in state.info.items() if k != "rng"}
            first = {"rows": state.data, "obs": state.obs, "info": task_info}
            state = state.replace(info={**state.info, "first_state": first})
        return state

    def _started(self, fields: dict[str, Any], info: dict[str, Any], keys: Any) -> State:
        """Every world started from `fields`, with its first observation (reward and done zero)."""
        self._start(fields, None)
        obs, metrics, info = jax.block_until_ready(self._look(self._view(), info, keys))
        nil = jnp.zeros(self.num_envs, jnp.float32)
        return State(self._save(), obs, nil, nil, metrics, info)

    def step(self, state: State, action: Any) -> State:
        """One control step (n_substeps physics steps) of every env."""
        self._restore(state)
        action = jnp.asarray(action, jnp.float32).reshape(self.num_envs, self.task.action_size)
        task_info = {k: v for k, v in state.info.items() if k != "first_state"}
        ctrl, push, task_info = self._act(task_info, action)
        with self._wp.ScopedDevice(self.device):
            self._put("ctrl", ctrl)
            if type(self.task).push is not Task.push:  # the task may push the robot
                self._put("xfrc_applied", push)
        self._physics()
        obs, reward, done, metrics, task_info = jax.block_until_ready(self._transition(self._view(), action, task_info))
        if "first_state" in state.info:
            task_info["first_state"] = state.info["first_state"]
        return State(self._save(), obs, reward, done, metrics, task_info)

    def reset_where(self, state: State, mask: Any) -> State:
        """`state` with the envs where `mask` is set started afresh (auto-reset)."""
        mask = jnp.asarray(mask) > 0
        if not bool(jnp.any(mask)):
            return state
        self._restore(state)
        info = dict(state.info)
        pick = masked_pick(mask)
        if self.reset_mode == "cached":  # back to each env's first state
            first = info["first_state"]
            self._load_rows(first["rows"], mask)
            obs = pick(first["obs"], state.obs)
            info.update({k: pick(v, info[k]) for k, v in first["info"].items()})
            return state.replace(data=self._save(), obs=obs, info=info)
        keys = jax.vmap(jax.random.split)(info["rng"])
        fields, fresh, _ = self._draw(keys[:, 0])
        self._start(fields, mask)
        obs, _, fresh = jax.block_until_ready(self._look(self._view(), fresh, keys[:, 1]))
        info.update({k: pick(v, info[k]) for k, v in fresh.items()})
        return state.replace(data=self._save(), obs=pick(obs, state.obs), info=info)

    def load_state(self, fields: dict[str, Any], info: dict[str, Any] | None = None, seed: int = 0) -> State:
        """A State from given physics (`qpos`, `qvel`, `mocap_pos`: (N, ...)) and task info, e.g. the CPU engine's."""
        keys = jax.random.split(jax.random.PRNGKey(seed), self.num_envs)
        fields = {k: jnp.asarray(v) for k, v in fields.items()}
        return self._started(fields, {k: jnp.asarray(v) for k, v in (info or {}).items()}, keys)

    def normal(self, state: State, shape: tuple[int, ...]) -> tuple[State, Any]:
        return keyed_normal(state, shape)
