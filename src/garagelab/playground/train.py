"""Training runs: PPO or SAC on a registered env with checkpoints, metrics and evaluation.

A run directory holds `config.json` (the run store's; the learner's settings under "ppo" or
"sac"), `metrics.csv` (one row per iteration, also written as TensorBoard events under
`tensorboard/`), `checkpoint.npz` (written every `checkpoint_every` iterations and at the end,
atomically: a `kill -9` loses at most one interval) and, after evaluation, `eval.json` and `policy.mp4`. A run
that stopped resumes from its checkpoint: the learner (parameters, optimiser, normalisers, random
key, counters) continues exactly; the envs start new episodes. A new run can instead start from
another run's networks (`init_from`, Playground's `restore_checkpoint_path`: train one task, go on
with the next or with other settings): parameters and normalisers come from that checkpoint; the
optimiser, counters and random key are the new run's own.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from garagelab.core.config import coerce_like, parse_like
from garagelab.core.errors import UserError
from garagelab.core.progress import ProgressBar
from garagelab.playground import ppo, sac
from garagelab.playground.config import EVAL_SEED
from garagelab.playground.networks import RunningNorm
from garagelab.playground.state import State

CHECKPOINT = "checkpoint.npz"

# per-task settings (Playground keeps these in dm_control_suite_params.py / locomotion_params.py),
# sized for a 2-core CPU: few envs, short unrolls, a small network
TUNED: dict[str, dict[str, Any]] = {
    "CartpoleBalance": {"total_steps": 1_000_000, "num_envs": 128, "unroll_length": 32, "learning_rate": 1e-3,
                        "gamma": 0.995, "entropy_coef": 1e-2, "stagger_starts": True},
    "CartpoleSwingup": {"total_steps": 3_000_000, "num_envs": 128, "unroll_length": 32, "learning_rate": 1e-3,
                        "gamma": 0.995, "entropy_coef": 1e-2, "stagger_starts": True},
    "PendulumSwingup": {"total_steps": 3_000_000, "num_envs": 128, "unroll_length": 32, "learning_rate": 1e-3,
                        "gamma": 0.995, "entropy_coef": 1e-2, "stagger_starts": True},
    "Go1JoystickFlatTerrain": {"total_steps": 20_000_000, "num_envs": 256, "unroll_length": 32,
                               "learning_rate": 3e-4, "gamma": 0.97, "hidden": (128, 128, 128), "entropy_coef": 1e-2},
    "Go1JoystickForward": {"total_steps": 40_000_000, "num_envs": 256, "unroll_length": 32, "learning_rate": 3e-4,
                           "gamma": 0.97, "hidden": (128, 128, 128), "init_log_std": -1.0, "entropy_coef": 1e-2},
    # the posture tasks at the joystick's sizes; Playground trains them for 100M+ steps on a GPU
    "Go1Getup": {"total_steps": 30_000_000, "num_envs": 256, "unroll_length": 32, "learning_rate": 3e-4,
                 "gamma": 0.97, "hidden": (128, 128, 128), "entropy_coef": 1e-2},
    "Go1Handstand": {"total_steps": 30_000_000, "num_envs": 256, "unroll_length": 32, "learning_rate": 3e-4,
                     "gamma": 0.97, "hidden": (128, 128, 128), "entropy_coef": 1e-2},
    "Go1Footstand": {"total_steps": 30_000_000, "num_envs": 256, "unroll_length": 32, "learning_rate": 3e-4,
                     "gamma": 0.97, "hidden": (128, 128, 128), "entropy_coef": 1e-2},
    # the biped with its gait clock: Playground's G1 settings (gamma 0.97, entropy 5e-3) at these
    # sizes; it stops falling within 10M steps and tracks commands by 25M
    "BipedJoystickFlatTerrain": {"total_steps": 40_000_000, "num_envs": 256, "unroll_length": 32,
                                 "learning_rate": 3e-4, "gamma": 0.97, "hidden": (128, 128, 128),
                                 "entropy_coef": 5e-3},
    # Playground trains its Leap hand for hours on a GPU; this is the 2-core starting point
    "HandCubeReorient": {"total_steps": 20_000_000, "num_envs": 256, "unroll_length": 32, "learning_rate": 3e-4,
                         "gamma": 0.99, "hidden": (256, 256, 128), "entropy_coef": 1e-2, "reward_scale": 0.1},
    "ArmReach": {"total_steps": 2_000_000, "num_envs": 128, "unroll_length": 32, "learning_rate": 1e-3,
                 "gamma": 0.99},
    "ArmPickCube": {"total_steps": 20_000_000, "num_envs": 256, "unroll_length": 32, "learning_rate": 3e-4,
                    "gamma": 0.97, "hidden": (128, 128, 128)},
}  # fmt: skip
# The rest of the DM Control set: Playground's dm_control_suite_params (one default and a few
# changes: longer for acrobot, swimmer and walker-run, a shorter horizon for ball-in-cup and
# finger-spin) at the sizes above for 2 cores; its 60M/100M steps at 2048 envs become 20M/40M.
DM_CONTROL = {"total_steps": 20_000_000, "num_envs": 128, "unroll_length": 32, "learning_rate": 1e-3,
              "gamma": 0.995, "entropy_coef": 1e-2, "stagger_starts": True}  # fmt: skip
DM_CONTROL_CHANGES: dict[str, dict[str, Any]] = {
    "AcrobotSwingup": {"total_steps": 40_000_000},
    "AcrobotSwingupSparse": {"total_steps": 40_000_000},
    "SwimmerSwimmer6": {"total_steps": 40_000_000},
    "WalkerRun": {"total_steps": 40_000_000},
    "BallInCup": {"gamma": 0.95},
    "FingerSpin": {"gamma": 0.95},
}


# learning from pixels (`train --pixels`, each action held for 2 control steps): a CNN actor over
# 64x64 frames, the critic on the state. Sample efficiency matters more than steps/s here
# (rendering and the encoder's update set the pace), so SB3's PPO defaults: long rollouts of few
# envs, 10 epochs, no entropy bonus, and CleanRL's Atari learning rate (at 1e-3 the CNN actor
# moved KL 0.2 per update and collapsed to a deterministic policy at return 300). reward_scale
# 0.1 keeps the returns the critic learns near 10, where the value clip (0.2) lets it move: in
# return units (up to 100) the clipped critic barely learnt and the policy stalled at its start
# (state-based check, CartpoleBalance, 80k steps: deterministic return 298 unscaled, 995
# scaled). Steps here are policy steps.
PIXELS_TUNED: dict[str, dict[str, Any]] = {
    "CartpoleBalance": {"total_steps": 300_000, "num_envs": 8, "unroll_length": 256, "num_minibatches": 8,
                        "update_epochs": 10, "learning_rate": 2.5e-4, "anneal_lr": False, "gamma": 0.99,
                        "entropy_coef": 0.0, "init_log_std": 0.0, "reward_scale": 0.1, "hidden": (64, 64),
                        "cnn_channels": (16, 32, 32)},
}  # fmt: skip


def tuned_settings(env_name: str, pixels: bool = False) -> dict[str, Any]:
    """The env's own settings, else the DM Control default (with its changes), else none;
    with `pixels`, its pixel settings over those."""
    from garagelab.playground.registry import default_config
    from garagelab.playground.tasks.dmc import DmcConfig

    if pixels:
        return tuned_settings(env_name) | PIXELS_TUNED.get(env_name, {})
    if env_name in TUNED:
        return TUNED[env_name]
    if isinstance(default_config(env_name), DmcConfig):
        return DM_CONTROL | DM_CONTROL_CHANGES.get(env_name, {})
    return {}


# SAC's settings per env (its defaults otherwise, CleanRL's: 256x256, batch 256, one gradient step
# per transition). CartpoleBalance: starting at temperature 1 the policy stayed near uniform for
# 20k steps (deterministic return 390); at 0.1 it returned 807-915 after 40k, 997 after 60k
SAC_TUNED: dict[str, dict[str, Any]] = {
    "CartpoleBalance": {"total_steps": 60_000, "learning_starts": 2_000, "init_alpha": 0.1},
}
# SAC from pixels (`train --pixels --algo sac`, with --action-repeat 8 as DrQ runs cartpole): a
# CNN actor on shifted frames, the critics on the state; one gradient step per policy step
SAC_PIXELS_TUNED: dict[str, dict[str, Any]] = {
    "CartpoleBalance": {"total_steps": 30_000, "num_envs": 4, "unroll_length": 16, "updates_per_iteration": 64,
                        "batch": 128, "buffer_size": 30_000, "learning_starts": 1_000, "init_alpha": 0.1},
    "ArmReach": {"total_steps": 40_000, "num_envs": 4, "unroll_length": 16, "updates_per_iteration": 64,
                 "batch": 128, "buffer_size": 40_000, "learning_starts": 1_000},
}  # fmt: skip

ALGORITHMS = {"ppo": ppo, "sac": sac}  # each module: its config, learner_for, make_iterate, config_dict
Config = ppo.PPOConfig | sac.SACConfig


def tuned_config(env_name: str, pixels: bool = False, algo: str = "ppo", **overrides: Any) -> Config:
    """The env's tuned settings for the algorithm (else its defaults), then `overrides`; unknown
    keys are errors."""
    kind = sac.SACConfig if algo == "sac" else ppo.PPOConfig
    fields = kind.__dataclass_fields__
    unknown = sorted(k for k in overrides if k not in fields)
    if unknown:
        raise UserError(f"unknown {algo.upper()} setting(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
    if algo == "sac":
        tuned = (SAC_PIXELS_TUNED if pixels else SAC_TUNED).get(env_name, {})
    else:
        tuned = tuned_settings(env_name, pixels)
    config = replace(kind(), **{**tuned, **typed_settings(algo, kind(), overrides)})
    return sac.check(config) if algo == "sac" else ppo.check(config)


def typed_settings(algo: str, defaults: Config, overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` as the types of the learner's fields: `--set` hands over what Python's literal
    syntax made of the text (1e9 is a float, nan stays a string), and a float where a count
    belongs, or a NaN, failed deep inside (a mujoco constructor, a comparison with a string)."""
    typed = {}
    for key, value in overrides.items():
        name, default = f"{algo}.{key}", getattr(defaults, key)
        if not isinstance(default, tuple):
            typed[key] = coerce_like(value, default, name)
            continue
        value = parse_like(value, default, name) if isinstance(value, str) else value
        layers = tuple(value) if isinstance(value, tuple | list) else (value,)  # layer sizes: `64` is one layer
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in layers):
            raise UserError(f"{name} must be layer sizes, whole numbers of at least 1, e.g. 64,64 (got {value!r})")
        typed[key] = layers
    return typed


