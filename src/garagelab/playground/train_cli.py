"""`garagelab playground train|eval|export|video`: PPO and SAC runs and what comes out of them."""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path
from typing import Any

from garagelab.core.cliargs import (
    check_new_total,
    examples,
    non_negative_float,
    non_negative_int,
    positive_int,
    whole_number_up_to,
)
from garagelab.core.errors import UserError
from garagelab.playground.cli import clip_steps
from garagelab.playground.config import ENGINES, EVAL_SEED, MAX_EVAL_EPISODES


def register_training(verbs: Any, fmt: type[argparse.HelpFormatter]) -> None:
    train = verbs.add_parser(
        "train",
        help="train a policy with PPO (any engine) or SAC (CPU or Warp engine) (checkpoints, metrics.csv, progress)",
        description="Runs in runs/playground/<stamp>-<env>/: metrics.csv (one row per iteration), "
        "checkpoint.npz (every --checkpoint-every iterations; `--resume RUN` continues from it), eval.json.",
        epilog=examples(
            "garagelab playground train CartpoleBalance",
            "garagelab playground train CartpoleBalance --steps 2000000 --set ppo.learning_rate=3e-4",
            "garagelab playground train CartpoleBalance --algo sac --set sac.updates_per_iteration=128",
            "garagelab playground train Go1JoystickFlatTerrain --randomize --obs-noise 0.05 --latency 1",
            "garagelab playground train --resume 12",
            "garagelab playground train Go1Getup --init-from 12 --set ppo.init_log_std=-0.5",
        ),
        formatter_class=fmt,
    )
    train.add_argument("env", nargs="?", help="a registered env (see `garagelab playground list`)")
    train.add_argument("--steps", type=positive_int, help="total env steps (default: the env's tuned setting)")
    train.add_argument("--algo", choices=("ppo", "sac"), default="ppo",
                       help="ppo: on-policy, any engine, state or pixels; sac: off-policy with a replay buffer, "
                       "CPU or Warp engine, state (pixels: CPU engine)")  # fmt: skip
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="ppo.<setting>=value (PPOConfig), sac.<setting>=value (SACConfig, with --algo sac) or "
                       "env.<key>=value (the task's config)")  # fmt: skip
    train.add_argument("--engine", choices=ENGINES, default="cpu",
                       help="cpu: numpy envs on MuJoCo; mjx: rollout and update on the device (a GPU); warp: "
                       "physics on MuJoCo Warp (a GPU, or Warp's CPU backend), the update as on cpu")  # fmt: skip
    train.add_argument("--randomize", action="store_true", help="domain randomisation per env")
    train.add_argument("--obs-noise", type=non_negative_float, default=0.0, help="Gaussian observation noise (std)")
    train.add_argument("--latency", type=non_negative_int, default=0,
                       help="control steps between a policy's action and its effect")  # fmt: skip
    train.add_argument("--pixels", nargs="?", const="grey", choices=("grey", "rgb", "depth"),
                       help="learn from rendered frames (grey if no mode is given): a CNN actor, the critic on the "
                       "state; CPU engine")  # fmt: skip
    train.add_argument("--pixel-size", type=positive_int, default=64, help="frame width and height (with --pixels)")
    train.add_argument("--action-repeat", type=positive_int, default=None,
                       help="control steps each action is held for (default 1; 2 with --pixels: frames 10 ms "
                       "apart barely differ)")  # fmt: skip
    train.add_argument("--frames", type=positive_int, default=3, help="frames stacked (with --pixels)")
    train.add_argument("--checkpoint-every", type=positive_int, default=10, help="PPO iterations")
    train.add_argument(
        "--video-steps",
        type=clip_steps(0),
        default=400,
        help="length of the clip written at the end (0: none)",
    )
    train.add_argument("--resume", metavar="RUN", help="continue a stopped run from its checkpoint")
    train.add_argument("--init-from", metavar="RUN",
                       help="start from another run's trained networks and normalisers (same observation, action "
                       "and layer sizes), with a fresh optimiser; its exploration noise too, unless "
                       "--set ppo.init_log_std=... gives a new one")  # fmt: skip
    train.add_argument("--name", default="")
    train.set_defaults(func=_train)

    for verb, text in (("eval", "deterministic episodes of a trained policy"),
                       ("export", "the policy as ONNX, checked against JAX in onnxruntime"),
                       ("video", "an MP4/GIF of the trained policy")):  # fmt: skip
        sub = verbs.add_parser(verb, help=text, epilog=examples(f"garagelab playground {verb} 12"), formatter_class=fmt)
        sub.add_argument("run", help="a training run's id or directory")
        if verb == "eval":
            sub.add_argument("--episodes", default=8, type=whole_number_up_to(
                MAX_EVAL_EPISODES, "the episodes run side by side, one env each", minimum=1))  # fmt: skip
            sub.add_argument("--conditions", choices=CONDITIONS, default="both",
                             help="nominal: the plain env; train: the randomisation, observation noise and latency "
                             "the run trained with; both (default): each, when the run trained with any")  # fmt: skip
            sub.add_argument("--seed", type=non_negative_int, default=EVAL_SEED,
                             help="draws the episodes' starts (and the randomised models under --conditions train); "
                             "another seed scores the policy on other starts")  # fmt: skip
        elif verb == "export":
            sub.add_argument("--out", default="", help="default: <run>/policy.onnx")
        else:
            sub.add_argument("--out", default="", help="a .mp4 or .gif path (default: <run>/policy.mp4)")
            sub.add_argument("--steps", type=clip_steps(1), default=400)
            sub.add_argument(
                "--seed", type=non_negative_int, default=0, help="the episode's start (each seed draws one)"
            )
        sub.set_defaults(func={"eval": _eval, "export": _export, "video": _video}[verb])


