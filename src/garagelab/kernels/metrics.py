"""KernelBench's metrics over searches, one search per problem.

- compile rate: attempts that built (neither a syntax, lint, static nor compile failure);
- fast_0: problems with a correct kernel (correct = passed correctness and honesty);
- fast_p: problems whose best correct kernel beats eager PyTorch by more than p (fast_1: any
  speed-up), as a fraction of *all* problems (KernelBench's `fastp`); the same against
  `torch.compile` where the verifier timed it (on a GPU by default);
- geometric-mean speed-up over the problems solved (and timed: the Triton interpreter's are not);
- attempts and seconds to the first correct kernel; hacks caught (verdicts of kind `hack`);
- where the searches re-measured their winners (loop.py), the fraction whose winner is faster
  than eager PyTorch beyond noise (its 90 % interval above 1): fast_1 counts a median above 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from garagelab.evolve.database import ProgramDB
from garagelab.kernels.loop import REMEASURE

NOT_BUILT = ("syntax", "lint", "static", "compile")


@dataclass(frozen=True)
class ProblemResult:
    """One search: the verdict of every attempt in order, and the best speed-up."""

    name: str
    failures: tuple[str, ...]  # "" for a correct attempt
    speedups: tuple[float | None, ...]
    compile_speedups: tuple[float | None, ...] = ()  # over torch.compile, where it was timed
    seconds: tuple[float | None, ...] = ()  # on the loop's clock when each verdict came
    # the winner re-measured at the search's end (loop.py): its speed-up and 90 % interval
    final: float | None = None
    final_interval: tuple[float, float] | None = None
    seed: dict | None = None  # the tuner's seed re-measured beside it: speedup, speedup_interval
    beats_seed: bool = False

    @property
    def best(self) -> float | None:
        """The re-measured winner's speed-up where the search re-measured (the largest of many
        noisy medians is biased upwards), else the best attempt's."""
        if self.final is not None:
            return self.final
        correct = [s for f, s in zip(self.failures, self.speedups, strict=True) if not f and s is not None]
        return max(correct) if correct else None

    @property
    def beats_eager(self) -> bool:
        """Faster than eager PyTorch beyond noise: the re-measured interval's lower end above 1."""
        return self.final_interval is not None and self.final_interval[0] > 1

    @property
    def first_correct_s(self) -> float | None:
        number = self.first_correct
        return self.seconds[number - 1] if number is not None and self.seconds else None

    @property
    def best_vs_compile(self) -> float | None:
        """The best kernel's speed-up over torch.compile (None where it was not timed)."""
        if self.best is None or not self.compile_speedups:
            return None
        for failure, speedup, compiled in zip(self.failures, self.speedups, self.compile_speedups, strict=True):
            if not failure and speedup == self.best:
                return compiled
        return None

    @property
    def first_correct(self) -> int | None:
        return next((i + 1 for i, f in enumerate(self.failures) if not f), None)


def read_search(db_path: Path, name: str = "") -> ProblemResult:
    db = ProgramDB(db_path)
    try:
        evaluated = [p for p in db.programs() if p.evaluated]
    finally:
        db.close()
    programs = [p for p in evaluated if p.proposer != REMEASURE]
    last = max((p.id for p in programs), default=0)
    # the latest re-measurement (a resumed search re-measures again after its new attempts)
    again = [p for p in evaluated if p.proposer == REMEASURE and p.id > last]
    winner = next((p for p in again if (p.metrics or {}).get("winner")), None)
    interval = (winner.metrics or {}).get("speedup_interval") if winner else None
    return ProblemResult(
        name or Path(db_path).parent.name,
        tuple(p.failure or "" for p in programs),
        tuple(p.score for p in programs),
        tuple((p.metrics or {}).get("speedup_compile") for p in programs),
        tuple((p.metrics or {}).get("loop_s") for p in programs),
        winner.score if winner else None,
        tuple(interval) if interval else None,
        winner.metrics.get("seed") if winner else None,
        bool(winner.metrics.get("beats_seed")) if winner else False,
    )


def summarize(results: list[ProblemResult], thresholds: tuple[float, ...] = (1.0, 1.2, 2.0)) -> dict:
    attempts = [f for r in results for f in r.failures]
    built = [f for f in attempts if f not in NOT_BUILT]
    solved = [r.best for r in results if r.best is not None]
    timed = [s for s in solved if s > 0]
    firsts = [r.first_correct for r in results if r.first_correct is not None]
    first_seconds = sorted(s for r in results if (s := r.first_correct_s) is not None)
    summary = {
        "problems": len(results),
        "attempts": len(attempts),
        "compile rate": len(built) / len(attempts) if attempts else math.nan,
        "fast_0": len(solved) / len(results) if results else math.nan,
        "geomean speed-up": math.exp(sum(math.log(s) for s in timed) / len(timed)) if timed else math.nan,
        "attempts to first correct (median)": sorted(firsts)[len(firsts) // 2] if firsts else math.nan,
        "seconds to first correct (median)": first_seconds[len(first_seconds) // 2] if first_seconds else math.nan,
        "hacks caught": sum(f == "hack" for f in attempts),
    }
    for p in thresholds:
        summary[f"fast_{p:g}"] = sum(s > p for s in solved) / len(results) if results else math.nan
    if any(r.final_interval is not None for r in results):  # fast_1 with the noise taken into account
        summary["faster than eager beyond noise"] = sum(r.beats_eager for r in results) / len(results)
    versus_compile = [r.best_vs_compile for r in results if r.best_vs_compile is not None]
    if versus_compile:
        for p in thresholds:
            summary[f"fast_{p:g} vs torch.compile"] = sum(s > p for s in versus_compile) / len(results)
    return summary
