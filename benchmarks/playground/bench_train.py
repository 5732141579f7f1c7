"""Time to reward: our PPO against MuJoCo Playground 0.2.0 with brax's PPO, same machine, same
step budget, measured in one run.

    python benchmarks/playground/bench_train.py [--steps 1000000] [--target 800] [--png curve.png]
    python benchmarks/playground/bench_train.py --engine mjx --num-envs 2048 --playground-envs 0  # a GPU

- ours: `playground.train` with the env's tuned settings (CartpoleBalance: 128 envs, unroll 32,
  a 64x64 MLP) on the CPU engine, or with `--engine mjx` the on-device PPO (ppo_mjx) with
  `--num-envs` envs; the deterministic policy evaluated on 8 episodes (CPU engine) every
  `--eval-every` env steps, evaluation time excluded;
- Playground: its own `brax_ppo_config(env)` (network, learning rate, discount, reward scaling,
  minibatches, updates per batch) with the envs and batch cut to `--playground-envs` (256 by
  default: its 2048-8192 envs are sized for a GPU; 0 keeps them), `impl="jax"`, evaluated by
  brax's `num_evals`. It runs in its own venv (bench_envs.py sets it up: Playground 0.2.0 with
  jax 0.9.2, placeholder meshes for Menagerie's visual-only Go1 meshes).
Printed: wall time to the first evaluation at or above `--target`, the final evaluation, and
env steps per second, each side; learning curves as a PNG with `--png`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ours(name: str, engine: str, steps: int, eval_every: int, num_envs: int) -> list[tuple[float, int, float]]:
    """(seconds, env steps, deterministic return) at every evaluation."""
    from garagelab.playground import ppo, train

    sizes = {"num_envs": num_envs} if num_envs else {}
    config = train.tuned_config(name, total_steps=steps, **sizes)
    env = train.make_env(name, config, engine=engine)
    state = env.reset(config.seed)
    learner = ppo.learner_for(config, env, state)
    iterate = train.make_iterate(env, config, engine)
    curve, start, spent_evaluating, next_eval = [], time.perf_counter(), 0.0, eval_every
    while learner.iteration < config.iterations:
        state, _ = iterate(learner, state)
        if learner.steps >= next_eval or learner.iteration == config.iterations:
            pause = time.perf_counter()
            value = train.evaluate(name, learner, episodes=8).mean_return
            spent_evaluating += time.perf_counter() - pause
            curve.append((time.perf_counter() - start - spent_evaluating, learner.steps, value))
            print(f"  ours: {learner.steps:>9,} steps {curve[-1][0]:7.1f} s return {value:7.1f}", flush=True)
            next_eval += eval_every
    return curve


PLAYGROUND_WORKER = r"""
import functools, json, sys, time
name, steps, evals, envs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start = time.perf_counter()
from brax.training.agents.ppo import networks as ppo_networks
from brax.training.agents.ppo import train as ppo
from mujoco_playground import registry, wrapper
from mujoco_playground._src import locomotion
from mujoco_playground.config import dm_control_suite_params, locomotion_params

env = registry.load(name, config_overrides={"impl": "jax"})
params_module = locomotion_params if name in locomotion.ALL_ENVS else dm_control_suite_params
params = dict(params_module.brax_ppo_config(name))
factory = functools.partial(ppo_networks.make_ppo_networks, **params.pop("network_factory", {}))
params.update(num_timesteps=steps, num_evals=evals, num_eval_envs=8)
if envs:
    params.update(num_envs=envs, batch_size=envs)
curve = []
def progress(step, metrics):
    curve.append((time.perf_counter() - start, int(step), float(metrics["eval/episode_reward"])))
    print(json.dumps({"progress": curve[-1]}), flush=True)
ppo.train(environment=env, network_factory=factory, progress_fn=progress,
          wrap_env_fn=wrapper.wrap_for_brax_training, **params)
