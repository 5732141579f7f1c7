"""Does the model pay for itself? The same search with offline proposals only, the local coder
only, and both, at equal evaluations and at equal wall-clock, several seeds, on two tasks.

`--task cognitive`: CogFunSearch on synthetic choices (`synthetic:afp:12`: an agent with
asymmetric learning rates, forgetting and perseveration, which the Q-learning template does not
contain; 8 subjects searched, 4 held out), each program fitted per subject (2 restarts, 150
steps); the offline proposer is evolve's mutation library.

`--task kernels`: the kernel loop on `09_row_sum` (CPU size, C++), every arm starting from our
seed kernel; the offline proposer is the knob tuner (`--proposer tune`), the model refines the
best kernel so far (`--proposer llm --seed-kernel`), and `both` lets a bandit choose per attempt
(`--proposer both`). A run's score is its winner's speed-up over eager PyTorch re-measured at
the end with twice the rounds (the search's own best is biased upwards).

Model: Qwen2.5-Coder-1.5B-Instruct on the local llama-server (`garagelab llm install --model
qwen2.5-coder-1.5b`), one call and one evaluation at a time, so a replay reproduces a run.

Every model call is kept in `results/llm_contribution/[kernels/]<run>.jsonl`; `--replay` reruns
each model run from those recordings, without a model, and checks that it gets the same programs
and the same scores (kernels: the same kernels and verdicts; speed-ups are timings, measured
again). Each run is saved as it ends: an interrupted measurement goes on from there (`--fresh`
starts over).

    .venv/bin/python experiments/evolve/llm_contribution.py                   # about an hour on 2 cores
    .venv/bin/python experiments/evolve/llm_contribution.py --replay          # about 3 min, no model
    .venv/bin/python experiments/evolve/llm_contribution.py --task kernels    # about an hour on 2 cores
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import shutil
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from garagelab.cogsearch.search import ENGINE, CogSearchConfig, start
from garagelab.core.plots import figure, save
from garagelab.core.runs import RunStore
from garagelab.evolve.database import ProgramDB
from garagelab.evolve.search import DB_NAME, SearchConfig, recorded_calls
from garagelab.kernels.loop import REMEASURE, LoopConfig, run_loop
from garagelab.kernels.mixed import proposer_for
from garagelab.kernels.seeds import seed_for
from garagelab.llm.client import LLMClient, ReplayClient
from garagelab.llm.records import Replay

MODEL = "qwen2.5-coder-1.5b"
ARMS = {"mutation": ("mutation",), "llm": ("llm",), "both": ("mutation", "llm")}
RESULTS = Path(__file__).parent / "results" / "llm_contribution"


class Cognitive:
    """CogFunSearch on synthetic choices; one evaluation fits a program to 8 subjects."""

    results = RESULTS
    data = "synthetic:afp:12"
    budget, minutes = 24, 2.0
    offline = "mutation"
    replayed = "same programs and scores"

    def __init__(self, store: RunStore) -> None:
        self.store = store

    def config(self, arm: str, seed: int, budget: int, minutes: float, replay: str = "") -> CogSearchConfig:
        proposers = ARMS[arm] if not replay else tuple("replay" if p == "llm" else p for p in ARMS[arm])
        engine = replace(ENGINE, budget=budget, islands=2, workers=1, samplers=1, seed=seed, max_minutes=minutes)
        search = SearchConfig(task="cogsearch", proposers=proposers, engine=engine, model=MODEL, replay=replay)
        return CogSearchConfig(data=self.data, restarts=2, max_steps=150, search=search)

    def run(self, arm: str, seed: int, budget: int, minutes: float, replay: str = "") -> dict:
        start_s = time.perf_counter()
        config = self.config(arm, seed, budget, minutes, replay)
        path = start(config, f"{arm}-seed{seed}", store=self.store, progress=False)
        return self.outcome(path / DB_NAME, time.perf_counter() - start_s)

    @staticmethod
    def outcome(path: Path, seconds: float) -> dict:
        """A run's numbers: best score, evaluations, model calls, improvements of the best by proposer."""
        db = ProgramDB(path)
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
        return {"best": best, "template": curve[0], "evaluations": len(curve), "seconds": seconds,
                "calls": len(calls), "improvements": improvements, "curve": curve, "programs": programs,
                "records": calls}  # fmt: skip

    def same(self, again: dict, row: dict) -> bool:
        rounded = [[(s, None if v is None else round(v, 9)) for s, v in r["programs"]] for r in (again, row)]
        return rounded[0] == rounded[1]


