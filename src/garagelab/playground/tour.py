"""Tour step: a random-action quadruped rendered offscreen, and CPU-engine throughput."""

from __future__ import annotations

from garagelab.core.tour import TourContext

TITLE = "robot environments on the CPU engine (MuJoCo batch stepping, Go1-class quadruped)"


def run(ctx: TourContext) -> dict[str, float]:
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from garagelab.playground import names
    from garagelab.playground.bench import bench
    from garagelab.playground.render import render

    report = ctx.report
    report.text(
        f"{len(names())} registered envs (DM Control Suite, Go1 joystick), each written once against an array "
        "namespace and run here by the CPU engine: MuJoCo 4's threaded batch stepping with the task in numpy. "
        "The same task classes run on MJX (jit + vmap) on a GPU."
    )
    steps = 60 if ctx.quick else 150
    clip, total = render(
        "Go1JoystickFlatTerrain", ctx.run.path / "playground" / "go1-random.gif", steps=steps, width=320, height=240
    )
    report.image(clip, f"Go1JoystickFlatTerrain, uniform random actions, {steps} control steps of 20 ms.")
    sizes = (1, 64) if ctx.quick else (1, 64, 256)
    rows = []
    for name in ("CartpoleBalance", "Go1JoystickFlatTerrain"):
        for n in sizes:
            r = bench(name, "cpu", n, steps=100, repeats=2)
            rows.append({
                "env": name, "envs": n, "first step s": round(r.first_step_s, 3),
                "env steps/s": round(r.steps_per_s), "physics steps/s": round(r.physics_steps_per_s),
            })  # fmt: skip
    report.table(rows)
    report.text("Random actions with auto-reset, all cores; time to first step includes building the env.")
    go1 = max(r["env steps/s"] for r in rows if r["env"] == "Go1JoystickFlatTerrain")
    return {"go1 env steps/s": float(go1), "random return": round(total, 3)}
