"""Task configs: frozen dataclasses with flattened-key overrides (`reward.tracking_lin_vel=2`).

Playground uses ml_collections' ConfigDict; a dataclass gives the same override UX with type
checking and one-line errors that list the valid keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from garagelab.core.config import coerce_like, parse_like
from garagelab.core.errors import UserError

# where a batch of envs runs: numpy on mujoco.batch, jax on MJX, MuJoCo Warp's kernels
ENGINES = ("cpu", "mjx", "warp")
# every env holds its own MuJoCo state (kilobytes each, more with pixels); Playground's largest
# batch is 8,192 envs on a GPU, and a million is past what one machine's memory holds for most tasks
MAX_ENVS = 1 << 20
# a clip's frames are held in memory until it is written (230 KB each at 320x240)
MAX_CLIP_STEPS = 10_000
# `eval` runs its episodes side by side, one env each; far fewer pin a mean return well below
# the spread between episodes
MAX_EVAL_EPISODES = 10_000
# the seed that draws `eval`'s starts unless one is given: fixed, so two policies (two training
# seeds, two learners) are scored from the same starts, a paired comparison; `--seed` draws others
EVAL_SEED = 1


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """What every task has: control and physics timesteps and the episode length."""

    ctrl_dt: float = 0.01
    sim_dt: float = 0.01
    episode_length: int = 1000

    def __post_init__(self) -> None:
        # checked here so every override path (CLI --set, load(config_overrides=...)) refuses them
        if not self.episode_length >= 1:
            raise UserError(f"episode_length must be at least 1 control step, got {self.episode_length}")
        for key in ("ctrl_dt", "sim_dt"):
            value = getattr(self, key)
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise UserError(f"{key} must be a positive number of seconds, got {value!r}")


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a (nested) config as `{"a.b": value}`."""
    items = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    flat: dict[str, Any] = {}
    for key, value in items.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _coerce(key: str, old: Any, new: Any) -> Any:
    """`new` as the type of `old` (`coerce_like`), and a range (every tuple in a task config is a
    (low, high) pair) of the same length, each end so: `lin_vel_x=nan` failed inside numpy."""
    if not isinstance(old, tuple):
        return coerce_like(new, old, key)
    value = parse_like(new, old, key) if isinstance(new, str) else new
    if isinstance(value, list):  # a range read back from a run's config.json
        value = tuple(value)
    if not isinstance(value, tuple) or len(value) != len(old):
        raise UserError(f"config key {key!r} wants {len(old)} values like {old}, got {new!r}")
    return tuple(coerce_like(v, o, key) for v, o in zip(value, old, strict=True))


def override(config: Any, overrides: Mapping[str, Any] | None) -> Any:
    """A copy of `config` with dotted keys replaced; an unknown key is a one-line UserError."""
    if not overrides:
        return config
    valid = flatten(config)
    unknown = [key for key in overrides if key not in valid]
    if unknown:
        raise UserError(f"unknown config key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}")
    nested: dict[str, dict[str, Any]] = {}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            changes[head] = _coerce(key, valid[key], value)
    for head, sub in nested.items():
        current = getattr(config, head)
        if dataclasses.is_dataclass(current):
            changes[head] = override(current, sub)
        else:  # a plain dict of scales
            changes[head] = {**current, **{k: _coerce(f"{head}.{k}", current[k], v) for k, v in sub.items()}}
    return dataclasses.replace(config, **changes)
