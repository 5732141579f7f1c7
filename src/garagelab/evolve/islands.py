"""Selection, as FunSearch does it: islands of programs, clusters by score signature, and
temperature-scheduled sampling; the weakest islands are periodically reset from the best.

Within an island, programs with the same (rounded) score form a cluster. Sampling picks a
cluster with probability softmax(normalised score / T), with T decaying over each period (more
exploration early), then a program in it favouring shorter ones (parsimony). Optionally a
MAP-Elites grid (program size x a metric) keeps the best program per cell, and parents are
then drawn from the elites instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from garagelab.core.errors import UserError


@dataclass(frozen=True)
class Member:
    program_id: int
    score: float
    size: int
    source: str


def signature(score: float) -> float:
    """Scores equal to 6 significant digits share a cluster."""
    return float(f"{score:.6g}")


def _softmax(values: np.ndarray, temperature: float) -> np.ndarray:
    logits = values / max(temperature, 1e-9)
    logits = logits - logits.max()
    weights = np.exp(logits)
    return weights / weights.sum()


@dataclass
class Island:
    clusters: dict[float, list[Member]] = field(default_factory=dict)
    best: Member | None = None

    def __len__(self) -> int:
        return sum(len(c) for c in self.clusters.values())

    def add(self, member: Member) -> bool:
        """Add a program; True when it beats the island's best."""
        self.clusters.setdefault(signature(member.score), []).append(member)
        if self.best is None or member.score > self.best.score:
            self.best = member
            return True
        return False

    def sample(self, count: int, temperature: float, rng: np.random.Generator) -> list[Member]:
        keys = np.array(sorted(self.clusters))
        if not len(keys):
            return []
        spread = keys.max() - keys.min()
        normalised = (keys - keys.min()) / spread if spread > 0 else np.zeros_like(keys)
        chosen = []
        for key in rng.choice(keys, size=min(count, len(keys)), replace=False, p=_softmax(normalised, temperature)):
            members = self.clusters[float(key)]
            sizes = np.array([m.size for m in members], dtype=float)
            spread = sizes.max() - sizes.min()
            shortness = -(sizes - sizes.min()) / spread if spread > 0 else np.zeros_like(sizes)
            chosen.append(members[int(rng.choice(len(members), p=_softmax(shortness, 1.0)))])
        return sorted(chosen, key=lambda m: m.score)  # ascending: the prompt shows the best last


@dataclass
class Islands:
    count: int
    temperature: float = 0.1
    period: int = 100
    islands: list[Island] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.islands:
            self.islands = [Island() for _ in range(self.count)]

    def add(self, island: int, member: Member) -> bool:
        return self.islands[island].add(member)

    def temperature_at(self, evaluated: int) -> float:
        """Decays linearly from `temperature` to near 0 over each period, then restarts."""
        return self.temperature * (1.0 - (evaluated % self.period) / self.period) + 1e-3

    def best(self) -> Member | None:
        candidates = [i.best for i in self.islands if i.best is not None]
        return max(candidates, key=lambda m: m.score) if candidates else None

    def reset_weakest(self, rng: np.random.Generator) -> list[int]:
        """Empty the worse half of the islands and seed each with a better island's best."""
        ranked = sorted(
            range(self.count), key=lambda i: self.islands[i].best.score if self.islands[i].best else -math.inf
        )
        weak, strong = ranked[: self.count // 2], ranked[self.count // 2 :]
        for index in weak:
            donor = self.islands[int(rng.choice(strong))].best
            self.islands[index] = Island()
            if donor is not None:
                self.islands[index].add(donor)
        return weak


@dataclass
class MapElites:
    """The best program per cell of (size bucket, metric bucket).

    The metric's buckets are `metric_edges` when given; otherwise the quantiles (`bins` of them)
    of the values seen so far, recomputed as programs come in: a metric's range is not known
    before the search (with no edges every program once fell in one metric bucket, and the grid
    was by size alone). A program without a numeric value of the metric has a bucket of its own."""

    metric: str
    size_edges: tuple[float, ...] = (20, 40, 80, 160, 320)
    metric_edges: tuple[float, ...] = ()
    bins: int = 5
    entries: list[tuple[Member, float]] = field(default_factory=list)

    def require(self, metrics: dict, task: str) -> None:
        """Refuse a metric the task's judge does not report as a number (checked on its template,
        so a misspelt name stops the search at its first evaluation, not after it)."""
        if _number(metrics.get(self.metric)) is None:
            numeric = sorted(name for name, value in metrics.items() if _number(value) is not None)
            raise UserError(f"--map-elites {self.metric}: task {task}'s judge reports no such number; "
                            f"it reports {', '.join(numeric) or 'none'}")  # fmt: skip

    def edges(self) -> tuple[float, ...]:
        if self.metric_edges:
            return self.metric_edges
        values = [value for _, value in self.entries if not math.isnan(value)]
        if not values:
            return ()
        return tuple(np.unique(np.quantile(values, np.arange(1, self.bins) / self.bins)))

    def cells(self) -> dict[tuple[int, int], Member]:
        """The elite of every occupied cell, bucketed with the edges as they stand (numpy over
        all programs: a few ms at 10^5, beside evaluations that take seconds)."""
        if not self.entries:
            return {}
        sizes = np.array([member.size for member, _ in self.entries], dtype=float)
        values = np.array([value for _, value in self.entries])
        scores = np.array([member.score for member, _ in self.entries])
        size_bins = np.searchsorted(self.size_edges, sizes)
        metric_bins = np.where(np.isnan(values), -1, np.searchsorted(self.edges(), values, side="right"))
        order = np.lexsort((-scores, metric_bins, size_bins))  # per cell, the best score first
        keys = np.stack([size_bins[order], metric_bins[order]], axis=1)
        first = np.ones(len(order), dtype=bool)
        first[1:] = np.any(keys[1:] != keys[:-1], axis=1)
        return {(int(k[0]), int(k[1])): self.entries[int(i)][0] for k, i in zip(keys[first], order[first], strict=True)}

    def add(self, member: Member, metrics: dict) -> bool:
        """Record a program; True when it is now the elite of its cell."""
        value = _number(metrics.get(self.metric))
        self.entries.append((member, math.nan if value is None else value))
        return any(elite is member for elite in self.cells().values())

    def sample(self, count: int, rng: np.random.Generator) -> list[Member]:
        elites = list(self.cells().values())
        if not elites:
            return []
        picks = rng.choice(len(elites), size=min(count, len(elites)), replace=False)
        return sorted((elites[int(i)] for i in picks), key=lambda m: m.score)


def _number(value: object) -> float | None:
    """A metric's value as a finite float, or None (a list, a string, NaN, a flag)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
