"""The quadruped joystick policy trained on 2 CPU cores: does it track forward velocity commands?

    garagelab playground train Go1JoystickForward --name go1-forward   # under an hour on 2 cores
    python experiments/playground/go1_forward.py RUN                     # RUN: the run's id or directory

From the run's metrics.csv: the tracking reward (exp(-|v_cmd - v|^2 / 0.25), averaged over the
envs and steps of each PPO iteration) and the episode return against wall-clock training time.
From the trained policy, deterministic, on the CPU engine: each commanded forward speed held for
10 s by 8 robots (random headings and start poses), the body-frame forward speed they reach
(after the first 2 s) and how many fell; a filmstrip of the gait at 0.75 m/s.
Writes experiments/playground/results/go1_forward.md, go1_tracking.png, go1_gait.png.
"""

from __future__ import annotations

import argparse
import csv
from datetime import datetime
from pathlib import Path

import numpy as np

from garagelab.playground import train
from garagelab.playground.registry import load
from garagelab.playground.render import frames_from_states

RESULTS = Path(__file__).parent / "results"
COMMANDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def curve(run: Path) -> dict[str, np.ndarray]:
    with open(run / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    return {
        "steps": np.array([float(r["steps"]) for r in rows]),
        "tracking": np.array([float(r["env/reward/tracking_lin_vel"]) for r in rows]),
        "return": np.array([float(r["episode_return"]) for r in rows]),
        "length": np.array([float(r["episode_length"]) for r in rows]),  # policy steps
        "wall_s": np.array([float(r["wall_s"]) for r in rows]),
    }


def held(command: tuple[float, float, float], steps: int) -> dict:
    """Config overrides that hold one joystick command (forward, sideways, turn) for `steps`."""
    vx, vy, yaw = command
    ranges = {"lin_vel_x": (vx, vx), "lin_vel_y": (vy, vy), "ang_vel_yaw": (yaw, yaw)}
    return {**ranges, "command_resample_steps": steps + 1}


def track(
    env_name: str, learner, command: tuple[float, float, float], robots: int = 8, steps: int = 500
) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and spread over robots of the body-frame velocity (forward, sideways, turn rate)
    after the first 2 s of holding `command`, and how many robots fell."""
    env = load(env_name, "cpu", robots, held(command, steps), seed=7, auto_reset=False, nthread=1)
    policy = train.policy_fn(learner)
    state = env.reset(7)
    velocities, fell = [], np.zeros(robots, bool)
    for t in range(steps):
        state = env.step(state, policy(state.obs))
        fell |= (state.done > 0) & (np.asarray(state.info["truncation"]) == 0)  # not the episode's time limit
        if t >= 100:  # obs[0:2]: body-frame linear velocity; obs[5]: yaw rate (the joystick tasks)
            reached = state.obs[:, [0, 1, 5]]
            velocities.append(np.where(fell[:, None], np.nan, reached))
    per_robot = np.nanmean(np.array(velocities), axis=0)
    return np.nanmean(per_robot, axis=0), np.nanstd(per_robot, axis=0), int(fell.sum())


def filmstrip(
    env_name: str,
    learner,
    path: Path,
    command: tuple[float, float, float] = (0.75, 0.0, 0.0),
    crop: tuple[slice, slice] = (slice(50, 200), slice(90, 250)),  # rows, columns of the 320x240 frames
) -> None:
    overrides = held(command, 1000)
    env = load(env_name, "cpu", 1, overrides, seed=3, auto_reset=False, nthread=1)
    policy = train.policy_fn(learner)
    state = env.reset(3)
    states = []
    for t in range(160):
        state = env.step(state, policy(state.obs))
        if t >= 100 and t % 6 == 0:  # every 0.12 s once under way
            states.append({k: v[0] for k, v in env.env.physics(state).items()})
    frames = frames_from_states(env.task.mj_model, states[:8], width=320, height=240)
    from PIL import Image

    crops = [frame[crop] for frame in frames]  # the tracking camera keeps the robot central
    Image.fromarray(np.concatenate(crops, axis=1)).save(path)


def tracking_plot(
    history: dict[str, np.ndarray], xlabel: str, right: tuple[np.ndarray, np.ndarray, str], path: Path
) -> None:
    """The tracking reward against env steps, and on a second axis `right`: (rows to draw, values, label)."""
    from garagelab.core.plots import figure

    millions = history["steps"] / 1e6
    fig, (ax,) = figure(width=6.5, height=3.5)
    ax.plot(millions, history["tracking"], color="C0", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("velocity tracking reward", color="C0")
    ax.set_ylim(0, 1.05)
    other = ax.twinx()
    rows, values, label = right
    other.plot(millions[rows], values[rows], color="C1", linewidth=1, alpha=0.7)
    other.set_ylabel(label, color="C1")
    fig.savefig(path, dpi=120, bbox_inches="tight")


def write_report(lines: list[str], name: str, *figures: str) -> None:
    """The results table as RESULTS/name (markdown), printed, with the figures written beside it."""
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {RESULTS}/{name}, " + ", ".join(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a Go1JoystickForward training run (id or directory)")
    args = parser.parse_args()
    trained = train.load_run(args.run)
    env_name, learner, run = trained.env, trained.learner, trained.path
    RESULTS.mkdir(parents=True, exist_ok=True)
    history = curve(run)

    from garagelab.core.runs import RunStore

    record = RunStore().get(str(run.name))
    ended = datetime.fromisoformat(record.ended) if record.ended else datetime.now().astimezone()  # still running
    minutes = (ended - datetime.fromisoformat(record.started)).total_seconds() / 60
    millions = history["steps"] / 1e6
    finite = np.isfinite(history["return"])
    tracking_plot(
        history,
        f"env steps (millions; the whole run took {minutes:.0f} min on 2 CPU cores)",
        (finite, history["return"], "episode return"),
        RESULTS / "go1_tracking.png",
    )

    rows = []
    for c in COMMANDS:
        mean, spread, fell = track(env_name, learner, (c, 0.0, 0.0))
        rows.append((c, mean[0], spread[0], fell))
    filmstrip(env_name, learner, RESULTS / "go1_gait.png")
    lines = [
        f"Run: {env_name}, {millions[-1]:.1f}M env steps; the whole run (training, evaluation, video) took "
        f"{minutes:.1f} min on 2 CPU cores; "
        f"last iteration's tracking reward {history['tracking'][-1]:.3f}.",
        "",
        "| command (m/s) | reached (m/s, mean over 8 robots) | spread (sd) | ratio | fell (of 8) |",
        "|---|---|---|---|---|",
        *(f"| {c:.1f} | {m:.3f} | {s:.3f} | {m / c:.2f} | {f} |" for c, m, s, f in rows),
    ]
    write_report(lines, "go1_forward.md", "go1_tracking.png", "go1_gait.png")


if __name__ == "__main__":
    main()
