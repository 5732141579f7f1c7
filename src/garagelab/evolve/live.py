"""The view of a search: from its database alone, so another process can watch a live run.

`summarize` gathers the numbers (best over time, islands, proposer yield, failures, model
usage); `write_live` renders them as the run's `index.html`, which reloads itself while the run
goes on; `status_table` renders them for the terminal (`garagelab evolve status`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from garagelab.core.errors import UserError
from garagelab.evolve.database import Program, ProgramDB
from garagelab.evolve.engine import EngineConfig, Spend

REFRESH_S = 5


@dataclass(frozen=True)
class Summary:
    task: str
    evaluated: int
    proposed: int
    best: Program | None
    curve: list[tuple[int, float]]  # (evaluation number, best score so far)
    scores: list[tuple[int, float]]  # (evaluation number, score) of successful evaluations
    islands: list[dict]
    proposers: list[dict]
    failures: dict[str, int]
    llm: dict


def summarize(db: ProgramDB) -> Summary:
    programs = {p.id: p for p in db.programs()}
    best: Program | None = None
    running = -np.inf
    curve, scores = [], []
    per_proposer: dict[str, dict] = {}
    for number, (program_id, score, failure, proposer) in enumerate(db.history(), start=1):
        row = per_proposer.setdefault(proposer, {"proposer": proposer, "evaluated": 0, "ok": 0, "improved best": 0})
        row["evaluated"] += 1
        if not failure and score is not None:
            row["ok"] += 1
            scores.append((number, score))
            if score > running:
                running = score
                best = programs[program_id]
                row["improved best"] += proposer != "template"
        curve.append((number, running))
    for row in per_proposer.values():
        row["yield"] = row["improved best"] / row["evaluated"]
    islands: dict[int, dict] = {}
    for program in programs.values():
        row = islands.setdefault(program.island, {"island": program.island, "programs": 0, "best": None})
        row["programs"] += 1
        if program.score is not None and not program.failure and (row["best"] is None or program.score > row["best"]):
            row["best"] = program.score
    calls, prompt, completion, latency, truncated = db.call_totals()
    meta = db.config()
    llm = {
        "calls": calls,
        "prompt tokens": prompt,
        "completion tokens": completion,
        "mean latency s": latency,
        # answers cut at the token limit: refused unless a closed code block held the whole function
        "truncated": truncated,
    }
    engine = _engine_config(meta["config"])
    models = []
    for model, count, tokens_in, tokens_out, mean_latency in db.calls_by_model():
        row = {"model": model, "calls": count, "prompt tokens": tokens_in, "completion tokens": tokens_out}
        row["mean latency s"] = mean_latency
        if engine.priced:  # money at the model's price (per million prompt, completion tokens)
            row["cost"] = Spend({model: [count, tokens_in, tokens_out]}).cost(engine)
        models.append(row)
    if engine.priced:
        llm["cost"] = sum(row["cost"] for row in models)
    llm["models"] = models
    return Summary(
        task=meta["task"],
        evaluated=len(curve),
        proposed=len(programs),
        best=best,
        curve=curve,
        scores=scores,
        islands=[islands[i] for i in sorted(islands)],
        proposers=list(per_proposer.values()),
        failures=db.failure_counts(),
        llm=llm,
    )


def _engine_config(config: dict) -> EngineConfig:
    """The engine's settings with each model's price, from the run's stored configuration."""
    from garagelab.evolve.search import SearchConfig

    try:
        return SearchConfig.from_dict(config).engine_config()
    except UserError:  # a store written by another tool: no per-model prices
        price = config.get("engine", {}).get("price_per_mtok", (0.0, 0.0))
        return EngineConfig(price_per_mtok=tuple(price))


