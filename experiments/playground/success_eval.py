"""How often a policy for a goal task (Go1Getup, Go1Handstand, Go1Footstand, HandCubeReorient)
gets there, over deterministic episodes from the task's own starts (the return mixes in
shaping terms).

    GARAGELAB_RUNS=runs python experiments/playground/success_eval.py RUN [--episodes 64]

Getup: an episode succeeds when the robot ends upright (gravity within 0.1 of straight down in
the trunk frame) at the standing height, the gate of the task's stand-still reward; also the
time it first got there. Handstand/Footstand: the share of episodes that last the full 10 s
without a fall or a standing leg's knee on the floor, and the share of their time spent in the
stand (trunk within 26 degrees of vertical, IMU above 0.45 m). HandCubeReorient: goals reached
per episode (each within 0.1 rad), the share of episodes that reached at least one, drops, and
the angle to the goal at the end.
"""

from __future__ import annotations

import argparse

import numpy as np

from garagelab.playground import train
from garagelab.playground.registry import load

IN_STAND_ORIENTATION = 0.9  # ((cos + 1) / 2)^2 > 0.9: cos > 0.897, within 26 degrees
IN_STAND_HEIGHT = 0.45  # metres


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "run", help="run id or directory (a Go1Getup, Go1Handstand, Go1Footstand or HandCubeReorient run)"
    )
    parser.add_argument("--episodes", type=int, default=64)
    args = parser.parse_args()
    run = train.load_run(args.run)
    env = load(run.env, "cpu", args.episodes, run.overrides, seed=1, auto_reset=False, **run.interface)
    policy = train.policy_fn(run.learner)
    state = env.reset(1)
    fallen = np.asarray(state.obs)[:, 5] > -0.95  # Getup: gravity's z in the trunk frame, -1 upright
    n, steps = args.episodes, 0
    alive, ended = np.ones(n, bool), np.zeros(n, bool)
    first_stand = np.full(n, np.nan)
    upright = np.zeros(n, bool)  # Getup: upright (the posture term's gate) at the end
    heights = np.zeros(n)
    in_stand = np.zeros(n)
    successes, angle = np.zeros(n), np.zeros(n)  # HandCubeReorient
    target = getattr(env.task.config, "target_height", 0.0)
    while alive.any():
        state = env.step(state, policy(state.obs))
        steps += 1
        metrics = {k.removeprefix("reward/"): np.asarray(v) for k, v in state.metrics.items()}
        if run.env == "Go1Getup":
            standing = metrics["stand_still"] > 0  # the gate: upright at the standing height
            first_stand = np.where(np.isnan(first_stand) & standing & alive, steps * env.dt, first_stand)
            ended = np.where(alive, standing, ended)
            upright = np.where(alive, metrics["orientation"] > np.exp(-2 * 0.01), upright)
            heights = np.where(alive, np.log1p(metrics["torso_height"]), heights)  # exp(min(h, target)) - 1
        elif run.env == "HandCubeReorient":
            successes = np.where(alive, np.asarray(state.info["successes"]), successes)
            # the orientation term is a linear tolerance (0.2 rad, margin pi, 0.1 at the margin), inverted
            found = np.minimum(0.2 + np.pi * (1 - metrics["orientation"]) / 0.9, np.pi)
            angle = np.where(alive, found, angle)
            ended = np.where(alive, np.asarray(state.info["truncation"]) > 0, ended)
        else:
            height = target + np.log(np.maximum(metrics["height"], 1e-12))  # min(h, target)
            posed = (metrics["orientation"] > IN_STAND_ORIENTATION) & (height > IN_STAND_HEIGHT)
            in_stand += posed & alive
            ended = np.where(alive, np.asarray(state.info["truncation"]) > 0, ended)
        alive &= np.asarray(state.done) == 0
    if run.env == "Go1Getup":
        reached = first_stand[fallen & ~np.isnan(first_stand)]
        print(f"{run.env} ({run.learner.steps:,} steps): standing at the end of {int(ended.sum())} of {n} "
              f"episodes ({100 * ended.mean():.0f}%); of the {int(fallen.sum())} that started fallen (not "
              f"upright), {int(ended[fallen].sum())} ended standing and {reached.size} got up at least once, "
              f"median {np.median(reached) if reached.size else float('nan'):.2f} s after the start; "
              f"{int(upright[fallen].sum())} ended upright, IMU height at the end median "
              f"{np.median(heights[fallen]):.3f} m (standing: {target} m)")  # fmt: skip
    elif run.env == "HandCubeReorient":
        print(f"{run.env} ({run.learner.steps:,} steps): goals reached per episode mean {successes.mean():.2f} "
              f"(max {successes.max():.0f}); at least one in {int((successes > 0).sum())} of {n}; the cube "
              f"dropped in {int((~ended).sum())}; angle to the goal at the end median "
              f"{np.median(angle):.2f} rad (0.2: within 0.2)")  # fmt: skip
    else:
        print(f"{run.env} ({run.learner.steps:,} steps): lasted the full episode in {int(ended.sum())} of {n} "
              f"({100 * ended.mean():.0f}%); in the stand for {100 * in_stand.sum() / (n * steps):.0f}% of "
              f"the {n} x {steps * env.dt:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
