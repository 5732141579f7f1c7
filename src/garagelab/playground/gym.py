"""Gymnasium interfaces to every registered env: one env (`GymEnv`) and a batch (`GymVectorEnv`).

With pixels (`pixels=True` or a `pixels.PixelSpec` among the load options) an observation is
a dict of the stacked frames ("pixels") and the state vector ("state", for an asymmetric
critic). Importing this module registers each variant as `garagelab/<Name>-v0`, so
`gymnasium.make("garagelab/CartpoleBalance-v0")` and `gymnasium.make_vec(...,
vectorization_mode="vector_entry_point")` work as for Gymnasium's own envs (Gymnasium 1.x has
no plugin entry points: `gymnasium.register_envs(garagelab.playground.gym)` documents the import).

The vector env resets finished envs in Gymnasium's default NEXT_STEP mode (the step after an
episode ends returns the new episode's first observation with reward 0 and the actions for
that env ignored: the mode the standard vector wrappers such as `NormalizeObservation` require)
or in SAME_STEP mode (the new episode's first observation at once, the last one in
`info["final_obs"]` and its info in `info["final_info"]`, so a truncated episode can be
bootstrapped). Seeds drive one generator for the batch: `reset(seed=None)` draws a fresh seed.
Actions of the wrong shape or with NaN/inf are refused with the env and shape named: a NaN
reaching MuJoCo would be zeroed or reset silently, hiding a diverged policy.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode

from garagelab.playground.registry import load, names

NAMESPACE = "garagelab"
VERSION = 0
AUTORESET_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
_SEED_RANGE = 2**31 - 1


def env_id(name: str) -> str:
    """The Gymnasium id of a registered variant: `garagelab/<name>-v0`."""
    return f"{NAMESPACE}/{name}-v{VERSION}"


def _spaces(env: Any) -> tuple[gymnasium.spaces.Space, gymnasium.spaces.Box]:
    """One env's spaces: a state Box, or with pixels a Dict of the frames and the state."""
    from garagelab.playground.wrappers import bottom

    actions = gymnasium.spaces.Box(-1.0, 1.0, (env.action_size,), np.float32)
    state = gymnasium.spaces.Box(-np.inf, np.inf, (bottom(env).observation_size,), np.float32)
    if len(env.observation_shape) == 1:
        return state, actions
    if env.pixel_spec.mode == "depth":
        frames = gymnasium.spaces.Box(0.0, np.inf, env.observation_shape, np.float32)
    else:
        frames = gymnasium.spaces.Box(0, 255, env.observation_shape, np.uint8)
    return gymnasium.spaces.Dict({"pixels": frames, "state": state}), actions


def _observations(state: Any) -> np.ndarray | dict[str, np.ndarray]:
    """A batch's observations as Gymnasium sees them: the array, or {"pixels", "state"} with pixels."""
    if "frames" not in state.info:
        return np.asarray(state.obs)
    return {"pixels": np.asarray(state.obs), "state": np.asarray(state.info["state_obs"])}


def _row(observations: np.ndarray | dict[str, np.ndarray], i: int) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(observations, dict):
        return {k: v[i].copy() for k, v in observations.items()}
    return observations[i].copy()


def checked_actions(actions: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    """`actions` as float32 of `shape`, or a ValueError naming what is wrong with them."""
    array = np.asarray(actions, np.float32)
    if array.shape != shape:
        raise ValueError(f"{where}: actions must have shape {shape} (envs x action size), got {array.shape}")
    if not np.isfinite(array).all():
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(array.reshape(-1, shape[-1])))[:, 0]})
        raise ValueError(f"{where}: actions are NaN or infinite for env(s) {bad}; a diverged policy?")
    return array