"""


def playground(name: str, steps: int, evals: int, envs: int, venv: Path, python: str = "") -> list:
    """Playground's curve, from `python` (an interpreter that has it) or a venv built on first use."""
    if not python:
        sys.path.insert(0, str(HERE))
        from bench_envs import setup_playground

        python = str(setup_playground(venv))
    command = [str(python), "-c", PLAYGROUND_WORKER, name, str(steps), str(evals), str(envs)]
    curve = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as worker:
        for line in worker.stdout:  # each evaluation as it comes: a long run shows its progress
            if line.startswith('{"progress"'):
                seconds, step, value = json.loads(line)["progress"]
                curve.append((seconds, step, value))
                print(f"  playground: {step:>9,} steps {seconds:7.1f} s return {value:7.1f}", flush=True)
        errors = worker.stderr.read()
    if worker.returncode != 0:
        print("  playground failed: " + " | ".join(errors.strip().splitlines()[-3:]))
    return curve


def summary(name: str, curve: list, target: float) -> str:
    if not curve:
        return f"{name}: no result"
    reached = next((point for point in curve if point[2] >= target), None)
    seconds, steps, value = curve[-1]
    when = f"{reached[0]:.0f} s ({reached[1]:,} steps)" if reached else "not reached"
    rate = f"{steps / seconds:,.0f} steps/s"
    return f"{name}: return >= {target:g} at {when}; final {value:.1f} after {steps:,} steps, {rate}"


def ratios(mine: list, theirs: list, target: float) -> str:
    """Playground's time to `target` and its env steps/s, each over ours (same run)."""
    if not mine or not theirs:
        return "ratio: needs both sides"
    first = [next((p for p in curve if p[2] >= target), None) for curve in (mine, theirs)]
    rates = [curve[-1][1] / curve[-1][0] for curve in (mine, theirs)]
    sooner = f"{first[1][0] / first[0][0]:.0f}x sooner" if all(first) else "not reached by both"
    # Playground's first hit is an upper bound: brax evaluates only every so many steps
    return f"ratio: time to {target:g}: ours {sooner}; env steps/s: ours {rates[0] / rates[1]:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartpoleBalance", help="ours (a registered env)")
    parser.add_argument("--playground-env", default="", help="Playground's env (default: the same name)")
    parser.add_argument("--engine", choices=("cpu", "mjx"), default="cpu")
    parser.add_argument("--num-envs", type=int, default=0, help="ours (default: the tuned setting)")
    parser.add_argument("--playground-envs", type=int, default=256, help="0: Playground's own setting")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--target", type=float, default=800.0)
    parser.add_argument("--eval-every", type=int, default=100_000)
    parser.add_argument("--skip-playground", action="store_true")
    parser.add_argument("--playground-venv", type=Path, default=Path("/tmp/garagelab-bench-playground"))
    parser.add_argument("--playground-python", default="", help="an interpreter with Playground and brax (no venv)")
    parser.add_argument("--png", type=Path, help="write the learning curves here")
    args = parser.parse_args()
    print(f"{args.env}, {args.steps:,} env steps each")
    mine = ours(args.env, args.engine, args.steps, args.eval_every, args.num_envs)
    theirs = []
    if not args.skip_playground:
        name, evals = args.playground_env or args.env, args.steps // args.eval_every
        theirs = playground(name, args.steps, evals, args.playground_envs, args.playground_venv, args.playground_python)
    print(summary(f"ours ({args.engine.upper()} engine + JAX PPO)", mine, args.target))
    print(summary("playground 0.2.0 + brax PPO", theirs, args.target))
    print(ratios(mine, theirs, args.target))
    if args.png:
        from garagelab.core.plots import figure

        fig, (ax,) = figure(width=6, height=3.5)
        for label, curve in (("ours", mine), ("Playground + brax", theirs)):
            if curve:
                ax.plot([p[0] for p in curve], [p[2] for p in curve], "o-", label=label)
        ax.axhline(args.target, color="gray", linestyle="--", linewidth=1)
        ax.set_xlabel("wall-clock seconds")
        ax.set_ylabel("deterministic episode return")
        ax.legend(loc="lower right")
        fig.savefig(args.png, dpi=120, bbox_inches="tight")
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
