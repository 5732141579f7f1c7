"""The DM Control suite table: every task trained with its tuned settings at a stated budget,
over several seeds, scored by deterministic evaluation.

    GARAGELAB_RUNS=runs python experiments/playground/suite.py --steps 1000000 --seeds 3
    python experiments/playground/suite.py --tasks CartpoleBalance,WalkerStand --algos ppo,sac
    python experiments/playground/suite.py --table-only        # rewrite the table from the cells

Each cell (task, learner, seed) trains in its own directory under `--out`/runs with
checkpoints, so a killed suite resumes inside the cell it was in; a finished cell writes
`--out`/cells/<task>-<algo>-<seed>.json and is skipped on the next run. The table
(`--out`/suite.md) gives, per task and learner, the mean and standard deviation over seeds of
the deterministic return over `--episodes` episodes, the seeds' returns, the wall time, and
which learner did better. Budgets are env steps (policy steps) per cell, the same for every task
unless `--steps` is left out, in which case each task's tuned total applies. A cell records the
learner settings it was trained with (the budget among them), and a run whose settings for it
differ (another budget, or tuned settings changed since) is refused before anything trains: a
table never mixes settings or reports old cells as the new settings' results.

Beside each task the table gives a published reference: CleanRL's `ppo_continuous_action` on
dm_control (Shimmy) after 8M env steps, mean and standard deviation over 10 seeds
(docs/rl-algorithms/rpo.md of github.com/vwxyzjn/cleanrl, the dm_control result table). Those
are returns of the training episodes (the stochastic policy), not a deterministic evaluation,
and at 8M steps, so a row trained for less is not expected to reach them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from garagelab.core.progress import ProgressBar
from garagelab.playground import train
from garagelab.playground.registry import default_config, names
from garagelab.playground.tasks.dmc import DmcConfig

RESULTS = Path(__file__).resolve().parent / "results" / "suite"
REFERENCE = "CleanRL PPO, 8M steps, 10 seeds (training episodes)"
# (mean, sd) of the reference's returns per task, from the table named in the docstring
REFERENCE_RETURNS: dict[str, tuple[float, float]] = {
    "AcrobotSwingup": (26.87, 7.93),
    "AcrobotSwingupSparse": (1.70, 0.88),
    "BallInCup": (935.26, 12.57),
    "CartpoleBalance": (790.36, 17.64),
    "CartpoleBalanceSparse": (986.04, 9.93),
    "CartpoleSwingup": (590.21, 16.72),
    "CartpoleSwingupSparse": (240.14, 299.93),
    "CheetahRun": (472.14, 99.62),
    "FingerSpin": (630.06, 252.99),
    "FingerTurnEasy": (237.76, 78.10),
    "FingerTurnHard": (83.76, 28.96),
    "FishSwim": (80.42, 9.18),
    "HopperHop": (6.48, 18.92),
    "HopperStand": (3.26, 1.65),
    "HumanoidRun": (5.44, 9.16),
    "HumanoidStand": (20.76, 29.35),
    "HumanoidWalk": (8.92, 18.01),
    "PendulumSwingup": (472.19, 385.47),
    "PointMass": (534.23, 264.35),  # point_mass-easy
    "ReacherEasy": (773.01, 56.70),
    "ReacherHard": (637.84, 81.15),
    "SwimmerSwimmer6": (164.22, 18.44),
    "WalkerRun": (128.18, 91.52),
    "WalkerStand": (439.24, 210.22),
    "WalkerWalk": (305.74, 92.15),
}


def dm_control_tasks() -> list[str]:
    return [name for name in names() if isinstance(default_config(name), DmcConfig)]


def cell_config(task: str, algo: str, seed: int, steps: int | None) -> train.Config:
    """The cell's learner settings: the task's tuned ones, its seed, and the budget if given."""
    return train.tuned_config(task, algo=algo, seed=seed, **({"total_steps": steps} if steps else {}))


def cell_settings(config: train.Config) -> dict:
    """The learner settings a cell records, as JSON gives them back."""
    return json.loads(json.dumps(train.ALGORITHMS[train.algorithm_of(config)].config_dict(config)))


def check_settings(record: Path, settings: dict) -> None:
    """Refuse to reuse a finished cell trained with other settings (see the module docstring)."""
    done = json.loads(record.read_text()).get("settings", {})
    changed = sorted(key for key in settings.keys() | done.keys() if done.get(key) != settings.get(key))
    if changed:
        differences = ", ".join(f"{key} {done.get(key)} -> {settings.get(key)}" for key in changed)
        raise SystemExit(
            f"error: {record} was trained with other settings ({differences}): give these settings their own --out"
        )


def run_cell(task: str, algo: str, seed: int, steps: int | None, episodes: int, out: Path) -> dict:
    """Train (or continue) one cell and evaluate it; the cell's JSON is its record."""
    config = cell_config(task, algo, seed, steps)
    directory = out / "runs" / f"{task}-{algo}-{seed}"
    start = time.perf_counter()
    learner = train.train(task, config, directory, progress=False)
    wall = learner.history[-1].get("wall_s", time.perf_counter() - start) if learner.history else 0.0
    evaluation = train.evaluate(task, learner, episodes=episodes)
    return {
        "task": task,
        "algo": algo,
        "seed": seed,
        "settings": cell_settings(config),
        "steps": learner.steps,
        "train_s": round(float(wall), 1),
        "returns": [round(r, 2) for r in evaluation.returns],
        "mean_return": round(evaluation.mean_return, 2),
    }


