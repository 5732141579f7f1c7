"""The task base class: model, reset distribution, controls, observations, rewards, termination.

A task never touches an engine. It gets `ops` (array namespace plus random draws, see
`ops.py`) and `d`, a view of the simulation with MjData's field names (`qpos`, `xpos`,
`xmat` as (..., nbody, 3, 3), ...). On the CPU engine `d`'s arrays carry a leading env axis;
on MJX they are one env's, under vmap. Code indexes from the right (`[..., i]`) and reduces
over `axis=-1`, so one definition serves both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import mujoco

from garagelab.core.errors import UserError
from garagelab.playground.config import EnvConfig

MODELS = Path(__file__).resolve().parent / "models"

Info = dict[str, Any]


def load_model(path: Path | str, edit: Callable[[mujoco.MjSpec], None] | None = None) -> mujoco.MjModel:
    """An MjModel from an XML file, after `edit` changed its spec (add terrain, say); a bad path
    or a broken file is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    try:
        if edit is None:
            return mujoco.MjModel.from_xml_path(str(path))
        spec = mujoco.MjSpec.from_file(str(path))
        edit(spec)
        return spec.compile()
    except ValueError as exc:
        raise UserError(f"model file {path} does not load: {' '.join(str(exc).split())}") from None


class Task:
    """One control problem, written once against an array namespace."""

    config_class: ClassVar[type] = EnvConfig
    # derived MjData fields the task reads (the CPU engine copies out only these)
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None) -> None:
        self.config = config if config is not None else self.default_config()
        self.mj_model = self.build_model()
        self.mj_model.opt.timestep = self.config.sim_dt
        # energy is a diagnostic that MJX does not implement; both engines run without it
        self.mj_model.opt.enableflags &= ~int(mujoco.mjtEnableBit.mjENBL_ENERGY.value)
        off = int(mujoco.mjtDisableBit.mjDSBL_CONTACT.value) | int(mujoco.mjtDisableBit.mjDSBL_CONSTRAINT.value)
        if self.mj_model.opt.disableflags & off:
            # no contacts either way; MJX would still refuse geom pairs it cannot collide (ellipsoid-box)
            self.mj_model.geom_contype[:] = 0
            self.mj_model.geom_conaffinity[:] = 0
        ratio = self.config.ctrl_dt / self.config.sim_dt
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-6:
            raise UserError(f"ctrl_dt {self.config.ctrl_dt} must be a whole multiple of sim_dt {self.config.sim_dt}")
        self.n_substeps = round(ratio)
        self.setup()

    @classmethod
    def default_config(cls) -> Any:
        """The task's defaults; `load(name, overrides)` replaces dotted keys of it."""
        return cls.config_class()

    # --- to implement -------------------------------------------------------------------
    def build_model(self) -> mujoco.MjModel:
        raise NotImplementedError

    def setup(self) -> None:
        """Cache ids and constants from `self.mj_model` (names resolved once, not per step)."""

    def reset(self, ops: Any) -> tuple[dict[str, Any], Info]:
        """Initial state fields (`qpos`, `qvel`, optionally `mocap_pos`) and the task's info."""
        raise NotImplementedError

    def observe(self, ops: Any, d: Any, info: Info) -> Any:
        raise NotImplementedError

    def rewards(self, ops: Any, d: Any, action: Any, info: Info) -> dict[str, Any]:
        """Reward terms by name, each reported in `metrics["reward/<name>"]`."""
        raise NotImplementedError

    def after_reset(self, ops: Any, d: Any, info: Info) -> Info:
        """Info that needs the initial state's kinematics (foot positions, say); default: as is."""
        return info

    def privileged(self, ops: Any, d: Any, obs: Any, info: Info) -> Any:
        """What an asymmetric critic sees (Playground's `privileged_state`), or None for the obs alone."""
        return None

    def observe_all(self, ops: Any, d: Any, info: Info) -> tuple[Any, Info]:
        """The observation, with the critic's `info["privileged_obs"]` where the task has one."""
        obs = self.observe(ops, d, info)
        extra = self.privileged(ops, d, obs, info)
        return obs, info if extra is None else {**info, "privileged_obs": extra}

    # --- defaults ---------------------------------------------------------------------
    def control(self, ops: Any, action: Any, info: Info) -> Any:
        """Actuator controls for an action in [-1, 1]; DM Control passes it straight through."""
        return action

    def push(self, ops: Any, info: Info) -> Any:
        """External forces and torques on the bodies during the coming control step ((..., nbody,
        6), MuJoCo's `xfrc_applied`), or None (the default): nothing pushes the robot."""
        return None

    def reward(self, ops: Any, terms: dict[str, Any], info: Info) -> Any:
        """The scalar reward from the terms: their sum unless the task weighs them."""
        return sum(terms.values())

    def terminated(self, ops: Any, d: Any, info: Info) -> Any:
        """Early termination (falls); DM Control tasks only stop at the episode limit."""
        return ops.xp.zeros(d.qpos.shape[:-1], dtype=bool)

    def update_info(self, ops: Any, d: Any, action: Any, info: Info) -> Info:
        """The info after a step (last action, commands, air times); the default keeps it."""
        return info

    # --- engine-facing ----------------------------------------------------------------
    def transition(self, ops: Any, d: Any, action: Any, info: Info) -> tuple[Any, Any, Any, dict[str, Any], Info]:
        """Everything a step computes after physics: obs, reward, done, metrics, info."""
        xp = ops.xp
        terms = self.rewards(ops, d, action, info)
        reward = self.reward(ops, terms, info)
        info = self.update_info(ops, d, action, info)
        obs, info = self.observe_all(ops, d, info)
        unstable = ~xp.isfinite(d.qpos).all(axis=-1) | ~xp.isfinite(d.qvel).all(axis=-1)
        done = self.terminated(ops, d, info) | unstable
        metrics = {f"reward/{k}": v for k, v in terms.items()}
        return obs, reward, done, metrics, info

    @property
    def dt(self) -> float:
        return self.config.ctrl_dt

    @property
    def action_size(self) -> int:
        return self.mj_model.nu

    def describe(self) -> dict[str, Any]:
        """Sizes and timesteps, for `garagelab playground info`."""
        return {
            "action_size": self.action_size,
            "dt": self.dt,
            "sim_dt": self.config.sim_dt,
            "n_substeps": self.n_substeps,
            "nq": self.mj_model.nq,
            "nv": self.mj_model.nv,
            "config": dataclasses.asdict(self.config),
        }


class DeltaTargets:
    """A mixin for tasks whose actions move servo targets instead of setting them (Playground's
    Go1 handstand, Leap hand and Panda): each step adds `action_scale` x action to the targets
    kept in `info[targets_key]`, clipped to the actuators' control ranges, so a policy's small
    outputs give smooth motions and the targets never wander outside what a servo can reach.
    The task's `update_info` stores `next_targets(...)` back under the same key."""

    targets_key: ClassVar[str] = "targets"

    def next_targets(self, ops: Any, action: Any, info: Info) -> Any:
        low, high = self.mj_model.actuator_ctrlrange.T
        return ops.xp.clip(info[self.targets_key] + self.config.action_scale * action, low, high)

    def control(self, ops: Any, action: Any, info: Info) -> Any:
        return self.next_targets(ops, action, info)