def run_algorithm(settings: dict) -> str:
    """The algorithm a run's settings are for: the key its learner settings are stored under."""
    return "sac" if "sac" in settings else "ppo"


def algorithm_of(config: Config) -> str:
    """ "sac" or "ppo": which learner a config is for."""
    return "sac" if isinstance(config, sac.SACConfig) else "ppo"


def config_dict(config: Config) -> dict:
    return ALGORITHMS[algorithm_of(config)].config_dict(config)


def _leaves(learner: ppo.Learner) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves((learner.params, learner.opt_state))]


def save_checkpoint(learner: ppo.Learner, path: Path) -> None:
    arrays = {f"leaf{i}": leaf for i, leaf in enumerate(_leaves(learner))}
    for name, norm in (("obs", learner.obs_norm), ("critic", learner.critic_norm), ("value", learner.value_norm)):
        arrays |= {f"{name}_mean": norm.mean, f"{name}_var": norm.var, f"{name}_count": np.array(norm.count)}
    meta = {"iteration": learner.iteration, "steps": learner.steps, "history": learner.history}
    arrays |= {"key": np.asarray(learner.key), "meta": np.array(json.dumps(meta))}  # a raw uint32 key
    partial = path.with_suffix(".part.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)  # atomic: a kill mid-write leaves the previous checkpoint


def load_checkpoint(path: Path, template: ppo.Learner) -> ppo.Learner:
    """The learner saved at `path`, its structure taken from a fresh `template` of the same config."""
    data = _open_checkpoint(path)
    leaves = _stored_leaves(path, data, _leaves(template))
    params, opt_state = jax.tree.unflatten(jax.tree.structure((template.params, template.opt_state)), leaves)
    obs, critic, value = _stored_norms(data)
    key = jnp.asarray(data["key"])
    meta = json.loads(str(data["meta"]))
    return ppo.Learner(params, opt_state, obs, critic, key, meta["iteration"], meta["steps"], meta["history"], value)


def trained_steps(directory: Path) -> int:
    """Env steps the run in `directory` has trained, as its checkpoint says (0 without one)."""
    path = Path(directory) / CHECKPOINT
    return int(json.loads(str(_open_checkpoint(path)["meta"]))["steps"]) if path.is_file() else 0


def warm_start(path: Path, fresh: ppo.Learner, keep_log_std: bool = True) -> ppo.Learner:
    """`fresh` with the networks and normalisers saved at `path`. Its optimiser state, counters and
    key stay fresh: the new run is a new optimisation from a trained point. With `keep_log_std`
    False the exploration noise is `fresh`'s (its config's init_log_std), so a policy that
    settled into too little noise can be made to explore again."""
    data = _open_checkpoint(path)
    wanted = [np.asarray(x) for x in jax.tree.leaves(fresh.params)]
    params = jax.tree.unflatten(jax.tree.structure(fresh.params), _stored_leaves(path, data, wanted))
    if not keep_log_std and "log_std" in params:  # SAC's noise is a network of its own, kept
        params = {**params, "log_std": fresh.params["log_std"]}
    obs, critic, value = _stored_norms(data)
    return replace(fresh, params=params, obs_norm=obs, critic_norm=critic, value_norm=value)


def check_warm_start(path: Path, env_name: str, config: Config, overrides: dict | None, env_options: dict) -> None:
    """Refuse, before a run is recorded, networks at `path` that this env and config cannot start from."""
    env = make_env(env_name, replace(config, num_envs=1), overrides, **policy_interface(env_options))
    warm_start(path, ALGORITHMS[algorithm_of(config)].learner_for(config, env, env.reset(0)))


def _open_checkpoint(path: Path) -> Any:
    try:
        data = np.load(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a checkpoint of this configuration ({exc})") from None
    missing = {"meta", "key"} - set(getattr(data, "files", ()))
    if missing:
        raise UserError(f"{path}: not a checkpoint of this configuration (no {' or '.join(sorted(missing))})")
    return data


def _stored_leaves(path: Path, data: Any, wanted: list[np.ndarray]) -> list[jax.Array]:
    """The first len(wanted) stored arrays, refused unless each has its counterpart's shape (another
    env's observation size, other hidden layers or a pixel encoder would otherwise load silently
    into the wrong places, or fail deep inside the first update)."""
    stored = [data.get(f"leaf{i}") for i in range(len(wanted))]
    for i, (have, want) in enumerate(zip(stored, wanted, strict=True)):
        if have is None or have.shape != want.shape:
            got = "missing" if have is None else f"shape {have.shape}"
            raise UserError(
                f"{path}: not a checkpoint of this configuration (array {i} is {got}, this configuration's is "
                f"{want.shape}: the env's observation or action size, the hidden layers or the pixel encoder differ)"
            )
    return [jnp.asarray(leaf) for leaf in stored]


def _stored_norms(data: Any) -> tuple[RunningNorm, RunningNorm, RunningNorm]:
    """The observation, critic-input and value normalisers (their sizes are the networks' input
    sizes, checked with the networks; checkpoints from before value normalisation existed get the
    identity they trained with)."""

    def norm(name: str) -> RunningNorm:
        return RunningNorm(data[f"{name}_mean"], data[f"{name}_var"], float(data[f"{name}_count"]))

    return norm("obs"), norm("critic"), norm("value") if "value_mean" in data else RunningNorm.of_size(1)


def make_env(env_name: str, config: ppo.PPOConfig, overrides: dict | None = None, engine: str = "cpu", **options: Any):
    from garagelab.playground.registry import load

    return load(env_name, engine, config.num_envs, overrides, seed=config.seed, **options)


def stagger_starts(env, state: State, seed: int) -> State:
    """`state` with each env's episode clock set to a random step of the episode limit, so that
    the envs' first episodes end at different times and every later one does too (PPO's
    `stagger_starts`). Those first episodes are shorter: their returns in the training log are
    partial, for one episode limit's worth of steps."""
    steps = np.random.default_rng([seed, 7]).integers(0, env.length, env.num_envs)
    return state.replace(info={**state.info, "steps": env.xp.asarray(steps, dtype=env.xp.float32)})


def make_iterate(env, config: Config, engine: str = "cpu"):
    """The engine's iteration: envs stepped from Python (CPU, Warp), or (PPO) MJX's on-device scan."""
    if algorithm_of(config) == "sac":
        if engine == "mjx":
            raise UserError(
                "SAC steps its envs from Python (its replay buffer lives in host memory): use --engine cpu or warp"
            )
        return sac.make_iterate(env, config)
    if engine == "mjx":
        from garagelab.playground import ppo_mjx

        return ppo_mjx.make_iterate(env, config)
    return ppo.make_iterate(env, config)


def train(
    env_name: str,
    config: Config,
    directory: Path,
    overrides: dict | None = None,
    checkpoint_every: int = 10,
    progress: bool = True,
    env_options: dict | None = None,
    log: Callable[..., None] | None = None,
    on_resume: Callable[[int], None] | None = None,
    init_from: Path | None = None,
    keep_log_std: bool = True,
) -> ppo.Learner:
    """Train (or, with a checkpoint in `directory`, continue training) to `total_steps`; each
    iteration's metrics go to `log` (a run's `log`: metrics.csv) and TensorBoard. Continuing,
    `on_resume` gets the checkpoint's iteration (a run drops the rows it logged after it).
    `init_from`, another run's checkpoint, gives a new run its starting networks (`warm_start`)."""
    env_options = env_options or {}
    env = make_env(env_name, config, overrides, **env_options)
    state = env.reset(config.seed)
    name = algorithm_of(config)
    learner = ALGORITHMS[name].learner_for(config, env, state)
    Path(directory).mkdir(parents=True, exist_ok=True)
    checkpoint = Path(directory) / CHECKPOINT
    if checkpoint.is_file():
        learner = load_checkpoint(checkpoint, learner)
        state = env.reset(config.seed + learner.iteration)  # new episodes; the learner is exact
        if on_resume is not None:
            on_resume(learner.iteration)
    elif init_from is not None:
        learner = warm_start(init_from, learner, keep_log_std)
    if getattr(config, "stagger_starts", False):
        state = stagger_starts(env, state, config.seed + learner.iteration)
    iterate = make_iterate(env, config, env_options.get("engine", "cpu"))
    total = config.iterations * config.batch_size
    board = _tensorboard(Path(directory) / "tensorboard")
    with ProgressBar(total, f"{name} {env_name}", unit="steps", enabled=progress, start=learner.steps) as bar:
        # training seconds so far, carried over a resume (the first run's rows hold its share)
        start = time.perf_counter() - (learner.history[-1].get("wall_s", 0.0) if learner.history else 0.0)
        while learner.iteration < config.iterations:
            state, row = iterate(learner, state)
            row["wall_s"] = round(time.perf_counter() - start, 2)
            learner.history.append(row)
            if log is not None:
                log(**row)
            for key, value in row.items():
                if board is not None and key not in ("iteration", "steps") and math.isfinite(value):
                    board.add_scalar(f"{name}/{key}", value, learner.steps)
            if learner.iteration % checkpoint_every == 0 or learner.iteration == config.iterations:
                save_checkpoint(learner, checkpoint)
            shown = f"return {row['episode_return']:.1f}" if math.isfinite(row["episode_return"]) else ""
            bar.update_to(learner.steps, postfix=shown)
    if board is not None:
        board.close()
    return learner


@dataclass(frozen=True)
class TrainedRun:
    """A training run's env, its config overrides and training conditions, and its learner."""

    env: str
    overrides: dict | None
    conditions: dict[str, Any]
    learner: ppo.Learner
    path: Path
    interface: dict = field(default_factory=dict)  # pixels and action repeat: what the policy reads, how often it acts


def load_run(key: str) -> TrainedRun:
    """A training run in the run store, by id or directory."""
    from garagelab.core.runs import RunStore

    store = RunStore()
    record = store.get(key)
    settings = store.read_config(record)
    path = store.directory(key)
    algo = run_algorithm(settings)
    if algo not in settings or not (path / CHECKPOINT).is_file():
        raise UserError(f"run {record.label} has no trained policy (no {CHECKPOINT}); train one first")
    config = tuned_config(settings["env"], algo=algo, **settings[algo])
    interface = policy_interface(settings.get("env_options"))
    env = make_env(settings["env"], replace(config, num_envs=1), settings.get("env_overrides"), **interface)
    state = env.reset(0)
    template = ALGORITHMS[algo].learner_for(config, env, state)
    learner = load_checkpoint(path / CHECKPOINT, template)
    conditions = training_conditions(settings.get("env_options"))
    return TrainedRun(settings["env"], settings.get("env_overrides"), conditions, learner, path, interface)


# the env options that change what a policy faces (not where it runs: the engine)
CONDITION_KEYS = ("randomization", "obs_noise", "action_latency")


# the env options that make what a policy reads and how often it acts: evaluation, the video
# and the export use them as training did (a pixel policy cannot read a state vector)
INTERFACE_KEYS = ("pixels", "action_repeat")


def _options_set(env_options: dict | None, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in (env_options or {}).items() if k in keys and v}


def policy_interface(env_options: dict | None) -> dict[str, Any]:
    """The pixels and action repeat a run trained with (those set)."""
    return _options_set(env_options, INTERFACE_KEYS)


def training_conditions(env_options: dict | None) -> dict[str, Any]:
    """The robustness settings a run trained under (randomisation, noise, latency) that are on."""
    return _options_set(env_options, CONDITION_KEYS)


def _tensorboard(directory: Path):
    """A TensorBoard writer (tensorboardX, in the playground extra), or None without it."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(directory), flush_secs=30)


@dataclass(frozen=True)
class Evaluation:
    returns: list[float]
    lengths: list[int]

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))


def policy_fn(learner: ppo.Learner):
    """The deterministic policy on numpy observations (what `render` and the export run).

    uint8 frames stay uint8: the encoder scales those by 1/255 (and takes depth, float, as it is).
    """
    stats = learner.obs_norm.arrays()
    deterministic = sac.deterministic if sac.is_sac(learner.params) else ppo.deterministic

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.asarray(deterministic(learner.params, jnp.asarray(ppo.as_observation(obs)), stats))

    return policy


def evaluate(
    env_name: str,
    learner: ppo.Learner,
    episodes: int = 8,
    overrides: dict | None = None,
    seed: int = EVAL_SEED,
    conditions: dict[str, Any] | None = None,
    interface: dict | None = None,
    progress: bool = False,
) -> Evaluation:
    """Deterministic rollouts of whole episodes (the policy's mean action), one env per episode.

    `conditions` (from `training_conditions`) evaluates under what the policy trained with:
    randomised models (drawn from `seed`, not the training draw), observation noise, latency.
    Without it the env is nominal. `interface`: the pixels and action repeat the policy trained with.
    `progress` shows the batch's control steps against the episode length (the most it can take).
    """
    from garagelab.playground.registry import load

    options = {**(interface or {}), **(conditions or {})}
    env = load(env_name, "cpu", episodes, overrides, seed=seed, auto_reset=False, nthread=1, **options)
    policy = policy_fn(learner)
    state = env.reset(seed)
    returns, lengths = np.zeros(episodes), np.zeros(episodes, np.int64)
    alive = np.ones(episodes, bool)
    with ProgressBar(env.length, f"eval {env_name} ({episodes} side by side)", unit="steps", enabled=progress) as bar:
        while alive.any():
            state = env.step(state, policy(state.obs))
            returns += np.where(alive, state.reward, 0.0)
            lengths += alive
            alive &= state.done == 0
            bar.advance()
    return Evaluation(returns.tolist(), lengths.tolist())
