"""Does the model pay for itself? The same search with offline mutations only, the local coder
only, and both, at equal evaluations and at equal wall-clock, several seeds.

Task: CogFunSearch on synthetic choices (`synthetic:afp:12`: an agent with asymmetric learning
rates, forgetting and perseveration, which the Q-learning template does not contain; 8
subjects searched, 4 held out), each program fitted per subject (2 restarts, 150 steps). Model:
Qwen2.5-Coder-1.5B-Instruct on the local llama-server (`garagelab llm install --model
qwen2.5-coder-1.5b`), one call and one evaluation at a time, so a replay reproduces a run.

Every model call is kept in `results/llm_contribution/<run>.jsonl`; `--replay` reruns each
model run from those recordings, without a model, and checks that it gets the same programs and
the same scores. Each run is saved as it ends: an interrupted measurement goes on from there
(`--fresh` starts over).

    .venv/bin/python experiments/evolve/llm_contribution.py                # about an hour on 2 cores
    .venv/bin/python experiments/evolve/llm_contribution.py --replay       # about 3 min, no model
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from garagelab.cogsearch.search import ENGINE, CogSearchConfig, start
from garagelab.core.plots import figure, save
from garagelab.core.runs import RunStore
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.search import DB_NAME, SearchConfig

DATA = "synthetic:afp:12"
MODEL = "qwen2.5-coder-1.5b"
ARMS = {"mutation": ("mutation",), "llm": ("llm",), "both": ("mutation", "llm")}
RESULTS = Path(__file__).parent / "results" / "llm_contribution"
SAVED = RESULTS / "runs.json"  # every finished run, written as each ends (a killed measurement goes on from it)


def config(arm: str, seed: int, budget: int, minutes: float, replay: str = "") -> CogSearchConfig:
    proposers = ARMS[arm] if not replay else tuple("replay" if p == "llm" else p for p in ARMS[arm])
    engine = replace(ENGINE, budget=budget, islands=2, workers=1, samplers=1, seed=seed, max_minutes=minutes)
    search = SearchConfig(task="cogsearch", proposers=proposers, engine=engine, model=MODEL, replay=replay)
    return CogSearchConfig(data=DATA, restarts=2, max_steps=150, search=search)


def outcome(path: Path, seconds: float) -> dict:
    """A run's numbers: best score, evaluations, model calls, improvements of the best by proposer."""
    db = ProgramDB(path / DB_NAME)
    try:
        best, improvements, curve = -np.inf, {}, []
        for _, score, failure, proposer in db.history():
            if not failure and score is not None and score > best:
                best = score
                improvements[proposer] = improvements.get(proposer, 0) + (proposer != "template")
            curve.append(best)
        programs = [(p.source, p.score) for p in db.programs() if p.evaluated]
        calls = db.calls()
    finally:
        db.close()
    return {
        "best": best,
        "template": curve[0],
        "evaluations": len(curve),
        "seconds": seconds,
        "calls": len(calls),
        "improvements": improvements,
        "curve": curve,
        "programs": programs,
        "records": calls,
    }


def run(arm: str, seed: int, budget: int, minutes: float, store: RunStore, replay: str = "") -> dict:
    start_s = time.perf_counter()
    path = start(config(arm, seed, budget, minutes, replay), f"{arm}-seed{seed}", store=store, progress=False)
    return outcome(path, time.perf_counter() - start_s)


