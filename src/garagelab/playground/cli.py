"""`garagelab playground list|info|bench|render` (and train|eval|export|video from train_cli)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from garagelab.core.cliargs import examples, non_negative_int, positive_int, whole_number_up_to
from garagelab.core.errors import UserError
from garagelab.playground.config import ENGINES, MAX_CLIP_STEPS, MAX_ENVS


def _overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set ctrl_dt=0.02")
        out[key] = value
    return out


def clip_steps(minimum: int) -> Callable[[str], int]:
    """An argparse type for a clip's length: its frames are held in memory until it is written."""
    return whole_number_up_to(MAX_CLIP_STEPS, "a clip's frames are held in memory until it is written", minimum)


def _sizes(values: str) -> list[int]:
    try:
        sizes = [int(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{values!r}: expected whole numbers separated by commas") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{values!r}: each size must be at least 1")
    if max(sizes) > MAX_ENVS:  # 1e7 envs ran out of memory before the first step
        raise argparse.ArgumentTypeError(f"{values!r}: at most {MAX_ENVS:,} envs (each holds its own state)")
    return sizes


def register(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>")
    fmt = argparse.RawDescriptionHelpFormatter

    listing = verbs.add_parser("list", help="the registered envs with their sizes and timesteps")
    listing.set_defaults(func=_list)

    info = verbs.add_parser(
        "info",
        help="one env: sizes, timesteps, model source and every config key",
        epilog=examples(
            "garagelab playground info Go1JoystickFlatTerrain", "garagelab playground info CartpoleBalance"
        ),
        formatter_class=fmt,
    )
    info.add_argument("env")
    info.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    info.set_defaults(func=_info)

    bench = verbs.add_parser(
        "bench",
        help="env steps/s and time to first step on an engine, at several batch sizes",
        epilog=examples(
            "garagelab playground bench CartpoleBalance --num-envs 1,64,256",
            "garagelab playground bench Go1JoystickFlatTerrain --engine mjx --num-envs 1024",
        ),
        formatter_class=fmt,
    )
    bench.add_argument("env")
    bench.add_argument("--engine", default="cpu", choices=ENGINES)
    bench.add_argument("--num-envs", type=_sizes, default=[1, 64, 256], help="comma-separated batch sizes")
    bench.add_argument("--steps", type=positive_int, default=200)
    bench.add_argument("--threads", type=non_negative_int, default=0, help="CPU engine threads (0: all cores)")
    bench.set_defaults(func=_bench)

    render = verbs.add_parser(
        "render",
        help="render a rollout (random actions) of any env to MP4 or GIF, offscreen",
        epilog=examples(
            "garagelab playground render Go1JoystickFlatTerrain --out go1.mp4",
            "garagelab playground render CartpoleSwingup --out cartpole.gif --steps 150 --camera fixed",
        ),
        formatter_class=fmt,
    )
    render.add_argument("env")
    render.add_argument("--out", default="", help="a .mp4 or .gif path (default: <env>.mp4)")
    render.add_argument("--steps", type=clip_steps(1), default=200)
    render.add_argument("--width", type=positive_int, default=480)
    render.add_argument("--height", type=positive_int, default=360)
    render.add_argument("--camera", default=None, help="a camera name from the model (default: a tracking one)")
    render.add_argument("--seed", type=non_negative_int, default=0)
    render.set_defaults(func=_render)

    from garagelab.playground.train_cli import register_training  # its heavy imports are inside the verbs

    register_training(verbs, fmt)


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from garagelab.playground import make_task, names, requirement

    table = Table("env", "obs", "act", "ctrl dt", "substeps", "episode")
    unavailable = {}
    for name in names():
        needs = requirement(name)
        if needs:  # its sizes come from a model that is not here
            unavailable[name] = needs
            table.add_row(name, "-", "-", "-", "-", "-")
            continue
        task = make_task(name)
        obs = _observation_size(task)
        table.add_row(name, str(obs), str(task.action_size), f"{task.dt:g}", str(task.n_substeps),
                      str(task.config.episode_length))  # fmt: skip
    Console().print(table)
    for name, needs in unavailable.items():
        print(f"{name} {needs}")
    return 0


def _observation_size(task) -> int:
    from garagelab.playground.cpu_engine import CpuEngine

    return int(CpuEngine(task, 1, nthread=1).reset(0).obs.shape[-1])


def _info(args: argparse.Namespace) -> int:
    from garagelab.playground import make_task
    from garagelab.playground.config import flatten

    task = make_task(args.env, _overrides(args.set))
    described = task.describe()
    print(f"{args.env}: observation {_observation_size(task)}, action {described['action_size']}, "
          f"dt {described['dt']:g} s ({described['n_substeps']} x {described['sim_dt']:g} s), "
          f"nq {described['nq']}, nv {described['nv']}")  # fmt: skip
    print(f"model: {getattr(task, 'model_source', 'garagelab (DM Control XML)')}")
    for key, value in flatten(task.config).items():
        print(f"  {key} = {value}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from garagelab.playground.bench import bench

    print(f"{'env':<24}{'engine':<8}{'envs':>6}{'first step s':>14}{'env steps/s':>14}{'physics steps/s':>17}")
    for n in args.num_envs:
        r = bench(args.env, args.engine, n, steps=args.steps, nthread=args.threads)
        print(f"{r.env:<24}{r.engine:<8}{n:>6}{r.first_step_s:>14.2f}{r.steps_per_s:>14,.0f}"
              f"{r.physics_steps_per_s:>17,.0f}")  # fmt: skip
    return 0


def _render(args: argparse.Namespace) -> int:
    os.environ.setdefault("MUJOCO_GL", "egl")
    from garagelab.playground.render import render

    camera = int(args.camera) if args.camera and args.camera.lstrip("-").isdigit() else args.camera
    path, total = render(args.env, args.out or f"{args.env}.mp4", steps=args.steps, width=args.width,
                         height=args.height, camera=camera, seed=args.seed)  # fmt: skip
    print(f"wrote {path} ({args.steps} steps, return {total:.3f})")
    return 0