class Kernels:
    """The kernel loop on one problem from our seed kernel; one evaluation verifies and times a
    kernel. The model server stays up across runs (started once, lazily)."""

    results = RESULTS / "kernels"
    problem = Path(__file__).resolve().parents[2] / "src" / "garagelab" / "kernels" / "suite" / "09_row_sum.py"
    budget, minutes = 12, 3.0
    offline = "tune"
    replayed = "same kernels and verdicts"  # speed-ups are timings, measured again

    def __init__(self, store: RunStore) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="kernels-contribution-"))
        self.stack = contextlib.ExitStack()
        self.client: LLMClient | None = None

    def model(self, replay: str) -> LLMClient:
        if replay:
            return ReplayClient(Replay(recorded_calls(replay)))
        if self.client is None:
            from garagelab.llm.server import LocalServer

            server = self.stack.enter_context(LocalServer(MODEL, slots=1))
            self.client = LLMClient(server.client_config(max_tokens=2048, temperature=0.8))
        return self.client

    def run(self, arm: str, seed: int, budget: int, minutes: float, replay: str = "") -> dict:
        kind = {"mutation": "tune", "llm": "llm", "both": "both"}[arm]
        proposer = proposer_for(kind, seed_for(self.problem), lambda: self.model(replay), seed)
        path = self.folder / f"{arm}-seed{seed}-{time.time_ns()}.sqlite"
        config = LoopConfig(budget_s=minutes * 60 if minutes else 86_400, max_attempts=budget, seed=seed)
        start_s = time.perf_counter()
        final = run_loop(self.problem, proposer, path, config, progress=False)
        return self.outcome(path, time.perf_counter() - start_s, final)

    @staticmethod
    def outcome(path: Path, seconds: float, final) -> dict:
        """The re-measured winner's speed-up (and whether it beats the seed beyond noise), the
        search's best-so-far curve, and its improvements beyond noise by proposer."""
        db = ProgramDB(path)
        try:
            attempts = [p for p in db.programs() if p.evaluated and p.proposer != REMEASURE]
            calls = db.calls()
        finally:
            db.close()
        best, improvements, curve = None, {}, []
        for program in attempts:
            if not program.failure and program.score is not None:
                low = program.metrics.get("speedup_interval", [program.score])[0]
                if best is not None and low > best:  # beyond noise: its interval clears the best's median
                    improvements[program.proposer] = improvements.get(program.proposer, 0) + 1
                best = program.score if best is None else max(best, program.score)
            curve.append(best if best is not None else 0.0)
        seed = final.seed.outcome.score if final is not None and final.seed is not None else curve[0]
        return {"best": final.winner.outcome.score if final is not None else 0.0, "template": seed,
                "beats_seed": bool(final and final.beats_seed), "evaluations": len(attempts), "seconds": seconds,
                "calls": len(calls), "improvements": improvements, "curve": curve,
                "programs": [(p.source, p.failure) for p in attempts], "records": calls}  # fmt: skip

    def same(self, again: dict, row: dict) -> bool:
        return [tuple(p) for p in again["programs"]] == [tuple(p) for p in row["programs"]]

    def close(self) -> None:
        self.stack.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TASKS = {"cognitive": Cognitive, "kernels": Kernels}


def measure(task, seeds: int, budget: int, minutes: float, done: dict[str, dict]) -> list[dict]:
    """Every run, each saved as it ends; runs in `done` (by tag, from an interrupted
    measurement of the same settings) are kept instead of run again."""
    rows = []
    task.results.mkdir(parents=True, exist_ok=True)
    for setting, (n, m) in {"equal evaluations": (budget, 0.0), "equal wall-clock": (10_000, minutes)}.items():
        for arm in ARMS:
            for seed in range(seeds):
                tag = f"{'evals' if m == 0 else 'clock'}-{arm}-seed{seed}"
                if tag in done:
                    rows.append(done[tag])
                    continue
                result = task.run(arm, seed, n, m)
                if records := result.pop("records"):
                    lines = (json.dumps(asdict(call)) for call in records)
                    (task.results / f"{tag}.jsonl").write_text("\n".join(lines) + "\n")
                if not result["calls"]:
                    del result["programs"]  # kept for the model runs, which --replay checks against
                rows.append({"setting": setting, "arm": arm, "seed": seed, "tag": tag, **result})
                (task.results / "runs.json").write_text(json.dumps(rows, indent=1))
                print(
                    f"{setting}, {arm}, seed {seed}: best {result['best']:.4f} (start {result['template']:.4f}) "
                    f"after {result['evaluations']} evaluations, {result['calls']} model calls, "
                    f"{result['seconds']:.0f} s",
                    flush=True,
                )
    return rows


