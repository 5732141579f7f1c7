"""Rendered env steps/s: the CPU engine with pixel observations against its state-only rate.

    python benchmarks/playground/bench_pixels.py                       # CartpoleBalance, 1/16/64 envs
    python benchmarks/playground/bench_pixels.py --num-envs 32 --size 64,128 --modes grey,rgb,depth

For each env count: state-only steps/s, then with 64x64 grey frames (three stacked, the scene's
shadows, reflections and skybox off: what `train --pixels` uses) and any other sizes and modes
asked for, rendered in this process and in worker processes, each with its ratio to the
state-only rate measured in the same run. A last line
times one env's frames with MuJoCo's default scene flags against the minimal ones, the lever
`pixels.py` pulls. Playground's published vision figure (Madrona on an RTX 4090: 163k steps/s
at 1,024 envs, 128 px) needs a GPU and its batch renderer; it is not measured here.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from garagelab.playground.bench import bench
from garagelab.playground.pixels import PixelSpec


def frames_per_s(name: str, minimal: bool, size: int, count: int = 300) -> float:
    """One env's frames/s at `size` px, from a random walk of its physics, default or minimal scene."""
    from garagelab.playground.registry import make_task
    from garagelab.playground.render import Camera

    task = make_task(name)
    view = Camera(task.mj_model, size, size, camera=0, minimal=minimal)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(count):
        view.frame({"qpos": task.mj_model.qpos0 + 0.1 * rng.standard_normal(task.mj_model.nq)})
    view.close()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartpoleBalance")
    parser.add_argument("--num-envs", default="1,16,64")
    parser.add_argument("--size", default="64", help="frame sizes (px), comma-separated")
    parser.add_argument("--modes", default="grey", help="grey, rgb, depth; comma-separated")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="the CPU engine's physics threads (0: all cores)")
    parser.add_argument("--workers", default="0,2", help="render processes to compare (0: in process)")
    args = parser.parse_args()
    print(f"{args.env}, CPU engine, {args.steps} steps of random actions, best of 3 (env steps/s)")
    for num_envs in (int(n) for n in args.num_envs.split(",")):
        state_only = bench(args.env, "cpu", num_envs, args.steps, nthread=args.threads).steps_per_s
        print(f"{num_envs:>5} envs  state only {state_only:>10,.0f}")
        for size in (int(s) for s in args.size.split(",")):
            for mode in args.modes.split(","):
                for workers in (int(w) for w in args.workers.split(",")):
                    spec = PixelSpec(width=size, height=size, mode=mode, workers=workers)
                    rate = bench(args.env, "cpu", num_envs, args.steps, nthread=args.threads, pixels=spec).steps_per_s
                    print(f"{num_envs:>5} envs  {mode} {size}x{size} x{spec.stack}, {workers} render workers "
                          f"{rate:>10,.0f}   ratio to state only {rate / state_only:.3f}")  # fmt: skip
    size = int(args.size.split(",")[0])
    default, minimal = (frames_per_s(args.env, m, size) for m in (False, True))
    print(f"one env, {size}x{size} RGB frames/s: default scene {default:,.0f}, minimal {minimal:,.0f} "
          f"(ratio {minimal / default:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
