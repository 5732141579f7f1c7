"""KernelBench's metrics over searches, one search per problem.

- compile rate: attempts that built (neither a syntax, lint, static nor compile failure);
- fast_0: problems with a correct kernel (correct = passed correctness and honesty);
- fast_p: problems whose best correct kernel beats eager PyTorch by more than p (fast_1: any
  speed-up), as a fraction of *all* problems (KernelBench's `fastp`); the same against
  `torch.compile` where the verifier timed it (on a GPU by default);
- geometric-mean speed-up over the problems solved (and timed: the Triton interpreter's are not);
- attempts and seconds to the first correct kernel; hacks caught (verdicts of kind `hack`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from garagelab.evolve.database import ProgramDB

NOT_BUILT = ("syntax", "lint", "static", "compile")


@dataclass(frozen=True)
class ProblemResult:
    """One search: the verdict of every attempt in order, and the best speed-up."""

    name: str
    failures: tuple[str, ...]  # "" for a correct attempt
    speedups: tuple[float | None, ...]
    compile_speedups: tuple[float | None, ...] = ()  # over torch.compile, where it was timed
    seconds: tuple[float | None, ...] = ()  # on the loop's clock when each verdict came

    @property
    def best(self) -> float | None:
        correct = [s for f, s in zip(self.failures, self.speedups, strict=True) if not f and s is not None]
        return max(correct) if correct else None

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
        programs = [p for p in db.programs() if p.evaluated]
    finally:
        db.close()
    return ProblemResult(
        name or Path(db_path).parent.name,
        tuple(p.failure or "" for p in programs),
        tuple(p.score for p in programs),
        tuple((p.metrics or {}).get("speedup_compile") for p in programs),
        tuple((p.metrics or {}).get("loop_s") for p in programs),
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
    versus_compile = [r.best_vs_compile for r in results if r.best_vs_compile is not None]
    if versus_compile:
        for p in thresholds:
            summary[f"fast_{p:g} vs torch.compile"] = sum(s > p for s in versus_compile) / len(results)
    return summary