def progress_figure(summary: Summary):
    from garagelab.core.plots import figure

    fig, (ax,) = figure(width=7, height=3.8)
    if summary.scores:
        numbers, values = zip(*summary.scores, strict=True)
        floor = np.percentile(values, 10) if len(values) > 5 else min(values)
        shown = [(n, v) for n, v in zip(numbers, values, strict=True) if v >= floor]
        ax.scatter(*zip(*shown, strict=True), s=8, alpha=0.4, color="tab:gray", label="evaluated program")
    finite = [(n, v) for n, v in summary.curve if np.isfinite(v)]
    if finite:
        ax.step(*zip(*finite, strict=True), where="post", color="tab:blue", label="best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("score (higher is better)")
    ax.set_title(f"{summary.task}: best score over the search")
    if summary.scores:
        ax.legend(loc="lower right")
    return fig


def write_live(db: ProgramDB, directory: Path, title: str, live: bool, bandit=None) -> Path:
    """Write `index.html` (and its plot) into `directory`; `live` pages reload themselves."""
    from garagelab.core.report import Report

    summary = summarize(db)
    report = Report(directory, title, refresh_seconds=REFRESH_S if live else None)
    state = "running (this page reloads every 5 s)" if live else "stopped"
    best = summary.best
    report.text(
        f"Task {summary.task}: {summary.evaluated} evaluations of {summary.proposed} programs, {state}. "
        + (f"Best score {best.score:.6g} (program {best.id}, from {best.proposer})." if best else "No score yet.")
    )
    report.figure(progress_figure(summary), "progress", "Best score so far (line) and each evaluated program.")
    report.heading("Proposers")
    rows = summary.proposers
    if bandit is not None:
        rows = [{**row, "bandit pulls": bandit.pulls.get(row["proposer"], "")} for row in rows]
    report.table(rows)
    report.heading("Islands")
    report.table(summary.islands)
    report.heading("Evaluations by outcome")
    report.table([{"outcome": kind, "count": count} for kind, count in sorted(summary.failures.items())])
    if summary.llm["calls"]:
        report.heading("Model calls")
        report.table([{k: v for k, v in summary.llm.items() if k != "models"}])
        if len(summary.llm["models"]) > 1:
            report.table(summary.llm["models"])
    if best is not None:
        report.heading(f"Best program ({best.id})")
        report.code(best.source)
    return report.write()


def status_table(summary: Summary):
    """A rich renderable of the summary for the terminal."""
    from rich.console import Group
    from rich.table import Table

    head = Table(title=f"search: {summary.task}", show_header=False)
    head.add_row("evaluations", str(summary.evaluated))
    head.add_row("programs", str(summary.proposed))
    head.add_row("best score", f"{summary.best.score:.6g} (program {summary.best.id})" if summary.best else "-")
    head.add_row("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(summary.failures.items())))
    if summary.llm["calls"]:
        cut = f", {summary.llm['truncated']} cut at the token limit" if summary.llm["truncated"] else ""
        cost = f", cost {summary.llm['cost']:.4g}" if "cost" in summary.llm else ""
        tokens = f"{summary.llm['prompt tokens']} tokens in, {summary.llm['completion tokens']} out"
        head.add_row("model calls", f"{summary.llm['calls']} ({tokens}{cost}{cut})")
        if len(summary.llm["models"]) > 1:
            for row in summary.llm["models"]:
                cost = f", cost {row['cost']:.4g}" if "cost" in row else ""
                head.add_row(
                    f"  {row['model']}",
                    f"{row['calls']} calls, {row['prompt tokens']} + {row['completion tokens']} tokens, "
                    f"{row['mean latency s']:.1f} s each{cost}",
                )
    proposers = Table("proposer", "evaluated", "ok", "improved best", "yield", title="proposers")
    for row in summary.proposers:
        proposers.add_row(
            row["proposer"], str(row["evaluated"]), str(row["ok"]), str(row["improved best"]), f"{row['yield']:.2f}"
        )
    islands = Table("island", "programs", "best", title="islands")
    for row in summary.islands:
        best = f"{row['best']:.6g}" if row["best"] is not None else "-"
        islands.add_row(str(row["island"]), str(row["programs"]), best)
    return Group(head, proposers, islands)
