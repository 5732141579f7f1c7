"""Tour step: the verifier on our reference kernels, and a short offline search on CPU."""

from __future__ import annotations

from garagelab.core.tour import TourContext

TITLE = "verifier-guided kernel search (C++ and Triton-interpreter kernels on CPU, offline tuner)"


def run(ctx: TourContext) -> dict[str, float]:
    from pathlib import Path

    from garagelab.core.plots import figure
    from garagelab.evolve.database import ProgramDB
    from garagelab.kernels.candidates import references
    from garagelab.kernels.loop import REMEASURE, LoopConfig, TuneProposer, run_loop
    from garagelab.kernels.seeds import seed_for
    from garagelab.kernels.task import build_task

    here = Path(__file__).resolve().parent
    report = ctx.report
    report.text(
        "Each reference kernel runs in the sandbox against its KernelBench-format problem, verified on the trusted "
        "side: static rules, correctness over 3 seeds x 3 input distributions on fresh sealed inputs, PyTorch "
        "fallbacks from what forward dispatches, a second size, and timing against eager PyTorch in a clean "
        "process of its own (interleaved rounds, one thread each, every timed output checked)."
    )
    rows = []
    for reference in references():
        task = build_task(reference.problem, "cpu", timing=True)
        outcome = task.evaluate(reference.path.read_text())
        metrics = outcome.metrics
        verdict = "correct" if outcome.ok else outcome.failure
        if metrics.get("interpreted"):
            verdict += " (Triton interpreter: not timed)"
        rows.append({
            "kernel": reference.name, "problem": reference.problem.stem, "verdict": verdict,
            "ours ms": metrics.get("candidate_ms", ""), "eager ms": metrics.get("eager_ms", ""),
            "speed-up": metrics.get("speedup", ""),
            "90 % interval": "-".join(f"{v:.3g}" for v in metrics.get("speedup_interval", [])),
        })  # fmt: skip
    report.table(rows)
    attempts = 4 if ctx.quick else 10
    db_path = ctx.run.path / "kernels" / "programs.sqlite"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    proposer = TuneProposer(seed_for(here / "suite" / "13_matmul.py"), seed=0)
    config = LoopConfig(budget_s=600, max_attempts=attempts)
    final = run_loop(here / "suite" / "13_matmul.py", proposer, db_path, config, progress=False)
    db = ProgramDB(db_path)
    scores = [p.score for p in db.programs() if p.proposer != REMEASURE]
    db.close()
    fig, (ax,) = figure(width=6, height=3.5)
    ax.plot(range(1, len(scores) + 1), [s if s is not None else float("nan") for s in scores], "o-", label="search")
    if final is not None:
        low, high = final.winner.interval
        score = final.winner.outcome.score
        ax.errorbar([final.winner.number], [score], [[score - low], [high - score]], fmt="s", color="C3", capsize=4,
                    label="winner, re-measured (90 % interval)")  # fmt: skip
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1, label="eager PyTorch")
    ax.set_xlabel("attempt")
    ax.set_ylabel("speed-up over eager (correct kernels)")
    ax.legend(loc="lower right")
    report.text(
        f"The closed loop without a model: the offline tuner changes one knob (block sizes, unroll) of a blocked C++ "
        f"matmul per attempt ({attempts} at most, fewer when it has converged), then re-measures its top kernels and "
        f"the seed with twice the rounds; a setting replaces the seed only if it is faster beyond the noise of both."
    )
    report.figure(fig, "kernels-tuning", "Speed-up of each verified attempt over eager PyTorch (single thread).")
    return {"best speed-up": round(final.winner.outcome.score, 3) if final else float("nan")}