class GymEnv(gymnasium.Env):
    """One env of `name` on the CPU engine as a `gymnasium.Env` (passes `gymnasium.utils.env_checker.check_env`).

    `render_mode="rgb_array"` renders the current physics offscreen (`render_width` x `render_height`).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}  # noqa: RUF012

    def __init__(
        self,
        name: str,
        render_mode: str | None = None,
        render_width: int = 320,
        render_height: int = 240,
        **load_kwargs: Any,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r} is not supported; valid: None, 'rgb_array'")
        self.env = load(name, num_envs=1, auto_reset=False, **{"nthread": 1, **load_kwargs})
        self.name = name
        self.observation_space, self.action_space = _spaces(self.env)
        self.metadata = {**self.metadata, "render_fps": round(1 / self.env.dt)}
        self.render_mode = render_mode
        self._render_size = (render_width, render_height)
        self._camera: Any = None
        self._state: Any = None
        self._ended = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._state = self.env.reset(int(self.np_random.integers(_SEED_RANGE)))
        self._ended = False
        return _row(_observations(self._state), 0), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._state is None or self._ended:
            raise gymnasium.error.ResetNeeded("the episode has ended (or never began): call reset() before step()")
        action = checked_actions(action, self.action_space.shape, f"{env_id(self.name)}.step")
        self._state = state = self.env.step(self._state, action[None])
        truncated = bool(state.info["truncation"][0] > 0)
        terminated = bool(state.done[0] > 0) and not truncated
        self._ended = terminated or truncated
        info = {k: float(v[0]) for k, v in state.metrics.items()}
        return _row(_observations(state), 0), float(state.reward[0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        if self._state is None:
            raise gymnasium.error.ResetNeeded("call reset() before render()")
        from garagelab.playground.render import Camera
        from garagelab.playground.wrappers import bottom

        if self._camera is None:
            self._camera = Camera(self.env.mj_model, *self._render_size)
        physics = bottom(self.env).physics(self._state)
        return self._camera.frame({k: v[0] for k, v in physics.items()})

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None


class GymVectorEnv(gymnasium.vector.VectorEnv):
    """`load(name, engine, num_envs, ...)` behind Gymnasium's vector-env interface, numpy in and out.

    `autoreset_mode`: "next_step" (Gymnasium's default) or "same_step" (see the module docstring).
    """

    def __init__(
        self,
        name: str,
        num_envs: int = 1,
        engine: str = "cpu",
        autoreset_mode: str | AutoresetMode = "next_step",
        **load_kwargs: Any,
    ) -> None:
        if isinstance(autoreset_mode, AutoresetMode):
            autoreset_mode = autoreset_mode.value
        if autoreset_mode not in AUTORESET_MODES:
            raise ValueError(f"autoreset_mode {autoreset_mode!r} is not supported; valid: {', '.join(AUTORESET_MODES)}")
        self.metadata = {"autoreset_mode": AUTORESET_MODES[autoreset_mode]}
        self.env = load(name, engine=engine, num_envs=num_envs, auto_reset=False, **load_kwargs)
        self.name = name
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = _spaces(self.env)
        self.observation_space = gymnasium.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gymnasium.vector.utils.batch_space(self.single_action_space, num_envs)
        self._state: Any = None
        self._restart = np.zeros(num_envs, bool)  # NEXT_STEP: envs whose episode ended last step

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None and not isinstance(seed, int | np.integer):
            raise ValueError(f"seed must be one int for the whole batch (its envs share a generator), got {seed!r}")
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(int(seed))
        self._state = self.env.reset(int(self.np_random.integers(_SEED_RANGE)))
        self._restart[:] = False
        return _observations(self._state), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self._state is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        actions = checked_actions(actions, self.action_space.shape, f"{env_id(self.name)} x{self.num_envs}.step")
        state = self.env.step(self._state, actions)
        restarted = self._restart.copy()
        if restarted.any():  # NEXT_STEP: these envs ignore their actions and begin a new episode
            state = self.env.reset_where(state, restarted.astype(np.float32))
        ended = (np.asarray(state.done) > 0) & ~restarted
        truncated = ended & (np.asarray(state.info["truncation"]) > 0)
        reward = np.where(restarted, 0.0, np.asarray(state.reward)).astype(np.float32)
        info: dict[str, Any] = {k: np.where(restarted, 0, np.asarray(v)) for k, v in state.metrics.items()}
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
            if ended.any():
                info.update(self._final(state, ended))
                state = self.env.reset_where(state, ended.astype(np.float32))
        else:
            self._restart = ended
        self._state = state
        return _observations(state), reward, ended & ~truncated, truncated, info

    def _final(self, state: Any, ended: np.ndarray) -> dict[str, Any]:
        """SAME_STEP's record of the episodes that just ended, in Gymnasium's vector-info layout."""
        final_obs = np.full(self.num_envs, None, dtype=object)
        observations = _observations(state)
        for i in np.flatnonzero(ended):
            final_obs[i] = _row(observations, i)
        final_info: dict[str, Any] = {}
        for key, value in state.metrics.items():
            final_info[key] = np.where(ended, np.asarray(value), 0).astype(np.float32)
            final_info[f"_{key}"] = ended.copy()
        return {"final_obs": final_obs, "_final_obs": ended.copy(), "final_info": final_info, "_final_info": ended}


def register_all() -> None:
    """Register every variant as `garagelab/<Name>-v0` (done on import; repeated calls are no-ops)."""
    for name in names():
        if env_id(name) not in gymnasium.registry:
            gymnasium.register(
                id=env_id(name),
                entry_point=f"{__name__}:GymEnv",
                vector_entry_point=f"{__name__}:GymVectorEnv",
                kwargs={"name": name},
            )


register_all()