def parse_sets(pairs: list[str], algo: str = "ppo") -> tuple[dict[str, Any], dict[str, Any]]:
    """(learner settings, env config overrides) from `--set ppo.x=1 --set env.y=2` (sac.x with SAC)."""
    learner_settings: dict[str, Any] = {}
    env_overrides: dict[str, Any] = {}
    for item in pairs:
        key, sep, text = item.partition("=")
        scope, dot, name = key.partition(".")
        if not sep or not dot or scope not in (algo, "env") or not name:
            raise UserError(f"--set {item!r}: expected {algo}.<setting>=value or env.<key>=value")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        (learner_settings if scope == algo else env_overrides)[name] = value
    return learner_settings, env_overrides


def _train(args: argparse.Namespace) -> int:
    from garagelab.core.runs import RunStore
    from garagelab.playground import train
    from garagelab.playground.pixels import pixel_spec
    from garagelab.playground.registry import make_task

    store = RunStore()
    if args.resume and args.init_from:
        raise UserError("--resume continues a run, --init-from starts a new one from another's networks: give one")
    source = _source_checkpoint(store, args.init_from) if args.init_from else None
    if args.resume:
        record = store.get(args.resume)
        settings = store.read_config(record)
        algo = train.run_algorithm(settings)
        if record.system != "playground" or algo not in settings:
            raise UserError(f"run {record.label} is not a playground training run")
        if args.steps:  # a longer run than planned
            done = train.trained_steps(store.directory(args.resume))
            check_new_total("--steps", args.steps, done, f"run {record.label} has trained {done:,} steps")
            settings[algo]["total_steps"] = args.steps
        config = train.tuned_config(settings["env"], algo=algo, **settings[algo])  # the stored settings are complete
        context = store.reopen(args.resume)
    else:
        if not args.env:
            raise UserError("name an env to train (see `garagelab playground list`), or --resume RUN")
        learner_settings, env_overrides = parse_sets(args.set, args.algo)
        if args.steps:
            learner_settings["total_steps"] = args.steps
        if args.algo == "sac" and args.engine == "mjx":
            raise UserError(
                "SAC steps its envs from Python (its replay buffer lives in host memory): use --engine cpu or warp"
            )
        config = train.tuned_config(args.env, pixels=bool(args.pixels), algo=args.algo, **learner_settings)
        make_task(args.env, env_overrides)  # refuses a bad env setting before a run is recorded
        pixels = None
        if args.pixels:
            pixels = {"mode": args.pixels, "width": args.pixel_size, "height": args.pixel_size, "stack": args.frames}
            pixel_spec(pixels, args.engine, args.obs_noise)  # what load would refuse, refused before the run
        options = {
            "engine": args.engine,
            "randomization": args.randomize,
            "obs_noise": args.obs_noise,
            "action_latency": args.latency,
            "pixels": pixels,
            "action_repeat": args.action_repeat or (PIXEL_ACTION_REPEAT if pixels else 1),
        }
        settings = {"env": args.env, args.algo: train.config_dict(config), "env_overrides": env_overrides,
                    "env_options": options}  # fmt: skip
        if source is not None:
            train.check_warm_start(source, args.env, config, env_overrides, options)
            settings["init_from"] = {"checkpoint": str(source), "keep_log_std": "init_log_std" not in learner_settings}
        context = store.start("playground", args.name or args.env, settings)
    with context as run:
        (run.path / "config.json").write_text(json.dumps(settings, indent=2))
        learner = train.train(settings["env"], config, run.path, settings["env_overrides"], args.checkpoint_every,
                              env_options=settings["env_options"], log=run.log,
                              on_resume=lambda iteration: run.rewind("iteration", iteration),
                              **_warm_start(settings))  # fmt: skip
        conditions = train.training_conditions(settings["env_options"])
        interface = train.policy_interface(settings["env_options"])
        evaluations = _evaluations(
            settings["env"], learner, 8, settings["env_overrides"], conditions, "both", interface
        )
        (run.path / "eval.json").write_text(json.dumps({
            name: {"returns": e.returns, "lengths": e.lengths, "conditions": c} for name, (e, c) in evaluations.items()
        }))  # fmt: skip
        run.set_headline(**{f"eval_return_{n}" if n != "nominal" else "eval_return": round(e.mean_return, 1)
                            for n, (e, _) in evaluations.items()}, steps=learner.steps)  # fmt: skip
        video = _write_video(settings["env"], learner, run.path / "policy.mp4", args.video_steps, interface)
    for line in _evaluation_lines(settings["env"], evaluations, 8):
        print(f"{line} after {learner.steps:,} steps")
    print(video)
    print(f"run: {run.path}")
    return 0


