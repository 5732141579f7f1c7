"""How close an ArmReach policy brings the gripper to the target: the distance at the end of
each of 8 deterministic episodes (the return mixes in the time spent getting there).

    GARAGELAB_RUNS=runs python experiments/playground/reach_distance.py RUN [--episodes 8]
"""

from __future__ import annotations

import argparse
import gc

import numpy as np

from garagelab.playground import train
from garagelab.playground.registry import load


def offset(state) -> np.ndarray:
    """target - gripper: the end of the state vector, in the obs or (pixels) the privileged obs."""
    return np.asarray(state.info.get("privileged_obs", state.obs))[:, -3:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run id or directory (an ArmReach run)")
    parser.add_argument("--episodes", type=int, default=8)
    args = parser.parse_args()
    run = train.load_run(args.run)
    env = load(run.env, "cpu", args.episodes, run.overrides, seed=1, auto_reset=False, nthread=1, **run.interface)
    policy = train.policy_fn(run.learner)
    state = env.reset(1)
    start = np.linalg.norm(offset(state), axis=1)
    final, alive = start.copy(), np.ones(args.episodes, bool)
    while alive.any():
        state = env.step(state, policy(state.obs))
        final = np.where(alive, np.linalg.norm(offset(state), axis=1), final)
        alive &= np.asarray(state.done) == 0
    print(f"{run.env} {run.interface or 'state'}: start distance (cm) {[round(100 * float(d), 1) for d in start]}")
    print(f"final distance (cm) {[round(100 * float(d), 1) for d in final]}; median {100 * np.median(final):.1f}, "
          f"mean {100 * final.mean():.1f}, within 3 cm {int((final < 0.03).sum())} of {args.episodes}")  # fmt: skip
    del env
    gc.collect()  # close the renderer while GL is still there


if __name__ == "__main__":
    main()
