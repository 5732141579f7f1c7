"""The biped joystick policy trained on 2 CPU cores: does it walk at commanded speeds without falling?

    garagelab playground train BipedJoystickFlatTerrain --name biped   # about 45 min on 2 cores
    python experiments/playground/biped_walk.py RUN                      # RUN: the run's id or directory

From the run's metrics.csv: the velocity-tracking reward and the episode length against env
steps. From the trained policy, deterministic, on the CPU engine: each command (forward,
sideways, turning, standing, and a mix) held for 20 s by 8 robots from the task's random
starts; the body-frame velocity they reach after the first 2 s, its spread over the robots, and
how many fell. A filmstrip and a GIF of the gait at 0.75 m/s.
Writes experiments/playground/results/biped_walk.md, biped_training.png, biped_gait.png, biped_walk.gif.
"""

from __future__ import annotations

import argparse

import numpy as np
from go1_forward import RESULTS, curve, filmstrip, held, track, tracking_plot, write_report

from garagelab.playground import train
from garagelab.playground.render import frames_from_states, rollout, save

# (forward m/s, sideways m/s, turn rad/s), inside the task's command ranges
COMMANDS = (
    (0.0, 0.0, 0.0),
    (0.25, 0.0, 0.0),
    (0.5, 0.0, 0.0),
    (0.75, 0.0, 0.0),
    (1.0, 0.0, 0.0),
    (-0.5, 0.0, 0.0),
    (0.0, 0.3, 0.0),
    (0.0, -0.3, 0.0),
    (0.0, 0.0, 0.5),
    (0.0, 0.0, -0.5),
    (0.5, 0.0, 0.5),
)
SECONDS = 20.0


def gif(env_name: str, learner, command: tuple[float, float, float], seconds: float = 2.5) -> None:
    policy = train.policy_fn(learner)
    task, states, _ = rollout(env_name, policy, round(seconds / 0.02), seed=3, config_overrides=held(command, 1000))
    every = 3  # 60 ms a frame keeps the GIF small (about 400 KB for 2.5 s)
    frames = frames_from_states(task.mj_model, states[::every], width=160, height=120)
    save(frames, RESULTS / "biped_walk.gif", fps=1 / (every * task.dt))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a BipedJoystickFlatTerrain training run (id or directory)")
    parser.add_argument("--robots", type=int, default=8)
    args = parser.parse_args()
    trained = train.load_run(args.run)
    env_name, learner, run = trained.env, trained.learner, trained.path
    RESULTS.mkdir(parents=True, exist_ok=True)
    history = curve(run)
    minutes = history["wall_s"][-1] / 60
    seconds = history["length"] * 0.02
    tracking_plot(
        history,
        f"env steps (millions; {minutes:.0f} min on 2 CPU cores)",
        (np.isfinite(seconds), seconds, "episode length (s; 20 s = no fall)"),
        RESULTS / "biped_training.png",
    )

    steps = round(SECONDS / 0.02)
    rows, falls = [], 0
    for command in COMMANDS:
        mean, spread, fell = track(env_name, learner, command, args.robots, steps)
        falls += fell
        rows.append(
            f"| {command[0]:+.2f}, {command[1]:+.2f}, {command[2]:+.2f} | {mean[0]:+.3f}, {mean[1]:+.3f}, "
            f"{mean[2]:+.3f} | {spread[0]:.3f}, {spread[1]:.3f}, {spread[2]:.3f} | {fell} |"
        )
    filmstrip(env_name, learner, RESULTS / "biped_gait.png", crop=(slice(25, 200), slice(100, 230)))
    gif(env_name, learner, (0.75, 0.0, 0.0))
    lines = [
        f"Run: {env_name}, {history['steps'][-1] / 1e6:.1f}M env steps, {minutes:.0f} min of training on 2 CPU "
        f"cores; last iteration's tracking reward {history['tracking'][-1]:.3f}, mean episode length "
        f"{seconds[-1]:.1f} s. Evaluation: {len(COMMANDS)} commands x {args.robots} robots x "
        f"{SECONDS:.0f} s, deterministic policy; {falls} falls in all.",
        "",
        "| command: forward, sideways (m/s), turn (rad/s) | reached (mean over robots, after 2 s) "
        f"| spread (sd over robots) | fell (of {args.robots}) |",
        "|---|---|---|---|",
        *rows,
    ]
    write_report(lines, "biped_walk.md", "biped_training.png", "biped_gait.png", "biped_walk.gif")


if __name__ == "__main__":
    main()