def table(rows: list[dict], offline: str) -> str:
    lines = [
        "| setting | proposers | best score, mean over seeds (each seed) | evaluations | model calls | wall-clock s "
        f"| improvements of the best by the model / by {offline} |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting in dict.fromkeys(r["setting"] for r in rows):
        for arm in ARMS:
            group = [r for r in rows if r["setting"] == setting and r["arm"] == arm]
            bests = [r["best"] for r in group]
            each = ", ".join(f"{b:.4f}" for b in bests)
            model = sum(r["improvements"].get("llm", 0) for r in group)
            offline_count = sum(r["improvements"].get(offline, 0) for r in group)
            mean = {key: np.mean([r[key] for r in group]) for key in ("evaluations", "calls", "seconds")}
            lines.append(
                f"| {setting} | {arm} | {np.mean(bests):.4f} ({each}) | {mean['evaluations']:.0f} "
                f"| {mean['calls']:.0f} | {mean['seconds']:.0f} | {model} / {offline_count} |"
            )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, ylabel: str) -> None:
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
        ax.set_ylabel(ylabel)
        ax.set_title(setting)
        ax.legend(loc="lower right")
    save(fig, path)


def replay_all(task, rows: list[dict]) -> list[str]:
    """Rerun every model run from its recording; say whether programs and scores match."""
    verdicts = []
    for row in rows:
        recording = task.results / f"{row['tag']}.jsonl"
        if row["arm"] == "mutation" or not recording.is_file():
            continue
        again = task.run(row["arm"], row["seed"], row["evaluations"], 0.0, replay=str(recording))
        same = task.same(again, row)
        verdicts.append(f"{row['tag']}: {task.replayed if same else 'DIFFERENT'} "
                        f"({again['evaluations']} evaluations, best {again['best']:.4f})")  # fmt: skip
        print(verdicts[-1], flush=True)
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=tuple(TASKS), default="cognitive")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, help="evaluations per run (equal evaluations; cognitive 24, kernels 12)")
    parser.add_argument("--minutes", type=float, help="wall-clock per run (equal wall-clock; cognitive 2, kernels 3)")
    parser.add_argument("--replay", action="store_true", help="rerun the recorded model runs without a model")
    parser.add_argument("--fresh", action="store_true", help="run everything again (default: keep the saved runs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        task = TASKS[args.task](RunStore(Path(tmp)))
        try:
            report(task, args)
        finally:
            getattr(task, "close", lambda: None)()


def report(task, args: argparse.Namespace) -> None:
    saved = task.results / "runs.json"
    if args.replay:
        verdicts = replay_all(task, json.loads(saved.read_text()))
        (task.results / "replay.md").write_text("\n".join(f"- {v}" for v in verdicts) + "\n")
        return
    done = {} if args.fresh or not saved.is_file() else {r["tag"]: r for r in json.loads(saved.read_text())}
    rows = measure(task, args.seeds, args.budget or task.budget, args.minutes or task.minutes, done)
    with (task.results / "runs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["setting", "arm", "seed", "best", "start", "evaluations", "calls", "seconds"])
        for r in rows:
            writer.writerow([r["setting"], r["arm"], r["seed"], r["best"], r["template"], r["evaluations"],
                             r["calls"], round(r["seconds"], 1)])  # fmt: skip
    text = table(rows, task.offline)
    (task.results / "results.md").write_text(text + "\n")
    ylabel = "best speed-up over eager so far" if task.offline == "tune" else "best search score so far"
    plot(rows, task.results / "curves.png", ylabel)
    print(text)


if __name__ == "__main__":
    main()