def _source_checkpoint(store: Any, key: str) -> Path:
    """The checkpoint of the run named by --init-from (a playground training run that has one)."""
    from garagelab.playground import train

    record = store.get(key)
    checkpoint = store.directory(key) / train.CHECKPOINT
    if record.system != "playground" or not checkpoint.is_file():
        raise UserError(f"--init-from {key}: run {record.label} has no trained policy ({train.CHECKPOINT})")
    return checkpoint


def _warm_start(settings: dict) -> dict[str, Any]:
    """train()'s init_from arguments from a run's settings (none for a run trained from scratch)."""
    start = settings.get("init_from")
    return {"init_from": Path(start["checkpoint"]), "keep_log_std": start["keep_log_std"]} if start else {}


def _write_video(env: str, learner, path: Path, steps: int = 400, interface: dict | None = None, seed: int = 0) -> str:
    """A clip of the trained policy in the run; a machine without an offscreen GL context says so."""
    from garagelab.playground.render import render
    from garagelab.playground.train import policy_fn

    if steps <= 0:
        return "no video (--video-steps 0)"
    try:
        out, total = render(env, path, policy_fn(learner), steps=steps, seed=seed, interface=interface)
    except UserError as exc:
        return f"no video: {exc}"
    return f"video: {out} ({steps} steps, return {total:.1f})"


