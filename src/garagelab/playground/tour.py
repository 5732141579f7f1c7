"""Tour step: a random-action quadruped rendered offscreen, CPU-engine throughput, and PPO
training CartpoleBalance on the CPU engine (learning curve and a clip of the trained policy)."""

from __future__ import annotations

from garagelab.core.tour import TourContext

TITLE = "robot environments and PPO on the CPU engine (MuJoCo batch stepping, Go1-class quadruped, cartpole)"


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
    trained = _train_cartpole(ctx)
    return {"go1 env steps/s": float(go1), "random return": round(total, 3), **trained}


def _train_cartpole(ctx: TourContext) -> dict[str, float]:
    """PPO on CartpoleBalance in the tour's run directory: curve, deterministic return, clip."""

    from garagelab.core.plots import figure
    from garagelab.playground import train
    from garagelab.playground.render import render

    steps = 700_000 if ctx.quick else 1_000_000
    config = train.tuned_config("CartpoleBalance", total_steps=steps)

    learner = train.train("CartpoleBalance", config, ctx.run.path / "playground" / "cartpole", progress=False)
    evaluation = train.evaluate("CartpoleBalance", learner, episodes=4)
    curve = [(r["steps"], r["episode_return"]) for r in learner.history if r["episodes"]]
    fig, (ax,) = figure(width=6, height=3.5)
    ax.plot([c[0] for c in curve], [c[1] for c in curve], "o-")
    ax.set_xlabel("env steps")
    ax.set_ylabel("training episode return")
    report = ctx.report
    report.text(
        f"PPO (ppo.py) trains CartpoleBalance on the CPU engine: {config.num_envs} envs x {config.unroll_length} steps "
        f"per iteration, a 64x64 MLP, {learner.steps:,} env steps. The deterministic policy returns "
        f"{evaluation.mean_return:.0f} of 1000 over 4 episodes."
    )
    report.figure(fig, "playground-cartpole-ppo", "Return of the training episodes that ended in each PPO iteration.")
    clip, _ = render("CartpoleBalance", ctx.run.path / "playground" / "cartpole-ppo.gif", train.policy_fn(learner),
                     steps=150, width=320, height=240)  # fmt: skip
    report.image(clip, "The trained policy, 150 control steps.")
    return {"cartpole eval return": round(evaluation.mean_return, 1)}