def measure(seeds: int, budget: int, minutes: float, done: dict[str, dict]) -> list[dict]:
    """Every run, each saved as it ends; runs in `done` (by tag, from an interrupted
    measurement of the same settings) are kept instead of run again."""
    rows = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp))
        for setting, (n, m) in {"equal evaluations": (budget, 0.0), "equal wall-clock": (10_000, minutes)}.items():
            for arm in ARMS:
                for seed in range(seeds):
                    tag = f"{'evals' if m == 0 else 'clock'}-{arm}-seed{seed}"
                    if tag in done:
                        rows.append(done[tag])
                        continue
                    result = run(arm, seed, n, m, store)
                    if records := result.pop("records"):
                        lines = (json.dumps(asdict(call)) for call in records)
                        (RESULTS / f"{tag}.jsonl").write_text("\n".join(lines) + "\n")
                    if not result["calls"]:
                        del result["programs"]  # kept for the model runs, which --replay checks against
                    rows.append({"setting": setting, "arm": arm, "seed": seed, "tag": tag, **result})
                    SAVED.write_text(json.dumps(rows, indent=1))
                    print(
                        f"{setting}, {arm}, seed {seed}: best {result['best']:.4f} (template {result['template']:.4f}) "
                        f"after {result['evaluations']} evaluations, {result['calls']} model calls, "
                        f"{result['seconds']:.0f} s",
                        flush=True,
                    )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| setting | proposers | best score, mean over seeds (each seed) | evaluations | model calls | wall-clock s "
        "| improvements of the best by the model / by mutation |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting in dict.fromkeys(r["setting"] for r in rows):
        for arm in ARMS:
            group = [r for r in rows if r["setting"] == setting and r["arm"] == arm]
            bests = [r["best"] for r in group]
            each = ", ".join(f"{b:.4f}" for b in bests)
            model = sum(r["improvements"].get("llm", 0) for r in group)
            mutation = sum(r["improvements"].get("mutation", 0) for r in group)
            mean = {key: np.mean([r[key] for r in group]) for key in ("evaluations", "calls", "seconds")}
            lines.append(
                f"| {setting} | {arm} | {np.mean(bests):.4f} ({each}) | {mean['evaluations']:.0f} "
                f"| {mean['calls']:.0f} | {mean['seconds']:.0f} | {model} / {mutation} |"
            )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = figure(ncols=2, width=5.5, height=4)
    colours = {"mutation": "tab:gray", "llm": "tab:blue", "both": "tab:purple"}
    for ax, setting in zip(axes, ("equal evaluations", "equal wall-clock"), strict=True):
        for r in (r for r in rows if r["setting"] == setting):
            x = np.arange(1, len(r["curve"]) + 1)
            if setting == "equal wall-clock":
                x = x * r["seconds"] / len(r["curve"])  # evaluations spread over the run's time
            ax.step(x, r["curve"], where="post", color=colours[r["arm"]], alpha=0.7,
                    label=r["arm"] if r["seed"] == 0 else None)  # fmt: skip
        ax.set_xlabel("evaluations" if setting == "equal evaluations" else "seconds (evaluations spread evenly)")
        ax.set_ylabel("best search score so far")
        ax.set_title(setting)
        ax.legend(loc="lower right")
    save(fig, path)


def replay_all(rows: list[dict]) -> list[str]:
    """Rerun every model run from its recording; say whether programs and scores match."""
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp))
        for row in rows:
            recording = RESULTS / f"{row['tag']}.jsonl"
            if row["arm"] == "mutation" or not recording.is_file():
                continue
            again = run(row["arm"], row["seed"], row["evaluations"], 0.0, store, replay=str(recording))
            same = [(s, None if v is None else round(v, 9)) for s, v in again["programs"]] == [
                (s, None if v is None else round(v, 9)) for s, v in row["programs"]
            ]
            verdicts.append(f"{row['tag']}: {'same programs and scores' if same else 'DIFFERENT'} "
                            f"({again['evaluations']} evaluations, best {again['best']:.4f})")  # fmt: skip
            print(verdicts[-1], flush=True)
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=24, help="evaluations per run (equal evaluations)")
    parser.add_argument("--minutes", type=float, default=2.0, help="wall-clock per run (equal wall-clock)")
    parser.add_argument("--replay", action="store_true", help="rerun the recorded model runs without a model")
    parser.add_argument("--fresh", action="store_true", help="run everything again (default: keep the saved runs)")
    args = parser.parse_args()
    if args.replay:
        verdicts = replay_all(json.loads(SAVED.read_text()))
        (RESULTS / "replay.md").write_text("\n".join(f"- {v}" for v in verdicts) + "\n")
        return
    done = {} if args.fresh or not SAVED.is_file() else {r["tag"]: r for r in json.loads(SAVED.read_text())}
    rows = measure(args.seeds, args.budget, args.minutes, done)
    with (RESULTS / "runs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["setting", "arm", "seed", "best", "template", "evaluations", "calls", "seconds"])
        for r in rows:
            writer.writerow([r["setting"], r["arm"], r["seed"], r["best"], r["template"], r["evaluations"],
                             r["calls"], round(r["seconds"], 1)])  # fmt: skip
    text = table(rows)
    (RESULTS / "results.md").write_text(text + "\n")
    plot(rows, RESULTS / "curves.png")
    print(text)


if __name__ == "__main__":
    main()