def _better(means: dict[str, float], returns: dict[str, list[float]]) -> str:
    """The learner whose mean beats the other's by more than either's seed spread, else ''."""
    if len(means) < 2:
        return ""
    first, second = sorted(means, key=means.get, reverse=True)[:2]
    spread = max(statistics.stdev(r) if len(r) > 1 else 0.0 for r in returns.values())
    return first if means[first] - means[second] > spread else ""


def write_table(out: Path) -> Path:
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    by_task: dict[str, dict[str, list[dict]]] = {}
    for cell in cells:
        by_task.setdefault(cell["task"], {}).setdefault(cell["algo"], []).append(cell)
    lines = [
        "# DM Control suite (garagelab playground, experiments/playground/suite.py)",
        "",
        "Deterministic return (policy mean action) over each cell's evaluation episodes; mean and "
        "standard deviation over seeds. Steps are env steps per seed. Measured on this machine "
        "(2 CPU cores, the CPU engine); written by the script, not by hand. 'better' marks the learner "
        "whose mean beats the other's by more than the larger seed standard deviation. The reference "
        f"column: {REFERENCE}, mean ± sd (a published table, not run here; see the script's docstring).",
        "",
        f"| task | learner | steps | seeds | return mean | sd | per seed | train s (mean) | better | {REFERENCE} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task in dm_control_tasks():
        algos = by_task.get(task, {})
        means = {a: statistics.mean(c["mean_return"] for c in cs) for a, cs in algos.items()}
        best = _better(means, {a: [c["mean_return"] for c in cs] for a, cs in algos.items()})
        for algo, group in sorted(algos.items()):
            returns = [c["mean_return"] for c in sorted(group, key=lambda c: c["seed"])]
            sd = statistics.stdev(returns) if len(returns) > 1 else float("nan")
            train_s = statistics.mean(c["train_s"] for c in group)
            steps = sorted({c["steps"] for c in group})
            lines.append(
                f"| {task} | {algo} | {'/'.join(f'{s:,}' for s in steps)} | {len(group)} | {means[algo]:.1f} | "
                f"{sd:.1f} | {', '.join(f'{r:.0f}' for r in returns)} | {train_s:.0f} | "
                f"{'yes' if algo == best else ''} | {_reference(task)} |"
            )
    missing = [t for t in dm_control_tasks() if t not in by_task]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    path = out / "suite.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _reference(task: str) -> str:
    mean, sd = REFERENCE_RETURNS[task]
    return f"{mean:.1f} ± {sd:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="all", help="comma-separated DM Control tasks, or all")
    parser.add_argument("--algos", default="ppo", help="comma-separated, of ppo and sac")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=0, help="env steps per cell (0: each task's tuned total)")
    parser.add_argument("--episodes", type=int, default=10, help="deterministic evaluation episodes per cell")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    tasks = dm_control_tasks() if args.tasks == "all" else args.tasks.split(",")
    unknown = sorted(set(tasks) - set(dm_control_tasks()))
    algos = args.algos.split(",")
    if unknown or not set(algos) <= {"ppo", "sac"} or args.seeds < 1:
        parser.error(f"tasks must be DM Control tasks ({', '.join(unknown) or 'ok'}); algos ppo or sac; seeds >= 1")
    (args.out / "cells").mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        todo = [(t, a, s) for t in tasks for a in algos for s in range(args.seeds)]
        records = {cell: args.out / "cells" / f"{'-'.join(map(str, cell))}.json" for cell in todo}
        for (task, algo, seed), record in records.items():  # before anything trains
            if record.is_file():
                check_settings(record, cell_settings(cell_config(task, algo, seed, args.steps or None)))
        with ProgressBar(len(todo), "suite cells", unit="cells") as bar:
            for task, algo, seed in todo:
                record = records[task, algo, seed]
                if not record.is_file():  # finished cells are skipped: a killed suite resumes
                    cell = run_cell(task, algo, seed, args.steps or None, args.episodes, args.out)
                    record.write_text(json.dumps(cell, indent=1))
                    print(
                        f"{task} {algo} seed {seed}: {cell['mean_return']:.1f} in {cell['train_s']:.0f} s", flush=True
                    )
                bar.advance(1)
    print(f"table: {write_table(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
