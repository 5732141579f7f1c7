"""Tour step: a program search on the toy fit-points task with offline mutations only."""

from __future__ import annotations

from garagelab.core.tour import TourContext

TITLE = "program search with sandboxed evaluation (no model needed)"


def run(ctx: TourContext) -> dict[str, float]:
    from garagelab.evolve.database import ProgramDB
    from garagelab.evolve.engine import EngineConfig
    from garagelab.evolve.live import progress_figure, summarize
    from garagelab.evolve.search import SearchConfig, execute

    budget = 40 if ctx.quick else 120
    config = SearchConfig(task="fit-points", engine=EngineConfig(budget=budget, islands=2, workers=2, seed=1))
    db_path = ctx.run.path / "evolve" / "programs.sqlite"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    execute(config, db_path, progress=False, name="tour")
    db = ProgramDB(db_path)
    summary = summarize(db)
    db.close()
    start = summary.curve[0][1]
    best = summary.best
    report = ctx.report
    report.text(
        f"Evolving f(x) to fit 61 samples of a hidden function, starting from f(x) = 0.5 x (score {start:.4g}, "
        f"minus the mean squared error). {summary.evaluated} candidates, each run in its own sandboxed process, "
        f"proposed by AST mutations alone (constants, operators, mechanisms from the task's library, crossover)."
    )
    report.figure(progress_figure(summary), "evolve-progress", "Best score over the search.")
    report.table([{"outcome": kind, "count": count} for kind, count in sorted(summary.failures.items())])
    if best is not None:
        report.heading(f"Best program (score {best.score:.4g})")
        report.code(best.source)
    return {"start score": round(start, 4), "best score": round(best.score, 4) if best else float("nan")}
