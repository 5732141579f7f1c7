"""The GPU engine: N envs of a task on MJX (`impl="jax"`), task logic in jax.numpy, jit + vmap.

The same Task class as the CPU engine runs here per env under `vmap`. Two functions are
compiled per (task, num_envs): reset and step; the step scans `n_substeps` of `mjx.step`.
Domain randomisation batches the model's fields (in_axes 0 on those, None elsewhere), as
Playground does.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from mujoco import mjx

from garagelab.playground.env import BatchedEnv, refuse_heightfields
from garagelab.playground.ops import JaxOps
from garagelab.playground.state import State, register_pytree
from garagelab.playground.task import Task


class MjxEngine(BatchedEnv):
    """N envs on MJX: `reset(seed) -> State`, `step(state, actions (N, nu)) -> State`, jitted."""

    xp = jnp

    def __init__(
        self,
        task: Task,
        num_envs: int,
        randomization: dict[str, np.ndarray] | None = None,
        reset_mode: str = "full",
    ) -> None:
        # measured (2026-11-27, mujoco-mjx with MuJoCo 4.0): a Go1 on a 0.1 mm heightfield
        # already differs from MuJoCo after one control step (joint velocities by ~20 rad/s)
        refuse_heightfields(task, "MJX")
        register_pytree()
        self.task = task
        self.num_envs = num_envs
        self.reset_mode = reset_mode
        self.model = mjx.put_model(task.mj_model, impl="jax")
        self._data0 = mjx.make_data(self.model, impl="jax")
        model_axes = None
        if randomization:
            axes = jax.tree_util.tree_map(lambda _: None, self.model)
            self.model = self.model.tree_replace({k: jnp.asarray(v) for k, v in randomization.items()})
            model_axes = axes.tree_replace(dict.fromkeys(randomization, 0))
        self._model_axes = model_axes
        self._reset = jax.jit(jax.vmap(self._reset_one, in_axes=(model_axes, 0)))
        self._step = jax.jit(jax.vmap(self._step_one, in_axes=(model_axes, 0, 0)))
        self._reset_where = jax.jit(self._reset_where_batch)

    # --- one env (vmapped) ------------------------------------------------------------
    def _reset_one(self, model: Any, key: Any) -> State:
        ops = JaxOps(key)
        fields, info = self.task.reset(ops)
        data = self._data0.replace(**{k: jnp.asarray(v, self._data0.qpos.dtype) for k, v in fields.items()})
        data = mjx.forward(model, data)
        info = self.task.after_reset(ops, data, info)
        obs, info = self.task.observe_all(ops, data, info)
        terms = self.task.rewards(ops, data, jnp.zeros(self.task.action_size), info)
        metrics = {f"reward/{k}": jnp.zeros(()) for k in terms}
        info = {**info, "rng": ops.key}
        return State(data, obs.astype(jnp.float32), jnp.zeros(()), jnp.zeros(()), metrics, info)

    def _step_one(self, model: Any, state: State, action: Any) -> State:
        info = dict(state.info)
        ops = JaxOps(info.pop("rng"))
        data = state.data.replace(ctrl=self.task.control(ops, action, info))
        push = self.task.push(ops, info)
        if push is not None:
            data = data.replace(xfrc_applied=jnp.asarray(push, data.xfrc_applied.dtype))
        data = jax.lax.fori_loop(0, self.task.n_substeps, lambda _, d: mjx.step(model, d), data)
        obs, reward, done, metrics, info = self.task.transition(ops, data, action, info)
        info = {**info, "rng": ops.key}
        return State(data, obs.astype(jnp.float32), jnp.float32(reward), done.astype(jnp.float32), metrics, info)

    def _reset_where_batch(self, model: Any, state: State, mask: Any) -> State:
        pick = masked_pick(mask)
        info = dict(state.info)
        if self.reset_mode == "cached":  # Playground's default: back to the env's first state, no forward
            first = info["first_state"]
            info.update({k: pick(v, info[k]) for k, v in first["info"].items()})
            data = jax.tree_util.tree_map(pick, first["data"], state.data)
            return state.replace(data=data, obs=pick(first["obs"], state.obs), info=info)
        keys = jax.vmap(lambda k: jax.random.split(k))(state.info["rng"])
        fresh = jax.vmap(self._reset_one, in_axes=(self._model_axes, 0))(model, keys[:, 0])
        info.update({k: pick(v, info[k]) for k, v in fresh.info.items()})
        info["rng"] = keys[:, 1]
        return state.replace(
            data=jax.tree_util.tree_map(pick, fresh.data, state.data),
            obs=pick(fresh.obs, state.obs),
            info=info,
        )

    def _load_one(self, model: Any, fields: dict[str, Any], info: dict[str, Any], key: Any) -> State:
        ops = JaxOps(key)
        data = self._data0.replace(**{k: v.astype(self._data0.qpos.dtype) for k, v in fields.items()})
        data = mjx.forward(model, data)
        info = self.task.after_reset(ops, data, info)
        obs, info = self.task.observe_all(ops, data, info)
        terms = self.task.rewards(ops, data, jnp.zeros(self.task.action_size), info)
        metrics = {f"reward/{k}": jnp.zeros(()) for k in terms}
        return State(data, obs.astype(jnp.float32), jnp.zeros(()), jnp.zeros(()), metrics, {**info, "rng": ops.key})

    def load_state(self, fields: dict[str, Any], info: dict[str, Any] | None = None, seed: int = 0) -> State:
        """A State from given physics (`qpos`, `qvel`, `mocap_pos`: (N, ...)) and task info, e.g. the CPU engine's."""
        keys = jax.random.split(jax.random.PRNGKey(seed), self.num_envs)
        fields = {k: jnp.asarray(v) for k, v in fields.items()}
        info = {k: jnp.asarray(v) for k, v in (info or {}).items()}
        if not hasattr(self, "_load"):
            self._load = jax.jit(jax.vmap(self._load_one, in_axes=(self._model_axes, 0, 0, 0)))
        return self._load(self.model, fields, info, keys)

    # --- the batch ----------------------------------------------------------------------
    def reset(self, seed: int | Any = 0) -> State:
        key = jax.random.PRNGKey(seed) if isinstance(seed, int) else seed
        state = self._reset(self.model, jax.random.split(key, self.num_envs))
        if self.reset_mode == "cached":
            task_info = {k: v for k, v in state.info.items() if k != "rng"}
            first = {"data": state.data, "obs": state.obs, "info": task_info}
            state = state.replace(info={**state.info, "first_state": first})
        return state

    def step(self, state: State, action: Any) -> State:
        return self._step(self.model, state, jnp.asarray(action, jnp.float32))

    def reset_where(self, state: State, mask: Any) -> State:
        return self._reset_where(self.model, state, jnp.asarray(mask) > 0)

    def normal(self, state: State, shape: tuple[int, ...]) -> tuple[State, Any]:
        return keyed_normal(state, shape)


def masked_pick(mask: Any) -> Any:
    """`pick(new, old)`: per env (leading axis), `new` where `mask` is set, else `old`."""

    def pick(new: Any, old: Any) -> Any:
        return jnp.where(jnp.reshape(mask, mask.shape + (1,) * (jnp.ndim(old) - 1)), new, old)

    return pick


def keyed_normal(state: State, shape: tuple[int, ...]) -> tuple[State, Any]:
    """Standard normal draws per env (for wrappers), from each env's key in `info["rng"]`."""
    keys = jax.vmap(jax.random.split)(state.info["rng"])
    noise = jax.vmap(lambda k: jax.random.normal(k, shape))(keys[:, 0])
    return state.replace(info={**state.info, "rng": keys[:, 1]}), noise
