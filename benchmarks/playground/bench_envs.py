"""Env steps/s and time to first step: ours (CPU, MJX, Warp engines) against MuJoCo Playground 0.2.0.

    python benchmarks/playground/bench_envs.py                      # ours on CPU + playground, this machine
    python benchmarks/playground/bench_envs.py --impls ours-mjx,ours-warp   # on a GPU machine
    python benchmarks/playground/bench_envs.py --impls ours-cpu,ours-mjx,playground --num-envs 1,64,256,4096

Every measurement runs in a fresh process (so "first step" counts imports, env build, and on
MJX/Playground the XLA compiles, on Warp its kernel compiles): import, load, reset, one step;
then `--steps` steps of uniform random actions with auto-reset, best of 3. Jax engines are
timed over a jitted `lax.scan` of the batched step, as Playground's own benchmark does, and
both reset finished envs to their cached first state (Playground's training default); our CPU
engine draws full resets, which cost it only the finished envs. Our Warp engine is stepped from
Python (one CUDA graph of the physics substeps per control step, the task's jax code around it)
with full resets.

Playground runs in its own virtual environment (default /tmp/garagelab-bench-playground),
made here on first use: `pip install playground==0.2.0 jax==0.9.2 jaxlib==0.9.2` (its own
resolution pulls jax 0.10, with which brax breaks), `impl="jax"` (its default "warp" is a
debugging path on CPU). Its Go1 needs Menagerie's meshes, which are visual only (contype 0,
explicit inertials): placeholder meshes are written so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

PLAYGROUND_PINS = ["playground==0.2.0", "jax==0.9.2", "jaxlib==0.9.2"]
ENVS = ("CartpoleBalance", "Go1JoystickFlatTerrain")
IMPLS = ("ours-cpu", "ours-mjx", "ours-warp", "playground")


# --- workers: one measurement each, printing one JSON line --------------------------------
def worker_ours(engine: str, name: str, num_envs: int, steps: int, threads: int) -> dict:
    start = time.perf_counter()
    from garagelab.playground.bench import bench  # imports count towards the first step

    imported = time.perf_counter() - start
    result = bench(name, engine, num_envs, steps=steps, repeats=3, nthread=threads)
    return {"first_step_s": imported + result.first_step_s, "steps_per_s": result.steps_per_s}


def worker_playground(name: str, num_envs: int, steps: int) -> dict:
    start = time.perf_counter()
    import jax
    import jax.numpy as jnp
    from mujoco_playground import registry, wrapper

    env = registry.load(name, config_overrides={"impl": "jax"})
    env = wrapper.wrap_for_brax_training(env, episode_length=1000, action_repeat=1)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    state = reset(jax.random.split(jax.random.PRNGKey(0), num_envs))
    key = jax.random.PRNGKey(1)
    actions = jax.random.uniform(key, (steps, num_envs, env.action_size), minval=-1, maxval=1)
    state = step(state, actions[0])
    jax.block_until_ready(state.obs)
    first = time.perf_counter() - start

    @jax.jit
    def rollout(state, actions):
        return jax.lax.scan(lambda s, a: (step(s, a), None), state, actions)[0]

    jax.block_until_ready(rollout(state, actions).obs)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        jax.block_until_ready(rollout(state, jnp.asarray(actions)).obs)
        best = min(best, time.perf_counter() - t)
    return {"first_step_s": first, "steps_per_s": steps * num_envs / best}


# --- the playground environment -------------------------------------------------------------
def _placeholder_stl(path: Path) -> None:
    """A tiny tetrahedron: Menagerie's Go1 meshes are visual only, so their shape does not matter."""
    v = [(0, 0, 0), (0.01, 0, 0), (0, 0.01, 0), (0, 0, 0.01)]
    faces = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    data = bytearray(80) + struct.pack("<I", len(faces))
    for face in faces:
        data += struct.pack("<3f", 0, 0, 0) + b"".join(struct.pack("<3f", *v[i]) for i in face) + b"\0\0"
    path.write_bytes(bytes(data))


def setup_playground(venv: Path) -> Path:
    """The venv's python, installing Playground 0.2.0 with a working jax pin on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"setting up {venv} (pip install {' '.join(PLAYGROUND_PINS)}; several minutes)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PLAYGROUND_PINS], check=True)
    where = "import mujoco_playground, pathlib; print(pathlib.Path(mujoco_playground.__file__).parent)"
    site = subprocess.run(
        [str(python), "-c", where],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assets = Path(site) / "external_deps" / "mujoco_menagerie" / "unitree_go1" / "assets"
    if not assets.is_dir():
        assets.mkdir(parents=True)
        for mesh in ("trunk", "hip", "thigh", "thigh_mirror", "calf"):
            _placeholder_stl(assets / f"{mesh}.stl")
    return python


# --- driver ---------------------------------------------------------------------------------
def measure(impl: str, name: str, num_envs: int, steps: int, threads: int, python: str) -> dict:
    cmd = [python, __file__, "--worker", impl, name, str(num_envs), str(steps), str(threads)]
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "")}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)[-400:]}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impls", default="ours-cpu,playground", help=f"comma-separated, of {', '.join(IMPLS)}")
    parser.add_argument("--envs", default=",".join(ENVS))
    parser.add_argument("--num-envs", default="1,64,256")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="CPU engine threads (0: all cores)")
    parser.add_argument("--playground-venv", default="/tmp/garagelab-bench-playground")
    parser.add_argument("--out", default="", help="write the results as JSON here")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        impl, name, n, steps, threads = args.worker
        if impl == "playground":
            result = worker_playground(name, int(n), int(steps))
        else:
            result = worker_ours(impl.removeprefix("ours-"), name, int(n), int(steps), int(threads))
        print(json.dumps(result))
        return 0

    impls = [i for i in args.impls.split(",") if i]
    unknown = [i for i in impls if i not in IMPLS]
    if unknown:
        parser.error(f"unknown impl(s) {unknown}; valid: {', '.join(IMPLS)}")
    pg_python = str(setup_playground(Path(args.playground_venv))) if "playground" in impls else ""
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}; {args.steps} steps, random actions, best of 3")
    rows = []
    header = f"{'env':<24}{'impl':<12}{'envs':>6}{'first step s':>14}{'env steps/s':>14}"
    print(header, flush=True)
    for name in args.envs.split(","):
        for n in [int(v) for v in args.num_envs.split(",")]:
            for impl in impls:
                python = pg_python if impl == "playground" else sys.executable
                r = measure(impl, name, n, args.steps, args.threads, python)
                rows.append({"env": name, "impl": impl, "num_envs": n, **r})
                if "error" in r:
                    print(f"{name:<24}{impl:<12}{n:>6}  failed: {r['error']}", flush=True)
                else:
                    print(f"{name:<24}{impl:<12}{n:>6}{r['first_step_s']:>14.2f}{r['steps_per_s']:>14,.0f}", flush=True)
    print("\nratios (ours / playground, env steps/s):")
    by_key = {(r["env"], r["impl"], r["num_envs"]): r for r in rows if "error" not in r}
    for (name, impl, n), r in by_key.items():
        base = by_key.get((name, "playground", n))
        if impl != "playground" and base:
            print(f"  {name:<24}{impl:<10}{n:>6}: {r['steps_per_s'] / base['steps_per_s']:6.2f}x steps/s, "
                  f"first step {base['first_step_s'] / r['first_step_s']:6.1f}x sooner")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps({"load_average": load, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