CONDITIONS = ("nominal", "train", "both")
PIXEL_ACTION_REPEAT = 2


def _evaluations(
    env: str,
    learner,
    episodes: int,
    overrides,
    conditions: dict,
    which: str,
    interface: dict | None = None,
    seed: int = EVAL_SEED,
) -> dict[str, tuple]:
    """{"nominal"|"train": (Evaluation, conditions)} as `which` asks; "train" only where there were any."""
    from garagelab.playground import train

    if which == "train" and not conditions:
        raise UserError("this run trained without randomisation, observation noise or latency: "
                        "its training conditions are the nominal env (use --conditions nominal)")  # fmt: skip
    wanted = {"nominal": {}, "train": conditions}
    if which != "both":
        wanted = {which: wanted[which]}
    scored = {name: options for name, options in wanted.items() if name == "nominal" or options}
    shared = {"interface": interface, "progress": True, "seed": seed}
    return {
        name: (train.evaluate(env, learner, episodes, overrides, conditions=options, **shared), options)
        for name, options in scored.items()
    }


def _evaluation_lines(env: str, evaluations: dict[str, tuple], episodes: int, seed: int = EVAL_SEED) -> list[str]:
    lines = []
    for name, (evaluation, options) in evaluations.items():
        under = ", ".join(f"{k}={v}" for k, v in options.items()) if options else "the nominal env"
        lines.append(f"{env}: deterministic return {evaluation.mean_return:.1f} over {episodes} episodes "
                     f"from seed {seed}'s starts ({name}: {under})")  # fmt: skip
    return lines


def _eval(args: argparse.Namespace) -> int:
    from garagelab.playground import train

    trained = train.load_run(args.run)
    evaluations = _evaluations(
        trained.env,
        trained.learner,
        args.episodes,
        trained.overrides,
        trained.conditions,
        args.conditions,
        trained.interface,
        args.seed,
    )
    for line, (evaluation, _) in zip(
        _evaluation_lines(trained.env, evaluations, args.episodes, args.seed), evaluations.values(), strict=True
    ):
        print(line)
        print("  returns: " + ", ".join(f"{r:.1f}" for r in evaluation.returns))
    return 0


def _export(args: argparse.Namespace) -> int:
    import numpy as np

    from garagelab.playground import export, train

    trained = train.load_run(args.run)
    learner = trained.learner
    pixels = trained.interface.get("pixels")
    out = export.to_onnx(learner, args.out or trained.path / "policy.onnx", pixels)
    if pixels:  # frames the policy would see: 16 envs, 16 steps of random actions
        from garagelab.playground.registry import load

        env = load(trained.env, num_envs=16, config_overrides=trained.overrides, pixels=pixels, nthread=1)
        state, rng, frames = env.reset(0), np.random.default_rng(0), []
        for _ in range(16):
            state = env.step(state, rng.uniform(-1, 1, (16, env.action_size)))
            frames.append(state.obs)
        samples = np.concatenate(frames)
    else:
        size = learner.obs_norm.mean.size
        samples = np.random.default_rng(0).normal(learner.obs_norm.mean, np.sqrt(learner.obs_norm.var), (256, size))
    error = export.parity(learner, out, samples if pixels else samples.astype(np.float32))
    print(f"wrote {out}; onnxruntime vs JAX on {len(samples)} observations: max difference {error:.2e}")
    return 0 if error < 1e-4 else 1


def _video(args: argparse.Namespace) -> int:
    from garagelab.playground import train

    trained = train.load_run(args.run)
    out = Path(args.out) if args.out else trained.path / "policy.mp4"
    message = _write_video(trained.env, trained.learner, out, args.steps, trained.interface, args.seed)
    print(message)
    return 1 if message.startswith("no video") else 0
